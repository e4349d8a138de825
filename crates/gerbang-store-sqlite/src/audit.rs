//! The audit log on SQLite. Appends run in the writer's batch (the one writer of the file), so the
//! head read and the rows written after it can never interleave with another append.

use gerbang_store::StoreError;
use gerbang_store::audit::{
    AuditChain, AuditEntry, AuditFilter, AuditHead, AuditRecord, AuditStore,
};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use crate::verifications::{from_ms, ms};
use crate::{SqliteStore, store_error};

/// Appends `records` after the head, inside the caller's transaction.
pub(crate) async fn append(
    connection: &mut SqliteConnection,
    chain: &AuditChain,
    records: Vec<AuditRecord>,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let (seq, mac): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, mac FROM audit_head WHERE one = 1")
            .fetch_one(&mut *connection)
            .await
            .map_err(store_error)?;
    let (rows, head) = chain.link(AuditHead::from_row(seq, &mac)?, records);
    for row in rows {
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, account_id, ticket, detail, prev_mac, mac) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    sqlx::query("UPDATE audit_head SET seq = ?, mac = ? WHERE one = 1")
        .bind(head.seq)
        .bind(head.mac.as_slice())
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    Ok(())
}

pub(crate) fn entry_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditEntry, StoreError> {
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

impl SqliteStore {
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
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let (chained,): (i64,) =
                        sqlx::query_as("SELECT seq FROM audit_head WHERE one = 1")
                            .fetch_one(&mut *connection)
                            .await
                            .map_err(store_error)?;
                    if chained != 0 {
                        return Ok(());
                    }
                    let rows = sqlx::query(AssertSqlSafe(format!(
                        "SELECT {ENTRY_COLUMNS} WHERE l.mac IS NULL ORDER BY l.seq"
                    )))
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    let records = rows
                        .iter()
                        .map(|row| entry_from_row(row).map(|entry| entry.record))
                        .collect::<Result<Vec<_>, _>>()?;
                    sqlx::query("DELETE FROM audit_log WHERE mac IS NULL")
                        .execute(&mut *connection)
                        .await
                        .map_err(store_error)?;
                    append(connection, &chain, records).await
                })
            })
            .await
    }
}

impl AuditStore for SqliteStore {
    async fn append_audit(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        let chain = self.audit_chain();
        self.writer
            .raw(move |connection| {
                Box::pin(async move { append(connection, &chain, records).await })
            })
            .await
    }

    async fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} WHERE l.seq > ? ORDER BY l.seq LIMIT ?"
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
                conditions.push(format!("{column} = ?"));
                values.push(value.clone());
            }
        }
        let condition = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        // Only column names we wrote go into the text; every value is bound.
        let sql = format!("SELECT {ENTRY_COLUMNS}{condition} ORDER BY l.seq DESC LIMIT ?");
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
