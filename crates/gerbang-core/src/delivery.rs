//! Handing queued messages to providers: the [`Courier`] contract, the development inbox courier,
//! the ordered [`Route`]s of each channel, and the worker loop around one testable step,
//! [`DeliveryWorker::deliver_next`].
//!
//! For each claimed message the worker tries the routes that carry its channel (and the number's
//! operator) in order, skipping a provider whose circuit is open, until one takes it. Every refusal is
//! written to the delivery trail. When no route took it but one may later (throttled, unreachable,
//! circuit open), the message goes back to the queue with an exponential back-off with jitter;
//! when none ever will (a wrong number, no route at all), it is dropped with its cause. A message
//! whose code died while it waited is dropped, not sent. A hand-off starts the code's lifetime on its
//! verification.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use gerbang_domain::delivery::circuit::{CircuitBreaker, CircuitPolicy, CircuitState};
use gerbang_domain::delivery::{Cause, DeliveryStatus, Retry};
use gerbang_domain::verification::{Channel, Destination};
use gerbang_domain::{Clock, Operator};

use crate::budget::Budgets;
use crate::metrics::Metrics;
use crate::pace::{Capacity, DeliveryPace};
use gerbang_store::{ClaimedMessage, FailedTry, MessageOutcome, OutboxMessage, Store, StoreError};
use rand::Rng;
use tokio::sync::Notify;

/// What a provider said when it took a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    pub at: DateTime<Utc>,
    /// The provider's id for the message (an SMSC's `message_id`), which its receipts will name.
    pub message_id: Option<String>,
    /// `submitted`, or `delivered` when the provider delivers on the spot.
    pub status: DeliveryStatus,
}

/// Why a provider did not take a message, judged by the [`CauseMap`](gerbang_domain::delivery::CauseMap)
/// from its raw answer (an SMPP `command_status`, an HTTP status and error code, an SMTP reply), or
/// by the courier when nothing answered (a timeout, a refused connection: `ProviderError`,
/// `Retry::SameRoute`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOffFailure {
    pub cause: Cause,
    /// Whether trying again can help: on this provider later, on another provider, or not at all.
    pub retry: Retry,
    /// The provider's raw words for staff (`command_status 0x58`, `HTTP 400 code 131026`, `550 5.1.1
    /// ...`). Never the message text, never the code.
    pub detail: String,
    /// The refusal is about this message's destination alone (an SMSC's queue full or throttling
    /// for that number), whatever its cause says: it does not count against the provider's circuit.
    pub about_destination: bool,
}

impl HandOffFailure {
    pub fn new(cause: Cause, retry: Retry, detail: impl Into<String>) -> Self {
        Self {
            cause,
            retry,
            detail: detail.into(),
            about_destination: false,
        }
    }

    /// Marks the refusal as about this destination alone (see `about_destination`).
    pub fn for_destination(mut self) -> Self {
        self.about_destination = true;
        self
    }

    /// Nothing answered, or the answer made no sense: worth another try, here or elsewhere.
    pub fn unreachable(detail: impl Into<String>) -> Self {
        Self::new(Cause::ProviderError, Retry::SameRoute, detail)
    }

    /// Our configuration cannot carry this message (wrong channel, no content): another route may.
    pub fn misconfigured(detail: impl Into<String>) -> Self {
        Self::new(Cause::ProviderMisconfigured, Retry::OtherRoute, detail)
    }
}

impl std::fmt::Display for HandOffFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.cause.as_str())
    }
}

/// A provider of one or more channels.
pub trait Courier: Send + Sync + 'static {
    /// The provider's name in the delivery trail and the logs (`dev_inbox`, `smpp:telkomsel`).
    fn name(&self) -> &str;

    /// Its own limits on throughput, for the queue estimate; none by default.
    fn capacity(&self) -> Capacity {
        Capacity::default()
    }

    /// Hands one message over. The caller (the delivery worker) records every failure in the
    /// delivery trail and decides, from its `retry`, whether to fail over or retry later.
    fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<HandOff, HandOffFailure>> + Send;
}

/// The development inbox: "sends" by keeping the message, which the store lists and the dev page
/// shows. Nothing leaves the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevInbox;

impl Courier for DevInbox {
    fn name(&self) -> &str {
        "dev_inbox"
    }

