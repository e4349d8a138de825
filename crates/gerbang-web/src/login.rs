//! Login by NIK, card number, KPJ number or email with the password; a new device gets a code;
//! a locked account gets the lock page (the unlock time on the participant's clock, or the branch
//! office for a permanent lock).

use crate::PageForm;
use askama::Template;
use axum::extract::State;
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gerbang_core::AccountError;
use gerbang_core::accounts::{LoginOutcome, LoginRequest};
use gerbang_domain::account::Locked;
use gerbang_store::Store;
use secrecy::SecretString;
use serde::Deserialize;

use crate::Portal;
use crate::browser::{Browser, DEVICE_COOKIE, FLOW_COOKIE, SESSION_COOKIE, random_hex};
use crate::catalogue::Lang;
use crate::page::{Errors, Layout, layout, on_their_clock, render, see_other, with_headers};
use crate::registration::status_of;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    errors: Errors,
    identifier: String,
}

#[derive(Template)]
#[template(path = "locked.html")]
struct LockedPage {
    layout: Layout,
    /// The unlock time on the participant's clock; `None`: locked until a branch office lifts it.
    until: Option<String>,
    help_line: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    csrf: String,
    identifier: String,
    password: String,
}

/// `GET /login`.
pub async fn page<S: Store>(State(portal): State<Portal<S>>, browser: Browser) -> Response {
    login_form(
        &portal,
        &browser,
        String::new(),
        Errors::none(),
        StatusCode::OK,
    )
}

fn login_form<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    identifier: String,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let page = LoginPage {
        layout: layout(browser, portal.csrf_token(browser), "login.title", "/login"),
        errors,
        identifier,
    };
    render(&page, status, browser, portal.cookies)
}

/// A short name for the device list: the browser and system the user agent names.
fn device_name(headers: &HeaderMap, lang: Lang) -> String {
    let agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/"]
        .into_iter()
        .find(|marker| agent.contains(marker))
        .map(|marker| match marker {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            _ => "Safari",
        });
    let system = ["Android", "iPhone", "Windows", "Mac OS", "Linux"]
        .into_iter()
        .find(|marker| agent.contains(marker));
    let t = lang.catalogue();
    match (browser, system) {
        (Some(browser), Some(system)) => t.fill(
            "login.device_on",
            &[("browser", browser), ("system", system)],
        ),
        (Some(browser), None) => browser.to_string(),
        _ => t.get("login.device_unknown").to_string(),
    }
}

/// `POST /login`.
pub async fn submit<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let lang = browser.lang;
    let t = lang.catalogue();
    let mut errors = Errors::none();
    if form.identifier.trim().is_empty() {
        errors.add("identifier", t.get("login.identifier_missing").into());
    }
    if form.password.is_empty() {
        errors.add("password", t.get("login.password_missing").into());
    }
    if errors.any() {
        return login_form(
            &portal,
            &browser,
            form.identifier,
            errors,
            StatusCode::BAD_REQUEST,
        );
    }
    let mut set = HeaderMap::new();
    let device = match &browser.device {
        Some(device) => device.clone(),
        None => {
            let device = format!("web-{}", random_hex(16));
            portal
                .cookies
                .set(&mut set, DEVICE_COOKIE, &device, Some(400 * 24 * 3600));
            device
        }
    };
    let request = LoginRequest {
        identifier: form.identifier.clone(),
        password: SecretString::from(form.password),
        device_id: device,
        device_name: device_name(&headers, lang),
        locale: lang.locale(),
        ip: browser.ip,
    };
    let accounts = &portal.accounts;
    match accounts.login(request).await {
        Ok(LoginOutcome::Session(issued)) => {
            let lifetime = (issued.expires_at - accounts.now()).num_seconds();
            portal.cookies.set(
                &mut set,
                SESSION_COOKIE,
                issued.token.expose(),
                Some(lifetime),
            );
            see_other("/account", set, &browser, portal.cookies)
        }
        Ok(LoginOutcome::StepUp(sent)) => {
            let lifetime = accounts.settings().flow_lifetime.num_seconds();
            portal
                .cookies
                .set(&mut set, FLOW_COOKIE, &sent.flow, Some(lifetime));
            see_other("/code", set, &browser, portal.cookies)
        }
        Err(AccountError::Locked(notice)) => {
            let until = match notice.locked {
                Locked::Temporarily { until } => Some(on_their_clock(lang, notice.zone, until)),
                Locked::Permanently => None,
            };
            let page = LockedPage {
                layout: layout(
                    &browser,
                    portal.csrf_token(&browser),
                    "locked.title",
                    "/login",
                ),
                until,
                help_line: portal.help_line.clone(),
            };
            let response = render(&page, StatusCode::LOCKED, &browser, portal.cookies);
            with_headers(response, set)
        }
        Err(error) => {
            let field = match &error {
                AccountError::InvalidCredentials => Some("password"),
                _ => None,
            };
            let errors = Errors::refusal(lang, &error, field);
            let response = login_form(
                &portal,
                &browser,
                form.identifier,
                errors,
                status_of(&error),
            );
            with_headers(response, set)
        }
    }
}
