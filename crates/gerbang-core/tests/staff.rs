//! Staff members on the backend under test: adding, signing in with password and TOTP (each code
//! once), the lockout, sessions that end idle or at 8 hours and see a role change or a disable on
//! the next request, the reset of a lost authenticator — and every step in the audit log, whose
//! chain stays whole, including under concurrent sign-ins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use gerbang_core::{PasswordHashing, PasswordHashingSettings, StaffService, StaffServiceError};
use gerbang_domain::staff::{Permission, StaffError, StaffName};
use gerbang_domain::{Clock, ManualClock};
use gerbang_store::Store;
use gerbang_store::audit::{AuditChain, Verdict, walk};
use gerbang_testkit::{store_test, test_sealer};
use secrecy::{ExposeSecret, SecretString};

const PASSWORD: &str = "Loket-Cabang#2026";

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn service<S: Store>(store: S) -> (StaffService<S>, ManualClock) {
    let clock = ManualClock::new(t0());
    let hashing = PasswordHashing::new(&PasswordHashingSettings {
        memory_kib: 1024,
        iterations: 1,
        ..Default::default()
    })
    .unwrap();
    let service = StaffService::new(
        store,
        Arc::new(hashing),
        Arc::new(clock.clone()),
        Default::default(),
        Default::default(),
    );
    (service, clock)
}

fn password() -> SecretString {
    SecretString::from(PASSWORD.to_owned())
}

fn name(text: &str) -> StaffName {
    StaffName::parse(text).unwrap()
}

/// The member's current TOTP code, as their authenticator app shows it.
async fn totp_code<S: Store>(store: &S, who: &str, at: DateTime<Utc>) -> String {
    let stored = store
        .find_staff(gerbang_store::StaffKey::Name(&name(who)))
        .await
        .unwrap()
        .unwrap();
    stored.member.totp.code_at(&stored.member.name, at).unwrap()
}

async fn actions<S: Store>(store: &S) -> Vec<(String, String)> {
    let entries = store.audit_entries(0, 1000).await.unwrap();
    entries
        .into_iter()
        .map(|e| (e.record.actor, e.record.action))
        .collect()
}

async fn assert_whole<S: Store>(store: &S) {
    let verdict = walk(store, AuditChain::new(test_sealer().audit_key()))
        .await
        .unwrap();
    assert!(matches!(verdict, Verdict::Whole { .. }), "{verdict:?}");
}

store_test!(
    a_member_signs_in_with_password_and_code_and_each_code_works_once,
    wrong_tries_lock_the_member_and_every_try_is_recorded,
    sessions_see_a_role_change_and_a_disable_on_the_next_request,
    sessions_end_after_30_idle_minutes_and_at_8_hours,
    a_reset_gives_a_new_authenticator_and_ends_every_session,
    names_roles_and_passwords_are_checked_before_anything_is_stored,
    concurrent_sign_ins_keep_the_audit_chain_whole,
);

