//! Storage of verifications, rate-limit counters and the outbox of messages to send.
//!
//! The store decides nothing: [`VerificationStore::transact`] loads one verification and the rate
//! state of some keys, lets the caller's `step` (the engine's rules) decide, and writes what it returns
//! in the same transaction. Backends make that atomic under concurrency: SQLite through one writer
//! that commits many steps per fsync (group commit), PostgreSQL through row locks taken in a fixed
//! order. Nothing is acknowledged before its commit is durable.

use std::future::Future;

use chrono::{DateTime, Utc};
use gerbang_domain::Nik;
use gerbang_domain::delivery::{Cause, DeliveryStatus};
use gerbang_domain::verification::message::MessageContent;
use gerbang_domain::verification::rate::{KeyKind, RateState};
use gerbang_domain::verification::{Channel, Destination, Verification, VerificationId};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::participants::{ParticipantKey, lookup_digest, lookup_digests};
use crate::sealing::{KeyAge, LookupKind, Sealer};

/// A rate-limit key: what it counts and the value counted (a phone number, a NIK, an IP address).
/// Only a keyed digest of it reaches the database.
#[derive(Clone, PartialEq, Eq)]
pub struct RateKey {
    pub kind: KeyKind,
    pub value: String,
}

impl std::fmt::Debug for RateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RateKey({}, ***)", self.kind.as_str())
    }
}

impl RateKey {
    pub fn new(kind: KeyKind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }

    /// The stored form: the kind in clear (for operators' statistics) and a keyed digest of both.
    pub fn digest(&self, sealer: &Sealer) -> Vec<u8> {
        let mut input = self.kind.as_str().as_bytes().to_vec();
        input.push(0);
        input.extend_from_slice(self.value.as_bytes());
        sealer.digest(LookupKind::RateKey, &input).to_vec()
    }
}

/// What a step sees: the verification (if one was asked for and exists) and the state of each
/// requested rate key, in the order asked.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub verification: Option<Verification>,
    pub rates: Vec<RateState>,
}

/// What a step writes. Empty: nothing.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Inserted, or replacing the stored one with the same id.
    pub verification: Option<Verification>,
    /// New state per requested key (by index into the keys), with the instant after which it can
    /// refuse nothing and may be forgotten.
    pub rates: Vec<(usize, RateState, DateTime<Utc>)>,
    pub messages: Vec<OutboxMessage>,
    /// Verifications whose messages still in the outbox (waiting, or claimed by a worker) are
    /// dropped as [`CANCELLED`], in the same transaction as the rest: a cancelled code is never
    /// sent later. Written after `messages`, so a send queued earlier in the same batch goes too.
    pub withdrawn: Vec<VerificationId>,
}

impl Changes {
    pub fn none() -> Self {
        Self::default()
    }
}

/// One message waiting to be handed to a provider. Its text carries a code, so it is stored sealed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub verification: VerificationId,
    /// Which send of the verification (0 = first) this message carries.
    pub send_index: u32,
    pub channel: Channel,
    pub destination: Destination,
    pub text: String,
    /// The code and what surrounds it, for channels that do not send `text` as it is. Absent in
    /// messages queued by a gerbang older than the email, WhatsApp and voice providers.
    #[serde(default)]
    pub content: Option<MessageContent>,
    pub queued_at: DateTime<Utc>,
    /// After this the code is dead: the message is dropped, not sent.
    pub expires_at: DateTime<Utc>,
    /// Codes go out before notifications when the queue is backed up.
    #[serde(default)]
    pub priority: Priority,
}

impl OutboxMessage {
    /// The mobile operator of a phone destination (its name), recorded with each delivery attempt
    /// so that delivery health can be told per operator; `None` for an email address.
    pub fn operator(&self) -> Option<&'static str> {
        match &self.destination {
            Destination::Phone(number) => Some(number.operator().name()),
            Destination::Email(_) => None,
        }
    }
}

