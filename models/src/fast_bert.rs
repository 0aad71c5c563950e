//! The BERT forward pass used for scoring: the same computation as candle-transformers'
//! `bert::BertModel` (which stays as the reference, see `Backbone::Reference`), arranged
//! for CPU throughput on short posts.
//!
//! Measured on 2 cores, most of `BertModel`'s time went outside the matrix products:
//! - its linear layers multiply a 3-D input by a broadcast weight, which candle runs as
//!   one small product per sequence; here every linear layer is one 2-D product over all
//!   tokens of the batch (about 3 times faster);
//! - `erf` for GELU is evaluated with libm one value at a time; here a rational
//!   approximation (the one Eigen and XLA use, error below 1e-6) that the compiler
//!   vectorises, spread over the cores with rayon;
//! - its generic softmax is replaced by candle's last-dimension kernel;
//! - query, key and value are one product, the 1/sqrt(d) scale folded into the query
//!   weights; weights are stored transposed so no copy is made per call;
//! - the 250k-row word-embedding table stays in Q4_0 and only the rows of the batch's
//!   tokens are dequantised, which keeps the loaded model under 200 MB.
//!
//! - the linear layers run in int8 by default ([`Precision::Int8`], see [`crate::kernels`]):
//!   weights quantised per output row at load, activations per token row on the fly, the
//!   kernel picked at run time for the processor. candle's own quantised products
//!   (`QMatMul`, Q4_0/Q8_0) were measured first: in a portable build they ran at about
//!   7 GFLOP/s against 200 for f32, hence the kernels. [`Precision::F32`] keeps the
//!   dequantised f32 weights; training uses it, so heads do not depend on the machine.

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use crate::e5_file::{E5Image, Hyper, Q4Rows};
use crate::kernels::{Kernel, QuantizedLinear};
use crate::{FormatError, Result};

/// The environment variable that selects the encoder's arithmetic: `f32`, or `int8`
/// (the default).
pub const PRECISION_ENV: &str = "VIGIE_ENCODER_PRECISION";

/// How the encoder's linear layers compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f32 weights, dequantised once at load: the reference arithmetic, used for training.
    F32,
    /// int8 weights and activations on the given kernel.
    Int8(Kernel),
}

impl Precision {
    /// `VIGIE_ENCODER_PRECISION` (`f32` or `int8`), else int8 on the fastest kernel
    /// the processor has (capped by `VIGIE_KERNELS`).
    pub fn from_env() -> Precision {
        match std::env::var(PRECISION_ENV).ok().as_deref().map(str::trim) {
            Some("f32") => Precision::F32,
            _ => Precision::Int8(Kernel::detect()),
        }
    }

    /// `f32`, or `int8/` and the kernel's name.
    pub fn name(self) -> String {
        match self {
            Precision::F32 => "f32".into(),
            Precision::Int8(kernel) => format!("int8/{}", kernel.name()),
        }
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor, eps: f32) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(
            x,
            &self.weight,
            &self.bias,
            eps,
        )?)
    }
}

/// A linear layer `x · Wᵀ + b`, in f32 (`Wᵀ` stored contiguous, [in, out]) or int8.
enum Linear {
    F32 { weight_t: Tensor, bias: Vec<f32> },
    Int8(QuantizedLinear),
}

impl Linear {
    /// From a PyTorch-layout weight ([out, in]) and its bias.
    fn new(weight: Tensor, bias: Tensor, precision: Precision) -> Result<Self> {
        let bias: Vec<f32> = bias.to_vec1()?;
        Ok(match precision {
            Precision::F32 => Linear::F32 {
                weight_t: weight.t()?.contiguous()?,
                bias,
            },
            Precision::Int8(kernel) => {
                let (n, k) = weight.dims2()?;
                let values: Vec<f32> = weight.flatten_all()?.to_vec1()?;
                Linear::Int8(QuantizedLinear::new(&values, &bias, n, k, kernel))
            }
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, false)
    }

    /// GELU(x · Wᵀ + b), the bias and the activation in one pass over the output.
    fn forward_gelu(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, true)
    }

    fn forward_with(&self, x: &Tensor, gelu: bool) -> Result<Tensor> {
        Ok(match self {
            Linear::F32 { weight_t, bias } => x
                .matmul(weight_t)?
                .apply_op1_no_bwd(&AddBias { bias, gelu })?,
            Linear::Int8(layer) => x.apply_op1_no_bwd(&QuantizedProduct { layer, gelu })?,
        })
    }
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    output_norm: LayerNorm,
}

