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
