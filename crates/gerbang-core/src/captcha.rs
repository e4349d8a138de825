//! The captcha in front of the registration and recovery lookups (SPEC §3, §9): the step that must
//! reveal whether a NIK is a participant sits behind it and behind the rate limits.
//!
//! [`CaptchaGate`] is what a flow asks; it is one of:
//! - [`BuiltinCaptcha`]: image challenges drawn by the `captcha` crate. A challenge's token carries
//!   a random nonce, the expiry, an HMAC over both (the token is ours) and an HMAC over both and the
//!   answer, so any instance holding the key can check it. A genuine, unexpired token is judged
//!   once: its nonce is marked spent in the store before the answer is compared, so neither a
//!   right answer (replay) nor a wrong one (trying several readings of one image) can be given
//!   twice, on any instance, across restarts. Forged tokens are refused before the store is
//!   touched, so they cannot fill it.
//! - `Test`: accepts one fixed answer, only when configured so explicitly (end-to-end tests, demos).
//! - `Disabled`: no captcha for that flow.
//!
//! Hosted captcha services (Turnstile, hCaptcha, reCAPTCHA) verify over HTTP; they come with the
//! flows that wire the gate to configuration.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use gerbang_domain::{Clock, Explain};
use gerbang_store::AccountStore;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Characters drawn in a challenge: the font's upper-case letters and digits, without the ones that
/// read alike (0/O, 1/I, 5/S, 8/B, 2/Z).
const ALPHABET: &[char] = &[
    'A', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'M', 'N', 'P', 'Q', 'R', 'T', 'U', 'V', 'W', 'X',
    'Y', '3', '4', '6', '7', '9',
];

const NONCE_LEN: usize = 16;
/// The HMAC over nonce and expiry that shows the token is ours, truncated.
const SEAL_LEN: usize = 16;
const TAG_LEN: usize = 32;
const TOKEN_LEN: usize = NONCE_LEN + 8 + SEAL_LEN + TAG_LEN;

/// A challenge to show: the token to send back with the answer, and the image.
#[derive(Debug, Clone)]
pub struct CaptchaChallenge {
    pub token: String,
    pub png: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

/// What the participant sent back.
#[derive(Debug, Clone, Copy)]
pub struct CaptchaAnswer<'a> {
    pub token: &'a str,
    pub answer: &'a str,
}

/// Why a captcha answer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaptchaError {
    #[error("a captcha answer is required")]
    Required,
    #[error("the captcha token is malformed")]
    Malformed,
    #[error("the captcha expired")]
    Expired,
    #[error("the captcha answer is wrong")]
    Wrong,
    #[error("the captcha was already used")]
    Used,
    #[error("the captcha image could not be drawn")]
    Unavailable,
}

impl Explain for CaptchaError {
    fn code(&self) -> &'static str {
        match self {
            Self::Required => "captcha_required",
            Self::Malformed => "captcha_malformed",
            Self::Expired => "captcha_expired",
            Self::Wrong => "captcha_wrong",
            Self::Used => "captcha_used",
            Self::Unavailable => "captcha_unavailable",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::Required => "Isi kode captcha yang tampil pada gambar.",
            Self::Malformed | Self::Expired | Self::Used => {
                "Captcha sudah tidak berlaku. Muat captcha baru lalu coba lagi."
            }
            Self::Wrong => "Kode captcha salah. Muat captcha baru lalu coba lagi.",
            Self::Unavailable => "Captcha tidak dapat ditampilkan. Silakan coba lagi.",
        }
        .into()
    }

    fn message_en(&self) -> String {
        match self {
            Self::Required => "Enter the captcha code shown in the image.",
            Self::Malformed | Self::Expired | Self::Used => {
                "The captcha is no longer valid. Load a new one and try again."
            }
            Self::Wrong => "The captcha code is wrong. Load a new one and try again.",
            Self::Unavailable => "The captcha could not be shown. Please try again.",
        }
        .into()
    }
}

/// A hosted captcha service (reCAPTCHA, hCaptcha, Turnstile …) that judges the token its widget
/// gave the app. The binary implements it over HTTP; `Unavailable` when the service cannot be asked.
pub trait HostedCaptcha: Send + Sync + std::fmt::Debug {
    fn judge<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CaptchaError>> + Send + 'a>>;
}

