//! Account storage conformance: the same behaviour on every backend (see gerbang-testkit).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use gerbang_domain::account::{Account, DeviceDigest, SessionLife, SessionToken};
use gerbang_domain::{Email, MobileNumber};
use gerbang_store::{
    AccountEvent, AccountKey, AccountRefusal, AccountTaken, Store, StoredFlow, StoredSession,
};
use gerbang_testkit::store_test;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

store_test!(
    an_account_is_found_by_id_nik_email_and_phone,
    a_nik_email_or_phone_of_another_account_refuses_the_new_one_whole,
    a_save_over_a_stale_version_is_refused,
    of_concurrent_saves_over_one_version_exactly_one_wins,
    a_contact_change_moves_the_lookup_and_a_taken_one_is_refused,
    sessions_are_found_by_digest_and_revoked_per_device_or_all,
    flows_are_sealed_expire_and_end_once,
);

fn account(n: u32) -> Account {
    gerbang_testkit::account(n, now())
}

async fn an_account_is_found_by_id_nik_email_and_phone<S: Store>(store: S) {
    let a = account(1);
    let created = store
        .create_account(&a, vec![AccountEvent::new(now(), "registered", "")])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.version, 1);
    for key in [
        AccountKey::Id(created.id),
        AccountKey::Nik(&a.nik),
        AccountKey::Email(a.email.as_ref().unwrap()),
        AccountKey::Phone(a.phone.as_ref().unwrap()),
    ] {
        let found = store.find_account(key).await.unwrap().unwrap();
        assert_eq!(found, created, "{key:?}");
    }
    let other = account(2);
    assert_eq!(
        store
            .find_account(AccountKey::Nik(&other.nik))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_account(AccountKey::Id(created.id + 100))
            .await
            .unwrap(),
        None
    );
    let events = store.account_events(created.id).await.unwrap();
    assert_eq!(events, vec![AccountEvent::new(now(), "registered", "")]);
}

async fn a_nik_email_or_phone_of_another_account_refuses_the_new_one_whole<S: Store>(store: S) {
    let first = account(1);
    store
        .create_account(&first, Vec::new())
        .await
        .unwrap()
        .unwrap();
    let mut same_nik = account(2);
    same_nik.nik = first.nik.clone();
    let mut same_email = account(3);
    same_email.email = first.email.clone();
    let mut same_phone = account(4);
    same_phone.phone = first.phone.clone();
    for (candidate, taken) in [
        (same_nik, AccountTaken::Nik),
        (same_email, AccountTaken::Email),
        (same_phone, AccountTaken::Phone),
    ] {
        let refused = store
            .create_account(&candidate, vec![AccountEvent::new(now(), "registered", "")])
            .await
            .unwrap();
        assert_eq!(refused, Err(taken));
        // Nothing of it was written: its own NIK (where it differs) finds nothing.
        if candidate.nik != first.nik {
            assert_eq!(
                store
                    .find_account(AccountKey::Nik(&candidate.nik))
                    .await
                    .unwrap(),
                None
            );
        }
    }
    // Accounts without email or phone do not clash on the missing value.
    let mut bare_a = account(5);
    bare_a.email = None;
    bare_a.phone = None;
    let mut bare_b = account(6);
    bare_b.email = None;
    bare_b.phone = None;
    store
        .create_account(&bare_a, Vec::new())
        .await
        .unwrap()
        .unwrap();
    store
        .create_account(&bare_b, Vec::new())
        .await
        .unwrap()
        .unwrap();
}

