//! The home page, the language switch and the page a refused or broken request ends on.

use crate::PageForm;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gerbang_store::Store;
use serde::Deserialize;

use crate::Portal;
use crate::browser::{Browser, CookiePolicy, LANG_COOKIE, NOTICE_COOKIE};
use crate::catalogue::Lang;
use crate::page::{Layout, layout, render, see_other};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    help: String,
}

/// `GET /`.
pub async fn index<S: Store>(State(portal): State<Portal<S>>, browser: Browser) -> Response {
    let help = browser
        .lang
        .catalogue()
        .fill("home.help", &[("line", &portal.help_line)]);
    let page = HomePage {
        layout: layout(&browser, portal.csrf_token(&browser), "home.title", "/"),
        help,
    };
    render(&page, StatusCode::OK, &browser, portal.cookies)
}

#[derive(Debug, Deserialize)]
pub struct LanguageForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    next: String,
}

/// The pages the switch may return to: the portal's own, never an address from elsewhere.
const RETURNABLE: [&str; 10] = [
    "/",
    "/register",
    "/register/contact",
    "/code",
    "/login",
    "/recover",
    "/recover/channel",
    "/account",
    "/account/contact",
    "/account/bank",
];

/// `POST /language`: remembers the choice for a year and goes back to the page.
pub async fn switch_language<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<LanguageForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    remember_language(portal.cookies, &browser, &form, &RETURNABLE, "/")
}

/// Remembers the language `form` chose for a year and goes back to its page, if it is one of
/// `returnable` (never an address from elsewhere), else to `fallback`.
pub fn remember_language(
    cookies: CookiePolicy,
    browser: &Browser,
    form: &LanguageForm,
    returnable: &[&'static str],
    fallback: &'static str,
) -> Response {
    let lang = Lang::parse(&form.lang).unwrap_or_default();
    let next = returnable
        .iter()
        .find(|path| **path == form.next)
        .copied()
        .unwrap_or(fallback);
    let mut headers = HeaderMap::new();
    cookies.set(
        &mut headers,
        LANG_COOKIE,
        lang.code(),
        Some(365 * 24 * 3600),
    );
    cookies.set(&mut headers, NOTICE_COOKIE, "language_changed", Some(60));
    see_other(next, headers, browser, cookies)
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage {
    layout: Layout,
    body: &'static str,
    detail: Option<String>,
}

/// A page that explains why a request went no further, with a way back home.
pub fn problem<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    status: StatusCode,
    title: &'static str,
    body: &'static str,
) -> Response {
    problem_with(portal, browser, status, title, body, None)
}

/// The same with a sentence from the refusal itself (e.g. when to try again).
pub fn problem_with<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    status: StatusCode,
    title: &'static str,
    body: &'static str,
    detail: Option<String>,
) -> Response {
    let page = ProblemPage {
        layout: layout(browser, portal.csrf_token(browser), title, "/"),
        body,
        detail,
    };
    render(&page, status, browser, portal.cookies)
}
