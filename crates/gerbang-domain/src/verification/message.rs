//! The text that carries a code: one SMS (at most 140 bytes, what Android's SMS Retriever reads),
//! naming the brand (an Indonesian operator rule since 2024), warning against sharing the code, and
//! ending with the `@domain #code` line that WebOTP and iOS AutoFill read (research/domain.md §5).
//! Its words come from the SMS templates ([`super::template`]); fitting it into one SMS is done here.

use chrono::Duration;

use super::Locale;
use super::code::OtpCode;
use super::purpose::SensitiveAction;
use super::template::{Templates, action_label};

/// Longest message, in bytes, that the Android SMS Retriever accepts.
pub const MAX_SMS_BYTES: usize = 140;

/// Most bytes of the brand an SMS names; the rest is cut (the templates are checked with a brand
/// this long).
pub const MAX_BRAND_BYTES: usize = 16;

/// How the deployment signs its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBrand {
    /// Shown first, e.g. `JKN Mobile`; at most [`MAX_BRAND_BYTES`] bytes are used.
    pub name: String,
    /// The web origin's host for the autofill line (`@host #code`); empty: no such line.
    pub webotp_host: String,
    /// The 11-character Android app hash; empty: none.
    pub app_hash: String,
}

impl Default for MessageBrand {
    fn default() -> Self {
        Self {
            name: "gerbang".into(),
            webotp_host: String::new(),
            app_hash: String::new(),
        }
    }
}

/// What a message says, kept apart from its SMS text so that providers of other channels (an email,
/// a WhatsApp authentication template, a voice call reading the digits) can render it their way.
/// It carries the code, so it lives only inside the sealed outbox message and its `Debug` hides it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageContent {
    pub code: String,
    pub locale: Locale,
    /// How long the code lives after hand-off, in whole minutes.
    pub lifetime_minutes: u32,
    /// For a step-up: the action and its hint (e.g. the last digits of a bank account).
    pub action: Option<SensitiveAction>,
    pub action_hint: Option<String>,
}

impl std::fmt::Debug for MessageContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageContent")
            .field("code", &"***")
            .field("locale", &self.locale)
            .field("lifetime_minutes", &self.lifetime_minutes)
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl MessageContent {
    pub fn new(
        code: &OtpCode,
        locale: Locale,
        lifetime: Duration,
        action: Option<(SensitiveAction, Option<&str>)>,
    ) -> Self {
        Self {
            code: code.reveal().to_owned(),
            locale,
            lifetime_minutes: u32::try_from(lifetime.num_minutes().max(1)).unwrap_or(u32::MAX),
            action: action.map(|(action, _)| action),
            action_hint: action.and_then(|(_, hint)| hint).map(str::to_owned),
        }
    }

    /// The action's label in the message's language, with its hint: `ubah rekening bank ****7890`.
    pub fn action_label(&self) -> Option<String> {
        let action = self.action?;
        let (id, en) = action.label();
        let label = match self.locale {
            Locale::Id => id,
            Locale::En => en,
        };
        Some(match &self.action_hint {
            Some(hint) => format!("{label} {hint}"),
            None => label.to_owned(),
        })
    }
}

/// Renders the SMS for one code with the built-in templates; see [`render_with`].
pub fn render(
    brand: &MessageBrand,
    locale: Locale,
    code: &OtpCode,
    lifetime: Duration,
    action: Option<(SensitiveAction, Option<&str>)>,
) -> String {
    render_with(Templates::builtin(), brand, locale, code, lifetime, action)
}