async fn a_save_over_a_stale_version_is_refused<S: Store>(store: S) {
    let created = store
        .create_account(&account(1), Vec::new())
        .await
        .unwrap()
        .unwrap();
    let mut changed = created.account.clone();
    changed.password_hash = "$argon2id$new".into();
    let saved = store
        .save_account(
            created.id,
            created.version,
            now(),
            &changed,
            vec![AccountEvent::new(now(), "password_changed", "")],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.version, 2);
    let again = store
        .save_account(
            created.id,
            created.version,
            now(),
            &created.account,
            vec![AccountEvent::new(now(), "lost", "")],
        )
        .await
        .unwrap();
    assert_eq!(again, Err(AccountRefusal::Stale));
    let found = store
        .find_account(AccountKey::Id(created.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account.password_hash, "$argon2id$new");
    let kinds: Vec<String> = store
        .account_events(created.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec!["password_changed".to_owned()],
        "the refused save wrote no event"
    );
}

async fn of_concurrent_saves_over_one_version_exactly_one_wins<S: Store>(store: S) {
    let created = store
        .create_account(&account(1), Vec::new())
        .await
        .unwrap()
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = store.clone();
        let created = created.clone();
        tasks.push(tokio::spawn(async move {
            let mut changed = created.account.clone();
            changed.password_hash = format!("hash-{n}");
            store
                .save_account(created.id, created.version, now(), &changed, Vec::new())
                .await
                .unwrap()
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        if let Ok(saved) = task.await.unwrap() {
            winners.push(saved);
        }
    }
    assert_eq!(winners.len(), 1);
    let found = store
        .find_account(AccountKey::Id(created.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, winners[0]);
}

async fn a_contact_change_moves_the_lookup_and_a_taken_one_is_refused<S: Store>(store: S) {
    let a = store
        .create_account(&account(1), Vec::new())
        .await
        .unwrap()
        .unwrap();
    let b = store
        .create_account(&account(2), Vec::new())
        .await
        .unwrap()
        .unwrap();
    let old_phone = a.account.phone.clone().unwrap();
    let new_phone = MobileNumber::parse("081399990001").unwrap();
    let mut changed = a.account.clone();
    changed.phone = Some(new_phone.clone());
    let a = store
        .save_account(a.id, a.version, now(), &changed, Vec::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .find_account(AccountKey::Phone(&old_phone))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_account(AccountKey::Phone(&new_phone))
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    // b takes a's email: refused, b unchanged.
    let mut grab = b.account.clone();
    grab.email = Some(Email::parse("peserta1@example.com").unwrap());
    let refused = store
        .save_account(b.id, b.version, now(), &grab, Vec::new())
        .await
        .unwrap();
    assert_eq!(refused, Err(AccountRefusal::Taken(AccountTaken::Email)));
    assert_eq!(
        store
            .find_account(AccountKey::Id(b.id))
            .await
            .unwrap()
            .unwrap(),
        b
    );
}

async fn sessions_are_found_by_digest_and_revoked_per_device_or_all<S: Store>(store: S) {
    let a = store
        .create_account(&account(1), Vec::new())
        .await
        .unwrap()
        .unwrap();
    let phone = DeviceDigest::of("phone-1").unwrap();
    let tablet = DeviceDigest::of("tablet-1").unwrap();
    let mut sessions = Vec::new();
    for device in [phone, phone, tablet] {
        let session = StoredSession {
            token: SessionToken::generate().digest(),
            account: a.id,
            device,
            life: SessionLife::start(now()),
        };
        store.create_session(&session).await.unwrap();
        sessions.push(session);
    }
    let mut used = sessions[2].clone();
    used.life.last_used_at = now() + Duration::hours(1);
    used.life
        .record_step_up("benefit_claim", now() + Duration::hours(1));
    store.save_session(&used).await.unwrap();
    assert_eq!(
        store.find_session(&used.token).await.unwrap().unwrap(),
        used
    );
    assert_eq!(
        store
            .find_session(&SessionToken::generate().digest())
            .await
            .unwrap(),
        None
    );

    assert_eq!(
        store
            .revoke_sessions(a.id, Some(phone), now())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .revoke_sessions(a.id, Some(phone), now())
            .await
            .unwrap(),
        0
    );
    for session in &sessions[..2] {
        let found = store.find_session(&session.token).await.unwrap().unwrap();
        assert_eq!(found.life.revoked_at, Some(now()));
    }
    // A save of a session revoked meanwhile does not bring it back.
    let mut stale = sessions[0].clone();
    stale.life.last_used_at = now() + Duration::hours(2);
    store.save_session(&stale).await.unwrap();
    let found = store.find_session(&stale.token).await.unwrap().unwrap();
    assert_eq!(found.life.revoked_at, Some(now()));
    assert_eq!(store.revoke_sessions(a.id, None, now()).await.unwrap(), 1);
}

async fn flows_are_sealed_expire_and_end_once<S: Store>(store: S) {
    let flow = StoredFlow {
        token: [7; 32],
        state: b"{\"registration\":1}".to_vec(),
        expires_at: now() + Duration::minutes(30),
    };
    store.put_flow(&flow).await.unwrap();
    assert_eq!(
        store.find_flow(&flow.token, now()).await.unwrap().unwrap(),
        flow
    );
    let replaced = StoredFlow {
        state: b"{\"registration\":2}".to_vec(),
        ..flow.clone()
    };
    store.put_flow(&replaced).await.unwrap();
    assert_eq!(
        store.find_flow(&flow.token, now()).await.unwrap().unwrap(),
        replaced
    );
    assert_eq!(
        store.find_flow(&flow.token, flow.expires_at).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.find_flow(&[8; 32], now()).await.unwrap(), None);
    assert!(store.delete_flow(&flow.token).await.unwrap());
    assert!(!store.delete_flow(&flow.token).await.unwrap());
    assert_eq!(store.find_flow(&flow.token, now()).await.unwrap(), None);
}
