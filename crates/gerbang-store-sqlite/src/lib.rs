//! The SQLite implementation of gerbang's storage contracts: one file in the data directory, WAL
//! journal, synchronous commits, migrations embedded from `migrations/`.
//!
//! SQLite allows one writer at a time; writers open their transaction with `BEGIN IMMEDIATE` so two
//! of them queue on the busy timeout instead of failing on a lock upgrade.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use gerbang_store::first_load::{self, ContestedRow, FirstLoad};
use gerbang_store::participants::{lookup_digests, open_participant, refuse_import_while_rotating};
use gerbang_store::{
    BatchOutcome, CommitOutcome, DigestedParticipant, ParticipantConflict, ParticipantImport,
    ParticipantKey, ParticipantStore, RowConflict, SealedParticipant, Sealer, Store, StoreError,
    StoredParticipant, Timeouts,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{
    AssertSqlSafe, QueryBuilder, Row, SqlSafeStr, Sqlite, SqliteConnection, SqlitePool, Transaction,
};

mod accounts;
mod audit;
mod health;
mod pumping;
mod requests;
mod rotation;
mod staff;
mod tickets;
mod verifications;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Rows per INSERT statement: 10 parameters each stays far below SQLite's 32,766-variable limit.
const ROWS_PER_STATEMENT: usize = 500;
/// Rows asked about in one query: three bound variables each, far below SQLite's 32,766.
const DIGESTS_PER_QUERY: usize = 5_000;

/// The largest participant id (the rightmost leaf of the table: no scan).
const MAX_ID: &str = "SELECT COALESCE(MAX(id), 0) FROM participants";

/// Page cache of a connection while it runs an import (KiB when negative): 192 MiB.
const IMPORT_CACHE: &str = "PRAGMA cache_size = -196608";

/// The registry's lookup indexes as migration 0018 creates them: the unique ones first, in the
/// order a first load builds them.
const UNIQUE_LOOKUP_INDEXES: [&str; 3] = [
    "CREATE UNIQUE INDEX participants_nik ON participants (nik_digest)",
    "CREATE UNIQUE INDEX participants_card ON participants (card_digest)",
    "CREATE UNIQUE INDEX participants_kpj ON participants (kpj_digest) WHERE kpj_digest IS NOT NULL",
];
const SEARCH_INDEXES: [&str; 2] = [
    "CREATE INDEX participants_phone ON participants (phone_digest) WHERE phone_digest IS NOT NULL",
    "CREATE INDEX participants_email ON participants (email_digest) WHERE email_digest IS NOT NULL",
];
const REGISTRY_EMPTY: &str = "SELECT NOT EXISTS (SELECT 1 FROM participants)";

/// The connection of a first load:
/// - a small page cache (4 MiB): appending needs none, and it is also the size of the runs SQLite's
///   sorter sorts in memory when it builds an index, so that many runs are sorted, on both cores
///   (`threads`), while the table is read — measured on 1M rows, 0.5 s an index instead of 1.3 s
///   with the import's large cache;
/// - sorter runs spilled to temporary files (`temp_store = FILE`): with the pool's
///   `temp_store = MEMORY`, SQLite keeps a whole sort in memory, which a census does not fit.
const FIRST_LOAD_SETTINGS: &str =
    "PRAGMA cache_size = -4096; PRAGMA threads = 2; PRAGMA temp_store = FILE";
const DROP_LOOKUP_INDEXES: &str = "DROP INDEX participants_nik; DROP INDEX participants_card; \
    DROP INDEX participants_kpj; DROP INDEX participants_phone; DROP INDEX participants_email";

/// A gerbang store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    sealer: Sealer,
    timeouts: Timeouts,
    /// The one writer of verifications, rate limits and the outbox (group commit).
    writer: verifications::Writer,
    /// Opened by [`SqliteStore::open_alone`] for an import: one connection, no writer.
    alone: bool,
}

/// Converts a database error, in one place: connection trouble is `Unavailable`, the rest says what
/// the database said.
fn store_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Migrate(e) => StoreError::Migration(e.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}

