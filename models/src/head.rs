//! The trained risk head: a classifier on sentence embeddings, and the calibration that
//! turns its output into a probability. This module reads, writes and applies it; how it
//! is fitted is in [`crate::training`].
//!
//! Two classifiers are offered, compared by `vigie train` under cross-validation:
//! logistic regression, and a one-hidden-layer MLP (ReLU). Class weighting in training
//! shifts the raw output away from the true rate, so a Platt scaling fit on held-out
//! (cross-validated) outputs maps it back to a probability.
//!
//! Small enough to commit as JSON and to read at a glance.

use std::path::Path;

use serde::{Deserialize, Serialize};

// A head records the options it was trained with; they stay reachable from here.
pub use crate::training::{HeadKind, TrainOptions};
use crate::{ClassifierFault, HeadError, ModelError, Result};

/// A trained head: the classifier, its calibration, and what it was trained on and with.
/// Serialised as the JSON committed in `models/head/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RiskHead {
    /// Encoder the head was trained on; a head is meaningless on another one.
    pub encoder: String,
    /// The classifier on the (augmented) embedding.
    pub classifier: Classifier,
    /// Maps the classifier's logit to a calibrated probability.
    #[serde(flatten)]
    pub calibration: Calibration,
    /// Files the head was trained on, and settings, for the model card.
    pub trained_on: Vec<String>,
    /// Languages that have weights of their own on top of the shared ones (feature
    /// augmentation: the classifier reads [embedding, then for each of these languages
    /// the embedding and a 1 when the post is in it, zeros otherwise]). A post in any
    /// other language, or of unknown language, is scored by the shared weights alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adapted_languages: Vec<String>,
    /// Ids of the rows trained on: evaluation leaves them out of its figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trained_ids: Vec<String>,
    /// The settings the classifier was trained with, for the model card.
    pub options: TrainOptions,
}

/// The classifier's weights; its output is a logit (misinformation positive).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Classifier {
    /// Logistic regression: `weights · x + bias`.
    Logistic {
        /// One weight per input.
        weights: Vec<f32>,
        /// The intercept.
        bias: f32,
    },
    /// `w1` is [hidden, dim] row-major; ReLU; then a linear output.
    Mlp {
        /// Hidden units.
        hidden: usize,
        /// Input-to-hidden weights, [hidden, dim] row-major.
        w1: Vec<f32>,
        /// Hidden biases.
        b1: Vec<f32>,
        /// Hidden-to-output weights.
        w2: Vec<f32>,
        /// Output bias.
        b2: f32,
    },
}

/// How logits become probabilities: one Platt scaling overall, and one of its own for a
/// language whose scores sit differently (fit on that language's held-out predictions).
/// Language is the one the pipeline detects.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// The scaling for every language without one of its own.
    #[serde(rename = "calibration", default)]
    pub overall: Platt,
    /// Scalings of their own, by detected language.
    #[serde(
        rename = "calibration_by_language",
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub by_language: std::collections::BTreeMap<String, Platt>,
}

impl Calibration {
    /// The scaling for a post in `lang` (the detected language; None when unknown).
    pub fn for_lang(&self, lang: Option<&str>) -> Platt {
        lang.and_then(|l| self.by_language.get(l))
            .copied()
            .unwrap_or(self.overall)
    }

    fn is_finite(&self) -> bool {
        std::iter::once(&self.overall)
            .chain(self.by_language.values())
            .all(|p| p.a.is_finite() && p.b.is_finite())
    }
}

/// p = sigmoid(a · logit + b), fit by maximum likelihood on held-out predictions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Platt {
    /// Slope on the logit.
    pub a: f32,
    /// Offset.
    pub b: f32,
}

