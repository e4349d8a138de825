//! Participant accounts: the [`Account`] itself, and the rules of its password, of locking it after
//! failed logins, of its login sessions, trusted devices and the cool-off after a phone change. The
//! flows that use them (registration, login, recovery, contact change, step-up) are in
//! `gerbang-core::accounts`.

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

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::identity::{Email, IndonesianTimeZone, JknCardNumber, MobileNumber, Nik};

/// A participant's account: who it belongs to, how they are reached and everything its login rules
/// keep. Stored sealed as a whole; the store finds it by keyed digests of the NIK, email and phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub nik: Nik,
    pub card_number: JknCardNumber,
    pub email: Option<Email>,
    pub phone: Option<MobileNumber>,
    /// PHC string (`$argon2id$v=19$m=…`).
    pub password_hash: String,
    pub guard: LoginGuard,
    pub devices: TrustedDevices,
    /// The last phone change: sensitive actions cool off after it.
    pub phone_changed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Account {
    /// The participant's clock, from the province of their NIK (WIB when it is not known).
    pub fn time_zone(&self) -> IndonesianTimeZone {
        IndonesianTimeZone::of_province(self.nik.province()).unwrap_or(IndonesianTimeZone::Wib)
    }
}

/// Lowercase hex of `bytes`: how tokens, digests and device keys are written.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

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