/// Renders the SMS for one code: the template's text (`[step_up]` for an action, else `[plain]`),
/// then, when configured, the app hash after a space and the autofill line `@host #code` as the
/// last line. Optional parts (the action's hint, the app hash, the autofill line) are dropped, in
/// that order, until the text fits in one SMS. [`Templates`] refuses any template that would not
/// fit with all three dropped, so the brand, the code and the warning always go out.
pub fn render_with(
    templates: &Templates,
    brand: &MessageBrand,
    locale: Locale,
    code: &OtpCode,
    lifetime: Duration,
    action: Option<(SensitiveAction, Option<&str>)>,
) -> String {
    let name = brand_name(&brand.name);
    let minutes = u64::try_from(lifetime.num_minutes().max(1)).unwrap_or(1);
    let code = code.reveal();
    let label = action.map(|(action, _)| action_label(action, locale));
    let mut hint = action.and_then(|(_, hint)| hint);
    let mut app_hash = Some(brand.app_hash.as_str()).filter(|hash| !hash.is_empty());
    let mut webotp = Some(brand.webotp_host.as_str()).filter(|host| !host.is_empty());
    loop {
        let action = label.map(|label| match hint {
            Some(hint) => format!("{label} {hint}"),
            None => label.to_owned(),
        });
        let mut text = templates.sms_body(locale, name, code, minutes, action.as_deref());
        if let Some(hash) = app_hash {
            text.push(' ');
            text.push_str(hash);
        }
        if let Some(host) = webotp {
            text.push_str(&format!("\n@{host} #{code}"));
        }
        if text.len() <= MAX_SMS_BYTES {
            return text;
        }
        if hint.take().is_some() {
            continue;
        }
        if app_hash.take().is_some() {
            continue;
        }
        if webotp.take().is_some() {
            continue;
        }
        return text;
    }
}

