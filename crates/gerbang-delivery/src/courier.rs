//! Providers behind the engine's [`Courier`] contract.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gerbang_core::{Courier, DevInbox, HandOff, HandOffFailure, Metrics};
use gerbang_domain::Clock;
use gerbang_domain::delivery::DeliveryStatus;
use gerbang_domain::delivery::receipt::receipt_id_candidates;
use gerbang_domain::delivery::{Cause, CauseMap, RawOutcome, Retry};
use gerbang_domain::verification::{Channel, Destination};
use gerbang_domain::{Email, MobileNumber};
use gerbang_store::{OutboxMessage, ReceiptUpdate, VerificationStore};
use tokio::sync::mpsc;

use crate::email::SmtpCourier;
use crate::http_sms::HttpSmsCourier;
use crate::smpp::{QUEUE_FULL, SmppClient, SmppEvent, SubmitError, THROTTLED};
use crate::voice::VoiceCourier;
use crate::whatsapp::WhatsappCourier;

/// The mobile number of a message for `channel`, or why provider `name` cannot carry it (another
/// route may).
pub(crate) fn phone_for<'m>(
    name: &str,
    channel: Channel,
    message: &'m OutboxMessage,
) -> Result<&'m MobileNumber, HandOffFailure> {
    match &message.destination {
        Destination::Phone(number) if message.channel == channel => Ok(number),
        _ => Err(cannot_carry(name, channel, message)),
    }
}

/// The email address of a message for `channel`, or why provider `name` cannot carry it.
pub(crate) fn email_for<'m>(
    name: &str,
    channel: Channel,
    message: &'m OutboxMessage,
) -> Result<&'m Email, HandOffFailure> {
    match &message.destination {
        Destination::Email(address) if message.channel == channel => Ok(address),
        _ => Err(cannot_carry(name, channel, message)),
    }
}

fn cannot_carry(name: &str, channel: Channel, message: &OutboxMessage) -> HandOffFailure {
    let to = match message.destination {
        Destination::Phone(_) => "a phone number",
        Destination::Email(_) => "an email address",
    };
    HandOffFailure::misconfigured(format!(
        "{name} carries {}, not {} to {to}",
        channel.as_str(),
        message.channel.as_str()
    ))
}

/// SMS over one SMPP bind.
#[derive(Debug, Clone)]
pub struct SmppCourier {
    /// The provider's name in logs, e.g. `smpp:telkomsel`.
    pub name: String,
    pub client: SmppClient,
    pub causes: Arc<CauseMap>,
}

impl Courier for SmppCourier {
    fn name(&self) -> &str {
        &self.name
    }

    fn capacity(&self) -> gerbang_core::Capacity {
        let config = self.client.config();
        gerbang_core::Capacity {
            window: Some(config.window.max(1)),
            per_second: (config.max_per_second > 0).then_some(f64::from(config.max_per_second)),
        }
    }

    async fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        let number = phone_for(&self.name, Channel::Sms, message)?;
        match self.client.submit(number.e164(), &message.text).await {
            Ok(submitted) => Ok(HandOff {
                at: now,
                message_id: Some(submitted.message_id),
                status: DeliveryStatus::Submitted,
            }),
            Err(SubmitError::Refused(status)) => {
                let verdict = self.causes.judge(&RawOutcome::SmppSubmit(status));
                let failure = HandOffFailure::new(
                    verdict.cause.unwrap_or(Cause::Unknown),
                    verdict.retry,
                    format!("submit_sm_resp command_status {status:#04x}"),
                );
                // Queue full or throttled, still, after the client's own back-off and retries:
                // the SMSC answers (so it is up) and refuses this number; the bind's pacing has
                // already slowed down for it. Counting it against the provider would let a few
                // such numbers open the circuit for every code.
                if status == QUEUE_FULL || status == THROTTLED {
                    Err(failure.for_destination())
                } else {
                    Err(failure)
                }
            }
            Err(SubmitError::Invalid(reason)) => Err(HandOffFailure::new(
                Cause::InvalidNumber,
                Retry::OtherRoute,
                format!("cannot build submit_sm: {reason}"),
            )),
            Err(error) => Err(HandOffFailure::unreachable(error.to_string())),
        }
    }
}

