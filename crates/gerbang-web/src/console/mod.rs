//! The staff console at `/staff` (SPEC §6): sign-in with password and authenticator code, then the
//! sections the staff member's role may open. Every route checks the role on the server, read
//! afresh on every request ([`StaffService::session`]); a refused request is a 403 page and an
//! entry in the audit log. Same layout, catalogues, CSRF tokens and security headers as the
//! participant portal.
//!
//! - [`participants`]: find a participant by an exact identifier, with a reason; their masked
//!   account state, events and delivery trails; lift a lock.
//! - [`tickets`]: complaint tickets with notes and linked verifications.
//! - [`requests`]: a contact change at the counter, approved by a second person (four eyes).
//! - [`audit`]: the audit log with filters.
//! - [`health`]: delivery health over the last 24 hours, drawn as SVG on the server.
//! - [`team`]: the administrator's staff list (add, re-role, disable, reset) and read-only settings.

pub mod audit;
pub mod health;
pub mod participants;
pub mod requests;
pub mod team;
pub mod tickets;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use gerbang_core::{AccountService, StaffService, StaffServiceError, StaffSession};
use gerbang_domain::account::SessionToken;
use gerbang_domain::staff::{Permission, Role};
use gerbang_store::Store;
use gerbang_store::audit::AuditRecord;
use secrecy::SecretString;
use serde::Deserialize;

use crate::PageForm;
use crate::browser::{Browser, CookiePolicy, CsrfKey, NOTICE_COOKIE, STAFF_COOKIE};
use crate::page::{ConsoleNav, Errors, Layout, layout, render, see_other};

/// What the console's handlers share; cheap to clone.
pub struct Console<S> {
    pub staff: Arc<StaffService<S>>,
    pub accounts: AccountService<S>,
    pub store: S,
    pub csrf: CsrfKey,
    pub cookies: CookiePolicy,
}

impl<S: Clone> Clone for Console<S> {
    fn clone(&self) -> Self {
        Self {
            staff: self.staff.clone(),
            accounts: self.accounts.clone(),
            store: self.store.clone(),
            csrf: self.csrf.clone(),
            cookies: self.cookies,
        }
    }
}

impl<S> std::fmt::Debug for Console<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("cookies", &self.cookies)
            .finish_non_exhaustive()
    }
}

/// The sections of the console, each with the permission it needs.
const SECTIONS: [(&str, &str, Permission); 7] = [
    (
        "/staff/participants",
        "console.section_participants",
        Permission::SearchParticipants,
    ),
    (
        "/staff/tickets",
        "console.section_tickets",
        Permission::KeepTickets,
    ),
    (
        "/staff/requests",
        "console.section_requests",
        Permission::ApproveRequests,
    ),
    (
        "/staff/audit",
        "console.section_audit",
        Permission::ViewAuditLog,
    ),
    (
        "/staff/health",
        "console.section_health",
        Permission::ViewDeliveryHealth,
    ),
    (
        "/staff/team",
        "console.section_team",
        Permission::ManageStaff,
    ),
    (
        "/staff/settings",
        "console.section_settings",
        Permission::ViewConfiguration,
    ),
];

pub fn role_key(role: Role) -> &'static str {
    match role {
        Role::Agent => "console.role_agent",
        Role::Officer => "console.role_officer",
        Role::Supervisor => "console.role_supervisor",
        Role::Admin => "console.role_admin",
    }
}

impl<S: Store> Console<S> {
    pub fn csrf_token(&self, browser: &Browser) -> String {
        self.csrf.token(&browser.csrf_id)
    }

    /// The layout of a console page for a signed-in member.
    pub fn layout(
        &self,
        browser: &Browser,
        session: Option<&StaffSession>,
        title: &'static str,
        here: &'static str,
    ) -> Layout {
        let mut page = layout(browser, self.csrf_token(browser), title, here);
        page.console = session.map(|session| {
            let role = session.staff.member.role;
            ConsoleNav {
                name: session.staff.member.name.as_str().to_owned(),
                role: role_key(role),
                links: SECTIONS
                    .iter()
                    .filter(|(_, _, permission)| role.may(*permission))
                    .map(|(href, key, _)| (*href, *key))
                    .collect(),
            }
        });
        page
    }

    /// Refuses a form without this browser's token.
    #[allow(clippy::result_large_err)]
    pub fn check_csrf(&self, browser: &Browser, token: &str) -> Result<(), Response> {
        if !browser.csrf_new && self.csrf.accepts(&browser.csrf_id, token) {
            return Ok(());
        }
        Err(self.problem(
            browser,
            None,
            StatusCode::FORBIDDEN,
            "problem.csrf_title",
            "problem.csrf_body",
        ))
    }

