//! Training the language stage's French-or-English model (`vigie train --head langid`).
//!
//! Rows are split in two halves by a stable hash of their id: the model is fitted on
//! one half of each file and `vigie eval langid --side measure` reports the other. The
//! fit is a class-balanced logistic regression by full-batch gradient descent from zero
//! weights: no randomness, so the same rows give the same model byte for byte.

use std::path::PathBuf;

use vigie_eval::datasets::{read_jsonl, LangIdRow};

use crate::stages::language::{FrEnModel, LanguageStage, Lexicon, LexiconError, SIGNALS};

/// The shared lingua file, under the shared datasets directory.
pub const SHARED_FILE: &str = "langid/lingua_dev.jsonl";
/// The project's chat lines, under its `datasets/`.
pub const PROJECT_FILE: &str = "langid/chat_lines.jsonl";
/// Each chat line weighs this many lingua rows: chat lines are what the stage reads in
/// service (short, elided, mixed), lingua's are mostly sentences and dictionary words.
pub const CHAT_WEIGHT: f32 = 4.0;
/// Posts switching between French and English made for training (see [`code_switched`])...
pub const CODE_SWITCHED: usize = 2000;
/// ...each weighing this many lingua rows (together, a sixth of the French and English
/// weight: enough to teach the family without drowning the rest).
pub const CODE_SWITCHED_WEIGHT: f32 = 0.25;

