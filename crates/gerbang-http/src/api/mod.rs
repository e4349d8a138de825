//! The JSON API for trusted internal services and the participant app's back end.
//!
//! Layout:
//! - [`accounts`]: the participant account API (registration, login, sessions, recovery, contact
//!   change, step-up) and session introspection for other services.
//! - [`clients`]: who may call the API (bearer tokens) and which client a request is.
//! - [`verifications`]: the verification resource: start, status, resend, check, cancel.
//! - [`dev_inbox`]: the development inbox (only in the development profile).

pub mod accounts;
pub mod clients;
pub mod dev_inbox;
pub mod verifications;

use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::body::{malformed, too_large};
use crate::error::ApiError;

/// `Json<T>` whose rejections answer in gerbang's error shape, naming the field at fault in our
/// own words (never the deserializer's text, which names Rust types).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(is_json);
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "body_not_json",
                "Isi permintaan harus JSON (Content-Type: application/json).",
                "The request body must be JSON (Content-Type: application/json).",
            ));
        }
        let bytes = RawBody::from_request(request, state).await?.0;
        decode(&bytes).map(Self)
    }
}

/// The request body as bytes, its rejections in gerbang's error shape (`413 body_too_large`).
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    malformed()
                }
            })
    }
}

/// `application/json` or any `application/*+json`, with or without parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `T` from a JSON body: `400 body_malformed` when it is not JSON, `400 body_invalid` naming the
/// field (`captcha.answer`) and what is wrong with it when it is JSON of another shape.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object; serde would also take a struct as an array of its fields in order,
    // which no client should rely on.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => not_an_object(),
                Err(_) => malformed(),
            },
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => body_invalid(&path, &inner),
            _ => malformed(),
        }
    })?;
    deserializer.end().map_err(|_| malformed())?;
    Ok(value)
}

/// What is wrong with a JSON body of the wrong shape, as serde says it.
#[derive(Debug, PartialEq, Eq)]
enum Fault {
    Unknown(String),
    Missing(String),
    Duplicate(String),
    /// What the field should have been.
    WrongType(Expected),
    WrongValue,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Expected {
    Text,
    Number,
    Boolean,
    Object,
    List,
    Other,
}

impl Expected {
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Self::Text => ("teks", "text (a JSON string)"),
            Self::Number => ("bilangan bulat", "a whole number"),
            Self::Boolean => ("true atau false", "true or false"),
            Self::Object => ("objek JSON", "a JSON object"),
            Self::List => ("daftar JSON", "a JSON list"),
            Self::Other => ("jenis lain", "of another type"),
        }
    }

    /// From serde's "expected …" text, which names Rust types (`u8`, `struct LoginBody`).
    fn from_serde(expected: &str) -> Self {
        let e = expected.to_ascii_lowercase();
        if e.contains("string") || e.contains("char") {
            Self::Text
        } else if e.contains("bool") {
            Self::Boolean
        } else if e.contains("struct") || e.contains("map") {
            Self::Object
        } else if e.contains("sequence") || e.contains("tuple") || e.contains("array") {
            Self::List
        } else if e.contains("integer")
            || e.contains("float")
            || e.split_whitespace().any(|word| {
                let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
                word.len() >= 2
                    && matches!(word.as_bytes()[0], b'u' | b'i' | b'f')
                    && word[1..].bytes().all(|b| b.is_ascii_digit())
            })
        {
            Self::Number
        } else {
            Self::Other
        }
    }
}

/// The backtick-quoted name in serde's "unknown field `x`, expected …".
fn quoted(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

fn fault(message: &str) -> Fault {
    let name = || quoted(message).unwrap_or_default();
    if message.starts_with("unknown field") {
        Fault::Unknown(name())
    } else if message.starts_with("missing field") {
        Fault::Missing(name())
    } else if message.starts_with("duplicate field") {
        Fault::Duplicate(name())
    } else if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid length "))
    {
        let expected = rest.split_once("expected ").map_or("", |(_, e)| e);
        Fault::WrongType(Expected::from_serde(expected))
    } else {
        Fault::WrongValue
    }
}

/// A field path safe to show: what a caller typed as a key may be anything (personal data, a
/// kilobyte of junk), so a path that is not made of plain names is not repeated.
fn shown(path: &str) -> Option<String> {
    let segment = |segment: &str| {
        let name = segment.split('[').next().unwrap_or_default();
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'[' | b']'))
    };
    let plain = !path.is_empty() && path.len() <= 64 && path.split('.').all(segment);
    plain.then(|| path.to_owned())
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() || parent == "." {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn not_an_object() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "body_invalid",
        "Isi permintaan harus berupa objek JSON ({...}).",
        "The request body must be a JSON object ({...}).",
    )
}

