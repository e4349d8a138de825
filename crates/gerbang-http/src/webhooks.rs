//! Status callbacks from delivery providers (WhatsApp Cloud API status webhooks, HTTP SMS delivery
//! reports), applied to the delivery trail.
//!
//! - `GET /v1/webhooks/{provider}`: the subscription handshake; `200 text/plain` with the text to
//!   echo, or `403 webhook_refused`.
//! - `POST /v1/webhooks/{provider}`: a callback, at most [`BODY_LIMIT`] bytes; each update it
//!   carries goes to `VerificationStore::record_receipt`; `200 {"received": N, "matched": M}`.
//!
//! These routes take no API token (a provider cannot send ours): a callback is authenticated by
//! its signature over the raw body, which the binary's [`StatusWebhooks`] checks per provider,
//! since only it knows the providers and their secrets. This crate knows no provider: it routes,
//! limits, counts, logs and answers in the one error shape.
//!
//! A store failure answers `503` with `retry_after`, never `500`, so the provider sends the
//! callback again; re-applying a receipt is harmless (a `delivered` attempt stays delivered).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use gerbang_domain::delivery::receipt::normalise_message_id;
use gerbang_store::{ReceiptUpdate, Store};
use serde::Serialize;

use crate::HttpState;
use crate::error::ApiError;

/// Largest callback body accepted (256 KiB); a larger one answers `413 webhook_too_large`. Meta
/// batches at most a few kilobytes of statuses per notification; this leaves room without letting
/// a stranger make us buffer megabytes before the signature is checked.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Where the webhook routes live; their bodies are read by [`read_body`], not by the API's reader.
pub(crate) const PATH_PREFIX: &str = "/v1/webhooks/";

/// Longest provider name in a webhook path.
const MAX_PROVIDER_LEN: usize = 64;

/// What the binary plugs in: per provider name, the subscription handshake and the verification +
/// parsing of a callback.
pub trait StatusWebhooks: Send + Sync + 'static {
    /// The GET handshake (WhatsApp: hub.mode, hub.verify_token, hub.challenge): Some(text to echo)
    /// or None (refused). The text is sent back as `text/plain`; an implementation echoes only
    /// short, plain challenges.
    fn subscribe(&self, provider: &str, query: &HashMap<String, String>) -> Option<String>;

    /// A POSTed callback: checks its signature over the raw body and parses it. Each update's
    /// `provider` must be the courier name the delivery trail records for that provider's
    /// hand-offs, its `message_ids` the candidates of
    /// `gerbang_domain::delivery::receipt::receipt_id_candidates` (they are normalised again
    /// before the lookup).
    fn receive(
        &self,
        provider: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReceiptUpdate>, WebhookRejection>;
}

/// Why a callback was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookRejection {
    /// No provider of that name takes callbacks here.
    UnknownProvider,
    /// The signature is missing or is not that of the body under the provider's secret.
    BadSignature,
    /// Signed, but not a callback we can read. The text is logged and shown to the provider, so it
    /// says what is wrong (`no entry array`) and never quotes the body.
    Malformed(String),
}

/// The kinds of refusal the webhook routes count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    UnknownProvider,
    BadSignature,
    Malformed,
    /// The body was larger than [`BODY_LIMIT`].
    TooLarge,
    /// The subscription handshake was refused.
    Refused,
}

impl RejectionKind {
    pub const ALL: [Self; 5] = [
        Self::UnknownProvider,
        Self::BadSignature,
        Self::Malformed,
        Self::TooLarge,
        Self::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownProvider => "unknown_provider",
            Self::BadSignature => "bad_signature",
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::Refused => "refused",
        }
    }
}

/// Refused webhook calls since start, per kind (for metrics; tests read them). A burst of
/// `bad_signature` is someone guessing, or a rotated secret we were not told about.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    unknown_provider: AtomicU64,
    bad_signature: AtomicU64,
    malformed: AtomicU64,
    too_large: AtomicU64,
    refused: AtomicU64,
}

