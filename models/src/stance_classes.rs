//! Four-way stance of a post toward the rumour it answers or discusses: `supports`,
//! `denies`, `queries` or `comments` (RumourEval's classes).
//!
//! A small softmax network reads the post's pooled embedding (the pipeline's one encoder
//! pass) and the stance cue words it holds ([`StanceSigns`]): the embedding barely sees
//! negation or the shape of a question, the cue words see nothing else.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::softmax::{SoftmaxTraining, Weights};
use crate::stance_cues::StanceSigns;
use crate::{HeadError, Result};

/// The classes, in the order of the classifier's outputs.
pub const STANCES: [&str; 4] = ["supports", "denies", "queries", "comments"];

/// What the classifier reads beyond the embedding, in order.
pub const CUE_FEATURES: [&str; 4] = ["queries", "denies", "reports", "amplifies"];

/// The built-in classifier (see `models/README.md` for how it was trained).
const BUILTIN: &str = include_str!("../head/stance_classes.json");

/// The classifier's weights and what they were trained on, as saved in
/// `models/head/stance_classes.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StanceClassifier {
    /// What the file is (for people opening it).
    pub about: String,
    /// The classes, in the order of the outputs ([`STANCES`]).
    pub classes: Vec<String>,
    /// The cue features that follow the embedding ([`CUE_FEATURES`]).
    pub features: Vec<String>,
    /// Width of the embeddings it reads (the inputs are this plus the cue features).
    pub embedding_dim: usize,
    /// Width of its hidden layer.
    pub hidden: usize,
    /// Hidden layer weights, `hidden × (embedding_dim + cues)`, row after row.
    pub w1: Vec<f32>,
    /// Hidden layer biases.
    pub b1: Vec<f32>,
    /// Output weights, `classes × hidden`.
    pub w2: Vec<f32>,
    /// Output biases.
    pub b2: Vec<f32>,
    /// How it was trained (data, split, settings).
    pub trained_on: Vec<String>,
}

/// One input of the classifier: the embedding, then the cue features as 0 or 1.
pub fn input(embedding: &[f32], signs: &StanceSigns) -> Vec<f32> {
    let mut x = Vec::with_capacity(embedding.len() + CUE_FEATURES.len());
    x.extend_from_slice(embedding);
    x.extend(
        [signs.queries, signs.denies, signs.reports, signs.amplifies]
            .into_iter()
            .map(f32::from),
    );
    x
}

