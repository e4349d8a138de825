//! The audit log: one append-only sequence of security events — account events (registrations,
//! locks, unlocks, contact and password changes, device revocations) and, as the back office grows,
//! staff sign-ins and actions — in which tampering shows.
//!
//! Entries are numbered 1, 2, 3, … with no gaps. Each carries the MAC of the one before it and its
//! own MAC over its number, its fields and that previous MAC, keyed by a secret derived from the
//! configured personal-data key ([`Sealer::audit_key`](crate::Sealer::audit_key)). A small head row
//! holds the number and MAC of the last entry; a backend appends under a lock on it, so two writers
//! (two instances on PostgreSQL) can never fork the chain.
//!
//! [`AuditVerifier`] walks the entries in order and names the first one that was changed (its MAC
//! no longer matches), removed (a number is missing, or entries after the last one the head names
//! are gone) or reordered (an entry does not follow the one before it). Someone with write access
//! to the database but not the key can delete or edit rows; they cannot make the chain whole again.
//! A key rotation (`gerbang key rotate`) ends with one entry, [`KEY_ROTATED`], MACed under the new
//! key, that records a SHA-256 over every entry before it. Once the old key is retired, the entries
//! MACed under it are checked against that hash instead of their own MACs.
//!
//! What the chain alone cannot show is the removal of the newest entries together with a matching
//! edit of the head: export the log (or at least `gerbang audit verify`'s closing head) elsewhere to
//! anchor it.

use std::future::Future;

use chrono::{DateTime, Utc};
use hmac::digest::{KeyInit, Update};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::error::StoreError;
use crate::sealing::Sealer;

/// The length of an entry's MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;

/// An entry's MAC.
pub type AuditMac = [u8; MAC_LEN];

/// What the first entry names as the one before it.
pub const GENESIS: AuditMac = [0; MAC_LEN];

/// Who acted, as the log records it.
pub mod actor {
    /// The participant, in their own session or flow.
    pub const PARTICIPANT: &str = "participant";
    /// gerbang itself (a lockout after wrong passwords).
    pub const SYSTEM: &str = "system";
    /// An operator at the command line (`gerbang accounts unlock --officer NAME`): `operator:NAME`.
    pub fn operator(name: &str) -> String {
        format!("operator:{name}")
    }
}

/// One event to append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    /// `participant`, `system`, `operator:NAME`, …
    pub actor: String,
    /// Stable snake_case name, e.g. `locked_temporarily`.
    pub action: String,
    /// The account concerned (its internal row id), if any.
    pub account: Option<i64>,
    /// The complaint ticket the action was taken under, if any.
    pub ticket: Option<String>,
    /// What else the reader needs (never a password, code or full contact).
    pub detail: String,
}

/// An entry as stored. The MACs are kept as read (any length) so that a damaged row is reported,
/// not refused while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub record: AuditRecord,
    /// The account's public id (`acct_…`), read beside the entry for people and exports; not part
    /// of the MAC (the row id is).
    pub account_public_id: Option<String>,
    pub prev_mac: Vec<u8>,
    pub mac: Vec<u8>,
}

/// The number and MAC of the last entry, as the head row holds them (`0` and [`GENESIS`] while the
/// log is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub mac: AuditMac,
}

impl AuditHead {
    pub const EMPTY: AuditHead = AuditHead {
        seq: 0,
        mac: GENESIS,
    };

    /// The head as read from a row; a MAC of the wrong length is corruption.
    pub fn from_row(seq: i64, mac: &[u8]) -> Result<Self, StoreError> {
        let mac = AuditMac::try_from(mac)
            .map_err(|_| StoreError::Corrupt(format!("audit head MAC of {} bytes", mac.len())))?;
        Ok(Self { seq, mac })
    }
}

/// Computes the chain's MACs. Cheap to clone.
///
/// During a key rotation it also holds the previous key's audit secret: entries are MACed with the
/// current one, and an entry MACed with either verifies.
#[derive(Clone)]
pub struct AuditChain {
    key: Hmac<Sha256>,
    previous: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for AuditChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditChain(..)")
    }
}

