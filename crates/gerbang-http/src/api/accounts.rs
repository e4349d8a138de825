//! The participant account API: what a JKN Mobile / JMO style app is built on.
//!
//! Participant-facing (no API token; a flow token or a session token identifies the caller):
//! - `GET  /v1/captcha`: an image challenge (when the built-in captcha is configured).
//! - `POST /v1/accounts/registration`, `…/registration/contact`, `…/registration/confirm`.
//! - `POST /v1/accounts/login`, `…/login/confirm` (the new-device step-up).
//! - `POST /v1/accounts/recovery`, `…/recovery/send`, `…/recovery/confirm`.
//! - `POST /v1/accounts/flows/resend`: the current code of any flow again.
//! - With `Authorization: Bearer gbs_…`: `GET /v1/session`, `POST /v1/session/refresh`,
//!   `POST /v1/session/logout`, `GET /v1/session/devices`, `DELETE /v1/session/devices/{key}`,
//!   `POST /v1/session/contact`, `…/contact/confirm`, `POST /v1/session/step-up`,
//!   `…/step-up/confirm`.
//!
//! For the app's other services (API token): `POST /v1/introspect`, RFC 7662 style.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use gerbang_core::accounts::{
    AccountView, CodeSent, ContactAndPassword, ContactChangeStep, LoginOutcome, LoginRequest,
    SessionIssued, SessionView,
};
use gerbang_core::{AccountError, AccountService, CaptchaAnswer, CaptchaGate};
use gerbang_domain::account::Locked;
use gerbang_domain::verification::purpose::SensitiveAction;
use gerbang_domain::verification::{Destination, Locale};
use gerbang_domain::{Email, MobileNumber};
use gerbang_store::Store;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::ApiJson;
use super::clients::CallingClient;
use super::verifications::{
    VerificationBody, action, bad_request, body, channel, details, engine_error, explained,
    not_before, rfc3339, seconds_until,
};
use crate::HttpState;
use crate::error::ApiError;

fn service<S: Store>(state: &HttpState<S>) -> Result<&AccountService<S>, ApiError> {
    state
        .accounts
        .as_ref()
        .ok_or_else(crate::error::nothing_here)
}

/// The one place an account refusal becomes an HTTP answer.
pub(crate) fn account_error(error: AccountError, now: DateTime<Utc>) -> ApiError {
    let error = match error {
        AccountError::Engine(inner) => return engine_error(inner, now),
        other => other,
    };
    let status = match &error {
        AccountError::ParticipantNotFound
        | AccountError::RecoveryUnmatched
        | AccountError::AccountNotFound
        | AccountError::FlowNotFound
        | AccountError::DeviceNotFound => StatusCode::NOT_FOUND,
        AccountError::AlreadyRegistered
        | AccountError::EmailTaken
        | AccountError::PhoneTaken
        | AccountError::FlowMismatch => StatusCode::CONFLICT,
        AccountError::ParticipantInactive | AccountError::CoolingOff(_) => StatusCode::FORBIDDEN,
        AccountError::InvalidCredentials | AccountError::SessionInvalid => StatusCode::UNAUTHORIZED,
        AccountError::Locked(_) => StatusCode::LOCKED,
        AccountError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        AccountError::Captcha(gerbang_core::CaptchaError::Unavailable)
        | AccountError::Hashing(_)
        | AccountError::RegistryUnavailable(_)
        | AccountError::Store(_)
        | AccountError::Contended => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    if let AccountError::Store(cause) = &error {
        tracing::error!(error = %cause, "the store failed an account request");
    }
    if let AccountError::RegistryUnavailable(cause) = &error {
        tracing::warn!(error = %cause, "the membership registry failed an account lookup");
    }
    if let AccountError::Hashing(cause) = &error {
        tracing::warn!(error = %cause, "password hashing refused or failed");
    }
    let mut api = explained(status, &error);
    match &error {
        AccountError::WeakPassword(weak) => {
            api.failed_rules = weak.failed().iter().map(|rule| rule.code()).collect();
        }
        AccountError::Locked(notice) => {
            if let Locked::Temporarily { until } = notice.locked {
                api.retry_after = Some(seconds_until(until, now).max(1));
                api.retry_at = Some(not_before(until));
            }
        }
        AccountError::CoolingOff(notice) => {
            api.retry_after = Some(seconds_until(notice.until, now).max(1));
            api.retry_at = Some(not_before(notice.until));
        }
        AccountError::TooManyAttempts { until } => {
            api.retry_after = Some(seconds_until(*until, now).max(1));
            api.retry_at = Some(not_before(*until));
        }
        _ => {}
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        api.retry_after = Some(1);
    }
    api
}

fn locale(input: Option<&str>) -> Result<Locale, ApiError> {
    match input {
        None => Ok(crate::language::preferred()),
        Some(input) => Locale::parse(input).ok_or_else(|| {
            bad_request(
                "locale_unknown",
                "Bahasa tidak dikenal; gunakan id atau en.",
                "Unknown locale; use id or en.",
            )
        }),
    }
}

fn birth_date(input: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d").map_err(|_| {
        bad_request(
            "birth_date_invalid",
            "Tanggal lahir harus berformat TTTT-BB-HH, mis. 1980-08-17.",
            "The date of birth must be YYYY-MM-DD, e.g. 1980-08-17.",
        )
    })
}

