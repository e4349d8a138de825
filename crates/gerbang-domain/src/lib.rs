//! Pure rules and types of gerbang. Nothing in this crate does I/O or reads the system clock.
//!
//! Layout:
//! - [`account`]: the rules of participant accounts (password policy, lockout, sessions, trusted devices, cool-off so far).
//! - [`identity`]: participant identifiers parsed at the edge (`Nik`, card numbers, mobile number,
//!   email, name), each with a typed error that names the broken rule.
//! - [`approval`]: four-eyes requests (a counter contact change waits for a second officer).
//! - [`participant`]: the registry record built from those identifiers.
//! - [`verification`]: verifications and their state machine, codes, purposes, rate-limit
//!   arithmetic, the message that carries a code.
//! - [`delivery`]: what happened to a message: statuses, causes and next steps, the tolerant SMPP
//!   receipt parser, the configurable mapping from providers' raw codes.
//! - [`clock`]: the injected notion of "now".
//! - [`explain`]: stable machine-readable codes with Indonesian and English messages.

pub mod account;
pub mod approval;
pub mod clock;
pub mod delivery;
pub mod explain;
pub mod identity;
pub mod participant;
pub mod staff;
pub mod verification;

pub use clock::{Clock, ManualClock, SystemClock, round_up};
pub use explain::Explain;
pub use identity::{
    Email, EmailError, FamilyCardNumber, JknCardNumber, KpjNumber, MobileNumber, Nik, NikError,
    NumberError, Operator, PersonName, PersonNameError, PhoneError, Sex,
};
pub use participant::{Participant, ParticipantRecord, ParticipantStatus};
