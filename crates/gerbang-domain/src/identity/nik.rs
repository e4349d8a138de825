//! `Nik`, the 16-digit population number (Nomor Induk Kependudukan).
//!
//! Layout `PPRRSSDDMMYYXXXX`: province, regency, district of first registration; birth date with 40
//! added to the day for women, century not encoded; a sequence from 0001. There is no checksum.
//! The date inside a NIK is only a hint about the holder's birth date: Dukcapil never corrects a NIK
//! whose date digits were recorded wrongly, so callers compare it with [`Nik::encodes_birth_date`]
//! and treat a difference as a hint, never as a rejection.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::digits::{DigitsError, clean_digits, two_digits};
use super::{mask_middle, province_name};
use crate::explain::Explain;

/// A NIK that passed every shape rule.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nik(String);

/// Sex as recorded in the registry and encoded in a NIK's day digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// The NIK rule an input broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NikError {
    #[error("a NIK contains only digits (spaces, dots and dashes are ignored)")]
    NotDigits,
    #[error("a NIK has 16 digits, this one has {found}")]
    Length { found: usize },
    #[error("digits 1-2 of a NIK are a province code; {code:02} is not one")]
    Province { code: u32 },
    #[error(
        "digits 7-12 of a NIK are a birth date DDMMYY (day + 40 for women) and these do not form a date"
    )]
    Date { day: u32, month: u32, year: u32 },
    #[error("digits 13-16 of a NIK are a sequence starting at 0001; 0000 is not valid")]
    Sequence,
}

impl Explain for NikError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotDigits => "nik_not_digits",
            Self::Length { .. } => "nik_length",
            Self::Province { .. } => "nik_province",
            Self::Date { .. } => "nik_date",
            Self::Sequence => "nik_sequence",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::NotDigits => "NIK hanya berisi angka (spasi, titik, dan tanda hubung diabaikan).".into(),
            Self::Length { found } => format!("NIK terdiri dari 16 angka; yang dimasukkan {found} angka."),
            Self::Province { code } => format!(
                "Dua angka pertama NIK adalah kode provinsi; {code:02} bukan kode provinsi. Periksa kembali NIK pada KTP Anda."
            ),
            Self::Date { .. } => "Angka ke-7 sampai ke-12 NIK adalah tanggal lahir (DDMMYY, tanggal + 40 untuk perempuan) dan tidak membentuk tanggal yang ada. Periksa kembali NIK pada KTP Anda.".into(),
            Self::Sequence => "Empat angka terakhir NIK adalah nomor urut yang dimulai dari 0001; 0000 tidak berlaku.".into(),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

impl Nik {
    /// Parses a NIK as typed by a person: separators are ignored, every shape rule is checked.
    pub fn parse(input: &str) -> Result<Self, NikError> {
        let digits = clean_digits(input, 16).map_err(|e| match e {
            DigitsError::NotDigits => NikError::NotDigits,
            DigitsError::Length { found } => NikError::Length { found },
        })?;
        let province = two_digits(&digits, 0);
        if province_name(province).is_none() {
            return Err(NikError::Province { code: province });
        }
        let (day, month, year) = (
            two_digits(&digits, 6),
            two_digits(&digits, 8),
            two_digits(&digits, 10),
        );
        let real_day = if day > 40 { day - 40 } else { day };
        let is_date = |century: i32| {
            NaiveDate::from_ymd_opt(century + year as i32, month, real_day).is_some()
        };
        if !(1..=31).contains(&real_day) || day == 40 || !(is_date(1900) || is_date(2000)) {
            return Err(NikError::Date { day, month, year });
        }
        if &digits[12..] == "0000" {
            return Err(NikError::Sequence);
        }
        Ok(Self(digits))
    }

    /// Builds the NIK that encodes the given place, birth date, sex and sequence (for generators).
    pub fn compose(
        area: u32,
        birth_date: NaiveDate,
        sex: Sex,
        sequence: u16,
    ) -> Result<Self, NikError> {
        let day = birth_date.day() + if sex == Sex::Female { 40 } else { 0 };
        let text = format!(
            "{area:06}{day:02}{month:02}{year:02}{sequence:04}",
            month = birth_date.month(),
            year = birth_date.year().rem_euclid(100),
        );
        Self::parse(&text)
    }

    /// The 16 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `3171********0001`: enough for a person to recognise their own number.
    pub fn masked(&self) -> String {
        mask_middle(&self.0, 4, 4)
    }

    /// Province code (digits 1–2).
    pub fn province(&self) -> u32 {
        two_digits(&self.0, 0)
    }

    /// Sex encoded in the day digits.
    pub fn sex(&self) -> Sex {
        if two_digits(&self.0, 6) > 40 {
            Sex::Female
        } else {
            Sex::Male
        }
    }

    /// Whether `date` has the day, month and two-digit year that this NIK encodes.
    pub fn encodes_birth_date(&self, date: NaiveDate) -> bool {
        let day = two_digits(&self.0, 6);
        let day = if day > 40 { day - 40 } else { day };
        date.day() == day
            && date.month() == two_digits(&self.0, 8)
            && date.year().rem_euclid(100) as u32 == two_digits(&self.0, 10)
    }