fn secret(value: String) -> SecretString {
    SecretString::from(value)
}

// ----- bodies -----

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptchaBody {
    /// The built-in challenge's token, or a hosted widget's response token.
    token: String,
    /// What the image shows (built-in captcha only).
    #[serde(default)]
    answer: String,
}

fn captcha_answer(body: &Option<CaptchaBody>) -> Option<CaptchaAnswer<'_>> {
    body.as_ref().map(|c| CaptchaAnswer {
        token: &c.token,
        answer: &c.answer,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifyBody {
    /// NIK (16 digits), JKN card number (13 digits) or KPJ number (11 digits).
    identifier: String,
    /// `YYYY-MM-DD`.
    birth_date: String,
    captcha: Option<CaptchaBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    flow: String,
    email: Option<String>,
    phone: Option<String>,
    password: String,
    password_confirmation: String,
    /// `email` (default), `sms`, `whatsapp` or `voice`.
    channel: Option<String>,
    locale: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    flow: String,
    code: String,
    locale: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceBody {
    /// The app's installation id.
    id: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// NIK, card number or email.
    identifier: String,
    password: String,
    device: DeviceBody,
    locale: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FlowResendBody)]
pub struct ResendBody {
    flow: String,
    channel: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryBody {
    /// NIK (16 digits), JKN card number (13), KPJ number (11) or the account's email.
    identifier: String,
    /// `YYYY-MM-DD`: asked before anything about the account is shown.
    birth_date: String,
    captcha: Option<CaptchaBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverySendBody {
    flow: String,
    channel: String,
    locale: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryConfirmBody {
    flow: String,
    code: String,
    password: String,
    password_confirmation: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactChangeBody {
    /// The new mobile number or email address.
    to: String,
    locale: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpBody {
    action: String,
    details: Option<BTreeMap<String, String>>,
    action_hint: Option<String>,
    locale: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpConfirmBody {
    flow: String,
    code: String,
    details: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectBody {
    token: String,
    /// Ask whether this action's step-up is fresh.
    action: Option<String>,
    /// Seconds; default `accounts.step_up_window_minutes`.
    max_age: Option<u32>,
}

// ----- answers -----

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountBody {
    id: String,
    nik: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cooling_off_until: Option<String>,
}

fn account_body(view: &AccountView) -> AccountBody {
    AccountBody {
        id: view.id.clone(),
        nik: view.nik_masked.clone(),
        email: view.email_masked.clone(),
        phone: view.phone_masked.clone(),
        created_at: rfc3339(view.created_at),
        cooling_off_until: view.cooling_off_until.map(not_before),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlowBody {
    flow: String,
    verification: VerificationBody,
}

fn flow_body(sent: &CodeSent, now: DateTime<Utc>) -> FlowBody {
    FlowBody {
        flow: sent.flow.clone(),
        verification: body(&sent.verification, now),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    token: String,
    expires_at: String,
    account: AccountBody,
}

fn session_body(issued: &SessionIssued) -> SessionBody {
    SessionBody {
        token: issued.token.expose().to_owned(),
        expires_at: rfc3339(issued.expires_at),
        account: account_body(&issued.account),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfoBody {
    account: AccountBody,
    device: String,
    started_at: String,
    expires_at: String,
    step_ups: BTreeMap<String, String>,
}

fn session_info(view: &SessionView) -> SessionInfoBody {
    SessionInfoBody {
        account: account_body(&view.account),
        device: view.device.key(),
        started_at: rfc3339(view.started_at),
        expires_at: rfc3339(view.expires_at),
        step_ups: view
            .step_ups
            .iter()
            .map(|(action, at)| (action.clone(), rfc3339(*at)))
            .collect(),
    }
}

/// The session token of `Authorization: Bearer gbs_…`.
#[derive(Debug, Clone)]
pub struct SessionBearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SessionBearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(super::clients::bearer)
            .map(|token| Self(token.trim().to_owned()))
            .ok_or_else(|| {
                let error = AccountError::SessionInvalid;
                explained(StatusCode::UNAUTHORIZED, &error)
            })
    }
}

/// The caller's address: the TCP peer, or the first `X-Forwarded-For` entry when the deployment
/// says a load balancer sets it (`server.trust_forwarded_for`). `None` when neither is known
/// (requests driven without a socket).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Store> FromRequestParts<HttpState<S>> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState<S>,
    ) -> Result<Self, Self::Rejection> {
        if state.trust_forwarded_for
            && let Some(first) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .and_then(|first| first.trim().parse().ok())
        {
            return Ok(Self(Some(first)));
        }
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

// ----- handlers -----

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaptchaChallengeBody {
    token: String,
    image: String,
    expires_at: String,
}

#[utoipa::path(get, path = "/v1/captcha", tag = "accounts", responses((status = 200, body = CaptchaChallengeBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn captcha<S: Store>(
    State(state): State<HttpState<S>>,
) -> Result<Response, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    match accounts.captcha() {
        CaptchaGate::Builtin(builtin) => {
            let challenge = builtin
                .challenge()
                .map_err(|e| account_error(AccountError::Captcha(e), now))?;
            let image = format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&challenge.png)
            );
            let mut response = Json(CaptchaChallengeBody {
                token: challenge.token,
                image,
                expires_at: rfc3339(challenge.expires_at),
            })
            .into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            Ok(response)
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "captcha_not_builtin",
            "Captcha bawaan tidak dipakai di sini.",
            "The built-in captcha is not in use here.",
        )),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IdentifiedBody {
    flow: String,
    name: String,
    expires_at: String,
}

#[utoipa::path(post, path = "/v1/accounts/registration", tag = "accounts",
    request_body = IdentifyBody,
    responses((status = 200, body = IdentifiedBody), (status = "4XX", body = crate::error::ErrorBody)))]
pub(crate) async fn identify<S: Store>(
    State(state): State<HttpState<S>>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<IdentifyBody>,
) -> Result<Json<IdentifiedBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let birth_date = birth_date(&request.birth_date)?;
    let identified = accounts
        .identify(
            &request.identifier,
            birth_date,
            captcha_answer(&request.captcha),
            ip,
        )
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(IdentifiedBody {
        flow: identified.flow,
        name: identified.masked_name,
        expires_at: rfc3339(identified.expires_at),
    }))
}

#[utoipa::path(post, path = "/v1/accounts/registration/contact", tag = "accounts", request_body = ContactBody, responses((status = 202, body = FlowBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn register_contact<S: Store>(
    State(state): State<HttpState<S>>,
    ApiJson(request): ApiJson<ContactBody>,
) -> Result<(StatusCode, Json<FlowBody>), ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let email = request
        .email
        .filter(|e| !e.trim().is_empty())
        .map(|e| Email::parse(&e))
        .transpose()
        .map_err(|e| explained(StatusCode::BAD_REQUEST, &e))?;
    let phone = request
        .phone
        .filter(|p| !p.trim().is_empty())
        .map(|p| MobileNumber::parse(&p))
        .transpose()
        .map_err(|e| explained(StatusCode::BAD_REQUEST, &e))?;
    let contact = ContactAndPassword {
        email,
        phone,
        password: secret(request.password),
        confirmation: secret(request.password_confirmation),
        channel: request.channel.as_deref().map(channel).transpose()?,
        locale: locale(request.locale.as_deref())?,
    };
    let sent = accounts
        .register_contact(&request.flow, contact)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok((StatusCode::ACCEPTED, Json(flow_body(&sent, now))))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredBody {
    account: AccountBody,
}

#[utoipa::path(post, path = "/v1/accounts/registration/confirm", tag = "accounts", request_body = CodeBody, responses((status = 201, body = RegisteredBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn confirm_registration<S: Store>(
    State(state): State<HttpState<S>>,
    ApiJson(request): ApiJson<CodeBody>,
) -> Result<(StatusCode, Json<RegisteredBody>), ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let view = accounts
        .confirm_registration(&request.flow, &request.code)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredBody {
            account: account_body(&view),
        }),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
// Built once per request and moved straight into the response: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum LoginAnswer {
    Session {
        session: SessionBody,
    },
    StepUp {
        step_up_required: bool,
        flow: String,
        verification: VerificationBody,
    },
}

#[utoipa::path(post, path = "/v1/accounts/login", tag = "accounts", request_body = LoginBody, responses((status = 200, body = LoginAnswer, description = "a session (trusted device)"), (status = 202, body = LoginAnswer, description = "a new device: step_up_required, flow and verification"), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn login<S: Store>(
    State(state): State<HttpState<S>>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<LoginBody>,
) -> Result<(StatusCode, Json<LoginAnswer>), ApiError> {
    let accounts = service(&state)?;
    let login = LoginRequest {
        identifier: request.identifier,
        password: secret(request.password),
        device_id: request.device.id,
        device_name: request.device.name.unwrap_or_default(),
        locale: locale(request.locale.as_deref())?,
        ip,
    };
    let outcome = accounts.login(login).await;
    let now = accounts.now();
    match outcome.map_err(|e| account_error(e, now))? {
        LoginOutcome::Session(issued) => Ok((
            StatusCode::OK,
            Json(LoginAnswer::Session {
                session: session_body(&issued),
            }),
        )),
        LoginOutcome::StepUp(sent) => Ok((
            StatusCode::ACCEPTED,
            Json(LoginAnswer::StepUp {
                step_up_required: true,
                flow: sent.flow.clone(),
                verification: body(&sent.verification, now),
            }),
        )),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoggedInBody {
    session: SessionBody,
}

#[utoipa::path(post, path = "/v1/accounts/login/confirm", tag = "accounts", request_body = CodeBody, responses((status = 200, body = LoggedInBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn confirm_login<S: Store>(
    State(state): State<HttpState<S>>,
    ApiJson(request): ApiJson<CodeBody>,
) -> Result<Json<LoggedInBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let issued = accounts
        .confirm_login(&request.flow, &request.code)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(LoggedInBody {
        session: session_body(&issued),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResentBody {
    verification: VerificationBody,
}

#[utoipa::path(post, path = "/v1/accounts/flows/resend", operation_id = "resend_flow_code", tag = "accounts", request_body = ResendBody, responses((status = 200, body = ResentBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn resend<S: Store>(
    State(state): State<HttpState<S>>,
    ApiJson(request): ApiJson<ResendBody>,
) -> Result<Json<ResentBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let channel = request.channel.as_deref().map(channel).transpose()?;
    let view = accounts
        .resend(&request.flow, channel)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(ResentBody {
        verification: body(&view, now),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveryChannelBody {
    channel: &'static str,
    to: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveryOptionsBody {
    flow: String,
    channels: Vec<RecoveryChannelBody>,
}

#[utoipa::path(post, path = "/v1/accounts/recovery", tag = "accounts", request_body = RecoveryBody, responses((status = 200, body = RecoveryOptionsBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn start_recovery<S: Store>(
    State(state): State<HttpState<S>>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<RecoveryBody>,
) -> Result<Json<RecoveryOptionsBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let birth_date = birth_date(&request.birth_date)?;
    let options = accounts
        .start_recovery(
            &request.identifier,
            birth_date,
            captcha_answer(&request.captcha),
            ip,
        )
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(RecoveryOptionsBody {
        flow: options.flow,
        channels: options
            .channels
            .into_iter()
            .map(|c| RecoveryChannelBody {
                channel: c.channel.as_str(),
                to: c.masked,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/accounts/recovery/send", tag = "accounts", request_body = RecoverySendBody, responses((status = 202, body = FlowBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn send_recovery<S: Store>(
    State(state): State<HttpState<S>>,
    ApiJson(request): ApiJson<RecoverySendBody>,
) -> Result<(StatusCode, Json<FlowBody>), ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let channel = channel(&request.channel)?;
    let sent = accounts
        .send_recovery(&request.flow, channel, locale(request.locale.as_deref())?)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok((StatusCode::ACCEPTED, Json(flow_body(&sent, now))))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveredBody {
    sessions_revoked: u64,
    devices_revoked: usize,
}

#[utoipa::path(post, path = "/v1/accounts/recovery/confirm", tag = "accounts", request_body = RecoveryConfirmBody, responses((status = 200, body = RecoveredBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn complete_recovery<S: Store>(
    State(state): State<HttpState<S>>,
    ApiJson(request): ApiJson<RecoveryConfirmBody>,
) -> Result<Json<RecoveredBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let recovered = accounts
        .complete_recovery(
            &request.flow,
            &request.code,
            secret(request.password),
            secret(request.password_confirmation),
        )
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(RecoveredBody {
        sessions_revoked: recovered.sessions_revoked,
        devices_revoked: recovered.devices_revoked,
    }))
}

#[utoipa::path(get, path = "/v1/session", tag = "accounts", security(("session" = [])), responses((status = 200, body = SessionInfoBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn session<S: Store>(
    State(state): State<HttpState<S>>,
    SessionBearer(token): SessionBearer,
) -> Result<Json<SessionInfoBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let (session, stored) = accounts
        .session(&token)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(session_info(
        &accounts.session_view(&session, &stored),
    )))
}

#[utoipa::path(post, path = "/v1/session/refresh", tag = "accounts", security(("session" = [])), responses((status = 200, body = SessionInfoBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn refresh<S: Store>(
    State(state): State<HttpState<S>>,
    SessionBearer(token): SessionBearer,
) -> Result<Json<SessionInfoBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let view = accounts
        .refresh(&token)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(session_info(&view)))
}

