//! Registration: NIK or card number, birth date and the captcha → the masked name → email, phone
//! and password (the policy shown as the participant types) → the code page.

use crate::PageForm;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use chrono::NaiveDate;
use gerbang_core::accounts::ContactAndPassword;
use gerbang_core::captcha::CaptchaAnswer;
use gerbang_core::{AccountError, CaptchaGate, FlowKind};
use gerbang_domain::account::{PasswordPolicy, PasswordRule};
use gerbang_domain::verification::Channel;
use gerbang_domain::{Email, MobileNumber};
use gerbang_store::Store;
use secrecy::SecretString;
use serde::Deserialize;

use crate::Portal;
use crate::browser::{Browser, FLOW_COOKIE, NOTICE_COOKIE};
use crate::catalogue::Lang;
use crate::home::problem_with;
use crate::page::{Errors, Layout, layout, render, see_other};

/// The captcha as a page shows it.
#[derive(Debug, Default)]
pub struct CaptchaView {
    /// The built-in image (`data:` URL) and its token; `None` for the test mode's plain field.
    pub image: Option<String>,
    pub token: String,
    /// An answer field is shown (built-in or test mode).
    pub shown: bool,
}

/// A fresh challenge for a form (`Err`: the captcha cannot make one now).
pub fn captcha_view<S: Store>(portal: &Portal<S>) -> Result<CaptchaView, AccountError> {
    match portal.accounts.captcha() {
        CaptchaGate::Builtin(builtin) => {
            let challenge = builtin.challenge().map_err(AccountError::Captcha)?;
            Ok(CaptchaView {
                image: Some(format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&challenge.png)
                )),
                token: challenge.token,
                shown: true,
            })
        }
        CaptchaGate::Test { .. } => Ok(CaptchaView {
            image: None,
            token: "test".into(),
            shown: true,
        }),
        _ => Ok(CaptchaView::default()),
    }
}

#[derive(Template)]
#[template(path = "register_identify.html")]
struct IdentifyPage {
    layout: Layout,
    errors: Errors,
    identifier: String,
    birth_date: String,
    captcha: CaptchaView,
    /// The refusal says the participant already has an account: offer login and recovery.
    already_registered: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IdentifyForm {
    csrf: String,
    identifier: String,
    birth_date: String,
    captcha_token: String,
    captcha_answer: String,
    /// `another`: the participant asked for another captcha image.
    action: String,
}

/// `GET /register`.
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
    let already_registered = errors.code == Some("already_registered");
    let page = IdentifyPage {
        layout: layout(
            browser,
            portal.csrf_token(browser),
            "register.title",
            "/register",
        ),
        errors,
        identifier: form.identifier,
        birth_date: form.birth_date,
        captcha,
        already_registered,
    };
    render(&page, status, browser, portal.cookies)
}

/// A birth date as a date field sends it (`YYYY-MM-DD`) or as people write it (`DD-MM-YYYY`,
/// `DD/MM/YYYY`).
pub fn parse_birth_date(input: &str) -> Option<NaiveDate> {
    let input = input.trim();
    NaiveDate::parse_from_str(input, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(input, "%d-%m-%Y"))
        .or_else(|_| NaiveDate::parse_from_str(input, "%d/%m/%Y"))
        .ok()
}

/// `POST /register`.
pub async fn identify<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<IdentifyForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let t = browser.lang.catalogue();
    if form.action == "another" {
        return identify_form(&portal, &browser, form, Errors::none(), StatusCode::OK);
    }
    let mut errors = Errors::none();
    if form.identifier.trim().is_empty() {
        errors.add("identifier", t.get("register.identifier_missing").into());
    }
    let birth_date = parse_birth_date(&form.birth_date);
    if birth_date.is_none() {
        errors.add("birth_date", t.get("errors.birth_date_invalid").into());
    }
    let Some(birth_date) = birth_date.filter(|_| !errors.any()) else {
        return identify_form(&portal, &browser, form, errors, StatusCode::BAD_REQUEST);
    };
    let answer = CaptchaAnswer {
        token: &form.captcha_token,
        answer: &form.captcha_answer,
    };
    let captcha = (!form.captcha_token.is_empty()).then_some(answer);
    match portal
        .accounts
        .identify(&form.identifier, birth_date, captcha, browser.ip)
        .await
    {
        Ok(identified) => {
            let mut headers = HeaderMap::new();
            let lifetime = (identified.expires_at - portal.accounts.now()).num_seconds();
            portal
                .cookies
                .set(&mut headers, FLOW_COOKIE, &identified.flow, Some(lifetime));
            see_other("/register/contact", headers, &browser, portal.cookies)
        }
        Err(error) => {
            let (status, errors) = refusal(browser.lang, &error);
            identify_form(&portal, &browser, form, errors, status)
        }
    }
}