impl StanceClassifier {
    /// The classifier shipped with Vigie.
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN, Path::new("models/head/stance_classes.json"))
    }

    /// Loads a classifier saved by [`StanceClassifier::save`].
    pub fn load(path: &Path) -> Result<Self> {
        Self::parse(&crate::head::read_file(path)?, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        let mut c: StanceClassifier =
            serde_json::from_str(text).map_err(|source| HeadError::Parse {
                origin: origin.clone(),
                source,
            })?;
        let fault = if c.classes != STANCES || c.features != CUE_FEATURES {
            Some(crate::error::ClassifierFault::StanceLayout)
        } else if !c.weights().consistent() {
            Some(crate::error::ClassifierFault::MlpShapes { hidden: c.hidden })
        } else if !c.weights().finite() {
            Some(crate::error::ClassifierFault::MlpNonFinite)
        } else {
            None
        };
        if let Some(fault) = fault {
            return Err(HeadError::Invalid { origin, fault }.into());
        }
        for v in [&mut c.w1, &mut c.b1, &mut c.w2, &mut c.b2] {
            crate::head::flush_subnormals(v);
        }
        Ok(c)
    }

    /// Fits a classifier on embeddings (`n × embedding_dim`, row after row), the cue
    /// signs of each text and their classes (indices into [`STANCES`]), each example
    /// weighted. Deterministic for a seed.
    pub fn train(
        embeddings: &[f32],
        signs: &[StanceSigns],
        classes: &[u8],
        weights: &[f32],
        embedding_dim: usize,
        options: &SoftmaxTraining,
        trained_on: Vec<String>,
    ) -> Result<Self> {
        let x: Vec<f32> = embeddings
            .chunks_exact(embedding_dim.max(1))
            .zip(signs)
            .flat_map(|(e, s)| input(e, s))
            .collect();
        let dim = embedding_dim + CUE_FEATURES.len();
        let fitted = crate::softmax::train(&x, classes, STANCES.len(), weights, dim, options)?;
        Ok(StanceClassifier {
            about: "Vigie stance classifier: supports / denies / queries / comments from the \
                    pooled multilingual-e5-small embedding and the stance cue words; see \
                    models/README.md"
                .to_string(),
            classes: STANCES.iter().map(|s| s.to_string()).collect(),
            features: CUE_FEATURES.iter().map(|s| s.to_string()).collect(),
            embedding_dim,
            hidden: fitted.hidden,
            w1: fitted.w1,
            b1: fitted.b1,
            w2: fitted.w2,
            b2: fitted.b2,
            trained_on,
        })
    }

    /// Writes the classifier as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::head::write_json(self, path)
    }

    fn weights(&self) -> Weights<'_> {
        Weights {
            dim: self.embedding_dim + CUE_FEATURES.len(),
            hidden: self.hidden,
            w1: &self.w1,
            b1: &self.b1,
            w2: &self.w2,
            b2: &self.b2,
        }
    }

    /// The output logits, one per class of [`STANCES`].
    pub fn logits(&self, features: &[f32], signs: &StanceSigns) -> Result<[f32; 4]> {
        // The first `embedding_dim` values: the embedding, or it and the tapped layers
        // for a classifier trained on a post's whole features (see `RiskHead::logit`).
        let Some(embedding) = features.get(..self.embedding_dim) else {
            return Err(HeadError::Dimension {
                expected: self.embedding_dim,
                got: features.len(),
            }
            .into());
        };
        let l = self.weights().logits(&input(embedding, signs));
        Ok([l[0], l[1], l[2], l[3]])
    }

    /// Adds `offsets` to the output biases: shifts the classes' priors, as
    /// [`macro_f1_offsets`] chooses them.
    pub fn shift_priors(&mut self, offsets: [f32; 4]) {
        for (b, o) in self.b2.iter_mut().zip(offsets) {
            *b += o;
        }
    }

    /// The probability of each of [`STANCES`] for a post of this embedding and cues.
    pub fn probabilities(&self, embedding: &[f32], signs: &StanceSigns) -> Result<[f32; 4]> {
        let p = crate::softmax::softmax(&self.logits(embedding, signs)?);
        Ok([p[0], p[1], p[2], p[3]])
    }

    /// The most probable stance's index into [`STANCES`], and the probabilities.
    pub fn classify(&self, embedding: &[f32], signs: &StanceSigns) -> Result<(usize, [f32; 4])> {
        let p = self.probabilities(embedding, signs)?;
        let best = (0..4).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(3);
        Ok((best, p))
    }
}

/// Macro-F1 of the classes picked from `logits` shifted by `offsets`, against `gold`
/// (over the classes present in `gold` or predicted).
pub fn macro_f1(logits: &[[f32; 4]], gold: &[u8], offsets: [f32; 4]) -> f64 {
    let mut tp = [0usize; 4];
    let mut predicted = [0usize; 4];
    let mut actual = [0usize; 4];
    for (l, &g) in logits.iter().zip(gold) {
        let best = (0..4)
            .max_by(|&a, &b| (l[a] + offsets[a]).total_cmp(&(l[b] + offsets[b])))
            .unwrap_or(3);
        predicted[best] += 1;
        actual[g as usize] += 1;
        if best == g as usize {
            tp[best] += 1;
        }
    }
    let mut sum = 0.0;
    let mut classes = 0;
    for k in 0..4 {
        if actual[k] + predicted[k] == 0 {
            continue;
        }
        classes += 1;
        sum += 2.0 * tp[k] as f64 / (actual[k] + predicted[k]) as f64;
    }
    sum / classes.max(1) as f64
}

