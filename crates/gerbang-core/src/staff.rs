//! The back office's staff: adding, disabling and resetting members, signing in with a password
//! and a TOTP code, short sessions that are checked (role included) on every request, and the
//! permission check every console route makes. Every one of these is recorded in the audit log in
//! the same transaction as the change.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gerbang_domain::Clock;
use gerbang_domain::account::SessionToken;
use gerbang_domain::account::password::{PasswordPolicy, PersonalFacts, WeakPassword};
use gerbang_domain::staff::{
    Permission, Role, StaffError, StaffMember, StaffName, StaffPolicy, StaffSessionLife, TotpSecret,
};
use gerbang_store::audit::{AuditRecord, actor};
use gerbang_store::{StaffKey, StaffRefusal, Store, StoreError, StoredStaff, StoredStaffSession};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::password::{PasswordCheck, PasswordHashing, PasswordHashingError};

/// Why a staff operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StaffServiceError {
    #[error(transparent)]
    Staff(#[from] StaffError),
    #[error("no staff member of that name")]
    NotFound,
    #[error("a staff member of that name exists already")]
    NameTaken,
    #[error("the password does not meet the policy: {0}")]
    WeakPassword(WeakPassword),
    #[error(transparent)]
    Hashing(#[from] PasswordHashingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl gerbang_domain::Explain for StaffServiceError {
    fn code(&self) -> &'static str {
        match self {
            Self::Staff(error) => error.code(),
            Self::NotFound => "staff_not_found",
            Self::NameTaken => "staff_name_taken",
            Self::WeakPassword(error) => error.code(),
            Self::Hashing(_) | Self::Store(_) => "store_unavailable",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::Staff(error) => error.message_id(),
            Self::NotFound => "Tidak ada petugas dengan nama itu.".into(),
            Self::NameTaken => "Nama petugas itu sudah dipakai. Pilih nama lain.".into(),
            Self::WeakPassword(error) => error.message_id(),
            Self::Hashing(_) | Self::Store(_) => {
                "Data tidak dapat dihubungi saat ini. Coba lagi.".into()
            }
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::Staff(error) => error.message_en(),
            Self::NotFound => "There is no staff member of that name.".into(),
            Self::NameTaken => "That staff name is taken. Choose another.".into(),
            Self::WeakPassword(error) => error.message_en(),
            Self::Hashing(_) | Self::Store(_) => {
                "The data cannot be reached right now. Try again.".into()
            }
        }
    }
}

/// What a new or reset member is given, once: the password (when gerbang chose it) and the TOTP
/// secret as an `otpauth://` address for the enrolment QR code, and in base32 for typing.
#[derive(Debug)]
pub struct Enrolment {
    pub staff: StoredStaff,
    pub password: Option<SecretString>,
    pub totp_url: SecretString,
    pub totp_base32: SecretString,
}

/// A signed-in staff member, as every console request sees them: read afresh, so a role change or
/// a disable takes effect on the next request.
#[derive(Debug, Clone)]
pub struct StaffSession {
    pub staff: StoredStaff,
    pub session: StoredStaffSession,
}

impl StaffSession {
    /// The member, if their role may do `permission`.
    pub fn may(&self, permission: Permission) -> Result<&StoredStaff, StaffError> {
        if self.staff.member.role.may(permission) {
            Ok(&self.staff)
        } else {
            Err(StaffError::Forbidden)
        }
    }

    /// How this member appears in the audit log.
    pub fn actor(&self) -> String {
        staff_actor(&self.staff.member.name)
    }
}

/// `staff:NAME`, the audit log's actor for a staff member.
pub fn staff_actor(name: &StaffName) -> String {
    format!("staff:{}", name.as_str())
}

/// Staff use-cases over any store.
pub struct StaffService<S> {
    store: S,
    hashing: Arc<PasswordHashing>,
    clock: Arc<dyn Clock>,
    policy: StaffPolicy,
    passwords: PasswordPolicy,
}

impl<S> std::fmt::Debug for StaffService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: Store> StaffService<S> {
    pub fn new(
        store: S,
        hashing: Arc<PasswordHashing>,
        clock: Arc<dyn Clock>,
        policy: StaffPolicy,
        passwords: PasswordPolicy,
    ) -> Self {
        Self {
            store,
            hashing,
            clock,
            policy,
            passwords,
        }
    }

    fn record(&self, at: DateTime<Utc>, by: &str, action: &str, detail: String) -> AuditRecord {
        AuditRecord {
            at,
            actor: by.to_owned(),
            action: action.to_owned(),
            account: None,
            ticket: None,
            detail,
        }
    }

    async fn password_hash(
        &self,
        password: Option<SecretString>,
    ) -> Result<(String, Option<SecretString>), StaffServiceError> {
        let (password, chosen) = match password {
            Some(password) => {
                self.passwords
                    .check(password.expose_secret(), PersonalFacts::default())
                    .map_err(StaffServiceError::WeakPassword)?;
                (password, false)
            }
            None => (generated_password(), true),
        };
        let hash = self.hashing.hash(&password).await?;
        Ok((hash, chosen.then_some(password)))
    }

