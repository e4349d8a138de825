//! Password hashing with Argon2id on a bounded pool of blocking threads.
//!
//! Argon2id is deliberately slow and memory-hard, so it must never run on the async workers: every
//! hash runs in `spawn_blocking`, at most `max_concurrent` at a time. Requests beyond that wait,
//! up to `max_waiting` of them; past that the answer is [`PasswordHashingError::Busy`] at once, so a
//! login storm queues a bounded amount of work instead of every request timing out together.
//!
//! [`PasswordHashing::verify`] takes the stored hash as an `Option`: with `None` (no such account)
//! it still computes one hash against a fixed dummy, so an unknown identifier costs the same as a
//! wrong password (SPEC §9). A match under older parameters comes back with a fresh hash under the
//! current ones, for the caller to store (transparent rehash).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use gerbang_domain::Explain;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Argon2id cost and the pool it runs on. Defaults: OWASP's first recommended configuration
/// (m = 19 MiB, t = 2, p = 1); as many hashes at once as the machine has cores.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHashingSettings {
    /// Memory per hash, KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes per hash.
    pub parallelism: u32,
    /// Hashes computed at once; 0 means one per core.
    pub max_concurrent: usize,
    /// Requests allowed to wait for a free slot before new ones are refused as busy.
    pub max_waiting: usize,
}

impl Default for PasswordHashingSettings {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 0,
            max_waiting: 256,
        }
    }
}

/// What checking a password found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// Wrong password, or no account behind the identifier (indistinguishable by design).
    Mismatch,
    /// The right password. `rehashed` is set when the stored hash used other parameters than the
    /// current ones: the caller stores it in place of the old one.
    Match { rehashed: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordHashingError {
    /// Too many hashes are already waiting; the caller should try again shortly.
    #[error("password hashing is saturated: {waiting} requests already waiting")]
    Busy { waiting: usize },
    /// The stored hash is not a PHC string this service can read.
    #[error("stored password hash is unreadable: {0}")]
    Corrupt(String),
    /// The parameters are outside Argon2's bounds (a configuration error).
    #[error("invalid Argon2 parameters: {0}")]
    Parameters(String),
    /// The blocking task died (a panic in the hashing library).
    #[error("password hashing task failed: {0}")]
    Task(String),
}

impl Explain for PasswordHashingError {
    fn code(&self) -> &'static str {
        match self {
            Self::Busy { .. } => "busy",
            Self::Corrupt(_) | Self::Parameters(_) | Self::Task(_) => "internal",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::Busy { .. } => {
                "Layanan sedang sibuk. Silakan coba lagi dalam beberapa detik.".into()
            }
            _ => "Terjadi kesalahan pada layanan. Silakan coba lagi nanti.".into(),
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::Busy { .. } => "The service is busy. Please try again in a few seconds.".into(),
            _ => "Something went wrong on our side. Please try again later.".into(),
        }
    }
}

/// The Argon2id hasher and its bounded pool. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PasswordHashing {
    params: Params,
    slots: Arc<Semaphore>,
    max_waiting: usize,
    waiting: AtomicUsize,
    counters: Arc<Counters>,
    /// A hash of a random password under the current parameters, checked when there is no account.
    dummy: String,
}

