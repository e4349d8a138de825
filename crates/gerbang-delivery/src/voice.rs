//! Codes read out in a phone call, through an HTTP text-to-speech calling provider.
//!
//! Layout:
//! - [`spoken_digits`] and [`script_with`]: what the call says, worded by the message templates
//!   (`voice.<lang>.txt`, see [`gerbang_domain::verification::template`]): in Indonesian by
//!   default, in English for `Locale::En`, the code digit by digit in words (`satu, dua, tiga`),
//!   said [`VoiceSettings::repeat`] times, with the brand and the warning never to share it.
//! - [`VoiceSettings`] and [`VoiceCourier`]: `POST {url}` with a bearer token and
//!   `{to, caller_id, language, script}`; the answer's `call_id` is the message id.
//!
//! HTTP statuses map as for HTTP SMS ([`crate::http_sms`]): 429 throttled, other 4xx
//! misconfigured, 5xx and timeouts unreachable.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gerbang_core::{Courier, HandOff, HandOffFailure};
use gerbang_domain::delivery::DeliveryStatus;
use gerbang_domain::verification::message::MessageContent;
use gerbang_domain::verification::template::Templates;
use gerbang_domain::verification::{Channel, Locale};
use gerbang_store::OutboxMessage;

use crate::courier::phone_for;
use serde_json::{Value, json};

use crate::http_sms::{
    MAX_ANSWER_BYTES, Redactor, Secret, SetupError, build_client, check_url, read_capped,
    scalar_text, status_failure, transport_failure,
};

const DIGITS_ID: [&str; 10] = [
    "nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan",
];
const DIGITS_EN: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// Most times a call repeats the code, whatever the settings say.
pub const MAX_REPEAT: u8 = 5;

/// The code's digits as words separated by commas (a pause in every text-to-speech engine):
/// `408` → `empat, nol, delapan` (`four, zero, eight` in English). Anything but a digit is left out.
pub fn spoken_digits(code: &str, locale: Locale) -> String {
    let words = match locale {
        Locale::Id => &DIGITS_ID,
        Locale::En => &DIGITS_EN,
    };
    code.chars()
        .filter_map(|c| c.to_digit(10))
        .filter_map(|d| words.get(d as usize).copied())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the call says with the built-in templates; see [`script_with`].
pub fn script(brand: &str, content: &MessageContent, repeat: u8) -> String {
    script_with(Templates::builtin(), brand, content, repeat)
}

/// What the call says: the brand, the code `repeat` times (at least once, at most
/// [`MAX_REPEAT`]), how long it lives, and the warning, in the words of `templates`. A step-up
/// names its action but not the action's hint (digits read next to the code would confuse).
pub fn script_with(
    templates: &Templates,
    brand: &str,
    content: &MessageContent,
    repeat: u8,
) -> String {
    let digits = spoken_digits(&content.code, content.locale);
    templates.voice_script(brand, content, &digits, repeat.clamp(1, MAX_REPEAT))
}

/// One calling provider.
#[derive(Debug, Clone)]
pub struct VoiceSettings {
    /// The provider's call endpoint, e.g. `https://voice.example/v1/calls`.
    pub url: String,
    pub token: Secret,
    /// The number the participant sees calling (registered with the provider).
    pub caller_id: String,
    /// The provider's voice language for Indonesian scripts (`id-ID`) …
    pub language_id: String,
    /// … and for English ones (`en-US`).
    pub language_en: String,
    /// Who is calling, said first (`JKN Mobile`).
    pub brand: String,
    /// Times the code is said; 1 to [`MAX_REPEAT`].
    pub repeat: u8,
    /// How long a request (connect, send, answer) may take.
    pub timeout: Duration,
    /// The words of the call per language; the built-in ones by default.
    pub templates: Arc<Templates>,
}

impl VoiceSettings {
    pub fn new(url: impl Into<String>, token: Secret, caller_id: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token,
            caller_id: caller_id.into(),
            language_id: "id-ID".into(),
            language_en: "en-US".into(),
            brand: "gerbang".into(),
            repeat: 2,
            timeout: Duration::from_secs(10),
            templates: Arc::new(Templates::builtin().clone()),
        }
    }

    fn language(&self, locale: Locale) -> &str {
        match locale {
            Locale::Id => &self.language_id,
            Locale::En => &self.language_en,
        }
    }
}