    fn enrolment(
        staff: StoredStaff,
        password: Option<SecretString>,
    ) -> Result<Enrolment, StaffServiceError> {
        let name = &staff.member.name;
        let totp_url = SecretString::from(staff.member.totp.enrolment_url(name)?);
        let totp_base32 = SecretString::from(staff.member.totp.base32(name)?);
        Ok(Enrolment {
            staff,
            password,
            totp_url,
            totp_base32,
        })
    }

    /// How staff sign in, and how long a counter request waits.
    pub fn policy(&self) -> &StaffPolicy {
        &self.policy
    }

    /// Adds a member with `role`; `password` is checked against the policy, or chosen by gerbang
    /// when `None`. `by` is the actor recorded (`operator:NAME`, `staff:NAME`).
    pub async fn add(
        &self,
        name: &str,
        role: &str,
        password: Option<SecretString>,
        by: &str,
    ) -> Result<Enrolment, StaffServiceError> {
        let name = StaffName::parse(name)?;
        let role = Role::parse(role)?;
        let (password_hash, chosen) = self.password_hash(password).await?;
        let now = self.clock.now();
        let member = StaffMember {
            name: name.clone(),
            role,
            password_hash,
            totp: TotpSecret::generate(),
            last_totp_step: None,
            failures: 0,
            locked_until: None,
            disabled_at: None,
            created_at: now,
        };
        let audit = vec![self.record(
            now,
            by,
            "staff_added",
            format!("{} as {}", name.as_str(), role.as_str()),
        )];
        match self.store.create_staff(&member, audit).await? {
            Ok(staff) => Self::enrolment(staff, chosen),
            Err(_) => Err(StaffServiceError::NameTaken),
        }
    }

    async fn find(&self, name: &str) -> Result<StoredStaff, StaffServiceError> {
        let name = StaffName::parse(name)?;
        self.store
            .find_staff(StaffKey::Name(&name))
            .await?
            .ok_or(StaffServiceError::NotFound)
    }

    /// Reads the member, applies `change`, writes it with its audit records; redone on a
    /// concurrent change.
    async fn change<F>(&self, name: &str, mut change: F) -> Result<StoredStaff, StaffServiceError>
    where
        F: FnMut(&mut StaffMember, DateTime<Utc>) -> Vec<AuditRecord>,
    {
        loop {
            let stored = self.find(name).await?;
            let now = self.clock.now();
            let mut member = stored.member.clone();
            let audit = change(&mut member, now);
            match self
                .store
                .save_staff(stored.id, stored.version, &member, audit)
                .await?
            {
                Ok(saved) => return Ok(saved),
                Err(StaffRefusal::Stale) => continue,
                Err(StaffRefusal::NameTaken) => return Err(StaffServiceError::NameTaken),
            }
        }
    }

    /// Disables a member and ends their sessions.
    pub async fn disable(&self, name: &str, by: &str) -> Result<StoredStaff, StaffServiceError> {
        let saved = self
            .change(name, |member, now| {
                member.disabled_at = Some(now);
                vec![self.record(now, by, "staff_disabled", member.name.as_str().to_owned())]
            })
            .await?;
        self.store
            .revoke_staff_sessions(saved.id, None, self.clock.now())
            .await?;
        Ok(saved)
    }

    /// Changes a member's role; their next request already sees it.
    pub async fn set_role(
        &self,
        name: &str,
        role: &str,
        by: &str,
    ) -> Result<StoredStaff, StaffServiceError> {
        let role = Role::parse(role)?;
        self.change(name, |member, now| {
            let before = member.role;
            member.role = role;
            vec![self.record(
                now,
                by,
                "staff_role_changed",
                format!(
                    "{} from {} to {}",
                    member.name.as_str(),
                    before.as_str(),
                    role.as_str()
                ),
            )]
        })
        .await
    }

    /// A lost authenticator or a forgotten password: a new password and a new TOTP secret, the
    /// lock and the disable lifted, every session ended. Only an administrator (or the operator)
    /// does this, and it is recorded.
    pub async fn reset(
        &self,
        name: &str,
        password: Option<SecretString>,
        by: &str,
    ) -> Result<Enrolment, StaffServiceError> {
        let (password_hash, chosen) = self.password_hash(password).await?;
        let totp = TotpSecret::generate();
        let saved = self
            .change(name, |member, now| {
                member.password_hash = password_hash.clone();
                member.totp = totp.clone();
                member.last_totp_step = None;
                member.failures = 0;
                member.locked_until = None;
                member.disabled_at = None;
                vec![self.record(
                    now,
                    by,
                    "staff_reset",
                    format!("{}: new password and authenticator", member.name.as_str()),
                )]
            })
            .await?;
        self.store
            .revoke_staff_sessions(saved.id, None, self.clock.now())
            .await?;
        Self::enrolment(saved, chosen)
    }

    pub async fn list(&self) -> Result<Vec<StoredStaff>, StaffServiceError> {
        Ok(self.store.list_staff().await?)
    }

