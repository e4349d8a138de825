//! Rotation of the personal-data key (`gerbang key rotate`), while gerbang keeps serving.
//!
//! 1. Every instance is restarted with the new key as `privacy.key` and the old one as
//!    `privacy.previous_key`. The first to open the store records the rotation ([`judge_key`]):
//!    the database's key becomes the new one, the old one is kept as "previous". From then on each
//!    instance seals, digests and MACs with the new key only, opens with either, and looks rows up
//!    by both keys' digests.
//! 2. `gerbang key rotate` walks every sealed table in pages ([`KeyRotationStore::reseal_page`]):
//!    each envelope still under the old key is opened and sealed again under the new key, bound to
//!    its new NIK digest, with its lookup digests recomputed in the same statement. A row changed
//!    meanwhile is left alone (it was written under the new key).
//! 3. It waits until every code sent under the old key has died (one hard cap), verifies the audit
//!    log under both keys and closes it with a [`KEY_ROTATED`](crate::audit::KEY_ROTATED) entry
//!    anchoring every entry before it, then records the old key as retired. An instance started
//!    with the old key after that is refused, as is one still naming it as the previous key.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::accounts::reseal_account;
use crate::audit::{
    AuditChain, AuditEntry, AuditHead, AuditRecord, AuditStore, AuditVerifier, Tamper,
};
use crate::error::StoreError;
use crate::participants::reseal_participant;
use crate::sealing::{KeyAge, KeyFingerprint, Sealer};
use crate::verifications::reseal_verification;

/// What the database records about its personal-data key (`store_meta`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key everything is (being) sealed with.
    pub current: Option<String>,
    /// While a rotation runs: the key it rotates from.
    pub previous: Option<String>,
    /// The keys finished rotations retired, comma-separated, oldest first.
    pub retired: Option<String>,
}

impl KeyRecord {
    /// Whether a finished rotation retired the key with this fingerprint.
    pub fn is_retired(&self, fingerprint: &str) -> bool {
        self.retired
            .as_deref()
            .is_some_and(|retired| retired.split(',').any(|key| key == fingerprint))
    }
}

/// The `store_meta` keys of a [`KeyRecord`].
pub mod meta {
    pub const CURRENT: &str = "personal_data_key";
    pub const PREVIOUS: &str = "previous_personal_data_key";
    pub const RETIRED: &str = "retired_personal_data_key";
}

/// What opening a store with a sealer must do about the recorded key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDecision {
    /// The configured keys are the recorded ones.
    Accept,
    /// A new database: record the configured key.
    Record,
    /// The configured previous key is the recorded one: record the rotation to the new key.
    BeginRotation,
}

/// Judges the configured keys against the recorded ones; every refusal says what to configure.
pub fn judge_key(record: &KeyRecord, sealer: &Sealer) -> Result<KeyDecision, StoreError> {
    let configured = sealer.fingerprint().as_str();
    let previous = sealer.previous_fingerprint().map(KeyFingerprint::as_str);
    let refuse = |text: String| Err(StoreError::KeyRotation(text));
    let Some(current) = record.current.as_deref() else {
        return match previous {
            None => Ok(KeyDecision::Record),
            Some(previous) => refuse(format!(
                "privacy.previous_key (fingerprint {previous}) is set but this database is new and \
                 nothing in it is sealed with that key; remove privacy.previous_key"
            )),
        };
    };
    if current == configured {
        return match (record.previous.as_deref(), previous) {
            (None, None) => Ok(KeyDecision::Accept),
            (Some(recorded), Some(previous)) if recorded == previous => Ok(KeyDecision::Accept),
            (Some(recorded), None) => refuse(format!(
                "a rotation from key {recorded} to key {configured} is running: configure the \
                 previous key as privacy.previous_key (or privacy.previous_key_file) until \
                 `gerbang key rotate` has finished"
            )),
            (Some(recorded), Some(previous)) => refuse(format!(
                "a rotation from key {recorded} is running, but privacy.previous_key has \
                 fingerprint {previous}; configure the key with fingerprint {recorded}"
            )),
            (None, Some(previous)) if record.is_retired(previous) => refuse(format!(
                "the rotation from key {previous} to key {configured} has finished and the old \
                     key is retired: remove privacy.previous_key"
            )),
            (None, Some(previous)) => refuse(format!(
                "privacy.previous_key (fingerprint {previous}) is not a key this database was \
                 sealed with; remove it"
            )),
        };
    }
    if previous == Some(current) {
        return match record.previous.as_deref() {
            None if record.is_retired(configured) => refuse(format!(
                "key {configured} was retired by an earlier rotation; rotate to a new key \
                 (`gerbang key generate`)"
            )),
            None => Ok(KeyDecision::BeginRotation),
            Some(older) => refuse(format!(
                "the rotation from key {older} to key {current} has not finished: run \
                 `gerbang key rotate` with those keys before rotating to another"
            )),
        };
    }
    if record.is_retired(configured) {
        return refuse(format!(
            "key {configured} was retired by a key rotation; configure the current key \
             (fingerprint {current}) in privacy.key"
        ));
    }
    Err(StoreError::KeyMismatch {
        configured: sealer.fingerprint().clone(),
        stored: KeyFingerprint::from_stored(current.to_owned()),
    })
}

