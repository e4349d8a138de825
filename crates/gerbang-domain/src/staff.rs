//! Staff of the back office (SPEC §6): call-centre agents, branch officers, supervisors and
//! administrators. Their names and roles, what each role may do, the time-based second factor
//! (RFC 6238) every one of them signs in with, their lockout and their short sessions.
//!
//! Pure rules: the clock is always passed in.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use crate::explain::Explain;

/// A staff member's sign-in name: 3 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit
/// (`cabang-jaksel-07`, `siti.rahma`). Names are not secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StaffName(String);

impl StaffName {
    pub fn parse(text: &str) -> Result<Self, StaffError> {
        let name = text.trim().to_ascii_lowercase();
        let valid = (3..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
            && name.as_bytes()[0].is_ascii_alphanumeric();
        if valid {
            Ok(Self(name))
        } else {
            Err(StaffError::NameInvalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a staff member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Call centre (165 / 175): finds participants, reads their state and delivery trails,
    /// keeps complaint tickets.
    Agent,
    /// Branch office: an agent's work, and lifts locks, revokes devices, changes contacts at the
    /// counter (with a second person's approval).
    Officer,
    /// An officer's work, and the queue of approvals and tickets.
    Supervisor,
    /// Staff accounts and the read-only views of policy and providers; no participant work.
    Admin,
}

/// One thing a role may or may not do; every console route names the one it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    SearchParticipants,
    ViewAccounts,
    KeepTickets,
    LiftLocks,
    RevokeDevices,
    RequestContactChanges,
    ApproveRequests,
    ViewAuditLog,
    ManageStaff,
    ViewConfiguration,
    /// The delivery-health page: sends, failures and delivery times by provider.
    ViewDeliveryHealth,
    /// Lift the SMS pumping brake on a number block.
    LiftBrakes,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::SearchParticipants,
        Permission::ViewAccounts,
        Permission::KeepTickets,
        Permission::LiftLocks,
        Permission::RevokeDevices,
        Permission::RequestContactChanges,
        Permission::ApproveRequests,
        Permission::ViewAuditLog,
        Permission::ManageStaff,
        Permission::ViewConfiguration,
        Permission::ViewDeliveryHealth,
        Permission::LiftBrakes,
    ];
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Agent, Role::Officer, Role::Supervisor, Role::Admin];

    pub fn parse(text: &str) -> Result<Self, StaffError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "agent" => Ok(Self::Agent),
            "officer" => Ok(Self::Officer),
            "supervisor" => Ok(Self::Supervisor),
            "admin" => Ok(Self::Admin),
            _ => Err(StaffError::RoleUnknown),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Officer => "officer",
            Self::Supervisor => "supervisor",
            Self::Admin => "admin",
        }
    }

    /// Whether this role may do `permission`.
    pub fn may(self, permission: Permission) -> bool {
        use Permission::*;
        let participant_work =
            matches!(permission, SearchParticipants | ViewAccounts | KeepTickets);
        let counter_work = matches!(
            permission,
            LiftLocks | RevokeDevices | RequestContactChanges | ApproveRequests
        );
        match self {
            Self::Agent => participant_work,
            Self::Officer => participant_work || counter_work,
            Self::Supervisor => {
                participant_work
                    || counter_work
                    || matches!(permission, ViewAuditLog | ViewDeliveryHealth | LiftBrakes)
            }
            Self::Admin => matches!(
                permission,
                ManageStaff | ViewConfiguration | ViewAuditLog | ViewDeliveryHealth
            ),
        }
    }
}

/// How staff sign in and how long they stay: every setting has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaffPolicy {
    /// Wrong passwords or codes in a row before the staff member is locked.
    pub max_failures: u32,
    /// How long that lock lasts.
    pub lock_minutes: i64,
    /// A session ends this long after its last use.
    pub idle_minutes: i64,
    /// … and this long after sign-in whatever happens.
    pub absolute_hours: i64,
    /// A contact change requested at the counter must be approved by a second person, and its
    /// code entered, within this many hours of the request.
    pub request_hours: i64,
}

impl Default for StaffPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lock_minutes: 15,
            idle_minutes: 30,
            absolute_hours: 8,
            request_hours: 4,
        }
    }
}