/// The conflict behind a unique-index violation, if that is what `error` is.
fn conflict_of(error: &sqlx::Error) -> Option<ParticipantConflict> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            ParticipantConflict::from_violation(db.message())
        }
        _ => None,
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies pending migrations and checks that the
    /// personal-data key is the one the file was sealed with; the default [`Timeouts`].
    pub async fn open(
        path: &Path,
        sealer: Sealer,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        Self::open_with(path, sealer, max_connections, Timeouts::default()).await
    }

    /// [`open`](Self::open) with the given timeouts: `timeouts.statement` is the busy timeout (the
    /// longest wait for another writer's lock), `timeouts.connect` the wait for a pooled connection.
    pub async fn open_with(
        path: &Path,
        sealer: Sealer,
        max_connections: u32,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(store_error)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit the API acknowledged survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(timeouts.statement)
            .foreign_keys(true)
            // Statement and savepoint journals in memory: they only protect work inside an open
            // transaction, which is lost on a crash anyway, so a temp file buys nothing.
            .pragma("temp_store", "MEMORY")
            .pragma("cache_size", "-32768")
            // A background task checkpoints the WAL twice a second (see `verifications`); the
            // automatic checkpoint, which stalls the committing connection, is only the fallback
            // if that task falls behind by 16,384 pages (64 MiB).
            .pragma("wal_autocheckpoint", "16384");
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(timeouts.connect)
            .connect_with(options.clone())
            .await
            .map_err(store_error)?;
        let writer = verifications::Writer::start(options, sealer.clone()).await?;
        let store = Self {
            pool,
            sealer,
            timeouts,
            writer,
            alone: false,
        };
        store.migrate().await?;
        store.bind_key().await?;
        store.chain_carried_over().await?;
        Ok(store)
    }

    /// Opens the file for `gerbang participants import` alone: like [`open_with`](Self::open_with)
    /// (migrations, key check), then down to one pooled connection, without the writer of
    /// verifications, so that when no other process has the file open either, an import can take
    /// it to itself: it switches the file from the write-ahead log to a rollback journal for its
    /// transaction ([`ALONE_JOURNAL`]) and back when it commits. Verifications cannot be written
    /// through this store (they fail as unavailable).
    pub async fn open_alone(
        path: &Path,
        sealer: Sealer,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
        let store = Self::open_with(path, sealer, 1, timeouts).await?;
        store.writer.close().await;
        Ok(Self {
            alone: true,
            ..store
        })
    }

    /// Writes a consistent copy of the whole database to `path` while it keeps serving
    /// (`VACUUM INTO`: one read transaction, so the copy is the database as of one commit, and
    /// writers are not blocked in WAL mode). Returns the copy's size in bytes; `path` must not
    /// exist.
    pub async fn backup_into(&self, path: &Path) -> Result<u64, StoreError> {
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Unavailable("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        let copy = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(true);
        let mut connection = sqlx::ConnectOptions::connect(&copy)
            .await
            .map_err(store_error)?;
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut connection)
            .await
            .map_err(store_error)?;
        sqlx::Connection::close(connection)
            .await
            .map_err(store_error)?;
        if check != "ok" {
            return Err(StoreError::Corrupt(format!(
                "the backup fails its integrity check: {check}"
            )));
        }
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Applies pending migrations; returns the schema version now in force.
    pub async fn migrate(&self) -> Result<i64, StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(MIGRATOR.iter().map(|m| m.version).max().unwrap_or_default())
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let limit = self.timeouts.connect;
        match tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(done) => done.map(drop).map_err(store_error),
            Err(_) => Err(StoreError::Unavailable(format!(
                "SQLite did not answer within {} ms (storage.connect_timeout_ms)",
                limit.as_millis()
            ))),
        }
    }

    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

impl ParticipantStore for SqliteStore {
    type Import = SqliteImport;

