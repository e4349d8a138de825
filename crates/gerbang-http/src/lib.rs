//! axum adapters of gerbang. Rules and storage know nothing of HTTP; this crate knows nothing of SQL.
//!
//! Layout:
//! - [`error`]: [`ApiError`], the one place an error becomes an HTTP response (status, stable code,
//!   Indonesian and English message, `retry_after`, request id).
//! - [`health`]: liveness (`/healthz`) and readiness (`/readyz`).
//! - [`api`]: the JSON API (verifications) and the development inbox.
//! - [`language`]: the language a request prefers (`locale`, else `Accept-Language`).
//! - [`openapi`]: the OpenAPI document generated from the handlers, served at `/openapi.json`.
//! - [`webhooks`]: status callbacks from delivery providers, verified and parsed by the binary's
//!   [`StatusWebhooks`]; no API token, the signature authenticates them.
//! - [`body`]: every request body read whole before a handler runs, within one size limit and the
//!   configured time.
//! - [`server`]: the connection loop `gerbang serve` runs: header-read timeout, connection cap,
//!   graceful shutdown.
//! - [`router`]: assembles the routes with request ids, tracing and JSON fallbacks.

// `ApiError` is the response a refusal becomes; it is built once per refused request and moved
// straight into the response, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod body;
pub mod error;
pub mod health;
pub mod language;
pub mod openapi;
mod request_id;
pub mod server;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use gerbang_core::VerificationEngine;
use gerbang_store::Store;
use tower_http::trace::TraceLayer;

pub use api::clients::{ApiClients, MetricsToken};
pub use error::ApiError;
pub use request_id::RequestId;
pub use webhooks::{RejectionKind, StatusWebhooks, WebhookCounters, WebhookRejection};

/// What handlers share.
#[derive(Clone)]
pub struct HttpState<S> {
    pub store: S,
    pub engine: VerificationEngine<S>,
    /// The participant account flows; `None`: the account routes answer 404.
    pub accounts: Option<gerbang_core::AccountService<S>>,
    pub clients: ApiClients,
    /// Serve the development inbox at `/dev/inbox` (development profile only).
    pub dev_inbox: bool,
    /// The caller's address is the first `X-Forwarded-For` entry (behind a load balancer), not
    /// the TCP peer.
    pub trust_forwarded_for: bool,
    /// The providers whose status callbacks `/v1/webhooks/{provider}` takes, with their signature
    /// checks and parsers (the binary knows them; this crate does not). `None`: every provider is
    /// unknown there (`404 webhook_unknown_provider`).
    pub webhooks: Option<Arc<dyn StatusWebhooks>>,
    /// Refused webhook calls per kind; shared by every clone of the state.
    pub webhook_counters: Arc<WebhookCounters>,
    /// Rendered at `/metrics`, shared with the delivery worker and the receipt tasks.
    pub metrics: Arc<gerbang_core::Metrics>,
    /// What the configuration says about bodies and `/metrics`.
    pub settings: HttpSettings,
}

/// Settings of the HTTP surface that the binary reads from its configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The longest a client may take to send a request body (`server.body_timeout_seconds`).
    pub body_timeout: Duration,
    /// `/metrics` answers only requests bearing this token (`metrics.token`); `None`: open.
    pub metrics_token: Option<MetricsToken>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_timeout: body::DEFAULT_BODY_TIMEOUT,
            metrics_token: None,
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for HttpState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("store", &self.store)
            .field("engine", &self.engine)
            .field("clients", &self.clients)
            .field("dev_inbox", &self.dev_inbox)
            .field("webhooks", &self.webhooks.is_some())
            .field("webhook_counters", &self.webhook_counters)
            .finish_non_exhaustive()
    }
}

impl<S: Clone> FromRef<HttpState<S>> for ApiClients {
    fn from_ref(state: &HttpState<S>) -> Self {
        state.clients.clone()
    }
}

