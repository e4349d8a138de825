//! SMS over a provider's HTTP API, described by data rather than code: where to send, which
//! headers, a body template with placeholders, how to tell success from the answer, where the
//! message id is, and how to read the provider's status callbacks.
//!
//! Layout:
//! - [`HttpSmsSettings`] and [`HttpSmsCourier`]: the request, the answer, the hand-off.
//! - [`CallbackSettings`], [`StatusMap`] and [`parse_callback`]: the provider's delivery reports.
//! - The HTTP plumbing the WhatsApp and voice couriers share: [`Secret`] (a value `Debug` never
//!   shows), [`SetupError`], and (crate-private) the client builder, the mapping of HTTP statuses and
//!   transport failures to [`HandOffFailure`]s, and the redaction of providers' answers before they
//!   become a failure's `detail`.
//!
//! HTTP statuses: 2xx is judged by the success rule; 429 is `provider_throttled` (same route);
//! another 4xx is `provider_misconfigured` (other route: the request or the account is wrong); 5xx,
//! timeouts, refused connections and answers that make no sense are `provider_error` (same route).
//! Redirects are not followed (a redirect means the URL is wrong): `provider_misconfigured`.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gerbang_core::{Courier, HandOff, HandOffFailure};
use gerbang_domain::delivery::{
    Cause, CauseMap, DeliveryStatus, RawOutcome, Receipt, ReceiptState, Retry, Verdict,
};
use gerbang_domain::verification::{Channel, Destination};
use gerbang_store::OutboxMessage;

use crate::courier::phone_for;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Shared HTTP plumbing
// ---------------------------------------------------------------------------------------------

/// A value that must never be printed: an access token, an API key, a header carrying one.
/// `Debug` shows only whether it is set.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it (a request header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(<empty>)")
        } else {
            f.write_str("Secret(***)")
        }
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Why an HTTP provider could not be set up. Checked once, at start-up, so that a typo in the
/// configuration stops the server instead of failing every message.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The URL, with any query and credentials left out (they may hold secrets).
    #[error("`{0}` is not an absolute http(s) URL")]
    Url(String),
    #[error("the timeout must be longer than zero")]
    ZeroTimeout,
    #[error("{0} must not be empty")]
    Missing(&'static str),
    /// The header's name (its value is never shown).
    #[error("header `{0}` has an invalid name or value")]
    Header(String),
    #[error("the body template is not JSON once its placeholders are filled in: {0}")]
    BodyTemplate(String),
    #[error("`{0}` is not a JSON pointer (empty, or starting with `/`)")]
    Pointer(String),
}

/// Answers larger than this are cut (and then usually fail to parse): a provider's answer to one
/// message is a few hundred bytes.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Longest `detail` kept from a provider's answer.
pub(crate) const MAX_DETAIL_CHARS: usize = 300;

/// A client whose every request (connect, send, read the answer) ends within `timeout`, and which
/// does not follow redirects (a redirected POST loses its body, and an API that redirects is
/// configured with the wrong URL).
pub(crate) fn build_client(timeout: Duration) -> Result<reqwest::Client, SetupError> {
    if timeout.is_zero() {
        return Err(SetupError::ZeroTimeout);
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gerbang/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(SetupError::Client)
}

/// Checks that `url` is an absolute http(s) URL.
pub(crate) fn check_url(url: &str) -> Result<reqwest::Url, SetupError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Ok(parsed)
        }
        _ => Err(SetupError::Url(url_for_logs(url))),
    }
}

/// The URL without its query, fragment or credentials, which may hold an API key.
pub(crate) fn url_for_logs(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..cut];
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// A refusal answered with a non-2xx HTTP status (and no finer code the courier understands).
pub(crate) fn status_failure(status: u16, detail: String) -> HandOffFailure {
    match status {
        429 => HandOffFailure::new(Cause::ProviderThrottled, Retry::SameRoute, detail),
        400..=499 => HandOffFailure::new(Cause::ProviderMisconfigured, Retry::OtherRoute, detail),
        500..=599 => HandOffFailure::unreachable(detail),
        // 1xx and 3xx: redirects are not followed, so the URL is not the API's.
        _ => HandOffFailure::misconfigured(format!("{detail} (not an API answer: check the URL)")),
    }
}

