//! [`AccountError`]: every way an account flow says no, with its stable code and messages.

use gerbang_domain::Explain;
use gerbang_domain::account::{CoolOffNotice, DeviceError, LockNotice, WeakPassword};
use gerbang_domain::identity::{EmailError, IndonesianTimeZone, NikError};
use gerbang_store::StoreError;

use crate::captcha::CaptchaError;
use crate::error::EngineError;
use crate::password::PasswordHashingError;

/// Why an account flow refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Neither a NIK, a card number, a KPJ number nor (where accepted) an email address.
    #[error("identifier invalid")]
    IdentifierInvalid { email_accepted: bool },
    /// Digits only, but as many as no identifier has.
    #[error("identifier of {found} digits")]
    IdentifierLength { found: usize, email_accepted: bool },
    /// Sixteen digits that break a NIK rule (province, birth date, sequence).
    #[error(transparent)]
    NikInvalid(NikError),
    #[error(transparent)]
    EmailInvalid(EmailError),
    /// Recovery: the identifier and birth date match no account. The same answer whether the
    /// identifier is unknown, the birth date wrong or the participant has no account.
    #[error("no account matches these details")]
    RecoveryUnmatched,
    /// No participant has this NIK (or card number) with this birth date.
    #[error("participant not found")]
    ParticipantNotFound,
    #[error("participant already registered")]
    AlreadyRegistered,
    #[error("participant inactive")]
    ParticipantInactive,
    #[error("email taken")]
    EmailTaken,
    #[error("phone taken")]
    PhoneTaken,
    #[error("contact missing")]
    ContactMissing,
    #[error("passwords differ")]
    PasswordsDiffer,
    #[error(transparent)]
    WeakPassword(WeakPassword),
    /// Unknown identifier or wrong password: the same answer for both.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Shown only to a caller who proved the password (or an OTP).
    #[error("account locked")]
    Locked(LockNotice),
    #[error("no account for this identifier")]
    AccountNotFound,
    /// The flow token is unknown, expired or already used.
    #[error("flow not found")]
    FlowNotFound,
    /// The flow token belongs to another step, or to another session.
    #[error("flow mismatch")]
    FlowMismatch,
    /// The chosen channel has nothing on file to reach.
    #[error("channel not on file")]
    ChannelNotOnFile,
    /// The new contact is the one already on file.
    #[error("contact unchanged")]
    ContactUnchanged,
    #[error("session invalid")]
    SessionInvalid,
    #[error("device not found")]
    DeviceNotFound,
    #[error(transparent)]
    Device(DeviceError),
    #[error("cooling off")]
    CoolingOff(CoolOffNotice),
    #[error(transparent)]
    Captcha(#[from] CaptchaError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Hashing(#[from] PasswordHashingError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many lookups or logins from this address, or for this identifier; try again at `until`.
    #[error("too many attempts until {until}")]
    TooManyAttempts {
        until: chrono::DateTime<chrono::Utc>,
    },
    /// The membership registry did not answer (or answered nonsense); the participant may retry.
    #[error("registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// The account kept changing under concurrent requests; the caller may retry.
    #[error("account busy")]
    Contended,
}

