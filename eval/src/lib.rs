//! Evaluation of Vigie's stages over labeled JSONL datasets (formats of
//! `shared/datasets/README.md`). The crate knows metrics and file formats, not the
//! stages: callers pass a prediction function, so the same code measures any detector.

pub mod datasets;
pub mod langid;
pub mod metrics;
pub mod redaction;
pub mod risk;
pub mod split;
pub mod stance;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Row {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Empty(String),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;
