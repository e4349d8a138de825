//! A first load (an import into an empty registry) on the backend under test (see gerbang-testkit):
//! rows appended without lookup indexes, the indexes built at the commit, and every conflict the
//! unique indexes would have refused row by row settled then — with the same registry and the same
//! refused lines as an import into a registry that already holds someone. And how an import finds
//! the rows it need not write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use gerbang_domain::{JknCardNumber, KpjNumber, Participant, ParticipantStatus, PersonName};
use gerbang_store::{
    BatchOutcome, DigestedParticipant, ParticipantConflict, ParticipantImport, ParticipantKey,
    RowConflict, SealedParticipant, Store,
};
use gerbang_testkit::{Backend, TestDatabase, participant, store_test};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

store_test!(
    a_first_load_reports_numbers_an_earlier_nik_holds_by_line_at_the_commit,
    a_first_load_keeps_the_last_row_of_a_nik_repeated_across_batches,
    an_abandoned_first_load_leaves_the_registry_empty_and_indexed,
    after_a_first_load_the_next_import_upserts_and_refuses_as_before,
    a_re_import_updates_changed_records_and_moves_changed_numbers,
    two_imports_into_an_empty_registry_both_load,
    an_import_finds_the_rows_the_registry_holds_unchanged,
    an_import_finds_the_changed_rows_of_a_batch_longer_than_one_query,
);

/// Loads `batches` in one import, numbering rows as the lines of a file (the header is line 1).
async fn load<S: Store>(store: &S, batches: &[Vec<Participant>]) -> BatchOutcome {
    let mut import = store.begin_participant_import().await.unwrap();
    let mut outcome = BatchOutcome::default();
    let mut line = 1;
    for batch in batches {
        let lines: Vec<u64> = batch
            .iter()
            .map(|_| {
                line += 1;
                line
            })
            .collect();
        let (rows, superseded) =
            SealedParticipant::seal_batch(batch, &lines, import.sealer()).unwrap();
        outcome.absorb(import.upsert_sealed(rows, superseded, now()).await.unwrap());
    }
    outcome.settle(import.commit().await.unwrap());
    outcome
}

async fn find<S: Store>(store: &S, key: ParticipantKey<'_>) -> Option<Participant> {
    store
        .find_participant(key)
        .await
        .unwrap()
        .map(|found| found.participant)
}

fn conflict(position: u64, conflict: ParticipantConflict) -> RowConflict {
    RowConflict { position, conflict }
}

async fn a_first_load_reports_numbers_an_earlier_nik_holds_by_line_at_the_commit<S: Store>(
    store: S,
) {
    let mut card_thief = participant(11);
    card_thief.card_number = participant(10).card_number;
    let mut kpj_thief = participant(12);
    kpj_thief.kpj_number = participant(10).kpj_number;
    let mut late_thief = participant(15);
    late_thief.card_number = participant(13).card_number;
    let outcome = load(
        &store,
        &[
            vec![
                participant(10),
                card_thief.clone(),
                kpj_thief,
                participant(13),
            ],
            vec![participant(14), late_thief.clone()],
        ],
    )
    .await;
    assert_eq!(
        outcome.conflicts,
        vec![
            conflict(3, ParticipantConflict::CardNumberTaken),
            conflict(4, ParticipantConflict::KpjNumberTaken),
            conflict(7, ParticipantConflict::CardNumberTaken),
        ]
    );
    assert_eq!((outcome.inserted, outcome.superseded), (3, 0));
    assert_eq!(store.count_participants().await.unwrap(), 3);
    assert_eq!(
        find(&store, ParticipantKey::Nik(&card_thief.nik)).await,
        None
    );
    assert_eq!(
        find(&store, ParticipantKey::Nik(&late_thief.nik)).await,
        None
    );
    let owner = find(&store, ParticipantKey::CardNumber(&card_thief.card_number))
        .await
        .unwrap();
    assert_eq!(owner, participant(10));
    let kpj = participant(10).kpj_number.unwrap();
    assert_eq!(
        find(&store, ParticipantKey::KpjNumber(&kpj)).await,
        Some(participant(10))
    );
}

