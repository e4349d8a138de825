//! Message templates: the words of every SMS, email and voice call, per language, in files an
//! operator can edit (`delivery.templates_dir`), parsed and checked once, at start.
//!
//! Layout:
//! - [`Templates`]: the parsed, checked set. [`Templates::builtin`] is gerbang's own wording,
//!   compiled in from `crates/gerbang/templates/` (the very files an operator copies);
//!   [`Templates::load`] reads a directory, where every file left out keeps its built-in wording;
//! - [`TemplateError`], [`Problem`] and [`Rule`]: why a file is refused, naming the file, the line
//!   and the section;
//! - the file format: sections (`split_sections`), then placeholders (`compile_line`), then the
//!   rules of each section (`SectionRule`) and, for an SMS, the 140-byte worst case;
//! - rendering: the SMS text before its optional parts (fitted in [`super::message::render_with`]),
//!   the email's subject, text and HTML ([`Templates::email`]), the voice script
//!   ([`Templates::voice_script`]).
//!
//! The format itself is described in the header comment of each default file. In short: comment
//! lines (`#`) before the first `[section]`; sections of text; `{brand}`, `{code}`, `{minutes}`,
//! `{action}`, `{subject}` and `{plural:one|other}` replaced by values (never re-read, so a brand
//! holding `{code}` is just text); `{{` and `}}` for braces.
//!
//! Parsing never fails outright: it always builds a template and lists what is wrong with it.
//! [`Templates::load`] refuses any file with a problem; [`Templates::builtin`] uses its sources as
//! they are, and a test proves they have none. So no code path here can panic.
//!
//! [`Templates::load`] is the only function of this crate that touches the file system: it reads a
//! handful of small files once, at start, before anything is served.

use std::fmt;
use std::path::Path;
use std::sync::LazyLock;

use super::Locale;
use super::message::{MAX_BRAND_BYTES, MAX_SMS_BYTES, MessageContent, sms_bytes};
use super::purpose::SensitiveAction;

/// The file names a templates directory may hold, one per channel and language.
pub const FILES: [&str; 6] = [
    "sms.id.txt",
    "sms.en.txt",
    "email.id.txt",
    "email.en.txt",
    "voice.id.txt",
    "voice.en.txt",
];

/// The defaults, compiled in from the directory an operator copies, so the two cannot drift.
const BUILTIN_SOURCES: [&str; 6] = [
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gerbang/templates/sms.id.txt"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gerbang/templates/sms.en.txt"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gerbang/templates/email.id.txt"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gerbang/templates/email.en.txt"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gerbang/templates/voice.id.txt"
    )),
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../gerbang/templates/voice.en.txt"
    )),
];

/// Minutes of lifetime the SMS worst case is checked with: 1 (for `{plural}`'s singular) and a
/// two-digit number. The configuration caps a code's life at 10 minutes.
const WORST_CASE_MINUTES: [u64; 2] = [1, 99];

/// Every message template, by channel and language, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    sms: ByLocale<SmsTemplates>,
    email: ByLocale<EmailTemplates>,
    voice: ByLocale<VoiceTemplates>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ByLocale<T> {
    id: T,
    en: T,
}

impl<T> ByLocale<T> {
    fn get(&self, locale: Locale) -> &T {
        match locale {
            Locale::Id => &self.id,
            Locale::En => &self.en,
        }
    }

