//! Staff and staff sessions on PostgreSQL. A write and its audit records are one transaction.

use chrono::{DateTime, Utc};
use gerbang_domain::account::TokenDigest;
use gerbang_domain::staff::{StaffMember, StaffSessionLife};
use gerbang_store::accounts::digest32;
use gerbang_store::audit::AuditRecord;
use gerbang_store::staff::{open_staff, seal_staff};
use gerbang_store::{
    StaffKey, StaffRefusal, StaffStore, StoreError, StoredStaff, StoredStaffSession,
};
use sqlx::Row;

use crate::verifications::{from_ms, ms};
use crate::{PostgresStore, store_error};

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl PostgresStore {
    fn staff_from_row(&self, row: &sqlx::postgres::PgRow) -> Result<StoredStaff, StoreError> {
        let name: String = row.try_get("name").map_err(store_error)?;
        let sealed: Vec<u8> = row.try_get("sealed").map_err(store_error)?;
        Ok(StoredStaff {
            id: row.try_get("id").map_err(store_error)?,
            version: row.try_get("version").map_err(store_error)?,
            member: open_staff(&name, &sealed, &self.sealer)?,
        })
    }
}

fn session_from_row(row: &sqlx::postgres::PgRow) -> Result<StoredStaffSession, StoreError> {
    let token: Vec<u8> = row.try_get("token_digest").map_err(store_error)?;
    let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(store_error)?;
    Ok(StoredStaffSession {
        token: TokenDigest::from_bytes(digest32(&token, "staff session token")?),
        staff: row.try_get("staff_id").map_err(store_error)?,
        life: StaffSessionLife {
            started_at: from_ms(row.try_get("started_at").map_err(store_error)?)?,
            last_used_at: from_ms(row.try_get("last_used_at").map_err(store_error)?)?,
            revoked_at: revoked_at.map(from_ms).transpose()?,
        },
    })
}

impl StaffStore for PostgresStore {
    async fn create_staff(
        &self,
        member: &StaffMember,
        audit: Vec<AuditRecord>,
    ) -> Result<Result<StoredStaff, StaffRefusal>, StoreError> {
        let sealed = seal_staff(member, &self.sealer)?;
        let now = ms(member.created_at);
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO staff (name, version, sealed, created_at, updated_at) \
             VALUES ($1, 1, $2, $3, $3) RETURNING id",
        )
        .bind(member.name.as_str())
        .bind(sealed)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok(id) => id,
            Err(error) if is_unique_violation(&error) => return Ok(Err(StaffRefusal::NameTaken)),
            Err(error) => return Err(store_error(error)),
        };
        crate::audit::append(&mut tx, &self.audit_chain(), audit).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Ok(StoredStaff {
            id,
            version: 1,
            member: member.clone(),
        }))
    }

    async fn find_staff(&self, key: StaffKey<'_>) -> Result<Option<StoredStaff>, StoreError> {
        let row = match key {
            StaffKey::Id(id) => {
                sqlx::query("SELECT id, name, version, sealed FROM staff WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
            }
            StaffKey::Name(name) => {
                sqlx::query("SELECT id, name, version, sealed FROM staff WHERE name = $1")
                    .bind(name.as_str())
                    .fetch_optional(&self.pool)
                    .await
            }
        }
        .map_err(store_error)?;
        row.map(|row| self.staff_from_row(&row)).transpose()
    }

    async fn list_staff(&self) -> Result<Vec<StoredStaff>, StoreError> {
        let rows = sqlx::query("SELECT id, name, version, sealed FROM staff ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(|row| self.staff_from_row(row)).collect()
    }

    async fn save_staff(
        &self,
        id: i64,
        version: i64,
        member: &StaffMember,
        audit: Vec<AuditRecord>,
    ) -> Result<Result<StoredStaff, StaffRefusal>, StoreError> {
        let sealed = seal_staff(member, &self.sealer)?;
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let written = sqlx::query(
            "UPDATE staff SET version = version + 1, sealed = $1, updated_at = $2 \
             WHERE id = $3 AND version = $4 AND name = $5",
        )
        .bind(sealed)
        .bind(ms(Utc::now()))
        .bind(id)
        .bind(version)
        .bind(member.name.as_str())
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if written.rows_affected() == 0 {
            return Ok(Err(StaffRefusal::Stale));
        }
        crate::audit::append(&mut tx, &self.audit_chain(), audit).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Ok(StoredStaff {
            id,
            version: version + 1,
            member: member.clone(),
        }))
    }

    async fn create_staff_session(&self, session: &StoredStaffSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO staff_sessions (token_digest, staff_id, started_at, last_used_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(session.token.as_bytes().as_slice())
        .bind(session.staff)
        .bind(ms(session.life.started_at))
        .bind(ms(session.life.last_used_at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn find_staff_session(
        &self,
        token: &TokenDigest,
    ) -> Result<Option<StoredStaffSession>, StoreError> {
        let row = sqlx::query(
            "SELECT token_digest, staff_id, started_at, last_used_at, revoked_at \
             FROM staff_sessions WHERE token_digest = $1",
        )
        .bind(token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn touch_staff_session(
        &self,
        token: &TokenDigest,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE staff_sessions SET last_used_at = GREATEST(last_used_at, $1) \
             WHERE token_digest = $2",
        )
        .bind(ms(at))
        .bind(token.as_bytes().as_slice())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn revoke_staff_sessions(
        &self,
        staff: i64,
        token: Option<&TokenDigest>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = match token {
            Some(token) => {
                sqlx::query(
                    "UPDATE staff_sessions SET revoked_at = $1 \
                     WHERE staff_id = $2 AND token_digest = $3 AND revoked_at IS NULL",
                )
                .bind(ms(at))
                .bind(staff)
                .bind(token.as_bytes().as_slice())
                .execute(&self.pool)
                .await
            }
            None => {
                sqlx::query(
                    "UPDATE staff_sessions SET revoked_at = $1 \
                     WHERE staff_id = $2 AND revoked_at IS NULL",
                )
                .bind(ms(at))
                .bind(staff)
                .execute(&self.pool)
                .await
            }
        }
        .map_err(store_error)?;
        Ok(done.rows_affected())
    }
}
