//! A first load: an import into an empty registry.
//!
//! Loading row by row into indexed tables costs a random page write per lookup index and row (the
//! digests are keyed hashes, so neighbours in an index are strangers in the file); that bounds an
//! import at about 45,000 rows/s here. Into an empty registry a backend can do better: drop the
//! five lookup indexes, append the rows (ids given in file order), and build the indexes by
//! sorting at the commit. What the unique indexes would have refused row by row is then settled
//! at once, with the same outcome as loading the rows one by one:
//!
//! 1. The backend tries to build the unique indexes (NIK, card, KPJ). A clean file — the usual
//!    case — needs nothing else.
//! 2. If one fails, [`CONTESTED`] finds every row of every NIK that shares a card or KPJ number
//!    with another NIK (usually few), and [`settle`] replays them in file order exactly as the
//!    row-by-row upsert would: a row is refused when another NIK holds its card or KPJ number at
//!    that point, accepted otherwise (replacing its NIK's earlier row and freeing that row's
//!    numbers). Rows of other NIKs cannot take part in a conflict, so they need no replay.
//! 3. If the NIK index was the one that failed, [`SUPERSEDED`] then deletes every row but the last
//!    of each NIK that is still repeated. The remaining unique indexes are built.
//!
//! [`FirstLoad`] numbers the rows and remembers each row's position (its line in the file) in
//! runs, so that a refused row is reported by line without a map that grows with the file.

use std::collections::HashMap;

use crate::participants::{ParticipantConflict, RowConflict, SealedParticipant};

/// Every row of every NIK that shares a card or KPJ number with another NIK, in file order
/// (`id, nik_digest, card_digest, kpj_digest`). Plain SQL, valid in SQLite and PostgreSQL.
pub const CONTESTED: &str = "\
SELECT id, nik_digest, card_digest, kpj_digest FROM participants \
WHERE nik_digest IN ( \
    SELECT nik_digest FROM participants WHERE card_digest IN ( \
        SELECT card_digest FROM participants GROUP BY card_digest \
        HAVING COUNT(DISTINCT nik_digest) > 1) \
    UNION \
    SELECT nik_digest FROM participants WHERE kpj_digest IN ( \
        SELECT kpj_digest FROM participants WHERE kpj_digest IS NOT NULL GROUP BY kpj_digest \
        HAVING COUNT(DISTINCT nik_digest) > 1)) \
ORDER BY id";

/// Deletes every row but the last of each NIK; the rows deleted were superseded.
pub const SUPERSEDED: &str = "\
DELETE FROM participants WHERE id IN ( \
    SELECT id FROM ( \
        SELECT id, ROW_NUMBER() OVER (PARTITION BY nik_digest ORDER BY id DESC) AS later \
        FROM participants) AS ranked \
    WHERE later > 1)";

/// Ids deleted per statement when settling.
pub const IDS_PER_DELETE: usize = 1_000;

/// The rows of a first load as they are appended: their ids, and their positions in runs.
#[derive(Debug, Clone)]
pub struct FirstLoad {
    next_id: i64,
    /// `(first id, position - id)` for each run of ids whose positions advance with them.
    runs: Vec<(i64, i128)>,
}

impl Default for FirstLoad {
    fn default() -> Self {
        Self::new()
    }
}

impl FirstLoad {
    pub fn new() -> Self {
        Self {
            next_id: 1,
            runs: Vec::new(),
        }
    }

    /// Gives `rows` the next ids, in order, and returns the first.
    pub fn assign(&mut self, rows: &[SealedParticipant]) -> i64 {
        let first = self.next_id;
        for row in rows {
            let offset = i128::from(row.position) - i128::from(self.next_id);
            if self.runs.last().is_none_or(|(_, last)| *last != offset) {
                self.runs.push((self.next_id, offset));
            }
            self.next_id += 1;
        }
        first
    }

    /// The largest id given so far (0 before the first row).
    pub fn last_id(&self) -> i64 {
        self.next_id - 1
    }

    /// The position of the row given `id`.
    pub fn position_of(&self, id: i64) -> u64 {
        let run = self.runs.partition_point(|(first, _)| *first <= id);
        let offset = run.checked_sub(1).map_or(0, |at| self.runs[at].1);
        u64::try_from(i128::from(id) + offset).unwrap_or(0)
    }
}

/// A row of [`CONTESTED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContestedRow {
    pub id: i64,
    pub nik: Vec<u8>,
    pub card: Vec<u8>,
    pub kpj: Option<Vec<u8>>,
}

/// What the replay of the contested rows decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Rows to delete: the refused ones and the accepted ones a later row of their NIK replaced.
    pub delete: Vec<i64>,
    /// The refused rows, by id, in file order.
    pub refused: Vec<(i64, ParticipantConflict)>,
    /// Accepted rows that a later accepted row of the same NIK replaced.
    pub superseded: u64,
}

