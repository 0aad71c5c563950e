//! Prometheus metrics of a run (`/metrics`, OpenMetrics text). Labels carry topic,
//! partition, stage and reason names only: never post ids or text.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    messages_in: Family<Labels, Counter>,
    messages_out: Family<Labels, Counter>,
    dead_letters: Family<Labels, Counter>,
    stage_seconds: Family<Labels, Histogram>,
    acknowledged_seconds: Histogram,
    model_batch_size: Histogram,
    repost_cache_hits: Counter,
    consumer_lag: Family<Labels, Gauge>,
    in_flight: Gauge,
    commits: Family<Labels, Counter>,
    rebalances: Family<Labels, Counter>,
    skipped_after_rebalance: Counter,
    http_requests: Family<Labels, Counter>,
    http_seconds: Family<Labels, Histogram>,
    queued_posts: Gauge,
}

fn stage_histogram() -> Histogram {
    // 50 µs … ~26 s
    Histogram::new(exponential_buckets(0.00005, 2.0, 20))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vigie");
        let m = Metrics {
            messages_in: Family::default(),
            messages_out: Family::default(),
            dead_letters: Family::default(),
            stage_seconds: Family::new_with_constructor(stage_histogram),
            acknowledged_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            model_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            repost_cache_hits: Counter::default(),
            consumer_lag: Family::default(),
            in_flight: Gauge::default(),
            commits: Family::default(),
            rebalances: Family::default(),
            skipped_after_rebalance: Counter::default(),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(stage_histogram),
            queued_posts: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "messages_in",
            "Messages consumed, by topic",
            m.messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "Records acknowledged by the broker, by topic",
            m.messages_out.clone(),
        );
        registry.register(
            "dead_letters",
            "Inputs dead-lettered, by reason",
            m.dead_letters.clone(),
        );
        registry.register(
            "stage_seconds",
            "Time a batch spends in each stage",
            m.stage_seconds.clone(),
        );
        registry.register(
            "acknowledged_seconds",
            "From reading a message to the broker acknowledging every record made from it",
            m.acknowledged_seconds.clone(),
        );
        registry.register(
            "model_batch_size",
            "Posts per call to the risk model",
            m.model_batch_size.clone(),
        );
        registry.register(
            "repost_cache_hits",
            "Posts whose embedding the repost cache held (reposts: not run through the encoder)",
            m.repost_cache_hits.clone(),
        );
        registry.register(
            "consumer_lag",
            "Messages behind the end of each partition (librdkafka statistics)",
            m.consumer_lag.clone(),
        );
        registry.register(
            "in_flight_messages",
            "Messages read and not yet acknowledged",
            m.in_flight.clone(),
        );
        registry.register("commits", "Offset commits, by result", m.commits.clone());
        registry.register(
            "rebalances",
            "Consumer-group rebalances, by kind",
            m.rebalances.clone(),
        );
        registry.register(
            "skipped_after_rebalance",
            "Messages read before their partition was revoked, left to the next owner",
            m.skipped_after_rebalance.clone(),
        );
        registry.register(
            "http_requests",
            "Screening API requests answered, by route and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_seconds",
            "Screening API latency, by route and status",
            m.http_seconds.clone(),
        );
        registry.register(
            "queued_posts",
            "Posts waiting for the screening batcher",
            m.queued_posts.clone(),
        );
        Metrics { registry, ..m }
    }

    /// One API request answered (`route` is the route's pattern, never its path).
    pub fn http_request(&self, route: &str, status: u16, took: Duration) {
        let labels = vec![("route", route.to_string()), ("status", status.to_string())];
        self.http_requests.get_or_create(&labels).inc();
        self.http_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn queued(&self, posts: usize) {
        self.queued_posts.set(posts as i64);
    }

    pub fn message_in(&self, topic: &str) {
        self.messages_in
            .get_or_create(&vec![("topic", topic.to_string())])
            .inc();
    }
    pub fn message_out(&self, topic: &str) {
        self.messages_out
            .get_or_create(&vec![("topic", topic.to_string())])
            .inc();
    }
    pub fn dead_letter(&self, reason: &str) {
        self.dead_letters
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }
    pub fn stage(&self, stage: &str, took: Duration) {
        self.stage_seconds
            .get_or_create(&vec![("stage", stage.to_string())])
            .observe(took.as_secs_f64());
    }
    pub fn acknowledged(&self, took: Duration) {
        self.acknowledged_seconds.observe(took.as_secs_f64());
    }
    pub fn model_batch(&self, posts: usize, cache_hits: usize) {
        self.model_batch_size.observe(posts as f64);
        self.repost_cache_hits.inc_by(cache_hits as u64);
    }
    pub fn lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .get_or_create(&vec![
                ("topic", topic.to_string()),
                ("partition", partition.to_string()),
            ])
            .set(lag);
    }
    /// The partition moved to another consumer: its lag is reported there now.
    pub fn forget_lag(&self, topic: &str, partition: i32) {
        self.consumer_lag.remove(&vec![
            ("topic", topic.to_string()),
            ("partition", partition.to_string()),
        ]);
    }
    pub fn in_flight(&self, messages: usize) {
        self.in_flight.set(messages as i64);
    }
    pub fn commit(&self, ok: bool) {
        self.commits
            .get_or_create(&vec![(
                "result",
                if ok { "ok" } else { "failed" }.to_string(),
            )])
            .inc();
    }
    pub fn rebalance(&self, kind: &str) {
        self.rebalances
            .get_or_create(&vec![("kind", kind.to_string())])
            .inc();
    }
    pub fn skipped_after_rebalance(&self, n: usize) {
        self.skipped_after_rebalance.inc_by(n as u64);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_series_with_their_labels() {
        let m = Metrics::new();
        m.message_in("vigie.posts");
        m.message_out("vigie.screened");
        m.dead_letter("malformed_json");
        m.stage("redaction", Duration::from_millis(3));
        m.lag("vigie.posts", 2, 17);
        m.model_batch(8, 3);
        let text = m.render();
        for needle in [
            r#"vigie_messages_in_total{topic="vigie.posts"} 1"#,
            r#"vigie_messages_out_total{topic="vigie.screened"} 1"#,
            r#"vigie_dead_letters_total{reason="malformed_json"} 1"#,
            r#"vigie_stage_seconds_count{stage="redaction"} 1"#,
            r#"vigie_consumer_lag{topic="vigie.posts",partition="2"} 17"#,
            "vigie_model_batch_size_count 1",
            "vigie_repost_cache_hits_total 3",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
