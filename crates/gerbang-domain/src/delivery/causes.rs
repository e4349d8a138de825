//! From a provider's raw outcome to a status, a cause and whether trying again can help.
//!
//! The defaults follow `research/domain.md` §4 (SMPP `command_status`, receipt `stat` and GSM MAP
//! `err` codes), WhatsApp Cloud API error codes and SMTP reply codes. Vendors put different things in
//! `err` (MAP codes, hex, private offsets), so an operator can override any code per source in the
//! configuration ([`CauseOverride`]); an unmapped code yields [`Cause::Unknown`], never a guess.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::receipt::{Receipt, ReceiptState};
use super::{Cause, DeliveryStatus};

/// Whether sending again can help, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// Nothing automatic will help (a wrong number, a full inbox the participant must clear).
    No,
    /// The same provider, after a back-off (throttling, a full queue, a phone briefly off).
    SameRoute,
    /// Another provider or route may succeed where this one failed.
    OtherRoute,
}

/// A raw outcome as a provider reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawOutcome<'a> {
    /// The SMPP `command_status` of a `submit_sm_resp`.
    SmppSubmit(u32),
    /// An SMPP delivery receipt.
    SmppReceipt(&'a Receipt),
    /// A WhatsApp Cloud API error code (from the send response or a `failed` status webhook).
    Whatsapp(u32),
    /// An SMTP reply code to the message (or the final one of the dialogue).
    Smtp(u16),
    /// No receipt arrived within the configured window.
    NoReceipt,
}

/// What a raw outcome means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub status: DeliveryStatus,
    /// `None` while nothing went wrong yet (a submit accepted, a receipt still en route).
    pub cause: Option<Cause>,
    pub retry: Retry,
}

/// Where an overridden code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeSource {
    /// SMPP `command_status`, written in hex (`0x58`) or decimal (`88`).
    SmppStatus,
    /// The `err` of an SMPP receipt, as written (leading zeros ignored).
    SmppErr,
    Whatsapp,
    Smtp,
}

/// One operator-configured mapping, e.g. `{ source = "smpp_err", code = "1153", cause =
/// "number_inactive", retry = "no" }` for an SMSC that adds 1152 to MAP codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CauseOverride {
    pub source: CodeSource,
    pub code: String,
    pub cause: Cause,
    pub retry: Retry,
}

/// Why an override was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CauseMapError {
    #[error("`{0}` is not a command_status (hex like 0x58 or decimal)")]
    BadStatus(String),
    #[error("`{0}` is not a numeric code")]
    BadCode(String),
    #[error("an error code must not be empty")]
    Empty,
}

/// The mapping in force: defaults plus the operator's overrides.
#[derive(Debug, Clone)]
pub struct CauseMap {
    smpp_status: HashMap<u32, (Cause, Retry)>,
    smpp_err: HashMap<String, (Cause, Retry)>,
    whatsapp: HashMap<u32, (Cause, Retry)>,
    smtp: HashMap<u16, (Cause, Retry)>,
}