fn body_invalid(path: &str, error: &serde_json::Error) -> ApiError {
    // serde_json's Display appends " at line L column C": the position is not ours to show.
    let text = error.to_string();
    let message = text.split(" at line ").next().unwrap_or_default();
    let path = if path == "." { "" } else { path };
    let (field, id, en) = match fault(message) {
        // The path already ends at the unknown field.
        Fault::Unknown(name) => match shown(if path.is_empty() { &name } else { path }) {
            Some(field) => (
                Some(field.clone()),
                format!("Kolom `{field}` tidak dikenal; hapus kolom ini."),
                format!("The field `{field}` is unknown; leave it out."),
            ),
            None => (
                None,
                "Isi permintaan memuat kolom yang tidak dikenal.".to_owned(),
                "The request body has a field that is unknown.".to_owned(),
            ),
        },
        Fault::Missing(name) => match shown(&join(path, &name)) {
            Some(field) => (
                Some(field.clone()),
                format!("Kolom `{field}` wajib diisi."),
                format!("The field `{field}` is required."),
            ),
            None => (
                None,
                "Isi permintaan tidak memuat kolom yang wajib.".to_owned(),
                "The request body lacks a required field.".to_owned(),
            ),
        },
        Fault::Duplicate(name) => match shown(&join(path, &name)) {
            Some(field) => (
                Some(field.clone()),
                format!("Kolom `{field}` muncul lebih dari sekali."),
                format!("The field `{field}` appears more than once."),
            ),
            None => (
                None,
                "Sebuah kolom muncul lebih dari sekali.".to_owned(),
                "A field appears more than once.".to_owned(),
            ),
        },
        Fault::WrongType(_) if path.is_empty() => return not_an_object(),
        Fault::WrongType(expected) => {
            let (want_id, want_en) = expected.words();
            match shown(path) {
                Some(field) => (
                    Some(field.clone()),
                    format!("Kolom `{field}` harus berupa {want_id}."),
                    format!("The field `{field}` must be {want_en}."),
                ),
                None => (
                    None,
                    format!("Sebuah nilai di isi permintaan harus berupa {want_id}."),
                    format!("A value in the request body must be {want_en}."),
                ),
            }
        }
        Fault::WrongValue => match shown(path) {
            Some(field) => (
                Some(field.clone()),
                format!("Nilai kolom `{field}` tidak diterima."),
                format!("The value of the field `{field}` is not accepted."),
            ),
            None => (
                None,
                "Sebuah nilai di isi permintaan tidak diterima.".to_owned(),
                "A value in the request body is not accepted.".to_owned(),
            ),
        },
    };
    let mut error = ApiError::new(StatusCode::BAD_REQUEST, "body_invalid", id, en);
    error.field = field;
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        code: String,
        attempts: u8,
        captcha: Option<Captcha>,
        details: Option<BTreeMap<String, String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Captcha {
        id: String,
        answer: String,
    }

    fn refusal(json: &str) -> ApiError {
        decode::<Body>(json.as_bytes()).unwrap_err()
    }

    #[track_caller]
    fn names(json: &str, code: &str, field: Option<&str>, en: &str, id: &str) {
        let error = refusal(json);
        assert_eq!(error.code, code, "{json}");
        assert_eq!(error.field.as_deref(), field, "{json}");
        assert_eq!(error.message_en, en, "{json}");
        assert_eq!(error.message_id, id, "{json}");
    }

    #[test]
    fn a_wrong_field_is_named_in_our_words_in_both_languages() {
        names(
            r#"{"code":"1","attempts":1,"colour":"x"}"#,
            "body_invalid",
            Some("colour"),
            "The field `colour` is unknown; leave it out.",
            "Kolom `colour` tidak dikenal; hapus kolom ini.",
        );
        names(
            r#"{"attempts":1}"#,
            "body_invalid",
            Some("code"),
            "The field `code` is required.",
            "Kolom `code` wajib diisi.",
        );
        names(
            r#"{"code":5,"attempts":1}"#,
            "body_invalid",
            Some("code"),
            "The field `code` must be text (a JSON string).",
            "Kolom `code` harus berupa teks.",
        );
        names(
            r#"{"code":"1","attempts":"many"}"#,
            "body_invalid",
            Some("attempts"),
            "The field `attempts` must be a whole number.",
            "Kolom `attempts` harus berupa bilangan bulat.",
        );
        names(
            r#"{"code":"1","attempts":300}"#,
            "body_invalid",
            Some("attempts"),
            "The value of the field `attempts` is not accepted.",
            "Nilai kolom `attempts` tidak diterima.",
        );
        names(
            r#"{"code":"1","attempts":1,"captcha":{"id":"c"}}"#,
            "body_invalid",
            Some("captcha.answer"),
            "The field `captcha.answer` is required.",
            "Kolom `captcha.answer` wajib diisi.",
        );
        names(
            r#"{"code":"1","attempts":1,"captcha":{"id":"c","answer":1}}"#,
            "body_invalid",
            Some("captcha.answer"),
            "The field `captcha.answer` must be text (a JSON string).",
            "Kolom `captcha.answer` harus berupa teks.",
        );
        names(
            r#"["1",1,null,null]"#,
            "body_invalid",
            None,
            "The request body must be a JSON object ({...}).",
            "Isi permintaan harus berupa objek JSON ({...}).",
        );
        names(
            r#"{"code":"1""#,
            "body_malformed",
            None,
            "The request body is not valid JSON.",
            "Isi permintaan bukan JSON yang valid.",
        );
        names(
            r#"{"code":"1","attempts":1} trailing"#,
            "body_malformed",
            None,
            "The request body is not valid JSON.",
            "Isi permintaan bukan JSON yang valid.",
        );
    }

    #[test]
    fn no_refusal_repeats_rust_type_names_or_what_the_caller_typed_as_a_key() {
        for json in [
            r#"{"code":"1","attempts":1,"details":{"3171234567890001":5}}"#,
            r#"{"code":"1","attempts":1,"3171234567890001":"x"}"#,
            r#"["1",1,null,null]"#,
            r#"{"code":"1","attempts":1,"captcha":[1]}"#,
            r#"{"code":{},"attempts":1}"#,
        ] {
            let error = refusal(json);
            for text in [&error.message_en, &error.message_id] {
                for leak in [
                    "struct",
                    "Body",
                    "Captcha",
                    "u8",
                    "String",
                    "3171234567890001",
                    "line",
                ] {
                    assert!(!text.contains(leak), "{json}: {text:?} shows {leak}");
                }
            }
        }
    }
}