    async fn find_participant(
        &self,
        key: ParticipantKey<'_>,
    ) -> Result<Option<StoredParticipant>, StoreError> {
        let [current, previous] = lookup_digests(key, &self.sealer);
        let sql = match key {
            ParticipantKey::Nik(_) => {
                "SELECT id, nik_digest, sealed, updated_at FROM participants WHERE nik_digest IN (?, ?)"
            }
            ParticipantKey::CardNumber(_) => {
                "SELECT id, nik_digest, sealed, updated_at FROM participants WHERE card_digest IN (?, ?)"
            }
            ParticipantKey::KpjNumber(_) => {
                "SELECT id, nik_digest, sealed, updated_at FROM participants WHERE kpj_digest IN (?, ?)"
            }
        };
        let Some(row) = sqlx::query(sql)
            .bind(current.as_slice())
            .bind(previous.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let nik_digest: Vec<u8> = row.try_get("nik_digest").map_err(store_error)?;
        let sealed: Vec<u8> = row.try_get("sealed").map_err(store_error)?;
        Ok(Some(StoredParticipant {
            id: row.try_get("id").map_err(store_error)?,
            participant: open_participant(&sealed, &nik_digest, &self.sealer)?,
            updated_at: row.try_get("updated_at").map_err(store_error)?,
        }))
    }

    async fn count_participants(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM participants")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(count.max(0) as u64)
    }

    async fn begin_participant_import(&self) -> Result<SqliteImport, StoreError> {
        refuse_import_while_rotating(&self.sealer)?;
        let mut connection = self.pool.acquire().await.map_err(store_error)?;
        // An import changes its connection's settings (page cache, sorter): the connection is
        // closed afterwards, however the import ends, rather than returned to the pool with them.
        connection.close_on_drop();
        // An empty registry: a first load, its indexes built when it commits. Its sorter settings
        // can only be changed outside a transaction, so the question is asked before it begins.
        let empty: bool = sqlx::query_scalar(REGISTRY_EMPTY)
            .fetch_one(&mut *connection)
            .await
            .map_err(store_error)?;
        // A first load alone with the file writes through a rollback journal ([`ALONE_JOURNAL`]).
        // Not a re-import: it changes pages all over the file, and with a rollback journal each page
        // the cache evicts needs the journal synced first (a 10 M-row daily sync measured 162 s
        // against 139-152 s in WAL mode).
        let alone =
            self.alone && empty && take_file(&mut connection, self.timeouts.statement).await;
        if empty {
            sqlx::raw_sql(FIRST_LOAD_SETTINGS)
                .execute(&mut *connection)
                .await
                .map_err(store_error)?;
        }
        let mut tx = Transaction::begin(connection, Some("BEGIN IMMEDIATE".into_sql_str()))
            .await
            .map_err(store_error)?;
        let max_id: i64 = sqlx::query_scalar(MAX_ID)
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        // Still empty now that this import is the only writer: readers keep the indexed (empty)
        // table of their snapshot until the commit.
        let first_load = if empty && max_id == 0 {
            sqlx::raw_sql(DROP_LOOKUP_INDEXES)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            Some(FirstLoad::new())
        } else {
            // Lookup digests are random, so an import touches index pages all over the file; a
            // cache that holds the indexes of a few million participants keeps them off the disk
            // until commit. Bounded, so memory stays flat.
            sqlx::query(IMPORT_CACHE)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            None
        };
        Ok(SqliteImport {
            tx,
            sealer: self.sealer.clone(),
            max_id,
            first_load,
            back_to_wal: alone.then(|| self.pool.clone()),
        })
    }
}

/// What a first load alone with the file ([`SqliteStore::open_alone`]) writes through: a rollback
/// journal. In WAL mode every page of the import goes to the log first, is found there again
/// through the log's index whenever it is read back (each index build reads the whole table), and
/// is copied into the file by the checkpoint after the commit (a 10 M-row first load: 146 s in WAL
/// mode, 114 s with this alone; docs/benchmarks.md). With a rollback journal, pages the import adds beyond the file's old end
/// are written once, into the file, and only the few pages it changes are journaled. SQLite leaves
/// WAL mode only when no other connection has the file open, so a serving gerbang is never
/// affected: the import then runs in WAL mode as usual. Until it commits, other processes cannot
/// open the file (a `gerbang serve` started meanwhile stops with "database is locked"). A crash
/// leaves the journal beside the file, and whoever opens it next rolls the import back.
const ALONE_JOURNAL: &str = "PRAGMA journal_mode = DELETE";

/// Switches the file to a rollback journal if no other connection has it open; returns whether it
/// did. Asks without waiting long for other connections (200 ms), then restores the busy timeout.
async fn take_file(connection: &mut SqliteConnection, busy: std::time::Duration) -> bool {
    let _ = sqlx::query("PRAGMA busy_timeout = 200")
        .execute(&mut *connection)
        .await;
    let mode = sqlx::query_scalar::<_, String>(ALONE_JOURNAL)
        .fetch_one(&mut *connection)
        .await;
    let _ = sqlx::query(AssertSqlSafe(format!(
        "PRAGMA busy_timeout = {}",
        busy.as_millis()
    )))
    .execute(&mut *connection)
    .await;
    match mode {
        Ok(mode) => mode.eq_ignore_ascii_case("delete"),
        Err(error) => {
            tracing::debug!(error = %error, "another connection has the file open: the import stays in WAL mode");
            false
        }
    }
}

/// Completes `query` into the one that names, by their place in `rows` (NIK digest, content
/// digest), the rows the registry does not hold exactly (no row with that NIK and that content).
/// A daily sync repeats most of the registry, so asking for the rows that differ sends back a few
/// per cent of them instead of every stored pair: a result row costs the connection's thread a
/// hand-over to the import and two allocations. Each row is probed through the NIK index in the
/// order given (the plan is asserted by a test), so the table pages of a file imported in the same
/// order as before are read in order.
fn push_differing_rows<'a>(
    query: &mut QueryBuilder<Sqlite>,
    rows: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) {
    query.push("SELECT incoming.column3 FROM (");
    query.push_values(
        rows.enumerate(),
        |mut values, (position, (nik, content))| {
            values
                .push_bind(nik)
                .push_bind(content)
                .push_bind(position as i64);
        },
    );
    query.push(
        ") AS incoming WHERE NOT EXISTS (SELECT 1 FROM participants \
         WHERE participants.nik_digest = incoming.column1 \
         AND participants.content_digest = incoming.column2)",
    );
}

