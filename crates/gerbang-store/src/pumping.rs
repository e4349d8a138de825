//! What the SMS pumping brake keeps: codes sent and entered per number block and minute, and the
//! brakes themselves (when, why, until, who lifted). A number block is a phone number without its
//! last four digits (10,000 numbers): not personal data, and kept in the clear so that staff can
//! see and lift a brake. Counters are added to, never overwritten, so every instance sharing the
//! database adds its own counts and all judge the same totals.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::audit::AuditRecord;
use crate::error::StoreError;

/// Codes sent to and entered from one number block in one minute, to be added to the stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCount {
    pub block: String,
    /// The minute's start.
    pub minute: DateTime<Utc>,
    pub sent: u64,
    pub verified: u64,
}

/// A brake on a number block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brake {
    pub block: String,
    pub braked_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The counts that braked it.
    pub sent: u64,
    pub verified: u64,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lifted_by: Option<String>,
}

impl Brake {
    pub fn holds(&self, now: DateTime<Utc>) -> bool {
        self.lifted_at.is_none() && now < self.until
    }
}

/// Storage of the pumping brake's counts and brakes.
pub trait PumpingStore {
    /// Adds `counts` to the stored counts of their block and minute.
    fn add_block_counts(
        &self,
        counts: Vec<BlockCount>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Codes sent and entered per block since `since`, for `blocks`.
    fn block_totals(
        &self,
        blocks: Vec<String>,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(String, u64, u64)>, StoreError>> + Send;

    /// Deletes the counts of minutes before `before`; returns how many rows went.
    fn prune_block_counts(
        &self,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The `limit` blocks with the most codes sent since `since`: block, sent, entered.
    fn busiest_blocks(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(String, u64, u64)>, StoreError>> + Send;

    /// Brakes `brake.block` unless a brake on it holds already; with `audit` when it does.
    fn brake_block(
        &self,
        brake: &Brake,
        audit: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Brakes that hold at `now`, and those made or lifted since `since` (newest first).
    fn brakes(
        &self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Brake>, StoreError>> + Send;

    /// Lifts the brake holding on `block`; `false` when none holds.
    fn lift_brake(
        &self,
        block: &str,
        by: &str,
        at: DateTime<Utc>,
        audit: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
