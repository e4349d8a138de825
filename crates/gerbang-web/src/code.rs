//! The code page every flow shares: where the code went, the box to type it in, the countdown to
//! the next resend, and "Didn't get the code?" — the real delivery status of this code from its
//! trail, the cause's next step, and the other channels on file when fallback is allowed.

use std::collections::BTreeMap;

use crate::PageForm;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gerbang_core::accounts::ContactChangeStep;
use gerbang_core::{AccountError, EngineError, FlowKind, FlowView};
use gerbang_domain::delivery::DeliveryStatus;
use gerbang_domain::verification::purpose::{ActionDetails, SensitiveAction};
use gerbang_domain::verification::{Channel, Status};
use gerbang_store::Store;
use secrecy::SecretString;
use serde::Deserialize;

use crate::Portal;
use crate::browser::{Browser, FLOW_COOKIE, NOTICE_COOKIE, SESSION_COOKIE};
use crate::catalogue::{Catalogue, Lang};
use crate::home::problem_with;
use crate::page::{Errors, Layout, countdown, layout, on_their_clock, render, see_other};
use crate::registration::{RuleView, policy_rules, status_of};

/// A resend further away than this is told as a time on the participant's clock, not a countdown.
const COUNTDOWN_LIMIT_SECONDS: i64 = 15 * 60;

/// One delivery attempt as the participant sees it.
#[derive(Debug)]
pub struct AttemptView {
    pub channel: String,
    pub status: String,
    /// `ok`, `wait` or `bad`: how the line is marked.
    pub tone: &'static str,
    pub at: String,
    pub explanation: Option<String>,
}

/// "Didn't get the code?": the status of this code and what to do.
#[derive(Debug, Default)]
pub struct StatusPanel {
    pub headline: String,
    pub tone: &'static str,
    pub attempts: Vec<AttemptView>,
    pub queue: Option<String>,
    pub next_step: Option<String>,
    /// Other channels on file to send the code to instead.
    pub fallback: Vec<(String, String)>,
    /// The flow is over (verified, expired, exhausted): the panel stops refreshing.
    pub settled: bool,
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    layout: Layout,
    errors: Errors,
    heading: &'static str,
    lead: String,
    details: Vec<(String, String)>,
    recovery: bool,
    rules: Vec<RuleView>,
    min_length: usize,
    pending: bool,
    closed_reason: Option<String>,
    resend_now: bool,
    resend_seconds: i64,
    resend_countdown: String,
    resend_later: Option<String>,
    expires_at: String,
    panel: StatusPanel,
}

#[derive(Template)]
#[template(path = "status_fragment.html")]
struct StatusFragment {
    layout: Layout,
    panel: StatusPanel,
}

fn channel_name(t: &Catalogue, channel: Channel) -> String {
    t.get(&format!("channel.{}", channel.as_str())).to_string()
}

