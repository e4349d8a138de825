//! Liveness and readiness. `/healthz` answers whenever the process serves HTTP; `/readyz` only when
//! the database answers too, so a load balancer stops sending traffic to an instance that would fail.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gerbang_store::Store;
use serde_json::{Value, json};

use crate::HttpState;
use crate::error::ApiError;

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", responses((status = 200, body = Object, description = "{\"status\": \"ok\"}")))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", responses((status = 200, body = Object, description = "{\"status\": \"ready\", \"database\": …}")))]
pub(crate) async fn readyz<S: Store>(
    State(state): State<HttpState<S>>,
) -> Result<Json<Value>, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(
            json!({ "status": "ready", "database": state.store.backend() }),
        )),
        Err(error) => {
            tracing::warn!(error = %error, "not ready: the database does not answer");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "Layanan belum siap: basis data tidak menjawab. Coba lagi sebentar lagi.",
                "The service is not ready: the database does not answer. Try again shortly.",
            )
            .retry_after(5))
        }
    }
}

/// The Prometheus / OpenMetrics text: delivery per provider, circuits, receipts, refused webhooks,
/// and the outbox depth read now. Holds no personal data. With `metrics.token` configured, only a
/// request bearing it is answered (`401 unauthorized` otherwise).
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", security((), ("metrics_token" = [])), responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub(crate) async fn metrics<S: Store>(
    State(state): State<HttpState<S>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(token) = &state.settings.metrics_token {
        let authorization = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if !token.admits(authorization) {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Token metrik tidak ada atau tidak dikenal.",
                "The metrics token is missing or unknown.",
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    state
        .metrics
        .set_blocks_braked(state.engine.brake().braked_count());
    let now = state.engine.now();
    for queue in state.engine.admission().state(state.engine.pace(), now) {
        if let Some(wait) = queue.wait {
            let seconds = wait.num_milliseconds() as f64 / 1000.0;
            state
                .metrics
                .set_queue_wait(queue.channel.as_str(), seconds);
        }
    }
    for budget in state.engine.budgets().states(now) {
        state
            .metrics
            .set_budget(budget.scope, &budget.name, budget.spent, budget.cap);
    }
    match state.store.queued_messages().await {
        Ok(queued) => state.metrics.set_outbox_queued(queued),
        Err(error) => tracing::warn!(%error, "metrics: the outbox depth could not be read"),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
