//! Storage of the participant registry: lookup by NIK, card or KPJ number, and bulk import.
//!
//! A participant is stored as one sealed envelope (the serialised [`Participant`]) plus keyed digests
//! of the values it is found by. [`SealedParticipant`] does that preparation once, for every backend.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use gerbang_domain::{
    JknCardNumber, KpjNumber, Nik, Participant, ParticipantRecord, ParticipantStatus,
};

use crate::error::StoreError;
use crate::sealing::{DIGEST_LEN, KeyAge, LookupKind, Sealer};

/// What a participant is looked up by.
#[derive(Debug, Clone, Copy)]
pub enum ParticipantKey<'a> {
    Nik(&'a Nik),
    CardNumber(&'a JknCardNumber),
    KpjNumber(&'a KpjNumber),
}

/// A participant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredParticipant {
    pub id: i64,
    pub participant: Participant,
    pub updated_at: DateTime<Utc>,
}

/// Why one row of an import batch could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantConflict {
    /// The card number already belongs to a participant with another NIK.
    CardNumberTaken,
    /// The KPJ number already belongs to a participant with another NIK.
    KpjNumberTaken,
}

impl ParticipantConflict {
    /// The conflict a unique-index violation stands for, from the constraint name or message the
    /// database gave (`participants_card_digest_key`, `UNIQUE constraint failed: participants.card_digest`).
    pub fn from_violation(text: &str) -> Option<Self> {
        if text.contains("card_digest") {
            Some(Self::CardNumberTaken)
        } else if text.contains("kpj_digest") {
            Some(Self::KpjNumberTaken)
        } else {
            None
        }
    }

    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::CardNumberTaken => "card_number_taken",
            Self::KpjNumberTaken => "kpj_number_taken",
        }
    }

    pub fn message_en(self) -> &'static str {
        match self {
            Self::CardNumberTaken => {
                "this card number already belongs to a participant with another NIK"
            }
            Self::KpjNumberTaken => {
                "this KPJ number already belongs to a participant with another NIK"
            }
        }
    }
}

/// A row that was refused, by the position its caller gave it (a line of the import file; the
/// index in the batch for [`ParticipantImport::upsert_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowConflict {
    pub position: u64,
    pub conflict: ParticipantConflict,
}

/// What happened to each row of an import batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New NIKs.
    pub inserted: u64,
    /// Known NIKs whose record changed.
    pub updated: u64,
    /// Known NIKs whose record is identical: nothing was written.
    pub unchanged: u64,
    /// Rows replaced by a later row of the same batch with the same NIK (the later one wins).
    pub superseded: u64,
    /// Rows refused because a unique number belongs to someone else.
    pub conflicts: Vec<RowConflict>,
}

impl BatchOutcome {
    /// Counts `attempted` rows of which `inserted` were new, `updated` changed and the rest unchanged.
    pub fn record(&mut self, attempted: usize, inserted: u64, updated: u64) {
        self.inserted += inserted;
        self.updated += updated;
        self.unchanged += (attempted as u64).saturating_sub(inserted + updated);
    }

    /// Takes in what the commit settled: rows counted as inserted that a first load then found
    /// superseded or refused.
    pub fn settle(&mut self, commit: CommitOutcome) {
        let undone = commit.superseded + commit.conflicts.len() as u64;
        self.inserted = self.inserted.saturating_sub(undone);
        self.superseded += commit.superseded;
        self.conflicts.extend(commit.conflicts);
    }

    pub fn absorb(&mut self, other: BatchOutcome) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.superseded += other.superseded;
        self.conflicts.extend(other.conflicts);
    }
}

/// What committing an import settled. An import into an empty registry (a first load) writes its
/// rows without lookup indexes and judges them only when it commits, once every row is in: the
/// rows it then finds superseded by a later row of the same NIK, or refused because an earlier
/// NIK holds their card or KPJ number, were counted as inserted by
/// [`ParticipantImport::upsert_sealed`] and are reported here. Always empty for other imports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    pub superseded: u64,
    /// In file order.
    pub conflicts: Vec<RowConflict>,
}

