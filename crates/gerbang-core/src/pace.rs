//! How fast the outbox drains, for the wait a participant in the queue is told.
//!
//! The last minute's hand-offs say nothing at the start of a burst (a quiet minute before it makes the
//! estimate 40–90× too long), so the rate comes from what the routes can carry now: each route's
//! declared limits (an SMPP bind's window and submits per second) and its measured response time,
//! capped by the worker's hand-offs in flight. Once the worker has been draining a full queue for a
//! while, the rate it actually reached (over the last [`OBSERVED`]) replaces the reckoning, so the
//! estimate follows a provider that slows down or throttles as the burst drains.
//!
//! One instance's worker is measured: with several instances sharing the outbox the queue drains
//! faster than this says (the estimate errs long).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use gerbang_domain::Operator;
use gerbang_domain::verification::{Channel, Destination};

use crate::delivery::{Courier, Route};

/// How far back the worker's own throughput is looked at.
pub const OBSERVED: chrono::Duration = chrono::Duration::seconds(10);
/// Busy time the worker must have spent on a full queue within [`OBSERVED`] before its measured
/// throughput replaces the reckoning from the routes' limits.
const ENOUGH_BUSY_SECONDS: f64 = 1.0;
/// Weight of the newest response time in the running average.
const RESPONSE_WEIGHT: f64 = 0.2;

/// What a provider declares about its own throughput; `None`: no limit of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    /// Hand-offs it keeps outstanding at once (an SMPP bind's window).
    pub window: Option<usize>,
    /// Hand-offs per second it allows (an SMPP bind's `max_per_second`, an operator's TPS).
    pub per_second: Option<f64>,
}

#[derive(Debug)]
struct RoutePace {
    name: String,
    channels: Vec<Channel>,
    operators: Vec<Operator>,
    capacity: Capacity,
    /// Running average of how long a successful hand-off takes the provider itself, in seconds:
    /// the time measured, less the share spent queueing inside the courier behind its window.
    response: Option<f64>,
    open: bool,
    /// Hand-offs under way now.
    in_flight: usize,
}

impl RoutePace {
    /// The same test as [`Route::carries`], for a destination rather than a queued message.
    fn carries(&self, channel: Channel, destination: &Destination) -> bool {
        let by_channel = self.channels.is_empty() || self.channels.contains(&channel);
        let by_operator = match destination {
            _ if self.operators.is_empty() => true,
            Destination::Phone(number) => self.operators.contains(&number.operator()),
            Destination::Email(_) => false,
        };
        by_channel && by_operator
    }

    /// Hand-offs per second this route can take now, with `slots` of them in flight at most.
    fn rate(&self, slots: usize) -> Option<f64> {
        let in_flight = self.capacity.window.unwrap_or(slots).min(slots).max(1) as f64;
        let by_response = self
            .response
            .filter(|seconds| *seconds > 0.0)
            .map(|seconds| in_flight / seconds);
        match (self.capacity.per_second, by_response) {
            (Some(cap), Some(reached)) => Some(cap.min(reached)),
            (cap, reached) => cap.or(reached),
        }
    }
}

/// A hand-off under way, from [`DeliveryPace::sending`].
#[derive(Debug)]
pub struct Sending<'a> {
    pace: &'a DeliveryPace,
    route: Option<usize>,
    /// Hand-offs under way on its route when it began, itself included.
    in_flight: usize,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        let mut inner = self.pace.inner();
        if let Some(route) = self.route.and_then(|index| inner.routes.get_mut(index)) {
            route.in_flight = route.in_flight.saturating_sub(1);
        }
    }
}

/// A worker step that had more messages than hand-off slots: its throughput is the capacity.
#[derive(Debug, Clone, Copy)]
struct Step {
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
    busy_seconds: f64,
    handed_off: u64,
}

#[derive(Debug, Default)]
struct Inner {
    routes: Vec<RoutePace>,
    concurrency: usize,
    saturated: VecDeque<Step>,
}

/// What the operator's console shows of one delivery route.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderState {
    pub name: String,
    pub channels: Vec<Channel>,
    pub operators: Vec<Operator>,
    /// The circuit is open: the provider takes nothing now.
    pub open: bool,
    /// The provider's own hand-off time, a running average in seconds, once measured.
    pub response_seconds: Option<f64>,
    pub in_flight: usize,
}

/// Shared by the delivery worker, which measures, and the engine, which tells the estimate.
#[derive(Debug, Default)]
pub struct DeliveryPace {
    inner: Mutex<Inner>,
}

impl DeliveryPace {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker's routes, in order, and its hand-offs in flight at most.
    pub fn register<C: Courier>(&self, routes: &[Route<C>], concurrency: usize) {
        let mut inner = self.inner();
        inner.concurrency = concurrency.max(1);
        inner.routes = routes
            .iter()
            .map(|route| RoutePace {
                name: route.courier.name().to_owned(),
                channels: route.channels.clone(),
                operators: route.operators.clone(),
                capacity: route.courier.capacity(),
                response: None,
                open: false,
                in_flight: 0,
            })
            .collect();
    }

