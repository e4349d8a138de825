//! The audit log end to end on the backend under test: entries appended through the store (several
//! writers at once), then `gerbang audit verify` and `gerbang audit export` run as an operator
//! would, and rows changed, deleted and reordered directly in the database — each caught and named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};

use chrono::{DateTime, Utc};
use gerbang_store::Store;
use gerbang_store::audit::{AuditRecord, actor};
use gerbang_testkit::{Backend, TestDatabase};
use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_gerbang");

fn gerbang(db: &TestDatabase, args: &[&str]) -> Output {
    let dir = db.data_dir();
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("GERBANG_") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(&dir)
        .stdin(Stdio::null())
        .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
        .args(args)
        .arg("--data-dir")
        .arg(&dir);
    if let Backend::Postgres(_) = db.backend() {
        command.args(["--database-url", &db.url()]);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn record(n: u32, at: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        at,
        actor: if n.is_multiple_of(3) {
            actor::operator("cabang-jaksel-07")
        } else {
            actor::SYSTEM.to_owned()
        },
        action: "staff_signed_in".into(),
        account: None,
        ticket: n.is_multiple_of(2).then(|| format!("TKT-{n:06}")),
        detail: format!("entry {n}"),
    }
}

/// Appends `writers` × `each` entries, all writers at once, then closes the store.
async fn fill_with<S: Store>(store: S, writers: u32, each: u32) {
    let at = DateTime::parse_from_rfc3339("2026-12-01T08:00:00+07:00")
        .unwrap()
        .with_timezone(&Utc);
    let before = store.audit_head().await.unwrap().seq;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                let n = w * each + i;
                store.append_audit(vec![record(n, at)]).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let head = store.audit_head().await.unwrap();
    assert_eq!(
        head.seq - before,
        i64::from(writers * each),
        "one entry per append"
    );
    let entries = store.audit_entries(0, 10_000).await.unwrap();
    let numbers: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(numbers, (1..=head.seq).collect::<Vec<_>>(), "no gaps");
    store.close().await;
}

async fn fill(db: &TestDatabase, writers: u32, each: u32) {
    match db.backend() {
        Backend::Sqlite => fill_with(db.sqlite_store().await, writers, each).await,
        Backend::Postgres(_) => fill_with(db.postgres_store().await, writers, each).await,
    }
}

/// Runs SQL on the database directly, as someone with database access but not the key would.
async fn tamper(db: &TestDatabase, statements: &[&str]) {
    match db.backend() {
        Backend::Sqlite => {
            let url = format!(
                "sqlite://{}",
                db.data_dir().join("gerbang.sqlite").display()
            );
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for statement in statements {
                sqlx::query(sqlx::AssertSqlSafe(*statement))
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            connection.close().await.unwrap();
        }
        Backend::Postgres(_) => {
            let mut connection = sqlx::PgConnection::connect(&db.url()).await.unwrap();
            for statement in statements {
                sqlx::query(sqlx::AssertSqlSafe(*statement))
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            connection.close().await.unwrap();
        }
    }
}

fn verify(db: &TestDatabase) -> Output {
    gerbang(db, &["audit", "verify"])
}

fn assert_tampered(db: &TestDatabase, expected: &str) {
    let out = verify(db);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(said.contains("AUDIT LOG TAMPERED"), "{said}");
    assert!(said.contains(expected), "wanted {expected:?} in {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_make_one_chain_that_verifies_whole() {
    let db = TestDatabase::create().await;
    fill(&db, 8, 25).await;
    let out = verify(&db);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.starts_with("audit log whole: 200 entries, head 200 "),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_entry_is_named() {
    let db = TestDatabase::create().await;
    fill(&db, 1, 6).await;
    tamper(
        &db,
        &["UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 3"],
    )
    .await;
    assert_tampered(&db, "entry 3 was changed after it was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_actor_or_time_is_named() {
    let db = TestDatabase::create().await;
    fill(&db, 1, 6).await;
    tamper(
        &db,
        &["UPDATE audit_log SET actor = 'participant' WHERE seq = 6"],
    )
    .await;
    assert_tampered(&db, "entry 6 was changed");
    let db = TestDatabase::create().await;
    fill(&db, 1, 6).await;
    tamper(&db, &["UPDATE audit_log SET at = at + 1000 WHERE seq = 2"]).await;
    assert_tampered(&db, "entry 2 was changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_entry_is_named() {
    let db = TestDatabase::create().await;
    fill(&db, 1, 6).await;
    tamper(&db, &["DELETE FROM audit_log WHERE seq = 4"]).await;
    assert_tampered(&db, "entry 4 was removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_entry_with_the_rest_renumbered_is_named() {
    let db = TestDatabase::create().await;
    fill(&db, 1, 6).await;
    tamper(
        &db,
        &[
            "DELETE FROM audit_log WHERE seq = 2",
            "UPDATE audit_log SET seq = -seq WHERE seq > 2",
            "UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0",
            "UPDATE audit_head SET seq = 5",
        ],
    )
    .await;
    assert_tampered(&db, "entry 2 does not follow entry 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_entries_are_named() {
    let db = TestDatabase::create().await;
    fill(&db, 1, 6).await;
    tamper(
        &db,
        &[
            "UPDATE audit_log SET seq = -2 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 5",
            "UPDATE audit_log SET seq = 5 WHERE seq = -2",
        ],
    )
    .await;
    assert_tampered(&db, "entry 2 does not follow entry 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_newest_entries_is_named_by_the_head() {
    let db = TestDatabase::create().await;
    fill(&db, 1, 6).await;
    tamper(&db, &["DELETE FROM audit_log WHERE seq >= 5"]).await;
    assert_tampered(&db, "the entries after 4 were removed");
    // A head moved back to hide it still names the first entry it no longer covers.
    tamper(&db, &["UPDATE audit_head SET seq = 3"]).await;
    assert_tampered(&db, "the log's head was changed");
}

const CARRIED_OVER: &str = "INSERT INTO audit_log (seq, at, actor, action, detail) \
     VALUES (1, 1764550800000, 'participant', 'registered', ''), \
            (2, 1764550900000, 'system', 'locked_temporarily', 'lock 1')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carried_over_by_the_migration_are_chained_when_the_store_first_opens() {
    let db = TestDatabase::create().await;
    fill(&db, 1, 0).await;
    // As migration 0010 leaves the events of the old account_events table: no MACs yet.
    tamper(&db, &[CARRIED_OVER]).await;
    fill(&db, 1, 2).await;
    let out = verify(&db);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("audit log whole: 4 entries"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_without_a_mac_added_later_is_reported_not_blessed_by_a_restart() {
    let db = TestDatabase::create().await;
    fill(&db, 1, 3).await;
    tamper(
        &db,
        &["INSERT INTO audit_log (seq, at, actor, action, detail) VALUES (4, 1764550800000, 'participant', 'lock_lifted', '')",
          "UPDATE audit_head SET seq = 4"],
    )
    .await;
    fill(&db, 1, 0).await;
    assert_tampered(&db, "entry 4 does not follow entry 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_json_lines_since_a_date_and_refuses_a_bad_one() {
    let db = TestDatabase::create().await;
    fill(&db, 1, 4).await;
    let out = gerbang(&db, &["audit", "export", "--since", "2026-12-01"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["at"], "2026-12-01T01:00:00.000Z");
    assert_eq!(lines[0]["actor"], "operator:cabang-jaksel-07");
    assert_eq!(lines[0]["ticket"], "TKT-000000");
    assert_eq!(lines[1]["ticket"], serde_json::Value::Null);
    assert_eq!(lines[3]["detail"], "entry 3");
    assert_eq!(lines[3]["mac"].as_str().unwrap().len(), 64);

    let later = gerbang(
        &db,
        &["audit", "export", "--since", "2026-12-01T09:00:00+07:00"],
    );
    assert!(later.status.success());
    assert_eq!(text(&later.stdout).lines().count(), 0);

    let bad = gerbang(&db, &["audit", "export", "--since", "kemarin"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("--since"),
        "{}",
        text(&bad.stderr)
    );
}
