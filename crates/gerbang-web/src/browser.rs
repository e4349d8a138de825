//! What a browser brings with each request (its cookies, its language) and what the portal asks it
//! to keep. Cookies hold only opaque random tokens and the language: the flow token (`gbf_…`, the
//! flow's state is sealed in the store), the session token, the device id, and the browser's CSRF
//! id; never a name, a number or a code.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::catalogue::Lang;

pub const LANG_COOKIE: &str = "gb_lang";
pub const FLOW_COOKIE: &str = "gb_flow";
pub const SESSION_COOKIE: &str = "gb_session";
pub const DEVICE_COOKIE: &str = "gb_device";
pub const CSRF_COOKIE: &str = "gb_csrf";
pub const NOTICE_COOKIE: &str = "gb_notice";
/// A back-office staff session (the console, `/staff`).
pub const STAFF_COOKIE: &str = "gb_staff";

/// The key CSRF tokens are MACed with; every instance sharing the database's key derives the same.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(***)")
    }
}

impl CsrfKey {
    /// The portal's key from the root key the code and captcha keys also come from.
    pub fn derive(root: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(root)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&[0u8; 64].into()));
        mac.update(b"gerbang portal csrf key v1");
        Self(mac.finalize().into_bytes().into())
    }

    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The token a form of this browser carries: a MAC of its CSRF id.
    pub fn token(&self, browser_id: &str) -> String {
        let mut mac = self.mac();
        mac.update(browser_id.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `token` is this browser's; constant-time.
    pub fn accepts(&self, browser_id: &str, token: &str) -> bool {
        let Some(bytes) = unhex(token) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(browser_id.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&[0u8; 64].into()))
    }
}

/// A request's browser: its language and the tokens it holds.
#[derive(Debug, Clone)]
pub struct Browser {
    pub lang: Lang,
    /// The language came from the participant's choice (the cookie), not from the header.
    pub lang_chosen: bool,
    /// The browser's CSRF id; freshly made when it had none (then `csrf_new`).
    pub csrf_id: String,
    pub csrf_new: bool,
    pub flow: Option<String>,
    pub session: Option<String>,
    pub device: Option<String>,
    pub notice: Option<String>,
    /// The staff console's session token.
    pub staff: Option<String>,
    pub ip: Option<IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Browser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers, peer(parts)))
    }
}

fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

impl Browser {
    pub fn of(headers: &HeaderMap, ip: Option<IpAddr>) -> Self {
        let mut browser = Self {
            lang: Lang::Id,
            lang_chosen: false,
            csrf_id: String::new(),
            csrf_new: false,
            flow: None,
            session: None,
            device: None,
            notice: None,
            staff: None,
            ip,
        };
        for value in headers.get_all(COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for cookie in Cookie::split_parse(value).flatten() {
                let token = cookie.value();
                // Only tokens of the expected shape are kept: nothing else reaches a lookup.
                if !token_shaped(token) {
                    continue;
                }
                match cookie.name() {
                    LANG_COOKIE => {
                        if let Some(lang) = Lang::parse(token) {
                            browser.lang = lang;
                            browser.lang_chosen = true;
                        }
                    }
                    CSRF_COOKIE if token.len() == 32 => browser.csrf_id = token.to_string(),
                    FLOW_COOKIE => browser.flow = Some(token.to_string()),
                    SESSION_COOKIE => browser.session = Some(token.to_string()),
                    DEVICE_COOKIE => browser.device = Some(token.to_string()),
                    NOTICE_COOKIE => browser.notice = Some(token.to_string()),
                    STAFF_COOKIE => browser.staff = Some(token.to_string()),
                    _ => {}
                }
            }
        }
        if !browser.lang_chosen {
            browser.lang = accept_language(headers);
        }
        if browser.csrf_id.is_empty() {
            browser.csrf_id = random_hex(16);
            browser.csrf_new = true;
        }
        browser
    }
}

/// Letters, digits, `_` and `-`, at most 128: what every token we set looks like.
fn token_shaped(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// English when the browser ranks English above Indonesian; Indonesian otherwise.
fn accept_language(headers: &HeaderMap) -> Lang {
    let Some(value) = headers.get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()) else {
        return Lang::Id;
    };
    let mut best: Option<(f32, Lang)> = None;
    for part in value.split(',') {
        let mut pieces = part.split(';');
        let tag = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let quality = pieces
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        let lang = if tag == "id" || tag.starts_with("id-") || tag == "in" {
            Lang::Id
        } else if tag == "en" || tag.starts_with("en-") {
            Lang::En
        } else {
            continue;
        };
        if best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, lang));
        }
    }
    best.map(|(_, lang)| lang).unwrap_or(Lang::Id)
}

/// How the portal's cookies are set: `Secure` outside development.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    /// A cookie for `max_age` seconds (`None`: until the browser closes).
    pub fn set(
        &self,
        headers: &mut HeaderMap,
        name: &'static str,
        value: &str,
        max_age: Option<i64>,
    ) {
        let mut cookie = Cookie::build((name, value.to_string()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure);
        if let Some(seconds) = max_age {
            cookie = cookie.max_age(cookie::time::Duration::seconds(seconds));
        }
        if let Ok(value) = HeaderValue::from_str(&cookie.build().to_string()) {
            headers.append(SET_COOKIE, value);
        }
    }

    pub fn clear(&self, headers: &mut HeaderMap, name: &'static str) {
        self.set(headers, name, "", Some(0));
    }
}

pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex(&buffer)
}

fn hex(bytes: &[u8]) -> String {
    gerbang_domain::account::hex(bytes)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_chosen_language_wins_over_the_header() {
        let b = Browser::of(&headers(&[("accept-language", "en-US,en;q=0.9")]), None);
        assert_eq!(b.lang, Lang::En);
        let b = Browser::of(
            &headers(&[("accept-language", "en-US"), ("cookie", "gb_lang=id")]),
            None,
        );
        assert_eq!(b.lang, Lang::Id);
        assert!(b.lang_chosen);
        let b = Browser::of(&headers(&[("accept-language", "en;q=0.4, id;q=0.8")]), None);
        assert_eq!(b.lang, Lang::Id);
        let b = Browser::of(&headers(&[("accept-language", "fr, de")]), None);
        assert_eq!(b.lang, Lang::Id);
    }

    #[test]
    fn odd_cookies_are_ignored() {
        let b = Browser::of(
            &headers(&[(
                "cookie",
                "gb_flow=gbf_abc; gb_session=<script>; gb_csrf=short; gb_lang=fr",
            )]),
            None,
        );
        assert_eq!(b.flow.as_deref(), Some("gbf_abc"));
        assert_eq!(b.session, None);
        assert!(b.csrf_new, "a malformed CSRF id is replaced");
        assert_eq!(b.csrf_id.len(), 32);
        assert!(!b.lang_chosen);
    }

    #[test]
    fn a_csrf_token_belongs_to_one_browser() {
        let key = CsrfKey::derive(&[7; 32]);
        let token = key.token("0123456789abcdef0123456789abcdef");
        assert!(key.accepts("0123456789abcdef0123456789abcdef", &token));
        assert!(!key.accepts("fedcba9876543210fedcba9876543210", &token));
        assert!(!key.accepts("0123456789abcdef0123456789abcdef", ""));
        assert!(!key.accepts("0123456789abcdef0123456789abcdef", "zz"));
        let other = CsrfKey::derive(&[8; 32]);
        assert!(!other.accepts("0123456789abcdef0123456789abcdef", &token));
    }
}
