//! The participant account flows of SPEC §3: registration, login with the new-device step-up and
//! lockout, sessions and devices, recovery, contact change and step-up for sensitive actions, and
//! introspection of sessions for the app's other services.
//!
//! Every OTP goes through the [`VerificationEngine`] as the in-process client [`ACCOUNTS_CLIENT`],
//! so the OTP policy, rate limits, delivery and channel fallback are the same as for any other
//! caller, and no API client can check a code of an account flow. A flow in progress is a sealed row
//! found by the digest of an opaque token the app holds (`gbf_…`); every account change is a
//! compare-and-set on the account's version, retried a few times under contention.

mod counter;
mod error;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use gerbang_domain::account::{
    Account, CoolOffPolicy, DeviceDigest, LockEvent, LockNotice, LockoutPolicy, LoginGuard,
    PasswordPolicy, PersonalFacts, SessionLife, SessionPolicy, SessionToken, TokenDigest,
    TrustedDevices,
};
use gerbang_domain::verification::purpose::{ActionDetails, Purpose, SensitiveAction};
use gerbang_domain::verification::rate::{KeyKind, RateRule};
use gerbang_domain::verification::{Channel, Destination, Locale, VerificationId};
use gerbang_domain::{
    Clock, Email, JknCardNumber, KpjNumber, MobileNumber, Nik, Participant, ParticipantStatus,
};
use gerbang_store::audit::actor;
use gerbang_store::{
    AccountEvent, AccountKey, AccountRefusal, AccountTaken, ParticipantKey, RateKey, Store,
    StoredAccount, StoredFlow, StoredSession,
};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use counter::{CounterError, CounterForm, Officer};
pub use error::AccountError;
use gerbang_domain::identity::IndonesianTimeZone;

use crate::captcha::{CaptchaAnswer, CaptchaGate};
use crate::engine::{
    CheckRequest, Origin, ResendRequest, StartRequest, Subject, VerificationEngine,
    VerificationView,
};
use crate::error::EngineError;
use crate::password::{PasswordCheck, PasswordHashing};

/// The engine client every account flow's verifications belong to.
pub const ACCOUNTS_CLIENT: &str = "gerbang-accounts";

/// How often a compare-and-set is retried before answering `temporarily_unavailable`.
const SAVE_ATTEMPTS: usize = 5;

/// A trusted device's last-seen time is written at most this often.
const LAST_SEEN_PRECISION: Duration = Duration::hours(1);

/// A well-formed NIK no participant has (sequence 0001 of a birth date in 1900): looked up in
/// place of a missing one so that every recovery answer costs the same lookups.
const STAND_IN_NIK: &str = "3171010101000001";

/// A session's last use is written at most this often (a read on every request is enough).
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// The account rules, from configuration (`[accounts]`).
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub password: PasswordPolicy,
    pub lockout: LockoutPolicy,
    pub sessions: SessionPolicy,
    pub cool_off: CoolOffPolicy,
    /// How long a flow token lives (registration, login step-up, recovery, contact change).
    pub flow_lifetime: Duration,
    /// Where the registration code goes when the app does not choose (seed 002: email).
    pub registration_channel: Channel,
    /// How recent a step-up must be for introspection to call it fresh, unless the caller asks.
    pub step_up_window: Duration,
    /// Which flows need a captcha.
    pub captcha_on_registration: bool,
    pub captcha_on_recovery: bool,
    /// Limits on registry lookups (registration step 1, recovery step 1) and logins, by the
    /// caller's IP address (`ip` rules) and by the identifier looked up (`nik` rules; a NIK or card
    /// number). Codes have their own limits in the engine.
    pub lookup_rules: Arc<Vec<RateRule>>,
}

/// The default lookup limits: a NIK (or card number) looked up at most 10 times an hour (a birth
/// date cannot be guessed by trying), an address at most 120 lookups or logins an hour (generous:
/// many participants share one carrier-grade NAT address).
pub fn default_lookup_rules() -> Vec<RateRule> {
    vec![
        RateRule::new(KeyKind::Nik, 10, Duration::hours(1), Duration::hours(1)),
        RateRule::new(KeyKind::Ip, 120, Duration::hours(1), Duration::hours(1)),
    ]
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            password: PasswordPolicy::default(),
            lockout: LockoutPolicy::default(),
            sessions: SessionPolicy::default(),
            cool_off: CoolOffPolicy::default(),
            flow_lifetime: Duration::minutes(30),
            registration_channel: Channel::Email,
            step_up_window: Duration::minutes(10),
            captcha_on_registration: true,
            captcha_on_recovery: true,
            lookup_rules: Arc::new(default_lookup_rules()),
        }
    }
}

/// What a participant logs in or identifies with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    Nik(Nik),
    CardNumber(JknCardNumber),
    /// The BPJS Ketenagakerjaan membership number JMO participants know their account by.
    Kpj(KpjNumber),
    Email(Email),
}

/// Which identifiers a step accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The registry's numbers only: NIK, JKN card number, KPJ number (registration).
    Numbers,
    /// Those or the account's email address (login, recovery).
    NumbersOrEmail,
}

impl Accepted {
    pub fn email(self) -> bool {
        self == Self::NumbersOrEmail
    }
}

impl Identifier {
    /// A 16-digit NIK, a 13-digit JKN card number, an 11-digit KPJ number or (where `accepted`
    /// allows) an email address; spaces, dots and dashes in numbers are ignored. A refusal names
    /// the rule that failed and offers only what the step accepts.
    pub fn parse(input: &str, accepted: Accepted) -> Result<Self, AccountError> {
        let input = input.trim();
        let email_accepted = accepted.email();
        if input.contains('@') {
            if !email_accepted {
                return Err(AccountError::IdentifierInvalid { email_accepted });
            }
            return Email::parse(input)
                .map(Self::Email)
                .map_err(AccountError::EmailInvalid);
        }
        let digits: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.'))
            .collect();
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(AccountError::IdentifierInvalid { email_accepted });
        }
        match digits.len() {
            16 => Nik::parse(&digits)
                .map(Self::Nik)
                .map_err(AccountError::NikInvalid),
            JknCardNumber::LENGTH => JknCardNumber::parse(&digits)
                .map(Self::CardNumber)
                .map_err(|_| AccountError::IdentifierInvalid { email_accepted }),
            KpjNumber::LENGTH => KpjNumber::parse(&digits)
                .map(Self::Kpj)
                .map_err(|_| AccountError::IdentifierInvalid { email_accepted }),
            found => Err(AccountError::IdentifierLength {
                found,
                email_accepted,
            }),
        }
    }
}

/// The answer to a step that sent a code: the flow to continue and the verification's state.
#[derive(Debug, Clone)]
pub struct CodeSent {
    pub flow: String,
    pub verification: VerificationView,
}

/// Registration step 1: the participant was found and may register.
#[derive(Debug, Clone)]
pub struct Identified {
    pub flow: String,
    pub masked_name: String,
    pub expires_at: DateTime<Utc>,
}

/// Registration step 2.
#[derive(Debug, Clone)]
pub struct ContactAndPassword {
    pub email: Option<Email>,
    pub phone: Option<MobileNumber>,
    pub password: SecretString,
    pub confirmation: SecretString,
    pub channel: Option<Channel>,
    pub locale: Locale,
}

/// An account as its owner may see it: contacts masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    /// The public id (`acct_…`), never the row id.
    pub id: String,
    pub nik_masked: String,
    pub email_masked: Option<String>,
    pub phone_masked: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Sensitive actions are held until then after a phone change.
    pub cooling_off_until: Option<DateTime<Utc>>,
}

/// A login request.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub identifier: String,
    pub password: SecretString,
    /// The app's installation id (never stored, only its digest).
    pub device_id: String,
    pub device_name: String,
    pub locale: Locale,
    /// The caller's address, when known: logins count against the address's lookup limit.
    pub ip: Option<IpAddr>,
}

/// A new session; the token is shown once.
#[derive(Debug, Clone)]
pub struct SessionIssued {
    pub token: SessionToken,
    pub expires_at: DateTime<Utc>,
    pub account: AccountView,
}

