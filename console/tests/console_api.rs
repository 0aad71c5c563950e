//! The console's HTTP surface without a browser: access control, CSRF, the item lock
//! between two moderators, the audit log, the decisions feed, and privacy of what
//! people type.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use tower::ServiceExt;

use vigie_console::{
    router, AppState, ConsoleSettings, DecisionPublisher, LexicalEmbedder, Role, Store,
};
use vigie_pipeline::stages::redaction::RedactionStage;
use vigie_pipeline::testing::moderation_record as record;
use vigie_rules::{ReplaceMode, RuleSet};

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Option<(&str, String)>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    let req = match body {
        Some((content_type, b)) => req
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Signs in through the form; returns (cookie header, CSRF token).
async fn sign_in(app: &Router, user: &str, password: &str) -> (String, String) {
    let form = format!("username={user}&password={}", password.replace(' ', "+"));
    let r = send(
        app,
        "POST",
        "/login",
        None,
        None,
        Some(("application/x-www-form-urlencoded", form)),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "login of {user}: {}",
        r.body
    );
    let set = r
        .headers
        .get(header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let s = send(app, "GET", "/api/session", Some(&cookie), None, None).await;
    (cookie, s.json()["csrf"].as_str().unwrap().to_string())
}

struct Console {
    app: Router,
    store: Arc<Store>,
    decisions: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn console(secure_cookies: bool) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("console.db")).unwrap());
    let now = Utc::now();
    for (name, role) in [
        ("alice", Role::Moderator),
        ("bob", Role::Moderator),
        ("sam", Role::Staff),
        ("root", Role::Admin),
    ] {
        store
            .add_user(name, role, &format!("{name} password 123"), "test", now)
            .unwrap();
    }
    store
        .import(
            &[
                record(
                    "m1",
                    "fr",
                    "Le vaccin ROR provoque l'autisme chez les enfants",
                    true,
                    "2024-05-01T09:00:00Z",
                ),
                record(
                    "m2",
                    "en",
                    "The MMR vaccine causes autism in children",
                    true,
                    "2024-05-02T09:00:00Z",
                ),
            ],
            &LexicalEmbedder,
            "test",
            now,
        )
        .unwrap();
    let decisions = dir.path().join("decisions.jsonl");
    let settings = ConsoleSettings {
        secure_cookies,
        ..Default::default()
    };
    let publisher = DecisionPublisher::default().with_file(&decisions).unwrap();
    let state = AppState::new(
        store.clone(),
        Arc::new(LexicalEmbedder),
        RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder),
        settings,
        publisher,
    );
    Console {
        app: router(state),
        store,
        decisions,
        _dir: dir,
    }
}

