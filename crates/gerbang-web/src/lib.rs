//! The participant portal: every account flow of SPEC §3 as server-rendered pages, in Indonesian
//! and English, over the same [`AccountService`] the JSON API calls — a handler parses a form, calls
//! one use-case and renders; the rules stay in `gerbang-core`.
//!
//! Layout:
//! - [`catalogue`]: the message catalogues (`i18n/*.toml`); templates hold no text of their own.
//! - [`browser`]: cookies (opaque tokens only), the language, CSRF tokens.
//! - [`page`]: the layout's context, form errors tied to fields, rendering.
//! - [`assets`]: the stylesheet and the script, served under content-hashed names.
//! - one module per flow: [`home`], [`registration`], [`code`] (the code page every flow shares,
//!   with "Didn't get the code?"), [`login`], [`recovery`], [`account`] (profile, devices, contact
//!   change, the bank-account step-up).
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style), refuses
//! framing, and is not cached; forms work without JavaScript, which only adds the live countdown,
//! the live delivery status and the password hints.

pub mod account;
pub mod assets;
pub mod browser;
pub mod catalogue;
pub mod code;
pub mod console;
pub mod home;
pub mod login;
pub mod page;
pub mod recovery;
pub mod registration;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use gerbang_core::AccountService;
use gerbang_store::Store;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

pub use browser::{CookiePolicy, CsrfKey};
pub use catalogue::Lang;

use crate::browser::Browser;

/// The pages' Content-Security-Policy: our own script and stylesheet only, images from us or
/// inline `data:` (the captcha), no framing, forms post only to us.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// What the portal's handlers share; cheap to clone.
#[derive(Clone)]
pub struct Portal<S> {
    pub accounts: AccountService<S>,
    pub csrf: CsrfKey,
    pub cookies: CookiePolicy,
    /// The call centre's numbers, shown where a participant is told to call.
    pub help_line: String,
}

impl<S> std::fmt::Debug for Portal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("cookies", &self.cookies)
            .finish_non_exhaustive()
    }
}

/// A submitted form; one that cannot be read (not a form, a field of the wrong shape) is a 400
/// page, not the framework's plain-text refusal.
#[derive(Debug)]
pub struct PageForm<T>(pub T);

/// A page state that answers a form it cannot read with its own 400 page.
pub trait FormProblem {
    fn form_problem(&self, browser: &Browser) -> Response;
}

impl<S: Store> FormProblem for Portal<S> {
    fn form_problem(&self, browser: &Browser) -> Response {
        home::problem(
            self,
            browser,
            StatusCode::BAD_REQUEST,
            "problem.form_title",
            "problem.form_body",
        )
    }
}

impl<St, T> axum::extract::FromRequest<St> for PageForm<T>
where
    St: FormProblem + Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &St,
    ) -> Result<Self, Self::Rejection> {
        let browser = Browser::of(request.headers(), None);
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(form)) => Ok(Self(form)),
            Err(rejection) => {
                tracing::info!(%rejection, "a form could not be read");
                Err(state.form_problem(&browser))
            }
        }
    }
}

impl<S: Store> Portal<S> {
    pub fn new(accounts: AccountService<S>, csrf: CsrfKey, cookies: CookiePolicy) -> Self {
        Self {
            accounts,
            csrf,
            cookies,
            help_line: "165".into(),
        }
    }

    /// The form token of `browser`.
    pub fn csrf_token(&self, browser: &Browser) -> String {
        self.csrf.token(&browser.csrf_id)
    }

    /// Refuses a form without this browser's token: a 403 page, not a crash.
    #[allow(clippy::result_large_err)]
    pub fn check_csrf(&self, browser: &Browser, token: &str) -> Result<(), Response> {
        if !browser.csrf_new && self.csrf.accepts(&browser.csrf_id, token) {
            return Ok(());
        }
        tracing::info!("a form arrived without this browser's CSRF token");
        Err(home::problem(
            self,
            browser,
            StatusCode::FORBIDDEN,
            "problem.csrf_title",
            "problem.csrf_body",
        ))
    }
}

/// The portal's routes, with its security headers and compression; merged into the binary's
/// router beside the JSON API.
pub fn routes<S: Store>(portal: Portal<S>) -> Router {
    let router = Router::new()
        .route("/", get(home::index::<S>))
        .route("/language", post(home::switch_language::<S>))
        .route(
            "/register",
            get(registration::identify_page::<S>).post(registration::identify::<S>),
        )
        .route(
            "/register/contact",
            get(registration::contact_page::<S>).post(registration::contact::<S>),
        )
        .route("/code", get(code::page::<S>).post(code::submit::<S>))
        .route("/code/resend", post(code::resend::<S>))
        .route("/code/status", get(code::status::<S>))
        .route("/code/cancel", post(code::cancel::<S>))
        .route("/login", get(login::page::<S>).post(login::submit::<S>))
        .route(
            "/recover",
            get(recovery::identify_page::<S>).post(recovery::identify::<S>),
        )
        .route(
            "/recover/channel",
            get(recovery::channel_page::<S>).post(recovery::send::<S>),
        )
        .route("/account", get(account::page::<S>))
        .route("/account/logout", post(account::logout::<S>))
        .route("/account/devices/revoke", post(account::revoke_device::<S>))
        .route(
            "/account/contact",
            get(account::contact_page::<S>).post(account::contact::<S>),
        )
        .route(
            "/account/bank",
            get(account::bank_page::<S>).post(account::bank::<S>),
        )
        .with_state(portal);
    secured(router)
}

/// The content-hashed stylesheet, script and icon the portal and the console share; served when
/// either is.
pub fn asset_routes() -> Router {
    secured(Router::new().route("/assets/{name}", get(assets::serve)))
}

/// `router` with the pages' security headers (strict CSP, no framing, no sniffing, no referrer,
/// no caching unless an asset says otherwise) and compression.
pub fn secured(router: Router) -> Router {
    router
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::if_not_present(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        ))
}
