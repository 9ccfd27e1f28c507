-- Today's clients: a registry may serve PyPI's implicit paths (/_/oidc/...)
-- on its upload URL's host, and cargo registries are found by host and path.
-- Portable SQL for SQLite and PostgreSQL; 0 is false, 1 true.
ALTER TABLE registries ADD COLUMN pypi_paths BIGINT NOT NULL DEFAULT 0;
CREATE INDEX registries_by_upload_authority ON registries (upload_authority);
