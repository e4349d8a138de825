//! Property test of the rate-limit policy through the whole engine and the backend under test: for
//! random sequences of starts, resends and time steps, no rule's limit or penalty is ever broken, and
//! every refusal's retry instant is truthful (the same request at that instant is not refused by the
//! same rule).
//!
//! The sequences come from a seeded generator (seed = case number, or `GERBANG_PROPERTY_SEED` for one
//! case), and a failure prints the whole history so it can be replayed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use gerbang_core::{
    EngineError, EngineSettings, Origin, ResendRequest, StartRequest, Subject, VerificationEngine,
};
use gerbang_domain::MobileNumber;
use gerbang_domain::verification::code::CodeKey;
use gerbang_domain::verification::purpose::{ActionDetails, Purpose};
use gerbang_domain::verification::rate::{KeyKind, RateRule};
use gerbang_domain::verification::{
    Channel, Destination, Locale, VerificationError, VerificationId,
};
use gerbang_domain::{Clock, ManualClock};
use gerbang_store::Store;
use gerbang_testkit::store_test;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Rules small enough for short random sequences to hit every one of them, with and without penalties.
fn rules() -> Vec<RateRule> {
    let s = Duration::seconds;
    vec![
        RateRule::new(KeyKind::Destination, 3, s(120), s(300)),
        RateRule::new(KeyKind::Prefix, 5, s(300), s(0)),
        RateRule::new(KeyKind::Account, 4, s(600), s(900)),
        RateRule::new(KeyKind::Ip, 6, s(60), s(60)),
        RateRule::new(KeyKind::Device, 5, s(900), s(0)),
        RateRule::new(KeyKind::Flow, 4, s(600), s(600)),
    ]
}

const STEPS: usize = 80;

#[derive(Debug, Clone)]
enum Request {
    Start {
        to: u32,
        account: Option<u32>,
        ip: u8,
        device: Option<u8>,
    },
    Resend {
        verification: usize,
        ip: u8,
        device: Option<u8>,
    },
}

/// What the test knows of a started verification, to derive the keys of its resends.
struct Started {
    id: VerificationId,
    to: u32,
    account: Option<u32>,
}

/// The model: every accepted send per key, and the penalties the rules must be enforcing.
#[derive(Default)]
struct Ledger {
    sends: HashMap<(KeyKind, String), Vec<DateTime<Utc>>>,
    penalties: HashMap<(KeyKind, String, String), DateTime<Utc>>,
}

impl Ledger {
    /// Records an accepted send at `now` and panics if it broke a limit or a running penalty.
    fn accept(&mut self, rules: &[RateRule], keys: &[(KeyKind, String)], now: DateTime<Utc>) {
        for (kind, key) in keys {
            let sends = self.sends.entry((*kind, key.clone())).or_default();
            sends.push(now);
            for rule in rules.iter().filter(|rule| rule.key == *kind) {
                let penalty_key = (*kind, key.clone(), rule.name());
                if let Some(until) = self.penalties.get(&penalty_key) {
                    assert!(
                        now >= *until,
                        "{} let a send through at {now} during its penalty (until {until}) for {key}",
                        rule.name()
                    );
                }
                let in_window = sends
                    .iter()
                    .filter(|sent| **sent > now - rule.window && **sent <= now)
                    .count();
                assert!(
                    in_window <= rule.limit as usize,
                    "{} exceeded: {in_window} sends for {key} in the window ending {now}",
                    rule.name()
                );
                if in_window == rule.limit as usize && rule.penalty > Duration::zero() {
                    let end = now + rule.penalty;
                    let entry = self.penalties.entry(penalty_key).or_insert(end);
                    *entry = (*entry).max(end);
                }
            }
        }
    }
}

fn number(case: u32, to: u32) -> String {
    // A block of 10,000 numbers per case, so the prefix rule sees one block per case.
    format!("0812{:04}{:04}", case % 10_000, to)
}

fn destination(case: u32, to: u32) -> Destination {
    Destination::Phone(MobileNumber::parse(&number(case, to)).unwrap())
}

fn origin(case: u32, ip: u8, device: Option<u8>) -> Origin {
    Origin {
        ip: Some(IpAddr::V4(Ipv4Addr::new(10, (case % 250) as u8, 0, ip))),
        device: device.map(|d| format!("device-{case}-{d}")),
    }
}

/// The keys a send counts against, as the test understands the policy (not as the engine computes
/// them): the destination, its block, the flow (account or else destination), account, IP, device.
fn keys_of(
    case: u32,
    to: u32,
    account: Option<u32>,
    flow_of: (Option<u32>, u32),
    ip: u8,
    device: Option<u8>,
) -> Vec<(KeyKind, String)> {
    let mut keys = vec![
        (KeyKind::Destination, number(case, to)),
        (KeyKind::Prefix, number(case, to)[..8].to_owned()),
        (
            KeyKind::Flow,
            match flow_of {
                (Some(account), _) => format!("account {account}"),
                (None, to) => format!("to {to}"),
            },
        ),
        (KeyKind::Ip, format!("{ip}")),
    ];
    if let Some(account) = account {
        keys.push((KeyKind::Account, format!("{account}")));
    }
    if let Some(device) = device {
        keys.push((KeyKind::Device, format!("{device}")));
    }
    keys
}

fn random_request(rng: &mut StdRng, started: usize) -> Request {
    let ip = rng.random_range(0..3);
    let device = rng.random_bool(0.6).then(|| rng.random_range(0..2));
    if started > 0 && rng.random_bool(0.45) {
        Request::Resend {
            verification: rng.random_range(0..started),
            ip,
            device,
        }
    } else {
        Request::Start {
            to: rng.random_range(0..4),
            account: rng.random_bool(0.5).then(|| rng.random_range(0..2)),
            ip,
            device,
        }
    }
}

