//! Micro-benchmarks of issuing and checking a code, and the engine alone on SQLite (no HTTP).
//!
//!     cargo bench -p gerbang-core --bench verification
//!
//! Plain `std::time::Instant` with medians over repeated runs: the machine is shared and noisy, so
//! every figure is the median of `RUNS` runs. Nothing here asserts a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use gerbang_core::{
    CheckRequest, DeliveryWorker, DevInbox, Origin, StartRequest, Subject, VerificationEngine,
};
use gerbang_domain::verification::code::{CodeKey, CodeLength, OtpCode};
use gerbang_domain::verification::message::{MessageBrand, render};
use gerbang_domain::verification::purpose::{ActionDetails, Purpose};
use gerbang_domain::verification::{
    Channel, CodeSend, Destination, Locale, OtpPolicy, Verification, VerificationId,
};
use gerbang_domain::{MobileNumber, SystemClock};
use gerbang_store::verifications::{open_verification, seal_verification};
use gerbang_store::{PersonalDataKey, Sealer, Store, VerificationStore};
use gerbang_store_sqlite::SqliteStore;

const RUNS: usize = 5;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn per_op(label: &str, ops: u32, mut body: impl FnMut()) {
    let runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..ops {
                body();
            }
            started.elapsed().as_nanos() as f64 / f64::from(ops)
        })
        .collect();
    let ns = median(runs);
    println!(
        "{label:<58} {:>9.2} µs/op {:>10.0} op/s per core",
        ns / 1000.0,
        1e9 / ns
    );
}

fn sample_verification(key: &CodeKey, code: &OtpCode) -> Verification {
    let id = VerificationId::new(Utc::now(), &mut rand::rng());
    let now = Utc::now();
    Verification {
        id,
        client: "bench".into(),
        purpose: Purpose::Registration,
        action: None,
        action_hint: None,
        locale: Locale::Id,
        flow: "registration/to:+6281234567890".into(),
        binding: b"registration".to_vec(),
        account: None,
        nik: None,
        created_at: now,
        sends: vec![CodeSend {
            channel: Channel::Sms,
            destination: Destination::Phone(MobileNumber::parse("081234567890").unwrap()),
            issued_at: now,
            handed_off_at: Some(now),
            digest: key.digest(id.as_bytes(), b"registration", code),
        }],
        wrong_attempts: 0,
        outcome: None,
    }
}