    /// Every route as it stands now, in the worker's order.
    pub fn providers(&self) -> Vec<ProviderState> {
        self.inner()
            .routes
            .iter()
            .map(|route| ProviderState {
                name: route.name.clone(),
                channels: route.channels.clone(),
                operators: route.operators.clone(),
                open: route.open,
                response_seconds: route.response,
                in_flight: route.in_flight,
            })
            .collect()
    }

    /// A hand-off to `provider` begins; it ends when the returned guard is dropped.
    pub fn sending(&self, provider: &str) -> Sending<'_> {
        let mut inner = self.inner();
        let route = inner.routes.iter().position(|route| route.name == provider);
        let in_flight = match route.and_then(|index| inner.routes.get_mut(index)) {
            Some(route) => {
                route.in_flight += 1;
                route.in_flight
            }
            None => 1,
        };
        Sending {
            pace: self,
            route,
            in_flight,
        }
    }

    /// The provider of `sending` took its message after `took`.
    pub fn answered(&self, sending: &Sending<'_>, took: chrono::Duration) {
        let seconds = took.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        if seconds <= 0.0 {
            return;
        }
        let mut inner = self.inner();
        let Some(route) = sending.route.and_then(|index| inner.routes.get_mut(index)) else {
            return;
        };
        // With more under way than the window holds, the hand-off also waited for a place in it
        // (and for the rate cap): by Little's law the provider's own time is the window's share.
        let in_flight = sending.in_flight.max(1);
        let window = route
            .capacity
            .window
            .unwrap_or(in_flight)
            .clamp(1, in_flight);
        let own = seconds * window as f64 / in_flight as f64;
        route.response = Some(match route.response {
            Some(average) => average + RESPONSE_WEIGHT * (own - average),
            None => own,
        });
    }

    /// Whether `provider`'s circuit is open (it takes nothing now).
    pub fn circuit(&self, provider: &str, open: bool) {
        let mut inner = self.inner();
        if let Some(route) = inner.routes.iter_mut().find(|route| route.name == provider) {
            route.open = open;
        }
    }

    /// One worker step from `started` to `ended`: `claimed` messages, `handed_off` of them taken.
    /// Called again with the same `started` as the step goes on, it updates that step, so a long
    /// step counts while it runs.
    pub fn step(
        &self,
        started: DateTime<Utc>,
        ended: DateTime<Utc>,
        claimed: usize,
        handed_off: usize,
    ) {
        let mut inner = self.inner();
        // Fewer messages than slots: the arrivals set the pace, not the routes.
        if claimed < inner.concurrency.max(1) {
            return;
        }
        let busy_seconds = (ended - started).num_microseconds().unwrap_or(0) as f64 / 1e6;
        if busy_seconds <= 0.0 {
            return;
        }
        let step = Step {
            started,
            ended,
            busy_seconds,
            handed_off: handed_off as u64,
        };
        match inner.saturated.back_mut() {
            Some(last) if last.started == started => *last = step,
            _ => inner.saturated.push_back(step),
        }
        prune(&mut inner.saturated, ended);
    }

    /// Messages per second the queue drains at for a message on `channel` to `destination`, as far
    /// as it can be told now; `None` when it cannot (no route would take it, nothing is known).
    pub fn rate(
        &self,
        channel: Channel,
        destination: &Destination,
        now: DateTime<Utc>,
    ) -> Option<f64> {
        self.rate_to(channel, Some(destination), now)
    }

    /// The same for any destination on `channel`: the first open route carrying the channel, for
    /// whichever operators (what the health page shows).
    pub fn channel_rate(&self, channel: Channel, now: DateTime<Utc>) -> Option<f64> {
        self.rate_to(channel, None, now)
    }

    fn rate_to(
        &self,
        channel: Channel,
        destination: Option<&Destination>,
        now: DateTime<Utc>,
    ) -> Option<f64> {
        let mut inner = self.inner();
        prune(&mut inner.saturated, now);
        let busy: f64 = inner.saturated.iter().map(|step| step.busy_seconds).sum();
        let handed_off: u64 = inner.saturated.iter().map(|step| step.handed_off).sum();
        if busy >= ENOUGH_BUSY_SECONDS && handed_off > 0 {
            return Some(handed_off as f64 / busy);
        }
        let slots = inner.concurrency.max(1);
        inner
            .routes
            .iter()
            .filter(|route| match destination {
                Some(destination) => route.carries(channel, destination),
                None => route.channels.is_empty() || route.channels.contains(&channel),
            })
            .find(|route| !route.open)
            .and_then(|route| route.rate(slots))
            .filter(|rate| rate.is_finite() && *rate > 0.0)
    }

    /// The names of the routes that carry `channel` to `destination`, in the worker's order.
    pub fn carriers(&self, channel: Channel, destination: &Destination) -> Vec<String> {
        self.inner()
            .routes
            .iter()
            .filter(|route| route.carries(channel, destination))
            .map(|route| route.name.clone())
            .collect()
    }
}