    /// Signs a member in with their password and the code of their authenticator. A wrong name,
    /// password or code all answer the same; every try is recorded, and `max_failures` wrong ones
    /// in a row lock the member for `lock_minutes`.
    pub async fn sign_in(
        &self,
        name: &str,
        password: &SecretString,
        code: &str,
    ) -> Result<(SessionToken, StaffSession), StaffServiceError> {
        let found = match StaffName::parse(name) {
            Ok(name) => self.store.find_staff(StaffKey::Name(&name)).await?,
            Err(_) => None,
        };
        let Some(stored) = found else {
            // The same Argon2 work as for a member, so timing does not tell names apart.
            self.hashing.verify(None, password).await?;
            let now = self.clock.now();
            self.store
                .append_audit(vec![self.record(
                    now,
                    "unknown",
                    "staff_sign_in_failed",
                    "no staff member of that name".into(),
                )])
                .await?;
            return Err(StaffError::SignInFailed.into());
        };
        let member_actor = staff_actor(&stored.member.name);
        if let Some(barred) = stored.member.barred(self.clock.now()) {
            let now = self.clock.now();
            self.store
                .append_audit(vec![self.record(
                    now,
                    &member_actor,
                    "staff_sign_in_refused",
                    gerbang_domain::Explain::code(&barred).into(),
                )])
                .await?;
            return Err(barred.into());
        }
        let password_ok = matches!(
            self.hashing
                .verify(Some(&stored.member.password_hash), password)
                .await?,
            PasswordCheck::Match { .. }
        );
        let now = self.clock.now();
        let step = stored.member.totp.accepts(
            &stored.member.name,
            code,
            now,
            stored.member.last_totp_step,
        )?;
        match (password_ok, step) {
            (true, Some(step)) => {
                let saved = self
                    .change(stored.member.name.as_str(), |member, now| {
                        member.signed_in(step);
                        vec![self.record(now, &member_actor, "staff_signed_in", String::new())]
                    })
                    .await?;
                let token = SessionToken::generate();
                let session = StoredStaffSession {
                    token: token.digest(),
                    staff: saved.id,
                    life: StaffSessionLife::start(now),
                };
                self.store.create_staff_session(&session).await?;
                Ok((
                    token,
                    StaffSession {
                        staff: saved,
                        session,
                    },
                ))
            }
            (password_ok, _) => {
                let why = if password_ok {
                    "wrong or reused authenticator code"
                } else {
                    "wrong password"
                };
                let policy = self.policy.clone();
                self.change(stored.member.name.as_str(), |member, now| {
                    let mut audit =
                        vec![self.record(now, &member_actor, "staff_sign_in_failed", why.into())];
                    if let Some(until) = member.failed(now, &policy) {
                        audit.push(self.record(
                            now,
                            actor::SYSTEM,
                            "staff_locked",
                            format!("{} until {}", member.name.as_str(), until.to_rfc3339()),
                        ));
                    }
                    audit
                })
                .await?;
                Err(StaffError::SignInFailed.into())
            }
        }
    }

    /// The member behind `token`, read afresh, if the session is live and the member may still sign
    /// in; records the use.
    pub async fn session(&self, token: &SessionToken) -> Result<StaffSession, StaffServiceError> {
        let now = self.clock.now();
        let session = self
            .store
            .find_staff_session(&token.digest())
            .await?
            .ok_or(StaffError::SessionEnded)?;
        session.life.check(now, &self.policy)?;
        let staff = self
            .store
            .find_staff(StaffKey::Id(session.staff))
            .await?
            .ok_or(StaffError::SessionEnded)?;
        if staff.member.disabled_at.is_some() {
            return Err(StaffError::Disabled.into());
        }
        self.store.touch_staff_session(&session.token, now).await?;
        Ok(StaffSession { staff, session })
    }

    /// Ends the session behind `token`.
    pub async fn sign_out(&self, token: &SessionToken) -> Result<(), StaffServiceError> {
        let signed_in = self.session(token).await?;
        let now = self.clock.now();
        self.store
            .revoke_staff_sessions(signed_in.staff.id, Some(&signed_in.session.token), now)
            .await?;
        self.store
            .append_audit(vec![self.record(
                now,
                &signed_in.actor(),
                "staff_signed_out",
                String::new(),
            )])
            .await?;
        Ok(())
    }
}

/// A password gerbang chooses for a new or reset member: 20 characters from a set without look-alike
/// characters, with an upper-case letter, a lower-case letter, a digit and a symbol at fixed places
/// so the policy always accepts it (about 100 bits).
fn generated_password() -> SecretString {
    const LETTERS: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    let mut text: String = bytes
        .iter()
        .map(|b| LETTERS[usize::from(*b) % LETTERS.len()] as char)
        .collect();
    text.replace_range(4..5, "-");
    text.replace_range(9..10, "K");
    text.replace_range(14..15, "7");
    text.replace_range(19..20, "q");
    SecretString::from(text)
}
