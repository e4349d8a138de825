//! The SMS pumping brake on the backend under test: one number block is pumped with codes nobody
//! enters while normal blocks convert; the pumped block is braked within the window, the others
//! are not. Two engines sharing the store (two instances) add up their counts and both hold the
//! braked block. Staff lift a brake, and that is recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use gerbang_core::{
    CheckRequest, DeliveryWorker, DevInbox, EngineError, PumpingBrake, StartRequest,
    VerificationEngine,
};
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::verification::pumping::BrakePolicy;
use gerbang_domain::verification::purpose::{ActionDetails, Purpose};
use gerbang_domain::verification::{Channel, Destination, VerificationId};
use gerbang_domain::{Clock, Explain, ManualClock, MobileNumber};
use gerbang_store::Store;
use gerbang_store::audit::AuditFilter;
use gerbang_testkit::store_test;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// `0812` + `block` (4 digits) + `n` (4 digits): numbers of one block share their first 8 digits.
fn phone(block: u32, n: u32) -> Destination {
    Destination::Phone(MobileNumber::parse(&format!("0812{block:04}{n:04}")).unwrap())
}

fn policy() -> BrakePolicy {
    BrakePolicy {
        min_sends: 20,
        ..BrakePolicy::default()
    }
}

fn instance<S: Store>(
    store: &S,
    clock: &ManualClock,
) -> (VerificationEngine<S>, Arc<PumpingBrake>) {
    let brake = Arc::new(PumpingBrake::new(policy()));
    let engine = VerificationEngine::new(
        store.clone(),
        Arc::new(clock.clone()),
        CodeKey::new([7; 32]),
        Default::default(),
    )
    .with_brake(brake.clone());
    (engine, brake)
}

fn start(to: Destination) -> StartRequest {
    StartRequest::new("app", Purpose::Registration, Channel::Sms, to)
}

async fn start_ok<S: Store>(engine: &VerificationEngine<S>, to: Destination) -> VerificationId {
    engine.start(start(to)).await.unwrap().id
}

/// Delivers what is queued and enters every code of `ids`.
async fn enter_codes<S: Store>(
    engine: &VerificationEngine<S>,
    store: &S,
    clock: &ManualClock,
    ids: &[VerificationId],
) {
    let worker = DeliveryWorker::new(store.clone(), DevInbox, Arc::new(clock.clone()));
    while worker.deliver_next().await.unwrap() > 0 {}
    let inbox = store.inbox(10_000).await.unwrap();
    for id in ids {
        let text = &inbox
            .iter()
            .find(|m| m.message.verification == *id)
            .unwrap()
            .message
            .text;
        let code = text
            .split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .unwrap();
        engine
            .check(CheckRequest {
                client: "app".into(),
                id: *id,
                code: code.to_owned(),
                purpose: None,
                action: None,
                details: ActionDetails::default(),
            })
            .await
            .unwrap();
    }
}

fn block_of(block: u32) -> String {
    phone(block, 0).number_block().unwrap().to_owned()
}

store_test!(
    a_pumped_block_is_braked_within_the_window_and_converting_blocks_are_not,
    two_instances_add_up_their_counts_and_both_hold_the_brake,
    staff_lift_a_brake_and_the_lift_is_recorded,
    counts_older_than_a_day_are_pruned_once_an_hour,
);

