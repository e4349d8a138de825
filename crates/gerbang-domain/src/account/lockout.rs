//! Lockout after failed passwords (SPEC §3, seed 004): after `failures_before_lock` wrong passwords
//! in a row a temporary lock (30 minutes by default) that doubles with each repetition, and after
//! `temporary_locks_before_permanent` temporary locks a permanent one that only a branch officer
//! lifts. A right password clears the run of failures; temporary locks are forgiven once
//! `forgive_after` has passed since the last one.
//!
//! While a lock holds, attempts are refused before the password is looked at, so they neither count
//! nor reveal whether the password was right.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::explain::Explain;
use crate::identity::IndonesianTimeZone;

/// The numbers of the lockout rule. Defaults: 5 failures, 30 minutes doubling, permanent after 3
/// temporary locks, temporary locks forgiven after 24 hours without one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutPolicy {
    pub failures_before_lock: u32,
    pub first_lock_minutes: i64,
    /// Upper bound on one temporary lock, however often it has grown.
    pub max_lock_minutes: i64,
    /// The lock after this many temporary ones is permanent; 0 never locks permanently.
    pub temporary_locks_before_permanent: u32,
    pub forgive_after_hours: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            failures_before_lock: 5,
            first_lock_minutes: 30,
            max_lock_minutes: 24 * 60,
            temporary_locks_before_permanent: 3,
            forgive_after_hours: 24,
        }
    }
}

impl LockoutPolicy {
    /// How long the `nth` temporary lock (1-based) lasts.
    pub fn lock_length(&self, nth: u32) -> Duration {
        let doublings = nth.saturating_sub(1).min(20);
        let minutes = self
            .first_lock_minutes
            .saturating_mul(1_i64 << doublings)
            .min(self.max_lock_minutes);
        Duration::minutes(minutes.max(1))
    }
}

/// Where an account stands against the lockout rule; stored with the account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginGuard {
    consecutive_failures: u32,
    temporary_locks: u32,
    last_lock_at: Option<DateTime<Utc>>,
    locked_until: Option<DateTime<Utc>>,
    permanent: bool,
}

/// Why a login may not be tried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// Until this instant.
    Temporarily { until: DateTime<Utc> },
    /// Until a branch officer lifts it.
    Permanently,
}

/// A lock told to the participant: when it ends on their clock, or where to go. Show it only to a
/// caller who has proven the password or an OTP (SPEC §3), never to a stranger probing NIKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockNotice {
    pub locked: Locked,
    pub zone: IndonesianTimeZone,
}

impl Explain for LockNotice {
    fn code(&self) -> &'static str {
        match self.locked {
            Locked::Temporarily { .. } => "account_locked_temporarily",
            Locked::Permanently => "account_locked_permanently",
        }
    }

    fn message_id(&self) -> String {
        match self.locked {
            Locked::Temporarily { until } => format!(
                "Akun Anda terkunci sementara karena kata sandi salah dimasukkan berkali-kali. \
                 Coba lagi setelah pukul {}, atau pulihkan kata sandi Anda.",
                self.zone.format_until(until, false)
            ),
            Locked::Permanently => "Akun Anda terblokir karena kata sandi berulang kali salah. \
                 Datanglah ke kantor cabang terdekat dengan membawa KTP untuk verifikasi identitas \
                 dan pembukaan blokir."
                .into(),
        }
    }

    fn message_en(&self) -> String {
        match self.locked {
            Locked::Temporarily { until } => format!(
                "Your account is temporarily locked after too many wrong passwords. Try again \
                 after {}, or recover your password.",
                self.zone.format_until(until, true)
            ),
            Locked::Permanently => "Your account is blocked after repeated wrong passwords. \
                 Visit the nearest branch office with your KTP to verify your identity and have \
                 it unblocked."
                .into(),
        }
    }
}

/// A change of lock state, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockEvent {
    /// The `nth` temporary lock began.
    TemporaryLock {
        nth: u32,
        until: DateTime<Utc>,
    },
    PermanentLock,
    /// A branch officer lifted the lock.
    Lifted,
}

