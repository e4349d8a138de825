//! The HTTP providers (WhatsApp Cloud API, a data-described HTTP SMS gateway, a voice-call
//! provider) against mock servers standing in for the third-party APIs: the exact requests, the
//! answers they take as success, every class of refusal, timeouts, and that no failure's detail
//! ever holds the code. Also the WhatsApp webhook (signature, handshake, status notifications) and
//! the HTTP SMS delivery reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use gerbang_core::{Courier, HandOffFailure};
use gerbang_delivery::http_sms::{
    BodyFormat, CallbackError, CallbackSettings, HttpMethod, HttpSmsCourier, HttpSmsSettings,
    Secret, SetupError, StatusMap, SuccessRule, parse_callback,
};
use gerbang_delivery::voice::{VoiceCourier, VoiceSettings, spoken_digits};
use gerbang_delivery::whatsapp::{
    WebhookError, WhatsappCourier, WhatsappSettings, parse_status_webhook, verify_signature,
    verify_subscription,
};
use gerbang_domain::delivery::{Cause, CauseMap, DeliveryStatus, Retry};
use gerbang_domain::verification::message::MessageContent;
use gerbang_domain::verification::{Channel, Destination, Locale, VerificationId};
use gerbang_domain::{Email, MobileNumber};
use gerbang_store::{OutboxMessage, Priority};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CODE: &str = "480913";
const NUMBER: &str = "081234567890";
const TOKEN: &str = "EAAG-test-access-token";

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

fn message(channel: Channel, locale: Locale) -> OutboxMessage {
    let now = Utc::now();
    OutboxMessage {
        verification: VerificationId::from_bytes([7; 16]),
        send_index: 0,
        channel,
        destination: Destination::Phone(MobileNumber::parse(NUMBER).unwrap()),
        text: format!(
            "JKN Mobile: kode OTP {CODE}, berlaku 5 menit. JANGAN berikan kpd siapa pun, termasuk petugas BPJS."
        ),
        content: Some(MessageContent {
            code: CODE.into(),
            locale,
            lifetime_minutes: 5,
            action: None,
            action_hint: None,
        }),
        queued_at: now,
        expires_at: now + chrono::Duration::minutes(5),
        priority: Priority::Otp,
    }
}

fn to_email(mut message: OutboxMessage) -> OutboxMessage {
    message.destination = Destination::Email(Email::parse("peserta@example.com").unwrap());
    message
}

fn without_content(mut message: OutboxMessage) -> OutboxMessage {
    message.content = None;
    message
}

/// The detail names nothing the participant was sent, nor a secret.
fn assert_clean(failure: &HandOffFailure, secrets: &[&str]) {
    for secret in [CODE, "6281234567890", "81234567890"].iter().chain(secrets) {
        assert!(
            !failure.detail.contains(secret),
            "the detail leaks {secret:?}: {}",
            failure.detail
        );
    }
}

fn assert_failure(failure: &HandOffFailure, cause: Cause, retry: Retry) {
    assert_eq!(
        (failure.cause, failure.retry),
        (cause, retry),
        "detail: {}",
        failure.detail
    );
}

async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "exactly one request");
    requests.remove(0)
}

fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// A port nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------------------------
// WhatsApp: sending
// ---------------------------------------------------------------------------------------------

fn whatsapp(server_uri: &str, timeout: Duration) -> WhatsappCourier {
    let mut settings = WhatsappSettings::new("1055551234", Secret::new(TOKEN), "gerbang_otp");
    settings.api_base = format!("{server_uri}/v21.0");
    settings.timeout = timeout;
    WhatsappCourier::new("whatsapp", settings, Arc::new(CauseMap::default())).unwrap()
}

fn meta_error(code: u32, message: &str) -> Value {
    json!({"error": {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": format!("{message}; value {CODE} to 6281234567890")},
        "fbtrace_id": "AbCdEf123"
    }})
}

#[tokio::test]
async fn whatsapp_sends_the_copy_code_authentication_template_and_returns_the_wamid() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v21.0/1055551234/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "6281234567890", "wa_id": "6281234567890"}],
            "messages": [{"id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjA=", "message_status": "accepted"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let courier = whatsapp(&server.uri(), Duration::from_secs(5));
    let now = Utc::now();

    let handoff = courier
        .hand_off(&message(Channel::Whatsapp, Locale::Id), now)
        .await
        .unwrap();

    assert_eq!(
        handoff.message_id.as_deref(),
        Some("wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjA=")
    );
    assert_eq!(handoff.status, DeliveryStatus::Submitted);
    assert_eq!(handoff.at, now);
    let request = only_request(&server).await;
    assert_eq!(header(&request, "authorization"), format!("Bearer {TOKEN}"));
    assert!(header(&request, "content-type").starts_with("application/json"));
    assert_eq!(
        request.body_json::<Value>().unwrap(),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "6281234567890",
            "type": "template",
            "template": {
                "name": "gerbang_otp",
                "language": {"code": "id"},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": CODE}]},
                    {"type": "button", "sub_type": "url", "index": "0",
                     "parameters": [{"type": "text", "text": CODE}]}
                ]
            }
        })
    );
}

