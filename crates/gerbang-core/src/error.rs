//! Every way the engine can say no, with a stable code, Indonesian and English messages and, where
//! there is one, the instant from which the same request may succeed.

use chrono::{DateTime, FixedOffset, Utc};
use gerbang_domain::Explain;
use gerbang_domain::verification::code::OtpCodeError;
use gerbang_domain::verification::purpose::BindingError;
use gerbang_domain::verification::rate::{KeyKind, RateRule};
use gerbang_domain::verification::{Channel, VerificationError};
use gerbang_store::StoreError;

/// Why the engine refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Verification(#[from] VerificationError),
    #[error(transparent)]
    Binding(#[from] BindingError),
    #[error(transparent)]
    Code(#[from] OtpCodeError),
    /// A rate-limit rule refuses until `until`.
    #[error("rate limited by {} until {until}", rule.name())]
    RateLimited {
        rule: RateRule,
        until: DateTime<Utc>,
    },
    /// Codes to this number's block are held: it looks pumped (many codes, almost none entered).
    #[error("the number block is suspended until {until}")]
    DestinationSuspended { until: DateTime<Utc> },
    /// The outbox is so long that this code would wait too much of its life in it; try at `until`.
    #[error("the queue is full: a new code would wait {wait}")]
    QueueFull {
        wait: chrono::Duration,
        until: DateTime<Utc>,
    },
    /// Today's budget for this channel (or for every provider carrying it) is spent.
    #[error("the daily budget for {} is spent until {until}", channel.as_str())]
    BudgetExhausted {
        channel: Channel,
        until: DateTime<Utc>,
    },
    /// Our fault: the store failed. The caller may retry; nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    /// The instant from which the same request may succeed.
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::RateLimited { until, .. }
            | Self::DestinationSuspended { until }
            | Self::QueueFull { until, .. }
            | Self::BudgetExhausted { until, .. } => Some(*until),
            Self::Verification(error) => error.retry_at(),
            _ => None,
        }
    }

    /// The rule behind a rate-limit refusal.
    pub fn rule(&self) -> Option<String> {
        match self {
            Self::RateLimited { rule, .. } => Some(rule.name()),
            _ => None,
        }
    }
}

/// `14:05 WIB (22-11-2026)`: Western Indonesian Time, where most participants live; the API also
/// returns the absolute instant for apps that know the participant's zone. With the date: a
/// 24-hour penalty ends at a time that has already passed today.
fn wib(at: DateTime<Utc>) -> String {
    wib_as(at, chrono::Duration::minutes(1), "%H:%M WIB (%d-%m-%Y)")
}

/// `14:05:30 WIB`: a queue that drains in seconds is retried to the second.
fn wib_seconds(at: DateTime<Utc>) -> String {
    wib_as(at, chrono::Duration::seconds(1), "%H:%M:%S WIB")
}

/// `at` rounded up to `unit` (someone told "after 14:05" is never still refused at 14:05), on
/// the WIB clock in `format`.
fn wib_as(at: DateTime<Utc>, unit: chrono::Duration, format: &str) -> String {
    let at = gerbang_domain::round_up(at, unit);
    FixedOffset::east_opt(7 * 3600).map_or_else(
        || at.format("%H:%M UTC").to_string(),
        |zone| at.with_timezone(&zone).format(format).to_string(),
    )
}

/// A wait in whole minutes, rounded up (Indonesian, English).
fn minutes(wait: chrono::Duration) -> (String, String) {
    let minutes = (wait.num_seconds().max(0) + 59) / 60;
    match minutes {
        0 | 1 => ("1 menit".into(), "a minute".into()),
        n => (format!("{n} menit"), format!("{n} minutes")),
    }
}

/// A channel as a participant calls it (Indonesian, English).
fn channel_name(channel: Channel) -> (&'static str, &'static str) {
    match channel {
        Channel::Sms => ("SMS", "SMS"),
        Channel::Email => ("email", "email"),
        Channel::Whatsapp => ("WhatsApp", "WhatsApp"),
        Channel::Voice => ("panggilan suara", "voice call"),
    }
}

impl Explain for EngineError {
    fn code(&self) -> &'static str {
        match self {
            Self::Verification(error) => error.code(),
            Self::Binding(error) => error.code(),
            Self::Code(error) => error.code(),
            Self::RateLimited { rule, .. } if rule.key == KeyKind::Flow => "resend_limit_reached",
            Self::RateLimited { .. } => "rate_limited",
            Self::DestinationSuspended { .. } => "destination_suspended",
            Self::QueueFull { .. } => "queue_full",
            Self::BudgetExhausted { .. } => "budget_exhausted",
            Self::Store(_) => "temporarily_unavailable",
        }
    }

    fn message_id(&self) -> String {
        match self {
            Self::Verification(error) => error.message_id(),
            Self::Binding(error) => error.message_id(),
            Self::Code(error) => error.message_id(),
            Self::RateLimited { rule, until } if rule.key == KeyKind::Flow => format!(
                "Kode sudah dikirim ulang terlalu sering. Coba lagi pukul {}.",
                wib(*until)
            ),
            Self::RateLimited { rule, until } => format!(
                "Terlalu banyak permintaan kode untuk {}. Coba lagi pukul {}.",
                rule.key.noun().0,
                wib(*until)
            ),
            Self::DestinationSuspended { until } => format!(
                "Pengiriman kode ke rentang nomor ini ditahan sementara karena banyak kode tidak pernah dipakai. Coba lagi pukul {} atau hubungi Care Center 165.",
                wib(*until)
            ),
            Self::QueueFull { wait, until } => format!(
                "Permintaan kode sedang sangat banyak: kode yang diminta sekarang baru terkirim sekitar {} lagi, terlalu lama untuk dipakai. Silakan coba lagi pukul {}.",
                minutes(*wait).0,
                wib_seconds(*until)
            ),
            Self::BudgetExhausted { channel, until } => format!(
                "Kuota pengiriman kode lewat {} untuk hari ini sudah habis. Pilih cara pengiriman lain atau coba lagi pukul {}.",
                channel_name(*channel).0,
                wib(*until)
            ),
            Self::Store(_) => "Layanan sedang sibuk. Silakan coba lagi sebentar lagi.".into(),
        }
    }

    fn message_en(&self) -> String {
        match self {
            Self::Verification(error) => error.message_en(),
            Self::Binding(error) => error.message_en(),
            Self::Code(error) => error.message_en(),
            Self::RateLimited { rule, until } if rule.key == KeyKind::Flow => format!(
                "The code was resent too often. Try again at {}.",
                wib(*until)
            ),
            Self::RateLimited { rule, until } => format!(
                "Too many code requests for {}. Try again at {}.",
                rule.key.noun().1,
                wib(*until)
            ),
            Self::DestinationSuspended { until } => format!(
                "Codes to this number range are held for now because many codes were never used. Try again at {} or call the Care Center on 165.",
                wib(*until)
            ),
            Self::QueueFull { wait, until } => format!(
                "Very many codes are being requested right now: a new code would only go out in about {}, too late to use. Please try again at {}.",
                minutes(*wait).1,
                wib_seconds(*until)
            ),
            Self::BudgetExhausted { channel, until } => format!(
                "Today's allowance for sending codes by {} is used up. Choose another way to receive the code or try again at {}.",
                channel_name(*channel).1,
                wib(*until)
            ),
            Self::Store(_) => "The service is busy. Please try again shortly.".into(),
        }
    }
}
