//! The message catalogues: every word a page shows, one TOML file per language
//! (`i18n/id.toml`, `i18n/en.toml`), compiled into the binary. Templates hold no text of their own;
//! they ask the catalogue by key. A test fails when a key exists in one language only, or when a
//! template asks for a key neither has.

use std::collections::HashMap;
use std::sync::LazyLock;

use gerbang_domain::Explain;
use gerbang_domain::verification::Locale;

/// The language a page is written in: Indonesian unless the participant chose English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Id,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::En => "en",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input.trim() {
            "id" => Some(Self::Id),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Self {
        match self {
            Self::Id => Self::En,
            Self::En => Self::Id,
        }
    }

    pub fn locale(self) -> Locale {
        match self {
            Self::Id => Locale::Id,
            Self::En => Locale::En,
        }
    }

    pub fn english(self) -> bool {
        self == Self::En
    }

    /// An API refusal's message in this language: the same words the JSON API answers with.
    pub fn explain(self, error: &dyn Explain) -> String {
        sentence(match self {
            Self::Id => error.message_id(),
            Self::En => error.message_en(),
        })
    }

    pub fn catalogue(self) -> &'static Catalogue {
        match self {
            Self::Id => &INDONESIAN,
            Self::En => &ENGLISH,
        }
    }
}

/// A message as a sentence on a page: a capital first letter and a full stop (some of the API's
/// English messages are lower-case clauses).
pub fn sentence(message: String) -> String {
    let mut chars = message.chars();
    let Some(first) = chars.next() else {
        return message;
    };
    let mut text: String = first.to_uppercase().chain(chars).collect();
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

/// One language's messages by key (`section.name`).
#[derive(Debug)]
pub struct Catalogue {
    messages: HashMap<String, String>,
}

pub(crate) const INDONESIAN_SOURCE: &str = include_str!("../i18n/id.toml");
pub(crate) const ENGLISH_SOURCE: &str = include_str!("../i18n/en.toml");

static INDONESIAN: LazyLock<Catalogue> = LazyLock::new(|| Catalogue::parse(INDONESIAN_SOURCE));
static ENGLISH: LazyLock<Catalogue> = LazyLock::new(|| Catalogue::parse(ENGLISH_SOURCE));

impl Catalogue {
    /// The messages of a catalogue file; tables nest keys with dots. A file that does not parse
    /// yields an empty catalogue (and every page shows keys): the tests parse both files.
    pub fn parse(source: &str) -> Self {
        let mut messages = HashMap::new();
        match source.parse::<toml::Table>() {
            Ok(table) => flatten("", &table, &mut messages),
            Err(error) => tracing::error!(%error, "a message catalogue does not parse"),
        }
        Self { messages }
    }

    /// The message `key`; the key itself when it is missing (which a test prevents).
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        match self.messages.get(key) {
            Some(message) => message,
            None => {
                tracing::warn!(key, "a page asked for a message the catalogue lacks");
                key
            }
        }
    }

    /// The message `key` with each `{name}` replaced by its argument.
    pub fn fill(&self, key: &str, arguments: &[(&str, &str)]) -> String {
        let mut text = self.get(key).to_string();
        for (name, value) in arguments {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }
}

fn flatten(prefix: &str, table: &toml::Table, into: &mut HashMap<String, String>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&name, inner, into),
            toml::Value::String(text) => {
                into.insert(name, text.clone());
            }
            other => {
                into.insert(name, other.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_parse_and_have_the_same_keys() {
        let id = Catalogue::parse(INDONESIAN_SOURCE);
        let en = Catalogue::parse(ENGLISH_SOURCE);
        assert!(id.messages.len() > 50, "the Indonesian catalogue parsed");
        let mut only_id: Vec<_> = id
            .keys()
            .filter(|k| !en.messages.contains_key(*k))
            .collect();
        let mut only_en: Vec<_> = en
            .keys()
            .filter(|k| !id.messages.contains_key(*k))
            .collect();
        only_id.sort();
        only_en.sort();
        assert!(only_id.is_empty(), "only in id.toml: {only_id:?}");
        assert!(only_en.is_empty(), "only in en.toml: {only_en:?}");
        for (key, text) in id.messages.iter().chain(en.messages.iter()) {
            assert!(!text.trim().is_empty(), "{key} is empty");
        }
    }

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(
            sentence("a NIK has 16 digits, this one has 15".into()),
            "A NIK has 16 digits, this one has 15."
        );
        assert_eq!(sentence("Kode salah.".into()), "Kode salah.");
        assert_eq!(sentence(String::new()), "");
    }

    #[test]
    fn placeholders_are_filled() {
        let catalogue = Catalogue::parse("[a]\nb = \"wait {seconds} s, then {what}\"\n");
        assert_eq!(
            catalogue.fill("a.b", &[("seconds", "42"), ("what", "retry")]),
            "wait 42 s, then retry"
        );
        assert_eq!(catalogue.get("a.missing"), "a.missing");
    }

    #[test]
    fn each_placeholder_appears_in_both_languages() {
        let id = Catalogue::parse(INDONESIAN_SOURCE);
        let en = Catalogue::parse(ENGLISH_SOURCE);
        let placeholders = |text: &str| {
            let mut names: Vec<String> = text
                .split('{')
                .skip(1)
                .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
                .collect();
            names.sort();
            names
        };
        for (key, text) in &id.messages {
            if let Some(english) = en.messages.get(key) {
                assert_eq!(placeholders(text), placeholders(english), "{key}");
            }
        }
    }
}
