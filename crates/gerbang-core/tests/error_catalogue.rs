//! Every refusal of the verification engine has a stable code and a message in Indonesian and
//! English, and `docs/verifications.md` lists every one of them. Run with `--nocapture` to print the
//! catalogue.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration};
use gerbang_core::EngineError;
use gerbang_domain::Explain;
use gerbang_domain::verification::VerificationError;
use gerbang_domain::verification::code::OtpCodeError;
use gerbang_domain::verification::purpose::BindingError;
use gerbang_domain::verification::rate::{KeyKind, RateRule};
use gerbang_store::StoreError;

fn every_refusal() -> Vec<EngineError> {
    let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let rule = |key| RateRule::new(key, 5, Duration::minutes(15), Duration::minutes(30));
    let mut all: Vec<EngineError> = [
        VerificationError::ChannelUnknown,
        VerificationError::ChannelMismatch,
        VerificationError::NotFound,
        VerificationError::AlreadyUsed,
        VerificationError::Expired,
        VerificationError::CodeExpired,
        VerificationError::AttemptsExhausted,
        VerificationError::Cancelled,
        VerificationError::Incorrect { attempts_left: 3 },
        VerificationError::ResendCountdown { until: at },
    ]
    .into_iter()
    .map(EngineError::from)
    .collect();
    all.extend(
        [
            BindingError::UnknownPurpose,
            BindingError::UnknownAction,
            BindingError::ActionMissing,
            BindingError::ActionNotAllowed,
            BindingError::DetailsInvalid,
        ]
        .into_iter()
        .map(EngineError::from),
    );
    all.push(OtpCodeError::Malformed { expected: 6 }.into());
    all.push(EngineError::RateLimited {
        rule: rule(KeyKind::Destination),
        until: at,
    });
    all.push(EngineError::RateLimited {
        rule: rule(KeyKind::Flow),
        until: at,
    });
    all.push(EngineError::DestinationSuspended { until: at });
    all.push(EngineError::QueueFull {
        wait: Duration::seconds(200),
        until: at,
    });
    all.push(EngineError::BudgetExhausted {
        channel: gerbang_domain::verification::Channel::Whatsapp,
        until: at,
    });
    all.push(StoreError::Unavailable("disk full".into()).into());
    all
}

#[test]
fn every_refusal_has_both_messages_and_is_documented() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/verifications.md"
    ))
    .expect("docs/verifications.md");
    let mut missing = Vec::new();
    for error in every_refusal() {
        let (code, id, en) = (error.code(), error.message_id(), error.message_en());
        println!("| `{code}` | {id} | {en} |");
        assert!(!id.is_empty() && !en.is_empty() && id != en, "{code}");
        // Our own failures never leak their cause to the caller.
        assert!(
            !id.contains("disk full") && !en.contains("disk full"),
            "{code}"
        );
        if !docs.contains(&format!("`{code}`")) {
            missing.push(code);
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/verifications.md: {missing:?}"
    );
}
