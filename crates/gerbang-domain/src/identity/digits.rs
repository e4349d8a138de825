//! Shared cleaning of numeric identifiers typed by people: spaces, dots and dashes are separators.

/// Why a string is not a run of exactly `expected` digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DigitsError {
    NotDigits,
    Length { found: usize },
}

/// Strips the separators people type (space, `.`, `-`) and checks for exactly `expected` ASCII digits.
pub(crate) fn clean_digits(input: &str, expected: usize) -> Result<String, DigitsError> {
    let mut out = String::with_capacity(expected);
    for ch in input.trim().chars() {
        match ch {
            '0'..='9' => out.push(ch),
            ' ' | '.' | '-' => {}
            _ => return Err(DigitsError::NotDigits),
        }
    }
    if out.len() != expected {
        return Err(DigitsError::Length { found: out.len() });
    }
    Ok(out)
}

/// The two-digit number at `at` in an all-digit string.
pub(crate) fn two_digits(digits: &str, at: usize) -> u32 {
    let b = digits.as_bytes();
    u32::from(b[at] - b'0') * 10 + u32::from(b[at + 1] - b'0')
}