/// A provider the configuration names: each kind behind one enum, so that one worker drives routes
/// of every kind.
#[derive(Debug, Clone)]
pub enum Provider {
    DevInbox(DevInbox),
    Smpp(SmppCourier),
    HttpSms(HttpSmsCourier),
    Smtp(SmtpCourier),
    Whatsapp(WhatsappCourier),
    Voice(VoiceCourier),
}

impl Courier for Provider {
    fn name(&self) -> &str {
        match self {
            Self::DevInbox(inbox) => inbox.name(),
            Self::Smpp(smpp) => smpp.name(),
            Self::HttpSms(gateway) => gateway.name(),
            Self::Smtp(relay) => relay.name(),
            Self::Whatsapp(whatsapp) => whatsapp.name(),
            Self::Voice(voice) => voice.name(),
        }
    }

    fn capacity(&self) -> gerbang_core::Capacity {
        match self {
            Self::DevInbox(inbox) => inbox.capacity(),
            Self::Smpp(smpp) => smpp.capacity(),
            Self::HttpSms(gateway) => gateway.capacity(),
            Self::Smtp(relay) => relay.capacity(),
            Self::Whatsapp(whatsapp) => whatsapp.capacity(),
            Self::Voice(voice) => voice.capacity(),
        }
    }

    async fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        match self {
            Self::DevInbox(inbox) => inbox.hand_off(message, now).await,
            Self::Smpp(smpp) => smpp.hand_off(message, now).await,
            Self::HttpSms(gateway) => gateway.hand_off(message, now).await,
            Self::Smtp(relay) => relay.hand_off(message, now).await,
            Self::Whatsapp(whatsapp) => whatsapp.hand_off(message, now).await,
            Self::Voice(voice) => voice.hand_off(message, now).await,
        }
    }
}

/// Applies the receipts of one SMPP bind to the delivery trail until the bind's events end. A
/// receipt can overtake the commit of its own hand-off (the SMSC answers the submit and sends the
/// receipt at once), so one that matches nothing is tried again a few times before it is logged as
/// a receipt for a message we never sent.
pub async fn apply_receipts<S: VerificationStore + Clone + Send + Sync + 'static>(
    store: S,
    provider: String,
    mut events: mpsc::Receiver<SmppEvent>,
    clock: Arc<dyn Clock>,
    causes: Arc<CauseMap>,
    metrics: Arc<Metrics>,
) {
    while let Some(event) = events.recv().await {
        let receipt = match event {
            SmppEvent::Bound => {
                tracing::info!(%provider, "SMPP bound");
                continue;
            }
            SmppEvent::Unbound { reason } => {
                tracing::warn!(%provider, %reason, "SMPP bind down");
                continue;
            }
            SmppEvent::Receipt(receipt) => receipt,
        };
        let verdict = causes.judge(&RawOutcome::SmppReceipt(&receipt));
        let update = ReceiptUpdate {
            provider: provider.clone(),
            message_ids: receipt_id_candidates(&receipt.message_id),
            status: verdict.status,
            cause: verdict.cause,
            detail: receipt.to_string(),
            at: clock.now(),
        };
        let store = store.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            for wait in [0, 50, 200, 500, 1000, 3000] {
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                match store.record_receipt(update.clone()).await {
                    Ok(0) => continue,
                    Ok(_) => {
                        metrics.receipt(&update.provider, update.status.as_str(), true);
                        return;
                    }
                    Err(error) => {
                        tracing::error!(%error, receipt = %update.detail, "could not record a delivery receipt");
                        return;
                    }
                }
            }
            metrics.receipt(&update.provider, update.status.as_str(), false);
            tracing::warn!(provider = %update.provider, receipt = %update.detail, "a delivery receipt for a message we do not know");
        });
    }
}
