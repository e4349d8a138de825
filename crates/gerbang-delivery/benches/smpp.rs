//! Submit latency over one SMPP bind to the test SMSC (Perl's Net::SMPP, on this machine) at fixed
//! offered rates: every message is scheduled at its instant (open loop), and the time from the call
//! to the SMSC's `submit_sm_resp` is recorded.
//!
//!     cargo bench -p gerbang-delivery --bench smpp            # 500/s and 2,000/s, 10 s each
//!     RATES=500,1000 SECONDS=5 WINDOW=20 cargo bench -p gerbang-delivery --bench smpp
//!
//! Medians and percentiles are printed; nothing is asserted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::panic
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use gerbang_delivery::smpp::{SmppClient, SmppConfig};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn run(rate: u32, seconds: u32, window: usize) {
    let smsc = support::Smsc::start(&[]).await;
    let mut config = SmppConfig::new(&smsc.address, "gerbang", "secret");
    config.window = window;
    config.response_timeout = Duration::from_secs(30);
    let (client, mut events) = SmppClient::start(config);
    // Receipts are drained so the bind never waits on us.
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    client.submit("6281299995555", "warm-up").await.unwrap();
    let total = rate * seconds;
    let interval = Duration::from_secs(1) / rate;
    let started = Instant::now();
    let tasks: Vec<_> = (0..total)
        .map(|i| {
            let client = client.clone();
            let at = started + interval * i;
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let sent = Instant::now();
                let result = client
                    .submit(&format!("62812{:04}5555", i % 10_000), "JKN Mobile: 123456 adalah kode OTP Anda. JANGAN berikan kode ini kepada siapa pun.")
                    .await;
                (sent.elapsed(), result.is_ok())
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for task in tasks {
        let (latency, ok) = task.await.unwrap();
        if ok {
            latencies.push(latency);
        } else {
            failed += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "offered {rate:>5}/s for {seconds} s, window {window}: {} accepted, {failed} failed, achieved {:.0}/s, submit latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    assert_eq!(
        smsc.count("submit"),
        total as usize + 1,
        "the SMSC saw every submit once"
    );
    client.close();
}

fn main() {
    let rates: Vec<u32> = std::env::var("RATES")
        .unwrap_or_else(|_| "500,2000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let seconds = env("SECONDS", 10);
    let window = env("WINDOW", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for rate in rates {
        runtime.block_on(run(rate, seconds, window));
    }
}
