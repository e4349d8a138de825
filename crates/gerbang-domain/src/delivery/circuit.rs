//! A circuit breaker per provider: after a run of provider-side failures the provider is skipped for
//! a while, so messages fail over at once instead of each waiting for a timeout; then one trial
//! message is let through, and its outcome closes the circuit again or opens it for longer.
//!
//! Only failures that say something about the provider count (it did not answer, is overloaded,
//! throttles, or is misconfigured). A wrong number or a full inbox is the destination's fault and
//! leaves the circuit alone. So does a refusal the provider says is about one destination (an SMSC's
//! queue full or throttling for that number, [`CircuitBreaker::record_destination_refusal`]): it
//! neither counts towards opening nor decides a trial, since anyone could otherwise stop every code
//! by asking codes for a few such numbers.

use chrono::{DateTime, Duration, Utc};

use super::Cause;

/// When a circuit opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitPolicy {
    /// Consecutive provider-side failures that open the circuit.
    pub failures_to_open: u32,
    /// How long it stays open the first time; every failed trial doubles it, up to `max_open`.
    pub open_for: Duration,
    pub max_open: Duration,
}

impl Default for CircuitPolicy {
    fn default() -> Self {
        Self {
            failures_to_open: 5,
            open_for: Duration::seconds(30),
            max_open: Duration::minutes(5),
        }
    }
}

/// Where a circuit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Messages flow; `failures` provider-side failures in a row so far.
    Closed { failures: u32 },
    /// Skipped until `until`; `opened` times in a row without a successful trial.
    Open { until: DateTime<Utc>, opened: u32 },
    /// One trial message is out; everything else is skipped until it ends.
    HalfOpen { opened: u32 },
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen { .. } => "half_open",
        }
    }
}

/// One provider's circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitBreaker {
    policy: CircuitPolicy,
    state: CircuitState,
}

