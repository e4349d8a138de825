//! Verifications: a code sent to one destination for one purpose, and checked by the participant.
//!
//! Layout:
//! - this file: [`Verification`] and its state machine (pending → verified / expired / exhausted /
//!   cancelled), [`OtpPolicy`], channels and destinations, and the refusals a participant can meet;
//! - [`code`]: generating, digesting and comparing codes;
//! - [`purpose`]: purposes, step-up actions and the binding a code is keyed on;
//! - [`rate`]: rate-limit rules and their arithmetic;
//! - [`message`]: the text that carries a code;
//! - [`admission`]: which codes are still queued when the queue is long;
//! - [`pumping`]: the SMS pumping brake's rule.
//!
//! Everything here takes `now` as an argument; nothing reads a clock or does I/O.

pub mod admission;
pub mod code;
pub mod message;
pub mod pumping;
pub mod purpose;
pub mod rate;
pub mod template;

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};

use crate::explain::Explain;
use crate::identity::{Email, MobileNumber};
use code::{CodeDigest, CodeLength};

/// How a code travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Email,
    Whatsapp,
    Voice,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Self::Sms, Self::Email, Self::Whatsapp, Self::Voice];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Whatsapp => "whatsapp",
            Self::Voice => "voice",
        }
    }

    pub fn parse(input: &str) -> Result<Self, VerificationError> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == input)
            .ok_or(VerificationError::ChannelUnknown)
    }

    /// SMS, WhatsApp and voice reach a mobile number; email reaches an address.
    pub fn reaches(self, destination: &Destination) -> bool {
        matches!(
            (self, destination),
            (Self::Email, Destination::Email(_))
                | (
                    Self::Sms | Self::Whatsapp | Self::Voice,
                    Destination::Phone(_)
                )
        )
    }
}

/// Where a code is sent. `Debug` is masked like the identifiers it wraps.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    Phone(MobileNumber),
    Email(Email),
}

impl Destination {
    /// `0812****7890` or `b***@gmail.com`: what a participant or agent may be shown.
    pub fn masked(&self) -> String {
        match self {
            Self::Phone(phone) => phone.masked(),
            Self::Email(email) => email.masked(),
        }
    }

    /// The full value, for the rate-limit key digest and the provider; never for a log.
    pub fn reveal(&self) -> &str {
        match self {
            Self::Phone(phone) => phone.e164(),
            Self::Email(email) => email.as_str(),
        }
    }

    /// The number without its last 4 digits (a block of 10,000 numbers), for the SMS-pumping ceiling.
    pub fn number_block(&self) -> Option<&str> {
        match self {
            Self::Phone(phone) => phone.e164().get(..phone.e164().len().saturating_sub(4)),
            Self::Email(_) => None,
        }
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({})", self.masked())
    }
}

/// Language of the messages a participant receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locale {
    #[default]
    Id,
    En,
}

impl Locale {
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "id" => Some(Self::Id),
            "en" => Some(Self::En),
            _ => None,
        }
    }
}

/// 16 bytes (see [`VerificationId::new`]), written `vf_` and 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VerificationId([u8; 16]);

impl VerificationId {
    pub fn random<R: Rng + CryptoRng>(rng: &mut R) -> Self {
        Self(rng.random())
    }