/// Registry storage.
pub trait ParticipantStore {
    /// An import in progress: one transaction, committed whole or not at all.
    type Import: ParticipantImport;

    fn find_participant(
        &self,
        key: ParticipantKey<'_>,
    ) -> impl Future<Output = Result<Option<StoredParticipant>, StoreError>> + Send;

    fn count_participants(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Starts an import. Nothing it writes is visible to others until [`ParticipantImport::commit`];
    /// dropping it uncommitted (a crash, an error) leaves the registry as it was. Into an empty
    /// registry it is a first load ([`CommitOutcome`]).
    fn begin_participant_import(
        &self,
    ) -> impl Future<Output = Result<Self::Import, StoreError>> + Send;
}

/// One transaction of idempotent upserts keyed by NIK.
pub trait ParticipantImport: Send {
    /// The sealer the rows must be sealed with ([`SealedParticipant::seal_batch`]), so that a
    /// caller can seal the next batch on another thread while this one is written.
    fn sealer(&self) -> &Sealer;

    /// Upserts a batch sealed by [`SealedParticipant::seal_batch`] (`superseded`: the rows it left
    /// out because a later row of the batch has the same NIK): new NIKs are inserted, changed
    /// records updated, identical ones left alone. A row whose card or KPJ number belongs to
    /// another NIK is refused alone; the rest still load. Positions must increase from batch to
    /// batch. In a first load every row counts as inserted until the commit settles them.
    fn upsert_sealed(
        &mut self,
        rows: Vec<SealedParticipant>,
        superseded: u64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<BatchOutcome, StoreError>> + Send;

    /// Whether this import began on an empty registry (a first load): every row it is given is new,
    /// so [`find_unchanged`](Self::find_unchanged) need not be asked.
    fn is_first_load(&self) -> bool;

    /// Which of `rows` the registry holds exactly as they are (the same NIK with the same content
    /// digest), in the order given: an import need neither seal nor write those. Sees this
    /// import's own writes. In a first load none (the registry was empty), without a query.
    fn find_unchanged(
        &mut self,
        rows: &[DigestedParticipant],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Seals `batch` here, then [`upsert_sealed`](Self::upsert_sealed).
    fn upsert_batch(
        &mut self,
        batch: &[Participant],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<BatchOutcome, StoreError>> + Send {
        let positions: Vec<u64> = (0..batch.len() as u64).collect();
        let sealed = SealedParticipant::seal_batch(batch, &positions, self.sealer());
        async move {
            let (rows, superseded) = sealed?;
            self.upsert_sealed(rows, superseded, now).await
        }
    }

    /// Makes the import visible. A first load builds its lookup indexes here and reports the rows
    /// it refused or found superseded only now.
    fn commit(self) -> impl Future<Output = Result<CommitOutcome, StoreError>> + Send;
}

/// A participant ready to be written: the sealed envelope and the digests it is found by.
#[derive(Debug, Clone)]
pub struct SealedParticipant {
    /// The caller's number for the row (a line of the import file), reported back in a
    /// [`RowConflict`].
    pub position: u64,
    pub nik_digest: Vec<u8>,
    pub card_digest: Vec<u8>,
    pub kpj_digest: Option<Vec<u8>>,
    pub phone_digest: Option<Vec<u8>>,
    pub email_digest: Option<Vec<u8>>,
    /// Digest of the whole record: equal digests mean an identical record.
    pub content_digest: Vec<u8>,
    pub sealed: Vec<u8>,
    pub status: &'static str,
}

impl SealedParticipant {
    pub fn seal(
        position: u64,
        participant: &Participant,
        sealer: &Sealer,
    ) -> Result<Self, StoreError> {
        let record = Record::of(participant, sealer)?;
        Self::seal_record(position, participant, record, sealer)
    }

    /// Seals a batch (`positions[i]`: the caller's number for `batch[i]`), keeping only the last
    /// row of each NIK. Returns the rows to write, in batch order, and how many earlier rows were
    /// superseded. (One thread: sealing a batch on two was measured slower on two cores, where it
    /// takes time from the thread that writes.) Each record is serialised, sealed and dropped in
    /// turn, which a first load measured cheaper than [`DigestedParticipant::digest_batch`] then
    /// sealing (memory moved and held a batch longer: 8 % of a first load's rate at 1 M rows).
    pub fn seal_batch(
        batch: &[Participant],
        positions: &[u64],
        sealer: &Sealer,
    ) -> Result<(Vec<Self>, u64), StoreError> {
        debug_assert_eq!(batch.len(), positions.len());
        let (last, superseded) = last_row_of_each_nik(batch);
        let mut rows = Vec::with_capacity(batch.len() - superseded as usize);
        for ((participant, position), last) in batch.iter().zip(positions).zip(last) {
            if last {
                rows.push(Self::seal(*position, participant, sealer)?);
            }
        }
        Ok((rows, superseded))
    }

    /// Seals a serialised record and computes the digests it is found by.
    fn seal_record(
        position: u64,
        participant: &Participant,
        record: Record,
        sealer: &Sealer,
    ) -> Result<Self, StoreError> {
        let digest = |kind, value: &str| sealer.digest(kind, value.as_bytes()).to_vec();
        Ok(Self {
            position,
            sealed: sealer.seal(&record.json, &record.nik_digest)?,
            card_digest: digest(LookupKind::CardNumber, participant.card_number.as_str()),
            kpj_digest: participant
                .kpj_number
                .as_ref()
                .map(|k| digest(LookupKind::KpjNumber, k.as_str())),
            phone_digest: participant
                .phone
                .as_ref()
                .map(|p| digest(LookupKind::Phone, p.e164())),
            email_digest: participant
                .email
                .as_ref()
                .map(|e| digest(LookupKind::Email, e.as_str())),
            status: participant.status.as_str(),
            nik_digest: record.nik_digest,
            content_digest: record.content_digest,
        })
    }
}

/// Bytes reserved for a serialised record: a full one (every optional field, a long name and
/// email) is about 350.
const RECORD_CAPACITY: usize = 384;

/// A participant's record serialised, with the digests of its NIK and of the whole record.
#[derive(Debug, Clone)]
struct Record {
    json: Vec<u8>,
    nik_digest: Vec<u8>,
    content_digest: Vec<u8>,
}

impl Record {
    fn of(participant: &Participant, sealer: &Sealer) -> Result<Self, StoreError> {
        // Room for a whole record up front: growing from empty reallocated it six times a row.
        let mut json = Vec::with_capacity(RECORD_CAPACITY);
        serde_json::to_writer(&mut json, participant)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Self {
            nik_digest: sealer
                .digest(LookupKind::Nik, participant.nik.as_str().as_bytes())
                .to_vec(),
            content_digest: sealer.digest(LookupKind::Content, &json).to_vec(),
            json,
        })
    }
}

/// Which rows of a batch are the last of their NIK (a later row supersedes an earlier one), and
/// how many rows that leaves out.
fn last_row_of_each_nik(batch: &[Participant]) -> (Vec<bool>, u64) {
    let mut last_row_of: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
    for (index, participant) in batch.iter().enumerate() {
        last_row_of.insert(participant.nik.as_str(), index);
    }
    let mut last = vec![false; batch.len()];
    for index in last_row_of.values() {
        last[*index] = true;
    }
    (last, (batch.len() - last_row_of.len()) as u64)
}

/// A participant on its way to the store, serialised, with the two digests that tell whether the
/// registry already holds it exactly ([`ParticipantImport::find_unchanged`]). Only a row the
/// registry does not hold needs sealing: a daily sync, which mostly repeats yesterday's file,
/// seals and writes only what changed.
#[derive(Debug, Clone)]
pub struct DigestedParticipant {
    /// The caller's number for the row, as in [`SealedParticipant::position`].
    pub position: u64,
    pub participant: Participant,
    record: Record,
}

impl DigestedParticipant {
    pub fn digest(
        position: u64,
        participant: Participant,
        sealer: &Sealer,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            position,
            record: Record::of(&participant, sealer)?,
            participant,
        })
    }

