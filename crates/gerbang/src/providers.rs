//! The settings of each kind of provider in `[[delivery.providers]]`, as the configuration file
//! writes them, and their translation into the providers' own settings. Secrets are
//! `SecretString`s here and become the providers' `Secret`s only when the provider is built.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use gerbang_delivery::email::{DkimAlgorithm, DkimSettings, SmtpSecurity, SmtpSettings};
use gerbang_delivery::http_sms::{
    BodyFormat, CallbackSettings, HttpMethod, HttpSmsSettings, Secret, SuccessRule,
};
use gerbang_delivery::voice::VoiceSettings;
use gerbang_delivery::whatsapp::WhatsappSettings;

use crate::config::ConfigError;

fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SecretString>, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok((!text.trim().is_empty()).then(|| SecretString::from(text.trim().to_string())))
}

fn expose(value: &Option<SecretString>) -> Secret {
    Secret::new(
        value
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default(),
    )
}

fn timeout(key: &str, seconds: u64) -> Result<Duration, ConfigError> {
    if seconds == 0 || seconds > 120 {
        return Err(ConfigError::Invalid(format!(
            "{key}.timeout_seconds must be 1 to 120"
        )));
    }
    Ok(Duration::from_secs(seconds))
}

/// `kind = "smtp"`: email through one relay.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    /// 0: the usual port of `security` (587 for STARTTLS, 465 for TLS, 25 for none).
    pub port: u16,
    /// `starttls` (required, never downgraded), `tls` (from the first byte) or `none` (a relay on
    /// this host only; credentials are refused with it).
    pub security: SmtpSecurity,
    pub username: String,
    #[serde(deserialize_with = "secret")]
    pub password: Option<SecretString>,
    pub from_address: String,
    pub from_name: String,
    pub hello_name: String,
    pub timeout_seconds: u64,
    pub pool_size: u32,
    /// A PEM file of the private CA that issued the relay's certificate; empty: public roots only.
    pub ca_certificate_file: String,
    pub dkim_selector: String,
    pub dkim_domain: String,
    /// `rsa` (a PKCS#1 PEM file) or `ed25519` (a file with the base64 32-byte seed).
    pub dkim_algorithm: String,
    pub dkim_private_key_file: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 0,
            security: SmtpSecurity::StartTls,
            username: String::new(),
            password: None,
            from_address: String::new(),
            from_name: String::new(),
            hello_name: String::new(),
            timeout_seconds: 10,
            pool_size: 8,
            ca_certificate_file: String::new(),
            dkim_selector: String::new(),
            dkim_domain: String::new(),
            dkim_algorithm: "rsa".into(),
            dkim_private_key_file: String::new(),
        }
    }
}

impl SmtpConfig {
    pub fn settings(&self, key: &str, brand: &str) -> Result<SmtpSettings, ConfigError> {
        let invalid = |why: String| ConfigError::Invalid(format!("{key}: {why}"));
        if self.host.trim().is_empty() || self.from_address.trim().is_empty() {
            return Err(invalid("host and from_address are required".into()));
        }
        let read = |path: &str, what: &str| {
            std::fs::read_to_string(path)
                .map_err(|error| invalid(format!("cannot read the {what} file {path}: {error}")))
        };
        let mut settings = SmtpSettings::new(self.host.trim(), self.from_address.trim());
        settings.security = self.security;
        settings.port = if self.port == 0 {
            self.security.default_port()
        } else {
            self.port
        };
        settings.username = (!self.username.is_empty()).then(|| self.username.clone());
        settings.password = self.password.as_ref().map(|p| p.expose_secret().to_owned());
        settings.from_name = self.from_name.clone();
        settings.brand = brand.to_owned();
        settings.hello_name = (!self.hello_name.is_empty()).then(|| self.hello_name.clone());
        settings.timeout = timeout(key, self.timeout_seconds)?;
        settings.pool_size = self.pool_size.max(1);
        if !self.ca_certificate_file.is_empty() {
            settings.ca_certificate_pem = Some(read(&self.ca_certificate_file, "CA certificate")?);
        }
        if !self.dkim_selector.is_empty() {
            let algorithm = match self.dkim_algorithm.as_str() {
                "rsa" => DkimAlgorithm::Rsa,
                "ed25519" => DkimAlgorithm::Ed25519,
                other => return Err(invalid(format!("dkim_algorithm `{other}`: rsa or ed25519"))),
            };
            settings.dkim = Some(DkimSettings {
                selector: self.dkim_selector.clone(),
                domain: self.dkim_domain.clone(),
                algorithm,
                private_key: read(&self.dkim_private_key_file, "DKIM key")?,
            });
        }
        Ok(settings)
    }
}

/// `kind = "whatsapp"`: the WhatsApp Business Cloud API's copy-code authentication template.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhatsappConfig {
    pub api_base: String,
    pub phone_number_id: String,
    #[serde(deserialize_with = "secret")]
    pub access_token: Option<SecretString>,
    /// The approved authentication template's name.
    pub template: String,
    pub language_id: String,
    pub language_en: String,
    pub timeout_seconds: u64,
    /// Signs the status webhooks (`X-Hub-Signature-256`); empty: every webhook is refused.
    #[serde(deserialize_with = "secret")]
    pub app_secret: Option<SecretString>,
    /// Typed into the app's webhook settings, echoed by the subscription handshake.
    #[serde(deserialize_with = "secret")]
    pub webhook_verify_token: Option<SecretString>,
}

