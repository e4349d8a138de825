//! Fixed-length membership numbers: the JKN card (13 digits, BPJS Kesehatan), the KPJ number
//! (11 digits, BPJS Ketenagakerjaan) and the family-card number (Nomor KK, 16 digits).
//!
//! None has a published checksum (`shared/research/domain.md` §2), so only the shape is checked. A
//! family-card number starts with the same province codes as a NIK and ends in a sequence from
//! 0001; its middle digits are an issuance date whose pre-2000 form is not documented, so they are
//! not checked.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::digits::{DigitsError, clean_digits, two_digits};
use super::{mask_middle, province_name};
use crate::explain::Explain;

/// Why an input is not a membership number of the requested kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("a {} contains only digits", .kind.name_en())]
    NotDigits { kind: NumberKind },
    #[error("a {} has {expected} digits, this one has {found}", .kind.name_en())]
    Length {
        kind: NumberKind,
        expected: usize,
        found: usize,
    },
    #[error("digits 1-2 of a family-card number are a province code; {code:02} is not one")]
    Province { code: u32 },
    #[error("the last 4 digits of a family-card number are a sequence starting at 0001")]
    Sequence,
}

/// Which membership number an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    JknCard,
    Kpj,
    FamilyCard,
}

impl NumberKind {
    fn name_en(self) -> &'static str {
        match self {
            Self::JknCard => "JKN card number",
            Self::Kpj => "KPJ number",
            Self::FamilyCard => "family-card number",
        }
    }

    fn name_id(self) -> &'static str {
        match self {
            Self::JknCard => "Nomor kartu JKN",
            Self::Kpj => "Nomor KPJ",
            Self::FamilyCard => "Nomor KK",
        }
    }

    fn code_prefix(self) -> &'static str {
        match self {
            Self::JknCard => "card_number",
            Self::Kpj => "kpj_number",
            Self::FamilyCard => "family_card_number",
        }
    }
}

