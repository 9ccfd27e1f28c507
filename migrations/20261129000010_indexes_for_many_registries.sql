-- Credentials by expiry first. An index that begins with the registry
-- takes each batch of mints at as many places as there are registries, so
-- its cost grew with their number; one that begins with the expiry takes
-- every batch at its end. With the registry second, the one index serves
-- the purge (expiry alone), a registry's live credentials and the counts
-- of live credentials: all read the credentials not yet expired.
DROP INDEX upload_tokens_by_registry;
DROP INDEX upload_tokens_by_expiry;
CREATE INDEX upload_tokens_by_expiry ON upload_tokens (expires_at, registry);

-- A registry's events in the order the event log lists them (by id), so
-- that a page of a registry's events reads that page, not every event of
-- the registry sorted first.
DROP INDEX events_by_registry;
CREATE INDEX events_by_registry ON events (registry, id);
