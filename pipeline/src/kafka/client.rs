//! Building the librdkafka clients: our settings first, then the operator's properties
//! over them (`[kafka.properties]` for every client, then `consumer_properties` or
//! `producer_properties` for its role), except those that the delivery guarantees depend
//! on.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::ThreadedProducer;

use super::context::{ConsumerCtx, ProducerCtx};
use crate::config::{DeliveryMode, KafkaConfig};

/// Which kind of client a configuration is for: each reads its own properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Consumer,
    Producer,
}

fn client_config(
    cfg: &KafkaConfig,
    role: Role,
    ours: &[(&str, String)],
    protected: &[&str],
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    for (k, v) in ours {
        c.set(*k, v);
    }
    let for_role = match role {
        Role::Consumer => &cfg.consumer_properties,
        Role::Producer => &cfg.producer_properties,
    };
    for (k, v) in cfg.properties.iter().chain(for_role) {
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
    consumer_config(cfg).create_with_context(context)
}

fn consumer_config(cfg: &KafkaConfig) -> ClientConfig {
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
        // A `[kafka.consumer_properties]` (or `[kafka.properties]`) entry overrides it.
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
    client_config(cfg, Role::Consumer, &ours, &protected)
}

pub(crate) fn producer(
    cfg: &KafkaConfig,
    context: ProducerCtx,
) -> Result<ThreadedProducer<ProducerCtx>, KafkaError> {
    producer_config(cfg).create_with_context(context)
}

fn producer_config(cfg: &KafkaConfig) -> ClientConfig {
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
    client_config(cfg, Role::Producer, &ours, &protected)
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
/// Read from the producer's own configuration, so the tables weigh as they do there.
pub(crate) fn max_output_bytes(cfg: &KafkaConfig) -> usize {
    let limit = producer_config(cfg)
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
    client_config(cfg, Role::Consumer, &ours, &["enable.auto.commit"]).create()
}

/// An idempotent producer with the default context (the console's decisions feed).
pub fn future_producer(cfg: &KafkaConfig) -> Result<rdkafka::producer::FutureProducer, KafkaError> {
    let ours = [
        ("enable.idempotence", "true".to_string()),
        ("acks", "all".to_string()),
        ("linger.ms", "5".to_string()),
    ];
    client_config(cfg, Role::Producer, &ours, &["enable.idempotence", "acks"]).create()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> KafkaConfig {
        let mut cfg = KafkaConfig::default();
        let set = |m: &mut std::collections::BTreeMap<String, String>, k: &str, v: &str| {
            m.insert(k.to_string(), v.to_string());
        };
        set(&mut cfg.properties, "security.protocol", "SASL_SSL");
        set(&mut cfg.properties, "linger.ms", "20");
        set(&mut cfg.consumer_properties, "fetch.wait.max.ms", "10");
        set(&mut cfg.consumer_properties, "enable.auto.commit", "true");
        set(&mut cfg.producer_properties, "linger.ms", "1");
        set(&mut cfg.producer_properties, "compression.type", "zstd");
        set(&mut cfg.producer_properties, "message.max.bytes", "2000000");
        cfg
    }

    #[test]
    fn each_client_reads_the_shared_properties_and_its_own_only() {
        let cfg = config();
        let consumer = consumer_config(&cfg);
        let producer = producer_config(&cfg);
        for c in [&consumer, &producer] {
            assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        }
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("10"));
        assert_eq!(producer.get("fetch.wait.max.ms"), None);
        assert_eq!(consumer.get("compression.type"), None);
        assert_eq!(producer.get("compression.type"), Some("zstd"));
        // The role's table outweighs the shared one.
        assert_eq!(producer.get("linger.ms"), Some("1"));
        assert_eq!(consumer.get("linger.ms"), Some("20"));
    }

    #[test]
    fn a_role_property_cannot_break_the_delivery_guarantees() {
        let mut exactly_once = config();
        exactly_once.delivery = DeliveryMode::ExactlyOnce;
        let consumer = consumer_config(&exactly_once);
        assert_eq!(
            consumer.get("enable.auto.commit"),
            Some("false"),
            "transactions commit the offsets"
        );
    }

    #[test]
    fn a_producer_property_cannot_break_the_delivery_guarantees() {
        let mut cfg = config();
        cfg.producer_properties
            .insert("acks".to_string(), "1".to_string());
        cfg.producer_properties
            .insert("enable.idempotence".to_string(), "false".to_string());
        let producer = producer_config(&cfg);
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn the_producers_message_limit_bounds_the_records() {
        assert_eq!(max_output_bytes(&config()), 2_000_000 - 1024);
        assert_eq!(max_output_bytes(&KafkaConfig::default()), 1_000_000 - 1024);
        let mut shared_only = KafkaConfig::default();
        shared_only
            .properties
            .insert("message.max.bytes".to_string(), "500000".to_string());
        assert_eq!(max_output_bytes(&shared_only), 500_000 - 1024);
        let mut both = shared_only.clone();
        both.producer_properties
            .insert("message.max.bytes".to_string(), "300000".to_string());
        assert_eq!(
            max_output_bytes(&both),
            300_000 - 1024,
            "the role's table wins"
        );
    }
}