#[derive(Debug, thiserror::Error)]
pub enum LangIdTrainingError {
    #[error(transparent)]
    Data(#[from] vigie_eval::EvalError),
    #[error(transparent)]
    Lexicon(#[from] LexiconError),
}

/// Where the training rows and word lists are.
pub struct Sources {
    pub shared_dir: PathBuf,
    pub project_dir: PathBuf,
    pub gazetteers: PathBuf,
}

/// A trained model and how it fares on both halves.
pub struct Trained {
    pub model: FrEnModel,
    pub tune_accuracy: f64,
    pub measure_accuracy: f64,
    pub measured: usize,
}

/// Trains the model as `vigie train --head langid` does: tune halves of both files (chat
/// lines weighted [`CHAT_WEIGHT`]), plus code-switched posts made from their French and
/// English texts; `progress` gets a line per file.
pub fn train(
    sources: &Sources,
    options: FitOptions,
    seed: u64,
    mut progress: impl FnMut(String),
) -> Result<Trained, LangIdTrainingError> {
    let lexicon = Lexicon::load(&sources.gazetteers)?;
    let stage = LanguageStage::with_model(lexicon, FrEnModel::untrained());
    let files = [
        (sources.shared_dir.join(SHARED_FILE), 1.0),
        (sources.project_dir.join(PROJECT_FILE), CHAT_WEIGHT),
    ];
    let (mut tune, mut measure) = (Vec::new(), Vec::new());
    let (mut french, mut english) = (Vec::new(), Vec::new());
    for (file, weight) in &files {
        let rows: Vec<LangIdRow> = read_jsonl(file)?;
        let (t, m): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| !is_measure(&r.id));
        progress(format!(
            "{}: {} tune rows, {} measured",
            file.display(),
            t.len(),
            m.len()
        ));
        let labelled = |rows: &[LangIdRow]| {
            let mut set = examples(
                &stage,
                rows.iter().map(|r| (r.text.as_str(), r.lang.as_str())),
            );
            set.iter_mut().for_each(|e| e.weight = *weight);
            set
        };
        tune.extend(labelled(&t));
        measure.extend(labelled(&m));
        // Texts to splice into code-switched posts: whole French or English texts.
        for r in &t {
            if r.mixed == Some(true) || r.kind.as_deref() == Some("single-words") {
                continue;
            }
            match r.lang.as_str() {
                "fr" => french.push(r.text.clone()),
                "en" => english.push(r.text.clone()),
                _ => {}
            }
        }
    }
    let french: Vec<&str> = french.iter().map(String::as_str).collect();
    let english: Vec<&str> = english.iter().map(String::as_str).collect();
    let switched = code_switched(&french, &english, CODE_SWITCHED, seed);
    let mut switched = examples(&stage, switched.iter().map(|t| (t.as_str(), "fr")));
    switched
        .iter_mut()
        .for_each(|e| e.weight = CODE_SWITCHED_WEIGHT);
    tune.extend(switched);
    let trained_on = format!(
        "tune half of {SHARED_FILE} and {PROJECT_FILE}, {CODE_SWITCHED} posts switching French \
         and English made from them (seed {seed}); {} texts, {} epochs",
        tune.len(),
        options.epochs
    );
    let model = fit(&tune, options, trained_on);
    Ok(Trained {
        tune_accuracy: accuracy(&model, &tune),
        measure_accuracy: accuracy(&model, &measure),
        measured: measure.len(),
        model,
    })
}

/// Whether a language-ID row is kept for measuring only (half of every file).
pub fn is_measure(id: &str) -> bool {
    vigie_models::training::fold_of(&format!("langid:{id}"), 2) == 0
}

/// One labelled text: French or English (true) against another language (false).
pub struct Example {
    pub signals: Vec<f32>,
    pub fr_or_en: bool,
    /// Weight within its class (1 by default).
    pub weight: f32,
}

/// The examples of `(text, lang)` rows: `fr`/`en` against `other`; rows of another label
/// (`und`) and texts decided without the model (nothing to read) are left out.
pub fn examples<'a>(
    stage: &LanguageStage,
    rows: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<Example> {
    rows.into_iter()
        .filter_map(|(text, lang)| {
            let fr_or_en = match lang {
                "fr" | "en" => true,
                "other" => false,
                _ => return None,
            };
            let observed = stage.observe_signals(text)?;
            Some(Example {
                signals: observed.signals.to_vec(),
                fr_or_en,
                weight: 1.0,
            })
        })
        .collect()
}

/// Posts that switch between French and English mid-way, as people in Québec, Cameroon
/// or a clinic do ("le patient est sorti, call him back asap"): the first words of a
/// text in one language joined to the last words of a text in the other. Trigrams read
/// such a post as a third language, so the model must see the family; `n` of them,
/// seeded, from the `french` and `english` texts given (the tune side only).
pub fn code_switched(french: &[&str], english: &[&str], n: usize, seed: u64) -> Vec<String> {
    let mut rng = vigie_models::rng::XorShift::new(seed);
    let usable = |texts: &[&str]| -> Vec<Vec<String>> {
        texts
            .iter()
            .map(|t| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|w| (3..=30).contains(&w.len()))
            .collect()
    };
    let (french, english) = (usable(french), usable(english));
    if french.is_empty() || english.is_empty() {
        return Vec::new();
    }
    let mut pick = |texts: &[Vec<String>]| texts[rng.below(texts.len() as u64) as usize].clone();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b) = (pick(&french), pick(&english));
        let (first, second) = if i % 2 == 0 { (a, b) } else { (b, a) };
        // Two to five words of the second language, the rest of the first.
        let tail = (2 + i % 4).min(second.len());
        let head = first.len().saturating_sub(tail).max(2);
        let mut words: Vec<String> = first[..head.min(first.len())].to_vec();
        words.extend_from_slice(&second[second.len() - tail..]);
        out.push(words.join(" "));
    }
    out
}

/// How the model is fitted.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    /// Weight of the French-or-English class against the other, after balancing: above 1,
    /// a French post sent to `other` (which then skips the French rules and the risk
    /// judgement) costs more than a post in another language read as French.
    pub fr_en_weight: f32,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 3000,
            learning_rate: 1.0,
            l2: 1e-4,
            fr_en_weight: 1.5,
        }
    }
}

