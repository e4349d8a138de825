//! The participant registry (SPEC §2): the membership data that flows check identities against.
//!
//! Layout:
//! - [`directory`]: where a participant is looked up — the embedded store, or an external membership
//!   API over HTTP — behind one trait, [`ParticipantDirectory`].
//! - [`import`]: `gerbang participants import`: a streamed, idempotent CSV upsert with a report of
//!   every rejected row.
//! - [`synthetic`]: realistic, deterministic synthetic participants for demos, tests and benchmarks.

pub mod directory;
pub mod import;
pub mod synthetic;

pub use directory::{
    DirectoryError, HttpDirectory, ParticipantDirectory, Registry, StoreDirectory,
};
pub use import::{ImportError, ImportObserver, ImportReport, RowProblem, import_csv};
pub use synthetic::{SyntheticParticipants, write_csv};
