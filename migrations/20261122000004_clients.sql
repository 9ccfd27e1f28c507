-- Today's clients: a registry may serve PyPI's implicit paths (/_/oidc/...)
-- on its upload URL's host (found by the index on upload_authority of the
-- previous migration).
-- Portable SQL for SQLite and PostgreSQL; 0 is false, 1 true.
ALTER TABLE registries ADD COLUMN pypi_paths BIGINT NOT NULL DEFAULT 0;
