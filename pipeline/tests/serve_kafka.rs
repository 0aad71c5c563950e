//! The screening API's moderation sink on a real broker: flagged posts screened over
//! HTTP are on the moderation topic (keyed by post id, redacted) before their answer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use vigie_pipeline::config::ServeConfig;
use vigie_pipeline::contract::ScreenedRecord;
use vigie_pipeline::metrics::Metrics;
use vigie_pipeline::screener::Screener;
use vigie_pipeline::serve::{router, Api, ApiKeys};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagged_posts_reach_the_moderation_topic_before_the_answer() {
    let broker = common::Broker::start();
    broker.create_topics(&common::TOPICS).await;
    let mut config = common::kafka_config(&broker.address, 16);
    config.risk.enabled = false;
    let screener = Arc::new(Screener::with_risk(&config, None).unwrap());
    let cfg = ServeConfig {
        to_kafka: true,
        ..ServeConfig::default()
    };
    let keys = ApiKeys::load(&cfg, Some("k")).unwrap();
    let api = Api::with_kafka(
        screener,
        &cfg,
        Some(&config.kafka),
        keys,
        Arc::new(Metrics::new()),
    )
    .unwrap();
    let app = router(api, 1 << 16);
    let posts = [
        ("a1", "Rappeler Mme Diallo au 06 12 34 56 78 demain"),
        ("a2", "Séance de vaccination jeudi à 10h"),
        ("a3", "write to awa.diop@example.sn about the results"),
    ];
    for (id, text) in posts {
        let req = Request::post("/v1/screen")
            .header(header::AUTHORIZATION, "Bearer k")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                serde_json::json!({"id": id, "text": text, "channel": "forum"}).to_string(),
            ))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let read = common::read_all(&broker.address, "moderation", 2, Duration::from_secs(3)).await;
    let mut ids: Vec<String> = read
        .iter()
        .map(|r| {
            serde_json::from_slice::<ScreenedRecord>(&r.payload)
                .unwrap()
                .id
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["a1", "a3"], "the flagged posts, once each");
    for r in &read {
        let text = String::from_utf8_lossy(&r.payload);
        assert!(
            !text.contains("06 12 34 56 78") && !text.contains("awa.diop"),
            "{text}"
        );
    }
}
