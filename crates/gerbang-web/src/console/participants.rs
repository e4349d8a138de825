//! Finding a participant (SPEC §6): by NIK, card number, KPJ number, phone or email, exact match
//! only, with a reason that is recorded; "not found" says nothing of which field was close. The
//! answer is the masked profile, the account's state (lock with its time, trusted devices, the
//! cool-off), its events and each verification's delivery trail with the cause in plain words, the
//! provider's raw words and the next step — never a code. An officer can lift a lock from here.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use gerbang_core::{AccountError, StaffServiceError, StaffSession};
use gerbang_domain::account::Locked;
use gerbang_domain::delivery::explain;
use gerbang_domain::identity::IndonesianTimeZone;
use gerbang_domain::staff::Permission;
use gerbang_domain::verification::Channel;
use gerbang_domain::{Clock, Email, JknCardNumber, KpjNumber, MobileNumber, Nik, SystemClock};
use gerbang_store::audit::AuditRecord;
use gerbang_store::{AccountKey, ParticipantKey, Store, StoreError};
use serde::Deserialize;

use super::Console;
use crate::PageForm;
use crate::browser::Browser;
use crate::catalogue::Lang;
use crate::page::{Errors, Layout, on_their_clock, render};

/// What a search may be by.
pub const KINDS: [(&str, &str); 5] = [
    ("nik", "console.kind_nik"),
    ("card", "console.kind_card"),
    ("kpj", "console.kind_kpj"),
    ("phone", "console.kind_phone"),
    ("email", "console.kind_email"),
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SearchForm {
    csrf: String,
    kind: String,
    value: String,
    reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UnlockForm {
    csrf: String,
    /// The account's public id (`acct_…`), never a NIK in a form.
    account: String,
    reason: String,
    /// The complaint ticket the action is taken under (optional; one that does not exist is
    /// refused by name).
    ticket: String,
}

/// One row of a verification's delivery trail.
#[derive(Debug)]
pub struct AttemptRow {
    pub at: String,
    pub channel: String,
    pub provider: String,
    pub status: String,
    pub cause: Option<String>,
    pub next_step: Option<String>,
    pub raw: Option<String>,
}

#[derive(Debug)]
pub struct VerificationRow {
    pub created: String,
    pub purpose: String,
    pub sends: Vec<String>,
    pub attempts: Vec<AttemptRow>,
}

/// What a search found.
#[derive(Debug)]
pub struct Found {
    pub name: Option<String>,
    pub nik: String,
    pub card: Option<String>,
    pub account: Option<AccountFacts>,
    pub verifications: Vec<VerificationRow>,
}

#[derive(Debug)]
pub struct AccountFacts {
    pub id: String,
    pub phone: String,
    pub email: String,
    pub lock: String,
    pub locked: bool,
    pub devices: usize,
    pub cooling_off: Option<String>,
    pub events: Vec<(String, String, String, String)>,
    /// The account's complaint tickets, newest first.
    pub tickets: Vec<String>,
}

#[derive(Template)]
#[template(path = "console_search.html")]
struct SearchPage {
    layout: Layout,
    errors: Errors,
    kinds: Vec<(&'static str, &'static str)>,
    kind: String,
    value: String,
    reason: String,
    found: Option<Found>,
    not_found: bool,
    may_unlock: bool,
    may_sign_out_devices: bool,
    may_keep_tickets: bool,
    may_request_changes: bool,
}

fn time(lang: Lang, at: DateTime<Utc>) -> String {
    on_their_clock(lang, IndonesianTimeZone::Wib, at)
}

/// `GET /staff/participants`.
pub async fn search_page<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
) -> Response {
    let session = match console
        .allowed(
            &browser,
            Permission::SearchParticipants,
            "/staff/participants",
        )
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    page(
        &console,
        &browser,
        &session,
        SearchForm {
            kind: "nik".into(),
            ..SearchForm::default()
        },
        Errors::none(),
        None,
        false,
        StatusCode::OK,
    )
}

#[allow(clippy::too_many_arguments)]
fn page<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
    form: SearchForm,
    errors: Errors,
    found: Option<Found>,
    not_found: bool,
    status: StatusCode,
) -> Response {
    let page = SearchPage {
        layout: console.layout(
            browser,
            Some(session),
            "console.search_title",
            "/staff/participants",
        ),
        errors,
        kinds: KINDS.to_vec(),
        kind: form.kind,
        value: form.value,
        reason: form.reason,
        found,
        not_found,
        may_unlock: session.may(Permission::LiftLocks).is_ok(),
        may_sign_out_devices: session.may(Permission::RevokeDevices).is_ok(),
        may_keep_tickets: session.may(Permission::KeepTickets).is_ok(),
        may_request_changes: session.may(Permission::RequestContactChanges).is_ok(),
    };
    render(&page, status, browser, console.cookies)
}

