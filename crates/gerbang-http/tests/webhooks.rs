#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Status webhooks of delivery providers, driven in-process against a real store on the backend
//! under test, with a stand-in for the binary's provider-specific signature check and parser.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use chrono::{DateTime, Utc};
use gerbang_core::{Courier, DeliveryWorker, HandOff, HandOffFailure, VerificationEngine};
use gerbang_domain::ManualClock;
use gerbang_domain::delivery::receipt::receipt_id_candidates;
use gerbang_domain::delivery::{Cause, DeliveryStatus};
use gerbang_domain::verification::VerificationId;
use gerbang_domain::verification::code::CodeKey;
use gerbang_http::webhooks::BODY_LIMIT;
use gerbang_http::{
    ApiClients, HttpState, RejectionKind, StatusWebhooks, WebhookCounters, WebhookRejection, router,
};
use gerbang_store::{DeliveryAttempt, OutboxMessage, ReceiptUpdate, Store};
use gerbang_testkit::store_test;
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

/// The provider of these tests: its courier's name in the trail and its name in webhook paths.
const PROVIDER: &str = "testwa";
const SECRET: &[u8] = b"webhook-test-secret";
const VERIFY_TOKEN: &str = "verify-me";

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn signature(body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_sha256(SECRET, body)))
}

/// A double for the binary's implementation: `X-Signature: sha256=<hex HMAC of the body>`, and a
/// body `{"statuses": [{"id": "wamid.X", "status": "delivered"}]}`.
struct SignedJson;

impl StatusWebhooks for SignedJson {
    fn subscribe(&self, provider: &str, query: &HashMap<String, String>) -> Option<String> {
        let get = |key: &str| query.get(key).map(String::as_str);
        (provider == PROVIDER
            && get("hub.mode") == Some("subscribe")
            && get("hub.verify_token") == Some(VERIFY_TOKEN))
        .then(|| get("hub.challenge").map(str::to_owned))
        .flatten()
    }

    fn receive(
        &self,
        provider: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReceiptUpdate>, WebhookRejection> {
        if provider != PROVIDER {
            return Err(WebhookRejection::UnknownProvider);
        }
        let signed = headers
            .get("x-signature")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value == signature(body));
        if !signed {
            return Err(WebhookRejection::BadSignature);
        }
        let json: Value = serde_json::from_slice(body)
            .map_err(|_| WebhookRejection::Malformed("not JSON".into()))?;
        let statuses = json["statuses"]
            .as_array()
            .ok_or_else(|| WebhookRejection::Malformed("no statuses array".into()))?;
        statuses
            .iter()
            .map(|entry| {
                let id = entry["id"].as_str();
                let status = entry["status"].as_str().and_then(DeliveryStatus::parse);
                let (Some(id), Some(status)) = (id, status) else {
                    return Err(WebhookRejection::Malformed("a status without id".into()));
                };
                Ok(ReceiptUpdate {
                    provider: PROVIDER.into(),
                    message_ids: receipt_id_candidates(id),
                    status,
                    cause: (status == DeliveryStatus::Delivered).then_some(Cause::Delivered),
                    detail: format!("testwa {}", status.as_str()),
                    at: now,
                })
            })
            .collect()
    }
}

/// Takes every message and names it `wamid.X`, as WhatsApp answers a send.
struct NamingCourier;

impl Courier for NamingCourier {
    fn name(&self) -> &str {
        PROVIDER
    }

    async fn hand_off(
        &self,
        _message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        Ok(HandOff {
            at: now,
            message_id: Some("wamid.X".into()),
            status: DeliveryStatus::Submitted,
        })
    }
}

