//! The templates hold no text of their own, and every message they or the handlers ask for exists
//! in both catalogues.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

use gerbang_domain::delivery::DeliveryStatus;
use gerbang_domain::verification::Channel;
use gerbang_domain::verification::purpose::SensitiveAction;
use gerbang_web::catalogue::Catalogue;

fn catalogues() -> [(&'static str, Catalogue); 2] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("i18n");
    ["id", "en"].map(|lang| {
        let text = std::fs::read_to_string(root.join(format!("{lang}.toml"))).unwrap();
        (lang, Catalogue::parse(&text))
    })
}

fn templates() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // The unit tests name made-up keys.
            let code = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .to_string();
            out.push((path.display().to_string(), code));
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

/// Every `"section.name"` literal: the keys a template or handler names.
fn keys_in(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for piece in text.split('"').skip(1).step_by(2) {
        let mut parts = piece.split('.');
        let (Some(section), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let word =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if word(section) && word(name) {
            keys.insert(piece.to_string());
        }
    }
    keys
}

/// The text between tags and template expressions.
fn bare_text(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        let next = ["{{", "{%", "{#", "<"]
            .iter()
            .filter_map(|open| rest.find(open).map(|at| (at, *open)))
            .min();
        let Some((at, open)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at]);
        let close = match open {
            "{{" => "}}",
            "{%" => "%}",
            "{#" => "#}",
            _ => ">",
        };
        let after = &rest[at + open.len()..];
        rest = match after.find(close) {
            Some(end) => &after[end + close.len()..],
            None => "",
        };
    }
    out
}

#[test]
fn templates_hold_no_words_of_their_own() {
    for (name, template) in templates() {
        let text = bare_text(&template);
        let words: Vec<&str> = text
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .collect();
        assert!(words.is_empty(), "{name} has literal text: {words:?}");
    }
}

#[test]
fn every_key_named_by_a_template_or_handler_is_in_both_catalogues() {
    let catalogues = catalogues();
    let mut named = BTreeSet::new();
    for (_, text) in templates().into_iter().chain(sources()) {
        named.extend(keys_in(&text));
    }
    // Keys built at run time from a value.
    for channel in Channel::ALL {
        named.insert(format!("channel.{}", channel.as_str()));
    }
    for status in [
        DeliveryStatus::Queued,
        DeliveryStatus::Submitted,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Expired,
        DeliveryStatus::Unknown,
    ] {
        named.insert(format!("delivery.{}", status.as_str()));
    }
    for action in SensitiveAction::ALL {
        named.insert(format!("action.{}", action.as_str()));
    }
    for detail in ["bank", "account_number", "holder"] {
        named.insert(format!("bank.{detail}"));
    }
    for notice in gerbang_web::page::NOTICES {
        named.insert(format!("notice.{notice}"));
    }
    // Names that look like keys but are not (file names, module paths).
    named.retain(|key| !key.ends_with(".html") && !key.ends_with(".toml"));
    assert!(named.len() > 150, "found {} keys", named.len());
    for (lang, catalogue) in &catalogues {
        let missing: Vec<&String> = named
            .iter()
            .filter(|key| catalogue.get(key) == key.as_str())
            .collect();
        assert!(missing.is_empty(), "{lang}.toml lacks {missing:?}");
    }
}
