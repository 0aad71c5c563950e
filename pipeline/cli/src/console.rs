//! `vigie console` and `vigie export-labels`: the moderator console (the `vigie-console` crate).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::common::*;
use vigie_models::Encoder;
use vigie_pipeline::config::Config;

#[derive(Subcommand)]
pub(crate) enum ConsoleCommand {
    /// Serve the console.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        db: DbArg,
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
        #[command(flatten)]
        db: DbArg,
    },
    /// Lift the lockout of an account locked after repeated failed sign-ins (audited).
    UnlockUser {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Load a moderation JSONL file (what `vigie screen` writes to moderation.jsonl).
    Import {
        file: PathBuf,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        embedder: EmbedderArgs,
    },
}

/// Where the console keeps its queue, decisions, rumours and audit log.
#[derive(Args, Clone)]
pub(crate) struct DbArg {
    /// The console's database: a SQLite file (`sqlite:PATH`, or just a path), or a
    /// PostgreSQL server that several console instances share
    /// (`postgres://USER:PASSWORD@HOST:PORT/DB`; give a password through
    /// VIGIE_CONSOLE_DB rather than the command line, which other users can list).
    #[arg(
        long,
        env = "VIGIE_CONSOLE_DB",
        hide_env_values = true,
        default_value = "vigie-console.db"
    )]
    pub(crate) db: String,
}

impl DbArg {
    /// Opens the database and runs its migrations.
    pub(crate) fn open(&self) -> Result<vigie_console::Store> {
        vigie_console::Store::connect(&self.db).with_context(|| format!("opening {}", self.shown()))
    }

    /// The database for messages and logs, without its password.
    pub(crate) fn shown(&self) -> String {
        vigie_console::store::db::without_password(&self.db)
    }
}

#[derive(Args)]
pub(crate) struct EmbedderArgs {
    /// Model directory for the rumour tracker's cross-lingual embeddings.
    #[arg(long, env = "VIGIE_MODEL_DIR")]
    pub(crate) model_dir: Option<PathBuf>,
    /// Group rumours by shared words instead of the model (no model needed; one language at a time).
    #[arg(long)]
    pub(crate) lexical: bool,
}

impl EmbedderArgs {
    pub(crate) fn embedder(&self) -> Result<std::sync::Arc<dyn vigie_console::Embedder>> {
        use vigie_console::{LexicalEmbedder, ModelEmbedder};
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

pub(crate) fn console(command: ConsoleCommand) -> Result<()> {
    use std::sync::Arc;
    use vigie_console::Role;
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
            let store = db.open()?;
            let user = store.add_user(&name, role, password, "cli", now)?;
            eprintln!(
                "account {} ({}) created in {}",
                user.name,
                user.role.as_str(),
                db.shown()
            );
            Ok(())
        }
        ConsoleCommand::UnlockUser { name, db } => {
            let store = db.open()?;
            if store.unlock_user("cli", &name, now)? {
                eprintln!("account {name} unlocked in {}", db.shown());
                Ok(())
            } else {
                bail!("no locked account named {name:?} in {}", db.shown())
            }
        }
        ConsoleCommand::Import { file, db, embedder } => {
            let embedder = embedder.embedder()?;
            let store = db.open()?;
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
            let store = Arc::new(db.open()?);
            // Refuse to start rather than cluster new posts with vectors of another embedder.
            store.check_embedder(embedder.as_ref())?;
            // Typed text is redacted exactly as the pipeline redacts posts (rules_dir, name lists, threshold).
            let redaction = vigie_pipeline::screener::redaction_stage(&config)?;
            let c = &config.console;
            let settings = vigie_console::ConsoleSettings {
                lock_ttl: chrono::Duration::minutes(c.lock_minutes.max(1)),
                session_ttl: chrono::Duration::hours(c.session_hours.max(1)),
                secure_cookies: c.secure_cookies.unwrap_or(!listen.ip().is_loopback()),
                trust_forwarded_for: c.trust_forwarded_for,
                throttle: vigie_console::ThrottlePolicy {
                    lockout_after: c.lockout_after.max(1),
                    ..vigie_console::ThrottlePolicy::default()
                },
            };
            let secret = std::env::var(&c.alerts.webhook_secret_env).ok();
            let alerting = Arc::new(
                vigie_console::Alerting::from_config(&c.alerts, secret.as_deref())
                    .context("the [console.alerts] section")?,
            );
            let limits = vigie_console::ServeLimits {
                header_read_timeout: Duration::from_secs(c.header_timeout_secs.max(1)),
                request_timeout: Duration::from_secs(c.request_timeout_secs.max(1)),
                max_connections: c.max_connections.max(1),
                ..vigie_console::ServeLimits::default()
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut publisher = vigie_console::DecisionPublisher::default();
                if let Some(path) = decisions.or_else(|| c.decisions_out.clone()) {
                    publisher = publisher.with_file(&path).with_context(|| format!("opening {}", path.display()))?;
                }
                if let Some(topic) = &decisions_topic {
                    publisher = publisher.with_kafka(&config.kafka, topic).context("creating the decisions producer")?;
                }
                let state = vigie_console::AppState::new(store.clone(), embedder.clone(), redaction, settings, publisher)
                    .with_alerting(alerting.clone());
                for path in watch {
                    tracing::info!(file = %path.display(), "following screened records");
                    tokio::spawn(vigie_console::feed::follow(store.clone(), embedder.clone(), path, Duration::from_secs(2)));
                }
                // Rumours are checked against the alert rules, and undelivered alerts
                // retried, every check_seconds.
                tokio::spawn(alerting.run_forever(store.clone(), Duration::from_secs(c.alerts.check_seconds.max(1))));
                if brokers.is_some() {
                    let (store, embedder, kafka) = (store.clone(), embedder.clone(), config.kafka.clone());
                    tokio::spawn(async move {
                        if let Err(e) = vigie_console::feed::consume_kafka(store, embedder, &kafka, std::future::pending()).await {
                            tracing::error!(error = %e, "the Kafka feed stopped");
                        }
                    });
                }
                // Decisions recorded but not yet in the feed (a crash, Kafka down) go out
                // now and every two seconds.
                tokio::spawn(state.clone().deliver_decisions_forever(Duration::from_secs(2)));
                let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
                tracing::info!(address = %listener.local_addr()?, db = %db.shown(), engine = store.engine(), "console ready");
                eprintln!("console on http://{}", listener.local_addr()?);
                vigie_console::serve(listener, vigie_console::router(state.clone()), limits, shutdown_signal()).await?;
                state.decisions().flush(Duration::from_secs(5));
                Ok(())
            })
        }
    }
}

pub(crate) fn export_labels(db: &DbArg, out: &str) -> Result<()> {
    use std::io::Write;
    let store = db.open()?;
    let rows = vigie_console::store::label_rows(&store.decided_items()?);
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
