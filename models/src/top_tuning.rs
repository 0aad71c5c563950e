//! Fine-tuning the encoder's top layers for one task: a trainable copy of the last
//! transformer layers, fed the states the frozen layers below give (the encoder's
//! tapped layer, so the pass every post already pays provides them), with a linear head
//! on the mean of its output.
//!
//! Why: a linear head on pooled frozen states sees a post as the average of its tokens,
//! so "stop the pills once you feel well" and "never stop the pills once you feel well"
//! are nearly the same point. Layers that can still attend, re-weight and combine tokens
//! for the task are what fine-tuning gives; training only the top ones keeps the cost
//! to a few minutes on two cores, the states below being computed once.
//!
//! The layers are written with candle's differentiable operations (its fused layer norm
//! and softmax have no backward pass), the same arithmetic as candle-transformers' BERT.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};

use crate::e5_file::E5Image;
use crate::rng::XorShift;
use crate::{HeadError, Result};

/// One post as the tuned layers read it: the states of its tokens after the frozen
/// layers, `tokens` rows of the hidden width, and its label and training weight.
#[derive(Debug, Clone)]
pub struct TokenExample {
    /// Token states after the frozen layers, token after token.
    pub states: Vec<f32>,
    /// How many tokens.
    pub tokens: usize,
    /// True for the positive class.
    pub label: bool,
    /// The example's weight in the loss.
    pub weight: f32,
    /// Frozen features the head reads beside the tuned layers' pooled output (the same
    /// width for every example; may be empty).
    pub extra: Vec<f32>,
}

/// How the top layers are tuned.
#[derive(Debug, Clone, Copy)]
pub struct TuneOptions {
    /// Passes over the data.
    pub epochs: usize,
    /// Posts per step.
    pub batch_size: usize,
    /// AdamW's learning rate for the layers' weights (0 keeps them frozen: the linear
    /// head alone, the baseline the tuning is compared with).
    pub layer_learning_rate: f64,
    /// AdamW's learning rate for the head.
    pub head_learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// The order of the batches.
    pub seed: u64,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            epochs: 3,
            batch_size: 32,
            layer_learning_rate: 3e-5,
            head_learning_rate: 1e-3,
            weight_decay: 0.01,
            seed: 17,
        }
    }
}

/// A weight and a bias taken out of the image as trainable variables: what a linear
/// layer and a layer norm both hold.
struct WeightAndBias {
    weight: Var,
    bias: Var,
}

impl WeightAndBias {
    fn take(image: &mut E5Image, prefix: &str, device: &Device) -> Result<Self> {
        Ok(WeightAndBias {
            weight: Var::from_tensor(&image.take(&format!("{prefix}.weight"), device)?)?,
            bias: Var::from_tensor(&image.take(&format!("{prefix}.bias"), device)?)?,
        })
    }

    fn vars(&self) -> [Var; 2] {
        [self.weight.clone(), self.bias.clone()]
    }
}

/// `x · Wᵀ + b`.
struct Dense(WeightAndBias);

impl Dense {
    fn take(image: &mut E5Image, prefix: &str, device: &Device) -> Result<Self> {
        Ok(Dense(WeightAndBias::take(image, prefix, device)?))
    }

    /// `x · Wᵀ + b` on `[batch, tokens, in]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let WeightAndBias { weight, bias } = &self.0;
        let (b, t, i) = x.dims3()?;
        let out = weight.dim(0)?;
        Ok(x.reshape((b * t, i))?
            .matmul(&weight.t()?)?
            .broadcast_add(bias)?
            .reshape((b, t, out))?)
    }
}

/// Layer normalisation over the last dimension, then the learned gain and bias.
struct Norm {
    affine: WeightAndBias,
    eps: f64,
}

impl Norm {
    fn take(image: &mut E5Image, prefix: &str, eps: f64, device: &Device) -> Result<Self> {
        Ok(Norm {
            affine: WeightAndBias::take(image, prefix, device)?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        Ok(centred
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.affine.weight)?
            .broadcast_add(&self.affine.bias)?)
    }
}

struct TunedLayer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    ffn_in: Dense,
    ffn_out: Dense,
    output_norm: Norm,
}

