//! The language a request prefers for what gerbang sends on its behalf (the code's SMS, email or
//! call): the body's `locale` when it gives one, else the `Accept-Language` header, else
//! Indonesian. Error bodies always carry both languages.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use gerbang_domain::verification::Locale;

tokio::task_local! {
    static PREFERRED: Option<Locale>;
}

/// The language of the request being served when its body names none: from `Accept-Language`,
/// else Indonesian.
pub(crate) fn preferred() -> Locale {
    PREFERRED
        .try_with(|p| *p)
        .ok()
        .flatten()
        .unwrap_or(Locale::Id)
}

/// The best of `id` and `en` in an `Accept-Language` value (RFC 9110 §12.5.4): the highest
/// weight wins, the earlier on a tie; `in` is the old code for Indonesian; other languages and
/// `*` do not count. `None` when neither is acceptable.
pub fn from_accept_language(value: &str) -> Option<Locale> {
    let mut best: Option<(Locale, f32)> = None;
    for range in value.split(',') {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let weight = parts
            .find_map(|p| p.trim().strip_prefix("q=").map(|q| q.trim().parse::<f32>()))
            .map_or(Ok(1.0), |q| q)
            .unwrap_or(0.0);
        let primary = tag.split('-').next().unwrap_or_default();
        let locale = match primary {
            "id" | "in" => Locale::Id,
            "en" => Locale::En,
            _ => continue,
        };
        if weight > 0.0 && best.is_none_or(|(_, w)| weight > w) {
            best = Some((locale, weight));
        }
    }
    best.map(|(locale, _)| locale)
}

/// Middleware: remembers the request's `Accept-Language` preference for [`preferred`].
pub(crate) async fn assign(request: Request, next: Next) -> Response {
    let preferred = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .and_then(from_accept_language);
    PREFERRED.scope(preferred, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_wanted_of_indonesian_and_english_is_chosen() {
        for (header, expected) in [
            ("en", Some(Locale::En)),
            ("en-US,en;q=0.9", Some(Locale::En)),
            ("id-ID,id;q=0.9,en;q=0.8", Some(Locale::Id)),
            ("fr, en;q=0.5, id;q=0.7", Some(Locale::Id)),
            ("in", Some(Locale::Id)),
            ("EN-gb", Some(Locale::En)),
            ("en;q=0, id;q=0.1", Some(Locale::Id)),
            ("fr, de", None),
            ("*", None),
            ("", None),
            ("en;q=abc", None),
        ] {
            assert_eq!(from_accept_language(header), expected, "{header}");
        }
    }
}
