//! `vigie bench kafka`: how fast posts go through the Kafka pipeline on this machine.
//!
//! Two measures on fresh topics of the given broker: *throughput* (a backlog of posts
//! produced first, then screened as fast as possible: posts per second between the first
//! and the last screened record) and *latency* (posts produced at a steady rate below
//! that throughput: time from a post's produce call to the moment Vigie produced its
//! screened record (the record's CreateTime), p50 and p99). The posts are the sample
//! posts, with fresh ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;

use super::{batch_policy, run_on, KafkaRunError, StopWhen, Telemetry};
use crate::batcher::Batcher;
use crate::config::KafkaConfig;
use crate::contract::ScreenedRecord;
use crate::screener::Screener;

#[derive(Debug, thiserror::Error)]
/// Why a load measurement (`scripts/bench-kafka`) could not finish.
pub enum LoadError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("pipeline: {0}")]
    Run(#[from] KafkaRunError),
    /// The samples hold no valid post to send.
    #[error("no sample posts")]
    NoSamples,
    /// Zero posts asked for.
    #[error("nothing to measure: posts must be at least 1")]
    NoPosts,
    /// The rate asked for is not a positive number.
    #[error("the rate must be a positive number of posts per second")]
    BadRate,
    /// A task of the measurement panicked or was cancelled.
    #[error("a measurement task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Fewer screened records came out than posts went in.
    #[error("only {came_out} of {sent} posts came out")]
    Lost {
        /// Posts produced.
        sent: usize,
        /// Screened records read back.
        came_out: usize,
    },
    /// A topic could not be created.
    #[error("cannot create {topic}: {error}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        error: rdkafka::error::RDKafkaErrorCode,
    },
    /// The producer was dropped before reporting a delivery.
    #[error("producer dropped before its delivery report")]
    ProducerDropped,
    /// No screened record arrived for two minutes.
    #[error("no screened record for 2 minutes ({seen} of {expected})")]
    Stalled {
        /// Records read so far.
        seen: usize,
        /// Records expected.
        expected: usize,
    },
    /// A screened record could not be read back.
    #[error("unreadable screened record: {0}")]
    Record(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub phase: &'static str,
    pub posts: usize,
    /// Screened records per second (first to last record).
    pub posts_per_second: f64,
    /// Produce rate asked for (latency phase).
    pub offered_rate: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// Posts per encoder pass, on average (in the throughput phase, the warm-up post
    /// included).
    pub posts_per_pass: f64,
    /// Mean time of a screening pass, in milliseconds.
    pub pass_ms: f64,
    /// Time the screener spent in passes over the phase's span (first to last record):
    /// near 1, the pipeline had no spare time. In the throughput phase the first pass
    /// ends before the span begins, so the share may exceed 1 a little.
    pub busy_share: f64,
}

/// Posts to send: the valid posts of `samples` (JSONL; the bundled samples also hold
/// malformed lines, skipped here) cycled, each with a new id.
pub fn posts_from_samples(
    samples: &[u8],
    n: usize,
    prefix: &str,
) -> Result<Vec<(String, Vec<u8>)>, LoadError> {
    let templates: Vec<serde_json::Value> = samples
        .split(|b| *b == b'\n')
        .filter(|line| crate::decode::decode(line, usize::MAX).is_ok())
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .collect();
    if templates.is_empty() {
        return Err(LoadError::NoSamples);
    }
    Ok((0..n)
        .map(|i| {
            let mut post = templates[i % templates.len()].clone();
            let id = format!("{prefix}-{i}");
            post["id"] = serde_json::Value::String(id.clone());
            (id, post.to_string().into_bytes())
        })
        .collect())
}