#[tokio::test]
async fn whatsapp_uses_the_english_template_language_for_english_messages() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"messages": [{"id": "wamid.EN"}]})),
        )
        .mount(&server)
        .await;
    let courier = whatsapp(&server.uri(), Duration::from_secs(5));

    courier
        .hand_off(&message(Channel::Whatsapp, Locale::En), Utc::now())
        .await
        .unwrap();

    let body = only_request(&server).await.body_json::<Value>().unwrap();
    assert_eq!(body["template"]["language"]["code"], "en_US");
}

#[tokio::test]
async fn whatsapp_refusals_are_judged_by_their_error_code_and_never_name_the_code() {
    let cases: Vec<(&str, ResponseTemplate, Cause, Retry)> = vec![
        (
            "not on WhatsApp",
            ResponseTemplate::new(400)
                .set_body_json(meta_error(131026, "(#131026) Message Undeliverable.")),
            Cause::NotOnWhatsapp,
            Retry::OtherRoute,
        ),
        (
            "throughput reached",
            ResponseTemplate::new(400)
                .set_body_json(meta_error(130429, "(#130429) Rate limit hit")),
            Cause::ProviderThrottled,
            Retry::SameRoute,
        ),
        (
            "expired token",
            ResponseTemplate::new(401).set_body_json(meta_error(
                190,
                "Error validating access token: Session has expired",
            )),
            Cause::ProviderMisconfigured,
            Retry::OtherRoute,
        ),
        (
            "template missing",
            ResponseTemplate::new(404).set_body_json(meta_error(
                132001,
                "(#132001) Template name does not exist in the translation",
            )),
            Cause::ProviderMisconfigured,
            Retry::OtherRoute,
        ),
        (
            "an unmapped code",
            ResponseTemplate::new(400).set_body_json(meta_error(999_999, "Something new")),
            Cause::Unknown,
            Retry::OtherRoute,
        ),
        (
            "500 with garbage",
            ResponseTemplate::new(500)
                .set_body_string(format!("<html>upstream {CODE} broke</html>")),
            Cause::ProviderError,
            Retry::SameRoute,
        ),
        (
            "401 without JSON",
            ResponseTemplate::new(401).set_body_string("Unauthorized"),
            Cause::ProviderMisconfigured,
            Retry::OtherRoute,
        ),
        (
            "429 without JSON",
            ResponseTemplate::new(429),
            Cause::ProviderThrottled,
            Retry::SameRoute,
        ),
        (
            "200 with garbage",
            ResponseTemplate::new(200).set_body_string(format!("ok {CODE}")),
            Cause::ProviderError,
            Retry::SameRoute,
        ),
        (
            "200 without a message id",
            ResponseTemplate::new(200).set_body_json(json!({"messages": []})),
            Cause::ProviderError,
            Retry::SameRoute,
        ),
    ];
    for (case, response, cause, retry) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        let courier = whatsapp(&server.uri(), Duration::from_secs(5));

        let failure = courier
            .hand_off(&message(Channel::Whatsapp, Locale::Id), Utc::now())
            .await
            .unwrap_err();

        assert_eq!(
            (failure.cause, failure.retry),
            (cause, retry),
            "{case}: {}",
            failure.detail
        );
        assert_clean(&failure, &[TOKEN]);
    }
}

#[tokio::test]
async fn a_whatsapp_refusal_keeps_metas_own_words_for_staff() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(meta_error(131026, "(#131026) Message Undeliverable.")),
        )
        .mount(&server)
        .await;
    let courier = whatsapp(&server.uri(), Duration::from_secs(5));

    let failure = courier
        .hand_off(&message(Channel::Whatsapp, Locale::Id), Utc::now())
        .await
        .unwrap_err();

    assert!(
        failure
            .detail
            .starts_with("HTTP 400 code 131026: (#131026) Message Undeliverable."),
        "{}",
        failure.detail
    );
    assert!(
        failure.detail.contains("fbtrace_id AbCdEf123"),
        "{}",
        failure.detail
    );
    assert!(
        failure.detail.contains("value *** to ***"),
        "{}",
        failure.detail
    );
}

#[tokio::test]
async fn a_whatsapp_api_that_hangs_is_unreachable_within_the_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"messages": [{"id": "wamid.late"}]}))
                .set_delay(Duration::from_secs(10)),
        )
        .mount(&server)
        .await;
    let courier = whatsapp(&server.uri(), Duration::from_millis(300));

    let started = Instant::now();
    let failure = courier
        .hand_off(&message(Channel::Whatsapp, Locale::Id), Utc::now())
        .await
        .unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_failure(&failure, Cause::ProviderError, Retry::SameRoute);
    assert!(
        failure.detail.contains("no answer within 300 ms"),
        "{}",
        failure.detail
    );
    assert_clean(&failure, &[TOKEN]);
}

