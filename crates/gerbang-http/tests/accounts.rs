//! The participant account API end to end, in-process against a real store on the backend under
//! test: every flow of SPEC §3 and its error paths. Codes are read off the development inbox after
//! the delivery worker hands them over, as a participant would read their SMS or email.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use gerbang_core::accounts::AccountSettings;
use gerbang_core::{
    AccountService, CaptchaGate, DeliveryWorker, DevInbox, PasswordHashing,
    PasswordHashingSettings, VerificationEngine,
};
use gerbang_domain::ManualClock;
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::{Participant, ParticipantStatus};
use gerbang_http::{ApiClients, HttpState, router};
use gerbang_store::{AccountKey, ParticipantImport, Store};
use gerbang_testkit::{participant, store_test};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "Kopi-Tubruk#2026";
const DEVICE_A: &str = "android-a1b2c3";
const DEVICE_B: &str = "android-ffee99";

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

struct App<S> {
    router: axum::Router,
    store: S,
    clock: ManualClock,
    accounts: AccountService<S>,
}

impl<S: Store> App<S> {
    async fn new(store: S) -> Self {
        Self::with_captcha(
            store,
            CaptchaGate::Test {
                answer: "ok".into(),
            },
        )
        .await
    }

    async fn with_captcha(store: S, captcha: CaptchaGate) -> Self {
        Self::build(store, captcha, false).await
    }

    /// Behind a load balancer that sets X-Forwarded-For.
    async fn behind_balancer(store: S) -> Self {
        Self::build(
            store,
            CaptchaGate::Test {
                answer: "ok".into(),
            },
            true,
        )
        .await
    }

    async fn build(store: S, captcha: CaptchaGate, trust_forwarded_for: bool) -> Self {
        let clock = ManualClock::new(t0());
        let engine = VerificationEngine::new(
            store.clone(),
            Arc::new(clock.clone()),
            CodeKey::new([1; 32]),
            Default::default(),
        );
        // Cheap Argon2id parameters: the tests check behaviour, not cost.
        let hashing = PasswordHashing::new(&PasswordHashingSettings {
            memory_kib: 1024,
            iterations: 1,
            ..Default::default()
        })
        .unwrap();
        let accounts = AccountService::new(
            engine.clone(),
            Arc::new(hashing),
            captcha,
            Arc::new(clock.clone()),
            AccountSettings::default(),
        );
        let state = HttpState {
            store: store.clone(),
            engine,
            accounts: Some(accounts.clone()),
            clients: ApiClients::new(&[("claims".into(), "claims-token".into())], None),
            dev_inbox: true,
            trust_forwarded_for,
            webhooks: None,
            webhook_counters: Default::default(),
            metrics: Default::default(),
            settings: Default::default(),
        };
        let mut import = store.begin_participant_import().await.unwrap();
        let mut inactive = participant(9);
        inactive.status = ParticipantStatus::Inactive;
        import
            .upsert_batch(&[participant(1), participant(2), inactive], t0())
            .await
            .unwrap();
        import.commit().await.unwrap();
        Self {
            router: router(state),
            store,
            clock,
            accounts,
        }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.raw(request.body(body).unwrap()).await
    }

