//! Daily budgets at work (the rules are `gerbang_domain::delivery::budget`). The engine counts
//! each code accepted per channel and the worker each hand-off per provider, in memory; every
//! second [`Budgets::tick`] adds those counts to the store (where every instance adds its own) and
//! reads back the day's totals, so all instances judge the same numbers. The engine refuses a new
//! code when its channel's cap is reached, or when every provider that would carry it has spent
//! its budget (`budget_exhausted`, until the day turns); the worker skips a provider that has
//! spent its budget, as it skips one whose circuit is open.
//!
//! Between two ticks an instance sees only its own new counts: with N instances a cap can be
//! passed by at most what the others accept in about a second.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use gerbang_domain::Clock;
use gerbang_domain::delivery::budget::{BudgetLevel, BudgetPolicy, budget_day};
use gerbang_domain::verification::Channel;
use gerbang_store::{DailySends, Store, StoreError};

use crate::metrics::Metrics;

/// The provider column of the count of codes accepted on a channel.
const ACCEPTED: &str = "";

/// One count against its cap, for the health page and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetState {
    /// `channel` (codes accepted) or `provider` (hand-offs).
    pub scope: &'static str,
    pub name: String,
    pub spent: u64,
    pub cap: Option<u64>,
    pub level: BudgetLevel,
}

#[derive(Debug, Default)]
struct Inner {
    /// The budget day the stored totals are of.
    day: String,
    /// Stored totals of that day: (channel, provider) → count.
    stored: HashMap<(String, String), u64>,
    /// Counts not yet in the store: (day, channel, provider) → count.
    pending: HashMap<(String, String, String), u64>,
    /// The caps already alerted on today (logged once).
    alerted: HashSet<String>,
}

impl Inner {
    /// The count of `day` for the pairs `matches` selects, stored and pending.
    fn spent(&self, day: &str, matches: impl Fn(&str, &str) -> bool) -> u64 {
        let stored: u64 = if self.day == day {
            self.stored
                .iter()
                .filter(|((channel, provider), _)| matches(channel, provider))
                .map(|(_, count)| *count)
                .sum()
        } else {
            0
        };
        let pending: u64 = self
            .pending
            .iter()
            .filter(|((d, channel, provider), _)| d == day && matches(channel, provider))
            .map(|(_, count)| *count)
            .sum();
        stored + pending
    }

    fn accepted(&self, day: &str, channel: Channel) -> u64 {
        self.spent(day, |c, p| c == channel.as_str() && p == ACCEPTED)
    }

    fn handed_off(&self, day: &str, provider: &str) -> u64 {
        self.spent(day, |_, p| p == provider)
    }
}

/// Shared by the engine, the delivery worker and the task that runs [`Budgets::tick`].
#[derive(Debug, Default)]
pub struct Budgets {
    policy: BudgetPolicy,
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
}

impl Budgets {
    pub fn new(policy: BudgetPolicy) -> Self {
        Self {
            policy,
            inner: Mutex::default(),
            metrics: Arc::default(),
        }
    }

