//! The verification engine on the backend under test (`GERBANG_TEST_DATABASE`), driven by a manual
//! clock through the numbers of SPEC §4, with real concurrent callers for the single-use and
//! rate-limit invariants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use gerbang_core::{
    CheckRequest, DeliveryWorker, DevInbox, EngineError, Origin, ResendRequest, StartRequest,
    Subject, VerificationEngine,
};
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::verification::purpose::{ActionDetails, Purpose, SensitiveAction};
use gerbang_domain::verification::{Channel, Destination, Locale, Status, VerificationId};
use gerbang_domain::{Email, Explain, ManualClock, MobileNumber};
use gerbang_store::Store;
use gerbang_testkit::{TestDatabase, store_test};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

struct Harness<S> {
    engine: VerificationEngine<S>,
    clock: ManualClock,
    worker: DeliveryWorker<S, DevInbox>,
}

fn harness<S: Store>(store: S) -> Harness<S> {
    let clock = ManualClock::new(t0());
    let engine = VerificationEngine::new(
        store.clone(),
        Arc::new(clock.clone()),
        CodeKey::new([7; 32]),
        Default::default(),
    );
    let worker = DeliveryWorker::new(store, DevInbox, Arc::new(clock.clone()));
    Harness {
        engine,
        clock,
        worker,
    }
}

fn phone(n: u32) -> Destination {
    Destination::Phone(MobileNumber::parse(&format!("0812{n:08}")).unwrap())
}

fn start_request(to: Destination) -> StartRequest {
    StartRequest {
        client: "app".into(),
        purpose: Purpose::Registration,
        action: None,
        details: ActionDetails::default(),
        action_hint: None,
        channel: match to {
            Destination::Email(_) => Channel::Email,
            Destination::Phone(_) => Channel::Sms,
        },
        destination: to,
        locale: Locale::Id,
        subject: Subject::default(),
        origin: Origin::default(),
    }
}

fn check_request(id: VerificationId, code: &str) -> CheckRequest {
    CheckRequest {
        client: "app".into(),
        id,
        code: code.into(),
        purpose: None,
        action: None,
        details: ActionDetails::default(),
    }
}

fn resend_request(id: VerificationId) -> ResendRequest {
    ResendRequest {
        client: "app".into(),
        id,
        channel: None,
        destination: None,
        origin: Origin::default(),
    }
}

impl<S: Store> Harness<S> {
    /// Delivers what is queued and returns the code of the newest message for `id`.
    async fn last_code(&self, id: VerificationId) -> String {
        self.worker.deliver_next().await.unwrap();
        let inbox = self.engine.store().inbox(1000).await.unwrap();
        let message = inbox
            .iter()
            .find(|m| m.message.verification == id)
            .expect("a delivered message for this verification");
        message
            .message
            .text
            .split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .expect("a six-digit code in the text")
            .to_owned()
    }
}

fn code_of(error: &EngineError) -> &'static str {
    error.code()
}

/// A six-digit code that is not `right`.
fn wrong(right: &str) -> String {
    let first = right.as_bytes()[0];
    let flipped = if first == b'9' {
        '0'
    } else {
        char::from(first + 1)
    };
    format!("{flipped}{}", &right[1..])
}

store_test!(
    the_right_code_verifies_once_and_a_replay_is_refused,
    concurrent_checks_of_the_right_code_succeed_exactly_once,
    five_wrong_codes_kill_the_verification,
    a_code_dies_five_minutes_after_hand_off,
    a_message_whose_code_died_in_the_queue_is_dropped_not_sent,
    resend_during_countdown_sends_nothing_and_keeps_the_same_retry_after,
    three_resends_then_a_thirty_minute_wait_even_for_a_new_verification,
    the_sixth_code_to_one_number_in_fifteen_minutes_is_refused_for_thirty_minutes,
    concurrent_starts_never_exceed_the_destination_limit,
    a_step_up_code_confirms_only_its_own_details,
    a_resend_may_switch_channel_and_the_earlier_code_keeps_working,
    another_client_cannot_see_or_check_a_verification,
);

