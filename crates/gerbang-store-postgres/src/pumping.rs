//! The SMS pumping brake's counts and brakes on PostgreSQL.

use chrono::{DateTime, Utc};
use gerbang_store::StoreError;
use gerbang_store::audit::AuditRecord;
use gerbang_store::pumping::{BlockCount, Brake, PumpingStore};
use sqlx::Row;

use crate::verifications::{from_ms, ms};
use crate::{PostgresStore, store_error};

const COLUMNS: &str = "block, braked_at, until, sent, verified, lifted_at, lifted_by";

fn brake_from_row(row: &sqlx::postgres::PgRow) -> Result<Brake, StoreError> {
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

impl PumpingStore for PostgresStore {
    async fn add_block_counts(&self, counts: Vec<BlockCount>) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut blocks = Vec::new();
        let mut minutes = Vec::new();
        let mut sent = Vec::new();
        let mut verified = Vec::new();
        for c in counts {
            blocks.push(c.block);
            minutes.push(ms(c.minute));
            sent.push(count(c.sent));
            verified.push(count(c.verified));
        }
        sqlx::query(
            "INSERT INTO block_counts (block, minute, sent, verified) \
             SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[]) \
             ON CONFLICT (block, minute) DO UPDATE SET sent = block_counts.sent + EXCLUDED.sent, \
             verified = block_counts.verified + EXCLUDED.verified",
        )
        .bind(blocks)
        .bind(minutes)
        .bind(sent)
        .bind(verified)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn block_totals(
        &self,
        blocks: Vec<String>,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT block, SUM(sent)::BIGINT, SUM(verified)::BIGINT FROM block_counts \
             WHERE minute >= $1 AND block = ANY($2) GROUP BY block",
        )
        .bind(ms(since))
        .bind(blocks)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(block, sent, verified)| (block, sent.max(0) as u64, verified.max(0) as u64))
            .collect())
    }

    async fn prune_block_counts(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM block_counts WHERE minute < $1")
            .bind(ms(before))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected())
    }

    async fn busiest_blocks(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT block, SUM(sent)::BIGINT, SUM(verified)::BIGINT FROM block_counts \
             WHERE minute >= $1 GROUP BY block ORDER BY SUM(sent) DESC, block LIMIT $2",
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
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // One brake per block at a time, whichever instance judges first.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("brake:{}", brake.block))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let holding: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM block_brakes WHERE block = $1 AND lifted_at IS NULL AND until > $2 LIMIT 1",
        )
        .bind(brake.block.as_str())
        .bind(ms(brake.braked_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        if holding.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO block_brakes (block, braked_at, until, sent, verified) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(brake.block.as_str())
        .bind(ms(brake.braked_at))
        .bind(ms(brake.until))
        .bind(count(brake.sent))
        .bind(count(brake.verified))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        crate::audit::append(&mut tx, &chain, audit).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }

    async fn brakes(
        &self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<Brake>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM block_brakes WHERE (lifted_at IS NULL AND until > $1) \
             OR braked_at >= $2 OR lifted_at >= $2 ORDER BY id DESC LIMIT 500"
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
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let lifted = sqlx::query(
            "UPDATE block_brakes SET lifted_at = $1, lifted_by = $2 \
             WHERE block = $3 AND lifted_at IS NULL AND until > $1",
        )
        .bind(ms(at))
        .bind(by)
        .bind(block)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?
        .rows_affected()
            > 0;
        if !lifted {
            return Ok(false);
        }
        crate::audit::append(&mut tx, &chain, audit).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }
}
