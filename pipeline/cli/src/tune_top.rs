//! `vigie train --head top-layers`: the misinformation head with the encoder's top
//! layers fine-tuned (`vigie_models::top_tuning`), reported after each epoch beside the
//! committed head on the same texts (`--layer-learning-rate 0` keeps the layers frozen).
//! An experiment: it reports, and writes nothing.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::common::prepare_for_risk;
use crate::train::{check_risk_args, risk_rows, RiskRows, TrainArgs, TrainingEncoder};
use vigie_eval::datasets::{read_jsonl, RiskRow};
use vigie_models::top_tuning::{TokenExample, TuneOptions, TunedTop};
use vigie_models::training::{example_weights, Example};
use vigie_models::Encoder;

/// One text as the experiment reads it.
struct Seen {
    /// Token states after the encoder's highest tapped layer.
    states: Vec<f32>,
    tokens: usize,
    /// The whole features the committed heads read.
    features: Vec<f32>,
    lang: Option<&'static str>,
}

/// Each text's token states after the encoder's highest tapped layer (the input of the
/// layers tuned above it) and its features, from the f32 pass over its rules-redacted,
/// normalised text.
fn tapped_states(
    screener: &vigie_pipeline::screener::Screener,
    encoder: &Encoder,
    rows: &[RiskRow],
    what: &str,
) -> Result<Vec<Seen>> {
    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} texts"))
            .expect("valid template"),
    );
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(64) {
        let prepared: Vec<(String, Option<&'static str>)> = chunk
            .iter()
            .map(|r| {
                let (text, lang) = prepare_for_risk(screener, &r.text);
                (vigie_models::repost_cache::normalise(&text), lang)
            })
            .collect();
        let texts: Vec<&str> = prepared.iter().map(|p| p.0.as_str()).collect();
        let batch = encoder.encode(&texts)?;
        for (text, (_, lang)) in batch.texts.into_iter().zip(prepared) {
            let features = text.features_without(&[]);
            let tokens = text.ids.len();
            let states = text
                .tapped
                .into_iter()
                .next()
                .context("the f32 encoder taps its layers")?;
            out.push(Seen {
                states,
                tokens,
                features,
                lang,
            });
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

pub(crate) fn train_top_layers(a: &TrainArgs) -> Result<()> {
    check_risk_args(a)?;
    if !(a.layer_learning_rate >= 0.0 && a.layer_learning_rate.is_finite()) {
        anyhow::bail!(
            "--layer-learning-rate must be finite and at least 0 (got {})",
            a.layer_learning_rate
        );
    }
    let TrainingEncoder {
        screener,
        model_dir,
        encoder,
        ..
    } = TrainingEncoder::load(a)?;
    let RiskRows {
        train: train_rows,
        dev: mut dev_sets,
    } = risk_rows(a)?;
    // The family no head trains on, whole, unless a list already names it (trained on
    // its tune side, it is reported by its measure side like the other project files).
    let unseen = std::path::Path::new("risk/unseen_claims.jsonl");
    let named = a.train.iter().chain(&a.project_train).chain(&a.dev);
    if !named.into_iter().any(|f| f == unseen) {
        let path = a.project_data_dir.join(unseen);
        if path.is_file() {
            let rows = read_jsonl::<RiskRow>(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            dev_sets.push((format!("{} (never trained on)", path.display()), rows));
        }
    }
    let share = BTreeMap::from([("fr".to_string(), a.french_share)]);
    let bare: Vec<Example> = train_rows
        .iter()
        .map(|r| Example {
            id: r.id.clone(),
            lang: r.lang.clone(),
            detected: None,
            group: r.split_group().to_string(),
            misinformation: r.is_misinformation(),
            embedding: Vec::new(),
        })
        .collect();
    let weights = example_weights(&bare.iter().collect::<Vec<_>>(), &share);
    let with_features = a.tune_with_features;
    let example = |seen: Seen, r: &RiskRow, weight: f32| TokenExample {
        states: seen.states,
        tokens: seen.tokens,
        label: r.is_misinformation(),
        weight,
        extra: if with_features {
            seen.features
        } else {
            Vec::new()
        },
    };
    let examples: Vec<TokenExample> = tapped_states(&screener, &encoder, &train_rows, "training")?
        .into_iter()
        .zip(&train_rows)
        .zip(weights)
        .map(|((seen, r), weight)| example(seen, r, weight))
        .collect();
    // The committed head on the same texts: the baseline, read the same way.
    let committed = vigie_models::RiskHead::builtin()?;
    let mut dev_examples: Vec<Vec<TokenExample>> = Vec::new();
    for (set, rows) in &dev_sets {
        let seen = tapped_states(&screener, &encoder, rows, "dev")?;
        // Both of its outputs: calibrated (as the stage reads it) and its own sigmoid,
        // which is what the tuned head gives (it has no calibration).
        let (raw, calibrated): (Vec<f32>, Vec<f32>) = seen
            .iter()
            .map(|s| committed.scores(&s.features, s.lang))
            .collect::<Result<Vec<(f32, f32)>, _>>()?
            .into_iter()
            .unzip();
        println!(
            "committed head, calibrated  {}",
            compact(set, rows, &calibrated)
        );
        println!("committed head, sigmoid     {}", compact(set, rows, &raw));
        dev_examples.push(
            seen.into_iter()
                .zip(rows)
                .map(|(seen, r)| example(seen, r, 1.0))
                .collect(),
        );
    }
    let extra = examples.first().map_or(0, |e| e.extra.len());
    let first = encoder
        .taps()
        .first()
        .copied()
        .context("the encoder taps a layer")?;
    let defaults = TuneOptions::default();
    let tuned = TuneOptions {
        epochs: a.epochs.unwrap_or(defaults.epochs),
        batch_size: a.batch_size.unwrap_or(defaults.batch_size),
        layer_learning_rate: a.layer_learning_rate,
        head_learning_rate: a
            .learning_rate
            .map_or(defaults.head_learning_rate, f64::from),
        seed: a.seed,
        ..defaults
    };
    let name = if tuned.layer_learning_rate > 0.0 {
        "tuned top layers"
    } else {
        "frozen top layers"
    };
    let mut top = TunedTop::load(&model_dir, first, extra)?;
    eprintln!(
        "== {name}: layers {first}.. of the encoder, {} examples",
        examples.len()
    );
    let mut failed = None;
    top.train(&examples, tuned, |top, epoch, loss| {
        println!("{name}, epoch {epoch}: weighted loss {loss:.4}");
        for ((set, rows), ex) in dev_sets.iter().zip(&dev_examples) {
            match top.logits(ex) {
                Ok(logits) => {
                    let scores: Vec<f32> = logits
                        .into_iter()
                        .map(|z| 1.0 / (1.0 + (-z).exp()))
                        .collect();
                    println!("  epoch {epoch}  {}", compact(set, rows, &scores));
                }
                // The first failure is the one worth reporting.
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
    })?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// One line per set: ROC-AUC, and the share flagged at 0.5 of its misinformation and of
/// its reliable rows, overall and per language.
fn compact(set: &str, rows: &[RiskRow], scores: &[f32]) -> String {
    let mut line = format!("{set}:");
    for lang in [None, Some("en"), Some("fr")] {
        let picked: Vec<(bool, f32)> = rows
            .iter()
            .zip(scores)
            .filter(|(r, _)| lang.is_none_or(|l| r.lang == l))
            .map(|(r, &s)| (r.is_misinformation(), s))
            .collect();
        if picked.is_empty() {
            continue;
        }
        let (labels, s): (Vec<bool>, Vec<f32>) = picked.iter().copied().unzip();
        let g = vigie_eval::risk::summarise(&s, &labels, 0.5);
        let share = |positive: bool| {
            let (n, k) = picked
                .iter()
                .filter(|(l, _)| *l == positive)
                .fold((0, 0), |(n, k), (_, s)| (n + 1, k + usize::from(*s >= 0.5)));
            if n == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", 100.0 * k as f64 / n as f64)
            }
        };
        line += &format!(
            "  [{}] auc {} misinfo flagged {} reliable flagged {}",
            lang.unwrap_or("all"),
            g.roc_auc.map_or("n/a".into(), |a| format!("{a:.3}")),
            share(true),
            share(false)
        );
    }
    line
}
