#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use chrono::NaiveDate;
use proptest::prelude::*;

use super::causes::{CauseMapError, CodeSource, Retry};
use super::fallback::FallbackPolicy;
use super::receipt::{normalise_message_id, receipt_id_candidates};
use super::*;
use crate::verification::Channel;

fn parse(text: &str) -> Result<Receipt, ReceiptError> {
    Receipt::parse(text.as_bytes(), &ReceiptTlvs::default())
}

#[test]
fn the_standard_receipt_is_read_without_its_text() {
    let r = parse(
        "id:0123456789 sub:001 dlvrd:001 submit date:2611221530 done date:2611221531 stat:DELIVRD err:000 text:JKN Mobile: 482913 adalah",
    )
    .unwrap();
    assert_eq!(r.message_id, "0123456789");
    assert_eq!(r.state, ReceiptState::Delivered);
    assert_eq!(r.error, None, "err:000 is no error");
    assert_eq!(
        r.submitted_at,
        NaiveDate::from_ymd_opt(2026, 11, 22)
            .unwrap()
            .and_hms_opt(15, 30, 0)
    );
    assert_eq!(
        r.done_at,
        NaiveDate::from_ymd_opt(2026, 11, 22)
            .unwrap()
            .and_hms_opt(15, 31, 0)
    );
    assert!(
        !format!("{r:?}{r}").contains("482913"),
        "the text is never kept"
    );
}

#[test]
fn vendor_variants_are_read() {
    // Upper-case keys, 12-digit dates, no text, a hex id, `Text:` capitalised, extra keys.
    let r = parse("ID:7f3A9c SUB:001 DLVRD:000 SUBMIT DATE:261122153005 DONE DATE:261122153105 STAT:UNDELIV ERR:001 Text:x").unwrap();
    assert_eq!(r.message_id, "7f3A9c");
    assert_eq!(r.state, ReceiptState::Undeliverable);
    assert_eq!(r.error.as_deref(), Some("001"));
    assert_eq!(
        r.done_at,
        NaiveDate::from_ymd_opt(2026, 11, 22)
            .unwrap()
            .and_hms_opt(15, 31, 5)
    );
    let r = parse("id:42 stat:EXPIRED err:27 foo:bar").unwrap();
    assert_eq!(
        (r.state, r.error.as_deref()),
        (ReceiptState::Expired, Some("27"))
    );
    let r = parse("id:42,stat:rejectd,err:13").unwrap();
    assert_eq!(
        (r.state, r.error.as_deref()),
        (ReceiptState::Rejected, Some("13"))
    );
    let r = parse("id:42 submit date:26112215 stat:ENROUTE").unwrap();
    assert_eq!(
        r.submitted_at, None,
        "an 8-digit date is no date, not an error"
    );
    assert!(!r.state.is_final());
    let r = parse("id:42 stat:WEIRD").unwrap();
    assert_eq!(
        (r.state, r.stat.as_str()),
        (ReceiptState::Unrecognised, "WEIRD")
    );
}

#[test]
fn the_message_text_cannot_forge_a_state() {
    let r = parse("id:9 stat:UNDELIV err:001 text:stat:DELIVRD id:1").unwrap();
    assert_eq!(r.state, ReceiptState::Undeliverable);
    assert_eq!(r.message_id, "9");
    assert_eq!(
        parse("id:9 err:001 text:stat:DELIVRD"),
        Err(ReceiptError::MissingState),
        "a state only inside the text is no state"
    );
    // A key inside another word is not a key.
    let r = parse("xid:5 id:7 substat:DELIVRD stat:EXPIRED").unwrap();
    assert_eq!(
        (r.message_id.as_str(), r.state),
        ("7", ReceiptState::Expired)
    );
}

#[test]
fn tlvs_win_over_the_text() {
    let tlvs = ReceiptTlvs {
        receipted_message_id: Some("abc123".into()),
        message_state: Some(5),
        network_error: Some((3, 6)),
    };
    let r = Receipt::parse(b"id:999 stat:DELIVRD", &tlvs).unwrap();
    assert_eq!(r.message_id, "abc123");
    assert_eq!(r.state, ReceiptState::Undeliverable);
    assert_eq!(
        r.error.as_deref(),
        Some("3:6"),
        "the network error when there is no err"
    );
    let r = Receipt::parse(b"", &tlvs).unwrap();
    assert_eq!(r.state, ReceiptState::Undeliverable);
    // Staff read the state's word, as the docs show it, not the TLV's number.
    assert_eq!(r.stat, "UNDELIV");
    assert_eq!(r.to_string(), "id:abc123 stat:UNDELIV err:3:6");
    for (value, word) in [
        (1, "ENROUTE"),
        (2, "DELIVRD"),
        (3, "EXPIRED"),
        (4, "DELETED"),
        (6, "ACCEPTD"),
        (7, "UNKNOWN"),
        (8, "REJECTD"),
        (9, "SKIPPED"),
    ] {
        let tlvs = ReceiptTlvs {
            message_state: Some(value),
            ..tlvs.clone()
        };
        assert_eq!(Receipt::parse(b"", &tlvs).unwrap().stat, word);
    }
    // A state outside the standard keeps its number, named.
    let odd = ReceiptTlvs {
        message_state: Some(42),
        ..tlvs
    };
    assert_eq!(Receipt::parse(b"", &odd).unwrap().stat, "message_state=42");
}

