//! Providers behind the engine's [`Courier`] contract.

use chrono::{DateTime, Utc};
use gerbang_core::{Courier, DevInbox, HandOff};
use gerbang_domain::verification::{Channel, Destination};
use gerbang_store::OutboxMessage;

use crate::smpp::SmppClient;

/// SMS over one SMPP bind.
#[derive(Debug, Clone)]
pub struct SmppCourier {
    /// The provider's name in outcomes and logs, e.g. `smpp:telkomsel`.
    pub name: String,
    pub client: SmppClient,
}

impl Courier for SmppCourier {
    async fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, String> {
        let Destination::Phone(number) = &message.destination else {
            return Err(format!("{} sends SMS to phone numbers only", self.name));
        };
        if message.channel != Channel::Sms {
            return Err(format!(
                "{} carries SMS, not {}",
                self.name,
                message.channel.as_str()
            ));
        }
        let submitted = self
            .client
            .submit(number.e164(), &message.text)
            .await
            .map_err(|error| format!("{}: {error}", self.name))?;
        Ok(HandOff {
            provider: self.name.clone(),
            at: now,
            message_id: Some(submitted.message_id),
        })
    }
}

/// The courier the configuration chose for SMS.
#[derive(Debug, Clone)]
pub enum SmsCourier {
    DevInbox(DevInbox),
    Smpp(SmppCourier),
}

impl Courier for SmsCourier {
    async fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, String> {
        match self {
            Self::DevInbox(inbox) => inbox.hand_off(message, now).await,
            Self::Smpp(smpp) => smpp.hand_off(message, now).await,
        }
    }
}
