//! Four-eyes requests as stored: a contact change made at a branch counter, waiting for a second
//! person's approval and then for the new contact's code. The new contact, the identity document
//! and the reason are personal data and sealed at rest; the state, the people and the times are
//! clear, so that the approval queue is one indexed query.
//!
//! A decision is a compare-and-set on the stored state: of two approvers pressing at once exactly
//! one wins, and the other is told the request is already decided. Every write appends its audit
//! records in the same transaction, and only when it happened.

use std::future::Future;

use chrono::{DateTime, Utc};
use gerbang_domain::approval::{FourEyes, IdentityCheck, RequestState};
use gerbang_domain::verification::{Destination, VerificationId};
use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;
use crate::error::StoreError;
use crate::sealing::Sealer;

/// A counter contact-change request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChangeRequest {
    pub id: i64,
    /// What staff quote: `R-` and 8 random digits, `R-4821-0937`.
    pub number: String,
    pub account: i64,
    /// The complaint ticket it was made under.
    pub ticket: String,
    pub details: RequestDetails,
    pub rules: FourEyes,
    /// The code sent to the new contact after approval (the latest, after a resend).
    pub verification: Option<VerificationId>,
}

/// The sealed part of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestDetails {
    pub to: Destination,
    pub identity: IdentityCheck,
    pub reason: String,
}

/// Storage of four-eyes requests.
pub trait RequestStore {
    /// Stores a new request with its audit records; `None` when the number is taken (the caller
    /// draws another).
    fn insert_request(
        &self,
        request: &ContactChangeRequest,
        audit: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    fn find_request(
        &self,
        number: &str,
    ) -> impl Future<Output = Result<Option<ContactChangeRequest>, StoreError>> + Send;

    /// Requests still waiting for a second person at `now`, oldest first.
    fn pending_requests(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ContactChangeRequest>, StoreError>> + Send;

    /// Writes `request`'s decision, completion and verification if its stored state is still
    /// `expected` and its stored verification still `verification` (the one the caller saw), with
    /// `audit`; `false` (and nothing written) when someone else moved it first.
    fn update_request(
        &self,
        request: &ContactChangeRequest,
        expected: (RequestState, Option<VerificationId>),
        audit: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

fn context(number: &str) -> Vec<u8> {
    [b"request:".as_slice(), number.as_bytes()].concat()
}

pub fn seal_details(
    number: &str,
    details: &RequestDetails,
    sealer: &Sealer,
) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(details).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(sealer.seal(&json, &context(number))?)
}

pub fn open_details(
    number: &str,
    sealed: &[u8],
    sealer: &Sealer,
) -> Result<RequestDetails, StoreError> {
    let json = sealer.open(sealed, &context(number))?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn parse_state(text: &str) -> Result<RequestState, StoreError> {
    RequestState::parse(text).ok_or_else(|| StoreError::Corrupt(format!("request state {text}")))
}

/// A new request number: `R-` and 8 random digits.
pub fn new_request_number() -> String {
    crate::tickets::new_number('R')
}

/// Whether `text` has the shape of a request number.
pub fn is_request_number(text: &str) -> bool {
    crate::tickets::is_number('R', text)
}

/// A stored verification id (16 bytes), when there is one.
pub fn verification_from(bytes: Option<Vec<u8>>) -> Result<Option<VerificationId>, StoreError> {
    bytes
        .map(|bytes| {
            <[u8; 16]>::try_from(bytes.as_slice())
                .map(VerificationId::from_bytes)
                .map_err(|_| StoreError::Corrupt("a request's verification id".into()))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_one_shape() {
        for _ in 0..100 {
            assert!(is_request_number(&new_request_number()));
        }
        for bad in ["T-1234-5678", "R-1234-567", "R-12a4-5678", ""] {
            assert!(!is_request_number(bad), "{bad}");
        }
    }
}
