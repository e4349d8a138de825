//! `gerbang key rotate`: re-seals everything under the new personal-data key while gerbang serves,
//! then retires the old key (`gerbang_store::rotation`; docs/keys.md).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use gerbang_store::rotation::{close, reseal_all};

use crate::app::sealer;
use crate::config::Config;
use crate::database::Database;
use crate::with_store;

pub async fn rotate(
    config: &Config,
    batch: Option<u32>,
    pause_ms: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let sealer = sealer(config)?;
    let (Some(previous), current) = (
        sealer.previous_fingerprint().cloned(),
        sealer.fingerprint().clone(),
    ) else {
        eprintln!(
            "gerbang key rotate needs both keys: the new one as privacy.key and the one it replaces \
             as privacy.previous_key (or privacy.previous_key_file). Restart every instance with \
             both first, then run this."
        );
        return Ok(ExitCode::from(2));
    };
    // Every instance runs with the new key before this starts, so every code digested under the
    // old one was sent before now: one hard cap from now, all of them have died.
    let codes_dead_at =
        Utc::now() + chrono::Duration::seconds(config.otp.hard_cap_seconds.min(600) as i64);
    let db = Database::open(config, sealer.clone()).await?;
    // SQLite has one writer at a time: small transactions with a rest between them let a serving
    // instance's writes through (docs/benchmarks.md, "Key rotation").
    let (batch, pause_ms) = match &db {
        Database::Sqlite(_) => (batch.unwrap_or(100), pause_ms.unwrap_or(30)),
        Database::Postgres(_) => (batch.unwrap_or(500), pause_ms.unwrap_or(0)),
    };
    let pause = std::time::Duration::from_millis(pause_ms);
    let started = Instant::now();
    eprintln!(
        "rotating the personal-data key from {previous} to {current}, {batch} rows per transaction, \
         {pause_ms} ms between them"
    );
    let outcome = with_store!(&db, |store| {
        let mut since = Instant::now();
        let mut reported = 0;
        let tables = reseal_all(store, batch, pause, |table, totals, finished| {
            let seconds = since.elapsed().as_secs_f64();
            if finished {
                eprintln!(
                    "  {:<24} {:>10} rows read, {:>10} re-sealed, {} changed meanwhile, in {seconds:.1} s ({:.0} rows/s)",
                    table.as_str(),
                    totals.read,
                    totals.resealed,
                    totals.skipped,
                    totals.read as f64 / seconds.max(0.001)
                );
                since = Instant::now();
                reported = 0;
            } else if totals.read >= reported + 1_000_000 {
                eprintln!("  {:<24} {:>10} rows read…", table.as_str(), totals.read);
                reported = totals.read;
            }
        })
        .await;
        match tables {
            Ok(tables) => {
                let wait = codes_dead_at - Utc::now();
                if let Ok(wait) = wait.to_std() {
                    eprintln!(
                        "waiting {} s until every code sent under the old key has expired",
                        wait.as_secs()
                    );
                    tokio::time::sleep(wait).await;
                }
                close(store, &sealer, Utc::now())
                    .await
                    .map(|anchor| (tables, anchor))
            }
            Err(error) => Err(error),
        }
    });
    db.close().await;
    let (tables, anchor) = outcome.context("the rotation stopped; run it again to go on")?;
    let resealed: u64 = tables.iter().map(|(_, totals)| totals.resealed).sum();
    println!(
        "key rotated from {previous} to {current}: {resealed} rows re-sealed in {:.1} s; audit entry \
         {anchor} anchors the log; key {previous} is retired. Remove privacy.previous_key and \
         restart each instance.",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
