//! The audit log on PostgreSQL. An append locks the head row (`FOR UPDATE`) inside the caller's
//! transaction, so appends from any number of instances queue on it and the chain never forks.

use gerbang_store::StoreError;
use gerbang_store::audit::{
    AuditChain, AuditEntry, AuditFilter, AuditHead, AuditRecord, AuditStore,
};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::verifications::{from_ms, ms};
use crate::{PostgresStore, store_error};

/// Appends `records` after the head, inside the caller's transaction.
pub(crate) async fn append(
    connection: &mut PgConnection,
    chain: &AuditChain,
    records: Vec<AuditRecord>,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let (seq, mac): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, mac FROM audit_head WHERE one = 1 FOR UPDATE")
            .fetch_one(&mut *connection)
            .await
            .map_err(store_error)?;
    let (rows, head) = chain.link(AuditHead::from_row(seq, &mac)?, records);
    for row in rows {
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, account_id, ticket, detail, prev_mac, mac) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(row.seq)
        .bind(ms(row.record.at))
        .bind(row.record.actor)
        .bind(row.record.action)
        .bind(row.record.account)
        .bind(row.record.ticket)
        .bind(row.record.detail)
        .bind(row.prev_mac.as_slice())
        .bind(row.mac.as_slice())
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, mac = $2 WHERE one = 1")
        .bind(head.seq)
        .bind(head.mac.as_slice())
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    Ok(())
}

pub(crate) fn entry_from_row(row: &sqlx::postgres::PgRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: row.try_get("seq").map_err(store_error)?,
        record: AuditRecord {
            at: from_ms(row.try_get("at").map_err(store_error)?)?,
            actor: row.try_get("actor").map_err(store_error)?,
            action: row.try_get("action").map_err(store_error)?,
            account: row.try_get("account_id").map_err(store_error)?,
            ticket: row.try_get("ticket").map_err(store_error)?,
            detail: row.try_get("detail").map_err(store_error)?,
        },
        account_public_id: row.try_get("public_id").map_err(store_error)?,
        prev_mac: row
            .try_get::<Option<Vec<u8>>, _>("prev_mac")
            .map_err(store_error)?
            .unwrap_or_default(),
        mac: row
            .try_get::<Option<Vec<u8>>, _>("mac")
            .map_err(store_error)?
            .unwrap_or_default(),
    })
}

/// The columns [`entry_from_row`] reads, with the account's public id beside them.
pub(crate) const ENTRY_COLUMNS: &str = "l.seq, l.at, l.actor, l.action, l.account_id, l.ticket, \
     l.detail, l.prev_mac, l.mac, a.public_id FROM audit_log l LEFT JOIN accounts a ON a.id = l.account_id";

impl PostgresStore {
    pub(crate) fn audit_chain(&self) -> AuditChain {
        AuditChain::for_sealer(&self.sealer)
    }

    /// Chains the events carried over from before the audit log (migration 0010): they were copied
    /// without MACs because a migration does not hold the key. Only while nothing has been chained
    /// (the head at 0): a row without a MAC that appears later is tampering, reported by
    /// `gerbang audit verify`, never blessed by the next start.
    pub(crate) async fn chain_carried_over(&self) -> Result<(), StoreError> {
        let unchained: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM audit_log WHERE mac IS NULL)")
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
        if !unchained {
            return Ok(());
        }
        let chain = self.audit_chain();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // The head first: another instance opening at the same moment waits here, then finds
        // nothing left to chain.
        let chained: i64 =
            sqlx::query_scalar("SELECT seq FROM audit_head WHERE one = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
        if chained != 0 {
            return Ok(());
        }
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} WHERE l.mac IS NULL ORDER BY l.seq"
        )))
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        let records = rows
            .iter()
            .map(|row| entry_from_row(row).map(|entry| entry.record))
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query("DELETE FROM audit_log WHERE mac IS NULL")
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        append(&mut tx, &chain, records).await?;
        tx.commit().await.map_err(store_error)
    }
}

impl AuditStore for PostgresStore {
    async fn append_audit(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        append(&mut tx, &self.audit_chain(), records).await?;
        tx.commit().await.map_err(store_error)
    }

    async fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} WHERE l.seq > $1 ORDER BY l.seq LIMIT $2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn audit_head(&self) -> Result<AuditHead, StoreError> {
        let (seq, mac): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, mac FROM audit_head WHERE one = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
        AuditHead::from_row(seq, &mac)
    }
    async fn audit_recent(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        for (column, value) in [
            ("l.actor", &filter.actor),
            ("l.action", &filter.action),
            ("a.public_id", &filter.account),
            ("l.ticket", &filter.ticket),
        ] {
            if let Some(value) = value {
                values.push(value.clone());
                conditions.push(format!("{column} = ${}", values.len()));
            }
        }
        let condition = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        // Only column names we wrote go into the text; every value is bound.
        let sql = format!(
            "SELECT {ENTRY_COLUMNS}{condition} ORDER BY l.seq DESC LIMIT ${}",
            values.len() + 1
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(entry_from_row).collect()
    }
}
