//! Key rotation on SQLite (`gerbang_store::rotation`). Pages are re-sealed and the closing audit
//! entry appended inside the writer's batches, so they queue with every other write of the file.

use chrono::{DateTime, Utc};
use gerbang_store::StoreError;
use gerbang_store::audit::{AuditHead, AuditVerifier};
use gerbang_store::rotation::{
    KeyDecision, KeyRecord, KeyRotationStore, Page, RowKey, SealedRow, SealedTable, closing_record,
    judge_key, meta, reseal,
};
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection};

use crate::audit::{ENTRY_COLUMNS, append, entry_from_row};
use crate::{SqliteStore, store_error};

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

fn bind_key(query: Query<'_>, key: RowKey) -> Query<'_> {
    match key {
        RowKey::Id(id) => query.bind(id),
        RowKey::Bytes(bytes) => query.bind(bytes),
    }
}

async fn read_record(connection: &mut SqliteConnection) -> Result<KeyRecord, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM store_meta WHERE key IN (?, ?, ?)")
            .bind(meta::CURRENT)
            .bind(meta::PREVIOUS)
            .bind(meta::RETIRED)
            .fetch_all(&mut *connection)
            .await
            .map_err(store_error)?;
    let mut record = KeyRecord::default();
    for (key, value) in rows {
        match key.as_str() {
            meta::CURRENT => record.current = Some(value),
            meta::PREVIOUS => record.previous = Some(value),
            _ => record.retired = Some(value),
        }
    }
    Ok(record)
}

async fn reseal_page(
    connection: &mut SqliteConnection,
    sealer: &gerbang_store::Sealer,
    table: SealedTable,
    after: RowKey,
    limit: u32,
) -> Result<Page, StoreError> {
    // Digests are random, so a page touches index pages all over the file: the import's bounded
    // cache keeps them off the disk. Only `gerbang key rotate`'s own process runs pages, so this
    // writer connection serves nothing else.
    sqlx::query(crate::IMPORT_CACHE)
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    let spec = table.spec();
    let select = spec.page_sql(
        |column| format!("CAST({column} AS BLOB)"),
        |_| "?".to_owned(),
    );
    let rows = bind_key(sqlx::query(AssertSqlSafe(select)), after)
        .bind(i64::from(limit))
        .fetch_all(&mut *connection)
        .await
        .map_err(store_error)?;
    let mut page = Page {
        read: rows.len() as u64,
        ..Page::default()
    };
    let mut resealed = Vec::with_capacity(rows.len());
    for row in rows {
        let key = if spec.key_is_bytes {
            RowKey::Bytes(row.try_get(0).map_err(store_error)?)
        } else {
            RowKey::Id(row.try_get(0).map_err(store_error)?)
        };
        let sealed_row = SealedRow {
            key: key.clone(),
            context: row.try_get(1).map_err(store_error)?,
            sealed: row.try_get(2).map_err(store_error)?,
        };
        page.last = Some(key);
        if let Some(row) = reseal(table, sealer, sealed_row)
            .map_err(|error| StoreError::KeyRotation(format!("{}: {error}", table.as_str())))?
        {
            resealed.push(row);
        }
    }
    let Some(first) = resealed.first() else {
        return Ok(end_of_table(page, limit));
    };
    let columns: Vec<&str> = first.columns.iter().map(|(column, _)| *column).collect();
    for chunk in resealed.chunks(spec.rows_per_update(columns.len())) {
        let update = spec.update_sql(&columns, chunk.len(), |_| "?".to_owned());
        let mut query = sqlx::query(AssertSqlSafe(update));
        for row in chunk {
            query = bind_key(query, row.key.clone()).bind(row.sealed.clone());
            for (_, value) in &row.columns {
                query = query.bind(value.clone());
            }
            query = query.bind(row.old.clone());
        }
        let written = query
            .execute(&mut *connection)
            .await
            .map_err(store_error)?
            .rows_affected();
        page.resealed += written;
        page.skipped += chunk.len() as u64 - written.min(chunk.len() as u64);
    }
    Ok(end_of_table(page, limit))
}

/// A page shorter than asked for was the table's last.
fn end_of_table(mut page: Page, limit: u32) -> Page {
    if page.read < u64::from(limit) {
        page.last = None;
    }
    page
}

