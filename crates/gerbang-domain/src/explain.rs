//! Stable machine-readable codes with a human message in Indonesian and English.
//!
//! Every error a participant, operator or API client can meet implements [`Explain`]; the HTTP layer
//! and the CLI turn it into a response or a report without knowing the error's type.

/// An error that can be told to a person.
pub trait Explain {
    /// Stable snake_case code, part of the API contract (e.g. `nik_province`).
    fn code(&self) -> &'static str;
    /// The message in Indonesian (the default language of participants).
    fn message_id(&self) -> String;
    /// The message in English.
    fn message_en(&self) -> String;
}