#[utoipa::path(post, path = "/v1/session/logout", tag = "accounts", security(("session" = [])), responses((status = 204), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn logout<S: Store>(
    State(state): State<HttpState<S>>,
    SessionBearer(token): SessionBearer,
) -> Result<StatusCode, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    accounts
        .logout(&token)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceListBody {
    devices: Vec<DeviceItemBody>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceItemBody {
    key: String,
    name: String,
    trusted_at: String,
    last_seen_at: String,
    current: bool,
}

#[utoipa::path(get, path = "/v1/session/devices", tag = "accounts", security(("session" = [])), responses((status = 200, body = DeviceListBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn devices<S: Store>(
    State(state): State<HttpState<S>>,
    SessionBearer(token): SessionBearer,
) -> Result<Json<DeviceListBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let devices = accounts
        .devices(&token)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(DeviceListBody {
        devices: devices
            .into_iter()
            .map(|d| DeviceItemBody {
                key: d.key,
                name: d.name,
                trusted_at: rfc3339(d.trusted_at),
                last_seen_at: rfc3339(d.last_seen_at),
                current: d.current,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceRevokedBody {
    sessions_revoked: u64,
}

#[utoipa::path(delete, path = "/v1/session/devices/{key}", tag = "accounts", params(("key" = String, Path, description = "the device key from the list")), security(("session" = [])), responses((status = 200, body = DeviceRevokedBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn revoke_device<S: Store>(
    State(state): State<HttpState<S>>,
    SessionBearer(token): SessionBearer,
    Path(key): Path<String>,
) -> Result<Json<DeviceRevokedBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let sessions_revoked = accounts
        .revoke_device(&token, &key)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(DeviceRevokedBody { sessions_revoked }))
}

#[utoipa::path(post, path = "/v1/session/contact", tag = "accounts", request_body = ContactChangeBody, security(("session" = [])), responses((status = 202, body = FlowBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn start_contact_change<S: Store>(
    State(state): State<HttpState<S>>,
    SessionBearer(token): SessionBearer,
    ApiJson(request): ApiJson<ContactChangeBody>,
) -> Result<(StatusCode, Json<FlowBody>), ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let to = if request.to.contains('@') {
        Destination::Email(
            Email::parse(&request.to).map_err(|e| explained(StatusCode::BAD_REQUEST, &e))?,
        )
    } else {
        Destination::Phone(
            MobileNumber::parse(&request.to).map_err(|e| explained(StatusCode::BAD_REQUEST, &e))?,
        )
    };
    let sent = accounts
        .start_contact_change(&token, to, locale(request.locale.as_deref())?)
        .await
        .map_err(|e| account_error(e, now))?;
    Ok((StatusCode::ACCEPTED, Json(flow_body(&sent, now))))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