impl TunedLayer {
    fn forward(&self, x: &Tensor, mask_bias: &Tensor, heads: usize) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let dh = h / heads;
        let split = |y: Tensor| -> Result<Tensor> {
            Ok(y.reshape((b, t, heads, dh))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores =
            (q.matmul(&k.t()?.contiguous()?)? / (dh as f64).sqrt())?.broadcast_add(mask_bias)?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, h))?;
        let attended = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.ffn_in.forward(&attended)?.gelu_erf()?;
        self.output_norm
            .forward(&(self.ffn_out.forward(&inner)? + attended)?)
    }

    fn vars(&self) -> Vec<Var> {
        let mut v = Vec::new();
        for d in [
            &self.query,
            &self.key,
            &self.value,
            &self.attention_out,
            &self.ffn_in,
            &self.ffn_out,
        ] {
            v.extend(d.0.vars());
        }
        v.extend(self.attention_norm.affine.vars());
        v.extend(self.output_norm.affine.vars());
        v
    }
}

/// The trainable top of the encoder and its head.
pub struct TunedTop {
    layers: Vec<TunedLayer>,
    head_weight: Var,
    head_bias: Var,
    heads: usize,
    hidden: usize,
    extra: usize,
    device: Device,
}

impl TunedTop {
    /// Copies the encoder's layers from `first` (0-based) to the top out of an image, and
    /// starts a head of zeros.
    pub fn from_image(mut image: E5Image, first: usize, extra: usize) -> Result<Self> {
        let device = Device::Cpu;
        let hyper = image.hyper;
        let eps = f64::from(hyper.layer_norm_eps);
        if first >= hyper.layers {
            // Nothing to tune above the top: name the layer that is not there.
            return Err(crate::FormatError::MissingTensor {
                name: format!("encoder.layer.{first}"),
            }
            .into());
        }
        let mut layers = Vec::new();
        for l in first..hyper.layers {
            let p = format!("encoder.layer.{l}");
            let im = &mut image;
            layers.push(TunedLayer {
                query: Dense::take(im, &format!("{p}.attention.self.query"), &device)?,
                key: Dense::take(im, &format!("{p}.attention.self.key"), &device)?,
                value: Dense::take(im, &format!("{p}.attention.self.value"), &device)?,
                attention_out: Dense::take(im, &format!("{p}.attention.output.dense"), &device)?,
                attention_norm: Norm::take(
                    im,
                    &format!("{p}.attention.output.LayerNorm"),
                    eps,
                    &device,
                )?,
                ffn_in: Dense::take(im, &format!("{p}.intermediate.dense"), &device)?,
                ffn_out: Dense::take(im, &format!("{p}.output.dense"), &device)?,
                output_norm: Norm::take(im, &format!("{p}.output.LayerNorm"), eps, &device)?,
            });
        }
        Ok(TunedTop {
            layers,
            head_weight: Var::zeros((hyper.hidden + extra, 1), DType::F32, &device)?,
            head_bias: Var::zeros(1, DType::F32, &device)?,
            heads: hyper.heads,
            hidden: hyper.hidden,
            extra,
            device,
        })
    }

