-- The longest identity-token lifetime (exp - iat, seconds) a registry
-- accepts from an issuer, so that every used jti is purgeable.
ALTER TABLE registry_issuers ADD COLUMN max_token_lifetime BIGINT NOT NULL DEFAULT 3600;