    /// The signed-in member, or the sign-in page (with why, when a session ended).
    pub async fn signed_in(&self, browser: &Browser) -> Result<StaffSession, Response> {
        let Some(token) = browser.staff.as_deref().and_then(SessionToken::parse) else {
            return Err(see_other(
                "/staff/login",
                HeaderMap::new(),
                browser,
                self.cookies,
            ));
        };
        match self.staff.session(&token).await {
            Ok(session) => Ok(session),
            Err(StaffServiceError::Staff(_)) => {
                let mut headers = HeaderMap::new();
                self.cookies.clear(&mut headers, STAFF_COOKIE);
                self.cookies
                    .set(&mut headers, NOTICE_COOKIE, "session_ended", Some(60));
                Err(see_other("/staff/login", headers, browser, self.cookies))
            }
            Err(error) => Err(self.unavailable(browser, &error)),
        }
    }

    /// The member, if their role may do `permission`; otherwise a 403 page, and the refusal is
    /// recorded (a forged request for another role's action leaves a trace).
    pub async fn allowed(
        &self,
        browser: &Browser,
        permission: Permission,
        route: &'static str,
    ) -> Result<StaffSession, Response> {
        let session = self.signed_in(browser).await?;
        if session.may(permission).is_ok() {
            return Ok(session);
        }
        let record = AuditRecord {
            at: chrono::Utc::now(),
            actor: session.actor(),
            action: "staff_access_refused".into(),
            account: None,
            ticket: None,
            detail: format!("{route} needs {permission:?}"),
        };
        if let Err(error) = self.store.append_audit(vec![record]).await {
            return Err(self.unavailable(browser, &StaffServiceError::Store(error)));
        }
        Err(self.problem(
            browser,
            Some(&session),
            StatusCode::FORBIDDEN,
            "console.forbidden_title",
            "console.forbidden_body",
        ))
    }

    pub fn problem(
        &self,
        browser: &Browser,
        session: Option<&StaffSession>,
        status: StatusCode,
        title: &'static str,
        body: &'static str,
    ) -> Response {
        let page = ConsoleProblem {
            layout: self.layout(browser, session, title, "/staff"),
            body,
        };
        render(&page, status, browser, self.cookies)
    }

    pub fn unavailable(&self, browser: &Browser, error: &StaffServiceError) -> Response {
        tracing::error!(%error, "the console could not reach the store");
        self.problem(
            browser,
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "console.unavailable_title",
            "console.unavailable_body",
        )
    }
}

/// A console form that cannot be read is a 400 page, as on the portal.
impl<S: Store> crate::FormProblem for Console<S> {
    fn form_problem(&self, browser: &Browser) -> Response {
        self.problem(
            browser,
            None,
            StatusCode::BAD_REQUEST,
            "problem.form_title",
            "problem.form_body",
        )
    }
}

#[derive(Template)]
#[template(path = "console_problem.html")]
struct ConsoleProblem {
    layout: Layout,
    body: &'static str,
}

#[derive(Template)]
#[template(path = "console_login.html")]
struct LoginPage {
    layout: Layout,
    errors: Errors,
    staff_name: String,
}

#[derive(Template)]
#[template(path = "console_home.html")]
struct HomePage {
    layout: Layout,
    lead: String,
    sections: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    csrf: String,
    name: String,
    password: String,
    code: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfOnly {
    csrf: String,
}

/// `GET /staff/login`.
pub async fn login_page<S: Store>(State(console): State<Console<S>>, browser: Browser) -> Response {
    let page = LoginPage {
        layout: console.layout(&browser, None, "console.login_title", "/staff/login"),
        errors: Errors::none(),
        staff_name: String::new(),
    };
    render(&page, StatusCode::OK, &browser, console.cookies)
}

/// `POST /staff/login`.
pub async fn login<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<LoginForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let lang = browser.lang;
    let t = lang.catalogue();
    let mut errors = Errors::none();
    for (field, value, key) in [
        ("name", &form.name, "console.name_missing"),
        ("password", &form.password, "console.password_missing"),
        ("code", &form.code, "console.code_missing"),
    ] {
        if value.trim().is_empty() {
            errors.add(field, t.get(key).into());
        }
    }
    if !errors.any() {
        let password = SecretString::from(form.password.clone());
        match console
            .staff
            .sign_in(&form.name, &password, &form.code)
            .await
        {
            Ok((token, _)) => {
                let mut headers = HeaderMap::new();
                console
                    .cookies
                    .set(&mut headers, STAFF_COOKIE, token.expose(), None);
                return see_other("/staff", headers, &browser, console.cookies);
            }
            Err(StaffServiceError::Staff(error)) => {
                errors = Errors::refusal(lang, &error, None);
            }
            Err(error) => return console.unavailable(&browser, &error),
        }
    }
    let page = LoginPage {
        layout: console.layout(&browser, None, "console.login_title", "/staff/login"),
        errors,
        staff_name: form.name.trim().to_owned(),
    };
    render(
        &page,
        StatusCode::UNPROCESSABLE_ENTITY,
        &browser,
        console.cookies,
    )
}

