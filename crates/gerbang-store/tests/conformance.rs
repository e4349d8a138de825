//! The storage conformance suite: behaviour every backend must show, written once against the
//! traits. It runs on the backend named by `GERBANG_TEST_DATABASE` (see gerbang-testkit).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use gerbang_domain::{JknCardNumber, ParticipantStatus};
use gerbang_store::{
    ParticipantConflict, ParticipantImport, ParticipantKey, PersonalDataKey, RowConflict, Sealer,
    Store, StoreError,
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
);

async fn import<S: Store>(
    store: &S,
    batch: &[gerbang_domain::Participant],
) -> gerbang_store::BatchOutcome {
    let mut import = store.begin_participant_import().await.unwrap();
    let outcome = import.upsert_batch(batch, now()).await.unwrap();
    import.commit().await.unwrap();
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
                index: 1,
                conflict: ParticipantConflict::CardNumberTaken
            },
            RowConflict {
                index: 2,
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
    assert_eq!(outcome.conflicts[0].index, 4);
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
