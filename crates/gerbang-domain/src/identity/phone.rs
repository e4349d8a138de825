//! `MobileNumber`: an Indonesian mobile number, normalised to E.164 by the `phonenumber` crate and
//! checked against the table of allocated operator prefixes.
//!
//! The crate's metadata accepts any `8[1-35-9]…` number of the right length, including unallocated
//! prefixes such as 0820 or 0854; an SMS to those costs money and reaches nobody, so the allocated
//! prefixes of `shared/research/domain.md` §3.2 are checked here as well. The allocated operator is
//! a routing hint: Indonesia has no mobile number portability.

use std::fmt;

use phonenumber::{Mode, Type, country};
use serde::{Deserialize, Serialize};

use super::mask_middle;
use crate::explain::Explain;

/// The operator a prefix was allocated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// Telkomsel (Halo, simPATI, Kartu As, by.U).
    Telkomsel,
    /// Indosat Ooredoo Hutchison (IM3, Mentari).
    Indosat,
    /// Tri (3), part of Indosat Ooredoo Hutchison since 2022.
    Tri,
    /// XL Axiata.
    Xl,
    /// AXIS (XL Axiata group).
    Axis,
    /// Smartfren.
    Smartfren,
}

/// Allocated mobile prefixes: the three digits after the trunk `0`.
const PREFIXES: &[(u16, Operator)] = &[
    (811, Operator::Telkomsel),
    (812, Operator::Telkomsel),
    (813, Operator::Telkomsel),
    (821, Operator::Telkomsel),
    (822, Operator::Telkomsel),
    (823, Operator::Telkomsel),
    (851, Operator::Telkomsel),
    (852, Operator::Telkomsel),
    (853, Operator::Telkomsel),
    (814, Operator::Indosat),
    (815, Operator::Indosat),
    (816, Operator::Indosat),
    (855, Operator::Indosat),
    (856, Operator::Indosat),
    (857, Operator::Indosat),
    (858, Operator::Indosat),
    (895, Operator::Tri),
    (896, Operator::Tri),
    (897, Operator::Tri),
    (898, Operator::Tri),
    (899, Operator::Tri),
    (817, Operator::Xl),
    (818, Operator::Xl),
    (819, Operator::Xl),
    (859, Operator::Xl),
    (877, Operator::Xl),
    (878, Operator::Xl),
    (879, Operator::Xl),
    (831, Operator::Axis),
    (832, Operator::Axis),
    (833, Operator::Axis),
    (838, Operator::Axis),
    (881, Operator::Smartfren),
    (882, Operator::Smartfren),
    (883, Operator::Smartfren),
    (884, Operator::Smartfren),
    (885, Operator::Smartfren),
    (886, Operator::Smartfren),
    (887, Operator::Smartfren),
    (888, Operator::Smartfren),
    (889, Operator::Smartfren),
];

impl Operator {
    /// The operator a three-digit prefix (after the trunk `0`) was allocated to.
    pub fn for_prefix(prefix: u16) -> Option<Self> {
        PREFIXES
            .iter()
            .find(|(p, _)| *p == prefix)
            .map(|(_, op)| *op)
    }

    /// All allocated prefixes with their operator, for generators.
    pub fn allocated_prefixes() -> &'static [(u16, Operator)] {
        PREFIXES
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Telkomsel => "Telkomsel",
            Self::Indosat => "Indosat",
            Self::Tri => "Tri",
            Self::Xl => "XL",
            Self::Axis => "AXIS",
            Self::Smartfren => "Smartfren",
        }
    }
}

/// An Indonesian mobile number on an allocated operator prefix.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MobileNumber {
    /// `+62` followed by the national significant number.
    e164: String,
    operator: Operator,
}

/// Why an input is not a mobile number gerbang will send to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("this is not a phone number")]
    NotANumber,
    #[error(
        "only Indonesian (+62) mobile numbers are supported; this number is from country code +{country_code}"
    )]
    NotIndonesian { country_code: u16 },
    #[error(
        "this is not a valid Indonesian mobile number (check the number of digits; landlines are not supported)"
    )]
    NotMobile,
    #[error("the prefix 0{prefix} is not allocated to any Indonesian mobile operator")]
    UnallocatedPrefix { prefix: u16 },
}

