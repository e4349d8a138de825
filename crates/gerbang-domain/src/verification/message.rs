//! The text that carries a code: one SMS (at most 140 bytes: 160 GSM 7-bit characters or 70 in
//! UCS-2, what Android's SMS Retriever reads),
//! naming the brand (an Indonesian operator rule since 2024), warning against sharing the code, and
//! ending with the `@domain #code` line that WebOTP and iOS AutoFill read (research/domain.md §5).
//! Its words come from the SMS templates ([`super::template`]); fitting it into one SMS is done here.

use chrono::Duration;

use super::Locale;
use super::code::OtpCode;
use super::purpose::SensitiveAction;
use super::template::{Templates, action_label};

/// Longest message, in bytes on the air, of one SMS and of what the Android SMS Retriever accepts:
/// 160 GSM 7-bit characters, or 70 UCS-2 ones.
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

/// The optional parts of an SMS, each either written or left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Parts {
    hint: bool,
    app_hash: bool,
    autofill: bool,
    long_forms: bool,
}

/// The optional parts, highest priority first.
const PRIORITY: [fn(&mut Parts) -> &mut bool; 4] = [
    |parts| &mut parts.hint,
    |parts| &mut parts.app_hash,
    |parts| &mut parts.autofill,
    |parts| &mut parts.long_forms,
];

/// Renders the SMS for one code: the template's text (`[step_up]` for an action, else `[plain]`),
/// then, when configured, the app hash after a space and the autofill line `@host #code` as the
/// last line. The code, the brand and the warning (the template's own text, with every
/// `{fit:long|short}` short) always go out; the optional parts are then added by priority, each
/// one kept if the SMS still fits with it: the action's hint, the app hash (SMS Retriever, for the
/// Android app), the autofill line (WebOTP and iOS), and last the long forms of `{fit:…}` words
/// (`kepada` for `kpd`). One SMS is 160 GSM 7-bit characters, or 70 in UCS-2 when a character is
/// outside that alphabet ([`sms_bytes`]). [`Templates`] refuses any template that would not fit
/// with every optional part left out.
pub fn render_with(
    templates: &Templates,
    brand: &MessageBrand,
    locale: Locale,
    code: &OtpCode,
    lifetime: Duration,
    action: Option<(SensitiveAction, Option<&str>)>,
) -> String {
    choose(templates, brand, locale, code, lifetime, action).1
}

/// The parts written and the SMS they make.
fn choose(
    templates: &Templates,
    brand: &MessageBrand,
    locale: Locale,
    code: &OtpCode,
    lifetime: Duration,
    action: Option<(SensitiveAction, Option<&str>)>,
) -> (Parts, String) {
    let compose = composer(templates, brand, locale, code, lifetime, action);
    let mut parts = Parts::default();
    for part in PRIORITY {
        let mut more = parts;
        *part(&mut more) = true;
        if more != parts && fits_one_sms(&compose(more)) {
            parts = more;
        }
    }
    (parts, compose(parts))
}

/// Writes the SMS with the given optional parts (one not configured is never written).
fn composer<'a>(
    templates: &'a Templates,
    brand: &'a MessageBrand,
    locale: Locale,
    code: &'a OtpCode,
    lifetime: Duration,
    action: Option<(SensitiveAction, Option<&'a str>)>,
) -> impl Fn(Parts) -> String + 'a {
    let name = brand_name(&brand.name);
    let minutes = u64::try_from(lifetime.num_minutes().max(1)).unwrap_or(1);
    let label = action.map(|(action, _)| action_label(action, locale));
    let hint = action
        .and_then(|(_, hint)| hint)
        .filter(|hint| !hint.is_empty());
    let app_hash = Some(brand.app_hash.as_str()).filter(|hash| !hash.is_empty());
    let webotp = Some(brand.webotp_host.as_str()).filter(|host| !host.is_empty());
    move |parts: Parts| {
        let code = code.reveal();
        let action = label.map(|label| match hint.filter(|_| parts.hint) {
            Some(hint) => format!("{label} {hint}"),
            None => label.to_owned(),
        });
        let mut text = templates.sms_body(
            locale,
            name,
            code,
            minutes,
            action.as_deref(),
            parts.long_forms,
        );
        if let Some(hash) = app_hash.filter(|_| parts.app_hash) {
            text.push(' ');
            text.push_str(hash);
        }
        if let Some(host) = webotp.filter(|_| parts.autofill) {
            text.push_str(&format!("\n@{host} #{code}"));
        }
        text
    }
}

