//! An SMPP 3.4 client (ESME) bound as a transceiver.
//!
//! [`SmppClient::start`] spawns one task that owns the TCP connection: it binds, sends submits and
//! `enquire_link`s, answers the SMSC's `deliver_sm` (receipts) and `enquire_link`, and when the
//! connection fails it tells every caller still waiting, then reconnects with exponential back-off
//! and jitter. Callers use [`SmppClient::submit`], which
//!
//! - fails at once while the bind is down (the connection was refused or dropped, and no new bind
//!   has been made since), so the caller fails over instead of waiting for an answer that cannot
//!   come; only while the very first bind is under way does it wait, within `response_timeout`,
//! - waits for a slot in the window of outstanding submits (`window`),
//! - respects the per-bind throughput limit (`max_per_second`) and any back-off in force,
//! - on `ESME_RTHROTTLED` or `ESME_RMSGQFUL` backs off and tries again, up to `max_attempts`:
//!   every sender on the bind when refusals of different submits come in a row (the SMSC wants
//!   fewer submits), only this one when the SMSC took others in between (it refuses this number),
//! - returns the SMSC's message id, or why it could not.
//!
//! Receipts arrive as [`SmppEvent::Receipt`] on the event channel, parsed tolerantly
//! ([`gerbang_domain::delivery::Receipt`]); a PDU that does not decode is answered with
//! `generic_nack` and logged, and the bind stays up.

pub mod codec;
pub mod encoding;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use gerbang_domain::delivery::{Receipt, ReceiptTlvs};
use rand::Rng;
use rusmpp::pdus::{BindTransceiver, DeliverSmResp, SubmitSm};
use rusmpp::tlvs::TlvValue;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, InterfaceVersion, MessageType, Npi, RegisteredDelivery, Ton,
};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::codec::Framed;

use codec::LenientCodec;

/// `ESME_RTHROTTLED`: the SMSC wants fewer submits per second.
pub const THROTTLED: u32 = 0x58;
/// `ESME_RMSGQFUL`: the SMSC's queue is full.
pub const QUEUE_FULL: u32 = 0x14;

/// How to reach and use one SMSC bind. `Debug` hides the password.
#[derive(Clone)]
pub struct SmppConfig {
    /// `host:port`.
    pub address: String,
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    /// The sender shown to the participant (alphanumeric, e.g. the brand).
    pub source_addr: String,
    /// Submits outstanding at once.
    pub window: usize,
    /// Submits per second on this bind; 0: no limit of ours.
    pub max_per_second: u32,
    pub enquire_link_every: Duration,
    /// How long an answer (to a bind, submit or enquire_link) may take.
    pub response_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// First back-off after a throttling answer; doubles per consecutive answer.
    pub throttle_backoff: Duration,
    /// Tries of one submit, counting retries after throttling.
    pub max_attempts: u32,
}

impl std::fmt::Debug for SmppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppConfig")
            .field("address", &self.address)
            .field("system_id", &self.system_id)
            .field("password", &"***")
            .field("source_addr", &self.source_addr)
            .field("window", &self.window)
            .field("max_per_second", &self.max_per_second)
            .finish_non_exhaustive()
    }
}

impl SmppConfig {
    pub fn new(
        address: impl Into<String>,
        system_id: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            address: address.into(),
            system_id: system_id.into(),
            password: password.into(),
            system_type: String::new(),
            source_addr: "gerbang".into(),
            window: 10,
            max_per_second: 0,
            enquire_link_every: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            throttle_backoff: Duration::from_millis(200),
            max_attempts: 5,
        }
    }
}