// Built once per request and moved straight into the response: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ContactChangeAnswer {
    ProveNew(FlowBody),
    Changed { account: AccountBody },
}

#[utoipa::path(post, path = "/v1/session/contact/confirm", tag = "accounts", request_body = CodeBody, security(("session" = [])), responses((status = 200, body = ContactChangeAnswer, description = "the account, once changed"), (status = 202, body = ContactChangeAnswer, description = "the old contact authorised: a code went to the new one"), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn confirm_contact_change<S: Store>(
    State(state): State<HttpState<S>>,
    SessionBearer(token): SessionBearer,
    ApiJson(request): ApiJson<CodeBody>,
) -> Result<(StatusCode, Json<ContactChangeAnswer>), ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let step = accounts
        .confirm_contact_change(
            &token,
            &request.flow,
            &request.code,
            locale(request.locale.as_deref())?,
        )
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(match step {
        ContactChangeStep::ProveNew(sent) => (
            StatusCode::ACCEPTED,
            Json(ContactChangeAnswer::ProveNew(flow_body(&sent, now))),
        ),
        ContactChangeStep::Changed(view) => (
            StatusCode::OK,
            Json(ContactChangeAnswer::Changed {
                account: account_body(&view),
            }),
        ),
    })
}

fn required_action(input: &str) -> Result<SensitiveAction, ApiError> {
    action(Some(input))?.ok_or_else(|| {
        bad_request(
            "action_missing",
            "Sebutkan tindakan yang dikonfirmasi.",
            "Name the action being confirmed.",
        )
    })
}

