//! Complaint tickets on PostgreSQL; a write and its audit records are one transaction.

use chrono::{DateTime, Utc};
use gerbang_domain::verification::VerificationId;
use gerbang_store::StoreError;
use gerbang_store::audit::AuditRecord;
use gerbang_store::tickets::{
    Ticket, TicketNote, TicketStore, open_note, open_text, seal_note, seal_text,
};
use sqlx::Row;

use crate::verifications::{from_ms, ms};
use crate::{PostgresStore, store_error};

const COLUMNS: &str = "id, number, account_id, opened_by, opened_at, closed_at, subject";

impl PostgresStore {
    fn ticket_from_row(&self, row: &sqlx::postgres::PgRow) -> Result<Ticket, StoreError> {
        let number: String = row.try_get("number").map_err(store_error)?;
        let subject: Vec<u8> = row.try_get("subject").map_err(store_error)?;
        let closed_at: Option<i64> = row.try_get("closed_at").map_err(store_error)?;
        Ok(Ticket {
            id: row.try_get("id").map_err(store_error)?,
            subject: open_text(&number, &subject, &self.sealer)?,
            number,
            account: row.try_get("account_id").map_err(store_error)?,
            opened_by: row.try_get("opened_by").map_err(store_error)?,
            opened_at: from_ms(row.try_get("opened_at").map_err(store_error)?)?,
            closed_at: closed_at.map(from_ms).transpose()?,
        })
    }
}

impl TicketStore for PostgresStore {
    async fn open_ticket(
        &self,
        number: &str,
        account: Option<i64>,
        by: &str,
        at: DateTime<Utc>,
        subject: &str,
        audit: Vec<AuditRecord>,
    ) -> Result<Option<Ticket>, StoreError> {
        let sealed = seal_text(number, subject, &self.sealer)?;
        let chain = self.audit_chain();
        let ticket = Ticket {
            id: 0,
            number: number.to_owned(),
            account,
            opened_by: by.to_owned(),
            opened_at: at,
            closed_at: None,
            subject: subject.to_owned(),
        };
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO tickets (number, account_id, opened_by, opened_at, subject) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (number) DO NOTHING RETURNING id",
        )
        .bind(ticket.number.as_str())
        .bind(ticket.account)
        .bind(ticket.opened_by.as_str())
        .bind(ms(ticket.opened_at))
        .bind(sealed)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(id) = inserted else { return Ok(None) };
        crate::audit::append(&mut tx, &chain, audit).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some(Ticket { id, ..ticket }))
    }

    async fn find_ticket(&self, number: &str) -> Result<Option<Ticket>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tickets WHERE number = $1"
        )))
        .bind(number)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.map(|row| self.ticket_from_row(&row)).transpose()
    }

    async fn account_tickets(&self, account: i64) -> Result<Vec<Ticket>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tickets WHERE account_id = $1 ORDER BY id DESC LIMIT 50"
        )))
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(|row| self.ticket_from_row(row)).collect()
    }

    async fn open_tickets(&self, limit: u32) -> Result<Vec<Ticket>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tickets WHERE closed_at IS NULL ORDER BY id DESC LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(|row| self.ticket_from_row(row)).collect()
    }

    async fn add_ticket_note(
        &self,
        ticket: i64,
        note: &TicketNote,
        link: Vec<VerificationId>,
        audit: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        let number: String = sqlx::query_scalar("SELECT number FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        let sealed = seal_note(&number, note, &self.sealer)?;
        let chain = self.audit_chain();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        sqlx::query("INSERT INTO ticket_notes (ticket_id, sealed) VALUES ($1, $2)")
            .bind(ticket)
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        for verification in link {
            sqlx::query(
                "INSERT INTO ticket_verifications (ticket_id, verification_id) \
                 VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(ticket)
            .bind(verification.as_bytes().as_slice().to_vec())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        crate::audit::append(&mut tx, &chain, audit).await?;
        tx.commit().await.map_err(store_error)
    }

    async fn ticket_notes(
        &self,
        ticket: i64,
    ) -> Result<(Vec<TicketNote>, Vec<VerificationId>), StoreError> {
        let number: String = sqlx::query_scalar("SELECT number FROM tickets WHERE id = $1")
            .bind(ticket)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        let notes: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed FROM ticket_notes WHERE ticket_id = $1 ORDER BY id")
                .bind(ticket)
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
        let linked: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT verification_id FROM ticket_verifications WHERE ticket_id = $1 ORDER BY verification_id",
        )
        .bind(ticket)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let notes = notes
            .iter()
            .map(|sealed| open_note(&number, sealed, &self.sealer))
            .collect::<Result<Vec<_>, _>>()?;
        let linked = linked
            .into_iter()
            .map(|bytes| {
                <[u8; 16]>::try_from(bytes.as_slice())
                    .map(VerificationId::from_bytes)
                    .map_err(|_| StoreError::Corrupt("a linked verification id".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((notes, linked))
    }
}
