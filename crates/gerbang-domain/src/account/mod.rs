//! Participant accounts: the rules of their passwords, of locking them after failed logins and of
//! their login sessions, trusted devices and the cool-off after a phone change. The account model itself and the flows (registration, login, recovery)
//! follow.

pub mod device;
pub mod lockout;
pub mod password;
pub mod session;

pub use device::{
    CoolOffNotice, CoolOffPolicy, CoolingOff, DeviceDigest, DeviceError, TrustedDevice,
    TrustedDevices,
};
pub use lockout::{LockEvent, LockNotice, Locked, LockoutPolicy, LoginGuard};
pub use password::{PasswordPolicy, PasswordRule, PersonalFacts, WeakPassword};
pub use session::{SessionEnd, SessionLife, SessionPolicy, SessionToken, TokenDigest};

/// Asserts that `docs/accounts.md` has the row `| `code` | Indonesian | English |` of `error`, word
/// for word, so the document cannot drift from the messages.
#[cfg(test)]
pub(crate) fn assert_documented(error: &dyn crate::Explain) {
    let doc = include_str!("../../../../docs/accounts.md");
    let row = format!(
        "| `{}` | {} | {} |",
        error.code(),
        error.message_id(),
        error.message_en()
    );
    assert!(doc.contains(&row), "docs/accounts.md lacks {row}");
}