    fn get_mut(&mut self, locale: Locale) -> &mut T {
        match locale {
            Locale::Id => &mut self.id,
            Locale::En => &mut self.en,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SmsTemplates {
    plain: Template,
    step_up: Template,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EmailTemplates {
    subject: Template,
    text: Template,
    html: Template,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct VoiceTemplates {
    plain: Template,
    step_up: Template,
    again: Template,
    closing: Template,
}

/// One email as the templates word it. Holds the code: its `Debug` shows the subject only.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailText {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl fmt::Debug for EmailText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailText")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

static BUILTIN: LazyLock<Templates> = LazyLock::new(|| {
    // Problems are ignored here only: the test `the_builtin_templates_have_no_problem` proves there
    // are none, and a template with a problem still renders (see the module's header).
    let [sms_id, sms_en, email_id, email_en, voice_id, voice_en] = BUILTIN_SOURCES;
    Templates {
        sms: ByLocale {
            id: parse_sms(Locale::Id, sms_id).0,
            en: parse_sms(Locale::En, sms_en).0,
        },
        email: ByLocale {
            id: parse_email(email_id).0,
            en: parse_email(email_en).0,
        },
        voice: ByLocale {
            id: parse_voice(voice_id).0,
            en: parse_voice(voice_en).0,
        },
    }
});

/// The built-in templates.
impl Default for Templates {
    fn default() -> Self {
        Self::builtin().clone()
    }
}

impl Templates {
    /// gerbang's own wording, as in `crates/gerbang/templates/`.
    pub fn builtin() -> &'static Templates {
        &BUILTIN
    }

    /// The built-in files, name and text, e.g. for a command that writes them out for an
    /// operator to edit.
    pub fn builtin_files() -> impl Iterator<Item = (&'static str, &'static str)> {
        FILES.into_iter().zip(BUILTIN_SOURCES)
    }

    /// The templates of `dir`: each of [`FILES`] present there replaces the built-in one, each one
    /// missing keeps it. Any other `*.txt` or `*.toml` file is refused (a misspelt name would
    /// otherwise be silently ignored), as is a file breaking any rule.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let unreadable = |path: &Path, error: std::io::Error| TemplateError::Unreadable {
            path: path.display().to_string(),
            reason: error.to_string(),
        };
        let entries = std::fs::read_dir(dir).map_err(|error| unreadable(dir, error))?;
        for entry in entries {
            let name = entry.map_err(|error| unreadable(dir, error))?.file_name();
            let name = name.to_string_lossy();
            let looks_like_one = name.ends_with(".txt") || name.ends_with(".toml");
            if looks_like_one && !FILES.contains(&name.as_ref()) {
                return Err(TemplateError::UnknownFile {
                    path: dir.join(name.as_ref()).display().to_string(),
                });
            }
        }
        let mut templates = Self::builtin().clone();
        for name in FILES {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => templates.replace(name, &path.display().to_string(), &text)?,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(unreadable(&path, error)),
            }
        }
        Ok(templates)
    }

    /// These templates with file `name` (one of [`FILES`]) replaced by `text`.
    pub fn with_file(mut self, name: &str, text: &str) -> Result<Templates, TemplateError> {
        self.replace(name, name, text)?;
        Ok(self)
    }

    fn replace(&mut self, name: &str, label: &str, text: &str) -> Result<(), TemplateError> {
        let refuse = |problems: Vec<Problem>| TemplateError::Invalid {
            file: label.to_owned(),
            problems,
        };
        let problems = match name {
            "sms.id.txt" | "sms.en.txt" => {
                let locale = if name == "sms.id.txt" {
                    Locale::Id
                } else {
                    Locale::En
                };
                let (parsed, problems) = parse_sms(locale, text);
                *self.sms.get_mut(locale) = parsed;
                problems
            }
            "email.id.txt" | "email.en.txt" => {
                let locale = if name == "email.id.txt" {
                    Locale::Id
                } else {
                    Locale::En
                };
                let (parsed, problems) = parse_email(text);
                *self.email.get_mut(locale) = parsed;
                problems
            }
            "voice.id.txt" | "voice.en.txt" => {
                let locale = if name == "voice.id.txt" {
                    Locale::Id
                } else {
                    Locale::En
                };
                let (parsed, problems) = parse_voice(text);
                *self.voice.get_mut(locale) = parsed;
                problems
            }
            _ => {
                return Err(TemplateError::UnknownFile {
                    path: label.to_owned(),
                });
            }
        };
        if problems.is_empty() {
            Ok(())
        } else {
            Err(refuse(problems))
        }
    }

    /// The SMS text before its optional tail (app hash, autofill line): `[step_up]` when there is
    /// an action (`action` is its label, with the hint if it is kept), else `[plain]`.
    pub(crate) fn sms_body(
        &self,
        locale: Locale,
        brand: &str,
        code: &str,
        minutes: u64,
        action: Option<&str>,
        long_forms: bool,
    ) -> String {
        let sms = self.sms.get(locale);
        let template = if action.is_some() {
            &sms.step_up
        } else {
            &sms.plain
        };
        template.render(
            &Values {
                brand,
                code,
                minutes,
                action,
                subject: "",
                long_forms,
            },
            Escape::None,
        )
    }

    /// The subject of an email in `locale` (it may name the brand only).
    pub fn email_subject(&self, brand: &str, locale: Locale) -> String {
        self.email.get(locale).subject.render(
            &Values {
                brand,
                code: "",
                minutes: 0,
                action: None,
                subject: "",
                long_forms: true,
            },
            Escape::None,
        )
    }

    /// The email carrying `content`: its subject, its plain text and its HTML (every value
    /// HTML-escaped), each part ending with one line break.
    pub fn email(&self, brand: &str, content: &MessageContent) -> EmailText {
        let email = self.email.get(content.locale);
        let subject = self.email_subject(brand, content.locale);
        let action = content.action_label();
        let values = Values {
            brand,
            code: &content.code,
            minutes: u64::from(content.lifetime_minutes),
            action: action.as_deref(),
            subject: &subject,
            long_forms: true,
        };
        let mut text = email.text.render(&values, Escape::None);
        text.push('\n');
        let mut html = email.html.render(&values, Escape::Html);
        html.push('\n');
        EmailText {
            subject,
            text,
            html,
        }
    }

    /// What a call says: the opening, `[again]` `times - 1` times, the closing, joined by spaces.
    /// `spoken_code` is the code as the voice should say it; the action is named without its hint.
    pub fn voice_script(
        &self,
        brand: &str,
        content: &MessageContent,
        spoken_code: &str,
        times: u8,
    ) -> String {
        let voice = self.voice.get(content.locale);
        let values = Values {
            brand,
            code: spoken_code,
            minutes: u64::from(content.lifetime_minutes),
            action: content
                .action
                .map(|action| action_label(action, content.locale)),
            subject: "",
            long_forms: true,
        };
        let opening = if values.action.is_some() {
            &voice.step_up
        } else {
            &voice.plain
        };
        let mut parts = vec![opening.render(&values, Escape::None)];
        for _ in 1..times {
            parts.push(voice.again.render(&values, Escape::None));
        }
        parts.push(voice.closing.render(&values, Escape::None));
        parts.join(" ")
    }
}

/// An action as a message in `locale` names it.
pub(crate) fn action_label(action: SensitiveAction, locale: Locale) -> &'static str {
    let (id, en) = action.label();
    match locale {
        Locale::Id => id,
        Locale::En => en,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why the templates cannot be used; gerbang does not start with them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the message templates at {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error(
        "{path} is not a message template file; the files are {} (or leave a file out to keep the built-in one)",
        FILES.join(", ")
    )]
    UnknownFile { path: String },
    #[error("the message template {file} is refused: {}", list(.problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One thing wrong in a template file: where, and which rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file, where one line is to blame.
    pub line: Option<usize>,
    pub section: Option<String>,
    pub rule: Rule,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.section) {
            (Some(line), Some(section)) => write!(f, "line {line} [{section}]: {}", self.rule),
            (Some(line), None) => write!(f, "line {line}: {}", self.rule),
            (None, Some(section)) => write!(f, "[{section}]: {}", self.rule),
            (None, None) => write!(f, "{}", self.rule),
        }
    }
}

