//! The providers' status callbacks as `/v1/webhooks/{provider}` takes them: for each configured
//! WhatsApp or HTTP SMS provider, how its callbacks are authenticated and read. The HTTP crate knows
//! only the [`StatusWebhooks`] contract; the provider-specific checks live in `gerbang-delivery`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use gerbang_delivery::http_sms::{CallbackSettings, Secret, parse_callback};
use gerbang_delivery::whatsapp::{parse_status_webhook, verify_signature, verify_subscription};
use gerbang_domain::delivery::CauseMap;
use gerbang_domain::delivery::receipt::normalise_message_id;
use gerbang_http::{StatusWebhooks, WebhookRejection};
use gerbang_store::ReceiptUpdate;

/// The header an HTTP SMS gateway's delivery reports must carry our token in.
pub const TOKEN_HEADER: &str = "x-gerbang-token";

/// How one provider's callbacks are checked and read.
#[derive(Debug)]
pub enum Hook {
    /// `X-Hub-Signature-256` over the body with the app secret; the GET handshake with the verify
    /// token.
    Whatsapp {
        app_secret: Secret,
        verify_token: Secret,
    },
    /// A shared token in [`TOKEN_HEADER`]; the report read with the configured pointers.
    HttpSms {
        token: Secret,
        callback: CallbackSettings,
    },
}

/// Every configured provider that takes callbacks, by name.
#[derive(Debug)]
pub struct ProviderWebhooks {
    hooks: HashMap<String, Hook>,
    causes: Arc<CauseMap>,
}

impl ProviderWebhooks {
    pub fn new(hooks: HashMap<String, Hook>, causes: Arc<CauseMap>) -> Self {
        Self { hooks, causes }
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }
}

impl StatusWebhooks for ProviderWebhooks {
    fn subscribe(&self, provider: &str, query: &HashMap<String, String>) -> Option<String> {
        match self.hooks.get(provider)? {
            Hook::Whatsapp { verify_token, .. } => verify_subscription(
                query.get("hub.mode").map(String::as_str),
                query.get("hub.verify_token").map(String::as_str),
                query.get("hub.challenge").map(String::as_str),
                verify_token,
            ),
            Hook::HttpSms { .. } => None,
        }
    }

    fn receive(
        &self,
        provider: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReceiptUpdate>, WebhookRejection> {
        let hook = self
            .hooks
            .get(provider)
            .ok_or(WebhookRejection::UnknownProvider)?;
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        match hook {
            Hook::Whatsapp { app_secret, .. } => {
                let signature = header("x-hub-signature-256").unwrap_or_default();
                if !verify_signature(app_secret, body, signature) {
                    return Err(WebhookRejection::BadSignature);
                }
                let statuses = parse_status_webhook(body)
                    .map_err(|error| WebhookRejection::Malformed(error.to_string()))?;
                Ok(statuses
                    .into_iter()
                    .map(|status| {
                        let verdict = status.verdict(&self.causes);
                        ReceiptUpdate {
                            provider: provider.to_owned(),
                            message_ids: vec![normalise_message_id(&status.message_id)],
                            status: verdict.status,
                            cause: verdict.cause,
                            detail: status.detail(),
                            at: now,
                        }
                    })
                    .collect())
            }
            Hook::HttpSms { token, callback } => {
                let given = header(TOKEN_HEADER).unwrap_or_default();
                if token.is_empty() || !same(given.as_bytes(), token.expose().as_bytes()) {
                    return Err(WebhookRejection::BadSignature);
                }
                let report = parse_callback(callback, body)
                    .map_err(|error| WebhookRejection::Malformed(error.to_string()))?;
                let verdict = report.verdict(&self.causes);
                Ok(vec![ReceiptUpdate {
                    provider: provider.to_owned(),
                    message_ids: vec![normalise_message_id(&report.message_id)],
                    status: verdict.status,
                    cause: verdict.cause,
                    detail: report.detail(),
                    at: now,
                }])
            }
        }
    }
}

/// Equal bytes, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