    /// Counts refusals into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn policy(&self) -> &BudgetPolicy {
        &self.policy
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a new code on `channel`, which the providers `carriers` name would carry, is
    /// accepted today; `Err` holds when the next budget day starts. `carriers` is asked only when
    /// a provider has a cap.
    pub fn admit(
        &self,
        channel: Channel,
        carriers: impl FnOnce() -> Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<(), DateTime<Utc>> {
        if self.policy.is_empty() {
            return Ok(());
        }
        let (day, next) = budget_day(now);
        let carriers = if self.policy.providers.is_empty() {
            Vec::new()
        } else {
            carriers()
        };
        let inner = self.inner();
        let channel_spent = self
            .policy
            .channels
            .get(&channel)
            .is_some_and(|cap| inner.accepted(&day, channel) >= *cap);
        let every_carrier_spent = !carriers.is_empty()
            && carriers.iter().all(|provider| {
                self.policy
                    .providers
                    .get(provider)
                    .is_some_and(|cap| inner.handed_off(&day, provider) >= *cap)
            });
        drop(inner);
        if channel_spent || every_carrier_spent {
            self.metrics.budget_refused(channel.as_str());
            return Err(next);
        }
        Ok(())
    }

    /// A code on `channel` was accepted.
    pub fn accepted(&self, channel: Channel, now: DateTime<Utc>) {
        self.count(channel, ACCEPTED, now);
    }

    /// Whether `provider` may still take a message today.
    pub fn provider_open(&self, provider: &str, now: DateTime<Utc>) -> bool {
        let Some(cap) = self.policy.providers.get(provider) else {
            return true;
        };
        let (day, _) = budget_day(now);
        self.inner().handed_off(&day, provider) < *cap
    }

    /// `provider` took a message on `channel`.
    pub fn handed_off(&self, channel: Channel, provider: &str, now: DateTime<Utc>) {
        self.count(channel, provider, now);
    }

    fn count(&self, channel: Channel, provider: &str, now: DateTime<Utc>) {
        let (day, _) = budget_day(now);
        *self
            .inner()
            .pending
            .entry((day, channel.as_str().to_owned(), provider.to_owned()))
            .or_default() += 1;
    }

    /// Adds the counts to the store and reads back today's totals; logs a cap reaching its alert
    /// share or its end, once a day.
    pub async fn tick<S: Store>(&self, store: &S, now: DateTime<Utc>) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.inner().pending);
        let sends: Vec<DailySends> = pending
            .into_iter()
            .map(|((day, channel, provider), sent)| DailySends {
                day,
                channel,
                provider,
                sent,
            })
            .collect();
        if let Err(error) = store.add_daily_sends(sends.clone()).await {
            // Put them back: the next tick tries again, and nothing counted is lost.
            let mut inner = self.inner();
            for s in sends {
                *inner
                    .pending
                    .entry((s.day, s.channel, s.provider))
                    .or_default() += s.sent;
            }
            return Err(error);
        }
        let (day, _) = budget_day(now);
        let totals = store.daily_sends(day.clone()).await?;
        {
            let mut inner = self.inner();
            if inner.day != day {
                inner.alerted.clear();
            }
            inner.day = day;
            inner.stored = totals
                .into_iter()
                .map(|s| ((s.channel, s.provider), s.sent))
                .collect();
        }
        for state in self.states(now) {
            let key = format!("{}:{}:{:?}", state.scope, state.name, state.level);
            if state.level == BudgetLevel::Within || !self.inner().alerted.insert(key) {
                continue;
            }
            match state.level {
                BudgetLevel::Exhausted => tracing::error!(
                    scope = state.scope, name = %state.name, spent = state.spent, cap = state.cap,
                    "a daily budget is spent: refusing until the day turns (00:00 WIB)"
                ),
                _ => tracing::warn!(
                    scope = state.scope, name = %state.name, spent = state.spent, cap = state.cap,
                    "a daily budget has reached its alert share"
                ),
            }
        }
        Ok(())
    }

    /// Every count of today with a cap, and every provider that took something today.
    pub fn states(&self, now: DateTime<Utc>) -> Vec<BudgetState> {
        let (day, _) = budget_day(now);
        let inner = self.inner();
        let mut states = Vec::new();
        for channel in Channel::ALL {
            let spent = inner.accepted(&day, channel);
            let cap = self.policy.channels.get(&channel).copied();
            if spent == 0 && cap.is_none() {
                continue;
            }
            states.push(BudgetState {
                scope: "channel",
                name: channel.as_str().to_owned(),
                spent,
                cap,
                level: cap.map_or(BudgetLevel::Within, |cap| self.policy.level(spent, cap)),
            });
        }
        let mut providers: Vec<String> = self.policy.providers.keys().cloned().collect();
        for (_, provider) in inner.stored.keys() {
            providers.push(provider.clone());
        }
        for (d, _, provider) in inner.pending.keys() {
            if *d == day {
                providers.push(provider.clone());
            }
        }
        providers.retain(|provider| provider != ACCEPTED);
        providers.sort();
        providers.dedup();
        for provider in providers {
            let spent = inner.handed_off(&day, &provider);
            let cap = self.policy.providers.get(&provider).copied();
            states.push(BudgetState {
                scope: "provider",
                level: cap.map_or(BudgetLevel::Within, |cap| self.policy.level(spent, cap)),
                name: provider,
                spent,
                cap,
            });
        }
        states
    }

    /// Runs [`tick`](Self::tick) every second until `shutdown`, and once more at the end.
    pub async fn run<S: Store>(
        self: Arc<Self>,
        store: S,
        clock: Arc<dyn Clock>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = every.tick() => {
                    if let Err(error) = self.tick(&store, clock.now()).await {
                        tracing::warn!(%error, "the daily budgets could not reach the store; retrying");
                    }
                }
            }
        }
        let _ = self.tick(&store, clock.now()).await;
    }
}