/// The BERT network with its weights arranged for [`FastBert::forward`].
pub struct FastBert {
    word: Q4Rows,
    positions: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    hyper: Hyper,
    device: Device,
    precision: Precision,
}

impl FastBert {
    /// Takes the tensors out of a parsed image and rearranges them (query, key and value
    /// fused), with the precision chosen by [`Precision::from_env`].
    pub fn from_image(image: E5Image) -> Result<Self> {
        Self::from_image_with(image, Precision::from_env())
    }

    /// As [`FastBert::from_image`], in the given precision.
    pub fn from_image_with(image: E5Image, precision: Precision) -> Result<Self> {
        let device = Device::Cpu;
        let E5Image {
            hyper,
            word_embeddings,
            mut tensors,
            ..
        } = image;
        let h = hyper.hidden;
        // Each tensor is taken out of the image as it is rearranged, so the f32 copy it
        // replaces is freed before the next one is made (it keeps the load peak down).
        let mut get = |name: &str| -> Result<Tensor> {
            Ok(tensors
                .remove(name)
                .ok_or_else(|| FormatError::MissingTensor { name: name.into() })?)
        };
        let norm =
            |get: &mut dyn FnMut(&str) -> Result<Tensor>, prefix: &str| -> Result<LayerNorm> {
                Ok(LayerNorm {
                    weight: get(&format!("{prefix}.weight"))?,
                    bias: get(&format!("{prefix}.bias"))?,
                })
            };
        let linear = |get: &mut dyn FnMut(&str) -> Result<Tensor>,
                      prefix: &str|
         -> Result<(Tensor, Tensor)> {
            Ok((
                get(&format!("{prefix}.weight"))?,
                get(&format!("{prefix}.bias"))?,
            ))
        };
        let scale = 1.0 / ((h / hyper.heads) as f64).sqrt();
        let mut layers = Vec::with_capacity(hyper.layers);
        for l in 0..hyper.layers {
            let p = format!("encoder.layer.{l}");
            let q = linear(&mut get, &format!("{p}.attention.self.query"))?;
            let k = linear(&mut get, &format!("{p}.attention.self.key"))?;
            let v = linear(&mut get, &format!("{p}.attention.self.value"))?;
            let qkv = Linear::new(
                Tensor::cat(&[(q.0 * scale)?, k.0, v.0], 0)?,
                Tensor::cat(&[(q.1 * scale)?, k.1, v.1], 0)?,
                precision,
            )?;
            let (out_w, out_b) = linear(&mut get, &format!("{p}.attention.output.dense"))?;
            let attention_out = Linear::new(out_w, out_b, precision)?;
            let attention_norm = norm(&mut get, &format!("{p}.attention.output.LayerNorm"))?;
            let (in_w, in_b) = linear(&mut get, &format!("{p}.intermediate.dense"))?;
            let ffn_in = Linear::new(in_w, in_b, precision)?;
            let (ffn_w, ffn_b) = linear(&mut get, &format!("{p}.output.dense"))?;
            let ffn_out = Linear::new(ffn_w, ffn_b, precision)?;
            let output_norm = norm(&mut get, &format!("{p}.output.LayerNorm"))?;
            layers.push(Layer {
                qkv,
                attention_out,
                attention_norm,
                ffn_in,
                ffn_out,
                output_norm,
            });
        }
        let positions = get("embeddings.position_embeddings.weight")?;
        let token_type = get("embeddings.token_type_embeddings.weight")?.get(0)?;
        let embedding_norm = norm(&mut get, "embeddings.LayerNorm")?;
        Ok(FastBert {
            word: word_embeddings,
            positions,
            token_type,
            embedding_norm,
            layers,
            hyper,
            device,
            precision,
        })
    }

    /// The arithmetic of the linear layers.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Hidden size: the dimension of the embeddings.
    pub fn hidden_size(&self) -> usize {
        self.hyper.hidden
    }

    /// The longest input the model takes, in tokens.
    pub fn max_positions(&self) -> usize {
        self.hyper.max_positions
    }

    /// Runs token ids padded to one width (`mask` 1 for real tokens, 0 for padding) and
    /// returns the last hidden states, [batch, width, hidden].
    pub fn forward(&self, ids: &[u32], mask: &[u32], batch: usize, width: usize) -> Result<Tensor> {
        let (h, heads) = (self.hyper.hidden, self.hyper.heads);
        let head_dim = h / heads;
        if width > self.hyper.max_positions {
            return Err(FormatError::TooManyTokens {
                tokens: width,
                positions: self.hyper.max_positions,
            }
            .into());
        }
        let mut rows = Vec::with_capacity(ids.len() * h);
        for &id in ids {
            self.word.push_row(id as usize, &mut rows)?;
        }
        let words = Tensor::from_vec(rows, (batch, width, h), &self.device)?;
        let positions = self.positions.narrow(0, 0, width)?;
        let embedded = words
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type)?;
        let mut x = self
            .embedding_norm
            .forward(&embedded, self.hyper.layer_norm_eps)?
            .reshape((batch * width, h))?;

