//! Rotation of the personal-data key on the backend under test (see gerbang-testkit): every
//! sealed table is re-sealed while the store is written to, both keys read meanwhile, and the old
//! key is refused afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use gerbang_domain::account::Account;
use gerbang_domain::approval::{DocumentKind, FourEyes, IdentityCheck};
use gerbang_domain::staff::{Role, StaffMember, StaffName, TotpSecret};
use gerbang_domain::verification::{Channel, Destination, Verification};
use gerbang_domain::{MobileNumber, Nik};
use gerbang_store::audit::{AuditChain, Verdict, walk};
use gerbang_store::rotation::{close, reseal_all};
use gerbang_store::{
    AccountEvent, AccountKey, Changes, ContactChangeRequest, OutboxMessage, ParticipantImport,
    ParticipantKey, PersonalDataKey, Priority, RequestDetails, SealedTable, Sealer, StaffKey,
    Store, StoreError, StoredFlow, TicketNote,
};
use gerbang_store_postgres::PostgresStore;
use gerbang_store_sqlite::SqliteStore;
use gerbang_testkit::{Backend, TestDatabase, participant, test_sealer};

const PARTICIPANTS: u32 = 1_250;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

fn new_key() -> PersonalDataKey {
    PersonalDataKey::from_base64("bmV3LWtleS1mb3ItdGhlLXJvdGF0aW9uLXRlc3QtMDE=").unwrap()
}

fn old_key() -> PersonalDataKey {
    PersonalDataKey::from_base64(gerbang_testkit::TEST_KEY).unwrap()
}

fn account(n: u32) -> Account {
    gerbang_testkit::account(n, now())
}

fn verification(nik: Nik) -> Verification {
    gerbang_testkit::pending_verification(Some(nik), now())
}

async fn save_verification<S: Store>(store: &S, verification: Verification) {
    let message = OutboxMessage {
        verification: verification.id,
        send_index: 0,
        channel: Channel::Sms,
        destination: verification.sends[0].destination.clone(),
        text: "<#> Kode BPJS Anda 123456".into(),
        content: None,
        queued_at: now(),
        expires_at: now() + Duration::minutes(10),
        priority: Priority::Otp,
    };
    store
        .transact(None, vec![], move |_| {
            (
                Changes {
                    verification: Some(verification),
                    rates: vec![],
                    messages: vec![message],
                    withdrawn: vec![],
                },
                (),
            )
        })
        .await
        .unwrap();
}

fn staff_member() -> StaffMember {
    StaffMember {
        name: StaffName::parse("siti.cs").unwrap(),
        role: Role::Agent,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        totp: TotpSecret::generate(),
        last_totp_step: None,
        failures: 0,
        locked_until: None,
        disabled_at: None,
        created_at: now(),
    }
}

/// Everything written under the old key, to be found again after the rotation.
struct Written {
    account_ids: Vec<i64>,
    verification: Verification,
    flow: StoredFlow,
    staff: StaffMember,
    request_number: String,
}

async fn fill<S: Store>(store: &S) -> Written {
    let people: Vec<_> = (0..PARTICIPANTS).map(participant).collect();
    let mut import = store.begin_participant_import().await.unwrap();
    import.upsert_batch(&people, now()).await.unwrap();
    import.commit().await.unwrap();
    let mut account_ids = Vec::new();
    for n in 0..3 {
        let created = store
            .create_account(
                &account(n),
                vec![AccountEvent::new(now(), "registered", "")],
            )
            .await
            .unwrap()
            .unwrap();
        account_ids.push(created.id);
    }
    let verification = verification(participant(0).nik);
    save_verification(store, verification.clone()).await;
    let flow = StoredFlow {
        token: [7; 32],
        state: b"{\"registration\":1}".to_vec(),
        expires_at: now() + Duration::minutes(30),
    };
    store.put_flow(&flow).await.unwrap();
    let staff = staff_member();
    store.create_staff(&staff, vec![]).await.unwrap().unwrap();
    let ticket = store
        .open_ticket(
            "T-1234-5678",
            Some(account_ids[0]),
            "siti.cs",
            now(),
            "OTP tidak masuk ke nomor 0812",
            vec![],
        )
        .await
        .unwrap()
        .unwrap();
    let note = TicketNote {
        at: now(),
        by: "siti.cs".into(),
        text: "Peserta sudah ganti nomor".into(),
    };
    store
        .add_ticket_note(ticket.id, &note, vec![], vec![])
        .await
        .unwrap();
    let request = ContactChangeRequest {
        id: 0,
        number: "R-1234-5678".into(),
        account: account_ids[0],
        ticket: "T-1234-5678".into(),
        details: RequestDetails {
            to: Destination::Phone(MobileNumber::parse("081298765432").unwrap()),
            identity: IdentityCheck {
                document: DocumentKind::Ktp,
                number: participant(0).nik.as_str().to_owned(),
            },
            reason: "nomor lama hilang".into(),
        },
        rules: FourEyes::new("siti.cs", now(), Duration::days(3)),
        verification: None,
    };
    store
        .insert_request(&request, vec![])
        .await
        .unwrap()
        .unwrap();
    Written {
        account_ids,
        verification,
        flow,
        staff,
        request_number: request.number,
    }
}

