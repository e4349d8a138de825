//! Admission under load: on a peak day (the wage-subsidy rush, "server sedang sibuk") the outbox can
//! fill faster than the providers drain it. A code that waits in the queue longer than its hard cap
//! is dropped unsent, so queuing it only makes a participant wait for nothing. Instead, when the
//! wait a new code would have passes a share of that cap, new codes are refused (`queue_full`, with
//! a time to try again) — the least urgent first: a registration can wait for tomorrow, a login less
//! so, and a transaction someone is confirming right now least of all.
//!
//! Pure rules: the estimated wait is passed in.

use chrono::Duration;
use serde::Deserialize;

use super::purpose::Purpose;

/// How urgent a code is, for admission; the order is the configuration's, not this enum's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Urgency {
    /// Creating an account: nobody loses anything by coming back later.
    Registration,
    /// Signing in on a new device, recovering a password, changing a contact.
    Login,
    /// A step-up confirming one sensitive action (a bank account change, a claim).
    Transaction,
}

impl Urgency {
    pub const ALL: [Urgency; 3] = [Self::Registration, Self::Login, Self::Transaction];

    pub fn of(purpose: Purpose) -> Self {
        match purpose {
            Purpose::Registration => Self::Registration,
            Purpose::LoginNewDevice
            | Purpose::Recovery
            | Purpose::ContactChangeAuthorisation
            | Purpose::ContactChangeProof => Self::Login,
            Purpose::StepUp => Self::Transaction,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Login => "login",
            Self::Transaction => "transaction",
        }
    }
}

/// When new codes are refused; every setting has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionPolicy {
    /// Off: every code is queued however long the queue.
    pub enabled: bool,
    /// The longest queue wait, in percent of the code's hard cap (`otp.hard_cap_seconds`), at
    /// which a registration code is still accepted.
    pub registration_percent: u8,
    /// The same for sign-in, recovery and contact-change codes.
    pub login_percent: u8,
    /// The same for step-up codes confirming a transaction.
    pub transaction_percent: u8,
}

impl Default for AdmissionPolicy {
    fn default() -> Self {
        // With the default 10-minute cap: 3, 5 and 7 minutes of queue. Past 7 a code handed off
        // would have under 3 minutes left to be typed.
        Self {
            enabled: true,
            registration_percent: 30,
            login_percent: 50,
            transaction_percent: 70,
        }
    }
}

/// A new code would wait too long: refused, and when the queue should have room again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    /// The wait the code would have had.
    pub wait: Duration,
    /// How long until the queue has drained enough for this urgency, at the rate it drains now.
    pub retry_after: Duration,
}

impl AdmissionPolicy {
    fn percent(&self, urgency: Urgency) -> u8 {
        match urgency {
            Urgency::Registration => self.registration_percent,
            Urgency::Login => self.login_percent,
            Urgency::Transaction => self.transaction_percent,
        }
    }

    /// The longest queue wait a code of `urgency` is accepted with, for codes living `hard_cap`.
    pub fn longest_wait(&self, urgency: Urgency, hard_cap: Duration) -> Duration {
        let milliseconds =
            hard_cap.num_milliseconds().max(0) / 100 * i64::from(self.percent(urgency));
        Duration::milliseconds(milliseconds)
    }

    /// Whether a code of `urgency` that would wait `wait` in the queue is accepted.
    pub fn admit(
        &self,
        urgency: Urgency,
        wait: Duration,
        hard_cap: Duration,
    ) -> Result<(), QueueFull> {
        let longest = self.longest_wait(urgency, hard_cap);
        if !self.enabled || wait <= longest {
            return Ok(());
        }
        // Rounded up to whole seconds, at least one: a client told "in 0 s" retries at once.
        let over = (wait - longest).num_milliseconds();
        let seconds = (over + 999) / 1000;
        Err(QueueFull {
            wait,
            retry_after: Duration::seconds(seconds.max(1)),
        })
    }

