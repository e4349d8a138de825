//! Channel fallback (SPEC §5): when the last message failed, or no receipt came within a window
//! after its hand-off, the participant is offered the next channels of the policy's order. Their
//! earlier codes stay valid: switching channel never invalidates a code they may be typing.
//!
//! The decision reads the delivery attempts of the latest message only: an earlier message's
//! failure has already been answered by the send that followed it.

use chrono::{DateTime, Duration, Utc};

use super::{Cause, DeliveryStatus};
use crate::verification::{Channel, Destination};

/// The order channels are offered in, and how long a hand-off may go without a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackPolicy {
    pub order: Vec<Channel>,
    pub no_receipt_window: Duration,
}

impl Default for FallbackPolicy {
    fn default() -> Self {
        Self {
            order: vec![
                Channel::Sms,
                Channel::Whatsapp,
                Channel::Email,
                Channel::Voice,
            ],
            no_receipt_window: Duration::seconds(60),
        }
    }
}

/// Why another channel is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// The provider or the network said the message will not arrive.
    Failed(Cause),
    /// Handed off, but no receipt came within the window.
    NoReceipt,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed(_) => "delivery_failed",
            Self::NoReceipt => "no_receipt",
        }
    }
}

/// One channel the participant may switch to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackChannel {
    pub channel: Channel,
    /// The channel does not reach the current destination (email for a phone number): the app
    /// must ask for the address.
    pub needs_destination: bool,
}

/// What the participant is offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackOffer {
    pub reason: FallbackReason,
    /// Since when the offer stands (the failure, or the end of the no-receipt window).
    pub since: DateTime<Utc>,
    pub channels: Vec<FallbackChannel>,
}

/// The attempt of the latest message that the decision reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatestAttempt {
    pub status: DeliveryStatus,
    pub cause: Option<Cause>,
    pub attempted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FallbackPolicy {
    /// The offer for a message sent over `channel` to `destination` whose attempts (oldest first)
    /// are `attempts`, or none: nothing tried yet, delivered, or still within the window.
    pub fn offer(
        &self,
        channel: Channel,
        destination: &Destination,
        attempts: &[LatestAttempt],
        now: DateTime<Utc>,
    ) -> Option<FallbackOffer> {
        if attempts
            .iter()
            .any(|attempt| attempt.status == DeliveryStatus::Delivered)
        {
            return None;
        }
        let last = attempts.last()?;
        let (reason, since) = match last.status {
            DeliveryStatus::Failed | DeliveryStatus::Expired => (
                FallbackReason::Failed(last.cause.unwrap_or(Cause::Unknown)),
                last.updated_at,
            ),
            DeliveryStatus::Submitted | DeliveryStatus::Unknown => {
                let since = last.attempted_at + self.no_receipt_window;
                if now < since {
                    return None;
                }
                (FallbackReason::NoReceipt, since)
            }
            DeliveryStatus::Queued | DeliveryStatus::Delivered => return None,
        };
        let channels: Vec<FallbackChannel> = self
            .order
            .iter()
            .filter(|other| **other != channel)
            .map(|other| FallbackChannel {
                channel: *other,
                needs_destination: !other.reaches(destination),
            })
            .collect();
        (!channels.is_empty()).then_some(FallbackOffer {
            reason,
            since,
            channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MobileNumber;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn phone() -> Destination {
        Destination::Phone(MobileNumber::parse("081234567890").unwrap())
    }

    fn attempt(status: DeliveryStatus, cause: Option<Cause>, at_s: i64) -> LatestAttempt {
        LatestAttempt {
            status,
            cause,
            attempted_at: at(at_s),
            updated_at: at(at_s + 5),
        }
    }

    #[test]
    fn a_failed_message_offers_the_other_channels_in_order_at_once() {
        let offer = FallbackPolicy::default()
            .offer(
                Channel::Sms,
                &phone(),
                &[attempt(DeliveryStatus::Failed, Some(Cause::InboxFull), 0)],
                at(6),
            )
            .expect("an offer");
        assert_eq!(offer.reason, FallbackReason::Failed(Cause::InboxFull));
        assert_eq!(offer.since, at(5));
        let channels: Vec<(Channel, bool)> = offer
            .channels
            .iter()
            .map(|c| (c.channel, c.needs_destination))
            .collect();
        assert_eq!(
            channels,
            vec![
                (Channel::Whatsapp, false),
                (Channel::Email, true),
                (Channel::Voice, false)
            ]
        );
    }

    #[test]
    fn no_receipt_is_offered_only_once_the_window_is_over() {
        let policy = FallbackPolicy::default();
        let submitted = [attempt(DeliveryStatus::Submitted, None, 0)];
        assert_eq!(
            policy.offer(Channel::Sms, &phone(), &submitted, at(59)),
            None
        );
        let offer = policy
            .offer(Channel::Sms, &phone(), &submitted, at(60))
            .expect("an offer at 60 s");
        assert_eq!(offer.reason, FallbackReason::NoReceipt);
        assert_eq!(offer.since, at(60));
    }

    #[test]
    fn nothing_is_offered_before_a_try_or_once_delivered() {
        let policy = FallbackPolicy::default();
        assert_eq!(policy.offer(Channel::Sms, &phone(), &[], at(600)), None);
        let delivered = [
            attempt(DeliveryStatus::Failed, Some(Cause::ProviderError), 0),
            attempt(DeliveryStatus::Delivered, None, 1),
        ];
        assert_eq!(
            policy.offer(Channel::Sms, &phone(), &delivered, at(600)),
            None
        );
    }

    #[test]
    fn a_provider_refusal_followed_by_a_submit_waits_for_the_submit() {
        let attempts = [
            attempt(DeliveryStatus::Failed, Some(Cause::ProviderError), 0),
            attempt(DeliveryStatus::Submitted, None, 1),
        ];
        assert_eq!(
            FallbackPolicy::default().offer(Channel::Sms, &phone(), &attempts, at(30)),
            None
        );
    }
}
