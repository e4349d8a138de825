//! Request ids: taken from a well-formed incoming `x-request-id` or made up, echoed in the response
//! header and error bodies, and recorded on the request's tracing span. Request logs name the
//! route's pattern, never the raw path or query, which may carry personal data.

use std::fmt;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Response};
use axum::middleware::Next;
use rand::Rng;
use tracing::Span;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being served.
#[derive(Debug, Clone)]
pub struct RequestId(String);

impl RequestId {
    /// The id of the request this task is serving, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    fn from_header(value: &HeaderValue) -> Option<Self> {
        let text = value.to_str().ok()?;
        let fine = !text.is_empty()
            && text.len() <= 64
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        fine.then(|| Self(text.to_string()))
    }

    fn generate() -> Self {
        Self(format!("{:016x}", rand::rng().random::<u64>()))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) async fn assign(mut request: Request, next: Next) -> axum::response::Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(RequestId::from_header)
        .unwrap_or_else(RequestId::generate);
    request.extensions_mut().insert(id.clone());
    let header = HeaderValue::from_str(&id.0).ok();
    let mut response = CURRENT.scope(id, next.run(request)).await;
    if let Some(header) = header {
        response.headers_mut().insert("x-request-id", header);
    }
    response
}

pub(crate) fn span_for(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str)
        .to_owned();
    let id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), route = %route, request_id = %id)
}

pub(crate) fn log_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_millis() as u64,
        "served"
    );
}