/// An import running in one SQLite write transaction.
#[derive(Debug)]
pub struct SqliteImport {
    tx: Transaction<'static, Sqlite>,
    sealer: Sealer,
    /// Largest participant id so far: tells inserted rows from updated ones.
    max_id: i64,
    /// Set when the import began on an empty registry.
    first_load: Option<FirstLoad>,
    /// Set when the import took the file alone ([`ALONE_JOURNAL`]): the pool whose next connection
    /// puts the file back in WAL mode after the commit.
    back_to_wal: Option<SqlitePool>,
}

impl SqliteImport {
    /// Upserts rows with one statement; returns how many were inserted and how many updated.
    ///
    /// Row ids are assigned `max(id) + 1` in insertion order and no one else writes during the
    /// import's `BEGIN IMMEDIATE` transaction, so the rows inserted are exactly the growth of the
    /// largest id; the others the statement changed were updated. (Cheaper than `RETURNING`, which
    /// sends a result row back for every written row.) `MAX(id)` is read again rather than taken from
    /// `last_insert_rowid()`, which a failed, rolled-back statement leaves pointing at rows that no
    /// longer exist.
    async fn upsert_rows(
        &mut self,
        rows: &[SealedParticipant],
        now: DateTime<Utc>,
        change: Change,
    ) -> Result<(u64, u64), sqlx::Error> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO participants (nik_digest, card_digest, kpj_digest, phone_digest, email_digest, \
             content_digest, sealed, status, created_at, updated_at) ",
        );
        query.push_values(rows, |mut values, row| {
            values
                .push_bind(row.nik_digest.clone())
                .push_bind(row.card_digest.clone())
                .push_bind(row.kpj_digest.clone())
                .push_bind(row.phone_digest.clone())
                .push_bind(row.email_digest.clone())
                .push_bind(row.content_digest.clone())
                .push_bind(row.sealed.clone())
                .push_bind(row.status)
                .push_bind(now)
                .push_bind(now);
        });
        query.push(change.on_conflict());
        let written = query.build().execute(&mut *self.tx).await?.rows_affected();
        let max_id: i64 = sqlx::query_scalar(MAX_ID).fetch_one(&mut *self.tx).await?;
        let inserted = (max_id - self.max_id).max(0) as u64;
        self.max_id = max_id;
        Ok((inserted, written.saturating_sub(inserted)))
    }

    /// Upserts a chunk of a re-import in two steps (see [`Change`]): new rows and changed records
    /// whose numbers stayed, then, only if some rows are left, the rest with their numbers. A row
    /// whose number belongs to another NIK fails the second statement; the chunk is then redone row
    /// by row so that only such rows are refused.
    async fn upsert_chunk(
        &mut self,
        chunk: &[SealedParticipant],
        now: DateTime<Utc>,
        outcome: &mut BatchOutcome,
    ) -> Result<(), sqlx::Error> {
        let attempted = chunk.len() as u64;
        // A failed statement undoes only itself: nothing of the chunk is written then.
        let (inserted, updated) = match self.upsert_rows(chunk, now, Change::Record).await {
            Ok(written) => written,
            Err(error) if conflict_of(&error).is_some() => (0, 0),
            Err(error) => return Err(error),
        };
        if inserted + updated == attempted {
            outcome.record(chunk.len(), inserted, updated);
            return Ok(());
        }
        // Rows the first statement wrote now hold what they are given: the second leaves them.
        match self.upsert_rows(chunk, now, Change::Everything).await {
            Ok((more_inserted, more_updated)) => {
                outcome.record(
                    chunk.len(),
                    inserted + more_inserted,
                    updated + more_updated,
                );
                return Ok(());
            }
            Err(error) if conflict_of(&error).is_some() => {}
            Err(error) => return Err(error),
        }
        let (mut inserted, mut updated, mut refused) = (inserted, updated, 0);
        for row in chunk {
            match self
                .upsert_rows(std::slice::from_ref(row), now, Change::Everything)
                .await
            {
                Ok((one_inserted, one_updated)) => {
                    inserted += one_inserted;
                    updated += one_updated;
                }
                Err(error) => {
                    let conflict = conflict_of(&error).ok_or(error)?;
                    refused += 1;
                    outcome.conflicts.push(RowConflict {
                        position: row.position,
                        conflict,
                    });
                }
            }
        }
        outcome.record(chunk.len() - refused, inserted, updated);
        Ok(())
    }
}

