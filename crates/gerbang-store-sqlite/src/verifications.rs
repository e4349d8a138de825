//! Verifications, rate limits and the outbox on SQLite, written through one writer task.
//!
//! SQLite has one writer at a time and `synchronous = FULL` makes every commit an fsync. The writer
//! owns a connection and runs every write job it finds queued inside one transaction, then commits
//! once and only then answers each caller: group commit. Under load one fsync covers hundreds of
//! requests; alone, a request pays one fsync as before. If any job in a batch fails, the whole batch
//! is rolled back and every caller in it gets the error: nothing was acknowledged, so nothing is lost.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Duration, Utc};
use gerbang_domain::verification::{Verification, VerificationId};
use gerbang_store::verifications::{
    apply_handoffs, decode_rate_state, encode_rate_state, open_message, open_verification,
    seal_message, seal_verification,
};
use gerbang_store::{
    Changes, ClaimedMessage, InboxMessage, MessageOutcome, RateKey, Sealer, Snapshot, StoreError,
    VerificationStore,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::{SqliteStore, store_error};

/// Most jobs committed together; bounds the time one batch holds the write lock.
const MAX_BATCH: usize = 512;

/// Called once the batch's commit is known: `None` committed, `Some(error)` did not.
type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type JobFuture<'c> = Pin<Box<dyn Future<Output = (Finish, bool)> + Send + 'c>>;
/// A unit of work run inside the batch transaction; says how to answer and whether it failed.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> JobFuture<'c> + Send>;

enum Command {
    Run(Job),
    Close(oneshot::Sender<()>),
}

/// The handle to the writer task; cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_ms(value: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(value)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {value} out of range")))
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("the write could not be committed; the cause is in the log".into())
}

impl Writer {
    /// Opens the writer's own connection and starts its task.
    pub(crate) async fn start(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let connection = SqliteConnection::connect_with(&options)
            .await
            .map_err(store_error)?;
        let (commands, receiver) = mpsc::channel(4096);
        tokio::spawn(run(connection, receiver));
        Ok(Self { commands })
    }

    /// Runs `work` in the next batch and returns its result once the batch is durable.
    async fn submit<T, W>(&self, work: W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: for<'c> FnOnce(
                &'c mut SqliteConnection,
            )
                -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |connection| {
            Box::pin(async move {
                match work(connection).await {
                    Ok(value) => {
                        let finish: Finish = Box::new(move |failure| {
                            let _ = reply.send(match failure {
                                None => Ok(value),
                                Some(error) => Err(StoreError::Unavailable(format!(
                                    "the commit failed: {error}"
                                ))),
                            });
                        });
                        (finish, false)
                    }
                    Err(error) => {
                        let finish: Finish = Box::new(move |_| {
                            let _ = reply.send(Err(error));
                        });
                        (finish, true)
                    }
                }
            })
        });
        self.commands
            .send(Command::Run(job))
            .await
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }

    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

/// The writer loop: take everything queued, run it in one transaction, commit, answer.
async fn run(mut connection: SqliteConnection, mut commands: mpsc::Receiver<Command>) {
    let mut close_reply = None;
    while close_reply.is_none() {
        let Some(first) = commands.recv().await else {
            break;
        };
        let mut jobs = Vec::new();
        match first {
            Command::Run(job) => jobs.push(job),
            Command::Close(reply) => close_reply = Some(reply),
        }
        while close_reply.is_none() && jobs.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(Command::Run(job)) => jobs.push(job),
                Ok(Command::Close(reply)) => close_reply = Some(reply),
                Err(_) => break,
            }
        }
        if !jobs.is_empty() {
            run_batch(&mut connection, jobs).await;
        }
    }
    let _ = connection.close().await;
    if let Some(reply) = close_reply {
        let _ = reply.send(());
    }
}

