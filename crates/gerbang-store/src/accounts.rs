//! Storage of participant accounts, their login sessions, the flows in progress (a registration
//! waiting for its code, a login waiting for its new-device step-up, …) and the accounts' audit
//! events.
//!
//! An account is one sealed envelope (the serialised [`Account`]) with keyed digests of its NIK,
//! email and phone: each is unique, so two accounts can never share a contact (seed 003: recycled
//! numbers), and a clash is told apart as [`AccountTaken`]. Every change is a compare-and-set on the
//! account's `version`, so two concurrent logins cannot lose each other's failure count.
//!
//! Sessions are kept by the SHA-256 digest of their token (never the token); a flow by the digest of
//! its token, its state sealed.

use std::future::Future;

use chrono::{DateTime, Utc};
use gerbang_domain::account::{Account, DeviceDigest, SessionLife, TokenDigest};
use gerbang_domain::{Email, MobileNumber, Nik};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, actor};
use crate::error::StoreError;
use crate::sealing::{KeyAge, LookupKind, Sealer};

/// What an account is looked up by.
#[derive(Debug, Clone, Copy)]
pub enum AccountKey<'a> {
    Id(i64),
    /// The public id (`acct_…`) answers and pages name the account by.
    PublicId(&'a str),
    Nik(&'a Nik),
    Email(&'a Email),
    Phone(&'a MobileNumber),
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// The row id: internal, never shown (it would tell how many accounts exist).
    pub id: i64,
    /// What answers name the account by: `acct_` and 24 random hex digits.
    pub public_id: String,
    /// Bumped by every write; a write that names an older version is refused as stale.
    pub version: i64,
    pub account: Account,
}

/// Which unique value of an account already belongs to another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountTaken {
    Nik,
    Email,
    Phone,
}

impl AccountTaken {
    /// The clash a unique-index violation stands for, from the database's words.
    pub fn from_violation(text: &str) -> Option<Self> {
        if text.contains("nik_digest") {
            Some(Self::Nik)
        } else if text.contains("email_digest") {
            Some(Self::Email)
        } else if text.contains("phone_digest") {
            Some(Self::Phone)
        } else {
            None
        }
    }
}

/// Why a write of an account did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRefusal {
    /// Someone else changed the account since it was read: read again and redo.
    Stale,
    Taken(AccountTaken),
}

/// One event of an account (locks, unlocks, contact and password changes, …), written to the
/// audit log ([`crate::audit`]) in the same transaction as the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEvent {
    pub at: DateTime<Utc>,
    /// Who acted: [`actor::PARTICIPANT`] unless [`by`](Self::by) says otherwise.
    pub actor: String,
    /// Stable snake_case name, e.g. `locked_temporarily`.
    pub kind: String,
    /// What else the reader needs (never a password, code or full contact).
    pub detail: String,
    /// The complaint ticket a staff action was taken under.
    #[serde(default)]
    pub ticket: Option<String>,
}

impl AccountEvent {
    /// An event the participant caused.
    pub fn new(at: DateTime<Utc>, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            at,
            actor: actor::PARTICIPANT.to_owned(),
            kind: kind.to_owned(),
            detail: detail.into(),
            ticket: None,
        }
    }

    /// The same event, taken under complaint ticket `ticket`.
    pub fn under(mut self, ticket: Option<String>) -> Self {
        self.ticket = ticket;
        self
    }

    /// The same event, caused by `actor` ([`actor::SYSTEM`], [`actor::operator`], …).
    pub fn by(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// The audit record of this event on account `account`.
    pub fn record(&self, account: i64) -> AuditRecord {
        AuditRecord {
            at: self.at,
            actor: self.actor.clone(),
            action: self.kind.clone(),
            account: Some(account),
            ticket: self.ticket.clone(),
            detail: self.detail.clone(),
        }
    }
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub token: TokenDigest,
    pub account: i64,
    pub device: DeviceDigest,
    pub life: SessionLife,
}

/// A flow in progress, kept until it completes or expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFlow {
    /// SHA-256 of the flow's token.
    pub token: [u8; 32],
    /// The flow's state, serialised by its owner; sealed at rest (it may hold contacts and a
    /// password hash).
    pub state: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

/// Account storage.
pub trait AccountStore {
    /// Creates an account with its first events; a NIK, email or phone that another account holds
    /// refuses it whole.
    fn create_account(
        &self,
        account: &Account,
        events: Vec<AccountEvent>,
    ) -> impl Future<Output = Result<Result<StoredAccount, AccountTaken>, StoreError>> + Send;

    fn find_account(
        &self,
        key: AccountKey<'_>,
    ) -> impl Future<Output = Result<Option<StoredAccount>, StoreError>> + Send;

    /// Writes `account` over version `version` of account `id` at `at`, with its events, all or
    /// nothing; returns the account as now stored.
    fn save_account(
        &self,
        id: i64,
        version: i64,
        at: DateTime<Utc>,
        account: &Account,
        events: Vec<AccountEvent>,
    ) -> impl Future<Output = Result<Result<StoredAccount, AccountRefusal>, StoreError>> + Send;

