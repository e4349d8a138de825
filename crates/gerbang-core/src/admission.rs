//! Admission under load at work (the rule is `gerbang_domain::verification::admission`). A new
//! code's wait is the codes waiting on its channel, plus one, over the rate the queue drains at
//! ([`DeliveryPace`]: the routes' limits and response times, then the worker's measured
//! throughput). The waiting codes are read from the store by [`Admission::run`] twice a second
//! (every instance's, so the depth is shared) and counted up here as codes are accepted between
//! two reads. When no rate can be told (no route would take the code, nothing is known yet) the
//! code is accepted: admission refuses only on evidence.
//!
//! With several instances draining one outbox, each reports its worker's rate per channel to the
//! store at every read ([`Admission::sample`]) and reads the sum of the fresh reports: a new code's
//! rate is this instance's rate for its destination scaled by how much faster all of them drain
//! the channel. An instance that stops reporting drops out after [`FRESH`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use gerbang_domain::verification::admission::{AdmissionPolicy, QueueFull, Urgency};
use gerbang_domain::verification::{Channel, Destination};
use gerbang_store::{Store, StoreError};

use crate::metrics::Metrics;
use crate::pace::DeliveryPace;

/// How often the waiting codes are read from the store.
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
/// How recent an instance's drain-rate report must be to count.
pub const FRESH: Duration = Duration::seconds(5);

/// What the health page shows of one channel's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelAdmission {
    pub channel: Channel,
    /// Codes waiting to be handed off (all instances), as last read plus those accepted since.
    pub waiting: u64,
    /// Codes per second the queue drains at, when it can be told.
    pub per_second: Option<f64>,
    /// The wait a new code would have.
    pub wait: Option<Duration>,
    /// The urgencies refused now, least urgent first.
    pub refusing: Vec<Urgency>,
}

#[derive(Debug, Default)]
struct Inner {
    waiting: HashMap<Channel, u64>,
    /// Per channel: every instance's drain rate over this one's (1 when alone or unknown).
    scale: HashMap<Channel, f64>,
}

/// Shared by the engine (which asks and counts) and the task that runs [`Admission::run`].
#[derive(Debug)]
pub struct Admission {
    policy: AdmissionPolicy,
    /// The code's longest life from its request (`otp.hard_cap`): the queue wait is a share of it.
    hard_cap: Duration,
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
    /// This instance's name in the drain-rate reports.
    instance: String,
}

impl Default for Admission {
    fn default() -> Self {
        Self::new(AdmissionPolicy::default(), Duration::minutes(10))
    }
}

impl Admission {
    pub fn new(policy: AdmissionPolicy, hard_cap: Duration) -> Self {
        Self {
            policy,
            hard_cap,
            inner: Mutex::default(),
            metrics: Arc::default(),
            instance: {
                use rand::RngCore;
                let mut id = [0u8; 8];
                rand::rng().fill_bytes(&mut id);
                id.iter().map(|b| format!("{b:02x}")).collect()
            },
        }
    }

    /// Counts refusals into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn policy(&self) -> &AdmissionPolicy {
        &self.policy
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn waiting(&self, channel: Channel) -> u64 {
        self.inner().waiting.get(&channel).copied().unwrap_or(0)
    }

    fn scale(&self, channel: Channel) -> f64 {
        self.inner().scale.get(&channel).copied().unwrap_or(1.0)
    }

    fn wait_at(waiting: u64, per_second: f64) -> Duration {
        let seconds = waiting.saturating_add(1) as f64 / per_second;
        Duration::milliseconds((seconds * 1000.0).min(1e12).ceil() as i64)
    }

    /// Whether a code of `urgency` on `channel` to `destination` is queued now.
    pub fn admit(
        &self,
        urgency: Urgency,
        channel: Channel,
        destination: &Destination,
        pace: &DeliveryPace,
        now: DateTime<Utc>,
    ) -> Result<(), QueueFull> {
        if !self.policy.enabled {
            return Ok(());
        }
        let Some(per_second) = pace.rate(channel, destination, now) else {
            return Ok(());
        };
        let per_second = per_second * self.scale(channel);
        let wait = Self::wait_at(self.waiting(channel), per_second);
        self.policy
            .admit(urgency, wait, self.hard_cap)
            .inspect_err(|_| self.metrics.admission_refused(urgency.as_str()))
    }

    /// A code on `channel` was queued here.
    pub fn queued(&self, channel: Channel) {
        *self.inner().waiting.entry(channel).or_default() += 1;
    }

    /// Reads the codes waiting on every channel from the store, reports this instance's drain
    /// rates (from `pace`) and reads every instance's.
    pub async fn sample<S: Store>(
        &self,
        store: &S,
        pace: &DeliveryPace,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let rows = store.waiting_codes().await?;
        let waiting = rows
            .into_iter()
            .filter_map(|(channel, count)| Channel::parse(&channel).ok().map(|c| (c, count)))
            .collect();
        self.inner().waiting = waiting;
        let own: HashMap<Channel, f64> = Channel::ALL
            .into_iter()
            .filter_map(|channel| pace.channel_rate(channel, now).map(|rate| (channel, rate)))
            .collect();
        let report = own
            .iter()
            .map(|(channel, rate)| (channel.as_str().to_owned(), *rate))
            .collect();
        store
            .report_drain_rates(self.instance.clone(), report, now)
            .await?;
        let all = store.drain_rates(now - FRESH).await?;
        let scale = all
            .into_iter()
            .filter_map(|(channel, total)| {
                let channel = Channel::parse(&channel).ok()?;
                let mine = own.get(&channel).copied().filter(|rate| *rate > 0.0)?;
                Some((channel, (total / mine).max(1.0)))
            })
            .collect();
        self.inner().scale = scale;
        Ok(())
    }

    /// Every channel's queue as it stands, for the health page and `/metrics`.
    pub fn state(&self, pace: &DeliveryPace, now: DateTime<Utc>) -> Vec<ChannelAdmission> {
        Channel::ALL
            .into_iter()
            .map(|channel| {
                let waiting = self.waiting(channel);
                let per_second = pace
                    .channel_rate(channel, now)
                    .map(|rate| rate * self.scale(channel));
                let wait = per_second.map(|rate| Self::wait_at(waiting, rate));
                let refusing = match wait {
                    Some(wait) if self.policy.enabled => Urgency::ALL
                        .into_iter()
                        .filter(|urgency| self.policy.admit(*urgency, wait, self.hard_cap).is_err())
                        .collect(),
                    _ => Vec::new(),
                };
                ChannelAdmission {
                    channel,
                    waiting,
                    per_second,
                    wait,
                    refusing,
                }
            })
            .collect()
    }

    /// Runs [`sample`](Self::sample) every [`SAMPLE_EVERY`] until `shutdown`.
    pub async fn run<S: Store>(
        self: Arc<Self>,
        store: S,
        pace: Arc<DeliveryPace>,
        clock: Arc<dyn gerbang_domain::Clock>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        if !self.policy.enabled {
            return;
        }
        tokio::pin!(shutdown);
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = every.tick() => {
                    if let Err(error) = self.sample(&store, &pace, clock.now()).await {
                        tracing::warn!(%error, "admission could not read the queue; retrying");
                    }
                }
            }
        }
    }
}
