//! The signed-in pages: the profile (masked), trusted devices with "sign this device out", the
//! change of phone or email (a code to the old contact first, then to the new one), sign-out, and
//! "change bank account", a sensitive action confirmed by a step-up code bound to its details.

use std::collections::BTreeMap;

use crate::PageForm;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gerbang_core::AccountError;
use gerbang_domain::verification::Destination;
use gerbang_domain::verification::purpose::{ActionDetails, SensitiveAction};
use gerbang_domain::{Email, MobileNumber};
use gerbang_store::Store;
use serde::Deserialize;

use crate::Portal;
use crate::browser::{Browser, FLOW_COOKIE, NOTICE_COOKIE, SESSION_COOKIE};
use crate::code::unavailable;
use crate::page::{Errors, Layout, layout, on_their_clock, render, see_other};
use crate::registration::status_of;

/// The session is gone (expired, revoked, signed out elsewhere): to the login page, told why.
pub fn signed_out<S: Store>(portal: &Portal<S>, browser: &Browser) -> Response {
    let mut headers = HeaderMap::new();
    portal.cookies.clear(&mut headers, SESSION_COOKIE);
    portal
        .cookies
        .set(&mut headers, NOTICE_COOKIE, "session_ended", Some(60));
    see_other("/login", headers, browser, portal.cookies)
}

/// The device of a trusted-device list as the page shows it.
#[derive(Debug)]
pub struct DeviceRow {
    pub key: String,
    pub name: String,
    pub trusted_at: String,
    pub last_seen_at: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    nik: String,
    email: Option<String>,
    phone: Option<String>,
    created_at: String,
    cooling_off_until: Option<String>,
    devices: Vec<DeviceRow>,
}

/// The session of this browser, or the login page.
async fn signed_in<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
) -> Result<(String, gerbang_store::StoredAccount), Response> {
    let Some(token) = browser.session.clone() else {
        return Err(see_other(
            "/login",
            HeaderMap::new(),
            browser,
            portal.cookies,
        ));
    };
    match portal.accounts.session(&token).await {
        Ok((_, stored)) => Ok((token, stored)),
        Err(AccountError::SessionInvalid) => Err(signed_out(portal, browser)),
        Err(error) => Err(unavailable(portal, browser, &error)),
    }
}