async fn a_member_signs_in_with_password_and_code_and_each_code_works_once<S: Store>(store: S) {
    let (staff, clock) = service(store.clone());
    let enrolment = staff
        .add("siti.rahma", "agent", Some(password()), "operator:root")
        .await
        .unwrap();
    assert!(
        enrolment.password.is_none(),
        "the given password is not echoed"
    );
    assert!(
        enrolment
            .totp_url
            .expose_secret()
            .starts_with("otpauth://totp/gerbang:siti.rahma?")
    );
    let now = clock.now();
    let code = totp_code(&store, "siti.rahma", now).await;
    let (token, session) = staff
        .sign_in("siti.rahma", &password(), &code)
        .await
        .unwrap();
    assert_eq!(session.staff.member.name.as_str(), "siti.rahma");
    assert!(session.may(Permission::SearchParticipants).is_ok());
    assert_eq!(
        session.may(Permission::LiftLocks).unwrap_err(),
        StaffError::Forbidden
    );
    let again = staff.session(&token).await.unwrap();
    assert_eq!(again.staff.id, session.staff.id);

    // The same code a second time, even from another browser, is refused.
    clock.advance(Duration::seconds(5));
    let reused = staff.sign_in("siti.rahma", &password(), &code).await;
    assert!(matches!(
        reused,
        Err(StaffServiceError::Staff(StaffError::SignInFailed))
    ));
    // The next step's code works.
    clock.advance(Duration::seconds(30));
    let next = totp_code(&store, "siti.rahma", clock.now()).await;
    staff
        .sign_in("siti.rahma", &password(), &next)
        .await
        .unwrap();

    staff.sign_out(&token).await.unwrap();
    assert!(matches!(
        staff.session(&token).await,
        Err(StaffServiceError::Staff(StaffError::SessionEnded))
    ));
    let log = actions(&store).await;
    assert_eq!(
        log,
        [
            ("operator:root", "staff_added"),
            ("staff:siti.rahma", "staff_signed_in"),
            ("staff:siti.rahma", "staff_sign_in_failed"),
            ("staff:siti.rahma", "staff_signed_in"),
            ("staff:siti.rahma", "staff_signed_out"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_whole(&store).await;
}

async fn wrong_tries_lock_the_member_and_every_try_is_recorded<S: Store>(store: S) {
    let (staff, clock) = service(store.clone());
    staff
        .add(
            "cabang-jaksel-07",
            "officer",
            Some(password()),
            "operator:root",
        )
        .await
        .unwrap();
    let wrong = SecretString::from("Salah-Sandi#1".to_owned());
    for _ in 0..4 {
        let code = totp_code(&store, "cabang-jaksel-07", clock.now()).await;
        assert!(
            staff
                .sign_in("cabang-jaksel-07", &wrong, &code)
                .await
                .is_err()
        );
    }
    // The fifth wrong try is a wrong code with the right password.
    assert!(
        staff
            .sign_in("cabang-jaksel-07", &password(), "000000")
            .await
            .is_err()
    );
    let code = totp_code(&store, "cabang-jaksel-07", clock.now()).await;
    let locked = staff.sign_in("cabang-jaksel-07", &password(), &code).await;
    let Err(StaffServiceError::Staff(StaffError::Locked { until })) = locked else {
        panic!("locked after five wrong tries: {locked:?}");
    };
    assert_eq!(until, t0() + Duration::minutes(15));
    // An unknown name answers like a wrong password and names nobody in the log.
    assert!(matches!(
        staff.sign_in("nobody", &password(), "123456").await,
        Err(StaffServiceError::Staff(StaffError::SignInFailed))
    ));
    clock.advance(Duration::minutes(15));
    let code = totp_code(&store, "cabang-jaksel-07", clock.now()).await;
    staff
        .sign_in("cabang-jaksel-07", &password(), &code)
        .await
        .unwrap();
    let log = actions(&store).await;
    let count = |action: &str| log.iter().filter(|(_, a)| a == action).count();
    assert_eq!(count("staff_sign_in_failed"), 6);
    assert_eq!(count("staff_locked"), 1);
    assert_eq!(count("staff_sign_in_refused"), 1);
    assert_eq!(count("staff_signed_in"), 1);
    assert!(log.contains(&("unknown".into(), "staff_sign_in_failed".into())));
    let details: Vec<String> = store
        .audit_entries(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.detail)
        .collect();
    assert!(
        details.iter().all(|d| !d.contains("Salah")),
        "no password in the log"
    );
    assert_whole(&store).await;
}

async fn sessions_see_a_role_change_and_a_disable_on_the_next_request<S: Store>(store: S) {
    let (staff, clock) = service(store.clone());
    staff
        .add("budi.agent", "agent", Some(password()), "operator:root")
        .await
        .unwrap();
    let code = totp_code(&store, "budi.agent", clock.now()).await;
    let (token, _) = staff
        .sign_in("budi.agent", &password(), &code)
        .await
        .unwrap();
    assert!(
        staff
            .session(&token)
            .await
            .unwrap()
            .may(Permission::LiftLocks)
            .is_err()
    );
    staff
        .set_role("budi.agent", "officer", "staff:admin.pusat")
        .await
        .unwrap();
    assert!(
        staff
            .session(&token)
            .await
            .unwrap()
            .may(Permission::LiftLocks)
            .is_ok()
    );
    staff
        .disable("budi.agent", "staff:admin.pusat")
        .await
        .unwrap();
    assert!(matches!(
        staff.session(&token).await,
        Err(StaffServiceError::Staff(
            StaffError::SessionEnded | StaffError::Disabled
        ))
    ));
    let code = totp_code(&store, "budi.agent", clock.now() + Duration::seconds(30)).await;
    clock.advance(Duration::seconds(30));
    assert!(matches!(
        staff.sign_in("budi.agent", &password(), &code).await,
        Err(StaffServiceError::Staff(StaffError::Disabled))
    ));
    let log = actions(&store).await;
    assert!(log.contains(&("staff:admin.pusat".into(), "staff_role_changed".into())));
    assert!(log.contains(&("staff:admin.pusat".into(), "staff_disabled".into())));
    assert_whole(&store).await;
}

async fn sessions_end_after_30_idle_minutes_and_at_8_hours<S: Store>(store: S) {
    let (staff, clock) = service(store.clone());
    staff
        .add("dewi.cs", "agent", Some(password()), "operator:root")
        .await
        .unwrap();
    let code = totp_code(&store, "dewi.cs", clock.now()).await;
    let (token, _) = staff.sign_in("dewi.cs", &password(), &code).await.unwrap();
    // Used every 29 minutes it lives until 8 hours after sign-in.
    for _ in 0..16 {
        clock.advance(Duration::minutes(29));
        staff.session(&token).await.unwrap();
    }
    clock.advance(Duration::minutes(29));
    assert!(clock.now() >= t0() + Duration::hours(8));
    assert!(staff.session(&token).await.is_err(), "ended at 8 hours");

    clock.advance(Duration::minutes(1));
    let code = totp_code(&store, "dewi.cs", clock.now()).await;
    let (token, _) = staff.sign_in("dewi.cs", &password(), &code).await.unwrap();
    clock.advance(Duration::minutes(30));
    assert!(matches!(
        staff.session(&token).await,
        Err(StaffServiceError::Staff(StaffError::SessionEnded))
    ));
}

async fn a_reset_gives_a_new_authenticator_and_ends_every_session<S: Store>(store: S) {
    let (staff, clock) = service(store.clone());
    staff
        .add("andi.officer", "officer", Some(password()), "operator:root")
        .await
        .unwrap();
    let old_code = totp_code(&store, "andi.officer", clock.now()).await;
    let (token, _) = staff
        .sign_in("andi.officer", &password(), &old_code)
        .await
        .unwrap();
    let enrolment = staff
        .reset("andi.officer", None, "staff:admin.pusat")
        .await
        .unwrap();
    let new_password = enrolment.password.expect("gerbang chose a password");
    assert_eq!(new_password.expose_secret().len(), 20);
    assert!(
        staff.session(&token).await.is_err(),
        "the old session ended"
    );
    clock.advance(Duration::seconds(30));
    let now = clock.now();
    let new_code = totp_code(&store, "andi.officer", now).await;
    assert!(
        staff
            .sign_in("andi.officer", &password(), &new_code)
            .await
            .is_err(),
        "the old password no longer works"
    );
    staff
        .sign_in("andi.officer", &new_password, &new_code)
        .await
        .unwrap();
    let log = actions(&store).await;
    assert!(log.contains(&("staff:admin.pusat".into(), "staff_reset".into())));
    assert_whole(&store).await;
}

async fn names_roles_and_passwords_are_checked_before_anything_is_stored<S: Store>(store: S) {
    let (staff, _) = service(store.clone());
    assert!(matches!(
        staff
            .add("a b", "agent", Some(password()), "operator:root")
            .await,
        Err(StaffServiceError::Staff(StaffError::NameInvalid))
    ));
    assert!(matches!(
        staff
            .add("rina", "root", Some(password()), "operator:root")
            .await,
        Err(StaffServiceError::Staff(StaffError::RoleUnknown))
    ));
    assert!(matches!(
        staff
            .add(
                "rina",
                "agent",
                Some(SecretString::from("pendek".to_owned())),
                "operator:root"
            )
            .await,
        Err(StaffServiceError::WeakPassword(_))
    ));
    assert!(store.list_staff().await.unwrap().is_empty());
    assert!(store.audit_entries(0, 10).await.unwrap().is_empty());
    staff
        .add("rina", "agent", None, "operator:root")
        .await
        .unwrap();
    assert!(matches!(
        staff.add("RINA", "admin", None, "operator:root").await,
        Err(StaffServiceError::NameTaken)
    ));
    assert!(matches!(
        staff.disable("nobody", "operator:root").await,
        Err(StaffServiceError::NotFound)
    ));
    assert_eq!(store.list_staff().await.unwrap().len(), 1);
}

async fn concurrent_sign_ins_keep_the_audit_chain_whole<S: Store>(store: S) {
    let (staff, clock) = service(store.clone());
    let staff = Arc::new(staff);
    for n in 0..4 {
        staff
            .add(
                &format!("petugas-{n}"),
                "agent",
                Some(password()),
                "operator:root",
            )
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for n in 0..4 {
        let staff = staff.clone();
        let store = store.clone();
        let now = clock.now();
        tasks.push(tokio::spawn(async move {
            let who = format!("petugas-{n}");
            // Two wrong passwords and one right sign-in each, all members at once.
            let wrong = SecretString::from("Salah-Sandi#1".to_owned());
            for _ in 0..2 {
                let code = totp_code(&store, &who, now).await;
                assert!(staff.sign_in(&who, &wrong, &code).await.is_err());
            }
            let code = totp_code(&store, &who, now).await;
            staff.sign_in(&who, &password(), &code).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.seq, 4 + 4 * 3);
    assert_whole(&store).await;
    for member in store.list_staff().await.unwrap() {
        assert_eq!(member.member.failures, 0, "the sign-in reset the count");
    }
}
