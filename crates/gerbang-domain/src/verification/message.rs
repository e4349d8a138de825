//! The text that carries a code: one SMS (at most 140 bytes, what Android's SMS Retriever reads),
//! naming the brand (an Indonesian operator rule since 2024), warning against sharing the code, and
//! ending with the `@domain #code` line that WebOTP and iOS AutoFill read (research/domain.md §5).

use chrono::Duration;

use super::Locale;
use super::code::OtpCode;
use super::purpose::SensitiveAction;

/// Longest message, in bytes, that the Android SMS Retriever accepts.
pub const MAX_SMS_BYTES: usize = 140;

/// How the deployment signs its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBrand {
    /// Shown first, e.g. `JKN Mobile`; at most 16 bytes are used.
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

/// Renders the message for one code. Optional parts (the action hint, the app hash, the autofill line)
/// are dropped, in that order, until the text fits in one SMS.
pub fn render(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::code::CodeLength;

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
}
