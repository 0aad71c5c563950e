//! Sentence embeddings with multilingual-e5-small on candle.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::e5_file::E5Image;
use crate::encoded::{mean_normalised, EncodedBatch, EncodedText};
use crate::fast_bert::{FastBert, Precision};
use crate::lean_unigram::{self, LeanTokenizer};
use crate::{ModelError, Result, TokenizerError};

/// E5 models are trained with this prefix on queries; symmetric tasks such as
/// classification and claim matching use it on both sides.
pub const EMBEDDING_PREFIX: &str = "query: ";
/// Name of the packed weight file in a model directory.
pub const WEIGHTS_FILE: &str = "e5-small-q4.bin";
/// Name of the Hugging Face tokenizer file in a model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Model name reported in screened records.
pub const MODEL_NAME: &str = "multilingual-e5-small-q4";

/// Texts longer than this many tokens are truncated (posts rarely are; it bounds cost).
pub const MAX_TOKENS: usize = 256;
/// Tokens per encoder pass. Posts are packed without padding, so a pass can hold many:
/// larger passes give the int8 products longer runs of rows per weight load. On the
/// sample posts at batch 64 (`embed_bench`, 2-core AVX-512 VNNI machine, one sitting),
/// 2,048 ran about as fast as 4,096 and faster than 512; smaller passes keep a pass's
/// activations in cache.
const TOKENS_PER_PASS: usize = 2048;

/// Which hidden layers a post's features pool beside the last one: every second layer
/// below the top, this many of them (after layers 10, 8 and 6 of e5-small's 12). The
/// misinformation head reads them: a mean of the last layer is what e5 was trained to
/// make similar for texts that mean the same, and it keeps the topic and little else; the
/// layers below keep more of the words and their order. Measured with a probe (the same
/// head on the tune side, scored on the measure side): CONSTRAINT val ROC-AUC 0.968 →
/// 0.979, French spreading posts recalled 30 % → 65 % at the same flag rate on ordinary
/// posts.
const FEATURE_TAPS: usize = 3;
const FEATURE_TAP_STEP: usize = 2;

/// The layer counts [`Encoder::features`] pools for a network of `depth` layers, highest
/// first (0, the normalised embeddings, for a network too shallow to have them).
fn feature_taps(depth: usize) -> Vec<usize> {
    (1..=FEATURE_TAPS)
        .filter_map(|i| depth.checked_sub(i * FEATURE_TAP_STEP))
        .collect()
}

/// What one pass gives: the last states, the tapped layers' states, and where each text's
/// rows start.
type Passed = (Vec<f32>, Vec<Vec<f32>>, Vec<usize>);

/// The network under the encoder. Both compute the same function; the reference is
/// candle-transformers' `BertModel`, kept to check the fast one against (tests and
/// `embed_bench --reference`).
pub enum Backbone {
    /// The forward pass used in production ([`FastBert`]).
    Fast(FastBert),
    /// candle-transformers' `BertModel`.
    Reference(BertModel),
}

/// The tokenizer in front of the network: the lean Unigram model that `Encoder::load`
/// reads (same ids, a twentieth of the memory, see [`lean_unigram`]), or any tokenizer
/// of the `tokenizers` crate (tests use tiny word-level ones; a `tokenizer.json` the lean
/// model cannot run falls back to it).
pub enum TextTokenizer {
    /// The lean Unigram model.
    Lean(Box<LeanTokenizer>),
    /// A `tokenizers` crate tokenizer.
    Hf(Box<Tokenizer>),
}

impl From<Tokenizer> for TextTokenizer {
    fn from(t: Tokenizer) -> Self {
        TextTokenizer::Hf(Box::new(t))
    }
}

impl From<LeanTokenizer> for TextTokenizer {
    fn from(t: LeanTokenizer) -> Self {
        TextTokenizer::Lean(Box::new(t))
    }
}

impl TextTokenizer {
    /// Reads `tokenizer.json` into the lean model, or into the `tokenizers` crate's own
    /// when the lean one cannot run it (logged).
    pub fn from_file(path: &Path) -> Result<Self> {
        match lean_unigram::load(path) {
            Ok(t) => Ok(t.into()),
            Err(e) => {
                tracing::warn!(error = %e, "lean tokenizer unavailable, using the tokenizers crate's model");
                Ok(Tokenizer::from_file(path)
                    .map_err(|source| TokenizerError::Load {
                        path: path.to_path_buf(),
                        source,
                    })?
                    .into())
            }
        }
    }