async fn a_first_load_keeps_the_last_row_of_a_nik_repeated_across_batches<S: Store>(store: S) {
    let mut moved = participant(20);
    moved.status = ParticipantStatus::Inactive;
    moved.card_number = JknCardNumber::parse("0001111111111").unwrap();
    moved.kpj_number = None;
    // The card participant 20 gave up on line 5 is free for participant 21 on line 6.
    let mut heir = participant(21);
    heir.card_number = participant(20).card_number;
    let outcome = load(
        &store,
        &[
            vec![participant(20), participant(22), participant(20)],
            vec![moved.clone(), heir.clone()],
        ],
    )
    .await;
    assert!(outcome.conflicts.is_empty(), "{outcome:?}");
    assert_eq!(
        (outcome.inserted, outcome.superseded),
        (3, 2),
        "{outcome:?}"
    );
    assert_eq!(
        find(&store, ParticipantKey::Nik(&moved.nik)).await,
        Some(moved.clone())
    );
    assert_eq!(
        find(&store, ParticipantKey::CardNumber(&heir.card_number)).await,
        Some(heir)
    );
    assert_eq!(
        find(
            &store,
            ParticipantKey::KpjNumber(&participant(20).kpj_number.unwrap())
        )
        .await,
        None
    );
    assert_eq!(store.count_participants().await.unwrap(), 3);
}

async fn an_abandoned_first_load_leaves_the_registry_empty_and_indexed<S: Store>(store: S) {
    {
        let mut import = store.begin_participant_import().await.unwrap();
        import
            .upsert_batch(&[participant(30), participant(31)], now())
            .await
            .unwrap();
        // Dropped without commit, as when the process dies mid-load.
    }
    assert_eq!(store.count_participants().await.unwrap(), 0);
    // The unique indexes came back with the rollback: a second NIK on a card is still refused.
    load(&store, &[vec![participant(30)]]).await;
    let mut thief = participant(32);
    thief.card_number = participant(30).card_number;
    let outcome = load(&store, &[vec![thief]]).await;
    assert_eq!(
        outcome.conflicts,
        vec![conflict(2, ParticipantConflict::CardNumberTaken)]
    );
}

async fn after_a_first_load_the_next_import_upserts_and_refuses_as_before<S: Store>(store: S) {
    let first: Vec<_> = (0..300).map(participant).collect();
    let outcome = load(&store, std::slice::from_ref(&first)).await;
    assert_eq!(outcome.inserted, 300);
    let mut changed = participant(7);
    changed.status = ParticipantStatus::Inactive;
    let mut thief = participant(400);
    thief.kpj_number = participant(8).kpj_number;
    let outcome = load(
        &store,
        &[vec![
            participant(6),
            changed.clone(),
            thief,
            participant(401),
        ]],
    )
    .await;
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (1, 1, 1)
    );
    assert_eq!(
        outcome.conflicts,
        vec![conflict(4, ParticipantConflict::KpjNumberTaken)]
    );
    assert_eq!(
        find(&store, ParticipantKey::Nik(&changed.nik)).await,
        Some(changed)
    );
    // Ids drawn after the first load's own do not collide with them.
    assert_eq!(store.count_participants().await.unwrap(), 301);
    let newest = store
        .find_participant(ParticipantKey::Nik(&participant(401).nik))
        .await
        .unwrap()
        .unwrap();
    assert!(newest.id > 300, "{}", newest.id);
}

/// A changed record is updated whether its numbers stay or move (the new number finds it, the old
/// one no longer does), and a row claiming another NIK's card is still refused in the same batch.
async fn a_re_import_updates_changed_records_and_moves_changed_numbers<S: Store>(store: S) {
    load(&store, &[(0..50).map(participant).collect()]).await;
    let mut flipped = participant(7);
    flipped.status = ParticipantStatus::Inactive;
    let mut moved = participant(9);
    moved.kpj_number = participant(900).kpj_number;
    let mut dropped = participant(11);
    dropped.status = ParticipantStatus::Inactive;
    dropped.kpj_number = None;
    let mut thief = participant(12);
    thief.card_number = participant(13).card_number;
    let mut newcomer = participant(61);
    newcomer.kpj_number = participant(14).kpj_number;
    let outcome = load(
        &store,
        &[vec![
            participant(6),
            flipped.clone(),
            moved.clone(),
            dropped.clone(),
            thief,
            participant(60),
            newcomer.clone(),
        ]],
    )
    .await;
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (1, 3, 1)
    );
    assert_eq!(
        outcome.conflicts,
        vec![
            conflict(6, ParticipantConflict::CardNumberTaken),
            conflict(8, ParticipantConflict::KpjNumberTaken)
        ]
    );
    assert_eq!(find(&store, ParticipantKey::Nik(&newcomer.nik)).await, None);
    let by_kpj = |p: &Participant| p.kpj_number.clone().unwrap();
    assert_eq!(
        find(&store, ParticipantKey::CardNumber(&flipped.card_number)).await,
        Some(flipped.clone())
    );
    assert_eq!(
        find(&store, ParticipantKey::KpjNumber(&by_kpj(&flipped))).await,
        Some(flipped)
    );
    assert_eq!(
        find(&store, ParticipantKey::KpjNumber(&by_kpj(&moved))).await,
        Some(moved)
    );
    assert_eq!(
        find(&store, ParticipantKey::KpjNumber(&by_kpj(&participant(9)))).await,
        None
    );
    assert_eq!(
        find(&store, ParticipantKey::KpjNumber(&by_kpj(&participant(11)))).await,
        None
    );
    assert_eq!(
        find(&store, ParticipantKey::Nik(&dropped.nik)).await,
        Some(dropped)
    );
    assert_eq!(
        find(&store, ParticipantKey::Nik(&participant(12).nik)).await,
        Some(participant(12))
    );
    assert_eq!(store.count_participants().await.unwrap(), 51);
}

