//! The account flows under concurrent callers, on the backend under test: no wrong password is
//! lost from the lockout count, and a registration or new-device code makes one account or one
//! session however many times it is sent at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gerbang_core::accounts::{AccountSettings, ContactAndPassword, LoginOutcome, LoginRequest};
use gerbang_core::{
    AccountError, AccountService, CaptchaAnswer, CaptchaGate, CounterForm, DeliveryWorker,
    DevInbox, Officer, PasswordHashing, PasswordHashingSettings, VerificationEngine,
};
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::verification::{Locale, VerificationId};
use gerbang_domain::{Clock, Explain};
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
    a_counter_change_needs_a_second_person_then_the_new_contacts_code,
    an_undecided_counter_change_expires_and_a_late_approval_is_recorded,
    concurrent_approvals_decide_a_counter_change_once,
    the_health_counts_show_each_attempt_by_hour_provider_and_outcome,
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

// ----- the contact change at a branch counter (four eyes) -----

const SITI: Officer<'static> = Officer {
    name: "siti",
    actor: "staff:siti",
};

fn officer(name: &'static str) -> Officer<'static> {
    Officer {
        name,
        actor: Box::leak(format!("staff:{name}").into_boxed_str()),
    }
}

/// An active account for participant 1, signed in on one device, and a ticket for the counter.
async fn at_the_counter<S: Store>(
    accounts: &AccountService<S>,
    store: &S,
    clock: &ManualClock,
) -> (String, String, String) {
    let (flow, code) = pending_registration(accounts, store, clock).await;
    let view = accounts.confirm_registration(&flow, &code).await.unwrap();
    let LoginOutcome::StepUp(sent) = accounts.login(login(PASSWORD, "d1")).await.unwrap() else {
        panic!("a new device needs a step-up");
    };
    let code = code_of(store, clock, sent.verification.id).await;
    let session = accounts.confirm_login(&sent.flow, &code).await.unwrap();
    let account = store
        .find_account(AccountKey::PublicId(&view.id))
        .await
        .unwrap()
        .unwrap();
    let ticket = gerbang_core::tickets::open(
        store,
        "staff:siti",
        Some(account.id),
        "nomor lama hilang, peserta datang ke cabang",
        t0(),
    )
    .await
    .unwrap();
    (view.id, session.token.expose().to_owned(), ticket.number)
}

fn counter_form<'a>(account: &'a str, ticket: &'a str) -> CounterForm<'a> {
    let nik: &'static str = Box::leak(participant(1).nik.as_str().to_owned().into_boxed_str());
    CounterForm {
        account,
        kind: "phone",
        value: "0813 9999 0001",
        document: "ktp",
        document_number: nik,
        reason: "SIM lama hilang",
        ticket,
    }
}

async fn audit_actions<S: Store>(store: &S) -> Vec<(String, String)> {
    store
        .audit_recent(&gerbang_store::audit::AuditFilter::default(), 200)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|entry| (entry.record.actor, entry.record.action))
        .collect()
}

