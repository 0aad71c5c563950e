//! Two console servers on one PostgreSQL database, as an operator runs them behind a
//! load balancer or in two countries: each listens on its own port with its own store
//! and connection pool, and they share only the database. Claims stay exclusive across them, a session made on
//! one works on the other, every item is decided once, and the audit log stays
//! append-only. Runs when `VIGIE_TEST_POSTGRES` names a server (scripts/test starts
//! one; with `VIGIE_REQUIRE_POSTGRES=1` a missing server fails the test).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use reqwest::StatusCode;

use vigie_console::store::test_db;
use vigie_console::{
    router, serve, AppState, ConsoleSettings, DecisionPublisher, LexicalEmbedder, Role,
    ServeLimits, Store,
};
use vigie_pipeline::stages::redaction::RedactionStage;
use vigie_pipeline::testing::moderation_record as record;
use vigie_rules::{ReplaceMode, RuleSet};

const ITEMS: usize = 24;

/// Starts a console server on a free loopback port; returns its base URL.
async fn start_instance(store: Arc<Store>, decisions: &std::path::Path) -> String {
    let state = AppState::new(
        store,
        Arc::new(LexicalEmbedder),
        RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder),
        ConsoleSettings::default(),
        DecisionPublisher::default().with_file(decisions).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        router(state),
        ServeLimits::default(),
        std::future::pending(),
    ));
    base
}

/// A moderator's browser-like client: signed in on `base`, with its CSRF token.
struct Moderator {
    http: reqwest::Client,
    cookie: String,
    csrf: String,
}

impl Moderator {
    async fn sign_in(base: &str, name: &str, password: &str) -> Moderator {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = http
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "username={name}&password={}",
                password.replace(' ', "+")
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign-in of {name}");
        let cookie = res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let mut me = Moderator {
            http,
            cookie,
            csrf: String::new(),
        };
        me.csrf = me.call(base, "GET", "/api/session", None).await.1["csrf"]
            .as_str()
            .expect("a CSRF token")
            .to_string();
        me
    }

    async fn call(
        &self,
        base: &str,
        method: &str,
        path: &str,
        json: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(j) = json {
            req = req.json(&j);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_database_with_exclusive_claims() {
    let Some(base) = test_db::postgres_url() else {
        eprintln!(
            "skipped: {} is not set (scripts/test sets it)",
            test_db::URL_VAR
        );
        return;
    };
    let url = test_db::fresh_postgres_url(&base);
    // Both instances start at once: the migrations run once, under the write lock.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Store::connect(&url));
        let b = s.spawn(|| Store::connect(&url));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_eq!(a.engine(), "postgres");
    assert_eq!(a.schema_version().unwrap(), b.schema_version().unwrap());
    let (a, b) = (Arc::new(a), Arc::new(b));

    let now = Utc::now();
    a.add_user("alice", Role::Moderator, "alice password 123", "test", now)
        .unwrap();
    a.add_user("bob", Role::Moderator, "bob password 123", "test", now)
        .unwrap();
    let records: Vec<_> = (0..ITEMS)
        .map(|i| {
            record(
                &format!("post-{i:02}"),
                if i % 2 == 0 { "fr" } else { "en" },
                &format!("Rumeur numéro {i} sur le vaccin et la fertilité"),
                true,
                "2024-05-01T09:00:00Z",
            )
        })
        .collect();
    // Imported through the other instance: what one writes, the other reads.
    assert_eq!(
        b.import(&records, &LexicalEmbedder, "test", now)
            .unwrap()
            .new,
        ITEMS
    );

    let dir = tempfile::tempdir().unwrap();
    let server_a = start_instance(a.clone(), &dir.path().join("decisions-a.jsonl")).await;
    let server_b = start_instance(b.clone(), &dir.path().join("decisions-b.jsonl")).await;
    let alice = Moderator::sign_in(&server_a, "alice", "alice password 123").await;
    let bob = Moderator::sign_in(&server_b, "bob", "bob password 123").await;
    // A session lives in the database: behind a load balancer, the next request may
    // reach the other server.
    let (status, me) = bob.call(&server_a, "GET", "/api/session", None).await;
    assert_eq!((status, me["user"].as_str()), (StatusCode::OK, Some("bob")));

    // Every item, claimed by both moderators at the same moment on different servers:
    // exactly one of them gets it, the other is told who holds it.
    let mut holders: BTreeMap<String, &str> = BTreeMap::new();
    for i in 0..ITEMS {
        let path = format!("/api/items/post-{i:02}/claim");
        let ((sa, ba), (sb, bb)) = tokio::join!(
            alice.call(&server_a, "POST", &path, None),
            bob.call(&server_b, "POST", &path, None),
        );
        let winner = match (sa, sb) {
            (StatusCode::OK, StatusCode::CONFLICT) => "alice",
            (StatusCode::CONFLICT, StatusCode::OK) => "bob",
            other => panic!("item {i}: both or neither claimed it: {other:?} {ba} {bb}"),
        };
        holders.insert(format!("post-{i:02}"), winner);
    }

    // Each decides what they hold, on their own server; the other moderator, on the
    // other server, is refused.
    for (id, holder) in &holders {
        let ((me, mine), (other, theirs)) = if *holder == "alice" {
            ((&alice, &server_a), (&bob, &server_b))
        } else {
            ((&bob, &server_b), (&alice, &server_a))
        };
        let body = serde_json::json!({"decision": "approve", "reason": "checked"});
        let path = format!("/api/items/{id}/decision");
        let (status, _) = other.call(theirs, "POST", &path, Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "{id} decided by its non-holder"
        );
        let (status, reply) = me.call(mine, "POST", &path, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{id}: {reply}");
        assert_eq!(reply["moderator"], *holder);
    }

    // Every item decided once, by its holder, seen alike from both instances.
    for store in [&a, &b] {
        let decided = store.decided_items().unwrap();
        assert_eq!(decided.len(), ITEMS);
        for (item, _) in &decided {
            assert_eq!(item.decided_by.as_deref(), Some(holders[&item.id]));
        }
        assert!(store.queue(&Default::default(), 100).unwrap().is_empty());
    }
    let claims = a
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "claim")
        .count();
    assert_eq!(
        claims, ITEMS,
        "one successful claim per item in the shared audit log"
    );

    // The audit log refuses change from any instance, TRUNCATE included.
    for sql in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        assert!(b.execute_raw(sql).is_err(), "{sql} went through");
    }
    assert!(a.audit_log(1000).unwrap().len() >= 2 * ITEMS);
}
