//! The contact change at a branch counter (SPEC §6), for a participant whose old number is dead
//! or who cannot receive the old contact's code: an officer records the identity document they
//! saw, a reason and the complaint ticket; a second officer or a supervisor approves (never the
//! author, once, before the request expires); the new contact proves itself with a code read out
//! at the counter; then the contact changes, every session ends and every trusted device is
//! forgotten, the cool-off starts and the old contacts are told. Every step, and every refused approval, is in the audit log.

use chrono::Duration;
use gerbang_domain::Explain;
use gerbang_domain::approval::{FourEyes, IdentityCheck, RequestError, RequestState};
use gerbang_domain::verification::purpose::Purpose;
use gerbang_domain::verification::{Channel, Destination, Locale};
use gerbang_domain::{Email, MobileNumber};
use gerbang_store::audit::AuditRecord;
use gerbang_store::requests::{is_request_number, new_request_number};
use gerbang_store::{
    AccountEvent, AccountKey, ContactChangeRequest, RequestDetails, Store, StoreError,
    StoredAccount,
};

use super::{AccountError, AccountService, notice_text};
use crate::tickets::{self, TicketError};

/// What an officer enters at the counter.
#[derive(Debug, Clone, Default)]
pub struct CounterForm<'a> {
    /// The account's public id (`acct_…`).
    pub account: &'a str,
    /// `phone` or `email`.
    pub kind: &'a str,
    pub value: &'a str,
    /// `ktp`, `kk`, `passport` or `suket`.
    pub document: &'a str,
    pub document_number: &'a str,
    pub reason: &'a str,
    pub ticket: &'a str,
}

/// Who is acting: the staff name (for the four-eyes comparison) and the audit actor.
#[derive(Debug, Clone, Copy)]
pub struct Officer<'a> {
    pub name: &'a str,
    pub actor: &'a str,
}

/// Why a counter request or one of its steps was refused.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("no request {number}")]
    Unknown { number: String },
    #[error("the new contact is not a valid {}", if *email { "email" } else { "mobile number" })]
    ContactInvalid { email: bool },
    #[error("a reason of at least 5 characters is required")]
    ReasonMissing,
    #[error("the code to the new contact has not been sent")]
    CodeNotSent,
    #[error("ticket {number} is not this participant's open ticket")]
    TicketNotTheirs { number: String },
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Ticket(#[from] TicketError),
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<StoreError> for CounterError {
    fn from(error: StoreError) -> Self {
        Self::Account(AccountError::Store(error))
    }
}

impl CounterError {
    /// Whether the store (not the request) failed: the console answers 503.
    pub fn unavailable(&self) -> bool {
        matches!(
            self,
            Self::Account(AccountError::Store(_)) | Self::Ticket(TicketError::Store(_))
        )
    }
}

impl Explain for CounterError {
    fn code(&self) -> &'static str {
        match self {
            Self::Unknown { .. } => "request_unknown",
            Self::ContactInvalid { email: false } => "phone_invalid",
            Self::ContactInvalid { email: true } => "email_invalid",
            Self::ReasonMissing => "reason_missing",
            Self::CodeNotSent => "code_not_sent",
            Self::TicketNotTheirs { .. } => "ticket_not_theirs",
            Self::Request(error) => error.code(),
            Self::Ticket(error) => error.code(),
            Self::Account(error) => error.code(),
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::Unknown { number } => format!("Permohonan {number} tidak ada. Periksa nomornya."),
            Self::ContactInvalid { email: false } => {
                "Nomor HP baru tidak valid. Tulis nomor seluler Indonesia, mis. 0812 3456 7890."
                    .into()
            }
            Self::ContactInvalid { email: true } => "Alamat email baru tidak valid.".into(),
            Self::ReasonMissing => "Tulis alasan, paling sedikit 5 karakter.".into(),
            Self::CodeNotSent => {
                "Kode ke kontak baru belum terkirim. Tekan \"Kirim kode\" lebih dulu.".into()
            }
            Self::TicketNotTheirs { number } => format!(
                "Tiket {number} bukan tiket terbuka milik peserta ini. Buka tiket untuk pengaduannya."
            ),
            Self::Request(error) => error.message_id(),
            Self::Ticket(error) => error.message_id(),
            Self::Account(error) => error.message_id(),
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::Unknown { number } => {
                format!("There is no request {number}. Check the number.")
            }
            Self::ContactInvalid { email: false } => {
                "The new mobile number is not valid. Write an Indonesian mobile number, e.g. 0812 3456 7890."
                    .into()
            }
            Self::ContactInvalid { email: true } => "The new email address is not valid.".into(),
            Self::ReasonMissing => "Write a reason of at least 5 characters.".into(),
            Self::CodeNotSent => {
                "The code to the new contact has not been sent. Press \"Send code\" first.".into()
            }
            Self::TicketNotTheirs { number } => format!(
                "Ticket {number} is not an open ticket of this participant. Open one for their complaint."
            ),
            Self::Request(error) => error.message_en(),
            Self::Ticket(error) => error.message_en(),
            Self::Account(error) => error.message_en(),
        }
    }
}