/// The rules a template file must keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    #[error("text before the first [section] (comment lines start with `#`)")]
    TextOutsideSection,
    #[error("unknown section [{name}]; this file has {expected}")]
    UnknownSection { name: String, expected: String },
    #[error("this section appears twice")]
    RepeatedSection,
    #[error("the section [{name}] is missing")]
    MissingSection { name: String },
    #[error("a `{{` without its `}}` (write `{{{{` for a brace)")]
    UnclosedBrace,
    #[error("a `}}` without its `{{` (write `}}}}` for a brace)")]
    LoneClosingBrace,
    #[error(
        "unknown placeholder {{{name}}}; this section may use {allowed} (write `{{{{` and `}}}}` for braces)"
    )]
    UnknownPlaceholder { name: String, allowed: String },
    #[error("{{{name}}} cannot be used in this section; it may use {allowed}")]
    PlaceholderNotHere { name: String, allowed: String },
    #[error(
        "{{{name}}}: gerbang adds the app hash and the autofill line itself, at the end of the SMS where Android and WebOTP look for them; remove it"
    )]
    AddedByGerbang { name: String },
    #[error("a plural is written {{plural:one|other}}, e.g. {{plural:minute|minutes}}")]
    BadPlural,
    #[error("a word written in full when it fits is {{fit:long|short}}, e.g. {{fit:kepada|kpd}}")]
    BadFit,
    #[error("must contain {{{name}}}")]
    Missing { name: &'static str },
    #[error("must carry the anti-fraud warning, with the word {word} in capitals")]
    NoWarning { word: &'static str },
    #[error("must be one line")]
    NotOneLine,
    #[error(
        "is {bytes} bytes at its longest ({case}, with the action's hint, the app hash and the autofill line left out and every {{fit:…}} short), over the {MAX_SMS_BYTES} of one SMS (160 GSM 7-bit characters, or 70 in UCS-2): shorten it"
    )]
    TooLong { bytes: usize, case: String },
}

// ---------------------------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------------------------

/// What may be replaced in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Brand,
    Code,
    Minutes,
    Plural,
    Action,
    Subject,
    Fit,
}

impl Name {
    const ALL: [Name; 7] = [
        Self::Brand,
        Self::Code,
        Self::Minutes,
        Self::Plural,
        Self::Action,
        Self::Subject,
        Self::Fit,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Brand => "brand",
            Self::Code => "code",
            Self::Minutes => "minutes",
            Self::Plural => "plural",
            Self::Action => "action",
            Self::Subject => "subject",
            Self::Fit => "fit",
        }
    }

    /// How the placeholder is written, for messages.
    fn written(self) -> &'static str {
        match self {
            Self::Brand => "{brand}",
            Self::Code => "{code}",
            Self::Minutes => "{minutes}",
            Self::Plural => "{plural:one|other}",
            Self::Action => "{action}",
            Self::Subject => "{subject}",
            Self::Fit => "{fit:long|short}",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Brand,
    Code,
    Minutes,
    Plural {
        one: String,
        other: String,
    },
    Action,
    Subject,
    /// `{fit:kepada|kpd}`: the long form when the SMS fits with it, else the short one.
    Fit {
        long: String,
        short: String,
    },
}

impl Segment {
    fn name(&self) -> Option<Name> {
        match self {
            Self::Text(_) => None,
            Self::Brand => Some(Name::Brand),
            Self::Code => Some(Name::Code),
            Self::Minutes => Some(Name::Minutes),
            Self::Plural { .. } => Some(Name::Plural),
            Self::Action => Some(Name::Action),
            Self::Subject => Some(Name::Subject),
            Self::Fit { .. } => Some(Name::Fit),
        }
    }
}

/// One section, compiled: its lines, each a run of text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    lines: Vec<Vec<Segment>>,
    /// What joins the lines: a line break, or a space for speech.
    separator: &'static str,
}

/// The values a template is rendered with.
struct Values<'a> {
    brand: &'a str,
    code: &'a str,
    minutes: u64,
    /// `None`: not a step-up, and every line holding `{action}` is left out.
    action: Option<&'a str>,
    subject: &'a str,
    /// `{fit:long|short}` writes its long form.
    long_forms: bool,
}

#[derive(Clone, Copy)]
enum Escape {
    None,
    Html,
}

impl Template {
    fn uses(&self, name: Name) -> bool {
        self.lines
            .iter()
            .flatten()
            .any(|segment| segment.name() == Some(name))
    }

    fn render(&self, values: &Values<'_>, escape: Escape) -> String {
        let mut out = String::new();
        let mut first = true;
        for line in &self.lines {
            if values.action.is_none() && line.contains(&Segment::Action) {
                continue;
            }
            if !first {
                out.push_str(self.separator);
            }
            first = false;
            for segment in line {
                let value = match segment {
                    // The template's own words: never escaped (in HTML they are the operator's
                    // markup).
                    Segment::Text(text) => {
                        out.push_str(text);
                        continue;
                    }
                    Segment::Plural { one, other } => {
                        out.push_str(if values.minutes == 1 { one } else { other });
                        continue;
                    }
                    Segment::Fit { long, short } => {
                        out.push_str(if values.long_forms { long } else { short });
                        continue;
                    }
                    Segment::Brand => values.brand,
                    Segment::Code => values.code,
                    Segment::Minutes => {
                        out.push_str(&values.minutes.to_string());
                        continue;
                    }
                    Segment::Action => values.action.unwrap_or_default(),
                    Segment::Subject => values.subject,
                };
                match escape {
                    Escape::None => out.push_str(value),
                    Escape::Html => escape_html_into(value, &mut out),
                }
            }
        }
        out
    }
}

/// Text made safe to put in HTML, between tags or inside a quoted attribute.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    escape_html_into(text, &mut escaped);
    escaped
}

fn escape_html_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// What one section of a file must and may hold.
struct SectionRule {
    name: &'static str,
    allowed: &'static [Name],
    required: &'static [Name],
    /// The word of the anti-fraud warning the section's own text must hold (SMS only).
    warning: Option<&'static str>,
    one_line: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    Sms,
    Email,
    Voice,
}

const SIMPLE: &[Name] = &[Name::Brand, Name::Code, Name::Minutes, Name::Plural];
const WITH_ACTION: &[Name] = &[
    Name::Brand,
    Name::Code,
    Name::Minutes,
    Name::Plural,
    Name::Action,
];
const SMS_SIMPLE: &[Name] = &[
    Name::Brand,
    Name::Code,
    Name::Minutes,
    Name::Plural,
    Name::Fit,
];
const SMS_WITH_ACTION: &[Name] = &[
    Name::Brand,
    Name::Code,
    Name::Minutes,
    Name::Plural,
    Name::Action,
    Name::Fit,
];
const EMAIL_PART: &[Name] = &[
    Name::Brand,
    Name::Code,
    Name::Minutes,
    Name::Plural,
    Name::Action,
    Name::Subject,
];

