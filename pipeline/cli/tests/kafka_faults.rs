//! Faults against a real Kafka-protocol broker (tansu): the process killed with
//! SIGKILL mid-run, the broker unreachable for 10 s, a flood of malformed input, and
//! two instances sharing a group. Every input must come out, screened or dead-lettered.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use vigie_pipeline::contract::{RejectedRecord, ScreenedRecord};
use vigie_pipeline::kafka::{self, KafkaRunError, StopWhen};
use vigie_pipeline::screener::Screener;
use vigie_pipeline::testing::tiny_risk_stage;

const PHONE: &str = "06 12 34 56 78";

fn post(i: usize) -> (Option<String>, Vec<u8>) {
    let text = match i % 3 {
        0 => format!("Rappeler la maman du petit au {PHONE} pour le rappel ROR"),
        1 => "le vaccin contre la rougeole provoque l'autisme, ne le faites pas".to_string(),
        _ => "Session de vaccination jeudi au centre de santé, venez nombreux".to_string(),
    };
    let id = format!("p-{i}");
    (
        Some(id.clone()),
        serde_json::json!({"id": id, "text": text, "channel": "forum"})
            .to_string()
            .into_bytes(),
    )
}

/// Ids found in the screened and dead-letter topics, with how often each appeared.
async fn outputs(address: &str, expected: usize) -> (BTreeMap<String, usize>, Vec<common::Read>) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let screened = common::read_all(address, "screened", expected, Duration::from_secs(5)).await;
    for r in &screened {
        let rec: ScreenedRecord = serde_json::from_slice(&r.payload).expect("screened record");
        assert!(!rec.redacted_text.contains(PHONE), "identifier leaked");
        *seen.entry(rec.id).or_default() += 1;
    }
    let dlq = common::read_all(address, "dlq", 0, Duration::from_secs(3)).await;
    for r in &dlq {
        let rec: RejectedRecord = serde_json::from_slice(&r.payload).expect("dead-letter record");
        *seen
            .entry(
                rec.id
                    .unwrap_or_else(|| format!("offset:{}", r.headers["vigie.original.offset"])),
            )
            .or_default() += 1;
    }
    assert!(seen.len() <= expected + 1000, "unexpected ids");
    (seen, dlq)
}

fn assert_all_present(seen: &BTreeMap<String, usize>, ids: impl Iterator<Item = String>) -> usize {
    let missing: Vec<String> = ids.filter(|id| !seen.contains_key(id)).collect();
    assert!(
        missing.is_empty(),
        "{} inputs lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    seen.values().map(|n| n - 1).sum()
}

/// `vigie run` on the posts topic, configured through the environment as an operator's
/// container would be, with the risk model off (these tests are about delivery).
fn spawn_vigie(
    address: &str,
    workdir: &std::path::Path,
    exit_when_idle: u64,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args([
            "run",
            "--brokers",
            address,
            "--input-topic",
            "posts",
            "--exit-when-idle",
            &exit_when_idle.to_string(),
        ])
        .current_dir(workdir)
        .env("VIGIE__RISK__ENABLED", "false")
        .env("VIGIE__KAFKA__SCREENED_TOPIC", "screened")
        .env("VIGIE__KAFKA__MODERATION_TOPIC", "moderation")
        .env("VIGIE__KAFKA__DLQ_TOPIC", "dlq")
        .env("VIGIE__KAFKA__COMMIT_INTERVAL_MS", "200")
        .env(
            "VIGIE__KAFKA__CONSUMER_PROPERTIES__MAX_POLL_INTERVAL_MS",
            "10000",
        )
        .env(
            "VIGIE__KAFKA__CONSUMER_PROPERTIES__SESSION_TIMEOUT_MS",
            "6000",
        )
        .env("RUST_LOG", "info")
        .env_remove("VIGIE_GAZETTEERS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vigie")
}

/// Waits for the child's first partition assignment (in its log).
fn wait_assigned(child: &mut std::process::Child) {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("partitions assigned") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(90))
        .expect("vigie got partitions");
}

