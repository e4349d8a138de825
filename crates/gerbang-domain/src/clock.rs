//! The clock is injected: rules take `now` as an argument and services hold a `Clock`, so expiry,
//! countdowns and windows are tested by moving a [`ManualClock`] instead of sleeping.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync + Debug + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// `at` rounded up to a whole multiple of `unit` since the epoch (unchanged when it is one already).
/// An instant the participant is told to wait for is shown rounded up, so that acting at the
/// shown second or minute is never too early.
pub fn round_up(at: DateTime<Utc>, unit: Duration) -> DateTime<Utc> {
    let unit_ms = unit.num_milliseconds();
    if unit_ms <= 0 {
        return at;
    }
    let ms = at.timestamp_millis();
    let rest = ms.rem_euclid(unit_ms);
    let extra_nanos = at.timestamp_subsec_nanos() % 1_000_000;
    if rest == 0 && extra_nanos == 0 {
        return at;
    }
    DateTime::from_timestamp_millis(ms - rest + unit_ms).unwrap_or(at)
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let clock = ManualClock::new(start);
        let twin = clock.clone();
        assert_eq!(clock.now(), start);
        twin.advance(Duration::seconds(90));
        assert_eq!(clock.now(), start + Duration::seconds(90));
    }

    #[test]
    fn instants_round_up_to_the_next_whole_unit_unless_they_are_one() {
        let whole = DateTime::from_timestamp(1_700_000_040, 0).unwrap();
        assert_eq!(round_up(whole, Duration::seconds(1)), whole);
        assert_eq!(round_up(whole, Duration::minutes(1)), whole);
        let later = whole + Duration::milliseconds(1);
        assert_eq!(
            round_up(later, Duration::seconds(1)),
            whole + Duration::seconds(1)
        );
        assert_eq!(
            round_up(later, Duration::minutes(1)),
            whole + Duration::minutes(1)
        );
        let nanos = whole + Duration::nanoseconds(10);
        assert_eq!(
            round_up(nanos, Duration::seconds(1)),
            whole + Duration::seconds(1)
        );
        let half = whole + Duration::seconds(30);
        assert_eq!(
            round_up(half, Duration::minutes(1)),
            whole + Duration::minutes(1)
        );
    }
}
