//! The audit log with filters (supervisors and administrators), the staff list and the reset of a
//! member's password and authenticator (administrators).

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

use super::{Console, role_key};
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

#[derive(Debug)]
pub struct TeamRow {
    pub name: String,
    pub role: &'static str,
    pub state: &'static str,
}

#[derive(Template)]
#[template(path = "console_team.html")]
struct TeamPage {
    layout: Layout,
    rows: Vec<TeamRow>,
}

/// `GET /staff/team`: every staff member with role and state.
pub async fn team<S: Store>(State(console): State<Console<S>>, browser: Browser) -> Response {
    let session = match console
        .allowed(&browser, Permission::ManageStaff, "/staff/team")
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let members = match console.staff.list().await {
        Ok(members) => members,
        Err(error) => return console.unavailable(&browser, &error),
    };
    let now = chrono::Utc::now();
    let rows = members
        .into_iter()
        .map(|stored| TeamRow {
            name: stored.member.name.as_str().to_owned(),
            role: role_key(stored.member.role),
            state: match stored.member.state(now) {
                "disabled" => "console.state_disabled",
                "locked" => "console.state_locked",
                _ => "console.state_active",
            },
        })
        .collect();
    let page = TeamPage {
        layout: console.layout(
            &browser,
            Some(&session),
            "console.team_title",
            "/staff/team",
        ),
        rows,
    };
    render(&page, StatusCode::OK, &browser, console.cookies)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    csrf: String,
    name: String,
}

#[derive(Template)]
#[template(path = "console_enrolment.html")]
struct EnrolmentPage {
    layout: Layout,
    lead: String,
    name: String,
    password: String,
    base32: String,
    /// The `otpauth://` address as a QR code, an SVG in a `data:` address (the CSP allows no
    /// inline markup from elsewhere).
    qr: String,
}

/// `POST /staff/team/reset`: an administrator gives a member a new password and authenticator (a
/// lost phone); shown once, recorded under the administrator's name.
pub async fn reset<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    crate::PageForm(form): crate::PageForm<ResetForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let session = match console
        .allowed(&browser, Permission::ManageStaff, "/staff/team/reset")
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let enrolment = match console
        .staff
        .reset(&form.name, None, &session.actor())
        .await
    {
        Ok(enrolment) => enrolment,
        Err(StaffServiceError::NotFound | StaffServiceError::Staff(_)) => {
            return console.problem(
                &browser,
                Some(&session),
                StatusCode::NOT_FOUND,
                "console.not_found_title",
                "console.not_found_body",
            );
        }
        Err(error) => return console.unavailable(&browser, &error),
    };
    use base64::Engine as _;
    use secrecy::ExposeSecret;
    let url = enrolment.totp_url.expose_secret();
    let qr = match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(240, 240)
                .build();
            format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(svg)
            )
        }
        Err(_) => String::new(),
    };
    let name = enrolment.staff.member.name.as_str().to_owned();
    let t = browser.lang.catalogue();
    let page = EnrolmentPage {
        layout: console.layout(
            &browser,
            Some(&session),
            "console.enrolment_title",
            "/staff/team",
        ),
        lead: t.fill("console.enrolment_lead", &[("name", &name)]),
        name,
        password: enrolment
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default(),
        base32: enrolment.totp_base32.expose_secret().to_owned(),
        qr,
    };
    render(&page, StatusCode::OK, &browser, console.cookies)
}