fn kind_of(to: &Destination) -> &'static str {
    match to {
        Destination::Phone(_) => "phone",
        Destination::Email(_) => "email",
    }
}

fn channel_of(to: &Destination) -> Channel {
    match to {
        Destination::Phone(_) => Channel::Sms,
        Destination::Email(_) => Channel::Email,
    }
}

impl<S: Store> AccountService<S> {
    /// The request `number`, or its refusal by name.
    pub async fn counter_request(
        &self,
        number: &str,
    ) -> Result<ContactChangeRequest, CounterError> {
        let number = number.trim().to_ascii_uppercase();
        let unknown = || CounterError::Unknown {
            number: number.chars().take(20).collect(),
        };
        if !is_request_number(&number) {
            return Err(unknown());
        }
        self.store.find_request(&number).await?.ok_or_else(unknown)
    }

    /// An officer asks for a contact change at the counter; it waits for a second person until
    /// `lifetime` has passed.
    pub async fn request_counter_change(
        &self,
        form: CounterForm<'_>,
        by: Officer<'_>,
        lifetime: Duration,
    ) -> Result<ContactChangeRequest, CounterError> {
        let stored = self
            .store
            .find_account(AccountKey::PublicId(form.account))
            .await?
            .ok_or(AccountError::AccountNotFound)?;
        let to = match form.kind {
            "email" => Destination::Email(
                Email::parse(form.value)
                    .map_err(|_| CounterError::ContactInvalid { email: true })?,
            ),
            _ => Destination::Phone(
                MobileNumber::parse(form.value)
                    .map_err(|_| CounterError::ContactInvalid { email: false })?,
            ),
        };
        self.contact_free(&stored, &to).await?;
        let identity =
            IdentityCheck::parse(form.document, form.document_number, &stored.account.nik)?;
        let reason = form.reason.trim();
        if reason.chars().count() < 5 {
            return Err(CounterError::ReasonMissing);
        }
        let ticket = tickets::find(&self.store, form.ticket).await?;
        // The complaint this change answers: this participant's, and still open.
        if ticket.account.is_some_and(|account| account != stored.id) || ticket.closed_at.is_some()
        {
            return Err(CounterError::TicketNotTheirs {
                number: ticket.number,
            });
        }
        let now = self.now();
        let details = RequestDetails {
            to,
            identity,
            reason: reason.chars().take(500).collect(),
        };
        // A drawn number that is taken is drawn again, as for tickets.
        for _ in 0..5 {
            let mut request = ContactChangeRequest {
                id: 0,
                number: new_request_number(),
                account: stored.id,
                ticket: ticket.number.clone(),
                details: details.clone(),
                rules: FourEyes::new(by.name, now, lifetime),
                verification: None,
            };
            let audit = vec![self.record(
                &request,
                by.actor,
                "contact_change_requested",
                format!(
                    "{} to {}; seen {}",
                    kind_of(&request.details.to),
                    request.details.to.masked(),
                    request.details.identity.masked(),
                ),
            )];
            if let Some(id) = self.store.insert_request(&request, audit).await? {
                request.id = id;
                return Ok(request);
            }
        }
        Err(StoreError::Unavailable("no free request number after five draws".into()).into())
    }