    /// Digests a batch (`positions[i]`: the caller's number for `batch[i]`), keeping only the last
    /// row of each NIK. Returns the rows in batch order and how many earlier rows were superseded.
    pub fn digest_batch(
        batch: Vec<Participant>,
        positions: &[u64],
        sealer: &Sealer,
    ) -> Result<(Vec<Self>, u64), StoreError> {
        debug_assert_eq!(batch.len(), positions.len());
        let (last, superseded) = last_row_of_each_nik(&batch);
        let mut rows = Vec::with_capacity(batch.len() - superseded as usize);
        for ((participant, position), last) in batch.into_iter().zip(positions).zip(last) {
            if last {
                rows.push(Self::digest(*position, participant, sealer)?);
            }
        }
        Ok((rows, superseded))
    }

    /// The keyed digest of the NIK the record is stored under.
    pub fn nik_digest(&self) -> &[u8] {
        &self.record.nik_digest
    }

    /// Digest of the whole record, as in [`SealedParticipant::content_digest`].
    pub fn content_digest(&self) -> &[u8] {
        &self.record.content_digest
    }

    /// Seals the record and computes the digests it is found by.
    pub fn seal(self, sealer: &Sealer) -> Result<SealedParticipant, StoreError> {
        SealedParticipant::seal_record(self.position, &self.participant, self.record, sealer)
    }
}

impl ParticipantKey<'_> {
    fn kind_and_value(&self) -> (LookupKind, &str) {
        match self {
            Self::Nik(nik) => (LookupKind::Nik, nik.as_str()),
            Self::CardNumber(card) => (LookupKind::CardNumber, card.as_str()),
            Self::KpjNumber(kpj) => (LookupKind::KpjNumber, kpj.as_str()),
        }
    }
}