impl Explain for AccountError {
    fn code(&self) -> &'static str {
        match self {
            Self::IdentifierInvalid { .. } => "identifier_invalid",
            Self::IdentifierLength { .. } => "identifier_length",
            Self::NikInvalid(error) => error.code(),
            Self::EmailInvalid(error) => error.code(),
            Self::RecoveryUnmatched => "recovery_unmatched",
            Self::ParticipantNotFound => "participant_not_found",
            Self::AlreadyRegistered => "already_registered",
            Self::ParticipantInactive => "participant_inactive",
            Self::EmailTaken => "email_taken",
            Self::PhoneTaken => "phone_taken",
            Self::ContactMissing => "contact_missing",
            Self::PasswordsDiffer => "passwords_differ",
            Self::WeakPassword(error) => error.code(),
            Self::InvalidCredentials => "invalid_credentials",
            Self::Locked(notice) => notice.code(),
            Self::AccountNotFound => "account_not_found",
            Self::FlowNotFound => "flow_not_found",
            Self::FlowMismatch => "flow_mismatch",
            Self::ChannelNotOnFile => "channel_not_on_file",
            Self::ContactUnchanged => "contact_unchanged",
            Self::SessionInvalid => "session_invalid",
            Self::DeviceNotFound => "device_not_found",
            Self::Device(error) => error.code(),
            Self::CoolingOff(notice) => notice.code(),
            Self::Captcha(error) => error.code(),
            Self::Engine(error) => error.code(),
            Self::Hashing(error) => error.code(),
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::RegistryUnavailable(_) => "registry_unavailable",
            Self::Store(_) | Self::Contended => "temporarily_unavailable",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::IdentifierInvalid {
                email_accepted: false,
            } => "Masukkan NIK (16 angka), nomor kartu JKN (13 angka) atau nomor KPJ (11 angka)."
                .into(),
            Self::IdentifierInvalid {
                email_accepted: true,
            } => "Masukkan NIK (16 angka), nomor kartu JKN (13 angka), nomor KPJ (11 angka) atau \
                 alamat email."
                .into(),
            Self::IdentifierLength {
                found,
                email_accepted,
            } => format!(
                "NIK terdiri dari 16 angka, nomor kartu JKN 13 angka dan nomor KPJ 11 angka; yang \
                 dimasukkan {found} angka.{}",
                if *email_accepted {
                    " Anda juga dapat memakai alamat email akun Anda."
                } else {
                    ""
                }
            ),
            Self::NikInvalid(error) => error.message_id(),
            Self::EmailInvalid(error) => error.message_id(),
            Self::RecoveryUnmatched => "Data yang dimasukkan tidak cocok dengan akun mana pun. \
                 Periksa kembali NIK, nomor kartu, nomor KPJ atau email dan tanggal lahir Anda. \
                 Bila Anda belum punya akun, silakan daftar."
                .into(),
            Self::ParticipantNotFound => "Data peserta tidak ditemukan. Periksa kembali NIK atau \
                 nomor kartu dan tanggal lahir Anda. Bila sudah benar, data Anda mungkin belum \
                 sinkron dengan Dukcapil: perbarui data melalui layanan PANDAWA atau di kantor \
                 cabang terdekat."
                .into(),
            Self::AlreadyRegistered => "Peserta ini sudah memiliki akun. Silakan masuk, atau \
                 gunakan Lupa Kata Sandi bila Anda tidak ingat kata sandinya."
                .into(),
            Self::ParticipantInactive => "Kepesertaan Anda tidak aktif, sehingga akun belum dapat \
                 dibuat. Hubungi kantor cabang atau layanan PANDAWA untuk mengaktifkannya."
                .into(),
            Self::EmailTaken => "Email ini sudah dipakai akun lain. Gunakan email lain.".into(),
            Self::PhoneTaken => "Nomor HP ini sudah dipakai akun lain. Gunakan nomor lain, atau \
                 datang ke kantor cabang bila nomor ini milik Anda."
                .into(),
            Self::ContactMissing => "Isi nomor HP atau email untuk menerima kode OTP.".into(),
            Self::PasswordsDiffer => "Konfirmasi kata sandi tidak sama dengan kata sandi.".into(),
            Self::WeakPassword(error) => error.message_id(),
            Self::InvalidCredentials => "NIK, nomor kartu, email atau kata sandi salah.".into(),
            Self::Locked(notice) => notice.message_id(),
            Self::AccountNotFound => "Belum ada akun untuk data ini. Silakan daftar terlebih \
                 dahulu."
                .into(),
            Self::FlowNotFound => "Sesi pendaftaran atau verifikasi ini sudah berakhir. Silakan \
                 ulangi dari awal."
                .into(),
            Self::FlowMismatch => "Langkah ini tidak sesuai dengan proses yang sedang berjalan. \
                 Silakan ulangi dari awal."
                .into(),
            Self::ChannelNotOnFile => {
                "Tidak ada nomor HP atau email terdaftar untuk saluran ini.".into()
            }
            Self::ContactUnchanged => "Nomor HP atau email baru sama dengan yang terdaftar.".into(),
            Self::SessionInvalid => "Sesi Anda sudah berakhir. Silakan masuk kembali.".into(),
            Self::DeviceNotFound => "Perangkat ini tidak ada dalam daftar perangkat Anda.".into(),
            Self::Device(error) => error.message_id(),
            Self::CoolingOff(notice) => notice.message_id(),
            Self::Captcha(error) => error.message_id(),
            Self::Engine(error) => error.message_id(),
            Self::Hashing(error) => error.message_id(),
            Self::TooManyAttempts { until } => format!(
                "Terlalu banyak percobaan dari perangkat atau untuk data ini. Coba lagi setelah \
                 pukul {}.",
                IndonesianTimeZone::Wib.format_until(*until, false)
            ),
            Self::RegistryUnavailable(_) => "Data kepesertaan sedang tidak dapat diperiksa. \
                 Silakan coba lagi beberapa saat lagi."
                .into(),
            Self::Store(_) | Self::Contended => {
                "Layanan sedang sibuk. Silakan coba lagi sebentar lagi.".into()
            }
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::IdentifierInvalid {
                email_accepted: false,
            } => "Enter a NIK (16 digits), a JKN card number (13 digits) or a KPJ number (11 \
                 digits)."
                .into(),
            Self::IdentifierInvalid {
                email_accepted: true,
            } => "Enter a NIK (16 digits), a JKN card number (13 digits), a KPJ number (11 \
                 digits) or an email address."
                .into(),
            Self::IdentifierLength {
                found,
                email_accepted,
            } => format!(
                "A NIK has 16 digits, a JKN card number 13 and a KPJ number 11; this one has \
                 {found}.{}",
                if *email_accepted {
                    " You can also use your account's email address."
                } else {
                    ""
                }
            ),
            Self::NikInvalid(error) => capitalise_first(&error.message_en()),
            Self::EmailInvalid(error) => error.message_en(),
            Self::RecoveryUnmatched => "These details match no account. Check your NIK, card \
                 number, KPJ number or email and your date of birth. If you have no account yet, \
                 register first."
                .into(),
            Self::ParticipantNotFound => "No participant was found. Check your NIK or card number \
                 and date of birth. If they are right, your data may not be synchronised with \
                 Dukcapil yet: update it through PANDAWA or at the nearest branch office."
                .into(),
            Self::AlreadyRegistered => "This participant already has an account. Log in, or use \
                 Forgot Password if you do not remember the password."
                .into(),
            Self::ParticipantInactive => "Your membership is not active, so an account cannot be \
                 created yet. Contact a branch office or PANDAWA to reactivate it."
                .into(),
            Self::EmailTaken => {
                "This email already belongs to another account. Use another email.".into()
            }
            Self::PhoneTaken => "This mobile number already belongs to another account. Use \
                 another number, or visit a branch office if the number is yours."
                .into(),
            Self::ContactMissing => "Enter a mobile number or an email to receive the OTP.".into(),
            Self::PasswordsDiffer => "The password confirmation does not match.".into(),
            Self::WeakPassword(error) => error.message_en(),
            Self::InvalidCredentials => "Wrong NIK, card number, email or password.".into(),
            Self::Locked(notice) => notice.message_en(),
            Self::AccountNotFound => {
                "There is no account for these details yet. Register first.".into()
            }
            Self::FlowNotFound => "This registration or verification session has ended. Please \
                 start again."
                .into(),
            Self::FlowMismatch => {
                "This step does not belong to the process under way. Please start again.".into()
            }
            Self::ChannelNotOnFile => {
                "There is no mobile number or email on file for this channel.".into()
            }
            Self::ContactUnchanged => {
                "The new mobile number or email is the one already on file.".into()
            }
            Self::SessionInvalid => "Your session has ended. Please log in again.".into(),
            Self::DeviceNotFound => "This device is not in your list of devices.".into(),
            Self::Device(error) => error.message_en(),
            Self::CoolingOff(notice) => notice.message_en(),
            Self::Captcha(error) => error.message_en(),
            Self::Engine(error) => error.message_en(),
            Self::Hashing(error) => error.message_en(),
            Self::TooManyAttempts { until } => format!(
                "Too many attempts from this device or for these details. Try again after {}.",
                IndonesianTimeZone::Wib.format_until(*until, true)
            ),
            Self::RegistryUnavailable(_) => {
                "Membership data cannot be checked right now. Please try again in a moment.".into()
            }
            Self::Store(_) | Self::Contended => {
                "The service is busy. Please try again shortly.".into()
            }
        }
    }
}

