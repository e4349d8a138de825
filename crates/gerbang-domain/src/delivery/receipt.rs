//! SMPP delivery receipts, parsed tolerantly.
//!
//! The de-facto text form (SMPP 3.4 Appendix B) is
//! `id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:…`,
//! but vendors differ: keys in any case and order, 10- or 12-digit dates, hex or decimal ids, extra
//! keys, a missing `text`. Only `id` and `stat` are required; everything else is read when it makes
//! sense and ignored when it does not. When the receipt carries the `receipted_message_id` and
//! `message_state` TLVs, they win over the text.
//!
//! The `text` field (the first characters of the message, which may hold the code) is never kept,
//! and anything after `text:` is ignored, so a message text cannot forge a `stat`.

use std::fmt;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// Longest receipt considered; SMPP `short_message` is at most 254 bytes, `message_payload` more.
const MAX_RECEIPT: usize = 2048;
/// Longest id or error code kept.
const MAX_FIELD: usize = 64;

/// The receipt's `stat` (or the `message_state` TLV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptState {
    Enroute,
    Delivered,
    Expired,
    Deleted,
    Undeliverable,
    Accepted,
    Unknown,
    Rejected,
    Skipped,
    /// A non-standard `FAILED` some aggregators send.
    Failed,
    /// Anything else; the raw text is in [`Receipt::stat`].
    Unrecognised,
}

impl ReceiptState {
    /// From the text form, case-insensitively (`DELIVRD`, `delivered`, `UNDELIV`…).
    pub fn from_stat(stat: &str) -> Self {
        match stat.to_ascii_uppercase().as_str() {
            "ENROUTE" => Self::Enroute,
            "DELIVRD" | "DELIVERED" => Self::Delivered,
            "EXPIRED" => Self::Expired,
            "DELETED" => Self::Deleted,
            "UNDELIV" | "UNDELIVERABLE" => Self::Undeliverable,
            "ACCEPTD" | "ACCEPTED" => Self::Accepted,
            "UNKNOWN" => Self::Unknown,
            "REJECTD" | "REJECTED" => Self::Rejected,
            "SKIPPED" => Self::Skipped,
            "FAILED" | "UNDELIVERED" | "NOROUTE" => Self::Failed,
            _ => Self::Unrecognised,
        }
    }

    /// From the SMPP `message_state` TLV (0x0427).
    pub fn from_message_state(value: u8) -> Self {
        match value {
            1 => Self::Enroute,
            2 => Self::Delivered,
            3 => Self::Expired,
            4 => Self::Deleted,
            5 => Self::Undeliverable,
            6 => Self::Accepted,
            7 => Self::Unknown,
            8 => Self::Rejected,
            9 => Self::Skipped,
            _ => Self::Unrecognised,
        }
    }

    /// The standard `stat` word of the state (SMPP 3.4 appendix B), for the staff view of a
    /// receipt that carried only the `message_state` number.
    pub fn stat_word(self) -> Option<&'static str> {
        Some(match self {
            Self::Enroute => "ENROUTE",
            Self::Delivered => "DELIVRD",
            Self::Expired => "EXPIRED",
            Self::Deleted => "DELETED",
            Self::Undeliverable => "UNDELIV",
            Self::Accepted => "ACCEPTD",
            Self::Unknown => "UNKNOWN",
            Self::Rejected => "REJECTD",
            Self::Skipped => "SKIPPED",
            Self::Failed => "FAILED",
            Self::Unrecognised => return None,
        })
    }

    /// No later receipt will follow.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Enroute)
    }
}

/// A parsed receipt. Never holds the message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message id as the SMSC wrote it (compare with [`same_message_id`]).
    pub message_id: String,
    pub state: ReceiptState,
    /// The `stat` as written, or the word of the `message_state` TLV's state (`UNDELIV` for 5; an
    /// unknown number as `message_state=N`), for the staff view.
    pub stat: String,
    /// The `err` as written, when present and not all zeros.
    pub error: Option<String>,
    pub submitted_at: Option<NaiveDateTime>,
    pub done_at: Option<NaiveDateTime>,
}

/// Why a receipt could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt has no message id")]
    MissingId,
    #[error("the receipt has no state")]
    MissingState,
}

/// The receipt TLVs, when the `deliver_sm` carried them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptTlvs {
    pub receipted_message_id: Option<String>,
    pub message_state: Option<u8>,
    /// `network_error_code` (0x0423): type (1 ANSI-136, 2 IS-95, 3 GSM) and the error.
    pub network_error: Option<(u8, u16)>,
}

