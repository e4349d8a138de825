//! The storage conformance suite: behaviour every backend must show, written once against the
//! traits. It runs on the backend named by `GERBANG_TEST_DATABASE` (see gerbang-testkit).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use gerbang_domain::delivery::{Cause, DeliveryStatus};
use gerbang_domain::verification::{Channel, Verification, VerificationId};
use gerbang_domain::{JknCardNumber, Nik, ParticipantStatus};
use gerbang_store::{
    Changes, FailedTry, MessageOutcome, OutboxMessage, ParticipantConflict, ParticipantImport,
    ParticipantKey, PersonalDataKey, Priority, RowConflict, Sealer, Store, StoreError,
};
use gerbang_store_postgres::PostgresStore;
use gerbang_store_sqlite::SqliteStore;
use gerbang_testkit::{Backend, TestDatabase, participant, store_test};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

store_test!(
    an_imported_participant_is_found_by_nik_card_and_kpj,
    an_unknown_number_is_none_not_an_error,
    reimporting_identical_rows_writes_nothing,
    a_changed_row_is_updated,
    a_card_number_claimed_by_another_nik_is_refused_alone,
    counts_stay_exact_when_a_conflict_forces_the_row_by_row_retry,
    the_last_row_of_a_nik_in_a_batch_wins,
    an_uncommitted_import_leaves_the_registry_unchanged,
    batches_larger_than_one_statement_are_counted_exactly,
    ping_answers_until_the_store_is_closed,
    verifications_are_found_by_nik_newest_first_up_to_the_limit,
    a_handed_off_verification_is_still_found_by_nik_and_its_trail_names_the_provider_s_id,
    verifications_written_together_in_one_batch_are_each_found_by_their_nik,
);

async fn import<S: Store>(
    store: &S,
    batch: &[gerbang_domain::Participant],
) -> gerbang_store::BatchOutcome {
    let mut import = store.begin_participant_import().await.unwrap();
    let mut outcome = import.upsert_batch(batch, now()).await.unwrap();
    outcome.settle(import.commit().await.unwrap());
    outcome
}

async fn an_imported_participant_is_found_by_nik_card_and_kpj<S: Store>(store: S) {
    let p = participant(7);
    let outcome = import(&store, &[p.clone(), participant(8)]).await;
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (2, 0, 0)
    );
    let by_nik = store
        .find_participant(ParticipantKey::Nik(&p.nik))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_nik.participant, p);
    assert_eq!(by_nik.updated_at, now());
    let by_card = store
        .find_participant(ParticipantKey::CardNumber(&p.card_number))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_card.id, by_nik.id);
    let kpj = p.kpj_number.clone().unwrap();
    let by_kpj = store
        .find_participant(ParticipantKey::KpjNumber(&kpj))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_kpj.participant, p);
    assert_eq!(store.count_participants().await.unwrap(), 2);
}

async fn an_unknown_number_is_none_not_an_error<S: Store>(store: S) {
    import(&store, &[participant(1)]).await;
    let stranger = JknCardNumber::parse("0009999999999").unwrap();
    assert!(
        store
            .find_participant(ParticipantKey::CardNumber(&stranger))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_participant(ParticipantKey::Nik(&participant(2).nik))
            .await
            .unwrap()
            .is_none()
    );
}

async fn reimporting_identical_rows_writes_nothing<S: Store>(store: S) {
    let batch: Vec<_> = (0..20).map(participant).collect();
    import(&store, &batch).await;
    let before = store
        .find_participant(ParticipantKey::Nik(&batch[3].nik))
        .await
        .unwrap()
        .unwrap();
    let mut again = store.begin_participant_import().await.unwrap();
    let outcome = again
        .upsert_batch(&batch, now() + chrono::Duration::hours(1))
        .await
        .unwrap();
    again.commit().await.unwrap();
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (0, 0, 20)
    );
    let after = store
        .find_participant(ParticipantKey::Nik(&batch[3].nik))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.updated_at, before.updated_at,
        "an unchanged row must not be rewritten"
    );
}

async fn a_changed_row_is_updated<S: Store>(store: S) {
    let mut p = participant(3);
    import(&store, &[p.clone()]).await;
    p.status = ParticipantStatus::Inactive;
    p.phone = None;
    let outcome = import(&store, &[p.clone(), participant(4)]).await;
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (1, 1, 0)
    );
    let found = store
        .find_participant(ParticipantKey::Nik(&p.nik))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.participant, p);
    assert_eq!(store.count_participants().await.unwrap(), 2);
}