fn prune(steps: &mut VecDeque<Step>, now: DateTime<Utc>) {
    while steps
        .front()
        .is_some_and(|step| step.ended < now - OBSERVED)
    {
        steps.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{HandOff, HandOffFailure};
    use gerbang_domain::MobileNumber;
    use gerbang_store::OutboxMessage;

    struct Limited(Capacity);

    impl Courier for Limited {
        fn name(&self) -> &str {
            "smpp:test"
        }

        fn capacity(&self) -> Capacity {
            self.0
        }

        async fn hand_off(
            &self,
            _message: &OutboxMessage,
            _now: DateTime<Utc>,
        ) -> Result<HandOff, HandOffFailure> {
            Err(HandOffFailure::unreachable("not used"))
        }
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_790_000_000_000 + ms).unwrap_or_default()
    }

    fn phone() -> Destination {
        Destination::Phone(MobileNumber::parse("081234567890").unwrap())
    }

    fn pace(capacity: Capacity) -> DeliveryPace {
        let pace = DeliveryPace::default();
        pace.register(&[Route::new(Limited(capacity), vec![Channel::Sms])], 32);
        pace
    }

    #[test]
    fn the_rate_cap_and_the_window_over_the_response_time_bound_the_rate() {
        let pace = pace(Capacity {
            window: Some(10),
            per_second: Some(30.0),
        });
        // Before any hand-off: the declared cap.
        assert_eq!(pace.rate(Channel::Sms, &phone(), at(0)), Some(30.0));
        // 10 in flight, 0.5 s each: 20/s, below the cap.
        pace.answered(
            &pace.sending("smpp:test"),
            chrono::Duration::milliseconds(500),
        );
        assert_eq!(pace.rate(Channel::Sms, &phone(), at(0)), Some(20.0));
        // No route for email; an open circuit takes nothing.
        let email = Destination::Email(gerbang_domain::Email::parse("a@example.id").unwrap());
        assert_eq!(pace.rate(Channel::Email, &email, at(0)), None);
        pace.circuit("smpp:test", true);
        assert_eq!(pace.rate(Channel::Sms, &phone(), at(0)), None);
    }

    #[test]
    fn without_declared_limits_the_workers_slots_over_the_response_time_bound_it() {
        let pace = pace(Capacity::default());
        assert_eq!(pace.rate(Channel::Sms, &phone(), at(0)), None);
        pace.answered(
            &pace.sending("smpp:test"),
            chrono::Duration::milliseconds(100),
        );
        assert_eq!(pace.rate(Channel::Sms, &phone(), at(0)), Some(320.0));
    }

    #[test]
    fn time_spent_queueing_behind_the_window_is_not_the_providers() {
        let pace = pace(Capacity {
            window: Some(10),
            per_second: None,
        });
        // 20 under way through a window of 10, each answered after 0.4 s: the provider takes 0.2 s,
        // 10 at a time: 50/s (20 / 0.4 s, what the bind carried).
        let sending: Vec<_> = (0..20).map(|_| pace.sending("smpp:test")).collect();
        let last = sending.last().unwrap();
        pace.answered(last, chrono::Duration::milliseconds(400));
        let rate = pace.rate(Channel::Sms, &phone(), at(0)).unwrap();
        assert!((rate - 50.0).abs() < 1e-9, "{rate}");
        drop(sending);
        // Back to one at a time: its 0.2 s answer counts whole.
        pace.answered(
            &pace.sending("smpp:test"),
            chrono::Duration::milliseconds(200),
        );
        let rate = pace.rate(Channel::Sms, &phone(), at(0)).unwrap();
        assert!((rate - 50.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn a_drained_full_queue_replaces_the_reckoning_and_ages_out() {
        let pace = pace(Capacity {
            window: Some(10),
            per_second: Some(30.0),
        });
        // A step with fewer messages than slots says nothing about capacity.
        pace.step(at(0), at(2_000), 5, 5);
        assert_eq!(pace.rate(Channel::Sms, &phone(), at(2_000)), Some(30.0));
        // Full steps: 40 taken in 4 s, the provider throttling: 10/s.
        pace.step(at(2_000), at(4_000), 256, 20);
        pace.step(at(4_000), at(5_000), 236, 5);
        // The second step goes on: counted as it runs.
        pace.step(at(4_000), at(6_000), 236, 20);
        assert_eq!(pace.rate(Channel::Sms, &phone(), at(6_000)), Some(10.0));
        // Ten seconds on, the measurement is too old to hold.
        assert_eq!(pace.rate(Channel::Sms, &phone(), at(16_500)), Some(30.0));
    }
}