impl LoginGuard {
    /// Whether a password may be tried at `now`.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), Locked> {
        if self.permanent {
            return Err(Locked::Permanently);
        }
        match self.locked_until {
            Some(until) if now < until => Err(Locked::Temporarily { until }),
            _ => Ok(()),
        }
    }

    /// Wrong passwords counted since the last right one or the last lock.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Counts a wrong password tried at `now` (the caller has passed [`Self::check`]); returns the
    /// lock it starts, if any.
    pub fn record_failure(
        &mut self,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> Option<LockEvent> {
        if self.check(now).is_err() {
            return None;
        }
        self.forgive(now, policy);
        self.consecutive_failures += 1;
        if self.consecutive_failures < policy.failures_before_lock.max(1) {
            return None;
        }
        self.consecutive_failures = 0;
        self.last_lock_at = Some(now);
        let permanent_at = policy.temporary_locks_before_permanent;
        if permanent_at > 0 && self.temporary_locks >= permanent_at {
            self.permanent = true;
            self.locked_until = None;
            return Some(LockEvent::PermanentLock);
        }
        self.temporary_locks += 1;
        let until = now + policy.lock_length(self.temporary_locks);
        self.locked_until = Some(until);
        Some(LockEvent::TemporaryLock {
            nth: self.temporary_locks,
            until,
        })
    }

    /// A right password at `now`: the run of failures ends.
    pub fn record_success(&mut self, now: DateTime<Utc>, policy: &LockoutPolicy) {
        self.forgive(now, policy);
        self.consecutive_failures = 0;
    }

    /// The participant proved themselves by an OTP and chose a new password (recovery): the run of
    /// failures and a temporary lock end. A permanent lock stays: only a branch officer lifts it.
    pub fn recovered(&mut self) {
        if !self.permanent {
            self.consecutive_failures = 0;
            self.locked_until = None;
        }
    }

    /// A branch officer lifts any lock, after checking the participant's identity.
    pub fn lift(&mut self) -> Option<LockEvent> {
        let was_locked = self.permanent || self.locked_until.is_some();
        *self = Self::default();
        was_locked.then_some(LockEvent::Lifted)
    }

    /// Temporary locks older than the forgiveness period no longer count towards a permanent one.
    fn forgive(&mut self, now: DateTime<Utc>, policy: &LockoutPolicy) {
        if let Some(last) = self.last_lock_at
            && !self.permanent
            && now - last >= Duration::hours(policy.forgive_after_hours)
        {
            self.temporary_locks = 0;
            self.last_lock_at = None;
            self.locked_until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T08:00:00+07:00")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn fail(guard: &mut LoginGuard, now: DateTime<Utc>, times: u32) -> Option<LockEvent> {
        let policy = LockoutPolicy::default();
        let mut last = None;
        for _ in 0..times {
            last = guard.record_failure(now, &policy);
        }
        last
    }

    #[test]
    fn five_failures_lock_for_thirty_minutes() {
        let mut guard = LoginGuard::default();
        let now = start();
        assert_eq!(fail(&mut guard, now, 4), None);
        assert!(guard.check(now).is_ok());
        let until = now + Duration::minutes(30);
        assert_eq!(
            fail(&mut guard, now, 1),
            Some(LockEvent::TemporaryLock { nth: 1, until })
        );
        assert_eq!(
            guard.check(now + Duration::minutes(29)),
            Err(Locked::Temporarily { until })
        );
        assert!(guard.check(until).is_ok());
    }

    #[test]
    fn a_right_password_ends_the_run_of_failures() {
        let mut guard = LoginGuard::default();
        let now = start();
        fail(&mut guard, now, 4);
        guard.record_success(now, &LockoutPolicy::default());
        assert_eq!(fail(&mut guard, now, 4), None);
        assert_eq!(guard.consecutive_failures(), 4);
    }

    #[test]
    fn locks_double_then_become_permanent() {
        let mut guard = LoginGuard::default();
        let mut now = start();
        for (nth, minutes) in [(1, 30), (2, 60), (3, 120)] {
            let until = now + Duration::minutes(minutes);
            assert_eq!(
                fail(&mut guard, now, 5),
                Some(LockEvent::TemporaryLock { nth, until })
            );
            now = until;
        }
        assert_eq!(fail(&mut guard, now, 5), Some(LockEvent::PermanentLock));
        assert_eq!(
            guard.check(now + Duration::days(365)),
            Err(Locked::Permanently)
        );
        assert_eq!(guard.lift(), Some(LockEvent::Lifted));
        assert!(guard.check(now).is_ok());
        assert_eq!(guard.lift(), None);
    }

    #[test]
    fn attempts_during_a_lock_are_not_counted() {
        let mut guard = LoginGuard::default();
        let now = start();
        fail(&mut guard, now, 5);
        assert_eq!(fail(&mut guard, now + Duration::minutes(1), 50), None);
        assert_eq!(guard.consecutive_failures(), 0);
        // After the lock, a fresh run of five is needed for the next one.
        let after = now + Duration::minutes(30);
        assert_eq!(fail(&mut guard, after, 4), None);
    }

    #[test]
    fn temporary_locks_are_forgiven_after_a_quiet_day() {
        let mut guard = LoginGuard::default();
        let mut now = start();
        fail(&mut guard, now, 5);
        now += Duration::hours(1);
        fail(&mut guard, now, 5);
        now += Duration::hours(25);
        let until = now + Duration::minutes(30);
        assert_eq!(
            fail(&mut guard, now, 5),
            Some(LockEvent::TemporaryLock { nth: 1, until })
        );
    }

    #[test]
    fn a_lock_is_told_on_the_participant_s_clock() {
        // 08:00 WIB is 01:00 UTC; the lock ends 01:30 UTC.
        let until = start() + Duration::minutes(30);
        let notice = |zone| LockNotice {
            locked: Locked::Temporarily { until },
            zone,
        };
        let wib = notice(IndonesianTimeZone::Wib);
        assert_eq!(wib.code(), "account_locked_temporarily");
        assert!(
            wib.message_id()
                .contains("pukul 08.30 WIB, 1 Desember 2026"),
            "{}",
            wib.message_id()
        );
        let wit = notice(IndonesianTimeZone::Wit);
        assert!(
            wit.message_en()
                .contains("after 10:30 WIT, 1 December 2026"),
            "{}",
            wit.message_en()
        );
        let permanent = LockNotice {
            locked: Locked::Permanently,
            zone: IndonesianTimeZone::Wita,
        };
        assert_eq!(permanent.code(), "account_locked_permanently");
        assert!(permanent.message_id().contains("kantor cabang"));
        // The documented messages are these, word for word.
        for notice in [wib, permanent] {
            crate::account::assert_documented(&notice);
        }
    }

    #[test]
    fn lock_length_is_capped() {
        let policy = LockoutPolicy::default();
        assert_eq!(policy.lock_length(30), Duration::minutes(24 * 60));
    }

    proptest! {
        /// For any sequence of attempts and time steps: no run of counted failures exceeds the
        /// limit without a lock, every lock is at least as long as the one before it (until
        /// forgiven), and once permanent the account stays locked.
        #[test]
        fn the_rule_holds_for_any_sequence(steps in proptest::collection::vec((any::<bool>(), 0i64..180), 1..200)) {
            let policy = LockoutPolicy::default();
            let mut guard = LoginGuard::default();
            let mut now = start();
            let mut previous_length: Option<Duration> = None;
            for (wrong, minutes) in steps {
                now += Duration::minutes(minutes);
                let was_permanent = guard.check(now) == Err(Locked::Permanently);
                if guard.check(now).is_err() {
                    let before = guard.clone();
                    prop_assert_eq!(guard.record_failure(now, &policy), None);
                    prop_assert_eq!(&guard, &before);
                    prop_assert!(!was_permanent || guard.check(now) == Err(Locked::Permanently));
                    continue;
                }
                if !wrong {
                    guard.record_success(now, &policy);
                    continue;
                }
                let locks_before = guard.temporary_locks;
                match guard.record_failure(now, &policy) {
                    Some(LockEvent::TemporaryLock { nth, until }) => {
                        let length = until - now;
                        if nth > 1 && locks_before + 1 == nth {
                            prop_assert!(previous_length.is_none_or(|p| length >= p));
                        }
                        previous_length = Some(length);
                    }
                    Some(LockEvent::PermanentLock) => {
                        prop_assert_eq!(guard.check(now + Duration::days(3650)), Err(Locked::Permanently));
                    }
                    Some(LockEvent::Lifted) => prop_assert!(false, "only an officer lifts"),
                    None => prop_assert!(guard.consecutive_failures() < policy.failures_before_lock),
                }
            }
        }
    }
}
