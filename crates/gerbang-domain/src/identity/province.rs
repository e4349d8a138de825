//! Province codes of the Kemendagri scheme that NIK and family-card numbers begin with.
//!
//! NIKs are permanent, so every code that ever existed stays valid: `54` (Timor Timur, until 1999)
//! and `91`/`92` for people registered in Papua before the 2022 split. Source:
//! `shared/research/domain.md` §1.3.

const PROVINCES: &[(u32, &str)] = &[
    (11, "Aceh"),
    (12, "Sumatera Utara"),
    (13, "Sumatera Barat"),
    (14, "Riau"),
    (15, "Jambi"),
    (16, "Sumatera Selatan"),
    (17, "Bengkulu"),
    (18, "Lampung"),
    (19, "Kepulauan Bangka Belitung"),
    (21, "Kepulauan Riau"),
    (31, "DKI Jakarta"),
    (32, "Jawa Barat"),
    (33, "Jawa Tengah"),
    (34, "DI Yogyakarta"),
    (35, "Jawa Timur"),
    (36, "Banten"),
    (51, "Bali"),
    (52, "Nusa Tenggara Barat"),
    (53, "Nusa Tenggara Timur"),
    (54, "Timor Timur (historis)"),
    (61, "Kalimantan Barat"),
    (62, "Kalimantan Tengah"),
    (63, "Kalimantan Selatan"),
    (64, "Kalimantan Timur"),
    (65, "Kalimantan Utara"),
    (71, "Sulawesi Utara"),
    (72, "Sulawesi Tengah"),
    (73, "Sulawesi Selatan"),
    (74, "Sulawesi Tenggara"),
    (75, "Gorontalo"),
    (76, "Sulawesi Barat"),
    (81, "Maluku"),
    (82, "Maluku Utara"),
    (91, "Papua"),
    (92, "Papua Barat"),
    (93, "Papua Selatan"),
    (94, "Papua Tengah"),
    (95, "Papua Pegunungan"),
    (96, "Papua Barat Daya"),
];

/// The province's name for a known code, `None` for a code that never existed.
pub fn province_name(code: u32) -> Option<&'static str> {
    PROVINCES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

/// Indonesia's three time zones (Keppres 41/1987), for telling a participant a time on their clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndonesianTimeZone {
    /// Waktu Indonesia Barat, UTC+7: Sumatra, Java, West and Central Kalimantan.
    Wib,
    /// Waktu Indonesia Tengah, UTC+8: Bali, Nusa Tenggara, South, East and North Kalimantan,
    /// Sulawesi.
    Wita,
    /// Waktu Indonesia Timur, UTC+9: Maluku and Papua.
    Wit,
}

impl IndonesianTimeZone {
    /// The zone of a province code; `None` for a code that never existed. For a NIK this is the
    /// province the participant was registered in, a best guess of where they are now.
    pub fn of_province(code: u32) -> Option<Self> {
        province_name(code)?;
        Some(match code {
            11..=36 | 61 | 62 => Self::Wib,
            51..=54 | 63..=76 => Self::Wita,
            _ => Self::Wit,
        })
    }

    /// Hours ahead of UTC.
    pub fn utc_offset_hours(self) -> i64 {
        match self {
            Self::Wib => 7,
            Self::Wita => 8,
            Self::Wit => 9,
        }
    }

    /// The wall-clock time in this zone at the instant `at`.
    pub fn local(self, at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
        at.naive_utc() + chrono::Duration::hours(self.utc_offset_hours())
    }

    /// `14.35 WIB, 1 Desember 2026` (Indonesian) or `14:35 WIB, 1 December 2026` (English): an
    /// instant as the participant reads it on their clock.
    pub fn format(self, at: chrono::DateTime<chrono::Utc>, english: bool) -> String {
        use chrono::{Datelike, Timelike};
        const MONTHS_ID: [&str; 12] = [
            "Januari",
            "Februari",
            "Maret",
            "April",
            "Mei",
            "Juni",
            "Juli",
            "Agustus",
            "September",
            "Oktober",
            "November",
            "Desember",
        ];
        const MONTHS_EN: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let local = self.local(at);
        let months = if english { MONTHS_EN } else { MONTHS_ID };
        let month = months
            .get(local.month0() as usize)
            .copied()
            .unwrap_or_default();
        let separator = if english { ':' } else { '.' };
        format!(
            "{:02}{separator}{:02} {}, {} {month} {}",
            local.hour(),
            local.minute(),
            self.abbreviation(),
            local.day(),
            local.year()
        )
    }

    /// An instant the participant waits for, as [`Self::format`] writes it, rounded up to the
    /// minute: someone told "after 09.44" is never still refused at 09.44.
    pub fn format_until(self, at: chrono::DateTime<chrono::Utc>, english: bool) -> String {
        self.format(
            crate::clock::round_up(at, chrono::Duration::minutes(1)),
            english,
        )
    }

    pub fn abbreviation(self) -> &'static str {
        match self {
            Self::Wib => "WIB",
            Self::Wita => "WITA",
            Self::Wit => "WIT",
        }
    }
}

/// All province codes, for generators.
pub fn province_codes() -> impl Iterator<Item = u32> {
    PROVINCES.iter().map(|(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_new_papua_provinces_and_historical_codes() {
        assert_eq!(province_name(95), Some("Papua Pegunungan"));
        assert!(province_name(54).is_some());
        assert_eq!(province_name(99), None);
        assert_eq!(province_name(20), None);
        assert_eq!(province_codes().count(), 39);
    }

    #[test]
    fn a_time_to_wait_for_is_told_rounded_up_to_the_minute() {
        // 02:43:30 UTC is 09.43:30 WIB: "after 09.43" would still be refused at 09.43.
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T02:43:30Z")
            .unwrap()
            .to_utc();
        assert!(
            IndonesianTimeZone::Wib
                .format(at, false)
                .starts_with("09.43 ")
        );
        assert!(
            IndonesianTimeZone::Wib
                .format_until(at, false)
                .starts_with("09.44 WIB")
        );
        assert!(
            IndonesianTimeZone::Wita
                .format_until(at, true)
                .starts_with("10:44 WITA")
        );
        let whole = at - chrono::Duration::seconds(30);
        assert!(
            IndonesianTimeZone::Wib
                .format_until(whole, false)
                .starts_with("09.43 ")
        );
    }

    #[test]
    fn every_province_has_a_time_zone() {
        use IndonesianTimeZone::*;
        for code in province_codes() {
            assert!(IndonesianTimeZone::of_province(code).is_some(), "{code}");
        }
        let cases = [
            (31, Wib),
            (11, Wib),
            (62, Wib),
            (51, Wita),
            (63, Wita),
            (73, Wita),
            (81, Wit),
            (95, Wit),
        ];
        for (code, zone) in cases {
            assert_eq!(IndonesianTimeZone::of_province(code), Some(zone), "{code}");
        }
        assert_eq!(IndonesianTimeZone::of_province(99), None);
        let noon_utc = chrono::DateTime::from_timestamp(1_764_590_400, 0).unwrap();
        assert_eq!(
            Wit.local(noon_utc) - noon_utc.naive_utc(),
            chrono::Duration::hours(9)
        );
    }
}
