//! A verification's code travels through the outbox, the delivery worker and a real SMPP bind to an
//! independent SMSC (Net::SMPP), and the code the SMSC received verifies; on the backend under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use gerbang_core::{CheckRequest, DeliveryWorker, StartRequest, VerificationEngine};
use gerbang_delivery::smpp::{SmppClient, SmppConfig};
use gerbang_delivery::{Provider, SmppCourier, apply_receipts};
use gerbang_domain::delivery::circuit::CircuitState;
use gerbang_domain::delivery::{Cause, DeliveryStatus};
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::verification::purpose::{ActionDetails, Purpose};
use gerbang_domain::verification::{Channel, Destination, Status};
use gerbang_domain::{Clock, ManualClock, MobileNumber, SystemClock};
use gerbang_store::Store;
use gerbang_testkit::store_test;
use support::Smsc;

store_test!(
    a_code_sent_over_smpp_verifies_and_refused_messages_are_explained,
    numbers_the_smsc_refuses_never_hold_up_the_codes_of_other_numbers,
);

fn start(number: &str) -> StartRequest {
    let to = Destination::Phone(MobileNumber::parse(number).unwrap());
    StartRequest::new("app", Purpose::Registration, Channel::Sms, to)
}

async fn a_code_sent_over_smpp_verifies_and_refused_messages_are_explained<S: Store>(store: S) {
    let smsc = Smsc::start(&[]).await;
    let mut config = SmppConfig::new(&smsc.address, "gerbang", "secret");
    config.source_addr = "JKN".into();
    config.response_timeout = Duration::from_secs(5);
    let (client, events) = SmppClient::start(config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = VerificationEngine::new(
        store.clone(),
        clock.clone(),
        CodeKey::new([9; 32]),
        Default::default(),
    );
    let courier = Provider::Smpp(SmppCourier {
        name: "smpp:test".into(),
        client,
        causes: Default::default(),
    });
    let worker = DeliveryWorker::new(store.clone(), courier, clock);

    let numbers = ["081234567890", "081234560001", "081234561234"];
    let mut started = Vec::new();
    for number in numbers {
        started.push(engine.start(start(number)).await.unwrap());
    }
    assert_eq!(worker.deliver_next().await.unwrap(), 3);
    assert_eq!(store.queued_messages().await.unwrap(), 0);

    for (number, view) in numbers.iter().zip(&started) {
        let to = format!("62{}", &number[1..]);
        let code = smsc.code_sent_to(&to);
        let checked = engine
            .check(CheckRequest {
                client: "app".into(),
                id: view.id,
                code,
                purpose: None,
                action: None,
                details: ActionDetails::default(),
            })
            .await
            .unwrap();
        assert_eq!(checked.status, Status::Verified, "{number}");
    }

    // The receipts come back over the same bind and land in each verification's delivery trail;
    // the inactive number's says why.
    tokio::spawn(apply_receipts(
        store.clone(),
        "smpp:test".into(),
        events,
        Arc::new(SystemClock),
        Default::default(),
        Default::default(),
    ));
    let expected = [
        (DeliveryStatus::Delivered, Some(Cause::Delivered)),
        (DeliveryStatus::Failed, Some(Cause::NumberInactive)),
        (DeliveryStatus::Delivered, Some(Cause::Delivered)),
    ];
    for (view, (status, cause)) in started.iter().zip(expected) {
        let mut trail = Vec::new();
        for _ in 0..200 {
            trail = store.delivery_trail(view.id).await.unwrap();
            if trail.len() == 1 && trail[0].status.is_final() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(trail.len(), 1, "one attempt: {trail:?}");
        let attempt = &trail[0];
        assert_eq!(
            (attempt.status, attempt.cause),
            (status, cause),
            "{attempt:?}"
        );
        assert_eq!(
            (attempt.channel.as_str(), attempt.provider.as_str()),
            ("sms", "smpp:test")
        );
        assert!(
            attempt.detail.as_deref().unwrap_or("").contains("stat:"),
            "{attempt:?}"
        );
    }

    // A submit refused with ESME_RINVDSTADR by the only provider (another route might take it,
    // but there is none) is dropped, and the trail says why.
    let refused = engine.start(start("081234560011")).await.unwrap();
    assert_eq!(worker.deliver_next().await.unwrap(), 1);
    assert_eq!(store.queued_messages().await.unwrap(), 0);
    assert_eq!(smsc.count("refused 6281234560011"), 1);
    let trail = store.delivery_trail(refused.id).await.unwrap();
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(
        (trail[0].status, trail[0].cause),
        (DeliveryStatus::Failed, Some(Cause::InvalidNumber))
    );
    assert!(
        trail[0].detail.as_deref().unwrap_or("").contains("0x0b"),
        "{trail:?}"
    );

    // Throttled (ESME_RTHROTTLED on every try of the bind): worth another try later, so it waits
    // in the queue with its refusal on record.
    let throttled = engine.start(start("081234560088")).await.unwrap();
    assert_eq!(worker.deliver_next().await.unwrap(), 1);
    assert_eq!(store.queued_messages().await.unwrap(), 1);
    let trail = store.delivery_trail(throttled.id).await.unwrap();
    assert_eq!(trail[0].cause, Some(Cause::ProviderThrottled), "{trail:?}");
}

/// Numbers the SMSC keeps refusing (queue full or throttled for that number) are mixed into normal
/// traffic, round after round: the refusals are answers about those numbers, so the provider's
/// circuit stays closed and every other code goes out on its first round, once.
async fn numbers_the_smsc_refuses_never_hold_up_the_codes_of_other_numbers<S: Store>(store: S) {
    let smsc = Smsc::start(&[]).await;
    let mut config = SmppConfig::new(&smsc.address, "gerbang", "secret");
    config.response_timeout = Duration::from_secs(5);
    config.throttle_backoff = Duration::from_millis(10);
    config.max_attempts = 3;
    let (client, _events) = SmppClient::start(config);
    let clock = ManualClock::new(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap());
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let engine = VerificationEngine::new(
        store.clone(),
        shared.clone(),
        CodeKey::new([9; 32]),
        Default::default(),
    );
    let courier = Provider::Smpp(SmppCourier {
        name: "smpp:test".into(),
        client,
        causes: Default::default(),
    });
    // The default circuit: five provider failures in a row open it for 30 s.
    let worker = DeliveryWorker::new(store.clone(), courier, shared);

    // Three numbers whose queue is full and three throttled, asked for first and then again
    // whenever the worker takes them back; twelve ordinary codes in every round.
    for n in 0..3 {
        for suffix in ["0014", "0088"] {
            engine
                .start(start(&format!("08123{n:03}{suffix}")))
                .await
                .unwrap();
        }
    }
    let mut normal = Vec::new();
    for round in 0..3 {
        for i in 0..12 {
            let number = format!("0812{round}{i:03}0050");
            normal.push((
                number.clone(),
                engine.start(start(&number)).await.unwrap().id,
            ));
        }
        worker.deliver_next().await.unwrap();
        assert_eq!(
            worker.routes()[0].circuit(),
            CircuitState::Closed { failures: 0 },
            "round {round}"
        );
        assert_eq!(
            store.queued_messages().await.unwrap(),
            6,
            "only the refused numbers wait, round {round}"
        );
        // Past every back-off: the refused ones come back with the next round's codes.
        clock.advance(chrono::Duration::seconds(70));
    }
    for (number, id) in &normal {
        assert_eq!(
            smsc.count(&format!("submit 62{} ", &number[1..])),
            1,
            "{number}"
        );
        let trail = store.delivery_trail(*id).await.unwrap();
        assert_eq!(trail.len(), 1, "handed off on its first try: {trail:?}");
        assert_eq!(trail[0].status, DeliveryStatus::Submitted, "{trail:?}");
    }
    assert!(smsc.count("refused") >= 6 * 3, "the refusals did happen");
}
