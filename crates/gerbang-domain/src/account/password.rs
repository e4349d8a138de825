//! The password policy of SPEC §3: length, character classes, a bundled list of common passwords and
//! a ban on the participant's own NIK, card number and birth date inside the password.
//!
//! [`PasswordPolicy::check`] never stops at the first failure: it returns every rule the password
//! breaks, so the app can tell the participant all of them at once.

use std::collections::HashSet;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::explain::Explain;
use crate::identity::{JknCardNumber, Nik};

/// What a password must satisfy. Defaults are SPEC §3's; every field is configurable.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values, not bytes).
    pub min_length: usize,
    /// Most characters: a bound on what is hashed, not a security rule (NIST allows at least 64).
    pub max_length: usize,
    pub require_upper: bool,
    pub require_lower: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
    /// Refuse passwords from the bundled list of common passwords (and their decorated forms).
    pub refuse_common: bool,
    /// Refuse passwords containing the participant's NIK, card number or birth date.
    pub refuse_personal: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            require_upper: true,
            require_lower: true,
            require_digit: true,
            require_symbol: true,
            refuse_common: true,
            refuse_personal: true,
        }
    }
}

/// What is known of the participant whose password is being set: none of it may appear inside.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersonalFacts<'a> {
    pub nik: Option<&'a Nik>,
    pub card: Option<&'a JknCardNumber>,
    pub birth_date: Option<NaiveDate>,
}

/// One rule a password breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRule {
    TooShort { min: usize },
    TooLong { max: usize },
    NoUpper,
    NoLower,
    NoDigit,
    NoSymbol,
    Common,
    ContainsNik,
    ContainsCardNumber,
    ContainsBirthDate,
}

impl PasswordRule {
    /// Stable code of this rule, listed in the `weak_password` answer.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort { .. } => "password_too_short",
            Self::TooLong { .. } => "password_too_long",
            Self::NoUpper => "password_no_upper",
            Self::NoLower => "password_no_lower",
            Self::NoDigit => "password_no_digit",
            Self::NoSymbol => "password_no_symbol",
            Self::Common => "password_common",
            Self::ContainsNik => "password_contains_nik",
            Self::ContainsCardNumber => "password_contains_card_number",
            Self::ContainsBirthDate => "password_contains_birth_date",
        }
    }

    pub fn message_id(self) -> String {
        match self {
            Self::TooShort { min } => format!("minimal {min} karakter"),
            Self::TooLong { max } => format!("maksimal {max} karakter"),
            Self::NoUpper => "memuat huruf besar (A–Z)".into(),
            Self::NoLower => "memuat huruf kecil (a–z)".into(),
            Self::NoDigit => "memuat angka (0–9)".into(),
            Self::NoSymbol => "memuat simbol (mis. ! @ # ?)".into(),
            Self::Common => "bukan kata sandi yang umum dipakai atau mudah ditebak".into(),
            Self::ContainsNik => "tidak memuat NIK Anda".into(),
            Self::ContainsCardNumber => "tidak memuat nomor kartu Anda".into(),
            Self::ContainsBirthDate => "tidak memuat tanggal lahir Anda".into(),
        }
    }

    pub fn message_en(self) -> String {
        match self {
            Self::TooShort { min } => format!("at least {min} characters"),
            Self::TooLong { max } => format!("at most {max} characters"),
            Self::NoUpper => "an upper-case letter (A–Z)".into(),
            Self::NoLower => "a lower-case letter (a–z)".into(),
            Self::NoDigit => "a digit (0–9)".into(),
            Self::NoSymbol => "a symbol (e.g. ! @ # ?)".into(),
            Self::Common => "not a commonly used or easily guessed password".into(),
            Self::ContainsNik => "not your NIK".into(),
            Self::ContainsCardNumber => "not your card number".into(),
            Self::ContainsBirthDate => "not your date of birth".into(),
        }
    }
}

/// A password refused by the policy, with every rule it breaks (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the password breaks {} rule(s) of the password policy", failed.len())]
pub struct WeakPassword {
    failed: Vec<PasswordRule>,
}

impl WeakPassword {
    /// The broken rules, in the policy's order.
    pub fn failed(&self) -> &[PasswordRule] {
        &self.failed
    }
}

impl Explain for WeakPassword {
    fn code(&self) -> &'static str {
        "weak_password"
    }

    fn message_id(&self) -> String {
        let rules: Vec<String> = self.failed.iter().map(|rule| rule.message_id()).collect();
        format!(
            "Kata sandi belum memenuhi syarat. Kata sandi harus {}.",
            rules.join("; ")
        )
    }

    fn message_en(&self) -> String {
        let rules: Vec<String> = self.failed.iter().map(|rule| rule.message_en()).collect();
        format!(
            "The password does not meet the policy. It needs {}.",
            rules.join("; ")
        )
    }
}

