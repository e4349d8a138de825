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

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Json<T>` whose rejections answer in gerbang's error shape.
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
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "body_not_json",
            "Isi permintaan harus JSON (Content-Type: application/json).",
            "The request body must be JSON (Content-Type: application/json).",
        ),
        // The deserializer's text names the field and what was wrong with it; it never echoes a
        // value longer than the field's name, so it is safe to return.
        JsonRejection::JsonDataError(error) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_invalid",
            format!("Isi permintaan tidak sesuai: {}", error.body_text()),
            format!("The request body does not fit: {}", error.body_text()),
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_malformed",
            "Isi permintaan bukan JSON yang valid.",
            "The request body is not valid JSON.",
        ),
    }
}
