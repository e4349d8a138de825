//! Participant accounts: the rules of their passwords and of locking them after failed logins
//! (more of the account model follows with the registration, login and recovery flows).

pub mod lockout;
pub mod password;

pub use lockout::{LockEvent, Locked, LockoutPolicy, LoginGuard};
pub use password::{PasswordPolicy, PasswordRule, PersonalFacts, WeakPassword};
