//! The verification resource.
//!
//! - `POST /v1/verifications`: start one; the code goes out through the outbox.
//! - `GET /v1/verifications/{id}`: where it stands.
//! - `POST /v1/verifications/{id}/resend`: a new code, possibly over another channel.
//! - `POST /v1/verifications/{id}/check`: a typed code.
//! - `POST /v1/verifications/{id}/cancel`: end it.
//!
//! Responses never carry a code, and show destinations masked.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use gerbang_core::{
    CheckRequest, EngineError, Origin, QueueWait, ResendRequest, StartRequest, Subject,
    VerificationView,
};
use gerbang_domain::delivery::Explanation;
use gerbang_domain::delivery::fallback::{FallbackOffer, FallbackReason};
use gerbang_domain::verification::purpose::{Purpose, SensitiveAction};
use gerbang_domain::verification::{Channel, Destination, Locale, VerificationId};
use gerbang_domain::{Email, Explain, MobileNumber, Nik};
use gerbang_store::Store;
use serde::{Deserialize, Serialize};

use super::ApiJson;
use super::clients::CallingClient;
use crate::HttpState;
use crate::error::ApiError;

/// Longest account or device id a caller may send.
const MAX_ID_LEN: usize = 128;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    purpose: String,
    channel: String,
    /// Phone number (any common Indonesian form) or email address.
    to: String,
    locale: Option<String>,
    action: Option<String>,
    details: Option<BTreeMap<String, String>>,
    action_hint: Option<String>,
    participant: Option<SubjectBody>,
    origin: Option<OriginBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    account: Option<String>,
    nik: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginBody {
    ip: Option<String>,
    device: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendBody {
    channel: Option<String>,
    to: Option<String>,
    origin: Option<OriginBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    code: String,
    purpose: Option<String>,
    action: Option<String>,
    details: Option<BTreeMap<String, String>>,
}

/// A verification as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerificationBody {
    id: String,
    status: &'static str,
    purpose: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    channel: &'static str,
    to: String,
    created_at: String,
    expires_at: String,
    /// When a resend is allowed, and in how many seconds.
    resend_at: String,
    resend_after: u64,
    sends: usize,
    attempts_left: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    verified_at: Option<String>,
    /// What happened to each message sent (the status answer only): never the code, never the
    /// provider's raw words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deliveries: Vec<DeliveryBody>,
    /// The last message did not arrive (failed, or no receipt in time): other channels to ask for
    /// a code on, at once (a switch skips the countdown; earlier codes stay valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<FallbackBody>,
    /// The last message is still waiting its turn (peak hours): how many go first and roughly how
    /// long, so that the participant waits instead of pressing resend.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<QueueBody>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FallbackBody {
    reason: &'static str,
    since: String,
    channels: Vec<FallbackChannelBody>,
    message: Messages,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FallbackChannelBody {
    channel: &'static str,
    /// The app must ask for the address first (email for a phone number).
    needs_destination: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueBody {
    ahead: u64,
    /// Seconds, rounded up; absent when nothing went out in the last minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_wait: Option<u64>,
    message: Messages,
}

fn fallback_body(offer: &FallbackOffer) -> FallbackBody {
    let (id, en) = match offer.reason {
        FallbackReason::Failed(_) => (
            "Kode tidak sampai lewat saluran ini. Minta kode lewat saluran lain sekarang; kode sebelumnya tetap berlaku.",
            "The code did not arrive this way. Ask for it over another channel now; the earlier code still works.",
        ),
        FallbackReason::NoReceipt => (
            "Belum ada tanda kode sudah sampai. Jika belum menerima, minta kode lewat saluran lain; kode sebelumnya tetap berlaku.",
            "There is no sign yet that the code arrived. If you have not received it, ask for it over another channel; the earlier code still works.",
        ),
    };
    FallbackBody {
        reason: offer.reason.as_str(),
        since: rfc3339(offer.since),
        channels: offer
            .channels
            .iter()
            .map(|c| FallbackChannelBody {
                channel: c.channel.as_str(),
                needs_destination: c.needs_destination,
            })
            .collect(),
        message: Messages {
            id: id.to_owned(),
            en: en.to_owned(),
        },
    }
}

fn queue_body(queue: &QueueWait) -> QueueBody {
    let seconds = queue.estimated_wait.map(|wait| {
        let millis = wait.num_milliseconds().max(0);
        u64::try_from((millis + 999) / 1000).unwrap_or_default()
    });
    let message = match seconds {
        Some(seconds) => Messages {
            id: format!(
                "Pengiriman sedang padat. Kode Anda dalam antrean dan akan terkirim dalam sekitar {} detik. Mohon tunggu; menekan kirim ulang tidak mempercepatnya.",
                seconds
            ),
            en: format!(
                "Delivery is busy. Your code is queued and should go out in about {} seconds. Please wait; pressing resend does not make it faster.",
                seconds
            ),
        },
        None => Messages {
            id: "Kode Anda dalam antrean pengiriman. Mohon tunggu; menekan kirim ulang tidak mempercepatnya.".into(),
            en: "Your code is queued for delivery. Please wait; pressing resend does not make it faster.".into(),
        },
    };
    QueueBody {
        ahead: queue.ahead,
        estimated_wait: seconds,
        message,
    }
}

/// One delivery attempt as the participant's app sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryBody {
    channel: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'static str>,
    /// What happened and what to do next, in Indonesian and English.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Messages>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_step: Option<&'static str>,
    attempted_at: String,
    updated_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Messages {
    id: String,
    en: String,
}

fn delivery_body(
    attempt: &gerbang_store::DeliveryAttempt,
    explained: Option<&Explanation>,
) -> DeliveryBody {
    DeliveryBody {
        channel: attempt.channel.clone(),
        status: attempt.status.as_str(),
        cause: attempt.cause.map(|c| c.as_str()),
        message: explained.map(|explained| Messages {
            id: explained.id.clone(),
            en: explained.en.clone(),
        }),
        next_step: explained.map(|explained| explained.next_step.as_str()),
        attempted_at: rfc3339(attempt.attempted_at),
        updated_at: rfc3339(attempt.updated_at),
    }
}

pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An instant the caller waits for (a resend, a retry, the end of a lock or cool-off), rounded up
/// to the second: a request made at the instant shown is never early.
pub(crate) fn not_before(at: DateTime<Utc>) -> String {
    rfc3339(gerbang_domain::round_up(at, chrono::Duration::seconds(1)))
}

/// Whole seconds from `now` until `at`, rounded up, so waiting that long is always enough.
pub(crate) fn seconds_until(at: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let millis = (at - now).num_milliseconds().max(0);
    u64::try_from((millis + 999) / 1000).unwrap_or_default()
}

pub(crate) fn body(view: &VerificationView, now: DateTime<Utc>) -> VerificationBody {
    // Waits count from the engine's reading of the clock when it made the view, which is later
    // than the handler's: counted from the earlier one, a 60 s countdown would read 61.
    let now = now.max(view.as_of);
    VerificationBody {
        id: view.id.to_string(),
        status: view.status.as_str(),
        purpose: view.purpose.as_str(),
        action: view.action.map(SensitiveAction::as_str),
        channel: view.channel.as_str(),
        to: view.destination_masked.clone(),
        created_at: rfc3339(view.created_at),
        expires_at: rfc3339(view.expires_at),
        resend_at: not_before(view.resend_at),
        resend_after: seconds_until(view.resend_at, now),
        sends: view.sends,
        attempts_left: view.attempts_left,
        verified_at: view.verified_at.map(rfc3339),
        deliveries: Vec::new(),
        fallback: None,
        queue: None,
    }
}

pub(crate) fn explained(status: StatusCode, error: &dyn Explain) -> ApiError {
    ApiError::new(status, error.code(), error.message_id(), error.message_en())
}

pub(crate) fn bad_request(code: &'static str, id: &str, en: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, id, en)
}

/// The one place an engine refusal becomes an HTTP answer.
pub(crate) fn engine_error(error: EngineError, now: DateTime<Utc>) -> ApiError {
    let code = error.code();
    let status = match code {
        "verification_not_found" => StatusCode::NOT_FOUND,
        "otp_already_used" | "verification_cancelled" => StatusCode::CONFLICT,
        "verification_expired" | "otp_expired" | "otp_attempts_exhausted" => StatusCode::GONE,
        "otp_incorrect" => StatusCode::UNPROCESSABLE_ENTITY,
        "rate_limited"
        | "resend_limit_reached"
        | "resend_countdown"
        | "destination_suspended"
        | "queue_full"
        | "budget_exhausted" => StatusCode::TOO_MANY_REQUESTS,
        "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    if let EngineError::Store(cause) = &error {
        tracing::error!(error = %cause, "the store failed a verification request");
    }
    let mut api = explained(status, &error);
    if let Some(at) = error.retry_at() {
        api.retry_after = Some(seconds_until(at, now).max(1));
        api.retry_at = Some(not_before(at));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        api.retry_after = Some(1);
    }
    api.rule = error.rule();
    if let EngineError::Verification(gerbang_domain::verification::VerificationError::Incorrect {
        attempts_left,
    }) = &error
    {
        api.attempts_left = Some(*attempts_left);
    }
    api
}

pub(crate) fn channel(input: &str) -> Result<Channel, ApiError> {
    Channel::parse(input).map_err(|e| explained(StatusCode::BAD_REQUEST, &e))
}

/// `to` parsed as the channel's kind of destination. An email address for a phone channel, or a
/// phone number for email, is `channel_destination_mismatch` (the caller picked the wrong
/// channel), not a malformed number or address.
fn destination(channel: Channel, to: &str) -> Result<Destination, ApiError> {
    let other_kind = match channel {
        Channel::Email => MobileNumber::parse(to).is_ok(),
        _ => to.contains('@'),
    };
    if other_kind {
        let mismatch = gerbang_domain::verification::VerificationError::ChannelMismatch;
        return Err(explained(StatusCode::BAD_REQUEST, &mismatch));
    }
    match channel {
        Channel::Email => Email::parse(to)
            .map(Destination::Email)
            .map_err(|e| explained(StatusCode::BAD_REQUEST, &e)),
        _ => MobileNumber::parse(to)
            .map(Destination::Phone)
            .map_err(|e| explained(StatusCode::BAD_REQUEST, &e)),
    }
}

fn purpose(input: &str) -> Result<Purpose, ApiError> {
    Purpose::parse(input).map_err(|e| explained(StatusCode::BAD_REQUEST, &e))
}

pub(crate) fn action(input: Option<&str>) -> Result<Option<SensitiveAction>, ApiError> {
    input
        .map(SensitiveAction::parse)
        .transpose()
        .map_err(|e| explained(StatusCode::BAD_REQUEST, &e))
}

pub(crate) fn details(
    map: Option<BTreeMap<String, String>>,
) -> Result<gerbang_domain::verification::purpose::ActionDetails, ApiError> {
    gerbang_core::engine::details(map).map_err(|e| explained(StatusCode::BAD_REQUEST, &e))
}

pub(crate) fn short_id(
    value: Option<String>,
    code: &'static str,
) -> Result<Option<String>, ApiError> {
    match value {
        Some(value) if value.is_empty() || value.len() > MAX_ID_LEN => Err(bad_request(
            code,
            "Pengenal terlalu panjang atau kosong (maksimal 128 karakter).",
            "The identifier is empty or too long (at most 128 characters).",
        )),
        other => Ok(other),
    }
}

fn origin(body: Option<OriginBody>) -> Result<Origin, ApiError> {
    let body = body.unwrap_or_default();
    let ip = body
        .ip
        .map(|ip| ip.trim().parse::<IpAddr>())
        .transpose()
        .map_err(|_| {
            bad_request(
                "origin_ip_invalid",
                "Alamat IP asal tidak valid.",
                "The origin IP address is not valid.",
            )
        })?;
    Ok(Origin {
        ip,
        device: short_id(body.device, "origin_device_invalid")?,
    })
}

fn verification_id(input: &str) -> Result<VerificationId, ApiError> {
    VerificationId::parse(input).map_err(|e| explained(StatusCode::NOT_FOUND, &e))
}

#[utoipa::path(post, path = "/v1/verifications", tag = "verifications", request_body = StartBody, security(("api_token" = [])), responses((status = 201, body = VerificationBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn start<S: Store>(
    State(state): State<HttpState<S>>,
    CallingClient(client): CallingClient,
    ApiJson(request): ApiJson<StartBody>,
) -> Result<(StatusCode, Json<VerificationBody>), ApiError> {
    let purpose = purpose(&request.purpose)?;
    let channel = channel(&request.channel)?;
    let destination = destination(channel, &request.to)?;
    let locale = match request.locale.as_deref() {
        None => crate::language::preferred(),
        Some(input) => Locale::parse(input).ok_or_else(|| {
            bad_request(
                "locale_unknown",
                "Bahasa tidak dikenal; gunakan id atau en.",
                "Unknown locale; use id or en.",
            )
        })?,
    };
    let subject = match request.participant {
        None => Subject::default(),
        Some(body) => Subject {
            account: short_id(body.account, "participant_account_invalid")?,
            nik: body
                .nik
                .map(|nik| Nik::parse(&nik))
                .transpose()
                .map_err(|e| explained(StatusCode::BAD_REQUEST, &e))?,
        },
    };
    let start = StartRequest {
        client,
        purpose,
        action: action(request.action.as_deref())?,
        details: details(request.details)?,
        action_hint: request.action_hint,
        channel,
        destination,
        locale,
        subject,
        origin: origin(request.origin)?,
    };
    let now = state.engine.now();
    let view = state
        .engine
        .start(start)
        .await
        .map_err(|e| engine_error(e, now))?;
    Ok((StatusCode::CREATED, Json(body(&view, now))))
}

#[utoipa::path(get, path = "/v1/verifications/{id}", tag = "verifications", params(("id" = String, Path, description = "vf_ and 32 hex digits")), security(("api_token" = [])), responses((status = 200, body = VerificationBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn status<S: Store>(
    State(state): State<HttpState<S>>,
    CallingClient(client): CallingClient,
    Path(id): Path<String>,
) -> Result<Json<VerificationBody>, ApiError> {
    let id = verification_id(&id)?;
    let now = state.engine.now();
    let view = state
        .engine
        .status(&client, id)
        .await
        .map_err(|e| engine_error(e, now))?;
    let outlook = state
        .engine
        .outlook(&client, id)
        .await
        .map_err(|e| engine_error(e, now))?;
    let mut answer = body(&view, now);
    answer.deliveries = outlook
        .attempts
        .iter()
        .enumerate()
        .map(|(index, attempt)| {
            delivery_body(
                attempt,
                outlook.explanations.get(index).and_then(Option::as_ref),
            )
        })
        .collect();
    answer.fallback = outlook.fallback.as_ref().map(fallback_body);
    answer.queue = outlook.queue.as_ref().map(queue_body);
    Ok(Json(answer))
}

