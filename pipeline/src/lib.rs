//! Vigie's screening pipeline: the message contract, the stages, the JSONL and Kafka
//! sources and sinks, and the pieces of the `vigie` command.
//!
//! Data flows one way: source → [`stages::language`] → [`stages::redaction`] →
//! [`stages::risk`] → [`stages::routing`] → sink. Nothing raw leaves: records carry
//! only redacted text, and logs carry ids, counts and reasons.

pub mod batcher;
pub mod config;
pub mod contract;
pub mod decode;
pub mod gate_training;
pub mod io;
pub mod kafka;
pub mod langid_training;
pub mod metrics;
pub mod ops;
pub mod screener;
pub mod serve;
pub mod stages;
pub mod stance_training;
pub mod summary;
pub mod synthetic;
pub mod tagger_training;
#[doc(hidden)]
pub mod testing;
