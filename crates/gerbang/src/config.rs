//! The configuration: one typed struct with safe defaults, merged explicitly from the defaults, a
//! TOML file, `GERBANG_<SECTION>__<KEY>` environment variables and command-line flags, in that order.
//!
//! `config.example.toml` (printed by `gerbang config example`) lists every key with its default and
//! is parsed by a test into exactly [`Config::default`], so the documentation cannot drift. Secrets
//! (the personal-data key, the registry token, a database password) are types that do not print.

use gerbang_core::EngineSettings;
use gerbang_domain::verification::OtpPolicy;
use gerbang_domain::verification::code::CodeLength;
use gerbang_domain::verification::message::MessageBrand;
use gerbang_domain::verification::rate::{self, KeyKind, RateRule};
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// The commented example configuration, with every key at its default.
pub const EXAMPLE: &str = include_str!("../config.example.toml");

/// `GERBANG_*` variables that are not configuration keys but are read elsewhere.
const NOT_KEYS: &[&str] = &["GERBANG_CONFIG", "GERBANG_TEST_DATABASE"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub profile: Profile,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub privacy: PrivacyConfig,
    pub registry: RegistryConfig,
    pub otp: OtpConfig,
    pub delivery: DeliveryConfig,
    pub api: ApiConfig,
    pub metrics: MetricsConfig,
    pub accounts: AccountsConfig,
    pub portal: PortalConfig,
    pub console: ConsoleConfig,
    /// Back-office staff: lockout and session lengths (`docs/staff.md`).
    pub staff: gerbang_domain::staff::StaffPolicy,
    pub log: LogConfig,
}

impl Config {
    /// The SMS pumping brake's policy, checked.
    pub fn brake_policy(
        &self,
    ) -> Result<gerbang_domain::verification::pumping::BrakePolicy, ConfigError> {
        let policy = &self.otp.pumping;
        match policy.invalid() {
            Some(key) => Err(ConfigError::Invalid(format!(
                "otp.pumping.{key}: must be at least 1 (a percentage at most 100)"
            ))),
            None => Ok(policy.clone()),
        }
    }

    /// The admission policy, checked.
    pub fn admission_policy(
        &self,
    ) -> Result<gerbang_domain::verification::admission::AdmissionPolicy, ConfigError> {
        let policy = &self.otp.admission;
        match policy.invalid() {
            Some(key) => Err(ConfigError::Invalid(format!(
                "otp.admission.{key}: must be a percentage from 1 to 100"
            ))),
            None => Ok(policy.clone()),
        }
    }

    /// The daily budgets, checked against the providers configured (`providers`: their names).
    pub fn budget_policy(
        &self,
        providers: &[&str],
    ) -> Result<gerbang_domain::delivery::budget::BudgetPolicy, ConfigError> {
        let policy = &self.delivery.budgets;
        if let Some(key) = policy.invalid() {
            return Err(ConfigError::Invalid(format!(
                "delivery.budgets.{key}: a cap must be at least 1 (remove the line for no cap), alert_percent 1 to 100"
            )));
        }
        if let Some(name) = policy
            .providers
            .keys()
            .find(|name| !providers.contains(&name.as_str()))
        {
            return Err(ConfigError::Invalid(format!(
                "delivery.budgets.providers.\"{name}\": no such provider (configured: {})",
                providers.join(", ")
            )));
        }
        Ok(policy.clone())
    }

    /// The staff policy, checked: every number must be at least 1.
    pub fn staff_policy(&self) -> Result<gerbang_domain::staff::StaffPolicy, ConfigError> {
        let policy = &self.staff;
        for (key, value) in [
            ("staff.max_failures", i64::from(policy.max_failures)),
            ("staff.lock_minutes", policy.lock_minutes),
            ("staff.idle_minutes", policy.idle_minutes),
            ("staff.absolute_hours", policy.absolute_hours),
            ("staff.request_hours", policy.request_hours),
        ] {
            if value < 1 {
                return Err(ConfigError::Invalid(format!(
                    "{key}: must be at least 1, not {value}"
                )));
            }
        }
        Ok(policy.clone())
    }
}

