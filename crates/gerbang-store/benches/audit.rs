//! The audit log's costs on the backend `GERBANG_TEST_DATABASE` names (SQLite by default), in a
//! throwaway database:
//! - one staff action appended on its own (its own transaction, so one durable commit each), one
//!   writer and then 16 at once;
//! - `walk` (what `gerbang audit verify` runs) over `AUDIT_ENTRIES` entries (default 1,000,000),
//!   appended 1,000 to a transaction first.
//!
//! ```text
//! cargo bench -p gerbang-store --bench audit
//! GERBANG_TEST_DATABASE=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p gerbang-store --bench audit
//! ```
//!
//! Medians of `RUNS` runs; nothing here asserts a time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::time::Instant;

use chrono::Utc;
use gerbang_store::Store;
use gerbang_store::audit::{AuditChain, AuditRecord, Verdict, actor, walk};
use gerbang_testkit::{Backend, TestDatabase, test_sealer};

const RUNS: usize = 3;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn record(n: u64) -> AuditRecord {
    AuditRecord {
        at: Utc::now(),
        actor: actor::operator("cabang-jaksel-07"),
        action: "participant_searched".into(),
        account: None,
        ticket: Some(format!("TKT-{:06}", n % 1_000_000)),
        detail: "reason: participant called 165, code not received".into(),
    }
}

async fn bench<S: Store>(store: S, entries: u64) {
    // One action, one transaction, one writer.
    let mut per_action = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        for n in 0..500 {
            store.append_audit(vec![record(n)]).await.unwrap();
        }
        per_action.push(started.elapsed().as_secs_f64() / 500.0 * 1e6);
    }
    let single = median(per_action);
    println!("append, one writer: {single:.0} µs per staff action (median of {RUNS} × 500)");

    // Sixteen writers at once.
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..16u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..200 {
                    store
                        .append_audit(vec![record(w * 1000 + n)])
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        rates.push(3200.0 / started.elapsed().as_secs_f64());
    }
    println!(
        "append, 16 writers: {:.0} staff actions/s (median of {RUNS} × 3,200)",
        median(rates)
    );

    // Fill up to `entries`, then walk.
    let have = store.audit_head().await.unwrap().seq as u64;
    let started = Instant::now();
    let mut n = have;
    while n < entries {
        let batch = (entries - n).min(1000);
        store
            .append_audit((n..n + batch).map(record).collect())
            .await
            .unwrap();
        n += batch;
    }
    println!(
        "filled to {entries} entries in {:.1} s ({:.0} entries/s in batches of 1,000)",
        started.elapsed().as_secs_f64(),
        (entries - have) as f64 / started.elapsed().as_secs_f64()
    );
    let chain = AuditChain::new(test_sealer().audit_key());
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let verdict = walk(&store, chain.clone()).await.unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let Verdict::Whole { entries, .. } = verdict else {
            panic!("the log is not whole: {verdict:?}");
        };
        rates.push(entries as f64 / seconds);
    }
    println!(
        "verify (walk): {:.0} entries/s (median of {RUNS} walks of {entries})",
        median(rates)
    );
    store.close().await;
}

fn main() {
    let entries = std::env::var("AUDIT_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = TestDatabase::create().await;
        match db.backend() {
            Backend::Sqlite => {
                println!("SQLite");
                bench(db.sqlite_store().await, entries).await;
            }
            Backend::Postgres(_) => {
                println!("PostgreSQL");
                bench(db.postgres_store().await, entries).await;
            }
        }
    });
}