impl Explain for PhoneError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotANumber => "phone_not_a_number",
            Self::NotIndonesian { .. } => "phone_not_indonesian",
            Self::NotMobile => "phone_not_mobile",
            Self::UnallocatedPrefix { .. } => "phone_unallocated_prefix",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::NotANumber => "Ini bukan nomor telepon.".into(),
            Self::NotIndonesian { country_code } => format!(
                "Hanya nomor seluler Indonesia (+62) yang didukung; nomor ini berkode negara +{country_code}."
            ),
            Self::NotMobile => "Nomor ini bukan nomor seluler Indonesia yang valid (periksa jumlah angkanya; nomor telepon rumah tidak didukung).".into(),
            Self::UnallocatedPrefix { prefix } => {
                format!("Awalan 0{prefix} tidak dimiliki operator seluler Indonesia mana pun. Periksa kembali nomor Anda.")
            }
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

/// The national significant number of an input in one of the two unambiguous plain forms,
/// `+62 8…` or `0 8…` (digits with optional spaces or dashes), or `None` for anything else.
fn plain_form_nsn(input: &str) -> Option<String> {
    let rest = input
        .strip_prefix("+62")
        .or_else(|| input.strip_prefix('0'))?;
    let mut nsn = String::with_capacity(12);
    for ch in rest.chars() {
        match ch {
            '0'..='9' => nsn.push(ch),
            ' ' | '-' => {}
            _ => return None,
        }
    }
    nsn.starts_with('8').then_some(nsn)
}

impl MobileNumber {
    /// Parses `0812…`, `62812…`, `+62 812-…` and similar into E.164.
    ///
    /// A plain form that makes up nearly every registry row (`+628…`, `08…`) and fits the Indonesian
    /// mobile rule of the crate's metadata (`8[1-35-9]` and 9–12 digits) is accepted directly; a
    /// property test proves this agrees with the crate on every such input. Everything else goes
    /// through the crate, whose parser costs ~10 µs a number and dominated bulk imports.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if let Some(nsn) = plain_form_nsn(trimmed) {
            let mobile_shape = (9..=12).contains(&nsn.len())
                && matches!(nsn.as_bytes().get(1), Some(b'1'..=b'3' | b'5'..=b'9'));
            if mobile_shape {
                return Self::on_allocated_prefix(&nsn);
            }
        }
        // Anything else, including every refusal of a plain form, is the crate's to decide, so the
        // error codes are always the crate's.
        Self::parse_with_crate(trimmed)
    }

    fn on_allocated_prefix(nsn: &str) -> Result<Self, PhoneError> {
        let prefix: u16 = nsn
            .get(..3)
            .and_then(|p| p.parse().ok())
            .ok_or(PhoneError::NotMobile)?;
        let operator =
            Operator::for_prefix(prefix).ok_or(PhoneError::UnallocatedPrefix { prefix })?;
        Ok(Self {
            e164: format!("+62{nsn}"),
            operator,
        })
    }

    fn parse_with_crate(trimmed: &str) -> Result<Self, PhoneError> {
        if trimmed.is_empty() || trimmed.len() > 32 {
            return Err(PhoneError::NotANumber);
        }
        let number = phonenumber::parse(Some(country::Id::ID), trimmed)
            .map_err(|_| PhoneError::NotANumber)?;
        let country_code = number.code().value();
        if country_code != 62 {
            return Err(PhoneError::NotIndonesian { country_code });
        }
        let national = number.national();
        if national.zeros() != 0 || number.extension().is_some() || !number.is_valid() {
            return Err(PhoneError::NotMobile);
        }
        if !matches!(
            number.number_type(&phonenumber::metadata::DATABASE),
            Type::Mobile
        ) {
            return Err(PhoneError::NotMobile);
        }
        let nsn = national.value().to_string();
        let prefix: u16 = nsn
            .get(..3)
            .and_then(|p| p.parse().ok())
            .ok_or(PhoneError::NotMobile)?;
        let operator =
            Operator::for_prefix(prefix).ok_or(PhoneError::UnallocatedPrefix { prefix })?;
        let e164 = number.format().mode(Mode::E164).to_string();
        Ok(Self { e164, operator })
    }

    /// `+6281234567890`.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// `081234567890`, as Indonesians write it.
    pub fn national(&self) -> String {
        format!("0{}", &self.e164[3..])
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// `0812****7890`.
    pub fn masked(&self) -> String {
        mask_middle(&self.national(), 4, 4)
    }
}

impl fmt::Debug for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MobileNumber({}, {})",
            self.masked(),
            self.operator.name()
        )
    }
}

