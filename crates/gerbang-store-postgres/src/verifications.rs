//! Verifications, rate limits and the outbox on PostgreSQL, for several gerbang instances at once.
//!
//! A transaction locks what it decides on: the verification row (`FOR UPDATE`) and then the rate-limit
//! rows, always in key order so two transactions never wait on each other in a cycle. Rate-limit rows
//! are created empty first (`ON CONFLICT DO NOTHING`) so there is always a row to lock. Workers claim
//! outbox messages with `FOR UPDATE SKIP LOCKED`. Commits are synchronous (PostgreSQL's default).

use chrono::{DateTime, Duration, Utc};
use gerbang_domain::Nik;
use gerbang_domain::delivery::receipt::normalise_message_id;
use gerbang_domain::verification::{Verification, VerificationId};
use gerbang_store::verifications::{
    ATTEMPT_COLUMNS, AttemptColumns, CANCELLED, SUPERSEDED, apply_handoffs, attempt_from_row,
    decode_rate_state, encode_rate_state, nik_digests, open_message, open_verification,
    open_verifications_for_nik, seal_message, seal_verification, verification_nik_digest,
};
use gerbang_store::{
    Changes, ClaimedMessage, DeliveryAttempt, InboxMessage, MessageOutcome, QueuePosition, RateKey,
    ReceiptUpdate, Sealer, Snapshot, StoreError, VerificationStore,
};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::{PostgresStore, store_error};

pub(crate) fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_ms(value: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(value)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {value} out of range")))
}

/// The cleanup horizon of a verification: its creation plus a day covers every code it can hold.
fn horizon(verification: &Verification) -> DateTime<Utc> {
    verification.created_at + Duration::days(1)
}

async fn load_verification(
    connection: &mut PgConnection,
    sealer: &Sealer,
    id: &VerificationId,
    lock: bool,
) -> Result<Option<Verification>, StoreError> {
    let sql = if lock {
        "SELECT body FROM verifications WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT body FROM verifications WHERE id = $1"
    };
    let row = sqlx::query(sql)
        .bind(id.as_bytes().as_slice())
        .fetch_optional(&mut *connection)
        .await
        .map_err(store_error)?;
    row.map(|row| {
        let body: Vec<u8> = row.try_get(0).map_err(store_error)?;
        open_verification(sealer, id.as_bytes(), &body)
    })
    .transpose()
}

async fn save_verification(
    connection: &mut PgConnection,
    sealer: &Sealer,
    verification: &Verification,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let body = seal_verification(sealer, verification)?;
    sqlx::query(
        "INSERT INTO verifications (id, body, nik_digest, expires_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, nik_digest = excluded.nik_digest, \
         expires_at = excluded.expires_at, updated_at = excluded.updated_at",
    )
    .bind(verification.id.as_bytes().as_slice())
    .bind(body)
    .bind(verification_nik_digest(sealer, verification))
    .bind(ms(horizon(verification)))
    .bind(ms(now))
    .execute(&mut *connection)
    .await
    .map_err(store_error)?;
    Ok(())
}