/// Checks that everything `fill` wrote reads back whole through `store`.
async fn reads_back<S: Store>(store: &S, written: &Written) {
    for n in [0, 1, PARTICIPANTS / 2, PARTICIPANTS - 1] {
        let p = participant(n);
        for key in [
            ParticipantKey::Nik(&p.nik),
            ParticipantKey::CardNumber(&p.card_number),
            ParticipantKey::KpjNumber(p.kpj_number.as_ref().unwrap()),
        ] {
            let found = store.find_participant(key).await.unwrap();
            assert_eq!(found.map(|s| s.participant), Some(p.clone()), "{key:?}");
        }
    }
    for (n, id) in written.account_ids.iter().enumerate() {
        let a = account(n as u32);
        for key in [
            AccountKey::Id(*id),
            AccountKey::Nik(&a.nik),
            AccountKey::Email(a.email.as_ref().unwrap()),
            AccountKey::Phone(a.phone.as_ref().unwrap()),
        ] {
            let found = store.find_account(key).await.unwrap().unwrap();
            assert_eq!(found.account, a, "{key:?}");
        }
    }
    let v = &written.verification;
    assert_eq!(store.verification(v.id).await.unwrap().as_ref(), Some(v));
    let trail = store
        .verifications_for_nik(v.nik.as_ref().unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(trail.iter().map(|t| t.id).collect::<Vec<_>>(), vec![v.id]);
    assert_eq!(
        store.find_flow(&written.flow.token, now()).await.unwrap(),
        Some(written.flow.clone())
    );
    let staff = store
        .find_staff(StaffKey::Name(&written.staff.name))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(staff.member, written.staff);
    let ticket = store.find_ticket("T-1234-5678").await.unwrap().unwrap();
    assert_eq!(ticket.subject, "OTP tidak masuk ke nomor 0812");
    let (notes, _) = store.ticket_notes(ticket.id).await.unwrap();
    assert_eq!(notes[0].text, "Peserta sudah ganti nomor");
    let request = store
        .find_request(&written.request_number)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.details.reason, "nomor lama hilang");
}