#[tokio::test]
async fn a_whatsapp_api_that_refuses_connections_is_unreachable() {
    let courier = whatsapp(&closed_port_url(), Duration::from_secs(2));

    let failure = courier
        .hand_off(&message(Channel::Whatsapp, Locale::Id), Utc::now())
        .await
        .unwrap_err();

    assert_failure(&failure, Cause::ProviderError, Retry::SameRoute);
    assert!(
        failure.detail.starts_with("could not connect"),
        "{}",
        failure.detail
    );
    assert!(!failure.detail.contains("127.0.0.1"), "{}", failure.detail);
}

#[tokio::test]
async fn whatsapp_refuses_other_channels_email_addresses_and_messages_without_content() {
    let server = MockServer::start().await;
    let courier = whatsapp(&server.uri(), Duration::from_secs(5));
    for wrong in [
        message(Channel::Sms, Locale::Id),
        to_email(message(Channel::Whatsapp, Locale::Id)),
        without_content(message(Channel::Whatsapp, Locale::Id)),
    ] {
        let failure = courier.hand_off(&wrong, Utc::now()).await.unwrap_err();
        assert_failure(&failure, Cause::ProviderMisconfigured, Retry::OtherRoute);
        assert_clean(&failure, &[]);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn whatsapp_settings_never_print_their_secrets() {
    let mut settings = WhatsappSettings::new("1055551234", Secret::new(TOKEN), "gerbang_otp");
    settings.app_secret = Secret::new("app-secret-value");
    settings.webhook_verify_token = Secret::new("verify-token-value");
    let courier =
        WhatsappCourier::new("whatsapp", settings, Arc::new(CauseMap::default())).unwrap();
    let printed = format!("{courier:?}");
    for secret in [TOKEN, "app-secret-value", "verify-token-value"] {
        assert!(!printed.contains(secret), "{printed}");
    }
    assert!(printed.contains("graph.facebook.com/v21.0"));
}

#[test]
fn whatsapp_settings_without_a_token_or_template_are_refused_at_start() {
    let missing_token = WhatsappSettings::new("1", Secret::default(), "t");
    assert!(matches!(
        WhatsappCourier::new("w", missing_token, Default::default()),
        Err(SetupError::Missing(_))
    ));
    let mut zero = WhatsappSettings::new("1", Secret::new("x"), "t");
    zero.timeout = Duration::ZERO;
    assert!(matches!(
        WhatsappCourier::new("w", zero, Default::default()),
        Err(SetupError::ZeroTimeout)
    ));
    let mut bad_base = WhatsappSettings::new("1", Secret::new("x"), "t");
    bad_base.api_base = "graph.facebook.com".into();
    assert!(matches!(
        WhatsappCourier::new("w", bad_base, Default::default()),
        Err(SetupError::Url(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// WhatsApp: the webhook
// ---------------------------------------------------------------------------------------------

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[test]
fn a_webhook_signature_verifies_only_with_the_app_secret_and_the_exact_body() {
    let secret = Secret::new("app-secret");
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let signature = sign("app-secret", body);

    assert!(verify_signature(&secret, body, &signature));
    assert!(verify_signature(
        &secret,
        body,
        &format!("  {signature}\r\n")
    ));
    assert!(verify_signature(
        &secret,
        body,
        &signature.to_uppercase().replace("SHA256=", "sha256=")
    ));

    // Another body, or one byte changed.
    assert!(!verify_signature(&secret, b"{}", &signature));
    let mut tampered = body.to_vec();
    tampered[3] ^= 1;
    assert!(!verify_signature(&secret, &tampered, &signature));
    // Signed with another secret.
    assert!(!verify_signature(&secret, body, &sign("forged", body)));
    // Without the `sha256=` prefix, with another algorithm, truncated, not hex, empty.
    let hex = signature.strip_prefix("sha256=").unwrap();
    assert!(!verify_signature(&secret, body, hex));
    assert!(!verify_signature(&secret, body, &format!("sha1={hex}")));
    assert!(!verify_signature(
        &secret,
        body,
        &signature[..signature.len() - 2]
    ));
    assert!(!verify_signature(
        &secret,
        body,
        &format!("sha256={}", "zz".repeat(32))
    ));
    assert!(!verify_signature(&secret, body, ""));
    // No secret configured: nothing verifies, not even a signature made with the empty key.
    assert!(!verify_signature(&Secret::default(), body, &sign("", body)));
}

#[test]
fn the_subscription_handshake_echoes_the_challenge_only_for_our_token() {
    let ours = Secret::new("s3cret-verify");
    assert_eq!(
        verify_subscription(
            Some("subscribe"),
            Some("s3cret-verify"),
            Some("1158201444"),
            &ours
        ),
        Some("1158201444".to_owned())
    );
    assert_eq!(
        verify_subscription(Some("subscribe"), Some("guess"), Some("1158201444"), &ours),
        None
    );
    assert_eq!(
        verify_subscription(None, Some("s3cret-verify"), Some("1"), &ours),
        None
    );
}

/// A notification shaped like Meta's: statuses for four messages, and an incoming message.
const STATUS_WEBHOOK: &str = r#"{
  "object": "whatsapp_business_account",
  "entry": [{
    "id": "102290129340398",
    "changes": [{
      "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": [
          {"id": "wamid.SENT", "status": "sent", "timestamp": "1750263773", "recipient_id": "6281234567890",
           "conversation": {"id": "c1", "expiration_timestamp": "1750350173", "origin": {"type": "authentication"}},
           "pricing": {"billable": true, "pricing_model": "PMP", "category": "authentication", "type": "regular"}},
          {"id": "wamid.DELIVERED", "status": "delivered", "timestamp": "1750263774", "recipient_id": "6281234567890"},
          {"id": "wamid.READ", "status": "read", "timestamp": "1750263775", "recipient_id": "6281234567890"},
          {"id": "wamid.FAILED", "status": "failed", "timestamp": "1750263776", "recipient_id": "6281234567890",
           "errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                       "error_data": {"details": "Message Undeliverable."}, "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]},
          {"id": "wamid.NEWSTATUS", "status": "warning", "timestamp": "1750263777"}
        ]
      },
      "field": "messages"
    }, {
      "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Peserta"}, "wa_id": "6281234567890"}],
        "messages": [{"from": "6281234567890", "id": "wamid.IN", "timestamp": "1750263780", "type": "text", "text": {"body": "halo"}}]
      },
      "field": "messages"
    }, {
      "value": {"event": "APPROVED", "message_template_id": 1, "message_template_name": "gerbang_otp"},
      "field": "message_template_status_update"
    }]
  }]
}"#;

