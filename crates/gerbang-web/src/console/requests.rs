//! Four-eyes requests in the console: an officer changes a participant's phone number or email at
//! the counter after recording the identity document seen (`POST /staff/requests/new`, from the
//! participant's page); a second
//! officer or a supervisor approves it from the queue (`/staff/requests`); the participant reads
//! the code sent to the new contact and the officer enters it; then the change is made. The
//! author's own approval, a second approval and a late one are refused on the page, and recorded.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Duration;
use gerbang_core::{CounterError, CounterForm, Officer, StaffServiceError, StaffSession};
use gerbang_domain::approval::Stage;
use gerbang_domain::identity::IndonesianTimeZone;
use gerbang_domain::staff::Permission;
use gerbang_domain::verification::Destination;
use gerbang_domain::{Clock, SystemClock};
use gerbang_store::{AccountKey, ContactChangeRequest, ParticipantKey, Store, StoreError};
use serde::Deserialize;

use super::Console;
use crate::PageForm;
use crate::browser::{Browser, NOTICE_COOKIE};
use crate::catalogue::Lang;
use crate::page::{Errors, Layout, on_their_clock, render, see_other};

/// The documents an officer may record, with their catalogue keys.
pub const DOCUMENTS: [(&str, &str); 4] = [
    ("ktp", "console.document_ktp"),
    ("kk", "console.document_kk"),
    ("passport", "console.document_passport"),
    ("suket", "console.document_suket"),
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewForm {
    csrf: String,
    /// The account's public id: in a form, never in an address.
    account: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RequestForm {
    csrf: String,
    account: String,
    kind: String,
    value: String,
    document: String,
    document_number: String,
    reason: String,
    ticket: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

/// Who the request is for, masked.
#[derive(Debug, Default)]
pub struct Participant {
    pub account: String,
    pub name: String,
    pub nik: String,
    pub phone: String,
    pub email: String,
}

#[derive(Template)]
#[template(path = "console_request_new.html")]
struct NewPage {
    layout: Layout,
    errors: Errors,
    participant: Participant,
    documents: Vec<(&'static str, &'static str)>,
    kind: String,
    value: String,
    document: String,
    document_number: String,
    reason: String,
    ticket: String,
    lead: String,
}

/// One row of the approval queue.
#[derive(Debug)]
pub struct QueueRow {
    pub number: String,
    pub kind: &'static str,
    pub to: String,
    pub requested_by: String,
    pub requested_at: String,
    pub expires_at: String,
    pub ticket: String,
}

#[derive(Template)]
#[template(path = "console_requests.html")]
struct QueuePage {
    layout: Layout,
    requests: Vec<QueueRow>,
    /// Open tickets, newest first: (number, opened by, when), when the role keeps tickets.
    tickets: Option<Vec<(String, String, String)>>,
}

#[derive(Template)]
#[template(path = "console_request.html")]
struct RequestPage {
    layout: Layout,
    errors: Errors,
    number: String,
    stage: &'static str,
    participant: Participant,
    kind: &'static str,
    to: String,
    document: String,
    reason: String,
    ticket: String,
    requested_by: String,
    requested_at: String,
    expires_at: String,
    decided: Option<(String, String)>,
    /// Approve and decline are offered (a second person, while it waits).
    may_decide: bool,
    /// The author sees that someone else must approve, and may withdraw.
    own: bool,
    /// The new contact's code is awaited.
    awaiting_code: bool,
    code_sent: bool,
}

fn time(lang: Lang, at: chrono::DateTime<chrono::Utc>) -> String {
    on_their_clock(lang, IndonesianTimeZone::Wib, at)
}

fn kind_key(to: &Destination) -> &'static str {
    match to {
        Destination::Phone(_) => "console.kind_phone",
        Destination::Email(_) => "console.kind_email",
    }
}

fn stage_key(stage: Stage) -> &'static str {
    match stage {
        Stage::Waiting => "console.stage_waiting",
        Stage::AwaitingCode => "console.stage_awaiting_code",
        Stage::Declined => "console.stage_declined",
        Stage::Completed => "console.stage_completed",
        Stage::Expired => "console.stage_expired",
    }
}

fn officer(session: &StaffSession) -> (String, String) {
    (
        session.staff.member.name.as_str().to_owned(),
        session.actor(),
    )
}

async fn participant_of<S: Store>(
    store: &S,
    key: AccountKey<'_>,
) -> Result<Option<Participant>, StoreError> {
    let Some(stored) = store.find_account(key).await? else {
        return Ok(None);
    };
    let name = store
        .find_participant(ParticipantKey::Nik(&stored.account.nik))
        .await?
        .map(|p| p.participant.full_name.masked())
        .unwrap_or_else(|| "—".into());
    Ok(Some(Participant {
        account: stored.public_id.clone(),
        name,
        nik: stored.account.nik.masked(),
        phone: stored
            .account
            .phone
            .as_ref()
            .map_or_else(|| "—".into(), |p| p.masked()),
        email: stored
            .account
            .email
            .as_ref()
            .map_or_else(|| "—".into(), |e| e.masked()),
    }))
}

/// The store failed a step: logged with `what`, a 503 page in the console.
fn failed<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
    error: &CounterError,
    what: &str,
) -> Response {
    tracing::error!(%error, "{what}");
    console.problem(
        browser,
        Some(session),
        StatusCode::SERVICE_UNAVAILABLE,
        "console.unavailable_title",
        "console.unavailable_body",
    )
}

