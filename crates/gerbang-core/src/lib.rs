//! Use-cases of gerbang: the only crate that decides. It knows the rules (from `gerbang-domain`) and
//! the storage contracts (from `gerbang-store`), never HTTP or a concrete database.
//!
//! Layout:
//! - [`engine`]: the verification engine: start, resend, check, status, cancel under the OTP policy
//!   and the rate limits.
//! - [`delivery`]: the courier contract and the worker that hands outbox messages to it; the
//!   development inbox courier.
//! - [`accounts`]: the participant account flows (registration, login, sessions and devices,
//!   recovery, contact change, step-up, introspection) over the engine and the account store.
//! - [`captcha`]: the captcha gate in front of lookups: built-in image challenges, test mode.
//! - [`password`]: Argon2id password hashing on a bounded blocking pool, with transparent rehash
//!   and equal cost for unknown accounts.
//! - [`pace`]: how fast the outbox drains (routes' limits, response times, the worker's
//!   throughput), for the queue estimate.
//! - [`admission`]: which new codes are queued when the queue is long (`queue_full`).
//! - [`budget`]: the daily caps per channel and provider (`budget_exhausted`).
//! - [`pumping`]: the SMS pumping brake.
//! - [`metrics`]: the counters and gauges operators watch, rendered for Prometheus.
//! - [`error`]: [`EngineError`], every refusal with its stable code and `retry_after`.

pub mod accounts;
pub mod admission;
pub mod budget;
pub mod captcha;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod pace;
pub mod password;
pub mod pumping;
pub mod staff;
pub mod tickets;

pub use accounts::{
    AccountError, AccountService, AccountSettings, CounterError, CounterForm, FlowKind, FlowView,
    Officer,
};
pub use admission::{Admission, ChannelAdmission};
pub use budget::{BudgetState, Budgets};
pub use captcha::{
    BuiltinCaptcha, CaptchaAnswer, CaptchaChallenge, CaptchaError, CaptchaGate, HostedCaptcha,
};
pub use delivery::{
    Courier, DeliveryWorker, DevInbox, HandOff, HandOffFailure, RetryPolicy, Route,
};
pub use engine::{
    CheckRequest, DeliveryOutlook, EngineSettings, Origin, QueueWait, ResendRequest, StartRequest,
    Subject, VerificationEngine, VerificationView,
};
pub use error::EngineError;
pub use metrics::Metrics;
pub use pace::{Capacity, DeliveryPace, ProviderState};
pub use password::{PasswordCheck, PasswordHashing, PasswordHashingError, PasswordHashingSettings};
pub use pumping::PumpingBrake;
pub use staff::{Enrolment, StaffService, StaffServiceError, StaffSession};