    /// The key named when a setting cannot work.
    pub fn invalid(&self) -> Option<&'static str> {
        if !(1..=100).contains(&self.registration_percent) {
            Some("registration_percent")
        } else if !(1..=100).contains(&self.login_percent) {
            Some("login_percent")
        } else if !(1..=100).contains(&self.transaction_percent) {
            Some("transaction_percent")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAP: Duration = Duration::minutes(10);

    #[test]
    fn the_least_urgent_codes_are_refused_first() {
        let policy = AdmissionPolicy::default();
        let wait = Duration::minutes(4);
        let refused = policy
            .admit(Urgency::Registration, wait, CAP)
            .expect_err("4 of 10 minutes is past registration's 30 %");
        assert_eq!(refused.retry_after, Duration::minutes(1));
        assert_eq!(refused.wait, wait);
        assert_eq!(policy.admit(Urgency::Login, wait, CAP), Ok(()));
        assert_eq!(policy.admit(Urgency::Transaction, wait, CAP), Ok(()));
        // Past 7 minutes nothing new is queued.
        for urgency in Urgency::ALL {
            assert!(policy.admit(urgency, Duration::minutes(8), CAP).is_err());
        }
        // Off: everything is queued.
        let off = AdmissionPolicy {
            enabled: false,
            ..policy
        };
        assert_eq!(
            off.admit(Urgency::Registration, Duration::hours(1), CAP),
            Ok(())
        );
    }

    #[test]
    fn a_retry_after_is_whole_seconds_and_never_zero() {
        let policy = AdmissionPolicy::default();
        let just_over = Duration::minutes(3) + Duration::milliseconds(1);
        let refused = policy
            .admit(Urgency::Registration, just_over, CAP)
            .unwrap_err();
        assert_eq!(refused.retry_after, Duration::seconds(1));
    }

    #[test]
    fn every_purpose_has_an_urgency_and_step_ups_are_transactions() {
        assert_eq!(Urgency::of(Purpose::Registration), Urgency::Registration);
        assert_eq!(Urgency::of(Purpose::StepUp), Urgency::Transaction);
        for purpose in Purpose::ALL {
            let urgency = Urgency::of(purpose);
            assert!(Urgency::ALL.contains(&urgency));
        }
    }

    #[test]
    fn a_share_outside_one_to_a_hundred_is_named() {
        let bad = AdmissionPolicy {
            login_percent: 0,
            ..AdmissionPolicy::default()
        };
        assert_eq!(bad.invalid(), Some("login_percent"));
        let bad = AdmissionPolicy {
            transaction_percent: 101,
            ..AdmissionPolicy::default()
        };
        assert_eq!(bad.invalid(), Some("transaction_percent"));
        assert_eq!(AdmissionPolicy::default().invalid(), None);
    }

    proptest! {
        /// Admission is monotone: a code accepted with some wait is accepted with any shorter one,
        /// and with the default shares a more urgent code is accepted whenever a less urgent one is.
        #[test]
        fn admission_is_monotone_in_the_wait_and_in_urgency(
            shorter in 0i64..1_200_000,
            extra in 0i64..1_200_000,
            cap_seconds in 1i64..3_600,
        ) {
            let policy = AdmissionPolicy::default();
            let cap = Duration::seconds(cap_seconds);
            let short = Duration::milliseconds(shorter);
            let long = short + Duration::milliseconds(extra);
            for urgency in Urgency::ALL {
                if policy.admit(urgency, long, cap).is_ok() {
                    prop_assert!(policy.admit(urgency, short, cap).is_ok());
                }
            }
            for pair in Urgency::ALL.windows(2) {
                if policy.admit(pair[0], long, cap).is_ok() {
                    prop_assert!(policy.admit(pair[1], long, cap).is_ok());
                }
            }
            // A refusal's retry-after, once waited, brings the wait within the share.
            if let Err(refused) = policy.admit(Urgency::Login, long, cap) {
                prop_assert!(policy.admit(Urgency::Login, long - refused.retry_after, cap).is_ok());
            }
        }
    }
}