#[derive(Debug, Default)]
struct Counters {
    computed: AtomicU64,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl PasswordHashing {
    /// Builds the hasher; computes the dummy hash once (one Argon2id run, on the calling thread).
    pub fn new(settings: &PasswordHashingSettings) -> Result<Self, PasswordHashingError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|error| PasswordHashingError::Parameters(error.to_string()))?;
        let slots = match settings.max_concurrent {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let dummy = hash_with(&params, &gerbang_domain::account::hex(&random))?;
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(slots)),
            max_waiting: settings.max_waiting,
            waiting: AtomicUsize::new(0),
            counters: Arc::default(),
            dummy,
        })
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `password` with a fresh salt.
    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordHashingError> {
        let params = self.params.clone();
        let password = password.clone();
        self.run(move || hash_with(&params, password.expose_secret()))
            .await?
    }

    /// Checks `password` against `stored`, or against the dummy when there is no account.
    pub async fn verify(
        &self,
        stored: Option<&str>,
        password: &SecretString,
    ) -> Result<PasswordCheck, PasswordHashingError> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy).to_owned();
        let params = self.params.clone();
        let password = password.clone();
        self.run(move || {
            let parsed = PasswordHash::new(&stored)
                .map_err(|error| PasswordHashingError::Corrupt(error.to_string()))?;
            let stored_params = Params::try_from(&parsed)
                .map_err(|error| PasswordHashingError::Corrupt(error.to_string()))?;
            let algorithm = Algorithm::try_from(parsed.algorithm)
                .map_err(|error| PasswordHashingError::Corrupt(error.to_string()))?;
            let version = parsed
                .version
                .map(Version::try_from)
                .transpose()
                .map_err(|error| PasswordHashingError::Corrupt(error.to_string()))?
                .unwrap_or_default();
            let right = matches_with_reused_memory(
                &parsed,
                algorithm,
                version,
                &stored_params,
                password.expose_secret().as_bytes(),
            )?;
            if !(right && exists) {
                return Ok(PasswordCheck::Mismatch);
            }
            let current = algorithm == Algorithm::Argon2id
                && version == Version::V0x13
                && same_cost(&stored_params, &params);
            let rehashed = if current {
                None
            } else {
                Some(hash_with(&params, password.expose_secret())?)
            };
            Ok(PasswordCheck::Match { rehashed })
        })
        .await?
    }

    /// Argon2id runs so far (including dummy checks and rehashes): for metrics and tests.
    pub fn computed(&self) -> u64 {
        self.counters.computed.load(Ordering::Relaxed)
    }

    /// The most hashes that ever ran at once.
    pub fn peak_in_flight(&self) -> usize {
        self.counters.peak_in_flight.load(Ordering::Relaxed)
    }

    async fn run<T, F>(&self, work: F) -> Result<T, PasswordHashingError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.slot().await?;
        let counters = Arc::clone(&self.counters);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            counters.peak_in_flight.fetch_max(now, Ordering::SeqCst);
            counters.computed.fetch_add(1, Ordering::Relaxed);
            let value = work();
            counters.in_flight.fetch_sub(1, Ordering::SeqCst);
            value
        })
        .await
        .map_err(|error| PasswordHashingError::Task(error.to_string()))
    }

    /// A free slot now, or after waiting if fewer than `max_waiting` already wait.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, PasswordHashingError> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        if waiting >= self.max_waiting {
            return Err(PasswordHashingError::Busy { waiting });
        }
        Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|error| PasswordHashingError::Task(error.to_string()))
    }
}

/// Counts a waiting request out again however its wait ends (served, refused or cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

thread_local! {
    /// Argon2 working memory of this blocking thread, kept between verifications: allocating 19 MiB
    /// per login cost the server ~12 % of its CPU in zeroing and page faults (docs/benchmarks.md).
    /// Every block is overwritten by each hash before it is read.
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `password` hashes to the stored hash, computed in this thread's reused memory and
/// compared in constant time.
fn matches_with_reused_memory(
    parsed: &PasswordHash<'_>,
    algorithm: Algorithm,
    version: Version,
    stored: &Params,
    password: &[u8],
) -> Result<bool, PasswordHashingError> {
    let corrupt = |what: &str| PasswordHashingError::Corrupt(what.to_owned());
    let expected = parsed.hash.ok_or_else(|| corrupt("no hash"))?;
    let salt = parsed.salt.ok_or_else(|| corrupt("no salt"))?;
    let mut salt_bytes = [0u8; argon2::password_hash::Salt::MAX_LENGTH];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|error| PasswordHashingError::Corrupt(error.to_string()))?;
    let params = Params::new(
        stored.m_cost(),
        stored.t_cost(),
        stored.p_cost(),
        Some(expected.len()),
    )
    .map_err(|error| PasswordHashingError::Corrupt(error.to_string()))?;
    let hasher = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        hasher
            .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
            .map_err(|error| PasswordHashingError::Corrupt(error.to_string()))
    })?;
    let computed = argon2::password_hash::Output::new(&out)
        .map_err(|error| PasswordHashingError::Corrupt(error.to_string()))?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

fn same_cost(a: &Params, b: &Params) -> bool {
    a.m_cost() == b.m_cost() && a.t_cost() == b.t_cost() && a.p_cost() == b.p_cost()
}