/// Feeds one entry's number, fields and previous MAC to a MAC or a hash. Variable-length fields
/// are length-prefixed, so that no two different records feed the same bytes. (This is the chain's
/// format since the first entry: changing it would fail every log already written.)
fn feed(out: &mut impl Update, seq: i64, prev: &[u8], record: &AuditRecord) {
    fn field(out: &mut impl Update, bytes: &[u8]) {
        out.update(&(bytes.len() as u64).to_be_bytes());
        out.update(bytes);
    }
    out.update(&seq.to_be_bytes());
    out.update(&record.at.timestamp_millis().to_be_bytes());
    field(out, record.actor.as_bytes());
    field(out, record.action.as_bytes());
    match record.account {
        Some(id) => {
            out.update(&[1]);
            out.update(&id.to_be_bytes());
        }
        None => out.update(&[0]),
    }
    match &record.ticket {
        Some(ticket) => {
            out.update(&[1]);
            field(out, ticket.as_bytes());
        }
        None => out.update(&[0]),
    }
    field(out, record.detail.as_bytes());
    field(out, prev);
}

fn hmac_key(key: &[u8; 32]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: a 32-byte one cannot be refused.
    <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()))
}

impl AuditChain {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: hmac_key(&key),
            previous: None,
        }
    }

    /// The chain of a store's sealer: its current audit key, and the previous one while rotating.
    pub fn for_sealer(sealer: &Sealer) -> Self {
        Self {
            key: hmac_key(&sealer.audit_key()),
            previous: sealer.previous_audit_key().as_ref().map(hmac_key),
        }
    }

    fn mac_with(key: &Hmac<Sha256>, seq: i64, prev: &[u8], record: &AuditRecord) -> AuditMac {
        let mut mac = key.clone();
        Mac::update(&mut mac, b"gerbang audit v1");
        feed(&mut mac, seq, prev, record);
        mac.finalize().into_bytes().into()
    }

    /// The MAC of entry `seq` holding `record` after an entry whose MAC is `prev`.
    pub fn mac(&self, seq: i64, prev: &[u8], record: &AuditRecord) -> AuditMac {
        Self::mac_with(&self.key, seq, prev, record)
    }

    /// Whether `mac` is entry `seq`'s MAC under the current key or, while rotating, the previous.
    pub fn verifies(&self, seq: i64, prev: &[u8], record: &AuditRecord, mac: &[u8]) -> bool {
        let matches = |key: &Hmac<Sha256>| Self::mac_with(key, seq, prev, record).as_slice() == mac;
        matches(&self.key) || self.previous.as_ref().is_some_and(matches)
    }

    /// Numbers and MACs `records` after `head`: the rows to insert, and the head after them.
    pub fn link(
        &self,
        head: AuditHead,
        records: Vec<AuditRecord>,
    ) -> (Vec<LinkedRecord>, AuditHead) {
        let mut head = head;
        let linked = records
            .into_iter()
            .map(|record| {
                let seq = head.seq + 1;
                let mac = self.mac(seq, &head.mac, &record);
                let row = LinkedRecord {
                    seq,
                    record,
                    prev_mac: head.mac,
                    mac,
                };
                head = AuditHead { seq, mac };
                row
            })
            .collect();
        (linked, head)
    }
}

/// A record numbered and MACed, ready to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedRecord {
    pub seq: i64,
    pub record: AuditRecord,
    pub prev_mac: AuditMac,
    pub mac: AuditMac,
}