/// Why a submit did not get a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The SMSC answered with this `command_status`.
    #[error("the SMSC refused the submit with command_status {0:#04x}")]
    Refused(u32),
    /// The connection ended with the submit outstanding: the SMSC may or may not have taken it.
    #[error("the connection to the SMSC ended before it answered")]
    Disconnected,
    /// No answer in time (the SMSC is silent, or the first bind took too long).
    #[error("the SMSC did not answer in time")]
    Timeout,
    /// Not bound: the connection was refused or dropped and no bind has been made since. Nothing
    /// was sent.
    #[error("not bound to the SMSC (the connection was refused or dropped); nothing was sent")]
    Unbound,
    /// The text or number cannot be put in a PDU.
    #[error("cannot build the submit: {0}")]
    Invalid(String),
    /// The client was shut down.
    #[error("the SMPP client is closed")]
    Closed,
}

impl SubmitError {
    /// The `command_status`, when the SMSC gave one.
    pub fn command_status(&self) -> Option<u32> {
        match self {
            Self::Refused(status) => Some(*status),
            _ => None,
        }
    }
}

/// A submit the SMSC took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub message_id: String,
    /// 1 unless throttling made us try again.
    pub attempts: u32,
}

/// What the bind reports besides answers to submits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmppEvent {
    Bound,
    /// The connection ended or a bind was refused; reconnecting.
    Unbound {
        reason: String,
    },
    Receipt(Receipt),
}

struct Job {
    to: String,
    text: String,
    reply: oneshot::Sender<Result<String, SubmitError>>,
}

/// Shared pacing: when the next submit may go, and any back-off in force.
#[derive(Debug)]
struct Pace {
    next_slot: Instant,
    paused_until: Instant,
    /// Submits refused (throttled, queue full) on their first try since the SMSC last took one.
    refused_in_a_row: u32,
}

/// Whether submits can go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// The first bind is under way.
    Connecting,
    Bound,
    /// The last connection or bind failed; reconnecting with back-off.
    Down,
}

/// The handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct SmppClient {
    jobs: mpsc::Sender<Job>,
    link: watch::Receiver<Link>,
    window: Arc<Semaphore>,
    pace: Arc<Mutex<Pace>>,
    config: Arc<SmppConfig>,
    stop: Arc<watch::Sender<bool>>,
}

impl SmppClient {
    /// Starts the connection task; events (binds, receipts) arrive on the returned receiver.
    pub fn start(config: SmppConfig) -> (Self, mpsc::Receiver<SmppEvent>) {
        let (jobs, job_rx) = mpsc::channel(config.window.max(1) * 4);
        let (events, event_rx) = mpsc::channel(4096);
        let (stop, stop_rx) = watch::channel(false);
        let (link_tx, link) = watch::channel(Link::Connecting);
        let config = Arc::new(config);
        tokio::spawn(connection_loop(
            config.clone(),
            job_rx,
            events,
            stop_rx,
            link_tx,
        ));
        let now = Instant::now();
        let client = Self {
            jobs,
            link,
            window: Arc::new(Semaphore::new(config.window.max(1))),
            pace: Arc::new(Mutex::new(Pace {
                next_slot: now,
                paused_until: now,
                refused_in_a_row: 0,
            })),
            config,
            stop: Arc::new(stop),
        };
        (client, event_rx)
    }

    /// Unbinds and stops reconnecting.
    /// The bind's settings (its window and submits per second set the queue estimate).
    pub fn config(&self) -> &SmppConfig {
        &self.config
    }

    pub fn close(&self) {
        let _ = self.stop.send(true);
    }

