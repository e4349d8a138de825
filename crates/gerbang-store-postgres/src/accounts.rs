//! Accounts, sessions, flows and account events on PostgreSQL. An account write is one transaction
//! (the account row and its events); a unique-index violation aborts it and is answered as
//! [`AccountTaken`]. The compare-and-set on `version` needs no lock: the `UPDATE … WHERE version`
//! of the loser of a race finds no row.

use chrono::{DateTime, Utc};
use gerbang_domain::account::{Account, DeviceDigest, SessionLife, TokenDigest};
use gerbang_store::accounts::{
    SealedAccount, account_lookup, decode_step_ups, digest32, encode_step_ups, new_public_id,
    open_account, open_flow, seal_flow,
};
use gerbang_store::audit::AuditChain;
use gerbang_store::{
    AccountEvent, AccountKey, AccountRefusal, AccountStore, AccountTaken, StoreError,
    StoredAccount, StoredFlow, StoredSession,
};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::verifications::{from_ms, ms};
use crate::{PostgresStore, store_error};

/// The clash behind a unique-index violation, if that is what `error` is.
fn taken_of(error: &sqlx::Error) -> Option<AccountTaken> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            AccountTaken::from_violation(db.constraint().unwrap_or_else(|| db.message()))
        }
        _ => None,
    }
}

/// Writes `events` of account `account` to the audit log, inside the caller's transaction.
async fn insert_events(
    connection: &mut PgConnection,
    chain: &AuditChain,
    account: i64,
    events: &[AccountEvent],
) -> Result<(), StoreError> {
    let records = events.iter().map(|event| event.record(account)).collect();
    crate::audit::append(connection, chain, records).await
}

fn session_from_row(row: &sqlx::postgres::PgRow) -> Result<StoredSession, StoreError> {
    let token: Vec<u8> = row.try_get("token_digest").map_err(store_error)?;
    let device: Vec<u8> = row.try_get("device_digest").map_err(store_error)?;
    let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(store_error)?;
    let step_ups: String = row.try_get("step_ups").map_err(store_error)?;
    Ok(StoredSession {
        token: TokenDigest::from_bytes(digest32(&token, "session token")?),
        account: row.try_get("account_id").map_err(store_error)?,
        device: DeviceDigest::from_bytes(digest32(&device, "session device")?),
        life: SessionLife {
            started_at: from_ms(row.try_get("started_at").map_err(store_error)?)?,
            last_used_at: from_ms(row.try_get("last_used_at").map_err(store_error)?)?,
            revoked_at: revoked_at.map(from_ms).transpose()?,
            step_ups: decode_step_ups(&step_ups)?,
        },
    })
}