#[utoipa::path(post, path = "/v1/verifications/{id}/resend", operation_id = "resend_verification", tag = "verifications", request_body = ResendBody, params(("id" = String, Path, description = "vf_ and 32 hex digits")), security(("api_token" = [])), responses((status = 200, body = VerificationBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn resend<S: Store>(
    State(state): State<HttpState<S>>,
    CallingClient(client): CallingClient,
    Path(id): Path<String>,
    super::RawBody(raw): super::RawBody,
) -> Result<Json<VerificationBody>, ApiError> {
    let id = verification_id(&id)?;
    // The body is optional: an empty one resends over the last channel.
    let request: ResendBody = if raw.iter().all(u8::is_ascii_whitespace) {
        ResendBody::default()
    } else {
        super::decode(&raw)?
    };
    let channel = request.channel.as_deref().map(channel).transpose()?;
    let destination = match (&request.to, channel) {
        (Some(to), Some(channel)) => Some(destination(channel, to)?),
        (Some(to), None) => Some(destination(Channel::Sms, to)?),
        (None, _) => None,
    };
    let resend = ResendRequest {
        client,
        id,
        channel,
        destination,
        origin: origin(request.origin)?,
    };
    let now = state.engine.now();
    let view = state
        .engine
        .resend(resend)
        .await
        .map_err(|e| engine_error(e, now))?;
    Ok(Json(body(&view, now)))
}