/// (a) `vigie run` killed with SIGKILL three times during a 20,000-message run, then
/// restarted to the end: every input comes out; duplicates are counted and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_run_loses_nothing() {
    let broker = common::Broker::start();
    broker.create_topics(&common::TOPICS).await;
    let n = 20_000;
    common::produce_all(&broker.address, "posts", (0..n).map(post).collect()).await;

    let workdir = tempfile::tempdir().unwrap();
    let start = |idle: u64| spawn_vigie(&broker.address, workdir.path(), idle);
    for (round, millis) in [1500u64, 2500, 1000].into_iter().enumerate() {
        let mut child = start(60);
        wait_assigned(&mut child);
        std::thread::sleep(Duration::from_millis(millis));
        child.kill().expect("SIGKILL");
        let status = child.wait().unwrap();
        eprintln!("round {round}: killed after {millis} ms of consuming ({status})");
    }
    let last = start(10);
    let status = tokio::task::spawn_blocking(move || last.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(status.status.success(), "final run failed");

    let (seen, _) = outputs(&broker.address, n).await;
    let duplicates = assert_all_present(&seen, (0..n).map(|i| format!("p-{i}")));
    eprintln!(
        "sigkill: {n} inputs, {} distinct outputs, {duplicates} duplicates after 3 kills",
        seen.len()
    );
    assert!(
        duplicates < n,
        "each kill repeats at most the in-flight window"
    );
}

/// SIGTERM mid-run: the process finishes what it has in flight, commits, and exits 0;
/// the next run starts where it stopped, so nothing is screened twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_work_and_commits() {
    let broker = common::Broker::start();
    broker.create_topics(&common::TOPICS).await;
    let n = 20_000;
    common::produce_all(&broker.address, "posts", (0..n).map(post).collect()).await;
    let workdir = tempfile::tempdir().unwrap();
    let mut child = spawn_vigie(&broker.address, workdir.path(), 60);
    wait_assigned(&mut child);
    std::thread::sleep(Duration::from_millis(300));
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "SIGTERM is a clean stop: {}",
        out.status
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("run stats on stdout");
    assert_eq!(stats["handed_back"], 0, "{stats}");
    let first = stats["consumed"].as_u64().unwrap() as usize;
    assert!(first > 0 && first < n, "stopped mid-run ({first} of {n})");

    let rest = spawn_vigie(&broker.address, workdir.path(), 10);
    let out = tokio::task::spawn_blocking(move || rest.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let (seen, _) = outputs(&broker.address, n).await;
    let duplicates = assert_all_present(&seen, (0..n).map(|i| format!("p-{i}")));
    eprintln!("sigterm: first run {first} posts, {duplicates} duplicates");
    assert_eq!(duplicates, 0, "a drained stop repeats nothing");
}