/// RFC 6238 parameters every authenticator app understands: SHA-1, 6 digits, 30 s steps, one step
/// of clock drift either way.
const TOTP_DIGITS: usize = 6;
const TOTP_STEP: u64 = 30;
const TOTP_SECRET_BYTES: usize = 20;

/// A staff member's TOTP secret (160 random bits). `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(****)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; TOTP_SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    fn totp(&self, name: &StaffName) -> Result<TOTP, StaffError> {
        TOTP::new(
            Algorithm::SHA1,
            TOTP_DIGITS,
            1,
            TOTP_STEP,
            self.0.clone(),
            Some("gerbang".to_owned()),
            name.as_str().to_owned(),
        )
        .map_err(|_| StaffError::SecondFactorUnavailable)
    }

    /// The `otpauth://totp/…` address an authenticator app reads from the enrolment QR code.
    pub fn enrolment_url(&self, name: &StaffName) -> Result<String, StaffError> {
        Ok(self.totp(name)?.get_url())
    }

    /// The secret in base32, for typing into an app by hand.
    pub fn base32(&self, name: &StaffName) -> Result<String, StaffError> {
        Ok(self.totp(name)?.get_secret_base32())
    }

    /// The code at `at` (for tests and for the enrolment check).
    pub fn code_at(&self, name: &StaffName, at: DateTime<Utc>) -> Result<String, StaffError> {
        Ok(self.totp(name)?.generate(unix(at)))
    }

    /// The time step `code` belongs to, if it is right at `now` (one step of drift either way) and
    /// later than `last_step`, the step of the last code accepted: a code is good once.
    pub fn accepts(
        &self,
        name: &StaffName,
        code: &str,
        now: DateTime<Utc>,
        last_step: Option<u64>,
    ) -> Result<Option<u64>, StaffError> {
        let code = code.trim();
        if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let totp = self.totp(name)?;
        let step = unix(now) / TOTP_STEP;
        let mut found = None;
        // Every candidate is compared, in constant time, so the answer's timing tells nothing.
        for candidate in [step.saturating_sub(1), step, step + 1] {
            let expected = totp.generate(candidate * TOTP_STEP);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(candidate);
            }
        }
        Ok(found.filter(|step| last_step.is_none_or(|last| *step > last)))
    }
}

fn unix(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

/// A staff member as stored (sealed at rest: it holds a password hash and the TOTP secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    pub name: StaffName,
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub totp: TotpSecret,
    /// The step of the last TOTP code accepted; an older or equal one is refused.
    pub last_totp_step: Option<u64>,
    pub failures: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl StaffMember {
    /// Why this member may not sign in at `now`, if they may not.
    pub fn barred(&self, now: DateTime<Utc>) -> Option<StaffError> {
        if self.disabled_at.is_some() {
            Some(StaffError::Disabled)
        } else {
            self.locked_until
                .filter(|until| now < *until)
                .map(|until| StaffError::Locked { until })
        }
    }

    /// What the staff list shows: `disabled`, `locked` (until the lock ends) or `active`.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if self.disabled_at.is_some() {
            "disabled"
        } else if self.locked_until.is_some_and(|until| now < until) {
            "locked"
        } else {
            "active"
        }
    }

    /// Counts a wrong password or code; locks after `policy.max_failures` in a row.
    pub fn failed(&mut self, now: DateTime<Utc>, policy: &StaffPolicy) -> Option<DateTime<Utc>> {
        self.failures += 1;
        if self.failures >= policy.max_failures {
            self.failures = 0;
            let until = now + Duration::minutes(policy.lock_minutes);
            self.locked_until = Some(until);
            Some(until)
        } else {
            None
        }
    }

    /// A successful sign-in: the failure count starts again.
    pub fn signed_in(&mut self, step: u64) {
        self.failures = 0;
        self.locked_until = None;
        self.last_totp_step = Some(step);
    }
}

/// A staff session's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffSessionLife {
    pub started_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl StaffSessionLife {
    pub fn start(now: DateTime<Utc>) -> Self {
        Self {
            started_at: now,
            last_used_at: now,
            revoked_at: None,
        }
    }

    /// Whether the session may be used at `now`.
    pub fn check(&self, now: DateTime<Utc>, policy: &StaffPolicy) -> Result<(), StaffError> {
        if self.revoked_at.is_some()
            || now >= self.started_at + Duration::hours(policy.absolute_hours)
            || now >= self.last_used_at + Duration::minutes(policy.idle_minutes)
        {
            Err(StaffError::SessionEnded)
        } else {
            Ok(())
        }
    }
}

