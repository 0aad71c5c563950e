//! What several commands share: the config options, the tune/measure split, building the screener, shutdown on a signal.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use vigie_models::Encoder;
use vigie_pipeline::config::Config;
use vigie_pipeline::screener::Screener;

#[derive(Args, Clone)]
pub(crate) struct CommonArgs {
    /// Configuration file (TOML; see vigie.example.toml).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Directory holding the model files (overrides the config).
    #[arg(long, env = "VIGIE_MODEL_DIR")]
    pub(crate) model_dir: Option<PathBuf>,
    /// Skip risk scoring (no model needed; records carry "risk": null). The token tagger
    /// reads the same model pass, so redaction then runs on the rules alone.
    #[arg(long)]
    pub(crate) no_risk: bool,
}

impl CommonArgs {
    pub(crate) fn config(&self) -> Result<Config> {
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

/// A side of the tune/measure split of a dataset (see `gate_training::is_measure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SplitSide {
    Tune,
    Measure,
    All,
}

impl SplitSide {
    pub(crate) fn keeps(self, id: &str) -> bool {
        match self {
            SplitSide::All => true,
            SplitSide::Measure => vigie_pipeline::gate_training::is_measure(id),
            SplitSide::Tune => !vigie_pipeline::gate_training::is_measure(id),
        }
    }
}

pub(crate) fn build_screener(config: &Config) -> Result<Screener> {
    let started = Instant::now();
    let screener = Screener::from_config(config).context("cannot build the screening pipeline")?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f32(),
        risk = config.risk.enabled,
        "pipeline ready"
    );
    Ok(screener)
}

/// Peak resident set size of this process (Linux), in MB.
pub(crate) fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

pub(crate) async fn shutdown_signal() {
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

/// What the risk stage gets for a post: its redacted text and the language the pipeline
/// detects (the redaction rules and the head both depend on it).
pub(crate) fn prepare_for_risk(screener: &Screener, text: &str) -> (String, Option<&'static str>) {
    let detected = screener.language().detect(text);
    let rules = vigie_pipeline::screener::rule_language(&detected);
    let lang = vigie_pipeline::screener::known_language(detected.code);
    (screener.redaction().redact(text, rules).text, lang)
}

/// Each text as the risk heads see it in the pipeline, with its detected language (which
/// the heads read): the raw text's encoder pass pooled without the tokens that the rules
/// and the token tagger redact ([`Screener::prepare_for_risk`], the very code `screen`
/// runs), or, for a text long enough to be read in pieces, the embedding of its redacted
/// text as the risk stage's repost cache normalises it. Vectors come from (and go to) the
/// store, keyed by the raw text, its rules-only redaction and the tagger's fingerprint, so
/// a change of rules or tagger computes them again; with a progress bar.
pub(crate) fn embed_as_seen<'t>(
    screener: &Screener,
    encoder: &Encoder,
    store: &mut vigie_models::embedding_store::EmbeddingStore,
    texts: impl IntoIterator<Item = &'t str>,
    what: &str,
) -> Result<Vec<(Vec<f32>, Option<&'static str>)>> {
    let mut seen = features_as_seen(screener, encoder, store, texts, what)?;
    for (v, _) in &mut seen {
        v.truncate(encoder.dim());
    }
    Ok(seen)
}

/// [`embed_as_seen`], keeping the whole features ([`Encoder::features`]: the embedding,
/// then the tapped layers) that the misinformation head reads.
pub(crate) fn features_as_seen<'t>(
    screener: &Screener,
    encoder: &Encoder,
    store: &mut vigie_models::embedding_store::EmbeddingStore,
    texts: impl IntoIterator<Item = &'t str>,
    what: &str,
) -> Result<Vec<(Vec<f32>, Option<&'static str>)>> {
    let texts: Vec<&str> = texts.into_iter().collect();
    let tagger = screener
        .tagger_fingerprint()
        .map_or_else(|| "rules".to_string(), |f| format!("{f:016x}"));
    let (keys, langs): (Vec<String>, Vec<Option<&'static str>>) = texts
        .iter()
        .map(|t| {
            let (rules_only, lang) = prepare_for_risk(screener, t);
            let key = format!(
                "features-v1\u{0}{tagger}\u{0}{}\u{0}{rules_only}\u{0}{t}",
                lang.unwrap_or("-")
            );
            (key, lang)
        })
        .unzip();
    let mut missing: Vec<usize> = (0..texts.len())
        .filter(|&i| store.get(&keys[i]).is_none())
        .collect();
    // Similar lengths together, so the encoder's batches carry little padding.
    missing.sort_unstable_by_key(|&i| (texts[i].len(), &keys[i]));
    missing.dedup_by_key(|i| &keys[*i]);
    let bar = ProgressBar::new(texts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what} texts embedded (eta {{eta}})"
        ))
        .expect("valid template"),
    );
    bar.set_position((texts.len() - missing.len()) as u64);
    for chunk in missing.chunks(64) {
        let raw: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let prepared = screener.prepare_for_risk(encoder, &raw)?;
        let pieces: Vec<String> = prepared
            .redacted
            .iter()
            .zip(&prepared.features)
            .filter(|(_, p)| p.is_none())
            .map(|(r, _)| vigie_models::repost_cache::normalise(&r.text))
            .collect();
        let mut embedded = encoder.features(&pieces)?.into_iter();
        for (&i, features) in chunk.iter().zip(prepared.features) {
            let vector = match features {
                Some(v) => v,
                None => embedded
                    .next()
                    .context("one embedding per text read in pieces")?,
            };
            store.insert(&keys[i], vector)?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    keys.iter()
        .zip(langs)
        .map(|(k, lang)| Ok((store.get(k).context("every text embedded")?.to_vec(), lang)))
        .collect()
}