async fn run_batch(connection: &mut SqliteConnection, jobs: Vec<Job>) {
    let size = jobs.len();
    if let Err(error) = sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *connection)
        .await
    {
        // The jobs are dropped unrun; each caller is told its write could not be committed.
        tracing::error!(error = %store_error(error), size, "could not open the write transaction");
        return;
    }
    let mut finishes = Vec::with_capacity(size);
    let mut failed = false;
    let mut jobs = jobs.into_iter();
    for job in jobs.by_ref() {
        let (finish, job_failed) = job(&mut *connection).await;
        finishes.push(finish);
        if job_failed {
            failed = true;
            break;
        }
    }
    // Jobs after a failure never ran; dropping them tells their callers the writer could not do it.
    drop(jobs);
    let outcome = if failed {
        let rollback = sqlx::query("ROLLBACK").execute(&mut *connection).await;
        if let Err(error) = rollback {
            tracing::error!(%error, "rolling back a failed batch failed");
        }
        Some(StoreError::Unavailable(
            "another request in the same commit failed; nothing was written".into(),
        ))
    } else {
        match sqlx::query("COMMIT").execute(&mut *connection).await {
            Ok(_) => None,
            Err(error) => {
                let error = store_error(error);
                tracing::error!(%error, size, "group commit failed");
                let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
                Some(error)
            }
        }
    };
    for finish in finishes {
        finish(outcome.as_ref());
    }
}

/// `(?, ?, ...)` with `n` placeholders.
fn placeholders(n: usize) -> String {
    let mut out = String::from("(");
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
    }
    out.push(')');
    out
}