async fn a_card_number_claimed_by_another_nik_is_refused_alone<S: Store>(store: S) {
    import(&store, &[participant(10)]).await;
    let mut thief = participant(11);
    thief.card_number = participant(10).card_number;
    let mut kpj_thief = participant(12);
    kpj_thief.kpj_number = participant(10).kpj_number;
    let outcome = import(
        &store,
        &[participant(13), thief.clone(), kpj_thief, participant(14)],
    )
    .await;
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (2, 0, 0)
    );
    assert_eq!(
        outcome.conflicts,
        vec![
            RowConflict {
                position: 1,
                conflict: ParticipantConflict::CardNumberTaken
            },
            RowConflict {
                position: 2,
                conflict: ParticipantConflict::KpjNumberTaken
            },
        ]
    );
    assert!(
        store
            .find_participant(ParticipantKey::Nik(&thief.nik))
            .await
            .unwrap()
            .is_none()
    );
    let owner = store
        .find_participant(ParticipantKey::CardNumber(&thief.card_number))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.participant.nik, participant(10).nik);
    assert_eq!(store.count_participants().await.unwrap(), 3);
}

async fn counts_stay_exact_when_a_conflict_forces_the_row_by_row_retry<S: Store>(store: S) {
    let unchanged = participant(40);
    let mut changed = participant(41);
    import(&store, &[unchanged.clone(), changed.clone()]).await;
    changed.status = ParticipantStatus::Inactive;
    let mut thief = participant(42);
    thief.card_number = unchanged.card_number.clone();
    // Known-unchanged first, then new rows, an update, and a conflict last: the failed bulk statement
    // must leave no trace in the counts of the retry.
    let batch = [unchanged, participant(43), participant(44), changed, thief];
    let outcome = import(&store, &batch).await;
    assert_eq!(
        (
            outcome.inserted,
            outcome.updated,
            outcome.unchanged,
            outcome.conflicts.len()
        ),
        (2, 1, 1, 1),
        "{outcome:?}"
    );
    assert_eq!(outcome.conflicts[0].position, 4);
    assert_eq!(store.count_participants().await.unwrap(), 4);
}

async fn the_last_row_of_a_nik_in_a_batch_wins<S: Store>(store: S) {
    let first = participant(20);
    let mut second = first.clone();
    second.status = ParticipantStatus::Inactive;
    let outcome = import(&store, &[first.clone(), second.clone()]).await;
    assert_eq!((outcome.inserted, outcome.superseded), (1, 1));
    let found = store
        .find_participant(ParticipantKey::Nik(&first.nik))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.participant.status, ParticipantStatus::Inactive);
}

async fn an_uncommitted_import_leaves_the_registry_unchanged<S: Store>(store: S) {
    {
        let mut import = store.begin_participant_import().await.unwrap();
        import
            .upsert_batch(&[participant(30), participant(31)], now())
            .await
            .unwrap();
        // Dropped without commit, as when the process dies mid-import.
    }
    assert_eq!(store.count_participants().await.unwrap(), 0);
    import(&store, &[participant(30)]).await;
    assert_eq!(store.count_participants().await.unwrap(), 1);
}

async fn batches_larger_than_one_statement_are_counted_exactly<S: Store>(store: S) {
    let batch: Vec<_> = (0..1_234).map(participant).collect();
    let outcome = import(&store, &batch).await;
    assert_eq!(outcome.inserted, 1_234);
    assert_eq!(store.count_participants().await.unwrap(), 1_234);
    let last = store
        .find_participant(ParticipantKey::Nik(&batch[1_233].nik))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.participant, batch[1_233]);
}

async fn ping_answers_until_the_store_is_closed<S: Store>(store: S) {
    store.ping().await.unwrap();
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}

