//! Sealing of personal data at rest (SPEC §9).
//!
//! NIK, card numbers, name, birth date, phone and email are never stored in clear text. A record is
//! serialised once and sealed as one envelope with XChaCha20-Poly1305 (random 192-bit nonce, so no
//! nonce bookkeeping across processes), bound to its row by associated data. Exact lookups use keyed
//! digests: HMAC-SHA256 of the normalised value with a purpose tag, truncated to 128 bits (ample
//! against collisions at registry scale, and half the index size).
//!
//! Both subkeys are derived from one 256-bit personal-data key with HKDF-SHA256, so an operator
//! configures and backs up a single secret. Envelope layout: `version (1 byte) || nonce (24) ||
//! ciphertext || tag (16)`. A rotation (`crate::rotation`) re-seals every envelope under a new key;
//! while it runs, an envelope opens with either key.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
/// Poly1305's tag, after the ciphertext.
const TAG_LEN: usize = 16;
/// Length of a lookup digest in bytes.
pub const DIGEST_LEN: usize = 16;

/// Why a key or an envelope could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealingError {
    #[error(
        "the personal-data key must be 32 bytes written in base64 (44 characters); generate one with `gerbang key generate`"
    )]
    BadKey,
    #[error("an envelope is damaged, or was sealed with another key")]
    Open,
    #[error("an envelope has an unknown version {0}")]
    Version(u8),
    #[error("the previous personal-data key is the current one; a rotation needs a new key")]
    SameKey,
}

/// The 256-bit personal-data key. It cannot be printed: `Debug` shows only its fingerprint.
pub struct PersonalDataKey(SecretBox<[u8; 32]>);

impl PersonalDataKey {
    /// Reads a key written as standard base64 (with or without padding).
    pub fn from_base64(text: &str) -> Result<Self, SealingError> {
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| SealingError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealingError::BadKey)?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(SecretBox::new(Box::new(key)))
    }

    /// The key as base64, for writing it to a key file. The only way to see the secret.
    pub fn expose_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.expose_secret())
    }
}

impl fmt::Debug for PersonalDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonalDataKey(<redacted>)")
    }
}

/// A short public identifier of a key (not the key): lets an operator see which key a database was
/// sealed with and lets gerbang refuse to start with the wrong one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFingerprint(String);

impl KeyFingerprint {
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a lookup digest is of; the tag keeps equal strings of different kinds apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    Nik,
    CardNumber,
    KpjNumber,
    Phone,
    Email,
    /// The whole record, to tell an unchanged re-import from a change.
    Content,
    /// A rate-limit key (its kind is part of the value).
    RateKey,
}

impl LookupKind {
    fn tag(self) -> &'static [u8] {
        match self {
            Self::Nik => b"nik",
            Self::CardNumber => b"card",
            Self::KpjNumber => b"kpj",
            Self::Phone => b"phone",
            Self::Email => b"email",
            Self::Content => b"content",
            Self::RateKey => b"rate",
        }
    }
}

/// Seals and opens envelopes and computes lookup digests. Cheap to clone.
///
/// During a key rotation (`gerbang key rotate`) a sealer also holds the previous key: it seals and
/// digests with the current key only, opens with either, and offers both digests to lookups, so rows
/// not yet re-sealed stay readable and findable.
#[derive(Clone)]
pub struct Sealer {
    inner: Arc<SealerKeys>,
}

struct SealerKeys {
    current: KeySet,
    previous: Option<KeySet>,
}

/// The subkeys derived from one personal-data key.
struct KeySet {
    cipher: XChaCha20Poly1305,
    lookup: Hmac<Sha256>,
    fingerprint: KeyFingerprint,
    /// Keys the digests of one-time codes; derived apart from the lookup key.
    code_key: [u8; 32],
    /// Keys the MACs that chain the audit log.
    audit_key: [u8; 32],
}