#[utoipa::path(post, path = "/v1/verifications/{id}/check", tag = "verifications", request_body = CheckBody, params(("id" = String, Path, description = "vf_ and 32 hex digits")), security(("api_token" = [])), responses((status = 200, body = VerificationBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn check<S: Store>(
    State(state): State<HttpState<S>>,
    CallingClient(client): CallingClient,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CheckBody>,
) -> Result<Json<VerificationBody>, ApiError> {
    let id = verification_id(&id)?;
    let check = CheckRequest {
        client,
        id,
        code: request.code,
        purpose: request.purpose.as_deref().map(purpose).transpose()?,
        action: action(request.action.as_deref())?,
        details: details(request.details)?,
    };
    let now = state.engine.now();
    let view = state
        .engine
        .check(check)
        .await
        .map_err(|e| engine_error(e, now))?;
    Ok(Json(body(&view, now)))
}

#[utoipa::path(post, path = "/v1/verifications/{id}/cancel", tag = "verifications", params(("id" = String, Path, description = "vf_ and 32 hex digits")), security(("api_token" = [])), responses((status = 200, body = VerificationBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn cancel<S: Store>(
    State(state): State<HttpState<S>>,
    CallingClient(client): CallingClient,
    Path(id): Path<String>,
) -> Result<Json<VerificationBody>, ApiError> {
    let id = verification_id(&id)?;
    let now = state.engine.now();
    let view = state
        .engine
        .cancel(&client, id)
        .await
        .map_err(|e| engine_error(e, now))?;
    Ok(Json(body(&view, now)))
}