/// The sentence's first letter upper-cased (the identity types' English texts start lower-case).
fn capitalise_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal with words of its own (not one wrapped from another type, which that type's
    /// own tests check).
    fn own() -> Vec<AccountError> {
        vec![
            AccountError::IdentifierInvalid {
                email_accepted: false,
            },
            AccountError::IdentifierInvalid {
                email_accepted: true,
            },
            AccountError::IdentifierLength {
                found: 15,
                email_accepted: false,
            },
            AccountError::IdentifierLength {
                found: 12,
                email_accepted: true,
            },
            AccountError::RecoveryUnmatched,
            AccountError::ParticipantNotFound,
            AccountError::AlreadyRegistered,
            AccountError::ParticipantInactive,
            AccountError::EmailTaken,
            AccountError::PhoneTaken,
            AccountError::ContactMissing,
            AccountError::PasswordsDiffer,
            AccountError::InvalidCredentials,
            AccountError::AccountNotFound,
            AccountError::FlowNotFound,
            AccountError::FlowMismatch,
            AccountError::ChannelNotOnFile,
            AccountError::ContactUnchanged,
            AccountError::SessionInvalid,
            AccountError::DeviceNotFound,
            AccountError::RegistryUnavailable("timeout".into()),
            AccountError::TooManyAttempts {
                until: chrono::DateTime::parse_from_rfc3339("2026-12-01T01:30:00Z")
                    .map(|at| at.to_utc())
                    .unwrap_or_default(),
            },
            AccountError::Contended,
        ]
    }

    #[test]
    fn every_account_error_is_in_docs_accounts_md_word_for_word() {
        let doc = include_str!("../../../../docs/accounts.md");
        let missing: Vec<String> = own()
            .iter()
            .map(|error| {
                format!(
                    "| `{}` | {} | {} |",
                    error.code(),
                    error.message_id(),
                    error.message_en()
                )
            })
            .filter(|row| !doc.contains(row.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/accounts.md lacks:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn codes_are_distinct_except_the_shared_unavailable() {
        // The identifier refusals come in two wordings (with and without email) under one code.
        let mut codes: Vec<&str> = own()
            .iter()
            .filter(|error| {
                !matches!(
                    error,
                    AccountError::IdentifierInvalid {
                        email_accepted: true
                    } | AccountError::IdentifierLength {
                        email_accepted: true,
                        ..
                    }
                )
            })
            .map(Explain::code)
            .collect();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), before);
    }
}
