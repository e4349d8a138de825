//! The SMTP courier against an independent SMTP server: `tests/support/smtp_server.py`, on aiosmtpd
//! (PyPI), which reads what arrives with Python's own `email` package and checks DKIM signatures
//! with dkimpy. Each test starts its own server on a free port; its faults are chosen by the
//! recipient's local part (described in the script). Without python3, aiosmtpd and dkimpy these
//! tests fail, saying what to install: they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/smtp.rs"]
mod smtp;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gerbang_core::{Courier, HandOffFailure};
use gerbang_delivery::email::{
    DkimAlgorithm, DkimSettings, SmtpCourier, SmtpSecurity, SmtpSettings,
};
use gerbang_domain::delivery::{
    Cause, CauseMap, CauseOverride, CodeSource, DeliveryStatus, RawOutcome, Retry,
};
use gerbang_domain::verification::message::MessageContent;
use gerbang_domain::verification::purpose::SensitiveAction;
use gerbang_domain::verification::{Channel, Destination, Locale, VerificationId};
use gerbang_domain::{Email, MobileNumber};
use gerbang_store::{OutboxMessage, Priority};
use smtp::{DkimKey, Received, ServerOptions, SmtpServer, closed_port};

const CODE: &str = "482913";
const WARNING_ID: &str = "JANGAN berikan kode ini kepada siapa pun, termasuk petugas BPJS.";
const WARNING_EN: &str = "Do NOT give this code to anyone, including BPJS staff.";
const USER: &str = "gerbang";
const PASSWORD: &str = "sandi-uji-coba";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 3, 15, 0).unwrap()
}

fn content(locale: Locale, action: Option<(SensitiveAction, &str)>) -> MessageContent {
    MessageContent {
        code: CODE.into(),
        locale,
        lifetime_minutes: 5,
        action: action.map(|(action, _)| action),
        action_hint: action.map(|(_, hint)| hint.to_owned()),
    }
}

fn message(to: &str, content: Option<MessageContent>) -> OutboxMessage {
    OutboxMessage {
        verification: VerificationId::from_bytes([7; 16]),
        send_index: 0,
        channel: Channel::Email,
        destination: Destination::Email(Email::parse(to).unwrap()),
        text: format!("JKN Mobile: kode OTP {CODE}, berlaku 5 menit. {WARNING_ID}"),
        content,
        queued_at: now(),
        expires_at: now() + chrono::Duration::minutes(10),
        priority: Priority::Otp,
    }
}

/// Plain SMTP to the test server, as a relay on the same host would be used.
fn settings(port: u16) -> SmtpSettings {
    let mut settings = SmtpSettings::new("127.0.0.1", "noreply@example.org");
    settings.port = port;
    settings.security = SmtpSecurity::None;
    settings.from_name = "BPJS Kesehatan".into();
    settings.brand = "JKN Mobile".into();
    settings.hello_name = Some("gerbang.example.org".into());
    settings.timeout = Duration::from_secs(5);
    settings
}

/// STARTTLS to the test server, trusting its CA, with the test user's credentials.
fn secure_settings(server: &SmtpServer, password: &str) -> SmtpSettings {
    let mut settings = settings(server.port);
    settings.security = SmtpSecurity::StartTls;
    settings.ca_certificate_pem = server.ca_pem.clone();
    settings.username = Some(USER.into());
    settings.password = Some(password.into());
    settings
}

fn courier(settings: SmtpSettings) -> SmtpCourier {
    SmtpCourier::new("smtp:test", settings, Arc::new(CauseMap::default())).unwrap()
}

async fn refusal(courier: &SmtpCourier, to: &str) -> HandOffFailure {
    courier
        .hand_off(&message(to, Some(content(Locale::Id, None))), now())
        .await
        .expect_err("the server refuses this one")
}

fn secure_server_options() -> ServerOptions {
    ServerOptions {
        starttls: true,
        auth: Some((USER.into(), PASSWORD.into())),
        ..ServerOptions::default()
    }
}

fn assert_no_secrets(failure: &HandOffFailure) {
    assert!(!failure.detail.contains(CODE), "{failure}");
    assert!(!failure.detail.contains(PASSWORD), "{failure}");
}

