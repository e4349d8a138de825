//! Rate-limit arithmetic: rules of the form "at most `limit` sends per `window` for one key, then a
//! `penalty`", and the per-key state they are judged against.
//!
//! Windows slide: a send is allowed only when fewer than `limit` earlier sends of the same key fall in
//! the `window` ending now, so no window of that length ever holds more than `limit` sends. A send that
//! fills a rule starts its penalty. A refusal names the rule and the instant from which the same request
//! passes that rule again, which is exact because state only changes when a send is recorded.
//!
//! The store keeps one [`RateState`] per key and hands it to these functions inside a transaction; the
//! functions themselves are pure.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// What a rule counts sends per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// One phone number or email address, whatever the channel.
    Destination,
    /// One participant account (an opaque id from the calling service).
    Account,
    /// One NIK, across channels and apps.
    Nik,
    /// One client IP address, as reported by the calling service.
    Ip,
    /// One device id, as reported by the calling service.
    Device,
    /// A block of 10,000 phone numbers (the number without its last 4 digits), against SMS pumping.
    Prefix,
    /// One flow: the same subject asking for the same purpose; this is where the resend cap lives.
    Flow,
}

impl KeyKind {
    pub const ALL: [KeyKind; 7] = [
        Self::Destination,
        Self::Account,
        Self::Nik,
        Self::Ip,
        Self::Device,
        Self::Prefix,
        Self::Flow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Destination => "destination",
            Self::Account => "account",
            Self::Nik => "nik",
            Self::Ip => "ip",
            Self::Device => "device",
            Self::Prefix => "prefix",
            Self::Flow => "flow",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == input)
    }

    /// How the key reads in a participant-facing message, Indonesian and English.
    pub fn noun(self) -> (&'static str, &'static str) {
        match self {
            Self::Destination => ("nomor atau email ini", "this number or email"),
            Self::Account => ("akun ini", "this account"),
            Self::Nik => ("NIK ini", "this NIK"),
            Self::Ip => ("jaringan Anda", "your network"),
            Self::Device => ("perangkat ini", "this device"),
            Self::Prefix => ("rentang nomor ini", "this number range"),
            Self::Flow => ("permintaan ini", "this request"),
        }
    }
}

/// One rule: at most `limit` sends per sliding `window`; the send that reaches the limit starts a
/// `penalty` during which the key is refused.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateRule {
    pub key: KeyKind,
    pub limit: u32,
    #[serde(with = "seconds")]
    pub window: Duration,
    #[serde(with = "seconds")]
    pub penalty: Duration,
}

impl RateRule {
    pub fn new(key: KeyKind, limit: u32, window: Duration, penalty: Duration) -> Self {
        Self {
            key,
            limit,
            window,
            penalty,
        }
    }

    /// Stable name, e.g. `destination_5_per_15m`: what a refusal reports and where a penalty is filed.
    pub fn name(&self) -> String {
        format!(
            "{}_{}_per_{}",
            self.key.as_str(),
            self.limit,
            short_duration(self.window)
        )
    }

    /// The instant from which this rule lets the next send of `state` through, if it refuses one at
    /// `now`.
    pub fn refuses_until(&self, state: &RateState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut until: Option<DateTime<Utc>> = None;
        if let Some(penalty_end) = state.penalties.get(&self.name()).copied()
            && penalty_end > now
        {
            until = Some(penalty_end);
        }
        let limit = self.limit as usize;
        if limit == 0 {
            // A rule that allows nothing refuses for one whole window from now.
            return Some(until.map_or(now + self.window, |u| u.max(now + self.window)));
        }
        let in_window: Vec<DateTime<Utc>> = state
            .sends
            .iter()
            .copied()
            .filter(|sent| *sent > now - self.window && *sent <= now)
            .collect();
        if in_window.len() >= limit {
            // The send at this index must leave the window before fewer than `limit` remain.
            let leaving = in_window[in_window.len() - limit];
            let free_at = leaving + self.window;
            until = Some(until.map_or(free_at, |u| u.max(free_at)));
        }
        until
    }
}

