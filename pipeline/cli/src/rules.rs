//! `vigie rules`: run rule examples, explain what fires on a text.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Subcommand;

use crate::common::*;
use vigie_pipeline::config::Config;
use vigie_rules::{Redactor, RuleSet};

#[derive(Subcommand)]
pub(crate) enum RulesCommand {
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

pub(crate) fn rules(command: RulesCommand) -> Result<()> {
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