/// Where messages go: the providers of each channel, tried in order, and how failures are retried.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// The simple case: SMS to the development inbox or over the one bind of `[delivery.smpp]`.
    pub sms: SmsProvider,
    pub smpp: SmppSettings,
    /// Further providers, tried in this order (after `sms = "smpp"`'s bind) for their channel.
    pub providers: Vec<ProviderConfig>,
    /// Channels without a provider go to the development inbox (development profile only).
    pub dev_inbox_fallback: bool,
    /// A message no provider took waits `retry_first_seconds`, doubling per round up to
    /// `retry_max_seconds` (each wait drawn from its upper half).
    pub retry_first_seconds: u64,
    pub retry_max_seconds: u64,
    /// Provider-side failures in a row that open a provider's circuit, and for how long at first.
    pub circuit_failures: u32,
    pub circuit_open_seconds: u64,
    /// How long a worker's claim on a message lasts; a message claimed by an instance that died is
    /// taken over by another (or by the restarted one) after this.
    pub claim_lease_seconds: u64,
    /// The channels a participant is offered, in this order, when a message failed or no receipt
    /// came within `no_receipt_seconds` of its hand-off.
    pub fallback_channels: Vec<String>,
    pub no_receipt_seconds: u64,
    /// Per-code corrections of the cause mapping (vendors differ), e.g.
    /// `{ source = "smpp_err", code = "1153", cause = "number_inactive", retry = "no" }`.
    pub cause_overrides: Vec<gerbang_domain::delivery::CauseOverride>,
    /// A directory of message templates (`sms.id.txt`, `email.en.txt`, ...), each file replacing
    /// the built-in one; `None` (an empty string): the built-in templates only.
    #[serde(deserialize_with = "empty_is_none")]
    pub templates_dir: Option<PathBuf>,
    /// Daily caps on codes per channel and hand-offs per provider (docs/delivery.md).
    pub budgets: gerbang_domain::delivery::budget::BudgetPolicy,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            sms: SmsProvider::default(),
            smpp: SmppSettings::default(),
            providers: Vec::new(),
            dev_inbox_fallback: true,
            retry_first_seconds: 5,
            retry_max_seconds: 60,
            circuit_failures: 5,
            circuit_open_seconds: 30,
            claim_lease_seconds: 30,
            fallback_channels: ["sms", "whatsapp", "email", "voice"]
                .map(String::from)
                .to_vec(),
            no_receipt_seconds: 60,
            cause_overrides: Vec::new(),
            templates_dir: None,
            budgets: Default::default(),
        }
    }
}

impl DeliveryConfig {
    /// The message templates: the built-in ones, each replaced by its file in `templates_dir`.
    /// A file breaking a rule is refused with the file, the line and the rule.
    pub fn templates(
        &self,
    ) -> Result<gerbang_domain::verification::template::Templates, ConfigError> {
        use gerbang_domain::verification::template::Templates;
        match &self.templates_dir {
            None => Ok(Templates::default()),
            Some(dir) => Templates::load(dir)
                .map_err(|error| ConfigError::Invalid(format!("delivery.templates_dir: {error}"))),
        }
    }

    pub fn retry_policy(&self) -> Result<gerbang_core::RetryPolicy, ConfigError> {
        if self.retry_first_seconds == 0 || self.retry_max_seconds < self.retry_first_seconds {
            return Err(ConfigError::Invalid(
                "delivery.retry_first_seconds must be above 0 and at most retry_max_seconds".into(),
            ));
        }
        Ok(gerbang_core::RetryPolicy {
            first: seconds(self.retry_first_seconds),
            max: seconds(self.retry_max_seconds),
        })
    }

