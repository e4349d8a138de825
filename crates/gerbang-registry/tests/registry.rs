//! The registry end to end: CSV import into the backend under test, lookups through both sources.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::{DateTime, NaiveDate};
use gerbang_domain::{Clock, JknCardNumber, ManualClock, Nik};
use gerbang_registry::{
    DirectoryError, HttpDirectory, ImportError, ImportObserver, ImportReport, ParticipantDirectory,
    RowProblem, StoreDirectory, import_csv, write_csv,
};
use gerbang_store::{ParticipantKey, Store};
use gerbang_testkit::{participant, store_test};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn clock() -> ManualClock {
    ManualClock::new(DateTime::from_timestamp(1_795_000_000, 0).unwrap())
}

fn today() -> NaiveDate {
    clock().now().date_naive()
}

#[derive(Default)]
struct Collect {
    rejected: Vec<RowProblem>,
    dropped: Vec<RowProblem>,
    progress_calls: u32,
}

impl ImportObserver for Collect {
    fn rejected(&mut self, row: &RowProblem) {
        self.rejected.push(row.clone());
    }
    fn dropped_field(&mut self, problem: &RowProblem) {
        self.dropped.push(problem.clone());
    }
    fn progress(&mut self, _bytes: u64, _report: &ImportReport) {
        self.progress_calls += 1;
    }
}

async fn import_text<S: Store>(
    store: &S,
    text: String,
) -> (Result<ImportReport, ImportError>, Collect) {
    let mut seen = Collect::default();
    let result = import_csv(
        store,
        Box::new(std::io::Cursor::new(text.into_bytes())),
        &clock(),
        &mut seen,
    )
    .await;
    (result, seen)
}

fn generated(count: u64, seed: u64) -> String {
    let mut out = Vec::new();
    write_csv(&mut out, count, seed, today()).unwrap();
    String::from_utf8(out).unwrap()
}

store_test!(
    generated_participants_import_and_are_found_by_nik_and_card,
    a_second_import_of_the_same_file_changes_nothing,
    bad_rows_are_reported_by_line_and_field_while_good_rows_load,
    an_unknown_column_refuses_the_file_before_any_row_loads,
    a_card_number_taken_by_another_nik_is_reported_on_its_line,
    a_first_load_reports_a_card_taken_in_an_earlier_batch_on_its_line,
    a_semicolon_separated_file_with_a_byte_order_mark_imports,
    a_row_that_is_not_utf8_is_reported_and_the_rest_load,
    a_daily_sync_writes_what_changed_even_when_changed_back_in_the_next_batch,
);

async fn a_semicolon_separated_file_with_a_byte_order_mark_imports<S: Store>(store: S) {
    // What a spreadsheet in the Indonesian locale saves as "CSV".
    let text = format!("\u{feff}{}", generated(50, 4).replace(',', ";"));
    let (report, seen) = import_text(&store, text).await;
    let report = report.unwrap();
    assert_eq!(
        (report.inserted, report.rejected),
        (50, 0),
        "{:?}",
        seen.rejected.first()
    );
}

async fn a_row_that_is_not_utf8_is_reported_and_the_rest_load<S: Store>(store: S) {
    let text = generated(5, 6);
    let mut bytes = Vec::new();
    for (at, line) in text.lines().enumerate() {
        if at == 3 {
            bytes.extend_from_slice(&line.as_bytes()[..40]);
            bytes.extend_from_slice(&[0xff, 0xfe]);
            bytes.extend_from_slice(&line.as_bytes()[40..]);
        } else {
            bytes.extend_from_slice(line.as_bytes());
        }
        bytes.push(b'\n');
    }
    let mut seen = Collect::default();
    let report = import_csv(
        &store,
        Box::new(std::io::Cursor::new(bytes)),
        &clock(),
        &mut seen,
    )
    .await
    .unwrap();
    assert_eq!((report.inserted, report.rejected), (4, 1));
    assert_eq!(
        (seen.rejected[0].line, seen.rejected[0].code.as_str()),
        (4, "row_malformed")
    );
    assert!(
        seen.rejected[0].reason.contains("UTF-8"),
        "{}",
        seen.rejected[0].reason
    );
}

