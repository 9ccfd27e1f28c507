-- A registry's events in the order the event log lists them (by id), so
-- that a page of a registry's events reads that page, not every event of
-- the registry sorted first.
DROP INDEX events_by_registry;
CREATE INDEX events_by_registry ON events (registry, id);