/// What a re-import's upsert changes in a row it finds stored under the same NIK with another
/// record.
///
/// SQLite rewrites an index's entry for every row an `UPDATE` sets the indexed column of, even to
/// the value it holds; setting the five lookup numbers of every changed row would move ten index
/// entries a row, each on a page of its own somewhere in a large file. Most changes in a daily sync
/// keep a participant's numbers (a status, a name), so those rows are written without touching an
/// index ([`Record`](Self::Record)), and only the rest with their numbers
/// ([`Everything`](Self::Everything)).
#[derive(Debug, Clone, Copy)]
enum Change {
    /// The record only, where the stored lookup numbers equal the row's; other rows are left.
    Record,
    /// The record and its lookup numbers.
    Everything,
}

impl Change {
    fn on_conflict(self) -> &'static str {
        match self {
            Change::Record => {
                " ON CONFLICT (nik_digest) DO UPDATE SET content_digest = excluded.content_digest, \
                 sealed = excluded.sealed, status = excluded.status, updated_at = excluded.updated_at, \
                 revision = participants.revision + 1 \
                 WHERE participants.content_digest <> excluded.content_digest \
                 AND participants.card_digest = excluded.card_digest \
                 AND participants.kpj_digest IS excluded.kpj_digest \
                 AND participants.phone_digest IS excluded.phone_digest \
                 AND participants.email_digest IS excluded.email_digest"
            }
            Change::Everything => {
                " ON CONFLICT (nik_digest) DO UPDATE SET card_digest = excluded.card_digest, \
                 kpj_digest = excluded.kpj_digest, phone_digest = excluded.phone_digest, \
                 email_digest = excluded.email_digest, content_digest = excluded.content_digest, \
                 sealed = excluded.sealed, status = excluded.status, updated_at = excluded.updated_at, \
                 revision = participants.revision + 1 \
                 WHERE participants.content_digest <> excluded.content_digest"
            }
        }
    }
}

