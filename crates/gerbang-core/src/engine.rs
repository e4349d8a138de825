//! The verification engine: every flow's codes are started, resent, checked and cancelled here.
//!
//! Each operation is one store transaction whose decision is made by the domain's pure rules inside
//! it: the rate-limit keys of the request are read and locked, every rule is judged, and only then are
//! the send recorded, the verification written and its message queued, all or nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use gerbang_domain::delivery::fallback::{FallbackOffer, FallbackPolicy, LatestAttempt};
use gerbang_domain::delivery::{Cause, DeliveryStatus, Explanation, explain};
use gerbang_domain::verification::admission::Urgency;
use gerbang_domain::verification::code::{CodeKey, OtpCode};
use gerbang_domain::verification::message::{MessageBrand, MessageContent, render_with};
use gerbang_domain::verification::purpose::{ActionDetails, Binding, Purpose, SensitiveAction};
use gerbang_domain::verification::rate::{self, KeyKind, RateRefusal, RateRule, RateState};
use gerbang_domain::verification::template::Templates;
use gerbang_domain::verification::{
    Channel, CodeSend, Destination, Locale, OtpPolicy, Status, Verification, VerificationError,
    VerificationId,
};
use gerbang_domain::{Clock, Nik};
use gerbang_store::{Changes, DeliveryAttempt, OutboxMessage, Priority, RateKey, Snapshot, Store};
use tokio::sync::Notify;

use crate::admission::Admission;
use crate::budget::Budgets;
use crate::error::EngineError;
use crate::pace::DeliveryPace;
use crate::pumping::PumpingBrake;

/// The policy the engine applies, from configuration.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub policy: OtpPolicy,
    /// Every rule, including the per-flow resend cap.
    pub rules: Vec<RateRule>,
    pub brand: MessageBrand,
    /// Which channels a participant is offered when a message did not arrive.
    pub fallback: FallbackPolicy,
    /// The words of the SMS per language, checked at start (`delivery.templates_dir`).
    pub templates: Arc<Templates>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            policy: OtpPolicy::default(),
            rules: rate::default_rules(3, chrono::Duration::minutes(30)),
            brand: MessageBrand::default(),
            fallback: FallbackPolicy::default(),
            templates: Arc::default(),
        }
    }
}

/// What the participant's app is told about the delivery of a verification's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutlook {
    /// Every attempt, oldest first. One handed off `no_receipt_window` ago without a receipt reads
    /// `unknown` (cause `unknown`), as the fallback offer does.
    pub attempts: Vec<DeliveryAttempt>,
    /// What the participant is told about each attempt (same order), worded for its channel;
    /// `None` while nothing went wrong. "Wait" is said only of the last try of a message still
    /// queued for another round of a verification still pending.
    pub explanations: Vec<Option<Explanation>>,
    /// Other channels to switch to, when the latest message failed or no receipt came in time.
    pub fallback: Option<FallbackOffer>,
    /// The latest message is still waiting in the outbox.
    pub queue: Option<QueueWait>,
}

/// A message still waiting: how many go before it and roughly how long that takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueWait {
    pub ahead: u64,
    /// At the rate the queue drains now ([`DeliveryPace`]: the routes' limits and response times,
    /// then the worker's measured throughput); without one, at the last minute's hand-off rate;
    /// `None` when neither can be told (no route would take it, nothing went out in the last minute).
    pub estimated_wait: Option<chrono::Duration>,
}

/// Who the code is for, as far as the caller knows; each known part is a rate-limit key.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// The account id in the calling service.
    pub account: Option<String>,
    pub nik: Option<Nik>,
}

/// Where the request came from, as the calling service saw it.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub device: Option<String>,
}

/// A request for a new verification.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// The API client (or in-process flow) that owns the verification.
    pub client: String,
    pub purpose: Purpose,
    pub action: Option<SensitiveAction>,
    pub details: ActionDetails,
    pub action_hint: Option<String>,
    pub channel: Channel,
    pub destination: Destination,
    pub locale: Locale,
    pub subject: Subject,
    pub origin: Origin,
}

