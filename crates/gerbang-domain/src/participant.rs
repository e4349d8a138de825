//! The registry record of one participant (SPEC §2): who the flows check identities against.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::identity::{
    Email, FamilyCardNumber, JknCardNumber, KpjNumber, MobileNumber, Nik, PersonName, Sex,
};

/// Membership status in the programme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantStatus {
    Active,
    Inactive,
}

impl ParticipantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

/// A participant of the programme as the membership registry knows them. Every field is already
/// validated; the record is built at the edge (CSV import, membership API) and trusted after.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub nik: Nik,
    pub card_number: JknCardNumber,
    #[serde(default)]
    pub kpj_number: Option<KpjNumber>,
    #[serde(default)]
    pub family_card_number: Option<FamilyCardNumber>,
    pub full_name: PersonName,
    /// The registry's birth date: what an entered date is matched against. It may differ from the
    /// date encoded in the NIK (see [`Participant::birth_date_matches_nik`]).
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub status: ParticipantStatus,
    #[serde(default)]
    pub phone: Option<MobileNumber>,
    #[serde(default)]
    pub email: Option<Email>,
}

impl Participant {
    /// Whether the NIK's date digits agree with the registry's birth date. A mismatch is a hint to
    /// show ("check the date you entered"), never a reason to refuse the participant.
    pub fn birth_date_matches_nik(&self) -> bool {
        self.nik.encodes_birth_date(self.birth_date)
    }

    /// Whether the NIK's day digits agree with the registry's sex (a hint, like the date).
    pub fn sex_matches_nik(&self) -> bool {
        self.nik.sex() == self.sex
    }
}

impl fmt::Debug for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Participant")
            .field("nik", &self.nik)
            .field("card_number", &self.card_number)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budi() -> Participant {
        Participant {
            nik: Nik::parse("3171011708450001").unwrap(),
            card_number: JknCardNumber::parse("0001944358911").unwrap(),
            kpj_number: None,
            family_card_number: None,
            full_name: PersonName::parse("Budi Santoso").unwrap(),
            birth_date: NaiveDate::from_ymd_opt(1945, 8, 17).unwrap(),
            sex: Sex::Male,
            status: ParticipantStatus::Active,
            phone: Some(MobileNumber::parse("081234567890").unwrap()),
            email: Some(Email::parse("budi@example.com").unwrap()),
        }
    }

    #[test]
    fn debug_never_shows_personal_data() {
        let text = format!("{:?}", budi());
        assert!(!text.contains("Budi"), "{text}");
        assert!(!text.contains("3171011708450001"), "{text}");
        assert!(!text.contains("081234567890"), "{text}");
        assert!(!text.contains("budi@"), "{text}");
    }

    #[test]
    fn a_nik_date_that_differs_from_the_registry_is_only_a_hint() {
        let mut p = budi();
        assert!(p.birth_date_matches_nik());
        p.birth_date = NaiveDate::from_ymd_opt(1945, 8, 18).unwrap();
        assert!(!p.birth_date_matches_nik());
        assert!(p.sex_matches_nik());
    }

    #[test]
    fn serde_round_trips_and_rejects_invalid_fields() {
        let json = serde_json::to_string(&budi()).unwrap();
        assert_eq!(serde_json::from_str::<Participant>(&json).unwrap(), budi());
        let bad = json.replace("3171011708450001", "9971011708450001");
        assert!(serde_json::from_str::<Participant>(&bad).is_err());
    }
}