    /// Submits one SMS to `to` (digits, international form without `+`, e.g. `6281234567890`).
    pub async fn submit(&self, to: &str, text: &str) -> Result<Submitted, SubmitError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.submit_once(to, text).await {
                Err(SubmitError::Refused(status))
                    if (status == THROTTLED || status == QUEUE_FULL)
                        && attempt < self.config.max_attempts =>
                {
                    let wait = self.back_off_time(attempt);
                    if self.refused_for_the_bind(attempt) {
                        self.pause(wait);
                        tracing::debug!(status, attempt, "SMSC asks us to slow down; backing off");
                    } else {
                        // The SMSC takes other submits and refuses this one: its number's
                        // trouble, so only this submit waits.
                        tokio::time::sleep(wait).await;
                    }
                }
                Ok(message_id) => {
                    if let Ok(mut pace) = self.pace.lock() {
                        pace.refused_in_a_row = 0;
                    }
                    return Ok(Submitted {
                        message_id,
                        attempts: attempt,
                    });
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Whether a refusal (throttled, queue full) is about the bind's pace rather than one number:
    /// refusals of two different submits in a row, with nothing taken in between. A number the
    /// SMSC keeps refusing while it takes others must not hold every code back.
    fn refused_for_the_bind(&self, attempt: u32) -> bool {
        let Ok(mut pace) = self.pace.lock() else {
            return true;
        };
        if attempt == 1 {
            pace.refused_in_a_row += 1;
        }
        pace.refused_in_a_row >= 2
    }

    /// `throttle_backoff × 2^(attempt-1)`, with jitter.
    fn back_off_time(&self, attempt: u32) -> Duration {
        let base = self.config.throttle_backoff.as_millis() as u64;
        let factor = 1u64 << attempt.saturating_sub(1).min(6);
        let millis = base.saturating_mul(factor);
        let jitter = rand::rng().random_range(0..=millis / 4 + 1);
        Duration::from_millis(millis + jitter)
    }

    /// Pauses every sender on this bind for `wait`.
    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        if let Ok(mut pace) = self.pace.lock() {
            pace.paused_until = pace.paused_until.max(until);
        }
    }

    /// When this submit may go: after any back-off, and one slot after the previous one.
    fn slot(&self) -> Instant {
        let now = Instant::now();
        let Ok(mut pace) = self.pace.lock() else {
            return now;
        };
        let earliest = now.max(pace.paused_until);
        if self.config.max_per_second == 0 {
            return earliest;
        }
        let slot = earliest.max(pace.next_slot);
        pace.next_slot = slot + Duration::from_secs(1) / self.config.max_per_second;
        slot
    }

    /// Fails at once unless bound; waits (until `deadline`) only for the first bind.
    async fn bound(&self, deadline: Instant) -> Result<(), SubmitError> {
        let mut link = self.link.clone();
        let state = tokio::time::timeout_at(deadline, link.wait_for(|l| *l != Link::Connecting))
            .await
            .map_err(|_| SubmitError::Timeout)?
            .map(|state| *state)
            .map_err(|_| SubmitError::Closed)?;
        match state {
            Link::Bound => Ok(()),
            Link::Connecting | Link::Down => Err(SubmitError::Unbound),
        }
    }

    async fn submit_once(&self, to: &str, text: &str) -> Result<String, SubmitError> {
        let deadline = Instant::now() + self.config.response_timeout;
        self.bound(deadline).await?;
        let permit = tokio::time::timeout_at(deadline, self.window.acquire())
            .await
            .map_err(|_| SubmitError::Timeout)?
            .map_err(|_| SubmitError::Closed)?;
        tokio::time::sleep_until(self.slot()).await;
        // The bind may have gone down while this waited for the window or a slot.
        self.bound(deadline).await?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            to: to.to_owned(),
            text: text.to_owned(),
            reply,
        };
        // The answer's own deadline starts when the job is sent, so time spent waiting for the
        // window or a slot is not counted against the SMSC.
        let deadline = Instant::now() + self.config.response_timeout;
        tokio::time::timeout_at(deadline, self.jobs.send(job))
            .await
            .map_err(|_| SubmitError::Timeout)?
            .map_err(|_| SubmitError::Closed)?;
        let result = tokio::time::timeout_at(deadline, answer)
            .await
            .map_err(|_| SubmitError::Timeout)?
            .map_err(|_| SubmitError::Disconnected)?;
        drop(permit);
        result
    }
}