/// Nothing (sensible) answered: a timeout, a refused connection, an answer cut off.
pub(crate) fn transport_failure(error: &reqwest::Error, timeout: Duration) -> HandOffFailure {
    let mut detail = if error.is_timeout() {
        format!("no answer within {} ms", timeout.as_millis())
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else if error.is_body() || error.is_decode() {
        "the answer broke off".to_owned()
    } else {
        "the request failed".to_owned()
    };
    // reqwest's own message names the URL (which may hold a key); the causes below it do not.
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    HandOffFailure::unreachable(clip(&detail, MAX_DETAIL_CHARS))
}

/// Reads at most `limit` bytes of the answer.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}

/// Cleans a provider's words before they become a failure's `detail`: the code, the message text,
/// the number (in every form) and anything else it was given are replaced by `***`, control
/// characters become spaces, and the result is clipped. Providers sometimes echo the request in
/// their errors; the delivery trail must never hold the code or personal data.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
    /// Also mask every run of 4 or more digits (a code is 4 to 8 digits): for providers whose
    /// answers we do not know, which may echo the code inside a reworded text.
    mask_digit_runs: bool,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor(***)")
    }
}

impl Redactor {
    /// Everything `message` carries that must not reach the trail.
    pub(crate) fn for_message(message: &OutboxMessage) -> Self {
        let mut redactor = Self::default()
            .with(&message.text)
            .with(message.destination.reveal());
        if let Destination::Phone(number) = &message.destination {
            let e164 = number.e164();
            redactor = redactor
                .with(e164.trim_start_matches('+'))
                .with(&number.national())
                .with(e164.get(3..).unwrap_or_default());
        }
        if let Some(content) = &message.content {
            redactor = redactor.with(&content.code);
        }
        redactor
    }

    pub(crate) fn with(mut self, secret: &str) -> Self {
        let secret = secret.trim();
        if !secret.is_empty() {
            self.secrets.push(secret.to_owned());
        }
        self
    }

    pub(crate) fn masking_digit_runs(mut self) -> Self {
        self.mask_digit_runs = true;
        self
    }

    pub(crate) fn clean(&self, raw: &str, max_chars: usize) -> String {
        let mut text: String = raw
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut secrets: Vec<&String> = self.secrets.iter().collect();
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        for secret in secrets {
            text = text.replace(secret.as_str(), "***");
        }
        if self.mask_digit_runs {
            text = mask_digit_runs(&text, 4);
        }
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        clip(&collapsed, max_chars)
    }
}

fn mask_digit_runs(text: &str, min: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= min {
            out.push_str("***");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// At most `max` characters, with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// A JSON scalar as text (`"abc"` → `abc`, `42` → `42`); `None` for null, arrays and objects.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn check_pointer(pointer: &str) -> Result<(), SetupError> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(SetupError::Pointer(pointer.to_owned()))
    }
}

// ---------------------------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------------------------

/// How the body is written, and so how substituted values are escaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`; values are JSON-escaped (the template puts them inside quotes).
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`; values are form-encoded.
    Form,
}

impl BodyFormat {
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "json" => Some(Self::Json),
            "form" => Some(Self::Form),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Form => "application/x-www-form-urlencoded",
        }
    }
}

/// The HTTP method of the send request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpMethod {
    #[default]
    Post,
    Put,
    /// For gateways that take everything in the query string (the body template is then usually
    /// empty, and no body is sent when it is).
    Get,
}

impl HttpMethod {
    pub fn parse(input: &str) -> Option<Self> {
        match input.to_ascii_uppercase().as_str() {
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "GET" => Some(Self::Get),
            _ => None,
        }
    }

    fn as_reqwest(self) -> reqwest::Method {
        match self {
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
            Self::Get => reqwest::Method::GET,
        }
    }
}

/// A 2xx answer counts as accepted only when the value at `pointer` equals `equals` (a JSON string
/// compared as it is, a number or boolean as written: `0`, `true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuccessRule {
    /// A JSON pointer, e.g. `/status` or `/messages/0/status`.
    pub pointer: String,
    pub equals: String,
}

