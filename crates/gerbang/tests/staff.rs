//! `gerbang staff …` as the server operator runs it, on the backend under test: enrolment shown
//! once with a QR code, refusals by name, role changes, disabling, the reset of a lost
//! authenticator, and every change in the audit log under `operator:BY`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use gerbang_testkit::{Backend, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_gerbang");

fn gerbang(db: &TestDatabase, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let dir = db.data_dir();
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("GERBANG_") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(&dir)
        .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
        // Cheap hashing: these tests are about the commands, not Argon2's cost.
        .env("GERBANG_ACCOUNTS__HASHING__MEMORY_KIB", "1024")
        .env("GERBANG_ACCOUNTS__HASHING__ITERATIONS", "1")
        .envs(env.iter().copied())
        .args(args)
        .arg("--data-dir")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Backend::Postgres(_) = db.backend() {
        command.args(["--database-url", &db.url()]);
    }
    let mut child = command.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn secret_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("authenticator secret: "))
        .expect("the secret is shown")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_adds_changes_disables_and_resets_staff_and_each_change_is_in_the_audit_log() {
    let db = TestDatabase::create().await;
    let added = gerbang(
        &db,
        &[
            "staff",
            "add",
            "--name",
            "Siti.Rahma",
            "--role",
            "agent",
            "--by",
            "root",
        ],
        None,
        &[],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let out = text(&added.stdout);
    assert!(
        out.starts_with("siti.rahma added as agent. Shown once"),
        "{out}"
    );
    assert!(
        out.contains("  password: "),
        "gerbang chose a password: {out}"
    );
    assert!(out.contains("otpauth://totp/gerbang:siti.rahma?"), "{out}");
    assert!(
        out.contains('█') || out.contains('▀'),
        "a QR code is drawn: {out}"
    );
    let first_secret = secret_of(&out);

    let given = gerbang(
        &db,
        &[
            "staff",
            "add",
            "--name",
            "cabang-jaksel-07",
            "--role",
            "officer",
            "--password-stdin",
            "--by",
            "root",
        ],
        Some("Loket-Cabang#2026\n"),
        &[],
    );
    assert!(given.status.success(), "{}", text(&given.stderr));
    assert!(
        !text(&given.stdout).contains("password:"),
        "a given password is not echoed"
    );

    let taken = gerbang(
        &db,
        &[
            "staff",
            "add",
            "--name",
            "siti.rahma",
            "--role",
            "admin",
            "--by",
            "root",
        ],
        None,
        &[],
    );
    assert_eq!(taken.status.code(), Some(4));
    assert!(text(&taken.stderr).contains("exists already"));
    let weak = gerbang(
        &db,
        &[
            "staff",
            "add",
            "--name",
            "rina",
            "--role",
            "agent",
            "--password-stdin",
            "--by",
            "root",
        ],
        Some("pendek\n"),
        &[],
    );
    assert_eq!(weak.status.code(), Some(4));
    assert!(
        text(&weak.stderr).contains("at least 8 characters"),
        "{}",
        text(&weak.stderr)
    );
    let bad_role = gerbang(
        &db,
        &[
            "staff", "add", "--name", "rina", "--role", "root", "--by", "root",
        ],
        None,
        &[],
    );
    assert_eq!(bad_role.status.code(), Some(4));
    assert!(text(&bad_role.stderr).contains("staff_role_unknown"));
    let nobody = gerbang(
        &db,
        &["staff", "disable", "--name", "nobody", "--by", "root"],
        None,
        &[],
    );
    assert_eq!(nobody.status.code(), Some(1));
    let anonymous = gerbang(&db, &["staff", "disable", "--name", "rina"], None, &[]);
    assert_eq!(anonymous.status.code(), Some(2), "--by is required");

    let role = gerbang(
        &db,
        &[
            "staff",
            "role",
            "--name",
            "siti.rahma",
            "--role",
            "supervisor",
            "--by",
            "root",
        ],
        None,
        &[],
    );
    assert_eq!(text(&role.stdout), "siti.rahma is now supervisor\n");
    let disabled = gerbang(
        &db,
        &[
            "staff",
            "disable",
            "--name",
            "cabang-jaksel-07",
            "--by",
            "root",
        ],
        None,
        &[],
    );
    assert!(disabled.status.success());
    let list = text(&gerbang(&db, &["staff", "list"], None, &[]).stdout);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["cabang-jaksel-07", "officer", "disabled"],
            vec!["siti.rahma", "supervisor", "active"]
        ]
    );

    let reset = gerbang(
        &db,
        &[
            "staff",
            "reset",
            "--name",
            "siti.rahma",
            "--by",
            "admin.pusat",
        ],
        None,
        &[],
    );
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    assert_ne!(
        secret_of(&text(&reset.stdout)),
        first_secret,
        "a new authenticator"
    );

    let exported = gerbang(&db, &["audit", "export"], None, &[]);
    let log: Vec<(String, String)> = text(&exported.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["actor"].as_str().unwrap().to_owned(),
                v["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("operator:root", "staff_added"),
        ("operator:root", "staff_added"),
        ("operator:root", "staff_role_changed"),
        ("operator:root", "staff_disabled"),
        ("operator:admin.pusat", "staff_reset"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(log, expected);
    assert!(
        !text(&exported.stdout).contains("Loket-Cabang"),
        "no password in the log"
    );
    assert!(
        gerbang(&db, &["audit", "verify"], None, &[])
            .status
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_setting_below_one_stops_the_command_naming_the_key() {
    let db = TestDatabase::create().await;
    let out = gerbang(
        &db,
        &["staff", "list"],
        None,
        &[("GERBANG_STAFF__IDLE_MINUTES", "0")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("staff.idle_minutes: must be at least 1"),
        "{}",
        text(&out.stderr)
    );
}