impl Default for Platt {
    fn default() -> Self {
        Platt { a: 1.0, b: 0.0 }
    }
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The head trained by `vigie train` and committed in `models/head/`, built into the binary.
pub const BUILTIN_HEAD_JSON: &str = include_str!("../head/risk_head.json");

impl RiskHead {
    /// The head built into the binary ([`BUILTIN_HEAD_JSON`]).
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN_HEAD_JSON, "built-in head")
    }

    /// The claim gate committed in `models/head/claim_gate.json` (`vigie train --head
    /// gate`): a head whose positive class is "makes or discusses a checkable health
    /// claim", on multilingual-e5-small embeddings.
    pub fn builtin_gate() -> Result<Self> {
        Self::parse(
            include_str!("../head/claim_gate.json"),
            "built-in claim gate",
        )
    }

    /// The stance head committed in `models/head/stance_head.json` (`vigie train --head
    /// stance`): positive class "asks about, refutes or reports the rumour it discusses".
    pub fn builtin_stance() -> Result<Self> {
        Self::parse(
            include_str!("../head/stance_head.json"),
            "built-in stance head",
        )
    }

    /// Reads a head saved by [`RiskHead::save`], checking that its weights are usable.
    pub fn load(path: &Path) -> Result<Self> {
        Self::parse(&read_file(path)?, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut head: RiskHead = serde_json::from_str(text).map_err(|source| HeadError::Parse {
            origin: origin.into(),
            source,
        })?;
        head.classifier
            .check()
            .map_err(|fault| HeadError::Invalid {
                origin: origin.into(),
                fault,
            })?;
        head.classifier.flush_subnormals();
        // The classifier reads d + k(d + 1) values for k adapted languages.
        let (input, k) = (head.classifier.dim(), head.adapted_languages.len());
        if input <= k || (input - k) % (k + 1) != 0 {
            return Err(HeadError::Inputs {
                origin: origin.into(),
                inputs: input,
                adapted: k,
            }
            .into());
        }
        if !head.calibration.is_finite() {
            return Err(HeadError::NonFiniteCalibration {
                origin: origin.into(),
            }
            .into());
        }
        Ok(head)
    }

    /// Writes the head as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_json(self, path)
    }

    /// Dimension of the embeddings the head reads.
    pub fn dim(&self) -> usize {
        let k = self.adapted_languages.len();
        self.classifier.dim().saturating_sub(k) / (1 + k)
    }

    /// Short name for screened records: "logreg" or "mlp64".
    pub fn kind_name(&self) -> String {
        match &self.classifier {
            Classifier::Logistic { .. } => "logreg".into(),
            Classifier::Mlp { hidden, .. } => format!("mlp{hidden}"),
        }
    }

    /// The classifier's logit for a text in `lang` (the detected language), from its
    /// features ([`crate::Encoder::features`]) or its embedding: the head reads the first
    /// [`dim`](Self::dim) values, the embedding alone for a head that was trained on it
    /// and the tapped layers too for one trained on them (the layout keeps each narrower
    /// input a prefix of the wider).
    pub fn logit(&self, features: &[f32], lang: Option<&str>) -> Result<f32> {
        let Some(embedding) = features.get(..self.dim()) else {
            return Err(HeadError::Dimension {
                got: features.len(),
                expected: self.dim(),
            }
            .into());
        };
        if self.adapted_languages.is_empty() {
            return Ok(self.classifier.logit(embedding));
        }
        Ok(self
            .classifier
            .logit(&augment(embedding, lang, &self.adapted_languages)))
    }

    /// Calibrated probability that the embedded text (in language `lang`, when known)
    /// is misinformation.
    pub fn score(&self, embedding: &[f32], lang: Option<&str>) -> Result<f32> {
        Ok(self
            .calibration
            .for_lang(lang)
            .apply(self.logit(embedding, lang)?))
    }

    /// Both, in one pass: the classifier's own output, sigmoid(logit), which with class
    /// weighting ranks well but overstates the rarer class; and the calibrated probability.
    pub fn scores(&self, embedding: &[f32], lang: Option<&str>) -> Result<(f32, f32)> {
        let z = self.logit(embedding, lang)?;
        Ok((sigmoid(z), self.calibration.for_lang(lang).apply(z)))
    }
}