#[test]
fn a_receipt_without_id_or_state_is_refused() {
    assert_eq!(parse("stat:DELIVRD err:0"), Err(ReceiptError::MissingId));
    assert_eq!(parse("id: stat:DELIVRD"), Err(ReceiptError::MissingId));
    assert_eq!(parse("id:5 err:001"), Err(ReceiptError::MissingState));
    assert_eq!(parse("id:5 stat:"), Err(ReceiptError::MissingState));
    assert_eq!(parse(""), Err(ReceiptError::MissingId));
}

#[test]
fn message_ids_match_across_hex_and_decimal() {
    assert_eq!(normalise_message_id(" 000ABC "), "abc");
    assert_eq!(normalise_message_id("000"), "0");
    let candidates = receipt_id_candidates("0010");
    assert_eq!(candidates, ["10", "a", "16"]);
    assert!(receipt_id_candidates("ff").contains(&"255".to_owned()));
    assert!(receipt_id_candidates("  ").is_empty());
}

fn receipt_with(stat: &str, err: &str) -> Receipt {
    parse(&format!("id:1 stat:{stat} err:{err}")).unwrap()
}

#[test]
fn receipt_errors_map_to_causes_participants_understand() {
    let map = CauseMap::default();
    let judge = |stat, err| map.judge(&RawOutcome::SmppReceipt(&receipt_with(stat, err)));
    let v = judge("UNDELIV", "001");
    assert_eq!(
        (v.status, v.cause, v.retry),
        (
            DeliveryStatus::Failed,
            Some(Cause::NumberInactive),
            Retry::No
        )
    );
    assert_eq!(
        judge("UNDELIV", "0001").cause,
        Some(Cause::NumberInactive),
        "zero padding"
    );
    assert_eq!(judge("UNDELIV", "032").cause, Some(Cause::InboxFull));
    let v = judge("EXPIRED", "000");
    assert_eq!(
        (v.status, v.cause),
        (DeliveryStatus::Expired, Some(Cause::PhoneUnreachable))
    );
    assert_eq!(judge("REJECTD", "0").cause, Some(Cause::SpamFiltered));
    assert_eq!(
        judge("UNDELIV", "777").cause,
        Some(Cause::Unknown),
        "never a guess"
    );
    let v = judge("DELIVRD", "000");
    assert_eq!(
        (v.status, v.cause),
        (DeliveryStatus::Delivered, Some(Cause::Delivered))
    );
    let v = judge("ENROUTE", "000");
    assert_eq!((v.status, v.cause), (DeliveryStatus::Submitted, None));
    assert_eq!(judge("ACCEPTD", "000").status, DeliveryStatus::Unknown);
}

#[test]
fn submit_statuses_say_whether_to_retry_and_where() {
    let map = CauseMap::default();
    let submit = |status| map.judge(&RawOutcome::SmppSubmit(status));
    assert_eq!(submit(0).status, DeliveryStatus::Submitted);
    assert_eq!(
        (submit(0x58).cause, submit(0x58).retry),
        (Some(Cause::ProviderThrottled), Retry::SameRoute)
    );
    assert_eq!(submit(0x14).cause, Some(Cause::ProviderOverloaded));
    assert_eq!(submit(0x0A).retry, Retry::OtherRoute);
    assert_eq!(
        (submit(0x1234).cause, submit(0x1234).retry),
        (Some(Cause::ProviderError), Retry::OtherRoute)
    );
    assert_eq!(
        map.judge(&RawOutcome::Whatsapp(131026)).cause,
        Some(Cause::NotOnWhatsapp)
    );
    assert_eq!(
        map.judge(&RawOutcome::Smtp(250)).status,
        DeliveryStatus::Submitted
    );
    assert_eq!(
        map.judge(&RawOutcome::Smtp(550)).cause,
        Some(Cause::MailboxRejected)
    );
    assert_eq!(map.judge(&RawOutcome::Smtp(471)).retry, Retry::SameRoute);
    assert_eq!(
        map.judge(&RawOutcome::NoReceipt).status,
        DeliveryStatus::Unknown
    );
}

