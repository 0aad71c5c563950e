//! Kafka source and sinks: `vigie run`.
//!
//! Delivery is at-least-once: a batch of messages is screened, every record produced
//! from it (screened, moderation, dead letter) is acknowledged by the broker, and only
//! then are the batch's offsets committed. A crash anywhere before the commit means the
//! batch is read again, never lost. Records are keyed by post id.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::config::KafkaConfig;
use crate::contract::{Origin, RejectedRecord};
use crate::screener::{Outcome, Screener};

/// Headers on dead-letter records.
pub const HEADER_REASON: &str = "vigie.reason";
pub const HEADER_TOPIC: &str = "vigie.original.topic";
pub const HEADER_PARTITION: &str = "vigie.original.partition";
pub const HEADER_OFFSET: &str = "vigie.original.offset";

#[derive(Debug, thiserror::Error)]
pub enum KafkaRunError {
    #[error("kafka client: {0}")]
    Client(#[from] KafkaError),
    #[error("delivery to {topic} failed: {error}; offsets not committed, the batch will be read again")]
    Delivery { topic: String, error: KafkaError },
    #[error("cannot encode record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// When a run stops by itself (tests, batch jobs); by default it runs until signalled.
#[derive(Debug, Clone, Copy, Default)]
pub struct StopWhen {
    /// Stop after this long without a message.
    pub idle: Option<Duration>,
    /// Stop once this many messages were consumed (checked between batches).
    pub messages: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RunStats {
    pub consumed: usize,
    pub screened: usize,
    pub moderation: usize,
    pub dead_lettered: usize,
    pub batches: usize,
    pub dead_letters_by_reason: BTreeMap<String, usize>,
}

/// Our settings first, then the operator's librdkafka properties over them, except the
/// ones that delivery guarantees depend on.
fn client_config(cfg: &KafkaConfig, ours: &[(&str, &str)], protected: &[&str]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    for (k, v) in ours {
        c.set(*k, *v);
    }
    for (k, v) in &cfg.properties {
        if protected.contains(&k.as_str()) {
            tracing::warn!(property = %k, "ignoring a property that would break at-least-once delivery");
        } else {
            c.set(k, v);
        }
    }
    c
}

pub fn consumer(cfg: &KafkaConfig) -> Result<StreamConsumer, KafkaError> {
    let ours = [
        ("group.id", cfg.group_id.as_str()),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
    ];
    client_config(cfg, &ours, &["enable.auto.commit"]).create()
}

pub fn producer(cfg: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    let ours = [("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "5")];
    client_config(cfg, &ours, &[]).create()
}

struct Consumed {
    origin: Origin,
    topic: String,
    partition: i32,
    offset: i64,
    payload: Vec<u8>,
}

/// Consumes `cfg.input_topic` until `shutdown` resolves or `stop` says so.
pub async fn run(
    cfg: &KafkaConfig,
    screener: &Screener,
    stop: StopWhen,
    shutdown: impl Future<Output = ()>,
) -> Result<RunStats, KafkaRunError> {
    let consumer = consumer(cfg)?;
    let producer = producer(cfg)?;
    consumer.subscribe(&[cfg.input_topic.as_str()])?;
    tracing::info!(topic = %cfg.input_topic, group = %cfg.group_id, "consuming");
    let mut stats = RunStats::default();
    tokio::pin!(shutdown);
    let batch_wait = Duration::from_millis(cfg.batch_wait_ms);
    loop {
        if stop.messages.is_some_and(|n| stats.consumed >= n) {
            break;
        }
        // Wait for the first message of a batch, then gather more for a short while.
        let idle = async {
            match stop.idle {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let first = tokio::select! {
            _ = &mut shutdown => { tracing::info!("shutdown requested"); break; }
            _ = idle => { tracing::info!("idle; stopping"); break; }
            m = consumer.recv() => m,
        };
        let mut batch = Vec::with_capacity(cfg.batch_size);
        push_message(first, &mut batch);
        let deadline = tokio::time::Instant::now() + batch_wait;
        while batch.len() < cfg.batch_size.max(1) {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(m) => push_message(m, &mut batch),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        process_batch(cfg, screener, &producer, &consumer, &batch, &mut stats).await?;
    }
    tracing::info!(consumed = stats.consumed, screened = stats.screened, dead_lettered = stats.dead_lettered, "stopped");
    Ok(stats)
}

fn push_message(m: Result<rdkafka::message::BorrowedMessage<'_>, KafkaError>, batch: &mut Vec<Consumed>) {
    match m {
        Ok(m) => batch.push(Consumed {
            origin: Origin::Kafka { topic: m.topic().to_string(), partition: m.partition(), offset: m.offset() },
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        }),
        // Transient broker errors are retried by librdkafka; they carry no message.
        Err(e) => tracing::warn!(error = %e, "consumer error"),
    }
}

async fn process_batch(
    cfg: &KafkaConfig,
    screener: &Screener,
    producer: &FutureProducer,
    consumer: &StreamConsumer,
    batch: &[Consumed],
    stats: &mut RunStats,
) -> Result<(), KafkaRunError> {
    let inputs: Vec<(Origin, &[u8])> = batch.iter().map(|m| (m.origin.clone(), m.payload.as_slice())).collect();
    // Screening is CPU work; keep it off the threads that drive librdkafka's futures.
    let outcomes = tokio::task::block_in_place(|| screener.process(&inputs));

    let mut sends = Vec::new();
    for (message, outcome) in batch.iter().zip(&outcomes) {
        match outcome {
            Outcome::Screened(record) => {
                let json = serde_json::to_vec(record)?;
                sends.push(send(producer, &cfg.screened_topic, record.id.clone(), json.clone(), None));
                stats.screened += 1;
                if record.route.is_flagged() {
                    sends.push(send(producer, &cfg.moderation_topic, record.id.clone(), json, None));
                    stats.moderation += 1;
                }
            }
            Outcome::Rejected(record) => {
                let json = serde_json::to_vec(record)?;
                let key = record.id.clone().unwrap_or_else(|| format!("{}-{}-{}", message.topic, message.partition, message.offset));
                sends.push(send(producer, &cfg.dlq_topic, key, json, Some(dlq_headers(record, message))));
                stats.dead_lettered += 1;
                *stats.dead_letters_by_reason.entry(record.reason.clone()).or_default() += 1;
                tracing::warn!(reason = %record.reason, detail = %record.detail, partition = message.partition, offset = message.offset, "dead-lettered");
            }
        }
    }
    for result in join_all(sends).await {
        result?;
    }
    // Every record of the batch is acknowledged: commit the next offset per partition.
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for m in batch {
        let e = next.entry((m.topic.clone(), m.partition)).or_insert(m.offset + 1);
        *e = (*e).max(m.offset + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
    }
    consumer.commit(&tpl, CommitMode::Sync)?;
    stats.consumed += batch.len();
    stats.batches += 1;
    tracing::debug!(messages = batch.len(), "batch committed");
    Ok(())
}

fn dlq_headers(record: &RejectedRecord, m: &Consumed) -> OwnedHeaders {
    let partition = m.partition.to_string();
    let offset = m.offset.to_string();
    OwnedHeaders::new()
        .insert(Header { key: HEADER_REASON, value: Some(record.reason.as_str()) })
        .insert(Header { key: HEADER_TOPIC, value: Some(m.topic.as_str()) })
        .insert(Header { key: HEADER_PARTITION, value: Some(partition.as_str()) })
        .insert(Header { key: HEADER_OFFSET, value: Some(offset.as_str()) })
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: String,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
) -> Result<(), KafkaRunError> {
    let mut record = FutureRecord::to(topic).key(&key).payload(&payload);
    if let Some(h) = headers {
        record = record.headers(h);
    }
    // librdkafka retries internally until message.timeout.ms; an error here is final.
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|_| ())
        .map_err(|(error, _)| KafkaRunError::Delivery { topic: topic.to_string(), error })
}