/// The participant account API and introspection.
fn account_routes<S: Store>() -> Router<HttpState<S>> {
    use api::accounts as a;
    Router::new()
        .route("/v1/captcha", get(a::captcha::<S>))
        .route("/v1/accounts/registration", post(a::identify::<S>))
        .route(
            "/v1/accounts/registration/contact",
            post(a::register_contact::<S>),
        )
        .route(
            "/v1/accounts/registration/confirm",
            post(a::confirm_registration::<S>),
        )
        .route("/v1/accounts/login", post(a::login::<S>))
        .route("/v1/accounts/login/confirm", post(a::confirm_login::<S>))
        .route("/v1/accounts/recovery", post(a::start_recovery::<S>))
        .route("/v1/accounts/recovery/send", post(a::send_recovery::<S>))
        .route(
            "/v1/accounts/recovery/confirm",
            post(a::complete_recovery::<S>),
        )
        .route("/v1/accounts/flows/resend", post(a::resend::<S>))
        .route("/v1/session", get(a::session::<S>))
        .route("/v1/session/refresh", post(a::refresh::<S>))
        .route("/v1/session/logout", post(a::logout::<S>))
        .route("/v1/session/devices", get(a::devices::<S>))
        .route(
            "/v1/session/devices/{key}",
            axum::routing::delete(a::revoke_device::<S>),
        )
        .route("/v1/session/contact", post(a::start_contact_change::<S>))
        .route(
            "/v1/session/contact/confirm",
            post(a::confirm_contact_change::<S>),
        )
        .route("/v1/session/step-up", post(a::start_step_up::<S>))
        .route("/v1/session/step-up/confirm", post(a::confirm_step_up::<S>))
        .route("/v1/introspect", post(a::introspect::<S>))
}

/// The whole HTTP surface, callable without a socket (tests drive it with `tower::ServiceExt`).
pub fn router<S: Store>(state: HttpState<S>) -> Router {
    router_with_pages(state, None)
}

/// The same with the participant portal's pages (`gerbang-web`) beside the API, under the same
/// request ids, request logs and body limits.
pub fn router_with_pages<S: Store>(state: HttpState<S>, pages: Option<Router>) -> Router {
    let dev_inbox = state.dev_inbox;
    let body_timeout = state.settings.body_timeout;
    let mut routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<S>))
        .route("/metrics", get(health::metrics::<S>))
        .route("/openapi.json", get(openapi::document))
        .route("/v1/verifications", post(api::verifications::start::<S>))
        .route(
            "/v1/verifications/{id}",
            get(api::verifications::status::<S>),
        )
        .route(
            "/v1/verifications/{id}/resend",
            post(api::verifications::resend::<S>),
        )
        .route(
            "/v1/verifications/{id}/check",
            post(api::verifications::check::<S>),
        )
        .route(
            "/v1/verifications/{id}/cancel",
            post(api::verifications::cancel::<S>),
        )
        .merge(account_routes::<S>())
        // No `CallingClient` here: providers cannot send our bearer token; signatures authenticate.
        .route(
            "/v1/webhooks/{provider}",
            get(webhooks::subscribe::<S>)
                .post(webhooks::receive::<S>)
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    webhooks::read_body::<S>,
                )),
        );
    if dev_inbox {
        routes = routes
            .route("/dev/inbox", get(api::dev_inbox::page::<S>))
            .route("/dev/inbox.json", get(api::dev_inbox::json::<S>));
    }
    let mut routes = routes
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state);
    if let Some(pages) = pages {
        routes = routes.merge(pages);
    }
    routes
        .layer(axum::middleware::from_fn(language::assign))
        // Inside the request id, so that its refusals carry one.
        .layer(axum::middleware::from_fn_with_state(
            body_timeout,
            body::read_whole,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_id::span_for)
                .on_response(request_id::log_response),
        )
        .layer(axum::middleware::from_fn(request_id::assign))
}