/// Connect, bind, serve; on failure tell the waiting callers, back off, and again.
async fn connection_loop(
    config: Arc<SmppConfig>,
    mut jobs: mpsc::Receiver<Job>,
    events: mpsc::Sender<SmppEvent>,
    mut stop: watch::Receiver<bool>,
    link: watch::Sender<Link>,
) {
    let mut delay = config.reconnect_min;
    loop {
        if *stop.borrow() {
            return;
        }
        let ended = match connect_and_bind(&config).await {
            Ok(framed) => {
                delay = config.reconnect_min;
                link.send_replace(Link::Bound);
                let _ = events.send(SmppEvent::Bound).await;
                let reason = serve(&config, framed, &mut jobs, &events, &mut stop).await;
                if *stop.borrow() {
                    return;
                }
                reason
            }
            Err(reason) => reason,
        };
        link.send_replace(Link::Down);
        // Submits queued but never sent: their callers fail over now rather than when their
        // answer's time runs out.
        while let Ok(job) = jobs.try_recv() {
            let _ = job.reply.send(Err(SubmitError::Unbound));
        }
        tracing::warn!(address = %config.address, reason = %ended, "SMPP bind down; reconnecting");
        let _ = events.send(SmppEvent::Unbound { reason: ended }).await;
        let jitter = rand::rng().random_range(0..=delay.as_millis() as u64 / 4 + 1);
        let wake = tokio::time::sleep(delay + Duration::from_millis(jitter));
        tokio::pin!(wake);
        loop {
            tokio::select! {
                _ = &mut wake => break,
                _ = stop.changed() => return,
                // One that slipped in as the bind went down.
                job = jobs.recv() => match job {
                    Some(job) => { let _ = job.reply.send(Err(SubmitError::Unbound)); }
                    None => return,
                },
            }
        }
        delay = (delay * 2).min(config.reconnect_max);
    }
}

type Connection = Framed<TcpStream, LenientCodec>;

fn octets<const MIN: usize, const MAX: usize>(
    value: &str,
) -> Result<COctetString<MIN, MAX>, String> {
    COctetString::from_str(value).map_err(|e| format!("`{value}`: {e}"))
}

async fn connect_and_bind(config: &SmppConfig) -> Result<Connection, String> {
    let timeout = config.response_timeout;
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(&config.address))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let mut framed = Framed::new(tcp, LenientCodec::default());
    let bind = BindTransceiver::builder()
        .system_id(octets(&config.system_id)?)
        .password(octets(&config.password)?)
        .system_type(octets(&config.system_type)?)
        .interface_version(InterfaceVersion::Smpp3_4)
        .addr_ton(Ton::Unknown)
        .addr_npi(Npi::Unknown)
        .address_range(COctetString::empty())
        .build();
    framed
        .send(Command::new(CommandStatus::EsmeRok, 1, bind))
        .await
        .map_err(|e| format!("send bind: {e}"))?;
    let answer = tokio::time::timeout(timeout, framed.next())
        .await
        .map_err(|_| "no answer to bind".to_owned())?
        .ok_or_else(|| "connection closed during bind".to_owned())?
        .map_err(|e| format!("read: {e}"))?
        .map_err(|bad| format!("undecodable bind answer: {}", bad.reason))?;
    match (answer.id(), answer.status()) {
        (CommandId::BindTransceiverResp, CommandStatus::EsmeRok) => Ok(framed),
        (id, status) => Err(format!(
            "bind refused: {id:?} command_status {:#04x}",
            u32::from(status)
        )),
    }
}

