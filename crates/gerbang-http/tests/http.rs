//! The HTTP surface driven in-process against a real store on the backend under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use gerbang_core::{DeliveryWorker, DevInbox, VerificationEngine};
use gerbang_domain::ManualClock;
use gerbang_domain::verification::code::CodeKey;
use gerbang_http::{ApiClients, HttpState, router};
use gerbang_store::Store;
use gerbang_testkit::store_test;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn state<S: Store>(store: S, clock: ManualClock) -> HttpState<S> {
    HttpState {
        accounts: None,
        engine: VerificationEngine::new(
            store.clone(),
            Arc::new(clock),
            CodeKey::new([1; 32]),
            Default::default(),
        ),
        store,
        clients: ApiClients::new(
            &[
                ("app".into(), "app-token".into()),
                ("claims".into(), "claims-token".into()),
            ],
            None,
        ),
        dev_inbox: true,
        trust_forwarded_for: false,
        webhooks: None,
        webhook_counters: Default::default(),
        metrics: Default::default(),
    }
}

/// The API as a participant app's back end and another internal service see it.
struct Api<S> {
    router: axum::Router,
    store: S,
    clock: ManualClock,
}

impl<S: Store> Api<S> {
    fn new(store: S) -> Self {
        let clock = ManualClock::new(t0());
        Self {
            router: router(state(store.clone(), clock.clone())),
            store,
            clock,
        }
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Body::from(json.to_owned())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "{method} {uri} answered {status}"
        );
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, uri: &str, body: &str) -> (StatusCode, Value) {
        let (status, _, json) = self.send("POST", uri, Some("app-token"), Some(body)).await;
        (status, json)
    }

    async fn start(&self, to: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/verifications",
                &format!(r#"{{"purpose":"registration","channel":"sms","to":"{to}"}}"#),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Delivers what is queued, then reads the code for `id` off the development inbox.
    async fn last_code(&self, id: &str) -> String {
        DeliveryWorker::new(self.store.clone(), DevInbox, Arc::new(self.clock.clone()))
            .deliver_next()
            .await
            .unwrap();
        let (status, _, inbox) = self.send("GET", "/dev/inbox.json", None, None).await;
        assert_eq!(status, StatusCode::OK);
        let text = inbox
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["verification"] == id)
            .expect("a message for the verification")["text"]
            .as_str()
            .unwrap()
            .to_owned();
        text.split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .unwrap()
            .to_owned()
    }
}

