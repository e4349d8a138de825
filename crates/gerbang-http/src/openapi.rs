//! The OpenAPI 3.1 document of the HTTP surface, generated from the handlers' and bodies'
//! annotations, completed by [`served`] and served at `GET /openapi.json`: every error status an
//! operation can answer (from the shared error mappings, not a catch-all `4XX`), the closed sets of
//! `purpose`, `channel`, `action` and error `code` as enums. Error codes and their messages are
//! listed in `docs/accounts.md` and `docs/verifications.md`. The development inbox is left out.

use axum::Json;
use axum::response::IntoResponse;
use gerbang_domain::verification::Channel;
use gerbang_domain::verification::purpose::{Purpose, SensitiveAction};
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{accounts, verifications};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "gerbang",
        description = "Identity verification and one-time passwords for participant accounts. \
                       Every error answers with the ErrorBody shape: a stable code and a message \
                       in Indonesian and English."
    ),
    paths(
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
        document,
        crate::webhooks::subscribe,
        crate::webhooks::receive,
        verifications::start,
        verifications::status,
        verifications::resend,
        verifications::check,
        verifications::cancel,
        accounts::captcha,
        accounts::identify,
        accounts::register_contact,
        accounts::confirm_registration,
        accounts::login,
        accounts::confirm_login,
        accounts::resend,
        accounts::start_recovery,
        accounts::send_recovery,
        accounts::complete_recovery,
        accounts::session,
        accounts::refresh,
        accounts::logout,
        accounts::devices,
        accounts::revoke_device,
        accounts::start_contact_change,
        accounts::confirm_contact_change,
        accounts::start_step_up,
        accounts::confirm_step_up,
        accounts::introspect,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "verifications", description = "OTPs for trusted internal services (API token)"),
        (name = "accounts", description = "Participant accounts: registration, login, sessions, recovery, contact change, step-up, introspection"),
        (name = "webhooks", description = "Delivery status callbacks from providers (signed; no API token)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The two bearer schemes: API tokens of internal services, and participants' session tokens.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A client token from api.clients"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("metrics.token, when configured"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("gbs_ and 64 hex digits")
                    .description(Some("A participant's session token"))
                    .build(),
            ),
        );
    }
}

#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi_document", tag = "operations", responses((status = 200, body = Object, description = "this document")))]
pub(crate) async fn document() -> impl IntoResponse {
    Json(served())
}

/// Every `code` an error body can carry.
pub const ERROR_CODES: &[&str] = &[
    "account_locked_permanently",
    "account_locked_temporarily",
    "account_not_found",
    "action_details_invalid",
    "action_missing",
    "action_not_allowed",
    "action_unknown",
    "already_registered",
    "birth_date_invalid",
    "body_invalid",
    "body_malformed",
    "body_not_json",
    "body_timeout",
    "body_too_large",
    "budget_exhausted",
    "busy",
    "captcha_expired",
    "captcha_malformed",
    "captcha_not_builtin",
    "captcha_required",
    "captcha_unavailable",
    "captcha_used",
    "captcha_wrong",
    "card_number_length",
    "card_number_not_digits",
    "channel_destination_mismatch",
    "channel_not_on_file",
    "channel_unknown",
    "contact_missing",
    "contact_unchanged",
    "cooling_off_after_phone_change",
    "destination_suspended",
    "device_id_characters",
    "device_id_missing",
    "device_id_too_long",
    "device_not_found",
    "email_malformed",
    "email_taken",
    "email_too_long",
    "family_card_number_length",
    "family_card_number_not_digits",
    "family_card_number_province",
    "family_card_number_sequence",
    "flow_mismatch",
    "flow_not_found",
    "identifier_invalid",
    "identifier_length",
    "internal",
    "invalid_credentials",
    "kpj_number_length",
    "kpj_number_not_digits",
    "locale_unknown",
    "method_not_allowed",
    "name_empty",
    "name_invalid",
    "name_too_long",
    "nik_date",
    "nik_length",
    "nik_not_digits",
    "nik_province",
    "nik_sequence",
    "not_found",
    "not_ready",
    "origin_device_invalid",
    "origin_ip_invalid",
    "otp_already_used",
    "otp_attempts_exhausted",
    "otp_expired",
    "otp_incorrect",
    "otp_malformed",
    "participant_account_invalid",
    "participant_inactive",
    "participant_not_found",
    "passwords_differ",
    "phone_not_a_number",
    "phone_not_indonesian",
    "phone_not_mobile",
    "phone_taken",
    "phone_unallocated_prefix",
    "purpose_unknown",
    "queue_full",
    "rate_limited",
    "recovery_unmatched",
    "registry_unavailable",
    "resend_countdown",
    "resend_limit_reached",
    "session_invalid",
    "temporarily_unavailable",
    "too_many_attempts",
    "unauthorized",
    "verification_cancelled",
    "verification_expired",
    "verification_not_found",
    "weak_password",
    "webhook_bad_signature",
    "webhook_malformed",
    "webhook_refused",
    "webhook_too_large",
    "webhook_unknown_provider",
];