/// Offsets to the output logits that maximise macro-F1 on rows held out of training
/// (`logits` of a classifier that never saw them, and their classes): training weighs the
/// classes alike, which buys the rare classes' recall at their precision's expense, and
/// macro-F1 wants the balance in between. Coordinate ascent over a grid of 0.1 in
/// [-3, 3], class after class, three rounds; on ties the smaller shift wins, so the
/// result is deterministic.
pub fn macro_f1_offsets(logits: &[[f32; 4]], gold: &[u8]) -> [f32; 4] {
    let mut offsets = [0f32; 4];
    let mut best = macro_f1(logits, gold, offsets);
    for _ in 0..3 {
        for k in 0..4 {
            for step in -30..=30 {
                let mut trial = offsets;
                trial[k] = step as f32 / 10.0;
                let f = macro_f1(logits, gold, trial);
                if f > best + 1e-12 || (f >= best - 1e-12 && trial[k].abs() < offsets[k].abs()) {
                    best = f;
                    offsets = trial;
                }
            }
        }
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_classifier_loads_and_reads_cues() {
        let c = StanceClassifier::builtin().unwrap();
        assert_eq!(c.embedding_dim, 4 * 384, "e5-small's features");
        let e = vec![0.0; c.embedding_dim];
        let question = StanceSigns {
            queries: true,
            ..Default::default()
        };
        let denial = StanceSigns {
            denies: true,
            ..Default::default()
        };
        // Each cue word moves its own stance's logit up against support. (Logits, not
        // probabilities: the class priors set for macro-F1 shift every logit alike, and
        // can leave a rare class improbable on the zero embedding, which no post has;
        // there the denial cue raises `queries` more than `denies`, both against support.)
        let plain_logits = c.logits(&e, &StanceSigns::default()).unwrap();
        for (signs, own) in [(question, 2), (denial, 1)] {
            let cued = c.logits(&e, &signs).unwrap();
            let rise: Vec<f32> = (0..4).map(|k| cued[k] - plain_logits[k]).collect();
            assert!(rise[own] > rise[0] + 0.1, "{signs:?}: {rise:?}");
        }
        let question_rise: Vec<f32> = {
            let cued = c.logits(&e, &question).unwrap();
            (0..4).map(|k| cued[k] - plain_logits[k]).collect()
        };
        assert!(
            [0, 1]
                .iter()
                .all(|&k| question_rise[2] > question_rise[k] + 0.1),
            "a question raises `queries` against support and denial: {question_rise:?}"
        );
        let plain = c.probabilities(&e, &StanceSigns::default()).unwrap();
        let sum: f32 = plain.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
        assert!(c.probabilities(&[0.0; 3], &question).is_err());
    }

    #[test]
    fn prior_offsets_trade_a_rare_class_recall_for_macro_f1() {
        // Class 1 is over-predicted: every row whose logit for it is within 1 of the
        // top wins it; a shift of about -1 gives the truth back.
        let mut logits = Vec::new();
        let mut gold = Vec::new();
        for i in 0..200 {
            let truth = if i % 10 == 0 { 1u8 } else { 3u8 };
            let mut l = [0.0f32; 4];
            l[3] = 2.0;
            l[1] = if truth == 1 {
                3.0
            } else {
                2.0 + (i % 7) as f32 * 0.1
            };
            logits.push(l);
            gold.push(truth);
        }
        let before = macro_f1(&logits, &gold, [0.0; 4]);
        let offsets = macro_f1_offsets(&logits, &gold);
        let after = macro_f1(&logits, &gold, offsets);
        assert!(before < 0.8, "{before}");
        assert!((after - 1.0).abs() < 1e-9, "{after} with {offsets:?}");
        assert!(offsets[1] - offsets[3] < 0.0, "{offsets:?}");
        // Shifting the biases is shifting the logits.
        let mut c = StanceClassifier::builtin().unwrap();
        let e = vec![0.01; c.embedding_dim];
        let plain = c.logits(&e, &StanceSigns::default()).unwrap();
        c.shift_priors([0.5, -1.0, 0.0, 0.25]);
        let shifted = c.logits(&e, &StanceSigns::default()).unwrap();
        for (k, o) in [0.5, -1.0, 0.0, 0.25].iter().enumerate() {
            assert!((shifted[k] - plain[k] - o).abs() < 1e-5);
        }
    }

    #[test]
    fn a_file_with_other_classes_is_refused() {
        let mut c = StanceClassifier::builtin().unwrap();
        c.classes.swap(0, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        c.save(&path).unwrap();
        let err = StanceClassifier::load(&path).unwrap_err().to_string();
        assert!(err.contains("s.json"), "{err}");
    }
}