async fn call<S: Store>(
    store: &S,
    method: &str,
    uri: &str,
    request_id: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let response = router(state(store.clone(), ManualClock::new(t0())))
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

store_test!(
    a_verification_is_started_delivered_checked_once_and_never_shows_its_code,
    bad_input_gets_a_4xx_with_a_stable_code_and_changes_nothing,
    resend_during_countdown_answers_429_with_the_same_retry_at_every_time,
    a_rate_limit_refusal_names_its_rule_and_when_to_come_back,
    a_verification_is_invisible_to_another_client_and_to_strangers,
    healthz_answers_ok,
    readyz_is_ready_while_the_database_answers_and_503_with_retry_after_once_it_does_not,
    unknown_routes_and_methods_answer_in_the_error_shape,
    a_well_formed_request_id_is_echoed_and_a_bad_one_replaced,
    a_resend_at_the_instant_shown_goes_through_and_the_cap_wait_is_told,
);

async fn healthz_answers_ok<S: Store>(store: S) {
    let (status, _, body) = call(&store, "GET", "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

async fn readyz_is_ready_while_the_database_answers_and_503_with_retry_after_once_it_does_not<
    S: Store,
>(
    store: S,
) {
    let (status, _, body) = call(&store, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["database"], store.backend());
    store.close().await;
    let (status, headers, body) = call(&store, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["retry_after"], 5);
    assert_eq!(headers["retry-after"], "5");
    assert!(
        body["message"]["id"]
            .as_str()
            .unwrap()
            .contains("basis data")
    );
    assert!(body["message"]["en"].as_str().unwrap().contains("database"));
    assert!(!body["request_id"].as_str().unwrap().is_empty());
}

async fn unknown_routes_and_methods_answer_in_the_error_shape<S: Store>(store: S) {
    let (status, _, body) = call(&store, "GET", "/no/such/thing?nik=3171011708450001", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _, body) = call(&store, "DELETE", "/healthz", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

async fn a_well_formed_request_id_is_echoed_and_a_bad_one_replaced<S: Store>(store: S) {
    let (_, headers, _) = call(&store, "GET", "/healthz", Some("abc-123")).await;
    assert_eq!(headers["x-request-id"], "abc-123");
    let (_, headers, body) = call(&store, "GET", "/nowhere", Some("<script>")).await;
    let id = headers["x-request-id"].to_str().unwrap();
    assert_ne!(id, "<script>");
    assert_eq!(body["request_id"], id);
}

async fn a_verification_is_started_delivered_checked_once_and_never_shows_its_code<S: Store>(
    store: S,
) {
    let api = Api::new(store);
    let (status, started) = api
        .post(
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"sms","to":"0812-1111-2222","locale":"id",
                "participant":{"account":"acct-1"},"origin":{"ip":"203.0.113.9","device":"dev-1"}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["status"], "pending");
    assert_eq!(started["to"], "0812****2222");
    assert_eq!(started["resend_after"], 60);
    assert_eq!(started["attempts_left"], 5);
    let id = started["id"].as_str().unwrap().to_owned();
    let code = api.last_code(&id).await;
    assert!(!started.to_string().contains(&code));
    let (status, _, shown) = api
        .send(
            "GET",
            &format!("/v1/verifications/{id}"),
            Some("app-token"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!shown.to_string().contains(&code));
    let (status, verified) = api
        .post(
            &format!("/v1/verifications/{id}/check"),
            &format!(r#"{{"code":"{code}"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["status"], "verified");
    let (status, replay) = api
        .post(
            &format!("/v1/verifications/{id}/check"),
            &format!(r#"{{"code":"{code}"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(replay["code"], "otp_already_used");
    assert!(
        replay["message"]["id"]
            .as_str()
            .unwrap()
            .contains("sudah digunakan")
    );
}

async fn bad_input_gets_a_4xx_with_a_stable_code_and_changes_nothing<S: Store>(store: S) {
    let api = Api::new(store);
    let id = api.start("081233334444").await;
    let cases: &[(&str, &str, StatusCode, &str)] = &[
        (
            "/v1/verifications",
            r#"{"purpose":"lottery","channel":"sms","to":"081233334444"}"#,
            StatusCode::BAD_REQUEST,
            "purpose_unknown",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"pigeon","to":"081233334444"}"#,
            StatusCode::BAD_REQUEST,
            "channel_unknown",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"sms","to":"0820 1234 5678"}"#,
            StatusCode::BAD_REQUEST,
            "phone_unallocated_prefix",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"email","to":"not-an-email"}"#,
            StatusCode::BAD_REQUEST,
            "email_malformed",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"sms","to":"081233334444","extra":1}"#,
            StatusCode::BAD_REQUEST,
            "body_invalid",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"sms","to":"081233334444","action":"benefit_claim"}"#,
            StatusCode::BAD_REQUEST,
            "action_not_allowed",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"step_up","channel":"sms","to":"081233334444"}"#,
            StatusCode::BAD_REQUEST,
            "action_missing",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"sms","to":"081233334444","origin":{"ip":"999.1.1.1"}}"#,
            StatusCode::BAD_REQUEST,
            "origin_ip_invalid",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"sms","to":"081233334444","participant":{"nik":"1234"}}"#,
            StatusCode::BAD_REQUEST,
            "nik_length",
        ),
        (
            "/v1/verifications",
            "{not json",
            StatusCode::BAD_REQUEST,
            "body_malformed",
        ),
        (
            "/v1/verifications/vf_nope/check",
            r#"{"code":"123456"}"#,
            StatusCode::NOT_FOUND,
            "verification_not_found",
        ),
        (
            "/v1/verifications/vf_00000000000000000000000000000000/check",
            r#"{"code":"123456"}"#,
            StatusCode::NOT_FOUND,
            "verification_not_found",
        ),
    ];
    for (uri, body, status, code) in cases {
        let (got, answer) = api.post(uri, body).await;
        assert_eq!(
            (got, answer["code"].as_str().unwrap_or_default()),
            (*status, *code),
            "{uri} {body}: {answer}"
        );
        assert!(answer["message"]["id"].is_string() && answer["message"]["en"].is_string());
    }
    for code in ["12a456", "12345", "1234567", ""] {
        let (status, answer) = api
            .post(
                &format!("/v1/verifications/{id}/check"),
                &format!(r#"{{"code":"{code}"}}"#),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["code"], "otp_malformed");
    }
    // Malformed codes cost no attempt; nothing else was created for the refused starts.
    let (_, _, shown) = api
        .send(
            "GET",
            &format!("/v1/verifications/{id}"),
            Some("app-token"),
            None,
        )
        .await;
    assert_eq!(shown["attempts_left"], 5);
    assert_eq!(api.store.queued_messages().await.unwrap(), 1);
    let (status, _, answer) = api
        .send("POST", "/v1/verifications", Some("app-token"), None)
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer["code"], "body_not_json");
}

async fn resend_during_countdown_answers_429_with_the_same_retry_at_every_time<S: Store>(store: S) {
    let api = Api::new(store);
    let id = api.start("081255556666").await;
    let uri = format!("/v1/verifications/{id}/resend");
    let mut seen = Vec::new();
    for seconds in [1, 30, 59] {
        api.clock.set(t0() + Duration::seconds(seconds));
        let (status, headers, answer) = api.send("POST", &uri, Some("app-token"), None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer["code"], "resend_countdown");
        assert_eq!(answer["retry_after"], 60 - seconds);
        assert_eq!(headers["retry-after"], (60 - seconds).to_string().as_str());
        seen.push(answer["retry_at"].as_str().unwrap().to_owned());
    }
    assert!(
        seen.iter().all(|at| at == "2027-01-15T08:01:00Z"),
        "{seen:?}"
    );
    api.clock.set(t0() + Duration::seconds(60));
    let (status, _, resent) = api.send("POST", &uri, Some("app-token"), None).await;
    assert_eq!(status, StatusCode::OK, "{resent}");
    assert_eq!(resent["sends"], 2);
    assert_eq!(resent["resend_after"], 120);
}

async fn a_rate_limit_refusal_names_its_rule_and_when_to_come_back<S: Store>(store: S) {
    let api = Api::new(store);
    for purpose in [
        "registration",
        "login_new_device",
        "recovery",
        "contact_change_authorisation",
        "contact_change_proof",
    ] {
        let (status, body) = api
            .post(
                "/v1/verifications",
                &format!(r#"{{"purpose":"{purpose}","channel":"sms","to":"081277778888"}}"#),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, headers, refused) = api
        .send(
            "POST",
            "/v1/verifications",
            Some("app-token"),
            Some(r#"{"purpose":"registration","channel":"whatsapp","to":"+62 812 7777 8888"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused["code"], "rate_limited");
    assert_eq!(refused["rule"], "destination_5_per_15m");
    assert_eq!(refused["retry_after"], 1800);
    assert_eq!(headers["retry-after"], "1800");
    assert!(refused["message"]["id"].as_str().unwrap().contains("WIB"));
}

async fn a_verification_is_invisible_to_another_client_and_to_strangers<S: Store>(store: S) {
    let api = Api::new(store);
    let id = api.start("081299990000").await;
    let uri = format!("/v1/verifications/{id}");
    let (status, _, answer) = api.send("GET", &uri, Some("claims-token"), None).await;
    assert_eq!(
        (status, answer["code"].as_str().unwrap()),
        (StatusCode::NOT_FOUND, "verification_not_found")
    );
    for token in [None, Some("wrong-token")] {
        let (status, _, answer) = api.send("GET", &uri, token, None).await;
        assert_eq!(
            (status, answer["code"].as_str().unwrap()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
    }
}

/// Instants are shown rounded up and waits counted from the engine's clock: a resend made at the
/// `resend_at` shown, or at a refusal's `retry_at`, is never early; after the last resend the
/// answer tells the cap's wait (30 minutes), not the ladder's last step.
async fn a_resend_at_the_instant_shown_goes_through_and_the_cap_wait_is_told<S: Store>(store: S) {
    let api = Api::new(store);
    // Between whole seconds, as real requests are.
    api.clock.advance(chrono::Duration::milliseconds(700));
    let (status, body) = api
        .post(
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"sms","to":"081234567890"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["resend_after"], 60, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let resend = format!("/v1/verifications/{id}/resend");
    let mut shown = body["resend_at"].as_str().unwrap().to_owned();
    // The ladder: 60, 120, 300 s; each time pressed exactly at the instant shown.
    for (round, countdown) in [120, 300].into_iter().enumerate() {
        let at: DateTime<Utc> = shown.parse().unwrap();
        assert_eq!(at.timestamp_subsec_millis(), 0, "{shown}");
        // A second early is refused, with a retry_at no earlier than the real end.
        api.clock.set(at - chrono::Duration::seconds(1));
        let (status, early) = api.post(&resend, "{}").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{early}");
        let retry_at: DateTime<Utc> = early["retry_at"].as_str().unwrap().parse().unwrap();
        assert!(retry_at > at - chrono::Duration::seconds(1), "{early}");
        api.clock.set(retry_at);
        let (status, body) = api.post(&resend, "{}").await;
        assert_eq!(status, StatusCode::OK, "round {round}: {body}");
        assert_eq!(body["resend_after"], countdown, "{body}");
        shown = body["resend_at"].as_str().unwrap().to_owned();
    }
    // The third resend: now the flow's cap (4 codes) is reached, so the next is 30 minutes away.
    api.clock.set(shown.parse().unwrap());
    let (status, body) = api.post(&resend, "{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resend_after"], 30 * 60, "{body}");
    let at: DateTime<Utc> = body["resend_at"].as_str().unwrap().parse().unwrap();
    api.clock.set(at - chrono::Duration::seconds(1));
    let (status, refused) = api.post(&resend, "{}").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    let retry_at: DateTime<Utc> = refused["retry_at"].as_str().unwrap().parse().unwrap();
    assert!(retry_at <= at, "told {at}, refused until {retry_at}");
    api.clock.set(at);
    let (status, body) = api.post(&resend, "{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