impl SqliteImport {
    /// Appends rows of a first load with the ids given (no index to check or update). The rows are
    /// moved into the statement's arguments rather than copied (sqlx copies borrowed bytes).
    async fn append_rows(
        &mut self,
        first_id: i64,
        rows: impl IntoIterator<Item = SealedParticipant>,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO participants (id, nik_digest, card_digest, kpj_digest, phone_digest, \
             email_digest, content_digest, sealed, status, created_at, updated_at) ",
        );
        // The time as sqlx would write it, formatted once and shared by every row, as are the two
        // statuses.
        let stamp: Arc<str> = now
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
            .into();
        let statuses: [Arc<str>; 2] = ["active".into(), "inactive".into()];
        let status = |text: &str| {
            statuses
                .iter()
                .find(|shared| shared.as_ref() == text)
                .cloned()
                .unwrap_or_else(|| text.into())
        };
        let mut id = first_id;
        query.push_values(rows, |mut values, row| {
            values
                .push_bind(id)
                .push_bind(row.nik_digest)
                .push_bind(row.card_digest)
                .push_bind(row.kpj_digest)
                .push_bind(row.phone_digest)
                .push_bind(row.email_digest)
                .push_bind(row.content_digest)
                .push_bind(row.sealed)
                .push_bind(status(row.status))
                .push_bind(stamp.clone())
                .push_bind(stamp.clone());
            id += 1;
        });
        query.build().execute(&mut *self.tx).await.map(|_| ())
    }

    /// Builds a first load's indexes, settling first what the unique ones refuse
    /// ([`first_load`]).
    async fn build_lookup_indexes(
        &mut self,
        load: &FirstLoad,
    ) -> Result<CommitOutcome, sqlx::Error> {
        let mut outcome = CommitOutcome::default();
        let mut built = 0;
        for sql in UNIQUE_LOOKUP_INDEXES {
            match sqlx::query(sql).execute(&mut *self.tx).await {
                Ok(_) => built += 1,
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => break,
                Err(error) => return Err(error),
            }
        }
        if built < UNIQUE_LOOKUP_INDEXES.len() {
            let contested: Vec<ContestedRow> = sqlx::query_as::<
                _,
                (i64, Vec<u8>, Vec<u8>, Option<Vec<u8>>),
            >(first_load::CONTESTED)
            .fetch_all(&mut *self.tx)
            .await?
            .into_iter()
            .map(|(id, nik, card, kpj)| ContestedRow { id, nik, card, kpj })
            .collect();
            let settlement = first_load::settle(&contested);
            for ids in settlement.delete.chunks(first_load::IDS_PER_DELETE) {
                let mut delete =
                    QueryBuilder::<Sqlite>::new("DELETE FROM participants WHERE id IN ");
                delete.push_tuples(ids, |mut tuple, id| {
                    tuple.push_bind(*id);
                });
                delete.build().execute(&mut *self.tx).await?;
            }
            // With the NIK index built, no NIK repeats.
            let superseded = if built == 0 {
                sqlx::query(first_load::SUPERSEDED)
                    .execute(&mut *self.tx)
                    .await?
                    .rows_affected()
            } else {
                0
            };
            outcome = CommitOutcome {
                superseded: settlement.superseded + superseded,
                conflicts: settlement.conflicts(load),
            };
            for sql in UNIQUE_LOOKUP_INDEXES.into_iter().skip(built) {
                sqlx::query(sql).execute(&mut *self.tx).await?;
            }
        }
        for sql in SEARCH_INDEXES {
            sqlx::query(sql).execute(&mut *self.tx).await?;
        }
        Ok(outcome)
    }
}