/// The order in which queued messages are claimed: every code before any notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// A message carrying a code someone is waiting for.
    #[default]
    Otp,
    /// A notice (e.g. "your phone number was changed") nobody is waiting to type.
    Notification,
}

impl Priority {
    /// The stored rank: lower goes first.
    pub fn rank(self) -> i16 {
        match self {
            Self::Otp => 0,
            Self::Notification => 1,
        }
    }
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("verification", &self.verification)
            .field("send_index", &self.send_index)
            .field("channel", &self.channel)
            .field("destination", &self.destination)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A message claimed from the outbox by one worker for a lease.
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub id: i64,
    pub message: OutboxMessage,
    /// Earlier rounds in which every route failed (0: this is the first).
    pub rounds: u32,
}

/// Why an earlier send still waiting in the queue was dropped when a later one was queued.
pub const SUPERSEDED: &str = "superseded by a later send of the same verification";

/// Why a message still in the queue was dropped when its verification was cancelled.
pub const CANCELLED: &str = "its verification was cancelled";

/// One provider's refusal of one message, as the delivery trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTry {
    pub provider: String,
    pub at: DateTime<Utc>,
    pub cause: Cause,
    /// The provider's raw words (never the text or the code).
    pub detail: String,
}

/// How one round of hand-off of a claimed message ended. `failures` are the providers that refused
/// it in this round, in order, each written to the delivery trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    /// A provider took it at this instant.
    HandedOff {
        provider: String,
        at: DateTime<Utc>,
        /// The provider's id for it, which its receipts will name.
        message_id: Option<String>,
        /// `submitted`, or `delivered` for a provider that delivers on the spot (the dev inbox).
        status: DeliveryStatus,
        failures: Vec<FailedTry>,
    },
    /// No provider took it this round, but one may later: it waits in the queue until `retry_at`.
    Deferred {
        retry_at: DateTime<Utc>,
        failures: Vec<FailedTry>,
    },
    /// Not sent, and never will be (its code expired in the queue, or a provider said no route
    /// can deliver it).
    Dropped {
        reason: String,
        at: DateTime<Utc>,
        failures: Vec<FailedTry>,
    },
}

impl MessageOutcome {
    pub fn failures(&self) -> &[FailedTry] {
        match self {
            Self::HandedOff { failures, .. }
            | Self::Deferred { failures, .. }
            | Self::Dropped { failures, .. } => failures,
        }
    }
}