    /// A second person approves; then the code goes to the new contact. A refusal (the author,
    /// a second approval, an expired request) is recorded before it is answered.
    pub async fn approve_counter_change(
        &self,
        number: &str,
        by: Officer<'_>,
    ) -> Result<ContactChangeRequest, CounterError> {
        let mut request = self.counter_request(number).await?;
        let now = self.now();
        let mut approved = request.clone();
        let decided = match approved.rules.approve(by.name, now) {
            Ok(()) => {
                let record = self.record(
                    &request,
                    by.actor,
                    "contact_change_approved",
                    format!("requested by staff:{}", request.rules.requested_by),
                );
                if self
                    .store
                    .update_request(&approved, (RequestState::Pending, None), vec![record])
                    .await?
                {
                    Ok(())
                } else {
                    // Someone decided first: answer with what they decided.
                    request = self.counter_request(number).await?;
                    Err(RequestError::AlreadyDecided {
                        stage: request.rules.stage(now),
                    })
                }
            }
            Err(refused) => Err(refused),
        };
        if let Err(refused) = decided {
            self.refuse(&request, by, refused).await?;
            return Err(refused.into());
        }
        self.send_counter_code(number, by).await
    }

    /// A second person declines, or the author withdraws.
    pub async fn decline_counter_change(
        &self,
        number: &str,
        by: Officer<'_>,
    ) -> Result<ContactChangeRequest, CounterError> {
        let request = self.counter_request(number).await?;
        let mut declined = request.clone();
        if let Err(refused) = declined.rules.decline(by.name, self.now()) {
            self.refuse(&request, by, refused).await?;
            return Err(refused.into());
        }
        let record = self.record(&request, by.actor, "contact_change_declined", String::new());
        if !self
            .store
            .update_request(&declined, (RequestState::Pending, None), vec![record])
            .await?
        {
            let now = self.now();
            let current = self.counter_request(number).await?;
            let refused = RequestError::AlreadyDecided {
                stage: current.rules.stage(now),
            };
            self.refuse(&current, by, refused).await?;
            return Err(refused.into());
        }
        Ok(declined)
    }

    /// Sends (or sends again) the code to the new contact of an approved request.
    pub async fn send_counter_code(
        &self,
        number: &str,
        by: Officer<'_>,
    ) -> Result<ContactChangeRequest, CounterError> {
        let request = self.counter_request(number).await?;
        request.rules.awaiting_code(self.now())?;
        let stored = self.account(request.account).await?;
        let to = request.details.to.clone();
        let verification = self
            .start_for(
                &stored,
                Purpose::ContactChangeProof,
                (channel_of(&to), to),
                Locale::Id,
            )
            .await?;
        let mut sent = request.clone();
        sent.verification = Some(verification.id);
        let record = self.record(
            &request,
            by.actor,
            "contact_change_code_sent",
            format!("verification {}", verification.id),
        );
        if !self
            .store
            .update_request(
                &sent,
                (RequestState::Approved, request.verification),
                vec![record],
            )
            .await?
        {
            // Someone sent a code (or finished) at the same moment: theirs is the one on record.
            let current = self.counter_request(number).await?;
            current.rules.awaiting_code(self.now())?;
            return Ok(current);
        }
        Ok(sent)
    }

