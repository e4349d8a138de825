//! Codes over WhatsApp, through Meta's WhatsApp Business Cloud API, and the webhook that reports
//! what became of them.
//!
//! Layout:
//! - [`WhatsappSettings`] and [`WhatsappCourier`]: a copy-code **authentication template**
//!   (`research/domain.md` §8.1: WhatsApp allows codes only in that category) sent with
//!   `POST {api_base}/{phone_number_id}/messages`; the answer's `messages[0].id` (a `wamid`) is the
//!   message id the status webhook names.
//! - The webhook, as pure functions an HTTP handler calls: [`verify_subscription`] (the `GET`
//!   handshake), [`verify_signature`] (`X-Hub-Signature-256`), [`parse_status_webhook`] (the
//!   `statuses` of a notification).
//!
//! Error codes (in the send answer's `error.code` or a `failed` status's `errors[0].code`) are
//! judged by the [`CauseMap`] (`RawOutcome::Whatsapp`); an answer without one falls back on its
//! HTTP status (see [`crate::http_sms`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gerbang_core::{Courier, HandOff, HandOffFailure};
use gerbang_domain::delivery::{Cause, CauseMap, DeliveryStatus, RawOutcome, Retry, Verdict};
use gerbang_domain::verification::{Channel, Locale};
use gerbang_store::OutboxMessage;

use crate::courier::phone_for;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::http_sms::{
    MAX_ANSWER_BYTES, MAX_DETAIL_CHARS, Redactor, Secret, SetupError, build_client, check_url,
    clip, read_capped, scalar_text, status_failure, transport_failure,
};

/// The Graph API version gerbang was written against.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com/v21.0";

/// One WhatsApp Business phone number and its authentication template.
#[derive(Debug, Clone)]
pub struct WhatsappSettings {
    /// `https://graph.facebook.com/v21.0`; a test points it at a mock server.
    pub api_base: String,
    /// The id of the business phone number (not the number itself), from WhatsApp Manager.
    pub phone_number_id: String,
    /// A system user's permanent access token.
    pub access_token: Secret,
    /// The approved authentication template (copy-code button), e.g. `gerbang_otp`.
    pub template: String,
    /// The template's language code for Indonesian messages (`id`).
    pub language_id: String,
    /// … and for English ones (`en_US`).
    pub language_en: String,
    /// How long a send request (connect, send, answer) may take.
    pub timeout: Duration,
    /// The Meta app's secret, which signs webhook notifications ([`verify_signature`]).
    pub app_secret: Secret,
    /// The token typed into the app's webhook settings, echoed by the `GET` handshake
    /// ([`verify_subscription`]).
    pub webhook_verify_token: Secret,
}

impl WhatsappSettings {
    pub fn new(
        phone_number_id: impl Into<String>,
        access_token: Secret,
        template: impl Into<String>,
    ) -> Self {
        Self {
            api_base: DEFAULT_API_BASE.into(),
            phone_number_id: phone_number_id.into(),
            access_token,
            template: template.into(),
            language_id: "id".into(),
            language_en: "en_US".into(),
            timeout: Duration::from_secs(10),
            app_secret: Secret::default(),
            webhook_verify_token: Secret::default(),
        }
    }

    fn language(&self, locale: Locale) -> &str {
        match locale {
            Locale::Id => &self.language_id,
            Locale::En => &self.language_en,
        }
    }

    fn messages_url(&self) -> String {
        format!(
            "{}/{}/messages",
            self.api_base.trim_end_matches('/'),
            self.phone_number_id.trim()
        )
    }
}

/// Codes over the WhatsApp Cloud API.
#[derive(Debug, Clone)]
pub struct WhatsappCourier {
    /// The provider's name in the delivery trail and the logs, e.g. `whatsapp`.
    pub name: String,
    settings: WhatsappSettings,
    pub causes: Arc<CauseMap>,
    http: reqwest::Client,
}