fn not_found<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
) -> Response {
    console.problem(
        browser,
        Some(session),
        StatusCode::NOT_FOUND,
        "console.not_found_title",
        "console.not_found_body",
    )
}

/// `POST /staff/requests/new` (from a participant's page): the counter form.
pub async fn new_page<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(query): PageForm<NewForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &query.csrf) {
        return refused;
    }
    let session = match console
        .allowed(
            &browser,
            Permission::RequestContactChanges,
            "/staff/requests/new",
        )
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    // Opening the form shows the participant's masked contacts: recorded, like a search.
    let record = gerbang_store::audit::AuditRecord {
        at: SystemClock.now(),
        actor: session.actor(),
        action: "counter_change_form_opened".into(),
        account: match console
            .store
            .find_account(AccountKey::PublicId(query.account.trim()))
            .await
        {
            Ok(found) => found.map(|stored| stored.id),
            Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
        },
        ticket: None,
        detail: String::new(),
    };
    if let Err(error) = console.store.append_audit(vec![record]).await {
        return console.unavailable(&browser, &StaffServiceError::Store(error));
    }
    let form = RequestForm {
        account: query.account,
        kind: "phone".into(),
        document: "ktp".into(),
        ..RequestForm::default()
    };
    new_form(
        &console,
        &browser,
        &session,
        form,
        Errors::none(),
        StatusCode::OK,
    )
    .await
}

async fn new_form<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
    form: RequestForm,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let participant =
        match participant_of(&console.store, AccountKey::PublicId(form.account.trim())).await {
            Ok(Some(participant)) => participant,
            Ok(None) => return not_found(console, browser, session),
            Err(error) => return console.unavailable(browser, &StaffServiceError::Store(error)),
        };
    let page = NewPage {
        layout: console.layout(
            browser,
            Some(session),
            "console.request_new_title",
            "/staff/requests/new",
        ),
        errors,
        participant,
        documents: DOCUMENTS.to_vec(),
        kind: form.kind,
        value: form.value,
        document: form.document,
        document_number: form.document_number,
        reason: form.reason,
        ticket: form.ticket,
        lead: browser.lang.catalogue().fill(
            "console.request_new_lead",
            &[("hours", &console.staff.policy().request_hours.to_string())],
        ),
    };
    render(&page, status, browser, console.cookies)
}

/// The field a refusal belongs to on the counter form.
fn field_of(error: &CounterError) -> Option<&'static str> {
    use gerbang_core::AccountError;
    use gerbang_core::tickets::TicketError;
    use gerbang_domain::approval::RequestError;
    match error {
        CounterError::ContactInvalid { .. }
        | CounterError::Account(
            AccountError::PhoneTaken | AccountError::EmailTaken | AccountError::ContactUnchanged,
        ) => Some("value"),
        CounterError::Request(
            RequestError::DocumentNumberInvalid | RequestError::DocumentMismatch,
        ) => Some("document_number"),
        CounterError::Request(RequestError::DocumentInvalid) => Some("document"),
        CounterError::ReasonMissing => Some("reason"),
        CounterError::Ticket(TicketError::Unknown { .. })
        | CounterError::TicketNotTheirs { .. } => Some("ticket"),
        _ => None,
    }
}

