//! The SMS pumping brake at work (rules in `gerbang_domain::verification::pumping`). The engine
//! counts each code sent to a phone and each code entered, per number block, in memory; every
//! second [`PumpingBrake::tick`] adds those counts to the store (where every instance adds its
//! own), judges the blocks that had traffic on the stored totals over the window, brakes a pumped
//! block in the store (with an audit entry) and reloads the brakes that hold, from whichever
//! instance they came. The engine then refuses new codes to a braked block with
//! `destination_suspended` until the brake ends or staff lift it. Counting costs the hot path one
//! short lock; the store sees one batch a second.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, DurationRound, Utc};
use gerbang_domain::verification::Destination;
use gerbang_domain::verification::pumping::BrakePolicy;
use gerbang_store::audit::{AuditRecord, actor};
use gerbang_store::{BlockCount, Brake, Store, StoreError};

/// How long counts are kept: the health page shows the last day's, the brake judges its window.
pub const KEEP_COUNTS: Duration = Duration::hours(25);

#[derive(Debug, Default)]
struct Inner {
    /// Counts not yet in the store: (block, minute) → (sent, verified).
    pending: HashMap<(String, DateTime<Utc>), (u64, u64)>,
    /// Blocks braked, with the end of their brake, as last read from the store.
    braked: HashMap<String, DateTime<Utc>>,
    /// When each block's brake was last lifted: traffic before it is not judged again.
    lifted: HashMap<String, DateTime<Utc>>,
    /// The hour whose old counts were last pruned.
    pruned: Option<DateTime<Utc>>,
}

/// The brake; shared by the engine (which counts and asks) and the task that runs [`tick`].
///
/// [`tick`]: PumpingBrake::tick
#[derive(Debug)]
pub struct PumpingBrake {
    policy: BrakePolicy,
    inner: Mutex<Inner>,
}

impl Default for PumpingBrake {
    fn default() -> Self {
        Self::new(BrakePolicy::default())
    }
}

fn minute(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::minutes(1)).unwrap_or(at)
}

impl PumpingBrake {
    pub fn new(policy: BrakePolicy) -> Self {
        Self {
            policy,
            inner: Mutex::default(),
        }
    }

