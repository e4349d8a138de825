//! The SMS pumping brake (SPEC §6): toll fraud asks for codes to numbers in one block that nobody
//! ever enters, because the fraudster is paid per message. The tell is a block whose sends rise
//! while its conversion (codes verified ÷ codes sent) stays low. When a block has had at least
//! `min_sends` codes in the window and fewer than `min_conversion_percent` of them were entered,
//! new codes to it are held for `hold`, until staff lift the brake.
//!
//! Pure rules: the counts and the clock are passed in.

use chrono::Duration;
use serde::Deserialize;

/// When a number block is braked; every setting has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrakePolicy {
    /// Off: nothing is counted or held.
    pub enabled: bool,
    /// The sliding window the sends and conversions are counted over, in minutes.
    pub window_minutes: i64,
    /// Sends in the window before a block is judged at all (normal traffic to one block of
    /// 10,000 numbers is a handful an hour).
    pub min_sends: u64,
    /// Conversion below this share, in percent, brakes the block. Real participants enter most
    /// of their codes (well above half); pumped numbers enter none.
    pub min_conversion_percent: u64,
    /// How long a brake holds unless staff lift it first, in hours.
    pub hold_hours: i64,
}

impl Default for BrakePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            window_minutes: 60,
            min_sends: 100,
            min_conversion_percent: 10,
            hold_hours: 24,
        }
    }
}

impl BrakePolicy {
    pub fn window(&self) -> Duration {
        Duration::minutes(self.window_minutes)
    }

    pub fn hold(&self) -> Duration {
        Duration::hours(self.hold_hours)
    }

    /// Whether a block with `sent` codes, `verified` of them entered, is being pumped.
    pub fn pumped(&self, sent: u64, verified: u64) -> bool {
        self.enabled
            && sent >= self.min_sends
            && verified.saturating_mul(100) < sent.saturating_mul(self.min_conversion_percent)
    }

    /// The key named when a setting cannot work.
    pub fn invalid(&self) -> Option<&'static str> {
        if self.window_minutes < 1 {
            Some("window_minutes")
        } else if self.min_sends < 1 {
            Some("min_sends")
        } else if self.min_conversion_percent > 100 {
            Some("min_conversion_percent")
        } else if self.hold_hours < 1 {
            Some("hold_hours")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_busy_block_nobody_enters_codes_for_is_pumped_and_a_converting_one_is_not() {
        let policy = BrakePolicy::default();
        assert!(policy.pumped(100, 0));
        assert!(policy.pumped(100, 9));
        assert!(
            !policy.pumped(100, 10),
            "exactly at the threshold is not below it"
        );
        assert!(!policy.pumped(99, 0), "too few sends to judge");
        assert!(!policy.pumped(5_000, 4_000));
        let off = BrakePolicy {
            enabled: false,
            ..BrakePolicy::default()
        };
        assert!(!off.pumped(1_000_000, 0));
        assert_eq!(BrakePolicy::default().invalid(), None);
        assert_eq!(
            BrakePolicy {
                min_conversion_percent: 101,
                ..BrakePolicy::default()
            }
            .invalid(),
            Some("min_conversion_percent")
        );
    }

    proptest! {
        /// More entered codes never brake a block that was not braked; more sends with the same
        /// entries never un-brake one.
        #[test]
        fn conversion_is_monotonic(sent in 0u64..100_000, verified in 0u64..100_000, more in 0u64..1_000) {
            let policy = BrakePolicy::default();
            let verified = verified.min(sent);
            if !policy.pumped(sent, verified) {
                prop_assert!(!policy.pumped(sent, verified + more));
            }
            if policy.pumped(sent, verified) {
                prop_assert!(policy.pumped(sent + more, verified));
            }
        }
    }
}