/// Runs one phase on fresh topics: `rate` None measures throughput, Some measures latency.
pub async fn measure(
    base: &KafkaConfig,
    screener: Arc<Screener>,
    samples: &[u8],
    posts: usize,
    rate: Option<f64>,
) -> Result<LoadReport, LoadError> {
    if posts == 0 {
        return Err(LoadError::NoPosts);
    }
    if rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(LoadError::BadRate);
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let prefix = format!("vigie-bench-{stamp}");
    let mut cfg = base.clone();
    cfg.input_topic = format!("{prefix}.posts");
    cfg.screened_topic = format!("{prefix}.screened");
    cfg.moderation_topic = format!("{prefix}.moderation");
    cfg.dlq_topic = format!("{prefix}.dlq");
    cfg.group_id = prefix.clone();
    create_topics(&cfg).await?;
    let batch = posts_from_samples(samples, posts, &prefix)?;
    let warmup = posts_from_samples(samples, 1, &format!("{prefix}-warmup"))?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("linger.ms", "2")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut sent_at: HashMap<String, i64> = HashMap::with_capacity(posts);
    let reader = spawn_reader(&cfg, posts + 1)?;

    // Throughput: the backlog first, then the pipeline.
    if rate.is_none() {
        produce(&producer, &cfg.input_topic, &batch, None, &mut sent_at).await?;
    }
    let telemetry = Telemetry::default();
    let batcher = Batcher::start(
        screener,
        batch_policy(&cfg),
        telemetry.metrics.clone(),
        None,
    )
    .map_err(KafkaRunError::Worker)?;
    let pipeline = {
        let (cfg, batcher) = (cfg.clone(), batcher.clone());
        tokio::spawn(async move {
            let stop = StopWhen {
                idle: Some(Duration::from_secs(20)),
                messages: Some(posts + 1),
            };
            run_on(&cfg, &batcher, stop, std::future::pending(), telemetry).await
        })
    };
    // What the batcher had done before the measured posts (the latency phase's warm-up).
    let mut baseline = (Duration::ZERO, (0u64, 0u64));
    if let Some(rate) = rate {
        // Latency: wait for the pipeline to be running (one post through), then a steady flow.
        produce(
            &producer,
            &cfg.input_topic,
            &warmup,
            None,
            &mut HashMap::new(),
        )
        .await?;
        reader.first.notified().await;
        baseline = (batcher.busy(), batcher.pass_counts());
        produce(
            &producer,
            &cfg.input_topic,
            &batch,
            Some(rate),
            &mut sent_at,
        )
        .await?;
    } else {
        produce(
            &producer,
            &cfg.input_topic,
            &warmup,
            None,
            &mut HashMap::new(),
        )
        .await?;
    }
    if let Err(e) = pipeline.await? {
        reader.task.abort();
        return Err(e.into());
    };
    let seen = reader.task.await??;

    let mut latencies = Vec::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for (id, out_ms) in &seen {
        if let Some(sent) = sent_at.get(id) {
            latencies.push((out_ms - sent) as f64);
            first = first.min(*out_ms);
            last = last.max(*out_ms);
        }
    }
    if latencies.len() < posts {
        return Err(LoadError::Lost {
            sent: posts,
            came_out: latencies.len(),
        });
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| vigie_models::bench::percentile(&latencies, q);
    let span = ((last - first) as f64 / 1000.0).max(1e-3);
    let (busy_before, (passes_before, screened_before)) = baseline;
    let (passes, screened) = batcher.pass_counts();
    let (passes, screened) = (passes - passes_before, screened - screened_before);
    let busy = batcher.busy().saturating_sub(busy_before);
    Ok(LoadReport {
        phase: if rate.is_some() {
            "latency"
        } else {
            "throughput"
        },
        posts,
        posts_per_second: posts as f64 / span,
        offered_rate: rate,
        latency_p50_ms: rate.map(|_| pct(0.5)),
        latency_p99_ms: rate.map(|_| pct(0.99)),
        latency_max_ms: rate.map(|_| pct(1.0)),
        posts_per_pass: screened as f64 / passes.max(1) as f64,
        pass_ms: busy.as_secs_f64() * 1e3 / passes.max(1) as f64,
        busy_share: busy.as_secs_f64() / span,
    })
}

async fn create_topics(cfg: &KafkaConfig) -> Result<(), LoadError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .create()?;
    let topics = [
        (&cfg.input_topic, 4),
        (&cfg.screened_topic, 4),
        (&cfg.moderation_topic, 1),
        (&cfg.dlq_topic, 1),
    ];
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    for r in admin.create_topics(&new, &AdminOptions::new()).await? {
        r.map_err(|(topic, error)| LoadError::CreateTopic { topic, error })?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn produce(
    producer: &FutureProducer,
    topic: &str,
    posts: &[(String, Vec<u8>)],
    rate: Option<f64>,
    sent_at: &mut HashMap<String, i64>,
) -> Result<(), LoadError> {
    let started = Instant::now();
    let mut acks = Vec::with_capacity(posts.len());
    // A steady rate, sent in ticks of a few milliseconds: each post at its due time or
    // up to a tick later, never earlier, its latency counted from when it is sent. A
    // sleep per post would wake this process's threads hundreds of times a second more
    // than the pipeline itself does, on the cores it is measured on.
    const TICK: Duration = Duration::from_millis(5);
    let mut next_wake = started;
    for (i, (id, payload)) in posts.iter().enumerate() {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due.max(next_wake).into()).await;
                next_wake = Instant::now() + TICK;
            }
        }
        sent_at.insert(id.clone(), now_ms());
        let record = FutureRecord::to(topic)
            .key(id.as_str())
            .payload(payload.as_slice());
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| LoadError::Kafka(e))?;
        acks.push(delivery);
    }
    for ack in futures::future::join_all(acks).await {
        ack.map_err(|_| LoadError::ProducerDropped)?
            .map_err(|(e, _)| LoadError::Kafka(e))?;
    }
    Ok(())
}

struct Reader {
    first: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<Result<HashMap<String, i64>, LoadError>>,
}

/// Reads the screened topic until `expected` distinct posts came out; for each, the
/// broker timestamp of its first screened record.
fn spawn_reader(cfg: &KafkaConfig, expected: usize) -> Result<Reader, LoadError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", format!("{}-reader", cfg.group_id))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[cfg.screened_topic.as_str()])?;
    let first = Arc::new(tokio::sync::Notify::new());
    let notify = first.clone();
    let task = tokio::spawn(async move {
        let mut seen = HashMap::with_capacity(expected);
        while seen.len() < expected {
            let m = match tokio::time::timeout(Duration::from_secs(120), consumer.recv()).await {
                Ok(m) => m?,
                Err(_) => {
                    return Err(LoadError::Stalled {
                        seen: seen.len(),
                        expected,
                    })
                }
            };
            let record: ScreenedRecord = serde_json::from_slice(m.payload().unwrap_or_default())?;
            let at = match m.timestamp() {
                Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
                Timestamp::NotAvailable => now_ms(),
            };
            seen.entry(record.id).or_insert(at);
            notify.notify_one();
        }
        Ok(seen)
    });
    Ok(Reader { first, task })
}
