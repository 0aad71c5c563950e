//! `vigie`: screens health-worker posts for patient identifiers and misinformation.
//!
//! One module per command group; this file only parses the command line and hands over.

mod bench;
mod claims;
mod common;
mod console;
mod eval;
mod model;
mod rules;
mod screen;
mod serve;
mod train;
mod tune_top;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use vigie_pipeline::contract;

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
    Screen(screen::ScreenArgs),
    /// Screen a Kafka topic continuously (consumer group, at-least-once).
    Run(screen::RunArgs),
    /// Answer for posts over HTTP before they are published (the screening API).
    Serve(serve::ServeArgs),
    /// Measure a stage on a labeled dataset.
    Eval(eval::EvalArgs),
    /// Fit the risk head on the shared risk datasets.
    Train(train::TrainArgs),
    /// Model files: download and verify.
    Model {
        #[command(subcommand)]
        command: model::ModelCommand,
    },
    /// Screen the bundled sample posts and show what came out.
    Demo(screen::DemoArgs),
    /// Write the JSON Schemas of the message contract.
    Schema {
        #[arg(long, default_value = "pipeline/schema")]
        out_dir: PathBuf,
    },
    /// Rule authoring: run rule examples, explain what fires on a text.
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// The moderator console and rumour tracker (web app over SQLite).
    Console {
        #[command(subcommand)]
        command: console::ConsoleCommand,
    },
    /// The library of known false claims: validate it, match texts against it.
    Claims {
        #[command(subcommand)]
        command: claims::ClaimsCommand,
    },
    /// Measure speed: `bench kafka` runs posts through a broker and reports throughput and latency.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Turn moderators' decisions into risk training rows (the risk dataset's JSONL format).
    ExportLabels {
        #[command(flatten)]
        db: console::DbArg,
        /// Output JSONL file; `-` writes stdout.
        #[arg(long, default_value = "-")]
        out: String,
    },
}

fn main() -> Result<()> {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Screen(a) => screen::screen(&a.input, &a.out_dir, &a.common.config()?),
        Command::Demo(a) => {
            screen::screen(&a.input, &a.out_dir, &a.common.config()?)?;
            screen::show_examples(&a.out_dir)
        }
        Command::Run(a) => screen::run_kafka(a),
        Command::Serve(a) => serve::serve(a),
        Command::Eval(a) => eval::eval(a),
        Command::Train(a) => train::train(a),
        Command::Model { command } => model::model(command),
        Command::Schema { out_dir } => {
            std::fs::create_dir_all(&out_dir)?;
            for (name, schema) in contract::schemas() {
                std::fs::write(out_dir.join(name), contract::schema_text(&schema))?;
            }
            Ok(())
        }
        Command::Rules { command } => rules::rules(command),
        Command::Console { command } => console::console(command),
        Command::ExportLabels { db, out } => console::export_labels(&db, &out),
        Command::Bench { command } => bench::bench(command),
        Command::Claims { command } => claims::claims(command),
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

/// At most two malloc arenas, unless `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` says otherwise. glibc gives
/// each thread that allocates an arena of its own (up to eight per core), and an arena
/// keeps what was freed in it: screening passes run on the thread pool's threads in
/// turn, so each of their arenas grew to a pass's working set. Measured on the sample
/// posts, `vigie screen` peaked at 264-274 MB with glibc's default, 242-252 MB with
/// two arenas, 225 MB with one (but then `vigie bench serve` lost 6 % of its rate to
/// the shared lock, where two kept it).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    use std::os::raw::c_int;
    /// glibc's `M_ARENA_MAX` parameter of `mallopt` (malloc.h).
    const M_ARENA_MAX: c_int = -8;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // Either of glibc's own settings wins.
    let tuned = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() && !tuned {
        // SAFETY: `mallopt` only sets a parameter of glibc's allocator; this runs first
        // in `main`, before any other thread exists.
        unsafe {
            mallopt(M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