impl WebhookCounters {
    /// How many calls were refused for `kind`.
    pub fn get(&self, kind: RejectionKind) -> u64 {
        self.counter(kind).load(Ordering::Relaxed)
    }

    /// Every refusal of every kind.
    pub fn total(&self) -> u64 {
        RejectionKind::ALL.iter().map(|kind| self.get(*kind)).sum()
    }

    fn add(&self, kind: RejectionKind) {
        self.counter(kind).fetch_add(1, Ordering::Relaxed);
    }

    fn counter(&self, kind: RejectionKind) -> &AtomicU64 {
        match kind {
            RejectionKind::UnknownProvider => &self.unknown_provider,
            RejectionKind::BadSignature => &self.bad_signature,
            RejectionKind::Malformed => &self.malformed,
            RejectionKind::TooLarge => &self.too_large,
            RejectionKind::Refused => &self.refused,
        }
    }
}

/// The answer to an accepted callback.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Received {
    /// Updates the callback carried.
    received: usize,
    /// Of those, how many found the delivery attempt they are about.
    matched: usize,
}

/// The error answer of a refusal; `reason` only for [`RejectionKind::Malformed`].
fn rejection_error(kind: RejectionKind, reason: &str) -> ApiError {
    match kind {
        RejectionKind::UnknownProvider => ApiError::new(
            StatusCode::NOT_FOUND,
            "webhook_unknown_provider",
            "Penyedia pengiriman ini tidak menerima webhook di sini.",
            "This delivery provider takes no webhooks here.",
        ),
        RejectionKind::BadSignature => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "webhook_bad_signature",
            "Tanda tangan webhook tidak ada atau tidak cocok dengan isinya.",
            "The webhook signature is missing or does not match the body.",
        ),
        RejectionKind::Malformed => ApiError::new(
            StatusCode::BAD_REQUEST,
            "webhook_malformed",
            format!("Isi webhook tidak dapat dibaca: {reason}"),
            format!("The webhook body cannot be read: {reason}"),
        ),
        RejectionKind::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "webhook_too_large",
            "Isi webhook terlalu besar (maksimal 256 KiB).",
            "The webhook body is too large (at most 256 KiB).",
        ),
        RejectionKind::Refused => ApiError::new(
            StatusCode::FORBIDDEN,
            "webhook_refused",
            "Pendaftaran webhook ditolak: token verifikasi atau parameternya tidak cocok.",
            "The webhook subscription was refused: its verify token or parameters do not match.",
        ),
    }
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "Layanan sedang sibuk. Silakan coba lagi sebentar lagi.",
        "The service is busy. Please try again shortly.",
    )
    .retry_after(5)
}

/// Counts, logs and answers one refusal. `provider` is `None` when the path did not name one in
/// a plausible shape (it is then not logged: it could be anything a stranger typed).
fn refuse<S>(
    state: &HttpState<S>,
    provider: Option<&str>,
    kind: RejectionKind,
    reason: &str,
) -> ApiError {
    state.webhook_counters.add(kind);
    state.metrics.webhook_rejected(kind.as_str());
    let provider = provider.unwrap_or("<invalid>");
    if kind == RejectionKind::Malformed {
        tracing::warn!(
            provider,
            rejection = kind.as_str(),
            reason,
            "webhook refused"
        );
    } else {
        tracing::warn!(provider, rejection = kind.as_str(), "webhook refused");
    }
    rejection_error(kind, reason)
}

/// The provider a path names, if it looks like a provider name (`whatsapp`, `http_sms:zenziva`).
fn provider_name(path: Result<Path<String>, PathRejection>) -> Option<String> {
    let Path(name) = path.ok()?;
    let plausible = !name.is_empty()
        && name.len() <= MAX_PROVIDER_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    plausible.then_some(name)
}

