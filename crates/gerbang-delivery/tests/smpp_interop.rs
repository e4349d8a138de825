//! The SMPP client against an independent SMSC: `tests/support/smsc.pl`, built on Net::SMPP
//! (Debian's libnet-smpp-perl). Each test starts its own SMSC on a free port. The SMSC's behaviour
//! per destination (receipts with MAP errors, refusals, a dropped connection) is described in the
//! script.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use gerbang_delivery::smpp::{SmppClient, SmppConfig, SmppEvent, SubmitError};
use gerbang_domain::delivery::receipt::normalise_message_id;
use gerbang_domain::delivery::{Cause, CauseMap, DeliveryStatus, RawOutcome, Receipt};
use support::Smsc;
use tokio::sync::mpsc;

fn config(smsc: &Smsc) -> SmppConfig {
    let mut config = SmppConfig::new(&smsc.address, "gerbang", "secret");
    config.source_addr = "JKN".into();
    config.window = 5;
    config.response_timeout = Duration::from_secs(5);
    config.reconnect_min = Duration::from_millis(100);
    config.throttle_backoff = Duration::from_millis(20);
    config
}

async fn next_event(events: &mut mpsc::Receiver<SmppEvent>) -> SmppEvent {
    tokio::time::timeout(Duration::from_secs(15), events.recv())
        .await
        .expect("an event in time")
        .expect("the client is running")
}

async fn receipts(events: &mut mpsc::Receiver<SmppEvent>, n: usize) -> Vec<Receipt> {
    let mut found = Vec::new();
    while found.len() < n {
        if let SmppEvent::Receipt(receipt) = next_event(events).await {
            found.push(receipt);
        }
    }
    found
}

#[tokio::test]
async fn submits_get_ids_and_receipts_tell_what_happened() {
    let smsc = Smsc::start(&[]).await;
    let (client, mut events) = SmppClient::start(config(&smsc));
    let text = "JKN Mobile: 482913 adalah kode OTP Anda. JANGAN berikan kode ini kepada siapa pun.";
    let expected = [
        ("6281234567890", DeliveryStatus::Delivered, Cause::Delivered),
        (
            "6281234560001",
            DeliveryStatus::Failed,
            Cause::NumberInactive,
        ),
        ("6281234560032", DeliveryStatus::Failed, Cause::InboxFull),
        (
            "6281234560006",
            DeliveryStatus::Expired,
            Cause::PhoneUnreachable,
        ),
        (
            "6281234560013",
            DeliveryStatus::Failed,
            Cause::BlockedByOperator,
        ),
    ];
    let mut ids = HashMap::new();
    for (to, status, cause) in expected {
        let submitted = client.submit(to, text).await.unwrap();
        assert_eq!(submitted.attempts, 1);
        ids.insert(normalise_message_id(&submitted.message_id), (status, cause));
    }
    let map = CauseMap::default();
    for receipt in receipts(&mut events, expected.len()).await {
        let (status, cause) = ids
            .remove(&normalise_message_id(&receipt.message_id))
            .unwrap_or_else(|| panic!("a receipt for a message we did not send: {receipt}"));
        let verdict = map.judge(&RawOutcome::SmppReceipt(&receipt));
        assert_eq!(
            (verdict.status, verdict.cause),
            (status, Some(cause)),
            "{receipt}"
        );
        assert!(
            !format!("{receipt:?}").contains("482913"),
            "receipt text is not kept"
        );
    }
    assert!(ids.is_empty());
    // What the SMSC saw: one bind, five submits asking for receipts, international numbers, GSM.
    assert_eq!(smsc.count("bind ok"), 1);
    let submits: Vec<String> = smsc
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("submit"))
        .collect();
    assert_eq!(submits.len(), 5);
    for line in &submits {
        for part in ["dc=0", "rd=1", "ton=1", "npi=1", "src=JKN"] {
            assert!(line.contains(part), "{part} in {line}");
        }
    }
    client.close();
}

#[tokio::test]
async fn receipts_without_tlvs_are_read_from_the_text() {
    let smsc = Smsc::start(&[("SMSC_RECEIPT_TLVS", "0")]).await;
    let (client, mut events) = SmppClient::start(config(&smsc));
    let id = client
        .submit("6281234560001", "kode 1")
        .await
        .unwrap()
        .message_id;
    let receipt = receipts(&mut events, 1).await.remove(0);
    assert_eq!(
        normalise_message_id(&receipt.message_id),
        normalise_message_id(&id)
    );
    assert_eq!(receipt.error.as_deref(), Some("001"));
}

#[tokio::test]
async fn refusals_carry_the_command_status_and_throttling_is_retried_then_given_up() {
    let smsc = Smsc::start(&[]).await;
    let mut config = config(&smsc);
    config.max_attempts = 3;
    let (client, _events) = SmppClient::start(config);
    let refused = client.submit("6281234560011", "kode").await.unwrap_err();
    assert_eq!(refused, SubmitError::Refused(0x0B));
    assert_eq!(
        CauseMap::default()
            .judge(&RawOutcome::SmppSubmit(0x0B))
            .cause,
        Some(Cause::InvalidNumber)
    );
    // Always throttled: tried max_attempts times, then the refusal is returned.
    let throttled = client.submit("6281234560088", "kode").await.unwrap_err();
    assert_eq!(throttled, SubmitError::Refused(0x58));
    assert_eq!(smsc.count("submit 6281234560088"), 3);
    assert_eq!(
        smsc.count("submit 6281234560011"),
        1,
        "a permanent refusal is not retried"
    );
}

