//! Verifications, rate limits and the outbox on SQLite, written through one writer task.
//!
//! SQLite has one writer at a time and `synchronous = FULL` makes every commit an fsync. The writer
//! owns a connection and takes every request queued for it as one batch: it reads the verifications
//! and rate-limit rows the whole batch needs with one query each, runs each request's decision in
//! arrival order against that in-memory copy (so a later request sees an earlier one's writes, exactly
//! as if they had run one after another), writes the result back with a few multi-row statements,
//! commits once and only then answers each caller: group commit. Under load one fsync and a handful of
//! statements cover hundreds of requests; alone, a request pays one fsync as before. If anything in a
//! batch fails, the whole batch is rolled back and every caller in it gets the error: nothing was
//! acknowledged, so nothing is lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Duration, Utc};
use gerbang_domain::Nik;
use gerbang_domain::delivery::receipt::normalise_message_id;
use gerbang_domain::verification::rate::{KeyKind, RateState};
use gerbang_domain::verification::{Verification, VerificationId};
use gerbang_store::verifications::{
    ATTEMPT_COLUMNS, AttemptColumns, CANCELLED, SUPERSEDED, apply_handoffs, attempt_from_row,
    decode_rate_state, encode_rate_state, nik_digests, open_message, open_verification,
    open_verifications_for_nik, seal_message, seal_verification, verification_nik_digest,
};
use gerbang_store::{
    Changes, ClaimedMessage, DeliveryAttempt, InboxMessage, MessageOutcome, OutboxMessage,
    QueuePosition, RateKey, ReceiptUpdate, Sealer, Snapshot, StoreError, VerificationStore,
};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::{SqliteStore, store_error};

/// Most requests committed together; bounds the time one batch holds the write lock.
const MAX_BATCH: usize = 1024;
/// Rows per multi-row statement: 400 rows of up to 6 parameters (verifications 5, outbox 6; the
/// attempt inserts take half as many rows of 9 or 10) stay far below SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 400;

/// Called once the batch's commit is known: `None` committed, `Some(error)` did not.
type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type RawFuture<'c> = Pin<Box<dyn Future<Output = (Finish, bool)> + Send + 'c>>;
/// Statements run as they are inside the batch transaction (claiming the outbox).
type Raw = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> RawFuture<'c> + Send>;
/// A decision over a snapshot; returns what to write and how to answer.
type Step = Box<dyn FnOnce(Snapshot) -> (Changes, Finish) + Send>;