/// What the verification engine's refusals answer (`verifications::engine_error`).
const ENGINE: &[u16] = &[400, 404, 409, 410, 422, 429, 503];
/// What account refusals answer (`accounts::account_error`, which includes the engine's).
const ACCOUNT: &[u16] = &[400, 401, 403, 404, 409, 410, 422, 423, 429, 503];

/// The error statuses an operation can answer. Any request can carry a broken, slow or
/// oversized body (400, 408, 413: `crate::body`); the rest follows the route's family.
pub fn error_statuses(method: &str, path: &str, has_json_body: bool) -> Vec<u16> {
    let mut statuses = vec![400, 408, 413];
    let family: &[u16] = match path {
        "/healthz" | "/openapi.json" => &[],
        "/readyz" => &[503],
        "/metrics" => &[401],
        p if p.starts_with("/v1/webhooks/") && method == "get" => &[403, 404],
        p if p.starts_with("/v1/webhooks/") => &[401, 404, 503],
        p if p.starts_with("/v1/verifications") => &[401],
        "/v1/introspect" => &[401, 503],
        _ => ACCOUNT,
    };
    statuses.extend_from_slice(family);
    if path.starts_with("/v1/verifications") {
        statuses.extend_from_slice(ENGINE);
    }
    if path.starts_with("/v1/") && !path.starts_with("/v1/webhooks/") {
        // The account routes answer 404 when accounts are not configured.
        statuses.push(404);
        if has_json_body {
            statuses.push(415);
        }
    }
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

fn reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Error")
}

/// Gives a string property the closed set of its values (keeping `null` when it may be absent).
fn close_values(property: &mut Value, values: &[&str]) {
    let Some(schema) = property.as_object_mut() else {
        return;
    };
    let nullable = match schema.get("type") {
        Some(Value::String(kind)) => {
            if kind != "string" {
                return;
            }
            false
        }
        Some(Value::Array(kinds)) if kinds.iter().any(|k| k == "string") => {
            kinds.iter().any(|k| k == "null")
        }
        _ => return,
    };
    let mut allowed: Vec<Value> = values.iter().map(|v| json!(v)).collect();
    if nullable {
        allowed.push(Value::Null);
    }
    schema.insert("enum".into(), Value::Array(allowed));
}

/// The document as served: the generated one with its error answers and enums completed.
pub fn served() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let error = json!({"$ref": "#/components/schemas/ErrorBody"});
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                let has_json_body = operation
                    .pointer("/requestBody/content/application~1json")
                    .is_some();
                let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                else {
                    continue;
                };
                responses.remove("4XX");
                responses.remove("5XX");
                for status in error_statuses(method, path, has_json_body) {
                    responses.entry(status.to_string()).or_insert_with(|| {
                        json!({
                            "description": reason(status),
                            "content": {"application/json": {"schema": error.clone()}},
                        })
                    });
                }
            }
        }
    }
    let purposes: Vec<&str> = Purpose::ALL.iter().map(|p| p.as_str()).collect();
    let channels: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
    let actions: Vec<&str> = SensitiveAction::ALL.iter().map(|a| a.as_str()).collect();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (property, value) in properties.iter_mut() {
                match property.as_str() {
                    "purpose" => close_values(value, &purposes),
                    "channel" => close_values(value, &channels),
                    "action" => close_values(value, &actions),
                    "code" if name == "ErrorBody" => close_values(value, ERROR_CODES),
                    _ => {}
                }
            }
        }
    }
    doc
}

