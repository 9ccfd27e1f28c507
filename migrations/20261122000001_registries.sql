-- Registries (tenants), the issuers each trusts and their trusted publishers.
-- Portable SQL: the same file serves SQLite and PostgreSQL. Times are Unix seconds.
-- `source` says who manages a row: 'config' rows follow the configuration file.

CREATE TABLE registries (
    name              TEXT PRIMARY KEY,
    upload_url        TEXT NOT NULL,
    upload_authority  TEXT NOT NULL,
    upload_path       TEXT NOT NULL,
    audience          TEXT NOT NULL,
    ecosystem         TEXT NOT NULL,
    token_lifetime    BIGINT NOT NULL,
    token_prefix      TEXT NOT NULL,
    features          TEXT NOT NULL,
    default_features  TEXT NOT NULL,
    source            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
-- (host, path) is unique among the configured registries; the configuration
-- checks it, so that a file may swap two registries' URLs in one edit.

CREATE INDEX registries_by_upload_path ON registries (upload_path);

CREATE TABLE registry_issuers (
    registry  TEXT NOT NULL REFERENCES registries (name) ON DELETE CASCADE,
    url       TEXT NOT NULL,
    provider  TEXT NOT NULL,
    PRIMARY KEY (registry, url)
);

CREATE TABLE publishers (
    registry    TEXT NOT NULL REFERENCES registries (name) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    provider    TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    spec        TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (registry, key)
);