fn sms_rules(locale: Locale) -> [SectionRule; 2] {
    let warning = Some(match locale {
        Locale::Id => "JANGAN",
        Locale::En => "NEVER",
    });
    [
        SectionRule {
            name: "plain",
            allowed: SMS_SIMPLE,
            required: &[Name::Brand, Name::Code],
            warning,
            one_line: false,
        },
        SectionRule {
            name: "step_up",
            allowed: SMS_WITH_ACTION,
            required: &[Name::Brand, Name::Code, Name::Action],
            warning,
            one_line: false,
        },
    ]
}

const EMAIL_RULES: [SectionRule; 3] = [
    SectionRule {
        name: "subject",
        allowed: &[Name::Brand],
        required: &[Name::Brand],
        warning: None,
        one_line: true,
    },
    SectionRule {
        name: "text",
        allowed: EMAIL_PART,
        required: &[Name::Brand, Name::Code, Name::Action],
        warning: None,
        one_line: false,
    },
    SectionRule {
        name: "html",
        allowed: EMAIL_PART,
        required: &[Name::Brand, Name::Code, Name::Action],
        warning: None,
        one_line: false,
    },
];

const VOICE_RULES: [SectionRule; 4] = [
    SectionRule {
        name: "plain",
        allowed: SIMPLE,
        required: &[Name::Brand, Name::Code],
        warning: None,
        one_line: false,
    },
    SectionRule {
        name: "step_up",
        allowed: WITH_ACTION,
        required: &[Name::Brand, Name::Code, Name::Action],
        warning: None,
        one_line: false,
    },
    SectionRule {
        name: "again",
        allowed: SIMPLE,
        required: &[Name::Code],
        warning: None,
        one_line: false,
    },
    SectionRule {
        name: "closing",
        allowed: SIMPLE,
        required: &[],
        warning: None,
        one_line: false,
    },
];

fn parse_sms(locale: Locale, text: &str) -> (SmsTemplates, Vec<Problem>) {
    let rules = sms_rules(locale);
    let (mut compiled, mut problems) = parse_file(text, &rules, Channel::Sms);
    let step_up = compiled.pop().unwrap_or_else(empty_template);
    let plain = compiled.pop().unwrap_or_else(empty_template);
    let sms = SmsTemplates { plain, step_up };
    problems.extend(sms_worst_cases(&sms, locale));
    (sms, problems)
}

fn parse_email(text: &str) -> (EmailTemplates, Vec<Problem>) {
    let (mut compiled, problems) = parse_file(text, &EMAIL_RULES, Channel::Email);
    let html = compiled.pop().unwrap_or_else(empty_template);
    let text = compiled.pop().unwrap_or_else(empty_template);
    let subject = compiled.pop().unwrap_or_else(empty_template);
    (
        EmailTemplates {
            subject,
            text,
            html,
        },
        problems,
    )
}

fn parse_voice(text: &str) -> (VoiceTemplates, Vec<Problem>) {
    let (mut compiled, problems) = parse_file(text, &VOICE_RULES, Channel::Voice);
    let closing = compiled.pop().unwrap_or_else(empty_template);
    let again = compiled.pop().unwrap_or_else(empty_template);
    let step_up = compiled.pop().unwrap_or_else(empty_template);
    let plain = compiled.pop().unwrap_or_else(empty_template);
    (
        VoiceTemplates {
            plain,
            step_up,
            again,
            closing,
        },
        problems,
    )
}

fn empty_template() -> Template {
    Template {
        lines: Vec::new(),
        separator: "\n",
    }
}

/// The longest SMS each section can give once every optional part is dropped: a 16-byte brand,
/// an 8-digit code, the longest action label of the language, a one- and a two-digit lifetime.
fn sms_worst_cases(sms: &SmsTemplates, locale: Locale) -> Vec<Problem> {
    let brand = "B".repeat(MAX_BRAND_BYTES);
    let code = "8".repeat(8);
    let mut problems = Vec::new();
    let cases: [(&str, &Template, Vec<Option<&str>>); 2] = [
        ("plain", &sms.plain, vec![None]),
        (
            "step_up",
            &sms.step_up,
            SensitiveAction::ALL
                .into_iter()
                .map(|action| Some(action_label(action, locale)))
                .collect(),
        ),
    ];
    for (section, template, actions) in cases {
        let longest = actions
            .iter()
            .flat_map(|action| {
                WORST_CASE_MINUTES.map(|minutes| {
                    let values = Values {
                        brand: &brand,
                        code: &code,
                        minutes,
                        action: *action,
                        subject: "",
                        long_forms: false,
                    };
                    (sms_bytes(&template.render(&values, Escape::None)), *action)
                })
            })
            .max_by_key(|(bytes, _)| *bytes);
        if let Some((bytes, action)) = longest.filter(|(bytes, _)| *bytes > MAX_SMS_BYTES) {
            let case = match action {
                Some(action) => format!(
                    "a {MAX_BRAND_BYTES}-byte brand, an 8-digit code and the action \"{action}\""
                ),
                None => format!("a {MAX_BRAND_BYTES}-byte brand and an 8-digit code"),
            };
            problems.push(Problem {
                line: None,
                section: Some(section.into()),
                rule: Rule::TooLong { bytes, case },
            });
        }
    }
    problems
}

/// A section of a file: its name and its lines (with their numbers in the file), blank lines at
/// either end removed.
struct Section<'a> {
    name: &'a str,
    lines: Vec<(usize, &'a str)>,
}

/// Splits, compiles and checks a file against its sections' rules; returns one template per rule,
/// in the rules' order (an empty one for a missing section), and every problem found.
fn parse_file(
    text: &str,
    rules: &[SectionRule],
    channel: Channel,
) -> (Vec<Template>, Vec<Problem>) {
    let mut problems = Vec::new();
    let sections = split_sections(text, rules, &mut problems);
    let separator = match channel {
        Channel::Sms | Channel::Email => "\n",
        Channel::Voice => " ",
    };
    let mut templates = Vec::with_capacity(rules.len());
    for rule in rules {
        let Some(section) = sections.iter().find(|section| section.name == rule.name) else {
            problems.push(Problem {
                line: None,
                section: None,
                rule: Rule::MissingSection {
                    name: rule.name.into(),
                },
            });
            templates.push(empty_template());
            continue;
        };
        let lines = section
            .lines
            .iter()
            .map(|(number, line)| compile_line(line, *number, rule, channel, &mut problems))
            .collect();
        let template = Template { lines, separator };
        check_section(&template, rule, &mut problems);
        templates.push(template);
    }
    (templates, problems)
}