/// `POST /staff/requests`: the officer's request, waiting for a second person.
pub async fn create<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    PageForm(form): PageForm<RequestForm>,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let session = match console
        .allowed(
            &browser,
            Permission::RequestContactChanges,
            "/staff/requests",
        )
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let (name, actor) = officer(&session);
    let lifetime = Duration::hours(console.staff.policy().request_hours);
    let made = console
        .accounts
        .request_counter_change(
            CounterForm {
                account: form.account.trim(),
                kind: form.kind.trim(),
                value: &form.value,
                document: &form.document,
                document_number: &form.document_number,
                reason: &form.reason,
                ticket: &form.ticket,
            },
            Officer {
                name: &name,
                actor: &actor,
            },
            lifetime,
        )
        .await;
    match made {
        Ok(request) => {
            let mut headers = HeaderMap::new();
            console
                .cookies
                .set(&mut headers, NOTICE_COOKIE, "request_made", Some(60));
            see_other(
                &format!("/staff/requests/{}", request.number),
                headers,
                &browser,
                console.cookies,
            )
        }
        Err(CounterError::Account(gerbang_core::AccountError::AccountNotFound)) => {
            not_found(&console, &browser, &session)
        }
        Err(error) if error.unavailable() => failed(
            &console,
            &browser,
            &session,
            &error,
            "a counter request could not be stored",
        ),
        Err(error) => {
            let errors = Errors::refusal(browser.lang, &error, field_of(&error));
            new_form(
                &console,
                &browser,
                &session,
                RequestForm {
                    csrf: String::new(),
                    ..form
                },
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// `GET /staff/requests`: the queue of requests waiting for a second person, and open tickets.
pub async fn queue<S: Store>(State(console): State<Console<S>>, browser: Browser) -> Response {
    let session = match console
        .allowed(&browser, Permission::ApproveRequests, "/staff/requests")
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let lang = browser.lang;
    let t = lang.catalogue();
    let now = SystemClock.now();
    let pending = match console.store.pending_requests(now, 100).await {
        Ok(pending) => pending,
        Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
    };
    let tickets = if session.may(Permission::KeepTickets).is_ok() {
        match console.store.open_tickets(50).await {
            Ok(tickets) => Some(
                tickets
                    .into_iter()
                    .map(|ticket| {
                        (
                            ticket.number,
                            ticket.opened_by,
                            time(lang, ticket.opened_at),
                        )
                    })
                    .collect(),
            ),
            Err(error) => return console.unavailable(&browser, &StaffServiceError::Store(error)),
        }
    } else {
        None
    };
    let page = QueuePage {
        layout: console.layout(
            &browser,
            Some(&session),
            "console.queue_title",
            "/staff/requests",
        ),
        requests: pending
            .into_iter()
            .map(|request| QueueRow {
                kind: t.get(kind_key(&request.details.to)),
                to: request.details.to.masked(),
                requested_by: request.rules.requested_by.clone(),
                requested_at: time(lang, request.rules.requested_at),
                expires_at: time(lang, request.rules.expires_at),
                ticket: request.ticket,
                number: request.number,
            })
            .collect(),
        tickets,
    };
    render(&page, StatusCode::OK, &browser, console.cookies)
}

async fn request_page<S: Store>(
    console: &Console<S>,
    browser: &Browser,
    session: &StaffSession,
    request: ContactChangeRequest,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let lang = browser.lang;
    let participant = match participant_of(&console.store, AccountKey::Id(request.account)).await {
        Ok(participant) => participant.unwrap_or_default(),
        Err(error) => return console.unavailable(browser, &StaffServiceError::Store(error)),
    };
    let stage = request.rules.stage(SystemClock.now());
    let own = request.rules.requested_by == session.staff.member.name.as_str();
    let waiting = stage == Stage::Waiting;
    let page = RequestPage {
        layout: console.layout(
            browser,
            Some(session),
            "console.request_title",
            "/staff/requests",
        ),
        errors,
        stage: stage_key(stage),
        participant,
        kind: kind_key(&request.details.to),
        to: request.details.to.masked(),
        document: request.details.identity.masked(),
        reason: request.details.reason.clone(),
        ticket: request.ticket.clone(),
        requested_by: request.rules.requested_by.clone(),
        requested_at: time(lang, request.rules.requested_at),
        expires_at: time(lang, request.rules.expires_at),
        decided: request
            .rules
            .decided_by
            .clone()
            .zip(request.rules.decided_at.map(|at| time(lang, at))),
        may_decide: waiting && !own && session.may(Permission::ApproveRequests).is_ok(),
        own: waiting && own,
        awaiting_code: stage == Stage::AwaitingCode,
        code_sent: request.verification.is_some(),
        number: request.number,
    };
    render(&page, status, browser, console.cookies)
}

/// `GET /staff/requests/{number}`.
pub async fn show<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    Path(number): Path<String>,
) -> Response {
    let session = match console
        .allowed(
            &browser,
            Permission::RequestContactChanges,
            "/staff/requests/{number}",
        )
        .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    match console.accounts.counter_request(&number).await {
        Ok(request) => {
            request_page(
                &console,
                &browser,
                &session,
                request,
                Errors::none(),
                StatusCode::OK,
            )
            .await
        }
        Err(CounterError::Unknown { .. }) => not_found(&console, &browser, &session),
        Err(error) => failed(
            &console,
            &browser,
            &session,
            &error,
            "a counter request could not be read",
        ),
    }
}

/// What a person does to a request from its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Approve,
    Decline,
    SendCode,
    EnterCode,
}

/// `POST /staff/requests/{number}/approve`.
pub async fn approve<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    Path(number): Path<String>,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    step(console, browser, number, form, Step::Approve).await
}