    pub fn fallback_policy(
        &self,
    ) -> Result<gerbang_domain::delivery::fallback::FallbackPolicy, ConfigError> {
        let order = self
            .fallback_channels
            .iter()
            .map(|name| {
                gerbang_domain::verification::Channel::parse(name).map_err(|_| {
                    ConfigError::Invalid(format!(
                        "delivery.fallback_channels: `{name}` is not sms, email, whatsapp or voice"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.no_receipt_seconds == 0 {
            return Err(ConfigError::Invalid(
                "delivery.no_receipt_seconds must be above 0".into(),
            ));
        }
        Ok(gerbang_domain::delivery::fallback::FallbackPolicy {
            order,
            no_receipt_window: seconds(self.no_receipt_seconds),
        })
    }

    pub fn claim_lease(&self) -> Result<chrono::Duration, ConfigError> {
        if self.claim_lease_seconds == 0 {
            return Err(ConfigError::Invalid(
                "delivery.claim_lease_seconds must be above 0".into(),
            ));
        }
        Ok(seconds(self.claim_lease_seconds))
    }

    pub fn circuit_policy(
        &self,
    ) -> Result<gerbang_domain::delivery::circuit::CircuitPolicy, ConfigError> {
        if self.circuit_failures == 0 || self.circuit_open_seconds == 0 {
            return Err(ConfigError::Invalid(
                "delivery.circuit_failures and circuit_open_seconds must be above 0".into(),
            ));
        }
        let open_for = seconds(self.circuit_open_seconds);
        Ok(gerbang_domain::delivery::circuit::CircuitPolicy {
            failures_to_open: self.circuit_failures,
            open_for,
            max_open: open_for.max(chrono::Duration::minutes(5)),
        })
    }

    pub fn cause_map(&self) -> Result<gerbang_domain::delivery::CauseMap, ConfigError> {
        gerbang_domain::delivery::CauseMap::with_overrides(&self.cause_overrides)
            .map_err(|error| ConfigError::Invalid(format!("delivery.cause_overrides: {error}")))
    }
}

/// One provider in `[[delivery.providers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Its name in the delivery trail, the logs and the metrics (unique).
    pub name: String,
    pub kind: ProviderKind,
    /// Only numbers of these operators (`telkomsel`, `indosat`, `tri`, `xl`, `axis`, `smartfren`);
    /// empty: every number.
    #[serde(default)]
    pub operators: Vec<gerbang_domain::Operator>,
    /// For `kind = "smpp"`.
    #[serde(default)]
    pub smpp: Option<SmppSettings>,
    /// For `kind = "smtp"`.
    #[serde(default)]
    pub smtp: Option<crate::providers::SmtpConfig>,
    /// For `kind = "whatsapp"`.
    #[serde(default)]
    pub whatsapp: Option<crate::providers::WhatsappConfig>,
    /// For `kind = "http_sms"`.
    #[serde(default)]
    pub http_sms: Option<crate::providers::HttpSmsConfig>,
    /// For `kind = "voice"`.
    #[serde(default)]
    pub voice: Option<crate::providers::VoiceConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// SMS over an SMPP 3.4 bind.
    Smpp,
    /// SMS through a gateway's HTTP API.
    HttpSms,
    /// Email through an SMTP relay.
    Smtp,
    /// WhatsApp Business Cloud API authentication templates.
    Whatsapp,
    /// A voice call reading the code, placed through an HTTP provider.
    Voice,
    /// Every channel into the development inbox (development profile only).
    DevInbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmsProvider {
    #[default]
    DevInbox,
    Smpp,
}

/// One SMPP 3.4 transceiver bind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmppSettings {
    /// `host:port` of the SMSC or aggregator.
    pub address: String,
    pub system_id: String,
    #[serde(deserialize_with = "empty_secret_is_none")]
    pub password: Option<SecretString>,
    pub system_type: String,
    /// The sender the participant sees (alphanumeric brand, registered with the operators).
    pub source_addr: String,
    pub window: usize,
    pub max_per_second: u32,
    pub enquire_link_seconds: u64,
    pub response_timeout_seconds: u64,
}

impl Default for SmppSettings {
    fn default() -> Self {
        Self {
            address: String::new(),
            system_id: String::new(),
            password: None,
            system_type: String::new(),
            source_addr: "JKN".into(),
            window: 10,
            max_per_second: 0,
            enquire_link_seconds: 30,
            response_timeout_seconds: 10,
        }
    }
}

impl SmppSettings {
    /// The client's settings, or why they cannot work.
    pub fn client_config(&self) -> Result<gerbang_delivery::smpp::SmppConfig, ConfigError> {
        self.client_config_for("delivery.smpp")
    }

    /// The same, naming `key` in errors (e.g. `delivery.providers[telkomsel].smpp`).
    pub fn client_config_for(
        &self,
        key: &str,
    ) -> Result<gerbang_delivery::smpp::SmppConfig, ConfigError> {
        use secrecy::ExposeSecret;
        let invalid = |why: &str| ConfigError::Invalid(format!("{key}: {why}"));
        if self.address.trim().is_empty() || !self.address.contains(':') {
            return Err(invalid("address must be host:port"));
        }
        if self.system_id.is_empty() || self.system_id.len() > 15 {
            return Err(invalid("system_id must be 1 to 15 characters"));
        }
        let password = self
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default();
        if password.len() > 8 {
            return Err(invalid("password is at most 8 characters in SMPP 3.4"));
        }
        if self.source_addr.is_empty() || self.source_addr.len() > 20 {
            return Err(invalid("source_addr must be 1 to 20 characters"));
        }
        if self.window == 0 || self.enquire_link_seconds == 0 || self.response_timeout_seconds == 0
        {
            return Err(invalid(
                "window, enquire_link_seconds and response_timeout_seconds must be above 0",
            ));
        }
        let mut config = gerbang_delivery::smpp::SmppConfig::new(
            self.address.trim(),
            self.system_id.clone(),
            password,
        );
        config.system_type = self.system_type.clone();
        config.source_addr = self.source_addr.clone();
        config.window = self.window;
        config.max_per_second = self.max_per_second;
        config.enquire_link_every = std::time::Duration::from_secs(self.enquire_link_seconds);
        config.response_timeout = std::time::Duration::from_secs(self.response_timeout_seconds);
        Ok(config)
    }
}

/// The OTP policy of SPEC §4.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtpConfig {
    pub code_length: u8,
    pub lifetime_seconds: u64,
    pub hard_cap_seconds: u64,
    pub max_wrong_attempts: u8,
    pub resend_ladder_seconds: Vec<u64>,
    pub max_resends: u32,
    pub resend_wait_seconds: u64,
    pub brand: String,
    pub webotp_host: String,
    pub android_app_hash: String,
    pub rate_limits: Vec<RateLimitConfig>,
    /// The SMS pumping brake (docs/verifications.md).
    pub pumping: gerbang_domain::verification::pumping::BrakePolicy,
    /// Which new codes are still queued when the queue is long (docs/verifications.md).
    pub admission: gerbang_domain::verification::admission::AdmissionPolicy,
}

/// One rate-limit rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub key: String,
    pub limit: u32,
    pub window_seconds: u64,
    pub penalty_seconds: u64,
}

/// The participant accounts: flows, passwords, lockout, sessions, cool-off and captcha.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Where the registration code goes when the app does not choose: `email` or `sms`.
    pub registration_channel: String,
    /// How long a flow (registration, login step-up, recovery, contact change) stays open.
    pub flow_minutes: u64,
    /// How recent a step-up must be for introspection to call it fresh.
    pub step_up_window_minutes: u64,
    pub password: gerbang_domain::account::PasswordPolicy,
    pub hashing: gerbang_core::PasswordHashingSettings,
    pub lockout: gerbang_domain::account::LockoutPolicy,
    pub sessions: gerbang_domain::account::SessionPolicy,
    pub cool_off: gerbang_domain::account::CoolOffPolicy,
    pub captcha: CaptchaConfig,
    /// Limits on registry lookups and logins: key `nik` (the NIK or card number looked up) or
    /// `ip` (the caller's address).
    pub lookup_limits: Vec<RateLimitConfig>,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            registration_channel: "email".into(),
            flow_minutes: 30,
            step_up_window_minutes: 10,
            password: Default::default(),
            hashing: Default::default(),
            lockout: Default::default(),
            sessions: Default::default(),
            cool_off: Default::default(),
            captcha: CaptchaConfig::default(),
            lookup_limits: gerbang_core::accounts::default_lookup_rules()
                .into_iter()
                .map(|rule| RateLimitConfig {
                    key: rule.key.as_str().into(),
                    limit: rule.limit,
                    window_seconds: rule.window.num_seconds().unsigned_abs(),
                    penalty_seconds: rule.penalty.num_seconds().unsigned_abs(),
                })
                .collect(),
        }
    }
}