/// Which of a rotating sealer's keys opened an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAge {
    Current,
    Previous,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.previous {
            Some(previous) => write!(
                f,
                "Sealer(key {}, previous {})",
                self.inner.current.fingerprint, previous.fingerprint
            ),
            None => write!(f, "Sealer(key {})", self.inner.current.fingerprint),
        }
    }
}

impl KeySet {
    fn derive(key: &PersonalDataKey) -> Result<Self, SealingError> {
        let hkdf = Hkdf::<Sha256>::new(Some(b"gerbang personal data v1"), key.0.expose_secret());
        let mut seal_key = [0u8; 32];
        let mut lookup_key = [0u8; 32];
        let mut fingerprint = [0u8; 32];
        // 32-byte outputs are far below HKDF-SHA256's limit of 8160 bytes, so expand cannot fail;
        // the fallback zero keys are unreachable but keep this constructor free of panics.
        let _ = hkdf.expand(b"seal", &mut seal_key);
        let _ = hkdf.expand(b"lookup", &mut lookup_key);
        let _ = hkdf.expand(b"fingerprint", &mut fingerprint);
        let mut code_key = [0u8; 32];
        let _ = hkdf.expand(b"otp code", &mut code_key);
        let mut audit_key = [0u8; 32];
        let _ = hkdf.expand(b"audit log", &mut audit_key);
        let lookup =
            <Hmac<Sha256> as Mac>::new_from_slice(&lookup_key).map_err(|_| SealingError::BadKey)?;
        let fingerprint = KeyFingerprint(
            fingerprint[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
        Ok(Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&seal_key)),
            lookup,
            fingerprint,
            code_key,
            audit_key,
        })
    }

    fn open(&self, envelope: &[u8], context: &[u8]) -> Result<Vec<u8>, SealingError> {
        let (&version, rest) = envelope.split_first().ok_or(SealingError::Open)?;
        if version != ENVELOPE_VERSION {
            return Err(SealingError::Version(version));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealingError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| SealingError::Open)
    }

    fn digest(&self, kind: LookupKind, value: &[u8]) -> [u8; DIGEST_LEN] {
        let mut mac = self.lookup.clone();
        mac.update(kind.tag());
        mac.update(&[0]);
        mac.update(value);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; DIGEST_LEN];
        out.copy_from_slice(&full[..DIGEST_LEN]);
        out
    }
}

impl Sealer {
    pub fn new(key: &PersonalDataKey) -> Result<Self, SealingError> {
        Ok(Self {
            inner: Arc::new(SealerKeys {
                current: KeySet::derive(key)?,
                previous: None,
            }),
        })
    }

    /// A sealer for the time of a rotation from `previous` to `key`.
    pub fn rotating(
        key: &PersonalDataKey,
        previous: &PersonalDataKey,
    ) -> Result<Self, SealingError> {
        let current = KeySet::derive(key)?;
        let previous = KeySet::derive(previous)?;
        if current.fingerprint == previous.fingerprint {
            return Err(SealingError::SameKey);
        }
        Ok(Self {
            inner: Arc::new(SealerKeys {
                current,
                previous: Some(previous),
            }),
        })
    }

    /// The same current key without the previous one (what a rotation leaves).
    pub fn without_previous(&self) -> Self {
        let current = &self.inner.current;
        Self {
            inner: Arc::new(SealerKeys {
                current: KeySet {
                    cipher: current.cipher.clone(),
                    lookup: current.lookup.clone(),
                    fingerprint: current.fingerprint.clone(),
                    code_key: current.code_key,
                    audit_key: current.audit_key,
                },
                previous: None,
            }),
        }
    }

    pub fn fingerprint(&self) -> &KeyFingerprint {
        &self.inner.current.fingerprint
    }

    /// The fingerprint of the previous key while rotating.
    pub fn previous_fingerprint(&self) -> Option<&KeyFingerprint> {
        self.inner.previous.as_ref().map(|keys| &keys.fingerprint)
    }

    /// The secret that keys one-time-code digests, derived from the personal-data key.
    pub fn code_key(&self) -> [u8; 32] {
        self.inner.current.code_key
    }