/// The captcha a flow asks for.
#[derive(Debug, Clone)]
pub enum CaptchaGate {
    Disabled,
    Builtin(Arc<BuiltinCaptcha>),
    /// The token of a hosted service's widget, judged by that service.
    Hosted(Arc<dyn HostedCaptcha>),
    /// Accepts exactly this answer with any token: only for tests and demos, explicitly configured.
    Test {
        answer: String,
    },
}

impl CaptchaGate {
    /// Accepts or refuses `answer` (`None` when the request carried none), asking the hosted
    /// service when there is one; a built-in challenge is marked spent in `store` whatever the
    /// answer.
    pub async fn judge<S: AccountStore>(
        &self,
        answer: Option<CaptchaAnswer<'_>>,
        store: &S,
    ) -> Result<(), CaptchaError> {
        match self {
            Self::Hosted(hosted) => {
                let token = answer.ok_or(CaptchaError::Required)?.token;
                if token.is_empty() || token.len() > 4096 {
                    return Err(CaptchaError::Malformed);
                }
                hosted.judge(token).await
            }
            Self::Builtin(builtin) => {
                let opened = builtin.open(answer.ok_or(CaptchaError::Required)?)?;
                let first = store
                    .spend_captcha(opened.nonce, opened.expires_at, builtin.clock.now())
                    .await
                    .map_err(|error| {
                        tracing::warn!(%error, "the store could not mark a captcha spent");
                        CaptchaError::Unavailable
                    })?;
                if !first {
                    return Err(CaptchaError::Used);
                }
                if opened.right {
                    Ok(())
                } else {
                    Err(CaptchaError::Wrong)
                }
            }
            other => other.verify(answer),
        }
    }

    /// Accepts or refuses `answer` for the gates that need no store (disabled, test); a built-in
    /// or hosted captcha needs [`Self::judge`] and is refused here.
    pub fn verify(&self, answer: Option<CaptchaAnswer<'_>>) -> Result<(), CaptchaError> {
        match self {
            Self::Disabled => Ok(()),
            Self::Hosted(_) | Self::Builtin(_) => Err(CaptchaError::Unavailable),
            Self::Test { answer: expected } => {
                let given = answer.ok_or(CaptchaError::Required)?;
                if normalise(given.answer) == normalise(expected) {
                    Ok(())
                } else {
                    Err(CaptchaError::Wrong)
                }
            }
        }
    }
}

/// Image challenges, checked by any instance holding the key; spent in the store.
pub struct BuiltinCaptcha {
    key: Hmac<Sha256>,
    clock: Arc<dyn Clock>,
    lifetime: Duration,
    length: u32,
}

/// A genuine, unexpired challenge token and whether its answer is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Opened {
    nonce: [u8; NONCE_LEN],
    expires_at: DateTime<Utc>,
    right: bool,
}