/// Replays `rows` (in id order) as the row-by-row upsert would load them.
pub fn settle(rows: &[ContestedRow]) -> Settlement {
    let mut card_holder: HashMap<&[u8], &[u8]> = HashMap::new();
    let mut kpj_holder: HashMap<&[u8], &[u8]> = HashMap::new();
    // A NIK's accepted row so far: its id and the numbers it holds.
    let mut current: HashMap<&[u8], &ContestedRow> = HashMap::new();
    let mut settlement = Settlement::default();
    for row in rows {
        let held_by_another = |holders: &HashMap<&[u8], &[u8]>, number: &[u8]| {
            holders.get(number).is_some_and(|nik| *nik != row.nik)
        };
        let refused = if held_by_another(&card_holder, &row.card) {
            Some(ParticipantConflict::CardNumberTaken)
        } else if row
            .kpj
            .as_deref()
            .is_some_and(|kpj| held_by_another(&kpj_holder, kpj))
        {
            Some(ParticipantConflict::KpjNumberTaken)
        } else {
            None
        };
        if let Some(conflict) = refused {
            settlement.delete.push(row.id);
            settlement.refused.push((row.id, conflict));
            continue;
        }
        if let Some(earlier) = current.insert(&row.nik, row) {
            card_holder.remove(earlier.card.as_slice());
            if let Some(kpj) = &earlier.kpj {
                kpj_holder.remove(kpj.as_slice());
            }
            settlement.delete.push(earlier.id);
            settlement.superseded += 1;
        }
        card_holder.insert(&row.card, &row.nik);
        if let Some(kpj) = &row.kpj {
            kpj_holder.insert(kpj, &row.nik);
        }
    }
    settlement
}

impl Settlement {
    /// The refused rows as conflicts reported by position.
    pub fn conflicts(&self, load: &FirstLoad) -> Vec<RowConflict> {
        self.refused
            .iter()
            .map(|(id, conflict)| RowConflict {
                position: load.position_of(*id),
                conflict: *conflict,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(position: u64) -> SealedParticipant {
        SealedParticipant {
            position,
            nik_digest: Vec::new(),
            card_digest: Vec::new(),
            kpj_digest: None,
            phone_digest: None,
            email_digest: None,
            content_digest: Vec::new(),
            sealed: Vec::new(),
            status: "active",
        }
    }

    proptest! {
        /// Whatever the positions (lines with gaps, or batch indexes starting again at 0), every
        /// id maps back to its own row's position.
        #[test]
        fn every_id_maps_back_to_its_row_s_position(
            batches in prop::collection::vec(prop::collection::vec(0u64..50, 0..20), 0..10)
        ) {
            let mut load = FirstLoad::new();
            let mut given = Vec::new();
            for batch in &batches {
                let rows: Vec<_> = batch.iter().map(|p| row(*p)).collect();
                let first = load.assign(&rows);
                for (at, position) in batch.iter().enumerate() {
                    given.push((first + at as i64, *position));
                }
            }
            prop_assert_eq!(load.last_id(), given.len() as i64);
            for (id, position) in given {
                prop_assert_eq!(load.position_of(id), position);
            }
        }
    }

    #[test]
    fn a_file_of_consecutive_lines_is_one_run() {
        let mut load = FirstLoad::new();
        let rows: Vec<_> = (2..10_002).map(row).collect();
        load.assign(&rows);
        assert_eq!(load.runs.len(), 1);
        assert_eq!(load.position_of(10_000), 10_001);
    }

    fn contested(id: i64, nik: u8, card: u8, kpj: Option<u8>) -> ContestedRow {
        ContestedRow {
            id,
            nik: vec![nik],
            card: vec![card],
            kpj: kpj.map(|k| vec![k]),
        }
    }

    /// The row-by-row load, written plainly: the model [`settle`] must agree with.
    fn load_one_by_one(rows: &[ContestedRow]) -> (HashMap<Vec<u8>, i64>, Vec<i64>) {
        let mut registry: HashMap<Vec<u8>, &ContestedRow> = HashMap::new();
        let mut refused = Vec::new();
        for row in rows {
            let clash = registry.values().any(|held| {
                held.nik != row.nik
                    && (held.card == row.card || (row.kpj.is_some() && held.kpj == row.kpj))
            });
            if clash {
                refused.push(row.id);
            } else {
                registry.insert(row.nik.clone(), row);
            }
        }
        (
            registry.into_iter().map(|(nik, r)| (nik, r.id)).collect(),
            refused,
        )
    }

    proptest! {
        #[test]
        fn settling_agrees_with_loading_row_by_row(
            picks in prop::collection::vec((0u8..6, 0u8..5, prop::option::of(0u8..4)), 0..40)
        ) {
            let rows: Vec<_> = picks
                .iter()
                .enumerate()
                .map(|(at, (nik, card, kpj))| contested(at as i64 + 1, *nik, *card, *kpj))
                .collect();
            let settlement = settle(&rows);
            let (kept, refused) = load_one_by_one(&rows);
            let deleted: std::collections::HashSet<i64> =
                settlement.delete.iter().copied().collect();
            let mut survivors: Vec<i64> =
                rows.iter().map(|r| r.id).filter(|id| !deleted.contains(id)).collect();
            let mut expected: Vec<i64> = kept.values().copied().collect();
            survivors.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(survivors, expected);
            let settled_refusals: Vec<i64> = settlement.refused.iter().map(|(id, _)| *id).collect();
            prop_assert_eq!(settled_refusals, refused);
            prop_assert_eq!(
                settlement.delete.len() as u64,
                settlement.refused.len() as u64 + settlement.superseded
            );
        }
    }

    #[test]
    fn a_card_freed_by_a_later_row_of_its_nik_can_be_taken() {
        let rows = [
            contested(1, 1, 10, None),
            contested(2, 1, 11, None),
            contested(3, 2, 10, None),
            contested(4, 3, 11, Some(7)),
        ];
        let settlement = settle(&rows);
        assert_eq!(
            settlement.refused,
            vec![(4, ParticipantConflict::CardNumberTaken)]
        );
        assert_eq!((settlement.delete, settlement.superseded), (vec![1, 4], 1));
    }
}