impl WhatsappCourier {
    pub fn new(
        name: impl Into<String>,
        settings: WhatsappSettings,
        causes: Arc<CauseMap>,
    ) -> Result<Self, SetupError> {
        if settings.phone_number_id.trim().is_empty() {
            return Err(SetupError::Missing("the WhatsApp phone number id"));
        }
        if settings.access_token.is_empty() {
            return Err(SetupError::Missing("the WhatsApp access token"));
        }
        if settings.template.trim().is_empty() {
            return Err(SetupError::Missing("the WhatsApp template name"));
        }
        check_url(&settings.messages_url())?;
        let http = build_client(settings.timeout)?;
        Ok(Self {
            name: name.into(),
            settings,
            causes,
            http,
        })
    }

    pub fn settings(&self) -> &WhatsappSettings {
        &self.settings
    }

    /// A refusal with Meta's error object, or just an HTTP status.
    fn refusal(&self, status: u16, body: &[u8], redactor: &Redactor) -> HandOffFailure {
        let error = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|json| json.get("error").cloned())
            .filter(Value::is_object);
        let Some(error) = error else {
            let said = redactor.clean(&String::from_utf8_lossy(body), 120);
            let detail = if said.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {said}")
            };
            return status_failure(status, detail);
        };
        let code = error
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|code| u32::try_from(code).ok());
        let mut detail = format!("HTTP {status}");
        if let Some(code) = code {
            detail.push_str(&format!(" code {code}"));
        }
        if let Some(subcode) = error.get("error_subcode").and_then(scalar_text) {
            detail.push_str(&format!(" subcode {subcode}"));
        }
        let words: Vec<String> = [
            error.get("error_user_title"),
            error.get("message"),
            error.pointer("/error_data/details"),
        ]
        .into_iter()
        .flatten()
        .filter_map(scalar_text)
        .map(|text| redactor.clean(&text, 160))
        .filter(|text| !text.is_empty())
        .collect();
        if !words.is_empty() {
            detail.push_str(": ");
            detail.push_str(&words.join(" — "));
        }
        if let Some(trace) = error.get("fbtrace_id").and_then(scalar_text) {
            detail.push_str(&format!(" (fbtrace_id {})", redactor.clean(&trace, 40)));
        }
        let detail = clip(&detail, MAX_DETAIL_CHARS);
        match code {
            Some(code) => {
                let verdict = self.causes.judge(&RawOutcome::Whatsapp(code));
                HandOffFailure::new(
                    verdict.cause.unwrap_or(Cause::Unknown),
                    verdict.retry,
                    detail,
                )
            }
            None => status_failure(status, detail),
        }
    }
}

/// The send request: Meta's copy-code authentication template, whose body parameter and URL
/// button parameter are both the code.
fn template_message(to: &str, template: &str, language: &str, code: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": template,
            "language": { "code": language },
            "components": [
                {
                    "type": "body",
                    "parameters": [{ "type": "text", "text": code }]
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{ "type": "text", "text": code }]
                }
            ]
        }
    })
}

