//! The trained risk head: a classifier on sentence embeddings, and the calibration that
//! turns its output into a probability.
//!
//! Two classifiers are offered, compared by `vigie train` under cross-validation:
//! logistic regression, and a one-hidden-layer MLP (ReLU) trained with candle's autograd.
//! Both take per-example weights, which `vigie train` uses to balance the classes within
//! each language and to give the few French examples their say. Class weighting shifts
//! the raw output away from the true rate, so a Platt scaling fit on held-out
//! (cross-validated) outputs maps it back to a probability.
//!
//! Small enough to commit as JSON and to read at a glance.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use crate::rng::XorShift;
use crate::{ModelError, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RiskHead {
    /// Encoder the head was trained on; a head is meaningless on another one.
    pub encoder: String,
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
    pub options: TrainOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Classifier {
    Logistic {
        weights: Vec<f32>,
        bias: f32,
    },
    /// `w1` is [hidden, dim] row-major; ReLU; then a linear output.
    Mlp {
        hidden: usize,
        w1: Vec<f32>,
        b1: Vec<f32>,
        w2: Vec<f32>,
        b2: f32,
    },
}

/// How logits become probabilities: one Platt scaling overall, and one of its own for a
/// language whose scores sit differently (fit on that language's held-out predictions).
/// Language is the one the pipeline detects.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    #[serde(rename = "calibration", default)]
    pub overall: Platt,
    #[serde(
        rename = "calibration_by_language",
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub by_language: std::collections::BTreeMap<String, Platt>,
}

impl Calibration {
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
    pub a: f32,
    pub b: f32,
}

impl Default for Platt {
    fn default() -> Self {
        Platt { a: 1.0, b: 0.0 }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    Logistic,
    Mlp,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TrainOptions {
    #[serde(default = "default_kind")]
    pub kind: HeadKind,
    /// Hidden units of the MLP.
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// Examples per step; 0 for full-batch steps.
    #[serde(default)]
    pub batch_size: usize,
    pub learning_rate: f32,
    pub l2: f32,
    /// Weight each class by the inverse of its frequency, when no weights are given to
    /// [`RiskHead::train`]. `vigie train` gives weights, always class-balanced within
    /// each language (`training::example_weights`).
    pub balance_classes: bool,
}

fn default_kind() -> HeadKind {
    HeadKind::Logistic
}

fn default_hidden() -> usize {
    64
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            kind: HeadKind::Logistic,
            hidden: 64,
            epochs: 400,
            batch_size: 0,
            learning_rate: 0.05,
            l2: 1e-4,
            balance_classes: true,
        }
    }
}

impl TrainOptions {
    /// The logistic regression `vigie train` tries.
    pub fn logistic() -> Self {
        TrainOptions::default()
    }

    /// The MLP `vigie train` tries.
    pub fn mlp() -> Self {
        TrainOptions {
            kind: HeadKind::Mlp,
            hidden: 64,
            epochs: 60,
            batch_size: 128,
            learning_rate: 0.002,
            l2: 1e-4,
            balance_classes: true,
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The head trained by `vigie train` and committed in `models/head/`, built into the binary.
pub const BUILTIN_HEAD_JSON: &str = include_str!("../head/risk_head.json");

impl RiskHead {
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN_HEAD_JSON, "built-in head")
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self> {
        let head: RiskHead =
            serde_json::from_str(text).map_err(|e| ModelError::Head(format!("{origin}: {e}")))?;
        head.classifier
            .check()
            .map_err(|e| ModelError::Head(format!("{origin}: {e}")))?;
        // The classifier reads d + k(d + 1) values for k adapted languages.
        let (input, k) = (head.classifier.dim(), head.adapted_languages.len());
        if input <= k || (input - k) % (k + 1) != 0 {
            return Err(ModelError::Head(format!(
                "{origin}: {input} inputs do not fit {k} adapted languages"
            )));
        }
        if !head.calibration.is_finite() {
            return Err(ModelError::Head(format!(
                "{origin}: non-finite calibration"
            )));
        }
        Ok(head)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        // Compact: an MLP head holds some 50,000 weights.
        let text = serde_json::to_string(self).map_err(|e| ModelError::Head(e.to_string()))?;
        std::fs::write(path, text).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })
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

    /// The classifier's logit for an embedding in `lang` (the detected language).
    pub fn logit(&self, embedding: &[f32], lang: Option<&str>) -> Result<f32> {
        if embedding.len() != self.dim() {
            return Err(ModelError::Head(format!(
                "embedding has {} dimensions, head expects {}",
                embedding.len(),
                self.dim()
            )));
        }
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

    /// Fits a head on examples `xs` with labels (true for misinformation) and weights
    /// (None: balanced classes when `options.balance_classes`, else equal). The result
    /// is uncalibrated; see [`Platt::fit`].
    pub fn train(
        encoder: &str,
        trained_on: Vec<String>,
        xs: &[Vec<f32>],
        labels: &[bool],
        weights: Option<&[f32]>,
        options: TrainOptions,
    ) -> Result<Self> {
        let n = xs.len();
        if n == 0 || n != labels.len() || weights.is_some_and(|w| w.len() != n) {
            return Err(ModelError::Head(format!(
                "{n} examples for {} labels",
                labels.len()
            )));
        }
        let dim = xs[0].len();
        if xs.iter().any(|x| x.len() != dim) {
            return Err(ModelError::Head("examples of different dimensions".into()));
        }
        let positives = labels.iter().filter(|&&y| y).count();
        if positives == 0 || positives == n {
            return Err(ModelError::Head("training data needs both classes".into()));
        }
        let weights: Vec<f32> = match weights {
            Some(w) => w.to_vec(),
            None if options.balance_classes => {
                let (w_pos, w_neg) = (
                    n as f32 / (2.0 * positives as f32),
                    n as f32 / (2.0 * (n - positives) as f32),
                );
                labels
                    .iter()
                    .map(|&y| if y { w_pos } else { w_neg })
                    .collect()
            }
            None => vec![1.0; n],
        };
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f32>() <= 0.0
        {
            return Err(ModelError::Head(
                "example weights must be finite, non-negative and not all zero".into(),
            ));
        }
        let classifier = fit(xs, labels, &weights, &options)?;
        Ok(RiskHead {
            encoder: encoder.into(),
            classifier,
            calibration: Calibration::default(),
            trained_on,
            adapted_languages: Vec::new(),
            trained_ids: Vec::new(),
            options,
        })
    }
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
    fn dim(&self) -> usize {
        match self {
            Classifier::Logistic { weights, .. } => weights.len(),
            Classifier::Mlp { hidden, w1, .. } => w1.len() / (*hidden).max(1),
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        match self {
            Classifier::Logistic { weights, bias } => {
                if weights.is_empty() || !finite(weights) || !bias.is_finite() {
                    return Err("empty or non-finite weights".into());
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
                    return Err(format!("MLP shapes do not fit {hidden} hidden units"));
                }
                if !finite(w1) || !finite(b1) || !finite(w2) || !b2.is_finite() {
                    return Err("non-finite MLP weights".into());
                }
            }
        }
        Ok(())
    }

    fn logit(&self, x: &[f32]) -> f32 {
        let dot = |w: &[f32], x: &[f32]| w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>();
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

/// Minimises the weighted log-loss (plus L2 on the weights, not the biases) by AdamW
/// with candle's autograd, on the whole set or on shuffled mini-batches.
fn fit(
    xs: &[Vec<f32>],
    labels: &[bool],
    weights: &[f32],
    options: &TrainOptions,
) -> Result<Classifier> {
    let device = Device::Cpu;
    let (n, dim) = (xs.len(), xs[0].len());
    let x = Tensor::from_vec(xs.concat(), (n, dim), &device)?;
    let y = Tensor::from_vec(
        labels.iter().map(|&l| l as u8 as f32).collect::<Vec<_>>(),
        n,
        &device,
    )?;
    let total: f32 = weights.iter().sum();
    let w = Tensor::from_vec(
        weights.iter().map(|w| w / total).collect::<Vec<_>>(),
        n,
        &device,
    )?;
    // Deterministic initialisation and shuffles, so `vigie train` reproduces its head.
    let mut init = XorShift::new(0x9e37_79b9_7f4a_7c15);
    let params = ParamsAdamW {
        lr: options.learning_rate as f64,
        weight_decay: 0.0,
        ..Default::default()
    };
    // Steps: the whole set, or shuffled mini-batches (see the scaling below, which keeps
    // the L2 term's meaning across batch sizes).
    let batch = if options.batch_size == 0 {
        n
    } else {
        options.batch_size.min(n)
    };
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut batches = |rng: &mut XorShift| -> Result<Vec<(Tensor, Tensor, Tensor)>> {
        if batch == n {
            return Ok(vec![(x.clone(), y.clone(), w.clone())]);
        }
        for i in (1..n).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        order
            .chunks(batch)
            .map(|idx| {
                let idx = Tensor::new(idx, &device)?;
                let wb = w.index_select(&idx, 0)?;
                // Weights sum to 1 over the set; a full batch's to about batch/n. Scaling
                // by n/batch gives every step the loss scale of a full-batch step, and a
                // short last batch a proportionally shorter one.
                Ok((
                    x.index_select(&idx, 0)?,
                    y.index_select(&idx, 0)?,
                    (wb * (n as f64 / batch as f64))?,
                ))
            })
            .collect()
    };
    let loss_of = |logits: &Tensor, y: &Tensor, w: &Tensor, penalty: Tensor| -> Result<Tensor> {
        // log(1 + e^z) - y z, computed stably; weighted mean.
        let softplus = (logits.relu()? + logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
        let per_example = (softplus - (y * logits)?)?;
        Ok(((per_example * w)?.sum_all()? + penalty)?)
    };
    let mut shuffle = XorShift::new(0x2545_f491_4f6c_dd1d);
    let l2 = options.l2 as f64;
    match options.kind {
        HeadKind::Logistic => {
            let wv = Var::from_tensor(&Tensor::zeros(dim, DType::F32, &device)?)?;
            let bv = Var::from_tensor(&Tensor::zeros(1, DType::F32, &device)?)?;
            let mut opt = AdamW::new(vec![wv.clone(), bv.clone()], params)?;
            for _ in 0..options.epochs {
                for (x, y, w) in batches(&mut shuffle)? {
                    let logits = x
                        .matmul(&wv.as_tensor().unsqueeze(1)?)?
                        .squeeze(1)?
                        .broadcast_add(bv.as_tensor())?;
                    let loss = loss_of(
                        &logits,
                        &y,
                        &w,
                        (wv.as_tensor().sqr()?.sum_all()? * (l2 / 2.0))?,
                    )?;
                    opt.backward_step(&loss)?;
                }
            }
            Ok(Classifier::Logistic {
                weights: wv.as_tensor().to_vec1()?,
                bias: wv_scalar(bv.as_tensor())?,
            })
        }
        HeadKind::Mlp => {
            let h = options.hidden.max(1);
            let w1 = Var::from_tensor(&Tensor::from_vec(
                init.vec(h * dim, (6.0 / (dim + h) as f32).sqrt()),
                (h, dim),
                &device,
            )?)?;
            let b1 = Var::from_tensor(&Tensor::zeros(h, DType::F32, &device)?)?;
            let w2 = Var::from_tensor(&Tensor::from_vec(
                init.vec(h, (6.0 / (h + 1) as f32).sqrt()),
                (h, 1),
                &device,
            )?)?;
            let b2 = Var::from_tensor(&Tensor::zeros(1, DType::F32, &device)?)?;
            let mut opt = AdamW::new(vec![w1.clone(), b1.clone(), w2.clone(), b2.clone()], params)?;
            for _ in 0..options.epochs {
                for (x, y, w) in batches(&mut shuffle)? {
                    let hidden = x
                        .matmul(&w1.as_tensor().t()?)?
                        .broadcast_add(b1.as_tensor())?
                        .relu()?;
                    let logits = hidden
                        .matmul(w2.as_tensor())?
                        .squeeze(1)?
                        .broadcast_add(b2.as_tensor())?;
                    let penalty = ((w1.as_tensor().sqr()?.sum_all()?
                        + w2.as_tensor().sqr()?.sum_all()?)?
                        * (l2 / 2.0))?;
                    let loss = loss_of(&logits, &y, &w, penalty)?;
                    opt.backward_step(&loss)?;
                }
            }
            Ok(Classifier::Mlp {
                hidden: h,
                w1: w1.as_tensor().flatten_all()?.to_vec1()?,
                b1: b1.as_tensor().to_vec1()?,
                w2: w2.as_tensor().flatten_all()?.to_vec1()?,
                b2: wv_scalar(b2.as_tensor())?,
            })
        }
    }
}

fn wv_scalar(t: &Tensor) -> Result<f32> {
    Ok(t.to_vec1::<f32>()?.first().copied().unwrap_or(0.0))
}

impl Platt {
    pub fn apply(&self, logit: f32) -> f32 {
        sigmoid(self.a * logit + self.b)
    }

    /// Maximum-likelihood fit on (logit, label) pairs that the classifier did not train
    /// on, by Newton's method; Platt's smoothed targets keep it finite when the pairs
    /// are separable.
    pub fn fit(logits: &[f32], labels: &[bool]) -> Result<Platt> {
        let positives = labels.iter().filter(|&&y| y).count() as f64;
        let negatives = labels.len() as f64 - positives;
        if logits.len() != labels.len() || positives == 0.0 || negatives == 0.0 {
            return Err(ModelError::Head(
                "calibration needs held-out examples of both classes".into(),
            ));
        }
        let (t_pos, t_neg) = (
            (positives + 1.0) / (positives + 2.0),
            1.0 / (negatives + 2.0),
        );
        let targets: Vec<f64> = labels
            .iter()
            .map(|&y| if y { t_pos } else { t_neg })
            .collect();
        // Cross-entropy against the smoothed targets, computed without overflow.
        let loss = |a: f64, b: f64| -> f64 {
            logits
                .iter()
                .zip(&targets)
                .map(|(&z, &t)| {
                    let u = a * z as f64 + b;
                    u.max(0.0) + (-u.abs()).exp().ln_1p() - t * u
                })
                .sum()
        };
        let (mut a, mut b) = (1.0f64, 0.0f64);
        let mut current = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
            for (&z, &t) in logits.iter().zip(&targets) {
                let z = z as f64;
                let p = 1.0 / (1.0 + (-(a * z + b)).exp());
                let d = p - t;
                let v = (p * (1.0 - p)).max(1e-12);
                ga += d * z;
                gb += d;
                haa += v * z * z;
                hab += v * z;
                hbb += v;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
            // Newton's step, halved until the loss goes down (a plain step can overshoot
            // when the logits are large).
            let mut step = 1.0;
            let mut improved = false;
            while step > 1e-6 {
                let (na, nb) = (a - step * da, b - step * db);
                let l = loss(na, nb);
                if l <= current {
                    (a, b, current, improved) = (na, nb, l, true);
                    break;
                }
                step /= 2.0;
            }
            if !improved || (step * da).abs() < 1e-9 && (step * db).abs() < 1e-9 {
                break;
            }
        }
        if !a.is_finite() || !b.is_finite() {
            return Err(ModelError::Head("calibration did not converge".into()));
        }
        Ok(Platt {
            a: a as f32,
            b: b as f32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_direction_and_round_trips() {
        // Two clusters along the first axis; the head must rank them apart.
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..60 {
            let jitter = (i as f32 * 0.37).sin() * 0.2;
            let pos = i % 3 == 0;
            xs.push(vec![
                if pos { 1.0 } else { -1.0 } + jitter,
                jitter,
                1.0 - jitter,
            ]);
            ys.push(pos);
        }
        let head = RiskHead::train(
            "test",
            vec!["synthetic".into()],
            &xs,
            &ys,
            None,
            TrainOptions::default(),
        )
        .unwrap();
        for (x, &y) in xs.iter().zip(&ys) {
            let p = head.score(x, None).unwrap();
            assert_eq!(p > 0.5, y, "p={p} for {x:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("head.json");
        head.save(&path).unwrap();
        assert_eq!(RiskHead::load(&path).unwrap(), head);
    }

    #[test]
    fn the_mlp_learns_what_a_linear_head_cannot() {
        // XOR of the signs of two coordinates: no linear separation exists.
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..200 {
            let (a, b) = (
                ((i * 37) % 19) as f32 / 9.0 - 1.0,
                ((i * 53) % 23) as f32 / 11.0 - 1.0,
            );
            if a.abs() < 0.1 || b.abs() < 0.1 {
                continue;
            }
            xs.push(vec![a, b, 1.0]);
            ys.push((a > 0.0) != (b > 0.0));
        }
        let accuracy = |head: &RiskHead| {
            xs.iter()
                .zip(&ys)
                .filter(|(x, &y)| (head.score(x, None).unwrap() > 0.5) == y)
                .count() as f32
                / xs.len() as f32
        };
        let mlp = TrainOptions {
            kind: HeadKind::Mlp,
            hidden: 16,
            epochs: 600,
            batch_size: 0,
            learning_rate: 0.05,
            l2: 0.0,
            balance_classes: true,
        };
        let mlp = RiskHead::train("t", vec![], &xs, &ys, None, mlp).unwrap();
        let linear = RiskHead::train("t", vec![], &xs, &ys, None, TrainOptions::default()).unwrap();
        assert!(accuracy(&mlp) > 0.95, "mlp {}", accuracy(&mlp));
        assert!(accuracy(&linear) < 0.75, "linear {}", accuracy(&linear));
        assert_eq!(mlp.kind_name(), "mlp16");
        let dir = tempfile::tempdir().unwrap();
        mlp.save(&dir.path().join("m.json")).unwrap();
        assert_eq!(RiskHead::load(&dir.path().join("m.json")).unwrap(), mlp);
    }

    #[test]
    fn platt_scaling_recovers_the_true_probabilities() {
        // Labels drawn with probability sigmoid(0.5 z - 1): the fit must find a≈0.5, b≈-1.
        let mut state = 12345u64;
        let mut uniform = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let logits: Vec<f32> = (0..20_000)
            .map(|i| (i % 200) as f32 / 10.0 - 10.0)
            .collect();
        let labels: Vec<bool> = logits
            .iter()
            .map(|&z| uniform() < sigmoid(0.5 * z - 1.0))
            .collect();
        let p = Platt::fit(&logits, &labels).unwrap();
        assert!((p.a - 0.5).abs() < 0.05 && (p.b + 1.0).abs() < 0.1, "{p:?}");
        assert!(Platt::fit(&[1.0, 2.0], &[true, true]).is_err());
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
        assert!(head.logit(&[0.5, 0.0, 1.0], Some("en")).is_err());
    }

    #[test]
    fn example_weights_shift_the_decision() {
        // The same point labelled both ways: the heavier label wins.
        let xs = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        let ys = [true, false, false];
        let lean_true = RiskHead::train(
            "t",
            vec![],
            &xs,
            &ys,
            Some(&[5.0, 1.0, 1.0]),
            TrainOptions::default(),
        )
        .unwrap();
        let lean_false = RiskHead::train(
            "t",
            vec![],
            &xs,
            &ys,
            Some(&[1.0, 5.0, 1.0]),
            TrainOptions::default(),
        )
        .unwrap();
        assert!(lean_true.score(&xs[0], None).unwrap() > 0.6);
        assert!(lean_false.score(&xs[0], None).unwrap() < 0.4);
        assert!(RiskHead::train(
            "t",
            vec![],
            &xs,
            &ys,
            Some(&[1.0, f32::NAN, 1.0]),
            TrainOptions::default()
        )
        .is_err());
    }

    #[test]
    fn builtin_head_matches_the_encoder() {
        let head = RiskHead::builtin().unwrap();
        assert_eq!(head.dim(), 384);
        assert_eq!(head.encoder, crate::encoder::MODEL_NAME);
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(RiskHead::train(
            "t",
            vec![],
            &[vec![1.0]],
            &[true],
            None,
            TrainOptions::default()
        )
        .is_err());
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
        assert!(head.score(&[1.0], None).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{\"encoder\":\"t\",\"classifier\":{\"kind\":\"logistic\",\"weights\":[],\"bias\":0},\"trained_on\":[],\"options\":{\"epochs\":1,\"learning_rate\":0.1,\"l2\":0,\"balance_classes\":true}}").unwrap();
        assert!(RiskHead::load(&path).is_err());
    }
}