#[test]
fn operators_override_codes_per_source() {
    // An SMSC that adds 1152 to MAP codes, and a throttling status written in decimal.
    let overrides: Vec<CauseOverride> = vec![
        CauseOverride {
            source: CodeSource::SmppErr,
            code: "1153".into(),
            cause: Cause::NumberInactive,
            retry: Retry::No,
        },
        CauseOverride {
            source: CodeSource::SmppStatus,
            code: "0x400".into(),
            cause: Cause::ProviderThrottled,
            retry: Retry::SameRoute,
        },
        CauseOverride {
            source: CodeSource::SmppErr,
            code: "001".into(),
            cause: Cause::BlockedByOperator,
            retry: Retry::No,
        },
    ];
    let map = CauseMap::with_overrides(&overrides).unwrap();
    let judge = |err| map.judge(&RawOutcome::SmppReceipt(&receipt_with("UNDELIV", err)));
    assert_eq!(judge("1153").cause, Some(Cause::NumberInactive));
    assert_eq!(
        judge("1").cause,
        Some(Cause::BlockedByOperator),
        "an override wins"
    );
    assert_eq!(
        map.judge(&RawOutcome::SmppSubmit(0x400)).cause,
        Some(Cause::ProviderThrottled)
    );
    let bad = |source, code: &str| {
        CauseMap::with_overrides(&[CauseOverride {
            source,
            code: code.into(),
            cause: Cause::Unknown,
            retry: Retry::No,
        }])
        .unwrap_err()
    };
    assert_eq!(
        bad(CodeSource::SmppStatus, "0xZZ"),
        CauseMapError::BadStatus("0xZZ".into())
    );
    assert_eq!(
        bad(CodeSource::Whatsapp, "abc"),
        CauseMapError::BadCode("abc".into())
    );
    assert_eq!(bad(CodeSource::Smtp, " "), CauseMapError::Empty);
    // The configuration form.
    let parsed: CauseOverride = serde_json::from_str(
        r#"{"source":"smpp_err","code":"1153","cause":"number_inactive","retry":"no"}"#,
    )
    .unwrap();
    assert_eq!(parsed, overrides[0]);
}

#[test]
fn every_cause_has_a_stable_name_two_messages_and_a_next_step() {
    let mut names = HashSet::new();
    for cause in Cause::ALL {
        assert!(names.insert(cause.as_str()), "{cause:?}");
        assert_eq!(Cause::parse(cause.as_str()), Some(cause));
        for channel in Channel::ALL {
            let explained = explain(cause, channel, &Channel::ALL, true);
            assert!(
                !explained.id.is_empty() && explained.id != explained.en,
                "{cause:?}"
            );
            assert_eq!(
                explained.next_step == NextStep::None,
                cause == Cause::Delivered,
                "{cause:?}"
            );
        }
    }
    assert_eq!(Cause::parse("nonsense"), None);
}

fn stat_word() -> impl Strategy<Value = (&'static str, ReceiptState)> {
    prop::sample::select(vec![
        ("DELIVRD", ReceiptState::Delivered),
        ("UNDELIV", ReceiptState::Undeliverable),
        ("EXPIRED", ReceiptState::Expired),
        ("REJECTD", ReceiptState::Rejected),
        ("ENROUTE", ReceiptState::Enroute),
        ("DELETED", ReceiptState::Deleted),
        ("UNKNOWN", ReceiptState::Unknown),
    ])
}

proptest! {
    #[test]
    fn any_bytes_are_parsed_or_refused_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Receipt::parse(&bytes, &ReceiptTlvs::default());
    }

    #[test]
    fn any_text_with_keys_is_parsed_or_refused_never_a_panic(
        text in "(id|stat|err|text|sub|dlvrd|submit date|done date|ID|Stat|[ :,;a-zA-Z0-9\u{e9}\u{1f600}]){0,40}"
    ) {
        let _ = Receipt::parse(text.as_bytes(), &ReceiptTlvs::default());
    }

    #[test]
    fn well_formed_receipts_read_back_in_any_key_order_and_case(
        id in "[0-9A-Fa-f]{1,20}",
        (stat, state) in stat_word(),
        err in 0u16..1200,
        upper in any::<bool>(),
        order in Just(vec!["id", "stat", "err", "sub", "dlvrd"]).prop_shuffle(),
        text in "[ a-zA-Z0-9:]{0,20}",
    ) {
        let value = |key: &str| match key {
            "id" => id.clone(),
            "stat" => stat.to_owned(),
            "err" => format!("{err:03}"),
            _ => "001".to_owned(),
        };
        let mut parts: Vec<String> = order
            .iter()
            .map(|key| {
                let key = if upper { key.to_uppercase() } else { (*key).to_owned() };
                format!("{key}:{}", value(&key.to_lowercase()))
            })
            .collect();
        parts.push(format!("text:{text}"));
        let receipt = parse(&parts.join(" ")).unwrap();
        prop_assert_eq!(receipt.message_id, id);
        prop_assert_eq!(receipt.state, state);
        prop_assert_eq!(receipt.error, (err != 0).then(|| format!("{err:03}")));
    }
}

#[test]
fn every_cause_is_documented() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/delivery.md"
    ))
    .expect("docs/delivery.md");
    let mut missing = Vec::new();
    for cause in Cause::ALL {
        let explained = explain(cause, Channel::Sms, &FallbackPolicy::default().order, true);
        // Run with --nocapture to print the table for the docs.
        println!(
            "| `{}` | {} | {} | `{}` |",
            cause.as_str(),
            explained.id,
            explained.en,
            explained.next_step.as_str()
        );
        if !docs.contains(&format!("`{}`", cause.as_str())) {
            missing.push(cause.as_str());
        }
    }
    assert!(missing.is_empty(), "not in docs/delivery.md: {missing:?}");
}