/// The whole counter change: the author cannot approve, a second person can once, the new contact
/// proves itself, then the contact changes, sessions end, the cool-off starts and the old contacts
/// are told; every step and refusal is in the audit log.
async fn a_counter_change_needs_a_second_person_then_the_new_contacts_code<S: Store>(store: S) {
    use gerbang_core::CounterError;
    use gerbang_domain::approval::{RequestError, Stage};

    let (accounts, clock) = service(store.clone()).await;
    let (account, token, ticket) = at_the_counter(&accounts, &store, &clock).await;
    let hours = chrono::Duration::hours(4);

    // What the officer enters is checked first: the KTP must be the participant's, the ticket
    // must exist, the contact must be new.
    let mut form = counter_form(&account, &ticket);
    form.document_number = "3171015708450001";
    let refused = accounts.request_counter_change(form, SITI, hours).await;
    assert!(
        matches!(
            refused,
            Err(CounterError::Request(RequestError::DocumentMismatch))
        ),
        "{refused:?}"
    );
    let refused = accounts
        .request_counter_change(counter_form(&account, "T-0000-0000"), SITI, hours)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "ticket_unknown");
    let mut form = counter_form(&account, &ticket);
    let old_phone = participant(1).phone.unwrap();
    let old = old_phone.e164().to_owned();
    form.value = &old;
    let refused = accounts.request_counter_change(form, SITI, hours).await;
    assert!(matches!(
        refused,
        Err(CounterError::Account(AccountError::ContactUnchanged))
    ));

    let request = accounts
        .request_counter_change(counter_form(&account, &ticket), SITI, hours)
        .await
        .unwrap();
    assert_eq!(request.rules.stage(clock.now()), Stage::Waiting);
    assert!(request.number.starts_with("R-"));

    // The author's approval is refused and recorded.
    let own = accounts.approve_counter_change(&request.number, SITI).await;
    assert!(
        matches!(own, Err(CounterError::Request(RequestError::OwnRequest))),
        "{own:?}"
    );
    // A second officer approves; the code goes to the new number.
    let approved = accounts
        .approve_counter_change(&request.number, officer("budi"))
        .await
        .unwrap();
    assert_eq!(approved.rules.decided_by.as_deref(), Some("budi"));
    let verification = approved.verification.expect("a code to the new contact");
    // A second approval is refused.
    let twice = accounts
        .approve_counter_change(&request.number, officer("ani"))
        .await;
    assert!(matches!(
        twice,
        Err(CounterError::Request(RequestError::AlreadyDecided {
            stage: Stage::AwaitingCode
        }))
    ));
    // Nothing changed yet.
    accounts.session(&token).await.unwrap();

    let code = code_of(&store, &clock, verification).await;
    let inbox = store.inbox(100).await.unwrap();
    let to_new = inbox
        .iter()
        .find(|m| m.message.verification == verification)
        .unwrap();
    assert_eq!(to_new.message.destination.masked(), "0813****0001");

    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert!(
        accounts
            .confirm_counter_change(&request.number, wrong, SITI)
            .await
            .is_err()
    );
    let trusted = store
        .find_account(AccountKey::PublicId(&account))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        trusted.account.devices.list().len(),
        1,
        "signed in on one device"
    );
    let done = accounts
        .confirm_counter_change(&request.number, &code, SITI)
        .await
        .unwrap();
    assert_eq!(done.rules.stage(clock.now()), Stage::Completed);

    let stored = store
        .find_account(AccountKey::PublicId(&account))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.account.phone.as_ref().unwrap().e164(),
        "+6281399990001"
    );
    assert_eq!(stored.account.phone_changed_at, Some(clock.now()));
    assert!(matches!(
        accounts.session(&token).await,
        Err(AccountError::SessionInvalid)
    ));
    assert!(accounts.view(&stored).cooling_off_until.is_some());
    assert!(
        stored.account.devices.list().is_empty(),
        "the old phone is trusted no more"
    );
    // Entering the code again changes nothing more.
    assert!(
        accounts
            .confirm_counter_change(&request.number, &code, SITI)
            .await
            .is_err()
    );

    // The old phone, the old email and the new phone are told.
    let worker = DeliveryWorker::new(store.clone(), DevInbox, Arc::new(clock.clone()));
    while worker.deliver_next().await.unwrap() > 0 {}
    let notices: Vec<String> = store
        .inbox(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.message.text.contains("0813****0001") && m.message.text.contains("diganti"))
        .map(|m| m.message.destination.masked())
        .collect();
    assert!(notices.contains(&old_phone.masked()), "{notices:?}");
    assert!(notices.contains(&"0813****0001".to_owned()), "{notices:?}");
    assert!(notices.iter().any(|d| d.contains('@')), "{notices:?}");

    let actions = audit_actions(&store).await;
    for expected in [
        ("staff:siti", "contact_change_requested"),
        ("staff:siti", "contact_change_decision_refused"),
        ("staff:budi", "contact_change_approved"),
        ("staff:budi", "contact_change_code_sent"),
        ("staff:ani", "contact_change_decision_refused"),
        ("staff:siti", "phone_changed"),
        ("staff:siti", "contact_change_completed"),
    ] {
        assert!(
            actions.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {actions:?}"
        );
    }
}