/// The first sign of tampering that [`AuditVerifier`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Tamper {
    /// Entry `seq` is not there: the next one found is `found`.
    #[error("entry {seq} was removed (the next entry found is {found})")]
    Removed { seq: i64, found: i64 },
    /// Entry `seq` does not follow the one before it.
    #[error(
        "entry {seq} does not follow entry {before}: entries were reordered, or one was removed and the rest renumbered"
    )]
    Reordered { seq: i64, before: i64 },
    /// Entry `seq` is not what was written.
    #[error("entry {seq} was changed after it was written")]
    Changed { seq: i64 },
    /// The log ends at `last` but the head says `head` entries were written.
    #[error("the entries after {last} were removed (the log's head says {head} were written)")]
    Truncated { last: i64, head: i64 },
    /// An entry up to `through` was changed after a key rotation anchored them (entry
    /// `through + 1`); which one can be told only with the retired key.
    #[error(
        "an entry up to {through} was changed after the key rotation anchored them (entry {anchor})"
    )]
    ChangedBeforeRotation { through: i64, anchor: i64 },
    /// The head row does not name the last entry.
    #[error("the log's head was changed: it names entry {head}, the last entry is {last}")]
    HeadChanged { head: i64, last: i64 },
}

/// What a key rotation's closing entry (action [`KEY_ROTATED`]) records about the entries before
/// it: a SHA-256 over every one of them, fields and MACs, in order. It is itself MACed under the new
/// key, so after the old key is retired the entries it covers still cannot be changed unseen.
pub const KEY_ROTATED: &str = "key_rotated";

/// A running SHA-256 over the log's entries in order; see [`KEY_ROTATED`].
#[derive(Debug, Clone, Default)]
pub struct AuditDigest {
    hash: Sha256,
    through: i64,
}

impl AuditDigest {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of the last entry absorbed.
    pub fn through(&self) -> i64 {
        self.through
    }

    /// Adds the next entry; entries must come in order, without gaps.
    pub fn absorb(&mut self, entry: &AuditEntry) -> Result<(), Tamper> {
        if entry.seq != self.through + 1 {
            return Err(Tamper::Removed {
                seq: self.through + 1,
                found: entry.seq,
            });
        }
        feed(&mut self.hash, entry.seq, &entry.prev_mac, &entry.record);
        Update::update(&mut self.hash, &(entry.mac.len() as u64).to_be_bytes());
        Update::update(&mut self.hash, &entry.mac);
        self.through = entry.seq;
        Ok(())
    }

    fn value(&self) -> [u8; 32] {
        sha2::Digest::finalize(self.hash.clone()).into()
    }

    /// The closing entry of a rotation from key `from` to key `to`, anchoring what was absorbed.
    pub fn rotation_record(&self, at: DateTime<Utc>, from: &str, to: &str) -> AuditRecord {
        let value: String = self.value().iter().map(|b| format!("{b:02x}")).collect();
        AuditRecord {
            at,
            actor: actor::SYSTEM.into(),
            action: KEY_ROTATED.into(),
            account: None,
            ticket: None,
            detail: format!(
                "from={from} to={to} through={} sha256={value}",
                self.through
            ),
        }
    }
}

/// The `through` and `sha256` a rotation's closing entry records.
fn anchor_of(record: &AuditRecord) -> Option<(i64, String)> {
    if record.action != KEY_ROTATED {
        return None;
    }
    let mut through = None;
    let mut value = None;
    for part in record.detail.split(' ') {
        if let Some(number) = part.strip_prefix("through=") {
            through = number.parse().ok();
        } else if let Some(hex) = part.strip_prefix("sha256=") {
            value = Some(hex.to_owned());
        }
    }
    through.zip(value)
}

/// Walks the log in order; see the module documentation.
///
/// An entry whose MAC none of the chain's keys reproduces is either changed or was MACed under a
/// key retired by a rotation. The walk goes on; the rotation's closing entry, if it covers it and
/// its SHA-256 matches, clears it, otherwise the entry is named when the walk ends.
#[derive(Debug, Clone)]
pub struct AuditVerifier {
    chain: AuditChain,
    last: AuditHead,
    digest: AuditDigest,
    /// The first entry whose MAC did not verify and that no rotation anchor has covered yet.
    unverified: Option<i64>,
}

impl AuditVerifier {
    pub fn new(chain: AuditChain) -> Self {
        Self {
            chain,
            last: AuditHead::EMPTY,
            digest: AuditDigest::new(),
            unverified: None,
        }
    }

    /// The SHA-256 over the entries walked so far (see [`KEY_ROTATED`]).
    pub fn digest(&self) -> &AuditDigest {
        &self.digest
    }

