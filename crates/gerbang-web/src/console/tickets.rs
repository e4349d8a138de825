//! Complaint tickets in the console: opened from a participant's page, found by the number the
//! participant quotes, with notes and the verifications they are about. An unknown number is
//! refused by name.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gerbang_core::tickets::{self, TicketError};
use gerbang_core::{StaffServiceError, StaffSession};
use gerbang_domain::identity::IndonesianTimeZone;
use gerbang_domain::staff::Permission;
use gerbang_domain::verification::VerificationId;
use gerbang_domain::{Clock, SystemClock};
use gerbang_store::{AccountKey, Store, Ticket};
use serde::Deserialize;

use super::Console;
use crate::PageForm;
use crate::browser::Browser;
use crate::page::{Errors, Layout, on_their_clock, render, see_other};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OpenForm {
    csrf: String,
    /// The account's public id, when the participant has one.
    account: String,
    subject: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FindQuery {
    number: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NoteForm {
    csrf: String,
    text: String,
    /// A verification of the account to link, if any.
    link: String,
}

#[derive(Debug)]
pub struct NoteRow {
    pub at: String,
    pub by: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "console_ticket.html")]
struct TicketPage {
    layout: Layout,
    errors: Errors,
    number: String,
    account: String,
    opened_by: String,
    opened_at: String,
    subject: String,
    notes: Vec<NoteRow>,
    linked: Vec<String>,
    /// The account's recent verifications that can be linked: (id, purpose and time).
    linkable: Vec<(String, String)>,
    text: String,
}

#[derive(Template)]
#[template(path = "console_ticket_find.html")]
struct FindPage {
    layout: Layout,
    errors: Errors,
    number: String,
}

async fn session_for<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    route: &'static str,
) -> Result<StaffSession, Response> {
    console
        .allowed(browser, Permission::KeepTickets, route)
        .await
}

fn refused<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
    error: TicketError,
    number: String,
) -> Response {
    match error {
        TicketError::Store(error) => console.unavailable(browser, &StaffServiceError::Store(error)),
        error => {
            let page = FindPage {
                layout: console.layout(
                    browser,
                    Some(session),
                    "console.ticket_find_title",
                    "/staff/tickets",
                ),
                errors: Errors::refusal(browser.lang, &error, Some("number")),
                number,
            };
            render(&page, StatusCode::NOT_FOUND, browser, console.cookies)
        }
    }
}

/// `GET /staff/tickets?number=T-…`: the find form, or straight to the ticket.
pub async fn find<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    Query(query): Query<FindQuery>,
) -> Response {
    let session = match session_for(&console, &browser, "/staff/tickets").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if query.number.trim().is_empty() {
        let page = FindPage {
            layout: console.layout(
                &browser,
                Some(&session),
                "console.ticket_find_title",
                "/staff/tickets",
            ),
            errors: Errors::none(),
            number: String::new(),
        };
        return render(&page, StatusCode::OK, &browser, console.cookies);
    }
    match tickets::find(&console.store, &query.number).await {
        Ok(ticket) => see_other(
            &format!("/staff/tickets/{}", ticket.number),
            HeaderMap::new(),
            &browser,
            console.cookies,
        ),
        Err(error) => refused(&console, &browser, &session, error, query.number),
    }
}

/// `POST /staff/tickets`: opens a ticket about an account (or none).
pub async fn open<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<OpenForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let session = match session_for(&console, &browser, "/staff/tickets").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let account = if form.account.trim().is_empty() {
        None
    } else {
        match console
            .store
            .find_account(AccountKey::PublicId(form.account.trim()))
            .await
        {
            Ok(Some(stored)) => Some(stored.id),
            Ok(None) => {
                return console.problem(
                    &browser,
                    Some(&session),
                    StatusCode::NOT_FOUND,
                    "console.not_found_title",
                    "console.not_found_body",
                );
            }
            Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
        }
    };
    match tickets::open(
        &console.store,
        &session.actor(),
        account,
        &form.subject,
        SystemClock.now(),
    )
    .await
    {
        Ok(ticket) => see_other(
            &format!("/staff/tickets/{}", ticket.number),
            HeaderMap::new(),
            &browser,
            console.cookies,
        ),
        Err(TicketError::Store(error)) => {
            console.unavailable(&browser, &StaffServiceError::Store(error))
        }
        Err(error) => {
            let page = FindPage {
                layout: console.layout(
                    &browser,
                    Some(&session),
                    "console.ticket_find_title",
                    "/staff/tickets",
                ),
                errors: Errors::refusal(browser.lang, &error, None),
                number: String::new(),
            };
            render(
                &page,
                StatusCode::UNPROCESSABLE_ENTITY,
                &browser,
                console.cookies,
            )
        }
    }
}