    async fn hand_off(
        &self,
        _message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        Ok(HandOff {
            at: now,
            message_id: None,
            status: DeliveryStatus::Delivered,
        })
    }
}

/// The provider named in the trail when no route carries a message.
const NO_ROUTE: &str = "none";
const EXPIRED_IN_QUEUE: &str = "the code expired while the message was queued";
const NO_TIME_LEFT: &str = "no provider took it before its code expired";
const BUDGET_SPENT: &str = "every provider that could carry it has spent its daily budget";
/// The provider named in the trail's line for a message gerbang gave up on (cause `not_sent`).
const GIVEN_UP: &str = "gerbang";

/// The trail's line for a message dropped because it could not go out in time: the participant
/// and staff see that it was not sent and why, not the last refusal's "wait".
fn given_up(reason: &str, at: DateTime<Utc>) -> FailedTry {
    FailedTry {
        provider: GIVEN_UP.into(),
        at,
        cause: Cause::NotSent,
        detail: reason.into(),
    }
}

/// One provider in the ordered list of the channels it carries, with its circuit breaker.
#[derive(Debug)]
pub struct Route<C> {
    pub courier: C,
    /// The channels it carries; empty: every channel (the dev inbox).
    pub channels: Vec<Channel>,
    /// The operators whose numbers it carries; empty: every operator (and email addresses).
    pub operators: Vec<Operator>,
    breaker: Mutex<CircuitBreaker>,
}

impl<C: Courier> Route<C> {
    pub fn new(courier: C, channels: Vec<Channel>) -> Self {
        Self {
            courier,
            channels,
            operators: Vec::new(),
            breaker: Mutex::new(CircuitBreaker::new(CircuitPolicy::default())),
        }
    }

    /// Only numbers of these operators (e.g. a direct bind to Telkomsel's SMSC).
    pub fn for_operators(mut self, operators: Vec<Operator>) -> Self {
        self.operators = operators;
        self
    }

    pub fn with_circuit(mut self, policy: CircuitPolicy) -> Self {
        self.breaker = Mutex::new(CircuitBreaker::new(policy));
        self
    }

    /// Whether this route carries the message's channel to its destination's operator.
    pub fn carries(&self, message: &OutboxMessage) -> bool {
        let channel = self.channels.is_empty() || self.channels.contains(&message.channel);
        let operator = match &message.destination {
            _ if self.operators.is_empty() => true,
            Destination::Phone(number) => self.operators.contains(&number.operator()),
            Destination::Email(_) => false,
        };
        channel && operator
    }

