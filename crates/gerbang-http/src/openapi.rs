//! The OpenAPI 3.1 document of the JSON API, generated from the handlers' and bodies' annotations
//! and served at `GET /openapi.json`. Error codes and their messages are listed in
//! `docs/accounts.md` and `docs/verifications.md`.

use axum::Json;
use axum::response::IntoResponse;
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

pub(crate) async fn document() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_router_is_in_the_document() {
        let doc = ApiDoc::openapi();
        let json = serde_json::to_value(&doc).unwrap_or_default();
        for path in [
            "/v1/verifications",
            "/v1/verifications/{id}/check",
            "/v1/accounts/registration",
            "/v1/accounts/login",
            "/v1/accounts/recovery/confirm",
            "/v1/session/devices/{key}",
            "/v1/session/step-up/confirm",
            "/v1/introspect",
        ] {
            assert!(json["paths"].get(path).is_some(), "{path} is missing");
        }
        assert!(json["components"]["schemas"].get("ErrorBody").is_some());
        assert!(json["components"]["schemas"].get("LoginBody").is_some());
        assert!(
            json["components"]["securitySchemes"]
                .get("session")
                .is_some()
        );
    }
}