    /// The encoded birth date, choosing the century so that it is not after `today`.
    pub fn birth_date_hint(&self, today: NaiveDate) -> Option<NaiveDate> {
        let day = two_digits(&self.0, 6);
        let day = if day > 40 { day - 40 } else { day };
        let (month, year) = (two_digits(&self.0, 8), two_digits(&self.0, 10) as i32);
        [2000, 1900]
            .into_iter()
            .filter_map(|century| NaiveDate::from_ymd_opt(century + year, month, day))
            .find(|date| *date <= today)
    }
}

impl fmt::Debug for Nik {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nik({})", self.masked())
    }
}

impl TryFrom<String> for Nik {
    type Error = NikError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Nik> for String {
    fn from(value: Nik) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    // Test vectors of shared/research/domain.md §1.4.
    #[test]
    fn accepts_a_male_nik_and_reads_its_birth_date() {
        let nik = Nik::parse("3171011708450001").unwrap();
        assert_eq!(nik.sex(), Sex::Male);
        assert!(nik.encodes_birth_date(date(1945, 8, 17)));
        assert_eq!(
            nik.birth_date_hint(date(2026, 1, 1)),
            Some(date(1945, 8, 17))
        );
        assert_eq!(nik.province(), 31);
    }

    #[test]
    fn rejects_a_short_nik_naming_the_length_rule() {
        assert_eq!(
            Nik::parse("31710117084500"),
            Err(NikError::Length { found: 14 })
        );
        assert_eq!(NikError::Length { found: 14 }.code(), "nik_length");
    }

    #[test]
    fn rejects_an_unknown_province() {
        assert_eq!(
            Nik::parse("9971011708450001"),
            Err(NikError::Province { code: 99 })
        );
    }

    #[test]
    fn reads_a_female_nik_with_forty_added_to_the_day() {
        let nik = Nik::parse("3171015708450001").unwrap();
        assert_eq!(nik.sex(), Sex::Female);
        assert!(nik.encodes_birth_date(date(1945, 8, 17)));
    }

    #[test]
    fn accepts_the_29th_of_february_2000_which_1900_lacks() {
        let nik = Nik::parse("3171012902001234").unwrap();
        assert_eq!(
            nik.birth_date_hint(date(2026, 1, 1)),
            Some(date(2000, 2, 29))
        );
    }

    #[test]
    fn rejects_the_30th_of_february_naming_the_date_rule() {
        assert_eq!(
            Nik::parse("3171013002001234"),
            Err(NikError::Date {
                day: 30,
                month: 2,
                year: 0
            })
        );
    }

    #[test]
    fn rejects_day_forty_and_sequence_zero_and_letters() {
        assert!(matches!(
            Nik::parse("3171014008450001"),
            Err(NikError::Date { .. })
        ));
        assert!(matches!(
            Nik::parse("3171017208450001"),
            Err(NikError::Date { .. })
        ));
        assert_eq!(Nik::parse("3171011708450000"), Err(NikError::Sequence));
        assert_eq!(Nik::parse("317101170845000A"), Err(NikError::NotDigits));
    }

    #[test]
    fn ignores_separators_people_type() {
        assert_eq!(
            Nik::parse(" 3171.0117-0845 0001 ").unwrap().as_str(),
            "3171011708450001"
        );
    }

    #[test]
    fn debug_output_is_masked() {
        let nik = Nik::parse("3171011708450001").unwrap();
        assert_eq!(format!("{nik:?}"), "Nik(3171********0001)");
    }

    #[test]
    fn a_recent_birth_prefers_this_century() {
        let nik = Nik::parse("3201010501200001").unwrap();
        assert_eq!(
            nik.birth_date_hint(date(2026, 11, 22)),
            Some(date(2020, 1, 5))
        );
        // Before 2020 existed the same digits can only mean 1920.
        assert_eq!(
            nik.birth_date_hint(date(2019, 1, 1)),
            Some(date(1920, 1, 5))
        );
    }

    #[test]
    fn every_error_has_messages_in_both_languages() {
        for e in [
            NikError::NotDigits,
            NikError::Length { found: 3 },
            NikError::Province { code: 99 },
            NikError::Date {
                day: 30,
                month: 2,
                year: 0,
            },
            NikError::Sequence,
        ] {
            assert!(!e.message_id().is_empty() && !e.message_en().is_empty());
            assert_ne!(e.message_id(), e.message_en());
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in "\\PC{0,40}") {
            let _ = Nik::parse(&s);
        }

        #[test]
        fn never_panics_on_arbitrary_digit_strings(s in "[0-9]{16}") {
            let _ = Nik::parse(&s);
        }

        #[test]
        fn compose_then_parse_round_trips(
            area in 0u32..10_000,
            province in proptest::sample::select(super::super::province_codes().collect::<Vec<_>>()),
            days in 0i64..(200 * 366),
            female: bool,
            sequence in 1u16..10_000,
        ) {
            let birth = date(1900, 1, 1) + chrono::Duration::days(days);
            let sex = if female { Sex::Female } else { Sex::Male };
            let nik = Nik::compose(province * 10_000 + area, birth, sex, sequence).unwrap();
            prop_assert_eq!(nik.sex(), sex);
            prop_assert!(nik.encodes_birth_date(birth));
            let again = Nik::parse(nik.as_str()).unwrap();
            prop_assert_eq!(&again, &nik);
            let json = serde_json::to_string(&nik).unwrap();
            prop_assert_eq!(serde_json::from_str::<Nik>(&json).unwrap(), nik);
        }
    }
}
