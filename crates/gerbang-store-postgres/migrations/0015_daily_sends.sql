-- Hand-offs per budget day, channel and provider (crates/gerbang-store/src/health.rs): what the
-- daily budgets count. Every instance adds its own; the day is the budget zone's date, YYYY-MM-DD.
CREATE TABLE daily_sends (
    day TEXT NOT NULL,
    channel TEXT NOT NULL,
    provider TEXT NOT NULL,
    sent BIGINT NOT NULL,
    PRIMARY KEY (day, channel, provider)
);

-- The health page's busiest number blocks of the last day read block_counts by time.
CREATE INDEX block_counts_minute ON block_counts (minute);