    async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let label = format!("{} {}", request.method(), request.uri());
        let (method, uri) = (request.method().to_string(), request.uri().to_string());
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Err(undeclared) =
            gerbang_http::openapi::declared(&method, &uri, status.as_u16(), body["code"].as_str())
        {
            panic!("{undeclared}: {body}");
        }
        assert!(
            !status.is_server_error(),
            "{label} answered {status}: {body}"
        );
        if !status.is_success() {
            assert!(
                body["code"].is_string(),
                "{label}: error without a code: {body}"
            );
            assert!(body["message"]["id"].is_string() && body["message"]["en"].is_string());
        }
        (status, body)
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, None, Some(body)).await
    }

    async fn post_as(&self, token: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, Some(token), Some(body)).await
    }

    /// Delivers what is queued and returns the inbox, newest last.
    async fn inbox(&self) -> Vec<Value> {
        let worker =
            DeliveryWorker::new(self.store.clone(), DevInbox, Arc::new(self.clock.clone()));
        while worker.deliver_next().await.unwrap() > 0 {}
        let (status, inbox) = self.call("GET", "/dev/inbox.json", None, None).await;
        assert_eq!(status, StatusCode::OK);
        let mut messages = inbox.as_array().unwrap().clone();
        messages.reverse();
        messages
    }

    /// The code of the latest message for verification `id`, and where it went.
    async fn code(&self, id: &Value) -> (String, String) {
        let inbox = self.inbox().await;
        let message = inbox
            .iter()
            .rev()
            .find(|m| {
                m["verification"] == *id
                    && m["text"]
                        .as_str()
                        .unwrap()
                        .chars()
                        .any(|c| c.is_ascii_digit())
            })
            .unwrap_or_else(|| panic!("no message for {id}"));
        let text = message["text"].as_str().unwrap();
        let code = text
            .split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .unwrap()
            .to_owned();
        (code, message["to"].as_str().unwrap().to_owned())
    }

    /// Registers participant `n` with its registry contacts; returns its NIK.
    async fn register(&self, n: u32) -> String {
        let p = participant(n);
        let (status, body) = self.identify(&p).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let flow = body["flow"].as_str().unwrap().to_owned();
        let (status, body) = self
            .post(
                "/v1/accounts/registration/contact",
                json!({"flow": flow, "email": p.email.as_ref().unwrap().as_str(),
                       "phone": p.phone.as_ref().unwrap().e164(), "password": PASSWORD,
                       "password_confirmation": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let (code, _) = self.code(&body["verification"]["id"]).await;
        let (status, body) = self
            .post(
                "/v1/accounts/registration/confirm",
                json!({"flow": flow, "code": code}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        p.nik.as_str().to_owned()
    }

    async fn identify(&self, p: &Participant) -> (StatusCode, Value) {
        self.post(
            "/v1/accounts/registration",
            json!({"identifier": p.nik.as_str(), "birth_date": p.birth_date.to_string(),
                   "captcha": {"token": "t", "answer": "ok"}}),
        )
        .await
    }

    async fn login(&self, identifier: &str, password: &str, device: &str) -> (StatusCode, Value) {
        self.post(
            "/v1/accounts/login",
            json!({"identifier": identifier, "password": password,
                   "device": {"id": device, "name": "Galaxy A15"}}),
        )
        .await
    }

    /// A session on `device`, through the new-device step-up if it is needed.
    async fn session(&self, identifier: &str, password: &str, device: &str) -> String {
        let (status, body) = self.login(identifier, password, device).await;
        if status == StatusCode::OK {
            return body["session"]["token"].as_str().unwrap().to_owned();
        }
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["step_up_required"], true);
        let (code, _) = self.code(&body["verification"]["id"]).await;
        let (status, body) = self
            .post(
                "/v1/accounts/login/confirm",
                json!({"flow": body["flow"], "code": code}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["session"]["token"].as_str().unwrap().to_owned()
    }

    async fn introspect(&self, token: &str, action: Option<&str>) -> Value {
        let mut body = json!({"token": token});
        if let Some(action) = action {
            body["action"] = json!(action);
        }
        let (status, body) = self.post_as("claims-token", "/v1/introspect", body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

store_test!(
    registration_identifies_masks_the_name_sends_a_code_and_activates_the_account,
    registration_refusals_each_have_their_own_answer_and_create_nothing,
    a_weak_password_names_every_broken_rule,
    wrong_and_expired_codes_and_resend_during_countdown,
    an_unknown_device_needs_a_code_and_a_trusted_one_does_not,
    devices_are_listed_and_a_revoked_one_loses_its_sessions,
    five_wrong_passwords_lock_temporarily_then_growing_then_permanently,
    an_unknown_identifier_costs_a_hash_and_answers_like_a_wrong_password,
    recovery_by_email_revokes_every_session_and_device,
    recovery_by_sms_also_lifts_a_temporary_lock,
    a_phone_change_is_authorised_by_the_old_number_told_to_old_contacts_and_cools_off,
    a_bank_account_change_is_refused_during_cool_off_but_a_balance_check_needs_only_a_session,
    a_step_up_code_confirms_only_its_action_and_details_and_introspection_tells_freshness,
    sessions_refresh_expire_and_log_out,
    bad_tokens_replays_and_malformed_bodies_get_4xx_codes,
    codes_are_rate_limited,
    the_builtin_captcha_serves_a_png_and_refuses_a_wrong_answer,
    the_openapi_document_is_served_and_names_every_account_route,
    an_email_change_is_authorised_by_the_old_email_and_needs_no_cool_off,
    a_birth_date_cannot_be_guessed_by_trying_and_an_address_is_limited,
    recovery_tells_someone_who_knows_only_an_identifier_nothing,
    an_email_is_looked_up_for_recovery_at_most_ten_times_an_hour,
    a_kpj_number_registers_logs_in_and_recovers_like_a_card_number,
    a_malformed_identifier_is_refused_by_the_rule_it_breaks_with_what_the_step_accepts,
    account_ids_in_answers_are_opaque,
    a_builtin_captcha_is_judged_once_across_instances_even_when_answered_wrongly,
    a_step_up_made_before_a_phone_change_is_not_fresh_during_the_cool_off,
    after_five_wrong_codes_the_flow_resends_a_fresh_code_without_starting_over,
);

async fn registration_identifies_masks_the_name_sends_a_code_and_activates_the_account<S: Store>(
    store: S,
) {
    let app = App::new(store).await;
    let p = participant(1);
    let (status, body) = app.identify(&p).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "BUDI S******");
    assert!(body["flow"].as_str().unwrap().starts_with("gbf_"));
    // By card number too.
    let (status, _) = app
        .post(
            "/v1/accounts/registration",
            json!({"identifier": p.card_number.as_str(), "birth_date": p.birth_date.to_string(),
                   "captcha": {"token": "t", "answer": "ok"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let flow = body["flow"].clone();
    let (status, body) = app
        .post(
            "/v1/accounts/registration/contact",
            json!({"flow": flow, "email": "budi.baru@example.com", "phone": "0812-3456-7001",
                   "password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // Email is the default channel (seed 002).
    assert_eq!(body["verification"]["channel"], "email");
    assert_eq!(body["verification"]["purpose"], "registration");
    let (code, to) = app.code(&body["verification"]["id"]).await;
    assert_eq!(to, "budi.baru@example.com");
    assert!(
        app.store
            .find_account(AccountKey::Nik(&p.nik))
            .await
            .unwrap()
            .is_none()
    );
    let (status, body) = app
        .post(
            "/v1/accounts/registration/confirm",
            json!({"flow": flow, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["account"]["email"], "b***@example.com");
    assert_eq!(body["account"]["phone"], "0812****7001");
    assert!(
        !body.to_string().contains(p.nik.as_str()),
        "the NIK is masked: {body}"
    );
    // The flow is spent.
    let (status, body) = app
        .post(
            "/v1/accounts/registration/confirm",
            json!({"flow": flow, "code": code}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("flow_not_found"))
    );
    // Log in with NIK, card number and email.
    for identifier in [
        p.nik.as_str(),
        p.card_number.as_str(),
        "budi.baru@example.com",
    ] {
        let (status, body) = app.login(identifier, PASSWORD, DEVICE_A).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{identifier}: {body}");
        app.clock.advance(Duration::minutes(16));
    }
    let stored = app
        .store
        .find_account(AccountKey::Nik(&p.nik))
        .await
        .unwrap()
        .unwrap();
    let events = app.store.account_events(stored.id).await.unwrap();
    assert_eq!(events[0].kind, "registered");
}

async fn registration_refusals_each_have_their_own_answer_and_create_nothing<S: Store>(store: S) {
    let app = App::new(store).await;
    let p = participant(1);
    let captcha = json!({"token": "t", "answer": "ok"});
    // Unknown NIK, and a known NIK with the wrong birth date: the same answer, with guidance.
    let unknown = participant(500);
    for (nik, birth) in [
        (
            unknown.nik.as_str().to_owned(),
            unknown.birth_date.to_string(),
        ),
        (p.nik.as_str().to_owned(), "1970-01-01".to_owned()),
    ] {
        let (status, body) = app
            .post(
                "/v1/accounts/registration",
                json!({"identifier": nik, "birth_date": birth, "captcha": captcha}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "participant_not_found");
        assert!(body["message"]["id"].as_str().unwrap().contains("PANDAWA"));
        assert!(body["message"]["en"].as_str().unwrap().contains("Dukcapil"));
    }
    let (status, body) = app.identify(&participant(9)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("participant_inactive"))
    );
    // Captcha missing or wrong.
    let (status, body) = app
        .post(
            "/v1/accounts/registration",
            json!({"identifier": p.nik.as_str(), "birth_date": p.birth_date.to_string()}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("captcha_required"))
    );
    let (status, body) = app
        .post("/v1/accounts/registration", json!({"identifier": p.nik.as_str(), "birth_date": p.birth_date.to_string(), "captcha": {"token": "t", "answer": "no"}}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("captcha_wrong"))
    );
    let (status, body) = app
        .post(
            "/v1/accounts/registration",
            json!({"identifier": p.nik.as_str(), "birth_date": "17-08-1980", "captcha": captcha}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("birth_date_invalid"))
    );
    let (status, body) = app
        .post("/v1/accounts/registration", json!({"identifier": "12345", "birth_date": p.birth_date.to_string(), "captcha": captcha}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("identifier_length"))
    );

    app.register(1).await;
    let (status, body) = app.identify(&p).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "already_registered");
    assert!(
        body["message"]["en"]
            .as_str()
            .unwrap()
            .contains("Forgot Password")
    );

    // Participant 2 tries participant 1's email, then phone.
    let q = participant(2);
    let (_, body) = app.identify(&q).await;
    let flow = body["flow"].clone();
    for (email, phone, code) in [
        (
            p.email.as_ref().unwrap().as_str().to_owned(),
            "081299990002".to_owned(),
            "email_taken",
        ),
        (
            "baru2@example.com".to_owned(),
            p.phone.as_ref().unwrap().e164().to_owned(),
            "phone_taken",
        ),
    ] {
        let (status, body) = app
            .post(
                "/v1/accounts/registration/contact",
                json!({"flow": flow, "email": email, "phone": phone, "password": PASSWORD, "password_confirmation": PASSWORD}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some(code))
        );
    }
    let (status, body) = app
        .post(
            "/v1/accounts/registration/contact",
            json!({"flow": flow, "email": "baru2@example.com", "password": PASSWORD, "password_confirmation": "Lain-Sekali#99"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("passwords_differ"))
    );
    let (status, body) = app
        .post(
            "/v1/accounts/registration/contact",
            json!({"flow": flow, "password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("contact_missing"))
    );
    let (status, body) = app
        .post(
            "/v1/accounts/registration/contact",
            json!({"flow": flow, "phone": "081299990002", "channel": "email", "password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("channel_not_on_file"))
    );
    assert!(
        app.store
            .find_account(AccountKey::Nik(&q.nik))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_weak_password_names_every_broken_rule<S: Store>(store: S) {
    let app = App::new(store).await;
    let p = participant(1);
    let (_, body) = app.identify(&p).await;
    let flow = body["flow"].clone();
    let with_nik = format!("{}aa", p.nik.as_str());
    let (status, body) = app
        .post(
            "/v1/accounts/registration/contact",
            json!({"flow": flow, "email": "budi@example.com", "password": with_nik, "password_confirmation": with_nik}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "weak_password");
    let rules: Vec<&str> = body["failed_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for rule in [
        "password_no_upper",
        "password_no_symbol",
        "password_contains_nik",
    ] {
        assert!(rules.contains(&rule), "{rules:?}");
    }
    assert!(!rules.contains(&"password_too_short"));
    let (status, body) = app
        .post(
            "/v1/accounts/registration/contact",
            json!({"flow": flow, "email": "budi@example.com", "password": "Password1!", "password_confirmation": "Password1!"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["failed_rules"], json!(["password_common"]));
    // Nothing was sent for the refused attempts.
    assert!(app.inbox().await.is_empty());
}

async fn wrong_and_expired_codes_and_resend_during_countdown<S: Store>(store: S) {
    let app = App::new(store).await;
    let p = participant(1);
    let (_, body) = app.identify(&p).await;
    let flow = body["flow"].clone();
    let (_, body) = app
        .post(
            "/v1/accounts/registration/contact",
            json!({"flow": flow, "phone": "081234567001", "channel": "sms", "password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    assert_eq!(body["verification"]["channel"], "sms");
    let (code, to) = app.code(&body["verification"]["id"]).await;
    assert_eq!(to, "+6281234567001");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = app
        .post(
            "/v1/accounts/registration/confirm",
            json!({"flow": flow, "code": wrong}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("otp_incorrect"))
    );
    assert!(body["attempts_left"].as_u64().unwrap() >= 1);
    // Resend at once: the countdown answers, with the same instant each time.
    let (status, first) = app
        .post("/v1/accounts/flows/resend", json!({"flow": flow}))
        .await;
    assert_eq!(
        (status, first["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("resend_countdown"))
    );
    let (_, second) = app
        .post("/v1/accounts/flows/resend", json!({"flow": flow}))
        .await;
    assert_eq!(first["retry_at"], second["retry_at"]);
    // The code dies after its lifetime.
    app.clock.advance(Duration::minutes(6));
    let (status, body) = app
        .post(
            "/v1/accounts/registration/confirm",
            json!({"flow": flow, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(["otp_expired", "verification_expired"].contains(&body["code"].as_str().unwrap()));
    // A resend after the countdown sends a new code, which works.
    let (status, body) = app
        .post("/v1/accounts/flows/resend", json!({"flow": flow}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (code, _) = app.code(&body["verification"]["id"]).await;
    let (status, _) = app
        .post(
            "/v1/accounts/registration/confirm",
            json!({"flow": flow, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn an_unknown_device_needs_a_code_and_a_trusted_one_does_not<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    let (status, body) = app.login(&nik, PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["verification"]["purpose"], "login_new_device");
    // The step-up code goes to the phone on file.
    let (code, to) = app.code(&body["verification"]["id"]).await;
    assert_eq!(to, participant(1).phone.unwrap().e164());
    let (status, session) = app
        .post(
            "/v1/accounts/login/confirm",
            json!({"flow": body["flow"], "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = session["session"]["token"].as_str().unwrap();
    assert!(token.starts_with("gbs_"));
    // The same login flow cannot be confirmed twice.
    let (status, _) = app
        .post(
            "/v1/accounts/login/confirm",
            json!({"flow": body["flow"], "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Device A is trusted now: straight in.
    let (status, body) = app.login(&nik, PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["session"]["token"].as_str().unwrap() != token);
    // Device B is not.
    let (status, _) = app.login(&nik, PASSWORD, DEVICE_B).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, me) = app.call("GET", "/v1/session", Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["account"]["phone"], "0812****0001");
}

async fn devices_are_listed_and_a_revoked_one_loses_its_sessions<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    let on_a = app.session(&nik, PASSWORD, DEVICE_A).await;
    app.clock.advance(Duration::minutes(1));
    let on_b = app.session(&nik, PASSWORD, DEVICE_B).await;
    let (status, list) = app
        .call("GET", "/v1/session/devices", Some(&on_a), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let devices = list["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    // Most recently seen first; the asking one is marked.
    assert_eq!(devices[0]["current"], false);
    assert_eq!(devices[1]["current"], true);
    assert_eq!(devices[0]["name"], "Galaxy A15");
    let b_key = devices[0]["key"].as_str().unwrap();
    assert!(
        !list.to_string().contains(DEVICE_B),
        "only digests are shown"
    );
    let (status, body) = app
        .call(
            "DELETE",
            &format!("/v1/session/devices/{b_key}"),
            Some(&on_a),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sessions_revoked"], 1);
    let (status, body) = app.call("GET", "/v1/session", Some(&on_b), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("session_invalid"))
    );
    assert_eq!(app.introspect(&on_b, None).await["active"], false);
    let (status, body) = app
        .call(
            "DELETE",
            &format!("/v1/session/devices/{b_key}"),
            Some(&on_a),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("device_not_found"))
    );
    // B needs a code again.
    let (status, _) = app.login(&nik, PASSWORD, DEVICE_B).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

async fn five_wrong_passwords_lock_temporarily_then_growing_then_permanently<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    app.session(&nik, PASSWORD, DEVICE_A).await;
    for (round, minutes) in [(1, 30), (2, 60), (3, 120)] {
        for _ in 0..5 {
            let (status, body) = app.login(&nik, "Salah-Sandi#1", DEVICE_A).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
            );
        }
        // A stranger with a wrong password learns nothing about the lock.
        let (status, body) = app.login(&nik, "Salah-Sandi#1", DEVICE_A).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
        );
        // The owner, with the right password, is told until when, on their clock (Jakarta: WIB).
        let (status, body) = app.login(&nik, PASSWORD, DEVICE_A).await;
        assert_eq!(status, StatusCode::LOCKED, "round {round}: {body}");
        assert_eq!(body["code"], "account_locked_temporarily");
        assert_eq!(body["retry_after"], minutes * 60, "round {round}");
        assert!(
            body["message"]["id"].as_str().unwrap().contains("WIB"),
            "{body}"
        );
        app.clock.advance(Duration::minutes(minutes + 1));
        let (status, _) = app.login(&nik, PASSWORD, DEVICE_A).await;
        assert_eq!(status, StatusCode::OK, "round {round}: the lock ended");
    }
    for _ in 0..5 {
        app.login(&nik, "Salah-Sandi#1", DEVICE_A).await;
    }
    let (status, body) = app.login(&nik, PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(body["code"], "account_locked_permanently");
    assert!(
        body["message"]["en"]
            .as_str()
            .unwrap()
            .contains("branch office")
    );
    assert!(body.get("retry_after").is_none());
    app.clock.advance(Duration::days(3));
    let (status, _) = app.login(&nik, PASSWORD, DEVICE_A).await;
    assert_eq!(
        status,
        StatusCode::LOCKED,
        "a permanent lock does not expire"
    );
    // A branch officer lifts it.
    let nik = gerbang_domain::Nik::parse(&nik).unwrap();
    assert!(app.accounts.lift_lock(&nik, "officer-17").await.unwrap());
    let (status, _) = app.login(nik.as_str(), PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<String> = app
        .accounts
        .events(&nik)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let locks = kinds.iter().filter(|k| *k == "locked_temporarily").count();
    assert_eq!(locks, 3, "{kinds:?}");
    assert!(kinds.contains(&"locked_permanently".to_owned()));
    assert_eq!(kinds.last().unwrap(), "lock_lifted");
}

async fn an_unknown_identifier_costs_a_hash_and_answers_like_a_wrong_password<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    let hashing = app.accounts.hashing();
    let mut answers = Vec::new();
    for identifier in [
        nik.clone(),                                    // right account, wrong password
        participant(2).nik.as_str().to_owned(),         // participant without an account
        participant(700).nik.as_str().to_owned(),       // nobody
        "nobody@example.com".to_owned(),                // unknown email
        participant(2).card_number.as_str().to_owned(), // card without an account
    ] {
        let before = hashing.computed();
        let (status, body) = app.login(&identifier, "Salah-Sandi#1", DEVICE_A).await;
        assert_eq!(
            hashing.computed() - before,
            1,
            "{identifier}: one Argon2id run, like a real check"
        );
        answers.push((status, body["code"].clone(), body["message"].clone()));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
}

async fn recovery_by_email_revokes_every_session_and_device<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    let old = app.session(&nik, PASSWORD, DEVICE_A).await;
    let (status, body) = app
        .post(
            "/v1/accounts/recovery",
            json!({"identifier": nik, "birth_date": participant(1).birth_date.to_string(),
                   "captcha": {"token": "t", "answer": "ok"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["channels"],
        json!([{"channel": "sms", "to": "0812****0001"}, {"channel": "email", "to": "p***@example.com"}])
    );
    let flow = body["flow"].clone();
    let (status, body) = app
        .post(
            "/v1/accounts/recovery/send",
            json!({"flow": flow, "channel": "email"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (code, to) = app.code(&body["verification"]["id"]).await;
    assert_eq!(to, "peserta1@example.com");
    // A weak new password is refused before the code is spent.
    let (status, body) = app
        .post("/v1/accounts/recovery/confirm", json!({"flow": flow, "code": code, "password": "lemah", "password_confirmation": "lemah"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("weak_password"))
    );
    let new = "Teh-Manis#2027";
    let (status, body) = app
        .post(
            "/v1/accounts/recovery/confirm",
            json!({"flow": flow, "code": code, "password": new, "password_confirmation": new}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sessions_revoked"], 1);
    assert_eq!(body["devices_revoked"], 1);
    let (status, _) = app.call("GET", "/v1/session", Some(&old), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.login(&nik, PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    let (status, _) = app.login(&nik, new, DEVICE_A).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the device must be proven again"
    );
    // A participant without an account.
    let (status, body) = app
        .post("/v1/accounts/recovery", json!({"identifier": participant(2).nik.as_str(),
              "birth_date": participant(2).birth_date.to_string(), "captcha": {"token": "t", "answer": "ok"}}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("recovery_unmatched"))
    );
}

async fn recovery_by_sms_also_lifts_a_temporary_lock<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    for _ in 0..5 {
        app.login(&nik, "Salah-Sandi#1", DEVICE_A).await;
    }
    let (status, _) = app.login(&nik, PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::LOCKED);
    let card = participant(1).card_number.as_str().to_owned();
    let (_, body) = app
        .post(
            "/v1/accounts/recovery",
            json!({"identifier": card, "birth_date": participant(1).birth_date.to_string(),
                   "captcha": {"token": "t", "answer": "ok"}}),
        )
        .await;
    let flow = body["flow"].clone();
    let (status, body) = app
        .post(
            "/v1/accounts/recovery/send",
            json!({"flow": flow, "channel": "sms"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["verification"]["purpose"], "recovery");
    let (code, to) = app.code(&body["verification"]["id"]).await;
    assert_eq!(to, participant(1).phone.unwrap().e164());
    let new = "Teh-Manis#2027";
    let (status, _) = app
        .post(
            "/v1/accounts/recovery/confirm",
            json!({"flow": flow, "code": code, "password": new, "password_confirmation": new}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.login(&nik, new, DEVICE_A).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// Registers participant 1 and changes its phone through both codes; returns the session.
async fn change_phone<S: Store>(app: &App<S>, new_phone: &str) -> String {
    let nik = app.register(1).await;
    let session = app.session(&nik, PASSWORD, DEVICE_A).await;
    change_phone_in(app, session, new_phone).await
}

/// Changes participant 1's phone in `session` through both codes; returns the session.
async fn change_phone_in<S: Store>(app: &App<S>, session: String, new_phone: &str) -> String {
    let old_phone = participant(1).phone.unwrap().e164().to_owned();
    let (status, body) = app
        .post_as(&session, "/v1/session/contact", json!({"to": new_phone}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body["verification"]["purpose"],
        "contact_change_authorisation"
    );
    let (code, to) = app.code(&body["verification"]["id"]).await;
    assert_eq!(to, old_phone, "the old number authorises");
    let flow = body["flow"].clone();
    let (status, body) = app
        .post_as(
            &session,
            "/v1/session/contact/confirm",
            json!({"flow": flow, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["verification"]["purpose"], "contact_change_proof");
    let (code, to) = app.code(&body["verification"]["id"]).await;
    assert_eq!(
        to,
        gerbang_domain::MobileNumber::parse(new_phone)
            .unwrap()
            .e164(),
        "the new number proves itself"
    );
    let (status, body) = app
        .post_as(
            &session,
            "/v1/session/contact/confirm",
            json!({"flow": flow, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["account"]["cooling_off_until"].is_string());
    session
}

async fn a_phone_change_is_authorised_by_the_old_number_told_to_old_contacts_and_cools_off<
    S: Store,
>(
    store: S,
) {
    let app = App::new(store).await;
    let session = change_phone(&app, "081377770001").await;
    let (_, me) = app.call("GET", "/v1/session", Some(&session), None).await;
    assert_eq!(me["account"]["phone"], "0813****0001");
    // The old number and the email were told.
    let inbox = app.inbox().await;
    let notices: Vec<&Value> = inbox
        .iter()
        .filter(|m| m["text"].as_str().unwrap().contains("diganti"))
        .collect();
    for notice in &notices {
        assert!(
            notice["text"].as_str().unwrap().starts_with("gerbang: "),
            "the notice names who sends it: {notice}"
        );
    }
    let mut told: Vec<&str> = notices.iter().map(|m| m["to"].as_str().unwrap()).collect();
    told.sort_unstable();
    assert_eq!(
        told,
        vec![
            &*participant(1).phone.unwrap().e164().to_owned(),
            "peserta1@example.com"
        ]
    );
    // The old number now finds nothing; the new one belongs to this account.
    let nik = participant(1).nik;
    let stored = app
        .store
        .find_account(AccountKey::Nik(&nik))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.account.phone.unwrap().e164(), "+6281377770001");
    assert!(
        app.accounts
            .events(&nik)
            .await
            .unwrap()
            .iter()
            .any(|e| e.kind == "phone_changed")
    );
    // A number another account holds is refused.
    app.register(2).await;
    let (status, body) = app
        .post_as(
            &session,
            "/v1/session/contact",
            json!({"to": participant(2).phone.unwrap().e164()}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("phone_taken"))
    );
    let (status, body) = app
        .post_as(
            &session,
            "/v1/session/contact",
            json!({"to": "081377770001"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("contact_unchanged"))
    );
}

async fn a_bank_account_change_is_refused_during_cool_off_but_a_balance_check_needs_only_a_session<
    S: Store,
>(
    store: S,
) {
    let app = App::new(store).await;
    let session = change_phone(&app, "081377770001").await;
    let (status, body) = app
        .post_as(
            &session,
            "/v1/session/step-up",
            json!({"action": "bank_account_change", "details": {"bank_account": "1234567890"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "cooling_off_after_phone_change");
    assert!(body["retry_after"].as_u64().unwrap() > 23 * 3600);
    // Checking the JHT balance needs only a live session.
    let seen = app.introspect(&session, None).await;
    assert_eq!(seen["active"], true);
    assert!(seen["cooling_off_until"].is_string());
    // After the cool-off the step-up goes ahead.
    app.clock.advance(Duration::hours(25));
    let (status, body) = app
        .post_as(&session, "/v1/session/step-up", json!({"action": "bank_account_change", "details": {"bank_account": "1234567890"}, "action_hint": "7890"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

async fn a_step_up_code_confirms_only_its_action_and_details_and_introspection_tells_freshness<
    S: Store,
>(
    store: S,
) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    let session = app.session(&nik, PASSWORD, DEVICE_A).await;
    let before = app.introspect(&session, Some("benefit_claim")).await;
    assert_eq!(before["active"], true);
    assert_eq!(
        before["step_up_fresh"], false,
        "a claim needs a fresh step-up"
    );
    assert_eq!(before["nik"], nik);
    let (status, body) = app
        .post_as(&session, "/v1/session/step-up", json!({"action": "benefit_claim", "details": {"claim": "jht-2026-001", "amount": "12500000"}, "action_hint": "JHT"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["verification"]["action"], "benefit_claim");
    let flow = body["flow"].clone();
    let inbox = app.inbox().await;
    let text = inbox.last().unwrap()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("JHT"),
        "the action's hint is in the message: {text}"
    );
    let (code, _) = app.code(&body["verification"]["id"]).await;
    // Other details: the code does not fit.
    let (status, body) = app
        .post_as(&session, "/v1/session/step-up/confirm", json!({"flow": flow, "code": code, "details": {"claim": "jht-2026-001", "amount": "99000000"}}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("otp_incorrect"))
    );
    let (status, body) = app
        .post_as(&session, "/v1/session/step-up/confirm", json!({"flow": flow, "code": code, "details": {"claim": "jht-2026-001", "amount": "12500000"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["action"], "benefit_claim");
    let after = app.introspect(&session, Some("benefit_claim")).await;
    assert_eq!(after["step_up_fresh"], true);
    assert!(after["step_ups"]["benefit_claim"].is_string());
    assert_eq!(
        app.introspect(&session, Some("bank_account_change")).await["step_up_fresh"],
        false
    );
    app.clock.advance(Duration::minutes(11));
    assert_eq!(
        app.introspect(&session, Some("benefit_claim")).await["step_up_fresh"],
        false
    );
    // Introspection is for services only.
    let (status, body) = app.post("/v1/introspect", json!({"token": session})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, body) = app
        .post_as(&session, "/v1/introspect", json!({"token": session}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    // Another session cannot confirm this session's step-up.
    let other = app.session(&nik, PASSWORD, DEVICE_B).await;
    let (status, body) = app
        .post_as(
            &session,
            "/v1/session/step-up",
            json!({"action": "benefit_claim", "details": {"claim": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (code, _) = app.code(&body["verification"]["id"]).await;
    let (status, body) = app
        .post_as(
            &other,
            "/v1/session/step-up/confirm",
            json!({"flow": body["flow"], "code": code, "details": {"claim": "x"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("flow_mismatch"))
    );
}

async fn sessions_refresh_expire_and_log_out<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    let session = app.session(&nik, PASSWORD, DEVICE_A).await;
    let (_, first) = app.call("GET", "/v1/session", Some(&session), None).await;
    app.clock.advance(Duration::days(20));
    let (status, refreshed) = app
        .call("POST", "/v1/session/refresh", Some(&session), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(refreshed["expires_at"].as_str().unwrap() > first["expires_at"].as_str().unwrap());
    // Idle for 31 days: over.
    app.clock.advance(Duration::days(31));
    let (status, _) = app.call("GET", "/v1/session", Some(&session), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.introspect(&session, None).await["active"], false);
    let session = app.session(&nik, PASSWORD, DEVICE_A).await;
    let (status, _) = app
        .call("POST", "/v1/session/logout", Some(&session), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.call("GET", "/v1/session", Some(&session), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.introspect(&session, None).await["active"], false);
}

async fn bad_tokens_replays_and_malformed_bodies_get_4xx_codes<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    for bearer in [
        None,
        Some("gbs_nope"),
        Some(&*format!("gbs_{}", "0".repeat(64))),
    ] {
        let (status, body) = app.call("GET", "/v1/session", bearer, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("session_invalid"))
        );
    }
    assert_eq!(
        app.introspect("gbs_garbage", None).await,
        json!({"active": false})
    );
    let (status, body) = app
        .post(
            "/v1/accounts/login/confirm",
            json!({"flow": "gbf_x", "code": "123456"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("flow_not_found"))
    );
    // A login flow offered to the registration step.
    let (_, login) = app.login(&nik, PASSWORD, DEVICE_A).await;
    let (status, body) = app
        .post(
            "/v1/accounts/registration/confirm",
            json!({"flow": login["flow"], "code": "123456"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("flow_mismatch"))
    );
    // Malformed, mistyped, unknown fields, missing fields, oversized.
    let cases: Vec<(&str, String)> = vec![
        ("/v1/accounts/login", "{not json".into()),
        ("/v1/accounts/login", json!({"identifier": 5, "password": "x", "device": {"id": "a"}}).to_string()),
        ("/v1/accounts/login", json!({"identifier": nik, "password": "x"}).to_string()),
        ("/v1/accounts/login", json!({"identifier": nik, "password": "x", "device": {"id": "a"}, "admin": true}).to_string()),
        ("/v1/accounts/login", json!({"identifier": nik, "password": "x", "device": {"id": "a".repeat(200)}}).to_string()),
        ("/v1/accounts/login", json!({"identifier": nik, "password": "x".repeat(20_000), "device": {"id": "a"}}).to_string()),
        ("/v1/accounts/registration/contact", json!({"flow": "gbf_x", "email": "bukan-email", "password": "x", "password_confirmation": "x"}).to_string()),
        ("/v1/accounts/recovery/send", json!({"flow": "gbf_x", "channel": "pigeon"}).to_string()),
    ];
    for (uri, body) in cases {
        let request = Request::builder()
            .method("POST")
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap();
        let (status, answer) = app.raw(request).await;
        assert!(
            status.is_client_error(),
            "{uri} {body:.80}: {status} {answer}"
        );
    }
    // None of that locked or changed the account.
    let stored = app
        .store
        .find_account(AccountKey::Nik(&participant(1).nik))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.account.guard.consecutive_failures(), 0);
}

async fn codes_are_rate_limited<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    // Each new-device login sends a code to the same phone: a burst of them is refused.
    let mut last = (StatusCode::OK, Value::Null);
    for n in 0..6 {
        last = app.login(&nik, PASSWORD, &format!("device-{n}")).await;
        if last.0 == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(last.0, StatusCode::ACCEPTED);
    }
    assert_eq!(last.0, StatusCode::TOO_MANY_REQUESTS, "{}", last.1);
    // The per-flow cap (restarting the same login) comes before the destination's ceiling.
    assert!(
        ["rate_limited", "resend_limit_reached"].contains(&last.1["code"].as_str().unwrap()),
        "{}",
        last.1
    );
    assert!(last.1["rule"].is_string());
    assert!(last.1["retry_after"].as_u64().unwrap() > 0);
}

async fn the_builtin_captcha_serves_a_png_and_refuses_a_wrong_answer<S: Store>(store: S) {
    let clock = ManualClock::new(t0());
    let builtin =
        gerbang_core::BuiltinCaptcha::new([3; 32], Arc::new(clock), Duration::minutes(5), 5);
    let app = App::with_captcha(store, CaptchaGate::Builtin(Arc::new(builtin))).await;
    let (status, challenge) = app.call("GET", "/v1/captcha", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        challenge["image"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    let p = participant(1);
    let (status, body) = app
        .post(
            "/v1/accounts/registration",
            json!({"identifier": p.nik.as_str(), "birth_date": p.birth_date.to_string(),
                   "captcha": {"token": challenge["token"], "answer": "?????"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("captcha_wrong"))
    );
    let (status, body) = app
        .post(
            "/v1/accounts/registration",
            json!({"identifier": p.nik.as_str(), "birth_date": p.birth_date.to_string(),
                   "captcha": {"token": "forged", "answer": "abcde"}}),
        )
        .await;
    assert!(status.is_client_error());
    assert!(body["code"].as_str().unwrap().starts_with("captcha_"));
}

async fn the_openapi_document_is_served_and_names_every_account_route<S: Store>(store: S) {
    let app = App::new(store).await;
    let (status, doc) = app.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/v1/captcha",
        "/v1/accounts/registration/contact",
        "/v1/accounts/login/confirm",
        "/v1/accounts/flows/resend",
        "/v1/session",
        "/v1/session/contact/confirm",
        "/v1/introspect",
    ] {
        assert!(paths.contains_key(route), "{route}");
    }
    let login = &doc["paths"]["/v1/accounts/login"]["post"];
    assert!(login["responses"]["200"].is_object());
    assert!(login["responses"]["202"].is_object());
    for status in ["400", "401", "423", "429", "503"] {
        assert!(login["responses"][status].is_object(), "{status}");
    }
}

async fn an_email_change_is_authorised_by_the_old_email_and_needs_no_cool_off<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    let session = app.session(&nik, PASSWORD, DEVICE_A).await;
    let (status, body) = app
        .post_as(
            &session,
            "/v1/session/contact",
            json!({"to": "budi.baru@example.com", "locale": "en"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (code, to) = app.code(&body["verification"]["id"]).await;
    assert_eq!(to, "peserta1@example.com", "the old email authorises");
    let flow = body["flow"].clone();
    // A wrong code at the first step changes nothing.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, _) = app
        .post_as(
            &session,
            "/v1/session/contact/confirm",
            json!({"flow": flow, "code": wrong}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .post_as(
            &session,
            "/v1/session/contact/confirm",
            json!({"flow": flow, "code": code, "locale": "en"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (code, to) = app.code(&body["verification"]["id"]).await;
    assert_eq!(to, "budi.baru@example.com");
    let (status, body) = app
        .post_as(
            &session,
            "/v1/session/contact/confirm",
            json!({"flow": flow, "code": code, "locale": "en"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["email"], "b***@example.com");
    assert!(
        body["account"].get("cooling_off_until").is_none(),
        "only a phone change cools off"
    );
    // The old email and the phone were told, in English.
    let inbox = app.inbox().await;
    let mut told: Vec<&str> = inbox
        .iter()
        .filter(|m| m["text"].as_str().unwrap().contains("was changed"))
        .map(|m| m["to"].as_str().unwrap())
        .collect();
    told.sort_unstable();
    let phone = participant(1).phone.unwrap();
    assert_eq!(told, vec![phone.e164(), "peserta1@example.com"]);
    // The new email logs in.
    let (status, _) = app.login("budi.baru@example.com", PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.login("peserta1@example.com", PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn a_birth_date_cannot_be_guessed_by_trying_and_an_address_is_limited<S: Store>(store: S) {
    let app = App::behind_balancer(store).await;
    let p = participant(1);
    let guess = |day: u32, from: &str| {
        let body = json!({"identifier": p.nik.as_str(),
                          "birth_date": format!("1950-01-{:02}", day % 28 + 1),
                          "captcha": {"token": "t", "answer": "ok"}});
        Request::builder()
            .method("POST")
            .uri("/v1/accounts/registration")
            .header("content-type", "application/json")
            .header("x-forwarded-for", format!("{from}, 10.0.0.1"))
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    // Ten guesses for one NIK, each from another address: all "not found"; the eleventh is refused
    // even with the right birth date.
    for day in 0..10 {
        let (status, _) = app.raw(guess(day, &format!("198.51.100.{day}"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, body) = app.identify(&p).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "too_many_attempts");
    assert!(body["retry_after"].as_u64().unwrap() > 0);
    assert!(body["message"]["id"].as_str().unwrap().contains("WIB"));
    // After the penalty the right birth date works.
    app.clock.advance(Duration::hours(2));
    let (status, _) = app.identify(&p).await;
    assert_eq!(status, StatusCode::OK);
    // One address: 120 lookups or logins an hour, whatever the identifiers.
    for n in 0..120 {
        let (status, body) = app
            .raw({
                let body = json!({"identifier": participant(1000 + n).nik.as_str(), "password": "x",
                                  "device": {"id": "d"}});
                Request::builder()
                    .method("POST")
                    .uri("/v1/accounts/login")
                    .header("content-type", "application/json")
                    .header("x-forwarded-for", "203.0.113.9")
                    .body(Body::from(body.to_string()))
                    .unwrap()
            })
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{n}: {body}");
    }
    let (status, body) = app.raw(guess(3, "203.0.113.9")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    // Another address is not held back.
    let (status, _) = app.raw(guess(3, "203.0.113.10")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn recover(app: &App<impl Store>, identifier: &str, birth_date: &str) -> (StatusCode, Value) {
    app.post(
        "/v1/accounts/recovery",
        json!({"identifier": identifier, "birth_date": birth_date,
               "captcha": {"token": "t", "answer": "ok"}}),
    )
    .await
}

fn without_request_id(mut body: Value) -> Value {
    if let Some(object) = body.as_object_mut() {
        object.remove("request_id");
    }
    body
}

fn median(mut samples: Vec<std::time::Duration>) -> std::time::Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

async fn recovery_tells_someone_who_knows_only_an_identifier_nothing<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    let one = participant(1);
    let wrong_date = (one.birth_date + Duration::days(1)).to_string();
    let email = one.email.as_ref().unwrap().as_str().to_owned();
    let unknown = participant(5);
    // Known account, wrong birth date; unknown NIK; participant without an account (right birth
    // date); the account's email with a wrong birth date; an email nobody has.
    let cases: Vec<(String, String)> = vec![
        (nik.clone(), wrong_date.clone()),
        (
            unknown.nik.as_str().to_owned(),
            unknown.birth_date.to_string(),
        ),
        (
            participant(2).nik.as_str().to_owned(),
            participant(2).birth_date.to_string(),
        ),
        (email.clone(), wrong_date.clone()),
        ("nobody@example.com".into(), wrong_date.clone()),
    ];
    let mut answers = Vec::new();
    for (identifier, date) in &cases {
        let (status, body) = recover(&app, identifier, date).await;
        answers.push((status, without_request_id(body)));
    }
    assert_eq!(answers[0].0, StatusCode::NOT_FOUND, "{:?}", answers[0]);
    assert_eq!(answers[0].1["code"], "recovery_unmatched");
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "distinguishable: {answers:#?}"
    );
    assert!(
        !answers[0].1.to_string().contains("****"),
        "nothing masked is shown: {}",
        answers[0].1
    );
    // The right birth date shows the channels.
    let (status, body) = recover(&app, &email, &one.birth_date.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["channels"].as_array().unwrap().len(), 2);

    // Timing: the three kinds of refusal, interleaved so that the machine's noise hits each
    // alike, take the same time (the medians within a factor of two; before, an unknown NIK
    // answered without the account's registry lookup and a known one wrote a flow).
    let timed = [&cases[0], &cases[1], &cases[2]];
    let mut times: Vec<Vec<std::time::Duration>> = vec![Vec::new(); timed.len()];
    for _ in 0..40 {
        // Past the per-identifier lookup limit's window, so that no try meets a 429.
        app.clock.advance(Duration::minutes(61));
        for (i, (identifier, date)) in timed.iter().enumerate() {
            let started = std::time::Instant::now();
            let (status, _) = recover(&app, identifier, date).await;
            times[i].push(started.elapsed());
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
    }
    let medians: Vec<_> = times.into_iter().map(median).collect();
    let (fastest, slowest) = (
        medians.iter().min().copied().unwrap(),
        medians.iter().max().copied().unwrap(),
    );
    assert!(
        slowest < fastest * 2,
        "refusals take different times: {medians:?}"
    );
}

async fn an_email_is_looked_up_for_recovery_at_most_ten_times_an_hour<S: Store>(store: S) {
    let app = App::new(store).await;
    app.register(1).await;
    let email = participant(1).email.unwrap().as_str().to_owned();
    let wrong_date = "1999-01-01";
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(recover(&app, &email, wrong_date).await.0);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::NOT_FOUND)
            .count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(statuses[11], StatusCode::TOO_MANY_REQUESTS);
    // The same address in other letters is the same identifier.
    let (status, _) = recover(&app, &email.to_uppercase(), wrong_date).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

async fn a_kpj_number_registers_logs_in_and_recovers_like_a_card_number<S: Store>(store: S) {
    let app = App::new(store).await;
    let p = participant(1);
    let kpj = p
        .kpj_number
        .as_ref()
        .expect("participant 1 has a KPJ number")
        .as_str()
        .to_owned();
    let (status, body) = app
        .post(
            "/v1/accounts/registration",
            json!({"identifier": kpj, "birth_date": p.birth_date.to_string(),
                   "captcha": {"token": "t", "answer": "ok"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["name"].as_str().unwrap().contains('*'));
    app.register(1).await;
    let (status, body) = app.login(&kpj, PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = recover(&app, &kpj, &p.birth_date.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Spaced as printed on the card.
    let spaced = format!("{} {} {}", &kpj[..3], &kpj[3..7], &kpj[7..]);
    let (status, body) = app.login(&spaced, PASSWORD, DEVICE_A).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

async fn a_malformed_identifier_is_refused_by_the_rule_it_breaks_with_what_the_step_accepts<
    S: Store,
>(
    store: S,
) {
    let app = App::new(store).await;
    let register = |identifier: &'static str| {
        app.post(
            "/v1/accounts/registration",
            json!({"identifier": identifier, "birth_date": "1980-08-17",
                   "captcha": {"token": "t", "answer": "ok"}}),
        )
    };
    // Province 99, a 32nd day, sequence 0000, 15 digits, letters, an email.
    let cases = [
        ("9971011708800001", "nik_province"),
        ("3171013208800001", "nik_date"),
        ("3171011708800000", "nik_sequence"),
        ("317101170880000", "identifier_length"),
        ("nik saya", "identifier_invalid"),
        ("budi@example.com", "identifier_invalid"),
    ];
    for (identifier, code) in cases {
        let (status, body) = register(identifier).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{identifier}: {body}");
        assert_eq!(body["code"], code, "{identifier}: {body}");
        // Registration does not take an email, so its answer never offers one.
        let words = body["message"].to_string().to_lowercase();
        assert!(!words.contains("email"), "{identifier}: {body}");
    }
    let (_, body) = register("317101170880000").await;
    assert!(
        body["message"]["en"].as_str().unwrap().contains("15"),
        "{body}"
    );
    assert!(
        body["message"]["id"].as_str().unwrap().contains("15"),
        "{body}"
    );
    // Recovery takes an email, and says so.
    let (status, body) = recover(&app, "12345", "1980-08-17").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("identifier_length"))
    );
    assert!(
        body["message"]["en"].as_str().unwrap().contains("email"),
        "{body}"
    );
    let (status, body) = recover(&app, "budi@", "1980-08-17").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["code"].as_str().unwrap().starts_with("email_"),
        "{body}"
    );
}

async fn account_ids_in_answers_are_opaque<S: Store>(store: S) {
    let app = App::new(store).await;
    let first = app.register(1).await;
    let second = app.register(2).await;
    let mut ids = Vec::new();
    for nik in [&first, &second] {
        let token = app.session(nik, PASSWORD, DEVICE_A).await;
        let (status, body) = app.call("GET", "/v1/session", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = body["account"]["id"].as_str().unwrap().to_owned();
        assert_eq!(app.introspect(&token, None).await["sub"], id.as_str());
        ids.push(id);
    }
    for id in &ids {
        let hex = id.strip_prefix("acct_").unwrap();
        assert_eq!(hex.len(), 24, "{id}");
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(ids[0], ids[1]);
    assert!(!ids.contains(&"acct_1".to_owned()) && !ids.contains(&"acct_2".to_owned()));
}

async fn a_builtin_captcha_is_judged_once_across_instances_even_when_answered_wrongly<S: Store>(
    store: S,
) {
    // Two instances sharing the store and the key, as behind a load balancer.
    let builtin = || {
        Arc::new(gerbang_core::BuiltinCaptcha::new(
            [3; 32],
            Arc::new(ManualClock::new(t0())),
            Duration::minutes(5),
            5,
        ))
    };
    let (one, other) = (builtin(), builtin());
    let first = App::with_captcha(store.clone(), CaptchaGate::Builtin(one.clone())).await;
    let second = App::with_captcha(store, CaptchaGate::Builtin(other)).await;
    let identify = |app: &'static str, token: String, answer: String| {
        let app = if app == "first" { &first } else { &second };
        let p = participant(1);
        async move {
            app.post(
                "/v1/accounts/registration",
                json!({"identifier": p.nik.as_str(), "birth_date": p.birth_date.to_string(),
                       "captcha": {"token": token, "answer": answer}}),
            )
            .await
        }
    };
    // Solved once: accepted on one instance, refused as used on the other (and on the first).
    let (challenge, answer) = one.challenge_with_answer().unwrap();
    let (status, body) = identify("first", challenge.token.clone(), answer.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for app in ["second", "first"] {
        let (status, body) = identify(app, challenge.token.clone(), answer.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("captcha_used")),
            "{app}"
        );
    }
    // A wrong reading spends the challenge: the right one afterwards is refused too.
    let (challenge, answer) = one.challenge_with_answer().unwrap();
    let (_, body) = identify("second", challenge.token.clone(), "AAAAA".into()).await;
    assert_eq!(body["code"], "captcha_wrong");
    let (_, body) = identify("first", challenge.token.clone(), answer.clone()).await;
    assert_eq!(body["code"], "captcha_used");
    // Eight concurrent answers of one solved challenge: exactly one passes.
    let (challenge, answer) = one.challenge_with_answer().unwrap();
    let tries = (0..8).map(|i| {
        identify(
            if i % 2 == 0 { "first" } else { "second" },
            challenge.token.clone(),
            answer.clone(),
        )
    });
    let answers = futures::future::join_all(tries).await;
    let passed = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(passed, 1, "{answers:?}");
}

async fn a_step_up_made_before_a_phone_change_is_not_fresh_during_the_cool_off<S: Store>(store: S) {
    let app = App::new(store).await;
    let nik = app.register(1).await;
    let token = app.session(&nik, PASSWORD, DEVICE_A).await;
    let details = json!({"bank_account": "1234567890"});
    let (status, body) = app
        .post_as(
            &token,
            "/v1/session/step-up",
            json!({"action": "bank_account_change", "details": details, "action_hint": "7890"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (code, _) = app.code(&body["verification"]["id"]).await;
    let (status, body) = app
        .post_as(
            &token,
            "/v1/session/step-up/confirm",
            json!({"flow": body["flow"], "code": code, "details": details}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.introspect(&token, Some("bank_account_change")).await["step_up_fresh"],
        true
    );
    // Then the phone changes, a minute later: well within the step-up window.
    app.clock.advance(Duration::minutes(1));
    let token = change_phone_in(&app, token, "081355550123").await;
    let answer = app.introspect(&token, Some("bank_account_change")).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["step_up_fresh"], false, "{answer}");
    assert!(answer["cooling_off_until"].is_string(), "{answer}");
}

async fn after_five_wrong_codes_the_flow_resends_a_fresh_code_without_starting_over<S: Store>(
    store: S,
) {
    let app = App::new(store).await;
    let p = participant(1);
    let (_, body) = app.identify(&p).await;
    let flow = body["flow"].clone();
    let (status, body) = app
        .post(
            "/v1/accounts/registration/contact",
            json!({"flow": flow, "phone": "081234567001", "channel": "sms", "password": PASSWORD, "password_confirmation": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let spent = body["verification"]["id"].clone();
    let (code, _) = app.code(&spent).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut last = (StatusCode::OK, Value::Null);
    for _ in 0..5 {
        last = app
            .post(
                "/v1/accounts/registration/confirm",
                json!({"flow": flow, "code": wrong}),
            )
            .await;
    }
    assert_eq!(last.0, StatusCode::GONE, "{}", last.1);
    // The old code is dead, even typed right.
    let (status, _) = app
        .post(
            "/v1/accounts/registration/confirm",
            json!({"flow": flow, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
    // "Ask for a new code": still under the countdown...
    let (status, body) = app
        .post("/v1/accounts/flows/resend", json!({"flow": flow}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("resend_countdown")),
        "{body}"
    );
    // ...then a fresh code on the same flow, without the captcha or the password again.
    app.clock.advance(Duration::seconds(60));
    let (status, body) = app
        .post("/v1/accounts/flows/resend", json!({"flow": flow}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["verification"]["id"].clone();
    assert_ne!(fresh, spent);
    assert_eq!(body["verification"]["attempts_left"], 5, "{body}");
    let (code, to) = app.code(&fresh).await;
    assert_eq!(to, "+6281234567001");
    let (status, body) = app
        .post(
            "/v1/accounts/registration/confirm",
            json!({"flow": flow, "code": code}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
