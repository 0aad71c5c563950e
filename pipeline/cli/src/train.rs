//! `vigie train`: fit the heads and the tagger (seeded, reproducible).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::common::*;
use vigie_eval::datasets::{read_jsonl, RiskRow};
use vigie_models::{Encoder, TrainOptions};
use vigie_pipeline::config::Config;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HeadArg {
    Risk,
    Gate,
    Stance,
    /// The four-way stance classifier (supports, denies, queries, comments).
    StanceClasses,
    /// The post-to-claim map that matches posts to known claims.
    ClaimMap,
    /// The token tagger of the redaction stage (names, places, organisations, dates).
    Tagger,
    /// The language stage's French-or-English model (no encoder needed).
    Langid,
    /// Experiment: the misinformation head with the encoder's top layers fine-tuned,
    /// reported beside the committed head; writes nothing.
    TopLayers,
}

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// Which head: the misinformation head, or the claim gate (ordinary posts against
    /// health claims; read from both the shared datasets and the project's `datasets/`).
    #[arg(long, value_enum, default_value = "risk")]
    pub(crate) head: HeadArg,
    /// Claim gate: at most this many rows of each source file (a stable sample).
    #[arg(long, default_value_t = 2500)]
    pub(crate) cap: usize,
    /// The seed of the claim gate's sample, the tagger's synthetic posts and the language
    /// model's code-switched posts.
    #[arg(long, default_value_t = 17)]
    pub(crate) seed: u64,
    /// Tagger: synthetic posts made from the project's frames and the gazetteers.
    #[arg(long, default_value_t = 8000)]
    pub(crate) synthetic: usize,
    /// Claim gate: the project's own datasets.
    #[arg(long, default_value = "datasets")]
    pub(crate) project_data_dir: PathBuf,
    /// Directory of the shared datasets ($VIGIE_DATA_DIR, else ../shared/datasets).
    #[arg(long, env = "VIGIE_DATA_DIR", default_value = "../shared/datasets")]
    pub(crate) data_dir: PathBuf,
    /// Training files, relative to the data directory.
    #[arg(long, num_args = 1.., default_values = [
        "risk/constraint_en_train.jsonl",
        "risk/daccord_fr_dev.jsonl",
        "risk/reddit_health_en_train.jsonl",
    ])]
    pub(crate) train: Vec<PathBuf>,
    /// Training files of the project's own, relative to --project-data-dir: health teams'
    /// ordinary posts and correct health information, posts that ask about or refute
    /// rumours (all reliable), posts that spread them. (Everyday French tweets are left
    /// to the claim gate: as reliable rows here they drowned the French rumours.)
    #[arg(long, num_args = 0.., default_values = [
        "risk/ordinary_posts.jsonl",
        "risk/rumour_talk.jsonl",
        "risk/spreading.jsonl",
    ])]
    pub(crate) project_train: Vec<PathBuf>,
    /// Risk head: leave out the rows of these topics in the shared training files
    /// (DACCORD: `covid`, `ukraine-war`, `climate`). None by default: without DACCORD's
    /// war and climate rumours the head learns that a health topic leans false, and flags
    /// correct health information (model card, session 12).
    #[arg(long, num_args = 0..)]
    pub(crate) skip_topics: Vec<String>,
    /// Risk head: the most (in [0, 1]) that the tune side's ordinary posts
    /// (`--operating-kinds`) may be flagged by the head alone, judged out of fold; each
    /// calibration's offset is lowered to meet it, and 0.5 becomes that operating point
    /// rather than a calibrated probability. 1 (the default) leaves the calibration as
    /// fit; a lower rate gives a queue with fewer false flags for fewer spreading posts
    /// caught (model card).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) ordinary_flag_rate: f32,
    /// Risk head: which kinds of reliable training rows the operating point is set on
    /// (the project's ordinary posts carry them; replies and emoji mostly never reach
    /// the head, being under two words).
    #[arg(long, num_args = 1.., default_values = ["ops", "chatter", "info"])]
    pub(crate) operating_kinds: Vec<String>,
    /// Development files reported after training. A file named in both lists is split by
    /// article (by row when it has none): one part in --holdout-parts is held out for
    /// the report and never trained on.
    #[arg(long, num_args = 1.., default_values = ["risk/constraint_en_val.jsonl", "risk/daccord_fr_dev.jsonl"])]
    pub(crate) dev: Vec<PathBuf>,
    #[arg(long, default_value_t = 5)]
    pub(crate) holdout_parts: usize,
    /// Classifier: logistic regression, a one-hidden-layer MLP, or both compared by
    /// cross-validation and the better one kept.
    #[arg(long, value_enum, default_value = "compare")]
    pub(crate) kind: KindArg,
    /// Risk head: the final head is one more head trained on every row
    /// (`refit`, the committed head), or the average of the cross-validation's fold heads,
    /// whose out-of-fold logits the calibration is fit on (`folds`: the 0.5 line moves
    /// less with small data changes; model card).
    #[arg(long, value_enum, default_value = "refit")]
    pub(crate) final_head: FinalHeadArg,
    /// Share of the training weight given to French examples (classes are balanced
    /// within each language first).
    #[arg(long, default_value_t = 0.4)]
    pub(crate) french_share: f32,
    /// Languages given weights of their own on top of the shared ones (none: "").
    #[arg(long, num_args = 0.., default_values = ["fr"])]
    pub(crate) adapt: Vec<String>,
    /// Cross-validation folds (grouped by article).
    #[arg(long, default_value_t = 5)]
    pub(crate) folds: usize,
    /// Where to write the head (default: the committed file of that head).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Configuration whose redaction rules prepare the texts (as the pipeline does).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    #[arg(long, env = "VIGIE_MODEL_DIR")]
    pub(crate) model_dir: Option<PathBuf>,
    /// Recompute every embedding instead of reusing those stored next to the model.
    #[arg(long)]
    pub(crate) no_store: bool,
    /// Override the classifiers' settings (defaults: `TrainOptions::logistic()` and `::mlp()`).
    #[arg(long)]
    pub(crate) epochs: Option<usize>,
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    #[arg(long)]
    pub(crate) learning_rate: Option<f32>,
    #[arg(long)]
    pub(crate) l2: Option<f32>,
    #[arg(long)]
    pub(crate) hidden: Option<usize>,
    /// Risk head, claim gate, stance head and four-way stance: what the head reads of
    /// each post: the embedding and the tapped layers' means (`Encoder::features`), or
    /// the embedding alone (every head before session 16).
    #[arg(long, value_enum, default_value = "features")]
    pub(crate) input: InputArg,
    /// `--head top-layers`: AdamW's learning rate for the tuned layers' weights.
    #[arg(long, default_value_t = 3e-5)]
    pub(crate) layer_learning_rate: f64,
    /// `--head top-layers`: the head also reads the frozen features.
    #[arg(long)]
    pub(crate) tune_with_features: bool,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub(crate) enum InputArg {
    Features,
    Embedding,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub(crate) enum FinalHeadArg {
    Folds,
    Refit,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub(crate) enum KindArg {
    Logistic,
    Mlp,
    Compare,
}

/// What the heads that read post embeddings are trained with: the texts prepared as the
/// pipeline prepares them (language and redaction; the risk stage itself off) and embedded
/// by the f32 pass, kept in the store next to the model unless `--no-store`.
struct Embedding {
    config: Config,
    screener: vigie_pipeline::screener::Screener,
    encoder: Encoder,
    store: vigie_models::embedding_store::EmbeddingStore,
}

/// What every head trained on the encoder starts from: the configuration (risk stage
/// off), the pipeline that prepares texts as `screen` does, the model directory and the
/// f32 encoder.
pub(crate) struct TrainingEncoder {
    pub(crate) config: Config,
    pub(crate) screener: vigie_pipeline::screener::Screener,
    pub(crate) model_dir: PathBuf,
    pub(crate) encoder: Encoder,
}

impl TrainingEncoder {
    pub(crate) fn load(a: &TrainArgs) -> Result<Self> {
        let mut config = Config::load(a.config.as_deref())?;
        config.risk.enabled = false; // the heads' own encoder is loaded below
        let screener = vigie_pipeline::screener::Screener::for_training(&config)
            .context("cannot build the screening pipeline")?;
        let model_dir = a
            .model_dir
            .clone()
            .unwrap_or_else(vigie_models::encoder::default_model_dir);
        // Heads are fitted on the f32 pass, so they do not depend on the kernel of the
        // machine that trains them; the int8 pass they run on stays within 0.99 cosine of
        // it on the embedding and on each tapped layer's mean (measured: `vigie bench
        // encoder --cosine-data`, which prints both).
        let encoder = Encoder::load_precision(&model_dir, vigie_models::fast_bert::Precision::F32)?;
        Ok(TrainingEncoder {
            config,
            screener,
            model_dir,
            encoder,
        })
    }
}

impl Embedding {
    fn set_up(a: &TrainArgs) -> Result<Self> {
        use vigie_models::embedding_store::{default_store_path, EmbeddingStore};
        let TrainingEncoder {
            config,
            screener,
            model_dir,
            encoder,
        } = TrainingEncoder::load(a)?;
        // The store keeps whole features; the heads that read the embedding alone take
        // its first part.
        let store = if a.no_store {
            EmbeddingStore::in_memory(encoder.feature_dim())
        } else {
            EmbeddingStore::open(&default_store_path(&model_dir), encoder.feature_dim())
        };
        Ok(Embedding {
            config,
            screener,
            encoder,
            store,
        })
    }
}

/// The settings the risk head and the top-layer experiment share, checked before any work.
pub(crate) fn check_risk_args(a: &TrainArgs) -> Result<()> {
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
    Ok(())
}

/// Each text's vector as the heads read it (`--input`), with its detected language.
fn input_as_seen<'t>(
    input: InputArg,
    screener: &vigie_pipeline::screener::Screener,
    encoder: &Encoder,
    store: &mut vigie_models::embedding_store::EmbeddingStore,
    texts: impl IntoIterator<Item = &'t str>,
    what: &str,
) -> Result<Vec<(Vec<f32>, Option<&'static str>)>> {
    match input {
        InputArg::Features => features_as_seen(screener, encoder, store, texts, what),
        InputArg::Embedding => embed_as_seen(screener, encoder, store, texts, what),
    }
}

pub(crate) fn train(a: TrainArgs) -> Result<()> {
    match a.head {
        HeadArg::Tagger => return train_tagger(&a),
        HeadArg::Langid => return train_langid(&a),
        HeadArg::Gate => return train_gate(&a, vigie_pipeline::gate_training::Task::ClaimGate),
        HeadArg::Stance => return train_gate(&a, vigie_pipeline::gate_training::Task::Stance),
        HeadArg::StanceClasses => return train_stance_classes(&a),
        HeadArg::ClaimMap => return train_claim_map(&a),
        HeadArg::TopLayers => return crate::tune_top::train_top_layers(&a),
        HeadArg::Risk => {}
    }
    use std::collections::BTreeMap;
    use vigie_models::training::{self, Example};

    check_risk_args(&a)?;
    if !(0.0..=1.0).contains(&a.ordinary_flag_rate) {
        bail!(
            "--ordinary-flag-rate must be in [0, 1] (got {})",
            a.ordinary_flag_rate
        );
    }
    let Embedding {
        screener,
        encoder,
        mut store,
        ..
    } = Embedding::set_up(&a)?;

    let RiskRows {
        train: train_rows,
        dev: dev_sets,
    } = risk_rows(&a)?;
    let group = |r: &RiskRow| r.split_group().to_string();

    let mut as_seen = |rows: &[RiskRow], what: &str| {
        let texts = rows.iter().map(|r| r.text.as_str());
        input_as_seen(a.input, &screener, &encoder, &mut store, texts, what)
    };
    let train_vectors = as_seen(&train_rows, "training")?;
    let dev_vectors: Vec<Vec<(Vec<f32>, Option<&str>)>> = dev_sets
        .iter()
        .map(|(_, rows)| as_seen(rows, "dev"))
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
    let mut best: Option<(
        f64,
        training::Recipe,
        vigie_models::head::Calibration,
        training::CrossValidated,
    )> = None;
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
        let folds =
            training::cross_validate(&examples, &recipe, a.folds, |k| bar.set_position(k as u64))?;
        bar.finish_and_clear();
        let (calibration, figures) =
            training::per_language(&examples, &folds.logits, &adapted, a.folds)?;
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
            best = Some((mean, recipe, calibration, folds));
        }
    }
    let (mean, recipe, mut calibration, folds) = best.context("no classifier trained")?;
    let logits = &folds.logits;
    if a.ordinary_flag_rate < 1.0 {
        let rate = a.ordinary_flag_rate;
        // The operating point, on the posts a health team writes all day (operational
        // messages, chatter, correct health information).
        let ordinary: std::collections::HashSet<&str> = train_rows
            .iter()
            .filter(|r| {
                r.label == "reliable"
                    && r.kind
                        .as_ref()
                        .is_some_and(|k| a.operating_kinds.contains(k))
            })
            .map(|r| r.id.as_str())
            .collect();
        let shifts = training::set_operating_point(
            &mut calibration,
            &examples,
            logits,
            |e| ordinary.contains(e.id.as_str()),
            rate,
        );
        if shifts.is_empty() {
            eprintln!(
                "warning: no calibration has 30 ordinary rows of kinds {:?}; the operating point was not set",
                a.operating_kinds
            );
        }
        for s in &shifts {
            println!(
                "operating point ({} scaling): {} of {} ordinary tune posts flagged out of fold, {} after lowering the offset by {:.3} (at most {:.1} % asked)",
                s.lang.as_deref().unwrap_or("overall"),
                s.flagged_before,
                s.rows,
                s.flagged_after,
                s.offset_lowered_by,
                100.0 * rate
            );
        }
    }
    let trained_on = a
        .train
        .iter()
        .chain(&a.project_train)
        .map(|p| format!("{} (tune side)", p.display()))
        .collect();
    let head = match a.final_head {
        FinalHeadArg::Folds => {
            let head =
                training::average_of_folds(&folds.heads, &examples, calibration, trained_on)?;
            let (gap, flips) = training::averaging_gap(&head, &folds.heads, &examples)?;
            println!(
                "final head: the average of the {} fold heads' weights; its logits differ from the fold heads' mean logit by {gap:.3} on average over the tune rows, and fall on the other side of 0.5 for {:.2} % of them",
                folds.heads.len(),
                100.0 * flips
            );
            head
        }
        FinalHeadArg::Refit => training::train_final(&examples, &recipe, calibration, trained_on)?,
    };
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