    pub fn policy(&self) -> &BrakePolicy {
        &self.policy
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Until when codes to `destination` are held, if its block is braked.
    pub fn held(&self, destination: &Destination, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let block = destination.number_block()?;
        self.inner()
            .braked
            .get(block)
            .copied()
            .filter(|until| now < *until)
    }

    fn count(&self, block: &str, now: DateTime<Utc>, sent: u64, verified: u64) {
        if !self.policy.enabled {
            return;
        }
        let mut inner = self.inner();
        let entry = inner
            .pending
            .entry((block.to_owned(), minute(now)))
            .or_default();
        entry.0 += sent;
        entry.1 += verified;
    }

    /// A code went to `destination`.
    pub fn sent(&self, destination: &Destination, now: DateTime<Utc>) {
        if let Some(block) = destination.number_block() {
            self.count(block, now, 1, 0);
        }
    }

    /// A code sent to `destination` was entered.
    pub fn verified(&self, destination: &Destination, now: DateTime<Utc>) {
        if let Some(block) = destination.number_block() {
            self.count(block, now, 0, 1);
        }
    }

    /// Adds the counts to the store, brakes the blocks that are pumped and reloads the brakes.
    /// Returns the blocks this call braked.
    pub async fn tick<S: Store>(
        &self,
        store: &S,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        if !self.policy.enabled {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.inner().pending);
        let touched: HashSet<String> = pending.keys().map(|(block, _)| block.clone()).collect();
        let counts = pending
            .into_iter()
            .map(|((block, minute), (sent, verified))| BlockCount {
                block,
                minute,
                sent,
                verified,
            })
            .collect::<Vec<_>>();
        if let Err(error) = store.add_block_counts(counts.clone()).await {
            // Put them back: the next tick tries again, and nothing counted is lost.
            let mut inner = self.inner();
            for count in counts {
                let entry = inner
                    .pending
                    .entry((count.block, count.minute))
                    .or_default();
                entry.0 += count.sent;
                entry.1 += count.verified;
            }
            return Err(error);
        }
        let since = now - self.policy.window();
        let mut braked = Vec::new();
        if !touched.is_empty() {
            // A block's traffic before its last lift was judged already; staff said it is fine.
            let lifted = self.inner().lifted.clone();
            let totals = store
                .block_totals(touched.into_iter().collect(), since)
                .await?;
            for (block, sent, verified) in totals {
                // Counts are per minute: judged from the minute after the lift.
                let judged_from = lifted
                    .get(&block)
                    .map(|at| minute(*at) + Duration::minutes(1))
                    .filter(|from| *from > since);
                let (sent, verified) = match judged_from {
                    Some(from) => {
                        let after = store.block_totals(vec![block.clone()], from).await?;
                        after.first().map_or((0, 0), |(_, s, v)| (*s, *v))
                    }
                    None => (sent, verified),
                };
                if !self.policy.pumped(sent, verified) || self.inner().braked.contains_key(&block) {
                    continue;
                }
                let brake = Brake {
                    block: block.clone(),
                    braked_at: now,
                    until: now + self.policy.hold(),
                    sent,
                    verified,
                    lifted_at: None,
                    lifted_by: None,
                };
                let audit = vec![AuditRecord {
                    at: now,
                    actor: actor::SYSTEM.to_owned(),
                    action: "number_block_braked".into(),
                    account: None,
                    ticket: None,
                    detail: format!(
                        "{block}: {verified} of {sent} codes entered in {} min",
                        self.policy.window_minutes
                    ),
                }];
                if store.brake_block(&brake, audit).await? {
                    tracing::warn!(%block, sent, verified, "number block braked: SMS pumping suspected");
                    braked.push(block);
                }
            }
        }
        self.reload(store, now).await?;
        // Once an hour, whichever instance comes first: counts older than the window and the
        // health page's day are deleted, so the table holds about a day of minutes.
        let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        if self.inner().pruned != Some(hour) {
            let keep = KEEP_COUNTS.max(self.policy.window());
            store.prune_block_counts(now - keep).await?;
            self.inner().pruned = Some(hour);
        }
        Ok(braked)
    }

    /// Reads the brakes that hold and the recent lifts from the store.
    pub async fn reload<S: Store>(&self, store: &S, now: DateTime<Utc>) -> Result<(), StoreError> {
        let brakes = store.brakes(now, now - self.policy.window()).await?;
        let mut inner = self.inner();
        inner.braked = brakes
            .iter()
            .filter(|brake| brake.holds(now))
            .map(|brake| (brake.block.clone(), brake.until))
            .collect();
        for brake in &brakes {
            if let Some(at) = brake.lifted_at {
                let latest = inner.lifted.entry(brake.block.clone()).or_insert(at);
                *latest = (*latest).max(at);
            }
        }
        Ok(())
    }

    /// Stops holding `block` here at once (after a lift at `at`; other instances follow at their
    /// next reload, within a second).
    pub fn forget(&self, block: &str, at: DateTime<Utc>) {
        let mut inner = self.inner();
        inner.braked.remove(block);
        inner.lifted.insert(block.to_owned(), at);
    }

    /// The number of blocks braked now (for `/metrics`).
    pub fn braked_count(&self) -> usize {
        self.inner().braked.len()
    }

    /// Runs [`tick`](Self::tick) every second until `shutdown`.
    pub async fn run<S: Store>(
        self: std::sync::Arc<Self>,
        store: S,
        clock: std::sync::Arc<dyn gerbang_domain::Clock>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        if !self.policy.enabled {
            return;
        }
        tokio::pin!(shutdown);
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = every.tick() => {
                    if let Err(error) = self.tick(&store, clock.now()).await {
                        tracing::warn!(%error, "the pumping brake could not reach the store; retrying");
                    }
                }
            }
        }
        // The last counts, so that a restart loses none.
        let _ = self.tick(&store, clock.now()).await;
    }
}

/// Staff lift the brake on `block` (`by` is the audit actor); `false` when none holds.
pub async fn lift<S: Store>(
    store: &S,
    block: &str,
    by: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let audit = vec![AuditRecord {
        at: now,
        actor: by.to_owned(),
        action: "number_block_brake_lifted".into(),
        account: None,
        ticket: None,
        detail: format!("{block}: {reason}"),
    }];
    store.lift_brake(block, by, now, audit).await
}