fn split_sections<'a>(
    text: &'a str,
    rules: &[SectionRule],
    problems: &mut Vec<Problem>,
) -> Vec<Section<'a>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<Section<'a>> = Vec::new();
    // Lines of an unknown or repeated section are read (and dropped) so they are not taken for
    // the previous section's.
    let mut current: Option<Section<'a>> = None;
    let mut in_any_section = false;
    let finish = |section: Option<Section<'a>>, sections: &mut Vec<Section<'a>>| {
        if let Some(mut section) = section {
            while section
                .lines
                .last()
                .is_some_and(|(_, line)| line.is_empty())
            {
                section.lines.pop();
            }
            let leading = section
                .lines
                .iter()
                .take_while(|(_, line)| line.is_empty())
                .count();
            section.lines.drain(..leading);
            sections.push(section);
        }
    };
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim_end_matches([' ', '\t', '\r']);
        if let Some(name) = section_header(line) {
            finish(current.take(), &mut sections);
            in_any_section = true;
            let at = |rule: Rule| Problem {
                line: Some(number),
                section: Some(name.to_owned()),
                rule,
            };
            if !rules.iter().any(|rule| rule.name == name) {
                let expected = rules
                    .iter()
                    .map(|rule| format!("[{}]", rule.name))
                    .collect::<Vec<_>>()
                    .join(", ");
                problems.push(at(Rule::UnknownSection {
                    name: name.to_owned(),
                    expected,
                }));
            } else if sections.iter().any(|section| section.name == name) {
                problems.push(at(Rule::RepeatedSection));
            } else {
                current = Some(Section {
                    name,
                    lines: Vec::new(),
                });
            }
            continue;
        }
        match current.as_mut() {
            Some(section) => section.lines.push((number, line)),
            None if in_any_section => {}
            None if line.is_empty() || line.starts_with('#') => {}
            None => problems.push(Problem {
                line: Some(number),
                section: None,
                rule: Rule::TextOutsideSection,
            }),
        }
    }
    finish(current, &mut sections);
    sections
}

/// `[name]` with a lowercase name: a section header.
fn section_header(line: &str) -> Option<&str> {
    let name = line.strip_prefix('[')?.strip_suffix(']')?;
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
    .then_some(name)
}