    /// Where the provider's circuit stands (for health and metrics).
    pub fn circuit(&self) -> CircuitState {
        self.breaker().state()
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, CircuitBreaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long a message that no route took waits before the next round: `first`, doubling each round
/// up to `max`, each wait drawn uniformly from its upper half (jitter, so that messages refused
/// together do not all come back together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: chrono::Duration,
    pub max: chrono::Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first: chrono::Duration::seconds(5),
            max: chrono::Duration::seconds(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after `rounds` earlier failed rounds (0: the first failure).
    pub fn wait(&self, rounds: u32) -> chrono::Duration {
        let full = (self.first * (1_i32 << rounds.min(16))).min(self.max);
        let millis = full.num_milliseconds().max(1);
        let drawn = rand::rng().random_range(millis / 2..=millis);
        chrono::Duration::milliseconds(drawn)
    }
}

/// Moves messages from the outbox to the providers.
#[derive(Debug)]
pub struct DeliveryWorker<S, C> {
    store: S,
    routes: Vec<Route<C>>,
    clock: Arc<dyn Clock>,
    /// Messages claimed per step.
    pub batch: u32,
    /// How long a claim lasts before another worker may take the message over.
    pub lease: chrono::Duration,
    /// Hand-offs in flight at once (an SMPP bind pipelines them through its window).
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Where hand-offs, refusals, drops and circuit states are counted.
    pub metrics: Arc<Metrics>,
    /// Where the routes' response times and the worker's throughput go, for the queue estimate.
    pace: Arc<DeliveryPace>,
    /// The providers' daily budgets: a provider that has spent its own is skipped.
    budgets: Arc<Budgets>,
}

impl<S: Store, C: Courier> DeliveryWorker<S, C> {
    /// One provider for every channel.
    pub fn new(store: S, courier: C, clock: Arc<dyn Clock>) -> Self {
        Self::with_routes(store, vec![Route::new(courier, Vec::new())], clock)
    }

    /// Routes in the order they are tried.
    pub fn with_routes(store: S, routes: Vec<Route<C>>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            routes,
            clock,
            batch: 256,
            lease: chrono::Duration::seconds(30),
            concurrency: 32,
            retry: RetryPolicy::default(),
            metrics: Arc::default(),
            pace: Arc::default(),
            budgets: Arc::default(),
        }
    }

    /// Skips providers past their daily budget and counts hand-offs into `budgets` (shared with
    /// the engine).
    pub fn with_budgets(mut self, budgets: Arc<Budgets>) -> Self {
        self.budgets = budgets;
        self
    }

    /// Measures into `pace` (shared with the engine's queue estimate), with `concurrency` set.
    pub fn with_pace(mut self, pace: Arc<DeliveryPace>) -> Self {
        pace.register(&self.routes, self.concurrency);
        self.pace = pace;
        self
    }

    pub fn routes(&self) -> &[Route<C>] {
        &self.routes
    }

    /// One step: claims a batch, drops what expired, hands off the rest, records the outcomes.
    /// Returns how many messages it claimed.
    ///
    /// Outcomes are committed as they come, not once per batch: a crash then re-sends at most what
    /// was in flight, not everything the batch had sent. The commits run beside the hand-offs (the
    /// ones ready while a commit is under way go together in the next), so a slow writer does not
    /// hold the next hand-off back. A message whose claim is about to run out is not started:
    /// another worker may already be taking it over, and it is left to the next claim.
    pub async fn deliver_next(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_messages(self.batch, now, self.lease)
            .await?;
        let count = claimed.len();
        let start_by = now + self.lease / 2;
        let (finished, mut to_commit) =
            tokio::sync::mpsc::unbounded_channel::<Vec<(ClaimedMessage, MessageOutcome)>>();
        let hand_offs = async move {
            let mut outcomes = futures::stream::iter(claimed)
                .map(|message| async move {
                    if self.clock.now() >= start_by {
                        return None;
                    }
                    let outcome = self.deliver(&message).await;
                    Some((message, outcome))
                })
                .buffer_unordered(self.concurrency.max(1))
                .filter_map(std::future::ready)
                .ready_chunks(self.concurrency.max(1));
            let mut handed_off = 0;
            while let Some(chunk) = outcomes.next().await {
                for (claimed, outcome) in &chunk {
                    self.count(claimed, outcome);
                    handed_off += usize::from(matches!(outcome, MessageOutcome::HandedOff { .. }));
                }
                self.pace.step(now, self.clock.now(), count, handed_off);
                // The committer stopped on a store error: leave the rest to the lease.
                if finished.send(chunk).is_err() {
                    break;
                }
            }
        };
        // Owns the receiver, so that a store error stops the hand-offs too.
        let commits = async move {
            while let Some(mut batch) = to_commit.recv().await {
                while let Ok(more) = to_commit.try_recv() {
                    batch.extend(more);
                }
                self.store.finish_messages(batch).await?;
            }
            Ok::<(), StoreError>(())
        };
        let ((), committed) = tokio::join!(hand_offs, commits);
        committed?;
        for route in &self.routes {
            let open = !matches!(route.circuit(), CircuitState::Closed { .. });
            self.metrics.circuit(route.courier.name(), open);
            self.pace.circuit(route.courier.name(), open);
        }
        Ok(count)
    }

    fn count(&self, claimed: &ClaimedMessage, outcome: &MessageOutcome) {
        for failure in outcome.failures().iter().filter(|f| f.provider != GIVEN_UP) {
            self.metrics
                .refused(&failure.provider, failure.cause.as_str());
        }
        match outcome {
            MessageOutcome::HandedOff { provider, .. } => self
                .metrics
                .handed_off(provider, claimed.message.channel.as_str()),
            MessageOutcome::Deferred { .. } => self.metrics.deferred(),
            MessageOutcome::Dropped {
                reason, failures, ..
            } => {
                let code = if reason == EXPIRED_IN_QUEUE {
                    "expired_in_queue"
                } else if reason == NO_TIME_LEFT {
                    "no_time_left"
                } else if reason == BUDGET_SPENT {
                    "budget_spent"
                } else if failures.last().is_some_and(|f| f.provider == NO_ROUTE) {
                    "no_route"
                } else {
                    "refused"
                };
                self.metrics.dropped(code);
            }
        }
    }

    /// One round for one message: the routes in order until one takes it.
    async fn deliver(&self, claimed: &ClaimedMessage) -> MessageOutcome {
        let message = &claimed.message;
        let started = self.clock.now();
        if started >= message.expires_at {
            return MessageOutcome::Dropped {
                reason: EXPIRED_IN_QUEUE.into(),
                at: started,
                failures: vec![given_up(EXPIRED_IN_QUEUE, started)],
            };
        }
        let mut failures: Vec<FailedTry> = Vec::new();
        let mut worth_retrying = false;
        let mut reopens: Option<DateTime<Utc>> = None;
        let mut carried = false;
        let mut over_budget = false;
        for route in self.routes.iter().filter(|route| route.carries(message)) {
            carried = true;
            let now = self.clock.now();
            if !self.budgets.provider_open(route.courier.name(), now) {
                over_budget = true;
                continue;
            }
            if !route.breaker().try_pass(now) {
                worth_retrying = true;
                if let Some(at) = route.breaker().reopens_at() {
                    reopens = Some(reopens.map_or(at, |earliest| earliest.min(at)));
                }
                continue;
            }
            let name = route.courier.name();
            let sending = self.pace.sending(name);
            match route.courier.hand_off(message, now).await {
                Ok(handoff) => {
                    route.breaker().record_success();
                    self.pace.answered(&sending, self.clock.now() - now);
                    self.budgets.handed_off(message.channel, name, handoff.at);
                    return MessageOutcome::HandedOff {
                        provider: name.to_owned(),
                        at: handoff.at,
                        message_id: handoff.message_id,
                        status: handoff.status,
                        failures,
                    };
                }
                Err(failure) => {
                    let at = self.clock.now();
                    if failure.about_destination {
                        route.breaker().record_destination_refusal(at);
                    } else {
                        route.breaker().record_failure(failure.cause, at);
                    }
                    tracing::warn!(
                        outbox_id = claimed.id,
                        provider = name,
                        %failure,
                        "a provider refused a message"
                    );
                    let retry = failure.retry;
                    failures.push(FailedTry {
                        provider: name.to_owned(),
                        at,
                        cause: failure.cause,
                        detail: failure.detail,
                    });
                    match retry {
                        Retry::No => {
                            return MessageOutcome::Dropped {
                                reason: format!("{name} says no route can deliver it"),
                                at,
                                failures,
                            };
                        }
                        Retry::SameRoute => worth_retrying = true,
                        Retry::OtherRoute => {}
                    }
                }
            }
        }
        let now = self.clock.now();
        if !carried {
            let detail = format!(
                "no provider is configured to carry {} to this destination",
                message.channel.as_str()
            );
            failures.push(FailedTry {
                provider: NO_ROUTE.into(),
                at: now,
                cause: Cause::ProviderMisconfigured,
                detail: detail.clone(),
            });
            return MessageOutcome::Dropped {
                reason: detail,
                at: now,
                failures,
            };
        }
        if !worth_retrying && over_budget {
            failures.push(given_up(BUDGET_SPENT, now));
            return MessageOutcome::Dropped {
                reason: BUDGET_SPENT.into(),
                at: now,
                failures,
            };
        }
        if !worth_retrying {
            return MessageOutcome::Dropped {
                reason: "every provider refused it".into(),
                at: now,
                failures,
            };
        }
        let retry_at = (now + self.retry.wait(claimed.rounds)).max(reopens.unwrap_or(now));
        if retry_at >= message.expires_at {
            failures.push(given_up(NO_TIME_LEFT, now));
            return MessageOutcome::Dropped {
                reason: NO_TIME_LEFT.into(),
                at: now,
                failures,
            };
        }
        MessageOutcome::Deferred { retry_at, failures }
    }

    /// Runs until `shutdown` resolves: a step whenever messages are queued, else a short nap.
    pub async fn run(self, wake: Arc<Notify>, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        loop {
            let pause = match self.deliver_next().await {
                Ok(claimed) if claimed as u32 >= self.batch => Duration::ZERO,
                Ok(_) => Duration::from_millis(500),
                Err(error) => {
                    tracing::error!(%error, "delivery step failed");
                    Duration::from_secs(1)
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