/// Whether the served document declares that `method uri` may answer `status` (and, for an
/// error, its `code`). Tests call it on every answer they get, so an answer a handler can give
/// but the document does not declare fails a test. Unknown paths (the `not_found` fallback) and
/// the development inbox are not in the document.
pub fn declared(method: &str, uri: &str, status: u16, code: Option<&str>) -> Result<(), String> {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(served);
    let path = uri.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let template = doc["paths"].as_object().and_then(|paths| {
        paths.keys().find(|template| {
            let pattern: Vec<&str> = template.split('/').collect();
            pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p.starts_with('{') || p == s)
        })
    });
    let Some(template) = template else {
        return if code == Some("not_found") || path.starts_with("/dev/") {
            Ok(())
        } else {
            Err(format!("{method} {path}: no such path in the document"))
        };
    };
    let operation = &doc["paths"][template.as_str()][method.to_ascii_lowercase()];
    if operation.is_null() {
        return if status == 405 {
            Ok(())
        } else {
            Err(format!(
                "{method} {template}: no such operation in the document"
            ))
        };
    }
    if operation["responses"].get(status.to_string()).is_none() {
        return Err(format!(
            "{method} {template} answered {status}, which the document does not declare"
        ));
    }
    if let Some(code) = code.filter(|code| !ERROR_CODES.contains(code)) {
        return Err(format!(
            "{method} {template}: error code {code} is not in ErrorBody's enum"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths `router` serves, read off its source: every `.route("…"` in lib.rs.
    fn routed_paths() -> Vec<String> {
        let source = include_str!("lib.rs");
        source
            .split(".route(")
            .skip(1)
            .filter_map(|rest| {
                let start = rest.find('"')? + 1;
                let end = start + rest[start..].find('"')?;
                Some(rest[start..end].to_owned())
            })
            .collect()
    }

    #[test]
    fn every_route_of_the_router_is_in_the_document() {
        let doc = served();
        let routed = routed_paths();
        assert!(routed.len() > 25, "{routed:?}");
        for path in routed {
            if path.starts_with("/dev/") {
                continue; // the development inbox: development profile only, not an API
            }
            assert!(doc["paths"].get(&path).is_some(), "{path} is missing");
        }
        assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
        assert!(doc["components"]["schemas"].get("FlowResendBody").is_some());
        assert!(doc["components"]["schemas"].get("ResendBody").is_some());
    }

    #[test]
    fn operation_ids_are_unique_and_no_error_is_a_catch_all() {
        let doc = served();
        let mut seen = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap().to_owned();
                assert!(seen.insert(id.clone()), "{id} used twice ({method} {path})");
                let responses = operation["responses"].as_object().unwrap();
                assert!(!responses.contains_key("4XX") && !responses.contains_key("5XX"));
                for status in ["400", "408", "413"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
        let login = &doc["paths"]["/v1/accounts/login"]["post"]["responses"];
        assert!(login.get("200").is_some() && login.get("202").is_some());
        let confirm = &doc["paths"]["/v1/session/contact/confirm"]["post"]["responses"];
        assert!(confirm.get("200").is_some() && confirm.get("202").is_some());
        let start = &doc["components"]["schemas"]["StartBody"]["properties"];
        assert_eq!(
            start["purpose"]["enum"].as_array().unwrap().len(),
            Purpose::ALL.len()
        );
        assert_eq!(
            start["channel"]["enum"].as_array().unwrap().len(),
            Channel::ALL.len()
        );
        let code = &doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"];
        assert!(code.as_array().unwrap().contains(&json!("body_too_large")));
    }

    #[test]
    fn an_answer_is_checked_against_its_operation() {
        assert_eq!(declared("POST", "/v1/accounts/login", 202, None), Ok(()));
        assert_eq!(
            declared(
                "POST",
                "/v1/verifications/vf_1/check",
                422,
                Some("otp_incorrect")
            ),
            Ok(())
        );
        assert!(declared("GET", "/healthz", 503, Some("not_ready")).is_err());
        assert!(declared("POST", "/v1/accounts/login", 400, Some("made_up")).is_err());
        assert!(declared("PUT", "/v1/accounts/login", 200, None).is_err());
        assert_eq!(declared("GET", "/no/such", 404, Some("not_found")), Ok(()));
    }

    /// Validated by `openapi-spec-validator` (PyPI), run through python3: the test fails loudly
    /// when either is missing rather than passing without checking.
    #[test]
    fn the_served_document_is_valid_openapi_3_1() {
        let dir = std::env::temp_dir().join(format!("gerbang-openapi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("openapi.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&served()).unwrap()).unwrap();
        let script = "import json, sys\n\
                      from openapi_spec_validator import validate\n\
                      from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
                      doc = json.load(open(sys.argv[1]))\n\
                      assert doc['openapi'].startswith('3.1'), doc['openapi']\n\
                      validate(doc, cls=OpenAPIV31SpecValidator)\n\
                      print('valid')\n";
        let output = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&file)
            .output()
            .unwrap_or_else(|error| {
                panic!("python3 is needed to validate the OpenAPI document: {error}")
            });
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("ModuleNotFoundError"),
            "the PyPI package openapi-spec-validator is needed (pip install openapi-spec-validator): {stderr}"
        );
        assert!(
            output.status.success(),
            "the document is not valid OpenAPI 3.1: {stderr}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