/// One HTTP SMS provider, described by data.
///
/// Placeholders, in the URL (always percent-encoded) and in the body (escaped for `content_type`):
/// `{to}` (`+6281234567890`), `{to_digits}` (`6281234567890`), `{to_national}` (`081234567890`),
/// `{text}` (the SMS text, which holds the code), `{sender}`. Anything else between braces is left
/// as it is, so a JSON template needs no escaping of its own braces.
#[derive(Clone)]
pub struct HttpSmsSettings {
    pub url: String,
    pub method: HttpMethod,
    /// Sent with every request, in order. Values often hold an API key: `Debug` shows names only.
    pub headers: Vec<(String, Secret)>,
    /// E.g. `{"from":"{sender}","to":"{to_digits}","text":"{text}"}` or
    /// `from={sender}&to={to_digits}&text={text}`.
    pub body: String,
    pub content_type: BodyFormat,
    /// The sender id put in `{sender}` (an alphanumeric id registered with the operators).
    pub sender: String,
    /// What a 2xx answer must also say; `None`: any 2xx is success.
    pub success: Option<SuccessRule>,
    /// Where the provider's message id is in a JSON answer, e.g. `/messages/0/message-id`.
    pub message_id_pointer: Option<String>,
    /// How long a request (connect, send, answer) may take.
    pub timeout: Duration,
    /// How to read the provider's delivery reports.
    pub callback: CallbackSettings,
}

impl HttpSmsSettings {
    /// A JSON POST to `url` with `body`, any 2xx a success, no message id, a 10-second timeout.
    pub fn new(url: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            method: HttpMethod::Post,
            headers: Vec::new(),
            body: body.into(),
            content_type: BodyFormat::Json,
            sender: "gerbang".into(),
            success: None,
            message_id_pointer: None,
            timeout: Duration::from_secs(10),
            callback: CallbackSettings::default(),
        }
    }
}

impl fmt::Debug for HttpSmsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("HttpSmsSettings")
            .field("url", &url_for_logs(&self.url))
            .field("method", &self.method)
            .field("headers", &headers)
            .field("content_type", &self.content_type)
            .field("sender", &self.sender)
            .field("success", &self.success)
            .field("message_id_pointer", &self.message_id_pointer)
            .field("timeout", &self.timeout)
            .field("callback", &self.callback)
            .finish_non_exhaustive()
    }
}

/// The values a template's placeholders stand for.
struct Values<'a> {
    to: &'a str,
    to_national: String,
    text: &'a str,
    sender: &'a str,
}

impl Values<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "to" => Some(self.to),
            "to_digits" => Some(self.to.trim_start_matches('+')),
            "to_national" => Some(&self.to_national),
            "text" => Some(self.text),
            "sender" => Some(self.sender),
            _ => None,
        }
    }
}