#[utoipa::path(post, path = "/v1/session/step-up", tag = "accounts", request_body = StepUpBody, security(("session" = [])), responses((status = 202, body = FlowBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn start_step_up<S: Store>(
    State(state): State<HttpState<S>>,
    SessionBearer(token): SessionBearer,
    ApiJson(request): ApiJson<StepUpBody>,
) -> Result<(StatusCode, Json<FlowBody>), ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let sent = accounts
        .start_step_up(
            &token,
            required_action(&request.action)?,
            details(request.details)?,
            request.action_hint,
            locale(request.locale.as_deref())?,
        )
        .await
        .map_err(|e| account_error(e, now))?;
    Ok((StatusCode::ACCEPTED, Json(flow_body(&sent, now))))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepUpDoneBody {
    action: &'static str,
    at: String,
}

#[utoipa::path(post, path = "/v1/session/step-up/confirm", tag = "accounts", request_body = StepUpConfirmBody, security(("session" = [])), responses((status = 200, body = StepUpDoneBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn confirm_step_up<S: Store>(
    State(state): State<HttpState<S>>,
    SessionBearer(token): SessionBearer,
    ApiJson(request): ApiJson<StepUpConfirmBody>,
) -> Result<Json<StepUpDoneBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let done = accounts
        .confirm_step_up(
            &token,
            &request.flow,
            &request.code,
            details(request.details)?,
        )
        .await
        .map_err(|e| account_error(e, now))?;
    Ok(Json(StepUpDoneBody {
        action: done.action.as_str(),
        at: rfc3339(done.at),
    }))
}