    /// The first entry walked so far whose MAC did not verify and that no rotation covered.
    pub fn unverified(&self) -> Option<i64> {
        self.unverified
    }

    /// How many entries were walked so far (the number of the last one).
    pub fn checked(&self) -> i64 {
        self.last.seq
    }

    /// Checks the next entry in order. A removed or reordered entry is an error at once; an entry
    /// whose MAC does not verify is not (a rotation's closing entry may still cover it): see
    /// [`AuditVerifier::unverified`], and [`AuditVerifier::finish`], which reports it.
    pub fn check(&mut self, entry: &AuditEntry) -> Result<(), Tamper> {
        let expected = self.last.seq + 1;
        if entry.seq > expected {
            return Err(Tamper::Removed {
                seq: expected,
                found: entry.seq,
            });
        }
        if entry.seq < expected || entry.prev_mac.as_slice() != self.last.mac.as_slice() {
            if entry.seq == expected && self.unverified == Some(self.last.seq) {
                // The entry before failed its MAC and this one does not name its stored MAC:
                // that entry's MAC column was changed.
                return Err(Tamper::Changed { seq: self.last.seq });
            }
            return Err(Tamper::Reordered {
                seq: entry.seq,
                before: self.last.seq,
            });
        }
        let mac = AuditMac::try_from(entry.mac.as_slice()).ok().filter(|mac| {
            self.chain
                .verifies(entry.seq, &self.last.mac, &entry.record, mac)
        });
        match mac {
            Some(_) => {
                if let Some((through, value)) = anchor_of(&entry.record) {
                    let expected: String = self
                        .digest
                        .value()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    if through != self.digest.through() || value != expected {
                        return Err(Tamper::ChangedBeforeRotation {
                            through,
                            anchor: entry.seq,
                        });
                    }
                    self.unverified = None;
                }
            }
            None => {
                self.unverified.get_or_insert(entry.seq);
            }
        }
        self.digest.absorb(entry)?;
        self.last = AuditHead {
            seq: entry.seq,
            mac: mac.unwrap_or_else(|| AuditMac::try_from(entry.mac.as_slice()).unwrap_or(GENESIS)),
        };
        Ok(())
    }

    /// Ends the walk against the head row; returns the last entry's number and MAC.
    pub fn finish(self, head: AuditHead) -> Result<AuditHead, Tamper> {
        if let Some(seq) = self.unverified {
            return Err(Tamper::Changed { seq });
        }
        if head.seq > self.last.seq {
            return Err(Tamper::Truncated {
                last: self.last.seq,
                head: head.seq,
            });
        }
        if head != self.last {
            return Err(Tamper::HeadChanged {
                head: head.seq,
                last: self.last.seq,
            });
        }
        Ok(self.last)
    }
}

