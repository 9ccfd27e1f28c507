-- Token exchange: identity tokens already used, minted upload credentials, events.
-- Portable SQL for SQLite and PostgreSQL. Times are Unix seconds.

-- A jti is accepted once per issuer; kept until the token's exp plus the leeway.
CREATE TABLE used_jtis (
    issuer      TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX used_jtis_by_expiry ON used_jtis (expires_at);

-- Upload credentials, by the SHA-256 of the credential; the credential itself is never stored.
CREATE TABLE upload_tokens (
    hash            TEXT PRIMARY KEY,
    registry        TEXT NOT NULL REFERENCES registries (name) ON DELETE CASCADE,
    publishers      TEXT NOT NULL,
    packages        TEXT NOT NULL,
    single_use      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    revoked_at      BIGINT,
    claims          TEXT NOT NULL
);
CREATE INDEX upload_tokens_by_registry ON upload_tokens (registry, expires_at);

-- What happened: mints, refusals (and later checks, consumptions, revocations).
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    registry    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    code        TEXT NOT NULL,
    publishers  TEXT,
    detail      TEXT NOT NULL,
    claims      TEXT
);
CREATE INDEX events_by_registry ON events (registry, at);