impl StartRequest {
    /// A request with no action, subject or origin, in Indonesian; set the other fields as needed.
    pub fn new(
        client: impl Into<String>,
        purpose: Purpose,
        channel: Channel,
        destination: Destination,
    ) -> Self {
        Self {
            client: client.into(),
            purpose,
            action: None,
            details: ActionDetails::default(),
            action_hint: None,
            channel,
            destination,
            locale: Locale::Id,
            subject: Subject::default(),
            origin: Origin::default(),
        }
    }
}

/// A request to send a verification's code again, possibly over another channel.
#[derive(Debug, Clone)]
pub struct ResendRequest {
    pub client: String,
    pub id: VerificationId,
    /// `None`: the channel and destination of the last send.
    pub channel: Option<Channel>,
    pub destination: Option<Destination>,
    pub origin: Origin,
}

/// A typed code. Purpose and action default to the verification's own; a step-up's details must be
/// stated again, since they are bound into the code and never stored.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub client: String,
    pub id: VerificationId,
    pub code: String,
    pub purpose: Option<Purpose>,
    pub action: Option<SensitiveAction>,
    pub details: ActionDetails,
}

/// What a caller may see of a verification: never a code, destinations only masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationView {
    pub id: VerificationId,
    pub status: Status,
    pub purpose: Purpose,
    pub action: Option<SensitiveAction>,
    pub channel: Channel,
    pub destination_masked: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When a resend is allowed (the countdown's end).
    pub resend_at: DateTime<Utc>,
    /// The instant this view describes (the engine's "now" when it was made): waits shown with
    /// it are counted from here, not from a caller's earlier reading of the clock.
    pub as_of: DateTime<Utc>,
    pub sends: usize,
    pub attempts_left: u8,
    pub verified_at: Option<DateTime<Utc>>,
}

/// The engine; cheap to clone.
#[derive(Debug, Clone)]
pub struct VerificationEngine<S> {
    store: S,
    clock: Arc<dyn Clock>,
    key: CodeKey,
    settings: Arc<EngineSettings>,
    /// Wakes the delivery worker when a message is queued.
    queued: Arc<Notify>,
    /// How fast the delivery worker drains the outbox, for the queue estimate.
    pace: Arc<DeliveryPace>,
    brake: Arc<PumpingBrake>,
    /// Refuses codes that would wait too long in the queue.
    admission: Arc<Admission>,
    /// The day's caps per channel and provider.
    budgets: Arc<Budgets>,
}

/// The rules that count one key kind.
fn rules_for(rules: &[RateRule], kind: KeyKind) -> Vec<&RateRule> {
    rules.iter().filter(|rule| rule.key == kind).collect()
}

