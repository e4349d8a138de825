//! Handing queued messages to a provider: the [`Courier`] contract, the development inbox courier
//! and the worker loop around one testable step, [`DeliveryWorker::deliver_next`].
//!
//! A message whose code died while it waited is dropped, not sent. A hand-off starts the code's
//! lifetime on its verification. The real providers (SMPP, SMTP, WhatsApp, voice) arrive with the
//! delivery issue behind the same contract.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use gerbang_domain::Clock;
use gerbang_domain::delivery::{Cause, DeliveryStatus, Retry};
use gerbang_store::{ClaimedMessage, MessageOutcome, OutboxMessage, Store, StoreError};
use tokio::sync::Notify;

/// What a provider said when it took a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    pub at: DateTime<Utc>,
    /// The provider's id for the message (an SMSC's `message_id`), which its receipts will name.
    pub message_id: Option<String>,
    /// `submitted`, or `delivered` when the provider delivers on the spot.
    pub status: DeliveryStatus,
}

/// Why a provider did not take a message, judged by the [`CauseMap`](gerbang_domain::delivery::CauseMap)
/// from its raw answer (an SMPP `command_status`, an HTTP status and error code, an SMTP reply), or
/// by the courier when nothing answered (a timeout, a refused connection: `ProviderError`,
/// `Retry::SameRoute`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOffFailure {
    pub cause: Cause,
    /// Whether trying again can help: on this provider later, on another provider, or not at all.
    pub retry: Retry,
    /// The provider's raw words for staff (`command_status 0x58`, `HTTP 400 code 131026`, `550 5.1.1
    /// ...`). Never the message text, never the code.
    pub detail: String,
}

impl HandOffFailure {
    pub fn new(cause: Cause, retry: Retry, detail: impl Into<String>) -> Self {
        Self {
            cause,
            retry,
            detail: detail.into(),
        }
    }

    /// Nothing answered, or the answer made no sense: worth another try, here or elsewhere.
    pub fn unreachable(detail: impl Into<String>) -> Self {
        Self::new(Cause::ProviderError, Retry::SameRoute, detail)
    }

    /// Our configuration cannot carry this message (wrong channel, no content): another route may.
    pub fn misconfigured(detail: impl Into<String>) -> Self {
        Self::new(Cause::ProviderMisconfigured, Retry::OtherRoute, detail)
    }
}

impl std::fmt::Display for HandOffFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.cause.as_str())
    }
}

/// A provider of one or more channels.
pub trait Courier: Send + Sync + 'static {
    /// Hands one message over. The caller (the delivery worker) records every failure in the
    /// delivery trail and decides, from its `retry`, whether to fail over or retry later.
    fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<HandOff, HandOffFailure>> + Send;
}

/// The development inbox: "sends" by keeping the message, which the store lists and the dev page
/// shows. Nothing leaves the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevInbox;

impl Courier for DevInbox {
    async fn hand_off(
        &self,
        _message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        Ok(HandOff {
            at: now,
            message_id: None,
            status: DeliveryStatus::Delivered,
        })
    }
}

/// Moves messages from the outbox to a courier.
#[derive(Debug)]
pub struct DeliveryWorker<S, C> {
    store: S,
    courier: C,
    clock: Arc<dyn Clock>,
    /// Messages claimed per step.
    pub batch: u32,
    /// How long a claim lasts before another worker may take the message over.
    pub lease: chrono::Duration,
    /// Hand-offs in flight at once (an SMPP bind pipelines them through its window).
    pub concurrency: usize,
}

impl<S: Store, C: Courier> DeliveryWorker<S, C> {
    pub fn new(store: S, courier: C, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            courier,
            clock,
            batch: 256,
            lease: chrono::Duration::seconds(30),
            concurrency: 32,
        }
    }

    /// One step: claims a batch, drops what expired, hands off the rest, records the outcomes.
    /// Returns how many messages it finished.
    pub async fn deliver_next(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_messages(self.batch, now, self.lease)
            .await?;
        let attempts = futures::stream::iter(claimed).map(|message| async move {
            let now = self.clock.now();
            if now >= message.message.expires_at {
                let dropped = MessageOutcome::Dropped {
                    reason: "the code expired while the message was queued".into(),
                    at: now,
                };
                return Some((message, dropped));
            }
            match self.courier.hand_off(&message.message, now).await {
                Ok(handoff) => {
                    let handed_off = MessageOutcome::HandedOff {
                        provider: "dev_inbox".into(),
                        at: handoff.at,
                        message_id: handoff.message_id,
                        status: handoff.status,
                    };
                    Some((message, handed_off))
                }
                Err(reason) => {
                    tracing::warn!(outbox_id = message.id, %reason, "hand-off failed; the message stays queued");
                    None
                }
            }
        });
        let outcomes: Vec<(ClaimedMessage, MessageOutcome)> = attempts
            .buffer_unordered(self.concurrency.max(1))
            .filter_map(std::future::ready)
            .collect()
            .await;
        let finished = outcomes.len();
        self.store.finish_messages(outcomes).await?;
        Ok(finished)
    }

    /// Runs until `shutdown` resolves: a step whenever messages are queued, else a short nap.
    pub async fn run(self, wake: Arc<Notify>, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        loop {
            let pause = match self.deliver_next().await {
                Ok(finished) if finished as u32 >= self.batch => Duration::ZERO,
                Ok(_) => Duration::from_millis(500),
                Err(error) => {
                    tracing::error!(%error, "delivery step failed");
                    Duration::from_secs(1)
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