/// A table holding sealed envelopes, in the order a rotation re-seals them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    Participants,
    Accounts,
    AccountFlows,
    Verifications,
    Outbox,
    Staff,
    Tickets,
    TicketNotes,
    ContactChangeRequests,
}

/// Where a table's rows are, for the backends' SQL: every name here is a constant.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// The table updated.
    pub table: &'static str,
    /// What the page is read from (the table, or a join giving the context).
    pub from: &'static str,
    /// The key the pages are ordered by, as selected and as updated.
    pub key: &'static str,
    pub key_column: &'static str,
    pub key_is_bytes: bool,
    /// The envelope column, as selected and as updated.
    pub sealed: &'static str,
    pub sealed_column: &'static str,
    /// The column the envelope's associated data is made from.
    pub context: &'static str,
    pub context_is_text: bool,
}

impl TableSpec {
    /// The page query: key, context bytes and envelope of the rows after the first parameter, in
    /// key order, at most the second parameter of them. `text_as_bytes` turns a text column into
    /// bytes in the backend's dialect (`CAST(x AS BLOB)`, `convert_to(x, 'UTF8')`); `placeholder`
    /// writes the n-th parameter (`?`, `$n`).
    pub fn page_sql(
        &self,
        text_as_bytes: fn(&str) -> String,
        placeholder: fn(usize) -> String,
    ) -> String {
        let context = if self.context_is_text {
            text_as_bytes(self.context)
        } else {
            self.context.to_owned()
        };
        format!(
            "SELECT {key}, {context}, {sealed} FROM {from} WHERE {key} > {after} ORDER BY {key} LIMIT {limit}",
            key = self.key,
            sealed = self.sealed,
            from = self.from,
            after = placeholder(1),
            limit = placeholder(2),
        )
    }

    /// The write of `rows` re-sealed rows in one statement. Each row binds, in order, its key,
    /// its new envelope, the values of `columns`, and the envelope read; a row is written only if
    /// it still holds the envelope read. (`VALUES` columns are named `column1`, `column2`, … on
    /// both SQLite and PostgreSQL.)
    pub fn update_sql(
        &self,
        columns: &[&str],
        rows: usize,
        placeholder: fn(usize) -> String,
    ) -> String {
        let width = columns.len() + 3;
        let sets: Vec<String> = std::iter::once(self.sealed_column)
            .chain(columns.iter().copied())
            .enumerate()
            .map(|(index, column)| format!("{column} = v.column{}", index + 2))
            .collect();
        let values: Vec<String> = (0..rows)
            .map(|row| {
                let params: Vec<String> = (1..=width)
                    .map(|column| placeholder(row * width + column))
                    .collect();
                format!("({})", params.join(", "))
            })
            .collect();
        format!(
            "UPDATE {table} SET {sets} FROM (VALUES {values}) AS v \
             WHERE {table}.{key} = v.column1 AND {table}.{sealed} = v.column{width}",
            table = self.table,
            sets = sets.join(", "),
            values = values.join(", "),
            key = self.key_column,
            sealed = self.sealed_column,
        )
    }

    /// How many rows one [`TableSpec::update_sql`] statement may carry: well under SQLite's 32,766
    /// parameters.
    pub fn rows_per_update(&self, columns: usize) -> usize {
        30_000 / (columns + 3)
    }
}