/// The risk head's rows: the tune sides of the training files, and the sets reported
/// after training (named) with their rows.
pub(crate) struct RiskRows {
    pub(crate) train: Vec<RiskRow>,
    pub(crate) dev: Vec<(String, Vec<RiskRow>)>,
}

/// Reads the risk head's training and development rows as `a` names them, the measure
/// side of every training file kept out of training.
pub(crate) fn risk_rows(a: &TrainArgs) -> Result<RiskRows> {
    use vigie_models::training;
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
    let off_topic = |r: &RiskRow| {
        r.topic
            .as_ref()
            .is_some_and(|t| a.skip_topics.iter().any(|s| s == t))
    };
    for f in &a.train {
        let rows = read(f)?;
        let before = rows.len();
        let kept: Vec<RiskRow> = rows.into_iter().filter(|r| !off_topic(r)).collect();
        if kept.len() < before {
            eprintln!(
                "{}: {} rows of topics {:?} left out",
                f.display(),
                before - kept.len(),
                a.skip_topics
            );
        }
        train_rows.extend(kept.into_iter().filter(|r| !held_out(r)));
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
    Ok(RiskRows {
        train: train_rows,
        dev: dev_sets,
    })
}

/// `vigie train --head langid`: the language stage's French-or-English model, on the tune
/// half of the shared lingua file and of the project's chat lines; reported on the
/// other half.
pub(crate) fn train_langid(a: &TrainArgs) -> Result<()> {
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
pub(crate) fn train_tagger(a: &TrainArgs) -> Result<()> {
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
pub(crate) fn train_gate(a: &TrainArgs, task: vigie_pipeline::gate_training::Task) -> Result<()> {
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

    let Embedding {
        config,
        screener,
        encoder,
        mut store,
    } = Embedding::set_up(a)?;
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
    let mut as_seen = |rows: &[vigie_pipeline::gate_training::GateRow], what: &str| {
        let texts = rows.iter().map(|r| r.text.as_str());
        input_as_seen(a.input, &screener, &encoder, &mut store, texts, what)
    };
    let tune_vectors = as_seen(&tune, "tune")?;
    let measure_vectors = as_seen(&measure, "measure")?;
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
    // Every source weighs its share of its class, whatever its size.
    let weights = vigie_pipeline::gate_training::source_weights(&tune);
    let xs: Vec<Vec<f32>> = examples.iter().map(|e| e.embedding.clone()).collect();
    let labels: Vec<bool> = examples.iter().map(|e| e.misinformation).collect();
    let trained_on = vec![format!(
        "{what}: tune side (4 groups in 5) of every source of pipeline/src/gate_training.rs, \
         at most {} rows each (seed {}), every source weighing its share of its class",
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

pub(crate) fn figures_table(
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

/// `vigie train --head stance-classes`: the four-way stance classifier, on the tune side
/// of RumourEval's threads and of the project's French replies and rumour posts.
pub(crate) fn train_stance_classes(a: &TrainArgs) -> Result<()> {
    use vigie_models::softmax::SoftmaxTraining;
    use vigie_models::stance_classes::{macro_f1, macro_f1_offsets, StanceClassifier, STANCES};
    use vigie_pipeline::gate_training::Side;
    use vigie_pipeline::stance_training::{balanced_weights, stance_rows};

    let Embedding {
        screener,
        encoder,
        mut store,
        ..
    } = Embedding::set_up(a)?;
    let cues = vigie_models::stance_cues::StanceCues::builtin()?;
    let tune = stance_rows(&a.data_dir, &a.project_data_dir, Side::Tune, a.cap, a.seed)?;
    let measure = stance_rows(
        &a.data_dir,
        &a.project_data_dir,
        Side::Measure,
        a.cap,
        a.seed,
    )?;
    // Embeddings as the risk stage gets them, and cue words of the redacted text. The cue
    // words read the rules' redaction only (the stored vectors keep no text): the tagger's
    // placeholders stand for names and places, which no cue phrase holds.
    let mut prepare = |rows: &[vigie_pipeline::stance_training::StanceRow], what: &str| {
        let signs: Vec<_> = rows
            .iter()
            .map(|r| cues.signs(&prepare_for_risk(&screener, &r.text).0))
            .collect();
        let texts = rows.iter().map(|r| r.text.as_str());
        let vectors = input_as_seen(a.input, &screener, &encoder, &mut store, texts, what)?;
        anyhow::Ok((vectors, signs))
    };
    let (tune_vectors, tune_signs) = prepare(&tune, "tune")?;
    let (measure_vectors, measure_signs) = prepare(&measure, "measure")?;
    store.save()?;
    let options = SoftmaxTraining {
        hidden: a.hidden.unwrap_or(64),
        epochs: a.epochs.unwrap_or(40),
        batch_size: a.batch_size.unwrap_or(64),
        learning_rate: a.learning_rate.unwrap_or(2e-3),
        l2: a.l2.unwrap_or(1e-4),
        seed: a.seed,
    };
    // Training weighs the classes alike; the priors macro-F1 wants are chosen on a fifth
    // of the tune side's threads held out of a first fit, then shifted into the final one.
    let inner_val = |r: &vigie_pipeline::stance_training::StanceRow| {
        vigie_models::training::fold_of(&format!("priors:{}", r.group), 5) == 0
    };
    let pick = |keep: bool| -> Vec<usize> {
        (0..tune.len())
            .filter(|&i| inner_val(&tune[i]) == keep)
            .collect()
    };
    let (fit_rows, val_rows) = (pick(false), pick(true));
    let dim = match a.input {
        InputArg::Features => encoder.feature_dim(),
        InputArg::Embedding => encoder.dim(),
    };
    let fit = |rows: &[usize], trained_on: Vec<String>| {
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|&i| tune_vectors[i].0.iter().copied())
            .collect();
        let signs: Vec<_> = rows.iter().map(|&i| tune_signs[i]).collect();
        let classes: Vec<u8> = rows.iter().map(|&i| tune[i].class).collect();
        StanceClassifier::train(
            &flat,
            &signs,
            &classes,
            &balanced_weights(&classes),
            dim,
            &options,
            trained_on,
        )
    };
    let first = fit(&fit_rows, Vec::new())?;
    let val_logits = val_rows
        .iter()
        .map(|&i| first.logits(&tune_vectors[i].0, &tune_signs[i]))
        .collect::<Result<Vec<_>, _>>()?;
    let val_gold: Vec<u8> = val_rows.iter().map(|&i| tune[i].class).collect();
    let offsets = macro_f1_offsets(&val_logits, &val_gold);
    eprintln!(
        "class priors from {} held-out tune rows: offsets {offsets:?}, macro-F1 {:.3} -> {:.3}",
        val_rows.len(),
        macro_f1(&val_logits, &val_gold, [0.0; 4]),
        macro_f1(&val_logits, &val_gold, offsets)
    );
    let trained_on = vec![format!(
        "tune side (4 groups in 5, by thread or claim) of risk/stance_en_train.jsonl and the \
         project's risk/stance_fr.jsonl, rumour_talk.jsonl, spreading.jsonl, \
         stance_cases.jsonl, at most {} rows each: {} rows, classes weighing alike; MLP {} \
         units, {} epochs, batches of {}, lr {}, L2 {}, seed {}; output biases shifted by \
         {offsets:?}, the offsets that gave the best macro-F1 on the {} rows of a fifth of \
         those groups held out of a first fit",
        a.cap,
        tune.len(),
        options.hidden,
        options.epochs,
        options.batch_size,
        options.learning_rate,
        options.l2,
        options.seed,
        val_rows.len()
    )];
    eprintln!("{} tune rows, {} measure rows", tune.len(), measure.len());
    let all: Vec<usize> = (0..tune.len()).collect();
    let mut classifier = fit(&all, trained_on)?;
    classifier.shift_priors(offsets);
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| vigie_pipeline::config::DEFAULT_STANCE_CLASSES.into());
    classifier.save(&out)?;
    eprintln!("stance classifier written to {}", out.display());
    let mut by_source: std::collections::BTreeMap<&str, Vec<(&str, &str)>> = Default::default();
    for ((row, (x, _)), signs) in measure.iter().zip(&measure_vectors).zip(&measure_signs) {
        let (best, _) = classifier.classify(x, signs)?;
        by_source
            .entry(row.source)
            .or_default()
            .push((STANCES[row.class as usize], STANCES[best]));
    }
    for (source, pairs) in by_source {
        let report = vigie_eval::stance::evaluate(pairs);
        println!(
            "== {source} (measure side, never trained on): macro-F1 {:.3}\n{}",
            report.macro_f1,
            report.table()
        );
    }
    Ok(())
}

/// `vigie train --head claim-map`: the post-to-claim map (`ClaimMap`), fitted on the
/// project's posts that spread or discuss a rumour (the tune side, split by claim) and
/// the English statement of their claim. The ridge weight is chosen on a fifth of those
/// claims held out of a first fit (the right claim closest, among the tune side's claims
/// and the default library); the threshold is the 99th percentile of the best match of
/// the tune side's ordinary posts and French everyday tweets. Figures are printed for the
/// measure side, whose claims the map never saw.
pub(crate) fn train_claim_map(a: &TrainArgs) -> Result<()> {
    use vigie_models::claim_map::ClaimMap;
    use vigie_pipeline::gate_training::is_measure;

    const LAMBDAS: [f64; 5] = [1.0, 3.0, 10.0, 30.0, 100.0];
    let Embedding {
        config,
        screener,
        encoder,
        mut store,
    } = Embedding::set_up(a)?;
    let dim = encoder.dim();
    struct Post {
        text: String,
        claim: Option<String>,
        measure: bool,
    }
    let mut posts = Vec::new();
    let files = [
        (&a.project_data_dir, "risk/spreading.jsonl"),
        (&a.project_data_dir, "risk/rumour_talk.jsonl"),
        (&a.project_data_dir, "risk/ordinary_posts.jsonl"),
        (&a.data_dir, "risk/chatter_fr_train.jsonl"),
    ];
    for (dir, file) in files {
        let path = dir.join(file);
        let rows =
            read_jsonl::<RiskRow>(&path).with_context(|| format!("reading {}", path.display()))?;
        // At most --cap rows a file (a stable sample), so tests can train on a few.
        let mut rows: Vec<RiskRow> = rows;
        if rows.len() > a.cap {
            rows.sort_by_key(|r| vigie_eval::split::sample_key(&r.id, a.seed));
            rows.truncate(a.cap);
        }
        posts.extend(rows.into_iter().map(|r| Post {
            measure: is_measure(r.claim.as_deref().unwrap_or(&r.id)),
            claim: r.claim,
            text: r.text,
        }));
    }
    let vectors = embed_as_seen(
        &screener,
        &encoder,
        &mut store,
        posts.iter().map(|p| p.text.as_str()),
        "posts",
    )?;
    // Candidates: every claim of the project's posts, then the default library.
    let mut own: Vec<String> = posts.iter().filter_map(|p| p.claim.clone()).collect();
    own.sort();
    own.dedup();
    let library: Vec<String> = config
        .risk
        .claim_library()
        .load()?
        .into_iter()
        .map(|c| c.text)
        .collect();
    let candidates: Vec<String> = own.iter().cloned().chain(library).collect();
    let mut candidate_vectors = store.embed_all(&encoder, &candidates, |_| {})?;
    for v in &mut candidate_vectors {
        v.truncate(encoder.dim());
    }
    store.save()?;
    let index_of: std::collections::HashMap<&str, usize> = own
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let claim_of = |p: &Post| p.claim.as_deref().and_then(|c| index_of.get(c).copied());

    let fit = |rows: &[usize], lambda: f64| -> Result<ClaimMap> {
        let x: Vec<f32> = rows
            .iter()
            .flat_map(|&i| vectors[i].0.iter().copied())
            .collect();
        let y: Vec<f32> = rows
            .iter()
            .filter_map(|&i| claim_of(&posts[i]))
            .flat_map(|c| candidate_vectors[c].iter().copied())
            .collect();
        Ok(ClaimMap {
            about: "Vigie post-to-claim map: x W compared with the claims' embeddings; see \
                    models/README.md"
                .to_string(),
            dim,
            w: ClaimMap::fit(&x, &y, dim, lambda)?,
            lambda: lambda as f32,
            threshold: 1.0,
            trained_on: Vec::new(),
        })
    };
    // The closest candidate to a post through `map` (allowed: which candidates count).
    let best =
        |map: &ClaimMap, i: usize, allowed: &dyn Fn(usize) -> bool| -> Result<(usize, f32)> {
            let m = map.apply(&vectors[i].0)?;
            Ok(candidate_vectors
                .iter()
                .enumerate()
                .filter(|(c, _)| allowed(*c))
                .map(|(c, v)| (c, vigie_models::encoder::cosine(&m, v)))
                .fold((usize::MAX, f32::MIN), |b, x| if x.1 > b.1 { x } else { b }))
        };
    let inner_val = |p: &Post| {
        vigie_models::training::fold_of(
            &format!("claim-map:{}", p.claim.as_deref().unwrap_or("")),
            5,
        ) == 0
    };
    let paired: Vec<usize> = (0..posts.len())
        .filter(|&i| !posts[i].measure && claim_of(&posts[i]).is_some())
        .collect();
    let (fit_rows, val_rows): (Vec<usize>, Vec<usize>) =
        paired.iter().copied().partition(|&i| !inner_val(&posts[i]));
    if fit_rows.is_empty() || val_rows.is_empty() {
        bail!(
            "too few posts with a claim to fit and choose the map ({} and {})",
            fit_rows.len(),
            val_rows.len()
        );
    }
    // Held-out claims compete with the library and every tune claim, as at serving.
    let mut is_tune_claim: Vec<bool> = (0..candidates.len()).map(|c| c >= own.len()).collect();
    for p in posts.iter().filter(|p| !p.measure) {
        if let Some(c) = claim_of(p) {
            is_tune_claim[c] = true;
        }
    }
    let tune_claim = |c: usize| is_tune_claim[c];
    let mut chosen = (f64::NAN, -1.0f64);
    for lambda in LAMBDAS {
        let map = fit(&fit_rows, lambda)?;
        let mut right = 0usize;
        for &i in &val_rows {
            if Some(best(&map, i, &tune_claim)?.0) == claim_of(&posts[i]) {
                right += 1;
            }
        }
        let share = right as f64 / val_rows.len() as f64;
        eprintln!(
            "lambda {lambda}: right claim closest for {:.1} % of {} held-out tune posts",
            share * 100.0,
            val_rows.len()
        );
        // Ties go to the larger lambda, nearer plain cosine.
        if share >= chosen.1 {
            chosen = (lambda, share);
        }
    }
    let mut map = fit(&paired, chosen.0)?;
    let mut sorted = (0..posts.len())
        .filter(|&i| !posts[i].measure && posts[i].claim.is_none())
        .map(|i| best(&map, i, &tune_claim).map(|b| b.1))
        .collect::<Result<Vec<f32>>>()?;
    sorted.sort_by(f32::total_cmp);
    let Some(&threshold) = sorted
        .get(((sorted.len() as f64) * 0.99) as usize)
        .or(sorted.last())
    else {
        bail!("no ordinary posts on the tune side to set the threshold")
    };
    map.threshold = threshold;

    // The measure side: claims the map never saw, among every candidate.
    let every = |_: usize| true;
    let mut right_top = 0usize;
    let mut matched = 0usize;
    let mut matched_right = 0usize;
    let mut plain_right = 0usize;
    let identity = ClaimMap::identity(dim, threshold);
    let measured: Vec<usize> = (0..posts.len())
        .filter(|&i| posts[i].measure && claim_of(&posts[i]).is_some())
        .collect();
    for &i in &measured {
        let (c, sim) = best(&map, i, &every)?;
        let right = Some(c) == claim_of(&posts[i]);
        right_top += usize::from(right);
        matched += usize::from(sim >= threshold);
        matched_right += usize::from(right && sim >= threshold);
        plain_right += usize::from(Some(best(&identity, i, &every)?.0) == claim_of(&posts[i]));
    }
    let ordinary_measure: Vec<usize> = (0..posts.len())
        .filter(|&i| posts[i].measure && posts[i].claim.is_none())
        .collect();
    let mut ordinary_matched = 0usize;
    for &i in &ordinary_measure {
        ordinary_matched += usize::from(best(&map, i, &every)?.1 >= threshold);
    }
    let pct = |n: usize, d: usize| 100.0 * n as f64 / d.max(1) as f64;
    let summary = format!(
        "measure side (claims never trained on): right claim closest for {:.1} % of {} posts \
         (plain cosine {:.1} %); at the threshold {threshold:.3}, {:.1} % matched, {:.1} % \
         matched to the right claim; ordinary posts matched {:.1} % of {}",
        pct(right_top, measured.len()),
        measured.len(),
        pct(plain_right, measured.len()),
        pct(matched, measured.len()),
        pct(matched_right, measured.len()),
        pct(ordinary_matched, ordinary_measure.len()),
        ordinary_measure.len()
    );
    map.trained_on = vec![
        format!(
            "tune side (4 claims in 5) of the project's risk/spreading.jsonl and \
             risk/rumour_talk.jsonl, at most {} rows a file: {} posts and the English \
             statement of their claim; ridge toward the identity, lambda {} chosen among \
             {LAMBDAS:?} on a fifth of those claims held out of a first fit ({:.1} % right); \
             threshold: 99th percentile of the best match of the tune side's ordinary posts \
             and French everyday tweets, against the tune claims and the default library",
            a.cap,
            paired.len(),
            chosen.0,
            chosen.1 * 100.0
        ),
        summary.clone(),
    ];
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| vigie_pipeline::config::DEFAULT_CLAIM_MAP.into());
    map.save(&out)?;
    println!("{summary}");
    eprintln!("claim map written to {}", out.display());
    Ok(())
}