/// Two imports that both find the registry empty: one becomes the first load, the other waits for
/// it and then loads row by row (on PostgreSQL, neither may hold a lock the other needs).
async fn two_imports_into_an_empty_registry_both_load<S: Store>(store: S) {
    let one: Vec<_> = (0..200).map(participant).collect();
    let other: Vec<_> = (200..400).map(participant).collect();
    let (a, b) = tokio::join!(load(&store, std::slice::from_ref(&one)), async {
        tokio::task::yield_now().await;
        load(&store, std::slice::from_ref(&other)).await
    });
    assert_eq!((a.inserted, b.inserted), (200, 200));
    assert_eq!(store.count_participants().await.unwrap(), 400);
    for p in [&one[7], &other[7]] {
        assert_eq!(
            find(&store, ParticipantKey::CardNumber(&p.card_number))
                .await
                .as_ref(),
            Some(p)
        );
    }
}

/// A small generator, so the file below is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A file where NIKs repeat, move between cards and KPJ numbers, and many numbers are claimed by
/// several NIKs: 3 batches of 200 rows over 120 NIKs, 90 cards and 70 KPJ numbers.
fn contested_file() -> Vec<Vec<Participant>> {
    let mut pick = Lcg(7);
    (0..3)
        .map(|_| {
            (0..200)
                .map(|_| {
                    let mut row = participant(pick.below(120) as u32);
                    row.card_number =
                        JknCardNumber::parse(&format!("0009{:09}", pick.below(90))).unwrap();
                    row.kpj_number = match pick.below(4) {
                        0 => None,
                        _ => Some(
                            KpjNumber::parse(&format!("{:011}", 20_000_000_000 + pick.below(70)))
                                .unwrap(),
                        ),
                    };
                    if pick.below(3) == 0 {
                        row.status = ParticipantStatus::Inactive;
                    }
                    row
                })
                .collect()
        })
        .collect()
}

/// What a load leaves: every NIK's record and the refused lines.
/// Digests rows as an import does before asking which the registry holds.
fn digested<I: ParticipantImport>(import: &I, rows: Vec<Participant>) -> Vec<DigestedParticipant> {
    let positions: Vec<u64> = (0..rows.len() as u64).collect();
    DigestedParticipant::digest_batch(rows, &positions, import.sealer())
        .unwrap()
        .0
}

/// Seals digested rows and writes them in `import`.
async fn write<I: ParticipantImport>(import: &mut I, rows: &[DigestedParticipant]) {
    let sealed = rows
        .iter()
        .map(|row| row.clone().seal(import.sealer()))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    import.upsert_sealed(sealed, 0, now()).await.unwrap();
}

/// An import asks which rows the registry holds exactly, to seal and write only the others: none
/// in a first load; after it, the same record of a known NIK but not a changed record or an
/// unknown NIK; and an import sees what it has written itself.
async fn an_import_finds_the_rows_the_registry_holds_unchanged<S: Store>(store: S) {
    let mut first = store.begin_participant_import().await.unwrap();
    let rows = digested(&first, vec![participant(1), participant(2)]);
    assert_eq!(first.find_unchanged(&rows).await.unwrap(), [false, false]);
    write(&mut first, &rows).await;
    let again = digested(&first, vec![participant(1)]);
    assert_eq!(first.find_unchanged(&again).await.unwrap(), [false]);
    first.commit().await.unwrap();

    let mut renamed = participant(2);
    renamed.full_name = PersonName::parse("Siti Rahayu Baru").unwrap();
    let mut next = store.begin_participant_import().await.unwrap();
    let asked = digested(&next, vec![participant(1), renamed.clone(), participant(3)]);
    assert_eq!(
        next.find_unchanged(&asked).await.unwrap(),
        [true, false, false]
    );
    write(&mut next, &asked[1..]).await;
    let asked = digested(&next, vec![renamed, participant(3)]);
    assert_eq!(next.find_unchanged(&asked).await.unwrap(), [true, true]);
    let before = digested(&next, vec![participant(2)]);
    assert_eq!(next.find_unchanged(&before).await.unwrap(), [false]);
    next.commit().await.unwrap();
}