/// The captcha in front of registration and recovery.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptchaConfig {
    /// `builtin` (image challenges served at `/v1/captcha`), `hosted` (a reCAPTCHA, hCaptcha or
    /// Turnstile widget, judged at `hosted_url`), `off`, or `test` (accepts `test_answer`; refused
    /// in the production profile).
    pub mode: String,
    pub on_registration: bool,
    pub on_recovery: bool,
    pub lifetime_seconds: u64,
    pub length: u32,
    pub test_answer: String,
    /// For `hosted`: the service's siteverify URL and our secret for it.
    pub hosted_url: String,
    #[serde(deserialize_with = "empty_secret_is_none")]
    pub hosted_secret: Option<SecretString>,
    pub hosted_timeout_ms: u64,
}

impl Default for CaptchaConfig {
    fn default() -> Self {
        Self {
            mode: "builtin".into(),
            on_registration: true,
            on_recovery: true,
            lifetime_seconds: 300,
            length: 5,
            test_answer: String::new(),
            hosted_url: String::new(),
            hosted_secret: None,
            hosted_timeout_ms: 3000,
        }
    }
}

impl AccountsConfig {
    pub fn settings(&self) -> Result<gerbang_core::AccountSettings, ConfigError> {
        let registration_channel = match self.registration_channel.as_str() {
            "email" => gerbang_domain::verification::Channel::Email,
            "sms" => gerbang_domain::verification::Channel::Sms,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "accounts.registration_channel must be \"email\" or \"sms\", not {other:?}"
                )));
            }
        };
        if self.flow_minutes == 0 || self.flow_minutes > 24 * 60 {
            return Err(ConfigError::Invalid(
                "accounts.flow_minutes must be between 1 and 1440".into(),
            ));
        }
        if self.password.min_length < 8 || self.password.max_length < self.password.min_length {
            return Err(ConfigError::Invalid(
                "accounts.password.min_length must be at least 8 (NIST 800-63B) and at most max_length".into(),
            ));
        }
        let mut lookup_rules = Vec::with_capacity(self.lookup_limits.len());
        for rule in &self.lookup_limits {
            let key = KeyKind::parse(&rule.key)
                .filter(|kind| matches!(kind, KeyKind::Nik | KeyKind::Ip))
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "accounts.lookup_limits: unknown key {:?}; use nik or ip",
                        rule.key
                    ))
                })?;
            if rule.limit == 0 || rule.window_seconds == 0 {
                return Err(ConfigError::Invalid(format!(
                    "accounts.lookup_limits: a {} rule needs limit and window_seconds of at least 1",
                    rule.key
                )));
            }
            lookup_rules.push(RateRule::new(
                key,
                rule.limit,
                chrono::Duration::seconds(rule.window_seconds.min(i64::MAX as u64 / 2000) as i64),
                chrono::Duration::seconds(rule.penalty_seconds.min(i64::MAX as u64 / 2000) as i64),
            ));
        }
        Ok(gerbang_core::AccountSettings {
            lookup_rules: std::sync::Arc::new(lookup_rules),
            password: self.password.clone(),
            lockout: self.lockout.clone(),
            sessions: self.sessions.clone(),
            cool_off: self.cool_off.clone(),
            flow_lifetime: chrono::Duration::minutes(self.flow_minutes as i64),
            registration_channel,
            step_up_window: chrono::Duration::minutes(
                self.step_up_window_minutes.min(24 * 60) as i64
            ),
            captcha_on_registration: self.captcha.on_registration,
            captcha_on_recovery: self.captcha.on_recovery,
        })
    }
}

/// Who may call the JSON API.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub clients: Vec<ApiClientConfig>,
}

/// One API client: a name (owner of its verifications) and its bearer token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiClientConfig {
    pub name: String,
    pub token: SecretString,
}