/// A TCP relay to `upstream` that, once `armed` is set, stops passing bytes both ways at the first
/// client message: a database that keeps its connections open and stops answering (whether the
/// pool's own check of a connection or the query is the first to meet it).
async fn freezing_relay(
    upstream: String,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u16 {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let directions = [
                (client_read, server_write, true),
                (server_read, client_write, false),
            ];
            for (mut from, mut to, from_client) in directions {
                let (armed, frozen) = (armed.clone(), frozen.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(read) = from.read(&mut buffer).await {
                        if read == 0 {
                            break;
                        }
                        // Anything the client sends once armed: a ping on a connection that
                        // already prepared `SELECT 1` sends no SQL text, only Bind/Execute.
                        if from_client && armed.load(Ordering::SeqCst) {
                            frozen.store(true, Ordering::SeqCst);
                        }
                        if frozen.load(Ordering::SeqCst) {
                            std::future::pending::<()>().await;
                        }
                        if to.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
    });
    port
}

/// Readiness must report a database that stops answering after the start, within the connect
/// timeout, instead of waiting on it for as long as TCP keeps the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gives_up_on_a_database_that_stops_answering() {
    let db = TestDatabase::create().await;
    let timeouts = gerbang_store::Timeouts {
        connect: std::time::Duration::from_millis(300),
        statement: std::time::Duration::from_millis(300),
    };
    // A guard against hanging, not a measurement: the pings must end long before it.
    let guard = std::time::Duration::from_secs(30);
    let answer = match db.backend() {
        Backend::Sqlite => {
            // A local file cannot stop answering; what can is the pool, all of whose connections
            // are taken (here by an import holding the only one).
            let store = SqliteStore::open_with(
                &db.data_dir().join("gerbang.sqlite"),
                gerbang_testkit::test_sealer(),
                1,
                timeouts,
            )
            .await
            .unwrap();
            store.ping().await.unwrap();
            let _import = gerbang_store::ParticipantStore::begin_participant_import(&store)
                .await
                .unwrap();
            tokio::time::timeout(guard, store.ping()).await
        }
        Backend::Postgres(_) => {
            let mut url = url::Url::parse(&db.url()).unwrap();
            let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
            let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let port = freezing_relay(upstream, frozen.clone()).await;
            url.set_host(Some("127.0.0.1")).unwrap();
            url.set_port(Some(port)).unwrap();
            let store =
                PostgresStore::open_with(url.as_str(), gerbang_testkit::test_sealer(), 2, timeouts)
                    .await
                    .unwrap();
            store.ping().await.unwrap();
            frozen.store(true, std::sync::atomic::Ordering::SeqCst);
            tokio::time::timeout(guard, store.ping()).await
        }
    };
    match answer {
        Ok(Err(StoreError::Unavailable(reason))) => {
            assert!(
                reason.contains("storage.connect_timeout_ms") || reason.contains("timed out"),
                "{reason}"
            )
        }
        Ok(other) => panic!("expected the database to be unavailable, got {other:?}"),
        Err(_) => panic!("ping still waiting after {guard:?} on a database that stopped answering"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_sealed_with_one_key_refuses_another() {
    let db = TestDatabase::create().await;
    let other = Sealer::new(&PersonalDataKey::generate()).unwrap();
    let refused = match db.backend() {
        Backend::Sqlite => {
            db.sqlite_store().await;
            SqliteStore::open(&db.data_dir().join("gerbang.sqlite"), other, 1)
                .await
                .map(|_| ())
        }
        Backend::Postgres(_) => {
            db.postgres_store().await;
            PostgresStore::open(&db.url(), other, 1).await.map(|_| ())
        }
    };
    match refused {
        Err(StoreError::KeyMismatch { configured, stored }) => assert_ne!(configured, stored),
        other => panic!("expected a key mismatch, got {other:?}"),
    }
}

fn verification(nik: Option<Nik>, at: DateTime<Utc>) -> Verification {
    gerbang_testkit::pending_verification(nik, at)
}

async fn save<S: Store>(store: &S, verification: Verification, messages: Vec<OutboxMessage>) {
    store
        .transact(None, vec![], move |_| {
            (
                Changes {
                    verification: Some(verification),
                    rates: vec![],
                    messages,
                    withdrawn: vec![],
                },
                (),
            )
        })
        .await
        .unwrap();
}

fn ids(verifications: &[Verification]) -> Vec<VerificationId> {
    verifications.iter().map(|v| v.id).collect()
}

async fn verifications_are_found_by_nik_newest_first_up_to_the_limit<S: Store>(store: S) {
    let (mine, theirs) = (participant(1).nik, participant(2).nik);
    let oldest = verification(Some(mine.clone()), now());
    let middle = verification(Some(mine.clone()), now() + Duration::minutes(1));
    let newest = verification(Some(mine.clone()), now() + Duration::minutes(2));
    let other = verification(Some(theirs.clone()), now() + Duration::minutes(1));
    // Named only by account: the calling service gave no NIK.
    let anonymous = verification(None, now() + Duration::minutes(3));
    for v in [&middle, &anonymous, &newest, &other, &oldest] {
        save(&store, v.clone(), vec![]).await;
    }
    let found = store.verifications_for_nik(&mine, 20).await.unwrap();
    assert_eq!(ids(&found), vec![newest.id, middle.id, oldest.id]);
    assert_eq!(found[0], newest, "the stored verification comes back whole");
    assert_eq!(
        ids(&store.verifications_for_nik(&mine, 2).await.unwrap()),
        vec![newest.id, middle.id]
    );
    assert_eq!(
        ids(&store.verifications_for_nik(&theirs, 20).await.unwrap()),
        vec![other.id]
    );
    assert!(
        store
            .verifications_for_nik(&participant(3).nik, 20)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.verification(anonymous.id).await.unwrap().is_some());
}

async fn a_handed_off_verification_is_still_found_by_nik_and_its_trail_names_the_provider_s_id<
    S: Store,
>(
    store: S,
) {
    let nik = participant(5).nik;
    let started = verification(Some(nik.clone()), now());
    let message = OutboxMessage {
        verification: started.id,
        send_index: 0,
        channel: Channel::Sms,
        destination: started.sends[0].destination.clone(),
        text: "Kode 123456".into(),
        content: None,
        queued_at: now(),
        expires_at: now() + Duration::minutes(10),
        priority: Priority::Otp,
    };
    save(&store, started.clone(), vec![message]).await;
    let claimed = store
        .claim_messages(10, now(), Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let handed_off_at = now() + Duration::seconds(2);
    let outcome = MessageOutcome::HandedOff {
        provider: "smpp:second".into(),
        at: handed_off_at,
        message_id: Some("00AB12".into()),
        status: DeliveryStatus::Submitted,
        failures: vec![FailedTry {
            provider: "smpp:first".into(),
            at: now() + Duration::seconds(1),
            cause: Cause::ProviderThrottled,
            detail: "command_status 0x58".into(),
        }],
    };
    store
        .finish_messages(vec![(claimed[0].clone(), outcome)])
        .await
        .unwrap();

    // Rewriting the row (the hand-off starts the code's lifetime) keeps it findable.
    let found = store.verifications_for_nik(&nik, 20).await.unwrap();
    assert_eq!(ids(&found), vec![started.id]);
    assert_eq!(found[0].sends[0].handed_off_at, Some(handed_off_at));
    let trail = store.delivery_trail(started.id).await.unwrap();
    let seen: Vec<_> = trail
        .iter()
        .map(|a| {
            (
                a.provider.as_str(),
                a.provider_message_id.as_deref(),
                a.status,
                a.cause,
                a.detail.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "smpp:first",
                None,
                DeliveryStatus::Failed,
                Some(Cause::ProviderThrottled),
                Some("command_status 0x58"),
            ),
            (
                "smpp:second",
                Some("ab12"),
                DeliveryStatus::Submitted,
                None,
                None
            ),
        ]
    );
}

async fn verifications_written_together_in_one_batch_are_each_found_by_their_nik<S: Store>(
    store: S,
) {
    // More than one multi-row statement's worth (400 on SQLite), sent at once so that SQLite's
    // writer commits many of them in one batch.
    let niks = [participant(6).nik, participant(7).nik];
    let written: Vec<Verification> = (0..450)
        .map(|i| {
            let nik = (i % 3 < 2).then(|| niks[i % 3].clone());
            verification(nik, now() + Duration::milliseconds(i as i64))
        })
        .collect();
    let tasks: Vec<_> = written
        .iter()
        .cloned()
        .map(|v| {
            let store = store.clone();
            tokio::spawn(async move { save(&store, v, vec![]).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for (index, nik) in niks.iter().enumerate() {
        let mut expected: Vec<VerificationId> = written
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == index)
            .map(|(_, v)| v.id)
            .collect();
        expected.reverse();
        assert_eq!(expected.len(), 150);
        assert_eq!(
            ids(&store.verifications_for_nik(nik, 1000).await.unwrap()),
            expected
        );
    }
}