impl VerificationStore for PostgresStore {
    async fn transact<T, F>(
        &self,
        id: Option<VerificationId>,
        keys: Vec<RateKey>,
        step: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Snapshot) -> (Changes, T) + Send + 'static,
    {
        let digests: Vec<Vec<u8>> = keys.iter().map(|key| key.digest(&self.sealer)).collect();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let verification = match &id {
            Some(id) => load_verification(&mut tx, &self.sealer, id, true).await?,
            None => None,
        };
        let mut rates = vec![Default::default(); keys.len()];
        if !digests.is_empty() {
            let kinds: Vec<&str> = keys.iter().map(|key| key.kind.as_str()).collect();
            sqlx::query(
                "INSERT INTO rate_limits (key, kind, state, idle_after) \
                 SELECT key, kind, '{\"s\":[]}', 0 FROM UNNEST($1::bytea[], $2::text[]) AS k (key, kind) \
                 ORDER BY key ON CONFLICT (key) DO NOTHING",
            )
            .bind(&digests)
            .bind(&kinds)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            let rows = sqlx::query(
                "SELECT key, state FROM rate_limits WHERE key = ANY($1) ORDER BY key FOR UPDATE",
            )
            .bind(&digests)
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            for row in rows {
                let key: Vec<u8> = row.try_get(0).map_err(store_error)?;
                let state: String = row.try_get(1).map_err(store_error)?;
                if let Some(index) = digests.iter().position(|digest| *digest == key) {
                    rates[index] = decode_rate_state(&state)?;
                }
            }
        }
        let (changes, value) = step(Snapshot {
            verification,
            rates,
        });
        let now = Utc::now();
        if !changes.rates.is_empty() {
            let mut changed_keys = Vec::with_capacity(changes.rates.len());
            let mut changed_kinds = Vec::with_capacity(changes.rates.len());
            let mut states = Vec::with_capacity(changes.rates.len());
            let mut idle = Vec::with_capacity(changes.rates.len());
            for (index, state, idle_after) in &changes.rates {
                let (digest, key) = digests.get(*index).zip(keys.get(*index)).ok_or_else(|| {
                    StoreError::Corrupt("rate change for a key not asked for".into())
                })?;
                changed_keys.push(digest.clone());
                changed_kinds.push(key.kind.as_str());
                states.push(encode_rate_state(state));
                idle.push(ms(*idle_after));
            }
            // An upsert, not `UPDATE … FROM UNNEST`: the planner may hash-join the latter against
            // the whole table (a scan per request that grows with the table, measured: starts/s
            // fell from 1,200 to 450 within 20 s), while an upsert probes the primary key per row.
            // The rows exist and are locked already, so this always takes the update branch.
            sqlx::query(
                "INSERT INTO rate_limits (key, kind, state, idle_after) \
                 SELECT * FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::bigint[]) \
                 ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, idle_after = EXCLUDED.idle_after",
            )
            .bind(&changed_keys)
            .bind(&changed_kinds)
            .bind(&states)
            .bind(&idle)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        if let Some(verification) = &changes.verification {
            save_verification(&mut tx, &self.sealer, verification, now).await?;
        }
        for message in &changes.messages {
            if message.send_index > 0 {
                // A later send replaces an earlier one still waiting: one message, not two.
                sqlx::query(
                    "UPDATE outbox SET status = 'dropped', finished_at = $2, reason = $3 \
                     WHERE verification = $1 AND status = 'queued'",
                )
                .bind(message.verification.as_bytes().as_slice())
                .bind(ms(message.queued_at))
                .bind(SUPERSEDED)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            }
            let body = seal_message(&self.sealer, message)?;
            sqlx::query(
                "INSERT INTO outbox (verification, channel, body, status, queued_at, priority) \
                 VALUES ($1, $2, $3, 'queued', $4, $5)",
            )
            .bind(message.verification.as_bytes().as_slice())
            .bind(message.channel.as_str())
            .bind(body)
            .bind(ms(message.queued_at))
            .bind(message.priority.rank())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        if !changes.withdrawn.is_empty() {
            // Cancelled: what is still in the outbox, waiting or claimed, goes with it. A worker
            // holding one finishes it against `status = 'claimed'` and so cannot requeue it.
            let ids: Vec<&[u8]> = changes
                .withdrawn
                .iter()
                .map(|id| id.as_bytes().as_slice())
                .collect();
            sqlx::query(
                "UPDATE outbox SET status = 'dropped', finished_at = $2, reason = $3, \
                 claimed_until = NULL \
                 WHERE verification = ANY($1) AND status IN ('queued', 'claimed')",
            )
            .bind(&ids)
            .bind(ms(now))
            .bind(CANCELLED)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(value)
    }

    async fn verification(&self, id: VerificationId) -> Result<Option<Verification>, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(store_error)?;
        load_verification(&mut connection, &self.sealer, &id, false).await
    }

    async fn claim_messages(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let rows = sqlx::query(
            "UPDATE outbox SET status = 'claimed', claimed_until = $1 \
             WHERE id IN (SELECT id FROM outbox \
                 WHERE status IN ('queued', 'claimed') \
                   AND ((status = 'queued' AND not_before <= $2) OR claimed_until <= $2) \
                 ORDER BY priority, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, verification, body, rounds",
        )
        .bind(ms(now + lease))
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get(0).map_err(store_error)?;
            let verification: Vec<u8> = row.try_get(1).map_err(store_error)?;
            let body: Vec<u8> = row.try_get(2).map_err(store_error)?;
            let rounds: i32 = row.try_get(3).map_err(store_error)?;
            let message = open_message(&self.sealer, &verification, &body)?;
            claimed.push(ClaimedMessage {
                id,
                message,
                rounds: u32::try_from(rounds).unwrap_or_default(),
            });
        }
        claimed.sort_by_key(|message| (message.message.priority, message.id));
        Ok(claimed)
    }

    async fn finish_messages(
        &self,
        outcomes: Vec<(ClaimedMessage, MessageOutcome)>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let mut ids: Vec<VerificationId> = Vec::new();
        for (claimed, outcome) in &outcomes {
            for failure in outcome.failures() {
                sqlx::query(
                    "INSERT INTO delivery_attempts (outbox_id, verification, channel, provider, \
                     status, cause, detail, attempted_at, updated_at, operator) \
                     VALUES ($1, $2, $3, $4, 'failed', $5, $6, $7, $7, $8)",
                )
                .bind(claimed.id)
                .bind(claimed.message.verification.as_bytes().as_slice())
                .bind(claimed.message.channel.as_str())
                .bind(failure.provider.as_str())
                .bind(failure.cause.as_str())
                .bind(failure.detail.as_str())
                .bind(ms(failure.at))
                .bind(claimed.message.operator())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            }
            let (status, provider, at, reason) = match outcome {
                MessageOutcome::HandedOff {
                    provider,
                    at,
                    message_id,
                    status,
                    ..
                } => {
                    sqlx::query(
                        "INSERT INTO delivery_attempts (outbox_id, verification, channel, provider, \
                         provider_message_id, status, attempted_at, updated_at, operator) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
                    )
                    .bind(claimed.id)
                    .bind(claimed.message.verification.as_bytes().as_slice())
                    .bind(claimed.message.channel.as_str())
                    .bind(provider.as_str())
                    .bind(message_id.as_deref().map(normalise_message_id))
                    .bind(status.as_str())
                    .bind(ms(*at))
                    .bind(claimed.message.operator())
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                    ("handed_off", Some(provider.as_str()), *at, None)
                }
                MessageOutcome::Dropped { reason, at, .. } => {
                    ("dropped", None, *at, Some(reason.as_str()))
                }
                MessageOutcome::Deferred { retry_at, .. } => {
                    sqlx::query(
                        "UPDATE outbox SET status = 'queued', claimed_until = NULL, \
                         rounds = rounds + 1, not_before = $1 WHERE id = $2 AND status = 'claimed'",
                    )
                    .bind(ms(*retry_at))
                    .bind(claimed.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                    continue;
                }
            };
            sqlx::query(
                "UPDATE outbox SET status = $1, provider = $2, finished_at = $3, reason = $4, \
                 claimed_until = NULL WHERE id = $5 AND ($1 = 'handed_off' OR status = 'claimed')",
            )
            .bind(status)
            .bind(provider)
            .bind(ms(at))
            .bind(reason)
            .bind(claimed.id)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            if matches!(outcome, MessageOutcome::HandedOff { .. })
                && !ids.contains(&claimed.message.verification)
            {
                ids.push(claimed.message.verification);
            }
        }
        // Lock verifications in id order, like every other transaction that takes several.
        ids.sort();
        for id in ids {
            if let Some(mut verification) =
                load_verification(&mut tx, &self.sealer, &id, true).await?
            {
                apply_handoffs(&mut verification, &outcomes);
                save_verification(&mut tx, &self.sealer, &verification, now).await?;
            }
        }
        tx.commit().await.map_err(store_error)?;
        Ok(())
    }

    async fn record_receipt(&self, update: ReceiptUpdate) -> Result<u64, StoreError> {
        if update.message_ids.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query(
            "UPDATE delivery_attempts SET status = $1, cause = $2, detail = $3, updated_at = $4 \
             WHERE provider = $5 AND status <> 'delivered' AND provider_message_id = ANY($6)",
        )
        .bind(update.status.as_str())
        .bind(update.cause.map(|c| c.as_str()))
        .bind(update.detail.as_str())
        .bind(ms(update.at))
        .bind(update.provider.as_str())
        .bind(&update.message_ids)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected())
    }

    async fn delivery_trail(
        &self,
        verification: VerificationId,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE verification = $1 ORDER BY id"
        );
        sqlx::query_as::<_, AttemptColumns>(AssertSqlSafe(sql))
            .bind(verification.as_bytes().as_slice())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(attempt_from_row)
            .collect()
    }

