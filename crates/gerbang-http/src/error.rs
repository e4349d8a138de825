//! [`ApiError`]: every error response of the JSON API has this one shape.
//!
//! ```json
//! {"code": "not_ready", "message": {"id": "…", "en": "…"}, "retry_after": 5, "request_id": "9f1c…"}
//! ```
//! `code` is stable and machine-readable; `retry_after` (seconds) is present whenever waiting helps,
//! and is also sent as the `Retry-After` header. A 5xx body never carries internals: the cause is
//! logged inside the request's span.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::request_id::RequestId;

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message_id: String,
    pub message_en: String,
    pub retry_after: Option<u64>,
    /// The same instant as `retry_after`, absolute (RFC 3339), for apps that show a clock time.
    pub retry_at: Option<String>,
    /// The rate-limit rule that refused, e.g. `destination_5_per_15m`.
    pub rule: Option<String>,
    /// Wrong entries left before the code dies.
    pub attempts_left: Option<u8>,
    /// For `weak_password`: the code of every rule the password breaks.
    pub failed_rules: Vec<&'static str>,
    /// For `body_invalid`: the field at fault (`captcha.answer`), when it can be named.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: Messages<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_left: Option<u8>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    failed_rules: &'a [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

/// Every error answer of the API (for the OpenAPI document; responses are written by [`ApiError`]).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable.
    pub code: String,
    pub message: ErrorMessages,
    /// Seconds until the same request may succeed.
    pub retry_after: Option<u64>,
    /// The same instant, RFC 3339.
    pub retry_at: Option<String>,
    /// The rate-limit rule that refused.
    pub rule: Option<String>,
    /// Wrong entries left before the code dies.
    pub attempts_left: Option<u8>,
    /// For `weak_password`: every rule the password breaks.
    pub failed_rules: Option<Vec<String>>,
    /// For `body_invalid`: the field at fault (`captcha.answer`), when it can be named.
    pub field: Option<String>,
    pub request_id: Option<String>,
}

/// The human message, in Indonesian and English.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorMessages {
    pub id: String,
    pub en: String,
}

#[derive(Serialize)]
struct Messages<'a> {
    id: &'a str,
    en: &'a str,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message_id: impl Into<String>,
        message_en: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message_id: message_id.into(),
            message_en: message_en.into(),
            retry_after: None,
            retry_at: None,
            rule: None,
            attempts_left: None,
            failed_rules: Vec::new(),
            field: None,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: Messages {
                id: &self.message_id,
                en: &self.message_en,
            },
            retry_after: self.retry_after,
            retry_at: self.retry_at.as_deref(),
            rule: self.rule.as_deref(),
            attempts_left: self.attempts_left,
            failed_rules: &self.failed_rules,
            field: self.field.as_deref(),
            request_id: RequestId::current().map(|id| id.to_string()),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub(crate) async fn not_found() -> ApiError {
    nothing_here()
}

/// The answer for an address gerbang does not serve (also: the account routes when accounts are
/// not configured).
pub(crate) fn nothing_here() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Alamat ini tidak ada di gerbang.",
        "There is nothing at this address.",
    )
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Metode HTTP ini tidak didukung untuk alamat ini.",
        "This HTTP method is not supported at this address.",
    )
}
