//! Four-eyes requests (SPEC §6): a branch officer changes a participant's phone number or email at
//! the counter only after recording the identity document they saw, and the change waits for a
//! second officer or a supervisor to approve it. The author never approves their own request; a
//! request is decided once; an undecided request expires. After approval the new contact proves
//! itself with a code, and only then is the change made.
//!
//! Pure rules: the clock is always passed in.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::explain::Explain;
use crate::identity::{FamilyCardNumber, IndonesianTimeZone, Nik};

/// The identity document the officer saw at the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Kartu Tanda Penduduk: its number is the NIK, so it must be the participant's.
    Ktp,
    /// Kartu Keluarga: a 16-digit family card number.
    Kk,
    /// An Indonesian passport: a letter and seven digits.
    Passport,
    /// Surat keterangan from Dukcapil (a KTP being reissued): its letter number as written.
    Suket,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 4] = [Self::Ktp, Self::Kk, Self::Passport, Self::Suket];

    pub fn parse(text: &str) -> Result<Self, RequestError> {
        match text.trim() {
            "ktp" => Ok(Self::Ktp),
            "kk" => Ok(Self::Kk),
            "passport" => Ok(Self::Passport),
            "suket" => Ok(Self::Suket),
            _ => Err(RequestError::DocumentInvalid),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ktp => "ktp",
            Self::Kk => "kk",
            Self::Passport => "passport",
            Self::Suket => "suket",
        }
    }
}

/// What the officer recorded of the document: its kind and number (personal data, sealed at
/// rest; only [`IdentityCheck::masked`] goes into the audit log).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityCheck {
    pub document: DocumentKind,
    pub number: String,
}

impl std::fmt::Debug for IdentityCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityCheck({})", self.masked())
    }
}

impl IdentityCheck {
    /// Checks the number against the kind of document; a KTP must carry `nik`, the
    /// participant's own.
    pub fn parse(document: &str, number: &str, nik: &Nik) -> Result<Self, RequestError> {
        let document = DocumentKind::parse(document)?;
        let compact: String = number
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .collect::<String>()
            .to_ascii_uppercase();
        let number = match document {
            DocumentKind::Ktp => {
                let seen = Nik::parse(&compact).map_err(|_| RequestError::DocumentNumberInvalid)?;
                if seen != *nik {
                    return Err(RequestError::DocumentMismatch);
                }
                seen.as_str().to_owned()
            }
            DocumentKind::Kk => FamilyCardNumber::parse(&compact)
                .map_err(|_| RequestError::DocumentNumberInvalid)?
                .as_str()
                .to_owned(),
            DocumentKind::Passport => {
                let b = compact.as_bytes();
                let valid = b.len() == 8
                    && b[0].is_ascii_uppercase()
                    && b[1..].iter().all(u8::is_ascii_digit);
                if !valid {
                    return Err(RequestError::DocumentNumberInvalid);
                }
                compact
            }
            DocumentKind::Suket => {
                let text = number.trim();
                if !(5..=60).contains(&text.chars().count()) {
                    return Err(RequestError::DocumentNumberInvalid);
                }
                text.to_owned()
            }
        };
        Ok(Self { document, number })
    }

    /// `ktp ************1234`: the kind and the last four characters.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.number.chars().collect();
        let shown = chars.len().saturating_sub(4);
        let tail: String = chars[shown..].iter().collect();
        format!("{} {}{tail}", self.document.as_str(), "*".repeat(shown))
    }
}

/// Where a request stands as stored. "Expired" is not stored: it is a pending or approved request
/// whose time has passed ([`FourEyes::stage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Approved,
    Declined,
    Completed,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Declined => "declined",
            Self::Completed => "completed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "declined" => Some(Self::Declined),
            "completed" => Some(Self::Completed),
            _ => None,
        }
    }
}

/// What a person at the console sees: the stored state, with expiry applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a second person.
    Waiting,
    /// Approved: the new contact's code is awaited.
    AwaitingCode,
    Declined,
    Completed,
    /// Nobody decided (or the code was not entered) in time.
    Expired,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::AwaitingCode => "awaiting_code",
            Self::Declined => "declined",
            Self::Completed => "completed",
            Self::Expired => "expired",
        }
    }
}