/// `reason` cut to 200 characters on a character boundary, control characters replaced, so a
/// careless implementation cannot flood or forge log lines through it.
fn clip(reason: &str) -> String {
    reason
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// How a provider's message id appears in logs: its last 8 characters. Some ids embed the
/// recipient (a WhatsApp `wamid` is base64 that starts with the phone number); the tail is the
/// provider's own counter or random part, enough to find the message in the provider's console.
struct MaskedMessageId<'a>(&'a str);

impl std::fmt::Display for MaskedMessageId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chars: Vec<char> = self.0.chars().filter(|c| !c.is_control()).collect();
        let tail: String = chars[chars.len().saturating_sub(8)..].iter().collect();
        if chars.len() > 8 {
            write!(f, "…{tail}")
        } else {
            f.write_str(&tail)
        }
    }
}

/// `GET /v1/webhooks/{provider}`: the subscription handshake.
#[utoipa::path(get, path = "/v1/webhooks/{provider}", operation_id = "webhook_subscribe", tag = "webhooks", params(("provider" = String, Path, description = "the provider's configured name")), responses((status = 200, content_type = "text/plain", body = String, description = "the challenge to echo")))]
pub(crate) async fn subscribe<S: Store>(
    State(state): State<HttpState<S>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let provider = provider_name(path);
    let (Some(webhooks), Some(name)) = (state.webhooks.as_deref(), provider.as_deref()) else {
        return Err(refuse(
            &state,
            provider.as_deref(),
            RejectionKind::UnknownProvider,
            "",
        ));
    };
    // The query carries the verify token: it is never logged.
    let echo = query
        .ok()
        .and_then(|Query(query)| webhooks.subscribe(name, &query));
    match echo {
        Some(text) => {
            tracing::info!(provider = name, "webhook subscription confirmed");
            let mut response = (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                text,
            )
                .into_response();
            response.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            Ok(response)
        }
        None => Err(refuse(&state, Some(name), RejectionKind::Refused, "")),
    }
}

/// Middleware of the webhook routes: the body read whole, at most [`BODY_LIMIT`] bytes within the
/// configured time, before the handler runs (see `crate::body`).
pub(crate) async fn read_body<S: Store>(
    State(state): State<HttpState<S>>,
    path: Result<Path<String>, PathRejection>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let timeout = state.settings.body_timeout;
    match crate::body::buffer(request, BODY_LIMIT, timeout).await {
        Ok(request) => next.run(request).await,
        Err(crate::body::Unread::TooLarge) => {
            let provider = provider_name(path);
            crate::body::closing(
                refuse(&state, provider.as_deref(), RejectionKind::TooLarge, "").into_response(),
            )
        }
        Err(unread) => crate::body::refusal(unread, timeout),
    }
}

