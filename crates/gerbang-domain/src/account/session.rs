//! Login sessions: opaque random tokens stored only as their digest, with an idle expiry that each
//! use pushes forward, an absolute expiry it never passes, and the last step-up per action — so a
//! service can demand "a session" for checking a balance but "a step-up for `jht_claim` within the
//! last five minutes" for claiming it (seed 003).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Marks a string as a gerbang session token (and lets secret scanners find leaked ones).
const PREFIX: &str = "gbs_";
const TOKEN_BYTES: usize = 32;

/// A session token as handed to the app once. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(****)")
    }
}

/// The stored form of a token: SHA-256 of its text. A token carries 256 random bits, so a plain
/// hash is enough for a database dump not to yield usable tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// A digest as stored.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl SessionToken {
    /// A fresh token from the operating system's CSPRNG (through `rand`'s thread generator).
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", super::hex(&bytes)))
    }

    /// Reads a token sent by a client; `None` for anything that cannot be one (so a malformed
    /// bearer is refused before any lookup).
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(PREFIX)?;
        (hex.len() == TOKEN_BYTES * 2
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Self(text.to_owned()))
    }

    /// The token's text, to put in a response once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest(Sha256::digest(self.0.as_bytes()).into())
    }
}

/// How long sessions live. Defaults: 30 days idle, 90 days at most.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionPolicy {
    pub idle_days: i64,
    pub absolute_days: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_days: 30,
            absolute_days: 90,
        }
    }
}

/// Why a session is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Idle,
    Absolute,
    Revoked,
}

/// A session's lifetime and step-ups; stored under the token's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLife {
    pub started_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The last completed step-up per action name (`bank_account_change`, `jht_claim`, …).
    pub step_ups: BTreeMap<String, DateTime<Utc>>,
}

impl SessionLife {
    pub fn start(now: DateTime<Utc>) -> Self {
        Self {
            started_at: now,
            last_used_at: now,
            revoked_at: None,
            step_ups: BTreeMap::new(),
        }
    }

    /// Whether the session may be used at `now`.
    pub fn check(&self, now: DateTime<Utc>, policy: &SessionPolicy) -> Result<(), SessionEnd> {
        if self.revoked_at.is_some() {
            Err(SessionEnd::Revoked)
        } else if now >= self.started_at + Duration::days(policy.absolute_days) {
            Err(SessionEnd::Absolute)
        } else if now >= self.last_used_at + Duration::days(policy.idle_days) {
            Err(SessionEnd::Idle)
        } else {
            Ok(())
        }
    }

    /// When the session ends if it is not used again.
    pub fn expires_at(&self, policy: &SessionPolicy) -> DateTime<Utc> {
        (self.last_used_at + Duration::days(policy.idle_days))
            .min(self.started_at + Duration::days(policy.absolute_days))
    }

    /// Records a use (a refresh or an authenticated request), if the session is valid.
    pub fn touch(&mut self, now: DateTime<Utc>, policy: &SessionPolicy) -> Result<(), SessionEnd> {
        self.check(now, policy)?;
        self.last_used_at = self.last_used_at.max(now);
        Ok(())
    }

    pub fn revoke(&mut self, now: DateTime<Utc>) {
        self.revoked_at.get_or_insert(now);
    }

    pub fn record_step_up(&mut self, action: &str, now: DateTime<Utc>) {
        self.step_ups.insert(action.to_owned(), now);
    }

    /// Whether a step-up for `action` happened within `within` before `now`.
    pub fn stepped_up(&self, action: &str, now: DateTime<Utc>, within: Duration) -> bool {
        self.step_ups
            .get(action)
            .is_some_and(|at| *at <= now && now - *at <= within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn tokens_are_random_prefixed_and_parse_back() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        assert_ne!(a.digest(), b.digest());
        assert!(a.expose().starts_with("gbs_"));
        assert_eq!(SessionToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(
            SessionToken::parse(a.expose()).unwrap().digest(),
            a.digest()
        );
        assert_eq!(format!("{a:?}"), "SessionToken(****)");
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let good = SessionToken::generate();
        for bad in [
            "",
            "gbs_",
            &good.expose()[4..],
            &good.expose()[..good.expose().len() - 1],
            &good.expose().to_uppercase(),
            &format!("{}0", good.expose()),
        ] {
            assert_eq!(SessionToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn idle_and_absolute_expiry() {
        let policy = SessionPolicy::default();
        let mut life = SessionLife::start(t0());
        assert_eq!(
            life.check(t0() + Duration::days(30), &policy),
            Err(SessionEnd::Idle)
        );
        // Used every 20 days it lives until the absolute bound, then ends whatever the use.
        let mut now = t0();
        while now + Duration::days(20) < t0() + Duration::days(90) {
            now += Duration::days(20);
            assert_eq!(life.touch(now, &policy), Ok(()));
        }
        assert_eq!(life.expires_at(&policy), t0() + Duration::days(90));
        assert_eq!(
            life.touch(t0() + Duration::days(90), &policy),
            Err(SessionEnd::Absolute)
        );
    }

    #[test]
    fn a_revoked_session_stays_revoked() {
        let policy = SessionPolicy::default();
        let mut life = SessionLife::start(t0());
        life.revoke(t0() + Duration::minutes(1));
        life.revoke(t0() + Duration::minutes(2));
        assert_eq!(life.revoked_at, Some(t0() + Duration::minutes(1)));
        assert_eq!(
            life.touch(t0() + Duration::minutes(3), &policy),
            Err(SessionEnd::Revoked)
        );
    }

    #[test]
    fn a_step_up_counts_for_its_action_and_only_for_a_while() {
        let mut life = SessionLife::start(t0());
        life.record_step_up("jht_claim", t0());
        let fresh = Duration::minutes(5);
        assert!(life.stepped_up("jht_claim", t0() + Duration::minutes(5), fresh));
        assert!(!life.stepped_up("jht_claim", t0() + Duration::minutes(6), fresh));
        assert!(!life.stepped_up("bank_account_change", t0(), fresh));
    }
}
