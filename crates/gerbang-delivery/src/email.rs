//! Email over SMTP: the [`SmtpCourier`] that hands codes to a mail relay, its [`SmtpSettings`], and
//! the email it writes.
//!
//! Layout: the settings ([`SmtpSettings`], [`SmtpSecurity`], [`DkimSettings`]); the courier
//! (building the pooled `lettre` transport, the hand-off, and how an SMTP answer becomes a
//! [`HandOffFailure`]); the email, worded by the message templates (`email.<lang>.txt`, see
//! [`gerbang_domain::verification::template`]) as a subject, a plain text and an HTML part; the
//! small text helpers (masking addresses in a server's words).
//!
//! A relay's `250` only says it queued the message. What became of it comes back later, if at all,
//! as a bounce naming our `Message-ID`, which is why that id (not the relay's queue id, whose form
//! every relay chooses for itself) is the hand-off's message id.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use gerbang_core::{Courier, HandOff, HandOffFailure};
use gerbang_domain::Email;
use gerbang_domain::delivery::{Cause, CauseMap, DeliveryStatus, RawOutcome, Retry};
use gerbang_domain::verification::template::Templates;
use gerbang_domain::verification::{Channel, Locale};
use gerbang_store::OutboxMessage;

use crate::courier::email_for;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{self, AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmtpSecurity {
    /// Plain text throughout: only for a relay on the same host or a test server. Credentials are
    /// refused with it, so that a relay password never crosses a network in clear.
    #[serde(rename = "none")]
    None,
    /// Plain text, then `STARTTLS` before anything else is said. A server that does not offer
    /// `STARTTLS` is refused rather than used in clear: a downgrade is exactly what an attacker on
    /// the path would arrange.
    #[default]
    #[serde(rename = "starttls")]
    StartTls,
    /// TLS from the first byte ("SMTPS", usually port 465).
    #[serde(rename = "tls")]
    ImplicitTls,
}

impl SmtpSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::ImplicitTls => "tls",
        }
    }

    /// The port relays usually listen on for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::StartTls => 587,
            Self::ImplicitTls => 465,
        }
    }
}

/// The key type of a DKIM signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

/// Signing outgoing mail with DKIM, so that receivers (and DMARC) can tell our codes from forgeries
/// using our name. The public half is published at `<selector>._domainkey.<domain>`.
#[derive(Clone)]
pub struct DkimSettings {
    pub selector: String,
    /// The `d=` domain; for DMARC alignment, the sender address's domain or a parent of it.
    pub domain: String,
    pub algorithm: DkimAlgorithm,
    /// RSA: a PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`, what `openssl genrsa -traditional`
    /// writes). Ed25519: the 32-byte seed in base64. These are the forms `lettre` reads.
    pub private_key: String,
}

impl std::fmt::Debug for DkimSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSettings")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"***")
            .finish()
    }
}

/// How to reach one mail relay and what to send through it.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Both or neither; an empty string counts as none.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The envelope sender and `From:` address, e.g. `noreply@example.org`. Bounces come back to it.
    pub from_address: String,
    /// The `From:` display name; empty: the bare address.
    pub from_name: String,
    /// Named in the subject and body, like the SMS's brand.
    pub brand: String,
    /// The name we give in `EHLO`; `None`: this machine's host name. Some relays refuse names that
    /// do not resolve.
    pub hello_name: Option<String>,
    /// How long one hand-off may take, from connecting to the relay's answer to the message. Keep
    /// it well under the outbox lease (30 s), or a slow relay gets the message twice.
    pub timeout: Duration,
    /// Connections kept open to the relay at most (each carries one message at a time).
    pub pool_size: u32,
    /// An extra trusted root (PEM), for a relay whose certificate comes from a private CA. The
    /// public web roots are trusted either way.
    pub ca_certificate_pem: Option<String>,
    /// DANGEROUS: accept any certificate, of anyone, for any name. Encryption without knowing who is
    /// at the other end protects against nobody who matters. For tests against a throwaway
    /// self-signed server only; never in a deployment (use `ca_certificate_pem` for a private CA).
    pub accept_invalid_certs: bool,
    pub dkim: Option<DkimSettings>,
    /// The words of the email (subject, text, HTML) per language; the built-in ones by default.
    pub templates: Arc<Templates>,
}