impl Receipt {
    /// Parses a receipt from the `deliver_sm`'s text (lossily decoded) and TLVs.
    pub fn parse(text: &[u8], tlvs: &ReceiptTlvs) -> Result<Self, ReceiptError> {
        let limited = &text[..text.len().min(MAX_RECEIPT)];
        let text = String::from_utf8_lossy(limited);
        let fields = Fields::scan(&text);
        let message_id = tlvs
            .receipted_message_id
            .as_deref()
            .map(clean)
            .filter(|id| !id.is_empty())
            .or_else(|| fields.get("id").map(clean).filter(|id| !id.is_empty()))
            .ok_or(ReceiptError::MissingId)?;
        let (state, stat) = match (tlvs.message_state, fields.get("stat")) {
            (Some(value), _) => {
                let state = ReceiptState::from_message_state(value);
                let stat = state
                    .stat_word()
                    .map_or_else(|| format!("message_state={value}"), str::to_owned);
                (state, stat)
            }
            (None, Some(stat)) => {
                // The stat is one word; some vendors glue the next key on without a space.
                let word: String = stat.chars().take_while(char::is_ascii_alphabetic).collect();
                if word.is_empty() {
                    return Err(ReceiptError::MissingState);
                }
                (ReceiptState::from_stat(&word), word)
            }
            (None, None) => return Err(ReceiptError::MissingState),
        };
        let error = fields
            .get("err")
            .map(clean)
            .or_else(|| {
                tlvs.network_error
                    .map(|(kind, code)| format!("{kind}:{code}"))
            })
            .filter(|err| !err.is_empty() && !err.chars().all(|c| c == '0'));
        Ok(Self {
            message_id,
            state,
            stat,
            error,
            submitted_at: fields.get("submit date").and_then(date),
            done_at: fields.get("done date").and_then(date),
        })
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id:{} stat:{}", self.message_id, self.stat)?;
        if let Some(error) = &self.error {
            write!(f, " err:{error}")?;
        }
        Ok(())
    }
}

/// The keys we read, longest first so `submit date` is not mistaken for something shorter.
const KEYS: [&str; 8] = [
    "submit date",
    "done date",
    "dlvrd",
    "stat",
    "text",
    "sub",
    "err",
    "id",
];

/// The `key:value` fields of a receipt's text, found case-insensitively at word boundaries.
struct Fields<'a> {
    found: Vec<(&'static str, &'a str)>,
}

impl<'a> Fields<'a> {
    fn scan(text: &'a str) -> Self {
        let lower = text.to_ascii_lowercase();
        let bytes = lower.as_bytes();
        // Every key occurrence: (position of the key, key, position after its colon).
        let mut marks: Vec<(usize, &'static str, usize)> = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let boundary =
                at == 0 || matches!(bytes[at - 1], b' ' | b'\t' | b',' | b';' | b'\r' | b'\n');
            if boundary
                && let Some(key) = KEYS.iter().find(|key| {
                    lower[at..].starts_with(**key)
                        && lower[at + key.len()..]
                            .trim_start_matches(' ')
                            .starts_with([':', '='])
                })
            {
                let after_key = at + key.len();
                let colon = after_key
                    + (lower[after_key..].len() - lower[after_key..].trim_start_matches(' ').len());
                marks.push((at, key, colon + 1));
                if *key == "text" {
                    // Everything after `text:` is message text: never read keys from it.
                    break;
                }
                at = colon + 1;
                continue;
            }
            at += lower[at..].chars().next().map_or(1, char::len_utf8);
        }
        let mut found = Vec::with_capacity(marks.len());
        for (index, (_, key, start)) in marks.iter().enumerate() {
            if *key == "text" || found.iter().any(|(k, _)| k == key) {
                continue;
            }
            let end = marks.get(index + 1).map_or(text.len(), |next| next.0);
            found.push((
                *key,
                text[*start..end].trim_matches(|c: char| c.is_whitespace() || c == ',' || c == ';'),
            ));
        }
        Self { found }
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.found.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// An id or error code as kept: printable ASCII, no spaces, bounded.
fn clean(value: &str) -> String {
    value
        .chars()
        .take_while(|c| !c.is_whitespace())
        .filter(char::is_ascii_graphic)
        .take(MAX_FIELD)
        .collect()
}

/// `YYMMDDhhmm` or `YYMMDDhhmmss` (years 2000–2099); anything else is no date.
fn date(value: &str) -> Option<NaiveDateTime> {
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() != 10 && digits.len() != 12 {
        return None;
    }
    let part = |range: std::ops::Range<usize>| digits.get(range)?.parse::<u32>().ok();
    let second = if digits.len() == 12 { part(10..12)? } else { 0 };
    NaiveDate::from_ymd_opt(
        2000 + i32::try_from(part(0..2)?).ok()?,
        part(2..4)?,
        part(4..6)?,
    )?
    .and_hms_opt(part(6..8)?, part(8..10)?, second)
}

/// A message id as stored for matching: trimmed, lowercase, without leading zeros.
pub fn normalise_message_id(id: &str) -> String {
    let lower = id.trim().to_ascii_lowercase();
    let stripped = lower.trim_start_matches('0');
    if stripped.is_empty() && !lower.is_empty() {
        "0".into()
    } else {
        stripped.to_owned()
    }
}

/// The normalised ids a receipt's id may stand for. SMSCs differ: some write an id in hex on submit
/// and in decimal in receipts (or the reverse), some pad with zeros, some change case. The first
/// candidate is the id as written; the others are its decimal-to-hex and hex-to-decimal readings,
/// so a lookup should prefer an exact match.
pub fn receipt_id_candidates(receipted: &str) -> Vec<String> {
    let id = normalise_message_id(receipted);
    if id.is_empty() {
        return Vec::new();
    }
    let mut candidates = vec![id.clone()];
    if let Ok(n) = id.parse::<u128>() {
        candidates.push(format!("{n:x}"));
    }
    if let Ok(n) = u128::from_str_radix(&id, 16) {
        candidates.push(n.to_string());
    }
    candidates.dedup();
    candidates
}
