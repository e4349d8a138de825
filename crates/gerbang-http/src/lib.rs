//! axum adapters of gerbang. Rules and storage know nothing of HTTP; this crate knows nothing of SQL.
//!
//! Layout:
//! - [`error`]: [`ApiError`], the one place an error becomes an HTTP response (status, stable code,
//!   Indonesian and English message, `retry_after`, request id).
//! - [`health`]: liveness (`/healthz`) and readiness (`/readyz`).
//! - [`router`]: assembles the routes with request ids, tracing and JSON fallbacks.

pub mod error;
pub mod health;
mod request_id;

use axum::Router;
use axum::routing::get;
use gerbang_store::Store;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use request_id::RequestId;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct HttpState<S> {
    pub store: S,
}

/// The whole HTTP surface, callable without a socket (tests drive it with `tower::ServiceExt`).
pub fn router<S: Store>(state: HttpState<S>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<S>))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_id::span_for)
                .on_response(request_id::log_response),
        )
        .layer(axum::middleware::from_fn(request_id::assign))
}