impl SealedTable {
    pub const ALL: [SealedTable; 9] = [
        Self::Participants,
        Self::Accounts,
        Self::AccountFlows,
        Self::Verifications,
        Self::Outbox,
        Self::Staff,
        Self::Tickets,
        Self::TicketNotes,
        Self::ContactChangeRequests,
    ];

    pub fn as_str(self) -> &'static str {
        self.spec().table
    }

    pub fn spec(self) -> TableSpec {
        let plain = |table, sealed, context, context_is_text| TableSpec {
            table,
            from: table,
            key: "id",
            key_column: "id",
            key_is_bytes: false,
            sealed,
            sealed_column: sealed,
            context,
            context_is_text,
        };
        match self {
            Self::Participants => plain("participants", "sealed", "nik_digest", false),
            Self::Accounts => plain("accounts", "sealed", "nik_digest", false),
            Self::AccountFlows => TableSpec {
                key: "token_digest",
                key_column: "token_digest",
                key_is_bytes: true,
                ..plain("account_flows", "sealed", "token_digest", false)
            },
            Self::Verifications => TableSpec {
                key_is_bytes: true,
                ..plain("verifications", "body", "id", false)
            },
            Self::Outbox => plain("outbox", "body", "verification", false),
            Self::Staff => plain("staff", "sealed", "name", true),
            Self::Tickets => plain("tickets", "subject", "number", true),
            Self::TicketNotes => TableSpec {
                table: "ticket_notes",
                from: "ticket_notes JOIN tickets ON tickets.id = ticket_notes.ticket_id",
                key: "ticket_notes.id",
                key_column: "id",
                key_is_bytes: false,
                sealed: "ticket_notes.sealed",
                sealed_column: "sealed",
                context: "tickets.number",
                context_is_text: true,
            },
            Self::ContactChangeRequests => {
                plain("contact_change_requests", "details", "number", true)
            }
        }
    }

    /// The associated data a row's envelope is bound to, from its context column.
    fn context(self, raw: &[u8]) -> Vec<u8> {
        let prefix: &[u8] = match self {
            Self::Staff => b"staff:",
            Self::Tickets | Self::TicketNotes => b"ticket:",
            Self::ContactChangeRequests => b"request:",
            _ => b"",
        };
        [prefix, raw].concat()
    }
}

/// A row's key: tables are paged by an integer id or by a byte string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    Id(i64),
    Bytes(Vec<u8>),
}

impl RowKey {
    /// The key below every key of the table (the first page is read after it).
    pub fn start(table: SealedTable) -> Self {
        if table.spec().key_is_bytes {
            Self::Bytes(Vec::new())
        } else {
            Self::Id(i64::MIN)
        }
    }
}

/// One sealed row as read: its key, its context column (raw) and its envelope.
#[derive(Debug, Clone)]
pub struct SealedRow {
    pub key: RowKey,
    pub context: Vec<u8>,
    pub sealed: Vec<u8>,
}

/// What to write back for a row: the new envelope and the digest columns to set with it, to be
/// written only where the row still holds `old`.
#[derive(Debug, Clone)]
pub struct Resealed {
    pub key: RowKey,
    pub old: Vec<u8>,
    pub sealed: Vec<u8>,
    pub columns: Vec<(&'static str, Option<Vec<u8>>)>,
}

/// Re-seals `row` of `table` under the sealer's current key; `None` when it already is.
pub fn reseal(
    table: SealedTable,
    sealer: &Sealer,
    row: SealedRow,
) -> Result<Option<Resealed>, StoreError> {
    let context = table.context(&row.context);
    let done = |sealed, columns| {
        Some(Resealed {
            key: row.key.clone(),
            old: row.sealed.clone(),
            sealed,
            columns,
        })
    };
    Ok(match table {
        SealedTable::Participants => {
            reseal_participant(&row.sealed, &context, sealer)?.and_then(|p| {
                done(
                    p.sealed,
                    vec![
                        ("nik_digest", Some(p.nik_digest)),
                        ("card_digest", Some(p.card_digest)),
                        ("kpj_digest", p.kpj_digest),
                        ("phone_digest", p.phone_digest),
                        ("email_digest", p.email_digest),
                        ("content_digest", Some(p.content_digest)),
                    ],
                )
            })
        }
        SealedTable::Accounts => reseal_account(&row.sealed, &context, sealer)?.and_then(|a| {
            done(
                a.sealed,
                vec![
                    ("nik_digest", Some(a.nik_digest)),
                    ("email_digest", a.email_digest),
                    ("phone_digest", a.phone_digest),
                ],
            )
        }),
        SealedTable::Verifications => reseal_verification(sealer, &context, &row.sealed)?
            .and_then(|v| done(v.body, vec![("nik_digest", v.nik_digest)])),
        _ => {
            let (plaintext, age) = sealer.open_aged(&row.sealed, &context)?;
            match age {
                KeyAge::Current => None,
                KeyAge::Previous => done(sealer.seal(&plaintext, &context)?, Vec::new()),
            }
        }
    })
}

/// One page of a table walked by a rotation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Rows read.
    pub read: u64,
    /// Rows re-sealed under the new key.
    pub resealed: u64,
    /// Rows changed by someone else between the read and the write (already under the new key).
    pub skipped: u64,
    /// The last key read, to read the next page after; `None` at the end of the table.
    pub last: Option<RowKey>,
}

