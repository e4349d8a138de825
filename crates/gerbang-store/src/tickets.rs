//! Complaint tickets (SPEC §6): what a participant reported to the call centre or a branch, with a
//! number they can quote (`T-1234-5678`), the staff notes on it and the verifications it is about.
//! The subject and notes are staff's free text and may hold personal data, so they are sealed at
//! rest; every write appends its audit records in the same transaction.

use std::future::Future;

use chrono::{DateTime, Utc};
use gerbang_domain::verification::VerificationId;
use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;
use crate::error::StoreError;
use crate::sealing::Sealer;

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    /// What the participant quotes: `T-` and 8 random digits in two groups.
    pub number: String,
    /// The account concerned, if the participant has one.
    pub account: Option<i64>,
    pub opened_by: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub subject: String,
}

/// A note on a ticket: who wrote what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketNote {
    pub at: DateTime<Utc>,
    pub by: String,
    pub text: String,
}

/// Ticket storage.
pub trait TicketStore {
    /// Opens a ticket; `None` when the number is taken (the caller draws another).
    #[allow(clippy::too_many_arguments)]
    fn open_ticket(
        &self,
        number: &str,
        account: Option<i64>,
        by: &str,
        at: DateTime<Utc>,
        subject: &str,
        audit: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<Option<Ticket>, StoreError>> + Send;

    fn find_ticket(
        &self,
        number: &str,
    ) -> impl Future<Output = Result<Option<Ticket>, StoreError>> + Send;

    /// The tickets of an account, newest first.
    fn account_tickets(
        &self,
        account: i64,
    ) -> impl Future<Output = Result<Vec<Ticket>, StoreError>> + Send;

    /// Tickets not closed, newest first (a supervisor's queue).
    fn open_tickets(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Ticket>, StoreError>> + Send;

    /// Adds a note (and links verifications) with its audit records.
    fn add_ticket_note(
        &self,
        ticket: i64,
        note: &TicketNote,
        link: Vec<VerificationId>,
        audit: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The notes of a ticket, oldest first, and the verifications linked to it.
    fn ticket_notes(
        &self,
        ticket: i64,
    ) -> impl Future<Output = Result<(Vec<TicketNote>, Vec<VerificationId>), StoreError>> + Send;
}

fn context(number: &str) -> Vec<u8> {
    [b"ticket:".as_slice(), number.as_bytes()].concat()
}

pub fn seal_text(number: &str, text: &str, sealer: &Sealer) -> Result<Vec<u8>, StoreError> {
    Ok(sealer.seal(text.as_bytes(), &context(number))?)
}

pub fn open_text(number: &str, sealed: &[u8], sealer: &Sealer) -> Result<String, StoreError> {
    let bytes = sealer.open(sealed, &context(number))?;
    String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn seal_note(number: &str, note: &TicketNote, sealer: &Sealer) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_string(note).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    seal_text(number, &json, sealer)
}

pub fn open_note(number: &str, sealed: &[u8], sealer: &Sealer) -> Result<TicketNote, StoreError> {
    serde_json::from_str(&open_text(number, sealed, sealer)?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A new number people quote: `letter`, `-` and 8 random digits in two groups (`T-4821-0937`).
pub(crate) fn new_number(letter: char) -> String {
    let n = rand::Rng::random_range(&mut rand::rng(), 0..100_000_000u32);
    format!("{letter}-{:04}-{:04}", n / 10_000, n % 10_000)
}

/// Whether `text` has the shape [`new_number`] draws for `letter`.
pub(crate) fn is_number(letter: char, text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 11
        && text.starts_with(letter)
        && b[1] == b'-'
        && b[6] == b'-'
        && b[2..6].iter().chain(&b[7..]).all(u8::is_ascii_digit)
}

/// A new ticket number: `T-` and 8 random digits, `T-4821-0937`.
pub fn new_ticket_number() -> String {
    new_number('T')
}

/// Whether `text` has the shape of a ticket number (so a typo is refused before any lookup).
pub fn is_ticket_number(text: &str) -> bool {
    is_number('T', text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_one_shape() {
        for _ in 0..100 {
            assert!(is_ticket_number(&new_ticket_number()));
        }
        for bad in [
            "T-1234-567",
            "X-1234-5678",
            "T-12a4-5678",
            "T-1234_5678",
            "",
        ] {
            assert!(!is_ticket_number(bad), "{bad}");
        }
    }
}
