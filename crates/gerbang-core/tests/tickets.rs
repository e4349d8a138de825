//! Complaint tickets on the backend under test: opened with a number participants can quote,
//! found again by it (an unknown one refused by name), notes kept in order and sealed at rest, a
//! verification linked, and every step in the audit log under the ticket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use gerbang_core::tickets::{self, TicketError};
use gerbang_domain::Explain;
use gerbang_domain::verification::VerificationId;
use gerbang_store::Store;
use gerbang_store::audit::AuditFilter;
use gerbang_store::tickets::is_ticket_number;
use gerbang_testkit::store_test;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

store_test!(
    a_ticket_is_opened_found_by_its_number_and_keeps_its_notes,
    unknown_numbers_and_bad_text_are_refused_by_name,
);

async fn a_ticket_is_opened_found_by_its_number_and_keeps_its_notes<S: Store>(store: S) {
    let ticket = tickets::open(
        &store,
        "staff:siti.rahma",
        None,
        "  OTP SMS tidak masuk sejak Senin  ",
        t0(),
    )
    .await
    .unwrap();
    assert!(is_ticket_number(&ticket.number), "{}", ticket.number);
    assert_eq!(ticket.subject, "OTP SMS tidak masuk sejak Senin");
    let found = tickets::find(&store, &ticket.number.to_lowercase())
        .await
        .unwrap();
    assert_eq!(found, ticket);

    let linked = VerificationId::from_bytes([7; 16]);
    tickets::note(
        &store,
        "staff:siti.rahma",
        &found,
        "nomor dicek: aktif, SMS penuh",
        vec![linked],
        t0(),
    )
    .await
    .unwrap();
    tickets::note(
        &store,
        "staff:cabang-jaksel-07",
        &found,
        "peserta datang ke cabang, kode lewat email",
        Vec::new(),
        t0() + Duration::minutes(5),
    )
    .await
    .unwrap();
    let (notes, links) = store.ticket_notes(found.id).await.unwrap();
    let texts: Vec<(&str, &str)> = notes
        .iter()
        .map(|n| (n.by.as_str(), n.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("staff:siti.rahma", "nomor dicek: aktif, SMS penuh"),
            (
                "staff:cabang-jaksel-07",
                "peserta datang ke cabang, kode lewat email"
            ),
        ]
    );
    assert_eq!(links, [linked]);

    let entries = store
        .audit_recent(
            &AuditFilter {
                ticket: Some(ticket.number.clone()),
                ..AuditFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(
        actions,
        ["ticket_note_added", "ticket_note_added", "ticket_opened"]
    );
    assert!(entries[1].record.detail.contains(&linked.to_string()));
    assert!(
        entries
            .iter()
            .all(|e| !e.record.detail.contains("SMS penuh")),
        "the notes' text stays out of the log"
    );
}

async fn unknown_numbers_and_bad_text_are_refused_by_name<S: Store>(store: S) {
    for number in ["T-0000-0001", "t-1234", "1234-5678", ""] {
        let Err(error) = tickets::find(&store, number).await else {
            panic!("{number} found");
        };
        assert_eq!(error.code(), "ticket_unknown");
        if !number.is_empty() {
            assert!(
                error.message_en().contains(&number.to_ascii_uppercase()),
                "{}",
                error.message_en()
            );
            assert!(error.message_id().contains(&number.to_ascii_uppercase()));
        }
    }
    assert!(matches!(
        tickets::open(&store, "staff:x", None, "abc", t0()).await,
        Err(TicketError::TextInvalid)
    ));
    let ticket = tickets::open(&store, "staff:x", None, "akun terkunci", t0())
        .await
        .unwrap();
    assert!(matches!(
        tickets::note(
            &store,
            "staff:x",
            &ticket,
            &"x".repeat(2001),
            Vec::new(),
            t0()
        )
        .await,
        Err(TicketError::TextInvalid)
    ));
    assert!(store.ticket_notes(ticket.id).await.unwrap().0.is_empty());
}
