//! Realistic synthetic participants for demos, tests and benchmarks: never real personal data.
//!
//! NIKs are valid and agree with birth date and sex, spread over provinces roughly as the population
//! is; people come in families sharing a family-card number and, for children, a parent's phone;
//! most have a phone and about half an email; some are inactive; a few carry the NIK-date mismatch
//! that real registries contain. The same seed always gives the same participants.
//!
//! Emails use the reserved `example.*` domains. Phone numbers use allocated operator prefixes with
//! random subscriber digits, so they may belong to real people: never point a real SMS provider at
//! demo data (the dev inbox is the default channel).

use std::collections::HashSet;
use std::io::Write;

use chrono::{Duration, NaiveDate};
use gerbang_domain::identity::province_codes;
use gerbang_domain::{
    Email, FamilyCardNumber, JknCardNumber, KpjNumber, MobileNumber, Nik, Operator, Participant,
    ParticipantStatus, PersonName, Sex,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::import::COLUMNS;

const MALE_NAMES: &[&str] = &[
    "Budi", "Agus", "Ahmad", "Muhammad", "Rizky", "Dedi", "Eko", "Hendra", "Joko", "Bambang",
    "Slamet", "Wahyu", "Yusuf", "Arif", "Fajar", "Dimas", "Bayu", "Rudi", "Teguh", "Hadi", "Imam",
    "Irfan", "Adi", "Gilang", "Hafiz", "Iwan", "Made", "Wayan", "Ketut", "Nyoman", "Asep", "Ujang",
    "Dodi", "Ilham", "Reza", "Andi", "Taufik", "Hasan", "Ridwan", "Yoga",
];
const FEMALE_NAMES: &[&str] = &[
    "Siti", "Sri", "Dewi", "Ani", "Rina", "Nur", "Putri", "Ayu", "Wulan", "Indah", "Fitri",
    "Ratna", "Yuni", "Dian", "Maya", "Nia", "Rini", "Sari", "Intan", "Nabila", "Aisyah", "Fatimah",
    "Kartika", "Mega", "Novi", "Tuti", "Endang", "Suci", "Lia", "Eka", "Nyoman", "Kadek", "Neng",
    "Euis", "Rahma", "Desi", "Wati", "Yanti",
];
const FAMILY_NAMES: &[&str] = &[
    "Santoso",
    "Wijaya",
    "Saputra",
    "Pratama",
    "Hidayat",
    "Setiawan",
    "Nugroho",
    "Kusuma",
    "Purnomo",
    "Siregar",
    "Nasution",
    "Harahap",
    "Simanjuntak",
    "Lubis",
    "Sinaga",
    "Tanjung",
    "Hutapea",
    "Manurung",
    "Situmorang",
    "Wibowo",
    "Gunawan",
    "Susanto",
    "Rahman",
    "Hakim",
    "Syahputra",
    "Permana",
    "Firmansyah",
    "Ramadhan",
    "Maulana",
    "Hasibuan",
    "Panjaitan",
    "Sembiring",
    "Ginting",
    "Tarigan",
    "Rangkuti",
    "Kurniawan",
    "Suryadi",
    "Hartono",
    "Prasetyo",
    "Utomo",
];
const FEMALE_SECOND_NAMES: &[&str] = &[
    "Lestari",
    "Anggraini",
    "Rahmawati",
    "Handayani",
    "Safitri",
    "Puspita",
    "Wulandari",
    "Yuliana",
    "Susanti",
    "Kurniasih",
    "Maharani",
    "Permatasari",
    "Oktaviani",
    "Fitriani",
    "Rahayu",
];
const SINGLE_NAMES: &[&str] = &[
    "Sukarni", "Suparman", "Sutrisno", "Paijo", "Sumiati", "Tukiyem", "Poniman", "Juminten",
];

/// Province codes weighted roughly by population (Java first).
fn province_weight(code: u32) -> u32 {
    match code {
        32 => 18, // Jawa Barat
        35 => 15, // Jawa Timur
        33 => 13, // Jawa Tengah
        31 | 36 | 12 => 5,
        73 | 16 | 18 | 14 | 34 | 51 | 53 | 52 | 61 => 3,
        54 => 0, // historical: no new participants
        _ => 1,
    }
}

/// An endless, deterministic stream of synthetic participants.
#[derive(Debug)]
pub struct SyntheticParticipants {
    rng: ChaCha8Rng,
    provinces: Vec<(u32, u32)>,
    total_weight: u32,
    niks: HashSet<u64>,
    index: u64,
    family: Option<Family>,
    today: NaiveDate,
    /// Shifts the card and KPJ numbers per seed, so files of different seeds do not claim each
    /// other's numbers.
    card_offset: u64,
}

#[derive(Debug, Clone)]
struct Family {
    area: u32,
    card: FamilyCardNumber,
    family_name: &'static str,
    phone: Option<MobileNumber>,
    members_left: u32,
}

impl SyntheticParticipants {
    /// Participants for `seed`, with birth dates up to `today`.
    pub fn new(seed: u64, today: NaiveDate) -> Self {
        let provinces: Vec<(u32, u32)> =
            province_codes().map(|c| (c, province_weight(c))).collect();
        let total_weight = provinces.iter().map(|(_, w)| w).sum();
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            provinces,
            total_weight,
            niks: HashSet::new(),
            index: 0,
            family: None,
            today,
            card_offset: seed.wrapping_mul(2_654_435_761).wrapping_add(104_729) % 10_000_000_000,
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    fn province(&mut self) -> u32 {
        let mut ticket = self.rng.random_range(0..self.total_weight);
        for (code, weight) in &self.provinces {
            if ticket < *weight {
                return *code;
            }
            ticket -= weight;
        }
        31
    }

    fn area(&mut self) -> u32 {
        let province = self.province();
        let regency = if self.rng.random_bool(0.2) {
            self.rng.random_range(71..=79)
        } else {
            self.rng.random_range(1..=27)
        };
        let district = self.rng.random_range(1..=30);
        province * 10_000 + regency * 100 + district
    }

    fn phone(&mut self) -> Option<MobileNumber> {
        // Telkomsel carries about half of Indonesian subscribers.
        let prefixes = Operator::allocated_prefixes();
        let prefix = if self.rng.random_bool(0.45) {
            self.pick(&prefixes[..9]).0
        } else {
            self.pick(prefixes).0
        };
        let digits = self.rng.random_range(7..=9);
        let subscriber = self
            .rng
            .random_range(10u64.pow(digits - 1)..10u64.pow(digits));
        MobileNumber::parse(&format!("0{prefix}{subscriber}")).ok()
    }

    fn new_family(&mut self) -> Option<Family> {
        let area = self.area();
        let issued =
            NaiveDate::from_ymd_opt(2005, 1, 1)? + Duration::days(self.rng.random_range(0..7000));
        let card = FamilyCardNumber::parse(&format!(
            "{area:06}{}{:04}",
            issued.format("%d%m%y"),
            self.rng.random_range(1..=9999)
        ))
        .ok()?;
        let phone = self.phone();
        Some(Family {
            area,
            card,
            family_name: self.pick(FAMILY_NAMES),
            phone,
            members_left: self.rng.random_range(1..=5),
        })
    }

    fn name(&mut self, sex: Sex, family_name: &str) -> String {
        if self.rng.random_bool(0.04) {
            return self.pick(SINGLE_NAMES).to_string();
        }
        match sex {
            Sex::Male => format!("{} {family_name}", self.pick(MALE_NAMES)),
            Sex::Female if self.rng.random_bool(0.5) => {
                format!(
                    "{} {}",
                    self.pick(FEMALE_NAMES),
                    self.pick(FEMALE_SECOND_NAMES)
                )
            }
            Sex::Female => format!("{} {family_name}", self.pick(FEMALE_NAMES)),
        }
    }

    /// The next participant.
    pub fn next_participant(&mut self) -> Participant {
        loop {
            if let Some(p) = self.try_next() {
                return p;
            }
        }
    }

    fn try_next(&mut self) -> Option<Participant> {
        let family = match self.family.take() {
            Some(f) if f.members_left > 0 => f,
            _ => self.new_family()?,
        };
        let mut family = family;
        family.members_left -= 1;
        let sex = if self.rng.random_bool(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        let oldest = self.today - Duration::days(365 * 85);
        let span = (self.today - oldest).num_days();
        let birth_date = oldest + Duration::days(self.rng.random_range(0..span));
        let nik = loop {
            let sequence = self.rng.random_range(1..=9999u16);
            let nik = Nik::compose(family.area, birth_date, sex, sequence).ok()?;
            if self.niks.insert(nik.as_str().parse().ok()?) {
                break nik;
            }
        };
        let index = self.index;
        self.index += 1;
        // Card and KPJ numbers: affine permutations of the index, so they never repeat.
        let card_number = JknCardNumber::parse(&format!(
            "000{:010}",
            (index * 7_919_123 + self.card_offset) % 10_000_000_000
        ))
        .ok()?;
        let adult = (self.today - birth_date).num_days() >= 365 * 17;
        let kpj_number = if adult && self.rng.random_bool(0.45) {
            KpjNumber::parse(&format!(
                "{:011}",
                10_000_000_000 + (index * 3_571_003 + self.card_offset) % 90_000_000_000
            ))
            .ok()
        } else {
            None
        };
        let name = self.name(sex, family.family_name);
        let full_name = PersonName::parse(&name).ok()?;
        let phone = match (adult, self.rng.random_range(0..100)) {
            (false, _) => family.phone.clone(),
            (true, 0..=14) => None,
            (true, 15..=29) => family.phone.clone(),
            _ => self.phone(),
        };
        let email = if adult && self.rng.random_bool(0.55) {
            let domain = self.pick(&["example.com", "example.net", "example.org"]);
            let local: String = name.to_lowercase().split(' ').collect::<Vec<_>>().join(".");
            Email::parse(&format!(
                "{local}{}@{domain}",
                self.rng.random_range(1..1000)
            ))
            .ok()
        } else {
            None
        };
        let status = if self.rng.random_bool(0.08) {
            ParticipantStatus::Inactive
        } else {
            ParticipantStatus::Active
        };
        // About 1 in 200 registry birth dates differ from the NIK's digits, as in real data.
        let registered_birth = if self.rng.random_bool(0.005) {
            birth_date + Duration::days(1)
        } else {
            birth_date
        };
        let participant = Participant {
            nik,
            card_number,
            kpj_number,
            family_card_number: Some(family.card.clone()),
            full_name,
            birth_date: registered_birth.min(self.today),
            sex,
            status,
            phone,
            email,
        };
        self.family = Some(family);
        Some(participant)
    }
}

impl Iterator for SyntheticParticipants {
    type Item = Participant;
    fn next(&mut self) -> Option<Participant> {
        Some(self.next_participant())
    }
}

/// Writes `count` participants of `seed` as CSV in the import format.
pub fn write_csv(out: impl Write, count: u64, seed: u64, today: NaiveDate) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(COLUMNS)?;
    let opt = |value: Option<&str>| value.unwrap_or("").to_string();
    for p in SyntheticParticipants::new(seed, today).take(count as usize) {
        writer.write_record([
            p.nik.as_str().to_string(),
            p.card_number.as_str().to_string(),
            opt(p.kpj_number.as_ref().map(|k| k.as_str())),
            opt(p.family_card_number.as_ref().map(|k| k.as_str())),
            p.full_name.as_str().to_string(),
            p.birth_date.format("%Y-%m-%d").to_string(),
            match p.sex {
                Sex::Male => "M".into(),
                Sex::Female => "F".into(),
            },
            p.status.as_str().to_string(),
            opt(p.phone.as_ref().map(|m| m.e164())),
            opt(p.email.as_ref().map(|e| e.as_str())),
        ])?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_participants_and_another_seed_others() {
        let a: Vec<_> = SyntheticParticipants::new(7, today()).take(300).collect();
        let b: Vec<_> = SyntheticParticipants::new(7, today()).take(300).collect();
        let c: Vec<_> = SyntheticParticipants::new(8, today()).take(300).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let cards_a: HashSet<_> = a
            .iter()
            .map(|p| p.card_number.as_str().to_string())
            .collect();
        assert!(
            c.iter().all(|p| !cards_a.contains(p.card_number.as_str())),
            "seeds share card numbers"
        );
    }

    #[test]
    fn niks_and_card_numbers_are_unique_and_shares_are_realistic() {
        let people: Vec<_> = SyntheticParticipants::new(1, today())
            .take(20_000)
            .collect();
        let niks: HashSet<_> = people.iter().map(|p| p.nik.as_str().to_string()).collect();
        let cards: HashSet<_> = people
            .iter()
            .map(|p| p.card_number.as_str().to_string())
            .collect();
        assert_eq!(niks.len(), people.len());
        assert_eq!(cards.len(), people.len());
        let share = |f: &dyn Fn(&Participant) -> bool| {
            people.iter().filter(|p| f(p)).count() as f64 / 20_000.0
        };
        let with_phone = share(&|p| p.phone.is_some());
        let with_email = share(&|p| p.email.is_some());
        let inactive = share(&|p| p.status == ParticipantStatus::Inactive);
        let nik_agrees = share(&|p| p.birth_date_matches_nik() && p.sex_matches_nik());
        assert!((0.7..0.95).contains(&with_phone), "{with_phone}");
        assert!((0.2..0.6).contains(&with_email), "{with_email}");
        assert!((0.05..0.12).contains(&inactive), "{inactive}");
        assert!((0.98..1.0).contains(&nik_agrees), "{nik_agrees}");
        let provinces: HashSet<_> = people.iter().map(|p| p.nik.province()).collect();
        assert!(provinces.len() > 30, "{}", provinces.len());
        assert!(people.iter().all(|p| {
            p.email
                .as_ref()
                .is_none_or(|e| e.as_str().contains("@example."))
        }));
    }

    #[test]
    fn the_csv_has_the_import_header_and_one_line_per_participant() {
        let mut out = Vec::new();
        write_csv(&mut out, 50, 3, today()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().next().unwrap(), COLUMNS.join(","));
        assert_eq!(text.lines().count(), 51);
    }
}