/// One try to deliver one message, as the delivery trail shows it. Holds no personal data: the
/// destination lives in the sealed outbox message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub outbox_id: i64,
    pub channel: String,
    pub provider: String,
    /// The provider's id for the message (normalised as receipts are matched), for staff tracing
    /// a complaint with the provider; never shown to participants. None for a refused try.
    pub provider_message_id: Option<String>,
    pub status: DeliveryStatus,
    pub cause: Option<Cause>,
    /// The provider's raw words (`stat:UNDELIV err:001`, a `command_status`), for staff.
    pub detail: Option<String>,
    pub attempted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a receipt says about the message a provider knows by one of `message_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptUpdate {
    pub provider: String,
    /// Normalised candidates (see `gerbang_domain::delivery::receipt::receipt_id_candidates`).
    pub message_ids: Vec<String>,
    pub status: DeliveryStatus,
    pub cause: Option<Cause>,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// Where the latest queued message of a verification stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePosition {
    /// The waiting message.
    pub outbox_id: i64,
    /// Messages that will be claimed before it (higher priority, or queued earlier).
    pub ahead: u64,
    /// Hand-offs by every provider in the minute before `now`: the rate the queue drains at.
    pub handed_off_last_minute: u64,
}

/// A message as the development inbox shows it.
#[derive(Debug, Clone)]
pub struct InboxMessage {
    pub id: i64,
    pub message: OutboxMessage,
    pub handed_off_at: DateTime<Utc>,
}

/// Verifications, their rate limits and their outbox.
pub trait VerificationStore {
    /// Atomically: reads the verification `id` (if given) and the state of `keys`, runs `step`, and
    /// writes the [`Changes`] it returns; the result is returned only once the commit is durable. Two
    /// transactions touching the same verification or key never interleave.
    fn transact<T, F>(
        &self,
        id: Option<VerificationId>,
        keys: Vec<RateKey>,
        step: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: FnOnce(Snapshot) -> (Changes, T) + Send + 'static;

    /// Reads one verification without locking it.
    fn verification(
        &self,
        id: VerificationId,
    ) -> impl Future<Output = Result<Option<Verification>, StoreError>> + Send;

    /// Claims up to `limit` queued messages (or ones whose earlier claim's lease ran out) until
    /// `now + lease`; several workers never claim the same message.
    fn claim_messages(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> impl Future<Output = Result<Vec<ClaimedMessage>, StoreError>> + Send;

    /// Records how claimed messages ended and, for those handed off, starts their code's lifetime
    /// on the verification — in one transaction.
    fn finish_messages(
        &self,
        outcomes: Vec<(ClaimedMessage, MessageOutcome)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Messages the development inbox provider took, newest first.
    fn inbox(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<InboxMessage>, StoreError>> + Send;

    /// Where the newest waiting message of `verification` stands, or `None` when none is waiting.
    fn queue_position(
        &self,
        verification: VerificationId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<QueuePosition>, StoreError>> + Send;

    /// Messages still waiting to be handed off (for readiness and metrics).
    fn queued_messages(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Applies a receipt to the attempts it names; returns how many it updated (0: a receipt for a
    /// message we do not know). A `delivered` attempt stays delivered.
    fn record_receipt(
        &self,
        update: ReceiptUpdate,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Every attempt for one verification, oldest first.
    fn delivery_trail(
        &self,
        verification: VerificationId,
    ) -> impl Future<Output = Result<Vec<DeliveryAttempt>, StoreError>> + Send;

    /// Up to `limit` verifications started for `nik` (the subject the calling service named),
    /// newest first, for staff answering "my code never came". Found by the keyed NIK digest
    /// ([`verification_nik_digest`]); verifications stored before that column existed are not found.
    fn verifications_for_nik(
        &self,
        nik: &Nik,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Verification>, StoreError>> + Send;
}

/// The lookup column of a stored verification: the same keyed NIK digest the participant registry
/// is found by (so no new key), or none for a verification started without a NIK.
pub fn verification_nik_digest(sealer: &Sealer, verification: &Verification) -> Option<Vec<u8>> {
    verification.nik.as_ref().map(|nik| nik_digest(sealer, nik))
}

/// The keyed digest a NIK is looked up by, in the registry and among verifications.
pub fn nik_digest(sealer: &Sealer, nik: &Nik) -> Vec<u8> {
    lookup_digest(ParticipantKey::Nik(nik), sealer).to_vec()
}

/// The digests a NIK's verifications are looked up by (both keys' during a rotation).
pub fn nik_digests(sealer: &Sealer, nik: &Nik) -> [Vec<u8>; 2] {
    lookup_digests(ParticipantKey::Nik(nik), sealer).map(|digest| digest.to_vec())
}

/// A verification body re-sealed under the current key, and its NIK digest under that key.
#[derive(Debug)]
pub struct ResealedVerification {
    pub body: Vec<u8>,
    pub nik_digest: Option<Vec<u8>>,
}

/// Re-seals a verification body sealed under the previous key: the same bytes under the current
/// key, and its NIK digest recomputed. `None` when it is already under the current key.
pub fn reseal_verification(
    sealer: &Sealer,
    id: &[u8],
    body: &[u8],
) -> Result<Option<ResealedVerification>, StoreError> {
    let (json, age) = sealer.open_aged(body, id)?;
    if age == KeyAge::Current {
        return Ok(None);
    }
    let verification: Verification = serde_json::from_slice(&json)
        .map_err(|e| StoreError::Corrupt(format!("verification body: {e}")))?;
    Ok(Some(ResealedVerification {
        body: sealer.seal(&json, id)?,
        nik_digest: verification_nik_digest(sealer, &verification),
    }))
}

/// Opens the rows a NIK lookup found, newest first, keeping only those whose sealed body names
/// `nik`: the digest column is not covered by the envelope's authentication, so a row whose
/// column was altered cannot put someone else's verification in this participant's trail.
pub fn open_verifications_for_nik(
    sealer: &Sealer,
    nik: &Nik,
    rows: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<Verification>, StoreError> {
    let mut found = Vec::with_capacity(rows.len());
    for (id, body) in rows {
        let verification = open_verification(sealer, &id, &body)?;
        if verification.nik.as_ref() == Some(nik) {
            found.push(verification);
        }
    }
    Ok(found)
}

/// Seals a verification for storage; the id is the associated data, so a body moved to another row
/// does not open.
pub fn seal_verification(
    sealer: &Sealer,
    verification: &Verification,
) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(verification)
        .map_err(|e| StoreError::Corrupt(format!("verification does not serialise: {e}")))?;
    Ok(sealer.seal(&json, verification.id.as_bytes())?)
}

/// Opens a stored verification.
pub fn open_verification(
    sealer: &Sealer,
    id: &[u8],
    body: &[u8],
) -> Result<Verification, StoreError> {
    let json = sealer.open(body, id)?;
    serde_json::from_slice(&json)
        .map_err(|e| StoreError::Corrupt(format!("verification body: {e}")))
}

/// Seals an outbox message (its text carries the code).
pub fn seal_message(sealer: &Sealer, message: &OutboxMessage) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(message)
        .map_err(|e| StoreError::Corrupt(format!("message does not serialise: {e}")))?;
    Ok(sealer.seal(&json, message.verification.as_bytes())?)
}

/// Opens a stored outbox message.
pub fn open_message(
    sealer: &Sealer,
    verification: &[u8],
    body: &[u8],
) -> Result<OutboxMessage, StoreError> {
    let json = sealer.open(body, verification)?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("message body: {e}")))
}

/// Rate state as stored: JSON of instants, no personal data.
pub fn encode_rate_state(state: &RateState) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "{\"s\":[]}".into())
}

/// Reads stored rate state.
pub fn decode_rate_state(text: &str) -> Result<RateState, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("rate-limit state: {e}")))
}

/// Applies `outcomes` to their verifications: every hand-off starts its code's lifetime.
pub fn apply_handoffs(
    verification: &mut Verification,
    outcomes: &[(ClaimedMessage, MessageOutcome)],
) {
    for (claimed, outcome) in outcomes {
        if claimed.message.verification == verification.id
            && let MessageOutcome::HandedOff { at, .. } = outcome
        {
            verification.record_handoff(claimed.message.send_index as usize, *at);
        }
    }
}

/// The columns of a stored attempt, in the order every backend selects them: outbox id, channel,
/// provider, provider's message id, status, cause, detail, attempted at, updated at.
pub type AttemptColumns = (
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

/// The columns every backend selects for an attempt, matching [`AttemptColumns`].
pub const ATTEMPT_COLUMNS: &str = "outbox_id, channel, provider, provider_message_id, status, cause, \
     detail, attempted_at, updated_at";

/// A stored attempt row, read back leniently: an unknown status reads as `unknown`, an unknown
/// cause as none (a newer gerbang may have written them).
pub fn attempt_from_row(
    (
        outbox_id,
        channel,
        provider,
        provider_message_id,
        status,
        cause,
        detail,
        attempted_at,
        updated_at,
    ): AttemptColumns,
) -> Result<DeliveryAttempt, StoreError> {
    let time = |value: i64| {
        DateTime::from_timestamp_millis(value)
            .ok_or_else(|| StoreError::Corrupt(format!("timestamp {value} out of range")))
    };
    Ok(DeliveryAttempt {
        outbox_id,
        channel,
        provider,
        provider_message_id,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Unknown),
        cause: cause.as_deref().and_then(Cause::parse),
        detail,
        attempted_at: time(attempted_at)?,
        updated_at: time(updated_at)?,
    })
}
