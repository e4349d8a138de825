//! The delivery worker on the backend under test: failover along the routes, operator routing, the
//! circuit breaker, deferral with back-off, drops that say why, superseded resends and priorities.
//!
//! The providers here are scripted couriers: this file tests the worker's decisions. The real
//! providers are tested against real peers in `gerbang-delivery`'s interop tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use gerbang_core::{
    Courier, DeliveryWorker, HandOff, HandOffFailure, Origin, ResendRequest, RetryPolicy, Route,
    StartRequest, VerificationEngine,
};
use gerbang_domain::delivery::circuit::{CircuitPolicy, CircuitState};
use gerbang_domain::delivery::fallback::FallbackReason;
use gerbang_domain::delivery::{Cause, DeliveryStatus, NextStep, Retry};
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::verification::purpose::Purpose;
use gerbang_domain::verification::{Channel, Destination, VerificationId};
use gerbang_domain::{Clock, Email, Explain, ManualClock, MobileNumber, Operator};
use gerbang_store::{Changes, MessageOutcome, OutboxMessage, Priority, Store};
use gerbang_testkit::store_test;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// A provider that answers from a script (then with its default) and remembers what it took.
#[derive(Debug, Clone)]
struct Scripted {
    name: String,
    script: Arc<Mutex<VecDeque<Result<(), HandOffFailure>>>>,
    default: Result<(), HandOffFailure>,
    calls: Arc<Mutex<Vec<VerificationId>>>,
    taken: Arc<Mutex<Vec<VerificationId>>>,
}

impl Scripted {
    fn new(name: &str, default: Result<(), HandOffFailure>) -> Self {
        Self {
            name: name.into(),
            script: Arc::default(),
            default,
            calls: Arc::default(),
            taken: Arc::default(),
        }
    }

    fn ok(name: &str) -> Self {
        Self::new(name, Ok(()))
    }

    fn failing(name: &str, cause: Cause, retry: Retry) -> Self {
        Self::new(
            name,
            Err(HandOffFailure::new(cause, retry, "scripted refusal")),
        )
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    fn taken(&self) -> Vec<VerificationId> {
        self.taken.lock().unwrap().clone()
    }
}

impl Courier for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    async fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        self.calls.lock().unwrap().push(message.verification);
        let answer = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.default.clone());
        answer.map(|()| {
            self.taken.lock().unwrap().push(message.verification);
            HandOff {
                at: now,
                message_id: Some(format!("{}-{}", self.name, self.calls())),
                status: DeliveryStatus::Submitted,
            }
        })
    }
}

struct Harness<S> {
    engine: VerificationEngine<S>,
    clock: ManualClock,
    worker: DeliveryWorker<S, Scripted>,
}

fn harness<S: Store>(store: S, routes: Vec<Route<Scripted>>) -> Harness<S> {
    let clock = ManualClock::new(t0());
    let engine = VerificationEngine::new(
        store.clone(),
        Arc::new(clock.clone()),
        CodeKey::new([7; 32]),
        Default::default(),
    );
    let worker = DeliveryWorker::with_routes(store, routes, Arc::new(clock.clone()));
    Harness {
        engine,
        clock,
        worker,
    }
}

fn sms_route(courier: &Scripted) -> Route<Scripted> {
    Route::new(courier.clone(), vec![Channel::Sms])
}

/// A Telkomsel number (0812…) or, with `indosat`, an Indosat one (0815…).
fn phone(n: u32, indosat: bool) -> Destination {
    let prefix = if indosat { "0815" } else { "0812" };
    Destination::Phone(MobileNumber::parse(&format!("{prefix}{n:08}")).unwrap())
}

fn start_request(to: Destination) -> StartRequest {
    let channel = match to {
        Destination::Email(_) => Channel::Email,
        Destination::Phone(_) => Channel::Sms,
    };
    StartRequest::new("app", Purpose::Registration, channel, to)
}