impl AccountStore for PostgresStore {
    async fn create_account(
        &self,
        account: &Account,
        events: Vec<AccountEvent>,
    ) -> Result<Result<StoredAccount, AccountTaken>, StoreError> {
        let sealed = SealedAccount::seal(account, &self.sealer)?;
        let now = ms(account.created_at);
        let public_id = new_public_id();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO accounts (version, public_id, nik_digest, email_digest, phone_digest, sealed, created_at, updated_at) \
             VALUES (1, $6, $1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(sealed.nik_digest)
        .bind(sealed.email_digest)
        .bind(sealed.phone_digest)
        .bind(sealed.sealed)
        .bind(now)
        .bind(public_id.as_str())
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok(id) => id,
            Err(error) => {
                return match taken_of(&error) {
                    Some(taken) => Ok(Err(taken)),
                    None => Err(store_error(error)),
                };
            }
        };
        insert_events(&mut tx, &self.audit_chain(), id, &events).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Ok(StoredAccount {
            id,
            public_id,
            version: 1,
            account: account.clone(),
        }))
    }

    async fn find_account(&self, key: AccountKey<'_>) -> Result<Option<StoredAccount>, StoreError> {
        let row = match (key, account_lookup(key, &self.sealer)) {
            (AccountKey::PublicId(public_id), _) => {
                sqlx::query(
                    "SELECT id, public_id, version, nik_digest, sealed FROM accounts WHERE public_id = $1",
                )
                .bind(public_id)
                .fetch_optional(&self.pool)
                .await
            }
            (AccountKey::Id(id), _) => {
                sqlx::query("SELECT id, public_id, version, nik_digest, sealed FROM accounts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
            }
            (_, Some((column, [current, previous]))) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT id, public_id, version, nik_digest, sealed FROM accounts WHERE {column} IN ($1, $2)"
                )))
                .bind(current)
                .bind(previous)
                .fetch_optional(&self.pool)
                .await
            }
            (_, None) => return Ok(None),
        }
        .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let nik_digest: Vec<u8> = row.try_get("nik_digest").map_err(store_error)?;
        let sealed: Vec<u8> = row.try_get("sealed").map_err(store_error)?;
        Ok(Some(StoredAccount {
            id: row.try_get("id").map_err(store_error)?,
            public_id: row.try_get("public_id").map_err(store_error)?,
            version: row.try_get("version").map_err(store_error)?,
            account: open_account(&sealed, &nik_digest, &self.sealer)?,
        }))
    }

    async fn save_account(
        &self,
        id: i64,
        version: i64,
        at: DateTime<Utc>,
        account: &Account,
        events: Vec<AccountEvent>,
    ) -> Result<Result<StoredAccount, AccountRefusal>, StoreError> {
        let sealed = SealedAccount::seal(account, &self.sealer)?;
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let written = sqlx::query_scalar::<_, String>(
            "UPDATE accounts SET version = version + 1, nik_digest = $1, email_digest = $2, \
             phone_digest = $3, sealed = $4, updated_at = $5 WHERE id = $6 AND version = $7 \
             RETURNING public_id",
        )
        .bind(sealed.nik_digest)
        .bind(sealed.email_digest)
        .bind(sealed.phone_digest)
        .bind(sealed.sealed)
        .bind(ms(at))
        .bind(id)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await;
        let public_id = match written {
            Ok(Some(public_id)) => public_id,
            Ok(None) => return Ok(Err(AccountRefusal::Stale)),
            Err(error) => {
                return match taken_of(&error) {
                    Some(taken) => Ok(Err(AccountRefusal::Taken(taken))),
                    None => Err(store_error(error)),
                };
            }
        };
        insert_events(&mut tx, &self.audit_chain(), id, &events).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Ok(StoredAccount {
            id,
            public_id,
            version: version + 1,
            account: account.clone(),
        }))
    }

    async fn account_events(&self, id: i64) -> Result<Vec<AccountEvent>, StoreError> {
        let rows: Vec<(i64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT at, actor, action, detail, ticket FROM audit_log WHERE account_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|(at, actor, kind, detail, ticket)| {
                Ok(AccountEvent {
                    at: from_ms(at)?,
                    actor,
                    kind,
                    detail,
                    ticket,
                })
            })
            .collect()
    }

    async fn create_session(&self, session: &StoredSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO account_sessions (token_digest, account_id, device_digest, started_at, \
             last_used_at, revoked_at, step_ups) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session.token.as_bytes().as_slice())
        .bind(session.account)
        .bind(session.device.as_bytes().as_slice())
        .bind(ms(session.life.started_at))
        .bind(ms(session.life.last_used_at))
        .bind(session.life.revoked_at.map(ms))
        .bind(encode_step_ups(&session.life))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn find_session(&self, token: &TokenDigest) -> Result<Option<StoredSession>, StoreError> {
        let row = sqlx::query("SELECT * FROM account_sessions WHERE token_digest = $1")
            .bind(token.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn save_session(&self, session: &StoredSession) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE account_sessions SET last_used_at = GREATEST(last_used_at, $1), \
             revoked_at = COALESCE(revoked_at, $2), step_ups = $3 WHERE token_digest = $4",
        )
        .bind(ms(session.life.last_used_at))
        .bind(session.life.revoked_at.map(ms))
        .bind(encode_step_ups(&session.life))
        .bind(session.token.as_bytes().as_slice())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn revoke_sessions(
        &self,
        account: i64,
        device: Option<DeviceDigest>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE account_sessions SET revoked_at = $1 WHERE account_id = $2 \
             AND ($3::BYTEA IS NULL OR device_digest = $3) AND revoked_at IS NULL",
        )
        .bind(ms(at))
        .bind(account)
        .bind(device.map(|d| d.as_bytes().to_vec()))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected())
    }

    async fn put_flow(&self, flow: &StoredFlow) -> Result<(), StoreError> {
        let sealed = seal_flow(&self.sealer, flow)?;
        // Flows live minutes; one that ended a day before this one's end is long dead.
        let swept_before = ms(flow.expires_at - chrono::Duration::days(1));
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        sqlx::query("DELETE FROM account_flows WHERE expires_at < $1")
            .bind(swept_before)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query(
            "INSERT INTO account_flows (token_digest, sealed, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (token_digest) DO UPDATE SET sealed = excluded.sealed, \
             expires_at = excluded.expires_at",
        )
        .bind(flow.token.as_slice())
        .bind(sealed)
        .bind(ms(flow.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }

    async fn find_flow(
        &self,
        token: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<StoredFlow>, StoreError> {
        let row: Option<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT sealed, expires_at FROM account_flows WHERE token_digest = $1 AND expires_at > $2",
        )
        .bind(token.as_slice())
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some((sealed, expires_at)) = row else {
            return Ok(None);
        };
        Ok(Some(StoredFlow {
            token: *token,
            state: open_flow(&self.sealer, token, &sealed)?,
            expires_at: from_ms(expires_at)?,
        }))
    }

    async fn delete_flow(&self, token: &[u8; 32]) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM account_flows WHERE token_digest = $1")
            .bind(token.as_slice())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn spend_captcha(
        &self,
        nonce: [u8; 16],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // A bounded sweep per new mark keeps the table at about the marks still alive.
        sqlx::query(
            "DELETE FROM captcha_nonces WHERE nonce IN \
             (SELECT nonce FROM captcha_nonces WHERE expires_at <= $1 LIMIT 64 FOR UPDATE SKIP LOCKED)",
        )
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        let done = sqlx::query(
            "INSERT INTO captcha_nonces (nonce, expires_at) VALUES ($1, $2) \
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce.as_slice())
        .bind(ms(expires_at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }
}