    /// 48 bits of creation time (milliseconds) then 80 random bits: unguessable, and new ids land at
    /// the end of the stored index instead of on a random page, which keeps each commit small.
    pub fn new<R: Rng + CryptoRng>(at: DateTime<Utc>, rng: &mut R) -> Self {
        let mut bytes: [u8; 16] = rng.random();
        let millis = at.timestamp_millis().to_be_bytes();
        bytes[..6].copy_from_slice(&millis[2..]);
        Self(bytes)
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn parse(input: &str) -> Result<Self, VerificationError> {
        let hex = input
            .strip_prefix("vf_")
            .filter(|hex| hex.len() == 32)
            .ok_or(VerificationError::IdMalformed)?;
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let pair = hex
                .get(2 * i..2 * i + 2)
                .ok_or(VerificationError::IdMalformed)?;
            if !pair
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(VerificationError::IdMalformed);
            }
            *byte = u8::from_str_radix(pair, 16).map_err(|_| VerificationError::IdMalformed)?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("vf_")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl TryFrom<String> for VerificationId {
    type Error = VerificationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<VerificationId> for String {
    fn from(value: VerificationId) -> Self {
        value.to_string()
    }
}

/// The OTP policy of SPEC §4 (rate limits live in [`rate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpPolicy {
    pub code_length: CodeLength,
    /// How long a code lives once handed to the provider: queue time does not eat it.
    pub lifetime: Duration,
    /// How long a code lives at most from the request that created it, delivered or not.
    pub hard_cap: Duration,
    /// Wrong entries that kill a verification.
    pub max_wrong_attempts: u8,
    /// Countdown after the first send, the first resend, ...; the last step repeats.
    pub resend_ladder: Vec<Duration>,
}

impl Default for OtpPolicy {
    fn default() -> Self {
        Self {
            code_length: CodeLength::default(),
            lifetime: Duration::minutes(5),
            hard_cap: Duration::minutes(10),
            max_wrong_attempts: 5,
            resend_ladder: vec![
                Duration::seconds(60),
                Duration::seconds(120),
                Duration::seconds(300),
            ],
        }
    }
}

/// One code sent: the first send or a resend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSend {
    pub channel: Channel,
    pub destination: Destination,
    pub issued_at: DateTime<Utc>,
    /// When the provider took the message; the code's lifetime runs from here.
    pub handed_off_at: Option<DateTime<Utc>>,
    #[serde(with = "digest_hex")]
    pub digest: CodeDigest,
}

impl CodeSend {
    /// Lifetime from hand-off, never beyond the hard cap from the request.
    pub fn expires_at(&self, policy: &OtpPolicy) -> DateTime<Utc> {
        let cap = self.issued_at + policy.hard_cap;
        match self.handed_off_at {
            Some(handed_off) => (handed_off + policy.lifetime).min(cap),
            None => cap,
        }
    }
}

/// How a verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "at", rename_all = "snake_case")]
pub enum Outcome {
    Verified(DateTime<Utc>),
    Exhausted(DateTime<Utc>),
    Cancelled(DateTime<Utc>),
}

/// Where a verification stands at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Verified,
    Expired,
    Exhausted,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Expired => "expired",
            Self::Exhausted => "exhausted",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A verification as stored. The code itself is never kept: only one digest per send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub id: VerificationId,
    /// The API client that started it; any other client is told it does not exist.
    pub client: String,
    pub purpose: purpose::Purpose,
    pub action: Option<purpose::SensitiveAction>,
    /// A short, non-secret reminder of the action's details shown in the message (`****7890`).
    pub action_hint: Option<String>,
    pub locale: Locale,
    /// The rate-limit key of the flow (purpose and subject), so resends count against the same flow
    /// whichever channel they use. Personal data: lives only in the sealed body.
    #[serde(default)]
    pub flow: String,
    /// The bytes the codes are bound to (purpose, action, digest of the action's details), so a
    /// resend binds its new code to the same action. Inside the sealed body only.
    #[serde(default, with = "hex_bytes")]
    pub binding: Vec<u8>,
    /// Who the calling service said this is for, so resends count against the same account and NIK
    /// limits as the first send. Personal data: inside the sealed body only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nik: Option<crate::Nik>,
    pub created_at: DateTime<Utc>,
    /// Oldest first; never empty.
    pub sends: Vec<CodeSend>,
    pub wrong_attempts: u8,
    pub outcome: Option<Outcome>,
}

/// What a correct check returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub at: DateTime<Utc>,
}

impl Verification {
    pub fn latest(&self) -> Option<&CodeSend> {
        self.sends.last()
    }

    /// The instant the last live code dies.
    pub fn expires_at(&self, policy: &OtpPolicy) -> DateTime<Utc> {
        self.sends
            .iter()
            .map(|send| send.expires_at(policy))
            .max()
            .unwrap_or(self.created_at)
    }

    pub fn status(&self, policy: &OtpPolicy, now: DateTime<Utc>) -> Status {
        match self.outcome {
            Some(Outcome::Verified(_)) => Status::Verified,
            Some(Outcome::Exhausted(_)) => Status::Exhausted,
            Some(Outcome::Cancelled(_)) => Status::Cancelled,
            None if now >= self.expires_at(policy) => Status::Expired,
            None => Status::Pending,
        }
    }

    /// Refuses anything but a pending verification, naming why.
    fn ensure_pending(
        &self,
        policy: &OtpPolicy,
        now: DateTime<Utc>,
    ) -> Result<(), VerificationError> {
        match self.status(policy, now) {
            Status::Pending => Ok(()),
            Status::Verified => Err(VerificationError::AlreadyUsed),
            Status::Expired => Err(VerificationError::Expired),
            Status::Exhausted => Err(VerificationError::AttemptsExhausted),
            Status::Cancelled => Err(VerificationError::Cancelled),
        }
    }

