//! Admission under load and the daily budgets, on the backend under test.
//!
//! Admission: a route that carries one code a second and codes that live 60 s. A registration is
//! accepted while the queue holds under 18 s of codes (30 %), a login under 30 s, a transaction
//! under 42 s; then each is refused with `queue_full` and a time to try again, least urgent first,
//! and accepted again once the queue has drained.
//!
//! Budgets: the day's cap on a channel refuses codes with `budget_exhausted` until 00:00 WIB; a
//! provider that spent its budget is skipped for the next route, and once every provider that
//! carries a channel has spent its own, codes are refused; two instances sharing the store judge
//! the same totals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use gerbang_core::{
    Admission, Budgets, Capacity, Courier, DeliveryPace, DeliveryWorker, DevInbox, EngineError,
    EngineSettings, HandOff, HandOffFailure, Route, StartRequest, VerificationEngine,
};
use gerbang_domain::delivery::budget::BudgetPolicy;
use gerbang_domain::delivery::{Cause, DeliveryStatus};
use gerbang_domain::verification::admission::{AdmissionPolicy, Urgency};
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::verification::purpose::{ActionDetails, Purpose, SensitiveAction};
use gerbang_domain::verification::{Channel, Destination, OtpPolicy};
use gerbang_domain::{Clock, Email, Explain, ManualClock, MobileNumber};
use gerbang_store::{OutboxMessage, Store};
use gerbang_testkit::store_test;

/// 2027-01-15 10:00 WIB.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2027-01-15T03:00:00Z")
        .unwrap()
        .to_utc()
}

/// Each number in its own block, so the per-block rate limit never interferes.
fn phone(n: u32) -> Destination {
    Destination::Phone(MobileNumber::parse(&format!("0812{n:04}5000")).unwrap())
}

fn email(n: u32) -> Destination {
    Destination::Email(Email::parse(&format!("peserta{n}@example.id")).unwrap())
}

/// A provider that takes every message, with a declared throughput.
struct Provider {
    name: &'static str,
    capacity: Capacity,
}

impl Courier for Provider {
    fn name(&self) -> &str {
        self.name
    }