        let lengths: Vec<usize> = mask
            .chunks(width)
            .map(|m| m.iter().filter(|&&v| v != 0).count())
            .collect();
        let softmax = MaskedSoftmax {
            lengths: &lengths,
            heads,
            width,
        };
        let eps = self.hyper.layer_norm_eps;
        for layer in &self.layers {
            let qkv = layer
                .qkv
                .forward(&x)?
                .reshape((batch, width, 3, heads, head_dim))?;
            let part = |i: usize| -> Result<Tensor> {
                Ok(qkv
                    .narrow(2, i, 1)?
                    .squeeze(2)?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let probs = q.matmul(&k.t()?)?.apply_op1_no_bwd(&softmax)?;
            let context = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((batch * width, h))?;
            let attended = layer.attention_out.forward(&context)?;
            x = layer.attention_norm.forward(&(attended + &x)?, eps)?;
            let inner = layer.ffn_in.forward_gelu(&x)?;
            let out = layer.ffn_out.forward(&inner)?;
            x = layer.output_norm.forward(&(out + &x)?, eps)?;
        }
        Ok(x.reshape((batch, width, h))?)
    }
}

/// Mean of the hidden states over real tokens, scaled to unit length: one vector per row.
pub fn mean_pool_normalised(hidden: &Tensor, mask: &[u32]) -> Result<Vec<Vec<f32>>> {
    let (batch, width, _) = hidden.dims3()?;
    let mask_f: Vec<f32> = mask.iter().map(|&m| m as f32).collect();
    let mask_f = Tensor::from_vec(mask_f, (batch, width, 1), hidden.device())?;
    let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?;
    let counts = mask_f.sum(1)?.clamp(1.0, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    Ok(mean
        .broadcast_div(&norm)?
        .to_dtype(DType::F32)?
        .to_vec2::<f32>()?)
}

/// erf(x) as x·P(x²)/Q(x²) on [-4, 4] (beyond, erf is ±1 to f32 precision); the
/// coefficients are those of Eigen's and XLA's `erf` for f32. Plain `*` and `+` rather than
/// `mul_add`: without the `fma` target feature `mul_add` is a library call per value.
#[inline]
pub fn fast_erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = -2.726_142_3e-10f32;
    let p = p * x2 + 2.770_681_4e-8;
    let p = p * x2 + -2.101_024e-6;
    let p = p * x2 + -5.692_506_4e-5;
    let p = p * x2 + -7.349_906_3e-4;
    let p = p * x2 + -2.954_600_5e-3;
    let p = p * x2 + -1.609_603_3e-2;
    let q = -1.456_607_2e-5f32;
    let q = q * x2 + -2.133_740_6e-4;
    let q = q * x2 + -1.682_827e-3;
    let q = q * x2 + -7.373_329e-3;
    let q = q * x2 + -1.426_474e-2;
    x * p / q
}

fn gelu_in_place(values: &mut [f32]) {
    for v in values {
        *v = 0.5 * *v * (1.0 + fast_erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Adds a bias to every row, then GELU (the exact erf form BERT was trained with) when
/// asked; one pass over the product instead of candle's broadcast add and `gelu_erf`.
struct AddBias<'a> {
    bias: &'a [f32],
    gelu: bool,
}

fn contiguous_f32<'s>(
    storage: &'s CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'s [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: f32 input expected");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous input expected");
    };
    Ok(&data[start..end])
}

/// Rows per parallel task: large enough that splitting costs nothing next to the work.
fn rows_per_task(row_len: usize) -> usize {
    (16 * 1024 / row_len.max(1)).max(1)
}

impl CustomOp1 for AddBias<'_> {
    fn name(&self) -> &'static str {
        "vigie-add-bias"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = contiguous_f32(storage, layout, self.name())?;
        let n = self.bias.len();
        if layout.dims().last() != Some(&n) {
            candle_core::bail!(
                "add-bias: last dimension {:?} is not the bias length {n}",
                layout.dims()
            );
        }
        let mut out = data.to_vec();
        out.par_chunks_mut(n * rows_per_task(n)).for_each(|rows| {
            for row in rows.chunks_exact_mut(n) {
                for (v, b) in row.iter_mut().zip(self.bias) {
                    *v += b;
                }
                if self.gelu {
                    gelu_in_place(row);
                }
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// `x · Wᵀ + b` (and GELU when asked) on an int8 layer, as a candle op over the input's
/// last dimension.
struct QuantizedProduct<'a> {
    layer: &'a QuantizedLinear,
    gelu: bool,
}

impl CustomOp1 for QuantizedProduct<'_> {
    fn name(&self) -> &'static str {
        "vigie-int8-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = contiguous_f32(storage, layout, self.name())?;
        let (k, n) = (self.layer.in_features(), self.layer.out_features());
        let mut dims = layout.dims().to_vec();
        if dims.last() != Some(&k) {
            candle_core::bail!("int8-linear: input {dims:?} does not end in {k}");
        }
        let m = data.len() / k.max(1);
        let mut out = vec![0.0f32; m * n];
        self.layer.forward(data, m, &mut out);
        if self.gelu {
            out.par_chunks_mut(n * rows_per_task(n))
                .for_each(gelu_in_place);
        }
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// Softmax over the last dimension of attention scores [batch, heads, width, width],
/// where only the first `lengths[b]` keys of sequence `b` are real (padding on the right,
/// as the encoder builds its batches): padding keys get probability 0 (what adding a
/// large negative mask does, without the extra pass).
struct MaskedSoftmax<'a> {
    lengths: &'a [usize],
    heads: usize,
    width: usize,
}

impl CustomOp1 for MaskedSoftmax<'_> {
    fn name(&self) -> &'static str {
        "vigie-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = contiguous_f32(storage, layout, self.name())?;
        let w = self.width;
        if layout.dims() != [self.lengths.len(), self.heads, w, w] {
            candle_core::bail!("masked-softmax: unexpected shape {:?}", layout.dims());
        }
        let mut out = data.to_vec();
        let per_sequence = self.heads * w * w;
        out.par_chunks_mut(per_sequence)
            .zip(self.lengths.par_iter())
            .for_each(|(scores, &len)| {
                let len = len.clamp(1, w);
                for row in scores.chunks_exact_mut(w) {
                    let (real, padding) = row.split_at_mut(len);
                    let max = real.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0;
                    for v in real.iter_mut() {
                        *v = (*v - max).exp();
                        sum += *v;
                    }
                    let inv = 1.0 / sum;
                    real.iter_mut().for_each(|v| *v *= inv);
                    padding.fill(0.0);
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erf_reference(x: f64) -> f64 {
        // Abramowitz & Stegun 7.1.28 is too coarse to judge 1e-6; integrate instead.
        let n = 20_000;
        let h = x / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn fast_erf_is_within_a_millionth() {
        for i in -600..=600 {
            let x = i as f64 / 100.0;
            let got = fast_erf(x as f32) as f64;
            let want = erf_reference(x);
            assert!(
                (got - want).abs() < 1e-6,
                "erf({x}) = {got}, expected {want}"
            );
        }
        assert!(
            (fast_erf(f32::INFINITY) - 1.0).abs() < 1e-6
                && (fast_erf(f32::NEG_INFINITY) + 1.0).abs() < 1e-6
        );
    }

    #[test]
    fn bias_and_gelu_match_candle() {
        let x = Tensor::arange(-300i64, 300, &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let x = (x / 50.0).unwrap().reshape((100, 6)).unwrap();
        let bias = [0.5f32, -0.25, 0.0, 1.0, -1.0, 2.0];
        let b = Tensor::new(&bias, &Device::Cpu).unwrap();
        let ours: Vec<f32> = x
            .apply_op1_no_bwd(&AddBias {
                bias: &bias,
                gelu: true,
            })
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let theirs: Vec<f32> = x
            .broadcast_add(&b)
            .unwrap()
            .gelu_erf()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!(
            x.apply_op1_no_bwd(&AddBias {
                bias: &bias[..5],
                gelu: false
            })
            .is_err(),
            "a wrong bias length is refused"
        );
    }

    #[test]
    fn masked_softmax_matches_softmax_with_an_additive_mask() {
        let (b, heads, w) = (3, 2, 5);
        let scores = Tensor::randn(0f32, 3.0, (b, heads, w, w), &Device::Cpu).unwrap();
        let lengths = [5, 2, 1];
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..w).map(move |j| if j < l { 0.0 } else { -1e9 }))
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, 1, w), &Device::Cpu).unwrap();
        let want: Vec<f32> =
            candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
        let got: Vec<f32> = scores
            .apply_op1_no_bwd(&MaskedSoftmax {
                lengths: &lengths,
                heads,
                width: w,
            })
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