/// Fills the template's known placeholders with `encode(value)`.
fn fill(template: &str, values: &Values<'_>, encode: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 160);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        let value = after
            .get(name_len..)
            .filter(|tail| tail.starts_with('}'))
            .and_then(|_| values.get(&after[..name_len]));
        match value {
            Some(value) => {
                out.push_str(&encode(value));
                rest = &after[name_len + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The inside of a JSON string (the template supplies the quotes).
fn json_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `application/x-www-form-urlencoded` (space as `+`), or a URL's percent-encoding (space as
/// `%20`).
fn percent_encode(value: &str, space_as_plus: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' if space_as_plus => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// SMS through an HTTP provider described by [`HttpSmsSettings`].
#[derive(Clone)]
pub struct HttpSmsCourier {
    /// The provider's name in the delivery trail, e.g. `http_sms:zenziva`.
    pub name: String,
    settings: HttpSmsSettings,
    headers: HeaderMap,
    http: reqwest::Client,
}

impl fmt::Debug for HttpSmsCourier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSmsCourier")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HttpSmsCourier {
    /// Checks the settings (URL, headers, pointers, that a JSON template stays JSON once filled)
    /// and builds the client.
    pub fn new(name: impl Into<String>, settings: HttpSmsSettings) -> Result<Self, SetupError> {
        let sample = Values {
            to: "+6281234567890",
            to_national: "081234567890".into(),
            text: "sample \"text\" with {braces} & symbols\n",
            sender: &settings.sender,
        };
        check_url(&fill(&settings.url, &sample, |v| percent_encode(v, false)))?;
        if settings.content_type == BodyFormat::Json && !settings.body.trim().is_empty() {
            let filled = fill(&settings.body, &sample, json_escape);
            serde_json::from_str::<Value>(&filled)
                .map_err(|error| SetupError::BodyTemplate(error.to_string()))?;
        }
        if let Some(rule) = &settings.success {
            check_pointer(&rule.pointer)?;
        }
        if let Some(pointer) = &settings.message_id_pointer {
            check_pointer(pointer)?;
        }
        check_pointer(&settings.callback.id_pointer)?;
        check_pointer(&settings.callback.status_pointer)?;
        if let Some(pointer) = &settings.callback.error_pointer {
            check_pointer(pointer)?;
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let header_name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| SetupError::Header(name.clone()))?;
            let mut header_value = HeaderValue::from_str(value.expose())
                .map_err(|_| SetupError::Header(name.clone()))?;
            header_value.set_sensitive(true);
            headers.append(header_name, header_value);
        }
        if !headers.contains_key(CONTENT_TYPE) && !settings.body.trim().is_empty() {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(settings.content_type.content_type()),
            );
        }
        let http = build_client(settings.timeout)?;
        Ok(Self {
            name: name.into(),
            settings,
            headers,
            http,
        })
    }

    pub fn settings(&self) -> &HttpSmsSettings {
        &self.settings
    }

    /// Judges a 2xx answer by the success rule and finds the message id.
    fn accepted(
        &self,
        status: u16,
        body: &[u8],
        redactor: &Redactor,
    ) -> Result<Option<String>, HandOffFailure> {
        let needs_json =
            self.settings.success.is_some() || self.settings.message_id_pointer.is_some();
        if !needs_json {
            return Ok(None);
        }
        let json: Option<Value> = serde_json::from_slice(body).ok();
        if let Some(rule) = &self.settings.success {
            let Some(json) = &json else {
                return Err(HandOffFailure::unreachable(format!(
                    "HTTP {status} with an answer that is not JSON: {}",
                    redactor.clean(&String::from_utf8_lossy(body), 120)
                )));
            };
            let found = json.pointer(&rule.pointer);
            if found.and_then(scalar_text).as_deref() != Some(rule.equals.as_str()) {
                let said = match found {
                    Some(value) => redactor.clean(&value.to_string(), 60),
                    None => "absent".to_owned(),
                };
                return Err(HandOffFailure::new(
                    Cause::ProviderError,
                    Retry::OtherRoute,
                    format!(
                        "HTTP {status} but {} is {said}, not {:?}: {}",
                        rule.pointer,
                        rule.equals,
                        redactor.clean(&json.to_string(), 160)
                    ),
                ));
            }
        }
        let id = self
            .settings
            .message_id_pointer
            .as_deref()
            .and_then(|pointer| json.as_ref()?.pointer(pointer))
            .and_then(scalar_text)
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty());
        if id.is_none() {
            tracing::warn!(
                provider = %self.name,
                "the provider took a message without a message id: its delivery reports cannot be matched"
            );
        }
        Ok(id)
    }
}

impl Courier for HttpSmsCourier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        let number = phone_for(&self.name, Channel::Sms, message)?;
        let values = Values {
            to: number.e164(),
            to_national: number.national(),
            text: &message.text,
            sender: &self.settings.sender,
        };
        let url = fill(&self.settings.url, &values, |v| percent_encode(v, false));
        let mut request = self
            .http
            .request(self.settings.method.as_reqwest(), url)
            .headers(self.headers.clone());
        if !self.settings.body.trim().is_empty() {
            let body = match self.settings.content_type {
                BodyFormat::Json => fill(&self.settings.body, &values, json_escape),
                BodyFormat::Form => fill(&self.settings.body, &values, |v| percent_encode(v, true)),
            };
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| transport_failure(&error, self.settings.timeout))?;
        let status = response.status().as_u16();
        let body = read_capped(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|error| transport_failure(&error, self.settings.timeout))?;
        let redactor = Redactor::for_message(message).masking_digit_runs();
        if !(200..300).contains(&status) {
            let said = redactor.clean(&String::from_utf8_lossy(&body), 160);
            let detail = if said.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {said}")
            };
            return Err(status_failure(status, detail));
        }
        let message_id = self.accepted(status, &body, &redactor)?;
        Ok(HandOff {
            at: now,
            message_id,
            status: DeliveryStatus::Submitted,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery reports
// ---------------------------------------------------------------------------------------------

/// The provider's status words and what they mean, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMap {
    entries: Vec<(String, DeliveryStatus)>,
}

impl Default for StatusMap {
    /// `delivered`/`DELIVRD` → delivered; `failed`/`UNDELIV`/`rejected`/`REJECTD` → failed;
    /// `expired` → expired; `sent`/`submitted`/`accepted`/`buffered`/`ENROUTE` → submitted (still on
    /// its way); anything else → unknown.
    fn default() -> Self {
        use DeliveryStatus::*;
        let entries = [
            ("delivered", Delivered),
            ("delivrd", Delivered),
            ("failed", Failed),
            ("undeliv", Failed),
            ("undelivered", Failed),
            ("rejected", Failed),
            ("rejectd", Failed),
            ("expired", Expired),
            ("sent", Submitted),
            ("submitted", Submitted),
            ("accepted", Submitted),
            ("buffered", Submitted),
            ("enroute", Submitted),
        ]
        .into_iter()
        .map(|(word, status)| (word.to_owned(), status))
        .collect();
        Self { entries }
    }
}

impl StatusMap {
    /// No words at all: everything is unknown until [`StatusMap::with`] says otherwise.
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds or replaces one word.
    pub fn with(mut self, word: &str, status: DeliveryStatus) -> Self {
        let key = word.trim().to_lowercase();
        self.entries.retain(|(known, _)| *known != key);
        self.entries.push((key, status));
        self
    }

    pub fn status_of(&self, word: &str) -> DeliveryStatus {
        let key = word.trim().to_lowercase();
        self.entries
            .iter()
            .find(|(known, _)| *known == key)
            .map_or(DeliveryStatus::Unknown, |(_, status)| *status)
    }
}

/// Where a delivery report (a JSON body) keeps its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSettings {
    /// The message id, as the send answer gave it (e.g. `/messageId`).
    pub id_pointer: String,
    /// The status word (e.g. `/status`).
    pub status_pointer: String,
    /// An error code, when the provider sends one (e.g. `/err-code`); read as a GSM MAP error,
    /// as most aggregators forward the SMSC's `err`.
    pub error_pointer: Option<String>,
    pub statuses: StatusMap,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            id_pointer: "/message_id".into(),
            status_pointer: "/status".into(),
            error_pointer: None,
            statuses: StatusMap::default(),
        }
    }
}