/// (b) The broker unreachable for 10 s mid-run (every connection cut, new ones
/// refused): the run rides it out and nothing is lost. /metrics is read during the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_of_ten_seconds_loses_nothing() {
    let (broker, proxy) = common::broker_behind_proxy().await;
    broker.create_topics(&common::TOPICS).await;
    let n = 6_000;
    common::produce_all(&broker.address, "posts", (0..n).map(post).collect()).await;

    let mut config = common::kafka_config(&broker.address, 64);
    config.kafka.batch_size = 32;
    config.kafka.statistics_interval_ms = 500;
    let screener = Arc::new(Screener::with_risk(&config, Some(tiny_risk_stage())).unwrap());
    let (run, telemetry) = common::spawn_run(&config.kafka, &screener, Duration::from_secs(25));
    let ops = vigie_pipeline::ops::spawn(
        "127.0.0.1:0".parse().unwrap(),
        telemetry.metrics.clone(),
        telemetry.health.clone(),
    )
    .await
    .unwrap();
    // Cut the broker off once the run is well under way.
    common::wait_consumed(&telemetry, 1000).await;
    // Lag comes with librdkafka's statistics, every 500 ms here: give them a moment.
    let mut metrics = String::new();
    for _ in 0..50 {
        let (status, text) = common::http_get(ops, "/metrics").await;
        assert_eq!(status, 200);
        metrics = text;
        if metrics.contains("vigie_consumer_lag{") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for series in [
        "vigie_messages_in_total{topic=\"posts\"}",
        "vigie_messages_out_total{topic=\"screened\"}",
        "vigie_stage_seconds_count{stage=\"language\"}",
        "vigie_stage_seconds_count{stage=\"redaction\"}",
        "vigie_stage_seconds_count{stage=\"risk\"}",
        "vigie_model_batch_size_count",
        "vigie_acknowledged_seconds_count",
        "vigie_consumer_lag{topic=\"posts\"",
        "vigie_in_flight_messages",
        "vigie_commits_total{result=\"ok\"}",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from /metrics:\n{metrics}"
        );
    }
    assert!(
        !metrics.contains(PHONE) && !metrics.contains("p-1"),
        "metrics carry no post data"
    );
    assert_eq!(common::http_get(ops, "/readyz").await.0, 200);

    let before = common::consumed(&telemetry);
    proxy.down();
    tokio::time::sleep(Duration::from_secs(10)).await;
    proxy.up();
    let during = common::consumed(&telemetry) - before;
    eprintln!(
        "outage: {before} consumed before, {during} during the 10 s outage (already fetched)"
    );

    let stats = run.await.unwrap().expect("the run survives the outage");
    assert_eq!(stats.handed_back, 0);
    let (seen, _) = outputs(&broker.address, n).await;
    let duplicates = assert_all_present(&seen, (0..n).map(|i| format!("p-{i}")));
    eprintln!(
        "outage: {n} inputs, {} consumed, {duplicates} duplicates",
        stats.consumed
    );
    assert_eq!(common::http_get(ops, "/healthz").await.0, 200);
}

/// Malformed inputs of every kind the decoder knows.
fn malformed(i: usize, limit: usize) -> (Option<String>, Vec<u8>) {
    let bytes = match i % 6 {
        0 => format!("{{\"id\":\"bad-{i}\",\"text\":\"tel {PHONE}\"").into_bytes(),
        1 => format!("{{\"id\":\"bad-{i}\",\"channel\":\"forum\"}}").into_bytes(),
        2 => b"\xff\xfe not utf8 \xc3".to_vec(),
        3 => serde_json::json!({"id": format!("bad-{i}"), "text": format!("{PHONE} {}", "x".repeat(limit))}).to_string().into_bytes(),
        4 => serde_json::json!({"id": format!("bad-{i}"), "text": ""}).to_string().into_bytes(),
        _ => b"[1, 2, 3]".to_vec(),
    };
    // Keyed like the good posts, so that every partition gets its share.
    (Some(format!("bad-{i}")), bytes)
}