impl TryFrom<String> for MobileNumber {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MobileNumber> for String {
    fn from(value: MobileNumber) -> Self {
        value.e164
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_every_way_people_write_a_number() {
        for input in [
            "081234567890",
            "6281234567890",
            "+62 812-3456-7890",
            "62 0812 3456 7890",
            " +6281234567890 ",
        ] {
            let number = MobileNumber::parse(input).unwrap();
            assert_eq!(number.e164(), "+6281234567890", "{input}");
            assert_eq!(number.operator(), Operator::Telkomsel);
        }
    }

    #[test]
    fn yields_the_allocated_operator() {
        assert_eq!(
            MobileNumber::parse("0857 1234 5678").unwrap().operator(),
            Operator::Indosat
        );
        assert_eq!(
            MobileNumber::parse("089512345678").unwrap().operator(),
            Operator::Tri
        );
        assert_eq!(
            MobileNumber::parse("087812345678").unwrap().operator(),
            Operator::Xl
        );
        assert_eq!(
            MobileNumber::parse("083812345678").unwrap().operator(),
            Operator::Axis
        );
        assert_eq!(
            MobileNumber::parse("088812345678").unwrap().operator(),
            Operator::Smartfren
        );
    }

    #[test]
    fn refuses_unallocated_prefixes_the_crate_accepts() {
        assert_eq!(
            MobileNumber::parse("0820123456789"),
            Err(PhoneError::UnallocatedPrefix { prefix: 820 })
        );
        assert_eq!(
            MobileNumber::parse("0854123456789"),
            Err(PhoneError::UnallocatedPrefix { prefix: 854 })
        );
    }

    #[test]
    fn refuses_landlines_wrong_lengths_and_foreign_numbers() {
        assert_eq!(
            MobileNumber::parse("02112345678"),
            Err(PhoneError::NotMobile)
        );
        assert_eq!(MobileNumber::parse("08123456"), Err(PhoneError::NotMobile));
        assert_eq!(
            MobileNumber::parse("081234567890123"),
            Err(PhoneError::NotMobile)
        );
        assert_eq!(
            MobileNumber::parse("+16502530000"),
            Err(PhoneError::NotIndonesian { country_code: 1 })
        );
        assert_eq!(
            MobileNumber::parse("nomor saya"),
            Err(PhoneError::NotANumber)
        );
        assert_eq!(MobileNumber::parse(""), Err(PhoneError::NotANumber));
    }

    #[test]
    fn is_masked_in_debug_and_national_form() {
        let number = MobileNumber::parse("081234567890").unwrap();
        assert_eq!(number.national(), "081234567890");
        assert_eq!(number.masked(), "0812****7890");
        assert_eq!(
            format!("{number:?}"),
            "MobileNumber(0812****7890, Telkomsel)"
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in "\\PC{0,40}") {
            let _ = MobileNumber::parse(&s);
        }

        #[test]
        fn parse_of_a_formatted_number_round_trips(
            index in 0..PREFIXES.len(),
            rest in "[0-9]{6,9}",
        ) {
            let input = format!("0{}{rest}", PREFIXES[index].0);
            if let Ok(number) = MobileNumber::parse(&input) {
                prop_assert_eq!(number.operator(), PREFIXES[index].1);
                prop_assert_eq!(MobileNumber::parse(number.e164()).unwrap(), number.clone());
                prop_assert_eq!(MobileNumber::parse(&number.national()).unwrap(), number);
            }
        }

        #[test]
        fn the_plain_form_fast_path_agrees_with_the_phonenumber_crate(
            form in 0..2usize,
            second in 0u8..10,
            rest in "[0-9]{0,13}",
            separator in proptest::sample::select(vec!["", " ", "-"]),
        ) {
            let digits = format!("8{second}{rest}");
            let (head, tail) = digits.split_at(digits.len().min(3));
            let input = match form {
                0 => format!("+62{separator}{head}{separator}{tail}"),
                _ => format!("0{head}{separator}{tail}"),
            };
            prop_assert!(plain_form_nsn(input.trim()).is_some(), "{}", input);
            prop_assert_eq!(MobileNumber::parse(&input), MobileNumber::parse_with_crate(input.trim()), "{}", input);
        }

        #[test]
        fn twelve_digit_numbers_on_allocated_prefixes_are_accepted(
            index in 0..PREFIXES.len(),
            rest in "[0-9]{8}",
        ) {
            let input = format!("0{}{rest}", PREFIXES[index].0);
            prop_assert!(MobileNumber::parse(&input).is_ok(), "{}", input);
        }
    }
}