async fn load_verification(
    connection: &mut SqliteConnection,
    sealer: &Sealer,
    id: &VerificationId,
) -> Result<Option<Verification>, StoreError> {
    let row = sqlx::query("SELECT body FROM verifications WHERE id = ?")
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
    connection: &mut SqliteConnection,
    sealer: &Sealer,
    verification: &Verification,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let body = seal_verification(sealer, verification)?;
    sqlx::query(
        "INSERT INTO verifications (id, body, expires_at, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at, \
         updated_at = excluded.updated_at",
    )
    .bind(verification.id.as_bytes().as_slice())
    .bind(body)
    .bind(ms(expires_at))
    .bind(ms(now))
    .execute(&mut *connection)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// The cleanup horizon of a verification: its creation plus a day covers every code it can hold.
fn horizon(verification: &Verification) -> DateTime<Utc> {
    verification.created_at + Duration::days(1)
}

async fn transact_in<T, F>(
    connection: &mut SqliteConnection,
    sealer: &Sealer,
    id: Option<VerificationId>,
    keys: Vec<RateKey>,
    step: F,
) -> Result<T, StoreError>
where
    F: FnOnce(Snapshot) -> (Changes, T),
{
    let digests: Vec<Vec<u8>> = keys.iter().map(|key| key.digest(sealer)).collect();
    let verification = match &id {
        Some(id) => load_verification(connection, sealer, id).await?,
        None => None,
    };
    let mut rates = vec![Default::default(); keys.len()];
    if !digests.is_empty() {
        let sql = format!(
            "SELECT key, state FROM rate_limits WHERE key IN {}",
            placeholders(digests.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for digest in &digests {
            query = query.bind(digest.as_slice());
        }
        let rows = query
            .fetch_all(&mut *connection)
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
        let mut sql =
            String::from("INSERT INTO rate_limits (key, kind, state, idle_after) VALUES ");
        for i in 0..changes.rates.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str("(?, ?, ?, ?)");
        }
        sql.push_str(
            " ON CONFLICT (key) DO UPDATE SET state = excluded.state, idle_after = excluded.idle_after",
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (index, state, idle_after) in &changes.rates {
            let digest = digests
                .get(*index)
                .ok_or_else(|| StoreError::Corrupt("rate change for a key not asked for".into()))?;
            query = query
                .bind(digest.as_slice())
                .bind(keys[*index].kind.as_str())
                .bind(encode_rate_state(state))
                .bind(ms(*idle_after));
        }
        query.execute(&mut *connection).await.map_err(store_error)?;
    }
    if let Some(verification) = &changes.verification {
        save_verification(connection, sealer, verification, horizon(verification), now).await?;
    }
    for message in &changes.messages {
        let body = seal_message(sealer, message)?;
        sqlx::query(
            "INSERT INTO outbox (verification, channel, body, status, queued_at) \
             VALUES (?, ?, ?, 'queued', ?)",
        )
        .bind(message.verification.as_bytes().as_slice())
        .bind(message.channel.as_str())
        .bind(body)
        .bind(ms(message.queued_at))
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    }
    Ok(value)
}

impl VerificationStore for SqliteStore {
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
        let sealer = self.sealer.clone();
        self.writer
            .submit(move |connection| {
                Box::pin(async move { transact_in(connection, &sealer, id, keys, step).await })
            })
            .await
    }

    async fn verification(&self, id: VerificationId) -> Result<Option<Verification>, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(store_error)?;
        load_verification(&mut connection, &self.sealer, &id).await
    }

    async fn claim_messages(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let sealer = self.sealer.clone();
        self.writer
            .submit(move |connection| {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "UPDATE outbox SET status = 'claimed', claimed_until = ?1 \
                         WHERE id IN (SELECT id FROM outbox \
                             WHERE status IN ('queued', 'claimed') \
                               AND (status = 'queued' OR claimed_until <= ?2) \
                             ORDER BY id LIMIT ?3) \
                         RETURNING id, verification, body",
                    )
                    .bind(ms(now + lease))
                    .bind(ms(now))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(store_error)?;
                    let mut claimed = Vec::with_capacity(rows.len());
                    for row in rows {
                        let id: i64 = row.try_get(0).map_err(store_error)?;
                        let verification: Vec<u8> = row.try_get(1).map_err(store_error)?;
                        let body: Vec<u8> = row.try_get(2).map_err(store_error)?;
                        let message = open_message(&sealer, &verification, &body)?;
                        claimed.push(ClaimedMessage { id, message });
                    }
                    claimed.sort_by_key(|message| message.id);
                    Ok(claimed)
                })
            })
            .await
    }

    async fn finish_messages(
        &self,
        outcomes: Vec<(ClaimedMessage, MessageOutcome)>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let sealer = self.sealer.clone();
        self.writer
            .submit(move |connection| {
                Box::pin(async move {
                    let now = Utc::now();
                    let mut ids: Vec<VerificationId> = Vec::new();
                    for (claimed, outcome) in &outcomes {
                        let (status, provider, at, reason) = match outcome {
                            MessageOutcome::HandedOff { provider, at } => {
                                ("handed_off", Some(provider.as_str()), *at, None)
                            }
                            MessageOutcome::Dropped { reason, at } => {
                                ("dropped", None, *at, Some(reason.as_str()))
                            }
                        };
                        sqlx::query(
                            "UPDATE outbox SET status = ?, provider = ?, finished_at = ?, \
                             reason = ?, claimed_until = NULL WHERE id = ?",
                        )
                        .bind(status)
                        .bind(provider)
                        .bind(ms(at))
                        .bind(reason)
                        .bind(claimed.id)
                        .execute(&mut *connection)
                        .await
                        .map_err(store_error)?;
                        if matches!(outcome, MessageOutcome::HandedOff { .. })
                            && !ids.contains(&claimed.message.verification)
                        {
                            ids.push(claimed.message.verification);
                        }
                    }
                    for id in ids {
                        if let Some(mut verification) =
                            load_verification(connection, &sealer, &id).await?
                        {
                            apply_handoffs(&mut verification, &outcomes);
                            save_verification(
                                connection,
                                &sealer,
                                &verification,
                                horizon(&verification),
                                now,
                            )
                            .await?;
                        }
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn inbox(&self, limit: u32) -> Result<Vec<InboxMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, verification, body, finished_at FROM outbox \
             WHERE provider = 'dev_inbox' ORDER BY id DESC LIMIT ?",
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

    async fn queued_messages(&self) -> Result<u64, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'claimed')")
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}