/// `GET /staff`: who is signed in and the sections their role may open.
pub async fn home<S: Store>(State(console): State<Console<S>>, browser: Browser) -> Response {
    let session = match console.signed_in(&browser).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let role = session.staff.member.role;
    let t = browser.lang.catalogue();
    let page = HomePage {
        layout: console.layout(&browser, Some(&session), "console.home_title", "/staff"),
        lead: t.fill(
            "console.home_lead",
            &[
                ("name", session.staff.member.name.as_str()),
                ("role", t.get(role_key(role))),
            ],
        ),
        sections: SECTIONS
            .iter()
            .filter(|(_, _, permission)| role.may(*permission))
            .map(|(href, key, _)| (*href, *key))
            .collect(),
    };
    render(&page, StatusCode::OK, &browser, console.cookies)
}

/// `POST /staff/sign-out`.
pub async fn sign_out<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<CsrfOnly>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    if let Some(token) = browser.staff.as_deref().and_then(SessionToken::parse) {
        match console.staff.sign_out(&token).await {
            Ok(()) | Err(StaffServiceError::Staff(_)) => {}
            Err(error) => return console.unavailable(&browser, &error),
        }
    }
    let mut headers = HeaderMap::new();
    console.cookies.clear(&mut headers, STAFF_COOKIE);
    console
        .cookies
        .set(&mut headers, NOTICE_COOKIE, "signed_out", Some(60));
    see_other("/staff/login", headers, &browser, console.cookies)
}

/// The console pages the language switch may return to.
const RETURNABLE: [&str; 9] = [
    "/staff",
    "/staff/health",
    "/staff/settings",
    "/staff/requests",
    "/staff/tickets",
    "/staff/login",
    "/staff/participants",
    "/staff/audit",
    "/staff/team",
];

/// `POST /staff/language`.
pub async fn switch_language<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<crate::home::LanguageForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    crate::home::remember_language(console.cookies, &browser, &form, &RETURNABLE, "/staff")
}

/// The console's routes; the binary merges them beside the portal's, under the same security
/// headers ([`crate::secured`]).
pub fn routes<S: Store>(console: Console<S>) -> Router {
    let router = Router::new()
        .route("/staff", get(home::<S>))
        .route("/staff/login", get(login_page::<S>).post(login::<S>))
        .route("/staff/sign-out", post(sign_out::<S>))
        .route("/staff/language", post(switch_language::<S>))
        .route(
            "/staff/participants",
            get(participants::search_page::<S>).post(participants::search::<S>),
        )
        .route("/staff/accounts/unlock", post(participants::unlock::<S>))
        .route(
            "/staff/accounts/sign-out-devices",
            post(participants::sign_out_devices::<S>),
        )
        .route(
            "/staff/tickets",
            get(tickets::find::<S>).post(tickets::open::<S>),
        )
        .route("/staff/tickets/{number}", get(tickets::show::<S>))
        .route(
            "/staff/tickets/{number}/notes",
            post(tickets::add_note::<S>),
        )
        .route(
            "/staff/requests",
            get(requests::queue::<S>).post(requests::create::<S>),
        )
        .route("/staff/requests/new", post(requests::new_page::<S>))
        .route("/staff/requests/{number}", get(requests::show::<S>))
        .route(
            "/staff/requests/{number}/approve",
            post(requests::approve::<S>),
        )
        .route(
            "/staff/requests/{number}/decline",
            post(requests::decline::<S>),
        )
        .route("/staff/requests/{number}/send", post(requests::send::<S>))
        .route("/staff/requests/{number}/code", post(requests::code::<S>))
        .route("/staff/audit", get(audit::log::<S>))
        .route("/staff/health", get(health::page::<S>))
        .route("/staff/health/lift", post(health::lift::<S>))
        .route("/staff/team", get(team::team::<S>))
        .route("/staff/team/add", post(team::add::<S>))
        .route("/staff/team/role", post(team::set_role::<S>))
        .route("/staff/team/disable", post(team::disable::<S>))
        .route("/staff/team/reset", post(team::reset::<S>))
        .route("/staff/settings", get(team::settings::<S>))
        .with_state(console);
    crate::secured(router)
}