/// The rows a batch asks about are compared in several queries when there are many (SQLite: 5,000
/// a query); a changed row is found wherever it stands in the batch.
async fn an_import_finds_the_changed_rows_of_a_batch_longer_than_one_query<S: Store>(store: S) {
    let registry: Vec<Participant> = (0..5_003).map(participant).collect();
    load(&store, std::slice::from_ref(&registry)).await;
    let mut batch = registry;
    let changed = [2, 4_999, 5_000, 5_002];
    for &n in &changed {
        batch[n].full_name = PersonName::parse("Siti Rahayu Baru").unwrap();
    }
    batch.push(participant(6_000));
    let mut import = store.begin_participant_import().await.unwrap();
    let asked = digested(&import, batch);
    let unchanged = import.find_unchanged(&asked).await.unwrap();
    let differing: Vec<usize> = (0..unchanged.len()).filter(|&i| !unchanged[i]).collect();
    assert_eq!(differing, [2, 4_999, 5_000, 5_002, 5_003]);
    import.commit().await.unwrap();
}

async fn result_of<S: Store>(
    store: S,
    seed: Option<Participant>,
) -> (BTreeMap<u32, Option<Participant>>, Vec<RowConflict>) {
    if let Some(seed) = seed {
        load(&store, &[vec![seed]]).await;
    }
    let outcome = load(&store, &contested_file()).await;
    let mut registry = BTreeMap::new();
    for n in 0..120 {
        let nik = participant(n).nik;
        registry.insert(n, find(&store, ParticipantKey::Nik(&nik)).await);
    }
    let mut conflicts = outcome.conflicts;
    conflicts.sort_by_key(|c| c.position);
    (registry, conflicts)
}

async fn load_into_a_fresh_database(
    seed: Option<Participant>,
) -> (BTreeMap<u32, Option<Participant>>, Vec<RowConflict>) {
    let db = TestDatabase::create().await;
    match db.backend() {
        Backend::Sqlite => result_of(db.sqlite_store().await, seed).await,
        Backend::Postgres(_) => result_of(db.postgres_store().await, seed).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_ends_as_loading_row_by_row_would() {
    let first_load = load_into_a_fresh_database(None).await;
    // One unrelated participant already there: the same file then loads row by row.
    let row_by_row = load_into_a_fresh_database(Some(participant(5_000))).await;
    let refused = first_load.1.len();
    let kept = first_load.0.values().filter(|p| p.is_some()).count();
    assert!(
        refused > 20 && kept > 30,
        "the file must contest numbers and still load many NIKs: {refused} refused, {kept} kept"
    );
    assert_eq!(first_load.0, row_by_row.0, "the registries differ");
    // The same lines are refused. Which number a row is refused for when both its card and its KPJ
    // number are taken is the order a database checks its unique indexes in (SQLite names the KPJ
    // number, the first load the card), so the reasons are compared where only one was taken, in
    // the tests above.
    let lines =
        |conflicts: &[RowConflict]| conflicts.iter().map(|c| c.position).collect::<Vec<_>>();
    assert_eq!(
        lines(&first_load.1),
        lines(&row_by_row.1),
        "the refused lines differ"
    );
}

/// A sealed batch comes back in batch order, each row with its own position, and only the last row
/// of a repeated NIK.
#[test]
fn a_large_batch_is_sealed_in_order_keeping_the_last_row_of_each_nik() {
    let sealer = gerbang_testkit::test_sealer();
    let mut batch: Vec<_> = (0..2_500).map(participant).collect();
    let mut later = participant(10);
    later.status = ParticipantStatus::Inactive;
    batch[2_400] = later;
    let positions: Vec<u64> = (0..batch.len() as u64).map(|i| i * 2 + 2).collect();
    let (rows, superseded) = SealedParticipant::seal_batch(&batch, &positions, &sealer).unwrap();
    assert_eq!((rows.len(), superseded), (2_499, 1));
    assert!(
        rows.windows(2)
            .all(|pair| pair[0].position < pair[1].position)
    );
    assert!(
        !rows.iter().any(|row| row.position == 22),
        "row 10 was superseded"
    );
    for row in &rows {
        let opened =
            gerbang_store::participants::open_participant(&row.sealed, &row.nik_digest, &sealer)
                .unwrap();
        assert_eq!(opened, batch[(row.position as usize - 2) / 2]);
    }
}