/// One case: a random sequence on fresh keys. Returns how many sends were accepted and refused.
async fn run_case<S: Store>(store: S, case: u32) -> (usize, usize) {
    let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::days(i64::from(case));
    let clock = ManualClock::new(t0);
    let rules = rules();
    let engine = VerificationEngine::new(
        store,
        Arc::new(clock.clone()),
        CodeKey::new([3; 32]),
        EngineSettings {
            rules: rules.clone(),
            ..EngineSettings::default()
        },
    );
    let mut rng = StdRng::seed_from_u64(u64::from(case));
    let mut ledger = Ledger::default();
    let mut started: Vec<Started> = Vec::new();
    let mut history: Vec<String> = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    let steps = [1, 5, 30, 59, 60, 61, 120, 299, 300, 601, 900, 3600];
    for _ in 0..STEPS {
        if rng.random_bool(0.35) {
            let by = steps[rng.random_range(0..steps.len())];
            clock.advance(Duration::seconds(by));
            history.push(format!("+{by}s"));
            continue;
        }
        let request = random_request(&mut rng, started.len());
        let retry_when_refused = rng.random_bool(0.5);
        let now = clock.now();
        history.push(format!("{now:?} {request:?}"));
        let (result, keys) = send(&engine, case, &request, &started).await;
        let error = match result {
            Ok(id) => {
                accepted += 1;
                ledger.accept(&rules, &keys, now);
                remember(&mut started, &request, id);
                continue;
            }
            Err(error) => error,
        };
        refused += 1;
        let until = error
            .retry_at()
            .unwrap_or_else(|| panic!("{error:?} without retry_at\n{history:#?}"));
        assert!(
            until > now,
            "retry_at {until} is not in the future\n{history:#?}"
        );
        history.push(format!("  refused: {} until {until:?}", refusal_of(&error)));
        if !retry_when_refused {
            continue;
        }
        // The same request at the promised instant: anything but the same refusal.
        clock.set(until);
        history.push(format!("{until:?} the same again"));
        let (result, keys) = send(&engine, case, &request, &started).await;
        match result {
            Ok(id) => {
                accepted += 1;
                ledger.accept(&rules, &keys, until);
                remember(&mut started, &request, id);
            }
            Err(again) => {
                refused += 1;
                assert_ne!(
                    refusal_of(&again),
                    refusal_of(&error),
                    "refused again for the same reason at the promised instant\n{history:#?}"
                );
                history.push(format!("  refused: {}", refusal_of(&again)));
            }
        }
    }
    (accepted, refused)
}

fn remember(started: &mut Vec<Started>, request: &Request, id: Option<VerificationId>) {
    if let (Some(id), Request::Start { to, account, .. }) = (id, request) {
        started.push(Started {
            id,
            to: *to,
            account: *account,
        });
    }
}

/// A refusal's identity: the rule's name, or the resend countdown.
fn refusal_of(error: &EngineError) -> String {
    match error {
        EngineError::RateLimited { rule, .. } => rule.name(),
        EngineError::Verification(VerificationError::ResendCountdown { .. }) => "countdown".into(),
        other => panic!("unexpected refusal {other:?}"),
    }
}

/// Sends one request; returns the new verification's id for a start, and the keys the test expects
/// it to count against.
async fn send<S: Store>(
    engine: &VerificationEngine<S>,
    case: u32,
    request: &Request,
    started: &[Started],
) -> (
    Result<Option<VerificationId>, EngineError>,
    Vec<(KeyKind, String)>,
) {
    match request {
        Request::Start {
            to,
            account,
            ip,
            device,
        } => {
            let keys = keys_of(case, *to, *account, (*account, *to), *ip, *device);
            let result = engine
                .start(StartRequest {
                    client: "app".into(),
                    purpose: Purpose::Registration,
                    action: None,
                    details: ActionDetails::default(),
                    action_hint: None,
                    channel: Channel::Sms,
                    destination: destination(case, *to),
                    locale: Locale::Id,
                    subject: Subject {
                        account: account.map(|a| format!("account-{case}-{a}")),
                        nik: None,
                    },
                    origin: origin(case, *ip, *device),
                })
                .await
                .map(|view| Some(view.id));
            (result, keys)
        }
        Request::Resend {
            verification,
            ip,
            device,
        } => {
            let first = &started[*verification];
            let keys = keys_of(
                case,
                first.to,
                first.account,
                (first.account, first.to),
                *ip,
                *device,
            );
            let result = engine
                .resend(ResendRequest {
                    client: "app".into(),
                    id: first.id,
                    channel: None,
                    destination: None,
                    origin: origin(case, *ip, *device),
                })
                .await
                .map(|_| None);
            (result, keys)
        }
    }
}

store_test!(random_requests_never_break_a_limit_and_every_retry_after_is_truthful);

async fn random_requests_never_break_a_limit_and_every_retry_after_is_truthful<S: Store>(store: S) {
    let cases: Vec<u32> = match std::env::var("GERBANG_PROPERTY_SEED") {
        Ok(seed) => vec![seed.parse().expect("GERBANG_PROPERTY_SEED is a number")],
        Err(_) => (0..48).collect(),
    };
    let (mut accepted, mut refused) = (0, 0);
    for case in cases {
        let (a, r) = run_case(store.clone(), case).await;
        accepted += a;
        refused += r;
    }
    // The rules are tight enough that a healthy run both accepts and refuses plenty; a run that does
    // neither proves nothing.
    assert!(
        accepted > 200 && refused > 200,
        "accepted {accepted}, refused {refused}"
    );
}