async fn the_right_code_verifies_once_and_a_replay_is_refused<S: Store>(store: S) {
    let h = harness(store);
    let view = h.engine.start(start_request(phone(1))).await.unwrap();
    assert_eq!(view.status, Status::Pending);
    assert_eq!(view.destination_masked, "0812****0001");
    assert_eq!(view.resend_at, t0() + Duration::seconds(60));
    let code = h.last_code(view.id).await;
    h.clock.advance(Duration::seconds(20));
    let verified = h.engine.check(check_request(view.id, &code)).await.unwrap();
    assert_eq!(verified.status, Status::Verified);
    assert_eq!(verified.verified_at, Some(t0() + Duration::seconds(20)));
    let replay = h
        .engine
        .check(check_request(view.id, &code))
        .await
        .unwrap_err();
    assert_eq!(code_of(&replay), "otp_already_used");
    let status = h.engine.status("app", view.id).await.unwrap();
    assert_eq!(status.status, Status::Verified);
    assert_eq!(status.attempts_left, 5);
}

async fn concurrent_checks_of_the_right_code_succeed_exactly_once<S: Store>(store: S) {
    let h = harness(store);
    let view = h.engine.start(start_request(phone(2))).await.unwrap();
    let code = h.last_code(view.id).await;
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let engine = h.engine.clone();
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            engine.check(check_request(view.id, &code)).await
        }));
    }
    let mut successes = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => successes += 1,
            Err(error) => assert_eq!(code_of(&error), "otp_already_used"),
        }
    }
    assert_eq!(successes, 1);
}

async fn five_wrong_codes_kill_the_verification<S: Store>(store: S) {
    let h = harness(store);
    let view = h.engine.start(start_request(phone(3))).await.unwrap();
    let code = h.last_code(view.id).await;
    for left in (1..=4).rev() {
        let error = h
            .engine
            .check(check_request(view.id, &wrong(&code)))
            .await
            .unwrap_err();
        assert_eq!(code_of(&error), "otp_incorrect");
        assert!(
            error
                .message_en()
                .contains(&format!("{left} attempts left"))
        );
    }
    // Malformed input is refused at the edge and costs no attempt.
    let malformed = h
        .engine
        .check(check_request(view.id, "12a456"))
        .await
        .unwrap_err();
    assert_eq!(code_of(&malformed), "otp_malformed");
    assert_eq!(
        h.engine.status("app", view.id).await.unwrap().attempts_left,
        1
    );
    let last = h
        .engine
        .check(check_request(view.id, &wrong(&code)))
        .await
        .unwrap_err();
    assert_eq!(code_of(&last), "otp_attempts_exhausted");
    let right = h
        .engine
        .check(check_request(view.id, &code))
        .await
        .unwrap_err();
    assert_eq!(code_of(&right), "otp_attempts_exhausted");
}

async fn a_code_dies_five_minutes_after_hand_off<S: Store>(store: S) {
    let h = harness(store);
    let view = h.engine.start(start_request(phone(4))).await.unwrap();
    // Two minutes in the queue, then the hand-off: the code lives until minute 7.
    h.clock.advance(Duration::minutes(2));
    let code = h.last_code(view.id).await;
    let status = h.engine.status("app", view.id).await.unwrap();
    assert_eq!(status.expires_at, t0() + Duration::minutes(7));
    h.clock.advance(Duration::minutes(5));
    let error = h
        .engine
        .check(check_request(view.id, &code))
        .await
        .unwrap_err();
    assert_eq!(code_of(&error), "verification_expired");
    assert_eq!(
        h.engine.status("app", view.id).await.unwrap().status,
        Status::Expired
    );
}

