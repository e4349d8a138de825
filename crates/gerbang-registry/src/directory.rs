//! Where participants are looked up: the embedded store or an external membership API, behind
//! [`ParticipantDirectory`]. The binary chooses one from configuration at start-up.

use std::future::Future;
use std::time::Duration;

use gerbang_domain::{Participant, ParticipantRecord};
use gerbang_store::{ParticipantKey, ParticipantStore, StoreError};
use serde::Serialize;

/// Why a lookup could not be answered. "Not found" is not an error: it is `Ok(None)`.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The source did not answer in time or at all; the participant should try again later.
    #[error("the membership registry is unavailable: {0}")]
    Unavailable(String),
    /// The source answered with something that is not a valid participant.
    #[error("the membership registry gave an invalid answer: {0}")]
    InvalidAnswer(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A source of participant records.
pub trait ParticipantDirectory: Send + Sync {
    fn lookup(
        &self,
        key: ParticipantKey<'_>,
    ) -> impl Future<Output = Result<Option<Participant>, DirectoryError>> + Send;
}

/// The registry held in gerbang's own store (filled by `gerbang participants import`).
#[derive(Debug, Clone)]
pub struct StoreDirectory<S> {
    store: S,
}

impl<S> StoreDirectory<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: ParticipantStore + Send + Sync> ParticipantDirectory for StoreDirectory<S> {
    async fn lookup(&self, key: ParticipantKey<'_>) -> Result<Option<Participant>, DirectoryError> {
        Ok(self
            .store
            .find_participant(key)
            .await?
            .map(|stored| stored.participant))
    }
}

/// An external membership API.
///
/// Protocol: `POST {base_url}/participants/lookup` with a JSON body holding exactly one of `nik`,
/// `card_number` or `kpj_number` (in the body, never the URL, so numbers stay out of access logs),
/// and `Authorization: Bearer <token>` when a token is configured. `200` carries the participant in
/// gerbang's JSON shape, `404` means not found; anything else, or no answer within the timeout,
/// makes the registry unavailable.
#[derive(Clone)]
pub struct HttpDirectory {
    client: reqwest::Client,
    lookup_url: url::Url,
    token: Option<String>,
}

impl std::fmt::Debug for HttpDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry credentials and the token is one: show only where lookups go.
        f.debug_struct("HttpDirectory")
            .field("host", &self.lookup_url.host_str().unwrap_or_default())
            .field("path", &self.lookup_url.path())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LookupRequest<'a> {
    Nik(&'a str),
    CardNumber(&'a str),
    KpjNumber(&'a str),
}

impl HttpDirectory {
    /// `base_url` of the membership API, `timeout` for a whole lookup, an optional bearer token.
    pub fn new(
        base_url: &url::Url,
        timeout: Duration,
        token: Option<String>,
    ) -> Result<Self, DirectoryError> {
        // `join` replaces the last path segment unless the path ends with a slash:
        // `https://host/api/v1` must post to `/api/v1/participants/lookup`, not `/api/participants/lookup`.
        let mut base_url = base_url.clone();
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let lookup_url = base_url
            .join("participants/lookup")
            .map_err(|e| DirectoryError::Unavailable(format!("bad registry URL: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
        Ok(Self {
            client,
            lookup_url,
            token,
        })
    }
}

impl ParticipantDirectory for HttpDirectory {
    async fn lookup(&self, key: ParticipantKey<'_>) -> Result<Option<Participant>, DirectoryError> {
        let body = match key {
            ParticipantKey::Nik(nik) => LookupRequest::Nik(nik.as_str()),
            ParticipantKey::CardNumber(card) => LookupRequest::CardNumber(card.as_str()),
            ParticipantKey::KpjNumber(kpj) => LookupRequest::KpjNumber(kpj.as_str()),
        };
        let mut request = self.client.post(self.lookup_url.clone()).json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        // reqwest's errors carry the URL, never the body, so no number reaches a log line.
        let response = request.send().await.map_err(|e| {
            DirectoryError::Unavailable(if e.is_timeout() {
                "no answer within the timeout".into()
            } else {
                e.to_string()
            })
        })?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
                serde_json::from_slice::<ParticipantRecord>(&bytes)
                    .map(|record| {
                        let (participant, dropped) = record.into_participant();
                        if !dropped.is_empty() {
                            tracing::warn!(?dropped, "the membership API sent optional fields that do not parse; left out");
                        }
                        Some(participant)
                    })
                    // serde's message can quote the offending value (a NIK, a name): keep only
                    // where it was.
                    .map_err(|e| {
                        DirectoryError::InvalidAnswer(format!(
                            "the body is not a valid participant ({:?} error at line {}, column {})",
                            e.classify(),
                            e.line(),
                            e.column()
                        ))
                    })
            }
            status => Err(DirectoryError::Unavailable(format!(
                "answered HTTP {status}"
            ))),
        }
    }
}

/// The directory chosen by configuration.
#[derive(Debug, Clone)]
pub enum Registry<S> {
    Embedded(StoreDirectory<S>),
    Http(HttpDirectory),
}

impl<S: ParticipantStore + Send + Sync> ParticipantDirectory for Registry<S> {
    async fn lookup(&self, key: ParticipantKey<'_>) -> Result<Option<Participant>, DirectoryError> {
        match self {
            Self::Embedded(directory) => directory.lookup(key).await,
            Self::Http(directory) => directory.lookup(key).await,
        }
    }
}