async fn rotation<S, F, Fut>(open: F)
where
    S: Store,
    F: Fn(Sealer) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let old = test_sealer();
    let rotating = Sealer::rotating(&new_key(), &old_key()).unwrap();
    let new = Sealer::new(&new_key()).unwrap();

    let store = open(old.clone()).await.unwrap();
    let written = fill(&store).await;
    store.close().await;

    // The new key alone is not the database's key yet.
    assert!(matches!(
        open(new.clone()).await,
        Err(StoreError::KeyMismatch { .. })
    ));

    // Both keys: the rotation begins and everything reads, under either key's digests.
    let store = open(rotating.clone()).await.unwrap();
    let record = store.key_record().await.unwrap();
    assert_eq!(record.current.as_deref(), Some(new.fingerprint().as_str()));
    assert_eq!(record.previous.as_deref(), Some(old.fingerprint().as_str()));
    reads_back(&store, &written).await;
    // Meanwhile, neither key alone opens the store, and an import waits.
    for alone in [&old, &new] {
        match open(alone.clone()).await {
            Err(StoreError::KeyRotation(_)) | Err(StoreError::KeyMismatch { .. }) => {}
            other => panic!("one key alone during a rotation: {:?}", other.map(|_| ())),
        }
    }
    assert!(matches!(
        store.begin_participant_import().await,
        Err(StoreError::KeyRotation(_))
    ));

    // Re-seal in small pages while accounts are being created and verifications written.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 100..140 {
                store
                    .create_account(
                        &account(n),
                        vec![AccountEvent::new(now(), "registered", "")],
                    )
                    .await
                    .unwrap()
                    .unwrap();
                save_verification(&store, verification(participant(n).nik)).await;
            }
        })
    };
    let tables = reseal_all(&store, 100, std::time::Duration::ZERO, |_, _, _| {})
        .await
        .unwrap();
    writer.await.unwrap();
    let totals = |table| {
        tables
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, totals)| *totals)
            .unwrap()
    };
    assert_eq!(
        totals(SealedTable::Participants).resealed,
        u64::from(PARTICIPANTS)
    );
    assert_eq!(totals(SealedTable::Staff).resealed, 1);
    assert_eq!(totals(SealedTable::Tickets).resealed, 1);
    assert_eq!(totals(SealedTable::TicketNotes).resealed, 1);
    assert_eq!(totals(SealedTable::ContactChangeRequests).resealed, 1);
    assert_eq!(totals(SealedTable::AccountFlows).resealed, 1);
    assert!(totals(SealedTable::Accounts).resealed >= 3);
    assert!(totals(SealedTable::Verifications).resealed >= 1);
    assert!(totals(SealedTable::Outbox).resealed >= 1);
    // A second pass finds nothing left under the old key.
    let again = reseal_all(&store, 100, std::time::Duration::ZERO, |_, _, _| {})
        .await
        .unwrap();
    assert!(
        again.iter().all(|(_, totals)| totals.resealed == 0),
        "{again:?}"
    );
    let anchor = close(&store, &rotating, now()).await.unwrap();
    assert!(anchor > 3, "the closing entry follows the accounts' events");
    store.close().await;

    // Afterwards the new key alone reads everything (it cannot open an envelope sealed under the
    // old key, nor find a row by an old digest), the audit log is whole under it, and the old key
    // is refused, alone or as the previous one.
    let store = open(new.clone()).await.unwrap();
    reads_back(&store, &written).await;
    for n in 100..140 {
        let a = account(n);
        assert!(
            store
                .find_account(AccountKey::Email(a.email.as_ref().unwrap()))
                .await
                .unwrap()
                .is_some()
        );
    }
    match walk(&store, AuditChain::for_sealer(&new)).await.unwrap() {
        Verdict::Whole { entries, .. } => assert_eq!(entries, anchor),
        Verdict::Tampered(tamper) => panic!("{tamper}"),
    }
    let record = store.key_record().await.unwrap();
    assert_eq!(record.previous, None);
    assert_eq!(record.retired.as_deref(), Some(old.fingerprint().as_str()));
    store.close().await;
    match open(old.clone()).await {
        Err(StoreError::KeyRotation(text)) => assert!(text.contains("retired"), "{text}"),
        other => panic!("the old key after the rotation: {:?}", other.map(|_| ())),
    }
    match open(rotating.clone()).await {
        Err(StoreError::KeyRotation(text)) => {
            assert!(text.contains("remove privacy.previous_key"), "{text}")
        }
        other => panic!("the old key as previous after it: {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reseals_every_table_while_serving_and_retires_the_old_key() {
    let db = TestDatabase::create().await;
    match db.backend() {
        Backend::Sqlite => {
            let path = db.data_dir().join("gerbang.sqlite");
            rotation(|sealer| {
                let path = path.clone();
                async move { SqliteStore::open(&path, sealer, 4).await }
            })
            .await
        }
        Backend::Postgres(_) => {
            let url = db.url();
            rotation(|sealer| {
                let url = url.clone();
                async move { PostgresStore::open(&url, sealer, 4).await }
            })
            .await
        }
    }
}