impl<S: Store> Harness<S> {
    async fn start(&self, to: Destination) -> VerificationId {
        self.engine.start(start_request(to)).await.unwrap().id
    }

    async fn queued(&self) -> u64 {
        self.engine.store().queued_messages().await.unwrap()
    }

    async fn trail(&self, id: VerificationId) -> Vec<(String, DeliveryStatus, Option<Cause>)> {
        self.engine
            .store()
            .delivery_trail(id)
            .await
            .unwrap()
            .into_iter()
            .map(|attempt| (attempt.provider, attempt.status, attempt.cause))
            .collect()
    }
}

store_test!(
    a_refusal_fails_over_to_the_next_provider_and_both_tries_are_in_the_trail,
    a_message_no_provider_took_waits_with_growing_back_off_then_goes_out,
    a_refusal_that_no_route_can_fix_drops_the_message_with_its_cause,
    an_open_circuit_skips_the_provider_until_its_trial,
    numbers_go_to_the_routes_of_their_operator,
    a_channel_without_a_route_is_dropped_and_says_so,
    a_message_retried_until_its_code_expires_is_dropped_not_sent,
    a_resend_replaces_the_earlier_send_still_queued,
    codes_are_claimed_before_notifications,
    a_failed_message_offers_other_channels_and_switching_skips_the_countdown,
    no_receipt_within_the_window_offers_another_channel,
    a_queued_message_says_how_many_go_first_and_how_long_that_takes,
    a_message_given_up_says_it_was_not_sent_and_never_to_wait,
    a_code_expired_in_the_queue_has_a_line_in_the_trail,
    an_email_refusal_is_explained_for_email_and_suggests_other_channels,
    a_cancelled_verification_s_queued_message_is_never_sent,
    a_message_in_flight_when_its_verification_is_cancelled_does_not_come_back,
);

/// The SMSC refuses while the code waits; the participant cancels; when the SMSC takes messages
/// again the cancelled code is not among them (nor retried until its hard cap meanwhile).
async fn a_cancelled_verification_s_queued_message_is_never_sent<S: Store>(store: S) {
    let smsc = Scripted::failing("smsc", Cause::ProviderError, Retry::SameRoute);
    let h = harness(store, vec![sms_route(&smsc)]);
    let cancelled = h.start(phone(1, false)).await;
    let kept = h.start(phone(2, false)).await;
    assert_eq!(h.worker.deliver_next().await.unwrap(), 2);
    assert_eq!(h.queued().await, 2, "both wait for another round");

    h.engine.cancel("app", cancelled).await.unwrap();
    assert_eq!(
        h.queued().await,
        1,
        "the cancel took its message out of the queue"
    );

    // The SMSC is back: only the other code goes out.
    *smsc.script.lock().unwrap() = VecDeque::from([Ok(())]);
    h.clock.advance(Duration::seconds(70));
    assert_eq!(h.worker.deliver_next().await.unwrap(), 1);
    assert_eq!(smsc.taken(), vec![kept]);
    assert_eq!(h.queued().await, 0);
    assert_eq!(
        smsc.calls(),
        3,
        "the cancelled one was tried once, before its cancel"
    );
}