/// A number whose queue is full at the SMSC is retried, but only it waits: with a back-off of an
/// hour, a pause of the whole bind would hold the other number's submit for an hour.
#[tokio::test]
async fn a_number_the_smsc_keeps_refusing_does_not_hold_back_other_numbers() {
    let smsc = Smsc::start(&[]).await;
    let mut config = config(&smsc);
    config.throttle_backoff = Duration::from_secs(3600);
    config.max_attempts = 3;
    let (client, _events) = SmppClient::start(config);
    client.submit("6281234567890", "kode").await.unwrap();
    let refused = {
        let client = client.clone();
        tokio::spawn(async move { client.submit("6281234560014", "kode").await })
    };
    smsc.wait_for("refused 6281234560014", 1).await;
    let other = tokio::time::timeout(
        Duration::from_secs(30),
        client.submit("6281234561234", "kode"),
    )
    .await
    .expect("the other number is not held back");
    assert!(other.is_ok(), "{other:?}");
    refused.abort();
    client.close();
}

#[tokio::test]
async fn under_smsc_throttling_every_message_still_goes_out_once_accepted() {
    let smsc = Smsc::start(&[("SMSC_MAX_TPS", "20")]).await;
    let mut config = config(&smsc);
    config.window = 10;
    config.max_attempts = 100;
    config.throttle_backoff = Duration::from_millis(50);
    let (client, _events) = SmppClient::start(config);
    let sends = (0..60).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .submit(&format!("628129{i:03}5555"), "kode 123456")
                .await
        })
    });
    let mut ids = std::collections::HashSet::new();
    let mut retried = 0;
    for send in sends {
        let submitted = send.await.unwrap().unwrap();
        retried += usize::from(submitted.attempts > 1);
        assert!(ids.insert(submitted.message_id));
    }
    assert_eq!(
        ids.len(),
        60,
        "every message accepted, each with its own id"
    );
    assert!(
        retried > 0,
        "the SMSC did throttle, and we backed off and retried"
    );
    assert!(smsc.count("refused") > 0);
    assert_eq!(
        smsc.count("submit") - smsc.count("refused"),
        60,
        "accepted exactly once each"
    );
}

#[tokio::test]
async fn a_dropped_connection_fails_what_was_outstanding_and_the_client_binds_again() {
    let smsc = Smsc::start(&[]).await;
    let (client, mut events) = SmppClient::start(config(&smsc));
    assert_eq!(next_event(&mut events).await, SmppEvent::Bound);
    let dropped = client.submit("6281234560099", "kode").await.unwrap_err();
    assert_eq!(dropped, SubmitError::Disconnected);
    assert!(matches!(
        next_event(&mut events).await,
        SmppEvent::Unbound { .. }
    ));
    assert_eq!(next_event(&mut events).await, SmppEvent::Bound);
    client.submit("6281234567890", "kode").await.unwrap();
    assert_eq!(smsc.count("bind ok"), 2);
}

#[tokio::test]
async fn a_refused_bind_is_reported_and_submits_fail_at_once_instead_of_waiting() {
    let smsc = Smsc::start(&[]).await;
    let mut config = config(&smsc);
    config.password = "wrong".into();
    // An hour: a submit that waited for an answer would not return within the test's bound.
    config.response_timeout = Duration::from_secs(3600);
    let (client, mut events) = SmppClient::start(config);
    match next_event(&mut events).await {
        SmppEvent::Unbound { reason } => assert!(reason.contains("bind refused"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let submitted = tokio::time::timeout(
        Duration::from_secs(30),
        client.submit("6281234567890", "kode"),
    )
    .await
    .expect("no wait while the bind is down");
    assert_eq!(submitted.unwrap_err(), SubmitError::Unbound);
    smsc.wait_for("bind refused", 1).await;
    assert_eq!(smsc.count("submit"), 0);
}

#[tokio::test]
async fn enquire_link_keeps_the_bind_alive() {
    let smsc = Smsc::start(&[]).await;
    let mut config = config(&smsc);
    config.enquire_link_every = Duration::from_millis(100);
    let (_client, mut events) = SmppClient::start(config);
    assert_eq!(next_event(&mut events).await, SmppEvent::Bound);
    smsc.wait_for("enquire_link", 3).await;
    assert_eq!(
        smsc.count("bind ok"),
        1,
        "answered keep-alives never cost a reconnect"
    );
}

#[tokio::test]
async fn text_outside_gsm_goes_as_ucs2() {
    let smsc = Smsc::start(&[]).await;
    let (client, _events) = SmppClient::start(config(&smsc));
    client.submit("6281234567890", "Kode ☺ 12").await.unwrap();
    let line = smsc
        .lines()
        .into_iter()
        .find(|l| l.starts_with("submit"))
        .unwrap();
    let utf16: String = "Kode ☺ 12"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(line.contains("dc=8"), "{line}");
    assert!(line.ends_with(&format!("text={utf16}")), "{line}");
}
