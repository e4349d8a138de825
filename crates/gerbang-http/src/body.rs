//! Request bodies: every body is read whole, within one size limit and one time limit, before a
//! handler runs.
//!
//! - Every route takes at most [`BODY_LIMIT`] bytes (16 KiB); more answers `413 body_too_large`
//!   in the API's error shape, before the body is read when `Content-Length` says so. The provider
//!   webhooks have their own limit (`webhooks::BODY_LIMIT`) and refusal.
//! - A body that does not arrive whole within the configured time (`server.body_timeout_seconds`)
//!   answers `408 body_timeout` and the connection is closed: a slow client holds no task forever.
//! - Reading the body before answering also means a refusal that never looks at the body (`401`,
//!   `404`, `415`) leaves nothing unread on the connection, so a keep-alive connection stays usable
//!   (hyper closes a connection whose previous body was not read to its end).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;

/// The largest request body any API route takes (16 KiB): every body is a small JSON object.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The longest a client may take to send a body, unless configured.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unread {
    TooLarge,
    TooSlow,
    /// The client went away or sent a broken chunked body.
    Broken,
}

/// Reads `request`'s body whole, at most `limit` bytes within `timeout`, and puts it back buffered.
pub(crate) async fn buffer(
    request: Request,
    limit: usize,
    timeout: Duration,
) -> Result<Request, Unread> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Unread::TooLarge);
    }
    let (parts, body) = request.into_parts();
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
    let bytes: Bytes = match collected {
        Err(_elapsed) => return Err(Unread::TooSlow),
        Ok(Err(error)) if error.is::<LengthLimitError>() => return Err(Unread::TooLarge),
        Ok(Err(_)) => return Err(Unread::Broken),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The answer to a body [`buffer`] did not read, for the API routes.
pub(crate) fn refusal(unread: Unread, timeout: Duration) -> Response {
    let error = match unread {
        Unread::TooLarge => too_large(),
        Unread::TooSlow => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "Isi permintaan tidak terkirim utuh dalam {} detik.",
                timeout.as_secs()
            ),
            format!(
                "The request body did not arrive whole within {} seconds.",
                timeout.as_secs()
            ),
        ),
        Unread::Broken => malformed(),
    };
    closing(error.into_response())
}

/// `413 body_too_large`.
pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "Isi permintaan terlalu besar (maksimal 16 KiB).",
        "The request body is too large (at most 16 KiB).",
    )
}

/// `400 body_malformed`.
pub(crate) fn malformed() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "body_malformed",
        "Isi permintaan bukan JSON yang valid.",
        "The request body is not valid JSON.",
    )
}

/// Marks a response after which the connection is closed: what is left of the body is never read.
pub(crate) fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Middleware: every request but the provider webhooks' (which read their own, larger bodies) is
/// handed on with its body read whole.
pub(crate) async fn read_whole(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if request
        .uri()
        .path()
        .starts_with(crate::webhooks::PATH_PREFIX)
    {
        return next.run(request).await;
    }
    match buffer(request, BODY_LIMIT, timeout).await {
        Ok(request) => next.run(request).await,
        Err(unread) => refusal(unread, timeout),
    }
}