impl Explain for NumberError {
    fn code(&self) -> &'static str {
        match (self, self.kind()) {
            (Self::NotDigits { .. }, NumberKind::JknCard) => "card_number_not_digits",
            (Self::NotDigits { .. }, NumberKind::Kpj) => "kpj_number_not_digits",
            (Self::NotDigits { .. }, NumberKind::FamilyCard) => "family_card_number_not_digits",
            (Self::Length { .. }, NumberKind::JknCard) => "card_number_length",
            (Self::Length { .. }, NumberKind::Kpj) => "kpj_number_length",
            (Self::Length { .. }, NumberKind::FamilyCard) => "family_card_number_length",
            (Self::Province { .. }, _) => "family_card_number_province",
            (Self::Sequence, _) => "family_card_number_sequence",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::NotDigits { kind } => format!("{} hanya berisi angka.", kind.name_id()),
            Self::Length {
                kind,
                expected,
                found,
            } => {
                format!(
                    "{} terdiri dari {expected} angka; yang dimasukkan {found} angka.",
                    kind.name_id()
                )
            }
            Self::Province { code } => {
                format!(
                    "Dua angka pertama Nomor KK adalah kode provinsi; {code:02} bukan kode provinsi."
                )
            }
            Self::Sequence => {
                "Empat angka terakhir Nomor KK adalah nomor urut yang dimulai dari 0001.".into()
            }
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

impl NumberError {
    fn kind(&self) -> NumberKind {
        match self {
            Self::NotDigits { kind } | Self::Length { kind, .. } => *kind,
            Self::Province { .. } | Self::Sequence => NumberKind::FamilyCard,
        }
    }

    /// The stable prefix of this error's codes, naming the field (`card_number`, `kpj_number`, ...).
    pub fn field(&self) -> &'static str {
        self.kind().code_prefix()
    }
}

fn digits_of(input: &str, kind: NumberKind, expected: usize) -> Result<String, NumberError> {
    clean_digits(input, expected).map_err(|e| match e {
        DigitsError::NotDigits => NumberError::NotDigits { kind },
        DigitsError::Length { found } => NumberError::Length {
            kind,
            expected,
            found,
        },
    })
}

macro_rules! membership_number {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $len:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Number of digits.
            pub const LENGTH: usize = $len;

            /// Parses the number as typed by a person (spaces, dots and dashes ignored).
            pub fn parse(input: &str) -> Result<Self, NumberError> {
                let digits = digits_of(input, $kind, $len)?;
                let check: fn(&str) -> Result<(), NumberError> = $check;
                check(&digits)?;
                Ok(Self(digits))
            }

            /// The digits.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// All but the last four digits hidden.
            pub fn masked(&self) -> String {
                mask_middle(&self.0, 0, 4)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.masked())
            }
        }

        impl TryFrom<String> for $name {
            type Error = NumberError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

membership_number!(
    /// JKN card number (nomor kartu / NOKA), 13 digits, usually starting with `000`.
    JknCardNumber, NumberKind::JknCard, 13, |_| Ok(())
);
membership_number!(
    /// KPJ number of BPJS Ketenagakerjaan, 11 digits.
    KpjNumber, NumberKind::Kpj, 11, |_| Ok(())
);
membership_number!(
    /// Family-card number (Nomor Kartu Keluarga), 16 digits: area, issuance date, sequence.
    FamilyCardNumber, NumberKind::FamilyCard, 16, |digits| {
        let province = two_digits(digits, 0);
        if province_name(province).is_none() {
            return Err(NumberError::Province { code: province });
        }
        if &digits[12..] == "0000" {
            return Err(NumberError::Sequence);
        }
        Ok(())
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_card_number_has_thirteen_digits() {
        assert_eq!(
            JknCardNumber::parse("0001944358911").unwrap().as_str(),
            "0001944358911"
        );
        assert_eq!(
            JknCardNumber::parse("0001 9443 58911").unwrap().as_str(),
            "0001944358911"
        );
        let err = JknCardNumber::parse("000194435891").unwrap_err();
        assert_eq!(err.code(), "card_number_length");
        assert!(err.message_id().contains("13 angka"));
        assert_eq!(
            JknCardNumber::parse("00019443589x1").unwrap_err().code(),
            "card_number_not_digits"
        );
    }

    #[test]
    fn a_kpj_number_has_eleven_digits() {
        assert!(KpjNumber::parse("12345678901").is_ok());
        assert_eq!(
            KpjNumber::parse("1234567890").unwrap_err().code(),
            "kpj_number_length"
        );
    }

    #[test]
    fn a_family_card_number_checks_province_and_sequence() {
        assert!(FamilyCardNumber::parse("3171010101200003").is_ok());
        assert_eq!(
            FamilyCardNumber::parse("9971010101200003")
                .unwrap_err()
                .code(),
            "family_card_number_province"
        );
        assert_eq!(
            FamilyCardNumber::parse("3171010101200000")
                .unwrap_err()
                .code(),
            "family_card_number_sequence"
        );
    }

    #[test]
    fn debug_output_shows_only_the_last_four_digits() {
        let card = JknCardNumber::parse("0001944358911").unwrap();
        assert_eq!(format!("{card:?}"), "JknCardNumber(*********8911)");
    }

    proptest! {
        #[test]
        fn never_panic_on_arbitrary_input(s in "\\PC{0,30}") {
            let _ = JknCardNumber::parse(&s);
            let _ = KpjNumber::parse(&s);
            let _ = FamilyCardNumber::parse(&s);
        }

        #[test]
        fn card_numbers_round_trip(s in "[0-9]{13}") {
            let card = JknCardNumber::parse(&s).unwrap();
            prop_assert_eq!(JknCardNumber::parse(card.as_str()).unwrap(), card);
        }

        #[test]
        fn kpj_numbers_round_trip(s in "[0-9]{11}") {
            let kpj = KpjNumber::parse(&s).unwrap();
            prop_assert_eq!(KpjNumber::parse(kpj.as_str()).unwrap(), kpj);
        }

        #[test]
        fn family_card_numbers_round_trip(s in "3[1-6][0-9]{10}[0-9]{3}[1-9]") {
            let kk = FamilyCardNumber::parse(&s).unwrap();
            prop_assert_eq!(FamilyCardNumber::parse(kk.as_str()).unwrap(), kk);
        }
    }
}