struct App<S> {
    router: axum::Router,
    store: S,
    clock: ManualClock,
    counters: Arc<WebhookCounters>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl<S: Store> App<S> {
    /// With API clients configured and no anonymous client, as in production.
    fn new(store: S, webhooks: Option<Arc<dyn StatusWebhooks>>) -> Self {
        let clock = ManualClock::new(t0());
        let counters = Arc::new(WebhookCounters::default());
        let state = HttpState {
            accounts: None,
            engine: VerificationEngine::new(
                store.clone(),
                Arc::new(clock.clone()),
                CodeKey::new([1; 32]),
                Default::default(),
            ),
            store: store.clone(),
            clients: ApiClients::new(&[("app".into(), "app-token".into())], None),
            dev_inbox: false,
            trust_forwarded_for: false,
            webhooks,
            webhook_counters: counters.clone(),
            metrics: Default::default(),
            settings: Default::default(),
        };
        Self {
            router: router(state),
            store,
            clock,
            counters,
        }
    }

    fn with_provider(store: S) -> Self {
        Self::new(store, Some(Arc::new(SignedJson)))
    }

    async fn call(&self, request: Request<Body>) -> Answer {
        let (method, uri) = (request.method().to_string(), request.uri().to_string());
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Err(undeclared) =
            gerbang_http::openapi::declared(&method, &uri, status.as_u16(), body["code"].as_str())
        {
            panic!("{undeclared}: {body}");
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            headers,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    /// POSTs `body` to `/v1/webhooks/{provider}` with `signature` (none when `None`).
    async fn callback(&self, provider: &str, body: &[u8], signature: Option<&str>) -> Answer {
        let mut request = Request::post(format!("/v1/webhooks/{provider}"))
            .header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("x-signature", signature);
        }
        self.call(request.body(Body::from(body.to_vec())).unwrap())
            .await
    }

    async fn signed_callback(&self, body: &str) -> Answer {
        self.callback(PROVIDER, body.as_bytes(), Some(&signature(body.as_bytes())))
            .await
    }

    /// Starts a verification over the API and hands its code to [`NamingCourier`] (`wamid.X`).
    async fn sent_verification(&self) -> VerificationId {
        let answer = self
            .call(
                Request::post("/v1/verifications")
                    .header("authorization", "Bearer app-token")
                    .header("content-type", "application/json")
                    .body(Body::from(
                        r#"{"purpose":"registration","channel":"whatsapp","to":"081211112222"}"#,
                    ))
                    .unwrap(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        let id = VerificationId::parse(answer.json["id"].as_str().unwrap()).unwrap();
        let handed = DeliveryWorker::new(
            self.store.clone(),
            NamingCourier,
            Arc::new(self.clock.clone()),
        )
        .deliver_next()
        .await
        .unwrap();
        assert_eq!(handed, 1);
        let trail = self.trail(id).await;
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].status, DeliveryStatus::Submitted);
        id
    }

    async fn trail(&self, id: VerificationId) -> Vec<DeliveryAttempt> {
        self.store.delivery_trail(id).await.unwrap()
    }

    fn refused(&self, kind: RejectionKind) -> u64 {
        self.counters.get(kind)
    }
}

fn delivered(id: &str) -> String {
    format!(r#"{{"statuses":[{{"id":"{id}","status":"delivered"}}]}}"#)
}

/// Every answer of these routes that is not a success has the crate's one error shape.
fn assert_error_shape(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.json["code"], code, "{}", answer.text);
    assert!(
        answer.json["message"]["id"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(
        answer.json["message"]["en"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(
        answer.json["request_id"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[test]
fn the_test_hmac_is_hmac_sha256() {
    // RFC 4231, test case 2.
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

store_test!(
    a_signed_callback_marks_the_delivery_of_a_real_verification_delivered,
    a_callback_with_a_bad_or_missing_signature_answers_401_and_changes_nothing,
    a_signed_but_malformed_callback_answers_400_and_changes_nothing,
    an_unknown_provider_answers_404_with_or_without_webhooks_configured,
    a_callback_over_256_kib_answers_413_and_one_of_exactly_256_kib_is_read,
    the_handshake_echoes_the_challenge_only_for_the_right_verify_token,
    a_callback_for_a_message_we_never_sent_answers_200_with_matched_0,
    webhooks_need_no_api_token_even_when_api_clients_are_configured,
    a_store_failure_answers_503_with_retry_after_so_the_provider_retries,
);

async fn a_signed_callback_marks_the_delivery_of_a_real_verification_delivered<S: Store>(store: S) {
    let app = App::with_provider(store);
    let id = app.sent_verification().await;
    app.clock.advance(chrono::Duration::seconds(3));
    let answer = app.signed_callback(&delivered("wamid.X")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        answer.json,
        serde_json::json!({"received": 1, "matched": 1})
    );
    let trail = app.trail(id).await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].status, DeliveryStatus::Delivered);
    assert_eq!(trail[0].cause, Some(Cause::Delivered));
    assert_eq!(trail[0].detail.as_deref(), Some("testwa delivered"));
    assert_eq!(trail[0].updated_at, t0() + chrono::Duration::seconds(3));
    // The participant's app sees it through the status answer.
    let status = app
        .call(
            Request::get(format!("/v1/verifications/{id}"))
                .header("authorization", "Bearer app-token")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status.json["deliveries"][0]["status"], "delivered");
    // A later, weaker report does not undo it; the provider still gets its 200.
    let late = app
        .signed_callback(r#"{"statuses":[{"id":"wamid.X","status":"submitted"}]}"#)
        .await;
    assert_eq!(late.status, StatusCode::OK);
    assert_eq!(app.trail(id).await[0].status, DeliveryStatus::Delivered);
    assert_eq!(app.counters.total(), 0);
}

async fn a_callback_with_a_bad_or_missing_signature_answers_401_and_changes_nothing<S: Store>(
    store: S,
) {
    let app = App::with_provider(store);
    let id = app.sent_verification().await;
    let body = delivered("wamid.X");
    let forged = signature(b"another body");
    for signature in [Some(forged.as_str()), Some("sha256=zz"), None] {
        let answer = app.callback(PROVIDER, body.as_bytes(), signature).await;
        assert_error_shape(&answer, StatusCode::UNAUTHORIZED, "webhook_bad_signature");
    }
    assert_eq!(app.trail(id).await[0].status, DeliveryStatus::Submitted);
    assert_eq!(app.refused(RejectionKind::BadSignature), 3);
    assert_eq!(app.counters.total(), 3);
}

async fn a_signed_but_malformed_callback_answers_400_and_changes_nothing<S: Store>(store: S) {
    let app = App::with_provider(store);
    let id = app.sent_verification().await;
    for body in [
        "{not json",
        r#"{"entries":[]}"#,
        r#"{"statuses":[{"id":"wamid.X"}]}"#,
    ] {
        let answer = app.signed_callback(body).await;
        assert_error_shape(&answer, StatusCode::BAD_REQUEST, "webhook_malformed");
    }
    let answer = app.signed_callback(r#"{"entries":[]}"#).await;
    assert!(
        answer.json["message"]["en"]
            .as_str()
            .unwrap()
            .contains("no statuses array")
    );
    assert_eq!(app.trail(id).await[0].status, DeliveryStatus::Submitted);
    assert_eq!(app.refused(RejectionKind::Malformed), 4);
}

async fn an_unknown_provider_answers_404_with_or_without_webhooks_configured<S: Store>(store: S) {
    let app = App::with_provider(store.clone());
    let body = delivered("wamid.X");
    let signed = signature(body.as_bytes());
    for provider in ["nope", "a%20b", "%FF"] {
        let answer = app.callback(provider, body.as_bytes(), Some(&signed)).await;
        assert_error_shape(&answer, StatusCode::NOT_FOUND, "webhook_unknown_provider");
    }
    assert_eq!(app.refused(RejectionKind::UnknownProvider), 3);
    let other = app
        .call(
            Request::delete(format!("/v1/webhooks/{PROVIDER}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_error_shape(&other, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    let bare = App::new(store, None);
    let answer = bare
        .callback(PROVIDER, body.as_bytes(), Some(&signed))
        .await;
    assert_error_shape(&answer, StatusCode::NOT_FOUND, "webhook_unknown_provider");
    let answer = bare
        .get(&format!(
            "/v1/webhooks/{PROVIDER}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42"
        ))
        .await;
    assert_error_shape(&answer, StatusCode::NOT_FOUND, "webhook_unknown_provider");
    assert_eq!(bare.refused(RejectionKind::UnknownProvider), 2);
}

async fn a_callback_over_256_kib_answers_413_and_one_of_exactly_256_kib_is_read<S: Store>(
    store: S,
) {
    let app = App::with_provider(store);
    let id = app.sent_verification().await;
    let fill = |size: usize| {
        let mut body = delivered("wamid.X").into_bytes();
        body.resize(size, b' ');
        body
    };
    let too_big = fill(BODY_LIMIT + 1);
    let answer = app
        .callback(PROVIDER, &too_big, Some(&signature(&too_big)))
        .await;
    assert_error_shape(&answer, StatusCode::PAYLOAD_TOO_LARGE, "webhook_too_large");
    assert_eq!(app.refused(RejectionKind::TooLarge), 1);
    assert_eq!(app.trail(id).await[0].status, DeliveryStatus::Submitted);

    let just_fits = fill(BODY_LIMIT);
    let answer = app
        .callback(PROVIDER, &just_fits, Some(&signature(&just_fits)))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["matched"], 1);
    assert_eq!(app.trail(id).await[0].status, DeliveryStatus::Delivered);
}

async fn the_handshake_echoes_the_challenge_only_for_the_right_verify_token<S: Store>(store: S) {
    let app = App::with_provider(store);
    let uri = |token: &str| {
        format!(
            "/v1/webhooks/{PROVIDER}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        )
    };
    let answer = app.get(&uri(VERIFY_TOKEN)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text, "1158201444");
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(answer.headers["x-content-type-options"], "nosniff");

    for refused in [
        uri("wrong"),
        format!("/v1/webhooks/{PROVIDER}"),
        format!("/v1/webhooks/{PROVIDER}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"),
        format!(
            "/v1/webhooks/other?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"
        ),
    ] {
        let answer = app.get(&refused).await;
        assert_error_shape(&answer, StatusCode::FORBIDDEN, "webhook_refused");
        assert!(!answer.text.contains("1158201444"));
    }
    assert_eq!(app.refused(RejectionKind::Refused), 4);
}

async fn a_callback_for_a_message_we_never_sent_answers_200_with_matched_0<S: Store>(store: S) {
    let app = App::with_provider(store);
    let id = app.sent_verification().await;
    let answer = app
        .signed_callback(
            r#"{"statuses":[{"id":"wamid.Unknown","status":"delivered"},
                            {"id":"wamid.X","status":"failed"}]}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        answer.json,
        serde_json::json!({"received": 2, "matched": 1})
    );
    assert_eq!(app.trail(id).await[0].status, DeliveryStatus::Failed);

    let answer = app.signed_callback(&delivered("wamid.Nobody")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json,
        serde_json::json!({"received": 1, "matched": 0})
    );
    let answer = app.signed_callback(r#"{"statuses":[]}"#).await;
    assert_eq!(
        answer.json,
        serde_json::json!({"received": 0, "matched": 0})
    );
    assert_eq!(app.counters.total(), 0);
}

async fn webhooks_need_no_api_token_even_when_api_clients_are_configured<S: Store>(store: S) {
    let app = App::with_provider(store);
    let id = app.sent_verification().await;
    // The API itself still wants a token…
    let api = app.get(&format!("/v1/verifications/{id}")).await;
    assert_error_shape(&api, StatusCode::UNAUTHORIZED, "unauthorized");
    // …the webhooks do not, and a token they cannot use does not get in their way either.
    let body = delivered("wamid.X");
    let answer = app
        .call(
            Request::post(format!("/v1/webhooks/{PROVIDER}"))
                .header("authorization", "Bearer not-ours")
                .header("x-signature", signature(body.as_bytes()))
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["matched"], 1);
    let handshake = app
        .get(&format!(
            "/v1/webhooks/{PROVIDER}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=7"
        ))
        .await;
    assert_eq!(
        (handshake.status, handshake.text.as_str()),
        (StatusCode::OK, "7")
    );
}

async fn a_store_failure_answers_503_with_retry_after_so_the_provider_retries<S: Store>(store: S) {
    let app = App::with_provider(store.clone());
    app.sent_verification().await;
    store.close().await;
    let answer = app.signed_callback(&delivered("wamid.X")).await;
    assert_error_shape(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    );
    assert_eq!(answer.json["retry_after"], 5);
    assert_eq!(answer.headers["retry-after"], "5");
    assert!(!answer.text.to_lowercase().contains("sql"));
    assert_eq!(app.counters.total(), 0);
}