/// Why a staff operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StaffError {
    #[error("staff name must be 3 to 64 of a-z, 0-9, '.', '_' or '-'")]
    NameInvalid,
    #[error("role must be agent, officer, supervisor or admin")]
    RoleUnknown,
    #[error("name, password or code is wrong")]
    SignInFailed,
    #[error("locked after too many wrong tries until {until}")]
    Locked { until: DateTime<Utc> },
    #[error("this staff account is disabled")]
    Disabled,
    #[error("the session has ended")]
    SessionEnded,
    #[error("this role may not do that")]
    Forbidden,
    #[error("the second factor cannot be computed")]
    SecondFactorUnavailable,
}

impl Explain for StaffError {
    fn code(&self) -> &'static str {
        match self {
            Self::NameInvalid => "staff_name_invalid",
            Self::RoleUnknown => "staff_role_unknown",
            Self::SignInFailed => "staff_sign_in_failed",
            Self::Locked { .. } => "staff_locked",
            Self::Disabled => "staff_disabled",
            Self::SessionEnded => "staff_session_ended",
            Self::Forbidden => "staff_forbidden",
            Self::SecondFactorUnavailable => "staff_second_factor_unavailable",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::NameInvalid => {
                "Nama petugas harus 3–64 karakter: huruf kecil, angka, titik, garis bawah atau tanda hubung.".into()
            }
            Self::RoleUnknown => "Peran harus agent, officer, supervisor atau admin.".into(),
            Self::SignInFailed => "Nama, kata sandi atau kode autentikator salah.".into(),
            Self::Locked { until } => format!(
                "Akun petugas dikunci karena terlalu banyak percobaan salah, sampai {}.",
                crate::identity::IndonesianTimeZone::Wib.format_until(*until, false)
            ),
            Self::Disabled => "Akun petugas ini dinonaktifkan. Hubungi admin.".into(),
            Self::SessionEnded => "Sesi Anda sudah berakhir. Silakan masuk lagi.".into(),
            Self::Forbidden => "Peran Anda tidak boleh melakukan ini.".into(),
            Self::SecondFactorUnavailable => {
                "Kode autentikator tidak dapat diperiksa saat ini. Coba lagi.".into()
            }
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::NameInvalid => {
                "A staff name is 3 to 64 characters: lower-case letters, digits, dots, underscores or hyphens.".into()
            }
            Self::RoleUnknown => "The role must be agent, officer, supervisor or admin.".into(),
            Self::SignInFailed => "The name, password or authenticator code is wrong.".into(),
            Self::Locked { until } => format!(
                "This staff account is locked after too many wrong tries, until {}.",
                crate::identity::IndonesianTimeZone::Wib.format_until(*until, true)
            ),
            Self::Disabled => "This staff account is disabled. Ask an administrator.".into(),
            Self::SessionEnded => "Your session has ended. Please sign in again.".into(),
            Self::Forbidden => "Your role may not do this.".into(),
            Self::SecondFactorUnavailable => {
                "The authenticator code cannot be checked right now. Try again.".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn name() -> StaffName {
        StaffName::parse("Cabang-Jaksel-07").unwrap()
    }

    #[test]
    fn names_are_lower_case_and_plain() {
        assert_eq!(name().as_str(), "cabang-jaksel-07");
        for bad in ["ab", "-lead", "siti rahma", "a:b", &"x".repeat(65), "ünï"] {
            assert_eq!(StaffName::parse(bad), Err(StaffError::NameInvalid), "{bad}");
        }
    }

    #[test]
    fn each_role_may_do_exactly_its_work() {
        use Permission::*;
        let allowed = |role: Role| -> Vec<Permission> {
            Permission::ALL
                .into_iter()
                .filter(|p| role.may(*p))
                .collect()
        };
        assert_eq!(
            allowed(Role::Agent),
            [SearchParticipants, ViewAccounts, KeepTickets]
        );
        assert_eq!(
            allowed(Role::Officer),
            [
                SearchParticipants,
                ViewAccounts,
                KeepTickets,
                LiftLocks,
                RevokeDevices,
                RequestContactChanges,
                ApproveRequests
            ]
        );
        assert!(Role::Supervisor.may(ViewAuditLog));
        assert!(!Role::Supervisor.may(ManageStaff));
        assert_eq!(
            allowed(Role::Admin),
            [
                ViewAuditLog,
                ManageStaff,
                ViewConfiguration,
                ViewDeliveryHealth
            ]
        );
        assert!(Role::Supervisor.may(ViewDeliveryHealth));
        assert!(Role::Supervisor.may(LiftBrakes));
        assert!(!Role::Admin.may(LiftBrakes));
        assert!(!Role::Officer.may(ViewDeliveryHealth));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert_eq!(Role::parse("root"), Err(StaffError::RoleUnknown));
    }

    #[test]
    fn a_totp_code_is_good_within_a_step_of_drift_and_only_once() {
        let secret = TotpSecret::generate();
        let now = at(0);
        let code = secret.code_at(&name(), now).unwrap();
        let step = secret.accepts(&name(), &code, now, None).unwrap();
        assert_eq!(step, Some(1_800_000_000 / 30));
        // 30 s later the same code is still inside the drift window, but it was used.
        assert_eq!(secret.accepts(&name(), &code, at(30), step).unwrap(), None);
        // Unused, it would still pass 30 s later, not 90 s later.
        assert!(
            secret
                .accepts(&name(), &code, at(30), None)
                .unwrap()
                .is_some()
        );
        assert_eq!(secret.accepts(&name(), &code, at(90), None).unwrap(), None);
        assert_eq!(secret.accepts(&name(), "12345", now, None).unwrap(), None);
        assert_eq!(secret.accepts(&name(), "abcdef", now, None).unwrap(), None);
        let other = TotpSecret::generate();
        assert_eq!(other.accepts(&name(), &code, now, None).unwrap(), None);
    }

    #[test]
    fn the_enrolment_url_names_gerbang_and_the_member() {
        let url = TotpSecret::generate().enrolment_url(&name()).unwrap();
        assert!(
            url.starts_with("otpauth://totp/gerbang:cabang-jaksel-07?"),
            "{url}"
        );
        assert!(url.contains("issuer=gerbang"), "{url}");
        assert!(format!("{:?}", TotpSecret::generate()).contains("****"));
    }

    #[test]
    fn five_failures_lock_and_a_sign_in_resets_the_count() {
        let policy = StaffPolicy::default();
        let mut member = StaffMember {
            name: name(),
            role: Role::Officer,
            password_hash: String::new(),
            totp: TotpSecret::generate(),
            last_totp_step: None,
            failures: 0,
            locked_until: None,
            disabled_at: None,
            created_at: at(0),
        };
        for _ in 0..4 {
            assert_eq!(member.failed(at(1), &policy), None);
        }
        member.signed_in(7);
        assert_eq!(member.failures, 0);
        for _ in 0..4 {
            member.failed(at(1), &policy);
        }
        let until = member.failed(at(1), &policy).unwrap();
        assert_eq!(until, at(1 + 15 * 60));
        assert_eq!(member.barred(at(2)), Some(StaffError::Locked { until }));
        assert_eq!(member.barred(until), None);
        assert_eq!(member.state(at(2)), "locked");
        assert_eq!(member.state(until), "active");
        member.disabled_at = Some(at(3));
        assert_eq!(member.barred(until), Some(StaffError::Disabled));
        assert_eq!(member.state(until), "disabled");
    }

    #[test]
    fn sessions_end_after_30_idle_minutes_or_8_hours() {
        let policy = StaffPolicy::default();
        let mut life = StaffSessionLife::start(at(0));
        assert_eq!(life.check(at(29 * 60), &policy), Ok(()));
        assert_eq!(
            life.check(at(30 * 60), &policy),
            Err(StaffError::SessionEnded)
        );
        // Used every 20 minutes, it still ends at 8 hours.
        for minute in (20..8 * 60).step_by(20) {
            assert_eq!(life.check(at(minute * 60), &policy), Ok(()), "{minute}");
            life.last_used_at = at(minute * 60);
        }
        assert_eq!(
            life.check(at(8 * 3600), &policy),
            Err(StaffError::SessionEnded)
        );
        let mut revoked = StaffSessionLife::start(at(0));
        revoked.revoked_at = Some(at(1));
        assert_eq!(revoked.check(at(2), &policy), Err(StaffError::SessionEnded));
    }
}