impl fmt::Debug for RateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (penalty {})",
            self.name(),
            short_duration(self.penalty)
        )
    }
}

/// The sends and running penalties of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateState {
    /// Send instants, oldest first; only as many as the largest limit needs are kept.
    #[serde(rename = "s", with = "millis_vec")]
    pub sends: Vec<DateTime<Utc>>,
    /// Penalty end per rule name.
    #[serde(rename = "p", default, with = "millis_map")]
    pub penalties: BTreeMap<String, DateTime<Utc>>,
}

impl RateState {
    /// After `now + horizon` this state can refuse nothing: every rule's window and penalty is over.
    pub fn idle_after(&self, rules: &[&RateRule]) -> Option<DateTime<Utc>> {
        let last_send = self.sends.last().copied();
        let longest_window = rules.iter().map(|rule| rule.window).max();
        let windows_end = match (last_send, longest_window) {
            (Some(sent), Some(window)) => Some(sent + window),
            _ => None,
        };
        let penalties_end = self.penalties.values().copied().max();
        match (windows_end, penalties_end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Why a send was refused: the rule that holds out longest, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRefusal {
    pub rule: RateRule,
    pub until: DateTime<Utc>,
}

/// Judges one send for one key against the rules that count that key's kind. `None`: allowed.
pub fn judge(rules: &[&RateRule], state: &RateState, now: DateTime<Utc>) -> Option<RateRefusal> {
    rules
        .iter()
        .filter_map(|rule| {
            rule.refuses_until(state, now).map(|until| RateRefusal {
                rule: (*rule).clone(),
                until,
            })
        })
        .max_by_key(|refusal| refusal.until)
}

/// Records one allowed send: appends it, starts the penalty of every rule it fills, and forgets what
/// no rule can count any more.
pub fn record(rules: &[&RateRule], state: &mut RateState, now: DateTime<Utc>) {
    state.sends.push(now);
    state.sends.sort_unstable();
    for rule in rules {
        let in_window = state
            .sends
            .iter()
            .filter(|sent| **sent > now - rule.window && **sent <= now)
            .count();
        if in_window >= rule.limit as usize && rule.penalty > Duration::zero() {
            let end = now + rule.penalty;
            let entry = state.penalties.entry(rule.name()).or_insert(end);
            *entry = (*entry).max(end);
        }
    }
    let keep = rules
        .iter()
        .map(|rule| rule.limit as usize)
        .max()
        .unwrap_or(0);
    let longest_window = rules
        .iter()
        .map(|rule| rule.window)
        .max()
        .unwrap_or_default();
    state.sends.retain(|sent| *sent > now - longest_window);
    if state.sends.len() > keep {
        let excess = state.sends.len() - keep;
        state.sends.drain(..excess);
    }
    state
        .penalties
        .retain(|name, end| *end > now && rules.iter().any(|rule| rule.name() == *name));
}

/// `90s`, `15m`, `1h`, `24h`: the shortest exact unit.
pub fn short_duration(duration: Duration) -> String {
    let seconds = duration.num_seconds();
    if seconds > 0 && seconds % 3600 == 0 {
        format!("{}h", seconds / 3600)
    } else if seconds > 0 && seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// The defaults of SPEC §4 (per destination, account and NIK) plus ceilings per IP, device and number
/// prefix, and the resend cap per flow (`max_resends` resends, then `resend_wait`).
pub fn default_rules(max_resends: u32, resend_wait: Duration) -> Vec<RateRule> {
    let mut rules = Vec::new();
    for key in [KeyKind::Destination, KeyKind::Account, KeyKind::Nik] {
        rules.push(RateRule::new(
            key,
            5,
            Duration::minutes(15),
            Duration::minutes(30),
        ));
        rules.push(RateRule::new(
            key,
            10,
            Duration::hours(1),
            Duration::hours(1),
        ));
        rules.push(RateRule::new(
            key,
            25,
            Duration::hours(24),
            Duration::hours(24),
        ));
    }
    // Many Indonesian mobile users share one carrier-grade NAT address: the IP ceiling is generous
    // and only stops scripted floods; the device and prefix ceilings catch SMS pumping.
    rules.push(RateRule::new(
        KeyKind::Ip,
        300,
        Duration::hours(1),
        Duration::hours(1),
    ));
    rules.push(RateRule::new(
        KeyKind::Device,
        20,
        Duration::hours(1),
        Duration::hours(1),
    ));
    rules.push(RateRule::new(
        KeyKind::Prefix,
        200,
        Duration::hours(1),
        Duration::hours(1),
    ));
    rules.push(RateRule::new(
        KeyKind::Flow,
        max_resends + 1,
        resend_wait,
        resend_wait,
    ));
    rules
}

mod seconds {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(value.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Ok(Duration::seconds(i64::deserialize(deserializer)?))
    }
}

mod millis_vec {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &[DateTime<Utc>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(value.iter().map(DateTime::timestamp_millis))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<DateTime<Utc>>, D::Error> {
        let millis = Vec::<i64>::deserialize(deserializer)?;
        millis
            .into_iter()
            .map(|ms| {
                DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
            })
            .collect()
    }
}

mod millis_map {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &BTreeMap<String, DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(value.iter().map(|(k, v)| (k, v.timestamp_millis())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, D::Error> {
        let millis = BTreeMap::<String, i64>::deserialize(deserializer)?;
        millis
            .into_iter()
            .map(|(name, ms)| {
                DateTime::from_timestamp_millis(ms)
                    .map(|at| (name, at))
                    .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn destination_rules() -> Vec<RateRule> {
        default_rules(3, Duration::minutes(30))
            .into_iter()
            .filter(|rule| rule.key == KeyKind::Destination)
            .collect()
    }

    fn send_if_allowed(
        rules: &[RateRule],
        state: &mut RateState,
        now: DateTime<Utc>,
    ) -> Option<RateRefusal> {
        let refs: Vec<&RateRule> = rules.iter().collect();
        let refusal = judge(&refs, state, now);
        if refusal.is_none() {
            record(&refs, state, now);
        }
        refusal
    }

    #[test]
    fn five_sends_in_fifteen_minutes_then_a_thirty_minute_cooldown() {
        let rules = destination_rules();
        let mut state = RateState::default();
        for i in 0..5 {
            assert!(send_if_allowed(&rules, &mut state, t0() + Duration::minutes(i)).is_none());
        }
        let refusal = send_if_allowed(&rules, &mut state, t0() + Duration::minutes(5)).unwrap();
        assert_eq!(refusal.rule.name(), "destination_5_per_15m");
        assert_eq!(refusal.until, t0() + Duration::minutes(4 + 30));
        assert!(
            send_if_allowed(&rules, &mut state, refusal.until - Duration::seconds(1)).is_some()
        );
        assert!(send_if_allowed(&rules, &mut state, refusal.until).is_none());
    }

    #[test]
    fn ten_sends_in_an_hour_then_an_hour_of_cooldown() {
        let rules = destination_rules();
        let mut state = RateState::default();
        // Four sends every 16 minutes stay under 5 per 15 minutes but reach 10 within the hour.
        let mut now = t0();
        let mut sent = 0;
        while sent < 10 {
            for _ in 0..4 {
                if sent == 10 {
                    break;
                }
                assert!(
                    send_if_allowed(&rules, &mut state, now).is_none(),
                    "send {sent}"
                );
                sent += 1;
                now += Duration::seconds(10);
            }
            now += Duration::minutes(16);
        }
        let last = *state.sends.last().unwrap();
        let refusal = send_if_allowed(&rules, &mut state, last + Duration::minutes(1)).unwrap();
        assert_eq!(refusal.rule.name(), "destination_10_per_1h");
        assert_eq!(refusal.until, last + Duration::hours(1));
    }

    #[test]
    fn twenty_five_sends_in_a_day_then_a_day_blocked() {
        let rules = destination_rules();
        let mut state = RateState::default();
        let mut now = t0();
        for i in 0..25 {
            // Spread out: 4 per 16 minutes would hit the hourly rule, so one every 40 minutes.
            assert!(
                send_if_allowed(&rules, &mut state, now).is_none(),
                "send {i}"
            );
            now += Duration::minutes(40);
        }
        let last = *state.sends.last().unwrap();
        let refusal = send_if_allowed(&rules, &mut state, now).unwrap();
        assert_eq!(refusal.rule.name(), "destination_25_per_24h");
        assert_eq!(refusal.until, last + Duration::hours(24));
    }

    #[test]
    fn the_flow_rule_allows_three_resends_then_thirty_minutes() {
        let rules: Vec<RateRule> = default_rules(3, Duration::minutes(30))
            .into_iter()
            .filter(|rule| rule.key == KeyKind::Flow)
            .collect();
        let mut state = RateState::default();
        for at in [0, 60, 180, 480] {
            assert!(send_if_allowed(&rules, &mut state, t0() + Duration::seconds(at)).is_none());
        }
        let refusal = send_if_allowed(&rules, &mut state, t0() + Duration::seconds(800)).unwrap();
        assert_eq!(refusal.rule.name(), "flow_4_per_30m");
        assert_eq!(
            refusal.until,
            t0() + Duration::seconds(480) + Duration::minutes(30)
        );
    }

    #[test]
    fn state_round_trips_through_json_and_stays_small() {
        let rules = destination_rules();
        let mut state = RateState::default();
        for i in 0..40 {
            let _ = send_if_allowed(&rules, &mut state, t0() + Duration::minutes(i * 7));
        }
        assert!(state.sends.len() <= 25);
        let json = serde_json::to_string(&state).unwrap();
        let back: RateState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn rule_names_use_the_shortest_exact_unit() {
        let rule = RateRule::new(KeyKind::Ip, 7, Duration::seconds(90), Duration::zero());
        assert_eq!(rule.name(), "ip_7_per_90s");
        assert_eq!(KeyKind::parse("prefix"), Some(KeyKind::Prefix));
        assert_eq!(KeyKind::parse("phone"), None);
    }

    fn arbitrary_rules() -> impl Strategy<Value = Vec<RateRule>> {
        prop::collection::vec((1u32..6, 1i64..600, 0i64..900), 1..4).prop_map(|specs| {
            let mut seen = std::collections::BTreeSet::new();
            specs
                .into_iter()
                .map(|(limit, window, penalty)| {
                    RateRule::new(
                        KeyKind::Destination,
                        limit,
                        Duration::seconds(window),
                        Duration::seconds(penalty),
                    )
                })
                .filter(|rule| seen.insert(rule.name()))
                .collect()
        })
    }

    proptest! {
        /// For any rules and any sequence of requests, no window of any rule ever holds more sends
        /// than its limit, and every refusal's `until` is truthful: the same request at that instant
        /// is not refused by the same rule, and one second earlier it still is.
        #[test]
        fn no_limit_is_exceeded_and_every_until_is_truthful(
            rules in arbitrary_rules(),
            steps in prop::collection::vec(0i64..400, 1..80),
        ) {
            let refs: Vec<&RateRule> = rules.iter().collect();
            let mut state = RateState::default();
            let mut now = t0();
            let mut all_sends: Vec<DateTime<Utc>> = Vec::new();
            for step in steps {
                now += Duration::seconds(step);
                match judge(&refs, &state, now) {
                    None => {
                        record(&refs, &mut state, now);
                        all_sends.push(now);
                    }
                    Some(refusal) => {
                        prop_assert!(refusal.until > now);
                        let rule = &refusal.rule;
                        prop_assert!(rule.refuses_until(&state, refusal.until).is_none());
                        prop_assert!(rule.refuses_until(&state, refusal.until - Duration::milliseconds(1)).is_some()
                            || refusal.until - Duration::milliseconds(1) <= now);
                        // No rule refuses later than the reported instant.
                        prop_assert!(judge(&refs, &state, refusal.until).is_none());
                    }
                }
            }
            for rule in &rules {
                for (i, start) in all_sends.iter().enumerate() {
                    let in_window = all_sends[i..].iter().filter(|sent| **sent < *start + rule.window).count();
                    prop_assert!(in_window <= rule.limit as usize, "{} exceeded", rule.name());
                }
            }
        }
    }
}