impl SmtpSettings {
    /// STARTTLS on port 587, no credentials, a 10-second timeout, brand `gerbang`.
    pub fn new(host: impl Into<String>, from_address: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: SmtpSecurity::StartTls.default_port(),
            security: SmtpSecurity::StartTls,
            username: None,
            password: None,
            from_address: from_address.into(),
            from_name: String::new(),
            brand: "gerbang".into(),
            hello_name: None,
            timeout: Duration::from_secs(10),
            pool_size: 8,
            ca_certificate_pem: None,
            accept_invalid_certs: false,
            dkim: None,
            templates: Arc::new(Templates::builtin().clone()),
        }
    }
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from_address", &self.from_address)
            .field("from_name", &self.from_name)
            .field("brand", &self.brand)
            .field("hello_name", &self.hello_name)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .field("ca_certificate_pem", &self.ca_certificate_pem.is_some())
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("dkim", &self.dkim)
            .finish()
    }
}

/// Why an [`SmtpCourier`] cannot be built from its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error(
        "the SMTP courier must be built inside a Tokio runtime (its connection pool runs a task)"
    )]
    NoRuntime,
    #[error("the sender address {0:?} is not a usable email address")]
    BadSender(String),
    #[error("an SMTP username needs a password, and a password a username")]
    IncompleteCredentials,
    #[error(
        "SMTP credentials need security \"starttls\" or \"tls\": they would cross the network in clear"
    )]
    CredentialsInClear,
    #[error("the CA certificate cannot be read: {0}")]
    BadCertificate(String),
    #[error("the TLS settings cannot be used: {0}")]
    Tls(String),
    #[error("the DKIM private key cannot be read: {0}")]
    BadDkimKey(String),
}

/// Email through one SMTP relay, over a pool of connections kept open between messages.
#[derive(Clone)]
pub struct SmtpCourier {
    name: String,
    /// Replaced by a fresh one from `builder` when a hand-off times out. lettre would put the
    /// abandoned connection back in its pool in mid-dialogue, where the next message would read the
    /// replies meant for the previous one; a new pool leaves the old one (and that connection) to
    /// be closed once its last hand-off ends.
    transport: Arc<Mutex<AsyncSmtpTransport<Tokio1Executor>>>,
    builder: AsyncSmtpTransportBuilder,
    /// lettre's own timeout covers only connecting, so the whole dialogue is bounded here.
    timeout: Duration,
    from: Mailbox,
    /// The right-hand side of our `Message-ID`s: the sender's domain, which is ours, so the ids
    /// cannot collide with anyone else's.
    id_domain: String,
    brand: String,
    templates: Arc<Templates>,
    dkim: Option<Arc<DkimConfig>>,
    causes: Arc<CauseMap>,
    /// `host:port (security)`, for `Debug` only.
    relay: String,
}

impl std::fmt::Debug for SmtpCourier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCourier")
            .field("name", &self.name)
            .field("relay", &self.relay)
            .field("from", &self.from.email.to_string())
            .field("dkim", &self.dkim.is_some())
            .finish_non_exhaustive()
    }
}

/// Replies that mean the relay will not take our credentials (or wants some): 530 authentication
/// required, 534 mechanism too weak, 535 credentials invalid, 538 encryption required. Whatever the
/// cause map says of 5xx in general, these are a fault of our configuration, not of the address.
const AUTHENTICATION_REFUSED: [u16; 4] = [530, 534, 535, 538];

/// The most of a server's words kept in the delivery trail.
const MAX_DETAIL_CHARS: usize = 200;