impl Default for OtpConfig {
    fn default() -> Self {
        let policy = OtpPolicy::default();
        Self {
            code_length: policy.code_length.digits(),
            lifetime_seconds: policy.lifetime.num_seconds().unsigned_abs(),
            hard_cap_seconds: policy.hard_cap.num_seconds().unsigned_abs(),
            max_wrong_attempts: policy.max_wrong_attempts,
            resend_ladder_seconds: policy
                .resend_ladder
                .iter()
                .map(|step| step.num_seconds().unsigned_abs())
                .collect(),
            max_resends: 3,
            resend_wait_seconds: 1800,
            brand: "gerbang".into(),
            webotp_host: String::new(),
            android_app_hash: String::new(),
            pumping: Default::default(),
            admission: Default::default(),
            rate_limits: rate::default_rules(3, chrono::Duration::minutes(30))
                .into_iter()
                .filter(|rule| rule.key != KeyKind::Flow)
                .map(|rule| RateLimitConfig {
                    key: rule.key.as_str().into(),
                    limit: rule.limit,
                    window_seconds: rule.window.num_seconds().unsigned_abs(),
                    penalty_seconds: rule.penalty.num_seconds().unsigned_abs(),
                })
                .collect(),
        }
    }
}

fn seconds(value: u64) -> chrono::Duration {
    chrono::Duration::seconds(
        i64::try_from(value)
            .unwrap_or(i64::MAX / 1000)
            .min(i64::MAX / 1000),
    )
}

impl OtpConfig {
    /// The engine's settings, or what is wrong with these.
    pub fn engine_settings(&self) -> Result<EngineSettings, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid(message);
        let code_length = CodeLength::new(self.code_length).ok_or_else(|| {
            invalid(format!(
                "otp.code_length must be 4 to 8, not {}",
                self.code_length
            ))
        })?;
        if self.hard_cap_seconds == 0 || self.hard_cap_seconds > 600 {
            return Err(invalid(
                "otp.hard_cap_seconds must be 1 to 600: OWASP ASVS and NIST 800-63B end a code's life after 10 minutes".into(),
            ));
        }
        if self.lifetime_seconds == 0 || self.lifetime_seconds > self.hard_cap_seconds {
            return Err(invalid(
                "otp.lifetime_seconds must be at least 1 and at most otp.hard_cap_seconds".into(),
            ));
        }
        if !(1..=10).contains(&self.max_wrong_attempts) {
            return Err(invalid("otp.max_wrong_attempts must be 1 to 10".into()));
        }
        if self.resend_ladder_seconds.is_empty() || self.resend_ladder_seconds.contains(&0) {
            return Err(invalid("otp.resend_ladder_seconds must list at least one countdown, each at least 1 second".into()));
        }
        if self.resend_wait_seconds == 0 {
            return Err(invalid("otp.resend_wait_seconds must be at least 1".into()));
        }
        let mut rules = Vec::with_capacity(self.rate_limits.len() + 1);
        for rule in &self.rate_limits {
            let key = KeyKind::parse(&rule.key)
                .filter(|kind| *kind != KeyKind::Flow)
                .ok_or_else(|| invalid(format!(
                    "otp.rate_limits: unknown key {:?}; use destination, account, nik, ip, device or prefix (the per-flow cap is otp.max_resends)",
                    rule.key
                )))?;
            if rule.limit == 0 || rule.window_seconds == 0 {
                return Err(invalid(format!(
                    "otp.rate_limits: a {} rule needs limit and window_seconds of at least 1",
                    rule.key
                )));
            }
            let rule = RateRule::new(
                key,
                rule.limit,
                seconds(rule.window_seconds),
                seconds(rule.penalty_seconds),
            );
            if rules
                .iter()
                .any(|other: &RateRule| other.name() == rule.name())
            {
                return Err(invalid(format!(
                    "otp.rate_limits: {} appears twice",
                    rule.name()
                )));
            }
            rules.push(rule);
        }
        let wait = seconds(self.resend_wait_seconds);
        rules.push(RateRule::new(
            KeyKind::Flow,
            self.max_resends.saturating_add(1),
            wait,
            wait,
        ));
        Ok(EngineSettings {
            fallback: Default::default(),
            templates: Default::default(),
            policy: OtpPolicy {
                code_length,
                lifetime: seconds(self.lifetime_seconds),
                hard_cap: seconds(self.hard_cap_seconds),
                max_wrong_attempts: self.max_wrong_attempts,
                resend_ladder: self
                    .resend_ladder_seconds
                    .iter()
                    .copied()
                    .map(seconds)
                    .collect(),
            },
            rules,
            brand: MessageBrand {
                name: self.brand.clone(),
                webotp_host: self.webotp_host.clone(),
                app_hash: self.android_app_hash.clone(),
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    #[default]
    Development,
    Production,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub shutdown_grace_seconds: u64,
    /// Take the caller's address from the first `X-Forwarded-For` entry (behind a load balancer
    /// that sets it) instead of the TCP peer.
    pub trust_forwarded_for: bool,
    /// A connection that has not sent a whole request head (line and headers) within this time is
    /// closed; an idle keep-alive connection is closed after it too.
    pub header_timeout_seconds: u64,
    /// A request whose body has not arrived whole within this time answers `408 body_timeout` and
    /// its connection is closed.
    pub body_timeout_seconds: u64,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

/// `/metrics`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A bearer token `/metrics` asks for; `None`: open to whoever reaches it.
    #[serde(deserialize_with = "empty_secret_is_none")]
    pub token: Option<SecretString>,
}

/// The participant portal: the web pages at `/` over the account flows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Serve the pages; off: `/` answers 404 and only the JSON API is served.
    pub enabled: bool,
    /// The call centre's number, shown where a participant is told to call.
    pub help_line: String,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            help_line: "165".into(),
        }
    }
}

