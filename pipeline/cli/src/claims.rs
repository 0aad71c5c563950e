//! `vigie claims`: the known-claim library (validate, import ClaimReview, match).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use vigie_eval::datasets::read_jsonl;
use vigie_models::Encoder;
use vigie_rules::{Redactor, RuleSet};

#[derive(Subcommand)]
pub(crate) enum ClaimsCommand {
    /// Validate a claims directory (default: the library the pipeline loads with this
    /// configuration: the built-in claims or `claims_dir`, and `claims_files`).
    Check {
        dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
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
        /// A claims directory (default: the configured library, as for `check`).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 3)]
        top: usize,
        #[arg(long, env = "VIGIE_MODEL_DIR")]
        model_dir: Option<PathBuf>,
    },
}

pub(crate) fn claims(command: ClaimsCommand) -> Result<()> {
    use vigie_models::claims;
    let load = |dir: &Option<PathBuf>, config: &Option<PathBuf>| -> Result<Vec<claims::Claim>> {
        Ok(match dir {
            Some(d) => claims::load_dir(d)?,
            None => vigie_pipeline::config::Config::load(config.as_deref())?
                .risk
                .claim_library()
                .load()?,
        })
    };
    match command {
        ClaimsCommand::Check { dir, config } => {
            let list = load(&dir, &config)?;
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
            config,
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
            let index = claims::ClaimIndex::build(load(&dir, &config)?, &encoder)?;
            // Through the learned map when the configuration uses one, as the pipeline.
            let map = vigie_pipeline::config::Config::load(config.as_deref())?
                .risk
                .claim_map()?;
            match &map {
                Some(m) => println!("(through the claim map; matched from {:.3})", m.threshold),
                None => println!("(plain cosine)"),
            }
            // Texts are redacted first, as the pipeline does before matching.
            let redactor = Redactor::new(RuleSet::builtin()?);
            let redacted: Vec<String> = texts.iter().map(|t| redactor.redact(t).text).collect();
            for (text, v) in redacted.iter().zip(encoder.embed(&redacted)?) {
                println!("{text}");
                let v = match &map {
                    Some(m) => m.apply(&v)?,
                    None => v,
                };
                for m in index.matches(&v, top, -1.0) {
                    println!("  {:.3}  {}", m.similarity, m.id);
                }
            }
            Ok(())
        }
    }
}
