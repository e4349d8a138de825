//! The one error type of the storage contracts. Backends convert `sqlx::Error` into it in one place;
//! a database failure is never turned into "not found".

use crate::sealing::{KeyFingerprint, SealingError};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the connection (down, wrong URL, pool exhausted).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The configured personal-data key is not the key this database was sealed with.
    #[error(
        "the personal-data key (fingerprint {configured}) is not the key this database was sealed with \
         (fingerprint {stored}); configure the original key in privacy.key or GERBANG_PRIVACY__KEY"
    )]
    KeyMismatch {
        configured: KeyFingerprint,
        stored: KeyFingerprint,
    },
    /// The configured keys do not fit the rotation state the database records, or an operation
    /// cannot run during a rotation; the text says what to do.
    #[error("{0}")]
    KeyRotation(String),
    /// Stored personal data could not be opened with the configured key, or is damaged.
    #[error("stored personal data could not be opened: {0}")]
    Sealing(#[from] SealingError),
    /// A row holds a value no gerbang version writes.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database error, with its message (never containing personal data: all of it is
    /// sealed or digested before it reaches SQL).
    #[error("database error: {0}")]
    Database(String),
}