impl<S: Store> VerificationEngine<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>, key: CodeKey, settings: EngineSettings) -> Self {
        Self {
            store,
            clock,
            key,
            settings: Arc::new(settings),
            queued: Arc::new(Notify::new()),
            pace: Arc::default(),
            brake: Arc::default(),
            admission: Arc::default(),
            budgets: Arc::default(),
        }
    }

    /// Tells queue estimates from the delivery worker's `pace` (see
    /// [`DeliveryWorker::with_pace`](crate::DeliveryWorker::with_pace)).
    pub fn with_pace(mut self, pace: Arc<DeliveryPace>) -> Self {
        self.pace = pace;
        self
    }

    /// Counts codes per number block and holds codes to a block the `brake` has braked (its
    /// [`PumpingBrake::tick`] must run, see [`PumpingBrake::run`]).
    pub fn with_brake(mut self, brake: Arc<PumpingBrake>) -> Self {
        self.brake = brake;
        self
    }

    /// Refuses new codes, least urgent first, when the queue would hold them too long (its
    /// [`Admission::run`] must run to see other instances' codes).
    pub fn with_admission(mut self, admission: Arc<Admission>) -> Self {
        self.admission = admission;
        self
    }

    /// Counts codes and refuses them past the day's caps (its [`Budgets::run`] must run; the
    /// delivery worker must share the same [`Budgets`]).
    pub fn with_budgets(mut self, budgets: Arc<Budgets>) -> Self {
        self.budgets = budgets;
        self
    }

    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    pub fn budgets(&self) -> &Arc<Budgets> {
        &self.budgets
    }

    pub fn brake(&self) -> &Arc<PumpingBrake> {
        &self.brake
    }

    /// The delivery routes' pace and circuits, as the worker measures them.
    pub fn pace(&self) -> &Arc<DeliveryPace> {
        &self.pace
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Notified whenever a message is queued.
    pub fn queued_signal(&self) -> Arc<Notify> {
        self.queued.clone()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Starts a verification and queues its first code.
    pub async fn start(&self, request: StartRequest) -> Result<VerificationView, EngineError> {
        if !request.channel.reaches(&request.destination) {
            return Err(VerificationError::ChannelMismatch.into());
        }
        let binding = Binding::new(request.purpose, request.action, request.details.clone())?;
        let action_hint = request
            .action_hint
            .as_deref()
            .map(|hint| {
                hint.chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(16)
                    .collect::<String>()
            })
            .filter(|hint| !hint.is_empty());
        let now = self.clock.now();
        if let Some(until) = self.brake.held(&request.destination, now) {
            return Err(EngineError::DestinationSuspended { until });
        }
        self.admit_load(request.purpose, request.channel, &request.destination, now)?;
        let (id, code) = {
            let mut rng = rand::rng();
            (
                VerificationId::new(now, &mut rng),
                OtpCode::generate(self.settings.policy.code_length, &mut rng),
            )
        };
        let flow = flow_key(
            request.purpose,
            request.action,
            &request.subject,
            &request.destination,
        );
        let keys = rate_keys(
            &request.destination,
            &request.subject,
            &request.origin,
            &flow,
        );
        let send = CodeSend {
            channel: request.channel,
            destination: request.destination.clone(),
            issued_at: now,
            handed_off_at: None,
            digest: self.key.digest(id.as_bytes(), &binding.to_bytes(), &code),
        };
        let verification = Verification {
            id,
            client: request.client,
            purpose: request.purpose,
            action: request.action,
            action_hint,
            locale: request.locale,
            flow,
            binding: binding.to_bytes(),
            account: request.subject.account.clone(),
            nik: request.subject.nik.clone(),
            created_at: now,
            sends: vec![send],
            wrong_attempts: 0,
            outcome: None,
        };
        let view = self.open(verification, &code, keys, now).await?;
        self.brake.sent(&request.destination, now);
        self.loaded(request.channel, now);
        Ok(view)
    }

    /// Whether a new code is taken on at all: the day's budget for its channel and providers, then
    /// the wait it would have in the queue for its purpose's urgency.
    fn admit_load(
        &self,
        purpose: Purpose,
        channel: Channel,
        destination: &Destination,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.budgets
            .admit(channel, || self.pace.carriers(channel, destination), now)
            .map_err(|until| EngineError::BudgetExhausted { channel, until })?;
        self.admission
            .admit(Urgency::of(purpose), channel, destination, &self.pace, now)
            .map_err(|full| EngineError::QueueFull {
                wait: full.wait,
                until: now + full.retry_after,
            })
    }

    /// A code on `channel` was queued: counted for admission and the day's budget.
    fn loaded(&self, channel: Channel, now: DateTime<Utc>) {
        self.admission.queued(channel);
        self.budgets.accepted(channel, now);
    }

    /// Writes a new verification and queues its first code, if every rule admits it.
    async fn open(
        &self,
        verification: Verification,
        code: &OtpCode,
        keys: Vec<RateKey>,
        now: DateTime<Utc>,
    ) -> Result<VerificationView, EngineError> {
        let message = self.message(&verification, 0, code, now);
        let settings = self.settings.clone();
        let step_keys = keys.clone();
        let written = verification.clone();
        self.store
            .transact(None, keys, move |snapshot| {
                match admit(&settings.rules, &step_keys, snapshot.rates, now) {
                    Err(refusal) => (Changes::none(), Err(refusal)),
                    Ok(rates) => (
                        Changes {
                            verification: Some(written),
                            rates,
                            messages: vec![message],
                            ..Changes::none()
                        },
                        Ok(()),
                    ),
                }
            })
            .await?
            .map_err(refused)?;
        self.queued.notify_one();
        Ok(self.view(&verification, now))
    }

    /// A fresh verification in place of one whose code died of wrong entries ("ask for a new
    /// code"), for the in-process account flows: the same purpose, action binding, subject and
    /// flow — so the flow's resend cap and every other limit still count — once the spent one's
    /// countdown has passed. Anything not exhausted is resent as usual.
    pub async fn renew(&self, request: ResendRequest) -> Result<VerificationView, EngineError> {
        let current = self.owned(&request.client, request.id).await?;
        let now = self.clock.now();
        if current.status(&self.settings.policy, now) != Status::Exhausted {
            return self.resend(request).await;
        }
        let (channel, destination) = resend_target(&current, &request)?;
        let until = self.next_resend_at(&current);
        if now < until {
            return Err(VerificationError::ResendCountdown { until }.into());
        }
        let subject = Subject {
            account: current.account.clone(),
            nik: current.nik.clone(),
        };
        let keys = rate_keys(&destination, &subject, &request.origin, &current.flow);
        let (id, code) = {
            let mut rng = rand::rng();
            (
                VerificationId::new(now, &mut rng),
                OtpCode::generate(self.settings.policy.code_length, &mut rng),
            )
        };
        let send = CodeSend {
            channel,
            destination,
            issued_at: now,
            handed_off_at: None,
            digest: self.key.digest(id.as_bytes(), &current.binding, &code),
        };
        let verification = Verification {
            id,
            created_at: now,
            sends: vec![send],
            wrong_attempts: 0,
            outcome: None,
            ..current
        };
        self.open(verification, &code, keys, now).await
    }

    /// Sends a new code for a pending (or expired) verification, if the countdown and every rule
    /// allow it. During the countdown nothing is sent and the same instant is returned every time.
    pub async fn resend(&self, request: ResendRequest) -> Result<VerificationView, EngineError> {
        let current = self.owned(&request.client, request.id).await?;
        let last = current
            .latest()
            .ok_or(EngineError::Verification(VerificationError::NotFound))?;
        let (channel, destination) = resend_target(&current, &request)?;
        let now = self.clock.now();
        if let Some(until) = self.brake.held(&destination, now) {
            return Err(EngineError::DestinationSuspended { until });
        }
        let counted = destination.clone();
        // Switching to a channel the fallback offers skips the countdown: the message did not
        // arrive, so waiting for it helps nobody. The rate limits still apply.
        let switching = channel != last.channel
            && self
                .outlook_of(&current)
                .await?
                .fallback
                .is_some_and(|offer| offer.channels.iter().any(|c| c.channel == channel));
        // The countdown first: it is the common answer to an impatient tap and needs no write.
        current.may_resend(&self.settings.policy, now, switching)?;
        self.admit_load(current.purpose, channel, &destination, now)?;
        // A resend counts against the same account and NIK as the first send, whatever channel.
        let subject = Subject {
            account: current.account.clone(),
            nik: current.nik.clone(),
        };
        let keys = rate_keys(&destination, &subject, &request.origin, &current.flow);
        let code = OtpCode::generate(self.settings.policy.code_length, &mut rand::rng());
        let digest = self
            .key
            .digest(current.id.as_bytes(), &current.binding, &code);
        let settings = self.settings.clone();
        let step_keys = keys.clone();
        let client = request.client.clone();
        let engine = self.clone();
        let id = request.id;
        let updated = self
            .store
            .transact(Some(id), keys, move |snapshot| {
                let Snapshot {
                    verification,
                    rates,
                } = snapshot;
                let Some(mut verification) = verification.filter(|v| v.client == client) else {
                    return (Changes::none(), Err(VerificationError::NotFound.into()));
                };
                if let Err(error) = verification.may_resend(&settings.policy, now, switching) {
                    return (Changes::none(), Err(error.into()));
                }
                let rates = match admit(&settings.rules, &step_keys, rates, now) {
                    Ok(rates) => rates,
                    Err(refusal) => return (Changes::none(), Err(refused(refusal))),
                };
                let index = verification.sends.len();
                verification.sends.push(CodeSend {
                    channel,
                    destination: destination.clone(),
                    issued_at: now,
                    handed_off_at: None,
                    digest,
                });
                let message = engine.message(&verification, index, &code, now);
                (
                    Changes {
                        verification: Some(verification.clone()),
                        rates,
                        messages: vec![message],
                        ..Changes::none()
                    },
                    Ok(verification),
                )
            })
            .await??;
        self.queued.notify_one();
        self.brake.sent(&counted, now);
        self.loaded(channel, now);
        Ok(self.view(&updated, now))
    }

    /// Counts one attempt of something that is not a code (a registry lookup, a login) against
    /// `rules` for each of `keys`, in the same rate-limit state as codes: refused, nothing is
    /// counted. Keys should be namespaced (`lookup/…`) so they do not share counters with codes.
    pub async fn count_attempt(
        &self,
        rules: Arc<Vec<RateRule>>,
        keys: Vec<RateKey>,
    ) -> Result<(), EngineError> {
        if keys.is_empty() || rules.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let step_keys = keys.clone();
        self.store
            .transact(None, keys, move |snapshot| {
                match admit(&rules, &step_keys, snapshot.rates, now) {
                    Err(refusal) => (Changes::none(), Err(refusal)),
                    Ok(rates) => (
                        Changes {
                            rates,
                            ..Changes::none()
                        },
                        Ok(()),
                    ),
                }
            })
            .await?
            .map_err(refused)
    }

    /// Queues a notification (no code) to each destination, on behalf of verification `about` (the
    /// one whose completion it reports). Notifications go out after every waiting code.
    pub async fn notify(
        &self,
        about: VerificationId,
        to: Vec<(Channel, Destination)>,
        text: String,
    ) -> Result<(), EngineError> {
        if to.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let messages = to
            .into_iter()
            .map(|(channel, destination)| OutboxMessage {
                verification: about,
                send_index: 0,
                channel,
                destination,
                text: text.clone(),
                content: None,
                queued_at: now,
                expires_at: now + chrono::Duration::days(1),
                priority: Priority::Notification,
            })
            .collect();
        self.store
            .transact(None, Vec::new(), move |_| {
                (
                    Changes {
                        messages,
                        ..Changes::none()
                    },
                    (),
                )
            })
            .await?;
        self.queued.notify_one();
        Ok(())
    }

    /// Checks a typed code. Exactly one of any number of concurrent correct checks succeeds.
    pub async fn check(&self, request: CheckRequest) -> Result<VerificationView, EngineError> {
        let code = OtpCode::parse(&request.code, self.settings.policy.code_length)?;
        let now = self.clock.now();
        let policy = self.settings.policy.clone();
        let key = self.key.clone();
        let client = request.client.clone();
        let engine = self.clone();
        let checked = self
            .store
            .transact(Some(request.id), Vec::new(), move |snapshot| {
                let Some(mut verification) = snapshot.verification.filter(|v| v.client == client)
                else {
                    return (Changes::none(), Err(VerificationError::NotFound.into()));
                };
                let purpose = request.purpose.unwrap_or(verification.purpose);
                let action = request.action.or(verification.action);
                let binding = match Binding::new(purpose, action, request.details) {
                    Ok(binding) => binding,
                    Err(error) => return (Changes::none(), Err(EngineError::from(error))),
                };
                let candidates =
                    key.candidates(verification.id.as_bytes(), &binding.to_bytes(), &code);
                let before = verification.clone();
                let result = verification.check_any(&candidates, &policy, now);
                let changes = if verification == before {
                    Changes::none()
                } else {
                    Changes {
                        verification: Some(verification.clone()),
                        ..Changes::none()
                    }
                };
                let view = engine.view(&verification, now);
                let entered = verification.latest().map(|send| send.destination.clone());
                (
                    changes,
                    result.map(|_| (view, entered)).map_err(EngineError::from),
                )
            })
            .await??;
        let (view, entered) = checked;
        if let Some(destination) = entered {
            self.brake.verified(&destination, now);
        }
        Ok(view)
    }

    /// The verification as its owner may see it.
    pub async fn status(
        &self,
        client: &str,
        id: VerificationId,
    ) -> Result<VerificationView, EngineError> {
        let verification = self.owned(client, id).await?;
        Ok(self.view(&verification, self.clock.now()))
    }

    /// The delivery trail of a verification the caller owns, with the channel-fallback offer and
    /// the queue estimate.
    pub async fn outlook(
        &self,
        client: &str,
        id: VerificationId,
    ) -> Result<DeliveryOutlook, EngineError> {
        let verification = self.owned(client, id).await?;
        self.outlook_of(&verification).await
    }

    async fn outlook_of(
        &self,
        verification: &Verification,
    ) -> Result<DeliveryOutlook, EngineError> {
        let now = self.clock.now();
        let mut attempts = self.store.delivery_trail(verification.id).await?;
        let window = self.settings.fallback.no_receipt_window;
        for attempt in &mut attempts {
            if attempt.status == DeliveryStatus::Submitted && now >= attempt.attempted_at + window {
                attempt.status = DeliveryStatus::Unknown;
                attempt.cause = Some(Cause::Unknown);
            }
        }
        let position = self.store.queue_position(verification.id, now).await?;
        let draining = verification
            .latest()
            .and_then(|send| self.pace.rate(send.channel, &send.destination, now));
        let queue = position.map(|position| {
            // Messages per second: the queue's pace now, else the last minute's.
            let per_second = draining.or_else(|| {
                (position.handed_off_last_minute > 0)
                    .then(|| position.handed_off_last_minute as f64 / 60.0)
            });
            QueueWait {
                ahead: position.ahead,
                estimated_wait: per_second.map(|per_second| {
                    let seconds = position.ahead.saturating_add(1) as f64 / per_second;
                    chrono::Duration::milliseconds((seconds * 1000.0).min(1e12).ceil() as i64)
                }),
            }
        });
        let latest_outbox = attempts.iter().map(|attempt| attempt.outbox_id).max();
        let waiting_newer = matches!((position, latest_outbox), (Some(p), Some(o)) if p.outbox_id > o)
            || (position.is_some() && latest_outbox.is_none());
        let fallback = match (verification.latest(), latest_outbox) {
            (Some(send), Some(outbox)) if !waiting_newer && verification.outcome.is_none() => {
                let latest: Vec<LatestAttempt> = attempts
                    .iter()
                    .filter(|attempt| attempt.outbox_id == outbox)
                    .map(|attempt| LatestAttempt {
                        status: attempt.status,
                        cause: attempt.cause,
                        attempted_at: attempt.attempted_at,
                        updated_at: attempt.updated_at,
                    })
                    .collect();
                self.settings
                    .fallback
                    .offer(send.channel, &send.destination, &latest, now)
            }
            _ => None,
        };
        let pending = verification.status(&self.settings.policy, now) == Status::Pending;
        let explanations = attempts
            .iter()
            .enumerate()
            .map(|(index, attempt)| {
                let cause = attempt.cause?;
                let channel = Channel::parse(&attempt.channel).unwrap_or(Channel::Sms);
                let last_of_its_message = !attempts
                    .iter()
                    .skip(index + 1)
                    .any(|later| later.outbox_id == attempt.outbox_id);
                let still_trying = pending
                    && last_of_its_message
                    && position.is_some_and(|p| p.outbox_id == attempt.outbox_id);
                Some(explain(
                    cause,
                    channel,
                    &self.settings.fallback.order,
                    still_trying,
                ))
            })
            .collect();
        Ok(DeliveryOutlook {
            attempts,
            explanations,
            fallback,
            queue,
        })
    }

    /// Every delivery attempt of a verification the caller owns, oldest first.
    pub async fn deliveries(
        &self,
        client: &str,
        id: VerificationId,
    ) -> Result<Vec<gerbang_store::DeliveryAttempt>, EngineError> {
        self.owned(client, id).await?;
        Ok(self.store.delivery_trail(id).await?)
    }

    /// Ends a pending verification; its codes stop working at once.
    pub async fn cancel(
        &self,
        client: &str,
        id: VerificationId,
    ) -> Result<VerificationView, EngineError> {
        let now = self.clock.now();
        let policy = self.settings.policy.clone();
        let client = client.to_owned();
        let engine = self.clone();
        self.store
            .transact(Some(id), Vec::new(), move |snapshot| {
                let Some(mut verification) = snapshot.verification.filter(|v| v.client == client)
                else {
                    return (Changes::none(), Err(VerificationError::NotFound.into()));
                };
                match verification.cancel(&policy, now) {
                    Ok(()) => {
                        let view = engine.view(&verification, now);
                        // Its messages still queued go with it, in the same transaction.
                        (
                            Changes {
                                withdrawn: vec![verification.id],
                                verification: Some(verification),
                                ..Changes::none()
                            },
                            Ok(view),
                        )
                    }
                    Err(error) => (Changes::none(), Err(error.into())),
                }
            })
            .await?
    }

    async fn owned(&self, client: &str, id: VerificationId) -> Result<Verification, EngineError> {
        self.store
            .verification(id)
            .await?
            .filter(|verification| verification.client == client)
            .ok_or(EngineError::Verification(VerificationError::NotFound))
    }

    fn message(
        &self,
        verification: &Verification,
        index: usize,
        code: &OtpCode,
        now: DateTime<Utc>,
    ) -> OutboxMessage {
        let policy = &self.settings.policy;
        let send = &verification.sends[index.min(verification.sends.len().saturating_sub(1))];
        let text = render_with(
            &self.settings.templates,
            &self.settings.brand,
            verification.locale,
            code,
            policy.lifetime,
            verification
                .action
                .map(|action| (action, verification.action_hint.as_deref())),
        );
        let content = MessageContent::new(
            code,
            verification.locale,
            policy.lifetime,
            verification
                .action
                .map(|action| (action, verification.action_hint.as_deref())),
        );
        OutboxMessage {
            verification: verification.id,
            send_index: u32::try_from(index).unwrap_or(u32::MAX),
            channel: send.channel,
            destination: send.destination.clone(),
            text,
            content: Some(content),
            queued_at: now,
            expires_at: now + policy.hard_cap,
            priority: Priority::Otp,
        }
    }

    pub fn view(&self, verification: &Verification, now: DateTime<Utc>) -> VerificationView {
        let policy = &self.settings.policy;
        let latest = verification.latest();
        VerificationView {
            id: verification.id,
            status: verification.status(policy, now),
            purpose: verification.purpose,
            action: verification.action,
            channel: latest.map_or(Channel::Sms, |send| send.channel),
            destination_masked: latest
                .map(|send| send.destination.masked())
                .unwrap_or_default(),
            created_at: verification.created_at,
            expires_at: verification.expires_at(policy),
            resend_at: self.next_resend_at(verification),
            as_of: now,
            sends: verification.sends.len(),
            attempts_left: policy
                .max_wrong_attempts
                .saturating_sub(verification.wrong_attempts),
            verified_at: match verification.outcome {
                Some(gerbang_domain::verification::Outcome::Verified(at)) => Some(at),
                _ => None,
            },
        }
    }
}

impl<S: Store> VerificationEngine<S> {
    /// When a resend will really be accepted: after the countdown, and — once the flow has sent as
    /// many codes as its cap allows — after the cap's wait (seed 003: "tunggu 30 menit"), not
    /// just after the last step of the countdown ladder.
    fn next_resend_at(&self, verification: &Verification) -> DateTime<Utc> {
        let countdown = verification.next_resend_at(&self.settings.policy);
        let sends: Vec<DateTime<Utc>> = verification.sends.iter().map(|s| s.issued_at).collect();
        self.settings
            .rules
            .iter()
            .filter(|rule| rule.key == KeyKind::Flow)
            .filter_map(|rule| {
                let limit = usize::try_from(rule.limit).ok()?;
                let last = *sends.last()?;
                let at_last = sends.iter().filter(|at| **at > last - rule.window).count();
                if limit == 0 || at_last < limit {
                    return None;
                }
                // The oldest send that must leave the window, or the penalty the cap set.
                let leaving = sends[sends.len() - limit] + rule.window;
                Some(leaving.max(last + rule.penalty))
            })
            .fold(countdown, DateTime::max)
    }
}

/// Where a resend goes: the channel asked for (or the last one) and the destination given (or the
/// last one, when that channel reaches it).
fn resend_target(
    current: &Verification,
    request: &ResendRequest,
) -> Result<(Channel, Destination), EngineError> {
    let last = current
        .latest()
        .ok_or(EngineError::Verification(VerificationError::NotFound))?;
    let channel = request.channel.unwrap_or(last.channel);
    let destination = match &request.destination {
        Some(destination) => destination.clone(),
        None if channel.reaches(&last.destination) => last.destination.clone(),
        // Switching between phone and email needs the other destination.
        None => return Err(VerificationError::ChannelMismatch.into()),
    };
    if !channel.reaches(&destination) {
        return Err(VerificationError::ChannelMismatch.into());
    }
    Ok((channel, destination))
}

fn refused(refusal: RateRefusal) -> EngineError {
    EngineError::RateLimited {
        rule: refusal.rule,
        until: refusal.until,
    }
}

/// Judges every key against its rules; if all pass, records the send on each and returns the new
/// states. Otherwise the refusal that lasts longest (so its instant is truthful for all of them).
fn admit(
    rules: &[RateRule],
    keys: &[RateKey],
    states: Vec<RateState>,
    now: DateTime<Utc>,
) -> Result<Vec<(usize, RateState, DateTime<Utc>)>, RateRefusal> {
    let mut refusal: Option<RateRefusal> = None;
    for (key, state) in keys.iter().zip(&states) {
        if let Some(found) = rate::judge(&rules_for(rules, key.kind), state, now)
            && refusal
                .as_ref()
                .is_none_or(|current| found.until > current.until)
        {
            refusal = Some(found);
        }
    }
    if let Some(refusal) = refusal {
        return Err(refusal);
    }
    Ok(keys
        .iter()
        .zip(states)
        .enumerate()
        .filter_map(|(index, (key, mut state))| {
            let key_rules = rules_for(rules, key.kind);
            if key_rules.is_empty() {
                return None;
            }
            rate::record(&key_rules, &mut state, now);
            let idle = state.idle_after(&key_rules).unwrap_or(now);
            Some((index, state, idle))
        })
        .collect())
}

/// The flow a request belongs to: its purpose (and action) and the best-known subject.
fn flow_key(
    purpose: Purpose,
    action: Option<SensitiveAction>,
    subject: &Subject,
    destination: &Destination,
) -> String {
    let who = match (&subject.account, &subject.nik) {
        (Some(account), _) => format!("account:{account}"),
        (None, Some(nik)) => format!("nik:{}", nik.as_str()),
        (None, None) => format!("to:{}", destination.reveal()),
    };
    let what = action.map_or(purpose.as_str(), SensitiveAction::as_str);
    format!("{what}/{who}")
}

/// Every rate-limit key a send touches.
fn rate_keys(
    destination: &Destination,
    subject: &Subject,
    origin: &Origin,
    flow: &str,
) -> Vec<RateKey> {
    let mut keys = vec![
        RateKey::new(KeyKind::Destination, destination.reveal()),
        RateKey::new(KeyKind::Flow, flow),
    ];
    if let Some(block) = destination.number_block() {
        keys.push(RateKey::new(KeyKind::Prefix, block));
    }
    if let Some(account) = &subject.account {
        keys.push(RateKey::new(KeyKind::Account, account.as_str()));
    }
    if let Some(nik) = &subject.nik {
        keys.push(RateKey::new(KeyKind::Nik, nik.as_str()));
    }
    if let Some(ip) = origin.ip {
        keys.push(RateKey::new(KeyKind::Ip, ip.to_string()));
    }
    if let Some(device) = &origin.device {
        keys.push(RateKey::new(KeyKind::Device, device.as_str()));
    }
    keys
}

/// Parses a step-up's details from the caller's map.
pub fn details(map: Option<BTreeMap<String, String>>) -> Result<ActionDetails, EngineError> {
    Ok(ActionDetails::parse(map.unwrap_or_default())?)
}