/// One delivery report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUpdate {
    pub message_id: String,
    pub status: DeliveryStatus,
    /// The provider's status word, for staff.
    pub raw_status: String,
    /// The provider's error code, when it sent one (not `0`).
    pub error: Option<String>,
}

impl CallbackUpdate {
    /// Status, cause and retry, the error code read as an SMPP receipt's `err` (GSM MAP codes and
    /// the operator's `smpp_err` overrides apply).
    pub fn verdict(&self, causes: &CauseMap) -> Verdict {
        let state = match self.status {
            DeliveryStatus::Delivered => ReceiptState::Delivered,
            DeliveryStatus::Submitted | DeliveryStatus::Queued => ReceiptState::Enroute,
            DeliveryStatus::Expired => ReceiptState::Expired,
            DeliveryStatus::Failed => ReceiptState::Failed,
            DeliveryStatus::Unknown => ReceiptState::Unknown,
        };
        let receipt = Receipt {
            message_id: self.message_id.clone(),
            state,
            stat: self.raw_status.clone(),
            error: self.error.clone(),
            submitted_at: None,
            done_at: None,
        };
        causes.judge(&RawOutcome::SmppReceipt(&receipt))
    }

    /// The provider's words for the delivery trail: `status UNDELIV err 1`.
    pub fn detail(&self) -> String {
        match &self.error {
            Some(error) => format!("status {} err {error}", self.raw_status),
            None => format!("status {}", self.raw_status),
        }
    }
}

