-- The registry side: how registries and their proxies check credentials.
-- Portable SQL for SQLite and PostgreSQL.

-- Hex SHA-256 of the bearer secret for introspection; NULL: introspection is off.
ALTER TABLE registries ADD COLUMN introspect_secret_sha256 TEXT;
-- The registry's [forward_auth] table, as JSON.
ALTER TABLE registries ADD COLUMN forward_auth TEXT NOT NULL DEFAULT '{}';

-- Host lookups for forward-auth.
CREATE INDEX registries_by_upload_authority ON registries (upload_authority);
