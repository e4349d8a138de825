//! The hosted captcha verifier: the "siteverify" protocol that reCAPTCHA, hCaptcha and Cloudflare
//! Turnstile share — the widget's token and our secret are POSTed as a form, the answer is JSON
//! with `success`. Behind [`gerbang_core::HostedCaptcha`], so the flows know nothing of HTTP.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use gerbang_core::{CaptchaError, HostedCaptcha};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A siteverify endpoint and our secret for it.
#[derive(Debug, Clone)]
pub struct SiteVerify {
    client: reqwest::Client,
    url: url::Url,
    secret: SecretString,
}

#[derive(Debug, Deserialize)]
struct Verdict {
    success: bool,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

impl SiteVerify {
    pub fn new(url: url::Url, secret: SecretString, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the captcha HTTP client: {e}"))?;
        Ok(Self {
            client,
            url,
            secret,
        })
    }

    async fn ask(&self, token: &str) -> Result<(), CaptchaError> {
        let response = self
            .client
            .post(self.url.clone())
            .form(&[("secret", self.secret.expose_secret()), ("response", token)])
            .send()
            .await
            .map_err(|error| {
                tracing::warn!(%error, "the captcha service cannot be reached");
                CaptchaError::Unavailable
            })?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), "the captcha service refused to answer");
            return Err(CaptchaError::Unavailable);
        }
        let verdict: Verdict = response.json().await.map_err(|error| {
            tracing::warn!(%error, "the captcha service answered something else than its verdict");
            CaptchaError::Unavailable
        })?;
        if verdict.success {
            return Ok(());
        }
        // Our own configuration is wrong: not the participant's fault.
        if verdict
            .error_codes
            .iter()
            .any(|code| code.contains("secret") || code == "bad-request")
        {
            tracing::error!(codes = ?verdict.error_codes, "the captcha service refuses our secret");
            return Err(CaptchaError::Unavailable);
        }
        if verdict
            .error_codes
            .iter()
            .any(|code| code == "timeout-or-duplicate")
        {
            return Err(CaptchaError::Used);
        }
        Err(CaptchaError::Wrong)
    }
}

impl HostedCaptcha for SiteVerify {
    fn judge<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), CaptchaError>> + Send + 'a>> {
        Box::pin(self.ask(token))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn verifier(server: &MockServer) -> SiteVerify {
        SiteVerify::new(
            format!("{}/siteverify", server.uri()).parse().unwrap(),
            SecretString::from("rahasia-situs"),
            Duration::from_millis(500),
        )
        .unwrap()
    }

    fn answer(json: serde_json::Value) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json)
    }

    #[tokio::test]
    async fn a_good_token_passes_and_the_secret_and_token_are_sent_as_a_form() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/siteverify"))
            .and(body_string_contains("secret=rahasia-situs"))
            .and(body_string_contains("response=tok-1"))
            .respond_with(answer(serde_json::json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(verifier(&server).await.ask("tok-1").await, Ok(()));
    }

    #[tokio::test]
    async fn verdicts_map_to_wrong_used_or_unavailable() {
        let cases = [
            (
                answer(
                    serde_json::json!({"success": false, "error-codes": ["invalid-input-response"]}),
                ),
                CaptchaError::Wrong,
            ),
            (
                answer(
                    serde_json::json!({"success": false, "error-codes": ["timeout-or-duplicate"]}),
                ),
                CaptchaError::Used,
            ),
            (
                answer(
                    serde_json::json!({"success": false, "error-codes": ["invalid-input-secret"]}),
                ),
                CaptchaError::Unavailable,
            ),
            (ResponseTemplate::new(500), CaptchaError::Unavailable),
            (
                ResponseTemplate::new(200).set_body_string("<html>"),
                CaptchaError::Unavailable,
            ),
            (
                answer(serde_json::json!({"success": true})).set_delay(Duration::from_secs(2)),
                CaptchaError::Unavailable,
            ),
        ];
        for (response, expected) in cases {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(response)
                .mount(&server)
                .await;
            assert_eq!(verifier(&server).await.ask("tok").await, Err(expected));
        }
    }

    #[tokio::test]
    async fn a_gate_over_the_service_asks_it_and_needs_a_token() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(answer(serde_json::json!({"success": true})))
            .mount(&server)
            .await;
        let gate = gerbang_core::CaptchaGate::Hosted(std::sync::Arc::new(verifier(&server).await));
        let given = gerbang_core::CaptchaAnswer {
            token: "tok",
            answer: "",
        };
        // A hosted captcha keeps no marks of its own; the store is only asked for built-in ones.
        let db = gerbang_testkit::TestDatabase::create().await;
        let store = db.sqlite_store().await;
        assert_eq!(gate.judge(Some(given), &store).await, Ok(()));
        assert_eq!(gate.judge(None, &store).await, Err(CaptchaError::Required));
    }
}