impl SmtpCourier {
    /// Builds the courier and its connection pool; nothing is connected until the first message.
    /// Must be called inside a Tokio runtime.
    pub fn new(
        name: impl Into<String>,
        settings: SmtpSettings,
        causes: Arc<CauseMap>,
    ) -> Result<Self, EmailError> {
        // lettre's pool spawns its clean-up task on construction and would panic outside a runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(EmailError::NoRuntime);
        }
        let address: Address = settings
            .from_address
            .trim()
            .parse()
            .map_err(|_| EmailError::BadSender(settings.from_address.clone()))?;
        let id_domain = address.domain().to_owned();
        let display = (!settings.from_name.trim().is_empty()).then(|| settings.from_name.clone());
        let from = Mailbox::new(display, address);

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .timeout(Some(settings.timeout))
            .pool_config(PoolConfig::new().max_size(settings.pool_size.max(1)));
        if let Some(name) = settings.hello_name.as_ref().filter(|n| !n.is_empty()) {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        builder = match settings.security {
            SmtpSecurity::None => builder.tls(Tls::None),
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls_parameters(&settings)?)),
            SmtpSecurity::ImplicitTls => builder.tls(Tls::Wrapper(tls_parameters(&settings)?)),
        };
        let present = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        match (present(&settings.username), present(&settings.password)) {
            (Some(username), Some(password)) => {
                if settings.security == SmtpSecurity::None {
                    return Err(EmailError::CredentialsInClear);
                }
                builder = builder.credentials(Credentials::new(username, password));
            }
            (None, None) => {}
            _ => return Err(EmailError::IncompleteCredentials),
        }
        let dkim = settings
            .dkim
            .as_ref()
            .map(dkim_config)
            .transpose()?
            .map(Arc::new);
        Ok(Self {
            name: name.into(),
            transport: Arc::new(Mutex::new(builder.clone().build())),
            builder,
            timeout: settings.timeout,
            from,
            id_domain,
            brand: settings.brand.clone(),
            templates: settings.templates.clone(),
            dkim,
            causes,
            relay: format!(
                "{}:{} ({})",
                settings.host,
                settings.port,
                settings.security.as_str()
            ),
        })
    }

    /// The email for one outbox message, signed when DKIM is configured.
    fn compose(
        &self,
        message: &OutboxMessage,
        to: &Email,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Message, HandOffFailure> {
        // `Email` accepts what the email_address crate does; lettre's parser is its own, so the two
        // could in principle disagree on an exotic address. Another provider might take it.
        let to: Address = to.as_str().parse().map_err(|_| {
            HandOffFailure::new(
                Cause::MailboxRejected,
                Retry::OtherRoute,
                "the address cannot be written in an SMTP envelope",
            )
        })?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .date(SystemTime::from(now))
            .message_id(Some(message_id.to_owned()));
        let built = match &message.content {
            Some(content) => {
                let email = self.templates.email(&self.brand, content);
                builder
                    .subject(email.subject)
                    .multipart(MultiPart::alternative_plain_html(email.text, email.html))
            }
            // Queued by a gerbang older than this courier: the SMS text is all there is.
            None => builder
                .subject(self.templates.email_subject(&self.brand, Locale::default()))
                .singlepart(SinglePart::plain(message.text.clone())),
        };
        let mut email = built.map_err(|error| {
            HandOffFailure::misconfigured(format!("cannot build the email: {error}"))
        })?;
        if let Some(dkim) = &self.dkim {
            email.sign(dkim);
        }
        Ok(email)
    }

    fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        self.transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace_pool(&self) {
        let fresh = self.builder.clone().build();
        *self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fresh;
    }

    /// `<random@our-domain>`: unguessable, so it says nothing about the participant or the code.
    fn new_message_id(&self) -> String {
        format!("<{:032x}@{}>", rand::random::<u128>(), self.id_domain)
    }

    /// What an SMTP failure means for the message. `secret` is the code, scrubbed from the detail in
    /// case a server ever echoes it.
    fn failure(&self, error: &smtp::Error, secret: Option<&str>) -> HandOffFailure {
        if let Some(code) = error.status() {
            let code = u16::from(code);
            // lettre keeps the server's words (all lines joined) as the error's source.
            let words = std::error::Error::source(error)
                .map(ToString::to_string)
                .unwrap_or_default();
            let detail = reply_detail(code, &words, secret);
            if AUTHENTICATION_REFUSED.contains(&code) {
                return HandOffFailure::new(
                    Cause::ProviderMisconfigured,
                    Retry::OtherRoute,
                    detail,
                );
            }
            let verdict = self.causes.judge(&RawOutcome::Smtp(code));
            return HandOffFailure::new(
                verdict.cause.unwrap_or(Cause::Unknown),
                verdict.retry,
                detail,
            );
        }
        // lettre nests the cause in two or three layers of "Connection error: ..."; the innermost
        // one says what happened.
        let cause = innermost(error);
        if error.is_client() {
            // No STARTTLS offered, no authentication mechanism in common, no SMTPUTF8: this relay,
            // as configured, cannot carry the message; another might.
            return HandOffFailure::misconfigured(format!("SMTP client refused: {cause}"));
        }
        let what = if error.is_timeout() {
            "timeout"
        } else if error.is_tls() {
            "TLS failure"
        } else if error.is_response() {
            "unreadable reply"
        } else {
            "connection failure"
        };
        HandOffFailure::unreachable(format!("SMTP {what}: {cause}"))
    }
}