/// Fits the model (balanced classes, full-batch gradient descent).
pub fn fit(examples: &[Example], options: FitOptions, trained_on: String) -> FrEnModel {
    let dim = SIGNALS.len();
    let class_total = |fr_or_en: bool| {
        let sum: f32 = examples
            .iter()
            .filter(|e| e.fr_or_en == fr_or_en)
            .map(|e| e.weight)
            .sum();
        sum.max(f32::MIN_POSITIVE)
    };
    let (positives, negatives) = (class_total(true), class_total(false));
    let weight_of = |e: &Example| {
        if e.fr_or_en {
            options.fr_en_weight * e.weight / positives
        } else {
            e.weight / negatives
        }
    };
    let total: f32 = examples
        .iter()
        .map(weight_of)
        .sum::<f32>()
        .max(f32::MIN_POSITIVE);
    let (mut w, mut b) = (vec![0f32; dim], 0f32);
    let mut grad = vec![0f32; dim];
    for _ in 0..options.epochs {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut grad_b = 0f32;
        for e in examples {
            let z: f32 = w.iter().zip(&e.signals).map(|(w, x)| w * x).sum::<f32>() + b;
            let p = 1.0 / (1.0 + (-z).exp());
            let err = (p - e.fr_or_en as u8 as f32) * weight_of(e) / total;
            for (g, x) in grad.iter_mut().zip(&e.signals) {
                *g += err * x;
            }
            grad_b += err;
        }
        for (wi, g) in w.iter_mut().zip(&grad) {
            *wi -= options.learning_rate * (g + options.l2 * *wi);
        }
        b -= options.learning_rate * grad_b;
    }
    FrEnModel {
        trained_on,
        signals: SIGNALS.iter().map(|s| s.to_string()).collect(),
        // Rounded so that the committed file reads well and does not change with the
        // last bits of float summation order.
        weights: w.iter().map(|x| round4(*x)).collect(),
        bias: round4(b),
    }
}

fn round4(x: f32) -> f32 {
    (x * 1e4).round() / 1e4
}

/// Share of examples the model puts on the right side.
pub fn accuracy(model: &FrEnModel, examples: &[Example]) -> f64 {
    let right = examples
        .iter()
        .filter(|e| (model.probability(&e.signals) >= 0.5) == e.fr_or_en)
        .count();
    right as f64 / examples.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(x: f32, fr_or_en: bool) -> Example {
        let mut signals = vec![0.0; SIGNALS.len()];
        signals[4] = x;
        Example {
            signals,
            fr_or_en,
            weight: 1.0,
        }
    }

    #[test]
    fn fit_separates_a_separable_signal_and_is_deterministic() {
        let examples: Vec<Example> = (0..40).map(|i| example(i as f32 / 40.0, i >= 20)).collect();
        let options = FitOptions {
            epochs: 500,
            ..FitOptions::default()
        };
        let a = fit(&examples, options, "t".into());
        let b = fit(&examples, options, "t".into());
        assert_eq!(a.weights, b.weights);
        assert!(a.weights[4] > 0.0, "{:?}", a.weights);
        assert!(accuracy(&a, &examples) >= 0.9);
    }

    #[test]
    fn code_switched_posts_join_both_languages() {
        let fr = [
            "le patient est sorti ce matin",
            "on se voit demain au centre",
        ];
        let en = [
            "please call him back asap",
            "the doses arrived this morning",
        ];
        let posts = code_switched(&fr, &en, 6, 3);
        assert_eq!(posts, code_switched(&fr, &en, 6, 3));
        assert_eq!(posts.len(), 6);
        for post in &posts {
            let has = |texts: &[&str]| {
                post.split(' ')
                    .any(|w| texts.iter().any(|t| t.split(' ').any(|x| x == w)))
            };
            assert!(has(&fr) && has(&en), "{post}");
        }
    }

    #[test]
    fn the_split_is_half_and_stable() {
        let ids: Vec<String> = (0..2000).map(|i| format!("row-{i}")).collect();
        let measured = ids.iter().filter(|id| is_measure(id)).count();
        assert!((900..1100).contains(&measured), "{measured}");
        assert_eq!(is_measure("row-7"), is_measure("row-7"));
    }
}