/// A cancel while the worker holds the message (its hand-off under way) drops it too: a refusal
/// that ends the hand-off afterwards does not put it back in the queue.
async fn a_message_in_flight_when_its_verification_is_cancelled_does_not_come_back<S: Store>(
    store: S,
) {
    let smsc = Scripted::ok("smsc");
    let h = harness(store.clone(), vec![sms_route(&smsc)]);
    let id = h.start(phone(1, false)).await;
    let claimed = store
        .claim_messages(10, h.clock.now(), Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    h.engine.cancel("app", id).await.unwrap();
    let retry_at = h.clock.now() + Duration::seconds(5);
    let outcome = MessageOutcome::Deferred {
        retry_at,
        failures: Vec::new(),
    };
    store
        .finish_messages(vec![(claimed[0].clone(), outcome)])
        .await
        .unwrap();
    assert_eq!(h.queued().await, 0);
    h.clock.advance(Duration::seconds(70));
    assert_eq!(h.worker.deliver_next().await.unwrap(), 0);
    assert!(smsc.taken().is_empty());
}

async fn a_refusal_fails_over_to_the_next_provider_and_both_tries_are_in_the_trail<S: Store>(
    store: S,
) {
    let a = Scripted::failing("a", Cause::ProviderError, Retry::SameRoute);
    let b = Scripted::ok("b");
    let h = harness(store, vec![sms_route(&a), sms_route(&b)]);
    let id = h.start(phone(1, false)).await;
    assert_eq!(h.worker.deliver_next().await.unwrap(), 1);
    assert_eq!((a.calls(), b.taken()), (1, vec![id]));
    assert_eq!(h.queued().await, 0);
    assert_eq!(
        h.trail(id).await,
        vec![
            (
                "a".into(),
                DeliveryStatus::Failed,
                Some(Cause::ProviderError)
            ),
            ("b".into(), DeliveryStatus::Submitted, None),
        ]
    );
    // The hand-off by b started the code's lifetime.
    let view = h.engine.status("app", id).await.unwrap();
    assert_eq!(view.sends, 1);
}

async fn a_message_no_provider_took_waits_with_growing_back_off_then_goes_out<S: Store>(store: S) {
    let a = Scripted::failing("a", Cause::ProviderThrottled, Retry::SameRoute);
    a.script.lock().unwrap().extend([
        Err(HandOffFailure::new(
            Cause::ProviderThrottled,
            Retry::SameRoute,
            "0x58",
        )),
        Err(HandOffFailure::new(
            Cause::ProviderThrottled,
            Retry::SameRoute,
            "0x58",
        )),
        Ok(()),
    ]);
    let mut h = harness(store, vec![sms_route(&a)]);
    h.worker.retry = RetryPolicy {
        first: Duration::seconds(10),
        max: Duration::seconds(15),
    };
    let id = h.start(phone(2, false)).await;
    h.worker.deliver_next().await.unwrap();
    assert_eq!(h.queued().await, 1, "a deferred message stays queued");
    // The first wait is drawn from [5 s, 10 s]: nothing before 5 s, certainly something at 10 s.
    h.clock.advance(Duration::milliseconds(4_999));
    assert_eq!(h.worker.deliver_next().await.unwrap(), 0);
    h.clock.advance(Duration::milliseconds(5_001));
    assert_eq!(h.worker.deliver_next().await.unwrap(), 1);
    assert_eq!(a.calls(), 2);
    // The second wait doubles to 20 s, capped at 15 s: drawn from [7.5 s, 15 s].
    h.clock.advance(Duration::milliseconds(7_499));
    assert_eq!(h.worker.deliver_next().await.unwrap(), 0);
    h.clock.advance(Duration::milliseconds(7_501));
    assert_eq!(h.worker.deliver_next().await.unwrap(), 1);
    assert_eq!(a.taken(), vec![id]);
    assert_eq!(h.queued().await, 0);
    let trail = h.trail(id).await;
    assert_eq!(trail.len(), 3);
    assert!(
        trail[..2]
            .iter()
            .all(|(_, status, cause)| *status == DeliveryStatus::Failed
                && *cause == Some(Cause::ProviderThrottled))
    );
    assert_eq!(trail[2].1, DeliveryStatus::Submitted);
}

async fn a_refusal_that_no_route_can_fix_drops_the_message_with_its_cause<S: Store>(store: S) {
    let a = Scripted::failing("a", Cause::NotOnWhatsapp, Retry::No);
    let b = Scripted::ok("b");
    let h = harness(store, vec![sms_route(&a), sms_route(&b)]);
    let id = h.start(phone(3, false)).await;
    h.worker.deliver_next().await.unwrap();
    assert_eq!(
        b.calls(),
        0,
        "no failover when the destination cannot be reached"
    );
    assert_eq!(h.queued().await, 0);
    assert_eq!(
        h.trail(id).await,
        vec![(
            "a".into(),
            DeliveryStatus::Failed,
            Some(Cause::NotOnWhatsapp)
        )]
    );
    // Every provider refusing for its own reasons (other_route) drops it as well.
    let c = Scripted::failing("c", Cause::ProviderMisconfigured, Retry::OtherRoute);
    let h = harness(h.engine.store().clone(), vec![sms_route(&c)]);
    let id = h.start(phone(4, false)).await;
    h.worker.deliver_next().await.unwrap();
    assert_eq!(h.queued().await, 0);
    assert_eq!(h.trail(id).await.len(), 1);
}

async fn an_open_circuit_skips_the_provider_until_its_trial<S: Store>(store: S) {
    let a = Scripted::failing("a", Cause::ProviderError, Retry::SameRoute);
    let b = Scripted::ok("b");
    let policy = CircuitPolicy {
        failures_to_open: 3,
        open_for: Duration::seconds(30),
        max_open: Duration::minutes(5),
    };
    let mut h = harness(
        store,
        vec![sms_route(&a).with_circuit(policy), sms_route(&b)],
    );
    h.worker.concurrency = 1;
    for n in 0..3 {
        h.start(phone(10 + n, false)).await;
    }
    h.worker.deliver_next().await.unwrap();
    assert_eq!((a.calls(), b.taken().len()), (3, 3));
    assert!(matches!(
        h.worker.routes()[0].circuit(),
        CircuitState::Open { .. }
    ));
    // Open: a is not even asked.
    h.start(phone(20, false)).await;
    h.worker.deliver_next().await.unwrap();
    assert_eq!((a.calls(), b.taken().len()), (3, 4));
    // After 30 s one trial goes to a; it succeeds and closes the circuit.
    a.script.lock().unwrap().push_back(Ok(()));
    h.clock.advance(Duration::seconds(30));
    h.start(phone(21, false)).await;
    h.worker.deliver_next().await.unwrap();
    assert_eq!((a.calls(), a.taken().len()), (4, 1));
    assert_eq!(
        h.worker.routes()[0].circuit(),
        CircuitState::Closed { failures: 0 }
    );
}

async fn numbers_go_to_the_routes_of_their_operator<S: Store>(store: S) {
    let telkomsel = Scripted::ok("smpp:telkomsel");
    let aggregator = Scripted::ok("smpp:aggregator");
    let h = harness(
        store,
        vec![
            sms_route(&telkomsel).for_operators(vec![Operator::Telkomsel]),
            sms_route(&aggregator),
        ],
    );
    let to_telkomsel = h.start(phone(30, false)).await;
    let to_indosat = h.start(phone(31, true)).await;
    h.worker.deliver_next().await.unwrap();
    assert_eq!(telkomsel.taken(), vec![to_telkomsel]);
    assert_eq!(aggregator.taken(), vec![to_indosat]);
}

async fn a_channel_without_a_route_is_dropped_and_says_so<S: Store>(store: S) {
    let sms = Scripted::ok("sms");
    let h = harness(store, vec![sms_route(&sms)]);
    let id = h
        .start(Destination::Email(
            Email::parse("peserta@example.com").unwrap(),
        ))
        .await;
    h.worker.deliver_next().await.unwrap();
    assert_eq!(sms.calls(), 0);
    assert_eq!(h.queued().await, 0);
    assert_eq!(
        h.trail(id).await,
        vec![(
            "none".into(),
            DeliveryStatus::Failed,
            Some(Cause::ProviderMisconfigured)
        )]
    );
}

async fn a_message_retried_until_its_code_expires_is_dropped_not_sent<S: Store>(store: S) {
    let a = Scripted::failing("a", Cause::ProviderError, Retry::SameRoute);
    let mut h = harness(store, vec![sms_route(&a)]);
    h.worker.retry = RetryPolicy {
        first: Duration::minutes(6),
        max: Duration::minutes(12),
    };
    let id = h.start(phone(40, false)).await;
    h.worker.deliver_next().await.unwrap();
    assert_eq!(h.queued().await, 1);
    h.clock.advance(Duration::minutes(6));
    h.worker.deliver_next().await.unwrap();
    // The second wait (6–12 min) would end past the 10-minute cap: dropped now, not later.
    assert_eq!(h.queued().await, 0);
    assert_eq!(a.taken(), Vec::<VerificationId>::new());
    // Both refusals, then the line saying it was given up.
    assert_eq!(
        h.trail(id).await,
        vec![
            (
                "a".into(),
                DeliveryStatus::Failed,
                Some(Cause::ProviderError)
            ),
            (
                "a".into(),
                DeliveryStatus::Failed,
                Some(Cause::ProviderError)
            ),
            (
                "gerbang".into(),
                DeliveryStatus::Failed,
                Some(Cause::NotSent)
            ),
        ]
    );
}

async fn a_message_given_up_says_it_was_not_sent_and_never_to_wait<S: Store>(store: S) {
    let a = Scripted::failing("a", Cause::ProviderThrottled, Retry::SameRoute);
    let mut h = harness(store, vec![sms_route(&a)]);
    h.worker.retry = RetryPolicy {
        first: Duration::minutes(6),
        max: Duration::minutes(12),
    };
    let id = h.start(phone(41, false)).await;
    h.worker.deliver_next().await.unwrap();
    // Queued for another round: waiting is the right advice.
    let outlook = h.engine.outlook("app", id).await.unwrap();
    let steps: Vec<NextStep> = outlook
        .explanations
        .iter()
        .map(|e| e.as_ref().unwrap().next_step)
        .collect();
    assert_eq!(steps, vec![NextStep::Wait]);
    h.clock.advance(Duration::minutes(6));
    h.worker.deliver_next().await.unwrap();
    assert_eq!(h.queued().await, 0, "given up");
    for later in [Duration::zero(), Duration::minutes(10)] {
        h.clock.advance(later);
        let outlook = h.engine.outlook("app", id).await.unwrap();
        let last = outlook.attempts.last().unwrap();
        assert_eq!(
            (last.provider.as_str(), last.status, last.cause),
            ("gerbang", DeliveryStatus::Failed, Some(Cause::NotSent))
        );
        assert_eq!(
            last.detail.as_deref(),
            Some("no provider took it before its code expired")
        );
        let explained: Vec<_> = outlook
            .explanations
            .iter()
            .map(|e| e.clone().unwrap())
            .collect();
        assert_eq!(
            explained.iter().map(|e| e.next_step).collect::<Vec<_>>(),
            vec![NextStep::None, NextStep::None, NextStep::AskAgain]
        );
        for explanation in &explained {
            assert!(
                !explanation.id.contains("dikirim ulang") && !explanation.en.contains("sent again"),
                "{explanation:?}"
            );
        }
        let last = explained.last().unwrap();
        assert_eq!(
            last.en,
            "The code was not sent: no provider could send it before it expired. Ask for a new \
             code, or ask for the code by WhatsApp, email or voice call."
        );
    }
    // By now the verification itself has expired: still no "wait" (checked in the loop).
    let view = h.engine.status("app", id).await.unwrap();
    assert_eq!(view.status, gerbang_domain::verification::Status::Expired);
}

async fn a_code_expired_in_the_queue_has_a_line_in_the_trail<S: Store>(store: S) {
    let a = Scripted::ok("a");
    let h = harness(store, vec![sms_route(&a)]);
    let id = h.start(phone(42, false)).await;
    // No worker ran for longer than the code's hard cap (10 minutes).
    h.clock.advance(Duration::minutes(11));
    h.worker.deliver_next().await.unwrap();
    assert_eq!(a.calls(), 0);
    assert_eq!(
        h.trail(id).await,
        vec![(
            "gerbang".into(),
            DeliveryStatus::Failed,
            Some(Cause::NotSent)
        )]
    );
    let outlook = h.engine.outlook("app", id).await.unwrap();
    let explained = outlook.explanations[0].as_ref().unwrap();
    assert_eq!(explained.next_step, NextStep::AskAgain);
    assert!(
        explained.id.starts_with("Kode tidak terkirim"),
        "{explained:?}"
    );
}

async fn an_email_refusal_is_explained_for_email_and_suggests_other_channels<S: Store>(store: S) {
    // SMTP 552: the mailbox is full.
    let mail = Scripted::failing("mail", Cause::InboxFull, Retry::No);
    let h = harness(store, vec![Route::new(mail.clone(), vec![Channel::Email])]);
    let id = h
        .start(Destination::Email(
            Email::parse("peserta@example.com").unwrap(),
        ))
        .await;
    h.worker.deliver_next().await.unwrap();
    let outlook = h.engine.outlook("app", id).await.unwrap();
    let explained = outlook.explanations[0].as_ref().unwrap();
    assert_eq!(explained.next_step, NextStep::ClearInbox);
    assert_eq!(
        explained.en,
        "The mailbox is full. Free some space in your mailbox, then ask for a new code, or ask for \
         the code by SMS, WhatsApp or voice call."
    );
    assert!(!explained.id.contains("SMS di HP"), "{explained:?}");
}

async fn a_resend_replaces_the_earlier_send_still_queued<S: Store>(store: S) {
    let a = Scripted::ok("a");
    let h = harness(store, vec![sms_route(&a)]);
    let id = h.start(phone(50, false)).await;
    h.clock.advance(Duration::seconds(60));
    let resend = ResendRequest {
        client: "app".into(),
        id,
        channel: None,
        destination: None,
        origin: Origin::default(),
    };
    h.engine.resend(resend).await.unwrap();
    assert_eq!(h.queued().await, 1, "one message waits, not two");
    h.worker.deliver_next().await.unwrap();
    assert_eq!(a.taken(), vec![id], "sent once");
}

async fn codes_are_claimed_before_notifications<S: Store>(store: S) {
    let a = Scripted::ok("a");
    let mut h = harness(store, vec![sms_route(&a)]);
    h.worker.batch = 1;
    let first = h.start(phone(60, false)).await;
    let second = h.start(phone(61, false)).await;
    let claimed = h
        .engine
        .store()
        .claim_messages(2, t0(), Duration::seconds(1))
        .await
        .unwrap();
    let mut notice = claimed[0].message.clone();
    notice.priority = Priority::Notification;
    notice.send_index = 0;
    let mut code = claimed[1].message.clone();
    code.send_index = 0;
    // Queue a notification first, then a code (copies of the two messages above).
    for message in [notice, code] {
        h.engine
            .store()
            .transact(None, Vec::new(), move |_| {
                (
                    Changes {
                        messages: vec![message],
                        ..Changes::default()
                    },
                    (),
                )
            })
            .await
            .unwrap();
    }
    h.clock.advance(Duration::seconds(2));
    // The two originals (lease over) come first by id, then the code, then the notification.
    let mut order = Vec::new();
    for _ in 0..4 {
        h.worker.deliver_next().await.unwrap();
        order = a.taken();
    }
    assert_eq!(order, vec![first, second, second, first]);
}

async fn a_failed_message_offers_other_channels_and_switching_skips_the_countdown<S: Store>(
    store: S,
) {
    let sms = Scripted::failing("sms", Cause::InboxFull, Retry::No);
    let whatsapp = Scripted::ok("whatsapp");
    let h = harness(
        store,
        vec![
            sms_route(&sms),
            Route::new(whatsapp.clone(), vec![Channel::Whatsapp]),
        ],
    );
    let id = h.start(phone(70, false)).await;
    h.worker.deliver_next().await.unwrap();
    h.clock.advance(Duration::seconds(1));
    let outlook = h.engine.outlook("app", id).await.unwrap();
    let offer = outlook.fallback.expect("another channel is offered");
    assert_eq!(offer.reason, FallbackReason::Failed(Cause::InboxFull));
    let offered: Vec<(Channel, bool)> = offer
        .channels
        .iter()
        .map(|c| (c.channel, c.needs_destination))
        .collect();
    assert_eq!(
        offered,
        vec![
            (Channel::Whatsapp, false),
            (Channel::Email, true),
            (Channel::Voice, false)
        ]
    );
    let resend = |channel: Option<Channel>| ResendRequest {
        client: "app".into(),
        id,
        channel,
        destination: None,
        origin: Origin::default(),
    };
    // The same channel still waits for the countdown; the offered one goes at once.
    let error = h.engine.resend(resend(None)).await.unwrap_err();
    assert_eq!(error.code(), "resend_countdown");
    let switched = h
        .engine
        .resend(resend(Some(Channel::Whatsapp)))
        .await
        .unwrap();
    assert_eq!(switched.sends, 2);
    h.worker.deliver_next().await.unwrap();
    assert_eq!(whatsapp.taken(), vec![id]);
    // Delivered by WhatsApp as far as we know (submitted, within the window): nothing offered.
    assert_eq!(h.engine.outlook("app", id).await.unwrap().fallback, None);
}

async fn no_receipt_within_the_window_offers_another_channel<S: Store>(store: S) {
    let sms = Scripted::ok("sms");
    let h = harness(store, vec![sms_route(&sms)]);
    let id = h.start(phone(71, false)).await;
    h.worker.deliver_next().await.unwrap();
    h.clock.advance(Duration::seconds(59));
    let outlook = h.engine.outlook("app", id).await.unwrap();
    assert_eq!(outlook.fallback, None);
    assert_eq!(outlook.attempts[0].status, DeliveryStatus::Submitted);
    assert_eq!(outlook.explanations, vec![None]);
    h.clock.advance(Duration::seconds(1));
    let offer = h
        .engine
        .outlook("app", id)
        .await
        .unwrap()
        .fallback
        .expect("offered once the window is over");
    assert_eq!(offer.reason, FallbackReason::NoReceipt);
    assert_eq!(offer.since, t0() + Duration::seconds(60));
    // The attempt itself reads `unknown` from then on, as the docs say.
    let outlook = h.engine.outlook("app", id).await.unwrap();
    assert_eq!(outlook.attempts[0].status, DeliveryStatus::Unknown);
    assert_eq!(outlook.attempts[0].cause, Some(Cause::Unknown));
    let explained = outlook.explanations[0].as_ref().unwrap();
    assert_eq!(explained.next_step, NextStep::SwitchChannel);
    assert_eq!(
        explained.en,
        "The delivery status is not known. Ask for the code by WhatsApp, email or voice call."
    );
}

async fn a_queued_message_says_how_many_go_first_and_how_long_that_takes<S: Store>(store: S) {
    let sms = Scripted::ok("sms");
    let mut h = harness(store, vec![sms_route(&sms)]);
    h.worker.batch = 1;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(h.start(phone(80 + n, false)).await);
    }
    let queue = h.engine.outlook("app", ids[2]).await.unwrap().queue;
    let queue = queue.expect("still queued");
    assert_eq!(queue.ahead, 2);
    assert_eq!(queue.estimated_wait, None, "nothing went out yet: no rate");
    h.worker.deliver_next().await.unwrap();
    let queue = h
        .engine
        .outlook("app", ids[2])
        .await
        .unwrap()
        .queue
        .unwrap();
    assert_eq!(queue.ahead, 1);
    // One hand-off in the last minute: a minute per message, ours included.
    assert_eq!(queue.estimated_wait, Some(Duration::seconds(120)));
    assert_eq!(h.engine.outlook("app", ids[0]).await.unwrap().queue, None);
}