/// What a backend provides for a rotation.
pub trait KeyRotationStore {
    /// The key record as stored.
    fn key_record(&self) -> impl Future<Output = Result<KeyRecord, StoreError>> + Send;

    /// Reads up to `limit` rows of `table` after `after`, re-seals those under the previous key
    /// ([`reseal`]) and writes them in one transaction, each only if unchanged since the read.
    fn reseal_page(
        &self,
        table: SealedTable,
        after: RowKey,
        limit: u32,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// Appends the rotation's closing audit entry under the log's lock: `verifier` has walked the
    /// entries up to some number; the backend reads the head and the entries appended since under
    /// the lock and hands them to [`closing_record`], then appends what it returns. Returns the
    /// closing entry's number.
    fn append_rotation_anchor(
        &self,
        verifier: AuditVerifier,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Records that the rotation from the sealer's previous key is over: the previous key is
    /// retired and refused from now on.
    fn finish_rotation(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// How far a table's re-sealing went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableTotals {
    pub read: u64,
    pub resealed: u64,
    pub skipped: u64,
}

/// Re-seals every table, `batch` rows per transaction, resting `pause` after each page (so that a
/// serving instance's writes get the database between pages: SQLite has one writer at a time),
/// telling `progress` after each page.
pub async fn reseal_all<S: KeyRotationStore>(
    store: &S,
    batch: u32,
    pause: std::time::Duration,
    mut progress: impl FnMut(SealedTable, &TableTotals, bool),
) -> Result<Vec<(SealedTable, TableTotals)>, StoreError> {
    let mut done = Vec::with_capacity(SealedTable::ALL.len());
    for table in SealedTable::ALL {
        let mut totals = TableTotals::default();
        let mut after = RowKey::start(table);
        loop {
            let page = store.reseal_page(table, after, batch.max(1)).await?;
            totals.read += page.read;
            totals.resealed += page.resealed;
            totals.skipped += page.skipped;
            let finished = page.last.is_none();
            progress(table, &totals, finished);
            match page.last {
                Some(last) => after = last,
                None => break,
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        done.push((table, totals));
    }
    Ok(done)
}

/// Closes a rotation: verifies the whole audit log under both keys (a log found tampered is not
/// anchored: the rotation stops and says where), appends the closing entry, and retires the
/// previous key. Returns the closing entry's number.
pub async fn close<S: KeyRotationStore + AuditStore>(
    store: &S,
    sealer: &Sealer,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    if sealer.previous_fingerprint().is_none() {
        return Err(StoreError::KeyRotation(
            "no rotation to finish: privacy.previous_key is not set".into(),
        ));
    }
    let mut verifier = AuditVerifier::new(AuditChain::for_sealer(sealer));
    let mut after = 0;
    loop {
        let page = store.audit_entries(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            verifier.check(entry).map_err(not_whole)?;
        }
    }
    if let Some(seq) = verifier.unverified() {
        return Err(not_whole(Tamper::Changed { seq }));
    }
    // Appends go on meanwhile: the closing entry checks those under the log's lock.
    let anchor = store.append_rotation_anchor(verifier, at).await?;
    store.finish_rotation().await?;
    Ok(anchor)
}

fn not_whole(tamper: Tamper) -> StoreError {
    StoreError::KeyRotation(format!(
        "the audit log is not whole ({tamper}): the rotation was not finished; see `gerbang audit verify`"
    ))
}

/// The closing entry of a rotation, decided under the log's lock: the entries appended since the
/// walk are checked like the others, the head must name the last of them, and nothing may be left
/// unverified. Returns the record and the number it will have.
pub fn closing_record(
    mut verifier: AuditVerifier,
    appended: &[AuditEntry],
    head: AuditHead,
    at: DateTime<Utc>,
    sealer: &Sealer,
) -> Result<(AuditRecord, i64), StoreError> {
    for entry in appended {
        verifier.check(entry).map_err(not_whole)?;
    }
    if let Some(seq) = verifier.unverified() {
        return Err(not_whole(Tamper::Changed { seq }));
    }
    let digest = verifier.digest().clone();
    let last = verifier.finish(head).map_err(not_whole)?;
    let from = sealer
        .previous_fingerprint()
        .map(|fingerprint| fingerprint.as_str())
        .unwrap_or_default();
    Ok((
        digest.rotation_record(at, from, sealer.fingerprint().as_str()),
        last.seq + 1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealing::PersonalDataKey;

    fn keys() -> (PersonalDataKey, PersonalDataKey, PersonalDataKey) {
        (
            PersonalDataKey::generate(),
            PersonalDataKey::generate(),
            PersonalDataKey::generate(),
        )
    }

    fn record(
        current: Option<&Sealer>,
        previous: Option<&Sealer>,
        retired: Option<&Sealer>,
    ) -> KeyRecord {
        let fp = |s: Option<&Sealer>| s.map(|s| s.fingerprint().as_str().to_owned());
        KeyRecord {
            current: fp(current),
            previous: fp(previous),
            retired: fp(retired),
        }
    }

    fn refused(result: Result<KeyDecision, StoreError>, says: &str) {
        match result {
            Err(StoreError::KeyRotation(text)) => assert!(text.contains(says), "{text}"),
            other => panic!("expected a refusal saying {says:?}, got {other:?}"),
        }
    }

    #[test]
    fn every_combination_of_configured_and_recorded_keys_is_judged() {
        let (a, b, c) = keys();
        let old = Sealer::new(&a).unwrap();
        let new = Sealer::new(&b).unwrap();
        let rotating = Sealer::rotating(&b, &a).unwrap();
        let next = Sealer::rotating(&c, &b).unwrap();

        // A new database records the key; a previous key there is a mistake.
        assert_eq!(
            judge_key(&KeyRecord::default(), &old).unwrap(),
            KeyDecision::Record
        );
        refused(
            judge_key(&KeyRecord::default(), &rotating),
            "database is new",
        );
        // The recorded key alone.
        assert_eq!(
            judge_key(&record(Some(&old), None, None), &old).unwrap(),
            KeyDecision::Accept
        );
        // Both keys over the old record: the rotation begins; then it is accepted.
        assert_eq!(
            judge_key(&record(Some(&old), None, None), &rotating).unwrap(),
            KeyDecision::BeginRotation
        );
        let running = record(Some(&new), Some(&old), None);
        assert_eq!(judge_key(&running, &rotating).unwrap(), KeyDecision::Accept);
        // During it, either key alone is refused, the new one with advice.
        refused(judge_key(&running, &new), "configure the previous key");
        assert!(matches!(
            judge_key(&running, &old),
            Err(StoreError::KeyMismatch { .. })
        ));
        // Rotating on before this one has finished is refused.
        refused(judge_key(&running, &next), "has not finished");
        // Finished: the new key alone; the old one is refused alone and as the previous.
        let finished = record(Some(&new), None, Some(&old));
        assert_eq!(judge_key(&finished, &new).unwrap(), KeyDecision::Accept);
        refused(judge_key(&finished, &old), "retired");
        refused(
            judge_key(&finished, &rotating),
            "remove privacy.previous_key",
        );
        // A previous key the database never had.
        let stranger = Sealer::rotating(&b, &c).unwrap();
        refused(
            judge_key(&record(Some(&new), None, None), &stranger),
            "not a key this database",
        );
        // And the next rotation may begin.
        assert_eq!(
            judge_key(&finished, &next).unwrap(),
            KeyDecision::BeginRotation
        );
    }
}
