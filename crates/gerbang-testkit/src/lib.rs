//! Dev-only helpers for gerbang's tests: a throwaway database on the backend under test, the fixed
//! test key, sample participants.
//!
//! The backend comes from `GERBANG_TEST_DATABASE`: unset or `sqlite` runs on a fresh SQLite file in a
//! temporary directory; a `postgres://…` URL runs on a fresh, uniquely-named database created on that
//! server and dropped afterwards. A PostgreSQL run never falls back to SQLite: if the server cannot be
//! reached the test fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use gerbang_domain::account::{Account, LoginGuard, TrustedDevices};
use gerbang_domain::verification::code::CodeDigest;
use gerbang_domain::verification::purpose::Purpose;
use gerbang_domain::verification::{
    Channel, CodeSend, Destination, Locale, Verification, VerificationId,
};
use gerbang_domain::{
    Email, FamilyCardNumber, JknCardNumber, KpjNumber, MobileNumber, Nik, Participant,
    ParticipantStatus, PersonName, Sex,
};
use gerbang_store::{PersonalDataKey, Sealer};
use gerbang_store_postgres::PostgresStore;
use gerbang_store_sqlite::SqliteStore;
use rand::Rng;
use sqlx::Connection;

/// The personal-data key of every test (base64 of 32 fixed bytes).
pub const TEST_KEY: &str = "Z2VyYmFuZy10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGU=";

pub fn test_sealer() -> Sealer {
    Sealer::new(&PersonalDataKey::from_base64(TEST_KEY).unwrap()).unwrap()
}

/// Which backend the tests run on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// URL of a server to create throwaway databases on.
    Postgres(String),
}

impl Backend {
    pub fn from_env() -> Self {
        match std::env::var("GERBANG_TEST_DATABASE") {
            Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::Postgres(url)
            }
            Ok(other) if !other.is_empty() && other != "sqlite" => {
                panic!("GERBANG_TEST_DATABASE must be `sqlite` or a postgres:// URL, not {other:?}")
            }
            _ => Self::Sqlite,
        }
    }
}

/// A fresh database that is removed when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    /// Data directory (SQLite file, key file) for the test.
    dir: tempfile::TempDir,
    /// For PostgreSQL: the URL of the throwaway database and its name.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::from_env();
        let postgres = match &backend {
            Backend::Sqlite => None,
            Backend::Postgres(server) => {
                let name = format!("gerbang_test_{:016x}", rand::rng().random::<u64>());
                let mut admin = sqlx::PgConnection::connect(server).await.unwrap_or_else(|e| {
                    panic!("GERBANG_TEST_DATABASE names PostgreSQL at {}, which cannot be reached: {e}", redact(server))
                });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                admin.close().await.ok();
                let mut url = url::Url::parse(server).unwrap();
                url.set_path(&name);
                Some((url.to_string(), name))
            }
        };
        Self {
            backend,
            dir,
            postgres,
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// A data directory private to this test.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The database URL to give gerbang's configuration (`storage.database_url`).
    pub fn url(&self) -> String {
        match &self.postgres {
            Some((url, _)) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.dir.path().join("gerbang.sqlite").display()
            ),
        }
    }

    pub async fn sqlite_store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("gerbang.sqlite"), test_sealer(), 4)
            .await
            .unwrap()
    }

    pub async fn postgres_store(&self) -> PostgresStore {
        let (url, _) = self
            .postgres
            .as_ref()
            .expect("not a PostgreSQL test database");
        PostgresStore::open(url, test_sealer(), 4).await.unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (Backend::Postgres(server), Some((_, name))) = (&self.backend, &self.postgres) else {
            return;
        };
        let (server, name) = (server.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use a private one.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Runs a generic store test body on the backend under test.
///
/// ```text
/// store_test!(finds_by_nik);
/// async fn finds_by_nik<S: Store>(store: S) { ... }
/// ```
#[macro_export]
macro_rules! store_test {
    ($($name:ident),* $(,)?) => {
        mod on_backend_under_test {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::TestDatabase::create().await;
                    match db.backend() {
                        $crate::Backend::Sqlite => super::$name(db.sqlite_store().await).await,
                        $crate::Backend::Postgres(_) => super::$name(db.postgres_store().await).await,
                    }
                }
            )*
        }
    };
}

/// A valid participant whose numbers are derived from `n`, so tests can make many distinct ones.
pub fn participant(n: u32) -> Participant {
    let birth =
        NaiveDate::from_ymd_opt(1980, 1, 1).unwrap() + chrono::Duration::days(i64::from(n % 9000));
    let sex = if n.is_multiple_of(2) {
        Sex::Male
    } else {
        Sex::Female
    };
    Participant {
        nik: Nik::compose(317101, birth, sex, (n % 9999 + 1) as u16).unwrap(),
        card_number: JknCardNumber::parse(&format!("000{:010}", n)).unwrap(),
        kpj_number: Some(
            KpjNumber::parse(&format!("{:011}", 10_000_000_000u64 + u64::from(n))).unwrap(),
        ),
        family_card_number: Some(
            FamilyCardNumber::parse(&format!("3171010101{:02}{:04}", n % 100, n % 9999 + 1))
                .unwrap(),
        ),
        full_name: PersonName::parse("Budi Santoso").unwrap(),
        birth_date: birth,
        sex,
        status: ParticipantStatus::Active,
        phone: Some(MobileNumber::parse(&format!("0812{:08}", n)).unwrap()),
        email: Some(Email::parse(&format!("peserta{n}@example.com")).unwrap()),
    }
}

/// The account of [`participant`] `n`, created at `at`, with a fixed password hash.
pub fn account(n: u32, at: DateTime<Utc>) -> Account {
    let p = participant(n);
    Account {
        nik: p.nik,
        card_number: p.card_number,
        email: p.email,
        phone: p.phone,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        guard: LoginGuard::default(),
        devices: TrustedDevices::default(),
        phone_changed_at: None,
        created_at: at,
    }
}

/// A pending registration verification created at `at`, for `nik` (or for no one the registry
/// knows), with one SMS send.
pub fn pending_verification(nik: Option<Nik>, at: DateTime<Utc>) -> Verification {
    let id = VerificationId::new(at, &mut rand::rng());
    Verification {
        id,
        client: "conformance".into(),
        purpose: Purpose::Registration,
        action: None,
        action_hint: None,
        locale: Locale::Id,
        flow: "registration/to:+6281234567890".into(),
        binding: b"registration".to_vec(),
        account: Some("account-1".into()),
        nik,
        created_at: at,
        sends: vec![CodeSend {
            channel: Channel::Sms,
            destination: Destination::Phone(MobileNumber::parse("081234567890").unwrap()),
            issued_at: at,
            handed_off_at: None,
            digest: CodeDigest::from_bytes([7; 32]),
        }],
        wrong_attempts: 0,
        outcome: None,
    }
}