/// The four-eyes rules of one request: who asked, who decided, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FourEyes {
    /// The author's staff name.
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// A pending request must be decided, and an approved one completed, before this.
    pub expires_at: DateTime<Utc>,
    pub state: RequestState,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl FourEyes {
    pub fn new(by: &str, now: DateTime<Utc>, lifetime: Duration) -> Self {
        Self {
            requested_by: by.to_owned(),
            requested_at: now,
            expires_at: now + lifetime,
            state: RequestState::Pending,
            decided_by: None,
            decided_at: None,
            completed_at: None,
        }
    }

    pub fn stage(&self, now: DateTime<Utc>) -> Stage {
        match self.state {
            RequestState::Declined => Stage::Declined,
            RequestState::Completed => Stage::Completed,
            _ if now >= self.expires_at => Stage::Expired,
            RequestState::Pending => Stage::Waiting,
            RequestState::Approved => Stage::AwaitingCode,
        }
    }

    /// Why `by` may not decide this request now, if they may not.
    fn decidable(&self, by: &str, now: DateTime<Utc>) -> Result<(), RequestError> {
        match self.stage(now) {
            Stage::Waiting => {}
            Stage::Expired => {
                return Err(RequestError::Expired {
                    at: self.expires_at,
                });
            }
            stage => return Err(RequestError::AlreadyDecided { stage }),
        }
        if by == self.requested_by {
            return Err(RequestError::OwnRequest);
        }
        Ok(())
    }

    /// A second person approves: never the author, once, before the request expires.
    pub fn approve(&mut self, by: &str, now: DateTime<Utc>) -> Result<(), RequestError> {
        self.decidable(by, now)?;
        self.state = RequestState::Approved;
        self.decided_by = Some(by.to_owned());
        self.decided_at = Some(now);
        Ok(())
    }

    /// A second person declines, or the author withdraws their own request.
    pub fn decline(&mut self, by: &str, now: DateTime<Utc>) -> Result<(), RequestError> {
        match self.decidable(by, now) {
            Ok(()) | Err(RequestError::OwnRequest) => {}
            Err(refused) => return Err(refused),
        }
        self.state = RequestState::Declined;
        self.decided_by = Some(by.to_owned());
        self.decided_at = Some(now);
        Ok(())
    }

    /// Whether the new contact's code may be sent or entered now.
    pub fn awaiting_code(&self, now: DateTime<Utc>) -> Result<(), RequestError> {
        match self.stage(now) {
            Stage::AwaitingCode => Ok(()),
            Stage::Waiting => Err(RequestError::NotApproved),
            Stage::Expired => Err(RequestError::Expired {
                at: self.expires_at,
            }),
            stage => Err(RequestError::AlreadyDecided { stage }),
        }
    }

    /// The new contact proved itself: the change is made.
    pub fn complete(&mut self, now: DateTime<Utc>) -> Result<(), RequestError> {
        self.awaiting_code(now)?;
        self.state = RequestState::Completed;
        self.completed_at = Some(now);
        Ok(())
    }
}

/// Why a four-eyes request or its decision was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the document kind must be ktp, kk, passport or suket")]
    DocumentInvalid,
    #[error("the document number does not have that document's shape")]
    DocumentNumberInvalid,
    #[error("the KTP's NIK is not the participant's")]
    DocumentMismatch,
    #[error("the author of a request may not approve it")]
    OwnRequest,
    #[error("the request is already {}", stage.as_str())]
    AlreadyDecided { stage: Stage },
    #[error("the request expired at {at}")]
    Expired { at: DateTime<Utc> },
    #[error("the request has not been approved")]
    NotApproved,
}

fn wib(at: DateTime<Utc>, english: bool) -> String {
    IndonesianTimeZone::Wib.format(at, english)
}

