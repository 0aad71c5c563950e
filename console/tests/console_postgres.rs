//! Two console instances on one PostgreSQL database, as an operator runs them behind a
//! load balancer or in two countries: each has its own store and connection pool, and
//! they share only the database. Claims stay exclusive across them, a session made on
//! one works on the other, every item is decided once, and the audit log stays
//! append-only. Runs when `VIGIE_TEST_POSTGRES` names a server (scripts/test starts
//! one; with `VIGIE_REQUIRE_POSTGRES=1` a missing server fails the test).

mod session;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;
use chrono::Utc;

use vigie_console::store::test_db;
use vigie_console::{
    router, AppState, ConsoleSettings, DecisionPublisher, LexicalEmbedder, Role, Store,
};
use vigie_pipeline::stages::redaction::RedactionStage;
use vigie_pipeline::testing::moderation_record as record;
use vigie_rules::{ReplaceMode, RuleSet};

const ITEMS: usize = 24;

fn instance(store: Arc<Store>, decisions: &std::path::Path) -> Router {
    let state = AppState::new(
        store,
        Arc::new(LexicalEmbedder),
        RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder),
        ConsoleSettings::default(),
        DecisionPublisher::default().with_file(decisions).unwrap(),
    );
    router(state)
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
    let app_a = instance(a.clone(), &dir.path().join("decisions-a.jsonl"));
    let app_b = instance(b.clone(), &dir.path().join("decisions-b.jsonl"));
    let alice = session::sign_in(&app_a, "alice", "alice password 123").await;
    let bob = session::sign_in(&app_b, "bob", "bob password 123").await;
    // A session lives in the database: behind a load balancer, the next request may
    // reach the other instance.
    let bob_csrf = session::csrf(&app_a, &bob).await;
    let alice_csrf = session::csrf(&app_b, &alice).await;

    // Every item, claimed by both moderators at the same moment on different instances:
    // exactly one of them gets it, the other is told who holds it.
    let mut holders: BTreeMap<String, &str> = BTreeMap::new();
    for i in 0..ITEMS {
        let uri = format!("/api/items/post-{i:02}/claim");
        let ((sa, ba), (sb, bb)) = tokio::join!(
            session::call(&app_a, "POST", &uri, &alice, &alice_csrf, None),
            session::call(&app_b, "POST", &uri, &bob, &bob_csrf, None),
        );
        let winner = match (sa, sb) {
            (StatusCode::OK, StatusCode::CONFLICT) => "alice",
            (StatusCode::CONFLICT, StatusCode::OK) => "bob",
            other => panic!("item {i}: both or neither claimed it: {other:?} {ba} {bb}"),
        };
        holders.insert(format!("post-{i:02}"), winner);
    }

    // Each decides what they hold, through their own instance; deciding what the other
    // holds is refused.
    for (id, holder) in &holders {
        let (app, cookie, csrf, other_app, other, other_csrf) = if *holder == "alice" {
            (&app_a, &alice, &alice_csrf, &app_b, &bob, &bob_csrf)
        } else {
            (&app_b, &bob, &bob_csrf, &app_a, &alice, &alice_csrf)
        };
        let body = serde_json::json!({"decision": "approve", "reason": "checked"});
        let uri = format!("/api/items/{id}/decision");
        let (status, _) = session::call(
            other_app,
            "POST",
            &uri,
            other,
            other_csrf,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "{id} decided by its non-holder"
        );
        let (status, reply) = session::call(app, "POST", &uri, cookie, csrf, Some(body)).await;
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