impl std::fmt::Debug for BuiltinCaptcha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinCaptcha")
            .field("lifetime", &self.lifetime)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl BuiltinCaptcha {
    /// `key` signs the tokens (derive it from a secret of the deployment, shared by its instances).
    /// The challenge key derived from a root secret (the code key), so that every instance sharing
    /// the secret accepts the others' challenges and no second secret needs configuring.
    pub fn derive_key(root: &[u8; 32]) -> [u8; 32] {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(root);
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
        mac.update(b"gerbang captcha key v1");
        mac.finalize().into_bytes().into()
    }

    pub fn new(key: [u8; 32], clock: Arc<dyn Clock>, lifetime: Duration, length: u32) -> Self {
        // HMAC pads a short key with zeros to its 64-byte block; padding it here keeps keying
        // infallible.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&key);
        Self {
            key: <Hmac<Sha256> as KeyInit>::new(&block.into()),
            clock,
            lifetime,
            length: length.clamp(4, 8),
        }
    }

    /// Draws a new challenge (CPU-bound, ~1 ms: call it from a blocking context under load).
    pub fn challenge(&self) -> Result<CaptchaChallenge, CaptchaError> {
        self.issue().map(|(challenge, _)| challenge)
    }

    /// A challenge with its answer, for tests that play the participant reading the image.
    #[doc(hidden)]
    pub fn challenge_with_answer(&self) -> Result<(CaptchaChallenge, String), CaptchaError> {
        self.issue()
    }

    /// A challenge and its answer (the answer never leaves this type outside tests).
    fn issue(&self) -> Result<(CaptchaChallenge, String), CaptchaError> {
        let mut picture = captcha::Captcha::new();
        picture
            .set_chars(ALPHABET)
            .add_chars(self.length)
            .apply_filter(captcha::filters::Noise::new(0.2))
            .apply_filter(captcha::filters::Wave::new(2.0, 12.0))
            .view(200, 70)
            .apply_filter(captcha::filters::Dots::new(6));
        let answer = picture.chars_as_string();
        let png = picture.as_png().ok_or(CaptchaError::Unavailable)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let expires_at = self.clock.now() + self.lifetime;
        let expires = expires_at.timestamp_millis().to_be_bytes();
        let seal = self.seal(&nonce, &expires).finalize().into_bytes();
        let tag = self.tag(&nonce, &expires, &answer);
        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&expires);
        token.extend_from_slice(&seal[..SEAL_LEN]);
        token.extend_from_slice(&tag);
        let challenge = CaptchaChallenge {
            token: URL_SAFE_NO_PAD.encode(token),
            png,
            expires_at,
        };
        Ok((challenge, answer))
    }

    /// Reads a token: refused when it is not ours or has expired; otherwise its nonce and whether
    /// the answer is right (the caller spends the nonce either way).
    fn open(&self, given: CaptchaAnswer<'_>) -> Result<Opened, CaptchaError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(given.token.trim())
            .map_err(|_| CaptchaError::Malformed)?;
        if bytes.len() != TOKEN_LEN {
            return Err(CaptchaError::Malformed);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let (expires, rest) = rest.split_at(8);
        let (seal, tag) = rest.split_at(SEAL_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CaptchaError::Malformed)?;
        let expires_bytes: [u8; 8] = expires.try_into().map_err(|_| CaptchaError::Malformed)?;
        if self
            .seal(&nonce, &expires_bytes)
            .verify_truncated_left(seal)
            .is_err()
        {
            return Err(CaptchaError::Malformed);
        }
        let expires_at = DateTime::from_timestamp_millis(i64::from_be_bytes(expires_bytes))
            .ok_or(CaptchaError::Malformed)?;
        if self.clock.now() >= expires_at {
            return Err(CaptchaError::Expired);
        }
        let mac = self.mac(&nonce, &expires_bytes, &normalise(given.answer));
        Ok(Opened {
            nonce,
            expires_at,
            right: mac.verify_slice(tag).is_ok(),
        })
    }

    fn seal(&self, nonce: &[u8], expires: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        mac.update(b"gerbang captcha token v2\0");
        mac.update(nonce);
        mac.update(expires);
        mac
    }

    fn mac(&self, nonce: &[u8], expires: &[u8], answer: &str) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        mac.update(b"gerbang captcha answer v2\0");
        mac.update(nonce);
        mac.update(expires);
        mac.update(answer.as_bytes());
        mac
    }

    fn tag(&self, nonce: &[u8], expires: &[u8], answer: &str) -> [u8; TAG_LEN] {
        self.mac(nonce, expires, &normalise(answer))
            .finalize()
            .into_bytes()
            .into()
    }
}

