//! A small softmax classifier over fixed-width vectors: one ReLU hidden layer, then one
//! logit per class. The token tagger reads token states with it, the stance classifier
//! pooled post embeddings; both train it here, with candle's autograd.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use crate::rng::XorShift;
use crate::Result;

/// Settings of [`train`].
#[derive(Debug, Clone)]
pub struct SoftmaxTraining {
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Passes over the examples.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// AdamW's learning rate.
    pub learning_rate: f32,
    /// L2 penalty on the weights.
    pub l2: f32,
    /// Seed of the initial weights and of the shuffles.
    pub seed: u64,
}

impl Default for SoftmaxTraining {
    /// The token tagger's settings.
    fn default() -> Self {
        SoftmaxTraining {
            hidden: 128,
            epochs: 10,
            batch_size: 256,
            learning_rate: 2e-3,
            l2: 1e-4,
            seed: 17,
        }
    }
}

/// Borrowed weights of a fitted classifier: `w1` is `hidden × dim` row after row, `w2`
/// `classes × hidden`.
#[derive(Debug, Clone, Copy)]
pub struct Weights<'a> {
    /// Width of the input vectors.
    pub dim: usize,
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Hidden layer weights.
    pub w1: &'a [f32],
    /// Hidden layer biases.
    pub b1: &'a [f32],
    /// Output weights.
    pub w2: &'a [f32],
    /// Output biases (one per class).
    pub b2: &'a [f32],
}

impl Weights<'_> {
    /// Whether the shapes agree with `dim`, `hidden` and the number of biases.
    pub fn consistent(&self) -> bool {
        self.w1.len() == self.hidden * self.dim
            && self.b1.len() == self.hidden
            && self.w2.len() == self.b2.len() * self.hidden
    }

    /// Whether every weight is a finite number.
    pub fn finite(&self) -> bool {
        [self.w1, self.b1, self.w2, self.b2]
            .iter()
            .all(|v| v.iter().all(|x| x.is_finite()))
    }

    /// The logit of each class for `x` (`dim` wide).
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        let hidden: Vec<f32> = (0..self.hidden)
            .map(|h| {
                let row = &self.w1[h * self.dim..(h + 1) * self.dim];
                (self.b1[h] + crate::kernels::elementwise::dot_f32(row, x)).max(0.0)
            })
            .collect();
        (0..self.b2.len())
            .map(|c| {
                let row = &self.w2[c * self.hidden..(c + 1) * self.hidden];
                self.b2[c] + row.iter().zip(&hidden).map(|(w, x)| w * x).sum::<f32>()
            })
            .collect()
    }

    /// The probability of each class for `x`.
    pub fn probabilities(&self, x: &[f32]) -> Vec<f32> {
        softmax(&self.logits(x))
    }
}

/// Weights fitted by [`train`].
#[derive(Debug, Clone)]
pub struct Fitted {
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Hidden layer weights, `hidden × dim`.
    pub w1: Vec<f32>,
    /// Hidden layer biases.
    pub b1: Vec<f32>,
    /// Output weights, `classes × hidden`.
    pub w2: Vec<f32>,
    /// Output biases.
    pub b2: Vec<f32>,
}

