//! The account flows under concurrent callers, on the backend under test: no wrong password is
//! lost from the lockout count, and a registration or new-device code makes one account or one
//! session however many times it is sent at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gerbang_core::accounts::{AccountSettings, ContactAndPassword, LoginOutcome, LoginRequest};
use gerbang_core::{
    AccountError, AccountService, CaptchaAnswer, CaptchaGate, DeliveryWorker, DevInbox,
    PasswordHashing, PasswordHashingSettings, VerificationEngine,
};
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::verification::{Locale, VerificationId};
use gerbang_domain::{Email, ManualClock};
use gerbang_store::{AccountKey, ParticipantImport, Store};
use gerbang_testkit::{participant, store_test};
use secrecy::SecretString;

const PASSWORD: &str = "Kopi-Tubruk#2026";

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

async fn service<S: Store>(store: S) -> (AccountService<S>, ManualClock) {
    let clock = ManualClock::new(t0());
    let engine = VerificationEngine::new(
        store.clone(),
        Arc::new(clock.clone()),
        CodeKey::new([1; 32]),
        Default::default(),
    );
    let hashing = PasswordHashing::new(&PasswordHashingSettings {
        memory_kib: 1024,
        iterations: 1,
        ..Default::default()
    })
    .unwrap();
    let mut import = store.begin_participant_import().await.unwrap();
    import.upsert_batch(&[participant(1)], t0()).await.unwrap();
    import.commit().await.unwrap();
    let accounts = AccountService::new(
        engine,
        Arc::new(hashing),
        CaptchaGate::Test {
            answer: "ok".into(),
        },
        Arc::new(clock.clone()),
        AccountSettings::default(),
    );
    (accounts, clock)
}

async fn code_of<S: Store>(store: &S, clock: &ManualClock, id: VerificationId) -> String {
    let worker = DeliveryWorker::new(store.clone(), DevInbox, Arc::new(clock.clone()));
    while worker.deliver_next().await.unwrap() > 0 {}
    let inbox = store.inbox(100).await.unwrap();
    let text = &inbox
        .iter()
        .find(|m| m.message.verification == id)
        .unwrap()
        .message
        .text;
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .unwrap()
        .to_owned()
}

/// Starts participant 1's registration; returns the flow and its code.
async fn pending_registration<S: Store>(
    accounts: &AccountService<S>,
    store: &S,
    clock: &ManualClock,
) -> (String, String) {
    let p = participant(1);
    let identified = accounts
        .identify(
            p.nik.as_str(),
            p.birth_date,
            Some(CaptchaAnswer {
                token: "t",
                answer: "ok",
            }),
            None,
        )
        .await
        .unwrap();
    let sent = accounts
        .register_contact(
            &identified.flow,
            ContactAndPassword {
                email: Some(Email::parse("peserta1@example.com").unwrap()),
                phone: p.phone.clone(),
                password: SecretString::from(PASSWORD),
                confirmation: SecretString::from(PASSWORD),
                channel: None,
                locale: Locale::Id,
            },
        )
        .await
        .unwrap();
    let code = code_of(store, clock, sent.verification.id).await;
    (identified.flow, code)
}

fn login(password: &str, device: &str) -> LoginRequest {
    LoginRequest {
        identifier: participant(1).nik.as_str().to_owned(),
        password: SecretString::from(password),
        device_id: device.into(),
        device_name: "test".into(),
        locale: Locale::Id,
        ip: None,
    }
}

store_test!(
    concurrent_confirmations_of_one_registration_make_one_account,
    concurrent_wrong_passwords_are_each_counted,
    concurrent_confirmations_of_one_new_device_login_make_one_session,
    a_login_after_the_hashing_cost_changed_rehashes_the_password_transparently,
    participants_are_found_in_the_configured_registry_and_its_outage_is_told,
    a_flow_shows_its_holder_the_masked_name_then_its_code_and_delivery,
);

