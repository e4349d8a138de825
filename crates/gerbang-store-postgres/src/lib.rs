//! The PostgreSQL implementation of gerbang's storage contracts, for several gerbang instances
//! sharing one database. Migrations are embedded from `migrations/`.
//!
//! Bulk upserts send whole columns as arrays through `UNNEST`, one statement per batch whatever its
//! size. A failed statement aborts a PostgreSQL transaction, so each batch runs inside a savepoint.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gerbang_store::first_load::{self, ContestedRow, FirstLoad};
use gerbang_store::participants::{lookup_digests, open_participant, refuse_import_while_rotating};
use gerbang_store::{
    BatchOutcome, CommitOutcome, DigestedParticipant, ParticipantConflict, ParticipantImport,
    ParticipantKey, ParticipantStore, RowConflict, SealedParticipant, Sealer, Store, StoreError,
    StoredParticipant, Timeouts,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};

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

/// A gerbang store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    sealer: Sealer,
    timeouts: Timeouts,
}

/// Converts a database error, in one place: connection trouble is `Unavailable`, the rest says what
/// the database said.
fn store_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
        {
            StoreError::Unavailable(db.to_string())
        }
        sqlx::Error::Migrate(e) => StoreError::Migration(e.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}

/// Applies pending migrations on `connection` without the statement timeout (building an index on
/// a big table may rightly take longer); returns the schema version now in force.
async fn run_migrations(connection: &mut PgConnection) -> Result<i64, StoreError> {
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    let migrated = MIGRATOR
        .run(&mut *connection)
        .await
        .map_err(|e| StoreError::Migration(e.to_string()));
    // Back to the timeout the connection was opened with, before the pool hands it out again.
    sqlx::query("RESET statement_timeout")
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    migrated?;
    Ok(MIGRATOR.iter().map(|m| m.version).max().unwrap_or_default())
}

/// The error of a database that did not answer within `limit`.
fn no_answer(limit: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "PostgreSQL did not answer within {} ms (storage.connect_timeout_ms)",
        limit.as_millis()
    ))
}

/// One connection, or [`StoreError::Unavailable`] when the server does not complete it (TCP, TLS,
/// start-up, authentication) within `limit`: a server that accepts connections and never answers
/// must not hang the caller.
async fn connect(options: &PgConnectOptions, limit: Duration) -> Result<PgConnection, StoreError> {
    match tokio::time::timeout(limit, PgConnection::connect_with(options)).await {
        Ok(connection) => connection.map_err(store_error),
        Err(_) => Err(StoreError::Unavailable(format!(
            "PostgreSQL accepted no connection within {} ms (storage.connect_timeout_ms): the server \
             at that address did not answer",
            limit.as_millis()
        ))),
    }
}