    /// The account's events from the audit log, oldest first.
    fn account_events(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Vec<AccountEvent>, StoreError>> + Send;

    fn create_session(
        &self,
        session: &StoredSession,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn find_session(
        &self,
        token: &TokenDigest,
    ) -> impl Future<Output = Result<Option<StoredSession>, StoreError>> + Send;

    /// Writes the session's use and step-ups; a revocation that happened meanwhile stays.
    fn save_session(
        &self,
        session: &StoredSession,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes the account's live sessions (on one device, or all); returns how many.
    fn revoke_sessions(
        &self,
        account: i64,
        device: Option<DeviceDigest>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Creates or replaces a flow.
    fn put_flow(&self, flow: &StoredFlow) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The flow, unless it has expired by `now`.
    fn find_flow(
        &self,
        token: &[u8; 32],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<StoredFlow>, StoreError>> + Send;

    /// Ends a flow; `true` when it existed.
    fn delete_flow(
        &self,
        token: &[u8; 32],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks a built-in captcha challenge as judged until it expires; `true` the first time,
    /// `false` when any instance judged it before. Expired marks are swept as new ones come.
    fn spend_captcha(
        &self,
        nonce: [u8; 16],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A new account's public id: `acct_` and 24 random hex digits.
pub fn new_public_id() -> String {
    let mut bytes = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("acct_{}", gerbang_domain::account::hex(&bytes))
}

/// An account ready to be written: the sealed envelope and its lookup digests.
#[derive(Debug, Clone)]
pub struct SealedAccount {
    pub nik_digest: Vec<u8>,
    pub email_digest: Option<Vec<u8>>,
    pub phone_digest: Option<Vec<u8>>,
    pub sealed: Vec<u8>,
}

impl SealedAccount {
    pub fn seal(account: &Account, sealer: &Sealer) -> Result<Self, StoreError> {
        let json = serde_json::to_vec(account).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let nik_digest = sealer
            .digest(LookupKind::Nik, account.nik.as_str().as_bytes())
            .to_vec();
        Ok(Self {
            sealed: sealer.seal(&json, &nik_digest)?,
            email_digest: account
                .email
                .as_ref()
                .map(|email| email_digest(sealer, email)),
            phone_digest: account
                .phone
                .as_ref()
                .map(|phone| phone_digest(sealer, phone)),
            nik_digest,
        })
    }
}

pub fn email_digest(sealer: &Sealer, email: &Email) -> Vec<u8> {
    sealer
        .digest(LookupKind::Email, email.as_str().as_bytes())
        .to_vec()
}

pub fn phone_digest(sealer: &Sealer, phone: &MobileNumber) -> Vec<u8> {
    sealer
        .digest(LookupKind::Phone, phone.e164().as_bytes())
        .to_vec()
}

/// The digest column an account key is looked up by and the digests to accept there (the current
/// key's and, during a rotation, the previous key's); `None` for [`AccountKey::Id`] and
/// [`AccountKey::PublicId`].
pub fn account_lookup(
    key: AccountKey<'_>,
    sealer: &Sealer,
) -> Option<(&'static str, [Vec<u8>; 2])> {
    let (column, kind, value) = match key {
        AccountKey::Id(_) | AccountKey::PublicId(_) => return None,
        AccountKey::Nik(nik) => ("nik_digest", LookupKind::Nik, nik.as_str()),
        AccountKey::Email(email) => ("email_digest", LookupKind::Email, email.as_str()),
        AccountKey::Phone(phone) => ("phone_digest", LookupKind::Phone, phone.e164()),
    };
    let [current, previous] = sealer.lookup_digests(kind, value.as_bytes());
    Some((column, [current.to_vec(), previous.to_vec()]))
}

/// Re-seals an account row sealed under the previous key under the current one, digests
/// recomputed; `None` when it is already under the current key.
pub fn reseal_account(
    sealed: &[u8],
    nik_digest: &[u8],
    sealer: &Sealer,
) -> Result<Option<SealedAccount>, StoreError> {
    let (json, age) = sealer.open_aged(sealed, nik_digest)?;
    if age == KeyAge::Current {
        return Ok(None);
    }
    SealedAccount::seal(&parse_account(&json)?, sealer).map(Some)
}

/// Opens a stored envelope back into an account.
pub fn open_account(
    sealed: &[u8],
    nik_digest: &[u8],
    sealer: &Sealer,
) -> Result<Account, StoreError> {
    parse_account(&sealer.open(sealed, nik_digest)?)
}

fn parse_account(json: &[u8]) -> Result<Account, StoreError> {
    serde_json::from_slice(json).map_err(|e| {
        StoreError::Corrupt(format!(
            "account record: {:?} error at column {}",
            e.classify(),
            e.column()
        ))
    })
}

/// Seals a flow's state, bound to its token's digest.
pub fn seal_flow(sealer: &Sealer, flow: &StoredFlow) -> Result<Vec<u8>, StoreError> {
    Ok(sealer.seal(&flow.state, &flow.token)?)
}

pub fn open_flow(sealer: &Sealer, token: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
    Ok(sealer.open(sealed, token)?)
}

/// Step-ups of a session as stored (a JSON object of action → RFC 3339 instant).
pub fn encode_step_ups(life: &SessionLife) -> String {
    serde_json::to_string(&life.step_ups).unwrap_or_else(|_| "{}".into())
}

pub fn decode_step_ups(
    text: &str,
) -> Result<std::collections::BTreeMap<String, DateTime<Utc>>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("session step-ups: {e}")))
}

/// The 32 bytes of a digest column, or a corrupt-row error.
pub fn digest32(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("{what}: not 32 bytes")))
}