#[tokio::test]
async fn an_indonesian_code_arrives_as_text_and_html_naming_the_brand_the_lifetime_and_the_warning()
{
    let server = SmtpServer::start(ServerOptions::default()).await;
    let courier = courier(settings(server.port));
    let to = "budi.santoso@example.com";

    let handoff = courier
        .hand_off(&message(to, Some(content(Locale::Id, None))), now())
        .await
        .unwrap();

    assert_eq!(handoff.status, DeliveryStatus::Submitted);
    assert_eq!(handoff.at, now());
    let received: Received = server.message_to(to).await;
    assert_eq!(
        handoff.message_id.as_deref(),
        Some(received.message_id.as_str())
    );
    assert!(
        received.message_id.ends_with("@example.org>"),
        "{}",
        received.message_id
    );
    assert_eq!(received.mail_from, "noreply@example.org");
    assert_eq!(received.rcpt_tos, vec![to.to_owned()]);
    assert_eq!(received.from, "BPJS Kesehatan <noreply@example.org>");
    assert_eq!(received.to, to);
    assert_eq!(received.subject, "Kode verifikasi JKN Mobile");
    assert!(
        received.date.contains("4 May 2026 03:15:00"),
        "{}",
        received.date
    );
    assert_eq!(received.content_type, "multipart/alternative");
    assert!(!received.tls);
    assert_eq!(received.login, None);

    let text = &received.part("text/plain").content;
    let html = &received.part("text/html").content;
    for part in [text, html] {
        assert!(part.contains(CODE), "{part}");
        assert!(part.contains("JKN Mobile"), "{part}");
        assert!(part.contains("berlaku 5 menit"), "{part}");
        assert!(part.contains(WARNING_ID), "{part}");
    }
    assert!(html.contains("<html lang=\"id\">"), "{html}");
    assert_eq!(received.parts.len(), 2, "{:#?}", received.parts);
}

#[tokio::test]
async fn an_english_step_up_code_names_the_action_it_allows() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let courier = courier(settings(server.port));
    let to = "siti.rahayu@example.org";
    let step_up = content(
        Locale::En,
        Some((SensitiveAction::BankAccountChange, "****7890")),
    );

    courier
        .hand_off(&message(to, Some(step_up)), now())
        .await
        .unwrap();

    let received = server.message_to(to).await;
    assert_eq!(received.subject, "Your JKN Mobile verification code");
    let text = &received.part("text/plain").content;
    let html = &received.part("text/html").content;
    for part in [text, html] {
        assert!(part.contains(CODE), "{part}");
        assert!(
            part.contains("This code is for bank account change ****7890."),
            "{part}"
        );
        assert!(part.contains("valid for 5 minutes"), "{part}");
        assert!(part.contains(WARNING_EN), "{part}");
        assert!(!part.contains("JANGAN"), "{part}");
    }
    assert!(html.contains("<html lang=\"en\">"), "{html}");
}

#[tokio::test]
async fn a_message_queued_before_email_content_existed_goes_as_its_sms_text() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let courier = courier(settings(server.port));
    let to = "lama@example.com";
    let old = message(to, None);

    courier.hand_off(&old, now()).await.unwrap();

    let received = server.message_to(to).await;
    assert_eq!(received.content_type, "text/plain");
    assert_eq!(received.subject, "Kode verifikasi JKN Mobile");
    assert_eq!(received.part("text/plain").content.trim_end(), old.text);
}

#[tokio::test]
async fn over_starttls_with_authentication_the_relay_sees_an_encrypted_authenticated_session() {
    let server = SmtpServer::start(secure_server_options()).await;
    let courier = courier(secure_settings(&server, PASSWORD));
    let to = "budi@example.com";

    let handoff = courier
        .hand_off(&message(to, Some(content(Locale::Id, None))), now())
        .await;

    assert!(handoff.is_ok(), "{handoff:?}\n{}", server.errors());
    let received = server.message_to(to).await;
    assert!(received.tls, "the message crossed in clear");
    assert_eq!(received.login.as_deref(), Some(USER));
    assert!(received.part("text/plain").content.contains(CODE));
}

#[tokio::test]
async fn a_relay_whose_certificate_we_cannot_check_is_refused_unless_checking_is_turned_off() {
    let server = SmtpServer::start(secure_server_options()).await;
    let mut unknown_ca = secure_settings(&server, PASSWORD);
    unknown_ca.ca_certificate_pem = None;

    let failure = refusal(&courier(unknown_ca.clone()), "budi@example.com").await;

    assert_eq!(failure.cause, Cause::ProviderError, "{failure}");
    assert_eq!(failure.retry, Retry::SameRoute);
    assert!(failure.detail.starts_with("SMTP "), "{failure}");
    assert!(failure.detail.contains("certificate"), "{failure}");
    assert!(server.received().is_empty());
    assert_no_secrets(&failure);

    let mut unchecked = unknown_ca;
    unchecked.accept_invalid_certs = true;
    courier(unchecked)
        .hand_off(
            &message("budi@example.com", Some(content(Locale::Id, None))),
            now(),
        )
        .await
        .unwrap();
    assert!(server.message_to("budi@example.com").await.tls);
}