/// How a right password ends.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// A trusted device: logged in.
    Session(SessionIssued),
    /// An unknown device: a code was sent; confirm it to log in.
    StepUp(CodeSent),
}

/// A session as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub account: AccountView,
    pub device: DeviceDigest,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub step_ups: BTreeMap<String, DateTime<Utc>>,
}

/// A trusted device as listed to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView {
    /// Hex of the device digest: what revoking names.
    pub key: String,
    pub name: String,
    pub trusted_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The device of the session asking.
    pub current: bool,
}

/// A channel on file, shown masked, to choose for a recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryChannel {
    pub channel: Channel,
    pub masked: String,
}

#[derive(Debug, Clone)]
pub struct RecoveryOptions {
    pub flow: String,
    pub channels: Vec<RecoveryChannel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub sessions_revoked: u64,
    pub devices_revoked: usize,
}

/// How a contact-change code ends.
#[derive(Debug, Clone)]
pub enum ContactChangeStep {
    /// The old contact authorised it; a code went to the new one.
    ProveNew(CodeSent),
    /// Done.
    Changed(AccountView),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUpDone {
    pub action: SensitiveAction,
    pub at: DateTime<Utc>,
}

/// Which account flow a flow token continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    Registration,
    Login,
    Recovery,
    ContactChange,
    StepUp,
}

/// A flow in progress as the participant holding its token may see it: what the pages of a flow
/// show between its steps (the masked name, the code's countdown, the delivery trail).
#[derive(Debug, Clone)]
pub struct FlowView {
    pub kind: FlowKind,
    pub expires_at: DateTime<Utc>,
    /// Registration: the name of the participant found, masked.
    pub masked_name: Option<String>,
    /// The code of the flow's current step, once one was sent.
    pub verification: Option<VerificationView>,
    /// Its delivery trail, explanations, fallback offer and queue estimate.
    pub outlook: Option<crate::engine::DeliveryOutlook>,
    /// Step-up: the action the code confirms.
    pub action: Option<SensitiveAction>,
    /// Step-up: what the code confirms (the details it is bound to), in key order.
    pub details: BTreeMap<String, String>,
    /// Contact change: the old contact has authorised it and the code now goes to the new one.
    pub authorised: bool,
    /// Recovery: the channels on file, masked, before a code was sent.
    pub channels: Vec<RecoveryChannel>,
    /// The participant's clock (their NIK's province): the zone times are told in.
    pub time_zone: IndonesianTimeZone,
    /// The channels a resend of this flow can switch to: their contact is on file.
    pub on_file: Vec<Channel>,
}

/// What a service learns about a session token (RFC 7662 style).
#[derive(Debug, Clone)]
pub struct Introspection {
    pub active: bool,
    pub session: Option<SessionView>,
    pub nik: Option<Nik>,
    /// For the action asked about: whether a step-up happened within the window.
    pub step_up_fresh: Option<bool>,
}

/// The state of a flow in progress, sealed at rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case")]
enum FlowState {
    Registration {
        nik: Nik,
        card_number: JknCardNumber,
        birth_date: NaiveDate,
        pending: Option<PendingRegistration>,
    },
    Login {
        account: i64,
        device: DeviceDigest,
        device_name: String,
        verification: VerificationId,
    },
    Recovery {
        account: i64,
        verification: Option<VerificationId>,
    },
    ContactChange {
        account: i64,
        session: TokenDigest,
        to: Destination,
        /// The code to the old contact; then the one to the new.
        verification: VerificationId,
        authorised: bool,
    },
    StepUp {
        account: i64,
        session: TokenDigest,
        action: SensitiveAction,
        verification: VerificationId,
        /// What the code confirms, for the pages that show it again beside the code box.
        #[serde(default)]
        details: BTreeMap<String, String>,
    },
}

impl FlowState {
    /// The same flow continuing with another verification (a fresh code after a spent one).
    fn continued_with(mut self, id: VerificationId) -> Self {
        match &mut self {
            Self::Registration {
                pending: Some(pending),
                ..
            } => pending.verification = id,
            Self::Registration { pending: None, .. } => {}
            Self::Recovery { verification, .. } => *verification = Some(id),
            Self::Login { verification, .. }
            | Self::ContactChange { verification, .. }
            | Self::StepUp { verification, .. } => *verification = id,
        }
        self
    }