async fn generated_participants_import_and_are_found_by_nik_and_card<S: Store>(store: S) {
    let text = generated(12_000, 42);
    let (report, seen) = import_text(&store, text.clone()).await;
    let report = report.unwrap();
    assert_eq!(report.rows_read, 12_000);
    assert_eq!(report.inserted, 12_000);
    assert_eq!(report.rejected, 0, "{:?}", seen.rejected.first());
    assert!(seen.progress_calls >= 3, "progress is reported per batch");
    assert!(
        report.birth_date_differs_from_nik > 0,
        "the generator plants NIK-date mismatches"
    );
    assert_eq!(store.count_participants().await.unwrap(), 12_000);

    let line = text.lines().nth(777).unwrap();
    let fields: Vec<&str> = line.split(',').collect();
    let directory = StoreDirectory::new(store.clone());
    let nik = Nik::parse(fields[0]).unwrap();
    let by_nik = directory
        .lookup(ParticipantKey::Nik(&nik))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_nik.full_name.as_str(), fields[4]);
    let card = JknCardNumber::parse(fields[1]).unwrap();
    let by_card = directory
        .lookup(ParticipantKey::CardNumber(&card))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_card, by_nik);
}

async fn a_second_import_of_the_same_file_changes_nothing<S: Store>(store: S) {
    let text = generated(3_000, 5);
    import_text(&store, text.clone()).await.0.unwrap();
    let again = import_text(&store, text).await.0.unwrap();
    assert_eq!(
        (
            again.inserted,
            again.updated,
            again.unchanged,
            again.rejected
        ),
        (0, 0, 3_000, 0)
    );
    assert_eq!(store.count_participants().await.unwrap(), 3_000);
}

