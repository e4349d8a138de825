//! The HTTP surface driven in-process against a real store on the backend under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gerbang_http::{HttpState, router};
use gerbang_store::Store;
use gerbang_testkit::store_test;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn call<S: Store>(
    store: &S,
    method: &str,
    uri: &str,
    request_id: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let response = router(HttpState {
        store: store.clone(),
    })
    .oneshot(request.body(Body::empty()).unwrap())
    .await
    .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

store_test!(
    healthz_answers_ok,
    readyz_is_ready_while_the_database_answers_and_503_with_retry_after_once_it_does_not,
    unknown_routes_and_methods_answer_in_the_error_shape,
    a_well_formed_request_id_is_echoed_and_a_bad_one_replaced,
);

async fn healthz_answers_ok<S: Store>(store: S) {
    let (status, _, body) = call(&store, "GET", "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

async fn readyz_is_ready_while_the_database_answers_and_503_with_retry_after_once_it_does_not<
    S: Store,
>(
    store: S,
) {
    let (status, _, body) = call(&store, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["database"], store.backend());
    store.close().await;
    let (status, headers, body) = call(&store, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["retry_after"], 5);
    assert_eq!(headers["retry-after"], "5");
    assert!(
        body["message"]["id"]
            .as_str()
            .unwrap()
            .contains("basis data")
    );
    assert!(body["message"]["en"].as_str().unwrap().contains("database"));
    assert!(!body["request_id"].as_str().unwrap().is_empty());
}

async fn unknown_routes_and_methods_answer_in_the_error_shape<S: Store>(store: S) {
    let (status, _, body) = call(&store, "GET", "/no/such/thing?nik=3171011708450001", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _, body) = call(&store, "DELETE", "/healthz", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

async fn a_well_formed_request_id_is_echoed_and_a_bad_one_replaced<S: Store>(store: S) {
    let (_, headers, _) = call(&store, "GET", "/healthz", Some("abc-123")).await;
    assert_eq!(headers["x-request-id"], "abc-123");
    let (_, headers, body) = call(&store, "GET", "/nowhere", Some("<script>")).await;
    let id = headers["x-request-id"].to_str().unwrap();
    assert_ne!(id, "<script>");
    assert_eq!(body["request_id"], id);
}