impl CircuitBreaker {
    pub fn new(policy: CircuitPolicy) -> Self {
        Self {
            policy,
            state: CircuitState::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Whether a message may be handed to the provider now. An open circuit whose time is up lets
    /// exactly one caller through (the trial) and refuses the rest until that trial is recorded.
    pub fn try_pass(&mut self, now: DateTime<Utc>) -> bool {
        match self.state {
            CircuitState::Closed { .. } => true,
            CircuitState::Open { until, opened } if now >= until => {
                self.state = CircuitState::HalfOpen { opened };
                true
            }
            CircuitState::Open { .. } | CircuitState::HalfOpen { .. } => false,
        }
    }

    /// When the provider may be tried again, if it is skipped now.
    pub fn reopens_at(&self) -> Option<DateTime<Utc>> {
        match self.state {
            CircuitState::Open { until, .. } => Some(until),
            _ => None,
        }
    }

    /// The provider took a message (or refused it for the destination's sake: it answered).
    pub fn record_success(&mut self) {
        self.state = CircuitState::Closed { failures: 0 };
    }

    /// The provider refused one message for a reason about its destination alone (an SMSC whose
    /// queue for that number is full, or that throttles that number). It says nothing about the
    /// provider's health: a closed circuit keeps its count, and a trial refused this way is no
    /// verdict — the circuit stays open with its time up, so the next message is the trial.
    pub fn record_destination_refusal(&mut self, now: DateTime<Utc>) {
        if let CircuitState::HalfOpen { opened } = self.state {
            self.state = CircuitState::Open { until: now, opened };
        }
    }

    /// The provider failed a message for the given cause. Destination causes count as an answer.
    pub fn record_failure(&mut self, cause: Cause, now: DateTime<Utc>) {
        if !blames_provider(cause) {
            self.record_success();
            return;
        }
        self.state = match self.state {
            CircuitState::Closed { failures } if failures + 1 < self.policy.failures_to_open => {
                CircuitState::Closed {
                    failures: failures + 1,
                }
            }
            CircuitState::Closed { .. } => self.open(now, 0),
            CircuitState::HalfOpen { opened } => self.open(now, opened),
            // A hand-off that started before the circuit opened: it stays open as it is.
            open @ CircuitState::Open { .. } => open,
        };
    }

    fn open(&self, now: DateTime<Utc>, opened_before: u32) -> CircuitState {
        let factor = 1_i32 << opened_before.min(16);
        let open_for = (self.policy.open_for * factor).min(self.policy.max_open);
        CircuitState::Open {
            until: now + open_for,
            opened: opened_before + 1,
        }
    }
}

/// Whether a failure with this cause says the provider (not the destination) is in trouble.
pub fn blames_provider(cause: Cause) -> bool {
    matches!(
        cause,
        Cause::ProviderError
            | Cause::ProviderOverloaded
            | Cause::ProviderThrottled
            | Cause::ProviderMisconfigured
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn opens_after_the_configured_run_of_provider_failures_and_not_before() {
        let mut breaker = CircuitBreaker::new(CircuitPolicy::default());
        for _ in 0..4 {
            breaker.record_failure(Cause::ProviderError, at(0));
            assert!(breaker.try_pass(at(0)));
        }
        breaker.record_failure(Cause::ProviderOverloaded, at(1));
        assert_eq!(
            breaker.state(),
            CircuitState::Open {
                until: at(31),
                opened: 1
            }
        );
        assert!(!breaker.try_pass(at(30)));
        assert_eq!(breaker.reopens_at(), Some(at(31)));
    }

    #[test]
    fn destination_failures_do_not_count_and_reset_the_run() {
        let mut breaker = CircuitBreaker::new(CircuitPolicy::default());
        for _ in 0..4 {
            breaker.record_failure(Cause::ProviderError, at(0));
        }
        breaker.record_failure(Cause::InvalidNumber, at(0));
        breaker.record_failure(Cause::ProviderError, at(0));
        assert_eq!(breaker.state(), CircuitState::Closed { failures: 1 });
    }

    #[test]
    fn after_the_open_time_exactly_one_trial_passes() {
        let mut breaker = CircuitBreaker::new(CircuitPolicy {
            failures_to_open: 1,
            ..CircuitPolicy::default()
        });
        breaker.record_failure(Cause::ProviderError, at(0));
        assert!(breaker.try_pass(at(30)));
        assert!(!breaker.try_pass(at(30)));
        assert!(!breaker.try_pass(at(40)));
        breaker.record_success();
        assert!(breaker.try_pass(at(40)));
        assert_eq!(breaker.state(), CircuitState::Closed { failures: 0 });
    }

    #[test]
    fn refusals_about_one_destination_neither_open_the_circuit_nor_decide_a_trial() {
        let mut breaker = CircuitBreaker::new(CircuitPolicy::default());
        breaker.record_failure(Cause::ProviderError, at(0));
        for _ in 0..20 {
            breaker.record_destination_refusal(at(0));
            assert!(breaker.try_pass(at(0)));
        }
        assert_eq!(breaker.state(), CircuitState::Closed { failures: 1 });

        // Opened by real failures; the trial is a number the provider refuses: not a verdict, the
        // next message is the trial, and the open time does not double.
        for _ in 0..4 {
            breaker.record_failure(Cause::ProviderError, at(1));
        }
        assert_eq!(breaker.reopens_at(), Some(at(31)));
        assert!(breaker.try_pass(at(31)));
        breaker.record_destination_refusal(at(32));
        assert!(breaker.try_pass(at(32)), "the next message is the trial");
        assert!(!breaker.try_pass(at(32)), "one trial at a time");
        breaker.record_success();
        assert_eq!(breaker.state(), CircuitState::Closed { failures: 0 });

        // A failed trial after a released one doubles once, from the first opening.
        for _ in 0..5 {
            breaker.record_failure(Cause::ProviderError, at(40));
        }
        assert!(breaker.try_pass(at(70)));
        breaker.record_destination_refusal(at(70));
        assert!(breaker.try_pass(at(71)));
        breaker.record_failure(Cause::ProviderError, at(71));
        assert_eq!(breaker.reopens_at(), Some(at(131)), "60 s, not 120 s");
    }

    #[test]
    fn a_failed_trial_opens_for_twice_as_long_up_to_the_cap() {
        let mut breaker = CircuitBreaker::new(CircuitPolicy {
            failures_to_open: 1,
            open_for: Duration::seconds(30),
            max_open: Duration::seconds(100),
        });
        breaker.record_failure(Cause::ProviderError, at(0));
        assert!(breaker.try_pass(at(30)));
        breaker.record_failure(Cause::ProviderError, at(30));
        assert_eq!(breaker.reopens_at(), Some(at(90)));
        assert!(breaker.try_pass(at(90)));
        breaker.record_failure(Cause::ProviderError, at(90));
        assert_eq!(breaker.reopens_at(), Some(at(190)), "capped at 100 s");
    }
}