impl Courier for WhatsappCourier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        let number = phone_for(&self.name, Channel::Whatsapp, message)?;
        let Some(content) = &message.content else {
            return Err(HandOffFailure::misconfigured(format!(
                "{}: the message has no content for a template (queued by an older gerbang)",
                self.name
            )));
        };
        let body = template_message(
            number.e164().trim_start_matches('+'),
            &self.settings.template,
            self.settings.language(content.locale),
            &content.code,
        );
        let response = self
            .http
            .post(self.settings.messages_url())
            .bearer_auth(self.settings.access_token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|error| transport_failure(&error, self.settings.timeout))?;
        let status = response.status().as_u16();
        let answer = read_capped(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|error| transport_failure(&error, self.settings.timeout))?;
        let redactor = Redactor::for_message(message).with(self.settings.access_token.expose());
        if !(200..300).contains(&status) {
            return Err(self.refusal(status, &answer, &redactor));
        }
        let wamid = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|json| json.pointer("/messages/0/id").and_then(scalar_text))
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty());
        match wamid {
            Some(wamid) => Ok(HandOff {
                at: now,
                message_id: Some(wamid),
                status: DeliveryStatus::Submitted,
            }),
            None => Err(HandOffFailure::unreachable(format!(
                "HTTP {status} without messages[0].id: {}",
                redactor.clean(&String::from_utf8_lossy(&answer), 120)
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The webhook
// ---------------------------------------------------------------------------------------------

/// The `GET` handshake Meta makes when the webhook URL is saved: answers `hub.challenge` (to be
/// sent back as the body, `200 text/plain`) when `hub.mode` is `subscribe` and `hub.verify_token`
/// is ours; `None` (answer `403`) otherwise, and always when no token is configured. The challenge
/// is echoed only when it is short and plain (Meta sends digits), so the endpoint cannot be made
/// to reflect markup.
pub fn verify_subscription(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &Secret,
) -> Option<String> {
    let (Some("subscribe"), Some(token), Some(challenge)) = (mode, token, challenge) else {
        return None;
    };
    if expected_token.is_empty()
        || !constant_time_eq(token.as_bytes(), expected_token.expose().as_bytes())
    {
        return None;
    }
    let plain = !challenge.is_empty()
        && challenge.len() <= 128
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    plain.then(|| challenge.to_owned())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Whether `header_value` (`X-Hub-Signature-256: sha256=<hex>`) is the HMAC-SHA256 of `raw_body`
/// (the bytes as received, before any parsing) under the app secret. The comparison takes the same
/// time wherever the digests differ. An empty secret verifies nothing.
pub fn verify_signature(app_secret: &Secret, raw_body: &[u8], header_value: &str) -> bool {
    if app_secret.is_empty() {
        return false;
    }
    let Some(hex) = header_value.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    if expected.len() != 32 {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(raw_body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let high = digit(pair[0])?;
            let low = digit(pair[1])?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

/// One status update of a message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsappStatus {
    /// The `wamid` the send answer gave.
    pub message_id: String,
    /// `sent` → submitted; `delivered`, `read` → delivered; `failed` → failed.
    pub status: DeliveryStatus,
    /// `errors[0].code` of a `failed` status.
    pub error_code: Option<u32>,
    /// `errors[0].title`, for staff (clipped).
    pub error_title: Option<String>,
    /// When WhatsApp says it happened; `None` when the notification had no readable timestamp.
    pub timestamp: Option<DateTime<Utc>>,
}

impl WhatsappStatus {
    /// Status, cause and retry, a `failed` one judged by its error code.
    pub fn verdict(&self, causes: &CauseMap) -> Verdict {
        match (self.status, self.error_code) {
            (DeliveryStatus::Failed, Some(code)) => causes.judge(&RawOutcome::Whatsapp(code)),
            (DeliveryStatus::Failed, None) => Verdict {
                status: DeliveryStatus::Failed,
                cause: Some(Cause::Unknown),
                retry: Retry::OtherRoute,
            },
            (DeliveryStatus::Delivered, _) => Verdict {
                status: DeliveryStatus::Delivered,
                cause: Some(Cause::Delivered),
                retry: Retry::No,
            },
            (status, _) => Verdict {
                status,
                cause: None,
                retry: Retry::No,
            },
        }
    }

    /// WhatsApp's words for the delivery trail: `failed code 131026 (Message undeliverable)`.
    pub fn detail(&self) -> String {
        let mut detail = format!("whatsapp {}", self.status.as_str());
        if let Some(code) = self.error_code {
            detail.push_str(&format!(" code {code}"));
        }
        if let Some(title) = &self.error_title {
            detail.push_str(&format!(" ({title})"));
        }
        detail
    }
}

/// Why a webhook notification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the notification is not JSON")]
    NotJson,
    #[error("the notification is not shaped like a WhatsApp one: {0}")]
    Shape(&'static str),
}

/// The statuses in one notification (`entry[].changes[].value.statuses[]`), in order.
///
/// Tolerant: unknown fields are ignored, and so are changes that are not statuses (incoming
/// messages, template updates), notifications about another object than
/// `whatsapp_business_account`, statuses without an id, and status words that are not a delivery
/// report (`deleted`, `warning`). Malformed means: not JSON, not an object, or no `entry` array;
/// that is an error, never a panic. Nothing personal is kept (not the `recipient_id`).
pub fn parse_status_webhook(raw_body: &[u8]) -> Result<Vec<WhatsappStatus>, WebhookError> {
    let json: Value = serde_json::from_slice(raw_body).map_err(|_| WebhookError::NotJson)?;
    let root = json
        .as_object()
        .ok_or(WebhookError::Shape("the body is not an object"))?;
    match root.get("object") {
        None => {}
        Some(Value::String(object)) if object == "whatsapp_business_account" => {}
        Some(Value::String(_)) => return Ok(Vec::new()),
        Some(_) => return Err(WebhookError::Shape("`object` is not a string")),
    }
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or(WebhookError::Shape("no `entry` array"))?;
    let statuses = entries
        .iter()
        .filter_map(|entry| entry.get("changes")?.as_array())
        .flatten()
        .filter(|change| {
            change
                .get("field")
                .and_then(Value::as_str)
                .is_none_or(|field| field == "messages")
        })
        .filter_map(|change| change.get("value")?.get("statuses")?.as_array())
        .flatten()
        .filter_map(read_status)
        .collect();
    Ok(statuses)
}

fn read_status(status: &Value) -> Option<WhatsappStatus> {
    let message_id = status
        .get("id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|id| !id.is_empty())?;
    let delivery = match status.get("status").and_then(Value::as_str)? {
        "sent" => DeliveryStatus::Submitted,
        "delivered" | "read" => DeliveryStatus::Delivered,
        "failed" => DeliveryStatus::Failed,
        _ => return None,
    };
    let first_error = status.get("errors").and_then(|errors| errors.get(0));
    let error_code = first_error
        .and_then(|error| error.get("code"))
        .and_then(|code| match code {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        })
        .and_then(|code| u32::try_from(code).ok());
    let error_title = first_error
        .and_then(|error| error.get("title").or_else(|| error.get("message")))
        .and_then(Value::as_str)
        .map(|title| clip(title.trim(), 120))
        .filter(|title| !title.is_empty());
    let timestamp = status
        .get("timestamp")
        .and_then(|at| match at {
            Value::String(text) => text.trim().parse::<i64>().ok(),
            Value::Number(number) => number.as_i64(),
            _ => None,
        })
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0));
    Some(WhatsappStatus {
        message_id: clip(message_id, 256),
        status: delivery,
        error_code,
        error_title,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decodes_in_either_case_and_refuses_junk() {
        assert_eq!(decode_hex("00ffAB"), Some(vec![0, 255, 0xab]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é0"), None);
    }

    #[test]
    fn the_handshake_needs_the_mode_the_token_and_a_plain_challenge() {
        let ours = Secret::new("verify-me");
        let answer = |mode, token, challenge| verify_subscription(mode, token, challenge, &ours);
        assert_eq!(
            answer(Some("subscribe"), Some("verify-me"), Some("1158201444")),
            Some("1158201444".into())
        );
        assert_eq!(answer(Some("subscribe"), Some("wrong"), Some("1")), None);
        assert_eq!(
            answer(Some("unsubscribe"), Some("verify-me"), Some("1")),
            None
        );
        assert_eq!(answer(Some("subscribe"), None, Some("1")), None);
        assert_eq!(
            answer(Some("subscribe"), Some("verify-me"), Some("<b>x</b>")),
            None
        );
        assert_eq!(
            verify_subscription(Some("subscribe"), Some(""), Some("1"), &Secret::default()),
            None
        );
    }
}