/// `POST /v1/webhooks/{provider}`: a status callback.
#[utoipa::path(post, path = "/v1/webhooks/{provider}", operation_id = "webhook_receive", tag = "webhooks", params(("provider" = String, Path, description = "the provider's configured name")), request_body(content = Object, description = "the provider's own callback, signed"), responses((status = 200, body = Received)))]
pub(crate) async fn receive<S: Store>(
    State(state): State<HttpState<S>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Received>, ApiError> {
    let provider = provider_name(path);
    let (Some(webhooks), Some(name)) = (state.webhooks.clone(), provider.as_deref()) else {
        return Err(refuse(
            &state,
            provider.as_deref(),
            RejectionKind::UnknownProvider,
            "",
        ));
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(refuse(&state, Some(name), RejectionKind::TooLarge, ""));
        }
        Err(_) => {
            return Err(refuse(
                &state,
                Some(name),
                RejectionKind::Malformed,
                "the body could not be read",
            ));
        }
    };
    let updates = match webhooks.receive(name, &headers, &body, state.engine.now()) {
        Ok(updates) => updates,
        Err(WebhookRejection::UnknownProvider) => {
            return Err(refuse(
                &state,
                Some(name),
                RejectionKind::UnknownProvider,
                "",
            ));
        }
        Err(WebhookRejection::BadSignature) => {
            return Err(refuse(&state, Some(name), RejectionKind::BadSignature, ""));
        }
        Err(WebhookRejection::Malformed(reason)) => {
            return Err(refuse(
                &state,
                Some(name),
                RejectionKind::Malformed,
                &clip(&reason),
            ));
        }
    };
    let received = updates.len();
    let mut matched = 0;
    for mut update in updates {
        // The trail stores ids normalised (trimmed, lowercase, no leading zeros) and the stores
        // look receipts up as given; normalising again is harmless and keeps an implementation
        // that forgot from matching nothing while every provider is told 200.
        update.message_ids = update
            .message_ids
            .iter()
            .map(|id| normalise_message_id(id))
            .filter(|id| !id.is_empty())
            .collect();
        update.message_ids.dedup();
        let message_id = update.message_ids.first().cloned().unwrap_or_default();
        let status = update.status.as_str();
        match state.store.record_receipt(update).await {
            Ok(0) => {
                state.metrics.receipt(name, status, false);
                tracing::warn!(
                    provider = name,
                    message_id = %MaskedMessageId(&message_id),
                    "a delivery receipt for a message we do not know"
                );
            }
            Ok(_) => {
                state.metrics.receipt(name, status, true);
                matched += 1;
            }
            Err(error) => {
                // The provider retries on a 5xx; what was applied before is applied again, harmlessly.
                tracing::error!(provider = name, %error, "could not record a delivery receipt");
                return Err(unavailable());
            }
        }
    }
    tracing::info!(
        provider = name,
        received,
        matched,
        "webhook callback applied"
    );
    Ok(Json(Received { received, matched }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_has_a_stable_code_and_distinct_indonesian_and_english_messages() {
        let mut codes = Vec::new();
        for kind in RejectionKind::ALL {
            let error = rejection_error(kind, "no entry array");
            assert!(error.code.starts_with("webhook_"), "{}", error.code);
            assert!(error.status.is_client_error(), "{}", error.code);
            assert!(!error.message_id.is_empty() && !error.message_en.is_empty());
            assert_ne!(error.message_id, error.message_en);
            codes.push(error.code);
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RejectionKind::ALL.len());
        assert_eq!(unavailable().retry_after, Some(5));
    }

    #[test]
    fn counters_count_each_kind_apart() {
        let counters = WebhookCounters::default();
        counters.add(RejectionKind::BadSignature);
        counters.add(RejectionKind::BadSignature);
        counters.add(RejectionKind::TooLarge);
        assert_eq!(counters.get(RejectionKind::BadSignature), 2);
        assert_eq!(counters.get(RejectionKind::TooLarge), 1);
        assert_eq!(counters.get(RejectionKind::Malformed), 0);
        assert_eq!(counters.total(), 3);
    }

    #[test]
    fn only_plausible_provider_names_are_taken_from_the_path() {
        let name = |text: &str| provider_name(Ok(Path(text.to_owned())));
        assert_eq!(name("whatsapp").as_deref(), Some("whatsapp"));
        assert_eq!(
            name("http_sms:zenziva").as_deref(),
            Some("http_sms:zenziva")
        );
        assert_eq!(name(""), None);
        assert_eq!(name("a b"), None);
        assert_eq!(name("evil\nlog line"), None);
        assert_eq!(name(&"x".repeat(65)), None);
    }

    #[test]
    fn logged_message_ids_keep_only_their_tail_and_reasons_are_clipped() {
        let wamid = "wamid.HBgLNjI4MTIxMTExMjIyMhUCABEYEjQ1QTFFQ0Y";
        let shown = MaskedMessageId(wamid).to_string();
        assert_eq!(shown, "…1QTFFQ0Y");
        assert!(!shown.contains("NjI4"));
        assert_eq!(MaskedMessageId("0A1B2C").to_string(), "0A1B2C");
        assert_eq!(MaskedMessageId("").to_string(), "");
        assert_eq!(clip(&"é".repeat(300)).chars().count(), 200);
        assert_eq!(clip("a\nb"), "a b");
    }
}