    /// When the next resend is allowed: the last send plus the ladder step for the number of sends.
    pub fn next_resend_at(&self, policy: &OtpPolicy) -> DateTime<Utc> {
        let sends = self.sends.len().max(1);
        let step = policy
            .resend_ladder
            .get(sends - 1)
            .or(policy.resend_ladder.last())
            .copied()
            .unwrap_or_else(Duration::zero);
        self.latest().map_or(self.created_at, |send| send.issued_at) + step
    }

    /// Whether a resend may go out now. During the countdown it refuses with the same instant every
    /// time, so pressing resend again changes nothing. `skip_countdown`: a switch to a channel the
    /// fallback offers because the last message did not arrive.
    pub fn may_resend(
        &self,
        policy: &OtpPolicy,
        now: DateTime<Utc>,
        skip_countdown: bool,
    ) -> Result<(), VerificationError> {
        self.ensure_pending(policy, now).or_else(|err| match err {
            // An expired verification can still be resent: that is what resend is for.
            VerificationError::Expired => Ok(()),
            other => Err(other),
        })?;
        let next = self.next_resend_at(policy);
        if now < next && !skip_countdown {
            return Err(VerificationError::ResendCountdown { until: next });
        }
        Ok(())
    }

    /// Checks a typed code, already digested for this verification and the caller's binding.
    /// A wrong code counts an attempt; the last allowed wrong attempt kills the verification. A
    /// malformed code never gets here, and a replay or a late code counts nothing.
    pub fn check(
        &mut self,
        candidate: &CodeDigest,
        policy: &OtpPolicy,
        now: DateTime<Utc>,
    ) -> Result<Verified, VerificationError> {
        self.check_any(std::slice::from_ref(candidate), policy, now)
    }

    /// Like [`Verification::check`] with the typed code digested under each key in use (during a
    /// key rotation, the current and the previous); one typed code counts one attempt.
    pub fn check_any(
        &mut self,
        candidates: &[CodeDigest],
        policy: &OtpPolicy,
        now: DateTime<Utc>,
    ) -> Result<Verified, VerificationError> {
        self.ensure_pending(policy, now)?;
        // Compare with every send, live or not, without stopping at the first match.
        let mut live_match = false;
        let mut late_match = false;
        for send in &self.sends {
            let matches = candidates.iter().fold(false, |found, candidate| {
                found | send.digest.matches(candidate)
            });
            let live = now < send.expires_at(policy);
            live_match |= matches & live;
            late_match |= matches & !live;
        }
        if live_match {
            self.outcome = Some(Outcome::Verified(now));
            return Ok(Verified { at: now });
        }
        if late_match {
            return Err(VerificationError::CodeExpired);
        }
        self.wrong_attempts = self.wrong_attempts.saturating_add(1);
        if self.wrong_attempts >= policy.max_wrong_attempts {
            self.outcome = Some(Outcome::Exhausted(now));
            return Err(VerificationError::AttemptsExhausted);
        }
        Err(VerificationError::Incorrect {
            attempts_left: policy.max_wrong_attempts - self.wrong_attempts,
        })
    }

    /// Records that the provider took send number `index` (0-based) at `at`; only the first hand-off
    /// counts.
    pub fn record_handoff(&mut self, index: usize, at: DateTime<Utc>) {
        if let Some(send) = self.sends.get_mut(index)
            && send.handed_off_at.is_none()
        {
            send.handed_off_at = Some(at);
        }
    }

    /// Ends a pending verification on the caller's request.
    pub fn cancel(
        &mut self,
        policy: &OtpPolicy,
        now: DateTime<Utc>,
    ) -> Result<(), VerificationError> {
        self.ensure_pending(policy, now)?;
        self.outcome = Some(Outcome::Cancelled(now));
        Ok(())
    }
}

