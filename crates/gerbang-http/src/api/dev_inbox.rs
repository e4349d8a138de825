//! The development inbox: every message the `dev_inbox` courier took, newest first, so the whole
//! product can be tried on a fresh machine without an SMS or email account. Served only in the
//! development profile; it shows codes in clear by design.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::Html;
use chrono::SecondsFormat;
use gerbang_store::{InboxMessage, Store};
use serde::{Deserialize, Serialize};

use crate::HttpState;
use crate::error::ApiError;

#[derive(Debug, Serialize)]
pub struct InboxEntry {
    verification: String,
    channel: &'static str,
    to: String,
    text: String,
    handed_off_at: String,
}

fn entry(message: &InboxMessage) -> InboxEntry {
    InboxEntry {
        verification: message.message.verification.to_string(),
        channel: message.message.channel.as_str(),
        to: message.message.destination.reveal().to_owned(),
        text: message.message.text.clone(),
        handed_off_at: message
            .handed_off_at
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

/// `?limit=N`: how many of the newest messages (default 100, at most 200,000 for load tests).
#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    limit: Option<u32>,
}

async fn entries<S: Store>(state: &HttpState<S>, limit: u32) -> Result<Vec<InboxEntry>, ApiError> {
    let messages = state
        .store
        .inbox(limit.clamp(1, 200_000))
        .await
        .map_err(|error| {
            tracing::error!(%error, "reading the development inbox failed");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Layanan sedang sibuk. Silakan coba lagi sebentar lagi.",
                "The service is busy. Please try again shortly.",
            )
            .retry_after(1)
        })?;
    Ok(messages.iter().map(entry).collect())
}

pub(crate) async fn json<S: Store>(
    State(state): State<HttpState<S>>,
    Query(query): Query<InboxQuery>,
) -> Result<Json<Vec<InboxEntry>>, ApiError> {
    Ok(Json(entries(&state, query.limit.unwrap_or(100)).await?))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) async fn page<S: Store>(
    State(state): State<HttpState<S>>,
) -> Result<Html<String>, ApiError> {
    let rows: String = entries(&state, 100)
        .await?
        .iter()
        .map(|e| {
            format!(
                "<li><small>{} · {} · {}</small><pre>{}</pre></li>",
                escape(&e.handed_off_at),
                e.channel,
                escape(&e.to),
                escape(&e.text)
            )
        })
        .collect();
    Ok(Html(format!(
        "<!doctype html><html lang=\"id\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"3\"><title>gerbang · kotak masuk pengembangan</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:1rem;max-width:40rem}}\
         li{{list-style:none;border-bottom:1px solid #ddd;padding:.5rem 0}}pre{{white-space:pre-wrap;margin:.25rem 0}}</style>\
         </head><body><h1>Kotak masuk pengembangan</h1>\
         <p>Pesan yang dikirim gerbang dalam mode pengembangan. Tidak ada yang keluar dari mesin ini. \
         / Messages gerbang sent in development mode; nothing leaves this machine.</p>\
         <ul>{rows}</ul></body></html>"
    )))
}
