//! `Email`: an address on file, normalised to lower case so that "one email per account" does not
//! depend on how it was typed.

use std::fmt;

use email_address::{EmailAddress, Options};
use serde::{Deserialize, Serialize};

use crate::explain::Explain;

/// An email address that a message can be sent to: `local@domain.tld`, lower case, no display name.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Why an input is not a usable email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("an email address has at most 254 characters")]
    TooLong,
    #[error("this is not an email address of the form name@domain.tld")]
    Malformed,
}

impl Explain for EmailError {
    fn code(&self) -> &'static str {
        match self {
            Self::TooLong => "email_too_long",
            Self::Malformed => "email_malformed",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::TooLong => "Alamat email paling banyak 254 karakter.".into(),
            Self::Malformed => "Ini bukan alamat email dengan bentuk nama@domain.tld.".into(),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let options = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        let address = EmailAddress::parse_with_options(trimmed, options)
            .map_err(|_| EmailError::Malformed)?;
        Ok(Self(address.as_str().to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `b***@gmail.com`: the first character of the local part and the whole domain.
    pub fn masked(&self) -> String {
        match self.0.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        }
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            Email::parse("  Budi.Santoso@Example.COM ")
                .unwrap()
                .as_str(),
            "budi.santoso@example.com"
        );
    }

    #[test]
    fn refuses_addresses_without_a_domain_or_with_a_display_name() {
        for bad in [
            "budi",
            "budi@",
            "@example.com",
            "budi@localhost",
            "Budi <budi@example.com>",
            "budi@[127.0.0.1]",
            "",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Malformed), "{bad}");
        }
        assert_eq!(
            Email::parse(&format!("{}@example.com", "a".repeat(250))),
            Err(EmailError::TooLong)
        );
    }

    #[test]
    fn masks_all_but_the_first_letter_and_the_domain() {
        let email = Email::parse("budi@gmail.com").unwrap();
        assert_eq!(email.masked(), "b***@gmail.com");
        assert_eq!(format!("{email:?}"), "Email(b***@gmail.com)");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in "\\PC{0,80}") {
            let _ = Email::parse(&s);
        }

        #[test]
        fn parse_of_a_formatted_address_round_trips(local in "[a-zA-Z0-9._]{1,20}", domain in "[a-z]{1,10}\\.(com|co\\.id|org)") {
            if let Ok(email) = Email::parse(&format!("{local}@{domain}")) {
                prop_assert_eq!(Email::parse(email.as_str()).unwrap(), email);
            }
        }
    }
}