impl Default for CauseMap {
    fn default() -> Self {
        use Cause::*;
        use Retry::*;
        let smpp_status = HashMap::from([
            (0x08, (ProviderError, SameRoute)),          // ESME_RSYSERR
            (0x0A, (ProviderMisconfigured, OtherRoute)), // ESME_RINVSRCADR: sender id
            // ESME_RINVDSTADR: numbers are checked before sending, so this is most often a
            // destination not enabled on the account; another route may take it.
            (0x0B, (InvalidNumber, OtherRoute)),
            (0x0D, (ProviderMisconfigured, OtherRoute)), // ESME_RBINDFAIL
            (0x0E, (ProviderMisconfigured, OtherRoute)), // ESME_RINVPASWD
            (0x0F, (ProviderMisconfigured, OtherRoute)), // ESME_RINVSYSID
            (0x14, (ProviderOverloaded, SameRoute)),     // ESME_RMSGQFUL
            (0x45, (ProviderError, OtherRoute)),         // ESME_RSUBMITFAIL
            (0x50, (ProviderMisconfigured, OtherRoute)), // ESME_RINVDSTTON
            (0x51, (ProviderMisconfigured, OtherRoute)), // ESME_RINVDSTNPI
            (0x58, (ProviderThrottled, SameRoute)),      // ESME_RTHROTTLED
            (0x61, (ProviderMisconfigured, OtherRoute)), // ESME_RINVSCHED
            (0x62, (ProviderMisconfigured, OtherRoute)), // ESME_RINVEXPIRY
            (0x64, (ProviderError, SameRoute)),          // ESME_RX_T_APPN
            (0x65, (ProviderError, OtherRoute)),         // ESME_RX_P_APPN
            (0x66, (ProviderError, OtherRoute)),         // ESME_RX_R_APPN
            (0xFF, (ProviderError, SameRoute)),          // ESME_RUNKNOWNERR
        ]);
        // GSM MAP error codes (3GPP TS 29.002), as most SMSCs put them in `err`.
        let smpp_err = [
            ("1", (NumberInactive, No)),           // unknownSubscriber
            ("5", (NotOnNetwork, SameRoute)),      // unidentifiedSubscriber
            ("6", (PhoneUnreachable, SameRoute)),  // absentSubscriberSM
            ("9", (BlockedByOperator, No)),        // illegalSubscriber
            ("11", (CannotReceiveSms, No)),        // teleserviceNotProvisioned
            ("12", (DeviceBlocked, No)),           // illegalEquipment
            ("13", (BlockedByOperator, No)),       // callBarred
            ("21", (NetworkUnsupported, No)),      // facilityNotSupported
            ("27", (PhoneUnreachable, SameRoute)), // absentSubscriber
            ("31", (PhoneBusy, SameRoute)),        // subscriberBusyForMT-SMS
            ("32", (InboxFull, No)),               // sm-DeliveryFailure (memory capacity exceeded)
            ("33", (PhoneBusy, SameRoute)),        // messageWaitingListFull
            ("34", (OperatorFailure, OtherRoute)), // systemFailure
            ("35", (OperatorFailure, OtherRoute)), // dataMissing
            ("36", (OperatorFailure, OtherRoute)), // unexpectedDataValue
        ]
        .into_iter()
        .map(|(code, verdict)| (code.to_owned(), verdict))
        .collect();
        let whatsapp = HashMap::from([
            (131026, (NotOnWhatsapp, OtherRoute)), // message undeliverable: not on WhatsApp
            (131049, (SpamFiltered, OtherRoute)),  // not delivered to keep the ecosystem healthy
            (131021, (InvalidNumber, No)),         // recipient cannot be sender
            (130429, (ProviderThrottled, SameRoute)), // throughput reached
            (131056, (ProviderThrottled, SameRoute)), // pair rate limit
            (131048, (ProviderThrottled, OtherRoute)), // spam rate limit
            (4, (ProviderThrottled, SameRoute)),   // application request limit
            (80007, (ProviderThrottled, SameRoute)), // account rate limit
            (1, (ProviderError, SameRoute)),       // API unknown
            (2, (ProviderError, SameRoute)),       // API service
            (131000, (ProviderError, SameRoute)),  // something went wrong
            (131016, (ProviderOverloaded, SameRoute)), // service unavailable
            (190, (ProviderMisconfigured, OtherRoute)), // access token expired
            (10, (ProviderMisconfigured, OtherRoute)), // permission denied
            (131005, (ProviderMisconfigured, OtherRoute)), // access denied
            (131031, (ProviderMisconfigured, OtherRoute)), // account locked
            (131042, (ProviderMisconfigured, OtherRoute)), // payment issue
            (132000, (ProviderMisconfigured, OtherRoute)), // template parameter count
            (132001, (ProviderMisconfigured, OtherRoute)), // template does not exist
            (132015, (ProviderMisconfigured, OtherRoute)), // template paused
            (132016, (ProviderMisconfigured, OtherRoute)), // template disabled
        ]);
        let smtp = HashMap::from([
            (421, (ProviderOverloaded, SameRoute)),
            (450, (MailboxRejected, SameRoute)),
            (451, (ProviderError, SameRoute)),
            (452, (ProviderOverloaded, SameRoute)),
            (550, (MailboxRejected, No)),
            (551, (MailboxRejected, No)),
            (552, (InboxFull, No)),
            (553, (MailboxRejected, No)),
            (554, (SpamFiltered, OtherRoute)),
        ]);
        Self {
            smpp_status,
            smpp_err,
            whatsapp,
            smtp,
        }
    }
}

fn err_key(code: &str) -> String {
    let trimmed = code.trim().to_ascii_lowercase();
    let stripped = trimmed.trim_start_matches('0');
    if stripped.is_empty() {
        "0".into()
    } else {
        stripped.to_owned()
    }
}