impl PasswordPolicy {
    /// Every rule `password` breaks for the participant described by `facts`, or `Ok`.
    pub fn check(&self, password: &str, facts: PersonalFacts<'_>) -> Result<(), WeakPassword> {
        let mut failed = Vec::new();
        let length = password.chars().count();
        if length < self.min_length {
            failed.push(PasswordRule::TooShort {
                min: self.min_length,
            });
        }
        if length > self.max_length {
            failed.push(PasswordRule::TooLong {
                max: self.max_length,
            });
        }
        let classes = [
            (
                self.require_upper,
                PasswordRule::NoUpper,
                char::is_uppercase as fn(char) -> bool,
            ),
            (
                self.require_lower,
                PasswordRule::NoLower,
                char::is_lowercase,
            ),
            (self.require_digit, PasswordRule::NoDigit, |c: char| {
                c.is_ascii_digit()
            }),
            (self.require_symbol, PasswordRule::NoSymbol, is_symbol),
        ];
        for (required, rule, test) in classes {
            if required && !password.chars().any(test) {
                failed.push(rule);
            }
        }
        // An over-long input is refused above; the remaining checks are skipped so that their cost
        // stays bounded by `max_length`.
        if length <= self.max_length {
            if self.refuse_common && is_common(password) {
                failed.push(PasswordRule::Common);
            }
            if self.refuse_personal {
                failed.extend(personal_rules(password, facts));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(WeakPassword { failed })
        }
    }
}

/// Anything that is not a letter, a digit or white space counts as a symbol.
fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace()
}

fn common_list() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    })
}

/// Undoes the look-alike substitutions people use to pass class rules (`p@ssw0rd`).
fn undo_lookalikes(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        other => other,
    }
}

/// Whether the password (lower-cased, spaces dropped) is on the bundled list, or its core is: the
/// letters between any leading and trailing digits and symbols, with separators dropped and
/// look-alikes undone (`P@ssw0rd123!` → `password`).
fn is_common(password: &str) -> bool {
    let list = common_list();
    let lower: String = password
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if list.contains(lower.as_str()) {
        return true;
    }
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    if core.is_empty() {
        return false;
    }
    let undone: String = core
        .chars()
        .filter(|c| !matches!(c, '.' | '-' | '_'))
        .map(undo_lookalikes)
        .collect();
    list.contains(core) || list.contains(undone.as_str())
}

/// The password with the separators people put between digits (`-`, `/`, `.`, space) removed, so
/// that `17-08-1945` is seen as `17081945`.
fn without_separators(password: &str) -> String {
    password
        .chars()
        .filter(|c| !matches!(c, '-' | '/' | '.' | ' ' | '_'))
        .collect()
}

fn personal_rules(password: &str, facts: PersonalFacts<'_>) -> Vec<PasswordRule> {
    let joined = without_separators(password);
    let mut failed = Vec::new();
    if facts.nik.is_some_and(|nik| joined.contains(nik.as_str())) {
        failed.push(PasswordRule::ContainsNik);
    }
    if facts
        .card
        .is_some_and(|card| joined.contains(card.as_str()))
    {
        failed.push(PasswordRule::ContainsCardNumber);
    }
    if let Some(date) = facts.birth_date
        && birth_date_forms(date)
            .iter()
            .any(|form| joined.contains(form.as_str()))
    {
        failed.push(PasswordRule::ContainsBirthDate);
    }
    failed
}