    fn verification(&self) -> Option<VerificationId> {
        match self {
            Self::Registration { pending, .. } => pending.as_ref().map(|p| p.verification),
            Self::Recovery { verification, .. } => *verification,
            Self::Login { verification, .. }
            | Self::ContactChange { verification, .. }
            | Self::StepUp { verification, .. } => Some(*verification),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingRegistration {
    email: Option<Email>,
    phone: Option<MobileNumber>,
    password_hash: String,
    verification: VerificationId,
}

/// A flow token (`gbf_` and 64 hex digits) and the digest it is stored by.
fn new_flow_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("gbf_{}", gerbang_domain::account::hex(&bytes));
    let digest = flow_digest(&token);
    (token, digest)
}

fn flow_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The participant-facing account service; cheap to clone.
#[derive(Clone)]
pub struct AccountService<S> {
    store: S,
    engine: VerificationEngine<S>,
    hashing: Arc<PasswordHashing>,
    captcha: CaptchaGate,
    clock: Arc<dyn Clock>,
    settings: Arc<AccountSettings>,
    /// Where participants are looked up; `None`: the store's own registry.
    registry: Option<Arc<dyn ParticipantLookup>>,
}

/// The participant registry the flows identify people in (the embedded one, or the membership API
/// behind `registry.source`), implemented by the binary over `gerbang-registry`.
pub trait ParticipantLookup: Send + Sync {
    fn find<'a>(
        &'a self,
        key: ParticipantKey<'a>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Option<Participant>, AccountError>> + Send + 'a,
        >,
    >;
}

impl<S> std::fmt::Debug for AccountService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<S: Store> AccountService<S> {
    pub fn new(
        engine: VerificationEngine<S>,
        hashing: Arc<PasswordHashing>,
        captcha: CaptchaGate,
        clock: Arc<dyn Clock>,
        settings: AccountSettings,
    ) -> Self {
        Self {
            store: engine.store().clone(),
            engine,
            hashing,
            captcha,
            clock,
            settings: Arc::new(settings),
            registry: None,
        }
    }

    /// Looks participants up in `registry` instead of the store's own.
    pub fn with_registry(mut self, registry: Arc<dyn ParticipantLookup>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The verification engine the flows send their codes through.
    pub fn engine(&self) -> &VerificationEngine<S> {
        &self.engine
    }

    pub fn settings(&self) -> &AccountSettings {
        &self.settings
    }

    pub fn captcha(&self) -> &CaptchaGate {
        &self.captcha
    }

    pub fn hashing(&self) -> &PasswordHashing {
        &self.hashing
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    // ----- registration -----

    /// Registration step 1: NIK or card number, birth date and captcha → the masked name.
    pub async fn identify(
        &self,
        identifier: &str,
        birth_date: NaiveDate,
        captcha: Option<CaptchaAnswer<'_>>,
        ip: Option<IpAddr>,
    ) -> Result<Identified, AccountError> {
        if self.settings.captcha_on_registration {
            self.captcha.judge(captcha, &self.store).await?;
        }
        let identifier = Identifier::parse(identifier, Accepted::Numbers)?;
        self.count_lookup(ip, Some(&identifier)).await?;
        let participant = match identifier {
            Identifier::Nik(nik) => self.participant(ParticipantKey::Nik(&nik)).await?,
            Identifier::CardNumber(card) => {
                self.participant(ParticipantKey::CardNumber(&card)).await?
            }
            Identifier::Kpj(kpj) => self.participant(ParticipantKey::KpjNumber(&kpj)).await?,
            Identifier::Email(_) => {
                return Err(AccountError::IdentifierInvalid {
                    email_accepted: false,
                });
            }
        }
        // A wrong birth date reads like an unknown NIK: the NIK alone tells nothing.
        .filter(|participant| participant.birth_date == birth_date)
        .ok_or(AccountError::ParticipantNotFound)?;
        if participant.status != ParticipantStatus::Active {
            return Err(AccountError::ParticipantInactive);
        }
        if self
            .store
            .find_account(AccountKey::Nik(&participant.nik))
            .await?
            .is_some()
        {
            return Err(AccountError::AlreadyRegistered);
        }
        let (flow, digest) = new_flow_token();
        let expires_at = self.now() + self.settings.flow_lifetime;
        self.put_flow(
            digest,
            &FlowState::Registration {
                nik: participant.nik.clone(),
                card_number: participant.card_number.clone(),
                birth_date: participant.birth_date,
                pending: None,
            },
            expires_at,
        )
        .await?;
        Ok(Identified {
            flow,
            masked_name: participant.full_name.masked(),
            expires_at,
        })
    }

    /// Registration step 2: contact and password → a code to the chosen channel.
    pub async fn register_contact(
        &self,
        flow: &str,
        request: ContactAndPassword,
    ) -> Result<CodeSent, AccountError> {
        let (digest, state, expires_at) = self.flow(flow).await?;
        let FlowState::Registration {
            nik,
            card_number,
            birth_date,
            ..
        } = state
        else {
            return Err(AccountError::FlowMismatch);
        };
        if request.email.is_none() && request.phone.is_none() {
            return Err(AccountError::ContactMissing);
        }
        if request.password.expose_secret() != request.confirmation.expose_secret() {
            return Err(AccountError::PasswordsDiffer);
        }
        self.settings
            .password
            .check(
                request.password.expose_secret(),
                PersonalFacts {
                    nik: Some(&nik),
                    card: Some(&card_number),
                    birth_date: Some(birth_date),
                },
            )
            .map_err(AccountError::WeakPassword)?;
        if let Some(email) = &request.email
            && self
                .store
                .find_account(AccountKey::Email(email))
                .await?
                .is_some()
        {
            return Err(AccountError::EmailTaken);
        }
        if let Some(phone) = &request.phone
            && self
                .store
                .find_account(AccountKey::Phone(phone))
                .await?
                .is_some()
        {
            return Err(AccountError::PhoneTaken);
        }
        let channel = request
            .channel
            .unwrap_or(self.settings.registration_channel);
        let destination = match (channel, &request.email, &request.phone) {
            (Channel::Email, Some(email), _) => Destination::Email(email.clone()),
            (Channel::Sms | Channel::Whatsapp | Channel::Voice, _, Some(phone)) => {
                Destination::Phone(phone.clone())
            }
            // The default channel has nothing to reach: use the contact that was given.
            (_, Some(email), None) if request.channel.is_none() => {
                Destination::Email(email.clone())
            }
            (_, None, Some(phone)) if request.channel.is_none() => {
                Destination::Phone(phone.clone())
            }
            _ => return Err(AccountError::ChannelNotOnFile),
        };
        let channel = match (&destination, channel) {
            (Destination::Email(_), _) => Channel::Email,
            (Destination::Phone(_), Channel::Email) => Channel::Sms,
            (Destination::Phone(_), channel) => channel,
        };
        let password_hash = self.hashing.hash(&request.password).await?;
        let mut start =
            StartRequest::new(ACCOUNTS_CLIENT, Purpose::Registration, channel, destination);
        start.locale = request.locale;
        start.subject = Subject {
            account: None,
            nik: Some(nik.clone()),
        };
        let verification = self.engine.start(start).await?;
        self.put_flow(
            digest,
            &FlowState::Registration {
                nik,
                card_number,
                birth_date,
                pending: Some(PendingRegistration {
                    email: request.email,
                    phone: request.phone,
                    password_hash,
                    verification: verification.id,
                }),
            },
            expires_at,
        )
        .await?;
        Ok(CodeSent {
            flow: flow.to_owned(),
            verification,
        })
    }

    /// Registration step 3: the code → an active account.
    pub async fn confirm_registration(
        &self,
        flow: &str,
        code: &str,
    ) -> Result<AccountView, AccountError> {
        let (digest, state, _) = self.flow(flow).await?;
        let FlowState::Registration {
            nik,
            card_number,
            pending: Some(pending),
            ..
        } = state
        else {
            return Err(AccountError::FlowMismatch);
        };
        self.check_code(pending.verification, code, None).await?;
        let now = self.now();
        let account = Account {
            nik,
            card_number,
            email: pending.email,
            phone: pending.phone,
            password_hash: pending.password_hash,
            guard: LoginGuard::default(),
            devices: TrustedDevices::default(),
            phone_changed_at: None,
            created_at: now,
        };
        let created = self
            .store
            .create_account(&account, vec![AccountEvent::new(now, "registered", "")])
            .await?
            .map_err(taken)?;
        self.store.delete_flow(&digest).await?;
        Ok(self.view(&created))
    }

    // ----- login and sessions -----

    /// A password login. An unknown identifier costs one password check, like a wrong password,
    /// and gets the same answer; a lock is told only to a caller who typed the right password.
    pub async fn login(&self, request: LoginRequest) -> Result<LoginOutcome, AccountError> {
        let device = DeviceDigest::of(&request.device_id).map_err(AccountError::Device)?;
        // By address only: a limit per identifier would let anyone lock a participant out, which
        // the lockout already weighs against guessing.
        self.count_lookup(request.ip, None).await?;
        let stored = match Identifier::parse(&request.identifier, Accepted::NumbersOrEmail) {
            Ok(identifier) => self.account_by(&identifier).await?,
            Err(_) => None,
        };
        let Some(mut stored) = stored else {
            // Equal cost: hash against the dummy.
            self.hashing.verify(None, &request.password).await?;
            return Err(AccountError::InvalidCredentials);
        };
        let check = self
            .hashing
            .verify(Some(&stored.account.password_hash), &request.password)
            .await?;
        let now = self.now();
        if let Err(locked) = stored.account.guard.check(now) {
            return Err(match check {
                PasswordCheck::Match { .. } => AccountError::Locked(LockNotice {
                    locked,
                    zone: stored.account.time_zone(),
                }),
                PasswordCheck::Mismatch => AccountError::InvalidCredentials,
            });
        }
        let rehashed = match check {
            PasswordCheck::Mismatch => {
                let policy = self.settings.lockout.clone();
                self.change(&mut stored, now, move |account| {
                    let event = account.guard.record_failure(now, &policy);
                    event.map(|e| lock_event(e, now)).into_iter().collect()
                })
                .await?;
                return Err(AccountError::InvalidCredentials);
            }
            PasswordCheck::Match { rehashed } => rehashed,
        };
        let trusted = stored.account.devices.is_trusted(&device);
        // A trusted device's last-seen time is kept to the hour: writing the sealed account on
        // every login would cost a durable write for a timestamp (docs/benchmarks.md).
        let seen_long_ago = stored
            .account
            .devices
            .list()
            .into_iter()
            .find(|d| d.digest == device)
            .is_some_and(|d| now - d.last_seen_at >= LAST_SEEN_PRECISION);
        let needs_write =
            rehashed.is_some() || stored.account.guard.consecutive_failures() > 0 || seen_long_ago;
        if needs_write {
            let policy = self.settings.lockout.clone();
            self.change(&mut stored, now, move |account| {
                account.guard.record_success(now, &policy);
                if let Some(hash) = &rehashed {
                    account.password_hash = hash.clone();
                }
                account.devices.seen(&device, now);
                Vec::new()
            })
            .await?;
        }
        if trusted {
            return Ok(LoginOutcome::Session(
                self.issue_session(&stored, device).await?,
            ));
        }
        let (channel, destination) = preferred_contact(&stored.account)?;
        let mut start = StartRequest::new(
            ACCOUNTS_CLIENT,
            Purpose::LoginNewDevice,
            channel,
            destination,
        );
        start.locale = request.locale;
        start.subject = subject_of(&stored);
        start.origin = Origin {
            ip: None,
            device: Some(device.short()),
        };
        let verification = self.engine.start(start).await?;
        let (flow, digest) = new_flow_token();
        self.put_flow(
            digest,
            &FlowState::Login {
                account: stored.id,
                device,
                device_name: request.device_name,
                verification: verification.id,
            },
            now + self.settings.flow_lifetime,
        )
        .await?;
        Ok(LoginOutcome::StepUp(CodeSent { flow, verification }))
    }

    /// The new-device code → the device is trusted and a session issued.
    pub async fn confirm_login(
        &self,
        flow: &str,
        code: &str,
    ) -> Result<SessionIssued, AccountError> {
        let (digest, state, _) = self.flow(flow).await?;
        let FlowState::Login {
            account,
            device,
            device_name,
            verification,
        } = state
        else {
            return Err(AccountError::FlowMismatch);
        };
        self.check_code(verification, code, None).await?;
        let mut stored = self.account(account).await?;
        let now = self.now();
        self.change(&mut stored, now, move |account| {
            account.devices.trust(device, &device_name, now);
            vec![AccountEvent::new(now, "device_trusted", device.short())]
        })
        .await?;
        self.store.delete_flow(&digest).await?;
        self.issue_session(&stored, device).await
    }

    /// The session of a bearer token, if it is live; records its use.
    pub async fn session(
        &self,
        token: &str,
    ) -> Result<(StoredSession, StoredAccount), AccountError> {
        let token = SessionToken::parse(token).ok_or(AccountError::SessionInvalid)?;
        let mut session = self
            .store
            .find_session(&token.digest())
            .await?
            .ok_or(AccountError::SessionInvalid)?;
        let now = self.now();
        let before = session.life.last_used_at;
        session
            .life
            .touch(now, &self.settings.sessions)
            .map_err(|_| AccountError::SessionInvalid)?;
        let stored = self
            .store
            .find_account(AccountKey::Id(session.account))
            .await?
            .ok_or(AccountError::SessionInvalid)?;
        // A device revoked from the list ends its sessions too.
        if !stored.account.devices.is_trusted(&session.device) {
            return Err(AccountError::SessionInvalid);
        }
        if session.life.last_used_at - before >= TOUCH_EVERY {
            self.store.save_session(&session).await?;
        }
        Ok((session, stored))
    }

    pub fn session_view(&self, session: &StoredSession, stored: &StoredAccount) -> SessionView {
        SessionView {
            account: self.view(stored),
            device: session.device,
            started_at: session.life.started_at,
            expires_at: session.life.expires_at(&self.settings.sessions),
            step_ups: session.life.step_ups.clone(),
        }
    }

    /// Extends a live session's idle expiry (its absolute end stays).
    pub async fn refresh(&self, token: &str) -> Result<SessionView, AccountError> {
        let (session, stored) = self.session(token).await?;
        self.store.save_session(&session).await?;
        Ok(self.session_view(&session, &stored))
    }

    pub async fn logout(&self, token: &str) -> Result<(), AccountError> {
        let (mut session, _) = self.session(token).await?;
        session.life.revoke(self.now());
        self.store.save_session(&session).await?;
        Ok(())
    }

    pub async fn devices(&self, token: &str) -> Result<Vec<DeviceView>, AccountError> {
        let (session, stored) = self.session(token).await?;
        Ok(stored
            .account
            .devices
            .list()
            .into_iter()
            .map(|device| DeviceView {
                key: device.digest.key(),
                name: device.name.clone(),
                trusted_at: device.trusted_at,
                last_seen_at: device.last_seen_at,
                current: device.digest == session.device,
            })
            .collect())
    }

    /// Forgets a trusted device and ends its sessions; returns how many sessions ended.
    pub async fn revoke_device(&self, token: &str, key: &str) -> Result<u64, AccountError> {
        let (_, mut stored) = self.session(token).await?;
        let digest = stored
            .account
            .devices
            .list()
            .into_iter()
            .map(|device| device.digest)
            .find(|digest| digest.key() == key)
            .ok_or(AccountError::DeviceNotFound)?;
        let now = self.now();
        self.change(&mut stored, now, move |account| {
            account.devices.revoke(&digest);
            vec![AccountEvent::new(now, "device_revoked", digest.short())]
        })
        .await?;
        Ok(self
            .store
            .revoke_sessions(stored.id, Some(digest), now)
            .await?)
    }

    /// Staff sign every device of the account out (a lost or stolen phone reported to the call
    /// centre or at a branch): every trusted device forgotten, every session ended, recorded as
    /// `devices_revoked` by `actor` with `detail` (the reason) under `ticket`. Returns the devices
    /// and sessions ended.
    pub async fn revoke_all_devices_as(
        &self,
        nik: &Nik,
        actor: String,
        detail: String,
        ticket: Option<String>,
    ) -> Result<(usize, u64), AccountError> {
        let mut stored = self
            .store
            .find_account(AccountKey::Nik(nik))
            .await?
            .ok_or(AccountError::AccountNotFound)?;
        let now = self.now();
        let mut devices = 0;
        self.change(&mut stored, now, |account| {
            devices = account.devices.revoke_all();
            vec![
                AccountEvent::new(
                    now,
                    "devices_revoked",
                    format!("{devices} devices; {detail}"),
                )
                .by(actor.clone())
                .under(ticket.clone()),
            ]
        })
        .await?;
        let sessions = self.store.revoke_sessions(stored.id, None, now).await?;
        self.tell_of_staff_action(&stored, StaffAction::DevicesSignedOut, now)
            .await?;
        Ok((devices, sessions))
    }

    // ----- recovery -----

    /// Recovery step 1: NIK, card number, KPJ number or email, the birth date and the captcha →
    /// the channels on file, masked. Someone who knows only an identifier learns nothing: an
    /// unknown identifier, a wrong birth date and a participant without an account get the same
    /// answer after the same work (one account lookup and one registry lookup each).
    pub async fn start_recovery(
        &self,
        identifier: &str,
        birth_date: NaiveDate,
        captcha: Option<CaptchaAnswer<'_>>,
        ip: Option<IpAddr>,
    ) -> Result<RecoveryOptions, AccountError> {
        if self.settings.captcha_on_recovery {
            self.captcha.judge(captcha, &self.store).await?;
        }
        let identifier = Identifier::parse(identifier, Accepted::NumbersOrEmail)?;
        self.count_lookup(ip, Some(&identifier)).await?;
        let (participant, stored) = self.recovery_candidate(&identifier).await?;
        let stored = match (participant, stored) {
            (Some(participant), Some(stored))
                if participant.birth_date == birth_date
                    && participant.nik == stored.account.nik =>
            {
                stored
            }
            _ => return Err(AccountError::RecoveryUnmatched),
        };
        let channels = recovery_channels(&stored.account);
        let (flow, digest) = new_flow_token();
        self.put_flow(
            digest,
            &FlowState::Recovery {
                account: stored.id,
                verification: None,
            },
            self.now() + self.settings.flow_lifetime,
        )
        .await?;
        Ok(RecoveryOptions { flow, channels })
    }

    /// Recovery step 2: the chosen channel → a code.
    pub async fn send_recovery(
        &self,
        flow: &str,
        channel: Channel,
        locale: Locale,
    ) -> Result<CodeSent, AccountError> {
        let (digest, state, expires_at) = self.flow(flow).await?;
        let FlowState::Recovery { account, .. } = state else {
            return Err(AccountError::FlowMismatch);
        };
        let stored = self.account(account).await?;
        let destination = match channel {
            Channel::Email => stored.account.email.clone().map(Destination::Email),
            _ => stored.account.phone.clone().map(Destination::Phone),
        }
        .ok_or(AccountError::ChannelNotOnFile)?;
        let mut start = StartRequest::new(ACCOUNTS_CLIENT, Purpose::Recovery, channel, destination);
        start.locale = locale;
        start.subject = subject_of(&stored);
        let verification = self.engine.start(start).await?;
        self.put_flow(
            digest,
            &FlowState::Recovery {
                account,
                verification: Some(verification.id),
            },
            expires_at,
        )
        .await?;
        Ok(CodeSent {
            flow: flow.to_owned(),
            verification,
        })
    }

    /// Recovery step 3: the code and a new password → every session and trusted device revoked.
    pub async fn complete_recovery(
        &self,
        flow: &str,
        code: &str,
        password: SecretString,
        confirmation: SecretString,
    ) -> Result<Recovered, AccountError> {
        let (digest, state, _) = self.flow(flow).await?;
        let FlowState::Recovery {
            account,
            verification: Some(verification),
        } = state
        else {
            return Err(AccountError::FlowMismatch);
        };
        let mut stored = self.account(account).await?;
        // The password is judged before the code is spent: a weak one costs no code.
        if password.expose_secret() != confirmation.expose_secret() {
            return Err(AccountError::PasswordsDiffer);
        }
        let birth_date = self
            .participant(ParticipantKey::Nik(&stored.account.nik))
            .await?
            .map(|p| p.birth_date);
        self.settings
            .password
            .check(
                password.expose_secret(),
                PersonalFacts {
                    nik: Some(&stored.account.nik),
                    card: Some(&stored.account.card_number),
                    birth_date,
                },
            )
            .map_err(AccountError::WeakPassword)?;
        self.check_code(verification, code, None).await?;
        let hash = self.hashing.hash(&password).await?;
        let now = self.now();
        let mut devices_revoked = 0;
        self.change(&mut stored, now, |account| {
            account.password_hash = hash.clone();
            account.guard.recovered();
            devices_revoked = account.devices.revoke_all();
            vec![AccountEvent::new(now, "password_reset", "")]
        })
        .await?;
        let sessions_revoked = self.store.revoke_sessions(stored.id, None, now).await?;
        self.store.delete_flow(&digest).await?;
        Ok(Recovered {
            sessions_revoked,
            devices_revoked,
        })
    }

    // ----- contact change -----

    /// A new phone number or email → a code to the old one of the same kind, to authorise it.
    pub async fn start_contact_change(
        &self,
        token: &str,
        to: Destination,
        locale: Locale,
    ) -> Result<CodeSent, AccountError> {
        let (session, stored) = self.session(token).await?;
        let taken = match &to {
            Destination::Phone(phone) => {
                if stored.account.phone.as_ref() == Some(phone) {
                    return Err(AccountError::ContactUnchanged);
                }
                self.store.find_account(AccountKey::Phone(phone)).await?
            }
            Destination::Email(email) => {
                if stored.account.email.as_ref() == Some(email) {
                    return Err(AccountError::ContactUnchanged);
                }
                self.store.find_account(AccountKey::Email(email)).await?
            }
        };
        if taken.is_some() {
            return Err(match to {
                Destination::Phone(_) => AccountError::PhoneTaken,
                Destination::Email(_) => AccountError::EmailTaken,
            });
        }
        // The old contact of the same kind authorises; without one, the other kind does.
        let old = match (&to, &stored.account.phone, &stored.account.email) {
            (Destination::Phone(_), Some(phone), _) => {
                (Channel::Sms, Destination::Phone(phone.clone()))
            }
            (Destination::Email(_), _, Some(email)) => {
                (Channel::Email, Destination::Email(email.clone()))
            }
            _ => preferred_contact(&stored.account)?,
        };
        let verification = self
            .start_for(&stored, Purpose::ContactChangeAuthorisation, old, locale)
            .await?;
        let (flow, digest) = new_flow_token();
        self.put_flow(
            digest,
            &FlowState::ContactChange {
                account: stored.id,
                session: session.token,
                to,
                verification: verification.id,
                authorised: false,
            },
            self.now() + self.settings.flow_lifetime,
        )
        .await?;
        Ok(CodeSent { flow, verification })
    }

    /// The old contact's code → a code to the new one; the new one's code → the change, the old
    /// contacts told, and after a phone change the cool-off begins.
    pub async fn confirm_contact_change(
        &self,
        token: &str,
        flow: &str,
        code: &str,
        locale: Locale,
    ) -> Result<ContactChangeStep, AccountError> {
        let (session, _) = self.session(token).await?;
        let (digest, state, expires_at) = self.flow(flow).await?;
        let FlowState::ContactChange {
            account,
            session: owner,
            to,
            verification,
            authorised,
        } = state
        else {
            return Err(AccountError::FlowMismatch);
        };
        if owner != session.token {
            return Err(AccountError::FlowMismatch);
        }
        self.check_code(verification, code, None).await?;
        let mut stored = self.account(account).await?;
        if !authorised {
            let channel = match &to {
                Destination::Phone(_) => Channel::Sms,
                Destination::Email(_) => Channel::Email,
            };
            let proof = self
                .start_for(
                    &stored,
                    Purpose::ContactChangeProof,
                    (channel, to.clone()),
                    locale,
                )
                .await?;
            self.put_flow(
                digest,
                &FlowState::ContactChange {
                    account,
                    session: owner,
                    to,
                    verification: proof.id,
                    authorised: true,
                },
                expires_at,
            )
            .await?;
            return Ok(ContactChangeStep::ProveNew(CodeSent {
                flow: flow.to_owned(),
                verification: proof,
            }));
        }
        let now = self.now();
        let old_phone = stored.account.phone.clone();
        let old_email = stored.account.email.clone();
        let new = to.clone();
        self.change(&mut stored, now, move |account| match &new {
            Destination::Phone(phone) => {
                account.phone = Some(phone.clone());
                account.phone_changed_at = Some(now);
                vec![AccountEvent::new(now, "phone_changed", phone.masked())]
            }
            Destination::Email(email) => {
                account.email = Some(email.clone());
                vec![AccountEvent::new(now, "email_changed", email.masked())]
            }
        })
        .await?;
        self.store.delete_flow(&digest).await?;
        // Tell the old contacts, so that a change the participant did not make is noticed.
        let mut notify = Vec::new();
        let text = match &to {
            Destination::Phone(phone) => {
                if let Some(old) = old_phone {
                    notify.push((Channel::Sms, Destination::Phone(old)));
                }
                if let Some(email) = old_email {
                    notify.push((Channel::Email, Destination::Email(email)));
                }
                notice_text(
                    &self.engine.settings().brand.name,
                    locale,
                    ("nomor HP", "mobile number"),
                    &phone.masked(),
                    &stored.account,
                    now,
                    &self.settings.cool_off,
                )
            }
            Destination::Email(email) => {
                if let Some(old) = old_email {
                    notify.push((Channel::Email, Destination::Email(old)));
                }
                if let Some(phone) = stored.account.phone.clone() {
                    notify.push((Channel::Sms, Destination::Phone(phone)));
                }
                notice_text(
                    &self.engine.settings().brand.name,
                    locale,
                    ("email", "email"),
                    &email.masked(),
                    &stored.account,
                    now,
                    &self.settings.cool_off,
                )
            }
        };
        self.engine.notify(verification, notify, text).await?;
        Ok(ContactChangeStep::Changed(self.view(&stored)))
    }

    // ----- step-up -----

    /// A code bound to a sensitive action and its details, to the phone on file. A bank-account
    /// change or benefit claim is held during the cool-off after a phone change.
    pub async fn start_step_up(
        &self,
        token: &str,
        action: SensitiveAction,
        details: ActionDetails,
        hint: Option<String>,
        locale: Locale,
    ) -> Result<CodeSent, AccountError> {
        let (session, stored) = self.session(token).await?;
        self.hold_during_cool_off(action, &stored.account)?;
        let (channel, destination) = preferred_contact(&stored.account)?;
        let mut start = StartRequest::new(ACCOUNTS_CLIENT, Purpose::StepUp, channel, destination);
        start.action = Some(action);
        let shown = details.entries().clone();
        start.details = details;
        start.action_hint = hint;
        start.locale = locale;
        start.subject = subject_of(&stored);
        let verification = self.engine.start(start).await?;
        let (flow, digest) = new_flow_token();
        self.put_flow(
            digest,
            &FlowState::StepUp {
                account: stored.id,
                session: session.token,
                action,
                verification: verification.id,
                details: shown,
            },
            self.now() + self.settings.flow_lifetime,
        )
        .await?;
        Ok(CodeSent { flow, verification })
    }

    /// The step-up code with the same details → recorded on the session for introspection.
    pub async fn confirm_step_up(
        &self,
        token: &str,
        flow: &str,
        code: &str,
        details: ActionDetails,
    ) -> Result<StepUpDone, AccountError> {
        let (mut session, stored) = self.session(token).await?;
        let (digest, state, _) = self.flow(flow).await?;
        let FlowState::StepUp {
            session: owner,
            action,
            verification,
            ..
        } = state
        else {
            return Err(AccountError::FlowMismatch);
        };
        if owner != session.token {
            return Err(AccountError::FlowMismatch);
        }
        // The cool-off may have begun since the code was sent.
        self.hold_during_cool_off(action, &stored.account)?;
        self.check_code(verification, code, Some((action, details)))
            .await?;
        let now = self.now();
        session.life.record_step_up(action.as_str(), now);
        self.store.save_session(&session).await?;
        self.store.delete_flow(&digest).await?;
        Ok(StepUpDone { action, at: now })
    }

    // ----- for other services -----

    /// Whether `token` is a live session, whose, on which device, and (for `action`) whether its
    /// last step-up is within `max_age` (default: the configured window). Reading only: it does not
    /// count as a use of the session.
    pub async fn introspect(
        &self,
        token: &str,
        action: Option<&str>,
        max_age: Option<Duration>,
    ) -> Result<Introspection, AccountError> {
        let inactive = Introspection {
            active: false,
            session: None,
            nik: None,
            step_up_fresh: None,
        };
        let Some(token) = SessionToken::parse(token) else {
            return Ok(inactive);
        };
        let Some(session) = self.store.find_session(&token.digest()).await? else {
            return Ok(inactive);
        };
        let now = self.now();
        if session.life.check(now, &self.settings.sessions).is_err() {
            return Ok(inactive);
        }
        let Some(stored) = self
            .store
            .find_account(AccountKey::Id(session.account))
            .await?
        else {
            return Ok(inactive);
        };
        if !stored.account.devices.is_trusted(&session.device) {
            return Ok(inactive);
        }
        let within = max_age.unwrap_or(self.settings.step_up_window);
        // A step-up proved the phone on file then; after a phone change it proves nothing about
        // the new one, and an action held during the cool-off is not fresh until it ends.
        let step_up_fresh = action.map(|action| {
            let before_phone_change = session.life.step_ups.get(action).is_some_and(|at| {
                stored
                    .account
                    .phone_changed_at
                    .is_some_and(|changed| *at <= changed)
            });
            let held = SensitiveAction::parse(action)
                .is_ok_and(|action| self.hold_during_cool_off(action, &stored.account).is_err());
            !before_phone_change && !held && session.life.stepped_up(action, now, within)
        });
        Ok(Introspection {
            active: true,
            nik: Some(stored.account.nik.clone()),
            session: Some(self.session_view(&session, &stored)),
            step_up_fresh,
        })
    }

    /// A flow's current code again (or over another channel), under the countdown and limits.
    /// When wrong entries spent the code, a fresh one continues the same flow (still under the
    /// countdown and the flow's cap), so the participant is not sent back to the captcha.
    pub async fn resend(
        &self,
        flow: &str,
        channel: Option<Channel>,
    ) -> Result<VerificationView, AccountError> {
        let (digest, state, expires_at) = self.flow(flow).await?;
        let id = state.verification().ok_or(AccountError::FlowMismatch)?;
        // Another channel reaches the same participant: their other contact on file.
        let destination = match (&state, channel) {
            (_, None) => None,
            (
                FlowState::Registration {
                    pending: Some(p), ..
                },
                Some(channel),
            ) => match channel {
                Channel::Email => Some(
                    p.email
                        .clone()
                        .map(Destination::Email)
                        .ok_or(AccountError::ChannelNotOnFile)?,
                ),
                _ => Some(
                    p.phone
                        .clone()
                        .map(Destination::Phone)
                        .ok_or(AccountError::ChannelNotOnFile)?,
                ),
            },
            (FlowState::ContactChange { .. }, Some(_)) => None,
            (
                FlowState::Login { account, .. }
                | FlowState::Recovery { account, .. }
                | FlowState::StepUp { account, .. },
                Some(channel),
            ) => {
                let stored = self.account(*account).await?;
                Some(
                    match channel {
                        Channel::Email => stored.account.email.map(Destination::Email),
                        _ => stored.account.phone.map(Destination::Phone),
                    }
                    .ok_or(AccountError::ChannelNotOnFile)?,
                )
            }
            (FlowState::Registration { .. }, Some(_)) => None,
        };
        let view = self
            .engine
            .renew(ResendRequest {
                client: ACCOUNTS_CLIENT.into(),
                id,
                channel,
                destination,
                origin: Origin::default(),
            })
            .await?;
        if view.id != id {
            self.put_flow(digest, &state.continued_with(view.id), expires_at)
                .await?;
        }
        Ok(view)
    }

    /// The flow `flow` as its holder may see it; `FlowNotFound` once it expired or never was.
    pub async fn flow_view(&self, flow: &str) -> Result<FlowView, AccountError> {
        let (_, state, expires_at) = self.flow(flow).await?;
        let (kind, action, authorised) = match &state {
            FlowState::Registration { .. } => (FlowKind::Registration, None, false),
            FlowState::Login { .. } => (FlowKind::Login, None, false),
            FlowState::Recovery { .. } => (FlowKind::Recovery, None, false),
            FlowState::ContactChange { authorised, .. } => {
                (FlowKind::ContactChange, None, *authorised)
            }
            FlowState::StepUp { action, .. } => (FlowKind::StepUp, Some(*action), false),
        };
        let details = match &state {
            FlowState::StepUp { details, .. } => details.clone(),
            _ => BTreeMap::new(),
        };
        let masked_name = match &state {
            FlowState::Registration { nik, .. } => self
                .participant(ParticipantKey::Nik(nik))
                .await?
                .map(|participant| participant.full_name.masked()),
            _ => None,
        };
        // The channels another code of this flow can go to: those whose contact is on file (a
        // contact change's codes go only to the contact each step proves).
        let reachable = |phone: bool, email: bool| {
            let mut channels = Vec::new();
            if phone {
                channels.extend([Channel::Sms, Channel::Whatsapp, Channel::Voice]);
            }
            if email {
                channels.push(Channel::Email);
            }
            channels
        };
        let (channels, time_zone, on_file) = match &state {
            FlowState::Registration { nik, pending, .. } => (
                Vec::new(),
                IndonesianTimeZone::of_province(nik.province()).unwrap_or(IndonesianTimeZone::Wib),
                pending
                    .as_ref()
                    .map(|p| reachable(p.phone.is_some(), p.email.is_some()))
                    .unwrap_or_default(),
            ),
            FlowState::Recovery {
                account,
                verification,
            } => {
                let stored = self.account(*account).await?;
                let channels = match verification {
                    None => recovery_channels(&stored.account),
                    Some(_) => Vec::new(),
                };
                let on_file = reachable(
                    stored.account.phone.is_some(),
                    stored.account.email.is_some(),
                );
                (channels, stored.account.time_zone(), on_file)
            }
            FlowState::ContactChange { account, .. } => (
                Vec::new(),
                self.account(*account).await?.account.time_zone(),
                Vec::new(),
            ),
            FlowState::Login { account, .. } | FlowState::StepUp { account, .. } => {
                let stored = self.account(*account).await?;
                let on_file = reachable(
                    stored.account.phone.is_some(),
                    stored.account.email.is_some(),
                );
                (Vec::new(), stored.account.time_zone(), on_file)
            }
        };
        let (verification, outlook) = match state.verification() {
            Some(id) => (
                Some(self.engine.status(ACCOUNTS_CLIENT, id).await?),
                Some(self.engine.outlook(ACCOUNTS_CLIENT, id).await?),
            ),
            None => (None, None),
        };
        Ok(FlowView {
            kind,
            expires_at,
            masked_name,
            verification,
            outlook,
            action,
            details,
            authorised,
            channels,
            time_zone,
            on_file,
        })
    }

    /// A branch officer lifts a lock after checking the participant's identity.
    pub async fn lift_lock(&self, nik: &Nik, officer: &str) -> Result<bool, AccountError> {
        self.lift_lock_as(nik, actor::operator(officer), format!("by {officer}"), None)
            .await
    }

    /// Lifts a lock on behalf of `actor` (`operator:NAME`, `staff:NAME`), recording `detail`
    /// (the reason) under complaint ticket `ticket`; `false` when the account was not locked.
    pub async fn lift_lock_as(
        &self,
        nik: &Nik,
        actor: String,
        detail: String,
        ticket: Option<String>,
    ) -> Result<bool, AccountError> {
        let mut stored = self
            .store
            .find_account(AccountKey::Nik(nik))
            .await?
            .ok_or(AccountError::AccountNotFound)?;
        let now = self.now();
        let mut lifted = false;
        self.change(&mut stored, now, |account| {
            lifted = account.guard.lift().is_some();
            if lifted {
                vec![
                    AccountEvent::new(now, "lock_lifted", detail.clone())
                        .by(actor.clone())
                        .under(ticket.clone()),
                ]
            } else {
                Vec::new()
            }
        })
        .await?;
        if lifted {
            self.tell_of_staff_action(&stored, StaffAction::LockLifted, now)
                .await?;
        }
        Ok(lifted)
    }

    /// Tells the participant, on every contact on file, what staff did to their account, so that
    /// an action they did not ask for is noticed (SPEC §6). The notice goes through the outbox
    /// after every waiting code, under an id of its own (it belongs to no verification).
    async fn tell_of_staff_action(
        &self,
        stored: &StoredAccount,
        action: StaffAction,
        now: DateTime<Utc>,
    ) -> Result<(), AccountError> {
        let mut to = Vec::new();
        if let Some(phone) = &stored.account.phone {
            to.push((Channel::Sms, Destination::Phone(phone.clone())));
        }
        if let Some(email) = &stored.account.email {
            to.push((Channel::Email, Destination::Email(email.clone())));
        }
        let brand = &self.engine.settings().brand.name;
        let at = stored.account.time_zone().format(now, false);
        let text = match action {
            StaffAction::LockLifted => format!(
                "{brand}: kunci akun Anda dibuka oleh petugas pada {at}. Bila Anda tidak memintanya, hubungi Care Center 165."
            ),
            StaffAction::DevicesSignedOut => format!(
                "{brand}: semua perangkat akun Anda dikeluarkan oleh petugas pada {at}. Masuk lagi dengan kode OTP. Bila Anda tidak memintanya, hubungi Care Center 165."
            ),
        };
        let id = VerificationId::new(now, &mut rand::rng());
        self.engine.notify(id, to, text).await?;
        Ok(())
    }

    /// The account's audit trail.
    pub async fn events(&self, nik: &Nik) -> Result<Vec<AccountEvent>, AccountError> {
        let stored = self
            .store
            .find_account(AccountKey::Nik(nik))
            .await?
            .ok_or(AccountError::AccountNotFound)?;
        Ok(self.store.account_events(stored.id).await?)
    }

    // ----- helpers -----

    /// Counts a lookup against `lookup_rules` by address and identifier.
    async fn count_lookup(
        &self,
        ip: Option<IpAddr>,
        identifier: Option<&Identifier>,
    ) -> Result<(), AccountError> {
        let mut keys = Vec::new();
        if let Some(ip) = ip {
            keys.push(RateKey::new(KeyKind::Ip, format!("lookup/{ip}")));
        }
        match identifier {
            Some(Identifier::Nik(nik)) => keys.push(RateKey::new(
                KeyKind::Nik,
                format!("lookup/{}", nik.as_str()),
            )),
            Some(Identifier::CardNumber(card)) => keys.push(RateKey::new(
                KeyKind::Nik,
                format!("lookup/card/{}", card.as_str()),
            )),
            Some(Identifier::Kpj(kpj)) => keys.push(RateKey::new(
                KeyKind::Nik,
                format!("lookup/kpj/{}", kpj.as_str()),
            )),
            // Stored as a keyed digest, like every rate key.
            Some(Identifier::Email(email)) => keys.push(RateKey::new(
                KeyKind::Nik,
                format!("lookup/email/{}", email.as_str().to_lowercase()),
            )),
            None => {}
        }
        self.engine
            .count_attempt(self.settings.lookup_rules.clone(), keys)
            .await
            .map_err(|error| match error {
                EngineError::RateLimited { until, .. } => AccountError::TooManyAttempts { until },
                other => AccountError::Engine(other),
            })
    }

    /// A participant from the configured registry, or from the store's own when none is set.
    async fn participant(
        &self,
        key: ParticipantKey<'_>,
    ) -> Result<Option<Participant>, AccountError> {
        match &self.registry {
            Some(registry) => registry.find(key).await,
            None => Ok(self
                .store
                .find_participant(key)
                .await?
                .map(|stored| stored.participant)),
        }
    }

    /// A bank-account change or benefit claim waits out the cool-off after a phone change (the
    /// SIM-swap defence); other actions go ahead.
    fn hold_during_cool_off(
        &self,
        action: SensitiveAction,
        account: &Account,
    ) -> Result<(), AccountError> {
        if !matches!(
            action,
            SensitiveAction::BankAccountChange | SensitiveAction::BenefitClaim
        ) {
            return Ok(());
        }
        self.settings
            .cool_off
            .check(account.phone_changed_at, self.now())
            .map_err(|cooling| AccountError::CoolingOff(cooling.notice(account.time_zone())))
    }

    pub fn view(&self, stored: &StoredAccount) -> AccountView {
        let now = self.now();
        AccountView {
            id: stored.public_id.clone(),
            nik_masked: stored.account.nik.masked(),
            email_masked: stored.account.email.as_ref().map(Email::masked),
            phone_masked: stored.account.phone.as_ref().map(MobileNumber::masked),
            created_at: stored.account.created_at,
            cooling_off_until: self
                .settings
                .cool_off
                .check(stored.account.phone_changed_at, now)
                .err()
                .map(|cooling| cooling.until),
        }
    }

    async fn account_by(
        &self,
        identifier: &Identifier,
    ) -> Result<Option<StoredAccount>, AccountError> {
        let by_number = |participant: Option<Participant>| async move {
            match participant {
                Some(participant) => {
                    self.store
                        .find_account(AccountKey::Nik(&participant.nik))
                        .await
                }
                None => Ok(None),
            }
        };
        Ok(match identifier {
            Identifier::Nik(nik) => self.store.find_account(AccountKey::Nik(nik)).await?,
            Identifier::Email(email) => self.store.find_account(AccountKey::Email(email)).await?,
            Identifier::CardNumber(card) => {
                by_number(self.participant(ParticipantKey::CardNumber(card)).await?).await?
            }
            Identifier::Kpj(kpj) => {
                by_number(self.participant(ParticipantKey::KpjNumber(kpj)).await?).await?
            }
        })
    }

    /// The participant and the account an identifier names, each looked up exactly once whether
    /// or not the other exists (a stand-in NIK takes the missing one's place), so that the time
    /// an answer takes does not tell which of the two exists.
    async fn recovery_candidate(
        &self,
        identifier: &Identifier,
    ) -> Result<(Option<Participant>, Option<StoredAccount>), AccountError> {
        let stand_in = Nik::parse(STAND_IN_NIK).ok();
        let account_of = |nik: Option<Nik>| async move {
            match nik.or(stand_in) {
                Some(nik) => self.store.find_account(AccountKey::Nik(&nik)).await,
                None => Ok(None),
            }
        };
        Ok(match identifier {
            Identifier::Nik(nik) => {
                let participant = self.participant(ParticipantKey::Nik(nik)).await?;
                let stored = self.store.find_account(AccountKey::Nik(nik)).await?;
                (participant, stored)
            }
            Identifier::CardNumber(card) => {
                let participant = self.participant(ParticipantKey::CardNumber(card)).await?;
                let stored = account_of(participant.as_ref().map(|p| p.nik.clone())).await?;
                (participant, stored)
            }
            Identifier::Kpj(kpj) => {
                let participant = self.participant(ParticipantKey::KpjNumber(kpj)).await?;
                let stored = account_of(participant.as_ref().map(|p| p.nik.clone())).await?;
                (participant, stored)
            }
            Identifier::Email(email) => {
                let stored = self.store.find_account(AccountKey::Email(email)).await?;
                let nik = stored
                    .as_ref()
                    .map(|s| s.account.nik.clone())
                    .or_else(|| Nik::parse(STAND_IN_NIK).ok());
                let participant = match nik {
                    Some(nik) => self.participant(ParticipantKey::Nik(&nik)).await?,
                    None => None,
                };
                (participant, stored)
            }
        })
    }

    async fn account(&self, id: i64) -> Result<StoredAccount, AccountError> {
        self.store
            .find_account(AccountKey::Id(id))
            .await?
            .ok_or(AccountError::FlowNotFound)
    }

    /// Applies `edit` to the account and saves it, re-reading and re-applying when another request
    /// changed it meanwhile. `stored` ends as the saved account.
    async fn change<F>(
        &self,
        stored: &mut StoredAccount,
        now: DateTime<Utc>,
        mut edit: F,
    ) -> Result<(), AccountError>
    where
        F: FnMut(&mut Account) -> Vec<AccountEvent>,
    {
        for _ in 0..SAVE_ATTEMPTS {
            let mut account = stored.account.clone();
            let events = edit(&mut account);
            match self
                .store
                .save_account(stored.id, stored.version, now, &account, events)
                .await?
            {
                Ok(saved) => {
                    *stored = saved;
                    return Ok(());
                }
                Err(AccountRefusal::Taken(clash)) => return Err(taken(clash)),
                Err(AccountRefusal::Stale) => {
                    *stored = self.account(stored.id).await?;
                }
            }
        }
        Err(AccountError::Contended)
    }

    async fn issue_session(
        &self,
        stored: &StoredAccount,
        device: DeviceDigest,
    ) -> Result<SessionIssued, AccountError> {
        let token = SessionToken::generate();
        let session = StoredSession {
            token: token.digest(),
            account: stored.id,
            device,
            life: SessionLife::start(self.now()),
        };
        self.store.create_session(&session).await?;
        Ok(SessionIssued {
            token,
            expires_at: session.life.expires_at(&self.settings.sessions),
            account: self.view(stored),
        })
    }

    async fn start_for(
        &self,
        stored: &StoredAccount,
        purpose: Purpose,
        (channel, destination): (Channel, Destination),
        locale: Locale,
    ) -> Result<VerificationView, AccountError> {
        let mut start = StartRequest::new(ACCOUNTS_CLIENT, purpose, channel, destination);
        start.locale = locale;
        start.subject = subject_of(stored);
        Ok(self.engine.start(start).await?)
    }

    async fn check_code(
        &self,
        id: VerificationId,
        code: &str,
        action: Option<(SensitiveAction, ActionDetails)>,
    ) -> Result<VerificationView, AccountError> {
        let (action, details) = match action {
            Some((action, details)) => (Some(action), details),
            None => (None, ActionDetails::default()),
        };
        Ok(self
            .engine
            .check(CheckRequest {
                client: ACCOUNTS_CLIENT.into(),
                id,
                code: code.to_owned(),
                purpose: None,
                action,
                details,
            })
            .await?)
    }

    async fn put_flow(
        &self,
        token: [u8; 32],
        state: &FlowState,
        expires_at: DateTime<Utc>,
    ) -> Result<(), AccountError> {
        let state = serde_json::to_vec(state)
            .map_err(|e| AccountError::Store(gerbang_store::StoreError::Corrupt(e.to_string())))?;
        self.store
            .put_flow(&StoredFlow {
                token,
                state,
                expires_at,
            })
            .await?;
        Ok(())
    }

    async fn flow(
        &self,
        token: &str,
    ) -> Result<([u8; 32], FlowState, DateTime<Utc>), AccountError> {
        if !token.starts_with("gbf_") || token.len() != 68 {
            return Err(AccountError::FlowNotFound);
        }
        let digest = flow_digest(token);
        let flow = self
            .store
            .find_flow(&digest, self.now())
            .await?
            .ok_or(AccountError::FlowNotFound)?;
        let state = serde_json::from_slice(&flow.state).map_err(|e| {
            AccountError::Store(gerbang_store::StoreError::Corrupt(format!(
                "flow state: {e}"
            )))
        })?;
        Ok((digest, state, flow.expires_at))
    }
}

/// The channels on file a recovery code can go to, masked.
fn recovery_channels(account: &Account) -> Vec<RecoveryChannel> {
    let mut channels = Vec::new();
    if let Some(phone) = &account.phone {
        channels.push(RecoveryChannel {
            channel: Channel::Sms,
            masked: phone.masked(),
        });
    }
    if let Some(email) = &account.email {
        channels.push(RecoveryChannel {
            channel: Channel::Email,
            masked: email.masked(),
        });
    }
    channels
}

fn taken(clash: AccountTaken) -> AccountError {
    match clash {
        AccountTaken::Nik => AccountError::AlreadyRegistered,
        AccountTaken::Email => AccountError::EmailTaken,
        AccountTaken::Phone => AccountError::PhoneTaken,
    }
}

fn lock_event(event: LockEvent, now: DateTime<Utc>) -> AccountEvent {
    match event {
        LockEvent::TemporaryLock { nth, until } => AccountEvent::new(
            now,
            "locked_temporarily",
            format!("lock {nth} until {}", until.to_rfc3339()),
        )
        .by(actor::SYSTEM),
        LockEvent::PermanentLock => {
            AccountEvent::new(now, "locked_permanently", "").by(actor::SYSTEM)
        }
        LockEvent::Lifted => AccountEvent::new(now, "lock_lifted", "").by(actor::SYSTEM),
    }
}

/// Codes go to the phone by SMS when there is one, else to the email.
fn preferred_contact(account: &Account) -> Result<(Channel, Destination), AccountError> {
    match (&account.phone, &account.email) {
        (Some(phone), _) => Ok((Channel::Sms, Destination::Phone(phone.clone()))),
        (None, Some(email)) => Ok((Channel::Email, Destination::Email(email.clone()))),
        (None, None) => Err(AccountError::ChannelNotOnFile),
    }
}

fn subject_of(stored: &StoredAccount) -> Subject {
    Subject {
        account: Some(format!("acct_{}", stored.id)),
        nik: Some(stored.account.nik.clone()),
    }
}

/// What staff did that the participant is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StaffAction {
    LockLifted,
    DevicesSignedOut,
}

/// The notice to old contacts after a change.
/// The notice to the old contacts after a contact change, signed with the deployment's brand
/// (SPEC §5: every message names who sends it).
fn notice_text(
    brand: &str,
    locale: Locale,
    (noun_id, noun_en): (&str, &str),
    masked: &str,
    account: &Account,
    now: DateTime<Utc>,
    cool_off: &CoolOffPolicy,
) -> String {
    let zone = account.time_zone();
    let at = zone.format(now, locale == Locale::En);
    match locale {
        Locale::En => format!(
            "{brand}: your {noun_en} was changed to {masked} at {at}. Bank-account changes and claims are held for {} hours. If this was not you, visit a branch office now.",
            cool_off.hours
        ),
        _ => format!(
            "{brand}: {} akun Anda diganti menjadi {masked} pada {at}. Perubahan rekening dan klaim ditahan {} jam. Bila bukan Anda, segera datang ke kantor cabang.",
            capitalise(noun_id),
            cool_off.hours
        ),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