/// The staff console at `/staff` (docs/staff.md), served whether or not the portal is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console; off: `/staff` answers 404 (staff then work with the CLI only).
    pub enabled: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    #[serde(deserialize_with = "empty_is_none")]
    pub database_url: Option<DatabaseUrl>,
    pub max_connections: u32,
    /// Milliseconds to open a database connection (or wait for a free one, or answer /readyz).
    pub connect_timeout_ms: u64,
    /// Milliseconds one statement may take (PostgreSQL cancels it; SQLite's lock wait).
    pub statement_timeout_ms: u64,
}

impl StorageConfig {
    /// The backends' [`Timeouts`](gerbang_store::Timeouts); zero is refused, not "no limit".
    pub fn timeouts(&self) -> anyhow::Result<gerbang_store::Timeouts> {
        anyhow::ensure!(
            self.connect_timeout_ms > 0 && self.statement_timeout_ms > 0,
            "storage.connect_timeout_ms and storage.statement_timeout_ms must be above 0"
        );
        Ok(gerbang_store::Timeouts {
            connect: std::time::Duration::from_millis(self.connect_timeout_ms),
            statement: std::time::Duration::from_millis(self.statement_timeout_ms),
        })
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    #[serde(deserialize_with = "empty_secret_is_none")]
    pub key: Option<SecretString>,
    #[serde(deserialize_with = "empty_is_none")]
    pub key_file: Option<PathBuf>,
    /// Only while a key rotation runs: the key being replaced (docs/keys.md).
    #[serde(deserialize_with = "empty_secret_is_none")]
    pub previous_key: Option<SecretString>,
    #[serde(deserialize_with = "empty_is_none")]
    pub previous_key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    pub source: RegistrySource,
    pub demo_participants: u64,
    pub demo_seed: u64,
    pub http: HttpRegistryConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegistrySource {
    #[default]
    Embedded,
    Http,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpRegistryConfig {
    #[serde(deserialize_with = "empty_is_none")]
    pub url: Option<RegistryUrl>,
    pub timeout_ms: u64,
    #[serde(deserialize_with = "empty_secret_is_none")]
    pub token: Option<SecretString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::Development,
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            privacy: PrivacyConfig::default(),
            registry: RegistryConfig::default(),
            otp: OtpConfig::default(),
            delivery: DeliveryConfig::default(),
            api: ApiConfig::default(),
            metrics: MetricsConfig::default(),
            accounts: AccountsConfig::default(),
            portal: PortalConfig::default(),
            console: ConsoleConfig::default(),
            staff: Default::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_grace_seconds: 20,
            trust_forwarded_for: false,
            header_timeout_seconds: 10,
            body_timeout_seconds: 10,
            max_connections: 1024,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("gerbang-data"),
            database_url: None,
            max_connections: 8,
            connect_timeout_ms: 5_000,
            statement_timeout_ms: 10_000,
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            source: RegistrySource::Embedded,
            demo_participants: 3000,
            demo_seed: 1,
            http: HttpRegistryConfig::default(),
        }
    }
}

impl Default for HttpRegistryConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout_ms: 3000,
            token: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info,sqlx=warn".into(),
        }
    }
}

/// A database URL. It may hold a password, so it prints with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(url) => redact(url),
            Err(_) => "<unparsable URL>".into(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// A URL for printing: the password and the values of secret-looking query parameters
/// (`password`, `sslpassword`, `token`, `key`, `secret`, ...) replaced by `***`.
pub fn redact(mut url: url::Url) -> String {
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let lower = key.to_ascii_lowercase();
                let secret = ["pass", "secret", "token", "key", "auth"]
                    .iter()
                    .any(|s| lower.contains(s));
                (
                    key.into_owned(),
                    if secret {
                        "***".to_string()
                    } else {
                        value.into_owned()
                    },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string().replace("%2A%2A%2A", "***")
}

/// The membership API's base URL. It may carry credentials, so it prints redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryUrl(url::Url);

impl RegistryUrl {
    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Debug for RegistryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegistryUrl({})", redact(self.0.clone()))
    }
}

impl std::str::FromStr for RegistryUrl {
    type Err = url::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        url::Url::parse(s).map(Self)
    }
}

fn empty_is_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.trim()
        .parse()
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

fn empty_secret_is_none<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok((!text.trim().is_empty()).then(|| SecretString::from(text.trim().to_string())))
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// A loaded configuration with what the operator should be told about it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Where the file layer came from, if any.
    pub file: Option<PathBuf>,
    /// `GERBANG_*` variables that name no key (probably misspelt).
    pub unknown_variables: Vec<String>,
}