impl ParticipantImport for SqliteImport {
    fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    fn is_first_load(&self) -> bool {
        self.first_load.is_some()
    }

    async fn find_unchanged(
        &mut self,
        rows: &[DigestedParticipant],
    ) -> Result<Vec<bool>, StoreError> {
        if self.first_load.is_some() {
            return Ok(vec![false; rows.len()]);
        }
        let mut unchanged = vec![true; rows.len()];
        for (chunk, flags) in rows
            .chunks(DIGESTS_PER_QUERY)
            .zip(unchanged.chunks_mut(DIGESTS_PER_QUERY))
        {
            let mut query = QueryBuilder::<Sqlite>::new("");
            push_differing_rows(
                &mut query,
                chunk
                    .iter()
                    .map(|row| (row.nik_digest(), row.content_digest())),
            );
            let differing: Vec<i64> = query
                .build_query_scalar()
                .fetch_all(&mut *self.tx)
                .await
                .map_err(store_error)?;
            for position in differing {
                if let Some(flag) = usize::try_from(position)
                    .ok()
                    .and_then(|at| flags.get_mut(at))
                {
                    *flag = false;
                }
            }
        }
        Ok(unchanged)
    }

    async fn upsert_sealed(
        &mut self,
        rows: Vec<SealedParticipant>,
        superseded: u64,
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome, StoreError> {
        let mut outcome = BatchOutcome {
            superseded,
            ..BatchOutcome::default()
        };
        if let Some(load) = self.first_load.as_mut() {
            let mut first_id = load.assign(&rows);
            let written = rows.len();
            let mut rows = rows.into_iter();
            while rows.len() > 0 {
                let chunk = rows.by_ref().take(ROWS_PER_STATEMENT);
                let size = chunk.len();
                self.append_rows(first_id, chunk, now)
                    .await
                    .map_err(store_error)?;
                first_id += size as i64;
            }
            outcome.record(written, written as u64, 0);
            return Ok(outcome);
        }
        // No savepoints: in SQLite a failed statement undoes only itself and the transaction goes
        // on, and a savepoint would copy every page the batch touches into a sub-journal.
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            self.upsert_chunk(chunk, now, &mut outcome)
                .await
                .map_err(store_error)?;
        }
        Ok(outcome)
    }

    async fn commit(mut self) -> Result<CommitOutcome, StoreError> {
        let outcome = match self.first_load.take() {
            Some(load) => self
                .build_lookup_indexes(&load)
                .await
                .map_err(store_error)?,
            None => CommitOutcome::default(),
        };
        // The connection closes now, settings and all.
        self.tx.commit().await.map_err(store_error)?;
        if let Some(pool) = self.back_to_wal {
            // A new connection sets WAL mode as it opens. The import is committed whatever happens
            // here; if this fails, the next start of gerbang sets it.
            if let Err(error) = pool.acquire().await {
                tracing::warn!(error = %error, "the import committed, but the file is still in rollback-journal mode until gerbang next opens it");
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The plan of the bundled SQLite for the re-import's question: the rows given are read in
    /// order and each probes the NIK index (a scan of the participants, or of the rows given per
    /// participant, would make a 10 M-row sync pathological).
    #[tokio::test]
    async fn the_rows_that_differ_are_found_through_the_nik_index_in_the_order_given() {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        MIGRATOR.run(&pool).await.unwrap();
        let digests: Vec<([u8; 16], [u8; 16])> =
            (0..3u8).map(|n| ([n; 16], [n + 100; 16])).collect();
        let mut query = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        push_differing_rows(
            &mut query,
            digests
                .iter()
                .map(|(nik, content)| (nik.as_slice(), content.as_slice())),
        );
        let plan: Vec<String> = query
            .build()
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        assert!(
            plan.iter()
                .any(|step| step
                    == "SEARCH participants USING INDEX participants_nik (nik_digest=?)"),
            "{plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step.starts_with("SCAN participants")),
            "{plan:?}"
        );
    }
}