    fn capacity(&self) -> Capacity {
        self.capacity
    }

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

fn settings() -> EngineSettings {
    EngineSettings {
        policy: OtpPolicy {
            lifetime: Duration::seconds(30),
            hard_cap: Duration::seconds(60),
            ..OtpPolicy::default()
        },
        ..EngineSettings::default()
    }
}

fn request(purpose: Purpose, channel: Channel, to: Destination) -> StartRequest {
    let mut request = StartRequest::new("app", purpose, channel, to);
    if purpose == Purpose::StepUp {
        request.action = Some(SensitiveAction::BankAccountChange);
        request.details = ActionDetails::parse(BTreeMap::from([(
            "bank_account".into(),
            "1234567890".into(),
        )]))
        .unwrap();
    }
    request
}

/// Starts codes of `purpose` to fresh numbers until one is refused; returns how many were
/// accepted and the refusal.
async fn fill<S: Store>(
    engine: &VerificationEngine<S>,
    purpose: Purpose,
    next: &mut u32,
) -> (u32, EngineError) {
    let mut accepted = 0;
    loop {
        *next += 1;
        match engine
            .start(request(purpose, Channel::Sms, phone(*next)))
            .await
        {
            Ok(_) => accepted += 1,
            Err(error) => return (accepted, error),
        }
        assert!(accepted < 1_000, "{purpose:?} was never refused");
    }
}

/// An instance: an engine admitting codes by `pace`, with its own [`Admission`] (60 s codes).
fn admitting<S: Store>(
    store: &S,
    clock: &ManualClock,
    pace: &Arc<DeliveryPace>,
) -> (VerificationEngine<S>, Arc<Admission>) {
    let admission = Arc::new(Admission::new(
        AdmissionPolicy::default(),
        Duration::seconds(60),
    ));
    let engine = VerificationEngine::new(
        store.clone(),
        Arc::new(clock.clone()),
        CodeKey::new([7; 32]),
        settings(),
    )
    .with_pace(pace.clone())
    .with_admission(admission.clone());
    (engine, admission)
}

/// The SMS queue as the health page would show it.
fn sms_queue(
    admission: &Admission,
    pace: &DeliveryPace,
    clock: &ManualClock,
) -> gerbang_core::ChannelAdmission {
    admission
        .state(pace, clock.now())
        .into_iter()
        .find(|queue| queue.channel == Channel::Sms)
        .unwrap()
}

async fn codes_are_refused_least_urgent_first_once_the_queue_would_hold_them_too_long<S: Store>(
    store: S,
) {
    let clock = ManualClock::new(t0());
    // The route carries one code a second; the worker that would drain it is not running.
    let pace = Arc::new(DeliveryPace::default());
    let one_a_second = Provider {
        name: "smpp:slow",
        capacity: Capacity {
            window: Some(1),
            per_second: Some(1.0),
        },
    };
    pace.register(&[Route::new(one_a_second, vec![Channel::Sms])], 1);
    let (engine, admission) = admitting(&store, &clock, &pace);

    let mut next = 0;
    // 18 registrations fit in 18 s of queue (the 18th waits 18 s); the 19th would wait 19.
    let (registrations, refused) = fill(&engine, Purpose::Registration, &mut next).await;
    assert_eq!(registrations, 18);
    assert_eq!(refused.code(), "queue_full");
    assert_eq!(refused.retry_at(), Some(t0() + Duration::seconds(1)));
    assert!(
        refused.message_en().contains("about a minute"),
        "{}",
        refused.message_en()
    );
    assert!(refused.message_id().contains("sekitar 1 menit"));
    let EngineError::QueueFull { wait, .. } = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(wait, Duration::seconds(19));
    // Logins and transactions are still accepted: 30 s of queue for logins...
    let (logins, refused) = fill(&engine, Purpose::LoginNewDevice, &mut next).await;
    assert_eq!((registrations + logins, refused.code()), (30, "queue_full"));
    // ... 42 s for a transaction someone is confirming now.
    let (transactions, refused) = fill(&engine, Purpose::StepUp, &mut next).await;
    assert_eq!(
        (registrations + logins + transactions, refused.code()),
        (42, "queue_full")
    );
    // Nothing refused was queued: the store holds exactly the 42 accepted.
    assert_eq!(
        store.waiting_codes().await.unwrap(),
        vec![("sms".into(), 42)]
    );
    assert_eq!(store.queued_messages().await.unwrap(), 42);
    // Another channel has its own queue (here: no route measured, so nothing is refused).
    engine
        .start(request(Purpose::Registration, Channel::Email, email(1)))
        .await
        .unwrap();

    // What the health page shows; a read of the store agrees with what was counted.
    admission.sample(&store, &pace, clock.now()).await.unwrap();
    let sms = sms_queue(&admission, &pace, &clock);
    assert_eq!(sms.waiting, 42);
    assert_eq!(sms.per_second, Some(1.0));
    assert_eq!(sms.refusing, Urgency::ALL.to_vec());

    // A second instance sharing the store reads the same 42 waiting codes, and each instance's
    // worker drains one a second: together two. The second reckons 43 / 2 = 21.5 s of queue, so
    // it refuses a registration (18 s) and accepts a sign-in (30 s); the first, once it has read
    // the second's report, reckons the same.
    let (other_engine, other) = admitting(&store, &clock, &pace);
    other.sample(&store, &pace, clock.now()).await.unwrap();
    next += 1;
    let refused = other_engine
        .start(request(Purpose::Registration, Channel::Sms, phone(next)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "queue_full");
    next += 1;
    other_engine
        .start(request(Purpose::LoginNewDevice, Channel::Sms, phone(next)))
        .await
        .unwrap();
    admission.sample(&store, &pace, clock.now()).await.unwrap();
    let sms = sms_queue(&admission, &pace, &clock);
    assert_eq!((sms.waiting, sms.per_second), (43, Some(2.0)));
    assert_eq!(sms.refusing, vec![Urgency::Registration]);
    // A report older than FRESH no longer counts: alone again, the first refuses sign-ins too.
    clock.advance(Duration::seconds(6));
    admission.sample(&store, &pace, clock.now()).await.unwrap();
    next += 1;
    let refused = engine
        .start(request(Purpose::LoginNewDevice, Channel::Sms, phone(next)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "queue_full");

    // The queue drains (another worker, its own routes): everything is accepted again.
    let drain = DeliveryWorker::new(store.clone(), DevInbox, Arc::new(clock.clone()));
    while drain.deliver_next().await.unwrap() > 0 {}
    admission.sample(&store, &pace, clock.now()).await.unwrap();
    assert_eq!(store.waiting_codes().await.unwrap(), vec![]);
    next += 1;
    engine
        .start(request(Purpose::Registration, Channel::Sms, phone(next)))
        .await
        .unwrap();
}

/// One instance: an engine and a worker sharing `budgets`, with a first provider and a fallback.
fn instance<S: Store>(
    store: &S,
    clock: &ManualClock,
    budgets: &Arc<Budgets>,
) -> (VerificationEngine<S>, DeliveryWorker<S, Provider>) {
    let pace = Arc::new(DeliveryPace::default());
    let routes = vec![
        Route::new(
            Provider {
                name: "smpp:first",
                capacity: Capacity::default(),
            },
            vec![Channel::Sms],
        ),
        Route::new(
            Provider {
                name: "http:fallback",
                capacity: Capacity::default(),
            },
            vec![Channel::Sms],
        ),
    ];
    let worker = DeliveryWorker::with_routes(store.clone(), routes, Arc::new(clock.clone()))
        .with_pace(pace.clone())
        .with_budgets(budgets.clone());
    let engine = VerificationEngine::new(
        store.clone(),
        Arc::new(clock.clone()),
        CodeKey::new([7; 32]),
        settings(),
    )
    .with_pace(pace)
    .with_budgets(budgets.clone());
    (engine, worker)
}

async fn providers_of<S: Store>(store: &S) -> BTreeMap<String, u64> {
    let (day, _) = gerbang_domain::delivery::budget::budget_day(t0());
    store
        .daily_sends(day)
        .await
        .unwrap()
        .into_iter()
        .map(|sends| (format!("{}/{}", sends.channel, sends.provider), sends.sent))
        .collect()
}

async fn a_channel_cap_refuses_until_the_day_turns_and_a_spent_provider_is_skipped<S: Store>(
    store: S,
) {
    let clock = ManualClock::new(t0());
    let policy = BudgetPolicy {
        channels: BTreeMap::from([(Channel::Sms, 5)]),
        providers: BTreeMap::from([("smpp:first".to_owned(), 3)]),
        ..BudgetPolicy::default()
    };
    let budgets = Arc::new(Budgets::new(policy.clone()));
    let (engine, worker) = instance(&store, &clock, &budgets);
    for n in 1..=5 {
        engine
            .start(request(Purpose::Registration, Channel::Sms, phone(n)))
            .await
            .unwrap();
    }
    let refused = engine
        .start(request(Purpose::StepUp, Channel::Sms, phone(6)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "budget_exhausted");
    // Until 00:00 WIB (17:00 UTC), said in both languages with another way to get the code.
    let midnight = DateTime::parse_from_rfc3339("2027-01-15T17:00:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(refused.retry_at(), Some(midnight));
    assert!(
        refused.message_id().contains("00:00 WIB"),
        "{}",
        refused.message_id()
    );
    assert!(refused.message_en().contains("another way"));
    // Email has no cap.
    engine
        .start(request(Purpose::Registration, Channel::Email, email(1)))
        .await
        .unwrap();

    // The first provider takes 3 (its budget), the fallback the other 2; email goes nowhere
    // (no route carries it here) and is dropped as before.
    while worker.deliver_next().await.unwrap() > 0 {}
    budgets.tick(&store, clock.now()).await.unwrap();
    let counts = providers_of(&store).await;
    // Each attempt names its operator (0812: Telkomsel); the email went nowhere and names none.
    assert_eq!(
        store
            .operator_counts(t0() - Duration::hours(1))
            .await
            .unwrap(),
        vec![("Telkomsel".to_owned(), "delivered".to_owned(), 5)]
    );
    assert_eq!(counts.get("sms/smpp:first"), Some(&3));
    assert_eq!(counts.get("sms/http:fallback"), Some(&2));
    assert_eq!(
        counts.get("sms/"),
        Some(&5),
        "codes accepted on SMS: {counts:?}"
    );
    let states = budgets.states(clock.now());
    let first = states.iter().find(|s| s.name == "smpp:first").unwrap();
    assert_eq!((first.spent, first.cap), (3, Some(3)));

    // A second instance sharing the store reads the same totals and refuses too.
    let other = Arc::new(Budgets::new(policy));
    let (other_engine, _) = instance(&store, &clock, &other);
    other.tick(&store, clock.now()).await.unwrap();
    let refused = other_engine
        .start(request(Purpose::Registration, Channel::Sms, phone(7)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "budget_exhausted");

    // The day turns: accepted again, by both.
    clock.advance(midnight - t0());
    engine
        .start(request(Purpose::Registration, Channel::Sms, phone(8)))
        .await
        .unwrap();
    other_engine
        .start(request(Purpose::Registration, Channel::Sms, phone(9)))
        .await
        .unwrap();
}

async fn once_every_provider_of_a_channel_has_spent_its_budget_codes_are_refused_and_queued_ones_dropped<
    S: Store,
>(
    store: S,
) {
    let clock = ManualClock::new(t0());
    let policy = BudgetPolicy {
        providers: BTreeMap::from([
            ("smpp:first".to_owned(), 1),
            ("http:fallback".to_owned(), 1),
        ]),
        ..BudgetPolicy::default()
    };
    let budgets = Arc::new(Budgets::new(policy));
    let (engine, worker) = instance(&store, &clock, &budgets);
    // Three accepted before any hand-off: the providers have spent nothing yet.
    let mut ids = Vec::new();
    for n in 1..=3 {
        let view = engine
            .start(request(Purpose::Registration, Channel::Sms, phone(n)))
            .await
            .unwrap();
        ids.push(view.id);
    }
    while worker.deliver_next().await.unwrap() > 0 {}
    // One each; the third had no provider left: dropped and explained, not left to expire.
    let dropped = engine.deliveries("app", ids[2]).await.unwrap();
    let last = dropped.last().unwrap();
    assert_eq!(last.cause, Some(Cause::NotSent), "{last:?}");
    assert!(
        last.detail
            .as_deref()
            .unwrap_or("")
            .contains("daily budget"),
        "{last:?}"
    );
    let refused = engine
        .start(request(Purpose::StepUp, Channel::Sms, phone(4)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "budget_exhausted");
}

store_test!(
    codes_are_refused_least_urgent_first_once_the_queue_would_hold_them_too_long,
    a_channel_cap_refuses_until_the_day_turns_and_a_spent_provider_is_skipped,
    once_every_provider_of_a_channel_has_spent_its_budget_codes_are_refused_and_queued_ones_dropped,
);
