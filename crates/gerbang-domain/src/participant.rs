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

/// A participant as another system (the membership API) or an older gerbang wrote it: the JSON shape
/// of [`Participant`], with the optional fields whose rules may change kept as raw text.
///
/// The identity must parse; an optional field that does not (a landline as phone, a prefix withdrawn
/// since) becomes "none on file" rather than making the whole participant unreadable — which would
/// stop them from registering or logging in.
#[derive(Deserialize)]
pub struct ParticipantRecord {
    nik: Nik,
    card_number: JknCardNumber,
    #[serde(default)]
    kpj_number: Option<String>,
    #[serde(default)]
    family_card_number: Option<String>,
    full_name: PersonName,
    birth_date: NaiveDate,
    sex: Sex,
    status: ParticipantStatus,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl ParticipantRecord {
    /// The participant, and the names of the optional fields left out because they did not parse.
    pub fn into_participant(self) -> (Participant, Vec<&'static str>) {
        let mut dropped = Vec::new();
        let mut keep = |field: &'static str, ok: bool| {
            if !ok {
                dropped.push(field);
            }
        };
        let kpj_number = self.kpj_number.as_deref().map(KpjNumber::parse);
        let family_card_number = self
            .family_card_number
            .as_deref()
            .map(FamilyCardNumber::parse);
        let phone = self.phone.as_deref().map(MobileNumber::parse);
        let email = self.email.as_deref().map(Email::parse);
        keep("kpj_number", !matches!(kpj_number, Some(Err(_))));
        keep(
            "family_card_number",
            !matches!(family_card_number, Some(Err(_))),
        );
        keep("phone", !matches!(phone, Some(Err(_))));
        keep("email", !matches!(email, Some(Err(_))));
        let participant = Participant {
            nik: self.nik,
            card_number: self.card_number,
            kpj_number: kpj_number.and_then(Result::ok),
            family_card_number: family_card_number.and_then(Result::ok),
            full_name: self.full_name,
            birth_date: self.birth_date,
            sex: self.sex,
            status: self.status,
            phone: phone.and_then(Result::ok),
            email: email.and_then(Result::ok),
        };
        (participant, dropped)
    }
}

impl fmt::Debug for ParticipantRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParticipantRecord")
            .field("nik", &self.nik)
            .finish_non_exhaustive()
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
    fn a_record_keeps_its_identity_and_drops_only_unparsable_optional_fields() {
        let mut json = serde_json::to_value(budi()).unwrap();
        json["phone"] = serde_json::json!("021-5551234");
        let record: ParticipantRecord = serde_json::from_value(json.clone()).unwrap();
        let (participant, dropped) = record.into_participant();
        assert_eq!(dropped, vec!["phone"]);
        assert_eq!(participant.phone, None);
        assert_eq!(participant.email, budi().email);
        json["nik"] = serde_json::json!("12");
        assert!(serde_json::from_value::<ParticipantRecord>(json).is_err());
        let unchanged: ParticipantRecord =
            serde_json::from_value(serde_json::to_value(budi()).unwrap()).unwrap();
        assert_eq!(unchanged.into_participant(), (budi(), vec![]));
    }

    #[test]
    fn serde_round_trips_and_rejects_invalid_fields() {
        let json = serde_json::to_string(&budi()).unwrap();
        assert_eq!(serde_json::from_str::<Participant>(&json).unwrap(), budi());
        let bad = json.replace("3171011708450001", "9971011708450001");
        assert!(serde_json::from_str::<Participant>(&bad).is_err());
    }
}