fn submit_pdu(config: &SmppConfig, job: &Job) -> Result<SubmitSm, String> {
    let encoded = encoding::encode(&job.text);
    let source_ton = if is_numeric_address(&config.source_addr) {
        Ton::International
    } else {
        Ton::Alphanumeric
    };
    Ok(SubmitSm::builder()
        .source_addr_ton(source_ton)
        .source_addr_npi(if source_ton == Ton::International {
            Npi::Isdn
        } else {
            Npi::Unknown
        })
        .source_addr(octets(&config.source_addr)?)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(octets(job.to.trim_start_matches('+'))?)
        .esm_class(EsmClass::from(0u8))
        .registered_delivery(RegisteredDelivery::from(1u8))
        .data_coding(DataCoding::from(encoded.data_coding))
        .short_message(OctetString::from_vec(encoded.bytes).map_err(|e| format!("text: {e}"))?)
        .build())
}

fn is_numeric_address(source: &str) -> bool {
    !source.is_empty()
        && source
            .trim_start_matches('+')
            .chars()
            .all(|c| c.is_ascii_digit())
}

/// The receipt carried by a `deliver_sm`, if it is one.
fn receipt_of(pdu: &rusmpp::pdus::DeliverSm) -> Option<Result<Receipt, String>> {
    if pdu.esm_class.message_type != MessageType::ShortMessageContainsMCDeliveryReceipt {
        return None;
    }
    let mut tlvs = ReceiptTlvs::default();
    for tlv in pdu.tlvs() {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => {
                tlvs.receipted_message_id = Some(id.to_string());
            }
            Some(TlvValue::MessageState(state)) => tlvs.message_state = Some(u8::from(*state)),
            Some(TlvValue::NetworkErrorCode(code)) => {
                tlvs.network_error = Some((u8::from(code.network_type), code.error_code));
            }
            _ => {}
        }
    }
    Some(Receipt::parse(pdu.short_message().as_ref(), &tlvs).map_err(|e| e.to_string()))
}

