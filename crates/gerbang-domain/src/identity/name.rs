//! `PersonName`: a participant's full name as the registry holds it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::explain::Explain;

/// A full name: 1–100 characters after trimming, inner whitespace collapsed, no control characters.
/// Single names are common in Indonesia, so one word is enough.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

/// Why an input is not a usable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonNameError {
    #[error("the name is empty")]
    Empty,
    #[error("a name has at most 100 characters")]
    TooLong,
    #[error("a name cannot contain digits or control characters")]
    Invalid,
}

impl Explain for PersonNameError {
    fn code(&self) -> &'static str {
        match self {
            Self::Empty => "name_empty",
            Self::TooLong => "name_too_long",
            Self::Invalid => "name_invalid",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::Empty => "Nama tidak boleh kosong.".into(),
            Self::TooLong => "Nama paling banyak 100 karakter.".into(),
            Self::Invalid => "Nama tidak boleh berisi angka atau karakter kontrol.".into(),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, PersonNameError> {
        let collapsed = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return Err(PersonNameError::Empty);
        }
        if collapsed.chars().count() > 100 {
            return Err(PersonNameError::TooLong);
        }
        if collapsed
            .chars()
            .any(|c| c.is_control() || c.is_ascii_digit())
        {
            return Err(PersonNameError::Invalid);
        }
        Ok(Self(collapsed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `BUDI S******`: the first word whole, the first letter of each later word, the rest starred, so a
    /// participant recognises their own name and a stranger learns little.
    pub fn masked(&self) -> String {
        let upper = self.0.to_uppercase();
        let mut words = upper.split(' ');
        let mut out = words.next().unwrap_or_default().to_string();
        for word in words {
            let mut chars = word.chars();
            out.push(' ');
            if let Some(first) = chars.next() {
                out.push(first);
            }
            out.extend(chars.map(|_| '*'));
        }
        out
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({})", self.masked())
    }
}

impl TryFrom<String> for PersonName {
    type Error = PersonNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PersonName> for String {
    fn from(value: PersonName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_like_the_registration_screen() {
        assert_eq!(
            PersonName::parse("Budi Santoso").unwrap().masked(),
            "BUDI S******"
        );
        assert_eq!(PersonName::parse("Sukarno").unwrap().masked(), "SUKARNO");
    }

    #[test]
    fn collapses_whitespace_and_refuses_empty_or_digits() {
        assert_eq!(
            PersonName::parse("  Siti   Nurhaliza ").unwrap().as_str(),
            "Siti Nurhaliza"
        );
        assert_eq!(PersonName::parse("   "), Err(PersonNameError::Empty));
        assert_eq!(PersonName::parse("Budi 2"), Err(PersonNameError::Invalid));
        assert_eq!(
            PersonName::parse(&"a".repeat(101)),
            Err(PersonNameError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "\\PC{0,120}") {
            if let Ok(name) = PersonName::parse(&s) {
                prop_assert_eq!(PersonName::parse(name.as_str()).unwrap(), name.clone());
                let _ = name.masked();
            }
        }
    }
}