/// A re-import writes only the rows that changed. The rows of one batch are compared with the
/// registry before the batch ahead of them is written, so a participant changed at the end of one
/// batch and changed back at the start of the next must still end as the file's last row says.
async fn a_daily_sync_writes_what_changed_even_when_changed_back_in_the_next_batch<S: Store>(
    store: S,
) {
    let text = generated(12_000, 7);
    import_text(&store, text.clone()).await.0.unwrap();
    let renamed = |line: &str, name: &str| {
        let mut fields: Vec<&str> = line.split(',').collect();
        fields[4] = name;
        fields.join(",")
    };
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Line 5,001 is the last of the first batch of 5,000 rows; its original comes back first in
    // the next batch.
    let original = lines[5_000].clone();
    lines[5_000] = renamed(&original, "Nama Sementara");
    lines.insert(5_001, original.clone());
    lines[12] = renamed(&lines[12], "Nama Baru");
    let report = import_text(&store, lines.join("\n")).await.0.unwrap();
    assert_eq!(
        (
            report.rows_read,
            report.inserted,
            report.updated,
            report.unchanged,
            report.rejected
        ),
        (12_001, 0, 3, 11_998, 0)
    );
    let find = |line: &str| {
        let nik = Nik::parse(line.split(',').next().unwrap()).unwrap();
        let directory = StoreDirectory::new(store.clone());
        async move {
            directory
                .lookup(ParticipantKey::Nik(&nik))
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(
        find(&original).await.full_name.as_str(),
        original.split(',').nth(4).unwrap()
    );
    assert_eq!(find(&lines[12]).await.full_name.as_str(), "Nama Baru");
    assert_eq!(store.count_participants().await.unwrap(), 12_000);
}

async fn bad_rows_are_reported_by_line_and_field_while_good_rows_load<S: Store>(store: S) {
    let mut lines: Vec<String> = generated(6, 9).lines().map(String::from).collect();
    lines[2] = format!("{}35{}", &lines[2][..6], &lines[2][8..]); // NIK day 35: no such birth date
    lines[4] = format!("{},extra", lines[4]);
    lines[5] = lines[5].replace(",M,", ",X,").replace(",F,", ",X,");
    let (report, seen) = import_text(&store, lines.join("\n")).await;
    let report = report.unwrap();
    assert_eq!(
        (report.rows_read, report.inserted, report.rejected),
        (6, 3, 3)
    );
    let found: Vec<(u64, &str, &str)> = seen
        .rejected
        .iter()
        .map(|r| (r.line, r.field.as_str(), r.code.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (3, "nik", "nik_date"),
            (5, "row", "row_malformed"),
            (6, "sex", "sex_invalid")
        ]
    );
    assert!(
        seen.rejected[0].reason.contains("birth date"),
        "{}",
        seen.rejected[0].reason
    );
    assert_eq!(store.count_participants().await.unwrap(), 3);
}

async fn an_unknown_column_refuses_the_file_before_any_row_loads<S: Store>(store: S) {
    let text = generated(10, 1).replacen("full_name", "fullname", 1);
    let (result, _) = import_text(&store, text).await;
    match result {
        Err(ImportError::Header(message)) => assert!(message.contains("\"fullname\""), "{message}"),
        other => panic!("expected a header error, got {other:?}"),
    }
    assert_eq!(store.count_participants().await.unwrap(), 0);
}

async fn a_card_number_taken_by_another_nik_is_reported_on_its_line<S: Store>(store: S) {
    let mut lines: Vec<String> = generated(4, 2).lines().map(String::from).collect();
    let card_of_first = lines[1].split(',').nth(1).unwrap().to_string();
    let card_of_third = lines[3].split(',').nth(1).unwrap().to_string();
    lines[3] = lines[3].replace(&card_of_third, &card_of_first);
    let (report, seen) = import_text(&store, lines.join("\n")).await;
    let report = report.unwrap();
    assert_eq!((report.inserted, report.rejected), (3, 1));
    assert_eq!(
        (seen.rejected[0].line, seen.rejected[0].code.as_str()),
        (4, "card_number_taken")
    );
}

/// Into an empty registry the import is a first load, which judges card numbers only when it
/// commits: a clash between batches is still reported on its line, and the first holder keeps it.
async fn a_first_load_reports_a_card_taken_in_an_earlier_batch_on_its_line<S: Store>(store: S) {
    let mut lines: Vec<String> = generated(7_000, 3).lines().map(String::from).collect();
    let card_of_first = lines[1].split(',').nth(1).unwrap().to_string();
    let card_of_late = lines[6_500].split(',').nth(1).unwrap().to_string();
    lines[6_500] = lines[6_500].replace(&card_of_late, &card_of_first);
    let (report, seen) = import_text(&store, lines.join("\n")).await;
    let report = report.unwrap();
    assert_eq!((report.inserted, report.rejected), (6_999, 1));
    let refused: Vec<(u64, &str, &str)> = seen
        .rejected
        .iter()
        .map(|r| (r.line, r.field.as_str(), r.code.as_str()))
        .collect();
    assert_eq!(refused, vec![(6_501, "card_number", "card_number_taken")]);
    let card = JknCardNumber::parse(&card_of_first).unwrap();
    let holder = StoreDirectory::new(store.clone())
        .lookup(ParticipantKey::CardNumber(&card))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holder.nik.as_str(), lines[1].split(',').next().unwrap());
    assert_eq!(store.count_participants().await.unwrap(), 6_999);
}

#[tokio::test]
async fn the_membership_api_answers_a_lookup_by_nik() {
    let server = MockServer::start().await;
    let budi = participant(5);
    Mock::given(method("POST"))
        .and(path("/api/participants/lookup"))
        .and(header("authorization", "Bearer rahasia"))
        .and(body_json(serde_json::json!({ "nik": budi.nik.as_str() })))
        .respond_with(ResponseTemplate::new(200).set_body_json(&budi))
        .expect(1)
        .mount(&server)
        .await;
    let base = url::Url::parse(&format!("{}/api/", server.uri())).unwrap();
    let directory =
        HttpDirectory::new(&base, Duration::from_secs(2), Some("rahasia".into())).unwrap();
    let found = directory
        .lookup(ParticipantKey::Nik(&budi.nik))
        .await
        .unwrap();
    assert_eq!(found, Some(budi));
}

#[tokio::test]
async fn a_base_url_without_a_trailing_slash_keeps_its_last_segment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/participants/lookup"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let base = url::Url::parse(&format!("{}/api/v1", server.uri())).unwrap();
    let directory =
        HttpDirectory::new(&base, Duration::from_secs(2), Some("rahasia".into())).unwrap();
    assert_eq!(
        directory
            .lookup(ParticipantKey::Nik(&participant(1).nik))
            .await
            .unwrap(),
        None
    );
    assert!(!format!("{directory:?}").contains("rahasia"));
}