/// What the portal shows between the steps of a flow: the masked name before a code, then the code's
/// countdown and delivery trail; a step-up's details; a recovery's channels; nothing once done.
async fn a_flow_shows_its_holder_the_masked_name_then_its_code_and_delivery<S: Store>(store: S) {
    use gerbang_core::FlowKind;
    use gerbang_domain::delivery::DeliveryStatus;
    use gerbang_domain::verification::purpose::{ActionDetails, SensitiveAction};

    let (accounts, clock) = service(store.clone()).await;
    let p = participant(1);
    let identified = accounts
        .identify(
            p.nik.as_str(),
            p.birth_date,
            Some(CaptchaAnswer {
                token: "t",
                answer: "ok",
            }),
            None,
        )
        .await
        .unwrap();
    let view = accounts.flow_view(&identified.flow).await.unwrap();
    assert_eq!(view.kind, FlowKind::Registration);
    assert_eq!(
        view.masked_name.as_deref(),
        Some(identified.masked_name.as_str())
    );
    assert!(view.verification.is_none() && view.outlook.is_none());
    assert!(
        accounts.flow_view("gbf_nonsense").await.is_err(),
        "a malformed token is not found"
    );

    let (flow, code) = {
        let sent = accounts
            .register_contact(
                &identified.flow,
                ContactAndPassword {
                    email: Some(Email::parse("peserta1@example.com").unwrap()),
                    phone: None,
                    password: SecretString::from(PASSWORD),
                    confirmation: SecretString::from(PASSWORD),
                    channel: None,
                    locale: Locale::Id,
                },
            )
            .await
            .unwrap();
        let queued = accounts.flow_view(&identified.flow).await.unwrap();
        let outlook = queued.outlook.as_ref().unwrap();
        assert!(
            outlook.queue.is_some(),
            "waiting in the outbox: {outlook:?}"
        );
        assert_eq!(
            queued.verification.as_ref().unwrap().id,
            sent.verification.id
        );
        let code = code_of(&store, &clock, sent.verification.id).await;
        (identified.flow.clone(), code)
    };
    let delivered = accounts.flow_view(&flow).await.unwrap();
    let outlook = delivered.outlook.unwrap();
    assert!(outlook.queue.is_none());
    assert_eq!(
        outlook.attempts.last().unwrap().status,
        DeliveryStatus::Delivered
    );
    accounts.confirm_registration(&flow, &code).await.unwrap();
    assert!(matches!(
        accounts.flow_view(&flow).await,
        Err(AccountError::FlowNotFound)
    ));

    // A step-up keeps its details for the page that shows them beside the code box.
    let device = "web-flow-view";
    let LoginOutcome::StepUp(sent) = accounts.login(login(PASSWORD, device)).await.unwrap() else {
        panic!("a new device needs a code");
    };
    let code = code_of(&store, &clock, sent.verification.id).await;
    let session = accounts.confirm_login(&sent.flow, &code).await.unwrap();
    let details = ActionDetails::parse(
        [("account_number".to_string(), "0123456789".to_string())]
            .into_iter()
            .collect(),
    )
    .unwrap();
    let step_up = accounts
        .start_step_up(
            session.token.expose(),
            SensitiveAction::BankAccountChange,
            details,
            None,
            Locale::En,
        )
        .await
        .unwrap();
    let view = accounts.flow_view(&step_up.flow).await.unwrap();
    assert_eq!(view.kind, FlowKind::StepUp);
    assert_eq!(
        view.on_file,
        vec![gerbang_domain::verification::Channel::Email],
        "registered with an email only: no phone channel to switch to"
    );
    assert_eq!(view.action, Some(SensitiveAction::BankAccountChange));
    assert_eq!(
        view.details.get("account_number").map(String::as_str),
        Some("0123456789")
    );

    // Recovery: the channels on file until one is chosen.
    let options = accounts
        .start_recovery(
            p.nik.as_str(),
            p.birth_date,
            Some(CaptchaAnswer {
                token: "t",
                answer: "ok",
            }),
            None,
        )
        .await
        .unwrap();
    let view = accounts.flow_view(&options.flow).await.unwrap();
    assert_eq!(view.kind, FlowKind::Recovery);
    assert_eq!(view.channels, options.channels);
    assert!(!view.channels.is_empty());
}

/// A registry outside the store: it knows participant 5 only, or is down.
struct Membership {
    down: bool,
}

impl gerbang_core::accounts::ParticipantLookup for Membership {
    fn find<'a>(
        &'a self,
        key: gerbang_store::ParticipantKey<'a>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<Option<gerbang_domain::Participant>, AccountError>,
                > + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            if self.down {
                return Err(AccountError::RegistryUnavailable(
                    "connection refused".into(),
                ));
            }
            let known = participant(5);
            Ok(match key {
                gerbang_store::ParticipantKey::Nik(nik) if *nik == known.nik => Some(known),
                _ => None,
            })
        })
    }
}

