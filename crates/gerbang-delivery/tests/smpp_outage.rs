//! The SMSC is down when codes are acknowledged: the messages wait in the outbox (each refusal in
//! the trail), the bind keeps reconnecting, and when the SMSC comes up every code goes out once.
//! On the backend under test, against the independent Net::SMPP test SMSC.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use gerbang_core::{DeliveryWorker, RetryPolicy, Route, StartRequest, VerificationEngine};
use gerbang_delivery::smpp::{SmppClient, SmppConfig};
use gerbang_delivery::{Provider, SmppCourier};
use gerbang_domain::delivery::circuit::CircuitPolicy;
use gerbang_domain::delivery::{Cause, DeliveryStatus};
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::verification::purpose::Purpose;
use gerbang_domain::verification::{Channel, Destination};
use gerbang_domain::{Clock, MobileNumber, SystemClock};
use gerbang_store::Store;
use gerbang_testkit::store_test;
use support::Smsc;

store_test!(
    codes_acknowledged_while_the_smsc_is_down_go_out_when_it_returns,
    a_primary_smsc_that_refuses_connections_is_failed_over_at_once_not_after_a_timeout,
);

/// The primary SMSC refuses connections; its answer timeout is an hour, so a courier that waited for
/// an answer instead of failing at once would never let the step end. Every code goes out through
/// the second route in the same step, the refusal of the first on record.
async fn a_primary_smsc_that_refuses_connections_is_failed_over_at_once_not_after_a_timeout<
    S: Store,
>(
    store: S,
) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = SmppConfig::new(format!("127.0.0.1:{port}"), "gerbang", "secret");
    config.response_timeout = Duration::from_secs(3600);
    config.reconnect_min = Duration::from_millis(100);
    let (client, _events) = SmppClient::start(config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = VerificationEngine::new(
        store.clone(),
        clock.clone(),
        CodeKey::new([9; 32]),
        Default::default(),
    );
    let primary = Provider::Smpp(SmppCourier {
        name: "smpp:down".into(),
        client,
        causes: Default::default(),
    });
    let routes = vec![
        Route::new(primary, vec![Channel::Sms]),
        Route::new(Provider::DevInbox(Default::default()), vec![Channel::Sms]),
    ];
    let worker = DeliveryWorker::with_routes(store.clone(), routes, clock);
    let mut ids = Vec::new();
    for n in 0..3 {
        let to = Destination::Phone(MobileNumber::parse(&format!("08123456{n:02}90")).unwrap());
        let request = StartRequest::new("app", Purpose::Registration, Channel::Sms, to);
        ids.push(engine.start(request).await.unwrap().id);
    }
    let step = tokio::time::timeout(Duration::from_secs(60), worker.deliver_next()).await;
    assert_eq!(step.expect("no wait for the refused SMSC").unwrap(), 3);
    assert_eq!(store.queued_messages().await.unwrap(), 0);
    for id in ids {
        let trail = store.delivery_trail(id).await.unwrap();
        let seen: Vec<_> = trail
            .iter()
            .map(|a| (a.provider.as_str(), a.status, a.cause))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "smpp:down",
                    DeliveryStatus::Failed,
                    Some(Cause::ProviderError)
                ),
                ("dev_inbox", DeliveryStatus::Delivered, None),
            ],
            "{trail:?}"
        );
    }
}

async fn codes_acknowledged_while_the_smsc_is_down_go_out_when_it_returns<S: Store>(store: S) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = SmppConfig::new(format!("127.0.0.1:{port}"), "gerbang", "secret");
    config.response_timeout = Duration::from_secs(1);
    config.reconnect_min = Duration::from_millis(100);
    config.reconnect_max = Duration::from_millis(500);
    let (client, _events) = SmppClient::start(config);
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
    let route = Route::new(courier, vec![Channel::Sms]).with_circuit(CircuitPolicy {
        failures_to_open: 3,
        open_for: chrono::Duration::milliseconds(500),
        max_open: chrono::Duration::seconds(1),
    });
    let mut worker = DeliveryWorker::with_routes(store.clone(), vec![route], clock);
    worker.retry = RetryPolicy {
        first: chrono::Duration::milliseconds(300),
        max: chrono::Duration::milliseconds(600),
    };
    let numbers: Vec<String> = (0..5).map(|n| format!("08123456{n:02}90")).collect();
    let mut ids = Vec::new();
    for number in &numbers {
        let to = Destination::Phone(MobileNumber::parse(number).unwrap());
        let request = StartRequest::new("app", Purpose::Registration, Channel::Sms, to);
        ids.push(engine.start(request).await.unwrap().id);
    }
    let wake = engine.queued_signal();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(wake, async move {
        let _ = stopped.await;
    }));

    // Down for two seconds: nothing lost, every code still queued, the refusals on record.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(store.queued_messages().await.unwrap(), 5);
    let trail = store.delivery_trail(ids[0]).await.unwrap();
    assert!(!trail.is_empty(), "the failed tries are in the trail");
    assert!(
        trail
            .iter()
            .all(|a| a.status == DeliveryStatus::Failed && a.cause == Some(Cause::ProviderError)),
        "{trail:?}"
    );

    // The SMSC comes up on the address the bind keeps trying.
    let smsc = Smsc::start_on(port, &[]).await;
    smsc.wait_for("submit 62812345", 5).await;
    for _ in 0..100 {
        if store.queued_messages().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.queued_messages().await.unwrap(), 0);
    for number in &numbers {
        assert_eq!(
            smsc.count(&format!("submit 62{} ", &number[1..])),
            1,
            "{number}"
        );
    }
    let trail = store.delivery_trail(ids[0]).await.unwrap();
    assert_eq!(
        trail.last().unwrap().status,
        DeliveryStatus::Submitted,
        "{trail:?}"
    );
    stop.send(()).unwrap();
    running.await.unwrap();
}