    async fn verifications_for_nik(
        &self,
        nik: &Nik,
        limit: u32,
    ) -> Result<Vec<Verification>, StoreError> {
        // Ids begin with their creation time: the backward scan of verifications_nik is newest first.
        let [current, previous] = nik_digests(&self.sealer, nik);
        let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT id, body FROM verifications WHERE nik_digest IN ($1, $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(current)
        .bind(previous)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        open_verifications_for_nik(&self.sealer, nik, rows)
    }

    async fn inbox(&self, limit: u32) -> Result<Vec<InboxMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, verification, body, finished_at FROM outbox \
             WHERE provider = 'dev_inbox' ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|row| {
                let id: i64 = row.try_get(0).map_err(store_error)?;
                let verification: Vec<u8> = row.try_get(1).map_err(store_error)?;
                let body: Vec<u8> = row.try_get(2).map_err(store_error)?;
                let finished: i64 = row.try_get(3).map_err(store_error)?;
                Ok(InboxMessage {
                    id,
                    message: open_message(&self.sealer, &verification, &body)?,
                    handed_off_at: from_ms(finished)?,
                })
            })
            .collect()
    }

    async fn queue_position(
        &self,
        verification: VerificationId,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuePosition>, StoreError> {
        let mine: Option<(i64, i64)> = sqlx::query_as(
            "SELECT priority::BIGINT, id FROM outbox WHERE verification = $1 \
             AND status IN ('queued', 'claimed') ORDER BY id DESC LIMIT 1",
        )
        .bind(verification.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some((priority, id)) = mine else {
            return Ok(None);
        };
        let ahead: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'claimed') \
             AND (priority < $1 OR (priority = $1 AND id < $2))",
        )
        .bind(priority)
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        let drained: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM delivery_attempts WHERE attempted_at >= $1 \
             AND attempted_at <= $2 AND status <> 'failed'",
        )
        .bind(ms(now - Duration::minutes(1)))
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(Some(QueuePosition {
            outbox_id: id,
            ahead: u64::try_from(ahead).unwrap_or_default(),
            handed_off_last_minute: u64::try_from(drained).unwrap_or_default(),
        }))
    }

    async fn queued_messages(&self) -> Result<u64, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'claimed')")
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}