async fn ticket_page<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
    ticket: Ticket,
    errors: Errors,
    text: String,
    status: StatusCode,
) -> Response {
    let lang = browser.lang;
    let time = |at| on_their_clock(lang, IndonesianTimeZone::Wib, at);
    let store = &console.store;
    let gathered = async {
        let (notes, linked) = store.ticket_notes(ticket.id).await?;
        let account = match ticket.account {
            Some(id) => store.find_account(AccountKey::Id(id)).await?,
            None => None,
        };
        let linkable = match &account {
            Some(stored) => store.verifications_for_nik(&stored.account.nik, 10).await?,
            None => Vec::new(),
        };
        Ok::<_, gerbang_store::StoreError>((notes, linked, account, linkable))
    };
    let (notes, linked, account, linkable) = match gathered.await {
        Ok(gathered) => gathered,
        Err(error) => return console.unavailable(browser, &StaffServiceError::Store(error)),
    };
    let page = TicketPage {
        layout: console.layout(
            browser,
            Some(session),
            "console.ticket_title",
            "/staff/tickets",
        ),
        errors,
        number: ticket.number.clone(),
        account: account.map(|a| a.public_id).unwrap_or_else(|| "—".into()),
        opened_by: ticket.opened_by.clone(),
        opened_at: time(ticket.opened_at),
        subject: ticket.subject.clone(),
        notes: notes
            .into_iter()
            .map(|note| NoteRow {
                at: time(note.at),
                by: note.by,
                text: note.text,
            })
            .collect(),
        linked: linked.iter().map(ToString::to_string).collect(),
        linkable: linkable
            .iter()
            .map(|v| {
                (
                    v.id.to_string(),
                    format!("{} · {}", v.purpose.as_str(), time(v.created_at)),
                )
            })
            .collect(),
        text,
    };
    render(&page, status, browser, console.cookies)
}

/// `GET /staff/tickets/{number}`.
pub async fn show<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    Path(number): Path<String>,
) -> Response {
    let session = match session_for(&console, &browser, "/staff/tickets").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match tickets::find(&console.store, &number).await {
        Ok(ticket) => {
            ticket_page(
                &console,
                &browser,
                &session,
                ticket,
                Errors::none(),
                String::new(),
                StatusCode::OK,
            )
            .await
        }
        Err(error) => refused(&console, &browser, &session, error, number),
    }
}

/// `POST /staff/tickets/{number}/notes`.
pub async fn add_note<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    Path(number): Path<String>,
    PageForm(form): PageForm<NoteForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let session = match session_for(&console, &browser, "/staff/tickets").await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let ticket = match tickets::find(&console.store, &number).await {
        Ok(ticket) => ticket,
        Err(error) => return refused(&console, &browser, &session, error, number),
    };
    // Only an id of the shape of a verification id is linked.
    let link: Vec<VerificationId> = VerificationId::parse(form.link.trim())
        .ok()
        .into_iter()
        .collect();
    match tickets::note(
        &console.store,
        &session.actor(),
        &ticket,
        &form.text,
        link,
        SystemClock.now(),
    )
    .await
    {
        Ok(()) => see_other(
            &format!("/staff/tickets/{}", ticket.number),
            HeaderMap::new(),
            &browser,
            console.cookies,
        ),
        Err(TicketError::Store(error)) => {
            console.unavailable(&browser, &StaffServiceError::Store(error))
        }
        Err(error) => {
            let errors = Errors::refusal(browser.lang, &error, Some("text"));
            ticket_page(
                &console,
                &browser,
                &session,
                ticket,
                errors,
                form.text,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}