    /// Whether the lean model runs.
    pub fn is_lean(&self) -> bool {
        matches!(self, TextTokenizer::Lean(_))
    }

    fn configure(&mut self, max_length: usize) -> Result<()> {
        let truncation = Some(TruncationParams {
            max_length,
            ..Default::default()
        });
        match self {
            TextTokenizer::Lean(t) => {
                t.with_padding(None);
                t.with_truncation(truncation)
                    .map_err(TokenizerError::Truncation)?;
            }
            TextTokenizer::Hf(t) => {
                t.with_padding(None);
                t.with_truncation(truncation)
                    .map_err(TokenizerError::Truncation)?;
            }
        }
        Ok(())
    }

    /// Encodes texts with special tokens; offsets in bytes, or in characters when asked.
    pub fn encode_batch(&self, texts: Vec<String>, char_offsets: bool) -> Result<Vec<Encoding>> {
        let encoded = match (self, char_offsets) {
            (TextTokenizer::Lean(t), false) => t.encode_batch(texts, true),
            (TextTokenizer::Lean(t), true) => t.encode_batch_char_offsets(texts, true),
            (TextTokenizer::Hf(t), false) => t.encode_batch(texts, true),
            (TextTokenizer::Hf(t), true) => t.encode_batch_char_offsets(texts, true),
        };
        Ok(encoded.map_err(TokenizerError::Encode)?)
    }
}

/// Texts to sentence embeddings: the tokenizer and the network, with their settings.
pub struct Encoder {
    model: Backbone,
    tokenizer: TextTokenizer,
    pad_id: u32,
    device: Device,
    dim: usize,
    /// Hidden layers pooled into a post's features beside the last ([`feature_taps`];
    /// none on the reference network).
    taps: Vec<usize>,
}

impl Encoder {
    /// Loads `e5-small-q4.bin` and `tokenizer.json` from a model directory, in the
    /// precision [`Precision::from_env`] gives (int8 unless `VIGIE_ENCODER_PRECISION=f32`).
    pub fn load(model_dir: &Path) -> Result<Self> {
        Self::load_with(model_dir, false)
    }

    /// As [`Encoder::load`], on candle-transformers' `BertModel` when `reference` is set.
    pub fn load_with(model_dir: &Path, reference: bool) -> Result<Self> {
        let (image, tokenizer) = Self::read_files(model_dir)?;
        if reference {
            Self::reference_from_image(image, tokenizer)
        } else {
            Self::from_image(image, tokenizer)
        }
    }

    /// As [`Encoder::load`], in the given precision (training asks for f32 so that the
    /// heads it fits do not depend on the machine's kernel).
    pub fn load_precision(model_dir: &Path, precision: Precision) -> Result<Self> {
        let (image, tokenizer) = Self::read_files(model_dir)?;
        Self::from_image_with(image, tokenizer, precision)
    }

    fn read_files(model_dir: &Path) -> Result<(E5Image, TextTokenizer)> {
        let weights = model_dir.join(WEIGHTS_FILE);
        let tokenizer = model_dir.join(TOKENIZER_FILE);
        for path in [&weights, &tokenizer] {
            if !path.is_file() {
                return Err(ModelError::Missing { path: path.clone() });
            }
        }
        let bytes = std::fs::read(&weights).map_err(|source| ModelError::Io {
            path: weights.clone(),
            source,
        })?;
        let device = Device::Cpu;
        let image = E5Image::parse(&bytes, &device)?;
        drop(bytes);
        let tokenizer = TextTokenizer::from_file(&tokenizer)?;
        Ok((image, tokenizer))
    }

    /// An encoder on [`FastBert`] from a parsed image and a tokenizer, in the precision
    /// [`Precision::from_env`] gives.
    pub fn from_image(image: E5Image, tokenizer: impl Into<TextTokenizer>) -> Result<Self> {
        Self::from_image_with(image, tokenizer, Precision::from_env())
    }

    /// An encoder on [`FastBert`] in the given precision.
    pub fn from_image_with(
        image: E5Image,
        tokenizer: impl Into<TextTokenizer>,
        precision: Precision,
    ) -> Result<Self> {
        let pad_id = image.pad_id;
        let model = FastBert::from_image_with(image, precision)?;
        let (dim, positions) = (model.hidden_size(), model.max_positions());
        Self::from_parts(Backbone::Fast(model), tokenizer, pad_id, dim, positions)
    }