/// `GET /account`.
pub async fn page<S: Store>(State(portal): State<Portal<S>>, browser: Browser) -> Response {
    let (token, stored) = match signed_in(&portal, &browser).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let lang = browser.lang;
    let zone = stored.account.time_zone();
    let view = portal.accounts.view(&stored);
    let devices = match portal.accounts.devices(&token).await {
        Ok(devices) => devices,
        Err(AccountError::SessionInvalid) => return signed_out(&portal, &browser),
        Err(error) => return unavailable(&portal, &browser, &error),
    };
    let now = portal.accounts.now();
    let page = AccountPage {
        layout: layout(
            &browser,
            portal.csrf_token(&browser),
            "account.title",
            "/account",
        ),
        nik: view.nik_masked,
        email: view.email_masked,
        phone: view.phone_masked,
        created_at: zone.format(view.created_at, lang.english()),
        cooling_off_until: view
            .cooling_off_until
            .filter(|until| *until > now)
            .map(|until| on_their_clock(lang, zone, until)),
        devices: devices
            .into_iter()
            .map(|d| DeviceRow {
                key: d.key,
                name: d.name,
                trusted_at: zone.format(d.trusted_at, lang.english()),
                last_seen_at: zone.format(d.last_seen_at, lang.english()),
                current: d.current,
            })
            .collect(),
    };
    render(&page, StatusCode::OK, &browser, portal.cookies)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /account/logout`.
pub async fn logout<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<CsrfOnly>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    if let Some(token) = &browser.session {
        match portal.accounts.logout(token).await {
            Ok(()) | Err(AccountError::SessionInvalid) => {}
            Err(error) => return unavailable(&portal, &browser, &error),
        }
    }
    let mut headers = HeaderMap::new();
    portal.cookies.clear(&mut headers, SESSION_COOKIE);
    portal.cookies.clear(&mut headers, FLOW_COOKIE);
    portal
        .cookies
        .set(&mut headers, NOTICE_COOKIE, "signed_out", Some(60));
    see_other("/", headers, &browser, portal.cookies)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RevokeForm {
    csrf: String,
    device: String,
}

/// `POST /account/devices/revoke`: that device's sessions end; it needs a code next time.
pub async fn revoke_device<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<RevokeForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let (token, _) = match signed_in(&portal, &browser).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    match portal.accounts.revoke_device(&token, &form.device).await {
        Ok(_) => {
            let mut headers = HeaderMap::new();
            portal
                .cookies
                .set(&mut headers, NOTICE_COOKIE, "device_signed_out", Some(60));
            // This browser's own device: its session ended with it.
            match portal.accounts.session(&token).await {
                Ok(_) => see_other("/account", headers, &browser, portal.cookies),
                Err(_) => {
                    portal.cookies.clear(&mut headers, SESSION_COOKIE);
                    see_other("/login", headers, &browser, portal.cookies)
                }
            }
        }
        Err(AccountError::SessionInvalid) => signed_out(&portal, &browser),
        Err(error) => unavailable(&portal, &browser, &error),
    }
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    layout: Layout,
    errors: Errors,
    kind: String,
    value: String,
    phone: Option<String>,
    email: Option<String>,
    cool_off: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContactForm {
    csrf: String,
    /// `phone` or `email`.
    kind: String,
    value: String,
}

/// `GET /account/contact`.
pub async fn contact_page<S: Store>(State(portal): State<Portal<S>>, browser: Browser) -> Response {
    contact_form(
        &portal,
        &browser,
        ContactForm::default(),
        Errors::none(),
        StatusCode::OK,
    )
    .await
}

async fn contact_form<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    form: ContactForm,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let (_, stored) = match signed_in(portal, browser).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let view = portal.accounts.view(&stored);
    let page = ContactPage {
        layout: layout(
            browser,
            portal.csrf_token(browser),
            "contact_change.title",
            "/account/contact",
        ),
        errors,
        kind: if form.kind == "email" {
            "email".into()
        } else {
            "phone".into()
        },
        value: form.value,
        phone: view.phone_masked,
        email: view.email_masked,
        cool_off: browser.lang.catalogue().fill(
            "contact_change.cool_off",
            &[(
                "hours",
                &portal.accounts.settings().cool_off.hours.to_string(),
            )],
        ),
    };
    render(&page, status, browser, portal.cookies)
}

/// `POST /account/contact`.
pub async fn contact<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<ContactForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let Some(token) = browser.session.clone() else {
        return see_other("/login", HeaderMap::new(), &browser, portal.cookies);
    };
    let lang = browser.lang;
    let to = if form.kind == "email" {
        Email::parse(form.value.trim())
            .map(Destination::Email)
            .map_err(|e| Errors::refusal(lang, &e, Some("value")))
    } else {
        MobileNumber::parse(form.value.trim())
            .map(Destination::Phone)
            .map_err(|e| Errors::refusal(lang, &e, Some("value")))
    };
    let to = match to {
        Ok(to) => to,
        Err(errors) => {
            return contact_form(&portal, &browser, form, errors, StatusCode::BAD_REQUEST).await;
        }
    };
    match portal
        .accounts
        .start_contact_change(&token, to, lang.locale())
        .await
    {
        Ok(sent) => {
            let mut headers = HeaderMap::new();
            let lifetime = portal.accounts.settings().flow_lifetime.num_seconds();
            portal
                .cookies
                .set(&mut headers, FLOW_COOKIE, &sent.flow, Some(lifetime));
            see_other("/code", headers, &browser, portal.cookies)
        }
        Err(AccountError::SessionInvalid) => signed_out(&portal, &browser),
        Err(error) => {
            let field = match &error {
                AccountError::PhoneTaken
                | AccountError::EmailTaken
                | AccountError::ContactUnchanged => Some("value"),
                _ => None,
            };
            let errors = Errors::refusal(lang, &error, field);
            let status = status_of(&error);
            contact_form(&portal, &browser, form, errors, status).await
        }
    }
}

#[derive(Template)]
#[template(path = "bank.html")]
struct BankPage {
    layout: Layout,
    errors: Errors,
    bank: String,
    account_number: String,
    holder: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BankForm {
    csrf: String,
    bank: String,
    account_number: String,
    holder: String,
}

/// `GET /account/bank`.
pub async fn bank_page<S: Store>(State(portal): State<Portal<S>>, browser: Browser) -> Response {
    if let Err(page) = signed_in(&portal, &browser).await {
        return page;
    }
    bank_form(
        &portal,
        &browser,
        BankForm::default(),
        Errors::none(),
        StatusCode::OK,
    )
}

fn bank_form<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    form: BankForm,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let page = BankPage {
        layout: layout(
            browser,
            portal.csrf_token(browser),
            "bank.title",
            "/account/bank",
        ),
        errors,
        bank: form.bank,
        account_number: form.account_number,
        holder: form.holder,
    };
    render(&page, status, browser, portal.cookies)
}

/// `POST /account/bank`: a step-up code bound to the new account's details.
pub async fn bank<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<BankForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let Some(token) = browser.session.clone() else {
        return see_other("/login", HeaderMap::new(), &browser, portal.cookies);
    };
    let lang = browser.lang;
    let t = lang.catalogue();
    let number: String = form
        .account_number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.'))
        .collect();
    let mut errors = Errors::none();
    if form.bank.trim().is_empty() || form.bank.chars().count() > 60 {
        errors.add("bank", t.get("bank.bank_missing").into());
    }
    if !(6..=20).contains(&number.len()) || !number.chars().all(|c| c.is_ascii_digit()) {
        errors.add("account_number", t.get("bank.number_invalid").into());
    }
    if form.holder.trim().is_empty() || form.holder.chars().count() > 100 {
        errors.add("holder", t.get("bank.holder_missing").into());
    }
    if errors.any() {
        return bank_form(&portal, &browser, form, errors, StatusCode::BAD_REQUEST);
    }
    let mut entries = BTreeMap::new();
    entries.insert("bank".to_string(), form.bank.trim().to_string());
    entries.insert("account_number".to_string(), number.clone());
    entries.insert("holder".to_string(), form.holder.trim().to_string());
    let Ok(details) = ActionDetails::parse(entries) else {
        let errors = Errors::whole(t.get("bank.number_invalid").into());
        return bank_form(&portal, &browser, form, errors, StatusCode::BAD_REQUEST);
    };
    // The code's message names the last four digits of the new account.
    let tail: String = number
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let hint = Some(format!("****{tail}"));
    match portal
        .accounts
        .start_step_up(
            &token,
            SensitiveAction::BankAccountChange,
            details,
            hint,
            lang.locale(),
        )
        .await
    {
        Ok(sent) => {
            let mut headers = HeaderMap::new();
            let lifetime = portal.accounts.settings().flow_lifetime.num_seconds();
            portal
                .cookies
                .set(&mut headers, FLOW_COOKIE, &sent.flow, Some(lifetime));
            see_other("/code", headers, &browser, portal.cookies)
        }
        Err(AccountError::SessionInvalid) => signed_out(&portal, &browser),
        Err(error) => {
            let errors = Errors::refusal(lang, &error, None);
            bank_form(&portal, &browser, form, errors, status_of(&error))
        }
    }
}
