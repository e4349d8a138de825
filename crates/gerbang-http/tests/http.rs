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
        settings: Default::default(),
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
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let (method, uri) = (method.to_owned(), uri.to_owned());
        if let Err(undeclared) =
            gerbang_http::openapi::declared(&method, &uri, status.as_u16(), body["code"].as_str())
        {
            panic!("{undeclared}: {body}");
        }
        (status, headers, body)
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
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (method, uri) = (method.to_owned(), uri.to_owned());
    if let Err(undeclared) =
        gerbang_http::openapi::declared(&method, &uri, status.as_u16(), body["code"].as_str())
    {
        panic!("{undeclared}: {body}");
    }
    (status, headers, body)
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
    a_body_over_16_kib_answers_413_body_too_large_on_every_route_and_one_of_16_kib_is_read,
    a_body_of_the_wrong_shape_names_the_field_in_our_words,
    metrics_asks_for_its_token_when_one_is_configured,
    a_keep_alive_connection_is_reused_after_refusals_whose_bodies_arrive_late,
    slow_clients_are_cut_off_and_connections_beyond_the_cap_wait,
    accept_language_chooses_the_message_language_when_the_body_names_none,
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
            r#"{"purpose":"registration","channel":"sms","to":"budi@example.id"}"#,
            StatusCode::BAD_REQUEST,
            "channel_destination_mismatch",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"whatsapp","to":"budi@example.id"}"#,
            StatusCode::BAD_REQUEST,
            "channel_destination_mismatch",
        ),
        (
            "/v1/verifications",
            r#"{"purpose":"registration","channel":"email","to":"0812 3333 4444"}"#,
            StatusCode::BAD_REQUEST,
            "channel_destination_mismatch",
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

async fn a_body_over_16_kib_answers_413_body_too_large_on_every_route_and_one_of_16_kib_is_read<
    S: Store,
>(
    store: S,
) {
    let api = Api::new(store);
    let id = api.start("081244445555").await;
    let limit = gerbang_http::body::BODY_LIMIT;
    let too_big = format!(r#"{{"code":"123456","pad":"{}"}}"#, "x".repeat(limit));
    let three_mib = format!(r#"{{"channel":"sms","pad":"{}"}}"#, "x".repeat(3 << 20));
    let routes = [
        ("POST", "/v1/verifications".to_owned(), &too_big),
        ("POST", format!("/v1/verifications/{id}/check"), &too_big),
        ("POST", format!("/v1/verifications/{id}/resend"), &three_mib),
        ("POST", format!("/v1/verifications/{id}/cancel"), &too_big),
        ("POST", "/v1/accounts/login".to_owned(), &too_big),
        ("POST", "/v1/session/step-up/confirm".to_owned(), &too_big),
        ("POST", "/v1/introspect".to_owned(), &too_big),
        ("GET", "/healthz".to_owned(), &too_big),
        ("POST", "/no/such/route".to_owned(), &too_big),
    ];
    for (method, uri, body) in routes {
        // With a Content-Length (refused before reading) and without one (read up to the limit).
        for declared in [true, false] {
            let mut request = Request::builder()
                .method(method)
                .uri(&uri)
                .header("authorization", "Bearer app-token")
                .header("content-type", "application/json");
            if declared {
                request = request.header("content-length", body.len());
            }
            let response = api
                .router
                .clone()
                .oneshot(request.body(Body::from(body.clone())).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
            assert_eq!(response.headers()["content-type"], "application/json");
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let answer: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(answer["code"], "body_too_large", "{uri}");
            assert!(answer["message"]["id"].as_str().unwrap().contains("16 KiB"));
            assert!(answer["message"]["en"].as_str().unwrap().contains("16 KiB"));
            assert!(answer["request_id"].is_string());
        }
    }
    // Exactly at the limit is read and parsed (padded with whitespace, which JSON allows).
    let start = r#"{"purpose":"registration","channel":"sms","to":"081244446666"}"#;
    let padded = format!("{start}{}", " ".repeat(limit - start.len()));
    assert_eq!(padded.len(), limit);
    let (status, body) = api.post("/v1/verifications", &padded).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn a_body_of_the_wrong_shape_names_the_field_in_our_words<S: Store>(store: S) {
    let api = Api::new(store);
    let id = api.start("081244447777").await;
    let cases = [
        (
            "/v1/verifications".to_owned(),
            r#"{"purpose":"registration","channel":"sms"}"#,
            "to",
            "The field `to` is required.",
            "Kolom `to` wajib diisi.",
        ),
        (
            "/v1/verifications".to_owned(),
            r#"{"purpose":"registration","channel":"sms","to":"081244447777","colour":1}"#,
            "colour",
            "The field `colour` is unknown; leave it out.",
            "Kolom `colour` tidak dikenal; hapus kolom ini.",
        ),
        (
            format!("/v1/verifications/{id}/check"),
            r#"{"code":123456}"#,
            "code",
            "The field `code` must be text (a JSON string).",
            "Kolom `code` harus berupa teks.",
        ),
        (
            format!("/v1/verifications/{id}/resend"),
            r#"{"origin":{"ip":"203.0.113.1","devices":"x"}}"#,
            "origin.devices",
            "The field `origin.devices` is unknown; leave it out.",
            "Kolom `origin.devices` tidak dikenal; hapus kolom ini.",
        ),
    ];
    for (uri, body, field, en, id_text) in cases {
        let (status, answer) = api.post(&uri, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}");
        assert_eq!(answer["code"], "body_invalid", "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
        assert_eq!(answer["message"]["en"], en);
        assert_eq!(answer["message"]["id"], id_text);
    }
    // An array where an object belongs: no Rust type names.
    let (status, answer) = api
        .post(&format!("/v1/verifications/{id}/check"), r#"["123456"]"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["code"], "body_invalid");
    let text = answer["message"].to_string();
    assert!(
        !text.contains("struct") && !text.contains("CheckBody"),
        "{text}"
    );
}

async fn metrics_asks_for_its_token_when_one_is_configured<S: Store>(store: S) {
    let open = router(state(store.clone(), ManualClock::new(t0())));
    let get = |authorization: Option<&str>| {
        let mut request = Request::builder().uri("/metrics");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.body(Body::empty()).unwrap()
    };
    assert_eq!(
        open.clone().oneshot(get(None)).await.unwrap().status(),
        StatusCode::OK
    );
    let mut guarded = state(store, ManualClock::new(t0()));
    guarded.settings.metrics_token = Some(gerbang_http::MetricsToken::new("scrape-me"));
    let guarded = router(guarded);
    for refused in [
        None,
        Some("Bearer wrong"),
        Some("scrape-me"),
        Some("Basic scrape-me"),
    ] {
        let response = guarded.clone().oneshot(get(refused)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{refused:?}");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(answer["code"], "unauthorized");
    }
    for admitted in ["Bearer scrape-me", "bearer scrape-me", "BEARER scrape-me"] {
        let response = guarded.clone().oneshot(get(Some(admitted))).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{admitted}");
    }
}

/// The router served on a real socket on port 0, as `gerbang serve` serves it.
async fn serve_on_socket<S: Store>(
    state: HttpState<S>,
    limits: gerbang_http::server::ServerLimits,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gerbang_http::server::serve(
        listener,
        router(state),
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    (address, stop)
}

/// One HTTP/1.1 response read off `stream`: status, lower-cased head, body. `None` if the server
/// closed the connection first.
async fn read_response(stream: &mut tokio::net::TcpStream) -> Option<(u16, String, Value)> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = serde_json::from_slice(&buffer[head_end..head_end + length]).unwrap_or(Value::Null);
    Some((status, head, body))
}

/// Whether the server closes `stream` (end of file, or a reset) within `within`; whatever it
/// answers first is skipped.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let drained = async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, drained).await.is_ok()
}

/// Whether the server has already answered or closed `stream`, asked of the kernel without
/// waiting (a non-blocking peek).
fn settled(stream: tokio::net::TcpStream) -> (bool, tokio::net::TcpStream) {
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(true).unwrap();
    let settled = match stream.peek(&mut [0u8; 1]) {
        Ok(_) => true,
        Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
    };
    (settled, tokio::net::TcpStream::from_std(stream).unwrap())
}

async fn a_keep_alive_connection_is_reused_after_refusals_whose_bodies_arrive_late<S: Store>(
    store: S,
) {
    use tokio::io::AsyncWriteExt;
    let (address, stop) =
        serve_on_socket(state(store, ManualClock::new(t0())), Default::default()).await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let json = r#"{"purpose":"registration","channel":"sms","to":"081200001111"}"#;
    // Each refusal is decided from the head alone; its body is sent a moment after the head, so
    // the server has answered (or would have) before the body is there to be read.
    let refusals = [
        (
            "/v1/verifications",
            "text/plain",
            "Bearer app-token",
            415,
            "body_not_json",
        ),
        (
            "/v1/verifications",
            "application/json",
            "Bearer nope",
            401,
            "unauthorized",
        ),
        (
            "/nowhere",
            "application/json",
            "Bearer app-token",
            404,
            "not_found",
        ),
        (
            "/v1/verifications/vf_x/check",
            "application/json",
            "Bearer app-token",
            400,
            "body_invalid",
        ),
    ];
    for round in 0..3 {
        for (path, content_type, authorization, status, code) in refusals {
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: gerbang\r\ncontent-type: {content_type}\r\n\
                 authorization: {authorization}\r\ncontent-length: {}\r\n\r\n",
                json.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.flush().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            stream.write_all(json.as_bytes()).await.unwrap();
            let answer = read_response(&mut stream).await;
            let (got, head, body) = answer.unwrap_or_else(|| {
                panic!("round {round}: the connection was closed instead of answering {path}")
            });
            assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{path}");
            assert!(!head.contains("connection: close"), "{head}");
        }
    }
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: gerbang\r\n\r\n")
        .await
        .unwrap();
    let (status, _, body) = read_response(&mut stream).await.expect("still open");
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let _ = stop.send(());
}

async fn slow_clients_are_cut_off_and_connections_beyond_the_cap_wait<S: Store>(store: S) {
    use std::time::Duration as Wait;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let mut state = state(store, ManualClock::new(t0()));
    state.settings.body_timeout = Wait::from_secs(1);
    let limits = gerbang_http::server::ServerLimits {
        header_timeout: Wait::from_secs(1),
        max_connections: 2,
    };
    let (address, stop) = serve_on_socket(state, limits).await;
    // Generous: the assertion is that the server closes, not how fast.
    let patience = Wait::from_secs(20);

    // Headers that never end.
    let mut slow_head = TcpStream::connect(address).await.unwrap();
    slow_head
        .write_all(b"POST /v1/verifications HTTP/1.1\r\nhost: gerbang\r\ncontent-")
        .await
        .unwrap();
    // A body that never ends: 408 body_timeout, then closed.
    let mut slow_body = TcpStream::connect(address).await.unwrap();
    slow_body
        .write_all(
            b"POST /v1/verifications HTTP/1.1\r\nhost: gerbang\r\nauthorization: Bearer app-token\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"purpose\":",
        )
        .await
        .unwrap();
    // Both slots are taken: a third connection is not served until one of them is closed.
    let mut waiting = TcpStream::connect(address).await.unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: gerbang\r\n\r\n")
        .await
        .unwrap();

    let (status, _, _) = tokio::time::timeout(patience, read_response(&mut waiting))
        .await
        .expect("served once a slot was free")
        .expect("an answer");
    assert_eq!(status, 200);
    // It was served only after a slow connection had been answered or closed.
    let (head_settled, slow_head) = settled(slow_head);
    let (body_settled, mut slow_body) = settled(slow_body);
    assert!(head_settled || body_settled, "served beyond the cap");
    let mut slow_head = slow_head;

    let (status, head, body) = tokio::time::timeout(patience, read_response(&mut slow_body))
        .await
        .expect("an answer to the slow body")
        .expect("an answer before closing");
    assert_eq!((status, body["code"].as_str()), (408, Some("body_timeout")));
    assert!(head.contains("connection: close"), "{head}");
    assert!(closed_by_server(&mut slow_body, patience).await);
    assert!(
        closed_by_server(&mut slow_head, patience).await,
        "slow headers kept open"
    );

    // An idle keep-alive connection is closed after the header timeout too.
    assert!(
        closed_by_server(&mut waiting, patience).await,
        "idle connection kept open"
    );
    let _ = stop.send(());
}

async fn accept_language_chooses_the_message_language_when_the_body_names_none<S: Store>(store: S) {
    let api = Api::new(store);
    let start = |to: &str, locale: &str, header: Option<&str>| {
        let mut request = Request::builder()
            .method("POST")
            .uri("/v1/verifications")
            .header("authorization", "Bearer app-token")
            .header("content-type", "application/json");
        if let Some(value) = header {
            request = request.header("accept-language", value);
        }
        let body = format!(r#"{{"purpose":"registration","channel":"sms","to":"{to}"{locale}}}"#);
        request.body(Body::from(body)).unwrap()
    };
    let cases = [
        ("081266660001", "", Some("en"), "NEVER"),
        ("081266660002", "", Some("en-GB,en;q=0.9,id;q=0.5"), "NEVER"),
        ("081266660003", "", None, "JANGAN"),
        ("081266660004", "", Some("fr"), "JANGAN"),
        // The body's locale wins over the header.
        ("081266660005", r#","locale":"id""#, Some("en"), "JANGAN"),
        ("081266660006", r#","locale":"en""#, Some("id"), "NEVER"),
    ];
    for (to, locale, header, word) in cases {
        let response = api
            .router
            .clone()
            .oneshot(start(to, locale, header))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let started: Value = serde_json::from_slice(&bytes).unwrap();
        let id = started["id"].as_str().unwrap();
        api.last_code(id).await;
        let (_, _, inbox) = api.send("GET", "/dev/inbox.json", None, None).await;
        let text = inbox
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["verification"] == id)
            .unwrap()["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.contains(word), "{header:?} {locale}: {text}");
    }
}
