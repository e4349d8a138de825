//! What happened to a message, in words a participant and a call-centre agent understand.
//!
//! Providers report outcomes in their own vocabulary: an SMPP `command_status` on submit, a receipt's
//! `stat` and `err`, a WhatsApp error code, an SMTP reply. This module turns each raw outcome into a
//! normalised [`DeliveryStatus`] and a [`Cause`] with a suggested [`NextStep`], through a
//! [`CauseMap`] whose defaults come from SPEC §5 and `research/domain.md` §4 and which an operator can
//! override per code (vendors' `err` values differ).
//!
//! - [`receipt`]: the tolerant parser of SMPP delivery receipts (text form and TLVs).
//! - [`causes`]: the mapping from raw outcomes to status and cause.
//! - [`circuit`]: the circuit breaker that skips a failing provider for a while.
//! - [`fallback`]: which other channels a participant is offered when a message did not arrive.
//! - [`explain`]: what the participant and staff are told about an attempt, worded for its channel.
//! - [`budget`]: the daily caps on codes per channel and hand-offs per provider (money).

pub mod budget;
pub mod causes;
pub mod circuit;
pub mod explain;
pub mod fallback;
pub mod receipt;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use causes::{CauseMap, CauseMapError, CauseOverride, CodeSource, RawOutcome, Retry, Verdict};
pub use explain::{Explanation, explain};
pub use receipt::{Receipt, ReceiptError, ReceiptState, ReceiptTlvs};

/// Where one attempt to deliver a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting in the outbox.
    Queued,
    /// The provider took it; no receipt yet.
    Submitted,
    /// The handset (or mailbox, or WhatsApp) has it.
    Delivered,
    /// It will not arrive by this route.
    Failed,
    /// The network gave up before the phone could be reached.
    Expired,
    /// The provider cannot say.
    Unknown,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Submitted => "submitted",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Submitted,
            Self::Delivered,
            Self::Failed,
            Self::Expired,
            Self::Unknown,
        ]
        .into_iter()
        .find(|status| status.as_str() == input)
    }

    /// No later report can change it.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Expired)
    }
}

/// Why a message did (not) arrive, in the participant's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Delivered,
    /// Unknown in the operator's register: inactive, expired (*hangus*) or mistyped.
    NumberInactive,
    /// Known to the operator but not attached to the network now.
    NotOnNetwork,
    /// Phone switched off or out of coverage.
    PhoneUnreachable,
    /// SMS inbox or SIM memory full.
    InboxFull,
    /// The number cannot receive SMS (data-only SIM, SMS service off).
    CannotReceiveSms,
    /// Barred by the operator: suspended, *masa aktif* over, or an operator filter.
    BlockedByOperator,
    /// Rejected by the operator's spam filter or sender-ID rules.
    SpamFiltered,
    /// The handset is blacklisted.
    DeviceBlocked,
    /// Roaming partner or network without SMS.
    NetworkUnsupported,
    /// The phone was busy receiving something else.
    PhoneBusy,
    /// A failure inside the operator's network.
    OperatorFailure,
    /// The number is not valid for this route.
    InvalidNumber,
    /// The provider's queue is full or it is down.
    ProviderOverloaded,
    /// The provider asked us to slow down.
    ProviderThrottled,
    /// The provider failed in a way that may pass.
    ProviderError,
    /// Our account or configuration at the provider is wrong (sender ID, TON/NPI…): an operator's job.
    ProviderMisconfigured,
    /// The number has no WhatsApp account.
    NotOnWhatsapp,
    /// The mailbox does not exist or refused the message.
    MailboxRejected,
    /// Cancelled by the operator or the SMSC.
    Cancelled,
    /// Nobody said what happened.
    Unknown,
    /// gerbang gave up on the message: no provider took it before its code expired (or the code
    /// expired while it waited in the queue). It was never handed off.
    NotSent,
}

/// What the participant (or the agent helping them) can do about a cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Nothing: it arrived.
    None,
    /// Wait a little; it may still arrive or will be retried.
    Wait,
    /// Turn the phone on or move to a place with signal, then ask again.
    FindSignal,
    /// Delete some SMS, then ask again.
    ClearInbox,
    /// Use another channel (WhatsApp, voice call, email).
    SwitchChannel,
    /// Check that the number on file is right and active; change it at a branch if not.
    CheckNumber,
    /// Contact the operator (blocked, *masa aktif* over).
    ContactOperator,
    /// Contact the call centre; the problem is on our side or the provider's.
    ContactCallCentre,
    /// Check the email address given (or use another channel).
    CheckAddress,
    /// Ask for a new code, here or over another channel: this one was given up.
    AskAgain,
}

impl NextStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Wait => "wait",
            Self::FindSignal => "find_signal",
            Self::ClearInbox => "clear_inbox",
            Self::SwitchChannel => "switch_channel",
            Self::CheckNumber => "check_number",
            Self::ContactOperator => "contact_operator",
            Self::ContactCallCentre => "contact_call_centre",
            Self::CheckAddress => "check_address",
            Self::AskAgain => "ask_again",
        }
    }
}

impl Cause {
    /// Every cause, for documentation and tests.
    pub const ALL: [Cause; 22] = [
        Self::Delivered,
        Self::NumberInactive,
        Self::NotOnNetwork,
        Self::PhoneUnreachable,
        Self::InboxFull,
        Self::CannotReceiveSms,
        Self::BlockedByOperator,
        Self::SpamFiltered,
        Self::DeviceBlocked,
        Self::NetworkUnsupported,
        Self::PhoneBusy,
        Self::OperatorFailure,
        Self::InvalidNumber,
        Self::ProviderOverloaded,
        Self::ProviderThrottled,
        Self::ProviderError,
        Self::ProviderMisconfigured,
        Self::NotOnWhatsapp,
        Self::MailboxRejected,
        Self::Cancelled,
        Self::Unknown,
        Self::NotSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::NumberInactive => "number_inactive",
            Self::NotOnNetwork => "not_on_network",
            Self::PhoneUnreachable => "phone_unreachable",
            Self::InboxFull => "inbox_full",
            Self::CannotReceiveSms => "cannot_receive_sms",
            Self::BlockedByOperator => "blocked_by_operator",
            Self::SpamFiltered => "spam_filtered",
            Self::DeviceBlocked => "device_blocked",
            Self::NetworkUnsupported => "network_unsupported",
            Self::PhoneBusy => "phone_busy",
            Self::OperatorFailure => "operator_failure",
            Self::InvalidNumber => "invalid_number",
            Self::ProviderOverloaded => "provider_overloaded",
            Self::ProviderThrottled => "provider_throttled",
            Self::ProviderError => "provider_error",
            Self::ProviderMisconfigured => "provider_misconfigured",
            Self::NotOnWhatsapp => "not_on_whatsapp",
            Self::MailboxRejected => "mailbox_rejected",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
            Self::NotSent => "not_sent",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|cause| cause.as_str() == input)
    }
}