/// RFC 7662's answer, with gerbang's extensions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntrospectionBody {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    /// Seconds since the epoch, as RFC 7662 has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nik: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_ups: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_up_fresh: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cooling_off_until: Option<String>,
}

#[utoipa::path(post, path = "/v1/introspect", tag = "accounts", request_body = IntrospectBody, security(("api_token" = [])), responses((status = 200, body = IntrospectionBody), (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub(crate) async fn introspect<S: Store>(
    State(state): State<HttpState<S>>,
    CallingClient(client): CallingClient,
    ApiJson(request): ApiJson<IntrospectBody>,
) -> Result<Json<IntrospectionBody>, ApiError> {
    let accounts = service(&state)?;
    let now = accounts.now();
    let action = request.action.as_deref().map(required_action).transpose()?;
    let answer = accounts
        .introspect(
            &request.token,
            action.map(SensitiveAction::as_str),
            request
                .max_age
                .map(|s| chrono::Duration::seconds(i64::from(s))),
        )
        .await
        .map_err(|e| account_error(e, now))?;
    tracing::debug!(client = %client, active = answer.active, "session introspected");
    let Some(session) = answer.session else {
        return Ok(Json(IntrospectionBody {
            active: false,
            sub: None,
            token_type: None,
            iat: None,
            exp: None,
            nik: None,
            device: None,
            step_ups: None,
            step_up_fresh: None,
            cooling_off_until: None,
        }));
    };
    let info = session_info(&session);
    Ok(Json(IntrospectionBody {
        active: answer.active,
        sub: Some(info.account.id.clone()),
        token_type: Some("session"),
        iat: Some(session.started_at.timestamp()),
        exp: Some(session.expires_at.timestamp()),
        // The NIK in full: the calling services are trusted internal ones (API token).
        nik: answer.nik.map(|nik| nik.as_str().to_owned()),
        device: Some(info.device),
        step_ups: Some(info.step_ups),
        step_up_fresh: answer.step_up_fresh,
        cooling_off_until: info.account.cooling_off_until,
    }))
}
