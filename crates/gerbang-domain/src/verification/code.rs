//! One-time codes: generated from a CSPRNG, stored only as a keyed digest bound to their
//! verification, and compared in constant time.

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, Rng};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::explain::Explain;

/// Digits in a code; 4 to 8 (SPEC §4), 6 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLength(u8);

impl CodeLength {
    pub const MIN: u8 = 4;
    pub const MAX: u8 = 8;

    pub fn new(digits: u8) -> Option<Self> {
        (Self::MIN..=Self::MAX)
            .contains(&digits)
            .then_some(Self(digits))
    }

    pub fn digits(self) -> u8 {
        self.0
    }
}

impl Default for CodeLength {
    fn default() -> Self {
        Self(6)
    }
}

/// A code as sent to or typed by a participant. Its `Debug` never shows the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

/// Why typed input is not a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpCodeError {
    #[error("the code must be {expected} digits")]
    Malformed { expected: u8 },
}

impl Explain for OtpCodeError {
    fn code(&self) -> &'static str {
        "otp_malformed"
    }

    fn message_id(&self) -> String {
        let Self::Malformed { expected } = self;
        format!("Kode harus terdiri dari {expected} angka.")
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

impl OtpCode {
    /// Uniform over all `length`-digit strings, leading zeros included.
    pub fn generate<R: Rng + CryptoRng>(length: CodeLength, rng: &mut R) -> Self {
        let bound = 10u32.pow(u32::from(length.0));
        let value = rng.random_range(0..bound);
        Self(format!("{value:0width$}", width = usize::from(length.0)))
    }

    /// Accepts exactly `length` ASCII digits; surrounding spaces are forgiven, nothing else is.
    pub fn parse(input: &str, length: CodeLength) -> Result<Self, OtpCodeError> {
        let trimmed = input.trim();
        if trimmed.len() == usize::from(length.0) && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(OtpCodeError::Malformed { expected: length.0 })
        }
    }

    /// The digits, for the message that carries them and nowhere else.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(***)")
    }
}

/// The secret that keys code digests (derived from the deployment's key by the caller). During a
/// key rotation it also holds the previous key's, so that a code sent just before the switch is
/// still accepted; new codes are digested with the current key only.
#[derive(Clone)]
pub struct CodeKey {
    current: Hmac<Sha256>,
    previous: Option<Hmac<Sha256>>,
}

fn code_hmac(bytes: [u8; 32]) -> Hmac<Sha256> {
    // HMAC pads a key shorter than the hash's 64-byte block with zeros, so padding it here gives
    // the same MAC and makes keying infallible.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(&bytes);
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

impl CodeKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self {
            current: code_hmac(bytes),
            previous: None,
        }
    }

    /// Also accepts codes digested with `previous` (a rotation's old key).
    pub fn with_previous(self, previous: Option<[u8; 32]>) -> Self {
        Self {
            previous: previous.map(code_hmac),
            ..self
        }
    }

    fn digest_with(
        key: &Hmac<Sha256>,
        verification: &[u8],
        binding: &[u8],
        code: &OtpCode,
    ) -> CodeDigest {
        let mut mac = key.clone();
        mac.update(b"gerbang-otp-v1");
        for part in [verification, binding, code.0.as_bytes()] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        CodeDigest(mac.finalize().into_bytes().into())
    }

    /// HMAC-SHA256 over the verification id, the binding (purpose and action details) and the code.
    /// The same code typed for another verification, purpose or action yields another digest.
    pub fn digest(&self, verification: &[u8], binding: &[u8], code: &OtpCode) -> CodeDigest {
        Self::digest_with(&self.current, verification, binding, code)
    }

    /// The digests a typed code may match: the current key's and, during a rotation, the previous
    /// key's.
    pub fn candidates(
        &self,
        verification: &[u8],
        binding: &[u8],
        code: &OtpCode,
    ) -> Vec<CodeDigest> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|key| Self::digest_with(key, verification, binding, code))
            .collect()
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey(***)")
    }
}

/// What is stored of a code.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CodeDigest([u8; 32]);

impl CodeDigest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &CodeDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for CodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn generated_codes_have_the_configured_length_and_keep_leading_zeros() {
        let mut rng = StdRng::seed_from_u64(7);
        for digits in CodeLength::MIN..=CodeLength::MAX {
            let length = CodeLength::new(digits).unwrap();
            for _ in 0..200 {
                let code = OtpCode::generate(length, &mut rng);
                assert_eq!(code.reveal().len(), usize::from(digits));
                assert!(code.reveal().bytes().all(|b| b.is_ascii_digit()));
            }
        }
        assert!(CodeLength::new(3).is_none());
        assert!(CodeLength::new(9).is_none());
    }

    #[test]
    fn every_digit_appears_in_every_position() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut seen = [[false; 10]; 6];
        for _ in 0..2000 {
            let code = OtpCode::generate(CodeLength::default(), &mut rng);
            for (position, byte) in code.reveal().bytes().enumerate() {
                seen[position][usize::from(byte - b'0')] = true;
            }
        }
        assert!(seen.iter().all(|digits| digits.iter().all(|d| *d)));
    }

    #[test]
    fn parse_refuses_letters_and_wrong_lengths() {
        let six = CodeLength::default();
        assert!(OtpCode::parse(" 012345 ", six).is_ok());
        for bad in ["12345", "1234567", "12a456", "", "１２３４５６", "12 345"] {
            let err = OtpCode::parse(bad, six).unwrap_err();
            assert_eq!(err.code(), "otp_malformed");
        }
    }

    #[test]
    fn debug_hides_the_digits() {
        let code = OtpCode::parse("424242", CodeLength::default()).unwrap();
        assert!(!format!("{code:?}").contains("4242"));
    }

    #[test]
    fn digest_depends_on_verification_binding_and_code() {
        let key = CodeKey::new([9; 32]);
        let code = OtpCode::parse("123456", CodeLength::default()).unwrap();
        let other = OtpCode::parse("123457", CodeLength::default()).unwrap();
        let base = key.digest(b"v1", b"registration", &code);
        assert!(base.matches(&key.digest(b"v1", b"registration", &code)));
        assert!(!base.matches(&key.digest(b"v2", b"registration", &code)));
        assert!(!base.matches(&key.digest(b"v1", b"recovery", &code)));
        assert!(!base.matches(&key.digest(b"v1", b"registration", &other)));
        assert!(!base.matches(&CodeKey::new([8; 32]).digest(b"v1", b"registration", &code)));
        // During a rotation the old key's digest is a candidate too; new digests use the new key.
        let rotating = CodeKey::new([8; 32]).with_previous(Some([9; 32]));
        let candidates = rotating.candidates(b"v1", b"registration", &code);
        assert_eq!(candidates.len(), 2);
        assert!(candidates.iter().any(|c| base.matches(c)));
        assert!(!base.matches(&rotating.digest(b"v1", b"registration", &code)));
        // Length prefixes keep ("v1", "2registration") apart from ("v12", "registration").
        assert!(
            !key.digest(b"v1", b"2x", &code)
                .matches(&key.digest(b"v12", b"x", &code))
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_digits(input in ".{0,12}") {
            if let Ok(code) = OtpCode::parse(&input, CodeLength::default()) {
                prop_assert_eq!(code.reveal().len(), 6);
                prop_assert!(code.reveal().bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