impl CauseMap {
    /// The defaults with `overrides` applied in order (a later one wins).
    pub fn with_overrides(overrides: &[CauseOverride]) -> Result<Self, CauseMapError> {
        let mut map = Self::default();
        for entry in overrides {
            let code = entry.code.trim();
            if code.is_empty() {
                return Err(CauseMapError::Empty);
            }
            let verdict = (entry.cause, entry.retry);
            match entry.source {
                CodeSource::SmppStatus => {
                    let value = match code.strip_prefix("0x").or_else(|| code.strip_prefix("0X")) {
                        Some(hex) => u32::from_str_radix(hex, 16),
                        None => code.parse(),
                    }
                    .map_err(|_| CauseMapError::BadStatus(code.to_owned()))?;
                    map.smpp_status.insert(value, verdict);
                }
                CodeSource::SmppErr => {
                    map.smpp_err.insert(err_key(code), verdict);
                }
                CodeSource::Whatsapp => {
                    let value = code
                        .parse()
                        .map_err(|_| CauseMapError::BadCode(code.to_owned()))?;
                    map.whatsapp.insert(value, verdict);
                }
                CodeSource::Smtp => {
                    let value = code
                        .parse()
                        .map_err(|_| CauseMapError::BadCode(code.to_owned()))?;
                    map.smtp.insert(value, verdict);
                }
            }
        }
        Ok(map)
    }

    /// What `outcome` means.
    pub fn judge(&self, outcome: &RawOutcome<'_>) -> Verdict {
        let failed = |(cause, retry): (Cause, Retry)| Verdict {
            status: DeliveryStatus::Failed,
            cause: Some(cause),
            retry,
        };
        match outcome {
            RawOutcome::SmppSubmit(0) => Verdict {
                status: DeliveryStatus::Submitted,
                cause: None,
                retry: Retry::No,
            },
            RawOutcome::SmppSubmit(status) => failed(
                self.smpp_status
                    .get(status)
                    .copied()
                    .unwrap_or((Cause::ProviderError, Retry::OtherRoute)),
            ),
            RawOutcome::SmppReceipt(receipt) => self.judge_receipt(receipt),
            RawOutcome::Whatsapp(code) => failed(
                self.whatsapp
                    .get(code)
                    .copied()
                    .unwrap_or((Cause::Unknown, Retry::OtherRoute)),
            ),
            RawOutcome::Smtp(code) if (200..300).contains(code) => Verdict {
                status: DeliveryStatus::Submitted,
                cause: None,
                retry: Retry::No,
            },
            RawOutcome::Smtp(code) => failed(self.smtp.get(code).copied().unwrap_or(
                if (400..500).contains(code) {
                    (Cause::ProviderError, Retry::SameRoute)
                } else {
                    (Cause::Unknown, Retry::OtherRoute)
                },
            )),
            RawOutcome::NoReceipt => Verdict {
                status: DeliveryStatus::Unknown,
                cause: Some(Cause::Unknown),
                retry: Retry::OtherRoute,
            },
        }
    }

    fn judge_receipt(&self, receipt: &Receipt) -> Verdict {
        let mapped = receipt
            .error
            .as_deref()
            .and_then(|err| self.smpp_err.get(&err_key(err)).copied());
        let verdict = |status, fallback: (Cause, Retry)| {
            let (cause, retry) = mapped.unwrap_or(fallback);
            Verdict {
                status,
                cause: Some(cause),
                retry,
            }
        };
        match receipt.state {
            ReceiptState::Delivered => Verdict {
                status: DeliveryStatus::Delivered,
                cause: Some(Cause::Delivered),
                retry: Retry::No,
            },
            ReceiptState::Enroute => Verdict {
                status: DeliveryStatus::Submitted,
                cause: None,
                retry: Retry::No,
            },
            ReceiptState::Expired => verdict(
                DeliveryStatus::Expired,
                (Cause::PhoneUnreachable, Retry::SameRoute),
            ),
            ReceiptState::Deleted => verdict(
                DeliveryStatus::Failed,
                (Cause::Cancelled, Retry::OtherRoute),
            ),
            ReceiptState::Rejected => verdict(
                DeliveryStatus::Failed,
                (Cause::SpamFiltered, Retry::OtherRoute),
            ),
            ReceiptState::Undeliverable | ReceiptState::Failed | ReceiptState::Skipped => {
                verdict(DeliveryStatus::Failed, (Cause::Unknown, Retry::OtherRoute))
            }
            // "Accepted" means read on the subscriber's behalf, not delivered; say we do not know.
            ReceiptState::Accepted | ReceiptState::Unknown | ReceiptState::Unrecognised => {
                verdict(DeliveryStatus::Unknown, (Cause::Unknown, Retry::OtherRoute))
            }
        }
    }
}