/// Every key of the configuration, dotted (`server.listen`), read off the example file.
pub fn known_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, table: &toml::Table, keys: &mut BTreeSet<String>) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value {
                toml::Value::Table(inner) => walk(&key, inner, keys),
                _ => {
                    keys.insert(key);
                }
            }
        }
    }
    let mut keys = BTreeSet::new();
    if let Ok(table) = EXAMPLE.parse::<toml::Table>() {
        walk("", &table, &mut keys);
    }
    // The example leaves every channel's cap out (no cap by default); each may still be set.
    for channel in gerbang_domain::verification::Channel::ALL {
        keys.insert(format!("delivery.budgets.channels.{}", channel.as_str()));
    }
    keys
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration file {path} cannot be read: {reason}")]
    File { path: PathBuf, reason: String },
    #[error(
        "invalid configuration: {0}\n  (see `gerbang config example` for every key, its meaning and default)"
    )]
    Invalid(String),
}

/// Loads the configuration: defaults < `file` < environment (`vars`) < `overrides`.
pub fn load(
    file: Option<&Path>,
    vars: impl IntoIterator<Item = (String, String)>,
    overrides: &Overrides,
) -> Result<Loaded, ConfigError> {
    let known = known_keys();
    let mut figment = Figment::new();
    if let Some(path) = file {
        // Read once here so a missing or unreadable file is an error (figment would treat it as empty);
        // the provider reads it again so that errors name the file.
        std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        figment = figment.merge(Toml::file(path));
    }
    let mut unknown_variables = Vec::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("GERBANG_") else {
            continue;
        };
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if known.contains(&key) {
            figment = figment.merge(Layer::new(
                format!("environment variable {name}"),
                &key,
                value.into(),
            ));
        } else if !NOT_KEYS.contains(&name.as_str()) {
            unknown_variables.push(name);
        }
    }
    if let Some(listen) = overrides.listen {
        figment = figment.merge(Layer::new(
            "flag --listen".into(),
            "server.listen",
            listen.to_string().into(),
        ));
    }
    if let Some(url) = &overrides.database_url {
        figment = figment.merge(Layer::new(
            "flag --database-url".into(),
            "storage.database_url",
            url.clone().into(),
        ));
    }
    if let Some(dir) = &overrides.data_dir {
        figment = figment.merge(Layer::new(
            "flag --data-dir".into(),
            "storage.data_dir",
            dir.display().to_string().into(),
        ));
    }
    // Environment values and flags arrive as text and stay text, so an all-digit token or directory
    // name is not mistaken for a number; the lossy extraction turns "5" into 5 only where the
    // setting is a number.
    let config: Config = figment.extract_lossy().map_err(|e| {
        // figment names keys with their profile (`default.server.listen`); gerbang has no profiles.
        ConfigError::Invalid(e.to_string().replace("key \"default.", "key \""))
    })?;
    Ok(Loaded {
        config,
        file: file.map(Path::to_path_buf),
        unknown_variables,
    })
}

/// One key set by one named source (an environment variable, a flag), so that an error about its
/// value names where it came from.
struct Layer {
    source: String,
    data: figment::value::Dict,
}

impl Layer {
    fn new(source: String, key: &str, value: figment::value::Value) -> Self {
        let data = match figment::util::nest(key, value) {
            figment::value::Value::Dict(_, dict) => dict,
            _ => figment::value::Dict::new(),
        };
        Self { source, data }
    }
}

