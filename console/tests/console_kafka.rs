//! The console fed from Kafka against a real broker (tansu): moderation records on the
//! moderation topic reach the console's database (re-deliveries and unreadable messages
//! skipped), and decisions are published to the decisions topic keyed by post id.

#[path = "../../pipeline/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

use common::SetAll;
use vigie_console::feed::consume_kafka;
use vigie_console::store::QueueFilter;
use vigie_console::{DecisionInput, DecisionPublisher, LexicalEmbedder, Store};
use vigie_pipeline::config::KafkaConfig;
use vigie_pipeline::testing::moderation_record as record;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_topic_feeds_the_console_and_decisions_go_back_to_kafka() {
    let broker = common::Broker::start();
    broker
        .create_topics(&[("vigie.moderation", 2), ("vigie.decisions", 1)])
        .await;
    let cfg = KafkaConfig {
        brokers: broker.address.clone(),
        group_id: "vigie-console".into(),
        consumer_properties: common::fast_group_properties().into_iter().collect(),
        ..Default::default()
    };

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    let records = [
        record(
            "k1",
            "fr",
            "Le vaccin ROR provoque l'autisme",
            true,
            "2024-05-01T09:00:00Z",
        ),
        record(
            "k2",
            "en",
            "The MMR vaccine causes autism",
            true,
            "2024-05-02T09:00:00Z",
        ),
        record(
            "k3",
            "fr",
            "Rappeler Mme [PERSON] au [PHONE]",
            false,
            "2024-05-02T10:00:00Z",
        ),
    ];
    let mut payloads: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|r| (r.id.clone(), serde_json::to_vec(r).unwrap()))
        .collect();
    payloads.push(("k1".into(), serde_json::to_vec(&records[0]).unwrap())); // a re-delivery
    payloads.push(("junk".into(), b"{not a record".to_vec()));
    for (key, payload) in &payloads {
        producer
            .send(
                FutureRecord::to("vigie.moderation")
                    .key(key)
                    .payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    let store = Arc::new(Store::open_in_memory().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let feed = tokio::spawn({
        let (store, cfg) = (store.clone(), cfg.clone());
        async move {
            consume_kafka(store, Arc::new(LexicalEmbedder), &cfg, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.queue(&QueueFilter::default(), 10).unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the console did not receive the records"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // let the duplicate and the junk arrive too
    let _ = stop.send(());
    feed.await.unwrap().expect("the feed stops cleanly");
    let ids: Vec<String> = store
        .queue(&QueueFilter::default(), 10)
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(
        store
            .rumours()
            .unwrap()
            .iter()
            .map(|r| r.posts)
            .sum::<usize>(),
        2,
        "the two misinformation posts are tracked"
    );

    // A decision goes to the decisions topic.
    let publisher = DecisionPublisher::default()
        .with_kafka(&cfg, "vigie.decisions")
        .unwrap();
    let now = Utc::now();
    store
        .claim("k2", "amina", now, chrono::Duration::minutes(5))
        .unwrap();
    let input = DecisionInput {
        decision: "remove".into(),
        reason: "false claim".into(),
        ..Default::default()
    };
    let decision = store
        .decide("k2", "amina", &input, &LexicalEmbedder, now)
        .unwrap();
    assert_eq!(publisher.deliver(&store).await, 1, "the outbox sends it");
    publisher.flush(Duration::from_secs(10));

    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", "decision-reader")
        .set("auto.offset.reset", "earliest")
        .set_all(common::fast_group_properties())
        .create()
        .unwrap();
    reader.subscribe(&["vigie.decisions"]).unwrap();
    let m = tokio::time::timeout(Duration::from_secs(60), reader.recv())
        .await
        .expect("a decision message")
        .unwrap();
    assert_eq!(m.key(), Some(&b"k2"[..]));
    let published: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
    assert_eq!(
        (
            published["decision"].as_str(),
            published["moderator"].as_str(),
            published["reason"].as_str()
        ),
        (Some("remove"), Some("amina"), Some("false claim"))
    );
    assert_eq!(
        published["decision_id"].as_str(),
        Some(decision.decision_id.as_str())
    );
}
