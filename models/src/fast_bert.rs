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

use candle_core::{CpuStorage, CustomOp1, Device, InplaceOp1, InplaceOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::e5_file::{E5Image, Hyper, Q4Rows};
use crate::kernels::attention::attention_to_vec;
use crate::kernels::elementwise::{gelu_in_place, layer_norm_rows};
use crate::kernels::{Kernel, QuantizedLinear, QuantizedRows};
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
    /// the processor has (capped by `VIGIE_KERNELS`), unless that is the portable one:
    /// without AVX2 the f32 products (whose library dispatches on the processor too) are
    /// faster than portable integer loops, which are there for correctness and tests.
    pub fn from_env() -> Precision {
        let kernel = Kernel::detect();
        match std::env::var(PRECISION_ENV).ok().as_deref().map(str::trim) {
            Some("f32") => Precision::F32,
            Some("int8") => Precision::Int8(kernel),
            _ if kernel == Kernel::Portable => Precision::F32,
            _ => Precision::Int8(kernel),
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

/// A layer normalisation's parameters, applied in place (see [`NormInPlace`]).
struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// Normalises `x` in place; `x` must be a tensor no other holds (a fresh product).
    fn apply(&self, x: &Tensor) -> Result<()> {
        Ok(x.inplace_op1(&NormInPlace { norm: self })?)
    }

    /// `x ← LayerNorm(x + residual)`, in place; `x` must be a fresh tensor.
    fn apply_residual(&self, x: &Tensor, residual: &Tensor) -> Result<()> {
        Ok(x.inplace_op2(residual, &NormInPlace { norm: self })?)
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
    /// Position embedding plus the (single) token-type embedding, one row per position.
    position_and_type: Vec<f32>,
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
        let mut image = image;
        let hyper = image.hyper;
        let h = hyper.hidden;
        // Each tensor is taken out of the image (dequantised from Q4_0 only then) as it is
        // rearranged, and freed before the next is made: it keeps the load peak down.
        let mut get = |name: &str| -> Result<Tensor> { image.take(name, &device) };
        let eps = hyper.layer_norm_eps;
        let norm =
            |get: &mut dyn FnMut(&str) -> Result<Tensor>, prefix: &str| -> Result<LayerNorm> {
                Ok(LayerNorm {
                    weight: get(&format!("{prefix}.weight"))?.to_vec1()?,
                    bias: get(&format!("{prefix}.bias"))?.to_vec1()?,
                    eps,
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
        let position_and_type: Vec<f32> = positions
            .broadcast_add(&token_type)?
            .flatten_all()?
            .to_vec1()?;
        let embedding_norm = norm(&mut get, "embeddings.LayerNorm")?;
        Ok(FastBert {
            word: image.word_embeddings,
            position_and_type,
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

    /// How many transformer layers the network has.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The longest input the model takes, in tokens.
    pub fn max_positions(&self) -> usize {
        self.hyper.max_positions
    }

    /// Runs sequences packed one after another (`lengths[i]` tokens each, no padding)
    /// and returns the last hidden states, one row per token: `[tokens, hidden]`.
    ///
    /// Packing is what lets posts of mixed lengths share a pass without padding waste:
    /// the linear layers see every token as one row, and only attention needs to know
    /// where each post starts ([`attention`]).
    pub fn forward_packed(&self, ids: &[u32], lengths: &[usize]) -> Result<Tensor> {
        Ok(self.forward_packed_tapped(ids, lengths, &[])?.0)
    }

    /// [`forward_packed`](Self::forward_packed), also keeping the hidden states after
    /// each layer count in `taps` (0: the normalised embeddings), in the order given,
    /// packed like the last states; a count past the last layer keeps nothing (an empty
    /// vector). They cost a copy each: the pass itself is the same.
    pub fn forward_packed_tapped(
        &self,
        ids: &[u32],
        lengths: &[usize],
        taps: &[usize],
    ) -> Result<(Tensor, Vec<Vec<f32>>)> {
        let h = self.hyper.hidden;
        let longest = lengths.iter().copied().max().unwrap_or(0);
        if longest > self.hyper.max_positions {
            return Err(FormatError::TooManyTokens {
                tokens: longest,
                positions: self.hyper.max_positions,
            }
            .into());
        }
        let mut offsets = Vec::with_capacity(lengths.len() + 1);
        offsets.push(0usize);
        for &l in lengths {
            offsets.push(offsets[offsets.len() - 1] + l);
        }
        let tokens = offsets[lengths.len()];
        if tokens != ids.len() {
            return Err(FormatError::PackedLengths {
                ids: ids.len(),
                tokens,
            }
            .into());
        }
        if let Some(layers) = self.int8_layers() {
            let mut x = Vec::with_capacity(tokens * h);
            let mut kept = Tapped::new(taps);
            for posts in sub_passes(&offsets, SUB_PASS_TOKENS) {
                let first = offsets[posts.start];
                let local: Vec<usize> = offsets[posts.start..=posts.end]
                    .iter()
                    .map(|o| o - first)
                    .collect();
                let embedded = self.embed_rows(&ids[first..offsets[posts.end]], &local)?;
                let mut part = Tapped::new(taps);
                x.extend(self.forward_int8(&layers, embedded, &local, &mut part));
                kept.append(part);
            }
            return Ok((Tensor::from_vec(x, (tokens, h), &self.device)?, kept.states));
        }
        let rows = self.embed_rows(ids, &offsets)?;
        let mut kept = Tapped::new(taps);
        let mut x = Tensor::from_vec(rows, (tokens, h), &self.device)?;
        self.embedding_norm.apply(&x)?;
        let attend = PackedAttention {
            offsets: &offsets,
            heads: self.hyper.heads,
            hidden: h,
        };
        kept.offer_tensor(0, &x)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let context = layer.qkv.forward(&x)?.apply_op1_no_bwd(&attend)?;
            // Each product is a fresh tensor, so the residual add and the norm can
            // overwrite it.
            let attended = layer.attention_out.forward(&context)?;
            layer.attention_norm.apply_residual(&attended, &x)?;
            let out = layer
                .ffn_out
                .forward(&layer.ffn_in.forward_gelu(&attended)?)?;
            layer.output_norm.apply_residual(&out, &attended)?;
            x = out;
            kept.offer_tensor(i + 1, &x)?;
        }
        Ok((x, kept.states))
    }
}

impl FastBert {
    /// Word plus position-and-type embeddings of packed sequences (`offsets` from 0),
    /// one row per token, before the embedding norm.
    fn embed_rows(&self, ids: &[u32], offsets: &[usize]) -> Result<Vec<f32>> {
        let h = self.hyper.hidden;
        let mut rows = Vec::with_capacity(ids.len() * h);
        for w in offsets.windows(2) {
            for (position, &id) in ids[w[0]..w[1]].iter().enumerate() {
                let at = rows.len();
                self.word.push_row(id as usize, &mut rows)?;
                let extra = &self.position_and_type[position * h..(position + 1) * h];
                for (v, e) in rows[at..].iter_mut().zip(extra) {
                    *v += e;
                }
            }
        }
        Ok(rows)
    }
}

/// Tokens in one int8 sub-pass at most (a longer post goes alone). A pass over many
/// posts runs as several sub-passes: every row of a linear layer is independent and
/// attention stays inside a post, so the result is the same, but each intermediate
/// (the 1,536-wide feed-forward rows above all) is a sub-pass long instead of a batch
/// long. A batch of 64 sample posts held about 27 MB of them per pass, and with the
/// pass's buffers freed on whichever pool thread ran it, glibc kept that much in
/// each thread's arena.
const SUB_PASS_TOKENS: usize = 512;

/// Consecutive runs of posts (`offsets[i]..offsets[i + 1]` are post `i`'s tokens) of at
/// most `budget` tokens each, or one post when it alone is longer.
fn sub_passes(offsets: &[usize], budget: usize) -> Vec<std::ops::Range<usize>> {
    let posts = offsets.len().saturating_sub(1);
    let mut runs = Vec::new();
    let mut start = 0;
    for end in 1..=posts {
        if end - start > 1 && offsets[end] - offsets[start] > budget {
            runs.push(start..end - 1);
            start = end - 1;
        }
    }
    if start < posts {
        runs.push(start..posts);
    }
    runs
}

/// The hidden states a pass keeps beside its last ones: one packed copy per asked layer
/// count, in the order asked.
struct Tapped<'t> {
    taps: &'t [usize],
    states: Vec<Vec<f32>>,
}

impl<'t> Tapped<'t> {
    fn new(taps: &'t [usize]) -> Self {
        Tapped {
            taps,
            states: vec![Vec::new(); taps.len()],
        }
    }

    /// Keeps `x`, the states after `layers` layers, where that count was asked for.
    fn offer(&mut self, layers: usize, x: &[f32]) {
        for (tap, kept) in self.taps.iter().zip(&mut self.states) {
            if *tap == layers {
                kept.clear();
                kept.extend_from_slice(x);
            }
        }
    }

    /// Appends the states a later sub-pass kept (its posts follow this one's).
    fn append(&mut self, later: Tapped<'_>) {
        for (kept, more) in self.states.iter_mut().zip(later.states) {
            kept.extend(more);
        }
    }

    fn offer_tensor(&mut self, layers: usize, x: &Tensor) -> Result<()> {
        if self.taps.contains(&layers) {
            let rows = x.flatten_all()?.to_vec1::<f32>()?;
            self.offer(layers, &rows);
        }
        Ok(())
    }
}

/// One layer's int8 products, borrowed for [`FastBert::forward_int8`].
struct Int8Layer<'a> {
    qkv: &'a QuantizedLinear,
    attention_out: &'a QuantizedLinear,
    ffn_in: &'a QuantizedLinear,
    ffn_out: &'a QuantizedLinear,
}

impl FastBert {
    /// Every layer's products when all are int8 (the f32 precision has none).
    fn int8_layers(&self) -> Option<Vec<Int8Layer<'_>>> {
        fn int8(l: &Linear) -> Option<&QuantizedLinear> {
            match l {
                Linear::Int8(q) => Some(q),
                Linear::F32 { .. } => None,
            }
        }
        self.layers
            .iter()
            .map(|l| {
                Some(Int8Layer {
                    qkv: int8(&l.qkv)?,
                    attention_out: int8(&l.attention_out)?,
                    ffn_in: int8(&l.ffn_in)?,
                    ffn_out: int8(&l.ffn_out)?,
                })
            })
            .collect()
    }

    /// The int8 forward on plain vectors: every layer norm quantises its rows for the
    /// product that reads them next, in the same pass over each row, and GELU does the
    /// same for the second feed-forward layer. Through candle tensors each of these was
    /// a separate pass that streamed the rows through memory once more.
    fn forward_int8(
        &self,
        layers: &[Int8Layer<'_>],
        embedded: Vec<f32>,
        offsets: &[usize],
        kept: &mut Tapped<'_>,
    ) -> Vec<f32> {
        let m = offsets.last().copied().unwrap_or(0);
        let mut x = embedded;
        let Some(first) = layers.first() else {
            norm_rows(&mut x, None, &self.embedding_norm);
            kept.offer(0, &x);
            return x;
        };
        let mut rows = norm_and_quantize(&mut x, None, &self.embedding_norm, first.qkv);
        kept.offer(0, &x);
        for (i, (layer, norms)) in layers.iter().zip(&self.layers).enumerate() {
            let qkv = layer.qkv.forward_rows_to_vec(&rows, m);
            let context = attention_to_vec(&qkv, offsets, self.hyper.heads, self.hyper.hidden);
            drop(qkv);
            let mut attended = layer.attention_out.forward_to_vec(&context, m);
            drop(context);
            let inner_rows =
                norm_and_quantize(&mut attended, Some(&x), &norms.attention_norm, layer.ffn_in);
            let mut inner = layer.ffn_in.forward_rows_to_vec(&inner_rows, m);
            let gelu = |_: usize, row: &mut [f32]| gelu_in_place(row);
            let outer_rows = layer.ffn_out.quantize_input_mapped(&mut inner, m, &gelu);
            drop(inner);
            let mut out = layer.ffn_out.forward_rows_to_vec(&outer_rows, m);
            match layers.get(i + 1) {
                Some(next) => {
                    rows =
                        norm_and_quantize(&mut out, Some(&attended), &norms.output_norm, next.qkv)
                }
                None => norm_rows(&mut out, Some(&attended), &norms.output_norm),
            }
            x = out;
            kept.offer(i + 1, &x);
        }
        x
    }
}

/// `x ← LayerNorm(x + residual)` row by row, each row then quantised for `next`.
fn norm_and_quantize(
    x: &mut [f32],
    residual: Option<&[f32]>,
    norm: &LayerNorm,
    next: &QuantizedLinear,
) -> QuantizedRows {
    let n = norm.weight.len().max(1);
    let m = x.len() / n;
    let map = |i: usize, row: &mut [f32]| {
        let residual = residual.map(|r| &r[i * n..(i + 1) * n]);
        layer_norm_rows(row, residual, &norm.weight, &norm.bias, norm.eps);
    };
    next.quantize_input_mapped(x, m, &map)
}

/// `x ← LayerNorm(x + residual)` row by row, in parallel.
fn norm_rows(x: &mut [f32], residual: Option<&[f32]>, norm: &LayerNorm) {
    let n = norm.weight.len().max(1);
    let rows = rows_per_task(n);
    x.par_chunks_mut(n * rows)
        .enumerate()
        .for_each(|(i, chunk)| {
            let residual = residual.map(|r| &r[i * n * rows..i * n * rows + chunk.len()]);
            layer_norm_rows(chunk, residual, &norm.weight, &norm.bias, norm.eps);
        });
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
        let mut out = self.layer.forward_to_vec(data, m);
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

/// Self-attention over packed sequences as a candle op: fused QKV rows in, context rows
/// out (see [`attention`]).
struct PackedAttention<'a> {
    offsets: &'a [usize],
    heads: usize,
    hidden: usize,
}

impl CustomOp1 for PackedAttention<'_> {
    fn name(&self) -> &'static str {
        "vigie-packed-attention"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = contiguous_f32(storage, layout, self.name())?;
        let tokens = self.offsets.last().copied().unwrap_or(0);
        if layout.dims() != [tokens, 3 * self.hidden] {
            candle_core::bail!("packed-attention: unexpected shape {:?}", layout.dims());
        }
        let out = attention_to_vec(data, self.offsets, self.heads, self.hidden);
        Ok((CpuStorage::F32(out), Shape::from((tokens, self.hidden))))
    }
}

/// Layer normalisation in place, after adding a residual for the two-input form: one
/// pass per row, no new buffer (see [`layer_norm_rows`]).
struct NormInPlace<'a> {
    norm: &'a LayerNorm,
}

impl NormInPlace<'_> {
    fn run(&self, x: &mut [f32], residual: Option<&[f32]>) -> candle_core::Result<()> {
        let n = self.norm.weight.len();
        if n == 0 || !x.len().is_multiple_of(n) || residual.is_some_and(|r| r.len() != x.len()) {
            candle_core::bail!(
                "layer-norm: {} values (residual {:?}) are not rows of {n}",
                x.len(),
                residual.map(<[f32]>::len)
            );
        }
        let rows = rows_per_task(n);
        let (weight, bias, eps) = (&self.norm.weight, &self.norm.bias, self.norm.eps);
        x.par_chunks_mut(n * rows)
            .enumerate()
            .for_each(|(i, chunk)| {
                let residual = residual.map(|r| &r[i * n * rows..i * n * rows + chunk.len()]);
                layer_norm_rows(chunk, residual, weight, bias, eps);
            });
        Ok(())
    }
}

fn contiguous_f32_mut<'s>(
    storage: &'s mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'s mut [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: f32 input expected");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous input expected");
    };
    Ok(&mut data[start..end])
}