/// The text of a saved head, tagger or classifier file.
pub(crate) fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a head, tagger or classifier as compact JSON (an MLP holds some 50,000 weights).
pub(crate) fn write_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<()> {
    let text = serde_json::to_string(value).map_err(HeadError::Serialize)?;
    std::fs::write(path, text).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The classifier's input for an embedding in `lang`: the embedding, then one block per
/// adapted language holding the embedding and a 1 for the post's own language, zeros
/// for the others (Daumé's feature augmentation: shared weights learn what holds across
/// languages, each block what is particular to its language).
pub fn augment(embedding: &[f32], lang: Option<&str>, adapted: &[String]) -> Vec<f32> {
    let d = embedding.len();
    let mut out = Vec::with_capacity(d + adapted.len() * (d + 1));
    out.extend_from_slice(embedding);
    for l in adapted {
        if lang == Some(l.as_str()) {
            out.extend_from_slice(embedding);
            out.push(1.0);
        } else {
            out.extend(std::iter::repeat_n(0.0, d + 1));
        }
    }
    out
}

impl Classifier {
    /// The element-wise mean of classifiers of one kind and shape (None otherwise, or
    /// when there are none). For logistic regressions it is exactly the mean of their
    /// logits; for MLPs trained from the same initial weights on overlapping data it is
    /// close to it (see `training::average_of_folds`).
    pub fn average(members: &[&Classifier]) -> Option<Classifier> {
        let n = members.len() as f32;
        let mean = |parts: Vec<&Vec<f32>>| -> Option<Vec<f32>> {
            let len = parts.first()?.len();
            if parts.iter().any(|p| p.len() != len) {
                return None;
            }
            Some(
                (0..len)
                    .map(|i| parts.iter().map(|p| p[i]).sum::<f32>() / n)
                    .collect(),
            )
        };
        match members.first()? {
            Classifier::Logistic { .. } => {
                let mut weights = Vec::new();
                let mut bias = 0.0;
                for m in members {
                    let Classifier::Logistic {
                        weights: w,
                        bias: b,
                    } = m
                    else {
                        return None;
                    };
                    weights.push(w);
                    bias += b / n;
                }
                Some(Classifier::Logistic {
                    weights: mean(weights)?,
                    bias,
                })
            }
            Classifier::Mlp { hidden, .. } => {
                let (mut w1, mut b1, mut w2, mut b2) = (Vec::new(), Vec::new(), Vec::new(), 0.0);
                for m in members {
                    let Classifier::Mlp {
                        hidden: h,
                        w1: a,
                        b1: b,
                        w2: c,
                        b2: d,
                    } = m
                    else {
                        return None;
                    };
                    if h != hidden {
                        return None;
                    }
                    w1.push(a);
                    b1.push(b);
                    w2.push(c);
                    b2 += d / n;
                }
                Some(Classifier::Mlp {
                    hidden: *hidden,
                    w1: mean(w1)?,
                    b1: mean(b1)?,
                    w2: mean(w2)?,
                    b2,
                })
            }
        }
    }

    fn dim(&self) -> usize {
        match self {
            Classifier::Logistic { weights, .. } => weights.len(),
            Classifier::Mlp { hidden, w1, .. } => w1.len() / (*hidden).max(1),
        }
    }

    /// Sets weights too small for a normal f32 to zero. Training leaves many such
    /// weights (units that stopped learning decay towards zero), and on Intel processors
    /// every multiply with a subnormal operand takes a microcode assist: measured on a
    /// Xeon, the heads and the token tagger then took a third of a screening pass. What
    /// they add to a sum is below 1e-38, so no output changes.
    pub(crate) fn flush_subnormals(&mut self) {
        match self {
            Classifier::Logistic { weights, bias } => {
                flush_subnormals(weights);
                flush_subnormals(std::slice::from_mut(bias));
            }
            Classifier::Mlp { w1, b1, w2, b2, .. } => {
                for v in [w1, b1, w2] {
                    flush_subnormals(v);
                }
                flush_subnormals(std::slice::from_mut(b2));
            }
        }
    }

    fn check(&self) -> std::result::Result<(), ClassifierFault> {
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        match self {
            Classifier::Logistic { weights, bias } => {
                if weights.is_empty() || !finite(weights) || !bias.is_finite() {
                    return Err(ClassifierFault::LogisticWeights);
                }
            }
            Classifier::Mlp {
                hidden,
                w1,
                b1,
                w2,
                b2,
            } => {
                if *hidden == 0
                    || w1.is_empty()
                    || w1.len() % hidden != 0
                    || b1.len() != *hidden
                    || w2.len() != *hidden
                {
                    return Err(ClassifierFault::MlpShapes { hidden: *hidden });
                }
                if !finite(w1) || !finite(b1) || !finite(w2) || !b2.is_finite() {
                    return Err(ClassifierFault::MlpNonFinite);
                }
            }
        }
        Ok(())
    }

    fn logit(&self, x: &[f32]) -> f32 {
        let dot = crate::kernels::elementwise::dot_f32;
        match self {
            Classifier::Logistic { weights, bias } => dot(weights, x) + bias,
            Classifier::Mlp { w1, b1, w2, b2, .. } => {
                let hidden = w1
                    .chunks_exact(self.dim())
                    .zip(b1)
                    .map(|(row, b)| (dot(row, x) + b).max(0.0));
                hidden.zip(w2).map(|(h, w)| h * w).sum::<f32>() + b2
            }
        }
    }
}

impl Platt {
    /// The calibrated probability for a logit.
    pub fn apply(&self, logit: f32) -> f32 {
        sigmoid(self.a * logit + self.b)
    }
}

/// Sets the subnormal values of `values` to zero (see [`Classifier::flush_subnormals`]).
pub(crate) fn flush_subnormals(values: &mut [f32]) {
    for v in values {
        if v.is_subnormal() {
            *v = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(c: &Classifier) -> Vec<f32> {
        match c {
            Classifier::Logistic { weights, bias } => [weights.as_slice(), &[*bias]].concat(),
            Classifier::Mlp { w1, b1, w2, b2, .. } => [w1.as_slice(), b1, w2, &[*b2]].concat(),
        }
    }

    #[test]
    fn classifiers_average_only_with_their_own_kind_and_shape() {
        let lr = |w: [f32; 2], b: f32| Classifier::Logistic {
            weights: w.to_vec(),
            bias: b,
        };
        let mlp = |hidden: usize, v: f32| Classifier::Mlp {
            hidden,
            w1: vec![v; 2 * hidden],
            b1: vec![v; hidden],
            w2: vec![v; hidden],
            b2: v,
        };
        let (a, b) = (lr([1.0, 3.0], 1.0), lr([3.0, -1.0], 0.0));
        assert_eq!(
            Classifier::average(&[&a, &b]),
            Some(lr([2.0, 1.0], 0.5)),
            "element-wise mean"
        );
        assert_eq!(
            Classifier::average(&[&mlp(2, 1.0), &mlp(2, 3.0)]),
            Some(mlp(2, 2.0))
        );
        assert_eq!(Classifier::average(&[&mlp(2, 1.0), &mlp(3, 1.0)]), None);
        assert_eq!(Classifier::average(&[&a, &mlp(1, 1.0)]), None);
        let longer = Classifier::Logistic {
            weights: vec![1.0; 3],
            bias: 0.0,
        };
        assert_eq!(Classifier::average(&[&a, &longer]), None, "widths differ");
        assert_eq!(Classifier::average(&[]), None);
    }

    /// The committed gate and risk head hold thousands of subnormal weights in their
    /// files; loaded, they hold none, and their outputs are those of the raw weights.
    #[test]
    fn loaded_heads_hold_no_subnormal_weights() {
        for (json, head) in [
            (BUILTIN_HEAD_JSON, RiskHead::builtin().unwrap()),
            (
                include_str!("../head/claim_gate.json"),
                RiskHead::builtin_gate().unwrap(),
            ),
        ] {
            let raw: RiskHead = serde_json::from_str(json).unwrap();
            assert!(weights(&raw.classifier).iter().any(|v| v.is_subnormal()));
            assert!(!weights(&head.classifier).iter().any(|v| v.is_subnormal()));
            let mut rng = crate::rng::XorShift::new(5);
            let d = head.classifier.dim();
            for _ in 0..20 {
                let x = rng.vec(d, 1.0);
                let (a, b) = (raw.classifier.logit(&x), head.classifier.logit(&x));
                assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn adapted_languages_get_their_own_block() {
        let adapted = vec!["fr".to_string()];
        assert_eq!(
            augment(&[0.5, -1.0], Some("fr"), &adapted),
            vec![0.5, -1.0, 0.5, -1.0, 1.0]
        );
        assert_eq!(
            augment(&[0.5, -1.0], Some("en"), &adapted),
            vec![0.5, -1.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            augment(&[0.5, -1.0], None, &adapted),
            vec![0.5, -1.0, 0.0, 0.0, 0.0]
        );
        // A head over the augmented input: French posts get the French bias.
        let head = RiskHead {
            encoder: "t".into(),
            classifier: Classifier::Logistic {
                weights: vec![1.0, 0.0, 0.0, 0.0, 3.0],
                bias: 0.0,
            },
            calibration: Calibration::default(),
            trained_on: vec![],
            adapted_languages: adapted,
            trained_ids: vec![],
            options: TrainOptions::default(),
        };
        assert_eq!(head.dim(), 2);
        assert!((head.logit(&[0.5, 0.0], Some("fr")).unwrap() - 3.5).abs() < 1e-6);
        assert!((head.logit(&[0.5, 0.0], Some("en")).unwrap() - 0.5).abs() < 1e-6);
        assert!(matches!(
            head.logit(&[0.5], Some("en")),
            Err(ModelError::Head(HeadError::Dimension {
                got: 1,
                expected: 2
            }))
        ));
        // Wider features: the head reads the part it was trained on.
        assert_eq!(
            head.logit(&[0.5, 0.0, 1.0, -3.0], Some("fr")).unwrap(),
            head.logit(&[0.5, 0.0], Some("fr")).unwrap()
        );
    }

    #[test]
    fn builtin_heads_match_the_encoder() {
        let head = RiskHead::builtin().unwrap();
        // e5-small's features: the 384-wide embedding and three tapped layers.
        assert_eq!(head.dim(), 4 * 384);
        for head in [
            RiskHead::builtin_gate().unwrap(),
            RiskHead::builtin_stance().unwrap(),
        ] {
            assert_eq!(head.dim(), 4 * 384);
            assert_eq!(head.encoder, crate::encoder::MODEL_NAME);
        }
        assert_eq!(head.encoder, crate::encoder::MODEL_NAME);
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(matches!(
            RiskHead::train(
                "t",
                vec![],
                &[vec![1.0]],
                &[true],
                None,
                TrainOptions::default()
            ),
            Err(ModelError::Head(HeadError::OneClass))
        ));
        let head = RiskHead {
            encoder: "t".into(),
            classifier: Classifier::Logistic {
                weights: vec![1.0, 2.0],
                bias: 0.0,
            },
            calibration: Calibration::default(),
            trained_on: vec![],
            adapted_languages: vec![],
            trained_ids: vec![],
            options: TrainOptions::default(),
        };
        assert!(matches!(
            head.score(&[1.0], None),
            Err(ModelError::Head(HeadError::Dimension {
                got: 1,
                expected: 2
            }))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{\"encoder\":\"t\",\"classifier\":{\"kind\":\"logistic\",\"weights\":[],\"bias\":0},\"trained_on\":[],\"options\":{\"epochs\":1,\"learning_rate\":0.1,\"l2\":0,\"balance_classes\":true}}").unwrap();
        assert!(matches!(
            RiskHead::load(&path),
            Err(ModelError::Head(HeadError::Invalid {
                fault: ClassifierFault::LogisticWeights,
                ..
            }))
        ));
    }
}