/// The conflict behind a unique-index violation, if that is what `error` is.
fn conflict_of(error: &sqlx::Error) -> Option<ParticipantConflict> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            ParticipantConflict::from_violation(db.constraint().unwrap_or_else(|| db.message()))
        }
        _ => None,
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`), applies pending migrations and checks that the
    /// personal-data key is the one the database was sealed with; the default [`Timeouts`].
    pub async fn open(url: &str, sealer: Sealer, max_connections: u32) -> Result<Self, StoreError> {
        Self::open_with(url, sealer, max_connections, Timeouts::default()).await
    }

    /// [`open`](Self::open) with the given timeouts: a server that does not complete a connection
    /// within `timeouts.connect` fails the open with [`StoreError::Unavailable`].
    pub async fn open_with(
        url: &str,
        sealer: Sealer,
        max_connections: u32,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // One direct connection first: a pool would retry until its timeout and then report only
        // "pool timed out", hiding the real cause (refused, unknown database, authentication). It
        // applies the migrations, which may rightly run longer than one statement may.
        let mut direct = connect(&options, timeouts.connect).await?;
        let migrated = run_migrations(&mut direct).await;
        direct.close().await.map_err(store_error)?;
        migrated?;
        let statement_ms = timeouts.statement.as_millis().max(1).to_string();
        let options = options.options([("statement_timeout", statement_ms.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(timeouts.connect)
            .connect_with(options)
            .await
            .map_err(store_error)?;
        let store = Self {
            pool,
            sealer,
            timeouts,
        };
        store.bind_key().await?;
        store.chain_carried_over().await?;
        Ok(store)
    }

    /// Applies pending migrations; returns the schema version now in force.
    pub async fn migrate(&self) -> Result<i64, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(store_error)?;
        run_migrations(&mut connection).await
    }
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let limit = self.timeouts.connect;
        // A server that stops answering leaves the query waiting on the socket for as long as TCP
        // keeps it open: bound it here, the statement timeout is the server's to enforce.
        match tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(done) => done.map(drop).map_err(store_error),
            Err(_) => Err(no_answer(limit)),
        }
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

impl ParticipantStore for PostgresStore {
    type Import = PostgresImport;

    async fn find_participant(
        &self,
        key: ParticipantKey<'_>,
    ) -> Result<Option<StoredParticipant>, StoreError> {
        let [current, previous] = lookup_digests(key, &self.sealer);
        let sql = match key {
            ParticipantKey::Nik(_) => {
                "SELECT id, nik_digest, sealed, updated_at FROM participants WHERE nik_digest IN ($1, $2)"
            }
            ParticipantKey::CardNumber(_) => {
                "SELECT id, nik_digest, sealed, updated_at FROM participants WHERE card_digest IN ($1, $2)"
            }
            ParticipantKey::KpjNumber(_) => {
                "SELECT id, nik_digest, sealed, updated_at FROM participants WHERE kpj_digest IN ($1, $2)"
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

    async fn begin_participant_import(&self) -> Result<PostgresImport, StoreError> {
        refuse_import_while_rotating(&self.sealer)?;
        // Asked outside the import's transaction, which must hold no lock on the table before it
        // asks for the exclusive one: two imports that both held a shared lock would deadlock.
        let empty: bool = sqlx::query_scalar(REGISTRY_EMPTY)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        // `COPY … FREEZE` refuses to run in a transaction with an older snapshot, which a server
        // defaulting to REPEATABLE READ would give it.
        let tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(store_error)?;
        let mut import = PostgresImport {
            tx,
            sealer: self.sealer.clone(),
            first_load: None,
        };
        if empty {
            import
                .begin_first_load_if_still_empty()
                .await
                .map_err(store_error)?;
        }
        Ok(import)
    }
}

/// An import running in one PostgreSQL transaction.
#[derive(Debug)]
pub struct PostgresImport {
    tx: Transaction<'static, Postgres>,
    sealer: Sealer,
    /// Set when the import began on an empty registry.
    first_load: Option<FirstLoad>,
}

/// The registry's unique lookups as migration 0001 creates them (the names tell a conflict's
/// number), in the order a first load builds them.
const UNIQUE_LOOKUPS: [&str; 3] = [
    "ALTER TABLE participants ADD CONSTRAINT participants_nik_digest_key UNIQUE (nik_digest)",
    "ALTER TABLE participants ADD CONSTRAINT participants_card_digest_key UNIQUE (card_digest)",
    "ALTER TABLE participants ADD CONSTRAINT participants_kpj_digest_key UNIQUE (kpj_digest)",
];
const SEARCH_INDEXES: [&str; 2] = [
    "CREATE INDEX participants_phone ON participants (phone_digest) WHERE phone_digest IS NOT NULL",
    "CREATE INDEX participants_email ON participants (email_digest) WHERE email_digest IS NOT NULL",
];
const DROP_LOOKUPS: [&str; 2] = [
    "ALTER TABLE participants DROP CONSTRAINT participants_nik_digest_key, \
     DROP CONSTRAINT participants_card_digest_key, DROP CONSTRAINT participants_kpj_digest_key",
    "DROP INDEX participants_phone, participants_email",
];
const REGISTRY_EMPTY: &str = "SELECT NOT EXISTS (SELECT 1 FROM participants)";

/// A first load's rows, in `COPY`'s binary format.
const COPY_ROWS: &str = "COPY participants (id, nik_digest, card_digest, kpj_digest, phone_digest, \
    email_digest, content_digest, sealed, status, created_at, updated_at) FROM STDIN (FORMAT binary, FREEZE)";

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Rows of a first load in `COPY`'s binary format: the header, one tuple per row, the trailer.
fn copy_rows(first_id: i64, rows: &[SealedParticipant], now: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + rows.len() * 512);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension
    let micros = (now.timestamp_micros() - POSTGRES_EPOCH_MICROS).to_be_bytes();
    let field = |out: &mut Vec<u8>, value: Option<&[u8]>| match value {
        Some(bytes) => {
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    };
    for (id, row) in (first_id..).zip(rows) {
        out.extend_from_slice(&11i16.to_be_bytes());
        field(&mut out, Some(&id.to_be_bytes()));
        field(&mut out, Some(&row.nik_digest));
        field(&mut out, Some(&row.card_digest));
        field(&mut out, row.kpj_digest.as_deref());
        field(&mut out, row.phone_digest.as_deref());
        field(&mut out, row.email_digest.as_deref());
        field(&mut out, Some(&row.content_digest));
        field(&mut out, Some(&row.sealed));
        field(&mut out, Some(row.status.as_bytes()));
        field(&mut out, Some(&micros));
        field(&mut out, Some(&micros));
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// The rows of an import batch the registry holds exactly, by their 1-based place in the batch.
const UNCHANGED: &str = "\
SELECT t.i FROM UNNEST($1::bytea[], $2::bytea[]) WITH ORDINALITY AS t(n, d, i) \
JOIN participants AS p ON p.nik_digest = t.n AND p.content_digest = t.d";

const UPSERT: &str = "\
INSERT INTO participants (nik_digest, card_digest, kpj_digest, phone_digest, email_digest, content_digest, \
                          sealed, status, created_at, updated_at) \
SELECT n, c, k, p, e, d, s, st, $9, $9 \
FROM UNNEST($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[], $8::text[]) \
     AS t(n, c, k, p, e, d, s, st) \
ON CONFLICT (nik_digest) DO UPDATE SET card_digest = excluded.card_digest, kpj_digest = excluded.kpj_digest, \
    phone_digest = excluded.phone_digest, email_digest = excluded.email_digest, \
    content_digest = excluded.content_digest, sealed = excluded.sealed, status = excluded.status, \
    updated_at = excluded.updated_at, revision = participants.revision + 1 \
WHERE participants.content_digest <> excluded.content_digest \
RETURNING revision";

impl PostgresImport {
    async fn execute(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        sqlx::query(sql).execute(&mut *self.tx).await.map(|_| ())
    }

    /// Upserts rows in one statement; returns each written row's revision (1 = inserted).
    async fn upsert_rows(
        &mut self,
        rows: &[SealedParticipant],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, sqlx::Error> {
        let column = |f: fn(&SealedParticipant) -> Vec<u8>| rows.iter().map(f).collect::<Vec<_>>();
        let optional =
            |f: fn(&SealedParticipant) -> Option<Vec<u8>>| rows.iter().map(f).collect::<Vec<_>>();
        sqlx::query_scalar(UPSERT)
            .bind(column(|r| r.nik_digest.clone()))
            .bind(column(|r| r.card_digest.clone()))
            .bind(optional(|r| r.kpj_digest.clone()))
            .bind(optional(|r| r.phone_digest.clone()))
            .bind(optional(|r| r.email_digest.clone()))
            .bind(column(|r| r.content_digest.clone()))
            .bind(column(|r| r.sealed.clone()))
            .bind(
                rows.iter()
                    .map(|r| r.status.to_owned())
                    .collect::<Vec<String>>(),
            )
            .bind(now)
            .fetch_all(&mut *self.tx)
            .await
    }
}

/// Rows of a `RETURNING revision` that were inserted (revision 1) and updated (more).
fn inserted(revisions: &[i64]) -> u64 {
    revisions.iter().filter(|r| **r == 1).count() as u64
}

fn updated(revisions: &[i64]) -> u64 {
    revisions.iter().filter(|r| **r > 1).count() as u64
}

impl PostgresImport {
    /// Makes this import a first load if the registry is still empty once this import holds it:
    /// takes the table for itself (a lookup waits until the commit) and drops the lookup indexes.
    /// The exclusive lock is taken in a savepoint, so that finding the registry filled meanwhile by
    /// another import gives it back at once (a rolled-back savepoint releases its locks).
    async fn begin_first_load_if_still_empty(&mut self) -> Result<(), sqlx::Error> {
        self.execute("SAVEPOINT first_load").await?;
        self.execute("LOCK TABLE participants IN ACCESS EXCLUSIVE MODE")
            .await?;
        let still_empty: bool = sqlx::query_scalar(REGISTRY_EMPTY)
            .fetch_one(&mut *self.tx)
            .await?;
        if !still_empty {
            return self.execute("ROLLBACK TO SAVEPOINT first_load").await;
        }
        self.execute("RELEASE SAVEPOINT first_load").await?;
        // Emptied again in this transaction (it holds nothing), so that `COPY … FREEZE` may write
        // the rows already frozen: no reader or vacuum rewrites 280 million fresh rows later.
        self.execute("TRUNCATE participants").await?;
        // Building five indexes over a census may take longer than a request may.
        self.execute("SET LOCAL statement_timeout = 0").await?;
        self.execute("SET LOCAL maintenance_work_mem = '256MB'")
            .await?;
        for sql in DROP_LOOKUPS {
            self.execute(sql).await?;
        }
        self.first_load = Some(FirstLoad::new());
        Ok(())
    }

    /// Builds a first load's indexes, settling first what the unique ones refuse
    /// ([`first_load`]). A failed build aborts only its savepoint.
    async fn build_lookup_indexes(
        &mut self,
        load: &FirstLoad,
    ) -> Result<CommitOutcome, sqlx::Error> {
        let mut outcome = CommitOutcome::default();
        let mut built = 0;
        for sql in UNIQUE_LOOKUPS {
            self.execute("SAVEPOINT lookup").await?;
            match sqlx::query(sql).execute(&mut *self.tx).await {
                Ok(_) => {
                    self.execute("RELEASE SAVEPOINT lookup").await?;
                    built += 1;
                }
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    self.execute("ROLLBACK TO SAVEPOINT lookup").await?;
                    self.execute("RELEASE SAVEPOINT lookup").await?;
                    break;
                }
                Err(error) => return Err(error),
            }
        }
        if built < UNIQUE_LOOKUPS.len() {
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
                sqlx::query("DELETE FROM participants WHERE id = ANY($1)")
                    .bind(ids)
                    .execute(&mut *self.tx)
                    .await?;
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
            for sql in UNIQUE_LOOKUPS.into_iter().skip(built) {
                self.execute(sql).await?;
            }
        }
        for sql in SEARCH_INDEXES {
            self.execute(sql).await?;
        }
        if load.last_id() > 0 {
            // The ids were given, not drawn: the next insert must draw past them.
            sqlx::query("SELECT setval(pg_get_serial_sequence('participants', 'id'), $1)")
                .bind(load.last_id())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(outcome)
    }
}

impl ParticipantImport for PostgresImport {
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
        let mut unchanged = vec![false; rows.len()];
        if self.first_load.is_some() || rows.is_empty() {
            return Ok(unchanged);
        }
        // A read, where an upsert of an unchanged row would lock it and so rewrite its page.
        let found: Vec<i64> = sqlx::query_scalar(UNCHANGED)
            .bind(rows.iter().map(|r| r.nik_digest()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.content_digest()).collect::<Vec<_>>())
            .fetch_all(&mut *self.tx)
            .await
            .map_err(store_error)?;
        for ordinal in found {
            if let Some(row) = usize::try_from(ordinal - 1)
                .ok()
                .and_then(|at| unchanged.get_mut(at))
            {
                *row = true;
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
            let data = copy_rows(load.assign(&rows), &rows, now);
            let mut copy = self.tx.copy_in_raw(COPY_ROWS).await.map_err(store_error)?;
            copy.send(data).await.map_err(store_error)?;
            copy.finish().await.map_err(store_error)?;
            outcome.record(rows.len(), rows.len() as u64, 0);
            return Ok(outcome);
        }
        self.execute("SAVEPOINT batch").await.map_err(store_error)?;
        match self.upsert_rows(&rows, now).await {
            Ok(revisions) => {
                self.execute("RELEASE SAVEPOINT batch")
                    .await
                    .map_err(store_error)?;
                outcome.record(rows.len(), inserted(&revisions), updated(&revisions));
                return Ok(outcome);
            }
            Err(error) if conflict_of(&error).is_some() => {
                self.execute("ROLLBACK TO SAVEPOINT batch")
                    .await
                    .map_err(store_error)?;
                self.execute("RELEASE SAVEPOINT batch")
                    .await
                    .map_err(store_error)?;
            }
            Err(error) => return Err(store_error(error)),
        }
        // A unique number in the batch belongs to someone else: redo it row by row so that only the
        // conflicting rows are refused.
        for row in &rows {
            self.execute("SAVEPOINT row").await.map_err(store_error)?;
            match self.upsert_rows(std::slice::from_ref(row), now).await {
                Ok(revisions) => {
                    self.execute("RELEASE SAVEPOINT row")
                        .await
                        .map_err(store_error)?;
                    outcome.record(1, inserted(&revisions), updated(&revisions));
                }
                Err(error) => {
                    let conflict = conflict_of(&error).ok_or_else(|| store_error(error))?;
                    self.execute("ROLLBACK TO SAVEPOINT row")
                        .await
                        .map_err(store_error)?;
                    self.execute("RELEASE SAVEPOINT row")
                        .await
                        .map_err(store_error)?;
                    outcome.conflicts.push(RowConflict {
                        position: row.position,
                        conflict,
                    });
                }
            }
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
        self.tx.commit().await.map_err(store_error)?;
        Ok(outcome)
    }
}