/// The NIK behind an exact identifier: from the registry, or from an account's contact.
async fn nik_of<S: Store>(
    store: &S,
    kind: &str,
    value: &str,
) -> Result<Result<Option<Nik>, &'static str>, StoreError> {
    let value = value.trim();
    Ok(Ok(match kind {
        "nik" => match Nik::parse(value) {
            Ok(nik) => Some(nik),
            Err(_) => return Ok(Err("console.value_invalid_nik")),
        },
        "card" => match JknCardNumber::parse(value) {
            Ok(card) => store
                .find_participant(ParticipantKey::CardNumber(&card))
                .await?
                .map(|p| p.participant.nik),
            Err(_) => return Ok(Err("console.value_invalid_card")),
        },
        "kpj" => match KpjNumber::parse(value) {
            Ok(kpj) => store
                .find_participant(ParticipantKey::KpjNumber(&kpj))
                .await?
                .map(|p| p.participant.nik),
            Err(_) => return Ok(Err("console.value_invalid_kpj")),
        },
        "phone" => match MobileNumber::parse(value) {
            Ok(phone) => store
                .find_account(AccountKey::Phone(&phone))
                .await?
                .map(|a| a.account.nik),
            Err(_) => return Ok(Err("console.value_invalid_phone")),
        },
        "email" => match Email::parse(value) {
            Ok(email) => store
                .find_account(AccountKey::Email(&email))
                .await?
                .map(|a| a.account.nik),
            Err(_) => return Ok(Err("console.value_invalid_email")),
        },
        _ => return Ok(Err("console.kind_unknown")),
    }))
}

async fn gather<S: Store>(
    console: &Console<S>,
    lang: Lang,
    nik: &Nik,
) -> Result<Option<(Found, Option<i64>)>, StoreError> {
    let store = &console.store;
    let participant = store.find_participant(ParticipantKey::Nik(nik)).await?;
    let account = store.find_account(AccountKey::Nik(nik)).await?;
    if participant.is_none() && account.is_none() {
        return Ok(None);
    }
    let t = lang.catalogue();
    let now = SystemClock.now();
    let account_id = account.as_ref().map(|a| a.id);
    let facts = match account {
        Some(stored) => {
            let view = console.accounts.view(&stored);
            let (lock, locked) = match stored.account.guard.check(now) {
                Ok(()) => (t.get("console.lock_none").to_owned(), false),
                Err(Locked::Temporarily { until }) => (
                    t.fill("console.lock_until", &[("time", &time(lang, until))]),
                    true,
                ),
                Err(Locked::Permanently) => (t.get("console.lock_permanent").to_owned(), true),
            };
            let events = store
                .account_events(stored.id)
                .await?
                .into_iter()
                .rev()
                .take(20)
                .map(|e| (time(lang, e.at), e.actor, e.kind, e.detail))
                .collect();
            let tickets = store
                .account_tickets(stored.id)
                .await?
                .into_iter()
                .map(|ticket| ticket.number)
                .collect();
            Some(AccountFacts {
                tickets,
                id: view.id,
                phone: view.phone_masked.unwrap_or_else(|| "—".into()),
                email: view.email_masked.unwrap_or_else(|| "—".into()),
                lock,
                locked,
                devices: stored.account.devices.list().len(),
                cooling_off: view.cooling_off_until.map(|until| time(lang, until)),
                events,
            })
        }
        None => None,
    };
    let mut verifications = Vec::new();
    for verification in store.verifications_for_nik(nik, 10).await? {
        let attempts = store
            .delivery_trail(verification.id)
            .await?
            .into_iter()
            .map(|attempt| {
                let channel = Channel::parse(&attempt.channel).unwrap_or(Channel::Sms);
                let explained = attempt
                    .cause
                    .map(|cause| explain(cause, channel, &[], false));
                AttemptRow {
                    at: time(lang, attempt.attempted_at),
                    channel: attempt.channel,
                    provider: attempt.provider,
                    status: attempt.status.as_str().to_owned(),
                    cause: explained.as_ref().map(|e| {
                        if lang.english() {
                            e.en.clone()
                        } else {
                            e.id.clone()
                        }
                    }),
                    next_step: explained.map(|e| e.next_step.as_str().to_owned()),
                    raw: attempt.detail,
                }
            })
            .collect();
        verifications.push(VerificationRow {
            created: time(lang, verification.created_at),
            purpose: verification.purpose.as_str().to_owned(),
            sends: verification
                .sends
                .iter()
                .map(|send| format!("{} {}", send.channel.as_str(), send.destination.masked()))
                .collect(),
            attempts,
        });
    }
    Ok(Some((
        Found {
            name: participant
                .as_ref()
                .map(|p| p.participant.full_name.masked()),
            nik: nik.masked(),
            card: participant.map(|p| p.participant.card_number.masked()),
            account: facts,
            verifications,
        },
        account_id,
    )))
}