/// Storage of the audit log.
pub trait AuditStore {
    /// Appends `records` in order, numbered and chained after the current head, in one transaction.
    fn append_audit(
        &self,
        records: Vec<AuditRecord>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` entries numbered above `after`, in order.
    fn audit_entries(
        &self,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    /// The head row.
    fn audit_head(&self) -> impl Future<Output = Result<AuditHead, StoreError>> + Send;

    /// The newest `limit` entries that match every given part of `filter`, newest first.
    fn audit_recent(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
}

/// What the console's audit view filters on; every part is an exact match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// The account's public id (`acct_…`).
    pub account: Option<String>,
    pub ticket: Option<String>,
}

/// What a walk of the whole log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Whole { head: AuditHead, entries: i64 },
    Tampered(Tamper),
}

/// Entries read per query by [`walk`].
const WALK_PAGE: u32 = 10_000;

/// Walks every entry in order, then checks the head against the last one. The head is read after
/// the entries (an append writes both in one transaction, so the head can only be ahead of what was
/// read); when it is ahead, the entries appended meanwhile are read and checked too.
pub async fn walk<S: AuditStore>(store: &S, chain: AuditChain) -> Result<Verdict, StoreError> {
    let mut verifier = AuditVerifier::new(chain);
    let mut after = 0;
    loop {
        let page = store.audit_entries(after, WALK_PAGE).await?;
        if page.is_empty() {
            let head = store.audit_head().await?;
            if head.seq > after && !store.audit_entries(after, 1).await?.is_empty() {
                continue;
            }
            let entries = verifier.checked();
            return Ok(match verifier.finish(head) {
                Ok(head) => Verdict::Whole { head, entries },
                Err(tamper) => Verdict::Tampered(tamper),
            });
        }
        for entry in &page {
            if let Err(tamper) = verifier.check(entry) {
                return Ok(Verdict::Tampered(tamper));
            }
            after = entry.seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chain() -> AuditChain {
        AuditChain::new([7; 32])
    }

    fn record(n: i64) -> AuditRecord {
        AuditRecord {
            at: DateTime::from_timestamp_millis(1_800_000_000_000 + n).unwrap(),
            actor: actor::PARTICIPANT.into(),
            action: "registered".into(),
            account: Some(n),
            ticket: None,
            detail: format!("entry {n}"),
        }
    }

    fn written(count: i64) -> (Vec<AuditEntry>, AuditHead) {
        let (rows, head) = chain().link(AuditHead::EMPTY, (1..=count).map(record).collect());
        let entries = rows
            .into_iter()
            .map(|row| AuditEntry {
                seq: row.seq,
                record: row.record,
                account_public_id: None,
                prev_mac: row.prev_mac.to_vec(),
                mac: row.mac.to_vec(),
            })
            .collect();
        (entries, head)
    }

    fn verify(entries: &[AuditEntry], head: AuditHead) -> Result<AuditHead, Tamper> {
        let mut verifier = AuditVerifier::new(chain());
        for entry in entries {
            verifier.check(entry)?;
        }
        verifier.finish(head)
    }

    #[test]
    fn an_untouched_log_verifies_to_its_head() {
        let (entries, head) = written(5);
        assert_eq!(head.seq, 5);
        assert_eq!(verify(&entries, head), Ok(head));
        assert_eq!(verify(&[], AuditHead::EMPTY), Ok(AuditHead::EMPTY));
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_the_first_entry_it_touches() {
        let (entries, head) = written(6);

        let mut changed = entries.clone();
        changed[2].record.detail = "entry 3, edited".into();
        assert_eq!(verify(&changed, head), Err(Tamper::Changed { seq: 3 }));

        let mut actor_changed = entries.clone();
        actor_changed[4].record.actor = actor::operator("mallory");
        assert_eq!(
            verify(&actor_changed, head),
            Err(Tamper::Changed { seq: 5 })
        );

        let mut removed = entries.clone();
        removed.remove(3);
        assert_eq!(
            verify(&removed, head),
            Err(Tamper::Removed { seq: 4, found: 5 })
        );

        // Removed and the rest renumbered to close the gap.
        let mut renumbered = entries.clone();
        renumbered.remove(1);
        for (i, entry) in renumbered.iter_mut().enumerate() {
            entry.seq = i as i64 + 1;
        }
        assert_eq!(
            verify(&renumbered, AuditHead { seq: 5, ..head }),
            Err(Tamper::Reordered { seq: 2, before: 1 })
        );

        // Two entries swapped, numbers kept in place.
        let mut swapped = entries.clone();
        swapped.swap(3, 4);
        swapped[3].seq = 4;
        swapped[4].seq = 5;
        assert_eq!(
            verify(&swapped, head),
            Err(Tamper::Reordered { seq: 4, before: 3 })
        );

        let truncated = &entries[..4];
        assert_eq!(
            verify(truncated, head),
            Err(Tamper::Truncated { last: 4, head: 6 })
        );

        let forged_head = AuditHead {
            seq: 6,
            mac: [9; 32],
        };
        assert_eq!(
            verify(&entries, forged_head),
            Err(Tamper::HeadChanged { head: 6, last: 6 })
        );
    }

    #[test]
    fn an_edited_mac_column_is_named_as_that_entry_changed() {
        let (mut entries, head) = written(5);
        entries[2].mac[0] ^= 1;
        assert_eq!(verify(&entries, head), Err(Tamper::Changed { seq: 3 }));
    }

    #[test]
    fn another_key_does_not_verify_the_log() {
        let (entries, head) = written(2);
        let mut verifier = AuditVerifier::new(AuditChain::new([8; 32]));
        for entry in &entries {
            verifier.check(entry).unwrap();
        }
        assert_eq!(verifier.finish(head), Err(Tamper::Changed { seq: 1 }));
    }

    fn entries_of(rows: Vec<LinkedRecord>) -> Vec<AuditEntry> {
        rows.into_iter()
            .map(|row| AuditEntry {
                seq: row.seq,
                record: row.record,
                account_public_id: None,
                prev_mac: row.prev_mac.to_vec(),
                mac: row.mac.to_vec(),
            })
            .collect()
    }

    /// Entries 1–4 under the old key [7; 32], a rotation's closing entry and two more under the
    /// new key [9; 32].
    fn rotated() -> (Vec<AuditEntry>, AuditHead) {
        let (mut entries, head) = written(4);
        let mut digest = AuditDigest::new();
        for entry in &entries {
            digest.absorb(entry).unwrap();
        }
        let closing = digest.rotation_record(record(5).at, "aaaaaaaaaaaa", "bbbbbbbbbbbb");
        let (rows, head) = AuditChain::new([9; 32]).link(head, vec![closing, record(6), record(7)]);
        entries.extend(entries_of(rows));
        (entries, head)
    }

    fn verify_with(
        chain: AuditChain,
        entries: &[AuditEntry],
        head: AuditHead,
    ) -> Result<AuditHead, Tamper> {
        let mut verifier = AuditVerifier::new(chain);
        for entry in entries {
            verifier.check(entry)?;
        }
        verifier.finish(head)
    }

    #[test]
    fn after_a_rotation_the_new_key_alone_verifies_the_whole_log() {
        let (entries, head) = rotated();
        assert_eq!(entries[4].record.action, KEY_ROTATED);
        assert_eq!(
            verify_with(AuditChain::new([9; 32]), &entries, head),
            Ok(head)
        );
        // The old key alone does not verify what came after.
        assert_eq!(
            verify_with(AuditChain::new([7; 32]), &entries, head),
            Err(Tamper::Changed { seq: 5 })
        );
    }

    #[test]
    fn an_entry_changed_before_the_rotation_is_caught_by_its_anchor() {
        let (mut entries, head) = rotated();
        entries[1].record.detail.push_str(", edited");
        assert_eq!(
            verify_with(AuditChain::new([9; 32]), &entries, head),
            Err(Tamper::ChangedBeforeRotation {
                through: 4,
                anchor: 5
            })
        );
        // Nor can the anchor be rewritten to match: its MAC is under the new key.
        let (mut entries, head) = rotated();
        entries[4].record.detail = entries[4].record.detail.replace("sha256=", "sha256=00");
        assert_eq!(
            verify_with(AuditChain::new([9; 32]), &entries, head),
            Err(Tamper::Changed { seq: 1 })
        );
    }

    proptest! {
        /// Any single edit of any field of any entry is caught at that entry.
        #[test]
        fn any_edit_of_one_entry_is_caught_there(
            count in 1i64..20,
            pick in any::<prop::sample::Index>(),
            what in 0u8..6,
            text in "[a-z]{1,8}",
        ) {
            let (mut entries, head) = written(count);
            let i = pick.index(entries.len());
            let record = &mut entries[i].record;
            match what {
                0 => record.detail.push_str(&text),
                1 => record.action.push_str(&text),
                2 => record.actor.push_str(&text),
                3 => record.ticket = Some(text.clone()),
                4 => record.account = record.account.map(|a| a + 1),
                _ => record.at += chrono::Duration::milliseconds(1),
            }
            prop_assert_eq!(
                verify(&entries, head),
                Err(Tamper::Changed { seq: i as i64 + 1 })
            );
        }
    }
}