    /// Pads a batch of posts into `[batch, tokens, hidden]` states and a `[batch, tokens]`
    /// mask of ones and zeros, with the extra features `[batch, extra]`.
    fn padded(&self, batch: &[&TokenExample]) -> Result<(Tensor, Tensor, Tensor)> {
        let h = self.hidden;
        let width = batch.iter().map(|e| e.tokens).max().unwrap_or(1).max(1);
        let mut states = vec![0f32; batch.len() * width * h];
        let mut mask = vec![0f32; batch.len() * width];
        let mut extra = Vec::with_capacity(batch.len() * self.extra);
        for (row, e) in batch.iter().enumerate() {
            if e.states.len() != e.tokens * h {
                return Err(HeadError::Dimension {
                    got: e.states.len(),
                    expected: e.tokens * h,
                }
                .into());
            }
            if e.extra.len() != self.extra {
                return Err(HeadError::Dimension {
                    got: e.extra.len(),
                    expected: self.extra,
                }
                .into());
            }
            states[row * width * h..(row * width + e.tokens) * h].copy_from_slice(&e.states);
            mask[row * width..row * width + e.tokens].fill(1.0);
            extra.extend_from_slice(&e.extra);
        }
        Ok((
            Tensor::from_vec(states, (batch.len(), width, h), &self.device)?,
            Tensor::from_vec(mask, (batch.len(), width), &self.device)?,
            Tensor::from_vec(extra, (batch.len(), self.extra), &self.device)?,
        ))
    }