/// One request to the writer.
enum Command {
    /// Read a verification and rate keys, decide, write.
    Transact {
        id: Option<VerificationId>,
        /// Digest and kind of each key, in the order the step expects.
        keys: Vec<(Vec<u8>, KeyKind)>,
        step: Step,
    },
    /// Record how claimed messages ended and start their codes' lifetimes.
    Finish {
        outcomes: Vec<(ClaimedMessage, MessageOutcome)>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Raw(Raw),
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

pub(crate) fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_ms(value: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(value)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {value} out of range")))
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("the write could not be committed; the cause is in the log".into())
}

fn commit_failed(error: &StoreError) -> StoreError {
    StoreError::Unavailable(format!("the commit failed: {error}"))
}

impl Writer {
    /// Opens the writer's own connection and starts its task.
    pub(crate) async fn start(
        options: SqliteConnectOptions,
        sealer: Sealer,
    ) -> Result<Self, StoreError> {
        // The writer reads every row it changes, so it gets a page cache of its own: 16 MiB holds the
        // hot index pages, and the operating system's cache serves the rest. Bigger is slower: at
        // every commit SQLite walks the whole cache's hash table (interleaved runs: 128 MiB 3,970
        // starts/s, 16 MiB 5,000; docs/benchmarks.md). Readers keep the pool's smaller cache.
        let connection =
            SqliteConnection::connect_with(&options.clone().pragma("cache_size", "-16384"))
                .await
                .map_err(store_error)?;
        let checkpointer = SqliteConnection::connect_with(&options)
            .await
            .map_err(store_error)?;
        let (commands, receiver) = mpsc::channel(8192);
        let (stop, stopped) = oneshot::channel();
        let checkpoints = tokio::spawn(checkpoint(checkpointer, stopped));
        tokio::spawn(run(connection, sealer, receiver, stop, checkpoints));
        Ok(Self { commands })
    }

    async fn send(&self, command: Command) -> Result<(), StoreError> {
        self.commands.send(command).await.map_err(|_| unavailable())
    }

    /// Runs `step` in the next batch; its value is returned once the batch is durable.
    async fn transact<T, F>(
        &self,
        id: Option<VerificationId>,
        keys: Vec<(Vec<u8>, KeyKind)>,
        step: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Snapshot) -> (Changes, T) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let step: Step = Box::new(move |snapshot| {
            let (changes, value) = step(snapshot);
            let finish: Finish = Box::new(move |failure| {
                let _ = reply.send(match failure {
                    None => Ok(value),
                    Some(error) => Err(commit_failed(error)),
                });
            });
            (changes, finish)
        });
        self.send(Command::Transact { id, keys, step }).await?;
        answer.await.map_err(|_| unavailable())?
    }

    /// Runs raw statements in the next batch and returns their result once the batch is durable.
    pub(crate) async fn raw<T, W>(&self, work: W) -> Result<T, StoreError>
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
        let job: Raw = Box::new(move |connection| {
            Box::pin(async move {
                match work(connection).await {
                    Ok(value) => {
                        let finish: Finish = Box::new(move |failure| {
                            let _ = reply.send(match failure {
                                None => Ok(value),
                                Some(error) => Err(commit_failed(error)),
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
        self.send(Command::Raw(job)).await?;
        answer.await.map_err(|_| unavailable())?
    }

    async fn finish(
        &self,
        outcomes: Vec<(ClaimedMessage, MessageOutcome)>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Finish { outcomes, reply }).await?;
        answer.await.map_err(|_| unavailable())?
    }

    /// Stops the writer once what is queued is written; returns when both of its connections are
    /// closed.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

/// How often the WAL is copied back into the database file, off the writer's path.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies committed WAL frames into the database file from a connection of its own, so the writer
/// never stalls on a large checkpoint (SQLite's automatic one runs inside the committing
/// connection). PASSIVE: it never blocks the writer or readers and copies whatever it can.
async fn checkpoint(mut connection: SqliteConnection, mut stop: oneshot::Receiver<()>) {
    let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {}
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut connection)
            .await
        {
            // The writer's own automatic checkpoint is the fallback; say so and go on.
            tracing::warn!(error = %store_error(error), "background WAL checkpoint failed");
        }
    }
    let _ = connection.close().await;
}

/// The writer loop: take everything queued, run it as one batch, repeat.
async fn run(
    mut connection: SqliteConnection,
    sealer: Sealer,
    mut commands: mpsc::Receiver<Command>,
    stop_checkpoints: oneshot::Sender<()>,
    checkpoints: tokio::task::JoinHandle<()>,
) {
    let mut close_reply = None;
    while close_reply.is_none() {
        let Some(first) = commands.recv().await else {
            break;
        };
        let mut batch = Vec::new();
        match first {
            Command::Close(reply) => close_reply = Some(reply),
            other => batch.push(other),
        }
        while close_reply.is_none() && batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(Command::Close(reply)) => close_reply = Some(reply),
                Ok(other) => batch.push(other),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            run_batch(&mut connection, &sealer, batch).await;
        }
    }
    let _ = stop_checkpoints.send(());
    let _ = checkpoints.await;
    let _ = connection.close().await;
    if let Some(reply) = close_reply {
        let _ = reply.send(());
    }
}

async fn run_batch(connection: &mut SqliteConnection, sealer: &Sealer, batch: Vec<Command>) {
    let size = batch.len();
    if let Err(error) = sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *connection)
        .await
    {
        // The requests are dropped unrun; each caller is told its write could not be committed.
        tracing::error!(error = %store_error(error), size, "could not open the write transaction");
        return;
    }
    let mut finishes: Vec<Finish> = Vec::with_capacity(size);
    let outcome = match apply_batch(connection, sealer, batch, &mut finishes).await {
        Err(error) => {
            tracing::error!(%error, size, "a write batch failed; rolling it back");
            let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
            Some(error)
        }
        Ok(()) => match sqlx::query("COMMIT").execute(&mut *connection).await {
            Ok(_) => None,
            Err(error) => {
                let error = store_error(error);
                tracing::error!(%error, size, "group commit failed");
                let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
                Some(error)
            }
        },
    };
    for finish in finishes {
        finish(outcome.as_ref());
    }
}

/// Everything a batch writes, gathered in memory first.
#[derive(Default)]
struct Pending {
    verifications: HashMap<VerificationId, Option<Verification>>,
    rates: HashMap<Vec<u8>, RateState>,
    dirty_verifications: BTreeSet<VerificationId>,
    dirty_rates: BTreeMap<Vec<u8>, (KeyKind, DateTime<Utc>)>,
    messages: Vec<OutboxMessage>,
    /// Verifications cancelled: their messages still in the outbox are dropped.
    withdrawn: BTreeSet<VerificationId>,
    finished: Vec<FinishedRow>,
    attempts: Vec<AttemptRow>,
    failures: Vec<FailureRow>,
    /// Outbox ids going back to the queue, with the instant before which they wait.
    deferred: Vec<(i64, DateTime<Utc>)>,
}

/// A refused try: outbox id, verification, channel, operator, provider, cause, detail, when.
type FailureRow = (
    i64,
    VerificationId,
    &'static str,
    Option<&'static str>,
    String,
    &'static str,
    String,
    DateTime<Utc>,
);

/// A new delivery attempt: outbox id, verification, channel, operator, provider, provider's id,
/// status, when.
type AttemptRow = (
    i64,
    VerificationId,
    &'static str,
    Option<&'static str>,
    String,
    Option<String>,
    &'static str,
    DateTime<Utc>,
);

/// An outbox row's end: id, status, provider, when, and why (if dropped).
type FinishedRow = (
    i64,
    &'static str,
    Option<String>,
    DateTime<Utc>,
    Option<String>,
);

async fn apply_batch(
    connection: &mut SqliteConnection,
    sealer: &Sealer,
    batch: Vec<Command>,
    finishes: &mut Vec<Finish>,
) -> Result<(), StoreError> {
    let mut ids = BTreeSet::new();
    let mut digests = BTreeSet::new();
    for command in &batch {
        match command {
            Command::Transact { id, keys, .. } => {
                ids.extend(id.iter().copied());
                digests.extend(keys.iter().map(|(digest, _)| digest.clone()));
            }
            Command::Finish { outcomes, .. } => ids.extend(
                outcomes
                    .iter()
                    .filter(|(_, outcome)| matches!(outcome, MessageOutcome::HandedOff { .. }))
                    .map(|(claimed, _)| claimed.message.verification),
            ),
            Command::Raw(_) | Command::Close(_) => {}
        }
    }
    let mut pending = Pending {
        verifications: load_verifications(connection, sealer, &ids).await?,
        rates: load_rates(connection, &digests).await?,
        ..Pending::default()
    };
    for command in batch {
        match command {
            Command::Transact { id, keys, step } => {
                let snapshot = Snapshot {
                    verification: id
                        .and_then(|id| pending.verifications.get(&id).cloned().flatten()),
                    rates: keys
                        .iter()
                        .map(|(digest, _)| pending.rates.get(digest).cloned().unwrap_or_default())
                        .collect(),
                };
                let (changes, finish) = step(snapshot);
                finishes.push(finish);
                if let Some(verification) = changes.verification {
                    pending.dirty_verifications.insert(verification.id);
                    pending
                        .verifications
                        .insert(verification.id, Some(verification));
                }
                for (index, state, idle_after) in changes.rates {
                    let (digest, kind) = keys.get(index).cloned().ok_or_else(|| {
                        StoreError::Corrupt("rate change for a key not asked for".into())
                    })?;
                    pending
                        .dirty_rates
                        .insert(digest.clone(), (kind, idle_after));
                    pending.rates.insert(digest, state);
                }
                pending.messages.extend(changes.messages);
                pending.withdrawn.extend(changes.withdrawn);
            }
            Command::Finish { outcomes, reply } => {
                for (claimed, outcome) in &outcomes {
                    for failure in outcome.failures() {
                        pending.failures.push((
                            claimed.id,
                            claimed.message.verification,
                            claimed.message.channel.as_str(),
                            claimed.message.operator(),
                            failure.provider.clone(),
                            failure.cause.as_str(),
                            failure.detail.clone(),
                            failure.at,
                        ));
                    }
                    let row = match outcome {
                        MessageOutcome::HandedOff {
                            provider,
                            at,
                            message_id,
                            status,
                            ..
                        } => {
                            pending.attempts.push((
                                claimed.id,
                                claimed.message.verification,
                                claimed.message.channel.as_str(),
                                claimed.message.operator(),
                                provider.clone(),
                                message_id.as_deref().map(normalise_message_id),
                                status.as_str(),
                                *at,
                            ));
                            (claimed.id, "handed_off", Some(provider.clone()), *at, None)
                        }
                        MessageOutcome::Dropped { reason, at, .. } => {
                            (claimed.id, "dropped", None, *at, Some(reason.clone()))
                        }
                        MessageOutcome::Deferred { retry_at, .. } => {
                            pending.deferred.push((claimed.id, *retry_at));
                            continue;
                        }
                    };
                    pending.finished.push(row);
                    if let Some(Some(verification)) =
                        pending.verifications.get_mut(&claimed.message.verification)
                        && matches!(outcome, MessageOutcome::HandedOff { .. })
                    {
                        apply_handoffs(
                            verification,
                            std::slice::from_ref(&(claimed.clone(), outcome.clone())),
                        );
                        pending.dirty_verifications.insert(verification.id);
                    }
                }
                finishes.push(Box::new(move |failure| {
                    let _ = reply.send(failure.map_or(Ok(()), |error| Err(commit_failed(error))));
                }));
            }
            Command::Raw(job) => {
                let (finish, failed) = job(&mut *connection).await;
                finishes.push(finish);
                if failed {
                    return Err(StoreError::Unavailable(
                        "another request in the same commit failed; nothing was written".into(),
                    ));
                }
            }
            Command::Close(_) => {}
        }
    }
    flush(connection, sealer, pending).await
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

/// `n` rows of `(?, ..., ?)` with `width` placeholders each.
fn rows(n: usize, width: usize) -> String {
    let row = placeholders(width);
    let mut out = String::with_capacity(n * (row.len() + 2));
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&row);
    }
    out
}

async fn load_verifications(
    connection: &mut SqliteConnection,
    sealer: &Sealer,
    ids: &BTreeSet<VerificationId>,
) -> Result<HashMap<VerificationId, Option<Verification>>, StoreError> {
    let mut found: HashMap<VerificationId, Option<Verification>> =
        ids.iter().map(|id| (*id, None)).collect();
    let ids: Vec<&VerificationId> = ids.iter().collect();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT id, body FROM verifications WHERE id IN {}",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.as_bytes().as_slice());
        }
        for row in query
            .fetch_all(&mut *connection)
            .await
            .map_err(store_error)?
        {
            let id: Vec<u8> = row.try_get(0).map_err(store_error)?;
            let body: Vec<u8> = row.try_get(1).map_err(store_error)?;
            let verification = open_verification(sealer, &id, &body)?;
            found.insert(verification.id, Some(verification));
        }
    }
    Ok(found)
}

async fn load_rates(
    connection: &mut SqliteConnection,
    digests: &BTreeSet<Vec<u8>>,
) -> Result<HashMap<Vec<u8>, RateState>, StoreError> {
    let mut found = HashMap::with_capacity(digests.len());
    let digests: Vec<&Vec<u8>> = digests.iter().collect();
    for chunk in digests.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT key, state FROM rate_limits WHERE key IN {}",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for digest in chunk {
            query = query.bind(digest.as_slice());
        }
        for row in query
            .fetch_all(&mut *connection)
            .await
            .map_err(store_error)?
        {
            let key: Vec<u8> = row.try_get(0).map_err(store_error)?;
            let state: String = row.try_get(1).map_err(store_error)?;
            found.insert(key, decode_rate_state(&state)?);
        }
    }
    Ok(found)
}

/// The cleanup horizon of a verification: its creation plus a day covers every code it can hold.
fn horizon(verification: &Verification) -> DateTime<Utc> {
    verification.created_at + Duration::days(1)
}

async fn flush(
    connection: &mut SqliteConnection,
    sealer: &Sealer,
    pending: Pending,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let rates: Vec<_> = pending.dirty_rates.iter().collect();
    for chunk in rates.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO rate_limits (key, kind, state, idle_after) VALUES {}              ON CONFLICT (key) DO UPDATE SET state = excluded.state, idle_after = excluded.idle_after",
            rows(chunk.len(), 4)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (digest, (kind, idle_after)) in chunk {
            let state = pending.rates.get(*digest).cloned().unwrap_or_default();
            query = query
                .bind(digest.as_slice())
                .bind(kind.as_str())
                .bind(encode_rate_state(&state))
                .bind(ms(*idle_after));
        }
        query.execute(&mut *connection).await.map_err(store_error)?;
    }
    let verifications: Vec<&Verification> = pending
        .dirty_verifications
        .iter()
        .filter_map(|id| pending.verifications.get(id).and_then(Option::as_ref))
        .collect();
    for chunk in verifications.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO verifications (id, body, nik_digest, expires_at, updated_at) VALUES {} \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, nik_digest = excluded.nik_digest, \
             expires_at = excluded.expires_at, updated_at = excluded.updated_at",
            rows(chunk.len(), 5)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for verification in chunk {
            query = query
                .bind(verification.id.as_bytes().as_slice())
                .bind(seal_verification(sealer, verification)?)
                .bind(verification_nik_digest(sealer, verification))
                .bind(ms(horizon(verification)))
                .bind(ms(now));
        }
        query.execute(&mut *connection).await.map_err(store_error)?;
    }
    // A later send replaces an earlier one still waiting: one message, not two.
    let resent: BTreeSet<&VerificationId> = pending
        .messages
        .iter()
        .filter(|message| message.send_index > 0)
        .map(|message| &message.verification)
        .collect();
    let resent: Vec<&VerificationId> = resent.into_iter().collect();
    for chunk in resent.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE outbox SET status = 'dropped', finished_at = ?, reason = ? \
             WHERE status = 'queued' AND verification IN {}",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(ms(now))
            .bind(SUPERSEDED);
        for id in chunk {
            query = query.bind(id.as_bytes().as_slice());
        }
        query.execute(&mut *connection).await.map_err(store_error)?;
    }
    for chunk in pending.messages.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO outbox (verification, channel, body, status, queued_at, priority) VALUES {}",
            rows(chunk.len(), 6)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for message in chunk {
            query = query
                .bind(message.verification.as_bytes().as_slice())
                .bind(message.channel.as_str())
                .bind(seal_message(sealer, message)?)
                .bind("queued")
                .bind(ms(message.queued_at))
                .bind(message.priority.rank());
        }
        query.execute(&mut *connection).await.map_err(store_error)?;
    }
    // After the inserts (a send queued earlier in this batch goes too) and before the workers'
    // outcomes (a refusal of a message in flight must not put it back in the queue).
    let withdrawn: Vec<&VerificationId> = pending.withdrawn.iter().collect();
    for chunk in withdrawn.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE outbox SET status = 'dropped', finished_at = ?, reason = ?, claimed_until = NULL \
             WHERE status IN ('queued', 'claimed') AND verification IN {}",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(ms(now))
            .bind(CANCELLED);
        for id in chunk {
            query = query.bind(id.as_bytes().as_slice());
        }
        query.execute(&mut *connection).await.map_err(store_error)?;
    }
    for chunk in pending.failures.chunks(ROWS_PER_STATEMENT / 2) {
        let sql = format!(
            "INSERT INTO delivery_attempts (outbox_id, verification, channel, operator, provider, \
             status, cause, detail, attempted_at, updated_at) VALUES {}",
            rows(chunk.len(), 10)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (outbox_id, verification, channel, operator, provider, cause, detail, at) in chunk {
            query = query
                .bind(*outbox_id)
                .bind(verification.as_bytes().as_slice())
                .bind(*channel)
                .bind(*operator)
                .bind(provider.as_str())
                .bind("failed")
                .bind(*cause)
                .bind(detail.as_str())
                .bind(ms(*at))
                .bind(ms(*at));
        }
        query.execute(&mut *connection).await.map_err(store_error)?;
    }
    for (id, retry_at) in &pending.deferred {
        sqlx::query(
            "UPDATE outbox SET status = 'queued', claimed_until = NULL, rounds = rounds + 1, \
             not_before = ? WHERE id = ? AND status = 'claimed'",
        )
        .bind(ms(*retry_at))
        .bind(*id)
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    }
    for chunk in pending.attempts.chunks(ROWS_PER_STATEMENT / 2) {
        let sql = format!(
            "INSERT INTO delivery_attempts (outbox_id, verification, channel, operator, provider, \
             provider_message_id, status, attempted_at, updated_at) VALUES {}",
            rows(chunk.len(), 9)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (outbox_id, verification, channel, operator, provider, message_id, status, at) in chunk
        {
            query = query
                .bind(*outbox_id)
                .bind(verification.as_bytes().as_slice())
                .bind(*channel)
                .bind(*operator)
                .bind(provider.as_str())
                .bind(message_id.as_deref())
                .bind(*status)
                .bind(ms(*at))
                .bind(ms(*at));
        }
        query.execute(&mut *connection).await.map_err(store_error)?;
    }
    for chunk in pending.finished.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE outbox SET status = v.column2, provider = v.column3, finished_at = v.column4,              reason = v.column5, claimed_until = NULL FROM (VALUES {}) AS v WHERE outbox.id = v.column1 \
             AND (v.column2 = 'handed_off' OR outbox.status = 'claimed')",
            rows(chunk.len(), 5)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, status, provider, at, reason) in chunk {
            query = query
                .bind(*id)
                .bind(*status)
                .bind(provider.as_deref())
                .bind(ms(*at))
                .bind(reason.as_deref());
        }
        query.execute(&mut *connection).await.map_err(store_error)?;
    }
    Ok(())
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
        // Digests are computed here, on the caller's task, so the writer only does database work.
        let keys = keys
            .iter()
            .map(|key| (key.digest(&self.sealer), key.kind))
            .collect();
        self.writer.transact(id, keys, step).await
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
            .raw(move |connection| {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "UPDATE outbox SET status = 'claimed', claimed_until = ?1 \
                         WHERE id IN (SELECT id FROM outbox \
                             WHERE status IN ('queued', 'claimed') \
                               AND ((status = 'queued' AND not_before <= ?2) \
                                    OR claimed_until <= ?2) \
                             ORDER BY priority, id LIMIT ?3) \
                         RETURNING id, verification, body, rounds",
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
                        let rounds: i64 = row.try_get(3).map_err(store_error)?;
                        let message = open_message(&sealer, &verification, &body)?;
                        claimed.push(ClaimedMessage {
                            id,
                            message,
                            rounds: u32::try_from(rounds).unwrap_or_default(),
                        });
                    }
                    claimed.sort_by_key(|message| (message.message.priority, message.id));
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
        self.writer.finish(outcomes).await
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

    async fn queue_position(
        &self,
        verification: VerificationId,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuePosition>, StoreError> {
        let mine: Option<(i64, i64)> = sqlx::query_as(
            "SELECT priority, id FROM outbox WHERE verification = ?1 \
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
             AND (priority < ?1 OR (priority = ?1 AND id < ?2))",
        )
        .bind(priority)
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        let drained: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM delivery_attempts WHERE attempted_at >= ?1 \
             AND attempted_at <= ?2 AND status <> 'failed'",
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

    async fn record_receipt(&self, update: ReceiptUpdate) -> Result<u64, StoreError> {
        if update.message_ids.is_empty() {
            return Ok(0);
        }
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    let sql = format!(
                        "UPDATE delivery_attempts SET status = ?, cause = ?, detail = ?, updated_at = ? \
                         WHERE provider = ? AND status <> 'delivered' AND provider_message_id IN {}",
                        placeholders(update.message_ids.len())
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql))
                        .bind(update.status.as_str())
                        .bind(update.cause.map(|c| c.as_str()))
                        .bind(update.detail.as_str())
                        .bind(ms(update.at))
                        .bind(update.provider.as_str());
                    for id in &update.message_ids {
                        query = query.bind(id.as_str());
                    }
                    let done = query.execute(&mut *connection).await.map_err(store_error)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }

    async fn delivery_trail(
        &self,
        verification: VerificationId,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE verification = ? ORDER BY id"
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
            "SELECT id, body FROM verifications WHERE nik_digest IN (?, ?) ORDER BY id DESC LIMIT ?",
        )
        .bind(current)
        .bind(previous)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        open_verifications_for_nik(&self.sealer, nik, rows)
    }
}