/// Answers are compared upper-cased without spaces; look-alike characters are not drawn, so a
/// participant typing `o` for `0` cannot be wrong about a character that never appears.
fn normalise(answer: &str) -> String {
    answer
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gerbang_domain::ManualClock;

    fn builtin() -> (Arc<ManualClock>, BuiltinCaptcha) {
        let clock = Arc::new(ManualClock::new(
            DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        ));
        let captcha = BuiltinCaptcha::new([7; 32], clock.clone(), Duration::minutes(2), 5);
        (clock, captcha)
    }

    #[test]
    fn a_challenge_is_a_png_with_a_token() {
        let (_, captcha) = builtin();
        let challenge = captcha.challenge().unwrap();
        assert_eq!(&challenge.png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&challenge.token).unwrap().len(),
            TOKEN_LEN
        );
    }

    #[test]
    fn every_drawn_character_is_in_the_font_and_answers_have_the_set_length() {
        let font = captcha::Captcha::new().supported_chars();
        for ch in ALPHABET {
            assert!(font.contains(ch), "{ch} is not in the captcha font");
        }
        let (_, captcha) = builtin();
        for _ in 0..20 {
            let (_, answer) = captcha.issue().unwrap();
            assert_eq!(answer.chars().count(), 5, "{answer}");
            assert!(answer.chars().all(|c| ALPHABET.contains(&c)), "{answer}");
        }
    }

    #[test]
    fn a_genuine_token_opens_with_its_answer_judged_and_a_nonce_to_spend() {
        let (_, captcha) = builtin();
        let (challenge, answer) = captcha.issue().unwrap();
        let right = captcha
            .open(CaptchaAnswer {
                token: &challenge.token,
                answer: &answer.to_lowercase(),
            })
            .unwrap();
        assert!(right.right);
        assert_eq!(right.expires_at, challenge.expires_at);
        let wrong = captcha
            .open(CaptchaAnswer {
                token: &challenge.token,
                answer: "AAAAA",
            })
            .unwrap();
        // A wrong answer still names the nonce, so the caller spends it.
        assert!(!wrong.right);
        assert_eq!(wrong.nonce, right.nonce);
    }

    #[test]
    fn forged_malformed_expired_and_missing_tokens_are_refused_before_the_store() {
        let (clock, captcha) = builtin();
        let (challenge, answer) = captcha.issue().unwrap();
        let mut forged = URL_SAFE_NO_PAD.decode(&challenge.token).unwrap();
        forged[NONCE_LEN + 7] ^= 1; // a later expiry
        let forged = URL_SAFE_NO_PAD.encode(forged);
        let forged = CaptchaAnswer {
            token: &forged,
            answer: &answer,
        };
        assert_eq!(captcha.open(forged), Err(CaptchaError::Malformed));
        let mut random = vec![0u8; TOKEN_LEN];
        rand::rng().fill_bytes(&mut random);
        let random = URL_SAFE_NO_PAD.encode(random);
        let random = CaptchaAnswer {
            token: &random,
            answer: &answer,
        };
        assert_eq!(captcha.open(random), Err(CaptchaError::Malformed));
        for token in ["", "not base64!", "AAAA"] {
            let malformed = CaptchaAnswer {
                token,
                answer: &answer,
            };
            assert_eq!(captcha.open(malformed), Err(CaptchaError::Malformed));
        }
        clock.advance(Duration::minutes(2));
        let late = CaptchaAnswer {
            token: &challenge.token,
            answer: &answer,
        };
        assert_eq!(captcha.open(late), Err(CaptchaError::Expired));
        assert_eq!(
            CaptchaGate::Builtin(Arc::new(captcha)).verify(None),
            Err(CaptchaError::Unavailable)
        );
    }

    #[test]
    fn another_key_does_not_accept_the_token() {
        let (clock, captcha) = builtin();
        let (challenge, answer) = captcha.issue().unwrap();
        let other = BuiltinCaptcha::new([8; 32], clock, Duration::minutes(2), 5);
        let given = CaptchaAnswer {
            token: &challenge.token,
            answer: &answer,
        };
        assert_eq!(other.open(given), Err(CaptchaError::Malformed));
    }

    #[test]
    fn every_code_is_documented_with_its_messages() {
        let doc = include_str!("../../../docs/accounts.md");
        use CaptchaError::*;
        for error in [Required, Malformed, Expired, Wrong, Used, Unavailable] {
            assert!(
                doc.contains(&format!("`{}`", error.code())),
                "{}",
                error.code()
            );
            assert!(doc.contains(&error.message_id()), "{}", error.message_id());
            assert!(doc.contains(&error.message_en()), "{}", error.message_en());
        }
    }

    #[test]
    fn test_mode_accepts_only_its_configured_answer() {
        let gate = CaptchaGate::Test {
            answer: "TEST".into(),
        };
        let given = |answer| CaptchaAnswer { token: "", answer };
        assert_eq!(gate.verify(Some(given("test"))), Ok(()));
        assert_eq!(gate.verify(Some(given("nope"))), Err(CaptchaError::Wrong));
        assert_eq!(gate.verify(None), Err(CaptchaError::Required));
        assert_eq!(CaptchaGate::Disabled.verify(None), Ok(()));
    }
}
