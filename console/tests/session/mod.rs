//! Signing in to the console's router through its form, for the tests that render pages.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

/// Signs in through the form; returns the session cookie (`name=value`).
pub async fn sign_in(app: &Router, user: &str, password: &str) -> String {
    let req = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "username={user}&password={}",
            password.replace(' ', "+")
        )))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set = res.headers()[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

/// The session's CSRF token (`GET /api/session`), which every API POST carries.
#[allow(dead_code)] // not every test file that includes this module posts to the API
pub async fn csrf(app: &Router, cookie: &str) -> String {
    let (status, body) = call(app, "GET", "/api/session", cookie, "", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["csrf"].as_str().expect("a CSRF token").to_string()
}

/// One API request with the session cookie (and CSRF token, for POSTs): status and JSON.
#[allow(dead_code)]
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: &str,
    csrf: &str,
    json: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", csrf);
    let req = match json {
        Some(j) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(j.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, body)
}
