//! The trained risk head: logistic regression on sentence embeddings.
//!
//! Small enough to commit as JSON (a few kilobytes) and to read at a glance; trained by
//! `vigie train` with class weighting so that the unequal class sizes do not shift it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{ModelError, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RiskHead {
    /// Encoder the head was trained on; a head is meaningless on another one.
    pub encoder: String,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Files the head was trained on, and settings, for the model card.
    pub trained_on: Vec<String>,
    pub options: TrainOptions,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    /// Weight each class by the inverse of its frequency.
    pub balance_classes: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { epochs: 400, learning_rate: 0.05, l2: 1e-4, balance_classes: true }
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
        let text = std::fs::read_to_string(path)
            .map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self> {
        let head: RiskHead = serde_json::from_str(text).map_err(|e| ModelError::Head(format!("{origin}: {e}")))?;
        if head.weights.is_empty() || head.weights.iter().any(|w| !w.is_finite()) || !head.bias.is_finite() {
            return Err(ModelError::Head(format!("{origin}: empty or non-finite weights")));
        }
        Ok(head)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| ModelError::Head(e.to_string()))?;
        std::fs::write(path, text).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })
    }

    pub fn dim(&self) -> usize {
        self.weights.len()
    }

    /// Probability that the embedded text is misinformation.
    pub fn score(&self, embedding: &[f32]) -> Result<f32> {
        if embedding.len() != self.weights.len() {
            return Err(ModelError::Head(format!(
                "embedding has {} dimensions, head expects {}",
                embedding.len(),
                self.weights.len()
            )));
        }
        Ok(sigmoid(self.logit(embedding)))
    }

    fn logit(&self, x: &[f32]) -> f32 {
        self.weights.iter().zip(x).map(|(w, x)| w * x).sum::<f32>() + self.bias
    }

    /// Fits the head by full-batch gradient descent (Adam) on the weighted log-loss.
    /// `labels[i]` is true for misinformation.
    pub fn train(
        encoder: &str,
        trained_on: Vec<String>,
        xs: &[Vec<f32>],
        labels: &[bool],
        options: TrainOptions,
    ) -> Result<Self> {
        let n = xs.len();
        if n == 0 || n != labels.len() {
            return Err(ModelError::Head(format!("{n} examples for {} labels", labels.len())));
        }
        let dim = xs[0].len();
        if xs.iter().any(|x| x.len() != dim) {
            return Err(ModelError::Head("examples of different dimensions".into()));
        }
        let positives = labels.iter().filter(|&&y| y).count();
        if positives == 0 || positives == n {
            return Err(ModelError::Head("training data needs both classes".into()));
        }
        let (w_pos, w_neg) = if options.balance_classes {
            (n as f32 / (2.0 * positives as f32), n as f32 / (2.0 * (n - positives) as f32))
        } else {
            (1.0, 1.0)
        };
        let mut head = RiskHead { encoder: encoder.into(), weights: vec![0.0; dim], bias: 0.0, trained_on, options };
        // Adam state: parameters are weights followed by the bias.
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let mut m = vec![0.0f32; dim + 1];
        let mut v = vec![0.0f32; dim + 1];
        let mut grad = vec![0.0f32; dim + 1];
        for step in 1..=options.epochs {
            grad.iter_mut().for_each(|g| *g = 0.0);
            let mut total_weight = 0.0;
            for (x, &y) in xs.iter().zip(labels) {
                let sample_weight = if y { w_pos } else { w_neg };
                let err = (sigmoid(head.logit(x)) - if y { 1.0 } else { 0.0 }) * sample_weight;
                for (g, xi) in grad[..dim].iter_mut().zip(x) {
                    *g += err * xi;
                }
                grad[dim] += err;
                total_weight += sample_weight;
            }
            for (i, g) in grad.iter_mut().enumerate() {
                *g /= total_weight;
                if i < dim {
                    *g += options.l2 * head.weights[i];
                }
            }
            let lr = options.learning_rate * (1.0 - b2.powi(step as i32)).sqrt() / (1.0 - b1.powi(step as i32));
            for i in 0..=dim {
                m[i] = b1 * m[i] + (1.0 - b1) * grad[i];
                v[i] = b2 * v[i] + (1.0 - b2) * grad[i] * grad[i];
                let delta = lr * m[i] / (v[i].sqrt() + eps);
                if i < dim {
                    head.weights[i] -= delta;
                } else {
                    head.bias -= delta;
                }
            }
        }
        Ok(head)
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
            xs.push(vec![if pos { 1.0 } else { -1.0 } + jitter, jitter, 1.0 - jitter]);
            ys.push(pos);
        }
        let head = RiskHead::train("test", vec!["synthetic".into()], &xs, &ys, TrainOptions::default()).unwrap();
        for (x, &y) in xs.iter().zip(&ys) {
            let p = head.score(x).unwrap();
            assert_eq!(p > 0.5, y, "p={p} for {x:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("head.json");
        head.save(&path).unwrap();
        assert_eq!(RiskHead::load(&path).unwrap(), head);
    }

    #[test]
    fn builtin_head_matches_the_encoder() {
        let head = RiskHead::builtin().unwrap();
        assert_eq!(head.dim(), 384);
        assert_eq!(head.encoder, crate::encoder::MODEL_NAME);
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(RiskHead::train("t", vec![], &[vec![1.0]], &[true], TrainOptions::default()).is_err());
        let head = RiskHead { encoder: "t".into(), weights: vec![1.0, 2.0], bias: 0.0, trained_on: vec![], options: TrainOptions::default() };
        assert!(head.score(&[1.0]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{\"encoder\":\"t\",\"weights\":[],\"bias\":0,\"trained_on\":[],\"options\":{\"epochs\":1,\"learning_rate\":0.1,\"l2\":0,\"balance_classes\":true}}").unwrap();
        assert!(RiskHead::load(&path).is_err());
    }
}