    /// An encoder on candle-transformers' `BertModel` from a parsed image and a tokenizer.
    pub fn reference_from_image(
        image: E5Image,
        tokenizer: impl Into<TextTokenizer>,
    ) -> Result<Self> {
        let device = Device::Cpu;
        let config = image.hyper.bert_config(image.pad_id as usize);
        let vb = VarBuilder::from_tensors(image.bert_tensors(&device)?, DType::F32, &device);
        let model = BertModel::load(vb, &config)?;
        Self::from_parts(
            Backbone::Reference(model),
            tokenizer,
            image.pad_id,
            config.hidden_size,
            config.max_position_embeddings,
        )
    }

    /// Assembles an encoder from a loaded model; tests build tiny random ones this way.
    pub fn from_parts(
        model: Backbone,
        tokenizer: impl Into<TextTokenizer>,
        pad_id: u32,
        dim: usize,
        max_positions: usize,
    ) -> Result<Self> {
        let mut tokenizer = tokenizer.into();
        tokenizer.configure(MAX_TOKENS.min(max_positions))?;
        let taps = match &model {
            Backbone::Fast(fast) => feature_taps(fast.depth()),
            Backbone::Reference(_) => Vec::new(),
        };
        Ok(Encoder {
            model,
            tokenizer,
            pad_id,
            device: Device::Cpu,
            dim,
            taps,
        })
    }

    /// The layer counts whose states a pass taps for the features, highest first (none on
    /// the reference network).
    pub fn taps(&self) -> &[usize] {
        &self.taps
    }

    /// The arithmetic of the fast network, or `None` on the reference `BertModel`.
    pub fn precision(&self) -> Option<Precision> {
        match &self.model {
            Backbone::Fast(model) => Some(model.precision()),
            Backbone::Reference(_) => None,
        }
    }

    /// The tokenizer in front of the network.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Dimension of the embeddings.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Width of a post's features ([`Encoder::features`]): the embedding, then one
    /// pooled vector per tapped layer. Every head reads a prefix of them: a head as wide
    /// as the embedding reads the embedding alone.
    pub fn feature_dim(&self) -> usize {
        self.dim * (1 + self.taps.len())
    }

    /// How many tokens each text is run as (prefix and special tokens included, after
    /// truncation): what the cost of embedding it depends on.
    pub fn token_counts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<usize>> {
        Ok(self
            .tokenize(texts)?
            .iter()
            .map(|e| e.get_ids().len())
            .collect())
    }

    /// The token ids the encoder runs for each text: prefixed, truncated, unpadded.
    fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Encoding>> {
        let prefixed: Vec<String> = texts
            .iter()
            .map(|t| format!("{EMBEDDING_PREFIX}{}", t.as_ref()))
            .collect();
        self.tokenizer.encode_batch(prefixed, false)
    }