/// The ways a birth date is written in Indonesia and in forms: day-month-year with four- or two-digit
/// years, and year-month-day.
fn birth_date_forms(date: NaiveDate) -> [String; 3] {
    let (d, m, y) = (date.day(), date.month(), date.year());
    [
        format!("{d:02}{m:02}{y:04}"),
        format!("{y:04}{m:02}{d:02}"),
        format!("{d:02}{m:02}{:02}", y.rem_euclid(100)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nik() -> Nik {
        // Synthetic: Jakarta Selatan (31 74 01), born 17 August 1985, male, sequence 0001.
        Nik::parse("3174011708850001").unwrap()
    }

    fn rules(password: &str, facts: PersonalFacts<'_>) -> Vec<&'static str> {
        match PasswordPolicy::default().check(password, facts) {
            Ok(()) => Vec::new(),
            Err(weak) => weak.failed().iter().map(|rule| rule.code()).collect(),
        }
    }

    #[test]
    fn a_strong_password_passes() {
        assert_eq!(
            rules("Teduh#Rimba42", PersonalFacts::default()),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn every_broken_rule_is_named_at_once() {
        assert_eq!(
            rules("abc", PersonalFacts::default()),
            [
                "password_too_short",
                "password_no_upper",
                "password_no_digit",
                "password_no_symbol",
                "password_common"
            ]
        );
        assert_eq!(
            rules("ALLUPPER123!", PersonalFacts::default()),
            ["password_no_lower"]
        );
    }

    #[test]
    fn decorated_common_passwords_are_refused() {
        for password in [
            "P@ssw0rd123!",
            "Bismillah1!",
            "Indonesia45#",
            "!Qwerty2024",
            "Sayangku_99",
            "BPJS.kesehatan1",
        ] {
            assert!(
                rules(password, PersonalFacts::default()).contains(&"password_common"),
                "{password} should be common"
            );
        }
        assert!(!rules("Bismillah-Pagi7", PersonalFacts::default()).contains(&"password_common"));
    }

    #[test]
    fn the_participants_own_numbers_are_refused() {
        let nik = nik();
        let card = JknCardNumber::parse("0001234567890").unwrap();
        let facts = PersonalFacts {
            nik: Some(&nik),
            card: Some(&card),
            birth_date: NaiveDate::from_ymd_opt(1985, 8, 17),
        };
        assert_eq!(
            rules("Aa!3174011708850001", facts),
            ["password_contains_nik", "password_contains_birth_date"]
        );
        assert_eq!(
            rules("Kartu#0001234567890x", facts),
            ["password_contains_card_number"]
        );
        for password in [
            "Lahir!17081985",
            "Lahir!1985-08-17",
            "Lahir!17/08/85",
            "Lahir 17.08.1985!",
        ] {
            assert_eq!(
                rules(password, facts),
                ["password_contains_birth_date"],
                "{password}"
            );
        }
        // Someone else's date is no concern of this rule.
        assert_eq!(rules("Lahir!17081945", facts), Vec::<&str>::new());
    }

    #[test]
    fn over_long_passwords_are_refused_without_further_checks() {
        let long = format!("Aa1!{}", "x".repeat(200));
        assert_eq!(
            rules(&long, PersonalFacts::default()),
            ["password_too_long"]
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // Eight characters, more than eight bytes.
        assert_eq!(
            rules("Ésüß#1ab", PersonalFacts::default()),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn the_message_lists_every_rule_in_both_languages() {
        let weak = PasswordPolicy::default()
            .check("abcdefgh", PersonalFacts::default())
            .unwrap_err();
        assert_eq!(weak.code(), "weak_password");
        assert!(
            weak.message_id().contains("huruf besar"),
            "{}",
            weak.message_id()
        );
        assert!(
            weak.message_en().contains("a digit"),
            "{}",
            weak.message_en()
        );
    }

    #[test]
    fn a_relaxed_policy_is_honoured() {
        let policy = PasswordPolicy {
            require_symbol: false,
            refuse_common: false,
            min_length: 12,
            ..PasswordPolicy::default()
        };
        assert!(
            policy
                .check("Password1234", PersonalFacts::default())
                .is_ok()
        );
        assert!(
            policy
                .check("Password123", PersonalFacts::default())
                .is_err()
        );
    }

    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../../../../docs/accounts.md");
        let rules = [
            PasswordRule::TooShort { min: 8 },
            PasswordRule::TooLong { max: 128 },
            PasswordRule::NoUpper,
            PasswordRule::NoLower,
            PasswordRule::NoDigit,
            PasswordRule::NoSymbol,
            PasswordRule::Common,
            PasswordRule::ContainsNik,
            PasswordRule::ContainsCardNumber,
            PasswordRule::ContainsBirthDate,
        ];
        for rule in rules {
            let row = format!("| `{}` |", rule.code());
            assert!(doc.contains(&row), "docs/accounts.md lacks {row}");
            assert!(doc.contains(&rule.message_id()), "{}", rule.message_id());
            assert!(doc.contains(&rule.message_en()), "{}", rule.message_en());
        }
        assert!(doc.contains("`weak_password`"));
    }

    proptest! {
        #[test]
        fn accepted_passwords_satisfy_every_class_rule(password in "\\PC{0,40}") {
            if PasswordPolicy::default().check(&password, PersonalFacts::default()).is_ok() {
                prop_assert!(password.chars().count() >= 8);
                prop_assert!(password.chars().any(char::is_uppercase));
                prop_assert!(password.chars().any(char::is_lowercase));
                prop_assert!(password.chars().any(|c| c.is_ascii_digit()));
                prop_assert!(password.chars().any(is_symbol));
                prop_assert!(!is_common(&password));
            }
        }

        #[test]
        fn a_password_holding_the_nik_is_always_refused(prefix in "\\PC{0,10}", suffix in "\\PC{0,10}") {
            let nik = nik();
            let password = format!("{prefix}{}{suffix}", nik.as_str());
            let facts = PersonalFacts { nik: Some(&nik), ..PersonalFacts::default() };
            let weak = PasswordPolicy::default().check(&password, facts).unwrap_err();
            prop_assert!(weak.failed().contains(&PasswordRule::ContainsNik));
        }
    }
}