#[test]
fn a_status_notification_yields_each_status_with_its_error_code_and_time() {
    let statuses = parse_status_webhook(STATUS_WEBHOOK.as_bytes()).unwrap();

    let read: Vec<(&str, DeliveryStatus, Option<u32>)> = statuses
        .iter()
        .map(|s| (s.message_id.as_str(), s.status, s.error_code))
        .collect();
    assert_eq!(
        read,
        vec![
            ("wamid.SENT", DeliveryStatus::Submitted, None),
            ("wamid.DELIVERED", DeliveryStatus::Delivered, None),
            ("wamid.READ", DeliveryStatus::Delivered, None),
            ("wamid.FAILED", DeliveryStatus::Failed, Some(131026)),
        ]
    );
    assert_eq!(
        statuses[0].timestamp,
        chrono::DateTime::from_timestamp(1_750_263_773, 0)
    );
    let failed = &statuses[3];
    assert_eq!(failed.error_title.as_deref(), Some("Message undeliverable"));
    let verdict = failed.verdict(&CauseMap::default());
    assert_eq!(verdict.status, DeliveryStatus::Failed);
    assert_eq!(verdict.cause, Some(Cause::NotOnWhatsapp));
    assert_eq!(verdict.retry, Retry::OtherRoute);
    assert_eq!(
        failed.detail(),
        "whatsapp failed code 131026 (Message undeliverable)"
    );
    assert_eq!(
        statuses[1].verdict(&CauseMap::default()).cause,
        Some(Cause::Delivered)
    );
    let printed = format!("{statuses:?}");
    assert!(
        !printed.contains("6281234567890"),
        "no recipient kept: {printed}"
    );
}

#[test]
fn a_notification_without_statuses_yields_none() {
    let incoming = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",
        "value":{"messages":[{"from":"6281234567890","id":"wamid.IN","type":"text","text":{"body":"halo"}}]}}]}]}"#;
    assert_eq!(parse_status_webhook(incoming.as_bytes()).unwrap(), vec![]);
    assert_eq!(
        parse_status_webhook(br#"{"object":"page","entry":[{"changes":[]}]}"#).unwrap(),
        vec![]
    );
    // Entries and statuses that are not what they should be are skipped, not fatal.
    let odd = r#"{"entry":[1, {"changes":"x"}, {"changes":[{"value":{"statuses":[
        {"status":"delivered"}, {"id":"", "status":"sent"}, {"id":7, "status":"sent"},
        {"id":"wamid.OK","status":"failed","errors":[{"code":"131049"}],"timestamp":"soon"}]}}]}]}"#;
    let statuses = parse_status_webhook(odd.as_bytes()).unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].message_id, "wamid.OK");
    assert_eq!(statuses[0].error_code, Some(131049));
    assert_eq!(statuses[0].timestamp, None);
}