async fn a_pumped_block_is_braked_within_the_window_and_converting_blocks_are_not<S: Store>(
    store: S,
) {
    let clock = ManualClock::new(t0());
    let (engine, brake) = instance(&store, &clock);
    // Over 20 minutes: 30 codes to block 1111 that nobody enters, 30 codes to block 2222 that
    // are all entered, and 10 unentered codes to a quiet block 3333.
    let mut converting = Vec::new();
    let mut pumped = 0;
    let mut braked_after = None;
    for n in 0..30 {
        match engine.start(start(phone(1111, n))).await {
            Ok(_) => pumped += 1,
            Err(EngineError::DestinationSuspended { .. }) => {
                braked_after.get_or_insert(pumped);
            }
            Err(other) => panic!("{other:?}"),
        }
        converting.push(start_ok(&engine, phone(2222, n)).await);
        if n < 10 {
            start_ok(&engine, phone(3333, n)).await;
        }
        clock.advance(Duration::seconds(40));
        assert!(brake.tick(&store, clock.now()).await.is_ok());
        enter_codes(&engine, &store, &clock, &converting).await;
        converting.clear();
    }
    // Braked by the tick after the 20th unentered code, 13 minutes in, and only that block.
    assert_eq!(braked_after, Some(20));
    assert!(brake.held(&phone(1111, 99), clock.now()).is_some());
    assert!(brake.held(&phone(2222, 99), clock.now()).is_none());
    assert!(brake.held(&phone(3333, 99), clock.now()).is_none());
    let refused = engine.start(start(phone(1111, 500))).await.unwrap_err();
    assert!(matches!(refused, EngineError::DestinationSuspended { .. }));
    assert_eq!(refused.code(), "destination_suspended");
    assert!(refused.retry_at().is_some());
    assert!(refused.message_en().contains("165"));
    start_ok(&engine, phone(2222, 500)).await;
    start_ok(&engine, phone(3333, 500)).await;
    let entries = store
        .audit_recent(
            &AuditFilter {
                action: Some("number_block_braked".into()),
                ..AuditFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "braked once");
    assert!(entries[0].record.detail.starts_with(&block_of(1111)));
    // The brake ends by itself after its hold.
    clock.advance(Duration::hours(24));
    brake.reload(&store, clock.now()).await.unwrap();
    assert!(brake.held(&phone(1111, 1), clock.now()).is_none());
}

async fn two_instances_add_up_their_counts_and_both_hold_the_brake<S: Store>(store: S) {
    let clock = ManualClock::new(t0());
    let (first, first_brake) = instance(&store, &clock);
    let (second, second_brake) = instance(&store, &clock);
    // 12 unentered codes through each: neither reaches 20 alone.
    for n in 0..12 {
        start_ok(&first, phone(4444, n)).await;
        start_ok(&second, phone(4444, 100 + n)).await;
    }
    let braked_first = first_brake.tick(&store, clock.now()).await.unwrap();
    let braked_second = second_brake.tick(&store, clock.now()).await.unwrap();
    assert_eq!(
        braked_first.len() + braked_second.len(),
        1,
        "{braked_first:?} {braked_second:?}"
    );
    first_brake.reload(&store, clock.now()).await.unwrap();
    for engine in [&first, &second] {
        assert!(matches!(
            engine.start(start(phone(4444, 999))).await,
            Err(EngineError::DestinationSuspended { .. })
        ));
    }
}

async fn staff_lift_a_brake_and_the_lift_is_recorded<S: Store>(store: S) {
    let clock = ManualClock::new(t0());
    let (engine, brake) = instance(&store, &clock);
    for n in 0..25 {
        start_ok(&engine, phone(5555, n)).await;
    }
    assert_eq!(
        brake.tick(&store, clock.now()).await.unwrap(),
        [block_of(5555)]
    );
    let block = block_of(5555);
    assert!(
        gerbang_core::pumping::lift(
            &store,
            &block,
            "operator:budi",
            "checked with the operator",
            clock.now()
        )
        .await
        .unwrap()
    );
    assert!(
        !gerbang_core::pumping::lift(&store, &block, "operator:budi", "again", clock.now())
            .await
            .unwrap(),
        "nothing left to lift"
    );
    clock.advance(Duration::seconds(5));
    brake.tick(&store, clock.now()).await.unwrap();
    // Lifted: codes go again, and the traffic judged before the lift does not brake it again.
    start_ok(&engine, phone(5555, 100)).await;
    clock.advance(Duration::seconds(5));
    assert!(brake.tick(&store, clock.now()).await.unwrap().is_empty());
    assert!(brake.held(&phone(5555, 1), clock.now()).is_none());
    let lifts = store
        .audit_recent(
            &AuditFilter {
                action: Some("number_block_brake_lifted".into()),
                ..AuditFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(lifts.len(), 1);
    assert_eq!(lifts[0].record.actor, "operator:budi");
}

/// The counts table holds about a day: once an hour a tick deletes the minutes older than 25 h
/// (the health page's day and the brake's window), and keeps the rest.
async fn counts_older_than_a_day_are_pruned_once_an_hour<S: Store>(store: S) {
    let clock = ManualClock::new(t0());
    let (engine, brake) = instance(&store, &clock);
    start_ok(&engine, phone(7777, 1)).await;
    brake.tick(&store, clock.now()).await.unwrap();
    let day = clock.now() - Duration::hours(1);
    assert_eq!(store.busiest_blocks(day, 10).await.unwrap().len(), 1);
    // 24 hours on: another block; the first block's minute is still kept.
    clock.advance(Duration::hours(24));
    start_ok(&engine, phone(7778, 1)).await;
    brake.tick(&store, clock.now()).await.unwrap();
    let all = |store: S| async move {
        store
            .busiest_blocks(t0() - Duration::hours(1), 10)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(all(store.clone()).await, 2);
    // Two hours later the first minute is past 25 h: pruned at the first tick of that hour.
    clock.advance(Duration::hours(2));
    brake.tick(&store, clock.now()).await.unwrap();
    assert_eq!(all(store.clone()).await, 1);
    assert_eq!(
        store
            .prune_block_counts(clock.now() - Duration::hours(25))
            .await
            .unwrap(),
        0,
        "nothing older is left"
    );
}
