//! Who may call the API. Each client has a name and a bearer token; a verification belongs to the
//! client that started it and is invisible to every other. Tokens are kept only as SHA-256 digests
//! and compared in constant time.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The configured clients.
#[derive(Clone, Default)]
pub struct ApiClients {
    clients: Vec<(String, [u8; 32])>,
    /// Development only: a request without a token is this client.
    anonymous: Option<String>,
}

impl std::fmt::Debug for ApiClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.clients.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ApiClients")
            .field("clients", &names)
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl ApiClients {
    /// `clients` as (name, token) pairs; `anonymous`: the client a token-less request acts as.
    pub fn new(clients: &[(String, String)], anonymous: Option<String>) -> Self {
        Self {
            clients: clients
                .iter()
                .map(|(name, token)| (name.clone(), Sha256::digest(token.as_bytes()).into()))
                .collect(),
            anonymous,
        }
    }

    /// The client a request's `Authorization` header names.
    pub fn identify(&self, authorization: Option<&str>) -> Result<String, ApiError> {
        match authorization.and_then(bearer) {
            Some(token) => {
                let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                let mut found = None;
                for (name, expected) in &self.clients {
                    if bool::from(expected.ct_eq(&digest)) {
                        found = Some(name.clone());
                    }
                }
                found.ok_or_else(unauthorized)
            }
            None => self.anonymous.clone().ok_or_else(unauthorized),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header value. The scheme name is matched
/// case-insensitively (RFC 9110 §11.1: `bearer`, `BEARER` are the same scheme); the token is
/// trimmed. `None` for another scheme or an empty token.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The token `/metrics` asks for (`metrics.token`), kept as a SHA-256 digest and compared in
/// constant time.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

impl MetricsToken {
    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.trim().as_bytes()).into())
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        authorization.and_then(bearer).is_some_and(|token| {
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            bool::from(self.0.ct_eq(&digest))
        })
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Token API tidak ada atau tidak dikenal.",
        "The API token is missing or unknown.",
    )
}

/// The calling client, from the request's bearer token.
#[derive(Debug, Clone)]
pub struct CallingClient(pub String);

impl<S> FromRequestParts<S> for CallingClient
where
    S: Send + Sync,
    ApiClients: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let clients = <ApiClients as axum::extract::FromRef<S>>::from_ref(state);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        clients.identify(header).map(CallingClient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_token_names_its_client_and_anything_else_is_refused() {
        let clients = ApiClients::new(&[("claims".into(), "s3cret".into())], None);
        assert_eq!(clients.identify(Some("Bearer s3cret")).unwrap(), "claims");
        assert_eq!(
            clients.identify(Some("Bearer nope")).unwrap_err().code,
            "unauthorized"
        );
        assert_eq!(clients.identify(None).unwrap_err().code, "unauthorized");
        assert_eq!(
            clients.identify(Some("s3cret")).unwrap_err().code,
            "unauthorized"
        );
        for spelling in ["bearer s3cret", "BEARER s3cret", "BeArEr   s3cret "] {
            assert_eq!(clients.identify(Some(spelling)).unwrap(), "claims");
        }
        assert!(clients.identify(Some("Basic s3cret")).is_err());
        assert!(clients.identify(Some("Bearers3cret")).is_err());
        let dev = ApiClients::new(&[], Some("dev".into()));
        assert_eq!(dev.identify(None).unwrap(), "dev");
        assert!(!format!("{clients:?}").contains("s3cret"));
    }

    #[test]
    fn the_metrics_token_is_matched_under_any_spelling_of_the_scheme() {
        let token = MetricsToken::new("m3trics");
        assert!(token.admits(Some("Bearer m3trics")));
        assert!(token.admits(Some("bearer m3trics")));
        assert!(!token.admits(Some("Bearer other")));
        assert!(!token.admits(Some("m3trics")));
        assert!(!token.admits(None));
        assert!(!format!("{token:?}").contains("m3trics"));
    }
}