    /// The code the participant read from the new contact: the change is made, every session
    /// ends, the cool-off starts, the old contacts (and the new) are told.
    pub async fn confirm_counter_change(
        &self,
        number: &str,
        code: &str,
        by: Officer<'_>,
    ) -> Result<ContactChangeRequest, CounterError> {
        let request = self.counter_request(number).await?;
        let now = self.now();
        request.rules.awaiting_code(now)?;
        let verification = request.verification.ok_or(CounterError::CodeNotSent)?;
        self.check_code(verification, code, None).await?;
        // Claim the request before changing anything: of two confirmations (two officers, or a
        // code sent again meanwhile) exactly one goes on, and the change is made once.
        let mut completed = request.clone();
        completed.rules.complete(now)?;
        let record = self.record(
            &request,
            by.actor,
            "contact_change_completed",
            format!(
                "approved by staff:{}",
                request.rules.decided_by.as_deref().unwrap_or("?")
            ),
        );
        if !self
            .store
            .update_request(
                &completed,
                (RequestState::Approved, Some(verification)),
                vec![record],
            )
            .await?
        {
            let current = self.counter_request(number).await?;
            return Err(RequestError::AlreadyDecided {
                stage: current.rules.stage(now),
            }
            .into());
        }
        let mut stored = self.account(request.account).await?;
        let old_phone = stored.account.phone.clone();
        let old_email = stored.account.email.clone();
        let to = request.details.to.clone();
        let detail = format!("{} at the counter, {}", to.masked(), request.number);
        let (actor, ticket) = (by.actor.to_owned(), request.ticket.clone());
        let changed = self
            .change(&mut stored, now, |account| {
                // The cool-off starts whichever contact changed: a change made for someone else
                // at a counter is the insider's way around the SIM-swap defence.
                account.phone_changed_at = Some(now);
                // The old phone is usually why the participant came (lost, stolen, number
                // dead): it is trusted no more, and the next login asks the new contact.
                let devices = account.devices.revoke_all();
                let kind = match &to {
                    Destination::Phone(phone) => {
                        account.phone = Some(phone.clone());
                        "phone_changed"
                    }
                    Destination::Email(email) => {
                        account.email = Some(email.clone());
                        "email_changed"
                    }
                };
                vec![
                    AccountEvent::new(now, kind, format!("{detail}; {devices} devices signed out"))
                        .by(actor.clone())
                        .under(Some(ticket.clone())),
                ]
            })
            .await;
        if let Err(error) = changed {
            // Not changed (the contact was taken meanwhile, the store failed): the request
            // waits again, and a new code can be sent.
            let record = self.record(
                &request,
                by.actor,
                "contact_change_failed",
                error.code().to_owned(),
            );
            self.store
                .update_request(
                    &request,
                    (RequestState::Completed, Some(verification)),
                    vec![record],
                )
                .await?;
            return Err(error.into());
        }
        self.store.revoke_sessions(stored.id, None, now).await?;
        // Tell every contact the account had, and the new one: a change the participant did not
        // ask for is noticed on the old phone or inbox.
        let mut notify = Vec::new();
        if let Some(phone) = old_phone {
            notify.push((Channel::Sms, Destination::Phone(phone)));
        }
        if let Some(email) = old_email {
            notify.push((Channel::Email, Destination::Email(email)));
        }
        if !notify.iter().any(|(_, d)| *d == request.details.to) {
            notify.push((channel_of(&request.details.to), request.details.to.clone()));
        }
        let nouns = match &request.details.to {
            Destination::Phone(_) => ("nomor HP", "mobile number"),
            Destination::Email(_) => ("email", "email"),
        };
        let text = notice_text(
            &self.engine.settings().brand.name,
            Locale::Id,
            nouns,
            &request.details.to.masked(),
            &stored.account,
            now,
            &self.settings.cool_off,
        );
        self.engine
            .notify(verification, notify, text)
            .await
            .map_err(AccountError::Engine)?;
        Ok(completed)
    }

    /// Refuses a change to a contact the account already has or another account holds.
    async fn contact_free(
        &self,
        stored: &StoredAccount,
        to: &Destination,
    ) -> Result<(), AccountError> {
        let (unchanged, taken, error) = match to {
            Destination::Phone(phone) => (
                stored.account.phone.as_ref() == Some(phone),
                self.store.find_account(AccountKey::Phone(phone)).await?,
                AccountError::PhoneTaken,
            ),
            Destination::Email(email) => (
                stored.account.email.as_ref() == Some(email),
                self.store.find_account(AccountKey::Email(email)).await?,
                AccountError::EmailTaken,
            ),
        };
        if unchanged {
            return Err(AccountError::ContactUnchanged);
        }
        if taken.is_some() {
            return Err(error);
        }
        Ok(())
    }

    fn record(
        &self,
        request: &ContactChangeRequest,
        actor: &str,
        action: &str,
        detail: String,
    ) -> AuditRecord {
        AuditRecord {
            at: self.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            account: Some(request.account),
            ticket: Some(request.ticket.clone()),
            detail: if detail.is_empty() {
                request.number.clone()
            } else {
                format!("{}: {detail}", request.number)
            },
        }
    }

    /// Records a refused decision (self-approval, a second approval, an expired request).
    async fn refuse(
        &self,
        request: &ContactChangeRequest,
        by: Officer<'_>,
        refused: RequestError,
    ) -> Result<(), StoreError> {
        let record = self.record(
            request,
            by.actor,
            "contact_change_decision_refused",
            refused.code().to_owned(),
        );
        self.store.append_audit(vec![record]).await
    }
}
