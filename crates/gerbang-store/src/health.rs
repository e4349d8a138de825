//! What the delivery-health page counts (SPEC §5, the operator's view): delivery attempts by hour,
//! channel, provider and status over a window, and how long delivered messages took from hand-off
//! to their receipt. Read from `delivery_attempts`, which holds no personal data, over its time
//! index (`delivery_attempts_attempted`). Also what admission and the daily budgets read: the codes
//! waiting in the outbox per channel, and hand-offs counted per day, channel and provider (added to
//! by every instance, like the pumping brake's counts).

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// Attempts in one time bucket with one channel, provider and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptCount {
    /// 0 for the bucket starting at `since`, 1 for the next, ...
    pub bucket: i64,
    pub channel: String,
    pub provider: String,
    pub status: String,
    pub count: u64,
}

/// The upper bounds, in seconds, of the delivery-time buckets; the last bucket is everything
/// slower.
pub const DELIVERY_TIME_BOUNDS: [i64; 5] = [5, 15, 30, 60, 120];

/// Hand-offs on one budget day through one channel and provider, to be added to the stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySends {
    /// The budget day (`YYYY-MM-DD`, in the zone the budgets are kept in).
    pub day: String,
    pub channel: String,
    pub provider: String,
    pub sent: u64,
}

/// Delivery counts for the health page, admission and budgets.
pub trait HealthStore {
    /// Messages carrying a code (priority `otp`) waiting to be handed off, per channel.
    fn waiting_codes(&self) -> impl Future<Output = Result<Vec<(String, u64)>, StoreError>> + Send;

    /// Records the codes a second `instance`'s worker drains per channel, as of `at`.
    fn report_drain_rates(
        &self,
        instance: String,
        rates: Vec<(String, f64)>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Per channel, the drain rates of every instance that reported since `since`, summed.
    fn drain_rates(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(String, f64)>, StoreError>> + Send;

    /// Adds `sends` to the stored counts of their day, channel and provider.
    fn add_daily_sends(
        &self,
        sends: Vec<DailySends>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every count stored for `day`.
    fn daily_sends(
        &self,
        day: String,
    ) -> impl Future<Output = Result<Vec<DailySends>, StoreError>> + Send;

    /// Attempts made since `since`, counted per `bucket_seconds`, channel, provider and status.
    fn attempt_counts(
        &self,
        since: DateTime<Utc>,
        bucket_seconds: i64,
    ) -> impl Future<Output = Result<Vec<AttemptCount>, StoreError>> + Send;

    /// Attempts to phone numbers made since `since`, counted per operator and status.
    fn operator_counts(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(String, String, u64)>, StoreError>> + Send;

    /// Delivered attempts since `since`, counted per delivery-time bucket
    /// ([`DELIVERY_TIME_BOUNDS`], then slower): index and count.
    fn delivery_times(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(i64, u64)>, StoreError>> + Send;
}

/// The SQL `CASE` giving a delivery-time bucket's index from a time in milliseconds (`expression`).
pub fn delivery_time_case(expression: &str) -> String {
    // Cast: PostgreSQL would type the bare CASE as a 4-byte integer.
    let mut sql = String::from("CAST(CASE");
    for (index, bound) in DELIVERY_TIME_BOUNDS.iter().enumerate() {
        sql.push_str(&format!(
            " WHEN {expression} < {} THEN {index}",
            bound * 1000
        ));
    }
    sql.push_str(&format!(
        " ELSE {} END AS BIGINT)",
        DELIVERY_TIME_BOUNDS.len()
    ));
    sql
}