/// One bound session; returns why it ended.
async fn serve(
    config: &SmppConfig,
    framed: Connection,
    jobs: &mut mpsc::Receiver<Job>,
    events: &mpsc::Sender<SmppEvent>,
    stop: &mut watch::Receiver<bool>,
) -> String {
    let (mut sink, mut stream) = framed.split();
    let mut sequence: u32 = 1;
    let mut next_sequence = move || {
        sequence = sequence % 0x7FFF_FFFF + 1;
        sequence
    };
    let mut pending: HashMap<u32, (Instant, oneshot::Sender<Result<String, SubmitError>>)> =
        HashMap::new();
    let mut enquire = tokio::time::interval(config.enquire_link_every);
    enquire.reset();
    let mut sweep = tokio::time::interval(Duration::from_millis(250));
    // An enquire_link sent and not yet answered: when it was sent.
    let mut link_check: Option<(u32, Instant)> = None;
    let reason = loop {
        tokio::select! {
            _ = stop.changed() => {
                let seq = next_sequence();
                let _ = sink.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind)).await;
                break "closed".to_owned();
            }
            job = jobs.recv() => {
                let Some(job) = job else { break "client dropped".to_owned() };
                // Its caller gave up waiting (it was queued while the bind was down): sending it
                // now would deliver a code the worker has already retried or dropped.
                if job.reply.is_closed() {
                    continue;
                }
                let pdu = match submit_pdu(config, &job) {
                    Ok(pdu) => pdu,
                    Err(reason) => {
                        let _ = job.reply.send(Err(SubmitError::Invalid(reason)));
                        continue;
                    }
                };
                let seq = next_sequence();
                if let Err(error) = sink.send(Command::new(CommandStatus::EsmeRok, seq, pdu)).await {
                    let _ = job.reply.send(Err(SubmitError::Disconnected));
                    break format!("send: {error}");
                }
                pending.insert(seq, (Instant::now(), job.reply));
            }
            incoming = stream.next() => {
                let command = match incoming {
                    None => break "the SMSC closed the connection".to_owned(),
                    Some(Err(error)) => break format!("read: {error}"),
                    Some(Ok(Err(bad))) => {
                        tracing::warn!(command_id = bad.command_id, seq = bad.sequence_number, reason = %bad.reason, "undecodable PDU from the SMSC");
                        if bad.command_id & 0x8000_0000 == 0 {
                            let _ = sink.send(Command::new(CommandStatus::EsmeRinvcmdlen, bad.sequence_number, Pdu::GenericNack)).await;
                        } else if let Some((_, reply)) = pending.remove(&bad.sequence_number) {
                            // An answer we cannot read: the SMSC may have taken the message.
                            let _ = reply.send(Err(SubmitError::Disconnected));
                        }
                        continue;
                    }
                    Some(Ok(Ok(command))) => command,
                };
                let seq = command.sequence_number();
                let status = u32::from(command.status());
                match (command.id(), command.pdu()) {
                    (CommandId::SubmitSmResp, pdu) => {
                        if let Some((_, reply)) = pending.remove(&seq) {
                            let answer = match pdu {
                                Some(Pdu::SubmitSmResp(resp)) if status == 0 => Ok(resp.message_id().to_string()),
                                _ if status == 0 => Err(SubmitError::Refused(0xFF)),
                                _ => Err(SubmitError::Refused(status)),
                            };
                            let _ = reply.send(answer);
                        }
                    }
                    (CommandId::GenericNack, _) => {
                        if let Some((_, reply)) = pending.remove(&seq) {
                            let _ = reply.send(Err(SubmitError::Refused(status)));
                        }
                    }
                    (CommandId::DeliverSm, Some(Pdu::DeliverSm(deliver))) => {
                        let receipt = receipt_of(deliver);
                        let ack = DeliverSmResp::builder().message_id(COctetString::empty()).build();
                        if let Err(error) = sink.send(Command::new(CommandStatus::EsmeRok, seq, ack)).await {
                            break format!("send: {error}");
                        }
                        match receipt {
                            Some(Ok(receipt)) => {
                                let _ = events.send(SmppEvent::Receipt(receipt)).await;
                            }
                            Some(Err(reason)) => tracing::warn!(%reason, "unreadable delivery receipt"),
                            None => tracing::debug!("a deliver_sm that is not a receipt; ignored"),
                        }
                    }
                    (CommandId::EnquireLink, _) => {
                        if let Err(error) = sink.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLinkResp)).await {
                            break format!("send: {error}");
                        }
                    }
                    (CommandId::EnquireLinkResp, _) if link_check.is_some_and(|(sent, _)| sent == seq) => {
                        link_check = None;
                    }
                    (CommandId::Unbind, _) => {
                        let _ = sink.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp)).await;
                        break "the SMSC unbound".to_owned();
                    }
                    (id, _) if u32::from(id) & 0x8000_0000 == 0 => {
                        let _ = sink.send(Command::new(CommandStatus::EsmeRinvcmdid, seq, Pdu::GenericNack)).await;
                    }
                    _ => {}
                }
            }
            _ = enquire.tick() => {
                if link_check.is_none() {
                    let seq = next_sequence();
                    if let Err(error) = sink.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLink)).await {
                        break format!("send: {error}");
                    }
                    link_check = Some((seq, Instant::now()));
                }
            }
            _ = sweep.tick() => {
                let now = Instant::now();
                if link_check.is_some_and(|(_, sent)| now - sent > config.response_timeout) {
                    break "no answer to enquire_link".to_owned();
                }
                let late: Vec<u32> = pending
                    .iter()
                    .filter(|(_, (sent, _))| now - *sent > config.response_timeout)
                    .map(|(seq, _)| *seq)
                    .collect();
                for seq in late {
                    if let Some((_, reply)) = pending.remove(&seq) {
                        let _ = reply.send(Err(SubmitError::Timeout));
                    }
                }
            }
        }
    };
    for (_, (_, reply)) in pending.drain() {
        let _ = reply.send(Err(SubmitError::Disconnected));
    }
    reason
}