impl Explain for RequestError {
    fn code(&self) -> &'static str {
        match self {
            Self::DocumentInvalid => "document_invalid",
            Self::DocumentNumberInvalid => "document_number_invalid",
            Self::DocumentMismatch => "document_mismatch",
            Self::OwnRequest => "approval_own_request",
            Self::AlreadyDecided { .. } => "approval_already_decided",
            Self::Expired { .. } => "approval_expired",
            Self::NotApproved => "approval_missing",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::DocumentInvalid => "Pilih jenis dokumen: KTP, KK, paspor atau suket.".into(),
            Self::DocumentNumberInvalid => {
                "Nomor dokumen tidak sesuai bentuk dokumen itu. Periksa lagi.".into()
            }
            Self::DocumentMismatch => {
                "NIK pada KTP yang dilihat bukan NIK peserta ini. Perubahan tidak dapat diajukan."
                    .into()
            }
            Self::OwnRequest => {
                "Permohonan ini Anda ajukan sendiri. Persetujuan harus dari petugas lain.".into()
            }
            Self::AlreadyDecided { stage } => match stage {
                Stage::Declined => "Permohonan ini sudah ditolak.".into(),
                Stage::Completed => "Permohonan ini sudah selesai.".into(),
                _ => "Permohonan ini sudah disetujui.".into(),
            },
            Self::Expired { at } => format!(
                "Permohonan ini kedaluwarsa pada {}. Ajukan permohonan baru.",
                wib(*at, false)
            ),
            Self::NotApproved => "Permohonan ini belum disetujui petugas kedua.".into(),
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::DocumentInvalid => "Choose the document: KTP, KK, passport or suket.".into(),
            Self::DocumentNumberInvalid => {
                "The document number does not have that document's shape. Check it again.".into()
            }
            Self::DocumentMismatch => {
                "The NIK on the KTP seen is not this participant's. The change cannot be requested."
                    .into()
            }
            Self::OwnRequest => {
                "You made this request yourself. Another officer must approve it.".into()
            }
            Self::AlreadyDecided { stage } => match stage {
                Stage::Declined => "This request has already been declined.".into(),
                Stage::Completed => "This request is already completed.".into(),
                _ => "This request has already been approved.".into(),
            },
            Self::Expired { at } => format!(
                "This request expired at {}. Make a new request.",
                wib(*at, true)
            ),
            Self::NotApproved => "A second officer has not approved this request yet.".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    fn request() -> FourEyes {
        FourEyes::new("siti", at(0), Duration::hours(4))
    }

    #[test]
    fn the_author_never_approves_and_a_second_person_approves_once() {
        let mut r = request();
        assert_eq!(r.approve("siti", at(1)), Err(RequestError::OwnRequest));
        assert_eq!(r.stage(at(1)), Stage::Waiting);
        r.approve("budi", at(2)).unwrap();
        assert_eq!(r.stage(at(2)), Stage::AwaitingCode);
        assert_eq!(
            r.approve("ani", at(3)),
            Err(RequestError::AlreadyDecided {
                stage: Stage::AwaitingCode
            })
        );
        assert_eq!(r.decided_by.as_deref(), Some("budi"));
        r.complete(at(4)).unwrap();
        assert_eq!(r.stage(at(500)), Stage::Completed);
    }

    #[test]
    fn an_undecided_request_expires_and_cannot_be_approved_after() {
        let mut r = request();
        assert_eq!(
            r.approve("budi", at(240)),
            Err(RequestError::Expired { at: at(240) })
        );
        assert_eq!(r.stage(at(239)), Stage::Waiting);
        r.approve("budi", at(239)).unwrap();
        assert_eq!(
            r.complete(at(241)),
            Err(RequestError::Expired { at: at(240) })
        );
    }

    #[test]
    fn the_author_may_withdraw_and_a_declined_request_stays_declined() {
        let mut r = request();
        r.decline("siti", at(1)).unwrap();
        assert_eq!(r.stage(at(1)), Stage::Declined);
        assert!(r.approve("budi", at(2)).is_err());
        assert_eq!(
            r.complete(at(2)),
            Err(RequestError::AlreadyDecided {
                stage: Stage::Declined
            })
        );
    }

    #[test]
    fn documents_are_checked_against_their_kind_and_a_ktp_against_the_nik() {
        let nik = Nik::parse("3171011708450001").unwrap();
        let seen = IdentityCheck::parse("ktp", "3171 0117 0845 0001", &nik).unwrap();
        assert_eq!(seen.masked(), "ktp ************0001");
        assert_eq!(
            IdentityCheck::parse("ktp", "3171015708450001", &nik),
            Err(RequestError::DocumentMismatch)
        );
        assert!(IdentityCheck::parse("passport", "c 1234567", &nik).is_ok());
        for (kind, number) in [
            ("passport", "12345678"),
            ("kk", "12"),
            ("suket", "ab"),
            ("ktp", "abc"),
        ] {
            assert_eq!(
                IdentityCheck::parse(kind, number, &nik),
                Err(RequestError::DocumentNumberInvalid),
                "{kind} {number}"
            );
        }
        assert_eq!(
            IdentityCheck::parse("sim", "123", &nik),
            Err(RequestError::DocumentInvalid)
        );
        assert!(!format!("{seen:?}").contains("317101170845"));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Approve(u8, i64),
        Decline(u8, i64),
        Complete(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..3, 0i64..400).prop_map(|(who, t)| Step::Approve(who, t)),
            (0u8..3, 0i64..400).prop_map(|(who, t)| Step::Decline(who, t)),
            (0i64..400).prop_map(Step::Complete),
        ]
    }

    proptest! {
        /// Whatever happens, in whatever order: the author never approves, a request is decided at
        /// most once, nothing is decided after it expired, and only an approved request completes.
        #[test]
        fn four_eyes_hold_under_any_sequence(steps in prop::collection::vec(step(), 0..12)) {
            let people = ["siti", "budi", "ani"];
            let mut r = request();
            let mut decisions = 0;
            let mut now = at(0);
            for step in steps {
                let before = r.clone();
                let (t, result) = match step {
                    Step::Approve(who, t) => (t, r.approve(people[who as usize], now.max(at(t)))),
                    Step::Decline(who, t) => (t, r.decline(people[who as usize], now.max(at(t)))),
                    Step::Complete(t) => (t, r.complete(now.max(at(t)))),
                };
                now = now.max(at(t));
                match result {
                    Ok(()) => {
                        prop_assert!(now < r.expires_at);
                        if before.state == RequestState::Pending {
                            decisions += 1;
                        } else {
                            prop_assert_eq!(before.state, RequestState::Approved);
                            prop_assert_eq!(r.state, RequestState::Completed);
                        }
                    }
                    Err(_) => prop_assert_eq!(&r, &before),
                }
                prop_assert!(decisions <= 1);
                if r.state == RequestState::Approved || r.state == RequestState::Completed {
                    prop_assert_ne!(r.decided_by.as_deref(), Some("siti"));
                }
            }
        }
    }
}