#[tokio::test]
async fn a_wrong_password_is_our_misconfiguration_and_another_route_may_work() {
    let server = SmtpServer::start(secure_server_options()).await;
    let courier = courier(secure_settings(&server, "salah"));

    let failure = refusal(&courier, "budi@example.com").await;

    assert_eq!(failure.cause, Cause::ProviderMisconfigured, "{failure}");
    assert_eq!(failure.retry, Retry::OtherRoute);
    assert!(failure.detail.starts_with("SMTP 535 "), "{failure}");
    assert!(!failure.detail.contains("salah"), "{failure}");
    assert_no_secrets(&failure);
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn without_credentials_a_relay_that_demands_them_is_our_misconfiguration() {
    let server = SmtpServer::start(secure_server_options()).await;
    let mut anonymous = secure_settings(&server, PASSWORD);
    anonymous.username = None;
    anonymous.password = None;

    let failure = refusal(&courier(anonymous), "budi@example.com").await;

    assert_eq!(failure.cause, Cause::ProviderMisconfigured, "{failure}");
    assert_eq!(failure.retry, Retry::OtherRoute);
    assert!(failure.detail.starts_with("SMTP 530 "), "{failure}");
}

#[tokio::test]
async fn refusals_are_judged_by_the_cause_map_as_docs_delivery_md_documents() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let courier = courier(settings(server.port));
    let map = CauseMap::default();
    // docs/delivery.md, "SMTP": 421 provider_overloaded; 450 mailbox_rejected (same_route); 550
    // mailbox_rejected; 552 inbox_full; 554 spam_filtered.
    let table = [
        ("reject550", 550, Cause::MailboxRejected, Retry::No),
        ("full552", 552, Cause::InboxFull, Retry::No),
        ("spam554", 554, Cause::SpamFiltered, Retry::OtherRoute),
        ("busy421", 421, Cause::ProviderOverloaded, Retry::SameRoute),
        ("grey450", 450, Cause::MailboxRejected, Retry::SameRoute),
    ];
    for (local, code, cause, retry) in table {
        let failure = refusal(&courier, &format!("{local}@example.com")).await;
        let verdict = map.judge(&RawOutcome::Smtp(code));
        assert_eq!(
            verdict.cause,
            Some(cause),
            "the cause map moved away from the docs for {code}"
        );
        assert_eq!(
            verdict.retry, retry,
            "the cause map moved away from the docs for {code}"
        );
        assert_eq!((failure.cause, failure.retry), (cause, retry), "{failure}");
        assert!(
            failure.detail.starts_with(&format!("SMTP {code} ")),
            "{failure}"
        );
        assert!(
            !failure.detail.contains(&format!("{local}@")),
            "unmasked: {failure}"
        );
        assert_no_secrets(&failure);
    }
    let rejected = refusal(&courier, "reject550@example.com").await;
    assert_eq!(
        rejected.detail,
        "SMTP 550 5.1.1 <r***@example.com>: Recipient address rejected: User unknown"
    );

    // A refused message breaks nothing: the next one goes through.
    courier
        .hand_off(
            &message("budi@example.com", Some(content(Locale::Id, None))),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn an_operator_override_of_an_smtp_code_decides_instead_of_the_default() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let overrides = [CauseOverride {
        source: CodeSource::Smtp,
        code: "552".into(),
        cause: Cause::MailboxRejected,
        retry: Retry::OtherRoute,
    }];
    let map = Arc::new(CauseMap::with_overrides(&overrides).unwrap());
    let courier = SmtpCourier::new("smtp:test", settings(server.port), map).unwrap();

    let failure = refusal(&courier, "full552@example.com").await;

    assert_eq!(
        (failure.cause, failure.retry),
        (Cause::MailboxRejected, Retry::OtherRoute)
    );
}

#[tokio::test]
async fn a_relay_that_is_down_is_unreachable_and_worth_retrying() {
    let courier = courier(settings(closed_port()));

    let failure = refusal(&courier, "budi@example.com").await;

    assert_eq!(failure.cause, Cause::ProviderError, "{failure}");
    assert_eq!(failure.retry, Retry::SameRoute);
    assert!(
        failure.detail.starts_with("SMTP connection failure"),
        "{failure}"
    );
}

#[tokio::test]
async fn a_relay_that_answers_too_slowly_is_unreachable_and_worth_retrying() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let mut impatient = settings(server.port);
    impatient.timeout = Duration::from_secs(1);
    let courier = courier(impatient);

    let started = std::time::Instant::now();
    let failure = refusal(&courier, "slow@example.com").await;

    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(failure.cause, Cause::ProviderError, "{failure}");
    assert_eq!(failure.retry, Retry::SameRoute);
    assert!(failure.detail.starts_with("SMTP timeout"), "{failure}");

    // The abandoned dialogue does not leak into the next message's: on the same connection the
    // next message would read the slow one's replies, one step behind, and take the 354 that
    // invites its body for the 250 that accepts it, so this refusal would pass for a hand-off.
    let refused = refusal(&courier, "spam554@example.com").await;
    assert_eq!(refused.cause, Cause::SpamFiltered, "{refused}");
    let handoff = courier
        .hand_off(
            &message("budi@example.com", Some(content(Locale::Id, None))),
            now(),
        )
        .await
        .unwrap();
    let received = server.message_to("budi@example.com").await;
    assert_eq!(
        handoff.message_id.as_deref(),
        Some(received.message_id.as_str())
    );
}

