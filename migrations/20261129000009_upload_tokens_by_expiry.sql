-- The periodic purge finds expired credentials by their expiry alone; the
-- index by registry and expiry cannot serve that on PostgreSQL.
CREATE INDEX upload_tokens_by_expiry ON upload_tokens (expires_at);
