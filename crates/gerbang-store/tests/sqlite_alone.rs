//! An import that has the SQLite file to itself (`SqliteStore::open_alone`, what
//! `gerbang participants import` opens): it writes through a rollback journal instead of the
//! write-ahead log and puts the file back in WAL mode when it commits; with another connection on
//! the file it stays in WAL mode; abandoned, it leaves nothing. SQLite only, whatever the backend
//! under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use gerbang_domain::Participant;
use gerbang_store::{
    ParticipantImport, ParticipantKey, ParticipantStore, SealedParticipant, Store, Timeouts,
};
use gerbang_store_sqlite::SqliteStore;
use gerbang_testkit::{participant, test_sealer};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

fn journal(file: &Path) -> PathBuf {
    file.with_file_name("gerbang.sqlite-journal")
}

/// The journal mode the file's header records: 2 is WAL, 1 a rollback journal (bytes 18 and 19).
fn header_mode(file: &Path) -> (u8, u8) {
    let bytes = std::fs::read(file).unwrap();
    (bytes[18], bytes[19])
}

async fn write_batch<I: ParticipantImport>(import: &mut I, batch: &[Participant]) {
    let lines: Vec<u64> = (2..2 + batch.len() as u64).collect();
    let (rows, superseded) = SealedParticipant::seal_batch(batch, &lines, import.sealer()).unwrap();
    import.upsert_sealed(rows, superseded, now()).await.unwrap();
}

async fn count(file: &Path) -> u64 {
    let store = SqliteStore::open(file, test_sealer(), 2).await.unwrap();
    let count = store.count_participants().await.unwrap();
    store.close().await;
    count
}

fn people(range: std::ops::Range<u32>) -> Vec<Participant> {
    range.map(participant).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_alone_writes_through_a_rollback_journal_and_leaves_the_file_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gerbang.sqlite");
    let store = SqliteStore::open_alone(&file, test_sealer(), Timeouts::default())
        .await
        .unwrap();
    assert_eq!(header_mode(&file), (2, 2), "a new file starts in WAL mode");

    // A first load writes through a rollback journal; a re-import with changes through the WAL.
    for (round, batch) in [people(0..300), people(200..500)].into_iter().enumerate() {
        let first_load = round == 0;
        let mut import = store.begin_participant_import().await.unwrap();
        assert_eq!(import.is_first_load(), first_load);
        write_batch(&mut import, &batch).await;
        assert_eq!(
            journal(&file).exists(),
            first_load,
            "round {round}: only a first load writes through a rollback journal"
        );
        let mode = if first_load { (1, 1) } else { (2, 2) };
        assert_eq!(header_mode(&file), mode, "round {round}");
        import.commit().await.unwrap();
        assert!(
            !journal(&file).exists(),
            "round {round}: the journal is gone"
        );
        assert_eq!(header_mode(&file), (2, 2), "round {round}: in WAL mode");
    }
    let nik = participant(499).nik;
    let found = store
        .find_participant(ParticipantKey::Nik(&nik))
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.participant), Some(participant(499)));
    store.close().await;
    assert_eq!(count(&file).await, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_alone_stays_in_wal_mode_while_gerbang_serves_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gerbang.sqlite");
    let serving = SqliteStore::open(&file, test_sealer(), 4).await.unwrap();
    let store = SqliteStore::open_alone(&file, test_sealer(), Timeouts::default())
        .await
        .unwrap();
    let mut import = store.begin_participant_import().await.unwrap();
    write_batch(&mut import, &people(0..300)).await;
    assert!(
        !journal(&file).exists(),
        "no rollback journal beside a serving gerbang"
    );
    // The serving store still reads (the empty registry of its snapshot) during the import.
    assert_eq!(serving.count_participants().await.unwrap(), 0);
    import.commit().await.unwrap();
    assert_eq!(header_mode(&file), (2, 2));
    assert_eq!(serving.count_participants().await.unwrap(), 300);
    store.close().await;
    serving.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_import_alone_leaves_the_registry_as_it_was_and_the_file_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gerbang.sqlite");
    let store = SqliteStore::open_alone(&file, test_sealer(), Timeouts::default())
        .await
        .unwrap();
    let mut import = store.begin_participant_import().await.unwrap();
    write_batch(&mut import, &people(0..300)).await;
    assert!(journal(&file).exists());
    drop(import);
    store.close().await;
    // The next open rolls nothing forward and sets WAL mode again.
    assert_eq!(count(&file).await, 0);
    assert_eq!(header_mode(&file), (2, 2));
    assert!(!journal(&file).exists());

    // And a load after it is a first load with its indexes built.
    let store = SqliteStore::open_alone(&file, test_sealer(), Timeouts::default())
        .await
        .unwrap();
    let mut import = store.begin_participant_import().await.unwrap();
    assert!(import.is_first_load());
    write_batch(&mut import, &people(0..10)).await;
    import.commit().await.unwrap();
    let card = participant(7).card_number;
    let found = store
        .find_participant(ParticipantKey::CardNumber(&card))
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.participant), Some(participant(7)));
    store.close().await;
}