async fn a_message_whose_code_died_in_the_queue_is_dropped_not_sent<S: Store>(store: S) {
    let h = harness(store);
    let view = h.engine.start(start_request(phone(5))).await.unwrap();
    h.clock.advance(Duration::minutes(10));
    assert_eq!(h.worker.deliver_next().await.unwrap(), 1);
    let inbox = h.engine.store().inbox(10).await.unwrap();
    assert!(inbox.iter().all(|m| m.message.verification != view.id));
    assert_eq!(h.engine.store().queued_messages().await.unwrap(), 0);
}

async fn resend_during_countdown_sends_nothing_and_keeps_the_same_retry_after<S: Store>(store: S) {
    let h = harness(store);
    let view = h.engine.start(start_request(phone(6))).await.unwrap();
    h.worker.deliver_next().await.unwrap();
    for after in [1, 10, 59] {
        h.clock.set(t0() + Duration::seconds(after));
        let error = h.engine.resend(resend_request(view.id)).await.unwrap_err();
        assert_eq!(code_of(&error), "resend_countdown");
        assert_eq!(error.retry_at(), Some(t0() + Duration::seconds(60)));
    }
    assert_eq!(h.engine.store().queued_messages().await.unwrap(), 0);
    h.clock.set(t0() + Duration::seconds(60));
    let resent = h.engine.resend(resend_request(view.id)).await.unwrap();
    assert_eq!(resent.sends, 2);
    assert_eq!(resent.resend_at, t0() + Duration::seconds(180));
    assert_eq!(h.engine.store().queued_messages().await.unwrap(), 1);
}

async fn three_resends_then_a_thirty_minute_wait_even_for_a_new_verification<S: Store>(store: S) {
    let h = harness(store);
    let view = h.engine.start(start_request(phone(7))).await.unwrap();
    for at in [60, 180, 480] {
        h.clock.set(t0() + Duration::seconds(at));
        h.engine.resend(resend_request(view.id)).await.unwrap();
    }
    h.clock.set(t0() + Duration::seconds(780));
    let error = h.engine.resend(resend_request(view.id)).await.unwrap_err();
    assert_eq!(code_of(&error), "resend_limit_reached");
    let until = t0() + Duration::seconds(480) + Duration::minutes(30);
    assert_eq!(error.retry_at(), Some(until));
    let fresh = h.engine.start(start_request(phone(7))).await.unwrap_err();
    assert_eq!(code_of(&fresh), "resend_limit_reached");
    assert_eq!(fresh.retry_at(), Some(until));
    // At the instant given, the same request passes.
    h.clock.set(until);
    h.engine.start(start_request(phone(7))).await.unwrap();
}

async fn the_sixth_code_to_one_number_in_fifteen_minutes_is_refused_for_thirty_minutes<S: Store>(
    store: S,
) {
    let h = harness(store);
    // Different purposes, so the per-flow cap does not trip first.
    let purposes = [
        Purpose::Registration,
        Purpose::LoginNewDevice,
        Purpose::Recovery,
        Purpose::ContactChangeAuthorisation,
        Purpose::ContactChangeProof,
    ];
    for (i, purpose) in purposes.into_iter().enumerate() {
        h.clock.set(t0() + Duration::minutes(i as i64));
        let mut request = start_request(phone(8));
        request.purpose = purpose;
        h.engine.start(request).await.unwrap();
    }
    h.clock.set(t0() + Duration::minutes(6));
    let error = h.engine.start(start_request(phone(8))).await.unwrap_err();
    assert_eq!(code_of(&error), "rate_limited");
    assert_eq!(error.rule().as_deref(), Some("destination_5_per_15m"));
    let until = t0() + Duration::minutes(4 + 30);
    assert_eq!(error.retry_at(), Some(until));
    assert!(error.message_id().contains("nomor atau email ini"));
    // The same number by email address is another destination; the NIK behind both is one key.
    h.clock.set(until - Duration::seconds(1));
    assert!(h.engine.start(start_request(phone(8))).await.is_err());
    h.clock.set(until);
    h.engine.start(start_request(phone(8))).await.unwrap();
}

