//! Four-eyes requests on SQLite; a write and its audit records run in the writer's batch, and a
//! decision only when the stored state is the one the caller saw.

use chrono::{DateTime, Utc};
use gerbang_domain::approval::{FourEyes, RequestState};
use gerbang_domain::verification::VerificationId;
use gerbang_store::StoreError;
use gerbang_store::audit::AuditRecord;
use gerbang_store::requests::{
    ContactChangeRequest, RequestStore, open_details, parse_state, seal_details, verification_from,
};
use sqlx::Row;

use crate::verifications::{from_ms, ms};
use crate::{SqliteStore, store_error};

const COLUMNS: &str = "id, number, account_id, ticket, details, state, requested_by, requested_at, \
                       expires_at, decided_by, decided_at, completed_at, verification_id";

impl SqliteStore {
    fn request_from_row(
        &self,
        row: &sqlx::sqlite::SqliteRow,
    ) -> Result<ContactChangeRequest, StoreError> {
        let number: String = row.try_get("number").map_err(store_error)?;
        let details: Vec<u8> = row.try_get("details").map_err(store_error)?;
        let state: String = row.try_get("state").map_err(store_error)?;
        let decided_at: Option<i64> = row.try_get("decided_at").map_err(store_error)?;
        let completed_at: Option<i64> = row.try_get("completed_at").map_err(store_error)?;
        Ok(ContactChangeRequest {
            id: row.try_get("id").map_err(store_error)?,
            details: open_details(&number, &details, &self.sealer)?,
            number,
            account: row.try_get("account_id").map_err(store_error)?,
            ticket: row.try_get("ticket").map_err(store_error)?,
            rules: FourEyes {
                requested_by: row.try_get("requested_by").map_err(store_error)?,
                requested_at: from_ms(row.try_get("requested_at").map_err(store_error)?)?,
                expires_at: from_ms(row.try_get("expires_at").map_err(store_error)?)?,
                state: parse_state(&state)?,
                decided_by: row.try_get("decided_by").map_err(store_error)?,
                decided_at: decided_at.map(from_ms).transpose()?,
                completed_at: completed_at.map(from_ms).transpose()?,
            },
            verification: verification_from(row.try_get("verification_id").map_err(store_error)?)?,
        })
    }
}

impl RequestStore for SqliteStore {
    async fn insert_request(
        &self,
        request: &ContactChangeRequest,
        audit: Vec<AuditRecord>,
    ) -> Result<Option<i64>, StoreError> {
        let sealed = seal_details(&request.number, &request.details, &self.sealer)?;
        let chain = self.audit_chain();
        let request = request.clone();
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let inserted = sqlx::query_scalar::<_, i64>(
                        "INSERT INTO contact_change_requests (number, account_id, ticket, details, \
                         state, requested_by, requested_at, expires_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (number) DO NOTHING RETURNING id",
                    )
                    .bind(request.number.as_str())
                    .bind(request.account)
                    .bind(request.ticket.as_str())
                    .bind(sealed)
                    .bind(request.rules.state.as_str())
                    .bind(request.rules.requested_by.as_str())
                    .bind(ms(request.rules.requested_at))
                    .bind(ms(request.rules.expires_at))
                    .fetch_optional(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    if inserted.is_some() {
                        crate::audit::append(connection, &chain, audit).await?;
                    }
                    Ok(inserted)
                })
            })
            .await
    }

    async fn find_request(&self, number: &str) -> Result<Option<ContactChangeRequest>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contact_change_requests WHERE number = ?"
        )))
        .bind(number)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.map(|row| self.request_from_row(&row)).transpose()
    }

    async fn pending_requests(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ContactChangeRequest>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contact_change_requests \
             WHERE state = 'pending' AND expires_at > ? ORDER BY requested_at LIMIT ?"
        )))
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(|row| self.request_from_row(row)).collect()
    }

    async fn update_request(
        &self,
        request: &ContactChangeRequest,
        (expected, seen): (RequestState, Option<VerificationId>),
        audit: Vec<AuditRecord>,
    ) -> Result<bool, StoreError> {
        let chain = self.audit_chain();
        let request = request.clone();
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let rules = &request.rules;
                    let updated = sqlx::query(
                        "UPDATE contact_change_requests SET state = ?, decided_by = ?, \
                         decided_at = ?, completed_at = ?, verification_id = ? \
                         WHERE id = ? AND state = ? AND verification_id IS ?",
                    )
                    .bind(rules.state.as_str())
                    .bind(rules.decided_by.as_deref())
                    .bind(rules.decided_at.map(ms))
                    .bind(rules.completed_at.map(ms))
                    .bind(request.verification.map(|v| v.as_bytes().to_vec()))
                    .bind(request.id)
                    .bind(expected.as_str())
                    .bind(seen.map(|v| v.as_bytes().to_vec()))
                    .execute(&mut *connection)
                    .await
                    .map_err(store_error)?
                    .rows_affected()
                        == 1;
                    if updated {
                        crate::audit::append(connection, &chain, audit).await?;
                    }
                    Ok(updated)
                })
            })
            .await
    }
}