/// Where an identification refusal is shown.
fn refusal(lang: Lang, error: &AccountError) -> (StatusCode, Errors) {
    let field = match error {
        AccountError::IdentifierInvalid { .. }
        | AccountError::IdentifierLength { .. }
        | AccountError::NikInvalid(_)
        | AccountError::EmailInvalid(_) => Some("identifier"),
        AccountError::Captcha(_) => Some("captcha"),
        _ => None,
    };
    (status_of(error), Errors::refusal(lang, error, field))
}

/// The HTTP status a refusal's page answers with (as the JSON API would).
pub fn status_of(error: &AccountError) -> StatusCode {
    match error {
        AccountError::ParticipantNotFound
        | AccountError::RecoveryUnmatched
        | AccountError::AccountNotFound
        | AccountError::FlowNotFound
        | AccountError::DeviceNotFound => StatusCode::NOT_FOUND,
        AccountError::AlreadyRegistered
        | AccountError::EmailTaken
        | AccountError::PhoneTaken
        | AccountError::FlowMismatch => StatusCode::CONFLICT,
        AccountError::ParticipantInactive | AccountError::CoolingOff(_) => StatusCode::FORBIDDEN,
        AccountError::InvalidCredentials | AccountError::SessionInvalid => StatusCode::UNAUTHORIZED,
        AccountError::Locked(_) => StatusCode::LOCKED,
        AccountError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        AccountError::Captcha(gerbang_core::CaptchaError::Unavailable)
        | AccountError::Hashing(_)
        | AccountError::RegistryUnavailable(_)
        | AccountError::Store(_)
        | AccountError::Contended => StatusCode::SERVICE_UNAVAILABLE,
        AccountError::Engine(
            gerbang_core::EngineError::RateLimited { .. }
            | gerbang_core::EngineError::DestinationSuspended { .. }
            | gerbang_core::EngineError::QueueFull { .. }
            | gerbang_core::EngineError::BudgetExhausted { .. },
        ) => StatusCode::TOO_MANY_REQUESTS,
        AccountError::Engine(gerbang_core::EngineError::Store(_)) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A rule of the password policy as the page lists it.
#[derive(Debug)]
pub struct RuleView {
    pub code: &'static str,
    pub text: String,
    /// Refused in the last submit.
    pub failed: bool,
}

/// The policy's rules in the participant's language, with those `failed` marked.
pub fn policy_rules(policy: &PasswordPolicy, lang: Lang, failed: &[&str]) -> Vec<RuleView> {
    let mut rules = vec![PasswordRule::TooShort {
        min: policy.min_length,
    }];
    let optional = [
        (policy.require_upper, PasswordRule::NoUpper),
        (policy.require_lower, PasswordRule::NoLower),
        (policy.require_digit, PasswordRule::NoDigit),
        (policy.require_symbol, PasswordRule::NoSymbol),
        (policy.refuse_common, PasswordRule::Common),
        (policy.refuse_personal, PasswordRule::ContainsNik),
        (policy.refuse_personal, PasswordRule::ContainsBirthDate),
    ];
    rules.extend(optional.into_iter().filter(|(on, _)| *on).map(|(_, r)| r));
    rules
        .into_iter()
        .map(|rule| RuleView {
            code: rule.code(),
            text: match lang {
                Lang::Id => rule.message_id(),
                Lang::En => rule.message_en(),
            },
            failed: failed.contains(&rule.code()),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "register_contact.html")]
struct ContactPage {
    layout: Layout,
    errors: Errors,
    masked_name: String,
    email: String,
    phone: String,
    channel: String,
    rules: Vec<RuleView>,
    min_length: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContactForm {
    csrf: String,
    email: String,
    phone: String,
    channel: String,
    password: String,
    password_confirmation: String,
}

/// The registration flow of this browser, or the page that starts it over.
async fn registration_flow<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
) -> Result<(String, gerbang_core::FlowView), Response> {
    let expired = || {
        let mut headers = HeaderMap::new();
        portal.cookies.clear(&mut headers, FLOW_COOKIE);
        portal
            .cookies
            .set(&mut headers, NOTICE_COOKIE, "flow_expired", Some(60));
        see_other("/register", headers, browser, portal.cookies)
    };
    let Some(flow) = browser.flow.clone() else {
        return Err(expired());
    };
    match portal.accounts.flow_view(&flow).await {
        Ok(view) if view.kind == FlowKind::Registration => Ok((flow, view)),
        Ok(_) | Err(AccountError::FlowNotFound) => Err(expired()),
        Err(error) => Err(problem_with(
            portal,
            browser,
            status_of(&error),
            "problem.unavailable_title",
            "problem.unavailable_body",
            Some(browser.lang.explain(&error)),
        )),
    }
}

/// `GET /register/contact`.
pub async fn contact_page<S: Store>(State(portal): State<Portal<S>>, browser: Browser) -> Response {
    let (_, view) = match registration_flow(&portal, &browser).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    // The code was sent already (a reload, the back button): the code page, not a second code.
    if view.verification.is_some() {
        return see_other("/code", HeaderMap::new(), &browser, portal.cookies);
    }
    contact_form(
        &portal,
        &browser,
        view.masked_name.unwrap_or_default(),
        ContactForm::default(),
        Errors::none(),
        &[],
        StatusCode::OK,
    )
}

fn contact_form<S: Store>(
    portal: &Portal<S>,
    browser: &Browser,
    masked_name: String,
    form: ContactForm,
    errors: Errors,
    failed: &[&str],
    status: StatusCode,
) -> Response {
    let policy = &portal.accounts.settings().password;
    let channel = match form.channel.as_str() {
        "sms" => "sms",
        _ => match portal.accounts.settings().registration_channel {
            Channel::Sms => "sms",
            _ => "email",
        },
    };
    let page = ContactPage {
        layout: layout(
            browser,
            portal.csrf_token(browser),
            "contact.title",
            "/register/contact",
        ),
        errors,
        masked_name,
        email: form.email,
        phone: form.phone,
        channel: channel.into(),
        rules: policy_rules(policy, browser.lang, failed),
        min_length: policy.min_length,
    };
    render(&page, status, browser, portal.cookies)
}

/// `POST /register/contact`.
pub async fn contact<S: Store>(
    State(portal): State<Portal<S>>,
    browser: Browser,
    PageForm(form): PageForm<ContactForm>,
) -> Response {
    if let Err(refused) = portal.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let (flow, view) = match registration_flow(&portal, &browser).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    // A double submit: the first one sent the code; this one goes to it without a second.
    if view.verification.is_some() {
        return see_other("/code", HeaderMap::new(), &browser, portal.cookies);
    }
    let masked_name = view.masked_name.unwrap_or_default();
    let lang = browser.lang;
    let mut errors = Errors::none();
    let email = match form.email.trim() {
        "" => None,
        text => match Email::parse(text) {
            Ok(email) => Some(email),
            Err(error) => {
                errors.add("email", lang.explain(&error));
                None
            }
        },
    };
    let phone = match form.phone.trim() {
        "" => None,
        text => match MobileNumber::parse(text) {
            Ok(phone) => Some(phone),
            Err(error) => {
                errors.add("phone", lang.explain(&error));
                None
            }
        },
    };
    if errors.any() {
        let form = ContactForm {
            password: String::new(),
            password_confirmation: String::new(),
            ..form
        };
        return contact_form(
            &portal,
            &browser,
            masked_name,
            form,
            errors,
            &[],
            StatusCode::BAD_REQUEST,
        );
    }
    let channel = match form.channel.as_str() {
        "sms" => Some(Channel::Sms),
        "email" => Some(Channel::Email),
        _ => None,
    };
    let request = ContactAndPassword {
        email,
        phone,
        password: SecretString::from(form.password.clone()),
        confirmation: SecretString::from(form.password_confirmation.clone()),
        channel,
        locale: lang.locale(),
    };
    match portal.accounts.register_contact(&flow, request).await {
        Ok(_) => see_other("/code", HeaderMap::new(), &browser, portal.cookies),
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
                AccountError::EmailTaken | AccountError::EmailInvalid(_) => Some("email"),
                AccountError::PhoneTaken => Some("phone"),
                AccountError::ContactMissing | AccountError::ChannelNotOnFile => Some("email"),
                _ => None,
            };
            let errors = Errors::refusal(lang, &error, field);
            let form = ContactForm {
                password: String::new(),
                password_confirmation: String::new(),
                ..form
            };
            contact_form(
                &portal,
                &browser,
                masked_name,
                form,
                errors,
                &failed,
                status_of(&error),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_dates_are_read_as_people_write_them() {
        let expected = NaiveDate::from_ymd_opt(1980, 8, 17);
        assert_eq!(parse_birth_date("1980-08-17"), expected);
        assert_eq!(parse_birth_date(" 17-08-1980 "), expected);
        assert_eq!(parse_birth_date("17/08/1980"), expected);
        assert_eq!(parse_birth_date("1980-13-01"), None);
        assert_eq!(parse_birth_date(""), None);
    }

    #[test]
    fn the_policy_lists_its_rules_and_marks_the_failed_ones() {
        let rules = policy_rules(&PasswordPolicy::default(), Lang::En, &["password_no_digit"]);
        assert_eq!(rules[0].code, "password_too_short");
        assert!(rules[0].text.contains('8'));
        let digit = rules
            .iter()
            .find(|r| r.code == "password_no_digit")
            .unwrap();
        assert!(digit.failed);
        assert_eq!(rules.iter().filter(|r| r.failed).count(), 1);
    }
}