/// The GSM 03.38 default alphabet (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table (an escape and the character: two septets each).
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// How many bytes `text` takes in one SMS: GSM 7-bit (packed septets, an extension character
/// counting twice) when every character is in that alphabet, else UCS-2 (two bytes per UTF-16
/// unit). One SMS, and what the Android SMS Retriever reads, is [`MAX_SMS_BYTES`].
pub fn sms_bytes(text: &str) -> usize {
    let septets = text.chars().try_fold(0usize, |septets, c| {
        if GSM7_BASIC.contains(c) {
            Some(septets + 1)
        } else if GSM7_EXTENSION.contains(c) {
            Some(septets + 2)
        } else {
            None
        }
    });
    match septets {
        Some(septets) => (septets * 7).div_ceil(8),
        None => text.encode_utf16().count() * 2,
    }
}

/// Whether `text` goes out as one SMS.
pub fn fits_one_sms(text: &str) -> bool {
    sms_bytes(text) <= MAX_SMS_BYTES
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
                assert!(fits_one_sms(&text), "{} bytes: {text}", sms_bytes(&text));
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
        // Everything fits in 160 GSM 7-bit characters, the warning written in full.
        assert_eq!(
            render(&brand, Locale::Id, &six, Duration::minutes(5), None),
            "JKN Mobile: kode OTP 482913, berlaku 5 menit. JANGAN berikan kepada siapa pun, \
             termasuk petugas BPJS. FA+9qCX9VSu\n@jkn.example.go.id #482913"
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
        // The review's case: a real brand, a step-up with its hint and both autofill lines. The
        // hint and the app hash fit; the autofill line does not, nor does the full warning.
        let bpjs = MessageBrand {
            name: "BPJS Kesehatan".into(),
            webotp_host: "mobile-jkn.bpjs-kesehatan.go.id".into(),
            app_hash: "FA+9qCX9VSu".into(),
        };
        let text = render(
            &bpjs,
            Locale::Id,
            &code(),
            Duration::minutes(5),
            Some((SensitiveAction::BankAccountChange, Some("****6789"))),
        );
        assert_eq!(
            text,
            "BPJS Kesehatan: kode 12345678 utk ubah rekening bank ****6789, berlaku 5 menit. \
             JANGAN berikan kepada siapa pun, termasuk petugas BPJS. FA+9qCX9VSu"
        );
        assert!(fits_one_sms(&text));
        // Without a step-up, the autofill line of a short host fits too.
        let short = MessageBrand {
            webotp_host: "jkn.go.id".into(),
            ..bpjs.clone()
        };
        let text = render(&short, Locale::Id, &code(), Duration::minutes(5), None);
        assert_eq!(
            text,
            "BPJS Kesehatan: kode OTP 12345678, berlaku 5 menit. JANGAN berikan kepada siapa pun, \
             termasuk petugas BPJS. FA+9qCX9VSu\n@jkn.go.id #12345678"
        );
        // A 16-byte brand, 8 digits, the longest action and a hint: the brand is cut, the hint and
        // the hash kept.
        let long = MessageBrand {
            name: "BPJS Ketenagakerjaan".into(),
            webotp_host: "jmo.bpjsketenagakerjaan.go.id".into(),
            app_hash: "FA+9qCX9VSu".into(),
        };
        let text = render(
            &long,
            Locale::Id,
            &code(),
            Duration::minutes(5),
            Some((SensitiveAction::BankAccountChange, Some("****7890"))),
        );
        assert!(
            text.starts_with("BPJS Ketenagaker: kode 12345678 utk ubah rekening bank ****7890,"),
            "{text}"
        );
        assert!(text.ends_with("FA+9qCX9VSu"), "{text}");
    }

    #[test]
    fn one_sms_is_160_gsm_characters_or_70_ucs2_ones() {
        assert_eq!(sms_bytes(&"a".repeat(160)), 140);
        assert_eq!(sms_bytes(&"a".repeat(161)), 141);
        assert!(fits_one_sms(&"a".repeat(160)));
        assert!(!fits_one_sms(&"a".repeat(161)));
        // An extension character takes two septets.
        assert!(!fits_one_sms(&format!("{}€", "a".repeat(159))));
        assert!(fits_one_sms(&format!("{}é\n@#", "a".repeat(156))));
        // One character outside the alphabet: UCS-2, 70 characters.
        assert!(fits_one_sms(&format!("{}™", "a".repeat(69))));
        assert!(!fits_one_sms(&format!("{}™", "a".repeat(70))));
        assert_eq!(sms_bytes("\u{1F600}"), 4);
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

    /// The default templates' words as gerbang wrote them before templates, with the optional
    /// parts of `parts`: the oracle the default templates must match.
    fn hard_coded(
        brand: &MessageBrand,
        locale: Locale,
        code: &OtpCode,
        lifetime: Duration,
        action: Option<(SensitiveAction, Option<&str>)>,
        parts: Parts,
    ) -> String {
        let name = brand_name(&brand.name);
        let minutes = lifetime.num_minutes().max(1);
        let code = code.reveal();
        let hint = action
            .and_then(|(_, hint)| hint)
            .filter(|hint| parts.hint && !hint.is_empty())
            .map(|hint| format!(" {hint}"))
            .unwrap_or_default();
        let to = if parts.long_forms { "kepada" } else { "kpd" };
        let mut text = match (locale, action) {
            (Locale::Id, None) => format!(
                "{name}: kode OTP {code}, berlaku {minutes} menit. JANGAN berikan {to} siapa pun, termasuk petugas BPJS."
            ),
            (Locale::Id, Some((action, _))) => format!(
                "{name}: kode {code} utk {}{hint}, berlaku {minutes} menit. JANGAN berikan {to} siapa pun, termasuk petugas BPJS.",
                action.label().0,
            ),
            (Locale::En, None) => format!(
                "{name}: OTP {code}, valid {minutes} min. NEVER share it with anyone, BPJS staff included."
            ),
            (Locale::En, Some((action, _))) => format!(
                "{name}: code {code} for {}{hint}, valid {minutes} min. NEVER share it with anyone, BPJS staff included.",
                action.label().1,
            ),
        };
        if parts.app_hash && !brand.app_hash.is_empty() {
            text.push(' ');
            text.push_str(&brand.app_hash);
        }
        if parts.autofill && !brand.webotp_host.is_empty() {
            text.push_str(&format!("\n@{} #{code}", brand.webotp_host));
        }
        text
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
            let (parts, text) = choose(Templates::builtin(), &brand, locale, &code, lifetime, action);
            prop_assert_eq!(text, hard_coded(&brand, locale, &code, lifetime, action, parts));
        }

        /// Item by item, by priority: the hint, the app hash, the autofill line, the long forms.
        /// A part is left out only when the SMS cannot fit with it and every part above it, and
        /// adding any left-out part to what was written would not fit either.
        #[test]
        fn every_optional_part_that_fits_is_written_by_priority(
            name in "[ -~]{0,20}|\\PC{0,20}",
            webotp_host in "|[a-z0-9.-]{1,60}",
            app_hash in "|[A-Za-z0-9+/]{11}",
            locale in any_locale(),
            code in any_code(),
            minutes in 1i64..=99,
            action in proptest::option::of((
                proptest::sample::select(SensitiveAction::ALL.to_vec()),
                proptest::option::of("\\*{4}[0-9]{4}|[ -~]{1,16}|\\PC{1,16}"),
            )),
        ) {
            let brand = MessageBrand { name, webotp_host, app_hash };
            let action = action.as_ref().map(|(action, hint)| (*action, hint.as_deref()));
            let lifetime = Duration::minutes(minutes);
            let templates = Templates::builtin();
            let (parts, text) = choose(templates, &brand, locale, &code, lifetime, action);
            let compose = composer(templates, &brand, locale, &code, lifetime, action);
            prop_assert_eq!(&text, &compose(parts));
            let bare = compose(Parts::default());
            if fits_one_sms(&bare) {
                prop_assert!(fits_one_sms(&text), "{} bytes: {}", sms_bytes(&text), text);
            } else {
                prop_assert_eq!(&text, &bare);
            }
            // The parts written among those ranked above the one at hand.
            let mut above = Parts::default();
            for part in PRIORITY {
                let mut with = parts;
                *part(&mut with) = true;
                if compose(with) != text {
                    // Left out, and writing it would change the text: it could not fit, neither
                    // with everything written nor with just the parts ranked above it.
                    prop_assert!(!fits_one_sms(&compose(with)), "{:?} fits: {}", with, compose(with));
                    let mut first = above;
                    *part(&mut first) = true;
                    prop_assert!(!fits_one_sms(&compose(first)), "{:?} fits: {}", first, compose(first));
                }
                let mut written = parts;
                *part(&mut above) = *part(&mut written);
            }
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
            // One SMS, unless even the bare text cannot be (a brand outside GSM 7-bit: UCS-2).
            let bare = composer(
                Templates::builtin(), &brand, locale, &code, Duration::minutes(minutes), action,
            )(Parts::default());
            prop_assert!(fits_one_sms(&text) || text == bare, "{} bytes: {}", sms_bytes(&text), text);
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