#[test]
fn a_malformed_notification_is_an_error() {
    assert_eq!(parse_status_webhook(b""), Err(WebhookError::NotJson));
    assert_eq!(
        parse_status_webhook(b"\xff\xfe{"),
        Err(WebhookError::NotJson)
    );
    assert_eq!(
        parse_status_webhook(&STATUS_WEBHOOK.as_bytes()[..200]),
        Err(WebhookError::NotJson)
    );
    assert!(matches!(
        parse_status_webhook(b"[]"),
        Err(WebhookError::Shape(_))
    ));
    assert!(matches!(
        parse_status_webhook(b"42"),
        Err(WebhookError::Shape(_))
    ));
    assert!(matches!(
        parse_status_webhook(br#"{"object":"whatsapp_business_account"}"#),
        Err(WebhookError::Shape(_))
    ));
    assert!(matches!(
        parse_status_webhook(br#"{"object":1,"entry":[]}"#),
        Err(WebhookError::Shape(_))
    ));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        parse_status_webhook(deep.as_bytes()),
        Err(WebhookError::NotJson)
    );
}

proptest! {
    #[test]
    fn the_webhook_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse_status_webhook(&bytes);
    }

    #[test]
    fn the_webhook_parser_never_panics_on_a_damaged_notification(
        cut in 0..STATUS_WEBHOOK.len(),
        at in 0..STATUS_WEBHOOK.len(),
        byte in any::<u8>(),
    ) {
        let mut damaged = STATUS_WEBHOOK.as_bytes().to_vec();
        damaged[at] = byte;
        let _ = parse_status_webhook(&damaged);
        let _ = parse_status_webhook(&STATUS_WEBHOOK.as_bytes()[..cut]);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP SMS
// ---------------------------------------------------------------------------------------------

fn vonage_like(server_uri: &str) -> HttpSmsSettings {
    let mut settings = HttpSmsSettings::new(
        format!("{server_uri}/sms/json"),
        r#"{"from":"{sender}","to":"{to_digits}","text":"{text}","type":"unicode"}"#,
    );
    settings.headers = vec![
        ("X-Api-Key".into(), Secret::new("sms-api-key")),
        (
            "Authorization".into(),
            Secret::new("Basic c21zOnNlY3JldA=="),
        ),
    ];
    settings.sender = "JKN".into();
    settings.success = Some(SuccessRule {
        pointer: "/messages/0/status".into(),
        equals: "0".into(),
    });
    settings.message_id_pointer = Some("/messages/0/message-id".into());
    settings.timeout = Duration::from_secs(5);
    settings
}

#[tokio::test]
async fn http_sms_posts_the_filled_template_and_returns_the_providers_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "message-count": "1",
            "messages": [{"to": "6281234567890", "message-id": "0A0000000123ABCD1", "status": "0"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let courier = HttpSmsCourier::new("http_sms:test", vonage_like(&server.uri())).unwrap();
    let sms = message(Channel::Sms, Locale::Id);

    let handoff = courier.hand_off(&sms, Utc::now()).await.unwrap();

    assert_eq!(handoff.message_id.as_deref(), Some("0A0000000123ABCD1"));
    assert_eq!(handoff.status, DeliveryStatus::Submitted);
    let request = only_request(&server).await;
    assert_eq!(header(&request, "x-api-key"), "sms-api-key");
    assert_eq!(header(&request, "authorization"), "Basic c21zOnNlY3JldA==");
    assert_eq!(header(&request, "content-type"), "application/json");
    assert_eq!(
        request.body_json::<Value>().unwrap(),
        json!({"from": "JKN", "to": "6281234567890", "text": sms.text, "type": "unicode"})
    );
}

#[tokio::test]
async fn http_sms_form_templates_are_form_encoded_and_numeric_ids_are_read() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"data": {"id": 98765}})))
        .mount(&server)
        .await;
    let mut settings = HttpSmsSettings::new(
        format!("{}/api/send", server.uri()),
        "msisdn={to_national}&e164={to}&message={text}&from={sender}",
    );
    settings.content_type = BodyFormat::Form;
    settings.sender = "JKN Mobile".into();
    settings.message_id_pointer = Some("/data/id".into());
    let courier = HttpSmsCourier::new("http_sms:form", settings).unwrap();
    let mut sms = message(Channel::Sms, Locale::Id);
    sms.text = format!("Kode {CODE} & jangan bagikan\n@jkn.example #{CODE}");

    let handoff = courier.hand_off(&sms, Utc::now()).await.unwrap();

    assert_eq!(handoff.message_id.as_deref(), Some("98765"));
    let request = only_request(&server).await;
    assert_eq!(
        header(&request, "content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        String::from_utf8(request.body.clone()).unwrap(),
        format!(
            "msisdn=081234567890&e164=%2B6281234567890&message=Kode+{CODE}+%26+jangan+bagikan%0A%40jkn.example+%23{CODE}&from=JKN+Mobile"
        )
    );
}

