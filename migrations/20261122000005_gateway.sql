-- The upload gateway: a registry's [gateway] table, as JSON; NULL: none.
-- It names where secrets are (an environment variable, a file), never a secret.
ALTER TABLE registries ADD COLUMN gateway TEXT;
