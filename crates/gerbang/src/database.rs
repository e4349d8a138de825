//! The one place the storage backend is chosen: from the database URL, once, at start-up. Everything
//! after runs generically over `Store` through [`with_store!`](crate::with_store).

use std::path::PathBuf;

use anyhow::{Context, bail};
use gerbang_store::{Sealer, Store};
use gerbang_store_postgres::PostgresStore;
use gerbang_store_sqlite::SqliteStore;

use crate::config::Config;

/// The opened store, whichever backend it is.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// Runs `$body` with `$store` bound to the concrete store inside a [`Database`].
#[macro_export]
macro_rules! with_store {
    ($database:expr, |$store:ident| $body:expr) => {
        match $database {
            $crate::database::Database::Sqlite($store) => $body,
            $crate::database::Database::Postgres($store) => $body,
        }
    };
}

/// What the database is opened for.
#[derive(Debug, Clone, Copy)]
enum Use {
    Serve,
    Import,
}

/// Where the configuration says the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    SqliteFile(PathBuf),
    Postgres,
}

pub fn location(config: &Config) -> anyhow::Result<Location> {
    let Some(url) = &config.storage.database_url else {
        return Ok(Location::SqliteFile(
            config.storage.data_dir.join("gerbang.sqlite"),
        ));
    };
    let text = url.expose();
    if let Some(path) = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            bail!(
                "storage.database_url {url} names no SQLite file; write sqlite:///path/to/gerbang.sqlite"
            );
        }
        return Ok(Location::SqliteFile(PathBuf::from(path)));
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(Location::Postgres);
    }
    bail!(
        "storage.database_url {url} is neither a sqlite:// nor a postgres:// URL; leave it empty for SQLite in \
         the data directory"
    )
}

impl Database {
    /// Opens the configured database, applying pending migrations.
    pub async fn open(config: &Config, sealer: Sealer) -> anyhow::Result<Self> {
        Self::open_as(config, sealer, Use::Serve).await
    }

    /// Opens the configured database for one participant import: a SQLite file with one connection,
    /// which the import takes to itself when no other process has it open
    /// (`SqliteStore::open_alone`); PostgreSQL as [`open`](Self::open).
    pub async fn open_for_import(config: &Config, sealer: Sealer) -> anyhow::Result<Self> {
        Self::open_as(config, sealer, Use::Import).await
    }

    async fn open_as(config: &Config, sealer: Sealer, usage: Use) -> anyhow::Result<Self> {
        let connections = config.storage.max_connections;
        let timeouts = config.storage.timeouts()?;
        match location(config)? {
            Location::SqliteFile(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("cannot create the data directory {}", dir.display())
                    })?;
                }
                let store = match usage {
                    Use::Serve => {
                        SqliteStore::open_with(&path, sealer, connections, timeouts).await
                    }
                    Use::Import => SqliteStore::open_alone(&path, sealer, timeouts).await,
                };
                let store = store.with_context(|| {
                    format!("cannot open the SQLite database {}", path.display())
                })?;
                Ok(Self::Sqlite(store))
            }
            Location::Postgres => {
                let url = config
                    .storage
                    .database_url
                    .as_ref()
                    .map(|u| u.redacted())
                    .unwrap_or_default();
                let raw = config
                    .storage
                    .database_url
                    .as_ref()
                    .map(|u| u.expose().to_owned())
                    .unwrap_or_default();
                let store = PostgresStore::open_with(&raw, sealer, connections, timeouts).await.with_context(|| {
                    format!(
                        "cannot open PostgreSQL at {url}: check that the server runs, that the database exists \
                         (createdb) and that the user may connect"
                    )
                })?;
                Ok(Self::Postgres(store))
            }
        }
    }

    /// Applies pending migrations (already done by `open`); returns the schema version.
    pub async fn migrate(&self) -> anyhow::Result<i64> {
        Ok(match self {
            Self::Sqlite(store) => store.migrate().await?,
            Self::Postgres(store) => store.migrate().await?,
        })
    }

    pub fn backend(&self) -> &'static str {
        with_store!(self, |store| store.backend())
    }

    pub async fn close(&self) {
        with_store!(self, |store| store.close().await)
    }
}
