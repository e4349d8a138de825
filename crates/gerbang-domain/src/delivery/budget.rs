//! Daily budgets: every SMS, WhatsApp message and call costs money, and a bug, a runaway client or
//! an attack can spend a month's allowance in an afternoon. An operator caps, per day, the codes
//! accepted on each channel and the hand-offs to each provider (what the provider bills). At
//! `alert_percent` of a cap the operator is alerted; at the cap new codes on that channel are
//! refused (`budget_exhausted`, with the time the day turns) and a provider that has spent its
//! budget is skipped like one whose circuit is open, so the next route takes over.
//!
//! A budget day runs from midnight to midnight Western Indonesian Time (UTC+7), where the
//! providers' billing and the operators' working day are.
//!
//! Pure rules: counts and the clock are passed in.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, Offset, TimeZone, Utc};
use serde::Deserialize;

use crate::verification::Channel;

/// The daily caps; none by default (an operator who has not set a budget is not refused).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetPolicy {
    /// Codes accepted per day on a channel (`sms = 500000`); a channel not named has no cap.
    pub channels: BTreeMap<Channel, u64>,
    /// Hand-offs per day to a provider, by its name (`"smpp:primary" = 300000`).
    pub providers: BTreeMap<String, u64>,
    /// The share of a cap, in percent, at which the operator is alerted.
    pub alert_percent: u8,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        Self {
            channels: BTreeMap::new(),
            providers: BTreeMap::new(),
            alert_percent: 80,
        }
    }
}

/// Where one count stands against its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetLevel {
    Within,
    /// At or past the alert share.
    Alert,
    /// At or past the cap: nothing more today.
    Exhausted,
}

impl BudgetPolicy {
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.providers.is_empty()
    }

    /// Where `spent` stands against `cap`.
    pub fn level(&self, spent: u64, cap: u64) -> BudgetLevel {
        if spent >= cap {
            BudgetLevel::Exhausted
        } else if spent.saturating_mul(100) >= cap.saturating_mul(u64::from(self.alert_percent)) {
            BudgetLevel::Alert
        } else {
            BudgetLevel::Within
        }
    }

    /// The key named when a setting cannot work (a cap of 0 would refuse everything: an
    /// operator who means "off" removes the line).
    pub fn invalid(&self) -> Option<String> {
        if !(1..=100).contains(&self.alert_percent) {
            return Some("alert_percent".into());
        }
        if let Some((channel, _)) = self.channels.iter().find(|(_, cap)| **cap == 0) {
            return Some(format!("channels.{}", channel.as_str()));
        }
        self.providers
            .iter()
            .find(|(_, cap)| **cap == 0)
            .map(|(name, _)| format!("providers.\"{name}\""))
    }
}

fn wib() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).unwrap_or_else(|| Utc.fix())
}

/// The budget day `at` falls in (`YYYY-MM-DD`, WIB) and the instant the next one starts.
pub fn budget_day(at: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let local = at.with_timezone(&wib());
    let day = local.date_naive();
    let next = (day + Duration::days(1)).and_time(NaiveTime::MIN);
    let starts = wib()
        .from_local_datetime(&next)
        .single()
        .map_or(at + Duration::days(1), |start| start.with_timezone(&Utc));
    (day.format("%Y-%m-%d").to_string(), starts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_alert_comes_at_its_share_and_the_refusal_at_the_cap() {
        let policy = BudgetPolicy::default();
        assert_eq!(policy.level(79, 100), BudgetLevel::Within);
        assert_eq!(policy.level(80, 100), BudgetLevel::Alert);
        assert_eq!(policy.level(99, 100), BudgetLevel::Alert);
        assert_eq!(policy.level(100, 100), BudgetLevel::Exhausted);
        assert_eq!(policy.level(150, 100), BudgetLevel::Exhausted);
    }

    #[test]
    fn a_budget_day_turns_at_midnight_in_jakarta() {
        // 16:59:59 UTC is 23:59:59 WIB; a second later the next day starts.
        let before = DateTime::parse_from_rfc3339("2026-12-06T16:59:59Z")
            .unwrap()
            .to_utc();
        let (day, next) = budget_day(before);
        assert_eq!(day, "2026-12-06");
        assert_eq!(next, before + Duration::seconds(1));
        let (day, _) = budget_day(next);
        assert_eq!(day, "2026-12-07");
    }

    #[test]
    fn a_zero_cap_or_a_bad_share_is_named() {
        let toml_like = BudgetPolicy {
            channels: BTreeMap::from([(Channel::Sms, 0)]),
            ..BudgetPolicy::default()
        };
        assert_eq!(toml_like.invalid().as_deref(), Some("channels.sms"));
        let provider = BudgetPolicy {
            providers: BTreeMap::from([("smpp:primary".to_owned(), 0)]),
            ..BudgetPolicy::default()
        };
        assert_eq!(
            provider.invalid().as_deref(),
            Some("providers.\"smpp:primary\"")
        );
        let share = BudgetPolicy {
            alert_percent: 0,
            ..BudgetPolicy::default()
        };
        assert_eq!(share.invalid().as_deref(), Some("alert_percent"));
        assert_eq!(BudgetPolicy::default().invalid(), None);
    }

    proptest! {
        /// The level never goes down as more is spent, and the next day always starts within
        /// (0, 24 h] of any instant.
        #[test]
        fn levels_only_rise_and_days_are_a_day_long(
            spent in 0u64..2_000, more in 0u64..2_000, cap in 1u64..1_000, seconds in 0i64..4_000_000_000,
        ) {
            let policy = BudgetPolicy::default();
            let rank = |level| match level {
                BudgetLevel::Within => 0,
                BudgetLevel::Alert => 1,
                BudgetLevel::Exhausted => 2,
            };
            prop_assert!(rank(policy.level(spent, cap)) <= rank(policy.level(spent + more, cap)));
            let at = DateTime::from_timestamp(seconds, 0).unwrap();
            let (_, next) = budget_day(at);
            prop_assert!(next > at && next - at <= Duration::days(1));
        }
    }
}