/// (c) 1,000 malformed messages among 4,000 good ones: all dead-lettered with their
/// reason and origin in headers, the run carries on. Then a flood of bad input trips
/// the dead-letter cap: the run stops, and the flood's batch is not committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_dead_lettered_and_a_flood_stops_the_run() {
    let broker = common::Broker::start();
    broker.create_topics(&common::TOPICS).await;
    let limit = 4096;
    let (good, bad) = (4_000, 1_000);
    let mut inputs = Vec::new();
    for i in 0..good + bad {
        // One malformed message in five, interleaved.
        inputs.push(if i % 5 == 4 {
            malformed(i, limit)
        } else {
            post(i)
        });
    }
    common::produce_all(&broker.address, "posts", inputs).await;

    let mut config = common::kafka_config(&broker.address, 64);
    config.limits.max_message_bytes = limit;
    let screener = Arc::new(Screener::with_risk(&config, Some(tiny_risk_stage())).unwrap());
    let stop = StopWhen {
        idle: Some(Duration::from_secs(12)),
        messages: None,
    };
    let stats = kafka::run(
        &config.kafka,
        screener.clone(),
        stop,
        std::future::pending(),
    )
    .await
    .expect("run");
    assert_eq!(stats.dead_lettered, bad);
    assert_eq!(stats.screened, good);

    let dlq = common::read_all(&broker.address, "dlq", bad, Duration::from_secs(5)).await;
    assert_eq!(dlq.len(), bad);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut offsets = BTreeSet::new();
    for r in &dlq {
        let rec: RejectedRecord = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(r.headers.get(kafka::HEADER_REASON), Some(&rec.reason));
        assert_eq!(
            r.headers.get(kafka::HEADER_TOPIC).map(String::as_str),
            Some("posts")
        );
        let partition: i32 = r.headers[kafka::HEADER_PARTITION].parse().unwrap();
        let offset: i64 = r.headers[kafka::HEADER_OFFSET].parse().unwrap();
        offsets.insert((partition, offset));
        assert!(
            !String::from_utf8_lossy(&r.payload).contains(PHONE),
            "identifier in a dead letter"
        );
        *reasons.entry(rec.reason).or_default() += 1;
    }
    assert_eq!(offsets.len(), bad, "one dead letter per malformed message");
    let kinds: BTreeSet<&str> = reasons.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "empty_text",
            "invalid_utf8",
            "malformed_json",
            "missing_field",
            "oversized"
        ]),
        "{reasons:?}"
    );

    // A bad deploy upstream: everything is malformed from now on.
    common::produce_all(
        &broker.address,
        "posts",
        (0..600).map(|i| malformed(i * 6 + 2, limit)).collect(),
    )
    .await;
    config.kafka.dead_letter_window = 200;
    let err = kafka::run(
        &config.kafka,
        screener.clone(),
        stop,
        std::future::pending(),
    )
    .await
    .expect_err("the cap stops the run");
    assert!(matches!(err, KafkaRunError::DeadLetterBudget(_)), "{err}");
    let dead_before_stop = common::read_all(&broker.address, "dlq", bad, Duration::from_secs(5))
        .await
        .len()
        - bad;
    assert!(
        dead_before_stop < 600,
        "the run stopped before dead-lettering the whole flood ({dead_before_stop})"
    );

    // After the fix (here: the cap lifted), the rest is read from where it stopped.
    config.kafka.dead_letter_max_ratio = 1.0;
    let rest = kafka::run(
        &config.kafka,
        screener.clone(),
        stop,
        std::future::pending(),
    )
    .await
    .expect("run");
    assert_eq!(
        dead_before_stop + rest.dead_lettered,
        600,
        "every flooded message dead-lettered once"
    );
}

/// Two instances in one group share the partitions; the second joins mid-run, the
/// rebalance drains in-flight work, and every input comes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_group_and_lose_nothing() {
    let broker = common::Broker::start();
    broker.create_topics(&common::TOPICS).await;
    let n = 8_000;
    // A live stream: 400 posts a second for 20 s, so that work remains after the
    // second instance joins.
    let producing = {
        let address = broker.address.clone();
        tokio::spawn(async move {
            for chunk in (0..n).collect::<Vec<_>>().chunks(400) {
                common::produce_all(&address, "posts", chunk.iter().map(|&i| post(i)).collect())
                    .await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let config = common::kafka_config(&broker.address, 64);
    let screener = Arc::new(Screener::with_risk(&config, Some(tiny_risk_stage())).unwrap());
    let (first, telemetry) = common::spawn_run(&config.kafka, &screener, Duration::from_secs(20));
    // The second joins once the first is busy: a rebalance with work in flight.
    common::wait_consumed(&telemetry, 500).await;
    let (second, _) = common::spawn_run(&config.kafka, &screener, Duration::from_secs(20));
    producing.await.unwrap();
    let (a, b) = (
        first.await.unwrap().expect("first"),
        second.await.unwrap().expect("second"),
    );
    eprintln!(
        "group: first consumed {}, second {}; skipped after rebalance {}+{}",
        a.consumed, b.consumed, a.skipped_after_rebalance, b.skipped_after_rebalance
    );
    assert!(
        a.consumed > 0 && b.consumed > 0,
        "both instances got partitions"
    );
    assert!(
        telemetry
            .metrics
            .render()
            .contains("vigie_rebalances_total{kind=\"revoke\"}"),
        "the first instance gave partitions up"
    );
    let (seen, _) = outputs(&broker.address, n).await;
    let duplicates = assert_all_present(&seen, (0..n).map(|i| format!("p-{i}")));
    eprintln!("group: {duplicates} duplicates");
}
