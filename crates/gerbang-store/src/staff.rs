//! Storage of back-office staff and their sessions. A staff member is one sealed envelope (the
//! serialised [`StaffMember`]: it holds a password hash and the TOTP secret) under a unique name;
//! every change is a compare-and-set on a version and appends its audit records in the same
//! transaction, so no sign-in or staff change is ever stored without its entry in the log.

use std::future::Future;

use chrono::{DateTime, Utc};
use gerbang_domain::account::TokenDigest;
use gerbang_domain::staff::{StaffMember, StaffName, StaffSessionLife};

use crate::audit::AuditRecord;
use crate::error::StoreError;
use crate::sealing::Sealer;

/// A staff member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStaff {
    pub id: i64,
    pub version: i64,
    pub member: StaffMember,
}

/// What a staff member is looked up by.
#[derive(Debug, Clone, Copy)]
pub enum StaffKey<'a> {
    Id(i64),
    Name(&'a StaffName),
}

/// A staff session, kept by the SHA-256 of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStaffSession {
    pub token: TokenDigest,
    pub staff: i64,
    pub life: StaffSessionLife,
}

/// Why a staff write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRefusal {
    /// The name belongs to someone else already.
    NameTaken,
    /// Someone changed the member since it was read: read again and redo.
    Stale,
}

/// Staff storage.
pub trait StaffStore {
    /// Creates a staff member with its audit records.
    fn create_staff(
        &self,
        member: &StaffMember,
        audit: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<Result<StoredStaff, StaffRefusal>, StoreError>> + Send;

    fn find_staff(
        &self,
        key: StaffKey<'_>,
    ) -> impl Future<Output = Result<Option<StoredStaff>, StoreError>> + Send;

    /// Every staff member, by name.
    fn list_staff(&self) -> impl Future<Output = Result<Vec<StoredStaff>, StoreError>> + Send;

    /// Writes `member` over version `version` of staff `id` with its audit records, all or nothing.
    fn save_staff(
        &self,
        id: i64,
        version: i64,
        member: &StaffMember,
        audit: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<Result<StoredStaff, StaffRefusal>, StoreError>> + Send;

    fn create_staff_session(
        &self,
        session: &StoredStaffSession,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn find_staff_session(
        &self,
        token: &TokenDigest,
    ) -> impl Future<Output = Result<Option<StoredStaffSession>, StoreError>> + Send;

    /// Records a use of the session (never moves its last use back).
    fn touch_staff_session(
        &self,
        token: &TokenDigest,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes one session, or every live session of staff `staff`; returns how many.
    fn revoke_staff_sessions(
        &self,
        staff: i64,
        token: Option<&TokenDigest>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The associated data a staff envelope is sealed under: its name, so an envelope cannot be moved
/// to another row.
fn context(name: &StaffName) -> Vec<u8> {
    [b"staff:".as_slice(), name.as_str().as_bytes()].concat()
}

pub fn seal_staff(member: &StaffMember, sealer: &Sealer) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(member).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(sealer.seal(&json, &context(&member.name))?)
}

pub fn open_staff(name: &str, sealed: &[u8], sealer: &Sealer) -> Result<StaffMember, StoreError> {
    let name =
        StaffName::parse(name).map_err(|e| StoreError::Corrupt(format!("staff name: {e}")))?;
    let json = sealer.open(sealed, &context(&name))?;
    let member: StaffMember =
        serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if member.name != name {
        return Err(StoreError::Corrupt(
            "staff envelope under another name".into(),
        ));
    }
    Ok(member)
}
