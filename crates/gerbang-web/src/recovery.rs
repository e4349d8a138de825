//! Forgot password: identifier, birth date and captcha → the masked channels on file → the code
//! with the new password (on the code page) → "all your devices were signed out".

use crate::PageForm;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gerbang_core::captcha::CaptchaAnswer;
use gerbang_core::{AccountError, FlowKind};
use gerbang_domain::verification::Channel;
use gerbang_store::Store;
use serde::Deserialize;

use crate::Portal;
use crate::browser::{Browser, FLOW_COOKIE};
use crate::code::{start_over, unavailable};
use crate::page::{Errors, Layout, layout, render, see_other};
use crate::registration::{CaptchaView, captcha_view, parse_birth_date, status_of};

#[derive(Template)]
#[template(path = "recover_identify.html")]
struct IdentifyPage {
    layout: Layout,
    errors: Errors,
    identifier: String,
    birth_date: String,
    captcha: CaptchaView,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IdentifyForm {
    csrf: String,
    identifier: String,
    birth_date: String,
    captcha_token: String,
    captcha_answer: String,
    action: String,
}

/// `GET /recover`.
pub async fn identify_page<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
) -> Response {
    identify_form(
        &portal,
        &browser,
        IdentifyForm::default(),
        Errors::none(),
        StatusCode::OK,
    )
}

fn identify_form<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    form: IdentifyForm,
    mut errors: Errors,
    status: StatusCode,
) -> Response {
    let captcha = match captcha_view(portal) {
        Ok(captcha) => captcha,
        Err(error) => {
            errors = Errors::refusal(browser.lang, &error, None);
            CaptchaView::default()
        }
    };
    let page = IdentifyPage {
        layout: layout(
            browser,
            portal.csrf_token(browser),
            "recover.title",
            "/recover",
        ),
        errors,
        identifier: form.identifier,
        birth_date: form.birth_date,
        captcha,
    };
    render(&page, status, browser, portal.cookies)
}

/// `POST /recover`.
pub async fn identify<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<IdentifyForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    if form.action == "another" {
        return identify_form(&portal, &browser, form, Errors::none(), StatusCode::OK);
    }
    let t = browser.lang.catalogue();
    let mut errors = Errors::none();
    if form.identifier.trim().is_empty() {
        errors.add("identifier", t.get("recover.identifier_missing").into());
    }
    let birth_date = parse_birth_date(&form.birth_date);
    if birth_date.is_none() {
        errors.add("birth_date", t.get("errors.birth_date_invalid").into());
    }
    let Some(birth_date) = birth_date.filter(|_| !errors.any()) else {
        return identify_form(&portal, &browser, form, errors, StatusCode::BAD_REQUEST);
    };
    let captcha = (!form.captcha_token.is_empty()).then_some(CaptchaAnswer {
        token: &form.captcha_token,
        answer: &form.captcha_answer,
    });
    match portal
        .accounts
        .start_recovery(&form.identifier, birth_date, captcha, browser.ip)
        .await
    {
        Ok(options) => {
            let mut headers = HeaderMap::new();
            let lifetime = portal.accounts.settings().flow_lifetime.num_seconds();
            portal
                .cookies
                .set(&mut headers, FLOW_COOKIE, &options.flow, Some(lifetime));
            see_other("/recover/channel", headers, &browser, portal.cookies)
        }
        Err(error) => {
            let field = match &error {
                AccountError::IdentifierInvalid { .. }
                | AccountError::IdentifierLength { .. }
                | AccountError::NikInvalid(_)
                | AccountError::EmailInvalid(_) => Some("identifier"),
                AccountError::Captcha(_) => Some("captcha"),
                _ => None,
            };
            let errors = Errors::refusal(browser.lang, &error, field);
            identify_form(&portal, &browser, form, errors, status_of(&error))
        }
    }
}

#[derive(Template)]
#[template(path = "recover_channel.html")]
struct ChannelPage {
    layout: Layout,
    errors: Errors,
    /// (channel, its name, the masked contact)
    channels: Vec<(String, String, String)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChannelForm {
    csrf: String,
    channel: String,
}

/// `GET /recover/channel`.
pub async fn channel_page<S: Store>(State(portal): State<Portal<S>>, browser: Browser) -> Response {
    channel_form(&portal, &browser, Errors::none(), StatusCode::OK).await
}

async fn channel_form<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let Some(flow) = &browser.flow else {
        return start_over(portal, browser);
    };
    let view = match portal.accounts.flow_view(flow).await {
        Ok(view) if view.kind == FlowKind::Recovery => view,
        Ok(_) | Err(AccountError::FlowNotFound) => return start_over(portal, browser),
        Err(error) => return unavailable(portal, browser, &error),
    };
    // A code was sent already (the back button): the code page.
    if view.verification.is_some() {
        return see_other("/code", HeaderMap::new(), browser, portal.cookies);
    }
    let t = browser.lang.catalogue();
    let page = ChannelPage {
        layout: layout(
            browser,
            portal.csrf_token(browser),
            "recover.channel_title",
            "/recover/channel",
        ),
        errors,
        channels: view
            .channels
            .iter()
            .map(|c| {
                (
                    c.channel.as_str().to_string(),
                    t.get(&format!("channel.{}", c.channel.as_str()))
                        .to_string(),
                    c.masked.clone(),
                )
            })
            .collect(),
    };
    render(&page, status, browser, portal.cookies)
}

/// `POST /recover/channel`.
pub async fn send<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<ChannelForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let Some(flow) = browser.flow.clone() else {
        return start_over(&portal, &browser);
    };
    let Ok(channel) = Channel::parse(&form.channel) else {
        let t = browser.lang.catalogue();
        let errors = Errors::field("channel", t.get("recover.channel_missing").into());
        return channel_form(&portal, &browser, errors, StatusCode::BAD_REQUEST).await;
    };
    match portal
        .accounts
        .send_recovery(&flow, channel, browser.lang.locale())
        .await
    {
        Ok(_) => see_other("/code", HeaderMap::new(), &browser, portal.cookies),
        Err(AccountError::FlowNotFound) => start_over(&portal, &browser),
        Err(error) => {
            let errors = Errors::refusal(browser.lang, &error, Some("channel"));
            channel_form(&portal, &browser, errors, status_of(&error)).await
        }
    }
}