    /// The tuned layers' output for a padded batch, `[batch, tokens, hidden]`.
    fn layers_forward(&self, states: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t) = mask.dims2()?;
        // Padding keys get a large negative score, so no token attends to them.
        let mask_bias = ((mask.reshape((b, 1, 1, t))? - 1.0)? * 1e4)?;
        let mut x = states.clone();
        for layer in &self.layers {
            x = layer.forward(&x, &mask_bias, self.heads)?;
        }
        Ok(x)
    }

    /// The head's logits for a padded batch: the tuned layers, the mean over each post's
    /// tokens scaled to unit length (as the frozen features are), the linear head on it
    /// and the extra features. With `frozen`, no gradient flows into the layers (a step
    /// then costs the head's backward pass only).
    fn forward(
        &self,
        states: &Tensor,
        mask: &Tensor,
        extra: &Tensor,
        frozen: bool,
    ) -> Result<Tensor> {
        let mut x = self.layers_forward(states, mask)?;
        if frozen {
            x = x.detach();
        }
        let m = mask.unsqueeze(2)?;
        let pooled = x.broadcast_mul(&m)?.sum(1)?;
        let pooled = pooled.broadcast_div(&(pooled.sqr()?.sum_keepdim(1)? + 1e-12)?.sqrt()?)?;
        let pooled = Tensor::cat(&[pooled, extra.clone()], 1)?;
        Ok(pooled
            .matmul(&self.head_weight)?
            .broadcast_add(&self.head_bias)?
            .squeeze(1)?)
    }

    /// Logits for posts, in order, a batch of similar lengths at a time.
    pub fn logits(&self, examples: &[TokenExample]) -> Result<Vec<f32>> {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.sort_by_key(|&i| examples[i].tokens);
        let mut out = vec![0f32; examples.len()];
        for chunk in order.chunks(64) {
            let batch: Vec<&TokenExample> = chunk.iter().map(|&i| &examples[i]).collect();
            let (states, mask, extra) = self.padded(&batch)?;
            let logits: Vec<f32> = self.forward(&states, &mask, &extra, true)?.to_vec1()?;
            for (&i, l) in chunk.iter().zip(logits) {
                out[i] = l;
            }
        }
        Ok(out)
    }

    /// Trains the layers and the head on weighted binary cross-entropy; `progress` is
    /// shown the model after each epoch, with the epoch's number (from 1) and mean loss.
    pub fn train(
        &mut self,
        examples: &[TokenExample],
        options: TuneOptions,
        mut progress: impl FnMut(&TunedTop, usize, f32),
    ) -> Result<()> {
        if examples.is_empty() {
            return Err(HeadError::Counts {
                examples: 0,
                labels: 0,
                weights: None,
            }
            .into());
        }
        let tune_layers = options.layer_learning_rate > 0.0;
        let layer_vars: Vec<Var> = if tune_layers {
            self.layers.iter().flat_map(TunedLayer::vars).collect()
        } else {
            Vec::new()
        };
        let mut head_opt = AdamW::new(
            vec![self.head_weight.clone(), self.head_bias.clone()],
            ParamsAdamW {
                lr: options.head_learning_rate,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        let mut layer_opt = AdamW::new(
            layer_vars,
            ParamsAdamW {
                lr: options.layer_learning_rate,
                weight_decay: options.weight_decay,
                ..Default::default()
            },
        )?;
        // Batches of similar lengths (little padding), their order shuffled each epoch.
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = XorShift::new(options.seed);
        let size = options.batch_size.max(1);
        for epoch in 0..options.epochs {
            // Lengths sorted with a random tie-break, so batches differ between epochs.
            let keys: Vec<(usize, u64)> = (0..examples.len())
                .map(|i| (examples[i].tokens, rng.next_u64()))
                .collect();
            order.sort_by_key(|&i| keys[i]);
            let mut batches: Vec<&[usize]> = order.chunks(size).collect();
            for i in (1..batches.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                batches.swap(i, j);
            }
            let (mut total, mut weight) = (0f32, 0f32);
            for chunk in batches {
                let batch: Vec<&TokenExample> = chunk.iter().map(|&i| &examples[i]).collect();
                let (states, mask, extra) = self.padded(&batch)?;
                let labels: Vec<f32> = batch.iter().map(|e| f32::from(u8::from(e.label))).collect();
                let weights: Vec<f32> = batch.iter().map(|e| e.weight).collect();
                let n = batch.len();
                let y = Tensor::from_vec(labels, n, &self.device)?;
                let w = Tensor::from_vec(weights.clone(), n, &self.device)?;
                let z = self.forward(&states, &mask, &extra, !tune_layers)?;
                // softplus(z) - y·z, written to stay finite for large |z|.
                let softplus = (z.relu()? + ((z.abs()?.neg()?.exp()? + 1.0)?.log()?))?;
                let per = (softplus - (&y * &z)?)?;
                let wsum: f32 = weights.iter().sum::<f32>().max(1e-6);
                let loss = ((per * &w)?.sum_all()? / f64::from(wsum))?;
                let grads = loss.backward()?;
                head_opt.step(&grads)?;
                layer_opt.step(&grads)?;
                total += loss.to_scalar::<f32>()? * wsum;
                weight += wsum;
            }
            progress(self, epoch + 1, total / weight.max(1e-6));
        }
        Ok(())
    }
}

impl TunedTop {
    /// [`TunedTop::from_image`] on the model directory's weight file.
    pub fn load(model_dir: &std::path::Path, first: usize, extra: usize) -> Result<Self> {
        let path = model_dir.join(crate::encoder::WEIGHTS_FILE);
        let bytes = std::fs::read(&path).map_err(|source| crate::ModelError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_image(E5Image::parse(&bytes, &Device::Cpu)?, first, extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::testing::{tiny_image_bytes_of_depth, tiny_tokenizer};
    use crate::fast_bert::Precision;
    use crate::Encoder;

    const TEXTS: &[&str] = &[
        "the vaccine causes autism",
        "measles vaccine is safe",
        "le vaccin cause autisme",
        "5g",
        "the measles vaccine is safe the vaccine is safe",
    ];

    fn image(seed: u64, depth: usize) -> E5Image {
        E5Image::parse(&tiny_image_bytes_of_depth(seed, depth), &Device::Cpu).unwrap()
    }

    /// The trainable layers above the encoder's highest tap.
    fn tiny_top(seed: u64, depth: usize) -> TunedTop {
        let first = depth - 2;
        TunedTop::from_image(image(seed, depth), first, 0).unwrap()
    }

    /// Each text's states at the encoder's highest tap (two layers below the top) and its
    /// last states, from the encoder's f32 pass.
    fn encoded(seed: u64, depth: usize) -> Vec<(TokenExample, Vec<f32>)> {
        let encoder =
            Encoder::from_image_with(image(seed, depth), tiny_tokenizer(), Precision::F32).unwrap();
        assert_eq!(encoder.taps().first(), Some(&(depth - 2)));
        let batch = encoder.encode(TEXTS).unwrap();
        batch
            .texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let ex = TokenExample {
                    tokens: t.ids.len(),
                    states: t.tapped[0].clone(),
                    label: i % 2 == 0,
                    weight: 1.0,
                    extra: Vec::new(),
                };
                (ex, t.states)
            })
            .collect()
    }

    fn top_states(top: &TunedTop, ex: &[&TokenExample]) -> Vec<f32> {
        let (states, mask, _) = top.padded(ex).unwrap();
        top.layers_forward(&states, &mask)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn the_trainable_layers_compute_what_the_encoder_computes_above_its_tap() {
        // Two layers (the tap is the embeddings) and four (the tap is after layer 2).
        for depth in [2, 4] {
            layers_match_the_encoder(depth);
        }
    }

    fn layers_match_the_encoder(depth: usize) {
        let top = tiny_top(3, depth);
        let seen = encoded(3, depth);
        // One post at a time, then all together: padding must not change a post's states.
        let all: Vec<&TokenExample> = seen.iter().map(|(e, _)| e).collect();
        let width = all.iter().map(|e| e.tokens).max().unwrap();
        let together = top_states(&top, &all);
        let h = top.hidden;
        for (row, (ex, last)) in seen.iter().enumerate() {
            let alone = top_states(&top, &[ex]);
            let padded = &together[row * width * h..(row * width + ex.tokens) * h];
            for (got, want) in [(&alone[..], &last[..]), (padded, &last[..])] {
                assert_eq!(got.len(), want.len());
                let worst = got
                    .iter()
                    .zip(want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-4, "depth {depth}, row {row}: differs by {worst}");
            }
        }
    }

    #[test]
    fn training_fits_a_small_set_and_frozen_layers_stay_as_loaded() {
        let seen = encoded(5, 2);
        let examples: Vec<TokenExample> = seen.iter().map(|(e, _)| e.clone()).collect();
        let refs: Vec<&TokenExample> = examples.iter().collect();
        for layer_lr in [0.0, 1e-2] {
            let mut top = tiny_top(5, 2);
            let before = top_states(&top, &refs);
            let mut losses = Vec::new();
            let mut seen_epochs = Vec::new();
            let options = TuneOptions {
                epochs: 60,
                batch_size: 2,
                layer_learning_rate: layer_lr,
                head_learning_rate: 0.05,
                ..TuneOptions::default()
            };
            top.train(&examples, options, |_, epoch, loss| {
                seen_epochs.push(epoch);
                losses.push(loss);
            })
            .unwrap();
            assert_eq!(losses.len(), 60);
            assert_eq!(seen_epochs, (1..=60).collect::<Vec<_>>());
            assert!(
                losses[59] < 0.5 * losses[0],
                "layer lr {layer_lr}: {losses:?}"
            );
            let logits = top.logits(&examples).unwrap();
            for (e, z) in examples.iter().zip(&logits) {
                assert_eq!(*z > 0.0, e.label, "layer lr {layer_lr}: {logits:?}");
            }
            let after = top_states(&top, &refs);
            let moved = before
                .iter()
                .zip(&after)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            if layer_lr == 0.0 {
                assert_eq!(moved, 0.0, "frozen layers changed");
            } else {
                assert!(moved > 1e-3, "tuned layers did not move");
            }
        }
    }

    #[test]
    fn examples_of_the_wrong_width_are_refused() {
        let mut top = tiny_top(7, 2);
        let seen = encoded(7, 2);
        let mut examples: Vec<TokenExample> = seen.into_iter().map(|(e, _)| e).collect();
        assert!(top.logits(&examples).is_ok());
        examples[1].extra.push(0.5);
        assert!(
            top.logits(&examples).is_err(),
            "extra features the head does not read"
        );
        examples[1].extra.clear();
        examples[1].states.pop();
        assert!(top.logits(&examples).is_err());
        assert!(top
            .train(&examples, TuneOptions::default(), |_, _, _| {})
            .is_err());
        assert!(top
            .train(&[], TuneOptions::default(), |_, _, _| {})
            .is_err());
    }
}
