//! What every page shares: the layout's context (language, catalogue, CSRF token, asset links,
//! the one-time notice), the errors of a form tied to their fields, and rendering.

use askama::Template;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use gerbang_domain::Explain;
use gerbang_domain::identity::IndonesianTimeZone;

use crate::assets;
use crate::browser::{Browser, CSRF_COOKIE, CookiePolicy, NOTICE_COOKIE};
use crate::catalogue::{Catalogue, Lang};

/// The layout's context.
#[derive(Debug)]
pub struct Layout {
    pub lang: Lang,
    pub t: &'static Catalogue,
    pub csrf: String,
    pub style: String,
    pub script: String,
    pub icon: String,
    /// The page's `<title>` and `<h1>`, a catalogue key.
    pub title: &'static str,
    /// A one-time notice from the step before (a catalogue key's text).
    pub notice: Option<String>,
    pub signed_in: bool,
    /// Where the language switch returns to.
    pub here: &'static str,
    /// The staff console's header (who is signed in, the sections their role may open); `None`
    /// on the participant pages.
    pub console: Option<ConsoleNav>,
}

/// The staff console's header.
#[derive(Debug, Clone)]
pub struct ConsoleNav {
    pub name: String,
    /// Catalogue key of the role's name.
    pub role: &'static str,
    /// `(href, catalogue key)` of each section the role may open.
    pub links: Vec<(&'static str, &'static str)>,
}

impl Layout {
    pub fn other_lang(&self) -> &'static str {
        self.lang.other().code()
    }

    /// Where the language switch posts: the console has its own, so it works whatever the
    /// portal's settings.
    pub fn language_action(&self) -> &'static str {
        if self.here.starts_with("/staff") {
            "/staff/language"
        } else {
            "/language"
        }
    }

    /// Where the brand in the header leads.
    pub fn home_href(&self) -> &'static str {
        if self.here.starts_with("/staff") {
            "/staff"
        } else {
            "/"
        }
    }

    /// The other language's name, in that language.
    pub fn other_lang_name(&self) -> &'static str {
        self.lang.other().catalogue().get("layout.language_name")
    }
}

/// The errors of one submitted form: each tied to its field, or to the whole form.
#[derive(Debug, Default)]
pub struct Errors {
    fields: Vec<(&'static str, String)>,
    pub form: Option<String>,
    /// The stable code of the refusal, shown small beside the message for the call centre.
    pub code: Option<&'static str>,
}

impl Errors {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn field(field: &'static str, message: String) -> Self {
        Self {
            fields: vec![(field, message)],
            ..Self::default()
        }
    }

    pub fn whole(message: String) -> Self {
        Self {
            form: Some(message),
            ..Self::default()
        }
    }

    pub fn add(&mut self, field: &'static str, message: String) {
        self.fields.push((field, message));
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn any(&self) -> bool {
        !self.fields.is_empty() || self.form.is_some()
    }

    /// An API refusal placed beside `field` (`None`: above the form).
    pub fn refusal(lang: Lang, error: &dyn Explain, field: Option<&'static str>) -> Self {
        let message = lang.explain(error);
        let mut errors = match field {
            Some(field) => Self::field(field, message),
            None => Self::whole(message),
        };
        errors.code = Some(error.code());
        errors
    }
}

/// The start of every handler: the layout for `browser`.
pub fn layout(browser: &Browser, csrf: String, title: &'static str, here: &'static str) -> Layout {
    let t = browser.lang.catalogue();
    let notice = browser
        .notice
        .as_deref()
        .and_then(|key| NOTICES.iter().find(|known| **known == key))
        .map(|key| t.get(&format!("notice.{key}")).to_string());
    Layout {
        lang: browser.lang,
        t,
        csrf,
        style: assets::STYLE.href(),
        script: assets::SCRIPT.href(),
        icon: assets::ICON.href(),
        title,
        notice,
        signed_in: browser.session.is_some(),
        here,
        console: None,
    }
}

/// The one-time notices a step may leave for the next page (`notice.<name>` in the catalogues).
pub const NOTICES: [&str; 14] = [
    "registered",
    "recovered",
    "signed_out",
    "device_signed_out",
    "contact_changed",
    "bank_changed",
    "flow_expired",
    "session_ended",
    "language_changed",
    "request_made",
    "request_approved",
    "request_declined",
    "request_code_sent",
    "request_completed",
];

/// A page: HTML with the browser's cookies kept up to date.
pub fn render(
    template: &impl Template,
    status: StatusCode,
    browser: &Browser,
    policy: CookiePolicy,
) -> Response {
    match template.render() {
        Ok(html) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            keep(&mut headers, browser, policy);
            (status, headers, html).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page failed to render").into_response()
        }
    }
}

/// A redirect after a successful POST (303: the browser then GETs), with cookies set by the step.
pub fn see_other(
    to: &str,
    mut headers: HeaderMap,
    browser: &Browser,
    policy: CookiePolicy,
) -> Response {
    keep(&mut headers, browser, policy);
    (headers, Redirect::to(to)).into_response()
}

/// `response` with the headers of `extra` added (each `Set-Cookie` kept, none replaced).
pub fn with_headers(mut response: Response, extra: HeaderMap) -> Response {
    let mut name = None;
    for (key, value) in extra {
        if key.is_some() {
            name = key;
        }
        if let Some(name) = &name {
            response.headers_mut().append(name.clone(), value);
        }
    }
    response
}

/// The CSRF id of a new browser is set; a shown notice is spent.
fn keep(headers: &mut HeaderMap, browser: &Browser, policy: CookiePolicy) {
    if browser.csrf_new {
        policy.set(headers, CSRF_COOKIE, &browser.csrf_id, None);
    }
    if browser.notice.is_some() {
        policy.clear(headers, NOTICE_COOKIE);
    }
}

/// A time the participant waits for, on their clock (WIB, WITA or WIT).
pub fn on_their_clock(lang: Lang, zone: IndonesianTimeZone, at: DateTime<Utc>) -> String {
    zone.format_until(at, lang.english())
}

/// `m:ss` of the seconds from `now` to `until` (0:00 once past).
pub fn countdown(now: DateTime<Utc>, until: DateTime<Utc>) -> String {
    let seconds = (until - now).num_seconds().max(0);
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_countdown_reads_minutes_and_seconds() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(countdown(now, now + chrono::Duration::seconds(65)), "1:05");
        assert_eq!(countdown(now, now - chrono::Duration::seconds(5)), "0:00");
    }

    #[test]
    fn every_notice_is_in_the_catalogues() {
        for lang in [Lang::Id, Lang::En] {
            let t = Catalogue::parse(match lang {
                Lang::Id => crate::catalogue::INDONESIAN_SOURCE,
                Lang::En => crate::catalogue::ENGLISH_SOURCE,
            });
            for notice in NOTICES {
                let key = format!("notice.{notice}");
                assert_ne!(t.get(&key), key, "{key} in {lang:?}");
            }
        }
    }
}