/// Fits a classifier on `x` (`n × dim`, row after row) and their classes (`0..k`), each
/// example weighted (weighted cross-entropy plus an L2 penalty, AdamW, mini-batches).
/// Deterministic for a seed.
pub fn train(
    x: &[f32],
    classes: &[u8],
    k: usize,
    weights: &[f32],
    dim: usize,
    options: &SoftmaxTraining,
) -> Result<Fitted> {
    let device = Device::Cpu;
    let n = classes.len();
    let h = options.hidden.max(1);
    let x = Tensor::from_slice(x, (n, dim), &device)?;
    let total: f32 = weights.iter().sum::<f32>().max(f32::MIN_POSITIVE);
    let w = Tensor::from_vec(
        weights.iter().map(|w| w / total).collect::<Vec<_>>(),
        n,
        &device,
    )?;
    let y: Vec<f32> = classes
        .iter()
        .flat_map(|&c| (0..k).map(move |j| f32::from(j == c as usize)))
        .collect();
    let y = Tensor::from_vec(y, (n, k), &device)?;
    let mut init = XorShift::new(options.seed ^ 0x9e37_79b9_7f4a_7c15);
    let w1 = glorot(&mut init, (h, dim), &device)?;
    let b1 = Var::from_tensor(&Tensor::zeros(h, DType::F32, &device)?)?;
    let w2 = glorot(&mut init, (k, h), &device)?;
    let b2 = Var::from_tensor(&Tensor::zeros(k, DType::F32, &device)?)?;
    let params = ParamsAdamW {
        lr: options.learning_rate as f64,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut opt = AdamW::new(vec![w1.clone(), b1.clone(), w2.clone(), b2.clone()], params)?;
    let batch = options.batch_size.clamp(1, n.max(1));
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut shuffle = XorShift::new(options.seed ^ 0x2545_f491_4f6c_dd1d);
    let l2 = options.l2 as f64;
    for _ in 0..options.epochs {
        for i in (1..n).rev() {
            order.swap(i, shuffle.below(i as u64 + 1) as usize);
        }
        for idx in order.chunks(batch) {
            let idx = Tensor::new(idx, &device)?;
            let (xb, yb) = (x.index_select(&idx, 0)?, y.index_select(&idx, 0)?);
            // Weights sum to 1 over the set: scaled so a full batch weighs as the set.
            let wb = (w.index_select(&idx, 0)? * (n as f64 / idx.dim(0)? as f64))?;
            let hidden = xb
                .matmul(&w1.as_tensor().t()?)?
                .broadcast_add(b1.as_tensor())?
                .relu()?;
            let logits = hidden
                .matmul(&w2.as_tensor().t()?)?
                .broadcast_add(b2.as_tensor())?;
            let log_p = candle_nn::ops::log_softmax(&logits, 1)?;
            let per_example = (log_p * &yb)?.sum(1)?.neg()?;
            let penalty = ((w1.as_tensor().sqr()?.sum_all()?
                + w2.as_tensor().sqr()?.sum_all()?)?
                * (l2 / 2.0))?;
            let loss = ((per_example * wb)?.sum_all()? + penalty)?;
            opt.backward_step(&loss)?;
        }
    }
    Ok(Fitted {
        hidden: h,
        w1: w1.as_tensor().flatten_all()?.to_vec1()?,
        b1: b1.as_tensor().to_vec1()?,
        w2: w2.as_tensor().flatten_all()?.to_vec1()?,
        b2: b2.as_tensor().to_vec1()?,
    })
}

/// A `rows × cols` weight matrix drawn uniform in ±√(6 / (rows + cols)) (Glorot), the
/// next values of `init`.
pub(crate) fn glorot(
    init: &mut XorShift,
    (rows, cols): (usize, usize),
    device: &Device,
) -> Result<Var> {
    let scale = (6.0 / (rows + cols) as f32).sqrt();
    Ok(Var::from_tensor(&Tensor::from_vec(
        init.vec(rows * cols, scale),
        (rows, cols),
        device,
    )?)?)
}

/// Probabilities from logits, computed from the largest so no exponential overflows.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_survives_large_logits() {
        let p = softmax(&[1000.0, 999.0, -5.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > p[1] && p[1] > p[2]);
    }

    #[test]
    fn learns_three_separable_classes_and_is_deterministic() {
        // Three clusters in 4 dimensions, 20 points each.
        let mut rng = XorShift::new(3);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..60 {
            let c = i % 3;
            for d in 0..4 {
                let centre = if d == c { 2.0 } else { 0.0 };
                x.push(centre + rng.symmetric(0.3));
            }
            y.push(c as u8);
        }
        let options = SoftmaxTraining {
            hidden: 8,
            epochs: 200,
            batch_size: 16,
            learning_rate: 1e-2,
            l2: 0.0,
            seed: 5,
        };
        let w = vec![1.0; 60];
        let a = train(&x, &y, 3, &w, 4, &options).unwrap();
        let b = train(&x, &y, 3, &w, 4, &options).unwrap();
        assert_eq!(a.w1, b.w1, "same seed, same weights");
        let view = Weights {
            dim: 4,
            hidden: a.hidden,
            w1: &a.w1,
            b1: &a.b1,
            w2: &a.w2,
            b2: &a.b2,
        };
        assert!(view.consistent() && view.finite());
        let right = (0..60)
            .filter(|&i| {
                let p = view.probabilities(&x[i * 4..i * 4 + 4]);
                let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
                best == y[i] as usize
            })
            .count();
        assert_eq!(right, 60);
    }
}
