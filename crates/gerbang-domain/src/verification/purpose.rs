//! What a verification is for, and what its code is bound to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::explain::Explain;

/// The flow a code belongs to. A code issued for one purpose never confirms another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Proving the contact given while creating an account.
    Registration,
    /// Logging in from a device the account does not trust yet.
    LoginNewDevice,
    /// Recovering a forgotten password.
    Recovery,
    /// The current (old) contact authorising its replacement.
    ContactChangeAuthorisation,
    /// The new contact proving it reaches the participant.
    ContactChangeProof,
    /// Confirming one sensitive action and its details.
    StepUp,
}

impl Purpose {
    pub const ALL: [Purpose; 6] = [
        Self::Registration,
        Self::LoginNewDevice,
        Self::Recovery,
        Self::ContactChangeAuthorisation,
        Self::ContactChangeProof,
        Self::StepUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::LoginNewDevice => "login_new_device",
            Self::Recovery => "recovery",
            Self::ContactChangeAuthorisation => "contact_change_authorisation",
            Self::ContactChangeProof => "contact_change_proof",
            Self::StepUp => "step_up",
        }
    }

    pub fn parse(input: &str) -> Result<Self, BindingError> {
        Self::ALL
            .into_iter()
            .find(|purpose| purpose.as_str() == input)
            .ok_or(BindingError::UnknownPurpose)
    }
}

/// Sensitive actions that need a step-up (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensitiveAction {
    BankAccountChange,
    BenefitClaim,
    PhoneChange,
    EmailChange,
    PasswordReset,
}

impl SensitiveAction {
    pub const ALL: [SensitiveAction; 5] = [
        Self::BankAccountChange,
        Self::BenefitClaim,
        Self::PhoneChange,
        Self::EmailChange,
        Self::PasswordReset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BankAccountChange => "bank_account_change",
            Self::BenefitClaim => "benefit_claim",
            Self::PhoneChange => "phone_change",
            Self::EmailChange => "email_change",
            Self::PasswordReset => "password_reset",
        }
    }

    pub fn parse(input: &str) -> Result<Self, BindingError> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == input)
            .ok_or(BindingError::UnknownAction)
    }

    /// How the action reads in a message, Indonesian and English.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Self::BankAccountChange => ("ubah rekening bank", "bank account change"),
            Self::BenefitClaim => ("klaim manfaat", "benefit claim"),
            Self::PhoneChange => ("ganti nomor HP", "phone number change"),
            Self::EmailChange => ("ganti email", "email change"),
            Self::PasswordReset => ("atur ulang kata sandi", "password reset"),
        }
    }
}

/// The details of a step-up action (e.g. `{"bank_account": "1234567890"}`), as the calling service
/// states them when starting and again when checking. Only a digest of them enters the code's binding;
/// they are never stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionDetails(BTreeMap<String, String>);

impl ActionDetails {
    const MAX_ENTRIES: usize = 16;
    const MAX_KEY: usize = 40;
    const MAX_VALUE: usize = 200;

    pub fn parse(entries: BTreeMap<String, String>) -> Result<Self, BindingError> {
        if entries.len() > Self::MAX_ENTRIES {
            return Err(BindingError::DetailsInvalid);
        }
        for (key, value) in &entries {
            let key_ok = !key.is_empty()
                && key.len() <= Self::MAX_KEY
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !key_ok || value.chars().count() > Self::MAX_VALUE {
                return Err(BindingError::DetailsInvalid);
            }
        }
        Ok(Self(entries))
    }

    /// The entries, in key order.
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// SHA-256 over the entries in key order, each length-prefixed.
    fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for (key, value) in &self.0 {
            hash.update((key.len() as u32).to_be_bytes());
            hash.update(key.as_bytes());
            hash.update((value.len() as u32).to_be_bytes());
            hash.update(value.as_bytes());
        }
        hash.finalize().into()
    }
}

/// What a code is bound to besides its verification: the purpose and, for a step-up, the action and
/// the digest of its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    purpose: Purpose,
    action: Option<(SensitiveAction, [u8; 32])>,
}

