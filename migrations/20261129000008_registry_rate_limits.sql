-- A registry's own rate limits ([registries.rate_limits]) as JSON; `{}`:
-- those of [rate_limits].
ALTER TABLE registries ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '{}';