/// The digest a key is stored under.
pub fn lookup_digest(key: ParticipantKey<'_>, sealer: &Sealer) -> [u8; DIGEST_LEN] {
    let (kind, value) = key.kind_and_value();
    sealer.digest(kind, value.as_bytes())
}

/// The digests a key is looked up by: the current key's and, during a rotation, the previous
/// key's ([`Sealer::lookup_digests`]).
pub fn lookup_digests(key: ParticipantKey<'_>, sealer: &Sealer) -> [[u8; DIGEST_LEN]; 2] {
    let (kind, value) = key.kind_and_value();
    sealer.lookup_digests(kind, value.as_bytes())
}

/// The lookup values of a stored record, read from its JSON as written (a rotation re-seals the
/// exact bytes and must not pass them through today's stricter parsing).
#[derive(serde::Deserialize)]
struct StoredLookups {
    nik: String,
    card_number: String,
    #[serde(default)]
    kpj_number: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    status: ParticipantStatus,
}

/// Re-seals a participant row sealed under the previous key: the same record bytes under the
/// current key, with every digest recomputed. `None` when the row is already under the current key.
pub fn reseal_participant(
    sealed: &[u8],
    nik_digest: &[u8],
    sealer: &Sealer,
) -> Result<Option<SealedParticipant>, StoreError> {
    let (json, age) = sealer.open_aged(sealed, nik_digest)?;
    if age == KeyAge::Current {
        return Ok(None);
    }
    let values: StoredLookups = serde_json::from_slice(&json).map_err(|e| {
        StoreError::Corrupt(format!(
            "participant record: {:?} error at column {}",
            e.classify(),
            e.column()
        ))
    })?;
    let digest = |kind, value: &str| sealer.digest(kind, value.as_bytes()).to_vec();
    let nik_digest = digest(LookupKind::Nik, &values.nik);
    Ok(Some(SealedParticipant {
        position: 0,
        sealed: sealer.seal(&json, &nik_digest)?,
        card_digest: digest(LookupKind::CardNumber, &values.card_number),
        kpj_digest: values.kpj_number.map(|v| digest(LookupKind::KpjNumber, &v)),
        phone_digest: values.phone.map(|v| digest(LookupKind::Phone, &v)),
        email_digest: values.email.map(|v| digest(LookupKind::Email, &v)),
        content_digest: sealer.digest(LookupKind::Content, &json).to_vec(),
        nik_digest,
        status: values.status.as_str(),
    }))
}

