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
        let token = authorization.and_then(|value| value.strip_prefix("Bearer "));
        match token {
            Some(token) => {
                let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
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
        let dev = ApiClients::new(&[], Some("dev".into()));
        assert_eq!(dev.identify(None).unwrap(), "dev");
        assert!(!format!("{clients:?}").contains("s3cret"));
    }
}