fn hash_with(params: &Params, password: &str) -> Result<String, PasswordHashingError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|error| PasswordHashingError::Parameters(error.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordHashingError::Parameters(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small parameters: the rules are the same, the tests run in milliseconds.
    fn settings(memory_kib: u32) -> PasswordHashingSettings {
        PasswordHashingSettings {
            memory_kib,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
            max_waiting: 64,
        }
    }

    fn secret(value: &str) -> SecretString {
        SecretString::from(value.to_owned())
    }

    #[tokio::test]
    async fn the_right_password_matches_and_a_wrong_one_does_not() {
        let hashing = PasswordHashing::new(&settings(1024)).unwrap();
        let stored = hashing.hash(&secret("Teduh#Rimba42")).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{stored}"
        );
        assert_eq!(
            hashing
                .verify(Some(&stored), &secret("Teduh#Rimba42"))
                .await
                .unwrap(),
            PasswordCheck::Match { rehashed: None }
        );
        assert_eq!(
            hashing
                .verify(Some(&stored), &secret("teduh#Rimba42"))
                .await
                .unwrap(),
            PasswordCheck::Mismatch
        );
    }

    #[tokio::test]
    async fn two_hashes_of_one_password_differ_by_their_salt() {
        let hashing = PasswordHashing::new(&settings(1024)).unwrap();
        let a = hashing.hash(&secret("Teduh#Rimba42")).await.unwrap();
        let b = hashing.hash(&secret("Teduh#Rimba42")).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn changed_parameters_rehash_on_the_next_right_password_only() {
        let old = PasswordHashing::new(&settings(1024)).unwrap();
        let stored = old.hash(&secret("Teduh#Rimba42")).await.unwrap();
        let new = PasswordHashing::new(&settings(2048)).unwrap();
        assert_eq!(
            new.verify(Some(&stored), &secret("wrong")).await.unwrap(),
            PasswordCheck::Mismatch
        );
        let PasswordCheck::Match {
            rehashed: Some(rehashed),
        } = new
            .verify(Some(&stored), &secret("Teduh#Rimba42"))
            .await
            .unwrap()
        else {
            panic!("a right password under old parameters must be rehashed");
        };
        assert!(rehashed.contains("m=2048,t=1,p=1"), "{rehashed}");
        assert_eq!(
            new.verify(Some(&rehashed), &secret("Teduh#Rimba42"))
                .await
                .unwrap(),
            PasswordCheck::Match { rehashed: None }
        );
    }

    #[tokio::test]
    async fn an_unknown_account_costs_one_hash_and_never_matches() {
        let hashing = PasswordHashing::new(&settings(1024)).unwrap();
        let before = hashing.computed();
        assert_eq!(
            hashing.verify(None, &secret("anything")).await.unwrap(),
            PasswordCheck::Mismatch
        );
        assert_eq!(hashing.computed(), before + 1);
    }

    #[tokio::test]
    async fn an_unreadable_stored_hash_is_an_error_not_a_match() {
        let hashing = PasswordHashing::new(&settings(1024)).unwrap();
        let error = hashing
            .verify(Some("not-a-phc-string"), &secret("x"))
            .await
            .unwrap_err();
        assert!(matches!(error, PasswordHashingError::Corrupt(_)), "{error}");
        assert_eq!(error.code(), "internal");
    }

    #[tokio::test]
    async fn parameters_outside_argon2_bounds_are_refused() {
        let error = PasswordHashing::new(&PasswordHashingSettings {
            memory_kib: 1,
            ..settings(1)
        })
        .unwrap_err();
        assert!(
            matches!(error, PasswordHashingError::Parameters(_)),
            "{error}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_max_concurrent_hashes_run_at_once() {
        let hashing = Arc::new(PasswordHashing::new(&settings(4096)).unwrap());
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let hashing = Arc::clone(&hashing);
                tokio::spawn(async move { hashing.hash(&secret(&format!("pw{i}"))).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert!(
            hashing.peak_in_flight() <= 2,
            "{}",
            hashing.peak_in_flight()
        );
        assert_eq!(hashing.computed(), 12);
    }

    #[tokio::test]
    async fn past_the_waiting_bound_new_requests_are_refused_as_busy() {
        let hashing = PasswordHashing::new(&PasswordHashingSettings {
            max_concurrent: 1,
            max_waiting: 0,
            ..settings(1024)
        })
        .unwrap();
        let second = secret("second");
        // The only slot is taken (as by a hash in progress) and nobody may wait.
        let held = Arc::clone(&hashing.slots).try_acquire_owned().unwrap();
        let error = hashing.hash(&second).await.unwrap_err();
        assert!(
            matches!(error, PasswordHashingError::Busy { .. }),
            "{error}"
        );
        assert_eq!(error.code(), "busy");
        assert_eq!(hashing.computed(), 0, "a refused request costs no hash");
        // Once the slot is free again, requests are served.
        drop(held);
        assert!(hashing.hash(&second).await.is_ok());
    }
}