#[tokio::test]
async fn a_dkim_signed_email_carries_the_configured_domain_and_selector_and_verifies() {
    let key = DkimKey::generate();
    let server = SmtpServer::start(ServerOptions {
        dkim_record: Some(key.record("gerbang2026", "example.org")),
        ..ServerOptions::default()
    })
    .await;
    let mut signing = settings(server.port);
    signing.dkim = Some(DkimSettings {
        selector: "gerbang2026".into(),
        domain: "example.org".into(),
        algorithm: DkimAlgorithm::Rsa,
        private_key: key.private_pem.clone(),
    });
    let courier = courier(signing);
    let to = "budi@example.com";

    courier
        .hand_off(&message(to, Some(content(Locale::Id, None))), now())
        .await
        .unwrap();

    let received = server.message_to(to).await;
    let signature = received
        .dkim_signature
        .clone()
        .expect("a DKIM-Signature header");
    let tags: Vec<String> = signature
        .split(';')
        .map(|tag| tag.split_whitespace().collect::<String>())
        .collect();
    assert!(tags.iter().any(|tag| tag == "d=example.org"), "{signature}");
    assert!(tags.iter().any(|tag| tag == "s=gerbang2026"), "{signature}");
    assert!(tags.iter().any(|tag| tag == "a=rsa-sha256"), "{signature}");
    assert_eq!(
        received.dkim_valid,
        Some(true),
        "dkimpy does not verify it:\n{}\n{}",
        received.dkim_log,
        received.raw
    );

    // Unsigned without the setting.
    let plain = SmtpServer::start(ServerOptions::default()).await;
    let unsigned = self::courier(settings(plain.port));
    unsigned
        .hand_off(&message(to, Some(content(Locale::Id, None))), now())
        .await
        .unwrap();
    assert_eq!(plain.message_to(to).await.dkim_signature, None);
}

#[tokio::test]
async fn messages_in_a_row_and_at_once_all_arrive_over_the_pool() {
    let server = SmtpServer::start(ServerOptions::default()).await;
    let courier = courier(settings(server.port));
    for n in 0..3 {
        courier
            .hand_off(
                &message(
                    &format!("urut{n}@example.com"),
                    Some(content(Locale::Id, None)),
                ),
                now(),
            )
            .await
            .unwrap();
    }
    let messages: Vec<OutboxMessage> = (0..6)
        .map(|n| {
            message(
                &format!("serentak{n}@example.com"),
                Some(content(Locale::En, None)),
            )
        })
        .collect();
    let handoffs =
        futures::future::join_all(messages.iter().map(|m| courier.hand_off(m, now()))).await;

    let mut ids: Vec<String> = handoffs
        .into_iter()
        .map(|handoff| handoff.unwrap().message_id.unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "every message has its own id");
    assert_eq!(server.received().len(), 9);
}

#[tokio::test]
async fn an_email_courier_refuses_sms_and_phone_numbers_without_connecting() {
    let courier = courier(settings(closed_port()));
    let mut to_phone = message("budi@example.com", Some(content(Locale::Id, None)));
    to_phone.destination = Destination::Phone(MobileNumber::parse("081234567890").unwrap());
    let mut as_sms = message("budi@example.com", Some(content(Locale::Id, None)));
    as_sms.channel = Channel::Sms;

    for wrong in [to_phone, as_sms] {
        let failure = courier.hand_off(&wrong, now()).await.unwrap_err();
        assert_eq!(failure.cause, Cause::ProviderMisconfigured, "{failure}");
        assert_eq!(failure.retry, Retry::OtherRoute);
        assert!(
            !failure.detail.starts_with("SMTP"),
            "it tried to connect: {failure}"
        );
    }
}