impl Courier for SmtpCourier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        let to = email_for(&self.name, Channel::Email, message)?;
        let message_id = self.new_message_id();
        let email = self.compose(message, to, &message_id, now)?;
        let sent = tokio::time::timeout(self.timeout, self.transport().send(email)).await;
        let Ok(sent) = sent else {
            self.replace_pool();
            return Err(HandOffFailure::unreachable(format!(
                "SMTP timeout: no answer within {} ms",
                self.timeout.as_millis()
            )));
        };
        match sent {
            Ok(reply) => {
                tracing::debug!(
                    provider = %self.name,
                    %message_id,
                    reply = reply.first_line().unwrap_or_default(),
                    "the relay took an email"
                );
                Ok(HandOff {
                    at: now,
                    message_id: Some(message_id),
                    status: DeliveryStatus::Submitted,
                })
            }
            Err(error) => {
                let secret = message
                    .content
                    .as_ref()
                    .map(|content| content.code.as_str());
                Err(self.failure(&error, secret))
            }
        }
    }
}

fn tls_parameters(settings: &SmtpSettings) -> Result<TlsParameters, EmailError> {
    let mut builder = TlsParameters::builder(settings.host.clone())
        .dangerous_accept_invalid_certs(settings.accept_invalid_certs);
    if let Some(pem) = &settings.ca_certificate_pem {
        let certificate = Certificate::from_pem(pem.as_bytes())
            .map_err(|error| EmailError::BadCertificate(error.to_string()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|error| EmailError::Tls(error.to_string()))
}

fn dkim_config(settings: &DkimSettings) -> Result<DkimConfig, EmailError> {
    let algorithm = match settings.algorithm {
        DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
    };
    let key_text = settings.private_key.trim();
    if settings.algorithm == DkimAlgorithm::Rsa && key_text.starts_with("-----BEGIN PRIVATE KEY") {
        return Err(EmailError::BadDkimKey(
            "this is a PKCS#8 key; write it as PKCS#1 with `openssl pkey -in key.pem -traditional`"
                .into(),
        ));
    }
    let key = DkimSigningKey::new(key_text, algorithm)
        .map_err(|error| EmailError::BadDkimKey(error.to_string()))?;
    // Relaxed canonicalisation survives relays that refold headers or re-space the body; the
    // headers signed are the ones a forger would want to change. Not `Content-Type`: lettre writes a
    // multipart's `Content-Type` with the body, so it would name it in `h=` without hashing it and
    // no receiver could verify the signature (the interop test checks with dkimpy).
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    Ok(DkimConfig::new(
        settings.selector.clone(),
        settings.domain.clone(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

fn innermost(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// `SMTP 550 5.1.1 <r***@example.com>: Recipient address rejected`: the code and the start of the
/// server's words, with addresses masked (the trail holds no personal data) and the code removed.
fn reply_detail(code: u16, words: &str, secret: Option<&str>) -> String {
    let first_line = words.lines().next().unwrap_or_default().trim();
    let mut words = mask_addresses(first_line);
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        words = words.replace(secret, "***");
    }
    let words: String = words.chars().take(MAX_DETAIL_CHARS).collect();
    format!("SMTP {code} {words}").trim_end().to_owned()
}

/// Every `local@domain` in `text` as `l***@domain`, the way [`Email::masked`] shows an address.
fn mask_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.find('@') {
            Some(at) => {
                let start = word[..at]
                    .rfind(['<', '(', '[', '"', '\'', ':', ',', ';', '='])
                    .map_or(0, |i| i + 1);
                let first: String = word[start..at].chars().take(1).collect();
                format!("{}{first}***{}", &word[..start], &word[at..])
            }
            None => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use gerbang_domain::verification::message::MessageContent;
    use gerbang_domain::verification::purpose::SensitiveAction;
    use gerbang_domain::verification::template::EmailText;

    fn content(locale: Locale, action: Option<SensitiveAction>) -> MessageContent {
        MessageContent {
            code: "482913".into(),
            locale,
            lifetime_minutes: 5,
            action,
            action_hint: action.map(|_| "****7890".into()),
        }
    }

    fn email(brand: &str, content: &MessageContent) -> EmailText {
        Templates::builtin().email(brand, content)
    }

    #[test]
    fn both_parts_carry_the_code_the_lifetime_and_the_warning_in_the_message_language() {
        let id = email("JKN Mobile", &content(Locale::Id, None));
        assert_eq!(id.subject, "Kode verifikasi JKN Mobile");
        for part in [&id.text, &id.html] {
            assert!(part.contains("482913"), "{part}");
            assert!(part.contains("berlaku 5 menit"), "{part}");
            assert!(
                part.contains("JANGAN berikan kode ini kepada siapa pun, termasuk petugas BPJS.")
            );
        }
        assert!(id.html.contains("<html lang=\"id\">"));

        let en = email("JKN Mobile", &content(Locale::En, None));
        assert_eq!(en.subject, "Your JKN Mobile verification code");
        for part in [&en.text, &en.html] {
            assert!(part.contains("482913"), "{part}");
            assert!(part.contains("valid for 5 minutes"), "{part}");
            assert!(part.contains("Do NOT give this code to anyone, including BPJS staff."));
        }
    }

    #[test]
    fn a_step_up_names_its_action_and_hint() {
        let letter = email(
            "JKN Mobile",
            &content(Locale::Id, Some(SensitiveAction::BankAccountChange)),
        );
        assert!(
            letter
                .text
                .contains("Kode ini untuk ubah rekening bank ****7890.")
        );
        let letter = email(
            "JKN Mobile",
            &content(Locale::En, Some(SensitiveAction::BankAccountChange)),
        );
        assert!(
            letter
                .html
                .contains("This code is for bank account change ****7890.")
        );
    }

    #[test]
    fn whatever_is_inserted_into_the_html_is_escaped() {
        let letter = email("<b>Brand</b> & \"Co\"", &content(Locale::En, None));
        let html = &letter.html;
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("&lt;b&gt;Brand&lt;/b&gt; &amp; &quot;Co&quot;"),
            "{html}"
        );
    }

    #[test]
    fn the_default_templates_write_the_emails_gerbang_always_sent() {
        let brands = ["JKN Mobile", "<b>Brand</b> & \"Co\" it's", "gerbang"];
        for brand in brands {
            for locale in [Locale::Id, Locale::En] {
                for action in [None, Some(SensitiveAction::BankAccountChange)] {
                    for minutes in [1, 5] {
                        let mut content = content(locale, action);
                        content.lifetime_minutes = minutes;
                        let old = hard_coded::Letter::new(brand, &content);
                        let new = email(brand, &content);
                        assert_eq!(new.subject, old.subject);
                        assert_eq!(new.text, old.text());
                        assert_eq!(new.html, old.html());
                    }
                }
            }
        }
        let mut hint_only = content(Locale::En, Some(SensitiveAction::PasswordReset));
        hint_only.action_hint = None;
        let old = hard_coded::Letter::new("JKN Mobile", &hint_only);
        assert_eq!(email("JKN Mobile", &hint_only).html, old.html());
    }

    #[test]
    fn an_operator_template_words_the_email() {
        let templates = Templates::builtin()
            .clone()
            .with_file(
                "email.id.txt",
                "[subject]\n[{brand}] Kode Anda\n[text]\n{brand}: {code}\nUntuk {action}.\n\
                 [html]\n<p>{brand}: <b>{code}</b></p>\n<p>Untuk {action}.</p>\n",
            )
            .unwrap();
        let words = templates.email("JKN Mobile", &content(Locale::Id, None));
        assert_eq!(words.subject, "[JKN Mobile] Kode Anda");
        assert_eq!(words.text, "JKN Mobile: 482913\n");
        assert_eq!(words.html, "<p>JKN Mobile: <b>482913</b></p>\n");
        assert_eq!(
            templates.email_subject("JKN Mobile", Locale::En),
            "Your JKN Mobile verification code"
        );
    }

    /// The email as gerbang wrote it before the templates, word for word: the oracle the default
    /// templates must match.
    mod hard_coded {
        use gerbang_domain::verification::Locale;
        use gerbang_domain::verification::message::MessageContent;

        fn subject(brand: &str, locale: Locale) -> String {
            match locale {
                Locale::Id => format!("Kode verifikasi {brand}"),
                Locale::En => format!("Your {brand} verification code"),
            }
        }

        pub(super) struct Letter {
            lang: &'static str,
            pub(super) subject: String,
            intro: String,
            code: String,
            purpose: Option<String>,
            validity: String,
            warning: &'static str,
            closing: &'static str,
        }

        impl Letter {
            pub(super) fn new(brand: &str, content: &MessageContent) -> Self {
                let minutes = content.lifetime_minutes;
                let action = content.action_label();
                let subject = subject(brand, content.locale);
                let code = content.code.clone();
                match content.locale {
                    Locale::Id => Self {
                        lang: "id",
                        subject,
                        intro: format!("Kode verifikasi {brand} Anda:"),
                        code,
                        purpose: action.map(|action| format!("Kode ini untuk {action}.")),
                        validity: format!("Kode berlaku {minutes} menit."),
                        warning: "JANGAN berikan kode ini kepada siapa pun, termasuk petugas BPJS.",
                        closing: "Jika Anda tidak meminta kode ini, abaikan email ini.",
                    },
                    Locale::En => Self {
                        lang: "en",
                        subject,
                        intro: format!("Your {brand} verification code:"),
                        code,
                        purpose: action.map(|action| format!("This code is for {action}.")),
                        validity: format!(
                            "It is valid for {minutes} {}.",
                            if minutes == 1 { "minute" } else { "minutes" }
                        ),
                        warning: "Do NOT give this code to anyone, including BPJS staff.",
                        closing: "If you did not ask for this code, ignore this email.",
                    },
                }
            }

            pub(super) fn text(&self) -> String {
                let purpose = self
                    .purpose
                    .as_deref()
                    .map(|purpose| format!("{purpose}\n"))
                    .unwrap_or_default();
                format!(
                    "{intro}\n\n    {code}\n\n{purpose}{validity}\n\n{warning}\n\n{closing}\n",
                    intro = self.intro,
                    code = self.code,
                    validity = self.validity,
                    warning = self.warning,
                    closing = self.closing,
                )
            }

            pub(super) fn html(&self) -> String {
                let purpose = self
                    .purpose
                    .as_deref()
                    .map(|purpose| format!("<p style=\"margin:0 0 8px\">{}</p>\n", escape(purpose)))
                    .unwrap_or_default();
                format!(
                    r#"<!DOCTYPE html>
<html lang="{lang}">
<head><meta charset="utf-8"><title>{subject}</title></head>
<body style="margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;color:#1f2933">
<p style="margin:0 0 8px">{intro}</p>
<p style="margin:0 0 16px;font-family:'Courier New',monospace;font-size:32px;font-weight:bold;letter-spacing:6px">{code}</p>
{purpose}<p style="margin:0 0 16px">{validity}</p>
<p style="margin:0 0 16px;padding:12px;border:2px solid #b42318;color:#b42318;font-weight:bold">{warning}</p>
<p style="margin:0;color:#616e7c;font-size:13px">{closing}</p>
</body>
</html>
"#,
                    lang = self.lang,
                    subject = escape(&self.subject),
                    intro = escape(&self.intro),
                    code = escape(&self.code),
                    validity = escape(&self.validity),
                    warning = escape(self.warning),
                    closing = escape(self.closing),
                )
            }
        }

        fn escape(text: &str) -> String {
            let mut escaped = String::with_capacity(text.len());
            for c in text.chars() {
                match c {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&#39;"),
                    c => escaped.push(c),
                }
            }
            escaped
        }
    }

    #[test]
    fn reply_details_mask_addresses_and_never_hold_the_code() {
        assert_eq!(
            reply_detail(
                550,
                "5.1.1 <budi.santoso@example.com>: Recipient address rejected",
                Some("482913")
            ),
            "SMTP 550 5.1.1 <b***@example.com>: Recipient address rejected"
        );
        assert_eq!(
            reply_detail(
                554,
                "rejected 482913 to=budi@example.org\nsecond line",
                Some("482913")
            ),
            "SMTP 554 rejected *** to=b***@example.org"
        );
        assert_eq!(reply_detail(421, "", None), "SMTP 421");
        let long = "x".repeat(1000);
        assert!(reply_detail(451, &long, None).len() < 220);
    }

    #[test]
    fn settings_never_print_their_secrets() {
        let mut settings = SmtpSettings::new("smtp.example.org", "noreply@example.org");
        settings.username = Some("gerbang".into());
        settings.password = Some("sandi-rahasia".into());
        settings.dkim = Some(DkimSettings {
            selector: "s1".into(),
            domain: "example.org".into(),
            algorithm: DkimAlgorithm::Ed25519,
            private_key: "a2V5LXJhaGFzaWE=".into(),
        });
        let printed = format!("{settings:?}");
        assert!(!printed.contains("sandi-rahasia"), "{printed}");
        assert!(!printed.contains("a2V5LXJhaGFzaWE"), "{printed}");
        assert!(printed.contains("smtp.example.org"));
    }

    #[tokio::test]
    async fn settings_that_cannot_work_are_refused_when_the_courier_is_built() {
        let causes = Arc::new(CauseMap::default());
        let build =
            |settings: SmtpSettings| SmtpCourier::new("smtp", settings, causes.clone()).err();

        let mut settings = SmtpSettings::new("127.0.0.1", "noreply@example.org");
        settings.security = SmtpSecurity::None;
        settings.username = Some("gerbang".into());
        settings.password = Some("sandi".into());
        assert_eq!(
            build(settings.clone()),
            Some(EmailError::CredentialsInClear)
        );

        settings.security = SmtpSecurity::StartTls;
        settings.password = None;
        assert_eq!(
            build(settings.clone()),
            Some(EmailError::IncompleteCredentials)
        );

        settings.username = None;
        settings.from_address = "not an address".into();
        assert!(matches!(
            build(settings.clone()),
            Some(EmailError::BadSender(_))
        ));

        settings.from_address = "noreply@example.org".into();
        settings.dkim = Some(DkimSettings {
            selector: "s1".into(),
            domain: "example.org".into(),
            algorithm: DkimAlgorithm::Rsa,
            private_key: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n".into(),
        });
        assert!(matches!(
            build(settings.clone()),
            Some(EmailError::BadDkimKey(_))
        ));

        settings.dkim = None;
        assert_eq!(build(settings), None);
    }

    #[test]
    fn an_ed25519_key_is_read_as_its_base64_seed_and_signs() {
        let settings = DkimSettings {
            selector: "s1".into(),
            domain: "example.org".into(),
            algorithm: DkimAlgorithm::Ed25519,
            private_key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        };
        let config = dkim_config(&settings).unwrap();
        let mut email = Message::builder()
            .from("noreply@example.org".parse().unwrap())
            .to("budi@example.com".parse().unwrap())
            .subject("Kode verifikasi gerbang")
            .body("482913".to_owned())
            .unwrap();
        email.sign(&config);
        let formatted = String::from_utf8(email.formatted()).unwrap();
        assert!(
            formatted.contains("a=ed25519-sha256; d=example.org; s=s1;"),
            "{formatted}"
        );

        let short = DkimSettings {
            private_key: "AAECAw==".into(),
            ..settings
        };
        assert!(matches!(
            dkim_config(&short),
            Err(EmailError::BadDkimKey(_))
        ));
    }

    #[test]
    fn outside_a_runtime_the_courier_is_refused_rather_than_panicking() {
        let settings = SmtpSettings::new("127.0.0.1", "noreply@example.org");
        let built = SmtpCourier::new("smtp", settings, Arc::new(CauseMap::default()));
        assert_eq!(built.err(), Some(EmailError::NoRuntime));
    }
}