/// The brand as an SMS names it: its first [`MAX_BRAND_BYTES`] bytes, cut at a character.
fn brand_name(name: &str) -> &str {
    let mut end = name.len().min(MAX_BRAND_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::code::CodeLength;
    use proptest::prelude::*;

    fn code() -> OtpCode {
        OtpCode::parse("12345678", CodeLength::new(8).unwrap()).unwrap()
    }

    #[test]
    fn every_variant_fits_one_sms_with_a_long_brand_and_every_extra() {
        let brand = MessageBrand {
            name: "BPJS Ketenagakerjaan".into(),
            webotp_host: "jmo.bpjsketenagakerjaan.go.id".into(),
            app_hash: "FA+9qCX9VSu".into(),
        };
        for locale in [Locale::Id, Locale::En] {
            for action in [
                None,
                Some((SensitiveAction::BankAccountChange, Some("****7890"))),
                Some((SensitiveAction::PasswordReset, None)),
            ] {
                let text = render(&brand, locale, &code(), Duration::minutes(5), action);
                assert!(text.len() <= MAX_SMS_BYTES, "{} bytes: {text}", text.len());
                assert!(text.contains("12345678"));
                assert!(text.contains("BPJS"));
            }
        }
    }

    #[test]
    fn the_autofill_line_ends_the_message_when_it_fits() {
        let brand = MessageBrand {
            name: "JKN Mobile".into(),
            webotp_host: "jkn.example.go.id".into(),
            app_hash: String::new(),
        };
        let text = render(&brand, Locale::Id, &code(), Duration::minutes(5), None);
        assert!(text.ends_with("\n@jkn.example.go.id #12345678"), "{text}");
        assert!(text.contains("JANGAN berikan"));
        assert!(text.starts_with("JKN Mobile:"));
    }

    #[test]
    fn a_step_up_names_its_action_and_hint() {
        let text = render(
            &MessageBrand::default(),
            Locale::Id,
            &code(),
            Duration::minutes(5),
            Some((SensitiveAction::BankAccountChange, Some("****7890"))),
        );
        assert!(text.contains("ubah rekening bank ****7890"), "{text}");
    }

    #[test]
    fn the_default_templates_write_the_texts_gerbang_always_sent() {
        let brand = MessageBrand {
            name: "JKN Mobile".into(),
            webotp_host: "jkn.example.go.id".into(),
            app_hash: "FA+9qCX9VSu".into(),
        };
        let six = OtpCode::parse("482913", CodeLength::default()).unwrap();
        assert_eq!(
            render(&brand, Locale::Id, &six, Duration::minutes(5), None),
            "JKN Mobile: kode OTP 482913, berlaku 5 menit. JANGAN berikan kpd siapa pun, termasuk \
             petugas BPJS. FA+9qCX9VSu\n@jkn.example.go.id #482913"
        );
        assert_eq!(
            render(
                &MessageBrand::default(),
                Locale::En,
                &six,
                Duration::minutes(1),
                Some((SensitiveAction::PhoneChange, Some("****7890")))
            ),
            "gerbang: code 482913 for phone number change ****7890, valid 1 min. NEVER share it \
             with anyone, BPJS staff included."
        );
        // Too long with everything: the hint goes first, then the hash; the autofill line stays.
        let tight = MessageBrand {
            name: "JKN Mobile".into(),
            webotp_host: "jkn.go.id".into(),
            app_hash: "FA+9qCX9VSu".into(),
        };
        let text = render(
            &tight,
            Locale::Id,
            &code(),
            Duration::minutes(5),
            Some((SensitiveAction::BankAccountChange, Some("****7890"))),
        );
        assert_eq!(
            text,
            "JKN Mobile: kode 12345678 utk ubah rekening bank, berlaku 5 menit. JANGAN berikan kpd \
             siapa pun, termasuk petugas BPJS.\n@jkn.go.id #12345678"
        );
        assert_eq!(text.len(), MAX_SMS_BYTES);
        // Still too long: the autofill line goes too, and the brand is cut to 16 bytes.
        let long = MessageBrand {
            name: "BPJS Ketenagakerjaan".into(),
            webotp_host: "jmo.bpjsketenagakerjaan.go.id".into(),
            app_hash: "FA+9qCX9VSu".into(),
        };
        assert_eq!(
            render(
                &long,
                Locale::Id,
                &code(),
                Duration::minutes(5),
                Some((SensitiveAction::BankAccountChange, Some("****7890")))
            ),
            "BPJS Ketenagaker: kode 12345678 utk ubah rekening bank, berlaku 5 menit. JANGAN \
             berikan kpd siapa pun, termasuk petugas BPJS."
        );
    }

    #[test]
    fn a_brand_is_cut_to_16_bytes_at_a_character_boundary() {
        let brand = MessageBrand {
            name: "Jaminan Sosial\u{2122} Indonesia".into(),
            ..MessageBrand::default()
        };
        let text = render(&brand, Locale::Id, &code(), Duration::minutes(5), None);
        // `™` is 3 bytes and would end at byte 17: it is left out rather than split.
        assert!(text.starts_with("Jaminan Sosial: kode"), "{text}");
    }

    #[test]
    fn an_operator_template_is_used_by_render_with() {
        let templates = Templates::builtin()
            .clone()
            .with_file(
                "sms.id.txt",
                "[plain]\n{brand}: {code} kode Anda. JANGAN dibagikan.\n\
                 [step_up]\n{brand}: {code} utk {action}. JANGAN dibagikan.\n",
            )
            .unwrap();
        let brand = MessageBrand {
            name: "JKN Mobile".into(),
            webotp_host: "jkn.example.go.id".into(),
            app_hash: String::new(),
        };
        let text = render_with(
            &templates,
            &brand,
            Locale::Id,
            &code(),
            Duration::minutes(5),
            None,
        );
        assert_eq!(
            text,
            "JKN Mobile: 12345678 kode Anda. JANGAN dibagikan.\n@jkn.example.go.id #12345678"
        );
        // The other language keeps its built-in wording.
        let english = render_with(
            &templates,
            &brand,
            Locale::En,
            &code(),
            Duration::minutes(5),
            None,
        );
        assert_eq!(
            english,
            render(&brand, Locale::En, &code(), Duration::minutes(5), None)
        );
    }

    /// The renderer the templates replaced, word for word: the oracle the default templates must
    /// match.
    fn hard_coded(
        brand: &MessageBrand,
        locale: Locale,
        code: &OtpCode,
        lifetime: Duration,
        action: Option<(SensitiveAction, Option<&str>)>,
    ) -> String {
        let name: String = brand.name.chars().take(16).collect();
        let minutes = lifetime.num_minutes().max(1);
        let code = code.reveal();
        let mut hint = action.and_then(|(_, hint)| hint).map(str::to_owned);
        let mut app_hash = (!brand.app_hash.is_empty()).then(|| brand.app_hash.clone());
        let mut webotp = (!brand.webotp_host.is_empty()).then(|| brand.webotp_host.clone());
        loop {
            let mut text = match (locale, action) {
                (Locale::Id, None) => format!(
                    "{name}: kode OTP {code}, berlaku {minutes} menit. JANGAN berikan kpd siapa pun, termasuk petugas BPJS."
                ),
                (Locale::Id, Some((action, _))) => format!(
                    "{name}: kode {code} utk {}{}, berlaku {minutes} menit. JANGAN berikan kpd siapa pun, termasuk petugas BPJS.",
                    action.label().0,
                    hint.as_deref().map(|h| format!(" {h}")).unwrap_or_default()
                ),
                (Locale::En, None) => format!(
                    "{name}: OTP {code}, valid {minutes} min. NEVER share it with anyone, BPJS staff included."
                ),
                (Locale::En, Some((action, _))) => format!(
                    "{name}: code {code} for {}{}, valid {minutes} min. NEVER share it with anyone, BPJS staff included.",
                    action.label().1,
                    hint.as_deref().map(|h| format!(" {h}")).unwrap_or_default()
                ),
            };
            if let Some(hash) = &app_hash {
                text.push(' ');
                text.push_str(hash);
            }
            if let Some(host) = &webotp {
                text.push_str(&format!("\n@{host} #{code}"));
            }
            if text.len() <= MAX_SMS_BYTES {
                return text;
            }
            if hint.take().is_some() {
                continue;
            }
            if app_hash.take().is_some() {
                continue;
            }
            if webotp.take().is_some() {
                continue;
            }
            return text;
        }
    }

    fn any_code() -> impl Strategy<Value = OtpCode> {
        (CodeLength::MIN..=CodeLength::MAX).prop_flat_map(|digits| {
            proptest::string::string_regex(&format!("[0-9]{{{digits}}}"))
                .unwrap()
                .prop_map(move |text| {
                    OtpCode::parse(&text, CodeLength::new(digits).unwrap()).unwrap()
                })
        })
    }

    fn any_action() -> impl Strategy<Value = Option<(SensitiveAction, Option<String>)>> {
        proptest::option::of((
            proptest::sample::select(SensitiveAction::ALL.to_vec()),
            proptest::option::of(".{0,40}"),
        ))
    }

    fn any_locale() -> impl Strategy<Value = Locale> {
        proptest::sample::select(vec![Locale::Id, Locale::En])
    }

    proptest! {
        #[test]
        fn the_default_templates_render_exactly_what_the_hard_coded_text_did(
            name in "[ -~]{0,24}",
            webotp_host in "|[a-z0-9.-]{1,60}",
            app_hash in "|[A-Za-z0-9+/]{11}",
            locale in any_locale(),
            code in any_code(),
            minutes in 1i64..=10,
            action in proptest::option::of((
                proptest::sample::select(SensitiveAction::ALL.to_vec()),
                proptest::option::of("[ -~]{0,30}"),
            )),
        ) {
            let brand = MessageBrand { name, webotp_host, app_hash };
            let action = action.as_ref().map(|(action, hint)| (*action, hint.as_deref()));
            let lifetime = Duration::minutes(minutes);
            prop_assert_eq!(
                render(&brand, locale, &code, lifetime, action),
                hard_coded(&brand, locale, &code, lifetime, action)
            );
        }

        #[test]
        fn every_sms_fits_and_keeps_the_brand_the_code_and_the_warning(
            name in "\\PC{0,24}",
            webotp_host in "|[a-z0-9.-]{1,253}",
            app_hash in "|\\PC{1,20}",
            locale in any_locale(),
            code in any_code(),
            minutes in 1i64..=99,
            action in any_action(),
        ) {
            let brand = MessageBrand { name, webotp_host, app_hash };
            let action = action.as_ref().map(|(action, hint)| (*action, hint.as_deref()));
            let text = render(&brand, locale, &code, Duration::minutes(minutes), action);
            prop_assert!(text.len() <= MAX_SMS_BYTES, "{} bytes: {}", text.len(), text);
            prop_assert!(text.contains(code.reveal()), "{}", text);
            prop_assert!(text.starts_with(brand_name(&brand.name)), "{}", text);
            prop_assert!(brand_name(&brand.name).len() <= MAX_BRAND_BYTES);
            let warning = match locale { Locale::Id => "JANGAN", Locale::En => "NEVER" };
            prop_assert!(text.contains(warning), "{}", text);
            if let Some((_, autofill)) = text.rsplit_once('\n').filter(|(_, last)| last.starts_with('@')) {
                prop_assert_eq!(autofill, format!("@{} #{}", brand.webotp_host, code.reveal()));
            }
        }
    }
}