/// `POST /staff/requests/{number}/decline`.
pub async fn decline<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    Path(number): Path<String>,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    step(console, browser, number, form, Step::Decline).await
}

/// `POST /staff/requests/{number}/send`: the new contact's code again.
pub async fn send<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    Path(number): Path<String>,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    step(console, browser, number, form, Step::SendCode).await
}

/// `POST /staff/requests/{number}/code`: the code the participant read out.
pub async fn code<S: Store>(
    State(console): State<Console<S>>,
    browser: Browser,
    Path(number): Path<String>,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    step(console, browser, number, form, Step::EnterCode).await
}

async fn step<S: Store>(
    console: Console<S>,
    browser: Browser,
    number: String,
    form: CodeForm,
    step: Step,
) -> Response {
    if let Err(refused) = console.check_csrf(&browser, &form.csrf) {
        return refused;
    }
    let (permission, route) = match step {
        Step::Approve => (
            Permission::ApproveRequests,
            "/staff/requests/{number}/approve",
        ),
        Step::Decline => (
            Permission::ApproveRequests,
            "/staff/requests/{number}/decline",
        ),
        Step::SendCode => (
            Permission::RequestContactChanges,
            "/staff/requests/{number}/send",
        ),
        Step::EnterCode => (
            Permission::RequestContactChanges,
            "/staff/requests/{number}/code",
        ),
    };
    let session = match console.allowed(&browser, permission, route).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let (name, actor) = officer(&session);
    let by = Officer {
        name: &name,
        actor: &actor,
    };
    let accounts = &console.accounts;
    let (done, notice) = match step {
        Step::Approve => (
            accounts.approve_counter_change(&number, by).await,
            "request_approved",
        ),
        Step::Decline => (
            accounts.decline_counter_change(&number, by).await,
            "request_declined",
        ),
        Step::SendCode => (
            accounts.send_counter_code(&number, by).await,
            "request_code_sent",
        ),
        Step::EnterCode => (
            accounts
                .confirm_counter_change(&number, form.code.trim(), by)
                .await,
            "request_completed",
        ),
    };
    match done {
        Ok(request) => {
            let mut headers = HeaderMap::new();
            console
                .cookies
                .set(&mut headers, NOTICE_COOKIE, notice, Some(60));
            see_other(
                &format!("/staff/requests/{}", request.number),
                headers,
                &browser,
                console.cookies,
            )
        }
        Err(error) if error.unavailable() => failed(
            &console,
            &browser,
            &session,
            &error,
            "a counter request step failed",
        ),
        Err(error) => {
            // The refusal on the request's page, as it stands now.
            let request = match console.accounts.counter_request(&number).await {
                Ok(request) => request,
                Err(CounterError::Unknown { .. }) => {
                    return not_found(&console, &browser, &session);
                }
                Err(other) => {
                    return failed(
                        &console,
                        &browser,
                        &session,
                        &other,
                        "a counter request could not be read",
                    );
                }
            };
            let field = (step == Step::EnterCode
                && !matches!(error, CounterError::Request(_) | CounterError::CodeNotSent))
            .then_some("code");
            let errors = Errors::refusal(browser.lang, &error, field);
            request_page(
                &console,
                &browser,
                &session,
                request,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gerbang_domain::approval::DocumentKind;

    #[test]
    fn every_document_the_domain_knows_is_offered() {
        let offered: Vec<&str> = DOCUMENTS.iter().map(|(value, _)| *value).collect();
        let known: Vec<&str> = DocumentKind::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(offered, known);
    }
}