/// One line's text and placeholders. Whatever cannot be read stays as text, with a problem.
fn compile_line(
    line: &str,
    number: usize,
    rule: &SectionRule,
    channel: Channel,
    problems: &mut Vec<Problem>,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut text = String::new();
    let mut problem = |found: Rule| {
        problems.push(Problem {
            line: Some(number),
            section: Some(rule.name.into()),
            rule: found,
        });
    };
    let mut rest = line;
    while let Some(at) = rest.find(['{', '}']) {
        let (before, from) = rest.split_at(at);
        text.push_str(before);
        if let Some(after) = from.strip_prefix("{{") {
            text.push('{');
            rest = after;
        } else if let Some(after) = from.strip_prefix("}}") {
            text.push('}');
            rest = after;
        } else if let Some(after) = from.strip_prefix('}') {
            problem(Rule::LoneClosingBrace);
            text.push('}');
            rest = after;
        } else {
            let after = from.get(1..).unwrap_or_default();
            let close = after.find(['{', '}']);
            match close.filter(|&end| after.get(end..).is_some_and(|r| r.starts_with('}'))) {
                Some(end) => {
                    let inner = after.get(..end).unwrap_or_default();
                    match placeholder(inner, rule, channel) {
                        Ok(segment) => {
                            if !text.is_empty() {
                                segments.push(Segment::Text(std::mem::take(&mut text)));
                            }
                            segments.push(segment);
                        }
                        Err(found) => {
                            problem(found);
                            text.push('{');
                            text.push_str(inner);
                            text.push('}');
                        }
                    }
                    rest = after.get(end + 1..).unwrap_or_default();
                }
                None => {
                    problem(Rule::UnclosedBrace);
                    text.push('{');
                    rest = after;
                }
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    segments
}

/// The placeholder written `{inner}`, if this section may use it.
fn placeholder(inner: &str, rule: &SectionRule, channel: Channel) -> Result<Segment, Rule> {
    let (name, argument) = match inner.split_once(':') {
        Some((name, argument)) => (name, Some(argument)),
        None => (inner, None),
    };
    let allowed = || {
        rule.allowed
            .iter()
            .map(|name| name.written())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(known) = Name::ALL.into_iter().find(|known| known.as_str() == name) else {
        if channel == Channel::Sms && matches!(inner, "app_hash" | "webotp_host") {
            return Err(Rule::AddedByGerbang { name: inner.into() });
        }
        return Err(Rule::UnknownPlaceholder {
            name: inner.into(),
            allowed: allowed(),
        });
    };
    let segment = match (known, argument) {
        (Name::Plural, Some(forms)) => match forms.split_once('|') {
            Some((one, other)) if !other.contains('|') => Segment::Plural {
                one: one.into(),
                other: other.into(),
            },
            _ => return Err(Rule::BadPlural),
        },
        (Name::Plural, None) => return Err(Rule::BadPlural),
        (Name::Fit, Some(forms)) => match forms.split_once('|') {
            Some((long, short)) if !short.contains('|') => Segment::Fit {
                long: long.into(),
                short: short.into(),
            },
            _ => return Err(Rule::BadFit),
        },
        (Name::Fit, None) => return Err(Rule::BadFit),
        (_, Some(_)) => {
            return Err(Rule::UnknownPlaceholder {
                name: inner.into(),
                allowed: allowed(),
            });
        }
        (Name::Brand, None) => Segment::Brand,
        (Name::Code, None) => Segment::Code,
        (Name::Minutes, None) => Segment::Minutes,
        (Name::Action, None) => Segment::Action,
        (Name::Subject, None) => Segment::Subject,
    };
    if !rule.allowed.contains(&known) {
        return Err(Rule::PlaceholderNotHere {
            name: inner.into(),
            allowed: allowed(),
        });
    }
    Ok(segment)
}

fn check_section(template: &Template, rule: &SectionRule, problems: &mut Vec<Problem>) {
    let mut problem = |found: Rule| {
        problems.push(Problem {
            line: None,
            section: Some(rule.name.into()),
            rule: found,
        });
    };
    for name in rule.required {
        if !template.uses(*name) {
            problem(Rule::Missing {
                name: name.as_str(),
            });
        }
    }
    if let Some(word) = rule.warning {
        let warns = template
            .lines
            .iter()
            .flatten()
            .any(|segment| matches!(segment, Segment::Text(text) if text.contains(word)));
        if !warns {
            problem(Rule::NoWarning { word });
        }
    }
    if rule.one_line && template.lines.len() > 1 {
        problem(Rule::NotOneLine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory removed when the test ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "gerbang-templates-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn write(&self, name: &str, text: &str) -> &Self {
            std::fs::write(self.0.join(name), text).unwrap();
            self
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn default_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gerbang/templates")
    }

    fn content(locale: Locale, action: Option<SensitiveAction>) -> MessageContent {
        MessageContent {
            code: "482913".into(),
            locale,
            lifetime_minutes: 5,
            action,
            action_hint: action.map(|_| "****7890".into()),
        }
    }

    /// The rules `text` breaks as file `name`.
    fn rules(name: &str, text: &str) -> Vec<Rule> {
        match Templates::builtin().clone().with_file(name, text) {
            Ok(_) => Vec::new(),
            Err(TemplateError::Invalid { problems, .. }) => {
                problems.into_iter().map(|problem| problem.rule).collect()
            }
            Err(other) => panic!("{other}"),
        }
    }

    const SMS_ID: &str = "[plain]\n{brand}: kode {code}. JANGAN berikan.\n[step_up]\n{brand}: kode {code} utk {action}. JANGAN berikan.\n";

    #[test]
    fn the_builtin_templates_have_no_problem() {
        for (name, text) in Templates::builtin_files() {
            let fresh = Templates::builtin().clone().with_file(name, text);
            assert_eq!(fresh.as_ref(), Ok(Templates::builtin()), "{name}");
        }
        assert_eq!(&Templates::default(), Templates::builtin());
    }

    #[test]
    fn the_default_directory_loads_as_the_builtin_templates() {
        assert_eq!(
            &Templates::load(&default_dir()).unwrap(),
            Templates::builtin()
        );
    }

    #[test]
    fn an_empty_directory_keeps_every_builtin_template() {
        let dir = TempDir::new();
        dir.write("README.md", "notes of the operator");
        assert_eq!(&Templates::load(&dir.0).unwrap(), Templates::builtin());
    }

    #[test]
    fn a_file_in_the_directory_replaces_only_its_own_template() {
        let dir = TempDir::new();
        dir.write("email.en.txt", "[subject]\nCode from {brand}\n[text]\n{brand} code: {code}\nFor: {action}\n[html]\n<p>{brand} code: {code}</p>\n<p>For: {action}</p>\n");
        let loaded = Templates::load(&dir.0).unwrap();
        assert_ne!(&loaded, Templates::builtin());

        let email = loaded.email("JKN Mobile", &content(Locale::En, None));
        assert_eq!(email.subject, "Code from JKN Mobile");
        assert_eq!(email.text, "JKN Mobile code: 482913\n");
        assert_eq!(email.html, "<p>JKN Mobile code: 482913</p>\n");
        let step_up = loaded.email(
            "JKN Mobile",
            &content(Locale::En, Some(SensitiveAction::EmailChange)),
        );
        assert_eq!(
            step_up.text,
            "JKN Mobile code: 482913\nFor: email change ****7890\n"
        );

        let builtin = Templates::builtin();
        let id = content(Locale::Id, None);
        assert_eq!(
            loaded.email("JKN Mobile", &id),
            builtin.email("JKN Mobile", &id)
        );
        assert_eq!(
            loaded.voice_script("JKN Mobile", &content(Locale::En, None), "four", 2),
            builtin.voice_script("JKN Mobile", &content(Locale::En, None), "four", 2)
        );
        assert_eq!(
            loaded.sms_body(Locale::En, "B", "1234", 5, None, true),
            builtin.sms_body(Locale::En, "B", "1234", 5, None, true)
        );
    }

    #[test]
    fn a_missing_directory_or_an_unknown_file_stops_the_load_naming_it() {
        let dir = TempDir::new();
        let missing = dir.0.join("nowhere");
        let error = Templates::load(&missing).unwrap_err();
        assert!(matches!(error, TemplateError::Unreadable { .. }), "{error}");
        assert!(error.to_string().contains("nowhere"), "{error}");

        dir.write("sms.id.toml", SMS_ID);
        let error = Templates::load(&dir.0).unwrap_err().to_string();
        assert!(
            error.contains("sms.id.toml is not a message template file"),
            "{error}"
        );
        assert!(error.contains("sms.id.txt, sms.en.txt"), "{error}");
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_file_the_line_the_section_and_the_rule() {
        let dir = TempDir::new();
        dir.write(
            "sms.id.txt",
            "# mine\n[plain]\n{brand}: kode {kode}. JANGAN berikan.\n[step_up]\n{brand}: kode {code} utk {action}. JANGAN berikan.\n",
        );
        let error = Templates::load(&dir.0).unwrap_err();
        let TemplateError::Invalid { file, problems } = &error else {
            panic!("{error}");
        };
        assert!(file.ends_with("sms.id.txt"), "{file}");
        assert_eq!(problems.len(), 2, "{error}");
        let said = error.to_string();
        assert!(said.starts_with("the message template "), "{said}");
        assert!(
            said.contains("line 3 [plain]: unknown placeholder {kode}; this section may use {brand}, {code}, {minutes}, {plural:one|other}"),
            "{said}"
        );
        assert!(said.contains("[plain]: must contain {code}"), "{said}");
    }

    #[test]
    fn every_template_must_name_the_code_and_the_brand() {
        let without_code = SMS_ID.replace("kode {code}.", "kode.");
        assert_eq!(
            rules("sms.id.txt", &without_code),
            [Rule::Missing { name: "code" }]
        );
        let without_brand = SMS_ID.replace("{brand}: kode {code} utk", "kode {code} utk");
        assert_eq!(
            rules("sms.id.txt", &without_brand),
            [Rule::Missing { name: "brand" }]
        );

        let email = "[subject]\nKode\n[text]\n{brand}: {code} {action}\n[html]\n<p>{brand}</p>\n<p>{action}</p>\n";
        assert_eq!(
            rules("email.id.txt", email),
            [
                Rule::Missing { name: "brand" },
                Rule::Missing { name: "code" }
            ]
        );
        let voice = "[plain]\n{brand} {code}\n[step_up]\n{brand} {code} {action}\n[again]\nlagi\n[closing]\nsampai jumpa\n";
        assert_eq!(
            rules("voice.id.txt", voice),
            [Rule::Missing { name: "code" }]
        );
    }

    #[test]
    fn a_step_up_template_must_name_the_action() {
        let sms = SMS_ID.replace(" utk {action}", "");
        assert_eq!(
            rules("sms.id.txt", &sms),
            [Rule::Missing { name: "action" }]
        );
        let email = "[subject]\n{brand}\n[text]\n{brand}: {code}\n[html]\n<p>{brand}: {code}</p>\n<p>{action}</p>\n";
        assert_eq!(
            rules("email.en.txt", email),
            [Rule::Missing { name: "action" }]
        );
    }

    #[test]
    fn an_sms_must_carry_the_warning_word_of_its_language() {
        let quiet = SMS_ID.replace("JANGAN berikan.", "jangan berikan.");
        assert_eq!(
            rules("sms.id.txt", &quiet),
            [
                Rule::NoWarning { word: "JANGAN" },
                Rule::NoWarning { word: "JANGAN" }
            ]
        );
        // The Indonesian word does not satisfy the English file.
        assert_eq!(
            rules("sms.en.txt", SMS_ID),
            [
                Rule::NoWarning { word: "NEVER" },
                Rule::NoWarning { word: "NEVER" }
            ]
        );
        // A brand that happens to say it does not count: the template's own words must.
        let via_brand = SMS_ID.replace("JANGAN berikan.", "");
        assert_eq!(rules("sms.id.txt", &via_brand).len(), 2);
    }

    #[test]
    fn unknown_or_misplaced_placeholders_are_refused() {
        let unknown = SMS_ID.replace("kode {code}.", "kode {code} {name}.");
        assert!(matches!(
            &rules("sms.id.txt", &unknown)[..],
            [Rule::UnknownPlaceholder { name, .. }] if name == "name"
        ));
        let action_in_plain = SMS_ID.replace("kode {code}.", "kode {code} {action}.");
        assert!(matches!(
            &rules("sms.id.txt", &action_in_plain)[..],
            [Rule::PlaceholderNotHere { name, .. }] if name == "action"
        ));
        let code_in_subject = "[subject]\n{brand} {code}\n[text]\n{brand} {code}\n{action}\n[html]\n{brand} {code}\n{action}\n";
        assert!(matches!(
            &rules("email.id.txt", code_in_subject)[..],
            [Rule::PlaceholderNotHere { name, .. }] if name == "code"
        ));
        let hash = SMS_ID.replace("berikan.\n[step_up]", "berikan. {app_hash}\n[step_up]");
        assert_eq!(
            rules("sms.id.txt", &hash),
            [Rule::AddedByGerbang {
                name: "app_hash".into()
            }]
        );
        let host = SMS_ID.replace(
            "berikan.\n[step_up]",
            "berikan.\n@{webotp_host} #{code}\n[step_up]",
        );
        assert_eq!(
            rules("sms.id.txt", &host),
            [Rule::AddedByGerbang {
                name: "webotp_host".into()
            }]
        );
        let with_argument = SMS_ID.replace("kode {code}.", "kode {code:6}.");
        assert!(matches!(
            &rules("sms.id.txt", &with_argument)[..],
            [
                Rule::UnknownPlaceholder { .. },
                Rule::Missing { name: "code" }
            ]
        ));
    }

    #[test]
    fn braces_must_pair_and_plurals_need_two_forms() {
        let unclosed = SMS_ID.replace("kode {code}.", "kode {code}. {brand");
        assert_eq!(rules("sms.id.txt", &unclosed), [Rule::UnclosedBrace]);
        let lone = SMS_ID.replace("kode {code}.", "kode {code}.}");
        assert_eq!(rules("sms.id.txt", &lone), [Rule::LoneClosingBrace]);
        for bad in ["{plural}", "{plural:menit}", "{plural:a|b|c}"] {
            let plural = SMS_ID.replace("kode {code}.", &format!("kode {{code}} {bad}."));
            assert_eq!(rules("sms.id.txt", &plural), [Rule::BadPlural], "{bad}");
        }
        for bad in ["{fit}", "{fit:kepada}", "{fit:a|b|c}"] {
            let fit = SMS_ID.replace("kode {code}.", &format!("kode {{code}} {bad}."));
            assert_eq!(rules("sms.id.txt", &fit), [Rule::BadFit], "{bad}");
        }
        // A word written in full when it fits is an SMS matter only.
        let voice = "[plain]\n{brand} {code} {fit:kepada|kpd}\n[step_up]\n{brand} {code} {action}\n\
                     [again]\n{code}\n[closing]\nbye\n";
        assert!(matches!(
            rules("voice.id.txt", voice)[..],
            [Rule::PlaceholderNotHere { .. }]
        ));
    }

    #[test]
    fn sections_must_be_the_files_own_each_once() {
        let missing = "[plain]\n{brand}: {code} JANGAN\n";
        assert_eq!(
            rules("sms.id.txt", missing),
            [Rule::MissingSection {
                name: "step_up".into()
            }]
        );
        let unknown = format!("{SMS_ID}[stepup]\nx\n");
        assert!(matches!(
            &rules("sms.id.txt", &unknown)[..],
            [Rule::UnknownSection { name, expected }] if name == "stepup" && expected == "[plain], [step_up]"
        ));
        let twice = format!("{SMS_ID}[plain]\nx\n");
        assert_eq!(rules("sms.id.txt", &twice), [Rule::RepeatedSection]);
        let stray = format!("hello\n{SMS_ID}");
        assert_eq!(rules("sms.id.txt", &stray), [Rule::TextOutsideSection]);
        let subject = "[subject]\n{brand}\nkode\n[text]\n{brand} {code}\n{action}\n[html]\n{brand} {code}\n{action}\n";
        assert_eq!(rules("email.en.txt", subject), [Rule::NotOneLine]);
    }

    #[test]
    fn an_sms_that_cannot_fit_with_every_optional_part_dropped_is_refused() {
        // 16-byte brand + ": kode " + 8 digits + "." = 32 characters; the rest takes it to 161
        // GSM 7-bit characters, 141 bytes.
        let padding = "x".repeat(161 - 32 - " JANGAN".len());
        let plain = format!("[plain]\n{{brand}}: kode {{code}}.{padding} JANGAN\n");
        let step_up = "[step_up]\n{brand}: {code} {action} JANGAN\n";
        let found = rules("sms.id.txt", &format!("{plain}{step_up}"));
        assert_eq!(
            found,
            [Rule::TooLong {
                bytes: MAX_SMS_BYTES + 1,
                case: "a 16-byte brand and an 8-digit code".into()
            }]
        );
        // One byte less fits.
        let plain = plain.replacen('x', "", 1);
        assert_eq!(rules("sms.id.txt", &format!("{plain}{step_up}")), []);

        // For a step-up, the longest action of the language is the one that counts.
        let long = format!(
            "[plain]\n{{brand}} {{code}} JANGAN\n[step_up]\n{{brand}} {{code}} {{action}} JANGAN {}\n",
            "y".repeat(106)
        );
        let said = Templates::builtin()
            .clone()
            .with_file("sms.id.txt", &long)
            .unwrap_err()
            .to_string();
        assert!(
            said.contains("[step_up]: is 141 bytes at its longest"),
            "{said}"
        );
        assert!(
            said.contains("the action \"atur ulang kata sandi\""),
            "{said}"
        );
    }

    #[test]
    fn values_are_never_read_as_placeholders_and_braces_can_be_written() {
        let templates = Templates::builtin()
            .clone()
            .with_file(
                "sms.en.txt",
                "[plain]\n{brand} {{code}} {code} NEVER {plural:minute|minutes}\n[step_up]\n{brand} {code} {action} NEVER\n",
            )
            .unwrap();
        assert_eq!(
            templates.sms_body(Locale::En, "{code}", "1234", 1, None, true),
            "{code} {code} 1234 NEVER minute"
        );
        assert_eq!(
            templates.sms_body(Locale::En, "B", "1234", 2, None, true),
            "B {code} 1234 NEVER minutes"
        );
    }

    #[test]
    fn html_gets_escaped_values_and_keeps_its_own_markup() {
        let templates = Templates::builtin()
            .clone()
            .with_file(
                "email.en.txt",
                "[subject]\n{brand} & co\n[text]\n{brand} {code}\n{action}\n[html]\n<style>p {{ margin: 0 }}</style>\n<title>{subject}</title><p>{brand} {code}</p>\n<p>{action}</p>\n",
            )
            .unwrap();
        let mut step_up = content(Locale::En, Some(SensitiveAction::BankAccountChange));
        step_up.action_hint = Some("<script>".into());
        let email = templates.email("<b>Brand</b> \"Co\"", &step_up);
        assert_eq!(email.subject, "<b>Brand</b> \"Co\" & co");
        assert_eq!(
            email.html,
            "<style>p { margin: 0 }</style>\n\
             <title>&lt;b&gt;Brand&lt;/b&gt; &quot;Co&quot; &amp; co</title><p>&lt;b&gt;Brand&lt;/b&gt; &quot;Co&quot; 482913</p>\n\
             <p>bank account change &lt;script&gt;</p>\n"
        );
        assert_eq!(
            email.text,
            "<b>Brand</b> \"Co\" 482913\nbank account change <script>\n"
        );
        assert_eq!(
            escape_html("it's <x> & \"y\""),
            "it&#39;s &lt;x&gt; &amp; &quot;y&quot;"
        );
    }

    #[test]
    fn a_line_naming_the_action_is_left_out_when_there_is_none() {
        let email = Templates::builtin().email("JKN Mobile", &content(Locale::Id, None));
        assert!(!email.text.contains("untuk"), "{}", email.text);
        assert!(
            email.text.contains("    482913\n\nKode berlaku 5 menit.\n"),
            "{}",
            email.text
        );
        assert!(!email.html.contains("untuk"), "{}", email.html);
    }

    #[test]
    fn windows_line_ends_trailing_spaces_and_a_byte_order_mark_change_nothing() {
        let windows = format!("\u{feff}# note\r\n\r\n{}", SMS_ID.replace('\n', "  \r\n"));
        let unix = Templates::builtin()
            .clone()
            .with_file("sms.id.txt", SMS_ID)
            .unwrap();
        let crlf = Templates::builtin()
            .clone()
            .with_file("sms.id.txt", &windows)
            .unwrap();
        assert_eq!(unix, crlf);
    }

    #[test]
    fn the_voice_script_is_its_parts_joined_by_spaces_and_wrapped_lines_too() {
        let templates = Templates::builtin()
            .clone()
            .with_file(
                "voice.en.txt",
                "[plain]\nThis is {brand}.\nYour code: {code}.\n[step_up]\n{brand}: {code} for {action}.\n[again]\nAgain: {code}.\n[closing]\nBye.\n",
            )
            .unwrap();
        let said = templates.voice_script("JKN", &content(Locale::En, None), "one, two", 3);
        assert_eq!(
            said,
            "This is JKN. Your code: one, two. Again: one, two. Again: one, two. Bye."
        );
        let step_up = content(Locale::En, Some(SensitiveAction::BenefitClaim));
        assert_eq!(
            templates.voice_script("JKN", &step_up, "one", 1),
            "JKN: one for benefit claim. Bye."
        );
    }
}
