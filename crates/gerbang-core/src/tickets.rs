//! Complaint tickets: opened by staff for what a participant reports (the code that never came, a
//! lock, a lost phone), with a number the participant can quote, notes and the verifications they
//! are about. A ticket number that does not exist is refused by name. Every step is in the audit
//! log, under the ticket.

use chrono::{DateTime, Utc};
use gerbang_domain::Explain;
use gerbang_domain::verification::VerificationId;
use gerbang_store::audit::AuditRecord;
use gerbang_store::tickets::{is_ticket_number, new_ticket_number};
use gerbang_store::{Store, StoreError, Ticket, TicketNote};

/// The longest subject or note, in characters.
pub const MAX_TEXT: usize = 2000;

/// Why a ticket operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("no ticket {number}")]
    Unknown { number: String },
    #[error("write between 5 and 2000 characters")]
    TextInvalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Explain for TicketError {
    fn code(&self) -> &'static str {
        match self {
            Self::Unknown { .. } => "ticket_unknown",
            Self::TextInvalid => "ticket_text_invalid",
            Self::Store(_) => "store_unavailable",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::Unknown { number } => format!("Tiket {number} tidak ada. Periksa nomornya."),
            Self::TextInvalid => "Tulis antara 5 dan 2000 karakter.".into(),
            Self::Store(_) => "Data tidak dapat dihubungi saat ini. Coba lagi.".into(),
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::Unknown { number } => {
                format!("There is no ticket {number}. Check the number.")
            }
            Self::TextInvalid => "Write between 5 and 2000 characters.".into(),
            Self::Store(_) => "The data cannot be reached right now. Try again.".into(),
        }
    }
}

fn checked(text: &str) -> Result<String, TicketError> {
    let text = text.trim();
    let length = text.chars().count();
    if (5..=MAX_TEXT).contains(&length) {
        Ok(text.to_owned())
    } else {
        Err(TicketError::TextInvalid)
    }
}

/// The ticket `number`, or its refusal by name.
pub async fn find<S: Store>(store: &S, number: &str) -> Result<Ticket, TicketError> {
    let number = number.trim().to_ascii_uppercase();
    let unknown = || TicketError::Unknown {
        number: number.chars().take(20).collect(),
    };
    if !is_ticket_number(&number) {
        return Err(unknown());
    }
    store.find_ticket(&number).await?.ok_or_else(unknown)
}

/// Opens a ticket by `actor` about `account`.
pub async fn open<S: Store>(
    store: &S,
    actor: &str,
    account: Option<i64>,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<Ticket, TicketError> {
    let subject = checked(subject)?;
    // A drawn number that is taken is drawn again; 10^8 numbers make a second clash unlikely.
    for _ in 0..5 {
        let number = new_ticket_number();
        let audit = vec![AuditRecord {
            at: now,
            actor: actor.to_owned(),
            action: "ticket_opened".into(),
            account,
            ticket: Some(number.clone()),
            detail: String::new(),
        }];
        if let Some(ticket) = store
            .open_ticket(&number, account, actor, now, &subject, audit)
            .await?
        {
            return Ok(ticket);
        }
    }
    Err(TicketError::Store(StoreError::Unavailable(
        "no free ticket number after five draws".into(),
    )))
}

/// Adds a note by `actor` to the ticket, linking `link`.
pub async fn note<S: Store>(
    store: &S,
    actor: &str,
    ticket: &Ticket,
    text: &str,
    link: Vec<VerificationId>,
    now: DateTime<Utc>,
) -> Result<(), TicketError> {
    let text = checked(text)?;
    let detail = if link.is_empty() {
        String::new()
    } else {
        format!(
            "linked {}",
            link.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let audit = vec![AuditRecord {
        at: now,
        actor: actor.to_owned(),
        action: "ticket_note_added".into(),
        account: ticket.account,
        ticket: Some(ticket.number.clone()),
        detail,
    }];
    let note = TicketNote {
        at: now,
        by: actor.to_owned(),
        text,
    };
    Ok(store.add_ticket_note(ticket.id, &note, link, audit).await?)
}
