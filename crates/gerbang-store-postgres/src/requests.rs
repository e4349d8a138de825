//! Four-eyes requests on PostgreSQL; a write and its audit records are one transaction, and a
//! decision only happens when the stored state is the one the caller saw.

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
use crate::{PostgresStore, store_error};

const COLUMNS: &str = "id, number, account_id, ticket, details, state, requested_by, requested_at, \
                       expires_at, decided_by, decided_at, completed_at, verification_id";

impl PostgresStore {
    fn request_from_row(
        &self,
        row: &sqlx::postgres::PgRow,
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

impl RequestStore for PostgresStore {
    async fn insert_request(
        &self,
        request: &ContactChangeRequest,
        audit: Vec<AuditRecord>,
    ) -> Result<Option<i64>, StoreError> {
        let sealed = seal_details(&request.number, &request.details, &self.sealer)?;
        let chain = self.audit_chain();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO contact_change_requests (number, account_id, ticket, details, state, \
             requested_by, requested_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (number) DO NOTHING RETURNING id",
        )
        .bind(request.number.as_str())
        .bind(request.account)
        .bind(request.ticket.as_str())
        .bind(sealed)
        .bind(request.rules.state.as_str())
        .bind(request.rules.requested_by.as_str())
        .bind(ms(request.rules.requested_at))
        .bind(ms(request.rules.expires_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(id) = inserted else { return Ok(None) };
        crate::audit::append(&mut tx, &chain, audit).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some(id))
    }

    async fn find_request(&self, number: &str) -> Result<Option<ContactChangeRequest>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contact_change_requests WHERE number = $1"
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
             WHERE state = 'pending' AND expires_at > $1 ORDER BY requested_at LIMIT $2"
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
        let rules = &request.rules;
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let updated = sqlx::query(
            "UPDATE contact_change_requests SET state = $1, decided_by = $2, decided_at = $3, \
             completed_at = $4, verification_id = $5 WHERE id = $6 AND state = $7 \
             AND verification_id IS NOT DISTINCT FROM $8",
        )
        .bind(rules.state.as_str())
        .bind(rules.decided_by.as_deref())
        .bind(rules.decided_at.map(ms))
        .bind(rules.completed_at.map(ms))
        .bind(request.verification.map(|v| v.as_bytes().to_vec()))
        .bind(request.id)
        .bind(expected.as_str())
        .bind(seen.map(|v| v.as_bytes().to_vec()))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?
        .rows_affected()
            == 1;
        if !updated {
            return Ok(false);
        }
        crate::audit::append(&mut tx, &chain, audit).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }
}
