-- Admission under load (crates/gerbang-core/src/admission.rs): each instance reports, twice a
-- second, how many codes a second its worker drains per channel, so that every instance reckons a
-- new code's wait from the rate all of them drain the shared outbox at. Rows of an instance that
-- stopped reporting age out (only fresh rows are read); updated_at is Unix ms.
CREATE TABLE drain_rates (
    instance TEXT NOT NULL,
    channel TEXT NOT NULL,
    per_second REAL NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (instance, channel)
);