#[tokio::test]
async fn http_sms_can_send_everything_in_the_query_of_a_get() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/send.php"))
        .respond_with(ResponseTemplate::new(200).set_body_string("OK"))
        .mount(&server)
        .await;
    let mut settings = HttpSmsSettings::new(
        format!(
            "{}/send.php?user=gerbang&to={{to_national}}&msg={{text}}",
            server.uri()
        ),
        "",
    );
    settings.method = HttpMethod::Get;
    let courier = HttpSmsCourier::new("http_sms:get", settings).unwrap();
    let sms = message(Channel::Sms, Locale::Id);

    let handoff = courier.hand_off(&sms, Utc::now()).await.unwrap();

    assert_eq!(handoff.message_id, None);
    let request = only_request(&server).await;
    let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        vec![
            ("user".to_owned(), "gerbang".to_owned()),
            ("to".to_owned(), "081234567890".to_owned()),
            ("msg".to_owned(), sms.text.clone()),
        ]
    );
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn http_sms_refusals_map_by_status_and_success_rule_and_never_name_the_code() {
    let echo = json!({"error": format!("cannot send {CODE} to 6281234567890")});
    let cases: Vec<(&str, ResponseTemplate, Cause, Retry)> = vec![
        (
            "rule not met",
            ResponseTemplate::new(200).set_body_json(json!({"messages": [{"status": "2", "error-text": format!("Missing text {CODE}")}]})),
            Cause::ProviderError,
            Retry::OtherRoute,
        ),
        (
            "rule value absent",
            ResponseTemplate::new(200).set_body_json(echo.clone()),
            Cause::ProviderError,
            Retry::OtherRoute,
        ),
        (
            "2xx not JSON",
            ResponseTemplate::new(200).set_body_string(format!("sent {CODE}")),
            Cause::ProviderError,
            Retry::SameRoute,
        ),
        (
            "429",
            ResponseTemplate::new(429).set_body_json(echo.clone()),
            Cause::ProviderThrottled,
            Retry::SameRoute,
        ),
        (
            "400",
            ResponseTemplate::new(400).set_body_json(echo.clone()),
            Cause::ProviderMisconfigured,
            Retry::OtherRoute,
        ),
        (
            "401",
            ResponseTemplate::new(401),
            Cause::ProviderMisconfigured,
            Retry::OtherRoute,
        ),
        (
            "503 garbage",
            ResponseTemplate::new(503).set_body_string(format!("<h1>busy {CODE}</h1>")),
            Cause::ProviderError,
            Retry::SameRoute,
        ),
        (
            "a redirect",
            ResponseTemplate::new(302).insert_header("location", "https://elsewhere.example/"),
            Cause::ProviderMisconfigured,
            Retry::OtherRoute,
        ),
    ];
    for (case, response, cause, retry) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        let courier = HttpSmsCourier::new("http_sms:test", vonage_like(&server.uri())).unwrap();

        let failure = courier
            .hand_off(&message(Channel::Sms, Locale::Id), Utc::now())
            .await
            .unwrap_err();

        assert_eq!(
            (failure.cause, failure.retry),
            (cause, retry),
            "{case}: {}",
            failure.detail
        );
        assert_clean(&failure, &["sms-api-key", "c21zOnNlY3JldA"]);
        assert!(
            failure.detail.starts_with("HTTP "),
            "{case}: {}",
            failure.detail
        );
    }
}

#[tokio::test]
async fn an_http_sms_provider_that_hangs_is_unreachable_within_the_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let mut settings = vonage_like(&server.uri());
    settings.timeout = Duration::from_millis(300);
    let courier = HttpSmsCourier::new("http_sms:slow", settings).unwrap();

    let started = Instant::now();
    let failure = courier
        .hand_off(&message(Channel::Sms, Locale::Id), Utc::now())
        .await
        .unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_failure(&failure, Cause::ProviderError, Retry::SameRoute);
    assert_clean(&failure, &["sms-api-key"]);
}

