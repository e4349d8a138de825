//! Storage contracts of gerbang: small capability traits composed into one [`Store`], the one error
//! type [`StoreError`], and the [`sealing`] of personal data at rest that every backend shares.
//!
//! Layout:
//! - [`participants`]: the participant registry's storage (lookup, bulk import).
//! - [`first_load`]: an import into an empty registry, its indexes built at the commit.
//! - [`verifications`]: verifications, rate-limit state and the outbox, changed atomically.
//! - [`accounts`]: participant accounts, their sessions, flows in progress and their events.
//! - [`audit`]: the tamper-evident audit log the account events (and staff actions) go to.
//! - [`staff`]: back-office staff and their sessions.
//! - [`tickets`]: complaint tickets, their notes and the verifications they are about.
//! - [`requests`]: four-eyes requests (a counter contact change awaiting a second officer).
//! - [`health`]: delivery counts by hour, provider and status for the operator's health page.
//! - [`pumping`]: the SMS pumping brake's counts per number block, and its brakes.
//! - [`sealing`]: the personal-data key, the AEAD envelope and the keyed lookup digests.
//! - [`error`]: [`StoreError`], what a caller can tell apart (unavailable, key mismatch, ...).
//!
//! Backends (`gerbang-store-sqlite`, `gerbang-store-postgres`) implement these traits; the binary
//! chooses one from the database URL once at start-up and the rest of the code is generic over
//! [`Store`]. No SQL lives outside the backend crates.

use std::future::Future;
use std::time::Duration;

pub mod accounts;
pub mod audit;
pub mod error;
pub mod first_load;
pub mod health;
pub mod participants;
pub mod pumping;
pub mod requests;
pub mod rotation;
pub mod sealing;
pub mod staff;
pub mod tickets;
pub mod verifications;

pub use accounts::{
    AccountEvent, AccountKey, AccountRefusal, AccountStore, AccountTaken, StoredAccount,
    StoredFlow, StoredSession,
};
pub use audit::{
    AuditChain, AuditEntry, AuditHead, AuditRecord, AuditStore, AuditVerifier, Tamper,
};
pub use error::StoreError;
pub use health::{AttemptCount, DailySends, HealthStore};
pub use participants::{
    BatchOutcome, CommitOutcome, DigestedParticipant, ParticipantConflict, ParticipantImport,
    ParticipantKey, ParticipantStore, RowConflict, SealedParticipant, StoredParticipant,
};
pub use pumping::{BlockCount, Brake, PumpingStore};
pub use requests::{ContactChangeRequest, RequestDetails, RequestStore};
pub use rotation::{KeyRotationStore, SealedTable};
pub use sealing::{KeyAge, KeyFingerprint, PersonalDataKey, Sealer, SealingError};
pub use staff::{StaffKey, StaffRefusal, StaffStore, StoredStaff, StoredStaffSession};
pub use tickets::{Ticket, TicketNote, TicketStore};
pub use verifications::{
    Changes, ClaimedMessage, DeliveryAttempt, FailedTry, InboxMessage, MessageOutcome,
    OutboxMessage, Priority, QueuePosition, RateKey, ReceiptUpdate, Snapshot, VerificationStore,
};

/// How long a backend waits for its database (`storage.connect_timeout_ms`,
/// `storage.statement_timeout_ms`), so that a database that accepts connections but never answers
/// fails the start or the readiness check instead of hanging them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection (on PostgreSQL: TCP, TLS, start-up and authentication), waiting for a
    /// free one from the pool, and [`Store::ping`] as a whole.
    pub connect: Duration,
    /// One statement: on PostgreSQL the server cancels it (`statement_timeout`; migrations are
    /// exempt), on SQLite it is the longest wait for another writer's lock (busy timeout).
    pub statement: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            statement: Duration::from_secs(10),
        }
    }
}

/// Everything gerbang needs from a database, composed from the capability traits.
pub trait Store:
    ParticipantStore
    + VerificationStore
    + AccountStore
    + AuditStore
    + StaffStore
    + TicketStore
    + RequestStore
    + HealthStore
    + PumpingStore
    + KeyRotationStore
    + Clone
    + Send
    + Sync
    + 'static
{
    /// Name of the backend, for logs and metrics (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Answers `Ok` only when the database executes a query now, within [`Timeouts::connect`];
    /// readiness depends on it.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Closes every connection; later calls fail with [`StoreError::Unavailable`].
    fn close(&self) -> impl Future<Output = ()> + Send;
}