/// The words of the panel for a flow's current code.
pub fn status_panel(lang: Lang, view: &FlowView) -> StatusPanel {
    let t = lang.catalogue();
    let (Some(verification), Some(outlook)) = (&view.verification, &view.outlook) else {
        return StatusPanel::default();
    };
    let zone = view.time_zone;
    let attempts: Vec<AttemptView> = outlook
        .attempts
        .iter()
        .zip(outlook.explanations.iter())
        .map(|(attempt, explanation)| {
            let channel = Channel::parse(&attempt.channel).unwrap_or(Channel::Sms);
            let tone = match attempt.status {
                DeliveryStatus::Delivered => "ok",
                DeliveryStatus::Queued | DeliveryStatus::Submitted => "wait",
                _ => "bad",
            };
            AttemptView {
                channel: channel_name(t, channel),
                status: t
                    .get(&format!("delivery.{}", attempt.status.as_str()))
                    .to_string(),
                tone,
                at: zone.format(attempt.updated_at, lang.english()),
                explanation: explanation.as_ref().map(|e| match lang {
                    Lang::Id => e.id.clone(),
                    Lang::En => e.en.clone(),
                }),
            }
        })
        .collect();
    let queue = outlook.queue.map(|queue| match queue.estimated_wait {
        Some(wait) => t.fill(
            "status.queued_estimate",
            &[
                ("ahead", &queue.ahead.to_string()),
                ("seconds", &wait.num_seconds().max(1).to_string()),
            ],
        ),
        None => t.fill("status.queued", &[("ahead", &queue.ahead.to_string())]),
    });
    let latest = outlook.attempts.last();
    let (headline, tone) = if verification.status == Status::Verified {
        (t.get("status.verified").to_string(), "ok")
    } else if queue.is_some() {
        (t.get("status.headline_queued").to_string(), "wait")
    } else {
        match latest.map(|a| a.status) {
            None => (t.get("status.headline_preparing").to_string(), "wait"),
            Some(DeliveryStatus::Delivered) => (
                t.fill(
                    "status.headline_delivered",
                    &[("channel", &channel_name(t, verification.channel))],
                ),
                "ok",
            ),
            Some(DeliveryStatus::Submitted | DeliveryStatus::Queued) => {
                (t.get("status.headline_submitted").to_string(), "wait")
            }
            Some(_) => (t.get("status.headline_failed").to_string(), "bad"),
        }
    };
    let next_step = outlook
        .explanations
        .iter()
        .rev()
        .flatten()
        .next()
        .map(|e| match lang {
            Lang::Id => e.id.clone(),
            Lang::En => e.en.clone(),
        });
    let fallback = outlook
        .fallback
        .as_ref()
        .map(|offer| {
            offer
                .channels
                .iter()
                .filter(|c| view.on_file.contains(&c.channel))
                .map(|c| {
                    (
                        c.channel.as_str().to_string(),
                        t.fill(
                            "status.send_by",
                            &[("channel", &channel_name(t, c.channel))],
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    StatusPanel {
        headline,
        tone,
        attempts,
        queue,
        next_step,
        fallback,
        settled: verification.status != Status::Pending,
    }
}

/// The flow of this browser, or the home page with "start over".
async fn current_flow<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
) -> Result<(String, FlowView), Response> {
    let Some(flow) = browser.flow.clone() else {
        return Err(start_over(portal, browser));
    };
    match portal.accounts.flow_view(&flow).await {
        Ok(view) => Ok((flow, view)),
        Err(AccountError::FlowNotFound) => Err(start_over(portal, browser)),
        Err(error) => Err(unavailable(portal, browser, &error)),
    }
}

/// The flow cookie is dropped and the participant told that the flow expired.
pub fn start_over<S: Store>(portal: &Portal<S>, browser: &Browser) -> Response {
    let mut headers = HeaderMap::new();
    portal.cookies.clear(&mut headers, FLOW_COOKIE);
    portal
        .cookies
        .set(&mut headers, NOTICE_COOKIE, "flow_expired", Some(60));
    see_other("/", headers, browser, portal.cookies)
}

pub fn unavailable<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    error: &AccountError,
) -> Response {
    problem_with(
        portal,
        browser,
        status_of(error),
        "problem.unavailable_title",
        "problem.unavailable_body",
        Some(browser.lang.explain(error)),
    )
}

fn heading(view: &FlowView) -> &'static str {
    match view.kind {
        FlowKind::Registration => "code.title_registration",
        FlowKind::Login => "code.title_login",
        FlowKind::Recovery => "code.title_recovery",
        FlowKind::ContactChange if view.authorised => "code.title_contact_new",
        FlowKind::ContactChange => "code.title_contact_old",
        FlowKind::StepUp => "code.title_step_up",
    }
}

/// The labels of a step-up's details, in the participant's language.
pub fn detail_rows(t: &Catalogue, details: &BTreeMap<String, String>) -> Vec<(String, String)> {
    details
        .iter()
        .map(|(key, value)| (t.get(&format!("bank.{key}")).to_string(), value.clone()))
        .collect()
}

fn code_page<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    view: &FlowView,
    errors: Errors,
    failed_rules: &[&str],
    status: StatusCode,
) -> Response {
    let lang = browser.lang;
    let t = lang.catalogue();
    let Some(verification) = &view.verification else {
        return start_over(portal, browser);
    };
    let now = verification.as_of;
    let wait = (verification.resend_at - now).num_seconds().max(0);
    let pending = verification.status == Status::Pending;
    let closed_reason = match verification.status {
        Status::Pending => None,
        Status::Verified => Some(t.get("code.closed_verified").to_string()),
        Status::Expired => Some(t.get("code.closed_expired").to_string()),
        Status::Exhausted => Some(t.get("code.closed_exhausted").to_string()),
        Status::Cancelled => Some(t.get("code.closed_cancelled").to_string()),
    };
    let mut lead = t.fill(
        "code.sent_to",
        &[
            ("channel", &channel_name(t, verification.channel)),
            ("destination", &verification.destination_masked),
        ],
    );
    if let Some(action) = view.action {
        lead = format!("{} {}", t.get(&format!("action.{}", action.as_str())), lead);
    }
    let policy = &portal.accounts.settings().password;
    let page = CodePage {
        layout: layout(browser, portal.csrf_token(browser), heading(view), "/code"),
        errors,
        heading: heading(view),
        lead,
        details: detail_rows(t, &view.details),
        recovery: view.kind == FlowKind::Recovery,
        rules: policy_rules(policy, lang, failed_rules),
        min_length: policy.min_length,
        pending,
        closed_reason,
        resend_now: wait == 0,
        resend_seconds: wait,
        resend_countdown: countdown(now, verification.resend_at),
        resend_later: (wait > COUNTDOWN_LIMIT_SECONDS)
            .then(|| on_their_clock(lang, view.time_zone, verification.resend_at)),
        expires_at: on_their_clock(lang, view.time_zone, verification.expires_at),
        panel: status_panel(lang, view),
    };
    render(&page, status, browser, portal.cookies)
}

/// `GET /code`.
pub async fn page<S: Store>(State(portal): State<Portal<S>>, browser: Browser) -> Response {
    let (_, view) = match current_flow(&portal, &browser).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if view.verification.is_none() {
        let to = match view.kind {
            FlowKind::Recovery => "/recover/channel",
            _ => "/register/contact",
        };
        return see_other(to, HeaderMap::new(), &browser, portal.cookies);
    }
    code_page(
        &portal,
        &browser,
        &view,
        Errors::none(),
        &[],
        StatusCode::OK,
    )
}

/// `GET /code/status`: the panel alone, for the script that keeps it live.
pub async fn status<S: Store>(State(portal): State<Portal<S>>, browser: Browser) -> Response {
    let (_, view) = match current_flow(&portal, &browser).await {
        Ok(found) => found,
        Err(_) => return StatusCode::NOT_FOUND.into_response_page(),
    };
    let fragment = StatusFragment {
        layout: layout(&browser, portal.csrf_token(&browser), "code.title", "/code"),
        panel: status_panel(browser.lang, &view),
    };
    render(&fragment, StatusCode::OK, &browser, portal.cookies)
}

trait IntoResponsePage {
    fn into_response_page(self) -> Response;
}

impl IntoResponsePage for StatusCode {
    fn into_response_page(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    csrf: String,
    code: String,
    password: String,
    password_confirmation: String,
}

/// `POST /code`: the code, for whichever flow this browser is in.
pub async fn submit<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let (flow, view) = match current_flow(&portal, &browser).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    let lang = browser.lang;
    let accounts = &portal.accounts;
    let mut headers = HeaderMap::new();
    let finished = |headers: &mut HeaderMap, notice: &str| {
        portal.cookies.clear(headers, FLOW_COOKIE);
        portal.cookies.set(headers, NOTICE_COOKIE, notice, Some(60));
    };
    let session = browser.session.clone().unwrap_or_default();
    let outcome: Result<&'static str, AccountError> = match view.kind {
        FlowKind::Registration => accounts.confirm_registration(&flow, &code).await.map(|_| {
            finished(&mut headers, "registered");
            "/login"
        }),
        FlowKind::Login => accounts.confirm_login(&flow, &code).await.map(|issued| {
            let lifetime = (issued.expires_at - accounts.now()).num_seconds();
            portal.cookies.clear(&mut headers, FLOW_COOKIE);
            portal.cookies.set(
                &mut headers,
                SESSION_COOKIE,
                issued.token.expose(),
                Some(lifetime),
            );
            "/account"
        }),
        FlowKind::Recovery => accounts
            .complete_recovery(
                &flow,
                &code,
                SecretString::from(form.password.clone()),
                SecretString::from(form.password_confirmation.clone()),
            )
            .await
            .map(|_| {
                finished(&mut headers, "recovered");
                portal.cookies.clear(&mut headers, SESSION_COOKIE);
                "/login"
            }),
        FlowKind::ContactChange => match accounts
            .confirm_contact_change(&session, &flow, &code, lang.locale())
            .await
        {
            Ok(ContactChangeStep::ProveNew(sent)) => {
                let lifetime = (view.expires_at - accounts.now()).num_seconds();
                portal
                    .cookies
                    .set(&mut headers, FLOW_COOKIE, &sent.flow, Some(lifetime));
                Ok("/code")
            }
            Ok(ContactChangeStep::Changed(_)) => {
                finished(&mut headers, "contact_changed");
                Ok("/account")
            }
            Err(error) => Err(error),
        },
        FlowKind::StepUp => {
            let details = ActionDetails::parse(view.details.clone()).unwrap_or_default();
            accounts
                .confirm_step_up(&session, &flow, &code, details)
                .await
                .map(|done| {
                    let notice = match done.action {
                        SensitiveAction::BankAccountChange => "bank_changed",
                        _ => "contact_changed",
                    };
                    finished(&mut headers, notice);
                    "/account"
                })
        }
    };
    match outcome {
        Ok(to) => see_other(to, headers, &browser, portal.cookies),
        Err(AccountError::FlowNotFound) => start_over(&portal, &browser),
        Err(AccountError::SessionInvalid) => crate::account::signed_out(&portal, &browser),
        Err(error) => {
            let failed: Vec<&str> = match &error {
                AccountError::WeakPassword(weak) => {
                    weak.failed().iter().map(|r| r.code()).collect()
                }
                _ => Vec::new(),
            };
            let field = match &error {
                AccountError::WeakPassword(_) => Some("password"),
                AccountError::PasswordsDiffer => Some("password_confirmation"),
                AccountError::Engine(_) => Some("code"),
                _ => None,
            };
            let errors = Errors::refusal(lang, &error, field);
            // The view again: a wrong code changed the attempts left, a spent one the status.
            let view = accounts.flow_view(&flow).await.unwrap_or(view);
            code_page(&portal, &browser, &view, errors, &failed, status_of(&error))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResendForm {
    csrf: String,
    channel: String,
}

/// `POST /code/resend`: another code, to the same channel or to `channel` on file.
pub async fn resend<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<ResendForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let (flow, view) = match current_flow(&portal, &browser).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let channel = Channel::parse(&form.channel).ok();
    match portal.accounts.resend(&flow, channel).await {
        Ok(_) => see_other("/code", HeaderMap::new(), &browser, portal.cookies),
        Err(AccountError::FlowNotFound) => start_over(&portal, &browser),
        Err(error) => {
            let lang = browser.lang;
            let mut errors = Errors::refusal(lang, &error, Some("resend"));
            // A limit reached: when it lifts, on the participant's clock.
            if let AccountError::Engine(EngineError::RateLimited { until, .. }) = &error {
                let t = lang.catalogue();
                errors = Errors::field(
                    "resend",
                    t.fill(
                        "code.resend_limit",
                        &[("time", &on_their_clock(lang, view.time_zone, *until))],
                    ),
                );
                errors.code = Some("rate_limited");
            }
            code_page(&portal, &browser, &view, errors, &[], status_of(&error))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CancelForm {
    csrf: String,
}

/// `POST /code/cancel`: the participant gives up on this flow; its cookie goes.
pub async fn cancel<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<CancelForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let mut headers = HeaderMap::new();
    portal.cookies.clear(&mut headers, FLOW_COOKIE);
    let to = if browser.session.is_some() {
        "/account"
    } else {
        "/"
    };
    see_other(to, headers, &browser, portal.cookies)
}
