//! Accounts, sessions, flows and account events on SQLite. Reads use the pool; every write runs in
//! the writer's next batch (the one writer of the file), so it never waits on the write lock.
//!
//! Inside a batch a failed statement undoes only itself: a unique-index violation is answered as
//! [`AccountTaken`] without failing the other requests that share the commit.

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
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use crate::verifications::{from_ms, ms};
use crate::{SqliteStore, store_error};

/// The clash behind a unique-index violation, if that is what `error` is.
fn taken_of(error: &sqlx::Error) -> Option<AccountTaken> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            AccountTaken::from_violation(db.message())
        }
        _ => None,
    }
}

/// Writes `events` of account `account` to the audit log, inside the caller's transaction.
async fn insert_events(
    connection: &mut SqliteConnection,
    chain: &AuditChain,
    account: i64,
    events: &[AccountEvent],
) -> Result<(), StoreError> {
    let records = events.iter().map(|event| event.record(account)).collect();
    crate::audit::append(connection, chain, records).await
}

fn session_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<StoredSession, StoreError> {
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

impl AccountStore for SqliteStore {
    async fn create_account(
        &self,
        account: &Account,
        events: Vec<AccountEvent>,
    ) -> Result<Result<StoredAccount, AccountTaken>, StoreError> {
        let sealed = SealedAccount::seal(account, &self.sealer)?;
        let now = ms(account.created_at);
        let stored = account.clone();
        let public_id = new_public_id();
        let chain = self.audit_chain();
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let inserted = sqlx::query_scalar::<_, i64>(
                        "INSERT INTO accounts (version, public_id, nik_digest, email_digest, phone_digest, sealed, created_at, updated_at) \
                         VALUES (1, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    )
                    .bind(public_id.as_str())
                    .bind(sealed.nik_digest)
                    .bind(sealed.email_digest)
                    .bind(sealed.phone_digest)
                    .bind(sealed.sealed)
                    .bind(now)
                    .bind(now)
                    .fetch_one(&mut *connection)
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
                    insert_events(connection, &chain, id, &events).await?;
                    Ok(Ok(StoredAccount {
                        id,
                        public_id,
                        version: 1,
                        account: stored,
                    }))
                })
            })
            .await
    }

    async fn find_account(&self, key: AccountKey<'_>) -> Result<Option<StoredAccount>, StoreError> {
        let row = match (key, account_lookup(key, &self.sealer)) {
            (AccountKey::PublicId(public_id), _) => {
                sqlx::query(
                    "SELECT id, public_id, version, nik_digest, sealed FROM accounts WHERE public_id = ?",
                )
                .bind(public_id)
                .fetch_optional(&self.pool)
                .await
            }
            (AccountKey::Id(id), _) => {
                sqlx::query(
                    "SELECT id, public_id, version, nik_digest, sealed FROM accounts WHERE id = ?",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
            }
            (_, Some((column, [current, previous]))) => sqlx::query(AssertSqlSafe(format!(
                "SELECT id, public_id, version, nik_digest, sealed FROM accounts WHERE {column} IN (?, ?)"
            )))
            .bind(current)
            .bind(previous)
            .fetch_optional(&self.pool)
            .await,
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
        let now = ms(at);
        let stored = account.clone();
        let chain = self.audit_chain();
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let written = sqlx::query_scalar::<_, String>(
                        "UPDATE accounts SET version = version + 1, nik_digest = ?, email_digest = ?, \
                         phone_digest = ?, sealed = ?, updated_at = ? WHERE id = ? AND version = ? \
                         RETURNING public_id",
                    )
                    .bind(sealed.nik_digest)
                    .bind(sealed.email_digest)
                    .bind(sealed.phone_digest)
                    .bind(sealed.sealed)
                    .bind(now)
                    .bind(id)
                    .bind(version)
                    .fetch_optional(&mut *connection)
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
                    insert_events(connection, &chain, id, &events).await?;
                    Ok(Ok(StoredAccount {
                        id,
                        public_id,
                        version: version + 1,
                        account: stored,
                    }))
                })
            })
            .await
    }

    async fn account_events(&self, id: i64) -> Result<Vec<AccountEvent>, StoreError> {
        let rows: Vec<(i64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT at, actor, action, detail, ticket FROM audit_log WHERE account_id = ? ORDER BY seq",
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
        let session = session.clone();
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO account_sessions (token_digest, account_id, device_digest, started_at, \
                         last_used_at, revoked_at, step_ups) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(session.token.as_bytes().as_slice())
                    .bind(session.account)
                    .bind(session.device.as_bytes().as_slice())
                    .bind(ms(session.life.started_at))
                    .bind(ms(session.life.last_used_at))
                    .bind(session.life.revoked_at.map(ms))
                    .bind(encode_step_ups(&session.life))
                    .execute(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    Ok(())
                })
            })
            .await
    }

    async fn find_session(&self, token: &TokenDigest) -> Result<Option<StoredSession>, StoreError> {
        let row = sqlx::query("SELECT * FROM account_sessions WHERE token_digest = ?")
            .bind(token.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn save_session(&self, session: &StoredSession) -> Result<(), StoreError> {
        let session = session.clone();
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE account_sessions SET last_used_at = MAX(last_used_at, ?), \
                         revoked_at = COALESCE(revoked_at, ?), step_ups = ? WHERE token_digest = ?",
                    )
                    .bind(ms(session.life.last_used_at))
                    .bind(session.life.revoked_at.map(ms))
                    .bind(encode_step_ups(&session.life))
                    .bind(session.token.as_bytes().as_slice())
                    .execute(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    Ok(())
                })
            })
            .await
    }

    async fn revoke_sessions(
        &self,
        account: i64,
        device: Option<DeviceDigest>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let done = match device {
                        Some(device) => {
                            sqlx::query(
                                "UPDATE account_sessions SET revoked_at = ? \
                             WHERE account_id = ? AND device_digest = ? AND revoked_at IS NULL",
                            )
                            .bind(ms(at))
                            .bind(account)
                            .bind(device.as_bytes().as_slice())
                            .execute(&mut *connection)
                            .await
                        }
                        None => {
                            sqlx::query(
                                "UPDATE account_sessions SET revoked_at = ? \
                             WHERE account_id = ? AND revoked_at IS NULL",
                            )
                            .bind(ms(at))
                            .bind(account)
                            .execute(&mut *connection)
                            .await
                        }
                    }
                    .map_err(store_error)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }

    async fn put_flow(&self, flow: &StoredFlow) -> Result<(), StoreError> {
        let sealed = seal_flow(&self.sealer, flow)?;
        let token = flow.token;
        let expires_at = ms(flow.expires_at);
        // Flows live minutes; one that ended a day before this one's end is long dead.
        let swept_before = ms(flow.expires_at - chrono::Duration::days(1));
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM account_flows WHERE expires_at < ?")
                        .bind(swept_before)
                        .execute(&mut *connection)
                        .await
                        .map_err(store_error)?;
                    sqlx::query(
                        "INSERT INTO account_flows (token_digest, sealed, expires_at) VALUES (?, ?, ?) \
                         ON CONFLICT (token_digest) DO UPDATE SET sealed = excluded.sealed, \
                         expires_at = excluded.expires_at",
                    )
                    .bind(token.as_slice())
                    .bind(sealed)
                    .bind(expires_at)
                    .execute(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    Ok(())
                })
            })
            .await
    }

    async fn find_flow(
        &self,
        token: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<StoredFlow>, StoreError> {
        let row: Option<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT sealed, expires_at FROM account_flows WHERE token_digest = ? AND expires_at > ?",
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
        let token = *token;
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM account_flows WHERE token_digest = ?")
                        .bind(token.as_slice())
                        .execute(&mut *connection)
                        .await
                        .map_err(store_error)?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    async fn spend_captcha(
        &self,
        nonce: [u8; 16],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (expires_at, now) = (ms(expires_at), ms(now));
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    // A bounded sweep per new mark keeps the table at about the marks still alive.
                    sqlx::query(
                        "DELETE FROM captcha_nonces WHERE nonce IN \
                         (SELECT nonce FROM captcha_nonces WHERE expires_at <= ? LIMIT 64)",
                    )
                    .bind(now)
                    .execute(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    let done = sqlx::query(
                        "INSERT INTO captcha_nonces (nonce, expires_at) VALUES (?, ?) \
                         ON CONFLICT (nonce) DO NOTHING",
                    )
                    .bind(nonce.as_slice())
                    .bind(expires_at)
                    .execute(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }
}
