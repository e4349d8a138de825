//! The administrator's pages: the staff list, where members are added, re-roled, disabled and
//! reset (a new password and authenticator, shown once); and a read-only view of the OTP policy,
//! the rate rules and the delivery providers with their circuits. Every change is recorded under
//! the administrator's name. An administrator cannot disable or re-role themselves, so a console
//! always keeps someone who can manage it.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gerbang_core::{Enrolment, StaffServiceError, StaffSession};
use gerbang_domain::Explain;
use gerbang_domain::staff::{Permission, Role};
use gerbang_domain::verification::rate::KeyKind;
use gerbang_store::Store;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{Console, role_key};
use crate::PageForm;
use crate::browser::Browser;
use crate::page::{Errors, Layout, render};

#[derive(Debug)]
pub struct TeamRow {
    pub name: String,
    pub role: Role,
    pub role_key: &'static str,
    pub state: &'static str,
    pub disabled: bool,
    /// The signed-in administrator's own row: no role change or disable offered.
    pub own: bool,
}

#[derive(Template)]
#[template(path = "console_team.html")]
struct TeamPage {
    layout: Layout,
    errors: Errors,
    rows: Vec<TeamRow>,
    roles: Vec<(&'static str, &'static str)>,
    new_name: String,
    new_role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MemberForm {
    csrf: String,
    name: String,
    role: String,
}

fn roles() -> Vec<(&'static str, &'static str)> {
    Role::ALL
        .iter()
        .map(|role| (role.as_str(), role_key(*role)))
        .collect()
}

async fn admin<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    route: &'static str,
) -> Result<StaffSession, Response> {
    console
        .allowed(browser, Permission::ManageStaff, route)
        .await
}

async fn team_page<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
    errors: Errors,
    form: MemberForm,
    status: StatusCode,
) -> Response {
    let members = match console.staff.list().await {
        Ok(members) => members,
        Err(error) => return console.unavailable(browser, &error),
    };
    let now = chrono::Utc::now();
    let me = session.staff.member.name.as_str();
    let rows = members
        .into_iter()
        .map(|stored| {
            let state = stored.member.state(now);
            TeamRow {
                own: stored.member.name.as_str() == me,
                name: stored.member.name.as_str().to_owned(),
                role: stored.member.role,
                role_key: role_key(stored.member.role),
                disabled: state == "disabled",
                state: match state {
                    "disabled" => "console.state_disabled",
                    "locked" => "console.state_locked",
                    _ => "console.state_active",
                },
            }
        })
        .collect();
    let page = TeamPage {
        layout: console.layout(browser, Some(session), "console.team_title", "/staff/team"),
        errors,
        rows,
        roles: roles(),
        new_name: form.name,
        new_role: if form.role.is_empty() {
            "agent".into()
        } else {
            form.role
        },
    };
    render(&page, status, browser, console.cookies)
}

/// `GET /staff/team`: every staff member with role and state, and the form to add one.
pub async fn team<S: Store>(State(console): State<Console<S>>, browser: Browser) -> Response {
    let session = match admin(&console, &browser, "/staff/team").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    team_page(
        &console,
        &browser,
        &session,
        Errors::none(),
        MemberForm::default(),
        StatusCode::OK,
    )
    .await
}

/// A refusal of a staff change, told above the staff list.
async fn refused<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
    errors: Errors,
    form: MemberForm,
) -> Response {
    team_page(
        console,
        browser,
        session,
        errors,
        form,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// An administrator may not take away their own access.
#[derive(Debug)]
struct OwnAccount;

impl Explain for OwnAccount {
    fn code(&self) -> &'static str {
        "staff_own_account"
    }
    fn message_id(&self) -> String {
        "Anda tidak dapat mengubah peran atau menonaktifkan akun Anda sendiri. Minta admin lain."
            .into()
    }
    fn message_en(&self) -> String {
        "You cannot change your own role or disable yourself. Ask another administrator.".into()
    }
}

/// A staff change refused for what was asked (not because the store failed).
fn staff_refusal(error: &StaffServiceError) -> Option<&dyn Explain> {
    match error {
        StaffServiceError::Hashing(_) | StaffServiceError::Store(_) => None,
        refused => Some(refused),
    }
}

/// `POST /staff/team/add`: a new member; the password and authenticator are shown once.
pub async fn add<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<MemberForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let session = match admin(&console, &browser, "/staff/team/add").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match console
        .staff
        .add(&form.name, &form.role, None, &session.actor())
        .await
    {
        Ok(enrolment) => enrolment_page(&console, &browser, &session, &enrolment),
        Err(error) => match staff_refusal(&error) {
            Some(explained) => {
                let field = match &error {
                    StaffServiceError::Staff(gerbang_domain::staff::StaffError::RoleUnknown) => {
                        "role"
                    }
                    _ => "name",
                };
                let errors = Errors::refusal(browser.lang, explained, Some(field));
                refused(&console, &browser, &session, errors, form).await
            }
            None => console.unavailable(&browser, &error),
        },
    }
}

/// `POST /staff/team/role`: a member's new role, effective on their next request.
pub async fn set_role<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<MemberForm>,
) -> Response {
    change(console, browser, form, false).await
}

/// `POST /staff/team/disable`: the member can no longer sign in; their sessions end.
pub async fn disable<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<MemberForm>,
) -> Response {
    change(console, browser, form, true).await
}