async fn concurrent_starts_never_exceed_the_destination_limit<S: Store>(store: S) {
    let h = harness(store);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let engine = h.engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut request = start_request(phone(9));
            // Distinct accounts keep the per-flow cap out of the way; the number is shared.
            request.subject.account = Some(format!("acct-{i}"));
            engine.start(request).await
        }));
    }
    let mut started = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => started += 1,
            Err(error) => assert_eq!(error.rule().as_deref(), Some("destination_5_per_15m")),
        }
    }
    assert_eq!(started, 5);
}

async fn a_step_up_code_confirms_only_its_own_details<S: Store>(store: S) {
    let h = harness(store);
    let details = |account: &str| {
        ActionDetails::parse(BTreeMap::from([(
            "bank_account".to_owned(),
            account.to_owned(),
        )]))
        .unwrap()
    };
    let mut request = start_request(phone(10));
    request.purpose = Purpose::StepUp;
    request.action = Some(SensitiveAction::BankAccountChange);
    request.details = details("1234567890");
    request.action_hint = Some("****7890".into());
    let view = h.engine.start(request).await.unwrap();
    let code = h.last_code(view.id).await;
    let inbox = h.engine.store().inbox(1).await.unwrap();
    assert!(
        inbox[0]
            .message
            .text
            .contains("ubah rekening bank ****7890")
    );
    let mut other = check_request(view.id, &code);
    other.details = details("9999999999");
    let error = h.engine.check(other).await.unwrap_err();
    assert_eq!(code_of(&error), "otp_incorrect");
    let mut own = check_request(view.id, &code);
    own.details = details("1234567890");
    h.engine.check(own).await.unwrap();
}

async fn a_resend_may_switch_channel_and_the_earlier_code_keeps_working<S: Store>(store: S) {
    let h = harness(store);
    let view = h.engine.start(start_request(phone(11))).await.unwrap();
    let sms_code = h.last_code(view.id).await;
    h.clock.advance(Duration::seconds(60));
    let mut resend = resend_request(view.id);
    resend.channel = Some(Channel::Email);
    let mismatch = h.engine.resend(resend.clone()).await.unwrap_err();
    assert_eq!(code_of(&mismatch), "channel_destination_mismatch");
    resend.destination = Some(Destination::Email(
        Email::parse("peserta11@example.com").unwrap(),
    ));
    let switched = h.engine.resend(resend).await.unwrap();
    assert_eq!(switched.channel, Channel::Email);
    assert_eq!(switched.destination_masked, "p***@example.com");
    let email_code = h.last_code(view.id).await;
    assert_ne!(email_code, sms_code, "a resend carries a new code");
    // The SMS arrives late and the participant types it: still valid within its own five minutes.
    h.engine
        .check(check_request(view.id, &sms_code))
        .await
        .unwrap();
}

async fn another_client_cannot_see_or_check_a_verification<S: Store>(store: S) {
    let h = harness(store);
    let view = h.engine.start(start_request(phone(12))).await.unwrap();
    let code = h.last_code(view.id).await;
    let error = h.engine.status("claims", view.id).await.unwrap_err();
    assert_eq!(code_of(&error), "verification_not_found");
    let mut foreign = check_request(view.id, &code);
    foreign.client = "claims".into();
    assert_eq!(
        code_of(&h.engine.check(foreign).await.unwrap_err()),
        "verification_not_found"
    );
    h.engine.check(check_request(view.id, &code)).await.unwrap();
}

#[tokio::test]
async fn the_test_database_is_reachable() {
    // Fails loudly (rather than skipping) when GERBANG_TEST_DATABASE names an unreachable server.
    let _db = TestDatabase::create().await;
}