/// Why a delivery report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("the delivery report is not JSON")]
    NotJson,
    #[error("the delivery report has no message id at {0}")]
    NoMessageId(String),
    #[error("the delivery report has no status at {0}")]
    NoStatus(String),
}

/// Reads one delivery report with the pointers of `settings`. Unknown fields are ignored; an
/// error code of `0` (or empty) counts as none.
pub fn parse_callback(
    settings: &CallbackSettings,
    raw: &[u8],
) -> Result<CallbackUpdate, CallbackError> {
    let json: Value = serde_json::from_slice(raw).map_err(|_| CallbackError::NotJson)?;
    let message_id = json
        .pointer(&settings.id_pointer)
        .and_then(scalar_text)
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| CallbackError::NoMessageId(settings.id_pointer.clone()))?;
    let raw_status = json
        .pointer(&settings.status_pointer)
        .and_then(scalar_text)
        .map(|word| clip(word.trim(), 40))
        .filter(|word| !word.is_empty())
        .ok_or_else(|| CallbackError::NoStatus(settings.status_pointer.clone()))?;
    let error = settings
        .error_pointer
        .as_deref()
        .and_then(|pointer| json.pointer(pointer))
        .and_then(scalar_text)
        .map(|code| clip(code.trim(), 40))
        .filter(|code| !code.is_empty() && code.chars().any(|c| c != '0'));
    Ok(CallbackUpdate {
        message_id: clip(&message_id, 128),
        status: settings.statuses.status_of(&raw_status),
        raw_status,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            to: "+6281234567890",
            to_national: "081234567890".into(),
            text: "kode \"1234\"\nok & 100%",
            sender: "JKN",
        }
    }

    #[test]
    fn placeholders_are_escaped_for_json_and_braces_of_the_template_stay() {
        let filled = fill(
            r#"{"to":"{to_digits}","text":"{text}","x":{"y":"{unknown}"}}"#,
            &values(),
            json_escape,
        );
        assert_eq!(
            filled,
            r#"{"to":"6281234567890","text":"kode \"1234\"\nok & 100%","x":{"y":"{unknown}"}}"#
        );
        let parsed: Value = serde_json::from_str(&filled).unwrap();
        assert_eq!(parsed["text"], "kode \"1234\"\nok & 100%");
    }

    #[test]
    fn placeholders_are_form_encoded() {
        let filled = fill(
            "to={to}&n={to_national}&text={text}&from={sender}",
            &values(),
            |v| percent_encode(v, true),
        );
        assert_eq!(
            filled,
            "to=%2B6281234567890&n=081234567890&text=kode+%221234%22%0Aok+%26+100%25&from=JKN"
        );
    }

    #[test]
    fn a_url_loses_its_query_and_credentials_in_logs() {
        assert_eq!(
            url_for_logs("https://user:pw@sms.example/send?key=abc"),
            "https://***@sms.example/send"
        );
        assert_eq!(
            url_for_logs("https://sms.example/a"),
            "https://sms.example/a"
        );
    }

    #[test]
    fn the_redactor_hides_the_code_the_number_and_digit_runs() {
        let redactor = Redactor::default()
            .with("123456")
            .with("+6281234567890")
            .masking_digit_runs();
        assert_eq!(
            redactor.clean("bad code 123456 for +6281234567890 (err 12)\n\tx", 100),
            "bad code *** for *** (err 12) x"
        );
        assert_eq!(redactor.clean("code 0987654", 100), "code ***");
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("tok")), "Secret(***)");
        let mut settings = HttpSmsSettings::new("https://sms.example/send?key=abc", "");
        settings
            .headers
            .push(("X-Api-Key".into(), Secret::new("k3y")));
        let printed = format!("{settings:?}");
        assert!(
            !printed.contains("k3y") && !printed.contains("abc"),
            "{printed}"
        );
        assert!(printed.contains("X-Api-Key"));
    }
}
