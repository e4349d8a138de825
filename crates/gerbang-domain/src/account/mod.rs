//! Participant accounts: the rules of their passwords (more of the account model follows with the
//! registration, login and recovery flows).

pub mod password;

pub use password::{PasswordPolicy, PasswordRule, PersonalFacts, WeakPassword};