/// `POST /staff/participants`: the search, recorded with its reason.
pub async fn search<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<SearchForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let session = match console
        .allowed(
            &browser,
            Permission::SearchParticipants,
            "/staff/participants",
        )
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let lang = browser.lang;
    let t = lang.catalogue();
    let mut errors = Errors::none();
    if form.reason.trim().chars().count() < 5 {
        errors.add("reason", t.get("console.reason_missing").into());
    }
    let nik = match nik_of(&console.store, &form.kind, &form.value).await {
        Ok(Ok(nik)) => nik,
        Ok(Err(key)) => {
            errors.add("value", t.get(key).into());
            None
        }
        Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
    };
    if errors.any() {
        return page(
            &console,
            &browser,
            &session,
            form,
            errors,
            None,
            false,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let found = match &nik {
        Some(nik) => match gather(&console, lang, nik).await {
            Ok(found) => found,
            Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
        },
        None => None,
    };
    // The search is recorded with its reason and what kind of identifier it used; the identifier
    // itself is personal data and stays out of the log.
    let record = AuditRecord {
        at: SystemClock.now(),
        actor: session.actor(),
        action: "participant_searched".into(),
        account: found.as_ref().and_then(|(_, account)| *account),
        ticket: None,
        detail: format!(
            "by {}: {}; reason: {}",
            form.kind,
            if found.is_some() {
                "found"
            } else {
                "not found"
            },
            form.reason.trim().chars().take(200).collect::<String>()
        ),
    };
    if let Err(error) = console.store.append_audit(vec![record]).await {
        return console.unavailable(&browser, &StaffServiceError::Store(error));
    }
    let not_found = found.is_none();
    page(
        &console,
        &browser,
        &session,
        SearchForm {
            value: String::new(),
            ..form
        },
        Errors::none(),
        found.map(|(found, _)| found),
        not_found,
        StatusCode::OK,
    )
}

/// What an officer does to an account from the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccountAction {
    Unlock,
    SignOutDevices,
}

/// `POST /staff/accounts/unlock`: an officer lifts a lock, with the reason recorded.
pub async fn unlock<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<UnlockForm>,
) -> Response {
    account_action(console, browser, form, AccountAction::Unlock).await
}

/// `POST /staff/accounts/sign-out-devices`: an officer signs every device of an account out (a
/// lost or stolen phone), with the reason recorded.
pub async fn sign_out_devices<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<UnlockForm>,
) -> Response {
    account_action(console, browser, form, AccountAction::SignOutDevices).await
}

async fn account_action<S: Store>(
    console: Console<S>,
    browser: Browser,
    form: UnlockForm,
    action: AccountAction,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let (permission, route) = match action {
        AccountAction::Unlock => (Permission::LiftLocks, "/staff/accounts/unlock"),
        AccountAction::SignOutDevices => (
            Permission::RevokeDevices,
            "/staff/accounts/sign-out-devices",
        ),
    };
    let session = match console.allowed(&browser, permission, route).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let lang = browser.lang;
    let reason = form.reason.trim().chars().take(200).collect::<String>();
    let stored = match console
        .store
        .find_account(AccountKey::PublicId(&form.account))
        .await
    {
        Ok(stored) => stored,
        Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
    };
    let Some(stored) = stored else {
        return console.problem(
            &browser,
            Some(&session),
            StatusCode::NOT_FOUND,
            "console.not_found_title",
            "console.not_found_body",
        );
    };
    if reason.chars().count() < 5 {
        let mut errors = Errors::none();
        errors.form = Some(lang.catalogue().get("console.reason_missing").into());
        return page(
            &console,
            &browser,
            &session,
            SearchForm::default(),
            errors,
            None,
            false,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let ticket = if form.ticket.trim().is_empty() {
        None
    } else {
        match gerbang_core::tickets::find(&console.store, &form.ticket).await {
            Ok(ticket) => Some(ticket.number),
            Err(gerbang_core::tickets::TicketError::Store(error)) => {
                return console.unavailable(&browser, &StaffServiceError::Store(error));
            }
            Err(error) => {
                return page(
                    &console,
                    &browser,
                    &session,
                    SearchForm::default(),
                    Errors::refusal(lang, &error, None),
                    None,
                    false,
                    StatusCode::UNPROCESSABLE_ENTITY,
                );
            }
        }
    };
    let nik = stored.account.nik.clone();
    let detail = format!("reason: {reason}");
    let done = match action {
        AccountAction::Unlock => console
            .accounts
            .lift_lock_as(&nik, session.actor(), detail, ticket)
            .await
            .map(|_| ()),
        AccountAction::SignOutDevices => console
            .accounts
            .revoke_all_devices_as(&nik, session.actor(), detail, ticket)
            .await
            .map(|_| ()),
    };
    match done {
        Ok(()) => {}
        Err(AccountError::AccountNotFound) => {}
        Err(error) => {
            tracing::error!(%error, "a lock could not be lifted");
            return console.problem(
                &browser,
                Some(&session),
                StatusCode::SERVICE_UNAVAILABLE,
                "console.unavailable_title",
                "console.unavailable_body",
            );
        }
    }
    let found = match gather(&console, lang, &nik).await {
        Ok(found) => found.map(|(found, _)| found),
        Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
    };
    page(
        &console,
        &browser,
        &session,
        SearchForm {
            kind: "nik".into(),
            reason,
            ..SearchForm::default()
        },
        Errors::none(),
        found,
        false,
        StatusCode::OK,
    )
}
