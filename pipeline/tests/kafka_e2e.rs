//! End to end through a real Kafka-protocol broker: posts in, screened / moderation /
//! dead-letter records out, offsets committed, no identifier anywhere in the outputs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};

use common::SetAll;

use std::sync::Arc;
use vigie_pipeline::config::Config;
use vigie_pipeline::contract::{RejectedRecord, ScreenedRecord};
use vigie_pipeline::kafka::{self, StopWhen};
use vigie_pipeline::screener::Screener;
use vigie_pipeline::testing::tiny_risk_stage;

/// Identifiers planted in the posts; none may appear in any output.
const SECRETS: &[&str] = &[
    "1 85 05 75 123 456 73",
    "943 476 5919",
    "+221 77 123 45 67",
    "awa.diop@example.sn",
    "06 12 34 56 78",
];

fn valid_post(i: usize) -> String {
    let text = match i % 4 {
        0 => format!(
            "Patient NIR {}, NHS {}, tél {} mail {}",
            SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3]
        ),
        1 => "vaccine causes autism".to_string(),
        2 => format!("Rappeler la maman au {} svp", SECRETS[4]),
        _ => "the measles vaccine is safe".to_string(),
    };
    serde_json::json!({"id": format!("post-{i}"), "text": text, "channel": "forum"}).to_string()
}

fn malformed(i: usize) -> Vec<u8> {
    match i % 3 {
        0 => format!("{{\"id\":\"bad-{i}\",\"text\":\"tel {}\"", SECRETS[4]).into_bytes(),
        1 => format!("{{\"id\":\"bad-{i}\",\"channel\":\"forum\"}}").into_bytes(),
        _ => b"\xff\xfe not utf8".to_vec(),
    }
}

async fn drain(
    brokers: &str,
    topic: &str,
    expected: usize,
) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set_all(common::fast_group_properties())
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_string(),
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_flow_through_kafka_with_dead_letters_and_no_leak() {
    let broker = common::Broker::start();
    broker
        .create_topics(&[
            ("vigie.posts", 3),
            ("vigie.screened", 1),
            ("vigie.moderation", 1),
            ("vigie.dlq", 1),
        ])
        .await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    let (n_valid, n_bad) = (24, 6);
    for i in 0..n_valid {
        let payload = valid_post(i);
        let key = format!("post-{i}");
        producer
            .send(
                FutureRecord::to("vigie.posts").key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    for i in 0..n_bad {
        let payload = malformed(i);
        producer
            .send(
                FutureRecord::<(), _>::to("vigie.posts").payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    let mut config = Config::default();
    config.kafka.brokers = broker.address.clone();
    config.kafka.batch_size = 8;
    // tansu holds a JoinGroup for the whole rebalance timeout (max.poll.interval.ms,
    // 5 minutes by default) when a member rejoins; short timeouts keep the test quick.
    config
        .kafka
        .consumer_properties
        .extend(common::fast_group_properties());
    let screener = Arc::new(Screener::with_risk(&config, Some(tiny_risk_stage())).unwrap());
    let stop = StopWhen {
        idle: Some(Duration::from_secs(20)),
        messages: Some(n_valid + n_bad),
    };
    let stats = kafka::run(
        &config.kafka,
        screener.clone(),
        stop,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(stats.consumed, n_valid + n_bad);
    assert_eq!(stats.screened, n_valid);
    assert_eq!(stats.dead_lettered, n_bad);

    let screened = drain(&broker.address, "vigie.screened", n_valid).await;
    let moderation = drain(&broker.address, "vigie.moderation", stats.moderation).await;
    let dlq = drain(&broker.address, "vigie.dlq", n_bad).await;
    assert_eq!(screened.len(), n_valid);
    assert_eq!(moderation.len(), stats.moderation);
    assert_eq!(dlq.len(), n_bad);

    let ids: BTreeSet<String> = screened
        .iter()
        .map(|(p, _)| {
            serde_json::from_slice::<ScreenedRecord>(p)
                .expect("screened record")
                .id
        })
        .collect();
    assert_eq!(ids, (0..n_valid).map(|i| format!("post-{i}")).collect());
    for (p, _) in &moderation {
        let r: ScreenedRecord = serde_json::from_slice(p).unwrap();
        assert!(
            r.route.is_flagged(),
            "unflagged record {} in moderation",
            r.id
        );
    }
    // Every post with identifiers is flagged for privacy.
    assert!(
        moderation.len() >= n_valid / 2,
        "{} flagged",
        moderation.len()
    );

    let mut reasons = BTreeSet::new();
    for (p, headers) in &dlq {
        let r: RejectedRecord = serde_json::from_slice(p).expect("dead-letter record");
        assert_eq!(headers.get(kafka::HEADER_REASON), Some(&r.reason));
        assert_eq!(
            headers.get(kafka::HEADER_TOPIC).map(String::as_str),
            Some("vigie.posts")
        );
        assert!(headers
            .get(kafka::HEADER_PARTITION)
            .is_some_and(|v| v.parse::<i32>().is_ok()));
        assert!(headers
            .get(kafka::HEADER_OFFSET)
            .is_some_and(|v| v.parse::<i64>().is_ok()));
        reasons.insert(r.reason);
    }
    assert_eq!(
        reasons,
        ["invalid_utf8", "malformed_json", "missing_field"]
            .map(String::from)
            .into()
    );

    for (topic, records) in [
        ("screened", &screened),
        ("moderation", &moderation),
        ("dlq", &dlq),
    ] {
        for (p, _) in records.iter() {
            let text = String::from_utf8_lossy(p);
            for s in SECRETS {
                assert!(!text.contains(s), "{s} leaked into {topic}: {text}");
            }
        }
    }

    // Offsets were committed: the same group resumes with nothing left to read.
    let again = kafka::run(
        &config.kafka,
        screener.clone(),
        StopWhen {
            idle: Some(Duration::from_secs(12)),
            messages: None,
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(again.consumed, 0, "committed messages were consumed again");
}