async fn change<S: Store>(
    console: Console<S>,
    browser: Browser,
    form: MemberForm,
    disable: bool,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let route = if disable {
        "/staff/team/disable"
    } else {
        "/staff/team/role"
    };
    let session = match admin(&console, &browser, route).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let by = session.actor();
    if form.name.trim().to_ascii_lowercase() == session.staff.member.name.as_str() {
        let errors = Errors::refusal(browser.lang, &OwnAccount, None);
        return refused(&console, &browser, &session, errors, MemberForm::default()).await;
    }
    let done = if disable {
        console.staff.disable(&form.name, &by).await
    } else {
        console.staff.set_role(&form.name, &form.role, &by).await
    };
    match done {
        Ok(_) => {
            team_page(
                &console,
                &browser,
                &session,
                Errors::none(),
                MemberForm::default(),
                StatusCode::OK,
            )
            .await
        }
        Err(StaffServiceError::NotFound) => console.problem(
            &browser,
            Some(&session),
            StatusCode::NOT_FOUND,
            "console.not_found_title",
            "console.not_found_body",
        ),
        Err(error) => match staff_refusal(&error) {
            Some(explained) => {
                let errors = Errors::refusal(browser.lang, explained, None);
                refused(&console, &browser, &session, errors, MemberForm::default()).await
            }
            None => console.unavailable(&browser, &error),
        },
    }
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
    PageForm(form): PageForm<ResetForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let session = match admin(&console, &browser, "/staff/team/reset").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match console
        .staff
        .reset(&form.name, None, &session.actor())
        .await
    {
        Ok(enrolment) => enrolment_page(&console, &browser, &session, &enrolment),
        Err(StaffServiceError::NotFound | StaffServiceError::Staff(_)) => console.problem(
            &browser,
            Some(&session),
            StatusCode::NOT_FOUND,
            "console.not_found_title",
            "console.not_found_body",
        ),
        Err(error) => console.unavailable(&browser, &error),
    }
}

/// The new password and authenticator of a member, shown once.
fn enrolment_page<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
    enrolment: &Enrolment,
) -> Response {
    use base64::Engine as _;
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
            browser,
            Some(session),
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
    render(&page, StatusCode::OK, browser, console.cookies)
}

/// One row of the providers table.
#[derive(Debug)]
pub struct ProviderRow {
    pub name: String,
    pub channels: String,
    pub operators: String,
    pub open: bool,
    pub response: String,
    pub in_flight: usize,
}

#[derive(Template)]
#[template(path = "console_settings.html")]
struct SettingsPage {
    layout: Layout,
    /// (catalogue key, value) of the OTP policy.
    policy: Vec<(&'static str, String)>,
    /// (what is counted, limit, window, penalty).
    rules: Vec<(&'static str, String, String, String)>,
    /// (catalogue key, value) of the staff policy.
    staff: Vec<(&'static str, String)>,
    providers: Vec<ProviderRow>,
}

fn seconds(duration: chrono::Duration) -> String {
    let s = duration.num_seconds();
    if s >= 3600 && s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s >= 60 && s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

fn key_kind(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Destination => "console.rule_destination",
        KeyKind::Account => "console.rule_account",
        KeyKind::Nik => "console.rule_nik",
        KeyKind::Ip => "console.rule_ip",
        KeyKind::Device => "console.rule_device",
        KeyKind::Prefix => "console.rule_prefix",
        KeyKind::Flow => "console.rule_flow",
    }
}

/// `GET /staff/settings`: what gerbang runs with, read-only (changed in the configuration file).
pub async fn settings<S: Store>(State(console): State<Console<S>>, browser: Browser) -> Response {
    let session = match console
        .allowed(&browser, Permission::ViewConfiguration, "/staff/settings")
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let engine = console.accounts.engine();
    let otp = &engine.settings().policy;
    let staff = console.staff.policy();
    let page = SettingsPage {
        layout: console.layout(
            &browser,
            Some(&session),
            "console.settings_title",
            "/staff/settings",
        ),
        policy: vec![
            (
                "console.policy_length",
                otp.code_length.digits().to_string(),
            ),
            ("console.policy_lifetime", seconds(otp.lifetime)),
            ("console.policy_hard_cap", seconds(otp.hard_cap)),
            (
                "console.policy_attempts",
                otp.max_wrong_attempts.to_string(),
            ),
            (
                "console.policy_resend",
                otp.resend_ladder
                    .iter()
                    .map(|step| seconds(*step))
                    .collect::<Vec<_>>()
                    .join(" → "),
            ),
        ],
        rules: engine
            .settings()
            .rules
            .iter()
            .map(|rule| {
                (
                    key_kind(rule.key),
                    rule.limit.to_string(),
                    seconds(rule.window),
                    seconds(rule.penalty),
                )
            })
            .collect(),
        staff: vec![
            ("console.staff_max_failures", staff.max_failures.to_string()),
            ("console.staff_lock", format!("{} min", staff.lock_minutes)),
            ("console.staff_idle", format!("{} min", staff.idle_minutes)),
            (
                "console.staff_absolute",
                format!("{} h", staff.absolute_hours),
            ),
            (
                "console.staff_request",
                format!("{} h", staff.request_hours),
            ),
        ],
        providers: engine
            .pace()
            .providers()
            .into_iter()
            .map(|provider| ProviderRow {
                channels: provider
                    .channels
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                operators: if provider.operators.is_empty() {
                    "—".into()
                } else {
                    provider
                        .operators
                        .iter()
                        .map(|o| format!("{o:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                open: provider.open,
                response: provider
                    .response_seconds
                    .map_or_else(|| "—".into(), |s| format!("{:.0} ms", s * 1000.0)),
                in_flight: provider.in_flight,
                name: provider.name,
            })
            .collect(),
    };
    render(&page, StatusCode::OK, &browser, console.cookies)
}