#[tokio::test]
async fn nothing_is_served_without_signing_in() {
    let c = console(false);
    for uri in [
        "/api/queue",
        "/api/rumours",
        "/api/audit",
        "/api/items/m1",
        "/api/session",
    ] {
        let r = send(&c.app, "GET", uri, None, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(!r.body.contains("autism"), "{uri} leaked content");
    }
    for uri in [
        "/",
        "/queue",
        "/items/m1",
        "/tracker",
        "/audit",
        "/queue.csv",
        "/tracker.csv",
    ] {
        let r = send(&c.app, "GET", uri, None, None, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(r.headers[header::LOCATION], "/login");
    }
    let r = send(
        &c.app,
        "POST",
        "/api/items/m1/claim",
        Some("vigie_session=forged"),
        Some("x"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(
        &c.app,
        "POST",
        "/login",
        None,
        None,
        Some((
            "application/x-www-form-urlencoded",
            "username=alice&password=wrong+password".into(),
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    assert_eq!(
        send(&c.app, "GET", "/healthz", None, None, None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_moderators_cannot_hold_one_item() {
    let c = console(false);
    let (alice, alice_csrf) = sign_in(&c.app, "alice", "alice password 123").await;
    let (bob, bob_csrf) = sign_in(&c.app, "bob", "bob password 123").await;

    let r = send(
        &c.app,
        "POST",
        "/api/items/m1/claim",
        Some(&alice),
        Some(&alice_csrf),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["locked_by"], "alice");
    let r = send(
        &c.app,
        "POST",
        "/api/items/m1/claim",
        Some(&bob),
        Some(&bob_csrf),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.json()["error"].as_str().unwrap().contains("alice"));

    let body = serde_json::json!({"decision": "approve", "reason": "looks fine"}).to_string();
    let r = send(
        &c.app,
        "POST",
        "/api/items/m1/decision",
        Some(&bob),
        Some(&bob_csrf),
        Some(("application/json", body.clone())),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "bob does not hold the lock");
    // A decision without the CSRF token, or with Bob's token on Alice's session, is refused.
    let r = send(
        &c.app,
        "POST",
        "/api/items/m1/decision",
        Some(&alice),
        None,
        Some(("application/json", body.clone())),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &c.app,
        "POST",
        "/api/items/m1/decision",
        Some(&alice),
        Some(&bob_csrf),
        Some(("application/json", body.clone())),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A page form without its token is refused too.
    let r = send(
        &c.app,
        "POST",
        "/items/m1/decide",
        Some(&alice),
        None,
        Some((
            "application/x-www-form-urlencoded",
            "decision=approve&reason=x".into(),
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let body = serde_json::json!({"decision": "rumour", "reason": "known false claim", "new_claim": "MMR causes autism"}).to_string();
    let r = send(
        &c.app,
        "POST",
        "/api/items/m1/decision",
        Some(&alice),
        Some(&alice_csrf),
        Some(("application/json", body)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(
        &c.app,
        "POST",
        "/api/items/m1/claim",
        Some(&bob),
        Some(&bob_csrf),
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "decided items cannot be claimed"
    );

    // Bob's queue now has only m2; the decision went to the feed.
    let queue = send(&c.app, "GET", "/api/queue", Some(&bob), None, None)
        .await
        .json();
    assert_eq!(
        queue
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["m2"]
    );
    let feed = std::fs::read_to_string(&c.decisions).unwrap();
    let lines: Vec<serde_json::Value> = feed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (
            lines[0]["item_id"].as_str(),
            lines[0]["decision"].as_str(),
            lines[0]["moderator"].as_str()
        ),
        (Some("m1"), Some("rumour"), Some("alice"))
    );
    let rumours = send(&c.app, "GET", "/api/rumours", Some(&bob), None, None)
        .await
        .json();
    let confirmed: Vec<&serde_json::Value> = rumours
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["confirmed"] == 1)
        .collect();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(
        confirmed[0]["title"], "MMR causes autism",
        "the new claim names the rumour"
    );
}

#[tokio::test]
async fn roles_limit_what_each_person_does_and_the_admin_reads_the_audit_log() {
    let c = console(false);
    let (sam, sam_csrf) = sign_in(&c.app, "sam", "sam password 123").await;
    let (alice, alice_csrf) = sign_in(&c.app, "alice", "alice password 123").await;
    let (root, _) = sign_in(&c.app, "root", "root password 123").await;

    assert_eq!(
        send(
            &c.app,
            "POST",
            "/api/items/m2/claim",
            Some(&sam),
            Some(&sam_csrf),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&c.app, "GET", "/api/queue", Some(&sam), None, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&c.app, "GET", "/api/items/m1", Some(&sam), None, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&c.app, "GET", "/items/m1", Some(&sam), None, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&c.app, "GET", "/api/audit", Some(&alice), None, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&c.app, "GET", "/audit", Some(&alice), None, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let rumour = send(&c.app, "GET", "/api/rumours", Some(&sam), None, None)
        .await
        .json()[0]["id"]
        .as_i64()
        .unwrap();
    let status = serde_json::json!({"status": "debunked"}).to_string();
    let r = send(
        &c.app,
        "POST",
        &format!("/api/rumours/{rumour}/status"),
        Some(&alice),
        Some(&alice_csrf),
        Some(("application/json", status.clone())),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "moderators do not set rumour status"
    );
    let r = send(
        &c.app,
        "POST",
        &format!("/api/rumours/{rumour}/status"),
        Some(&sam),
        Some(&sam_csrf),
        Some(("application/json", status)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    send(
        &c.app,
        "POST",
        "/api/items/m2/claim",
        Some(&alice),
        Some(&alice_csrf),
        None,
    )
    .await;
    let body =
        serde_json::json!({"decision": "escalate", "reason": "ask the medical lead"}).to_string();
    assert_eq!(
        send(
            &c.app,
            "POST",
            "/api/items/m2/decision",
            Some(&alice),
            Some(&alice_csrf),
            Some(("application/json", body))
        )
        .await
        .status,
        StatusCode::OK
    );

    let audit = send(&c.app, "GET", "/api/audit", Some(&root), None, None)
        .await
        .json();
    let entries: Vec<(String, String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
                e["target"].as_str().unwrap().into(),
                e["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        entries[0],
        (
            "alice".into(),
            "decide:escalate".into(),
            "m2".into(),
            "ask the medical lead".into()
        )
    );
    assert_eq!(entries[1].1, "claim");
    assert!(entries
        .iter()
        .any(|e| e.0 == "sam" && e.1 == "rumour_status"));
    assert!(entries.iter().filter(|e| e.1 == "login").count() >= 3);
    assert!(
        audit[0]["at"].as_str().unwrap().ends_with('Z'),
        "times are UTC"
    );
    let page = send(&c.app, "GET", "/audit", Some(&root), None, None).await;
    assert!(page.body.contains("ask the medical lead"));
    let csv = send(&c.app, "GET", "/audit.csv", Some(&root), None, None).await;
    assert!(csv.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv
        .body
        .starts_with("id,at,actor,action,target,reason,detail\n"));
}

#[tokio::test]
async fn identifiers_typed_by_moderators_are_redacted_before_storage() {
    let c = console(false);
    let (alice, csrf) = sign_in(&c.app, "alice", "alice password 123").await;
    send(
        &c.app,
        "POST",
        "/api/items/m1/claim",
        Some(&alice),
        Some(&csrf),
        None,
    )
    .await;
    let phone = "+33 6 12 34 56 78";
    let email = "marie.dupont@example.org";
    let body = serde_json::json!({
        "decision": "rumour",
        "reason": format!("the author wrote to {email} and {phone}"),
        "new_claim": format!("call {phone} for the cure"),
    })
    .to_string();
    let r = send(
        &c.app,
        "POST",
        "/api/items/m1/decision",
        Some(&alice),
        Some(&csrf),
        Some(("application/json", body)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stored = c.store.dump_text().unwrap();
    let feed = std::fs::read_to_string(&c.decisions).unwrap();
    for (what, text) in [
        ("database", &stored),
        ("decisions feed", &feed),
        ("response", &r.body),
    ] {
        assert!(
            !text.contains("12 34 56 78") && !text.contains(email),
            "{what} holds an identifier"
        );
    }
    assert!(stored.contains("[PHONE]") && stored.contains("[EMAIL]"));
}

#[tokio::test]
async fn cookies_are_secure_when_asked_or_behind_https() {
    let c = console(true);
    let r = send(
        &c.app,
        "POST",
        "/login",
        None,
        None,
        Some((
            "application/x-www-form-urlencoded",
            "username=alice&password=alice+password+123".into(),
        )),
    )
    .await;
    assert!(r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("; Secure"));
    let c = console(false);
    let req = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(Body::from("username=alice&password=alice+password+123"))
        .unwrap();
    let res = c.app.clone().oneshot(req).await.unwrap();
    assert!(res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("; Secure"));
    // A login form posted from another site is refused.
    let req = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "console.example.org")
        .header(header::ORIGIN, "https://evil.example.com")
        .body(Body::from("username=alice&password=alice+password+123"))
        .unwrap();
    assert_eq!(
        c.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // Nor is one from an opaque origin (sandboxed frame, cross-site redirect).
    let req = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "console.example.org")
        .header(header::ORIGIN, "null")
        .body(Body::from("username=alice&password=alice+password+123"))
        .unwrap();
    assert_eq!(
        c.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}
