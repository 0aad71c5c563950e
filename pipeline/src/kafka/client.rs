//! Building the librdkafka clients: our settings first, then the operator's properties
//! over them, except those that the delivery guarantees depend on.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::ThreadedProducer;

use super::context::{ConsumerCtx, ProducerCtx};
use crate::config::{DeliveryMode, KafkaConfig};

fn client_config(cfg: &KafkaConfig, ours: &[(&str, String)], protected: &[&str]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    for (k, v) in ours {
        c.set(*k, v);
    }
    for (k, v) in &cfg.properties {
        if protected.contains(&k.as_str()) {
            tracing::warn!(property = %k, "ignoring a property that would break the delivery guarantees");
        } else {
            c.set(k, v);
        }
    }
    c
}

pub(crate) fn consumer(
    cfg: &KafkaConfig,
    context: ConsumerCtx,
) -> Result<StreamConsumer<ConsumerCtx>, KafkaError> {
    let transactional = cfg.delivery == DeliveryMode::ExactlyOnce;
    // At-least-once: the run stores an offset once its input and all earlier ones of the
    // partition are settled, and librdkafka commits what is stored (retrying failures).
    // Exactly-once: offsets are committed inside the transactions only.
    let mut ours = vec![
        ("group.id", cfg.group_id.clone()),
        ("enable.auto.commit", (!transactional).to_string()),
        (
            "auto.commit.interval.ms",
            cfg.commit_interval_ms.max(1).to_string(),
        ),
        ("enable.auto.offset.store", "false".to_string()),
        ("auto.offset.reset", "earliest".to_string()),
        ("enable.partition.eof", "false".to_string()),
        (
            "statistics.interval.ms",
            cfg.statistics_interval_ms.to_string(),
        ),
        // Some brokers (tansu among them) hold a fetch until its maximum wait even when
        // messages arrive: with librdkafka's 500 ms every message waited that long
        // (measured: p50 137 ms, p99 261 ms without the model at 340 posts/s; 9 and 14 ms
        // with 5 ms). Kafka answers early anyway, where 50 ms only means more idle polls.
        // A property in the config overrides it.
        ("fetch.wait.max.ms", "50".to_string()),
    ];
    if transactional {
        // Inputs written by transactional producers: only committed ones.
        ours.push(("isolation.level", "read_committed".to_string()));
    }
    let protected = [
        "enable.auto.commit",
        "enable.auto.offset.store",
        "auto.commit.interval.ms",
        "group.id",
        "enable.partition.eof",
        "isolation.level",
    ];
    client_config(cfg, &ours, &protected).create_with_context(context)
}

pub(crate) fn producer(
    cfg: &KafkaConfig,
    context: ProducerCtx,
) -> Result<ThreadedProducer<ProducerCtx>, KafkaError> {
    let mut ours = vec![
        ("enable.idempotence", "true".to_string()),
        ("acks", "all".to_string()),
        ("linger.ms", "5".to_string()),
    ];
    let mut protected = vec!["enable.idempotence", "acks", "transactional.id"];
    if cfg.delivery == DeliveryMode::ExactlyOnce {
        ours.push(("transactional.id", transactional_id(cfg)));
        protected.push("transactional.id");
    }
    client_config(cfg, &ours, &protected).create_with_context(context)
}

/// Stable per host, so that a restarted instance fences its crashed predecessor and
/// aborts its open transaction at once (instead of read-committed readers waiting for
/// `transaction.timeout.ms`). Several instances on one host need distinct ids.
fn transactional_id(cfg: &KafkaConfig) -> String {
    cfg.transactional_id.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        format!("{}-{}-{}", cfg.group_id, cfg.input_topic, host)
    })
}

/// Output records above this size are dead-lettered (`output_too_large`) rather than
/// refused by the producer: librdkafka's `message.max.bytes` less room for key and headers.
pub(crate) fn max_output_bytes(cfg: &KafkaConfig) -> usize {
    let limit = cfg
        .properties
        .get("message.max.bytes")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1_000_000);
    limit.saturating_sub(1024)
}

/// A consumer with manual commits and the default context (the console's feed).
pub fn simple_consumer(cfg: &KafkaConfig) -> Result<StreamConsumer, KafkaError> {
    let ours = [
        ("group.id", cfg.group_id.clone()),
        ("enable.auto.commit", "false".to_string()),
        ("auto.offset.reset", "earliest".to_string()),
        ("enable.partition.eof", "false".to_string()),
    ];
    client_config(cfg, &ours, &["enable.auto.commit"]).create()
}

/// An idempotent producer with the default context (the console's decisions feed).
pub fn future_producer(cfg: &KafkaConfig) -> Result<rdkafka::producer::FutureProducer, KafkaError> {
    let ours = [
        ("enable.idempotence", "true".to_string()),
        ("acks", "all".to_string()),
        ("linger.ms", "5".to_string()),
    ];
    client_config(cfg, &ours, &["enable.idempotence", "acks"]).create()
}
