//! `vigie eval`: measure a stage on a labelled dataset.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::common::*;
use vigie_eval::datasets::{read_jsonl, LangIdRow, RedactionRow, RiskRow};
use vigie_eval::redaction::PredSpan;

#[derive(Args)]
pub(crate) struct EvalArgs {
    #[arg(value_enum)]
    pub(crate) task: EvalTask,
    /// Labeled JSONL file(s) in the formats of shared/datasets/README.md.
    #[arg(long, required = true, num_args = 1..)]
    pub(crate) data: Vec<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
    /// risk: report every row, also the tune side of files the claim gate trains on.
    #[arg(long)]
    pub(crate) all_rows: bool,
    /// redaction and langid: which rows to measure, split by a stable hash of each row's
    /// id: `tune` (redaction: the four fifths rule authors may read; langid: the half the
    /// language model trains on), `measure` (the fifth, or the half, kept for measuring
    /// only) or `all`.
    #[arg(long, value_enum, default_value_t = SplitSide::All)]
    pub(crate) side: SplitSide,
    /// redaction: also report each source of a file apart (rows grouped by the first
    /// part of their id: btc, wnut17, wikiann, echr, europeana...).
    #[arg(long)]
    pub(crate) by_source: bool,
    /// redaction: write each missed or mislabelled gold span and each spurious prediction,
    /// with context; risk: each row whose outcome disagrees with its label (flagged
    /// reliable rows, unflagged misinformation), with the decision and what it rested on.
    /// JSONL, for rule and model authors (it quotes the dataset's text).
    #[arg(long)]
    pub(crate) errors: Option<PathBuf>,
    /// redaction: the data labels only some social handles (WNUT-17 labels about a
    /// quarter of its tweets' @mentions): a predicted handle that touches no gold span is
    /// set aside, neither right nor wrong, instead of counting against precision.
    #[arg(long)]
    pub(crate) handles_partly_labelled: bool,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum EvalTask {
    Langid,
    Redaction,
    Risk,
    /// Stance of replies toward the rumour they answer (RumourEval-style rows:
    /// `text`, `lang`, `stance`, `thread` or `claim`), measure side only.
    Stance,
}

pub(crate) fn eval(a: EvalArgs) -> Result<()> {
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
                let handles = if a.handles_partly_labelled {
                    vigie_eval::redaction::Handles::PartlyLabelled
                } else {
                    vigie_eval::redaction::Handles::Labelled
                };
                let report = vigie_eval::redaction::evaluate(&rows, handles, predict);
                print_report(path, a.json, &report, || report.table())?;
                if a.by_source {
                    let mut sources: std::collections::BTreeMap<&str, Vec<RedactionRow>> =
                        Default::default();
                    for row in &rows {
                        let source = row.id.split(['-', '_']).next().unwrap_or_default();
                        sources.entry(source).or_default().push(row.clone());
                    }
                    for (source, rows) in &sources {
                        let report = vigie_eval::redaction::evaluate(rows, handles, predict);
                        let title = PathBuf::from(format!("{} [{source}]", path.display()));
                        print_report(&title, a.json, &report, || report.table())?;
                    }
                }
                if let Some(out) = &a.errors {
                    let mut lines = String::new();
                    for e in vigie_eval::redaction::errors(&rows, handles, predict) {
                        lines.push_str(&serde_json::to_string(&e)?);
                        lines.push('\n');
                    }
                    let target = errors_file(out, path, a.data.len());
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
                    #[serde(default)]
                    lang: Option<String>,
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
                // A reply whose language is not detected ("@user wow") would not be judged
                // by the pipeline; its stance is still read here, in the file's language, so
                // that the measure covers every reply rather than the easy ones.
                // Each reply as the pipeline reads it: redacted by the rules and the
                // tagger, its raw pass pooled without the redacted tokens.
                let mut undetected = 0;
                let raw: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
                let mut done = 0;
                let stances = score_with_progress(&raw, |chunk| {
                    let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    let prepared = screener.prepare_for_risk(risk.encoder(), &chunk)?;
                    let texts: Vec<&str> =
                        prepared.redacted.iter().map(|r| r.text.as_str()).collect();
                    let langs: Vec<Option<&str>> = prepared
                        .langs
                        .iter()
                        .zip(&rows[done..done + chunk.len()])
                        .map(|(l, r)| {
                            vigie_pipeline::screener::known_language(l.code).or_else(|| {
                                undetected += 1;
                                match r.lang.as_deref() {
                                    Some("fr") => Some("fr"),
                                    _ => Some("en"),
                                }
                            })
                        })
                        .collect();
                    let read = risk.read_stance(&texts, &langs, &prepared.features)?;
                    done += chunk.len();
                    Ok(read)
                })?;
                if undetected > 0 {
                    eprintln!(
                        "{}: {undetected} of {} replies not detected as French or English; read in the file's language",
                        path.display(),
                        rows.len()
                    );
                }
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
                // Files the claim gate or the stance heads train on: only their measure side
                // is reported.
                let rows: Vec<RiskRow> =
                    if vigie_pipeline::gate_training::tunes_on(path) && !a.all_rows {
                        let before = rows.len();
                        let kept: Vec<RiskRow> = rows
                            .into_iter()
                            .filter(|r| vigie_pipeline::gate_training::is_measure(r.split_group()))
                            .collect();
                        eprintln!(
                        "{}: measure side only (the claim gate or the stance heads tune on the \
                         rest): {} of {} rows",
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
                if let Some(out) = &a.errors {
                    let mut lines = String::new();
                    for (row, risk) in rows.iter().zip(&risks) {
                        let flagged =
                            risk.outcome == vigie_pipeline::contract::RiskOutcome::Misinformation;
                        if flagged == (row.label == "misinformation") {
                            continue;
                        }
                        let line = serde_json::json!({
                            "id": row.id, "lang": row.lang, "label": row.label, "kind": row.kind,
                            "outcome": outcome_name(risk.outcome), "basis": risk.basis,
                            "score": risk.score, "probability": risk.probability,
                            "claim_probability": risk.claim_probability, "stance": risk.stance,
                            "claims": risk.claims.iter().map(|c| (&c.id, c.similarity)).collect::<Vec<_>>(),
                            "text": row.text,
                        });
                        lines.push_str(&serde_json::to_string(&line)?);
                        lines.push('\n');
                    }
                    std::fs::write(errors_file(out, path, a.data.len()), lines)?;
                }
            }
        }
    }
    Ok(())
}

/// Where the errors of `data` go: `out` itself for one data file, else `out` prefixed
/// with the data file's stem.
fn errors_file(out: &std::path::Path, data: &std::path::Path, files: usize) -> PathBuf {
    if files <= 1 {
        return out.to_path_buf();
    }
    let stem = data
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.{name}"))
}

pub(crate) fn outcome_name(outcome: vigie_pipeline::contract::RiskOutcome) -> &'static str {
    use vigie_pipeline::contract::RiskOutcome;
    match outcome {
        RiskOutcome::Misinformation => "misinformation",
        RiskOutcome::RumourSignal => "rumour-signal",
        RiskOutcome::Pass => "pass",
        RiskOutcome::UnscoredLanguage => "unscored-language",
    }
}

pub(crate) fn print_report<T: serde::Serialize>(
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
pub(crate) fn score_with_progress<T>(
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