impl SqliteStore {
    /// Records the key's fingerprint on first use, records a rotation when the configured previous
    /// key is the recorded one, and refuses keys that fit neither ([`judge_key`]).
    pub(crate) async fn bind_key(&self) -> Result<(), StoreError> {
        // Read first and write only when needed: opening must not need the write lock, which a
        // running import holds.
        for _ in 0..3 {
            let record = self.key_record().await?;
            let decision = judge_key(&record, &self.sealer)?;
            let configured = self.sealer.fingerprint().as_str().to_owned();
            match decision {
                KeyDecision::Accept => return Ok(()),
                KeyDecision::Record => {
                    sqlx::query(
                        "INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(meta::CURRENT)
                    .bind(configured)
                    .execute(&self.pool)
                    .await
                    .map_err(store_error)?;
                }
                KeyDecision::BeginRotation => {
                    let previous = record.current.unwrap_or_default();
                    let mut tx = self
                        .pool
                        .begin_with("BEGIN IMMEDIATE")
                        .await
                        .map_err(store_error)?;
                    let moved =
                        sqlx::query("UPDATE store_meta SET value = ? WHERE key = ? AND value = ?")
                            .bind(&configured)
                            .bind(meta::CURRENT)
                            .bind(&previous)
                            .execute(&mut *tx)
                            .await
                            .map_err(store_error)?
                            .rows_affected();
                    if moved == 1 {
                        sqlx::query(
                            "INSERT INTO store_meta (key, value) VALUES (?, ?) \
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        )
                        .bind(meta::PREVIOUS)
                        .bind(&previous)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                    }
                    tx.commit().await.map_err(store_error)?;
                    if moved == 1 {
                        tracing::warn!(from = %previous, to = %configured, "key rotation begun: run `gerbang key rotate` once every instance has both keys");
                    }
                }
            }
        }
        Err(StoreError::KeyRotation(
            "the database's key record kept changing while gerbang opened it; start again".into(),
        ))
    }
}

impl KeyRotationStore for SqliteStore {
    async fn key_record(&self) -> Result<KeyRecord, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(store_error)?;
        read_record(&mut connection).await
    }

    async fn reseal_page(
        &self,
        table: SealedTable,
        after: RowKey,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let sealer = self.sealer.clone();
        self.writer
            .raw(move |connection| {
                Box::pin(async move { reseal_page(connection, &sealer, table, after, limit).await })
            })
            .await
    }

    async fn append_rotation_anchor(
        &self,
        verifier: AuditVerifier,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let chain = self.audit_chain();
        let sealer = self.sealer.clone();
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    // The writer's transaction is the log's lock on SQLite.
                    let (seq, mac): (i64, Vec<u8>) =
                        sqlx::query_as("SELECT seq, mac FROM audit_head WHERE one = 1")
                            .fetch_one(&mut *connection)
                            .await
                            .map_err(store_error)?;
                    let rows = sqlx::query(AssertSqlSafe(format!(
                        "SELECT {ENTRY_COLUMNS} WHERE l.seq > ? ORDER BY l.seq"
                    )))
                    .bind(verifier.checked())
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    let appended = rows
                        .iter()
                        .map(entry_from_row)
                        .collect::<Result<Vec<_>, _>>()?;
                    let (record, number) = closing_record(
                        verifier,
                        &appended,
                        AuditHead::from_row(seq, &mac)?,
                        at,
                        &sealer,
                    )?;
                    append(connection, &chain, vec![record]).await?;
                    Ok(number)
                })
            })
            .await
    }

    async fn finish_rotation(&self) -> Result<(), StoreError> {
        let previous = self
            .sealer
            .previous_fingerprint()
            .map(|fingerprint| fingerprint.as_str().to_owned())
            .ok_or_else(|| StoreError::KeyRotation("no rotation to finish".into()))?;
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let ended = sqlx::query("DELETE FROM store_meta WHERE key = ? AND value = ?")
                        .bind(meta::PREVIOUS)
                        .bind(&previous)
                        .execute(&mut *connection)
                        .await
                        .map_err(store_error)?
                        .rows_affected();
                    if ended != 1 {
                        return Err(StoreError::KeyRotation(format!(
                            "no rotation from key {previous} is running"
                        )));
                    }
                    sqlx::query(
                        "INSERT INTO store_meta (key, value) VALUES (?, ?) \
                         ON CONFLICT (key) DO UPDATE SET value = store_meta.value || ',' || excluded.value",
                    )
                    .bind(meta::RETIRED)
                    .bind(&previous)
                    .execute(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    Ok(())
                })
            })
            .await
    }
}