impl Binding {
    /// A step-up needs an action; every other purpose refuses one.
    pub fn new(
        purpose: Purpose,
        action: Option<SensitiveAction>,
        details: ActionDetails,
    ) -> Result<Self, BindingError> {
        match (purpose, action) {
            (Purpose::StepUp, Some(action)) => Ok(Self {
                purpose,
                action: Some((action, details.digest())),
            }),
            (Purpose::StepUp, None) => Err(BindingError::ActionMissing),
            (_, Some(_)) => Err(BindingError::ActionNotAllowed),
            (_, None) if !details.0.is_empty() => Err(BindingError::ActionNotAllowed),
            (_, None) => Ok(Self {
                purpose,
                action: None,
            }),
        }
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    pub fn action(&self) -> Option<SensitiveAction> {
        self.action.map(|(action, _)| action)
    }

    /// The bytes a code digest is keyed on.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.purpose.as_str().as_bytes().to_vec();
        if let Some((action, details)) = &self.action {
            bytes.push(b'/');
            bytes.extend_from_slice(action.as_str().as_bytes());
            bytes.push(b'/');
            bytes.extend_from_slice(details);
        }
        bytes
    }
}

/// Why a purpose or its binding cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error(
        "unknown purpose; use registration, login_new_device, recovery, contact_change_authorisation, contact_change_proof or step_up"
    )]
    UnknownPurpose,
    #[error(
        "unknown action; use bank_account_change, benefit_claim, phone_change, email_change or password_reset"
    )]
    UnknownAction,
    #[error("a step-up needs the action it confirms")]
    ActionMissing,
    #[error("only a step-up carries an action and its details")]
    ActionNotAllowed,
    #[error(
        "action details are at most 16 entries, keys of a-z, 0-9 and _ (at most 40), values of at most 200 characters"
    )]
    DetailsInvalid,
}

impl Explain for BindingError {
    fn code(&self) -> &'static str {
        match self {
            Self::UnknownPurpose => "purpose_unknown",
            Self::UnknownAction => "action_unknown",
            Self::ActionMissing => "action_missing",
            Self::ActionNotAllowed => "action_not_allowed",
            Self::DetailsInvalid => "action_details_invalid",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::UnknownPurpose => "Tujuan verifikasi tidak dikenal.".into(),
            Self::UnknownAction => "Jenis transaksi tidak dikenal.".into(),
            Self::ActionMissing => "Verifikasi transaksi harus menyebut transaksinya.".into(),
            Self::ActionNotAllowed => {
                "Hanya verifikasi transaksi yang boleh membawa rincian transaksi.".into()
            }
            Self::DetailsInvalid => "Rincian transaksi tidak valid.".into(),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(pairs: &[(&str, &str)]) -> ActionDetails {
        ActionDetails::parse(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn purposes_and_actions_round_trip_their_names() {
        for purpose in Purpose::ALL {
            assert_eq!(Purpose::parse(purpose.as_str()), Ok(purpose));
        }
        for action in SensitiveAction::ALL {
            assert_eq!(SensitiveAction::parse(action.as_str()), Ok(action));
        }
        assert_eq!(Purpose::parse("login"), Err(BindingError::UnknownPurpose));
    }

    #[test]
    fn a_step_up_is_bound_to_its_action_and_details() {
        let a = Binding::new(
            Purpose::StepUp,
            Some(SensitiveAction::BankAccountChange),
            details(&[("bank_account", "1234567890")]),
        )
        .unwrap();
        let b = Binding::new(
            Purpose::StepUp,
            Some(SensitiveAction::BankAccountChange),
            details(&[("bank_account", "1234567891")]),
        )
        .unwrap();
        let c = Binding::new(
            Purpose::StepUp,
            Some(SensitiveAction::BenefitClaim),
            details(&[("bank_account", "1234567890")]),
        )
        .unwrap();
        assert_ne!(a.to_bytes(), b.to_bytes());
        assert_ne!(a.to_bytes(), c.to_bytes());
        assert_eq!(a.to_bytes(), a.clone().to_bytes());
    }

    #[test]
    fn only_a_step_up_takes_an_action() {
        assert_eq!(
            Binding::new(Purpose::StepUp, None, ActionDetails::default()),
            Err(BindingError::ActionMissing)
        );
        assert_eq!(
            Binding::new(
                Purpose::Recovery,
                Some(SensitiveAction::PasswordReset),
                ActionDetails::default()
            ),
            Err(BindingError::ActionNotAllowed)
        );
        assert_eq!(
            Binding::new(Purpose::Recovery, None, details(&[("x", "y")])),
            Err(BindingError::ActionNotAllowed)
        );
    }

    #[test]
    fn details_with_odd_keys_or_huge_values_are_refused() {
        for (key, value) in [("Bank", "1"), ("", "1"), ("a-b", "1")] {
            let map = [(key.to_owned(), value.to_owned())].into_iter().collect();
            assert_eq!(ActionDetails::parse(map), Err(BindingError::DetailsInvalid));
        }
        let huge = [("k".to_owned(), "x".repeat(201))].into_iter().collect();
        assert_eq!(
            ActionDetails::parse(huge),
            Err(BindingError::DetailsInvalid)
        );
    }
}