/// Refuses an import while a key rotation runs: the import finds existing rows by their NIK digest
/// under the new key only, so a row not yet re-sealed would be filed a second time.
pub fn refuse_import_while_rotating(sealer: &Sealer) -> Result<(), StoreError> {
    match sealer.previous_fingerprint() {
        Some(previous) => Err(StoreError::KeyRotation(format!(
            "a rotation from key {previous} is running: imports wait until `gerbang key rotate` has \
             finished (an import now would file participants not yet re-sealed a second time)"
        ))),
        None => Ok(()),
    }
}

/// Opens a stored envelope back into a participant.
///
/// The identity (NIK, card number, name, birth date) must still parse, or the record is corrupt.
/// Optional contact and membership fields are read leniently: a value that was valid when stored
/// but fails a rule tightened since (an operator prefix withdrawn, say) reads as "none on file"
/// instead of making the participant unreadable — and unable to log in.
pub fn open_participant(
    sealed: &[u8],
    nik_digest: &[u8],
    sealer: &Sealer,
) -> Result<Participant, StoreError> {
    let json = sealer.open(sealed, nik_digest)?;
    // serde's message could quote a value: keep only the kind and place of the error.
    let record: ParticipantRecord = serde_json::from_slice(&json).map_err(|e| {
        StoreError::Corrupt(format!(
            "participant record: {:?} error at column {}",
            e.classify(),
            e.column()
        ))
    })?;
    Ok(record.into_participant().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealing::PersonalDataKey;

    fn sealer() -> Sealer {
        Sealer::new(&PersonalDataKey::generate()).unwrap()
    }

    fn record(phone: &str) -> serde_json::Value {
        serde_json::json!({
            "nik": "3171011708450001", "card_number": "0001944358911", "kpj_number": null,
            "family_card_number": null, "full_name": "Budi Santoso", "birth_date": "1945-08-17",
            "sex": "male", "status": "active", "phone": phone, "email": "budi@example.com"
        })
    }

    #[test]
    fn a_contact_field_that_no_longer_passes_today_s_rules_reads_as_none_on_file() {
        let sealer = sealer();
        // 0820 is not an allocated prefix: as if it had been withdrawn since the row was stored.
        let json = serde_json::to_vec(&record("+62820123456789")).unwrap();
        let participant =
            open_participant(&sealer.seal(&json, b"row").unwrap(), b"row", &sealer).unwrap();
        assert_eq!(participant.phone, None);
        assert_eq!(participant.email.unwrap().as_str(), "budi@example.com");
        assert_eq!(participant.nik.as_str(), "3171011708450001");
    }

    #[test]
    fn a_record_whose_identity_does_not_parse_is_corrupt_without_echoing_it() {
        let sealer = sealer();
        let mut value = record("+6281234567890");
        value["nik"] = serde_json::json!("9971011708450001");
        let json = serde_json::to_vec(&value).unwrap();
        match open_participant(&sealer.seal(&json, b"row").unwrap(), b"row", &sealer) {
            Err(StoreError::Corrupt(reason)) => {
                assert!(!reason.contains("9971011708450001"), "{reason}")
            }
            other => panic!("expected corrupt, got {other:?}"),
        }
    }
}