impl Default for WhatsappConfig {
    fn default() -> Self {
        Self {
            api_base: "https://graph.facebook.com/v21.0".into(),
            phone_number_id: String::new(),
            access_token: None,
            template: String::new(),
            language_id: "id".into(),
            language_en: "en_US".into(),
            timeout_seconds: 10,
            app_secret: None,
            webhook_verify_token: None,
        }
    }
}

impl WhatsappConfig {
    pub fn settings(&self, key: &str) -> Result<WhatsappSettings, ConfigError> {
        let mut settings = WhatsappSettings::new(
            self.phone_number_id.clone(),
            expose(&self.access_token),
            self.template.clone(),
        );
        settings.api_base = self.api_base.clone();
        settings.language_id = self.language_id.clone();
        settings.language_en = self.language_en.clone();
        settings.timeout = timeout(key, self.timeout_seconds)?;
        settings.app_secret = expose(&self.app_secret);
        settings.webhook_verify_token = expose(&self.webhook_verify_token);
        Ok(settings)
    }
}

/// `kind = "http_sms"`: an SMS gateway with an HTTP API, described by data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSmsConfig {
    /// May hold the placeholders `{to}`, `{to_digits}`, `{to_national}`, `{text}`, `{sender}`.
    pub url: String,
    /// `post`, `put` or `get`.
    pub method: String,
    /// Header name → value (values are treated as secrets), e.g. `{ Authorization = "Bearer …" }`.
    pub headers: BTreeMap<String, SecretString>,
    /// The body template, with the same placeholders.
    pub body: String,
    /// `json` or `form`: how placeholders are escaped.
    pub content_type: String,
    pub sender: String,
    /// A 2xx counts only when the JSON value at this pointer equals `success_equals`; empty: any 2xx.
    pub success_pointer: String,
    pub success_equals: String,
    /// Where the answer holds the gateway's message id (JSON pointer); empty: none.
    pub message_id_pointer: String,
    pub timeout_seconds: u64,
    /// Delivery reports POSTed to `/v1/webhooks/<name>`: where their id, status and error are.
    pub callback_id_pointer: String,
    pub callback_status_pointer: String,
    pub callback_error_pointer: String,
    /// Reports must carry this in the `X-Gerbang-Token` header; empty: every report is refused.
    #[serde(deserialize_with = "secret")]
    pub callback_token: Option<SecretString>,
}

impl Default for HttpSmsConfig {
    fn default() -> Self {
        let callback = CallbackSettings::default();
        Self {
            url: String::new(),
            method: "post".into(),
            headers: BTreeMap::new(),
            body: String::new(),
            content_type: "json".into(),
            sender: "gerbang".into(),
            success_pointer: String::new(),
            success_equals: String::new(),
            message_id_pointer: String::new(),
            timeout_seconds: 10,
            callback_id_pointer: callback.id_pointer,
            callback_status_pointer: callback.status_pointer,
            callback_error_pointer: String::new(),
            callback_token: None,
        }
    }
}

impl HttpSmsConfig {
    pub fn settings(&self, key: &str) -> Result<HttpSmsSettings, ConfigError> {
        let invalid = |why: String| ConfigError::Invalid(format!("{key}: {why}"));
        let mut settings = HttpSmsSettings::new(self.url.clone(), self.body.clone());
        settings.method = HttpMethod::parse(&self.method)
            .ok_or_else(|| invalid(format!("method `{}`: post, put or get", self.method)))?;
        settings.content_type = BodyFormat::parse(&self.content_type).ok_or_else(|| {
            invalid(format!(
                "content_type `{}`: json or form",
                self.content_type
            ))
        })?;
        settings.headers = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), Secret::new(value.expose_secret())))
            .collect();
        settings.sender = self.sender.clone();
        settings.success = (!self.success_pointer.is_empty()).then(|| SuccessRule {
            pointer: self.success_pointer.clone(),
            equals: self.success_equals.clone(),
        });
        settings.message_id_pointer =
            (!self.message_id_pointer.is_empty()).then(|| self.message_id_pointer.clone());
        settings.timeout = timeout(key, self.timeout_seconds)?;
        settings.callback.id_pointer = self.callback_id_pointer.clone();
        settings.callback.status_pointer = self.callback_status_pointer.clone();
        settings.callback.error_pointer =
            (!self.callback_error_pointer.is_empty()).then(|| self.callback_error_pointer.clone());
        Ok(settings)
    }
}

/// `kind = "voice"`: the code read out digit by digit in a call placed by an HTTP provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceConfig {
    pub url: String,
    #[serde(deserialize_with = "secret")]
    pub token: Option<SecretString>,
    pub caller_id: String,
    pub language_id: String,
    pub language_en: String,
    /// Times the code is said (1–5).
    pub repeat: u8,
    pub timeout_seconds: u64,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            token: None,
            caller_id: String::new(),
            language_id: "id-ID".into(),
            language_en: "en-US".into(),
            repeat: 2,
            timeout_seconds: 10,
        }
    }
}

impl VoiceConfig {
    pub fn settings(&self, key: &str, brand: &str) -> Result<VoiceSettings, ConfigError> {
        let mut settings = VoiceSettings::new(
            self.url.clone(),
            expose(&self.token),
            self.caller_id.clone(),
        );
        settings.language_id = self.language_id.clone();
        settings.language_en = self.language_en.clone();
        settings.brand = brand.to_owned();
        settings.repeat = self.repeat;
        settings.timeout = timeout(key, self.timeout_seconds)?;
        Ok(settings)
    }
}