async fn an_undecided_counter_change_expires_and_a_late_approval_is_recorded<S: Store>(store: S) {
    use gerbang_core::CounterError;
    use gerbang_domain::approval::{RequestError, Stage};

    let (accounts, clock) = service(store.clone()).await;
    let (account, token, ticket) = at_the_counter(&accounts, &store, &clock).await;
    let request = accounts
        .request_counter_change(
            counter_form(&account, &ticket),
            SITI,
            chrono::Duration::hours(4),
        )
        .await
        .unwrap();
    let pending = store.pending_requests(clock.now(), 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    clock.advance(chrono::Duration::hours(4));
    assert!(
        store
            .pending_requests(clock.now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let late = accounts
        .approve_counter_change(&request.number, officer("budi"))
        .await;
    assert!(
        matches!(
            late,
            Err(CounterError::Request(RequestError::Expired { .. }))
        ),
        "{late:?}"
    );
    let stored = accounts.counter_request(&request.number).await.unwrap();
    assert_eq!(stored.rules.stage(clock.now()), Stage::Expired);
    assert!(stored.verification.is_none());
    assert!(audit_actions(&store).await.contains(&(
        "staff:budi".to_owned(),
        "contact_change_decision_refused".to_owned()
    )));
    // Nothing about the account changed.
    accounts.session(&token).await.unwrap();
}

/// Six people press "approve" at once: one approval, one code, five refusals.
async fn concurrent_approvals_decide_a_counter_change_once<S: Store>(store: S) {
    let (accounts, clock) = service(store.clone()).await;
    let (account, _, ticket) = at_the_counter(&accounts, &store, &clock).await;
    let request = accounts
        .request_counter_change(
            counter_form(&account, &ticket),
            SITI,
            chrono::Duration::hours(4),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for name in ["budi", "ani", "dewi", "eko", "fajar", "gita"] {
        let (accounts, number) = (accounts.clone(), request.number.clone());
        tasks.push(tokio::spawn(async move {
            accounts
                .approve_counter_change(&number, officer(name))
                .await
        }));
    }
    let mut approved = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => approved += 1,
            Err(gerbang_core::CounterError::Request(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(approved, 1);
    let actions = audit_actions(&store).await;
    let count = |action: &str| actions.iter().filter(|(_, a)| a == action).count();
    assert_eq!(count("contact_change_approved"), 1);
    assert_eq!(count("contact_change_code_sent"), 1);
    assert_eq!(count("contact_change_decision_refused"), 5);
}

/// The delivery-health counts: every hand-off in its hour, under its channel, provider and status,
/// and a delivered one in its delivery-time bucket.
async fn the_health_counts_show_each_attempt_by_hour_provider_and_outcome<S: Store>(store: S) {
    let (accounts, clock) = service(store.clone()).await;
    let before = clock.now() - chrono::Duration::hours(2);
    assert!(store.attempt_counts(before, 3600).await.unwrap().is_empty());
    pending_registration(&accounts, &store, &clock).await;
    let counts = store.attempt_counts(before, 3600).await.unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    let count = &counts[0];
    assert_eq!(
        (count.bucket, count.channel.as_str(), count.count),
        (2, "email", 1),
        "{count:?}"
    );
    assert!(!count.provider.is_empty());
    let times = store.delivery_times(before).await.unwrap();
    if count.status == "delivered" {
        assert_eq!(times, [(0, 1)]);
    } else {
        assert!(times.is_empty(), "{times:?}");
    }
    assert!(
        store
            .attempt_counts(clock.now() + chrono::Duration::hours(1), 3600)
            .await
            .unwrap()
            .is_empty()
    );
}
