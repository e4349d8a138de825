//! Delivery providers: how a message leaves gerbang and how we learn what became of it.
//!
//! - [`smpp`]: an SMPP 3.4 client (ESME) for an operator SMSC or an aggregator: one transceiver bind
//!   carrying submits and delivery receipts, a window of outstanding submits, enquire_link
//!   keep-alive, reconnection with back-off, a per-bind throughput limit, back-off on throttling and
//!   queue-full answers, GSM 7-bit or UCS-2 chosen by the text. PDUs come from the `rusmpp` crate;
//!   the session (window, timers, reconnect) is ours, because `rusmppc` has neither a window nor
//!   reconnection.
//!
//! Outcomes are reported in the provider's raw terms and judged by
//! [`gerbang_domain::delivery::CauseMap`]. [`courier`] puts providers behind the engine's
//! `Courier` contract.

pub mod courier;
pub mod email;
pub mod http_sms;
pub mod smpp;
pub mod voice;
pub mod whatsapp;

pub use courier::{Provider, SmppCourier, apply_receipts};