impl figment::Provider for Layer {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.source.clone())
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Ok(figment::Profile::Default.collect(self.data.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_template_breaking_a_rule_stops_the_start_naming_the_key_the_file_and_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sms.en.txt"),
            "[plain]\n{brand}: OTP {code}. Keep it secret.\n[step_up]\n{brand}: {code} for {action}. NEVER share it.\n",
        )
        .unwrap();
        let mut delivery = DeliveryConfig::default();
        assert_eq!(
            &delivery.templates().unwrap(),
            gerbang_domain::verification::template::Templates::builtin()
        );
        delivery.templates_dir = Some(dir.path().to_owned());
        let error = delivery.templates().unwrap_err().to_string();
        assert!(error.contains("delivery.templates_dir"), "{error}");
        assert!(error.contains("sms.en.txt"), "{error}");
        assert!(
            error.contains("[plain]: must carry the anti-fraud warning, with the word NEVER"),
            "{error}"
        );
    }

    #[test]
    fn the_example_file_is_exactly_the_defaults() {
        let example = file(EXAMPLE);
        let loaded = load(Some(example.path()), vec![], &Overrides::default()).unwrap();
        assert_eq!(
            format!("{:?}", loaded.config),
            format!("{:?}", Config::default())
        );
        assert!(known_keys().contains("registry.http.timeout_ms"));
        assert!(known_keys().contains("privacy.key"));
    }

    #[test]
    fn no_file_no_env_no_flags_gives_safe_defaults() {
        let config = load(None, vec![], &Overrides::default()).unwrap().config;
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.profile, Profile::Development);
        assert!(config.storage.database_url.is_none());
        assert!(config.privacy.key.is_none());
    }

    #[test]
    fn file_then_environment_then_flags_each_override_the_one_before() {
        let f = file(
            "[server]\nlisten = \"127.0.0.1:1001\"\nshutdown_grace_seconds = 7\n[storage]\nmax_connections = 3\n",
        );
        let only_file = load(Some(f.path()), vec![], &Overrides::default())
            .unwrap()
            .config;
        assert_eq!(only_file.server.listen.port(), 1001);

        let env = vars(&[
            ("GERBANG_SERVER__LISTEN", "127.0.0.1:1002"),
            ("GERBANG_STORAGE__MAX_CONNECTIONS", "5"),
        ]);
        let with_env = load(Some(f.path()), env.clone(), &Overrides::default())
            .unwrap()
            .config;
        assert_eq!(with_env.server.listen.port(), 1002);
        assert_eq!(with_env.storage.max_connections, 5);
        assert_eq!(
            with_env.server.shutdown_grace_seconds, 7,
            "a key set only in the file stays"
        );

        let flags = Overrides {
            listen: Some("127.0.0.1:1003".parse().unwrap()),
            ..Overrides::default()
        };
        let with_flags = load(Some(f.path()), env, &flags).unwrap().config;
        assert_eq!(with_flags.server.listen.port(), 1003);
        assert_eq!(with_flags.storage.max_connections, 5);
    }

    #[test]
    fn a_typo_in_the_file_is_an_error_naming_the_key_and_the_file() {
        let f = file("[server]\nlisen = \"127.0.0.1:1\"\n");
        let error = load(Some(f.path()), vec![], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("lisen"), "{error}");
        assert!(error.contains(&f.path().display().to_string()), "{error}");
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_key() {
        let f = file("[server]\nlisten = \"everywhere\"\n");
        let error = load(Some(f.path()), vec![], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("server.listen") || error.contains("listen"),
            "{error}"
        );
        let bad_env = vars(&[("GERBANG_PROFILE", "staging")]);
        let error = load(None, bad_env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("staging") && error.contains("profile"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let error = load(
            Some(Path::new("/nonexistent/gerbang.toml")),
            vec![],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("/nonexistent/gerbang.toml"));
    }

    #[test]
    fn all_digit_environment_values_stay_text_where_the_setting_is_text() {
        let env = vars(&[
            ("GERBANG_REGISTRY__HTTP__TOKEN", "12345678901234567890"),
            ("GERBANG_STORAGE__DATA_DIR", "2025"),
            ("GERBANG_REGISTRY__DEMO_PARTICIPANTS", "12"),
            ("GERBANG_SERVER__SHUTDOWN_GRACE_SECONDS", "3"),
        ]);
        let config = load(None, env, &Overrides::default()).unwrap().config;
        assert_eq!(
            config.registry.http.token.unwrap().expose_secret(),
            "12345678901234567890"
        );
        assert_eq!(config.storage.data_dir, PathBuf::from("2025"));
        assert_eq!(
            (
                config.registry.demo_participants,
                config.server.shutdown_grace_seconds
            ),
            (12, 3)
        );
    }

    #[test]
    fn unknown_gerbang_variables_are_reported_and_others_ignored() {
        let env = vars(&[
            ("GERBANG_SERVER__LISTN", "x"),
            ("GERBANG_CONFIG", "/etc/gerbang.toml"),
            ("HOME", "/root"),
            ("GERBANG_LOG__FORMAT", "json"),
        ]);
        let loaded = load(None, env, &Overrides::default()).unwrap();
        assert_eq!(
            loaded.unknown_variables,
            vec!["GERBANG_SERVER__LISTN".to_string()]
        );
        assert_eq!(loaded.config.log.format, LogFormat::Json);
    }

    #[test]
    fn passwords_in_url_queries_are_redacted_too() {
        let url = DatabaseUrl::new("postgres://db/gerbang?sslmode=require&password=sandi-rahasia");
        assert_eq!(
            url.redacted(),
            "postgres://db/gerbang?sslmode=require&password=***"
        );
        let env = vars(&[(
            "GERBANG_REGISTRY__HTTP__URL",
            "https://u:sandi@anggota.example/api?token=t0k3n",
        )]);
        let printed = format!(
            "{:?}",
            load(None, env, &Overrides::default()).unwrap().config
        );
        assert!(
            !printed.contains("sandi") && !printed.contains("t0k3n"),
            "{printed}"
        );
    }

    #[test]
    fn secrets_never_print() {
        let env = vars(&[
            (
                "GERBANG_PRIVACY__KEY",
                "c2VjcmV0LWtleS1tYXRlcmlhbC0wMTIzNDU2Nzg5YWI=",
            ),
            ("GERBANG_REGISTRY__HTTP__TOKEN", "token-rahasia"),
            (
                "GERBANG_STORAGE__DATABASE_URL",
                "postgres://gerbang:sandi-rahasia@db:5432/gerbang",
            ),
        ]);
        let config = load(None, env, &Overrides::default()).unwrap().config;
        let printed = format!("{config:?}");
        for secret in ["c2VjcmV0LWtleS", "token-rahasia", "sandi-rahasia"] {
            assert!(!printed.contains(secret), "{secret} leaked in {printed}");
        }
        assert!(
            printed.contains("postgres://gerbang:***@db:5432/gerbang"),
            "{printed}"
        );
        assert_eq!(
            config.registry.http.token.unwrap().expose_secret(),
            "token-rahasia"
        );
    }
}