    /// Embeds texts (the `query: ` prefix is added here), returning one L2-normalised
    /// vector per text, in input order.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        self.pooled(texts, &[])
    }

    /// A post's features, one vector of [`Encoder::feature_dim`] values per text: its
    /// embedding (what [`Encoder::embed`] gives), then the mean of each tapped layer's
    /// states, each scaled to unit length. One pass, as for the embedding alone.
    pub fn features<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        self.pooled(texts, &self.taps)
    }

    /// The embedding of each text followed by the pooled states of each layer count in
    /// `taps`; with no taps, the embedding alone (and no tapped layer is copied).
    fn pooled<S: AsRef<str>>(&self, texts: &[S], taps: &[usize]) -> Result<Vec<Vec<f32>>> {
        let encodings = self.tokenize(texts)?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let mut out = vec![Vec::new(); ids.len()];
        let d = self.dim.max(1);
        for chunk in self.passes(&ids) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i]).collect();
            let (states, tapped, offsets) = self.run(&batch, taps)?;
            for (row, &i) in chunk.iter().enumerate() {
                let (start, end) = (offsets[row] * self.dim, offsets[row + 1] * self.dim);
                let mut v = mean_normalised(states[start..end].chunks_exact(d), self.dim);
                for layer in &tapped {
                    v.extend(mean_normalised(layer[start..end].chunks_exact(d), self.dim));
                }
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Groups texts (by index) into encoder passes: sorted by length, so the reference
    /// network's padding stays small, and cut at [`TOKENS_PER_PASS`] tokens.
    fn passes(&self, ids: &[&[u32]]) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let budget = TOKENS_PER_PASS;
        let mut passes: Vec<Vec<usize>> = Vec::new();
        let mut tokens = 0;
        for i in order {
            let n = ids[i].len();
            match passes.last_mut() {
                Some(pass) if tokens + n <= budget => pass.push(i),
                _ => {
                    passes.push(vec![i]);
                    tokens = 0;
                }
            }
            tokens += n;
        }
        passes
    }

    /// One pass over `texts`: every token's state and the part of its text it stands
    /// for (see [`EncodedBatch`]), in input order.
    pub fn encode<S: AsRef<str>>(&self, texts: &[S]) -> Result<EncodedBatch> {
        let prefix_chars = EMBEDDING_PREFIX.chars().count();
        let prefixed: Vec<String> = texts
            .iter()
            .map(|t| format!("{EMBEDDING_PREFIX}{}", t.as_ref()))
            .collect();
        let encodings = self.tokenizer.encode_batch(prefixed, true)?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let mut out: Vec<Option<EncodedText>> = vec![None; encodings.len()];
        for chunk in self.passes(&ids) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i]).collect();
            let (states, tapped, offsets) = self.run(&batch, &self.taps)?;
            for (row, &i) in chunk.iter().enumerate() {
                let e = &encodings[i];
                let start = offsets[row] * self.dim;
                let end = offsets[row + 1] * self.dim;
                let chars: Vec<char> = texts[i].as_ref().chars().collect();
                let spans = e
                    .get_offsets()
                    .iter()
                    .zip(e.get_special_tokens_mask())
                    .map(|(&(s, end), &special)| {
                        // Word-initial tokens may start on the space before their word
                        // (the prefix's own, for the first word): spans start on the word.
                        let end = end.checked_sub(prefix_chars)?.min(chars.len());
                        let mut s = s.saturating_sub(prefix_chars);
                        while s < end && chars[s].is_whitespace() {
                            s += 1;
                        }
                        (special == 0 && s < end).then_some((s, end))
                    })
                    .collect();
                out[i] = Some(EncodedText {
                    ids: e.get_ids().to_vec(),
                    spans,
                    states: states[start..end].to_vec(),
                    tapped: tapped.iter().map(|l| l[start..end].to_vec()).collect(),
                    dim: self.dim,
                });
            }
        }
        Ok(EncodedBatch {
            texts: out.into_iter().flatten().collect(),
        })
    }

    /// The last hidden states of one pass, packed (one row of `dim` values per token,
    /// the texts one after another), those after each layer count of `taps` packed
    /// alike (none on the reference network), and where each text's rows start (plus
    /// the total).
    fn run(&self, batch: &[&[u32]], taps: &[usize]) -> Result<Passed> {
        let mut offsets = Vec::with_capacity(batch.len() + 1);
        offsets.push(0);
        for ids in batch {
            offsets.push(offsets[offsets.len() - 1] + ids.len());
        }
        let (states, tapped) = match &self.model {
            Backbone::Fast(model) => {
                let ids: Vec<u32> = batch.concat();
                let lengths: Vec<usize> = batch.iter().map(|ids| ids.len()).collect();
                // The whole pass on the pool's threads: its many parallel steps are
                // then forked from a worker (the sibling is usually still spinning)
                // instead of injected from outside, where each step cost the caller a
                // sleep and a wake-up.
                let (last, tapped) =
                    rayon::scope(|_| model.forward_packed_tapped(&ids, &lengths, taps))?;
                (last.flatten_all()?.to_vec1::<f32>()?, tapped)
            }
            Backbone::Reference(model) => {
                // candle-transformers' BertModel takes a padded batch and a mask; its
                // padding rows are dropped afterwards.
                let width = batch.iter().map(|ids| ids.len()).max().unwrap_or(0).max(1);
                let mut flat_ids = Vec::with_capacity(batch.len() * width);
                let mut flat_mask = Vec::with_capacity(batch.len() * width);
                for ids in batch {
                    flat_ids.extend_from_slice(ids);
                    flat_ids.extend(std::iter::repeat_n(self.pad_id, width - ids.len()));
                    flat_mask.extend(std::iter::repeat_n(1u32, ids.len()));
                    flat_mask.extend(std::iter::repeat_n(0u32, width - ids.len()));
                }
                let shape = (batch.len(), width);
                let input_ids = Tensor::from_vec(flat_ids, shape, &self.device)?;
                let mask = Tensor::from_vec(flat_mask, shape, &self.device)?;
                let type_ids = input_ids.zeros_like()?;
                let padded = model
                    .forward(&input_ids, &type_ids, Some(&mask))?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                let mut states = Vec::with_capacity(offsets[batch.len()] * self.dim);
                for (row, ids) in batch.iter().enumerate() {
                    let start = row * width * self.dim;
                    states.extend_from_slice(&padded[start..start + ids.len() * self.dim]);
                }
                (states, Vec::new())
            }
        };
        Ok((states, tapped, offsets))
    }
}

