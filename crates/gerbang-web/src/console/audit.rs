//! The audit log with filters (supervisors and administrators).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use gerbang_core::StaffServiceError;
use gerbang_domain::identity::IndonesianTimeZone;
use gerbang_domain::staff::Permission;
use gerbang_store::Store;
use gerbang_store::audit::AuditFilter;
use serde::Deserialize;

use super::Console;
use crate::browser::Browser;
use crate::page::{Layout, on_their_clock, render};

/// How many entries the log view shows.
const SHOWN: u32 = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogQuery {
    actor: String,
    action: String,
    account: String,
    ticket: String,
}

#[derive(Debug)]
pub struct LogRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub account: String,
    pub ticket: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console_audit.html")]
struct LogPage {
    layout: Layout,
    actor: String,
    action: String,
    account: String,
    ticket: String,
    rows: Vec<LogRow>,
}

fn given(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.len() <= 128).then(|| text.to_owned())
}

/// `GET /staff/audit?actor=&action=&account=&ticket=`: the newest entries first.
pub async fn log<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    Query(query): Query<LogQuery>,
) -> Response {
    let session = match console
        .allowed(&browser, Permission::ViewAuditLog, "/staff/audit")
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let filter = AuditFilter {
        actor: given(&query.actor),
        action: given(&query.action),
        account: given(&query.account),
        ticket: given(&query.ticket),
    };
    let entries = match console.store.audit_recent(&filter, SHOWN).await {
        Ok(entries) => entries,
        Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
    };
    let lang = browser.lang;
    let rows = entries
        .into_iter()
        .map(|entry| LogRow {
            seq: entry.seq,
            at: on_their_clock(lang, IndonesianTimeZone::Wib, entry.record.at),
            actor: entry.record.actor,
            action: entry.record.action,
            account: entry.account_public_id.unwrap_or_default(),
            ticket: entry.record.ticket.unwrap_or_default(),
            detail: entry.record.detail,
        })
        .collect();
    let page = LogPage {
        layout: console.layout(
            &browser,
            Some(&session),
            "console.audit_title",
            "/staff/audit",
        ),
        actor: query.actor,
        action: query.action,
        account: query.account,
        ticket: query.ticket,
        rows,
    };
    render(&page, StatusCode::OK, &browser, console.cookies)
}
