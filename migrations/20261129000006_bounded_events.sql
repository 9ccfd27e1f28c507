-- Bounded event storage. Refusals of requests that proved no identity (a
-- token that did not verify, a value that is no credential, a path that
-- cannot be checked) are counted per registry, kind, code and hour instead
-- of stored one row each; events and counts older than the retention are
-- deleted by the periodic purge, which reads them by time.
CREATE TABLE refusal_counts (
    registry    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    code        TEXT NOT NULL,
    hour        BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (registry, kind, code, hour)
);
CREATE INDEX refusal_counts_by_hour ON refusal_counts (hour);
CREATE INDEX events_by_time ON events (at);