#[tokio::test]
async fn http_sms_refuses_other_channels_and_email_addresses() {
    let server = MockServer::start().await;
    let courier = HttpSmsCourier::new("http_sms:test", vonage_like(&server.uri())).unwrap();
    for wrong in [
        message(Channel::Whatsapp, Locale::Id),
        to_email(message(Channel::Sms, Locale::Id)),
    ] {
        let failure = courier.hand_off(&wrong, Utc::now()).await.unwrap_err();
        assert_failure(&failure, Cause::ProviderMisconfigured, Retry::OtherRoute);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn http_sms_settings_are_checked_at_start_and_never_print_header_values() {
    let good = vonage_like("https://sms.example");
    let printed = format!("{:?}", HttpSmsCourier::new("t", good.clone()).unwrap());
    assert!(
        !printed.contains("sms-api-key") && !printed.contains("c21zOnNlY3JldA"),
        "{printed}"
    );

    let mut broken = good.clone();
    broken.body = r#"{"to":"{to}","text":{text}}"#.into();
    assert!(matches!(
        HttpSmsCourier::new("t", broken),
        Err(SetupError::BodyTemplate(_))
    ));

    let mut pointer = good.clone();
    pointer.message_id_pointer = Some("messages.0.id".into());
    assert!(matches!(
        HttpSmsCourier::new("t", pointer),
        Err(SetupError::Pointer(_))
    ));

    let mut header = good.clone();
    header.headers.push(("Bad Header".into(), Secret::new("x")));
    assert!(matches!(
        HttpSmsCourier::new("t", header),
        Err(SetupError::Header(_))
    ));

    let mut url = good.clone();
    url.url = "ftp://sms.example/send?key=topsecret".into();
    let error = HttpSmsCourier::new("t", url).unwrap_err();
    assert!(matches!(error, SetupError::Url(_)));
    assert!(!error.to_string().contains("topsecret"), "{error}");

    let mut zero = good;
    zero.timeout = Duration::ZERO;
    assert!(matches!(
        HttpSmsCourier::new("t", zero),
        Err(SetupError::ZeroTimeout)
    ));
}

#[test]
fn http_sms_delivery_reports_are_read_with_the_configured_pointers() {
    let settings = CallbackSettings {
        id_pointer: "/messageId".into(),
        status_pointer: "/status".into(),
        error_pointer: Some("/err-code".into()),
        statuses: StatusMap::default(),
    };
    let report = br#"{"msisdn":"6281234567890","to":"JKN","messageId":"0A0000000123ABCD1",
        "status":"delivered","err-code":"0","price":"0.0333","scts":"2001011400","extra":{"a":1}}"#;
    let update = parse_callback(&settings, report).unwrap();
    assert_eq!(update.message_id, "0A0000000123ABCD1");
    assert_eq!(update.status, DeliveryStatus::Delivered);
    assert_eq!(update.error, None);
    assert_eq!(
        update.verdict(&CauseMap::default()).cause,
        Some(Cause::Delivered)
    );

    let failed = parse_callback(
        &settings,
        br#"{"messageId":"X1","status":"UNDELIV","err-code":1}"#,
    )
    .unwrap();
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("1"));
    let verdict = failed.verdict(&CauseMap::default());
    assert_eq!(verdict.status, DeliveryStatus::Failed);
    assert_eq!(verdict.cause, Some(Cause::NumberInactive));
    assert_eq!(failed.detail(), "status UNDELIV err 1");

    for (word, status) in [
        ("DELIVRD", DeliveryStatus::Delivered),
        ("Failed", DeliveryStatus::Failed),
        ("rejected", DeliveryStatus::Failed),
        ("expired", DeliveryStatus::Expired),
        ("buffered", DeliveryStatus::Submitted),
        ("something-new", DeliveryStatus::Unknown),
    ] {
        let body = format!(r#"{{"messageId":"X","status":"{word}"}}"#);
        assert_eq!(
            parse_callback(&settings, body.as_bytes()).unwrap().status,
            status,
            "{word}"
        );
    }
    let expired = parse_callback(&settings, br#"{"messageId":"X","status":"expired"}"#).unwrap();
    assert_eq!(
        expired.verdict(&CauseMap::default()).cause,
        Some(Cause::PhoneUnreachable)
    );
}

#[test]
fn http_sms_status_words_can_be_remapped() {
    let settings = CallbackSettings {
        id_pointer: "/data/0/id".into(),
        status_pointer: "/data/0/state".into(),
        error_pointer: None,
        statuses: StatusMap::empty()
            .with("2", DeliveryStatus::Delivered)
            .with("5", DeliveryStatus::Failed),
    };
    let update = parse_callback(&settings, br#"{"data":[{"id":77,"state":2}]}"#).unwrap();
    assert_eq!(
        (update.message_id.as_str(), update.status),
        ("77", DeliveryStatus::Delivered)
    );
    let unknown =
        parse_callback(&settings, br#"{"data":[{"id":77,"state":"delivered"}]}"#).unwrap();
    assert_eq!(unknown.status, DeliveryStatus::Unknown);
}

#[test]
fn a_malformed_delivery_report_is_an_error() {
    let settings = CallbackSettings::default();
    assert_eq!(
        parse_callback(&settings, b"id=1&status=ok"),
        Err(CallbackError::NotJson)
    );
    assert!(matches!(
        parse_callback(&settings, br#"{"status":"delivered"}"#),
        Err(CallbackError::NoMessageId(_))
    ));
    assert!(matches!(
        parse_callback(&settings, br#"{"message_id":"1","status":null}"#),
        Err(CallbackError::NoStatus(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Voice
// ---------------------------------------------------------------------------------------------

const VOICE_TOKEN: &str = "voice-bearer-token";

fn voice(server_uri: &str, timeout: Duration) -> VoiceCourier {
    let mut settings = VoiceSettings::new(
        format!("{server_uri}/v1/calls"),
        Secret::new(VOICE_TOKEN),
        "+622150001234",
    );
    settings.brand = "JKN Mobile".into();
    settings.timeout = timeout;
    VoiceCourier::new("voice:test", settings).unwrap()
}

#[tokio::test]
async fn a_voice_call_reads_the_code_digit_by_digit_and_returns_the_call_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/calls"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"call_id": "call-1234-abcd", "state": "queued"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let courier = voice(&server.uri(), Duration::from_secs(5));

    let handoff = courier
        .hand_off(&message(Channel::Voice, Locale::Id), Utc::now())
        .await
        .unwrap();

    assert_eq!(handoff.message_id.as_deref(), Some("call-1234-abcd"));
    assert_eq!(handoff.status, DeliveryStatus::Submitted);
    let request = only_request(&server).await;
    assert_eq!(
        header(&request, "authorization"),
        format!("Bearer {VOICE_TOKEN}")
    );
    let body = request.body_json::<Value>().unwrap();
    let spoken = "empat, delapan, nol, sembilan, satu, tiga";
    assert_eq!(spoken_digits(CODE, Locale::Id), spoken);
    assert_eq!(
        body,
        json!({
            "to": "+6281234567890",
            "caller_id": "+622150001234",
            "language": "id-ID",
            "script": format!(
                "Halo, ini JKN Mobile. Kode verifikasi Anda adalah: {spoken}. Sekali lagi, kode Anda: {spoken}. \
                 Kode ini berlaku 5 menit. Jangan berikan kode ini kepada siapa pun, termasuk petugas BPJS."
            ),
        })
    );
}

#[tokio::test]
async fn an_english_voice_call_speaks_english_and_a_numeric_call_id_is_read() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"call_id": 4242})))
        .mount(&server)
        .await;
    let courier = voice(&server.uri(), Duration::from_secs(5));

    let handoff = courier
        .hand_off(&message(Channel::Voice, Locale::En), Utc::now())
        .await
        .unwrap();

    assert_eq!(handoff.message_id.as_deref(), Some("4242"));
    let body = only_request(&server).await.body_json::<Value>().unwrap();
    assert_eq!(body["language"], "en-US");
    let script = body["script"].as_str().unwrap();
    assert!(
        script.contains("four, eight, zero, nine, one, three"),
        "{script}"
    );
    assert!(!script.contains(CODE));
}

#[tokio::test]
async fn voice_refusals_map_by_status_and_never_name_the_code_or_its_spoken_form() {
    let spoken = spoken_digits(CODE, Locale::Id);
    let echo = json!({"error": "bad script", "script": format!("... {spoken} ..."), "code": CODE});
    let cases: Vec<(&str, ResponseTemplate, Cause, Retry)> = vec![
        (
            "429",
            ResponseTemplate::new(429).set_body_json(echo.clone()),
            Cause::ProviderThrottled,
            Retry::SameRoute,
        ),
        (
            "401",
            ResponseTemplate::new(401).set_body_json(echo.clone()),
            Cause::ProviderMisconfigured,
            Retry::OtherRoute,
        ),
        (
            "422",
            ResponseTemplate::new(422).set_body_json(echo.clone()),
            Cause::ProviderMisconfigured,
            Retry::OtherRoute,
        ),
        (
            "500",
            ResponseTemplate::new(500).set_body_string(format!("oops {CODE}")),
            Cause::ProviderError,
            Retry::SameRoute,
        ),
        (
            "200 without call_id",
            ResponseTemplate::new(200).set_body_json(echo.clone()),
            Cause::ProviderError,
            Retry::SameRoute,
        ),
    ];
    for (case, response, cause, retry) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        let courier = voice(&server.uri(), Duration::from_secs(5));

        let failure = courier
            .hand_off(&message(Channel::Voice, Locale::Id), Utc::now())
            .await
            .unwrap_err();

        assert_eq!(
            (failure.cause, failure.retry),
            (cause, retry),
            "{case}: {}",
            failure.detail
        );
        assert_clean(&failure, &[VOICE_TOKEN, &spoken, "empat, delapan"]);
    }
}

#[tokio::test]
async fn a_voice_provider_that_hangs_is_unreachable_within_the_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"call_id": "late"}))
                .set_delay(Duration::from_secs(10)),
        )
        .mount(&server)
        .await;
    let courier = voice(&server.uri(), Duration::from_millis(300));

    let started = Instant::now();
    let failure = courier
        .hand_off(&message(Channel::Voice, Locale::Id), Utc::now())
        .await
        .unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_failure(&failure, Cause::ProviderError, Retry::SameRoute);
    assert_clean(&failure, &[VOICE_TOKEN]);
}

#[tokio::test]
async fn voice_refuses_other_channels_email_addresses_and_messages_without_content() {
    let server = MockServer::start().await;
    let courier = voice(&server.uri(), Duration::from_secs(5));
    for wrong in [
        message(Channel::Sms, Locale::Id),
        to_email(message(Channel::Voice, Locale::Id)),
        without_content(message(Channel::Voice, Locale::Id)),
    ] {
        let failure = courier.hand_off(&wrong, Utc::now()).await.unwrap_err();
        assert_failure(&failure, Cause::ProviderMisconfigured, Retry::OtherRoute);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(!format!("{courier:?}").contains(VOICE_TOKEN));
}