    /// The previous key's code secret while rotating: codes sent just before the switch still count.
    pub fn previous_code_key(&self) -> Option<[u8; 32]> {
        self.inner.previous.as_ref().map(|keys| keys.code_key)
    }

    /// The secret that keys the audit log's chain of MACs (`crate::audit`), derived from the
    /// personal-data key apart from every other subkey.
    pub fn audit_key(&self) -> [u8; 32] {
        self.inner.current.audit_key
    }

    /// The previous key's audit secret while rotating.
    pub fn previous_audit_key(&self) -> Option<[u8; 32]> {
        self.inner.previous.as_ref().map(|keys| keys.audit_key)
    }

    /// Seals `plaintext`; `context` (e.g. the row's NIK digest) must be given again to open it.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, SealingError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        // version | nonce | ciphertext | tag, encrypted in place in the one buffer returned.
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .inner
            .current
            .cipher
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                context,
                &mut out[1 + NONCE_LEN..],
            )
            .map_err(|_| SealingError::Open)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens an envelope made by [`Sealer::seal`] with the same key (or, while rotating, the
    /// previous one) and context.
    pub fn open(&self, envelope: &[u8], context: &[u8]) -> Result<Vec<u8>, SealingError> {
        self.open_aged(envelope, context)
            .map(|(plaintext, _)| plaintext)
    }

    /// Like [`Sealer::open`], and says which key opened the envelope.
    pub fn open_aged(
        &self,
        envelope: &[u8],
        context: &[u8],
    ) -> Result<(Vec<u8>, KeyAge), SealingError> {
        match self.inner.current.open(envelope, context) {
            Ok(plaintext) => Ok((plaintext, KeyAge::Current)),
            Err(SealingError::Open) => match &self.inner.previous {
                Some(previous) => previous
                    .open(envelope, context)
                    .map(|plaintext| (plaintext, KeyAge::Previous)),
                None => Err(SealingError::Open),
            },
            Err(error) => Err(error),
        }
    }

    /// The keyed digest used to find a record by an exact value.
    pub fn digest(&self, kind: LookupKind, value: &[u8]) -> [u8; DIGEST_LEN] {
        self.inner.current.digest(kind, value)
    }

    /// The digests a lookup must accept: the current key's and, while rotating, the previous
    /// key's (otherwise the current one twice, so that a query has one shape either way).
    pub fn lookup_digests(&self, kind: LookupKind, value: &[u8]) -> [[u8; DIGEST_LEN]; 2] {
        let current = self.inner.current.digest(kind, value);
        let previous = self
            .inner
            .previous
            .as_ref()
            .map_or(current, |keys| keys.digest(kind, value));
        [current, previous]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sealer() -> Sealer {
        Sealer::new(
            &PersonalDataKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn seal_then_open_returns_the_plaintext_and_hides_it() {
        let s = sealer();
        let envelope = s.seal(b"3171011708450001", b"row-1").unwrap();
        assert!(!envelope.windows(16).any(|w| w == b"3171011708450001"));
        assert_eq!(s.open(&envelope, b"row-1").unwrap(), b"3171011708450001");
    }

    #[test]
    fn an_envelope_cannot_be_moved_to_another_row_or_opened_with_another_key() {
        let s = sealer();
        let envelope = s.seal(b"secret", b"row-1").unwrap();
        assert_eq!(s.open(&envelope, b"row-2"), Err(SealingError::Open));
        let other = Sealer::new(&PersonalDataKey::generate()).unwrap();
        assert_eq!(other.open(&envelope, b"row-1"), Err(SealingError::Open));
        assert_ne!(other.fingerprint(), s.fingerprint());
    }

    #[test]
    fn sealing_twice_gives_different_envelopes() {
        let s = sealer();
        assert_ne!(s.seal(b"x", b"").unwrap(), s.seal(b"x", b"").unwrap());
    }

    #[test]
    fn digests_are_deterministic_per_key_and_kind() {
        let s = sealer();
        assert_eq!(
            s.digest(LookupKind::Nik, b"1"),
            s.digest(LookupKind::Nik, b"1")
        );
        assert_ne!(
            s.digest(LookupKind::Nik, b"1"),
            s.digest(LookupKind::CardNumber, b"1")
        );
        let other = Sealer::new(&PersonalDataKey::generate()).unwrap();
        assert_ne!(
            s.digest(LookupKind::Nik, b"1"),
            other.digest(LookupKind::Nik, b"1")
        );
    }

    #[test]
    fn bad_keys_are_refused_and_keys_never_print() {
        assert_eq!(
            PersonalDataKey::from_base64("short").unwrap_err(),
            SealingError::BadKey
        );
        assert_eq!(
            PersonalDataKey::from_base64("").unwrap_err(),
            SealingError::BadKey
        );
        let key = PersonalDataKey::generate();
        let text = key.expose_base64();
        assert!(!format!("{key:?}").contains(&text));
        assert!(!format!("{:?}", Sealer::new(&key).unwrap()).contains(&text));
        assert_eq!(
            PersonalDataKey::from_base64(&text).unwrap().expose_base64(),
            text
        );
    }

    #[test]
    fn a_rotating_sealer_seals_with_the_new_key_and_opens_with_either() {
        let old = sealer();
        let new_key = PersonalDataKey::generate();
        let old_key =
            PersonalDataKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let rotating = Sealer::rotating(&new_key, &old_key).unwrap();
        let new = Sealer::new(&new_key).unwrap();
        assert_eq!(rotating.fingerprint(), new.fingerprint());
        assert_eq!(rotating.previous_fingerprint(), Some(old.fingerprint()));

        let sealed_before = old.seal(b"3171011708450001", b"row").unwrap();
        assert_eq!(
            rotating.open_aged(&sealed_before, b"row").unwrap(),
            (b"3171011708450001".to_vec(), KeyAge::Previous)
        );
        let sealed_now = rotating.seal(b"3171011708450001", b"row").unwrap();
        assert_eq!(new.open(&sealed_now, b"row").unwrap(), b"3171011708450001");
        assert_eq!(old.open(&sealed_now, b"row"), Err(SealingError::Open));
        assert_eq!(
            rotating.open_aged(&sealed_now, b"row").unwrap().1,
            KeyAge::Current
        );
        // The context still binds under the previous key.
        assert_eq!(
            rotating.open(&sealed_before, b"other"),
            Err(SealingError::Open)
        );

        let [current, previous] = rotating.lookup_digests(LookupKind::Nik, b"1");
        assert_eq!(current, new.digest(LookupKind::Nik, b"1"));
        assert_eq!(previous, old.digest(LookupKind::Nik, b"1"));
        assert_eq!(rotating.digest(LookupKind::Nik, b"1"), current);
        assert_eq!(
            new.lookup_digests(LookupKind::Nik, b"1"),
            [current, current]
        );
        assert_eq!(rotating.previous_code_key(), Some(old.code_key()));
        assert_eq!(rotating.previous_audit_key(), Some(old.audit_key()));

        let done = rotating.without_previous();
        assert_eq!(done.previous_fingerprint(), None);
        assert_eq!(done.open(&sealed_before, b"row"), Err(SealingError::Open));
        assert_eq!(
            Sealer::rotating(&old_key, &old_key).unwrap_err(),
            SealingError::SameKey
        );
    }

    proptest! {
        #[test]
        fn open_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = sealer().open(&bytes, b"ctx");
        }

        #[test]
        fn round_trips_any_plaintext(msg in proptest::collection::vec(any::<u8>(), 0..300), ctx in proptest::collection::vec(any::<u8>(), 0..40)) {
            let s = sealer();
            prop_assert_eq!(s.open(&s.seal(&msg, &ctx).unwrap(), &ctx).unwrap(), msg);
        }
    }
}