/// Where model files live unless the user says otherwise: `$VIGIE_MODEL_DIR`, else the
/// user cache directory.
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VIGIE_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("vigie").join("multilingual-e5-small")
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A tiny random-weight BERT with a whitespace word-level tokenizer, for tests that must
/// run the real code path without downloading the model.
#[doc(hidden)]
pub mod testing {
    use super::*;
    use crate::e5_file::writer::{quantize_q4_0, write, Data};
    use crate::e5_file::Hyper;
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;

    pub const VOCAB: &[&str] = &[
        "<s>", "<pad>", "</s>", "<unk>", "query:", "vaccine", "vaccin", "autism", "autisme",
        "causes", "cause", "the", "le", "measles", "rougeole", "is", "est", "safe", "sûr", "5g",
    ];

    pub fn tiny_tokenizer() -> Tokenizer {
        let vocab = VOCAB
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), i as u32))
            .collect();
        let model = WordLevel::builder()
            .vocab(vocab)
            .unk_token("<unk>".into())
            .build()
            .expect("word-level vocab");
        let mut tok = Tokenizer::new(model);
        tok.with_pre_tokenizer(Some(Whitespace {}));
        tok
    }

    /// A deterministic pseudo-random image (xorshift), written and read back through the
    /// real file format so the loader is exercised too.
    pub fn tiny_image_bytes(seed: u64) -> Vec<u8> {
        tiny_image_bytes_of_depth(seed, 2)
    }

    /// [`tiny_image_bytes`] with `layers` transformer layers.
    pub fn tiny_image_bytes_of_depth(seed: u64, layers: usize) -> Vec<u8> {
        let hyper = Hyper {
            hidden: 32,
            layers,
            heads: 2,
            ffn: 64,
            vocab_rows: VOCAB.len(),
            max_positions: 32,
            type_vocab: 2,
            layer_norm_eps: 1e-12,
        };
        let mut rng = crate::rng::XorShift::new(seed);
        let mut rand = move |n: usize, scale: f32| rng.vec(n, scale);
        let h = hyper.hidden;
        let mut t: Vec<(String, Data)> = vec![
            (
                "emb.word".into(),
                Data::Q4(quantize_q4_0(&rand(hyper.vocab_rows * h, 1.0))),
            ),
            (
                "emb.pos".into(),
                Data::F32(rand(hyper.max_positions * h, 0.1)),
            ),
            ("emb.type".into(), Data::F32(rand(2 * h, 0.1))),
            ("emb.ln.w".into(), Data::F32(vec![1.0; h])),
            ("emb.ln.b".into(), Data::F32(vec![0.0; h])),
        ];
        for l in 0..hyper.layers {
            for (name, out, inp) in [
                ("q", h, h),
                ("k", h, h),
                ("v", h, h),
                ("ao", h, h),
                ("fi", hyper.ffn, h),
                ("fo", h, hyper.ffn),
            ] {
                t.push((
                    format!("l{l}.{name}.w"),
                    Data::Q4(quantize_q4_0(&rand(out * inp, 0.3))),
                ));
                t.push((format!("l{l}.{name}.b"), Data::F32(rand(out, 0.05))));
            }
            for name in ["aln", "oln"] {
                t.push((format!("l{l}.{name}.w"), Data::F32(vec![1.0; h])));
                t.push((format!("l{l}.{name}.b"), Data::F32(vec![0.0; h])));
            }
        }
        write(&hyper, 1, &t)
    }

    pub fn tiny_encoder(seed: u64) -> Encoder {
        let image =
            E5Image::parse(&tiny_image_bytes(seed), &Device::Cpu).expect("tiny image parses");
        Encoder::from_image(image, tiny_tokenizer()).expect("tiny encoder builds")
    }

    /// A tiny random encoder in the given precision.
    pub fn tiny_encoder_with(seed: u64, precision: crate::fast_bert::Precision) -> Encoder {
        let image =
            E5Image::parse(&tiny_image_bytes(seed), &Device::Cpu).expect("tiny image parses");
        Encoder::from_image_with(image, tiny_tokenizer(), precision).expect("tiny encoder builds")
    }

    /// The same tiny model on candle-transformers' `BertModel`.
    pub fn tiny_reference_encoder(seed: u64) -> Encoder {
        let image =
            E5Image::parse(&tiny_image_bytes(seed), &Device::Cpu).expect("tiny image parses");
        Encoder::reference_from_image(image, tiny_tokenizer()).expect("tiny encoder builds")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{tiny_encoder, tiny_encoder_with, tiny_reference_encoder};
    use super::*;

    #[test]
    fn fast_forward_agrees_with_candles_bert_model() {
        for seed in [1, 2, 9] {
            let (fast, reference) = (
                tiny_encoder_with(seed, Precision::F32),
                tiny_reference_encoder(seed),
            );
            let texts = [
                "vaccine causes autism",
                "le vaccin est sûr",
                "measles",
                "the measles vaccine is safe the vaccine is safe",
                "",
            ];
            let a = fast.embed(&texts).unwrap();
            let b = reference.embed(&texts).unwrap();
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                let c = cosine(x, y);
                assert!(c > 0.99999, "seed {seed}, text {i}: cosine {c}");
            }
        }
    }

    /// Every int8 kernel this machine may use stays within a cosine of 0.99 of the f32
    /// network on random weights (the real model's figure is in the encoder bench), and
    /// all kernels give the same embedding (they compute the same integer sums).
    #[test]
    fn int8_kernels_agree_with_f32_and_with_each_other() {
        let texts = [
            "vaccine causes autism",
            "le vaccin est sûr",
            "measles",
            "the measles vaccine is safe the vaccine is safe",
        ];
        for seed in [1, 2] {
            let f32_vectors = tiny_encoder_with(seed, Precision::F32)
                .features(&texts)
                .unwrap();
            let mut first: Option<Vec<Vec<f32>>> = None;
            for kernel in crate::kernels::Kernel::available() {
                let enc = tiny_encoder_with(seed, Precision::Int8(kernel));
                assert_eq!(enc.precision(), Some(Precision::Int8(kernel)));
                // The features: the embedding and each tapped layer's mean.
                let vectors = enc.features(&texts).unwrap();
                for (x, y) in vectors.iter().zip(&f32_vectors) {
                    for (x, y) in x.chunks_exact(enc.dim()).zip(y.chunks_exact(enc.dim())) {
                        let c = cosine(x, y);
                        assert!(c > 0.99, "{}: cosine {c} to f32", kernel.name());
                    }
                }
                if let Some(first) = &first {
                    for (x, y) in vectors.iter().zip(first) {
                        let c = cosine(x, y);
                        assert!(
                            c > 0.99999,
                            "{}: cosine {c} to another kernel",
                            kernel.name()
                        );
                    }
                } else {
                    first = Some(vectors);
                }
            }
        }
    }

    #[test]
    fn feature_taps_are_every_second_layer_below_the_top() {
        assert_eq!(feature_taps(12), vec![10, 8, 6]);
        assert_eq!(feature_taps(4), vec![2, 0]);
        assert_eq!(feature_taps(2), vec![0], "the normalised embeddings");
        assert!(feature_taps(1).is_empty());
    }

    #[test]
    fn features_start_with_the_embedding_and_pool_each_tapped_layer() {
        let enc = tiny_encoder(5);
        let d = enc.dim();
        assert_eq!(
            enc.feature_dim(),
            2 * d,
            "the tiny network has two layers: one tap"
        );
        let texts = ["vaccine causes autism", "le vaccin", "measles is the 5g"];
        let features = enc.features(&texts).unwrap();
        let embedded = enc.embed(&texts).unwrap();
        let batch = enc.encode(&texts).unwrap();
        for (i, f) in features.iter().enumerate() {
            assert_eq!(f.len(), enc.feature_dim());
            assert_eq!(f[..d], embedded[i], "text {i}: the embedding comes first");
            for block in f.chunks_exact(d) {
                let norm: f32 = block.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-4, "text {i}: block norm {norm}");
            }
            assert!(
                cosine(&f[..d], &f[d..]) < 0.999,
                "text {i}: the tap is its own layer"
            );
            let from_pass = batch.texts[i].features_without(&[]);
            for (a, b) in from_pass.chunks_exact(d).zip(f.chunks_exact(d)) {
                assert!(
                    cosine(a, b) > 0.99999,
                    "text {i}: one pass, the same features"
                );
            }
        }
        // Leaving a token out changes every block, as redaction must.
        let first = &batch.texts[0];
        let without = first.features_without(&[(4, 11)]);
        assert_eq!(without[..d], first.pooled_without(&[(4, 11)]));
        assert!(cosine(&without[d..], &features[0][d..]) < 0.99999);
        assert_eq!(
            tiny_reference_encoder(5).feature_dim(),
            d,
            "the reference network taps nothing"
        );
    }

    #[test]
    fn embeddings_are_unit_length_and_deterministic() {
        let enc = tiny_encoder(7);
        let v = enc
            .embed(&["vaccine causes autism", "le vaccin est sûr"])
            .unwrap();
        assert_eq!(v.len(), 2);
        for e in &v {
            assert_eq!(e.len(), 32);
            let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        }
        let again = enc.embed(&["vaccine causes autism"]).unwrap();
        assert!(cosine(&v[0], &again[0]) > 0.9999);
        assert!(
            cosine(&v[0], &v[1]) < 0.9999,
            "different texts should differ"
        );
    }

    #[test]
    fn padding_does_not_change_an_embedding() {
        // Batched with a longer text, a short text must embed as it does alone: the
        // attention mask and the masked mean must ignore pad positions entirely.
        let enc = tiny_encoder(11);
        let alone = enc.embed(&["measles"]).unwrap();
        let batched = enc
            .embed(&["measles", "the measles vaccine is safe the vaccine is safe"])
            .unwrap();
        let c = cosine(&alone[0], &batched[0]);
        assert!(c > 0.9999, "cosine {c}");
    }

    #[test]
    fn order_is_preserved_across_length_buckets() {
        let enc = tiny_encoder(3);
        let texts: Vec<String> = (0..70).map(|i| "vaccine ".repeat(1 + i % 9)).collect();
        let all = enc.embed(&texts).unwrap();
        for i in [0, 17, 69] {
            let single = enc.embed(&[texts[i].as_str()]).unwrap();
            assert!(cosine(&all[i], &single[0]) > 0.9999, "text {i}");
        }
    }

    #[test]
    fn one_pass_gives_token_states_spans_and_the_same_embedding() {
        let enc = tiny_encoder(7);
        let texts = [
            "the vaccine causes autism",
            "le vaccin",
            "measles is the 5g",
        ];
        let embedded = enc.embed(&texts).unwrap();
        let batch = enc.encode(&texts).unwrap();
        assert_eq!(batch.texts.len(), 3);
        for ((text, encoded), embedding) in texts.iter().zip(&batch.texts).zip(&embedded) {
            let pooled = encoded.pooled(|_| true);
            let cos = cosine(&pooled, embedding);
            assert!(cos > 0.99999, "{text}: {cos}");
            // Each word token points at its word in the text, not in the prefix.
            let chars: Vec<char> = text.chars().collect();
            let words: Vec<String> = encoded
                .spans
                .iter()
                .flatten()
                .map(|&(s, e)| chars[s..e].iter().collect())
                .collect();
            assert_eq!(words, text.split(' ').collect::<Vec<_>>(), "{text}");
        }
        // Leaving a word out changes the embedding; leaving nothing out does not.
        let first = &batch.texts[0];
        assert_eq!(first.pooled_without(&[]), first.pooled(|_| true));
        let without = first.pooled_without(&[(4, 11)]);
        assert!(cosine(&without, &embedded[0]) < 0.99999);
        let vaccine = first
            .spans
            .iter()
            .position(|s| *s == Some((4, 11)))
            .unwrap();
        assert_eq!(without, first.pooled(|i| i != vaccine));
    }

    #[test]
    fn empty_text_still_embeds() {
        let enc = tiny_encoder(5);
        let v = enc.embed(&[""]).unwrap();
        assert!(v[0].iter().all(|x| x.is_finite()));
    }

    #[test]
    fn missing_files_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = Encoder::load(dir.path()).err().expect("no files");
        assert!(err.to_string().contains("vigie model fetch"), "{err}");
    }
}