#[tokio::test]
async fn a_participant_with_a_landline_on_file_is_still_found_without_it() {
    let server = MockServer::start().await;
    let budi = participant(8);
    let mut answer = serde_json::to_value(&budi).unwrap();
    answer["phone"] = serde_json::json!("021-5551234");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(&server)
        .await;
    let directory = HttpDirectory::new(
        &url::Url::parse(&server.uri()).unwrap(),
        Duration::from_secs(2),
        None,
    )
    .unwrap();
    let found = directory
        .lookup(ParticipantKey::Nik(&budi.nik))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.phone, None);
    assert_eq!((found.nik, found.email), (budi.nik, budi.email));
}

#[tokio::test]
async fn the_membership_api_saying_404_means_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let directory = HttpDirectory::new(
        &url::Url::parse(&server.uri()).unwrap(),
        Duration::from_secs(2),
        None,
    )
    .unwrap();
    let card = JknCardNumber::parse("0001944358911").unwrap();
    assert_eq!(
        directory
            .lookup(ParticipantKey::CardNumber(&card))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_failing_slow_or_garbled_membership_api_is_an_error_not_a_not_found() {
    let server = MockServer::start().await;
    let nik_500 = participant(1).nik;
    let nik_slow = participant(2).nik;
    let nik_bad = participant(3).nik;
    Mock::given(body_json(serde_json::json!({ "nik": nik_500.as_str() })))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(body_json(serde_json::json!({ "nik": nik_slow.as_str() })))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    Mock::given(body_json(serde_json::json!({ "nik": nik_bad.as_str() })))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "nik": "12" })))
        .mount(&server)
        .await;
    let directory = HttpDirectory::new(
        &url::Url::parse(&server.uri()).unwrap(),
        Duration::from_millis(300),
        None,
    )
    .unwrap();
    assert!(
        matches!(directory.lookup(ParticipantKey::Nik(&nik_500)).await, Err(DirectoryError::Unavailable(m)) if m.contains("503"))
    );
    assert!(
        matches!(directory.lookup(ParticipantKey::Nik(&nik_slow)).await, Err(DirectoryError::Unavailable(m)) if m.contains("timeout"))
    );
    assert!(matches!(
        directory.lookup(ParticipantKey::Nik(&nik_bad)).await,
        Err(DirectoryError::InvalidAnswer(_))
    ));
}

#[tokio::test]
async fn an_unreachable_membership_api_is_unavailable() {
    let directory = HttpDirectory::new(
        &url::Url::parse("http://127.0.0.1:9/").unwrap(),
        Duration::from_millis(500),
        None,
    )
    .unwrap();
    let nik = participant(1).nik;
    assert!(matches!(
        directory.lookup(ParticipantKey::Nik(&nik)).await,
        Err(DirectoryError::Unavailable(_))
    ));
}
