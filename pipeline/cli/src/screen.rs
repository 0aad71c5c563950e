//! `vigie screen`, `vigie demo` (JSONL files) and `vigie run` (Kafka).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::common::*;
use vigie_pipeline::config::Config;
use vigie_pipeline::contract;
use vigie_pipeline::io::screen_jsonl;
use vigie_pipeline::kafka::{self, StopWhen};

#[derive(Args)]
pub(crate) struct ScreenArgs {
    /// JSONL input, one post per line; `-` reads stdin.
    #[arg(long, default_value = "-")]
    pub(crate) input: String,
    #[arg(long, default_value = "out")]
    pub(crate) out_dir: PathBuf,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Kafka bootstrap servers (overrides the config).
    #[arg(long)]
    pub(crate) brokers: Option<String>,
    #[arg(long)]
    pub(crate) group_id: Option<String>,
    #[arg(long)]
    pub(crate) input_topic: Option<String>,
    /// Stop after this many seconds without input (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    pub(crate) exit_when_idle: Option<u64>,
    /// Stop after about this many messages.
    #[arg(long)]
    pub(crate) max_messages: Option<usize>,
    /// Serve /metrics, /healthz and /readyz here (overrides [metrics] listen).
    #[arg(long)]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(Args)]
pub(crate) struct DemoArgs {
    #[arg(long, default_value = "datasets/samples/posts.jsonl")]
    pub(crate) input: String,
    #[arg(long, default_value = "out/demo")]
    pub(crate) out_dir: PathBuf,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

pub(crate) fn screen(input: &str, out_dir: &Path, config: &Config) -> Result<()> {
    let screener = build_screener(config)?;
    let started = Instant::now();
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} posts screened ({per_sec})")
            .expect("valid template"),
    );
    let summary = screen_jsonl(&screener, input, out_dir, config.kafka.batch_size, |n| {
        progress.inc(n as u64)
    })?;
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!("{}", summary.table());
    println!(
        "{} inputs in {:.1}s ({:.0} posts/s); outputs in {}",
        summary.inputs,
        secs,
        summary.inputs as f64 / secs.max(1e-9),
        out_dir.display()
    );
    Ok(())
}

/// Prints a few flagged records from a run (redacted text only).
pub(crate) fn show_examples(out_dir: &Path) -> Result<()> {
    let text = std::fs::read_to_string(out_dir.join(vigie_pipeline::io::MODERATION_FILE))?;
    println!("\nA few posts routed to moderators (redacted):");
    for line in text.lines().take(6) {
        let r: contract::ScreenedRecord = serde_json::from_str(line)?;
        let score = r
            .risk
            .as_ref()
            .map(|r| format!("{:.2}", r.score))
            .unwrap_or_else(|| "-".into());
        println!(
            "  [{} | {:?} | risk {}] {}",
            r.route.queue, r.route.priority, score, r.redacted_text
        );
    }
    Ok(())
}

pub(crate) fn run_kafka(a: RunArgs) -> Result<()> {
    let mut config = a.common.config()?;
    if let Some(b) = a.brokers {
        config.kafka.brokers = b;
    }
    if let Some(g) = a.group_id {
        config.kafka.group_id = g;
    }
    if let Some(t) = a.input_topic {
        config.kafka.input_topic = t;
    }
    let listen = a.metrics_listen.or(config.metrics.listen);
    let stop = StopWhen {
        idle: a.exit_when_idle.map(Duration::from_secs),
        messages: a.max_messages,
    };
    // At least two workers: a partition revocation waits on the polling thread for
    // deliveries that the other threads settle.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let telemetry = kafka::Telemetry::default();
    runtime.block_on(async {
        // Up before the model loads, so that /healthz answers and /readyz says "not yet".
        if let Some(addr) = listen {
            vigie_pipeline::ops::spawn(addr, telemetry.metrics.clone(), telemetry.health.clone())
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
        }
        let screener =
            std::sync::Arc::new(tokio::task::block_in_place(|| build_screener(&config))?);
        let stats =
            kafka::run_with(&config.kafka, screener, stop, shutdown_signal(), telemetry).await?;
        println!("{}", serde_json::to_string(&stats)?);
        anyhow::Ok(())
    })
}
