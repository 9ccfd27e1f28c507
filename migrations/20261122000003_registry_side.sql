-- The registry side: how registries and their proxies check credentials.
-- Portable SQL for SQLite and PostgreSQL.

-- Hex SHA-256 of the bearer secret for introspection; NULL: introspection is off.
ALTER TABLE registries ADD COLUMN introspect_secret_sha256 TEXT;
-- The registry's [forward_auth] table, as JSON.
ALTER TABLE registries ADD COLUMN forward_auth TEXT NOT NULL DEFAULT '{}';

-- The upload URL's host without its port, lower case: forward-auth and the
-- upload gateway find registries by the host a proxy forwards, whose port
-- need not be the upload URL's. Written by every configuration sync.
ALTER TABLE registries ADD COLUMN upload_host TEXT NOT NULL DEFAULT '';
CREATE INDEX registries_by_upload_host ON registries (upload_host);
-- Host and port lookups for PyPI's implicit paths and the crates.io protocol.
CREATE INDEX registries_by_upload_authority ON registries (upload_authority);
