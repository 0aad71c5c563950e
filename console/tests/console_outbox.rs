//! Decisions are never lost between the database and the feed: a decision is written with
//! its outbox row in one transaction, and the publisher delivers the outbox at least once.
//! The console is stopped (store and publisher dropped, as a killed process leaves them)
//! once between writing and publishing and once between publishing and marking sent; a
//! new instance on the same database and feed file delivers every decision, and a
//! decision sent twice carries the same decision id.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use chrono::{Duration, Utc};

use vigie_console::{DecisionInput, DecisionPublisher, LexicalEmbedder, Role, Store};
use vigie_pipeline::testing::moderation_record as record;

fn decide(store: &Store, id: &str, decision: &str) -> String {
    let now = Utc::now();
    store
        .claim(id, "amina", now, Duration::minutes(15))
        .unwrap();
    store
        .decide(
            id,
            "amina",
            &DecisionInput {
                decision: decision.into(),
                reason: "checked against the fact sheet".into(),
                claim_id: None,
                new_claim: (decision == "rumour").then(|| "the vaccine causes sterility".into()),
            },
            &LexicalEmbedder,
            now,
        )
        .unwrap()
        .decision_id
}

fn feed(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn no_decision_is_lost_when_the_console_stops_between_write_and_publish() {
    let dir = tempfile::tempdir().unwrap();
    let (db, out) = (
        dir.path().join("console.db"),
        dir.path().join("decisions.jsonl"),
    );
    let mut ids = Vec::new();
    {
        let store = Store::open(&db).unwrap();
        let now = Utc::now();
        store
            .add_user("amina", Role::Moderator, "amina password 1", "test", now)
            .unwrap();
        let records: Vec<_> = (0..4)
            .map(|i| {
                record(
                    &format!("p{i}"),
                    "fr",
                    "Le vaccin rend stérile",
                    true,
                    "2026-12-01T10:00:00Z",
                )
            })
            .collect();
        store
            .import(&records, &LexicalEmbedder, "test", now)
            .unwrap();
        let publisher = DecisionPublisher::default().with_file(&out).unwrap();

        // One decision delivered normally.
        ids.push(decide(&store, "p0", "remove"));
        assert_eq!(publisher.deliver(&store).await, 1);
        // Two written, then the console stops before publishing them.
        ids.push(decide(&store, "p1", "approve"));
        ids.push(decide(&store, "p2", "rumour"));
        // One published to the feed, then the console stops before marking it sent.
        ids.push(decide(&store, "p3", "escalate"));
        let pending = store.pending_decisions(10).unwrap();
        let (_, _, line) = pending.iter().find(|(_, item, _)| item == "p3").unwrap();
        let mut file = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
        writeln!(file, "{line}").unwrap();
        assert_eq!(
            feed(&out).len(),
            2,
            "before the stop the feed has two decisions"
        );
    }

    // A new instance on the same database and file.
    let store = Store::open(&db).unwrap();
    let publisher = DecisionPublisher::default().with_file(&out).unwrap();
    assert_eq!(
        publisher.deliver(&store).await,
        3,
        "the three left in the outbox go out"
    );
    assert_eq!(publisher.deliver(&store).await, 0, "and only once");
    assert!(store.pending_decisions(10).unwrap().is_empty());

    let lines = feed(&out);
    let delivered: BTreeSet<String> = lines
        .iter()
        .map(|l| l["decision_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        delivered,
        ids.iter().cloned().collect(),
        "every decision is in the feed"
    );
    // Duplicates are the same decision: same id, same content.
    let mut by_id: BTreeMap<String, Vec<&serde_json::Value>> = BTreeMap::new();
    for l in &lines {
        by_id
            .entry(l["decision_id"].as_str().unwrap().to_string())
            .or_default()
            .push(l);
    }
    let twice: Vec<_> = by_id.iter().filter(|(_, v)| v.len() > 1).collect();
    assert_eq!(
        twice.len(),
        1,
        "only the decision published before the stop came twice"
    );
    assert!(twice[0].1.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(lines.len(), 5);
    assert!(ids.iter().all(|id| id.starts_with("dec-") && id.len() > 10));
}
