//! Raw Argon2id against the same hashes through [`PasswordHashing`] (bounded blocking pool, tokio),
//! with the default parameters (m = 19 MiB, t = 2, p = 1): the pool's overhead is the gap.
//!
//!     cargo bench -p gerbang-core --bench password
//!
//! Each figure is the median of `RUNS` runs of `OPS` verifications. Nothing here asserts a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use gerbang_core::{PasswordHashing, PasswordHashingSettings};
use secrecy::SecretString;

const RUNS: usize = 5;
const OPS: usize = 64;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let settings = PasswordHashingSettings::default();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hashing = Arc::new(PasswordHashing::new(&settings).unwrap());
    let password = SecretString::from("Teduh#Rimba42".to_owned());
    let stored = runtime.block_on(hashing.hash(&password)).unwrap();

    // Raw: `threads` OS threads each verifying OPS / threads times, no runtime in between.
    let raw = median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..threads {
                        scope.spawn(|| {
                            let params = Params::new(
                                settings.memory_kib,
                                settings.iterations,
                                settings.parallelism,
                                None,
                            )
                            .unwrap();
                            let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                            let parsed = PasswordHash::new(&stored).unwrap();
                            for _ in 0..OPS / threads {
                                argon.verify_password(b"Teduh#Rimba42", &parsed).unwrap();
                            }
                        });
                    }
                });
                OPS as f64 / started.elapsed().as_secs_f64()
            })
            .collect(),
    );

    // Through the pool: OPS concurrent verifications from async tasks.
    let pooled = median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                runtime.block_on(async {
                    let tasks: Vec<_> = (0..OPS)
                        .map(|_| {
                            let hashing = Arc::clone(&hashing);
                            let password = password.clone();
                            let stored = stored.clone();
                            tokio::spawn(async move {
                                hashing.verify(Some(&stored), &password).await.unwrap()
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                });
                OPS as f64 / started.elapsed().as_secs_f64()
            })
            .collect(),
    );
    println!(
        "argon2id m={} t={} p={}, {threads} threads",
        settings.memory_kib, settings.iterations, settings.parallelism
    );
    println!("raw verify:     {raw:8.1}/s (median of {RUNS} x {OPS})");
    println!("pooled verify:  {pooled:8.1}/s  ratio {:.3}", pooled / raw);
}