fn micro() {
    let key = CodeKey::new([7; 32]);
    let sealer = Sealer::new(&PersonalDataKey::generate()).unwrap();
    let policy = OtpPolicy::default();
    let brand = MessageBrand::default();
    let length = CodeLength::default();
    let code = OtpCode::generate(length, &mut rand::rng());
    let stored = sample_verification(&key, &code);
    let sealed = seal_verification(&sealer, &stored).unwrap();
    println!("stored verification: {} bytes sealed", sealed.len());

    per_op("code: generate + keyed digest", 200_000, || {
        let code = OtpCode::generate(length, &mut rand::rng());
        std::hint::black_box(key.digest(stored.id.as_bytes(), b"registration", &code));
    });
    per_op(
        "issue: code, digest, SMS text, seal verification + message",
        50_000,
        || {
            let code = OtpCode::generate(length, &mut rand::rng());
            let mut v = stored.clone();
            v.sends[0].digest = key.digest(v.id.as_bytes(), b"registration", &code);
            let text = render(&brand, v.locale, &code, policy.lifetime, None);
            std::hint::black_box(seal_verification(&sealer, &v).unwrap());
            std::hint::black_box(sealer.seal(text.as_bytes(), v.id.as_bytes()).unwrap());
        },
    );
    per_op(
        "check: open, parse, digest, compare, seal the outcome",
        50_000,
        || {
            let mut v = open_verification(&sealer, stored.id.as_bytes(), &sealed).unwrap();
            let typed = OtpCode::parse(code.reveal(), length).unwrap();
            let digest = key.digest(v.id.as_bytes(), b"registration", &typed);
            v.check(&digest, &policy, Utc::now()).unwrap();
            std::hint::black_box(seal_verification(&sealer, &v).unwrap());
        },
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// `total` requests from `concurrency` tasks; returns (req/s, p50 ms, p99 ms).
async fn drive<F, Fut>(total: usize, concurrency: usize, request: F) -> (f64, f64, f64)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = task;
                while i < total {
                    let at = Instant::now();
                    request(i).await;
                    latencies.push(at.elapsed());
                    i += concurrency;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    (
        total as f64 / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

async fn engine_on_sqlite() {
    const TOTAL: usize = 40_000;
    const CONCURRENCY: usize = 64;
    let mut starts = Vec::new();
    let mut checks = Vec::new();
    for _ in 0..3 {
        let dir = tempdir();
        let sealer = Sealer::new(&PersonalDataKey::generate()).unwrap();
        let store = SqliteStore::open(&dir.join("bench.sqlite"), sealer.clone(), 8)
            .await
            .unwrap();
        let clock = Arc::new(SystemClock);
        let engine = VerificationEngine::new(
            store.clone(),
            clock.clone(),
            CodeKey::new(sealer.code_key()),
            Default::default(),
        );
        let started = {
            let engine = engine.clone();
            let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(TOTAL)));
            let collected = ids.clone();
            let result = drive(TOTAL, CONCURRENCY, move |i| {
                let engine = engine.clone();
                let ids = collected.clone();
                async move {
                    let view = engine.start(start_request(i)).await.unwrap();
                    ids.lock().unwrap().push(view.id);
                }
            })
            .await;
            starts.push(result);
            ids
        };
        // Deliver, then read every code back from the inbox.
        let worker = DeliveryWorker::new(store.clone(), DevInbox, clock);
        while worker.deliver_next().await.unwrap() > 0 {}
        let inbox = store.inbox(TOTAL as u32 + 10).await.unwrap();
        let pairs: Arc<Vec<(VerificationId, String)>> = Arc::new(
            inbox
                .iter()
                .map(|m| {
                    let code = m
                        .message
                        .text
                        .split(|c: char| !c.is_ascii_digit())
                        .find(|run| run.len() == 6)
                        .unwrap()
                        .to_owned();
                    (m.message.verification, code)
                })
                .collect(),
        );
        assert_eq!(pairs.len(), started.lock().unwrap().len());
        let engine_for_checks = engine.clone();
        let result = drive(pairs.len(), CONCURRENCY, move |i| {
            let engine = engine_for_checks.clone();
            let pairs = pairs.clone();
            async move {
                let (id, code) = &pairs[i];
                engine
                    .check(CheckRequest {
                        client: "bench".into(),
                        id: *id,
                        code: code.clone(),
                        purpose: None,
                        action: None,
                        details: ActionDetails::default(),
                    })
                    .await
                    .unwrap();
            }
        })
        .await;
        checks.push(result);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    report(
        &format!("engine on SQLite: {TOTAL} starts, {CONCURRENCY} callers"),
        starts,
    );
    report(
        &format!("engine on SQLite: {TOTAL} checks, {CONCURRENCY} callers"),
        checks,
    );
}

fn report(label: &str, runs: Vec<(f64, f64, f64)>) {
    let rps = median(runs.iter().map(|r| r.0).collect());
    let p50 = median(runs.iter().map(|r| r.1).collect());
    let p99 = median(runs.iter().map(|r| r.2).collect());
    println!(
        "{label:<58} {rps:>9.0} req/s  p50 {p50:.2} ms  p99 {p99:.2} ms (median of {})",
        runs.len()
    );
}

fn start_request(i: usize) -> StartRequest {
    // Distinct numbers across many blocks, so no rate rule refuses the load.
    let number = format!("0812{:08}", (i * 7_919) % 100_000_000);
    StartRequest {
        client: "bench".into(),
        purpose: Purpose::Registration,
        action: None,
        details: ActionDetails::default(),
        action_hint: None,
        channel: Channel::Sms,
        destination: Destination::Phone(MobileNumber::parse(&number).unwrap()),
        locale: Locale::Id,
        subject: Subject::default(),
        origin: Origin::default(),
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gerbang-bench-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn main() {
    micro();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(engine_on_sqlite());
}
