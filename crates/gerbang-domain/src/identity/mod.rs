//! Participant identifiers, parsed at the edge into types with private fields.
//!
//! Past the edge nothing takes a raw string for a NIK, card number, phone or email. None of these
//! types implements `Display`, and their `Debug` is masked, so they cannot leak into a log line by
//! accident: the full value is only reachable through an explicit `as_str()`.

mod digits;
mod email;
mod name;
mod nik;
mod numbers;
mod phone;
mod province;

pub use email::{Email, EmailError};
pub use name::{PersonName, PersonNameError};
pub use nik::{Nik, NikError, Sex};
pub use numbers::{FamilyCardNumber, JknCardNumber, KpjNumber, NumberError};
pub use phone::{MobileNumber, Operator, PhoneError};
pub use province::{IndonesianTimeZone, province_codes, province_name};

/// Masks all but the first `head` and last `tail` characters with `*`.
pub(crate) fn mask_middle(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}
