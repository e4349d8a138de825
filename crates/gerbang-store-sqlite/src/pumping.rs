//! The SMS pumping brake's counts and brakes on SQLite.

use chrono::{DateTime, Utc};
use gerbang_store::StoreError;
use gerbang_store::audit::AuditRecord;
use gerbang_store::pumping::{BlockCount, Brake, PumpingStore};
use sqlx::Row;

use crate::verifications::{from_ms, ms};
use crate::{SqliteStore, store_error};

const COLUMNS: &str = "block, braked_at, until, sent, verified, lifted_at, lifted_by";

fn brake_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Brake, StoreError> {
    let lifted_at: Option<i64> = row.try_get("lifted_at").map_err(store_error)?;
    let sent: i64 = row.try_get("sent").map_err(store_error)?;
    let verified: i64 = row.try_get("verified").map_err(store_error)?;
    Ok(Brake {
        block: row.try_get("block").map_err(store_error)?,
        braked_at: from_ms(row.try_get("braked_at").map_err(store_error)?)?,
        until: from_ms(row.try_get("until").map_err(store_error)?)?,
        sent: sent.max(0) as u64,
        verified: verified.max(0) as u64,
        lifted_at: lifted_at.map(from_ms).transpose()?,
        lifted_by: row.try_get("lifted_by").map_err(store_error)?,
    })
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PumpingStore for SqliteStore {
    async fn add_block_counts(&self, counts: Vec<BlockCount>) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    for c in counts {
                        sqlx::query(
                            "INSERT INTO block_counts (block, minute, sent, verified) VALUES (?, ?, ?, ?) \
                             ON CONFLICT (block, minute) DO UPDATE SET sent = block_counts.sent + excluded.sent, \
                             verified = block_counts.verified + excluded.verified",
                        )
                        .bind(c.block.as_str())
                        .bind(ms(c.minute))
                        .bind(count(c.sent))
                        .bind(count(c.verified))
                        .execute(&mut *connection)
                        .await
                        .map_err(store_error)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn block_totals(
        &self,
        blocks: Vec<String>,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let mut totals = Vec::new();
        for chunk in blocks.chunks(200) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT block, CAST(SUM(sent) AS BIGINT), CAST(SUM(verified) AS BIGINT) FROM block_counts \
                 WHERE minute >= ? AND block IN ({marks}) GROUP BY block"
            );
            let mut query =
                sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(sql)).bind(ms(since));
            for block in chunk {
                query = query.bind(block.as_str());
            }
            for (block, sent, verified) in query.fetch_all(&self.pool).await.map_err(store_error)? {
                totals.push((block, sent.max(0) as u64, verified.max(0) as u64));
            }
        }
        Ok(totals)
    }

    async fn prune_block_counts(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM block_counts WHERE minute < ?")
                        .bind(ms(before))
                        .execute(&mut *connection)
                        .await
                        .map_err(store_error)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }

    async fn busiest_blocks(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT block, CAST(SUM(sent) AS BIGINT), CAST(SUM(verified) AS BIGINT) FROM block_counts \
             WHERE minute >= ?1 GROUP BY block ORDER BY SUM(sent) DESC, block LIMIT ?2",
        )
        .bind(ms(since))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(block, sent, verified)| (block, sent.max(0) as u64, verified.max(0) as u64))
            .collect())
    }

    async fn brake_block(
        &self,
        brake: &Brake,
        audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let chain = self.audit_chain();
        let brake = brake.clone();
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let holding: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM block_brakes WHERE block = ? AND lifted_at IS NULL AND until > ? LIMIT 1",
                    )
                    .bind(brake.block.as_str())
                    .bind(ms(brake.braked_at))
                    .fetch_optional(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    if holding.is_some() {
                        return Ok(false);
                    }
                    sqlx::query(
                        "INSERT INTO block_brakes (block, braked_at, until, sent, verified) VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(brake.block.as_str())
                    .bind(ms(brake.braked_at))
                    .bind(ms(brake.until))
                    .bind(count(brake.sent))
                    .bind(count(brake.verified))
                    .execute(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    crate::audit::append(connection, &chain, audit).await?;
                    Ok(true)
                })
            })
            .await
    }

    async fn brakes(
        &self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<Brake>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM block_brakes WHERE (lifted_at IS NULL AND until > ?1) \
             OR braked_at >= ?2 OR lifted_at >= ?2 ORDER BY id DESC LIMIT 500"
        )))
        .bind(ms(now))
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(brake_from_row).collect()
    }

    async fn lift_brake(
        &self,
        block: &str,
        by: &str,
        at: DateTime<Utc>,
        audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let chain = self.audit_chain();
        let (block, by) = (block.to_owned(), by.to_owned());
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let lifted = sqlx::query(
                        "UPDATE block_brakes SET lifted_at = ?, lifted_by = ? \
                         WHERE block = ? AND lifted_at IS NULL AND until > ?",
                    )
                    .bind(ms(at))
                    .bind(by.as_str())
                    .bind(block.as_str())
                    .bind(ms(at))
                    .execute(&mut *connection)
                    .await
                    .map_err(store_error)?
                    .rows_affected()
                        > 0;
                    if lifted {
                        crate::audit::append(connection, &chain, audit).await?;
                    }
                    Ok(lifted)
                })
            })
            .await
    }
}