async fn concurrent_confirmations_of_one_registration_make_one_account<S: Store>(store: S) {
    let (accounts, clock) = service(store.clone()).await;
    let (flow, code) = pending_registration(&accounts, &store, &clock).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (accounts, flow, code) = (accounts.clone(), flow.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            accounts.confirm_registration(&flow, &code).await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(AccountError::Engine(_) | AccountError::FlowNotFound) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert!(
        store
            .find_account(AccountKey::Nik(&participant(1).nik))
            .await
            .unwrap()
            .is_some()
    );
}

async fn concurrent_wrong_passwords_are_each_counted<S: Store>(store: S) {
    let (accounts, clock) = service(store.clone()).await;
    let (flow, code) = pending_registration(&accounts, &store, &clock).await;
    accounts.confirm_registration(&flow, &code).await.unwrap();
    // Four at once, one short of the lock: every refusal the callers saw is in the count.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let accounts = accounts.clone();
        tasks.push(tokio::spawn(async move {
            accounts.login(login("Salah-Sandi#1", "d1")).await
        }));
    }
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(AccountError::InvalidCredentials) => refused += 1,
            Err(AccountError::Contended) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let stored = store
        .find_account(AccountKey::Nik(&participant(1).nik))
        .await
        .unwrap()
        .unwrap();
    assert!(refused >= 1);
    assert_eq!(stored.account.guard.consecutive_failures(), refused);
    // The failures up to the fifth lock the account, and the owner is told.
    for _ in refused..5 {
        accounts
            .login(login("Salah-Sandi#1", "d1"))
            .await
            .unwrap_err();
    }
    assert!(matches!(
        accounts.login(login(PASSWORD, "d1")).await,
        Err(AccountError::Locked(_))
    ));
}

async fn concurrent_confirmations_of_one_new_device_login_make_one_session<S: Store>(store: S) {
    let (accounts, clock) = service(store.clone()).await;
    let (flow, code) = pending_registration(&accounts, &store, &clock).await;
    accounts.confirm_registration(&flow, &code).await.unwrap();
    let LoginOutcome::StepUp(sent) = accounts.login(login(PASSWORD, "d1")).await.unwrap() else {
        panic!("a new device needs a step-up");
    };
    let code = code_of(&store, &clock, sent.verification.id).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (accounts, flow, code) = (accounts.clone(), sent.flow.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            accounts.confirm_login(&flow, &code).await
        }));
    }
    let mut sessions = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            sessions += 1;
        }
    }
    assert_eq!(sessions, 1);
}

async fn a_login_after_the_hashing_cost_changed_rehashes_the_password_transparently<S: Store>(
    store: S,
) {
    let (accounts, clock) = service(store.clone()).await;
    let (flow, code) = pending_registration(&accounts, &store, &clock).await;
    accounts.confirm_registration(&flow, &code).await.unwrap();
    let nik = participant(1).nik;
    let before = store
        .find_account(AccountKey::Nik(&nik))
        .await
        .unwrap()
        .unwrap();
    assert!(before.account.password_hash.contains("m=1024,t=1"));
    // The operator raises the cost: the same store, a service with new parameters.
    let stronger = AccountService::new(
        VerificationEngine::new(
            store.clone(),
            Arc::new(clock.clone()),
            CodeKey::new([1; 32]),
            Default::default(),
        ),
        Arc::new(
            PasswordHashing::new(&PasswordHashingSettings {
                memory_kib: 2048,
                iterations: 2,
                ..Default::default()
            })
            .unwrap(),
        ),
        CaptchaGate::Disabled,
        Arc::new(clock.clone()),
        AccountSettings::default(),
    );
    let outcome = stronger.login(login(PASSWORD, "d1")).await.unwrap();
    assert!(matches!(outcome, LoginOutcome::StepUp(_)));
    let after = store
        .find_account(AccountKey::Nik(&nik))
        .await
        .unwrap()
        .unwrap();
    assert!(
        after.account.password_hash.contains("m=2048,t=2"),
        "{}",
        after.account.password_hash
    );
    // The new hash still takes the same password, and only it.
    assert!(stronger.login(login(PASSWORD, "d1")).await.is_ok());
    assert!(matches!(
        stronger.login(login("Salah-Sandi#1", "d1")).await,
        Err(AccountError::InvalidCredentials)
    ));
}

async fn participants_are_found_in_the_configured_registry_and_its_outage_is_told<S: Store>(
    store: S,
) {
    let (accounts, _) = service(store.clone()).await;
    let captcha = || {
        Some(CaptchaAnswer {
            token: "t",
            answer: "ok",
        })
    };
    let up = accounts
        .clone()
        .with_registry(Arc::new(Membership { down: false }));
    // Participant 5 is only in the membership registry; participant 1 only in the store's.
    let five = participant(5);
    assert!(
        up.identify(five.nik.as_str(), five.birth_date, captcha(), None)
            .await
            .is_ok()
    );
    let one = participant(1);
    assert!(matches!(
        up.identify(one.nik.as_str(), one.birth_date, captcha(), None)
            .await,
        Err(AccountError::ParticipantNotFound)
    ));
    let down = accounts.with_registry(Arc::new(Membership { down: true }));
    let error = down
        .identify(five.nik.as_str(), five.birth_date, captcha(), None)
        .await
        .unwrap_err();
    assert_eq!(
        gerbang_domain::Explain::code(&error),
        "registry_unavailable"
    );
}