impl InplaceOp1 for NormInPlace<'_> {
    fn name(&self) -> &'static str {
        "vigie-layer-norm"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let x = contiguous_f32_mut(storage, layout, "vigie-layer-norm")?;
        self.run(x, None)
    }
}

impl InplaceOp2 for NormInPlace<'_> {
    fn name(&self) -> &'static str {
        "vigie-add-layer-norm"
    }

    fn cpu_fwd(
        &self,
        storage: &mut CpuStorage,
        layout: &Layout,
        residual: &CpuStorage,
        residual_layout: &Layout,
    ) -> candle_core::Result<()> {
        let op = "vigie-add-layer-norm";
        let residual = contiguous_f32(residual, residual_layout, op)?;
        let x = contiguous_f32_mut(storage, layout, op)?;
        self.run(x, Some(residual))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e5_file::E5Image;
    use crate::encoder::testing::tiny_image_bytes;
    use candle_core::DType;

    #[test]
    fn taps_keep_the_states_after_the_layers_asked() {
        let ids = [5u32, 9, 11, 7, 3];
        let lengths = [3usize, 2];
        let mut taps_by_precision = Vec::new();
        for precision in [
            Precision::F32,
            Precision::Int8(crate::kernels::Kernel::detect()),
        ] {
            let image = E5Image::parse(&tiny_image_bytes(3), &Device::Cpu).unwrap();
            let model = FastBert::from_image_with(image, precision).unwrap();
            let depth = model.depth();
            let (last, tapped) = model
                .forward_packed_tapped(&ids, &lengths, &[depth, 0, depth + 5, 1])
                .unwrap();
            let last: Vec<f32> = last.flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(tapped.len(), 4, "one entry per tap, in the order asked");
            // After the first layer: neither its input nor the top.
            assert_eq!(tapped[3].len(), last.len());
            assert!(depth > 1 && tapped[3] != last && tapped[3] != tapped[1]);
            taps_by_precision.push(tapped[3].clone());
            assert_eq!(
                tapped[0], last,
                "{precision:?}: the top tap is the last states"
            );
            assert_eq!(
                tapped[1].len(),
                last.len(),
                "{precision:?}: every token's row"
            );
            assert_ne!(
                tapped[1], last,
                "{precision:?}: the embeddings differ from the top"
            );
            assert!(tapped[2].is_empty(), "{precision:?}: no layer that deep");
            let plain: Vec<f32> = model
                .forward_packed(&ids, &lengths)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(
                plain, last,
                "{precision:?}: tapping leaves the pass unchanged"
            );
        }
        // The int8 pass keeps the same intermediate states as the f32 one, row by row.
        let (f32_rows, int8_rows) = (&taps_by_precision[0], &taps_by_precision[1]);
        let h = f32_rows.len() / ids.len();
        for (a, b) in f32_rows.chunks_exact(h).zip(int8_rows.chunks_exact(h)) {
            let c = crate::encoder::cosine(a, b);
            assert!(c > 0.99, "a token's state after layer 1: cosine {c} to f32");
        }
    }

    #[test]
    fn sub_passes_hold_a_budget_of_tokens_and_keep_posts_whole() {
        // Posts of 3, 4, 2, 9 and 1 tokens.
        let offsets = [0, 3, 7, 9, 18, 19];
        assert_eq!(sub_passes(&offsets, 9), vec![0..3, 3..4, 4..5]);
        assert_eq!(sub_passes(&offsets, 7), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(sub_passes(&offsets, 100), vec![0..5]);
        // A post longer than the budget goes alone.
        assert_eq!(sub_passes(&offsets, 1), vec![0..1, 1..2, 2..3, 3..4, 4..5]);
        assert!(sub_passes(&[0], 9).is_empty());
    }

    #[test]
    fn a_pass_split_into_sub_passes_equals_each_post_alone() {
        let image = E5Image::parse(&tiny_image_bytes(5), &Device::Cpu).unwrap();
        let model =
            FastBert::from_image_with(image, Precision::Int8(crate::kernels::Kernel::detect()))
                .unwrap();
        let mut rng = crate::rng::XorShift::new(11);
        let vocab = model.word.rows() as u64;
        let lengths: Vec<usize> = (0..96)
            .map(|_| 1 + (rng.next_u64() % model.max_positions() as u64) as usize)
            .collect();
        let tokens: usize = lengths.iter().sum();
        assert!(
            tokens > 2 * SUB_PASS_TOKENS,
            "the batch needs several sub-passes"
        );
        let ids: Vec<u32> = (0..tokens)
            .map(|_| (rng.next_u64() % vocab) as u32)
            .collect();
        let taps = [1, 0, model.depth()];
        let (all, all_taps) = model.forward_packed_tapped(&ids, &lengths, &taps).unwrap();
        let all: Vec<f32> = all.flatten_all().unwrap().to_vec1().unwrap();
        let (mut alone, mut alone_taps) = (Vec::new(), vec![Vec::new(); taps.len()]);
        let mut from = 0;
        for &l in &lengths {
            let (x, t) = model
                .forward_packed_tapped(&ids[from..from + l], &[l], &taps)
                .unwrap();
            alone.extend(x.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            for (kept, more) in alone_taps.iter_mut().zip(t) {
                kept.extend(more);
            }
            from += l;
        }
        // Rows are independent and attention stays in a post: the same bits.
        assert_eq!(all, alone);
        assert_eq!(all_taps, alone_taps);
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
}
