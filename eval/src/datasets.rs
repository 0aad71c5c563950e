//! Row types of the shared datasets and a JSONL reader with line-numbered errors.

use std::io::BufRead;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::{EvalError, Result};

#[derive(Debug, Clone, Deserialize)]
pub struct LangIdRow {
    pub id: String,
    pub text: String,
    /// fr | en | other
    pub lang: String,
    /// sentences | single-words | word-pairs | chat-lines | ...
    #[serde(default)]
    pub kind: Option<String>,
    /// Whether the text mixes French and English (rows that say so).
    #[serde(default)]
    pub mixed: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GoldSpan {
    pub start: usize,
    pub end: usize,
    pub label: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedactionRow {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub lang: Option<String>,
    pub spans: Vec<GoldSpan>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RiskRow {
    pub id: String,
    pub text: String,
    pub lang: String,
    /// misinformation | reliable
    pub label: String,
    #[serde(default)]
    pub source: Option<String>,
    /// The fact-check a DACCORD row comes from; its rumour and correction share it.
    #[serde(default)]
    pub article: Option<String>,
    /// What kind of post (the project's own sets: ops, reply, chatter, info, query, deny,
    /// report, spread).
    #[serde(default)]
    pub kind: Option<String>,
    /// The rumour a row is about (the project's own sets), in a neutral English wording.
    #[serde(default)]
    pub claim: Option<String>,
    /// What the row is about (`covid`, `malaria`, `ukraine-war`…), when its file says.
    #[serde(default)]
    pub topic: Option<String>,
}

impl RiskRow {
    /// What the row shares with others for the tune / measure split: its article or claim,
    /// else its id.
    pub fn split_group(&self) -> &str {
        self.article
            .as_deref()
            .or(self.claim.as_deref())
            .unwrap_or(&self.id)
    }
}

impl RiskRow {
    pub fn is_misinformation(&self) -> bool {
        self.label == "misinformation"
    }
}

/// Why a JSONL file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// serde's message can quote values from the line: show it only for files whose text
    /// may be shown (public datasets), and only the error's kind and column otherwise.
    #[error("{path}:{line}: {source}")]
    Row {
        path: String,
        line: usize,
        source: serde_json::Error,
    },
}

/// Every row of a JSONL file, blank lines skipped; the first bad line is an error that
/// names it.
pub fn jsonl_rows<T: DeserializeOwned>(path: &Path) -> std::result::Result<Vec<T>, JsonlError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| JsonlError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| JsonlError::Io {
            path: shown.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(&line).map_err(|source| JsonlError::Row {
            path: shown.clone(),
            line: i + 1,
            source,
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Reads a dataset: [`jsonl_rows`], and at least one row. Bad lines are reported with
/// serde's message (the datasets are public).
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let rows = jsonl_rows(path).map_err(|e| match e {
        JsonlError::Io { path, source } => EvalError::Io { path, source },
        JsonlError::Row { path, line, source } => EvalError::Row {
            path,
            line,
            message: source.to_string(),
        },
    })?;
    if rows.is_empty() {
        return Err(EvalError::Empty(format!(
            "{} holds no rows",
            path.display()
        )));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let dir = std::env::temp_dir().join(format!("vigie-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.jsonl");
        std::fs::write(
            &path,
            "{\"id\":\"1\",\"text\":\"a\",\"lang\":\"fr\"}\n\n{\"id\":2}\n",
        )
        .unwrap();
        let err = read_jsonl::<LangIdRow>(&path).unwrap_err().to_string();
        assert!(err.contains("x.jsonl:3:"), "{err}");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_jsonl::<LangIdRow>(&path).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