/// Codes read out in a call.
#[derive(Debug, Clone)]
pub struct VoiceCourier {
    /// The provider's name in the delivery trail, e.g. `voice:acme`.
    pub name: String,
    settings: VoiceSettings,
    http: reqwest::Client,
}

impl VoiceCourier {
    pub fn new(name: impl Into<String>, settings: VoiceSettings) -> Result<Self, SetupError> {
        check_url(&settings.url)?;
        if settings.token.is_empty() {
            return Err(SetupError::Missing("the voice provider's token"));
        }
        let http = build_client(settings.timeout)?;
        Ok(Self {
            name: name.into(),
            settings,
            http,
        })
    }

    pub fn settings(&self) -> &VoiceSettings {
        &self.settings
    }
}

impl Courier for VoiceCourier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn hand_off(
        &self,
        message: &OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<HandOff, HandOffFailure> {
        let number = phone_for(&self.name, Channel::Voice, message)?;
        let Some(content) = &message.content else {
            return Err(HandOffFailure::misconfigured(format!(
                "{}: the message has no content to read out (queued by an older gerbang)",
                self.name
            )));
        };
        let script = script_with(
            &self.settings.templates,
            &self.settings.brand,
            content,
            self.settings.repeat,
        );
        let body = json!({
            "to": number.e164(),
            "caller_id": self.settings.caller_id,
            "language": self.settings.language(content.locale),
            "script": script,
        });
        let response = self
            .http
            .post(&self.settings.url)
            .bearer_auth(self.settings.token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|error| transport_failure(&error, self.settings.timeout))?;
        let status = response.status().as_u16();
        let answer = read_capped(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|error| transport_failure(&error, self.settings.timeout))?;
        let redactor = Redactor::for_message(message)
            .with(&script)
            .with(&spoken_digits(&content.code, content.locale))
            .with(self.settings.token.expose())
            .masking_digit_runs();
        let said = redactor.clean(&String::from_utf8_lossy(&answer), 160);
        if !(200..300).contains(&status) {
            let detail = if said.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {said}")
            };
            return Err(status_failure(status, detail));
        }
        let call_id = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|json| json.get("call_id").and_then(scalar_text))
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty());
        match call_id {
            Some(call_id) => Ok(HandOff {
                at: now,
                message_id: Some(call_id),
                status: DeliveryStatus::Submitted,
            }),
            None => Err(HandOffFailure::unreachable(format!(
                "HTTP {status} without a call_id: {said}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gerbang_domain::verification::purpose::SensitiveAction;

    fn content(code: &str, locale: Locale) -> MessageContent {
        MessageContent {
            code: code.into(),
            locale,
            lifetime_minutes: 5,
            action: None,
            action_hint: None,
        }
    }

    #[test]
    fn digits_are_spoken_one_by_one_in_indonesian() {
        assert_eq!(spoken_digits("408", Locale::Id), "empat, nol, delapan");
        assert_eq!(
            spoken_digits("0123456789", Locale::Id),
            "nol, satu, dua, tiga, empat, lima, enam, tujuh, delapan, sembilan"
        );
    }

    #[test]
    fn digits_are_spoken_in_english_for_english_messages() {
        assert_eq!(spoken_digits("408", Locale::En), "four, zero, eight");
        assert_eq!(spoken_digits("91", Locale::En), "nine, one");
    }

    #[test]
    fn anything_but_digits_is_left_out() {
        assert_eq!(spoken_digits("4-0 8", Locale::Id), "empat, nol, delapan");
        assert_eq!(spoken_digits("", Locale::Id), "");
    }

    #[test]
    fn the_script_says_the_brand_the_code_repeat_times_and_the_warning() {
        let said = script("JKN Mobile", &content("408", Locale::Id), 2);
        assert_eq!(
            said,
            "Halo, ini JKN Mobile. Kode verifikasi Anda adalah: empat, nol, delapan. \
             Sekali lagi, kode Anda: empat, nol, delapan. Kode ini berlaku 5 menit. \
             Jangan berikan kode ini kepada siapa pun, termasuk petugas BPJS."
        );
        assert!(!said.contains("408"));
    }

    #[test]
    fn repeat_is_at_least_once_and_at_most_the_ceiling() {
        let count = |repeat| {
            script("X", &content("12", Locale::En), repeat)
                .matches("one, two")
                .count()
        };
        assert_eq!(count(0), 1);
        assert_eq!(count(3), 3);
        assert_eq!(count(u8::MAX), usize::from(MAX_REPEAT));
    }

    #[test]
    fn a_step_up_names_its_action_without_its_hint() {
        let mut step_up = content("55", Locale::Id);
        step_up.action = Some(SensitiveAction::BankAccountChange);
        step_up.action_hint = Some("****7890".into());
        let said = script("JKN Mobile", &step_up, 1);
        assert!(
            said.contains("untuk ubah rekening bank adalah: lima, lima."),
            "{said}"
        );
        assert!(!said.contains("7890"));
    }

    #[test]
    fn the_default_templates_say_what_gerbang_always_said() {
        for locale in [Locale::Id, Locale::En] {
            for action in [None, Some(SensitiveAction::PhoneChange)] {
                for minutes in [1, 5] {
                    for repeat in [0, 1, 2, 5, 9] {
                        let mut said = content("4081", locale);
                        said.action = action;
                        said.action_hint = action.map(|_| "****7890".into());
                        said.lifetime_minutes = minutes;
                        assert_eq!(
                            script("JKN Mobile", &said, repeat),
                            hard_coded_script("JKN Mobile", &said, repeat)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_operator_template_words_the_call() {
        let templates = Templates::builtin()
            .clone()
            .with_file(
                "voice.id.txt",
                "[plain]\n{brand} menelepon. Kode: {code}.\n[step_up]\n{brand}: {action}, kode {code}.\n\
                 [again]\nUlangi: {code}.\n[closing]\nJangan bagikan.\n",
            )
            .unwrap();
        assert_eq!(
            script_with(&templates, "JKN Mobile", &content("408", Locale::Id), 2),
            "JKN Mobile menelepon. Kode: empat, nol, delapan. Ulangi: empat, nol, delapan. \
             Jangan bagikan."
        );
        assert_eq!(
            script_with(&templates, "JKN Mobile", &content("7", Locale::En), 1),
            script("JKN Mobile", &content("7", Locale::En), 1)
        );
    }

    /// The script as gerbang wrote it before the templates, word for word: the oracle the default
    /// templates must match.
    fn hard_coded_script(brand: &str, content: &MessageContent, repeat: u8) -> String {
        let digits = spoken_digits(&content.code, content.locale);
        let repeat = repeat.clamp(1, MAX_REPEAT);
        let minutes = content.lifetime_minutes;
        let action = content.action.map(|action| action.label());
        let mut text = String::new();
        match content.locale {
            Locale::Id => {
                text.push_str(&format!("Halo, ini {brand}. "));
                match action {
                    Some((label, _)) => text.push_str(&format!(
                        "Kode verifikasi Anda untuk {label} adalah: {digits}. "
                    )),
                    None => text.push_str(&format!("Kode verifikasi Anda adalah: {digits}. ")),
                }
                for _ in 1..repeat {
                    text.push_str(&format!("Sekali lagi, kode Anda: {digits}. "));
                }
                text.push_str(&format!(
                    "Kode ini berlaku {minutes} menit. Jangan berikan kode ini kepada siapa pun, termasuk petugas BPJS."
                ));
            }
            Locale::En => {
                text.push_str(&format!("Hello, this is {brand}. "));
                match action {
                    Some((_, label)) => text.push_str(&format!(
                        "Your verification code for the {label} is: {digits}. "
                    )),
                    None => text.push_str(&format!("Your verification code is: {digits}. ")),
                }
                for _ in 1..repeat {
                    text.push_str(&format!("Again, your code is: {digits}. "));
                }
                let unit = if minutes == 1 { "minute" } else { "minutes" };
                text.push_str(&format!(
                    "The code is valid for {minutes} {unit}. Never share this code with anyone, BPJS staff included."
                ));
            }
        }
        text
    }

    #[test]
    fn the_english_script_speaks_english() {
        let said = script("JKN Mobile", &content("7", Locale::En), 1);
        assert_eq!(
            said,
            "Hello, this is JKN Mobile. Your verification code is: seven. \
             The code is valid for 5 minutes. Never share this code with anyone, BPJS staff included."
        );
    }
}