/// What a participant or API client can be told about a verification request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerificationError {
    #[error("unknown channel; use sms, email, whatsapp or voice")]
    ChannelUnknown,
    #[error("this channel cannot reach that destination")]
    ChannelMismatch,
    #[error("this is not a verification id")]
    IdMalformed,
    #[error("no such verification")]
    NotFound,
    #[error("this code was already used")]
    AlreadyUsed,
    #[error("this verification has expired; ask for a new code")]
    Expired,
    #[error("that code has expired; enter the newest code you received")]
    CodeExpired,
    #[error("too many wrong codes; ask for a new code")]
    AttemptsExhausted,
    #[error("this verification was cancelled")]
    Cancelled,
    #[error("wrong code; {attempts_left} attempts left")]
    Incorrect { attempts_left: u8 },
    #[error("a code was just sent; you can ask for another one at {until}")]
    ResendCountdown { until: DateTime<Utc> },
}

impl VerificationError {
    /// The instant from which the same request may succeed, where there is one.
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::ResendCountdown { until } => Some(*until),
            _ => None,
        }
    }
}

impl Explain for VerificationError {
    fn code(&self) -> &'static str {
        match self {
            Self::ChannelUnknown => "channel_unknown",
            Self::ChannelMismatch => "channel_destination_mismatch",
            Self::IdMalformed | Self::NotFound => "verification_not_found",
            Self::AlreadyUsed => "otp_already_used",
            Self::Expired => "verification_expired",
            Self::CodeExpired => "otp_expired",
            Self::AttemptsExhausted => "otp_attempts_exhausted",
            Self::Cancelled => "verification_cancelled",
            Self::Incorrect { .. } => "otp_incorrect",
            Self::ResendCountdown { .. } => "resend_countdown",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::ChannelUnknown => {
                "Saluran tidak dikenal; gunakan sms, email, whatsapp atau voice.".into()
            }
            Self::ChannelMismatch => "Saluran ini tidak dapat mengirim ke tujuan tersebut.".into(),
            Self::IdMalformed | Self::NotFound => "Verifikasi tidak ditemukan.".into(),
            Self::AlreadyUsed => "Kode ini sudah digunakan.".into(),
            Self::Expired => "Verifikasi sudah kedaluwarsa; minta kode baru.".into(),
            Self::CodeExpired => {
                "Kode itu sudah kedaluwarsa; masukkan kode terbaru yang Anda terima.".into()
            }
            Self::AttemptsExhausted => "Terlalu banyak kode salah; minta kode baru.".into(),
            Self::Cancelled => "Verifikasi ini sudah dibatalkan.".into(),
            Self::Incorrect { attempts_left } => {
                format!("Kode salah; sisa {attempts_left} kali percobaan.")
            }
            Self::ResendCountdown { .. } => {
                "Kode baru saja dikirim; tunggu hitung mundur selesai sebelum meminta lagi.".into()
            }
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::ChannelUnknown => "Unknown channel; use sms, email, whatsapp or voice.".into(),
            Self::ChannelMismatch => "This channel cannot reach that destination.".into(),
            Self::IdMalformed | Self::NotFound => "No such verification.".into(),
            Self::AlreadyUsed => "This code was already used.".into(),
            Self::Expired => "This verification has expired; ask for a new code.".into(),
            Self::CodeExpired => {
                "That code has expired; enter the newest code you received.".into()
            }
            Self::AttemptsExhausted => "Too many wrong codes; ask for a new code.".into(),
            Self::Cancelled => "This verification was cancelled.".into(),
            Self::Incorrect { attempts_left } => {
                format!("Wrong code; {attempts_left} attempts left.")
            }
            Self::ResendCountdown { .. } => {
                "A code was just sent; wait for the countdown before asking again.".into()
            }
        }
    }
}

/// Bytes in the stored body as lowercase hex: a JSON array of numbers would take twice the room.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn encode(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            hex.push(DIGITS[usize::from(byte >> 4)] as char);
            hex.push(DIGITS[usize::from(byte & 0x0f)] as char);
        }
        hex
    }

    pub(super) fn decode<E: serde::de::Error>(hex: &str) -> Result<Vec<u8>, E> {
        if !hex.len().is_multiple_of(2) {
            return Err(E::custom("hex must have an even number of digits"));
        }
        (0..hex.len() / 2)
            .map(|i| {
                hex.get(2 * i..2 * i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(|| E::custom("not hex"))
            })
            .collect()
    }

    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        decode(&String::deserialize(deserializer)?)
    }
}

mod digest_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::code::CodeDigest;

    pub fn serialize<S: Serializer>(value: &CodeDigest, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::hex_bytes::encode(value.as_bytes()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<CodeDigest, D::Error> {
        let bytes = super::hex_bytes::decode::<D::Error>(&String::deserialize(deserializer)?)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("digest must be 64 hex digits"))?;
        Ok(CodeDigest::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests;
