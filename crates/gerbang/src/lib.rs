//! The gerbang binary's library: configuration, telemetry and start-up wiring, kept out of `main` so
//! tests build the very same [`Application`] in-process.
//!
//! Layout:
//! - [`config`]: the typed configuration and how its layers merge.
//! - [`keys`]: where the personal-data key comes from (configured, key file, or generated in development).
//! - [`database`]: the one place the backend is chosen from the database URL.
//! - [`app`]: [`Application`], the HTTP server with its store, and demo seeding.
//! - [`captcha`]: the hosted captcha verifier (siteverify over HTTP).
//! - [`cli`]: the `gerbang` commands.
//! - [`telemetry`]: structured logs, human or JSON, to stderr.

pub mod app;
pub mod captcha;
pub mod cli;
pub mod config;
pub mod database;
pub mod keys;
pub mod providers;
pub mod telemetry;
pub mod webhooks;

pub use app::Application;
pub use config::Config;
