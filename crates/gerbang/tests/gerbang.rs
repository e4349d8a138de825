//! gerbang as its users meet it: the real binary and the in-process `Application`, on the backend
//! under test (see gerbang-testkit).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gerbang::Application;
use gerbang::config::{Overrides, load};
use gerbang_testkit::{Backend, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_gerbang");

/// The binary with no `GERBANG_*` variables from the outside, run in `dir`.
fn gerbang(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("GERBANG_") {
            command.env_remove(name);
        }
    }
    command.current_dir(dir).stdin(Stdio::null());
    command
}

/// `--database-url` for the backend under test; none for SQLite, which then lives in the data directory.
fn database_args(db: &TestDatabase) -> Vec<String> {
    match db.backend() {
        Backend::Sqlite => vec![],
        Backend::Postgres(_) => vec!["--database-url".into(), db.url()],
    }
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_no_configuration_seeds_the_registry_answers_health_and_stops_on_sigterm() {
    let db = TestDatabase::create().await;
    let dir = db.data_dir();
    let port = free_port();
    let log_path = dir.join("serve.log");
    let mut child = gerbang(&dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(database_args(&db))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            assert_eq!(response.status(), 200);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gerbang did not start: {}",
            std::fs::read_to_string(&log_path).unwrap()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "gerbang exited: {}",
            std::fs::read_to_string(&log_path).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready: serde_json::Value = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "gerbang ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("seeded 3000 synthetic participants"), "{log}");
    assert!(log.contains("NO PERSONAL-DATA KEY CONFIGURED"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(dir.join("gerbang-data/personal-data.key").exists());

    // No personal data in the log: none of the seeded NIKs, phones or names appears.
    let seeded = gerbang(&dir)
        .args(["participants", "generate", "--count", "3000", "--seed", "1"])
        .output()
        .unwrap();
    for line in text(&seeded.stdout).lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        for value in [fields[0], fields[1], fields[4]] {
            assert!(!log.contains(value), "{value} leaked into the log");
        }
    }
}

/// The variables every in-process application test starts from (port 0, the test database and
/// key, no demo participants), with `extra` after them.
fn app_vars(db: &TestDatabase, extra: Vec<(&str, String)>) -> Vec<(String, String)> {
    let mut vars = vec![
        (
            "GERBANG_SERVER__LISTEN".to_string(),
            "127.0.0.1:0".to_string(),
        ),
        (
            "GERBANG_STORAGE__DATA_DIR".to_string(),
            db.data_dir().display().to_string(),
        ),
        (
            "GERBANG_REGISTRY__DEMO_PARTICIPANTS".to_string(),
            "0".to_string(),
        ),
        (
            "GERBANG_PRIVACY__KEY".to_string(),
            gerbang_testkit::TEST_KEY.to_string(),
        ),
    ];
    if let Backend::Postgres(_) = db.backend() {
        vars.push(("GERBANG_STORAGE__DATABASE_URL".to_string(), db.url()));
    }
    vars.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    vars
}

type Server = tokio::task::JoinHandle<anyhow::Result<()>>;

/// The application built from these `GERBANG_*` variables, serving on its own task.
async fn serve_in_process(
    vars: Vec<(String, String)>,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    Server,
) {
    serve_in_process_with(None, vars).await
}

/// The same with a configuration file under the variables.
async fn serve_in_process_with(
    file: Option<&Path>,
    vars: Vec<(String, String)>,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    Server,
) {
    let config = load(file, vars, &Overrides::default()).unwrap().config;
    let app = Application::build(&config).await.unwrap();
    let address = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (address, stop, server)
}

/// Tells the application to stop and waits for it to finish cleanly.
async fn stop_in_process(stop: tokio::sync::oneshot::Sender<()>, server: Server) {
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_builds_in_process_on_port_zero_and_serves_until_told_to_stop() {
    let db = TestDatabase::create().await;
    let vars = app_vars(
        &db,
        vec![("GERBANG_REGISTRY__DEMO_PARTICIPANTS", "25".to_string())],
    );
    let (address, stop, server) = serve_in_process(vars).await;
    let body: serde_json::Value = reqwest::get(format!("http://{address}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ready");
    stop_in_process(stop, server).await;
    assert!(
        reqwest::get(format!("http://{address}/healthz"))
            .await
            .is_err(),
        "still serving after shutdown"
    );

    // The demo registry was seeded with exactly the configured number, once.
    let store_count = match db.backend() {
        Backend::Sqlite => {
            use gerbang_store::ParticipantStore;
            db.sqlite_store().await.count_participants().await.unwrap()
        }
        Backend::Postgres(_) => {
            use gerbang_store::ParticipantStore;
            db.postgres_store()
                .await
                .count_participants()
                .await
                .unwrap()
        }
    };
    assert_eq!(store_count, 25);
}

/// The test SMSC of gerbang-delivery's interop tests (Perl's Net::SMPP).
#[path = "../../gerbang-delivery/tests/support/mod.rs"]
mod smsc;

/// SMS over one SMPP bind to `smsc`.
fn smpp_vars(smsc: &smsc::Smsc) -> Vec<(&'static str, String)> {
    vec![
        ("GERBANG_DELIVERY__SMS", "smpp".to_string()),
        ("GERBANG_DELIVERY__SMPP__ADDRESS", smsc.address.clone()),
        ("GERBANG_DELIVERY__SMPP__SYSTEM_ID", "gerbang".to_string()),
        ("GERBANG_DELIVERY__SMPP__PASSWORD", "secret".to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_delivery_over_smpp_a_code_started_over_http_reaches_the_smsc_and_verifies() {
    let smsc = smsc::Smsc::start(&[]).await;
    let db = TestDatabase::create().await;
    let vars = app_vars(&db, smpp_vars(&smsc));
    let (address, stop, server) = serve_in_process(vars).await;
    let http = reqwest::Client::new();
    let started: serde_json::Value = http
        .post(format!("http://{address}/v1/verifications"))
        .json(&serde_json::json!({"purpose": "registration", "channel": "sms", "to": "0812-3456-7890"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["id"]
        .as_str()
        .expect("a verification id")
        .to_owned();
    smsc.wait_for("submit 6281234567890", 1).await;
    let sent = smsc.text_sent_to("6281234567890");
    assert!(
        sent.contains("JANGAN"),
        "the anti-fraud warning is in the SMS: {sent:?}"
    );
    let code = smsc.code_sent_to("6281234567890");
    let checked = http
        .post(format!("http://{address}/v1/verifications/{id}/check"))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    let checked: serde_json::Value = checked.json().await.unwrap();
    assert_eq!(checked["status"], "verified");
    // The receipt reaches the delivery trail the app sees: delivered, nothing raw, no code.
    let mut status = serde_json::Value::Null;
    for _ in 0..200 {
        status = http
            .get(format!("http://{address}/v1/verifications/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["deliveries"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["deliveries"][0]["status"], "delivered", "{status}");
    assert_eq!(status["deliveries"][0]["channel"], "sms");
    let shown = status.to_string();
    assert!(
        !shown.contains(&code) && !shown.contains("stat:"),
        "{shown}"
    );
    stop_in_process(stop, server).await;
}

/// Seconds since the Unix epoch, as the test SMSC writes its receive times (`t=`).
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// At the start of a burst the queue estimate used to come from the previous minute's hand-offs and
/// told a participant behind 197 others ~264 s for a code that arrived 6.5 s later. Read right after
/// the burst is queued, and again while it drains, each estimate must be near the code's actual
/// arrival at the test SMSC (a bind limited to 30 submits per second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_estimates_during_a_burst_match_the_arrival_at_the_smsc() {
    let smsc = smsc::Smsc::start(&[("SMSC_LOG_TIME", "1")]).await;
    let db = TestDatabase::create().await;
    let vars = app_vars(
        &db,
        [
            smpp_vars(&smsc),
            vec![("GERBANG_DELIVERY__SMPP__MAX_PER_SECOND", "30".to_string())],
        ]
        .concat(),
    );
    let (address, stop, server) = serve_in_process(vars).await;
    let http = reqwest::Client::new();
    let start = |n: u32| {
        let http = http.clone();
        async move {
            let to = format!("0812{:04}{:04}", 1000 + n, 5000 + n);
            let body: serde_json::Value = http
                .post(format!("http://{address}/v1/verifications"))
                .json(&serde_json::json!({"purpose": "registration", "channel": "sms", "to": to}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = body["id"].as_str().expect("a verification id").to_owned();
            (id, format!("62812{:04}{:04}", 1000 + n, 5000 + n))
        }
    };
    // A quiet minute before the burst: a few codes went out, as in the report.
    for n in 0..5 {
        start(n).await;
    }
    smsc.wait_for("submit ", 5).await;
    // The burst.
    let burst: Vec<(String, String)> = futures::future::join_all((5..205).map(start)).await;
    // Each reading: (number, estimate in seconds, when it was read).
    let mut readings: Vec<(String, f64, f64)> = Vec::new();
    let read = |id: String| {
        let http = http.clone();
        async move {
            let status: serde_json::Value = http
                .get(format!("http://{address}/v1/verifications/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (status["queue"].clone(), unix_now())
        }
    };
    // Right after the burst is queued, then while it drains.
    for round in 0..2 {
        if round == 1 {
            smsc.wait_for("submit ", 5 + 100).await;
        }
        for (id, to) in burst.iter().rev().step_by(20) {
            let (queue, at) = read(id.clone()).await;
            if queue.is_null() {
                continue; // already sent
            }
            let wait = queue["estimated_wait"]
                .as_f64()
                .unwrap_or_else(|| panic!("a queued code without an estimate: {queue}"));
            readings.push((to.clone(), wait, at));
        }
    }
    smsc.wait_for("submit ", 5 + burst.len()).await;
    assert!(
        readings.len() >= 8,
        "too few codes still queued when read: {readings:?}"
    );
    let arrival = |to: &str| -> f64 {
        let line = smsc
            .lines()
            .into_iter()
            .find(|line| line.starts_with(&format!("submit {to} ")))
            .unwrap_or_else(|| panic!("no submit to {to}"));
        logged_time(&line)
    };
    let mut report = Vec::new();
    for (to, estimate, at) in &readings {
        let actual = (arrival(to) - at).max(0.0);
        report.push(format!(
            "{to}: estimate {estimate} s, arrived after {actual:.2} s"
        ));
        // Within a factor of two either way, with a second's slack for rounding up and the bind's
        // first second.
        assert!(
            *estimate <= actual * 2.0 + 1.5 && *estimate >= actual / 2.0 - 1.5,
            "{}",
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
    stop_in_process(stop, server).await;
}

#[test]
fn an_smpp_provider_without_an_address_is_refused_at_start() {
    let vars = vec![("GERBANG_DELIVERY__SMS".to_string(), "smpp".to_string())];
    let config = load(None, vars, &Overrides::default()).unwrap().config;
    let error = config
        .delivery
        .smpp
        .client_config()
        .unwrap_err()
        .to_string();
    assert!(error.contains("delivery.smpp: address"), "{error}");
}

#[test]
fn generate_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let once = run(gerbang(dir.path()).args([
        "participants",
        "generate",
        "--count",
        "500",
        "--seed",
        "11",
    ]));
    let twice = run(gerbang(dir.path()).args([
        "participants",
        "generate",
        "--count",
        "500",
        "--seed",
        "11",
    ]));
    let other = run(gerbang(dir.path()).args([
        "participants",
        "generate",
        "--count",
        "500",
        "--seed",
        "12",
    ]));
    assert!(once.status.success());
    assert_eq!(text(&once.stdout).lines().count(), 501);
    assert_eq!(once.stdout, twice.stdout);
    assert_ne!(once.stdout, other.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_loads_good_rows_reports_bad_ones_by_line_and_exits_1() {
    let db = TestDatabase::create().await;
    let dir = db.data_dir();
    let generated =
        run(gerbang(&dir).args(["participants", "generate", "--count", "2000", "--seed", "3"]));
    let mut lines: Vec<String> = text(&generated.stdout).lines().map(String::from).collect();
    lines[10] = lines[10].replacen(&lines[10][..2], "99", 1);
    lines[20] = lines[20]
        .replace(",active,", ",maybe,")
        .replace(",inactive,", ",maybe,");
    // A landline on file: the participant loads without it.
    let with_landline: Vec<&str> = lines[30].split(',').collect();
    lines[30] = format!(
        "{},0215551234,{}",
        with_landline[..8].join(","),
        with_landline[9]
    );
    let csv = dir.join("participants.csv");
    std::fs::File::create(&csv)
        .unwrap()
        .write_all(lines.join("\n").as_bytes())
        .unwrap();

    let first = run(gerbang(&dir)
        .args(["participants", "import", "participants.csv"])
        .args(database_args(&db)));
    let (stdout, stderr) = (text(&first.stdout), text(&first.stderr));
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("participants.csv:11: nik:") && stderr.contains("[nik_province]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("participants.csv:21: status:") && stderr.contains("[status_invalid]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("participants.csv:31: phone:") && stderr.contains("(loaded without it)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("2000 rows read")
            && stdout.contains("1998 inserted")
            && stdout.contains("2 rejected"),
        "{stdout}"
    );

    lines[10] = text(&generated.stdout).lines().nth(10).unwrap().to_string();
    lines[20] = text(&generated.stdout).lines().nth(20).unwrap().to_string();
    std::fs::write(&csv, lines.join("\n")).unwrap();
    let second = run(gerbang(&dir)
        .args(["participants", "import", "participants.csv"])
        .args(database_args(&db)));
    let stdout = text(&second.stdout);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        stdout.contains("2 inserted")
            && stdout.contains("1998 unchanged")
            && stdout.contains("0 rejected"),
        "{stdout}"
    );

    // An operator checks one participant: masked output only.
    let nik = lines[5].split(',').next().unwrap();
    let shown = run(gerbang(&dir)
        .args(["participants", "show", "--nik", nik])
        .args(database_args(&db)));
    let stdout = text(&shown.stdout);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(
        stdout.contains(&format!("NIK {}********{}", &nik[..4], &nik[12..])),
        "{stdout}"
    );
    assert!(!stdout.contains(nik), "{stdout}");
    let nobody = run(gerbang(&dir)
        .args(["participants", "show", "--card", "0009999999999"])
        .args(database_args(&db)));
    assert_eq!(nobody.status.code(), Some(1), "{}", text(&nobody.stderr));

    if let Backend::Sqlite = db.backend() {
        let bytes = std::fs::read(dir.join("gerbang-data/gerbang.sqlite")).unwrap();
        for line in lines.iter().skip(1).step_by(50) {
            let nik = line.split(',').next().unwrap();
            assert!(
                !bytes.windows(nik.len()).any(|w| w == nik.as_bytes()),
                "NIK {nik} stored in clear text"
            );
        }
    }
}

/// With gerbang not serving the SQLite file, `participants import` has it to itself and writes
/// through a rollback journal (`SqliteStore::open_alone`). Killed half-way through a first load, it
/// leaves that journal, and whoever opens the file next rolls the load back: the next import finds
/// an empty registry, loads every row, and leaves the file in WAL mode.
#[test]
fn a_first_load_killed_half_way_is_rolled_back_when_the_file_is_next_opened() {
    let dir = tempfile::tempdir().unwrap();
    let generated = run(gerbang(dir.path()).args([
        "participants",
        "generate",
        "--count",
        "60000",
        "--seed",
        "5",
        "-o",
        "p.csv",
    ]));
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let file = dir.path().join("gerbang-data/gerbang.sqlite");
    let journal = dir.path().join("gerbang-data/gerbang.sqlite-journal");
    let mut child = gerbang(dir.path())
        .args(["participants", "import", "p.csv"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Rows are being written once the journal exists and the file has grown past 2 MB.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(journal.exists() && std::fs::metadata(&file).map_or(0, |m| m.len()) > 2_000_000) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it could be killed, or never wrote through a journal"
        );
        assert!(Instant::now() < deadline, "the import wrote nothing");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(journal.exists(), "a killed import leaves its journal");

    let again = run(gerbang(dir.path()).args(["participants", "import", "p.csv"]));
    let stdout = text(&again.stdout);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        stdout.contains("60000 rows read") && stdout.contains("60000 inserted"),
        "{stdout}"
    );
    assert!(!journal.exists());
    let header = std::fs::read(&file).unwrap();
    assert_eq!((header[18], header[19]), (2, 2), "the file is in WAL mode");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_column_refuses_the_file_with_exit_2_and_loads_nothing() {
    let db = TestDatabase::create().await;
    let dir = db.data_dir();
    std::fs::write(dir.join("p.csv"), "nik,card_number,nama,birth_date,sex,status\n3171011708450001,0001944358911,Budi,1945-08-17,M,active\n").unwrap();
    let out = run(gerbang(&dir)
        .args(["participants", "import", "p.csv"])
        .args(database_args(&db)));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("p.csv")
            && stderr.contains("\"nama\"")
            && stderr.contains("nothing was imported"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_postgres_is_named_with_its_password_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(gerbang(dir.path()).args([
        "migrate",
        "--database-url",
        "postgres://gerbang:sandi-rahasia@127.0.0.1:1/gerbang",
    ]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("postgres://gerbang:***@127.0.0.1:1/gerbang"),
        "{stderr}"
    );
    assert!(!stderr.contains("sandi-rahasia"), "{stderr}");
}

/// A PostgreSQL address that accepts connections and never answers used to hang `serve` forever,
/// without a word: it must give up after `storage.connect_timeout_ms`, say why and exit non-zero.
#[test]
fn serve_gives_up_on_a_postgres_that_accepts_but_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepts every connection and keeps it open, reading nothing and writing nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let mut child = gerbang(dir.path())
        .env("GERBANG_STORAGE__CONNECT_TIMEOUT_MS", "300")
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &format!("postgres://gerbang:sandi@127.0.0.1:{port}/gerbang"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A guard against hanging, not a measurement: the start must fail long before it.
    let guard = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > guard {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "gerbang serve still running after 60 s against a silent database: {}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot open PostgreSQL at postgres://gerbang:***@127.0.0.1:{port}/gerbang"
        )) && stderr.contains("did not answer")
            && stderr.contains("storage.connect_timeout_ms"),
        "{stderr}"
    );
    assert!(!stderr.contains("gerbang is serving"), "{stderr}");
}

#[test]
fn show_names_a_mistyped_number_and_an_unreachable_membership_api() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(gerbang(dir.path()).args(["participants", "show", "--nik", "123"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--nik: a NIK has 16 digits"),
        "{}",
        text(&out.stderr)
    );

    let out = run(gerbang(dir.path())
        .env("GERBANG_REGISTRY__SOURCE", "http")
        .env("GERBANG_REGISTRY__HTTP__URL", "http://127.0.0.1:9/api")
        .env("GERBANG_REGISTRY__HTTP__TIMEOUT_MS", "500")
        .args(["participants", "show", "--nik", "3171011708450001"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("membership API") && stderr.contains("unavailable"),
        "{stderr}"
    );
}

#[test]
fn the_production_profile_refuses_to_start_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(gerbang(dir.path())
        .env("GERBANG_PROFILE", "production")
        .args(["serve", "--listen", "127.0.0.1:0"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("GERBANG_PRIVACY__KEY"));
    assert!(!dir.path().join("gerbang-data/personal-data.key").exists());
}

#[test]
fn config_check_refuses_what_serve_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let refused = [
        (
            vec![
                ("GERBANG_ACCOUNTS__CAPTCHA__MODE", "test"),
                ("GERBANG_ACCOUNTS__CAPTCHA__TEST_ANSWER", "42"),
            ],
            "refused in the production profile",
        ),
        (
            vec![("GERBANG_SERVER__HEADER_TIMEOUT_SECONDS", "0")],
            "server.header_timeout_seconds",
        ),
        (
            vec![("GERBANG_OTP__ADMISSION__LOGIN_PERCENT", "0")],
            "otp.admission.login_percent",
        ),
        (
            vec![("GERBANG_DELIVERY__BUDGETS__ALERT_PERCENT", "101")],
            "delivery.budgets.alert_percent",
        ),
        (
            vec![("GERBANG_DELIVERY__BUDGETS__CHANNELS__SMS", "0")],
            "delivery.budgets.channels.sms",
        ),
        (
            vec![("GERBANG_OTP__PUMPING__MIN_SENDS", "0")],
            "otp.pumping.min_sends",
        ),
    ];
    for (vars, reason) in refused {
        for command in [
            vec!["config", "check"],
            vec!["serve", "--listen", "127.0.0.1:0"],
        ] {
            let mut gerbang = gerbang(dir.path());
            gerbang
                .env("GERBANG_PROFILE", "production")
                .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
                .envs(vars.iter().copied())
                .args(&command);
            let out = run(&mut gerbang);
            let stderr = text(&out.stderr);
            assert!(!out.status.success(), "{command:?} accepted {vars:?}");
            assert!(stderr.contains(reason), "{command:?}: {stderr}");
        }
    }
    let out = run(gerbang(dir.path())
        .env("GERBANG_PROFILE", "production")
        .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
        .args(["config", "check"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A budget for a provider that does not exist is a typo that would cap nothing.
    std::fs::write(
        dir.path().join("budgets.toml"),
        "[delivery.budgets.providers]\n\"smpp:primry\" = 1000\n",
    )
    .unwrap();
    let out = run(gerbang(dir.path()).args(["--config", "budgets.toml", "config", "check"]));
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("delivery.budgets.providers.\"smpp:primry\": no such provider"),
        "{stderr}"
    );
}

#[test]
fn a_typo_in_the_config_file_names_the_key_and_file_and_an_unknown_variable_warns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gerbang.toml"),
        "[server]\nlisen = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = run(gerbang(dir.path()).args(["--config", "gerbang.toml", "config", "check"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("lisen") && stderr.contains("gerbang.toml"),
        "{stderr}"
    );

    let out = run(gerbang(dir.path())
        .env("GERBANG_SERVR__LISTEN", "x")
        .args(["config", "check"]));
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("GERBANG_SERVR__LISTEN"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_logs_are_one_json_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(gerbang(dir.path())
        .env("GERBANG_LOG__FORMAT", "json")
        .args(["migrate"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.lines().count() >= 1, "{stderr}");
    for line in stderr.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            event["level"].is_string() && event["message"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn config_example_prints_every_section_and_key_generate_a_usable_key() {
    let dir = tempfile::tempdir().unwrap();
    let example = run(gerbang(dir.path()).args(["config", "example"]));
    let example = text(&example.stdout);
    for section in [
        "[server]",
        "[storage]",
        "[privacy]",
        "[registry]",
        "[registry.http]",
        "[log]",
    ] {
        assert!(example.contains(section), "{section}");
    }
    let key = text(&run(gerbang(dir.path()).args(["key", "generate"])).stdout);
    assert!(gerbang_store::PersonalDataKey::from_base64(key.trim()).is_ok());
}

/// Two SMPP providers in `[[delivery.providers]]`: the first is down (nothing listens), so every
/// code fails over to the second, and the trail the app sees shows both tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_first_smpp_provider_is_down_the_second_carries_the_codes() {
    let smsc = smsc::Smsc::start(&[]).await;
    let db = TestDatabase::create().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_address = dead.local_addr().unwrap();
    drop(dead);
    let file = db.data_dir().join("gerbang.toml");
    std::fs::create_dir_all(db.data_dir()).unwrap();
    std::fs::write(
        &file,
        format!(
            r#"
[delivery]
retry_first_seconds = 1
retry_max_seconds = 2

[[delivery.providers]]
name = "down"
kind = "smpp"
smpp = {{ address = "{dead_address}", system_id = "gerbang", password = "secret", response_timeout_seconds = 1 }}

[[delivery.providers]]
name = "backup"
kind = "smpp"
smpp = {{ address = "{}", system_id = "gerbang", password = "secret" }}
"#,
            smsc.address
        ),
    )
    .unwrap();
    let vars = app_vars(&db, vec![]);
    let (address, stop, server) = serve_in_process_with(Some(&file), vars).await;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..3 {
        let started: serde_json::Value = http
            .post(format!("http://{address}/v1/verifications"))
            .json(&serde_json::json!({"purpose": "registration", "channel": "sms", "to": format!("0812345678{n}0")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(started["id"].as_str().expect("an id").to_owned());
    }
    smsc.wait_for("submit 62812345678", 3).await;
    for n in 0..3 {
        assert_eq!(smsc.count(&format!("submit 62812345678{n}0")), 1);
    }
    let status: serde_json::Value = http
        .get(format!("http://{address}/v1/verifications/{}", ids[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deliveries = status["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 2, "{status}");
    assert_eq!(deliveries[0]["status"], "failed");
    assert_eq!(deliveries[0]["cause"], "provider_error");
    assert_ne!(deliveries[1]["status"], "failed");
    // The operator sees the same at /metrics: refusals by the first, hand-offs by the second,
    // and, once the last outcome is committed, an empty outbox.
    let expected = [
        "gerbang_delivery_refusals_total{provider=\"down\",cause=\"provider_error\"} 3",
        "gerbang_delivery_handoffs_total{provider=\"backup\",channel=\"sms\"} 3",
        "gerbang_outbox_queued 0",
    ];
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = http
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if expected.iter().all(|line| metrics.contains(line)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for line in expected {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    stop_in_process(stop, server).await;
}

/// `gerbang serve` as a child process sending SMS to `smsc`, at most `per_second` a second.
fn serve_with_smpp(
    db: &TestDatabase,
    port: u16,
    smsc: &smsc::Smsc,
    per_second: u32,
    log: &Path,
) -> std::process::Child {
    gerbang(&db.data_dir())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(database_args(db))
        .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
        .env("GERBANG_REGISTRY__DEMO_PARTICIPANTS", "0")
        .env("GERBANG_DELIVERY__SMS", "smpp")
        .env("GERBANG_DELIVERY__SMPP__ADDRESS", &smsc.address)
        .env("GERBANG_DELIVERY__SMPP__SYSTEM_ID", "gerbang")
        .env("GERBANG_DELIVERY__SMPP__PASSWORD", "secret")
        .env(
            "GERBANG_DELIVERY__SMPP__MAX_PER_SECOND",
            per_second.to_string(),
        )
        .env("GERBANG_DELIVERY__CLAIM_LEASE_SECONDS", "2")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

async fn wait_until_ready(base: &str, child: &mut std::process::Child, log: &Path) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60) && child.try_wait().unwrap().is_none(),
            "gerbang did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `count` registration codes at once to distinct numbers; every start must be
/// acknowledged. Returns the numbers as the SMSC sees them (`62…`).
async fn start_registrations(base: &str, count: u32) -> Vec<String> {
    let http = reqwest::Client::new();
    let numbers: Vec<String> = (0..count).map(|n| format!("0812{n:04}5678")).collect();
    let acknowledged: Vec<String> = futures::future::join_all(numbers.iter().map(|number| {
        let http = http.clone();
        async move {
            let response = http
                .post(format!("{base}/v1/verifications"))
                .json(
                    &serde_json::json!({"purpose": "registration", "channel": "sms", "to": number}),
                )
                .send()
                .await
                .ok()?;
            response
                .status()
                .is_success()
                .then(|| format!("62{}", &number[1..]))
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(
        acknowledged.len(),
        numbers.len(),
        "every start acknowledged"
    );
    acknowledged
}

/// SIGKILL while acknowledged codes are still queued (the bind sends 25 a second): after a restart
/// every acknowledged code reaches the SMSC. Duplicates (a submit the SMSC took just before the kill,
/// whose hand-off was never committed) are counted and bounded by what was in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_and_restart_every_acknowledged_code_reaches_the_smsc() {
    let smsc = smsc::Smsc::start(&[]).await;
    let db = TestDatabase::create().await;
    std::fs::create_dir_all(db.data_dir()).unwrap();
    let log = db.data_dir().join("serve.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = serve_with_smpp(&db, port, &smsc, 25, &log);
    wait_until_ready(&base, &mut child, &log).await;

    let acknowledged = start_registrations(&base, 150).await;
    // Mid-stream: some sent, most still queued or in flight.
    smsc.wait_for("submit ", 20).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let before_restart = smsc.count("submit ");
    assert!(
        before_restart < acknowledged.len(),
        "the kill must come while codes are still queued ({before_restart} already sent)"
    );

    let mut child = serve_with_smpp(&db, port, &smsc, 200, &log);
    wait_until_ready(&base, &mut child, &log).await;
    let missing = missing_at_smsc(&smsc, &acknowledged, "submit", Duration::from_secs(60)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(missing, 0, "acknowledged codes never reached the SMSC");
    let duplicates = smsc.count("submit ") - acknowledged.len();
    eprintln!(
        "{} acknowledged, {before_restart} sent before SIGKILL, {duplicates} sent twice",
        acknowledged.len()
    );
    // At most what one worker had in flight (32 hand-offs) when it died.
    assert!(duplicates <= 32, "{duplicates} duplicates");
}

/// The `t=` time (Unix seconds) in an SMSC log line.
fn logged_time(line: &str) -> f64 {
    line.split(' ')
        .find_map(|part| part.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no time in {line}"))
}

/// Three SIGKILLs while a slow SMSC answers (each submit answered 100 ms after it arrives, the SMSC
/// reading on meanwhile, so a whole window of 10 is taken and not yet answered): after each restart
/// every acknowledged code still arrives, and the submits sent twice are measured and classified.
/// Outcomes are committed as each answer arrives, so no submit answered well before the kill is
/// sent again; what repeats was in flight — the window still unanswered, and answers sent in the
/// last instant before the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkills_against_a_slow_smsc_repeat_only_submits_whose_answer_was_in_flight() {
    let smsc = smsc::Smsc::start(&[
        ("SMSC_ANSWER_DELAY_MS", "100"),
        ("SMSC_LOG_TIME", "1"),
        ("SMSC_NODELAY", "1"),
    ])
    .await;
    let db = TestDatabase::create().await;
    std::fs::create_dir_all(db.data_dir()).unwrap();
    let log = db.data_dir().join("serve.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = serve_with_smpp(&db, port, &smsc, 0, &log);
    wait_until_ready(&base, &mut child, &log).await;

    let acknowledged = start_registrations(&base, 150).await;

    let mut kills = Vec::new();
    for round in 1..=3 {
        smsc.wait_for("answered ", 30 * round).await;
        kills.push(unix_now());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            smsc.count("answered ") < acknowledged.len(),
            "kill {round} must come while codes are still queued"
        );
        child = serve_with_smpp(&db, port, &smsc, 0, &log);
        wait_until_ready(&base, &mut child, &log).await;
    }
    let missing = missing_at_smsc(&smsc, &acknowledged, "answered", Duration::from_secs(60)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(missing, 0, "acknowledged codes never reached the SMSC");

    // Each repeat, by what the SMSC had done with the first copy when the process died: answered
    // long enough before that it should have been recorded (300 ms: arrival and commit take a few
    // ms, a PostgreSQL commit on a loaded machine up to ~100), or still in flight (no answer yet,
    // or one sent in the last 300 ms).
    let lines = smsc.lines();
    let mut recorded_late = vec![0; kills.len()];
    let mut in_flight = vec![0; kills.len()];
    for to in &acknowledged {
        let submits: Vec<f64> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("submit {to} ")))
            .map(|l| logged_time(l))
            .collect();
        if submits.len() < 2 {
            continue;
        }
        let first = submits[0];
        let kill = kills
            .iter()
            .position(|&k| k >= first)
            .unwrap_or(kills.len() - 1);
        let answered_long_before = lines
            .iter()
            .filter(|l| l.starts_with(&format!("answered {to} ")))
            .map(|l| logged_time(l))
            .any(|t| t >= first && t <= kills[kill] - 0.3);
        let repeats = submits.len() - 1;
        if answered_long_before {
            recorded_late[kill] += repeats;
        } else {
            in_flight[kill] += repeats;
        }
    }
    eprintln!(
        "{} acknowledged, {} submits; repeats per kill: answered over 300 ms before the kill {recorded_late:?}, in flight {in_flight:?}",
        acknowledged.len(),
        smsc.count("submit ")
    );
    for kill in 0..kills.len() {
        assert_eq!(
            recorded_late[kill], 0,
            "kill {kill}: submits answered well before the kill were sent again"
        );
        // The window not yet answered, and the ones answered as the process died.
        assert!(
            in_flight[kill] <= 40,
            "kill {kill}: {} repeats, more than four windows",
            in_flight[kill]
        );
    }
}

/// Every kind of provider is built from its table at start, and a provider without its table, or
/// with a setting it cannot use, stops the start with the key named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_kind_is_built_from_the_configuration_and_a_bad_one_stops_the_start() {
    let db = TestDatabase::create().await;
    std::fs::create_dir_all(db.data_dir()).unwrap();
    let build = |providers: &str| {
        let file = db.data_dir().join("providers.toml");
        std::fs::write(&file, providers).unwrap();
        let vars = app_vars(&db, vec![]);
        load(Some(&file), vars, &Overrides::default())
    };
    let every_kind = r#"
[[delivery.providers]]
name = "gateway"
kind = "http_sms"
http_sms = { url = "http://127.0.0.1:9/send", body = '{"to":"{to}","text":"{text}"}', headers = { Authorization = "Bearer x" } }
[[delivery.providers]]
name = "relay"
kind = "smtp"
smtp = { host = "127.0.0.1", port = 2525, security = "none", from_address = "noreply@example.org" }
[[delivery.providers]]
name = "whatsapp"
kind = "whatsapp"
whatsapp = { phone_number_id = "123", access_token = "t", template = "otp_login", app_secret = "s" }
[[delivery.providers]]
name = "voice"
kind = "voice"
voice = { url = "http://127.0.0.1:9/calls", token = "t", caller_id = "+62211500400" }
"#;
    let config = build(every_kind).unwrap().config;
    let app = Application::build(&config).await.unwrap();
    drop(app);

    for (toml, named) in [
        (
            "[[delivery.providers]]\nname = \"wa\"\nkind = \"whatsapp\"\n",
            "delivery.providers[wa]",
        ),
        (
            "[[delivery.providers]]\nname = \"gw\"\nkind = \"http_sms\"\nhttp_sms = { url = \"x\", method = \"patch\" }\n",
            "delivery.providers[gw].http_sms",
        ),
        (
            "[[delivery.providers]]\nname = \"mail\"\nkind = \"smtp\"\nsmtp = { host = \"\" }\n",
            "delivery.providers[mail].smtp",
        ),
    ] {
        let config = build(toml).unwrap().config;
        let error = format!("{:#}", Application::build(&config).await.unwrap_err());
        assert!(error.contains(named), "{error}");
    }
}

/// A receipt from the SMSC that says the number is inactive (MAP error 001) reaches the status
/// answer as a failed delivery with its cause, and the app is offered other channels; switching to
/// WhatsApp goes out at once (no countdown) while SMS to the same number still waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_receipt_offers_other_channels_and_a_switch_skips_the_countdown() {
    let smsc = smsc::Smsc::start(&[]).await;
    let db = TestDatabase::create().await;
    let vars = app_vars(&db, smpp_vars(&smsc));
    let (address, stop, server) = serve_in_process(vars).await;
    let http = reqwest::Client::new();
    let started: serde_json::Value = http
        .post(format!("http://{address}/v1/verifications"))
        .json(
            &serde_json::json!({"purpose": "registration", "channel": "sms", "to": "081234560001"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["id"].as_str().expect("an id").to_owned();
    let mut status = serde_json::Value::Null;
    for _ in 0..200 {
        status = http
            .get(format!("http://{address}/v1/verifications/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["deliveries"][0]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        status["deliveries"][0]["cause"], "number_inactive",
        "{status}"
    );
    assert_eq!(status["fallback"]["reason"], "delivery_failed", "{status}");
    assert_eq!(status["fallback"]["channels"][0]["channel"], "whatsapp");
    assert_eq!(status["fallback"]["channels"][1]["channel"], "email");
    assert_eq!(status["fallback"]["channels"][1]["needs_destination"], true);
    assert!(status["fallback"]["message"]["id"].as_str().is_some());
    let resend = |body: serde_json::Value| {
        http.post(format!("http://{address}/v1/verifications/{id}/resend"))
            .json(&body)
            .send()
    };
    let same = resend(serde_json::json!({})).await.unwrap();
    assert_eq!(same.status(), 429);
    let switched = resend(serde_json::json!({"channel": "whatsapp"}))
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    let switched: serde_json::Value = switched.json().await.unwrap();
    assert_eq!(switched["sends"], 2);
    assert_eq!(switched["channel"], "whatsapp");
    stop_in_process(stop, server).await;
}

/// WhatsApp end to end through the configuration: the Cloud API (a wiremock stand-in, the real one
/// being a third-party HTTP API) takes the code and answers a wamid; Meta's signed status webhook
/// marks the attempt delivered; a forged one is refused with 401 and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_code_is_marked_delivered_by_its_signed_webhook_and_a_forged_one_is_refused() {
    use hmac::{Hmac, Mac};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v21.0/1234/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messaging_product": "whatsapp",
            "messages": [{"id": "wamid.HBgNNjI4MTIzNDU2Nzg5MA=="}]
        })))
        .expect(1)
        .mount(&graph)
        .await;
    let db = TestDatabase::create().await;
    std::fs::create_dir_all(db.data_dir()).unwrap();
    let file = db.data_dir().join("whatsapp.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[delivery.providers]]
name = "meta"
kind = "whatsapp"
whatsapp = {{ api_base = "{}/v21.0", phone_number_id = "1234", access_token = "token", template = "otp_login", app_secret = "app-secret", webhook_verify_token = "verify-me" }}
"#,
            graph.uri()
        ),
    )
    .unwrap();
    let vars = app_vars(&db, vec![]);
    let (address, stop, server) = serve_in_process_with(Some(&file), vars).await;
    let http = reqwest::Client::new();
    let started: serde_json::Value = http
        .post(format!("http://{address}/v1/verifications"))
        .json(&serde_json::json!({"purpose": "login_new_device", "channel": "whatsapp", "to": "081234567890"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {started}"))
        .to_owned();
    let status_of = || async {
        http.get(format!("http://{address}/v1/verifications/{id}"))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let mut status = serde_json::Value::Null;
    for _ in 0..200 {
        status = status_of().await;
        if status["deliveries"][0]["status"] == "submitted" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["deliveries"][0]["status"], "submitted", "{status}");

    // The subscription handshake.
    let challenge = http
        .get(format!(
            "http://{address}/v1/webhooks/meta?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), 200);
    assert_eq!(challenge.text().await.unwrap(), "1158201444");

    let webhook = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "0", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "statuses": [{"id": "wamid.HBgNNjI4MTIzNDU2Nzg5MA==", "status": "delivered",
                          "timestamp": "1800000000", "recipient_id": "6281234567890"}]
        }}]}]
    })
    .to_string();
    let sign = |secret: &[u8]| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(webhook.as_bytes());
        let digest: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={digest}")
    };
    let post = |signature: String| {
        http.post(format!("http://{address}/v1/webhooks/meta"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(webhook.clone())
            .send()
    };
    let forged = post(sign(b"not-the-secret")).await.unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(status_of().await["deliveries"][0]["status"], "submitted");
    let signed = post(sign(b"app-secret")).await.unwrap();
    assert_eq!(signed.status(), 200);
    let answer: serde_json::Value = signed.json().await.unwrap();
    assert_eq!(answer["matched"], 1, "{answer}");
    let status = status_of().await;
    assert_eq!(status["deliveries"][0]["status"], "delivered", "{status}");
    assert_eq!(status["deliveries"][0]["channel"], "whatsapp");
    stop_in_process(stop, server).await;
}

/// Staff trace "my code never came" by NIK: `participants trail` lists the verifications started for
/// that NIK, newest first, each with its delivery attempts as staff see them (the provider, the
/// status), destinations masked, never a code; someone else's verifications and those started
/// without a NIK stay out; a mistyped NIK is exit 2, a NIK without verifications exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_trail_lists_a_nik_s_verifications_newest_first_with_their_provider_and_no_code()
 {
    let db = TestDatabase::create().await;
    let dir = db.data_dir();
    let vars = app_vars(&db, vec![]);
    let (address, stop, server) = serve_in_process(vars).await;
    let http = reqwest::Client::new();
    let mine = gerbang_testkit::participant(1).nik.as_str().to_owned();
    let theirs = gerbang_testkit::participant(2).nik.as_str().to_owned();
    let start = |purpose: &str, to: &str, participant: serde_json::Value| {
        let body = serde_json::json!({
            "purpose": purpose, "channel": "sms", "to": to, "participant": participant
        });
        let request = http
            .post(format!("http://{address}/v1/verifications"))
            .json(&body);
        async move {
            let started: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            started["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a verification id: {started}"))
                .to_owned()
        }
    };
    let first = start(
        "registration",
        "081234567890",
        serde_json::json!({"nik": mine}),
    )
    .await;
    let other = start(
        "registration",
        "081234567891",
        serde_json::json!({"nik": theirs}),
    )
    .await;
    let anonymous = start(
        "registration",
        "081234567892",
        serde_json::json!({"account": "acct-9"}),
    )
    .await;
    let second = start(
        "login_new_device",
        "085712345678",
        serde_json::json!({"nik": mine}),
    )
    .await;

    // The development inbox takes all four; the first is then verified with its code.
    let mut inbox = serde_json::Value::Null;
    for _ in 0..200 {
        inbox = http
            .get(format!("http://{address}/dev/inbox.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if inbox.as_array().unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code_of = |id: &str| {
        let text = inbox
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["verification"] == id)
            .unwrap_or_else(|| panic!("a message for {id}: {inbox}"))["text"]
            .as_str()
            .unwrap()
            .to_owned();
        text.split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .unwrap_or_else(|| panic!("a code in {text:?}"))
            .to_owned()
    };
    let (first_code, second_code) = (code_of(&first), code_of(&second));
    let checked = http
        .post(format!("http://{address}/v1/verifications/{first}/check"))
        .json(&serde_json::json!({ "code": first_code }))
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);

    let trail = |nik: &str, extra: &[&str]| {
        run(gerbang(&dir)
            .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
            .args(["participants", "trail", "--nik", nik])
            .args(extra)
            .arg("--data-dir")
            .arg(&dir)
            .args(database_args(&db)))
    };
    let out = trail(&mine, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let at = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing from:\n{stdout}"))
    };
    assert!(at(&second) < at(&first), "newest first:\n{stdout}");
    assert!(
        stdout.contains("login_new_device  pending") && stdout.contains("registration  verified"),
        "{stdout}"
    );
    assert!(
        stdout.contains("attempt: sms via dev_inbox, message id none: delivered"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sms to 0812****7890") && stdout.contains("sms to 0857****5678"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("NIK {}********{}", &mine[..4], &mine[12..])),
        "{stdout}"
    );
    for hidden in [
        mine.as_str(),
        &first_code,
        &second_code,
        "81234567890",
        "85712345678",
        &other,
        &anonymous,
    ] {
        assert!(!stdout.contains(hidden), "{hidden} shown:\n{stdout}");
        assert!(!stderr.contains(hidden), "{hidden} logged:\n{stderr}");
    }

    let newest = trail(&mine, &["--limit", "1"]);
    let stdout = text(&newest.stdout);
    assert!(newest.status.success(), "{}", text(&newest.stderr));
    assert!(
        stdout.contains(&second) && !stdout.contains(&first),
        "{stdout}"
    );

    let nobody = trail(gerbang_testkit::participant(3).nik.as_str(), &[]);
    assert_eq!(nobody.status.code(), Some(1), "{}", text(&nobody.stderr));
    assert!(
        text(&nobody.stderr).contains("no verification for that NIK"),
        "{}",
        text(&nobody.stderr)
    );
    let mistyped = trail("123", &[]);
    assert_eq!(mistyped.status.code(), Some(2));
    assert!(
        text(&mistyped.stderr).contains("--nik: a NIK has 16 digits"),
        "{}",
        text(&mistyped.stderr)
    );
    stop_in_process(stop, server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_registers_over_http_gets_locked_and_a_branch_officer_unlocks_with_the_cli() {
    let db = TestDatabase::create().await;
    let dir = db.data_dir();
    let p = gerbang_testkit::participant(1);
    match db.backend() {
        Backend::Sqlite => seed_participant(db.sqlite_store().await, &p).await,
        Backend::Postgres(_) => seed_participant(db.postgres_store().await, &p).await,
    }
    let vars = app_vars(
        &db,
        vec![
            ("GERBANG_ACCOUNTS__CAPTCHA__MODE", "test".into()),
            ("GERBANG_ACCOUNTS__CAPTCHA__TEST_ANSWER", "ok".into()),
            ("GERBANG_ACCOUNTS__HASHING__MEMORY_KIB", "1024".into()),
            ("GERBANG_ACCOUNTS__HASHING__ITERATIONS", "1".into()),
        ],
    );
    let (address, stop, server) = serve_in_process(vars).await;
    let http = reqwest::Client::new();
    let post = |uri: &str, body: serde_json::Value| {
        let request = http.post(format!("http://{address}{uri}")).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response
                    .json::<serde_json::Value>()
                    .await
                    .unwrap_or_default(),
            )
        }
    };
    let (status, identified) = post(
        "/v1/accounts/registration",
        serde_json::json!({"identifier": p.nik.as_str(), "birth_date": p.birth_date.to_string(),
                           "captcha": {"token": "t", "answer": "ok"}}),
    )
    .await;
    assert_eq!(status, 200, "{identified}");
    let password = "Kopi-Tubruk#2026";
    let (status, sent) = post(
        "/v1/accounts/registration/contact",
        serde_json::json!({"flow": identified["flow"], "email": "peserta1@example.com",
                           "password": password, "password_confirmation": password}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["verification"]["id"].as_str().unwrap().to_owned();
    let mut code = None;
    for _ in 0..200 {
        let inbox: serde_json::Value = http
            .get(format!("http://{address}/dev/inbox.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(message) = inbox
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["verification"] == id.as_str())
        {
            let text = message["text"].as_str().unwrap();
            code = text
                .split(|c: char| !c.is_ascii_digit())
                .find(|run| run.len() == 6)
                .map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, created) = post(
        "/v1/accounts/registration/confirm",
        serde_json::json!({"flow": identified["flow"], "code": code.expect("the code reached the inbox")}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let login = |password: &str| {
        post(
            "/v1/accounts/login",
            serde_json::json!({"identifier": p.nik.as_str(), "password": password, "device": {"id": "hp-1"}}),
        )
    };
    for _ in 0..5 {
        assert_eq!(login("Salah-Sandi#1").await.0, 401);
    }
    let (status, locked) = login(password).await;
    assert_eq!(
        (status, locked["code"].as_str()),
        (423, Some("account_locked_temporarily"))
    );
    let (status, doc) = {
        let response = http
            .get(format!("http://{address}/openapi.json"))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 200);
    assert!(doc["paths"]["/v1/accounts/login"].is_object());
    stop_in_process(stop, server).await;

    let cli = |args: &[&str]| {
        run(gerbang(&dir)
            .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
            .args(["accounts"])
            .args(args)
            .args(["--nik", p.nik.as_str()])
            .arg("--data-dir")
            .arg(&dir)
            .args(database_args(&db)))
    };
    let shown = cli(&["show"]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let out = text(&shown.stdout);
    assert!(out.contains("locked until"), "{out}");
    assert!(out.contains("locked_temporarily"), "{out}");
    assert!(!out.contains(p.nik.as_str()), "the NIK is masked: {out}");
    let unlocked = cli(&["unlock", "--officer", "cabang-jaksel-07"]);
    assert!(unlocked.status.success(), "{}", text(&unlocked.stderr));
    let out = text(&unlocked.stdout);
    assert!(out.starts_with("lock lifted"), "{out}");
    assert!(out.contains("lock: not locked"), "{out}");
    assert!(out.contains("lock_lifted  by cabang-jaksel-07"), "{out}");
    // The same events in the audit log, with who caused each, and the chain whole.
    let audit = |args: &[&str]| {
        run(gerbang(&dir)
            .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
            .args(["audit"])
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .args(database_args(&db)))
    };
    let exported = audit(&["export"]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let lines: Vec<serde_json::Value> = text(&exported.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let actions: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["action"].as_str().unwrap(), l["actor"].as_str().unwrap()))
        .collect();
    assert!(
        actions.contains(&("registered", "participant")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("locked_temporarily", "system")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("lock_lifted", "operator:cabang-jaksel-07")),
        "{actions:?}"
    );
    assert!(lines.iter().all(|l| {
        l["account"]
            .as_str()
            .is_some_and(|a| a.starts_with("acct_"))
    }));
    assert!(
        !text(&exported.stdout).contains(p.nik.as_str()),
        "no NIK in the log"
    );
    let verified = audit(&["verify"]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let nobody = run(gerbang(&dir)
        .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
        .args([
            "accounts",
            "show",
            "--nik",
            gerbang_testkit::participant(2).nik.as_str(),
        ])
        .arg("--data-dir")
        .arg(&dir)
        .args(database_args(&db)));
    assert_eq!(nobody.status.code(), Some(1));
}

/// Loads one participant into the registry of `store`, then closes it.
async fn seed_participant<S: gerbang_store::Store>(store: S, p: &gerbang_domain::Participant) {
    use gerbang_store::ParticipantImport;
    let mut import = store.begin_participant_import().await.unwrap();
    import
        .upsert_batch(std::slice::from_ref(p), chrono::Utc::now())
        .await
        .unwrap();
    import.commit().await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_app_closes_slow_clients_and_guards_metrics_with_its_token() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDatabase::create().await;
    let vars = app_vars(
        &db,
        vec![
            ("GERBANG_SERVER__HEADER_TIMEOUT_SECONDS", "1".to_string()),
            ("GERBANG_SERVER__BODY_TIMEOUT_SECONDS", "1".to_string()),
            ("GERBANG_METRICS__TOKEN", "scrape-me".to_string()),
        ],
    );
    let (address, stop, server) = serve_in_process(vars).await;
    // Generous: what is asserted is that the server closes them, not how fast.
    let patience = Duration::from_secs(20);
    let mut slow_head = tokio::net::TcpStream::connect(address).await.unwrap();
    slow_head
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: gerbang\r\nx-slow")
        .await
        .unwrap();
    let mut slow_body = tokio::net::TcpStream::connect(address).await.unwrap();
    slow_body
        .write_all(
            b"POST /v1/verifications HTTP/1.1\r\nhost: gerbang\r\ncontent-type: application/json\r\n\
              content-length: 50\r\n\r\n{",
        )
        .await
        .unwrap();
    for (name, stream) in [("headers", &mut slow_head), ("body", &mut slow_body)] {
        let mut seen = Vec::new();
        let closed = tokio::time::timeout(patience, stream.read_to_end(&mut seen)).await;
        assert!(closed.is_ok(), "a slow {name} kept its connection open");
        if name == "body" {
            let text = String::from_utf8_lossy(&seen);
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            assert!(text.contains("body_timeout"), "{text}");
        }
    }
    let client = reqwest::Client::new();
    let metrics = format!("http://{address}/metrics");
    let refused = client.get(&metrics).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let admitted = client
        .get(&metrics)
        .header("authorization", "bearer scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status().as_u16(), 200);
    stop_in_process(stop, server).await;
}

/// Starts a code to `0813`, `n` and `5678` over the API (one number block each, so the SMS-pumping
/// rule does not count them together); its verification id once acknowledged.
async fn start_code(http: &reqwest::Client, base: &str, n: u32) -> String {
    let response = http
        .post(format!("{base}/v1/verifications"))
        .json(&serde_json::json!({
            "purpose": "registration",
            "channel": "sms",
            "to": format!("0813{n:04}5678"),
        }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// `gerbang backup` copies the SQLite database while the application serves and writes: the copy
/// passes its integrity check, a second backup to the same file is refused, and a gerbang started
/// on the copy delivers every code acknowledged before the backup began. On PostgreSQL the
/// command points to pg_dump and exits with 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_a_serving_sqlite_database_and_the_copy_serves() {
    let db = TestDatabase::create().await;
    let dir = db.data_dir();
    let backup = |copy: &Path| {
        let mut command = gerbang(&dir);
        command
            .env("GERBANG_PRIVACY__KEY", gerbang_testkit::TEST_KEY)
            .arg("backup")
            .arg(copy)
            .arg("--data-dir")
            .arg(&dir)
            .args(database_args(&db));
        command
    };
    if let Backend::Postgres(_) = db.backend() {
        let out = run(&mut backup(&dir.join("copy.sqlite")));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("pg_dump"),
            "{}",
            text(&out.stderr)
        );
        return;
    }
    let (address, stop, server) = serve_in_process(app_vars(&db, vec![])).await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let mut before = Vec::new();
    for n in 0..40 {
        before.push(start_code(&http, &base, n).await);
    }
    // Codes keep being asked for while the copy is made.
    let writer = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move {
            for n in 1000..1200 {
                start_code(&http, &base, n).await;
            }
        }
    });
    let copy = dir.join("backups").join("gerbang-copy.sqlite");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let out = run(&mut backup(&copy));
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("integrity ok"),
        "{}",
        text(&out.stdout)
    );
    let again = run(&mut backup(&copy));
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing file is not overwritten"
    );
    writer.await.unwrap();
    stop_in_process(stop, server).await;

    // Restored: the copy is the database of a new data directory, and it serves.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored.path().join("gerbang.sqlite")).unwrap();
    let vars = vec![
        (
            "GERBANG_SERVER__LISTEN".to_string(),
            "127.0.0.1:0".to_string(),
        ),
        (
            "GERBANG_STORAGE__DATA_DIR".to_string(),
            restored.path().display().to_string(),
        ),
        (
            "GERBANG_REGISTRY__DEMO_PARTICIPANTS".to_string(),
            "0".to_string(),
        ),
        (
            "GERBANG_PRIVACY__KEY".to_string(),
            gerbang_testkit::TEST_KEY.to_string(),
        ),
    ];
    let (address, stop, server) = serve_in_process(vars).await;
    // A message the serving gerbang had claimed but not yet marked delivered when the copy was
    // made is claimed in the copy too: the restored gerbang takes it again when that claim's lease
    // (30 s) ends, so the wait must outlast the lease.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let inbox: serde_json::Value = http
            .get(format!("http://{address}/dev/inbox.json?limit=10000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let delivered: std::collections::HashSet<&str> = inbox
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["verification"].as_str())
            .collect();
        let missing = before
            .iter()
            .filter(|id| !delivered.contains(id.as_str()))
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} codes acknowledged before the backup never reached the restored inbox"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = http
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert!(ready.status().is_success());
    stop_in_process(stop, server).await;
}

/// The `gerbang_*` metric names in `text`, as written (`gerbang_delivery_handoffs_total`).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text[at..].find("gerbang_") {
        let start = at + found;
        let before = start.checked_sub(1).map(|i| bytes[i]);
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        // A word of its own, not the tail of another identifier, and not `gerbang_*` in prose.
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') && end > start + 8 {
            names.insert(text[start..end].to_owned());
        }
        at = end.max(start + 1);
    }
    names
}

/// The Grafana dashboard and the Prometheus alert rules in `deploy/` name only metrics gerbang
/// serves at /metrics, so neither shows nothing or never fires because of a typo; the dashboard
/// is valid JSON with a query in every panel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alert_rules_name_only_metrics_gerbang_serves() {
    let db = TestDatabase::create().await;
    let (address, stop, server) = serve_in_process(app_vars(&db, vec![])).await;
    let exposition = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    stop_in_process(stop, server).await;
    // A family shows on /metrics once it has a sample; the same `Metrics` with one of each
    // shows them all. `# TYPE gerbang_delivery_handoffs counter`: samples carry `_total`.
    let every = gerbang_core::Metrics::default();
    every.handed_off("p", "sms");
    every.refused("p", "provider_throttled");
    every.dropped("expired_in_queue");
    every.deferred();
    every.circuit("p", true);
    every.receipt("p", "failed", true);
    every.receipt("p", "delivered", false);
    every.webhook_rejected("bad_signature");
    every.set_outbox_queued(1);
    every.set_blocks_braked(1);
    every.admission_refused("registration");
    every.set_queue_wait("sms", 1.0);
    every.budget_refused("sms");
    every.set_budget("provider", "p", 1, Some(2));
    let families = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    };
    let served = families(&every.render());
    assert!(
        families(&exposition).is_subset(&served),
        "/metrics serves the same families: {exposition}"
    );
    assert!(served.len() >= 9, "{exposition}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let alerts =
        std::fs::read_to_string(root.join("deploy/prometheus/gerbang-alerts.yml")).unwrap();
    let dashboard_text =
        std::fs::read_to_string(root.join("deploy/grafana/gerbang-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 6);
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(
            targets
                .iter()
                .all(|t| t["expr"].as_str().is_some_and(|e| e.contains("gerbang_"))),
            "{panel}"
        );
    }
    assert!(alerts.matches("- alert: ").count() >= 5);
    assert_eq!(
        alerts.matches("- alert: ").count(),
        alerts.matches("expr:").count()
    );
    for (file, text) in [("alerts", &alerts), ("dashboard", &dashboard_text)] {
        let names = metric_names(text);
        assert!(!names.is_empty(), "{file}");
        for name in names {
            let family = name.strip_suffix("_total").unwrap_or(&name);
            assert!(
                served.contains(family),
                "{file} names {name}, which /metrics does not serve: {served:?}"
            );
        }
    }
}

/// Admission over HTTP: a bind capped at one submit a second and codes that live 20 s. New
/// registrations are refused with `429 queue_full` once about 6 s of codes wait (30 % of the
/// cap), with a time to try again and both languages, while a sign-in code is still accepted;
/// `/metrics` counts the refusals and shows the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_registrations_first_with_queue_full_over_http() {
    let smsc = smsc::Smsc::start(&[]).await;
    let db = TestDatabase::create().await;
    let vars = app_vars(
        &db,
        [
            smpp_vars(&smsc),
            vec![
                ("GERBANG_DELIVERY__SMPP__MAX_PER_SECOND", "1".to_string()),
                ("GERBANG_OTP__HARD_CAP_SECONDS", "20".to_string()),
                ("GERBANG_OTP__LIFETIME_SECONDS", "20".to_string()),
            ],
        ]
        .concat(),
    );
    let (address, stop, server) = serve_in_process(vars).await;
    let http = reqwest::Client::new();
    let start = |purpose: &'static str, n: u32| {
        let http = http.clone();
        async move {
            let to = format!("0812{:04}5000", 1000 + n);
            let response = http
                .post(format!("http://{address}/v1/verifications"))
                .json(&serde_json::json!({"purpose": purpose, "channel": "sms", "to": to}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: serde_json::Value = response.json().await.unwrap();
            (status, retry_after, body)
        }
    };
    let mut accepted = 0;
    let mut refusal = None;
    for n in 0..30 {
        let (status, retry_after, body) = start("registration", n).await;
        if status == 201 {
            accepted += 1;
            continue;
        }
        refusal = Some((status, retry_after, body));
        break;
    }
    let (status, retry_after, body) = refusal.expect("a registration was refused");
    // About 6 s of queue at one a second; a submit or two may go out while the codes come in.
    assert!(
        (5..=9).contains(&accepted),
        "{accepted} accepted before {body}"
    );
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "queue_full");
    assert!(
        body["retry_after"].as_u64().is_some_and(|s| s >= 1),
        "{body}"
    );
    assert!(retry_after.is_some(), "{body}");
    assert!(
        body["message"]["id"]
            .as_str()
            .unwrap()
            .contains("coba lagi pukul")
    );
    assert!(
        body["message"]["en"]
            .as_str()
            .unwrap()
            .contains("try again at")
    );
    // A sign-in code is more urgent: 10 s of queue is still fine for it.
    let (status, _, body) = start("login_new_device", 100).await;
    assert_eq!(status, 201, "{body}");
    let metrics = http
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gerbang_admission_refused_total{urgency=\"registration\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gerbang_queue_wait_seconds{channel=\"sms\"}"),
        "{metrics}"
    );
    stop_in_process(stop, server).await;
}

/// Two instances share one PostgreSQL database and bind to the same SMSC (25 submits a second
/// each); codes are started through both. One is killed with SIGKILL mid-stream and not
/// restarted: the other drains the whole outbox, taking over the dead one's claims once their
/// lease (2 s) runs out, so every code either instance acknowledged reaches the SMSC, and what is
/// sent twice is bounded by what the dead worker had in flight. SQLite is one instance's
/// database by design (one writer process), so on SQLite this test says so and checks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surviving_instance_drains_the_claims_of_one_killed_with_sigkill() {
    let db = TestDatabase::create().await;
    if !matches!(db.backend(), gerbang_testkit::Backend::Postgres(_)) {
        eprintln!("two instances share PostgreSQL only: nothing to check on SQLite");
        return;
    }
    let smsc = smsc::Smsc::start(&[]).await;
    std::fs::create_dir_all(db.data_dir()).unwrap();
    let (log_a, log_b) = (db.data_dir().join("a.log"), db.data_dir().join("b.log"));
    let (port_a, port_b) = (free_port(), free_port());
    let (base_a, base_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    let mut a = serve_with_smpp(&db, port_a, &smsc, 25, &log_a);
    wait_until_ready(&base_a, &mut a, &log_a).await;
    let mut b = serve_with_smpp(&db, port_b, &smsc, 25, &log_b);
    wait_until_ready(&base_b, &mut b, &log_b).await;

    // Through both, to numbers of their own.
    let http = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for n in 0..200u32 {
        let base = if n % 2 == 0 { &base_a } else { &base_b };
        let number = format!("0813{n:04}5678");
        let response = http
            .post(format!("{base}/v1/verifications"))
            .json(&serde_json::json!({"purpose": "registration", "channel": "sms", "to": number}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
        acknowledged.push(format!("62{}", &number[1..]));
    }
    smsc.wait_for("submit ", 20).await;
    a.kill().unwrap();
    a.wait().unwrap();
    let before_kill = smsc.count("submit ");
    assert!(
        before_kill < acknowledged.len(),
        "the kill must come while codes are still queued ({before_kill} already sent)"
    );

    let missing = missing_at_smsc(&smsc, &acknowledged, "submit", Duration::from_secs(90)).await;
    b.kill().unwrap();
    b.wait().unwrap();
    assert_eq!(missing, 0, "acknowledged codes never reached the SMSC");
    let duplicates = smsc.count("submit ") - acknowledged.len();
    eprintln!(
        "{} acknowledged by two instances, {before_kill} sent before one was killed, {duplicates} sent twice",
        acknowledged.len()
    );
    // At most what the killed worker had in flight (32 hand-offs) when it died.
    assert!(duplicates <= 32, "{duplicates} duplicates");
}

/// How many of `acknowledged` (numbers as the SMSC sees them) have no `event` line (`submit`,
/// `answered`) in the SMSC's log once all have one or `within` has passed.
async fn missing_at_smsc(
    smsc: &smsc::Smsc,
    acknowledged: &[String],
    event: &str,
    within: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let lines = smsc.lines();
        let missing = acknowledged
            .iter()
            .filter(|to| {
                let line = format!("{event} {to} ");
                !lines.iter().any(|l| l.starts_with(&line))
            })
            .count();
        if missing == 0 || Instant::now() > deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The codes in an application's development inbox, by verification id.
async fn inbox_codes(
    http: &reqwest::Client,
    address: std::net::SocketAddr,
) -> std::collections::HashMap<String, String> {
    let inbox: serde_json::Value = http
        .get(format!("http://{address}/dev/inbox.json?limit=10000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    inbox
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let code = m["text"]
                .as_str()?
                .split(|c: char| !c.is_ascii_digit())
                .find(|run| run.len() == 6)?;
            Some((m["verification"].as_str()?.to_owned(), code.to_owned()))
        })
        .collect()
}

async fn check_code(
    http: &reqwest::Client,
    address: std::net::SocketAddr,
    id: &str,
    code: &str,
) -> serde_json::Value {
    let checked = http
        .post(format!("http://{address}/v1/verifications/{id}/check"))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200, "checking {id}");
    checked.json().await.unwrap()
}

/// The personal-data key rotated as an operator would (docs/keys.md): codes are asked for under
/// the old key; gerbang restarts with both keys and `gerbang key rotate` runs beside it while codes
/// keep being asked for and checked; a code sent under the old key is still accepted during the
/// rotation; afterwards the audit log verifies under the new key alone, the old key is refused
/// alone and as the previous one, and gerbang serves with the new key alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotates_while_serving_and_the_old_key_is_refused_afterwards() {
    let db = TestDatabase::create().await;
    let dir = db.data_dir();
    let new_key = "bmV3LWtleS1mb3ItdGhlLXJvdGF0aW9uLXRlc3QtMDE=";
    let old_key = gerbang_testkit::TEST_KEY;
    let http = reqwest::Client::new();

    // Under the old key: codes asked for, and read from the inbox.
    let (address, stop, server) = serve_in_process(app_vars(&db, vec![])).await;
    let base = format!("http://{address}");
    let mut before = Vec::new();
    for n in 0..6 {
        before.push(start_code(&http, &base, n).await);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let old_codes = loop {
        let codes = inbox_codes(&http, address).await;
        if before.iter().all(|id| codes.contains_key(id)) {
            break codes;
        }
        assert!(
            Instant::now() < deadline,
            "the codes never reached the inbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop_in_process(stop, server).await;

    // Both keys: gerbang serves, and the rotation runs beside it.
    let both = vec![
        ("GERBANG_PRIVACY__KEY", new_key.to_string()),
        ("GERBANG_PRIVACY__PREVIOUS_KEY", old_key.to_string()),
    ];
    let mut vars = app_vars(&db, vec![]);
    vars.retain(|(name, _)| name != "GERBANG_PRIVACY__KEY");
    vars.extend(both.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let (address, stop, server) = serve_in_process(vars.clone()).await;
    let base = format!("http://{address}");
    let checked = check_code(&http, address, &before[0], &old_codes[&before[0]]).await;
    assert_eq!(
        checked["status"], "verified",
        "a code sent under the old key"
    );

    let command = |keys: &[(&str, String)], args: &[&str]| {
        let mut command = gerbang(&dir);
        for (name, value) in keys {
            command.env(name, value);
        }
        command
            .env("GERBANG_OTP__HARD_CAP_SECONDS", "2")
            .env("GERBANG_OTP__LIFETIME_SECONDS", "2")
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .args(database_args(&db));
        command
    };
    let asking = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move {
            let mut ids = Vec::new();
            for n in 100..160 {
                ids.push(start_code(&http, &base, n).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ids
        }
    });
    let mut rotate = command(&both, &["key", "rotate", "--batch", "5"]);
    let out = tokio::task::spawn_blocking(move || run(&mut rotate))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("key rotated from"),
        "{}",
        text(&out.stdout)
    );
    let during = asking.await.unwrap();
    // Still serving with both keys: a code sent under the old key before the rotation, and the
    // codes asked for during it, are accepted.
    let checked = check_code(&http, address, &before[1], &old_codes[&before[1]]).await;
    assert_eq!(checked["status"], "verified");
    let codes = inbox_codes(&http, address).await;
    for id in during.iter().step_by(10) {
        let checked = check_code(&http, address, id, &codes[id]).await;
        assert_eq!(checked["status"], "verified", "{id}");
    }
    stop_in_process(stop, server).await;

    let new_only = [("GERBANG_PRIVACY__KEY", new_key.to_string())];
    let out = run(&mut command(&new_only, &["audit", "verify"]));
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = run(&mut command(
        &[("GERBANG_PRIVACY__KEY", old_key.to_string())],
        &["audit", "verify"],
    ));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("retired"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&mut command(&both, &["audit", "verify"]));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("remove privacy.previous_key"),
        "{}",
        text(&out.stderr)
    );

    // The new key alone serves: the verifications of before are read (one more check of an old
    // code is refused as the wrong code, not as an error), and new codes verify.
    let mut vars = app_vars(&db, vec![]);
    vars.retain(|(name, _)| name != "GERBANG_PRIVACY__KEY");
    vars.push(("GERBANG_PRIVACY__KEY".into(), new_key.into()));
    let (address, stop, server) = serve_in_process(vars).await;
    let base = format!("http://{address}");
    let status: serde_json::Value = http
        .get(format!("{base}/v1/verifications/{}", before[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "verified", "{status}");
    let id = start_code(&http, &base, 500).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(code) = inbox_codes(&http, address).await.remove(&id) {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "the new code never reached the inbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let checked = check_code(&http, address, &id, &code).await;
    assert_eq!(checked["status"], "verified");
    stop_in_process(stop, server).await;
}
