//! Configuration: one TOML file (`--config`), every section optional.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::stages::routing::RoutingConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of name, word and place lists (the files of `shared/gazetteers/`); default
    /// `$VIGIE_GAZETTEERS`, else `../shared/gazetteers` when it exists. Without it, the
    /// language stage uses whatlang alone and the redaction stage skips its name lists.
    pub gazetteers_dir: Option<PathBuf>,
    pub redaction: RedactionConfig,
    pub risk: RiskConfig,
    pub routing: RoutingConfig,
    pub kafka: KafkaConfig,
    pub limits: Limits,
    pub console: ConsoleConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// Matches below this confidence are left in place.
    pub threshold: f32,
    /// Directory of rule files replacing the built-in sets.
    pub rules_dir: Option<PathBuf>,
    /// placeholder (`[PHONE]`), mask (`** ** ** ** **`) or pseudonym (`[PHONE-1a2b3c4d]`,
    /// the same token for the same identifier in every post).
    pub mode: ReplaceModeName,
    /// Environment variable holding the pseudonym key (at least 16 bytes). The key is
    /// never read from the config file, and never logged.
    pub pseudonym_key_env: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplaceModeName {
    #[default]
    Placeholder,
    Mask,
    Pseudonym,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            threshold: 0.5,
            rules_dir: None,
            mode: ReplaceModeName::Placeholder,
            pseudonym_key_env: "VIGIE_PSEUDONYM_KEY".into(),
        }
    }
}

impl RedactionConfig {
    pub fn replace_mode(&self) -> Result<vigie_rules::ReplaceMode, ConfigError> {
        use vigie_rules::{PseudonymKey, ReplaceMode};
        Ok(match self.mode {
            ReplaceModeName::Placeholder => ReplaceMode::Placeholder,
            ReplaceModeName::Mask => ReplaceMode::Mask,
            ReplaceModeName::Pseudonym => {
                let var = &self.pseudonym_key_env;
                let key = std::env::var_os(var).ok_or_else(|| ConfigError::Key(format!("pseudonym mode needs the key in ${var}")))?;
                let key = PseudonymKey::new(key.into_encoded_bytes()).map_err(|e| ConfigError::Key(format!("${var}: {e}")))?;
                ReplaceMode::Pseudonym(key)
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Switch risk scoring off (records then carry `"risk": null`).
    pub enabled: bool,
    /// Where `e5-small-q4.bin` and `tokenizer.json` are (default: `$VIGIE_MODEL_DIR` or the user cache).
    pub model_dir: Option<PathBuf>,
    /// A trained head file (default: the one committed in `models/head/`, built in).
    pub head: Option<PathBuf>,
    /// Match posts against the known false claims (`models/claims/`).
    pub claims: bool,
    /// A directory of claim files to use instead of the built-in ones; edits are picked
    /// up within seconds.
    pub claims_dir: Option<PathBuf>,
    /// Cosine similarity from which a post counts as restating a claim.
    pub claim_match_threshold: f32,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig { enabled: true, model_dir: None, head: None, claims: true, claims_dir: None, claim_match_threshold: 0.93 }
    }
}

/// Where `vigie train` writes the head by default: the committed file, in the sources.
pub const DEFAULT_HEAD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/head/risk_head.json");

impl RiskConfig {
    pub fn model_dir(&self) -> PathBuf {
        self.model_dir.clone().unwrap_or_else(vigie_models::encoder::default_model_dir)
    }
    pub fn claim_source(&self) -> crate::stages::risk::ClaimSource {
        use crate::stages::risk::ClaimSource;
        match (&self.claims_dir, self.claims) {
            (_, false) => ClaimSource::None,
            (Some(dir), true) => ClaimSource::Dir(dir.clone()),
            (None, true) => ClaimSource::Builtin,
        }
    }

    pub fn head(&self) -> Result<vigie_models::RiskHead, vigie_models::ModelError> {
        match &self.head {
            Some(path) => vigie_models::RiskHead::load(path),
            None => vigie_models::RiskHead::builtin(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: String,
    pub group_id: String,
    pub input_topic: String,
    pub screened_topic: String,
    pub moderation_topic: String,
    pub dlq_topic: String,
    /// Posts screened together (the model is faster on batches).
    pub batch_size: usize,
    /// How long to wait to fill a batch before screening what is there.
    pub batch_wait_ms: u64,
    /// Passed to librdkafka as is (security.protocol, sasl.*, ssl.*, ...).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "localhost:9092".into(),
            group_id: "vigie".into(),
            input_topic: "vigie.posts".into(),
            screened_topic: "vigie.screened".into(),
            moderation_topic: "vigie.moderation".into(),
            dlq_topic: "vigie.dlq".into(),
            batch_size: 64,
            batch_wait_ms: 100,
            properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Larger inputs are rejected as `oversized`.
    pub max_message_bytes: usize,
    /// Length of the redacted excerpt kept in rejected / dead-letter records.
    pub rejected_excerpt_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_message_bytes: 256 * 1024, rejected_excerpt_chars: 2000 }
    }
}

/// `vigie console serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// How long an item a moderator claimed stays locked to them.
    pub lock_minutes: i64,
    /// How long a sign-in lasts.
    pub session_hours: i64,
    /// `Secure` session cookies: true, false, or unset to decide by the listen address
    /// (Secure unless it is a loopback address; behind a TLS proxy, requests marked
    /// `X-Forwarded-Proto: https` always get Secure cookies).
    pub secure_cookies: Option<bool>,
    /// Append each decision as a JSON line to this file (the decisions feed).
    pub decisions_out: Option<PathBuf>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { lock_minutes: 15, session_hours: 12, secure_cookies: None, decisions_out: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("config {path}: {source}")]
    Toml { path: PathBuf, source: toml::de::Error },
    #[error("{0}")]
    Key(String),
}

impl Config {
    pub fn gazetteers_dir(&self) -> Option<PathBuf> {
        self.gazetteers_dir
            .clone()
            .or_else(|| std::env::var_os("VIGIE_GAZETTEERS").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("../shared/gazetteers")).filter(|d| d.is_dir()))
    }

    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.into(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Toml { path: path.into(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_keep_defaults_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.toml");
        std::fs::write(&path, "[routing]\nmisinformation_threshold = 0.7\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n").unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.routing.misinformation_threshold, 0.7);
        assert_eq!(c.routing.pass_queue, "pass");
        assert_eq!(c.kafka.properties["security.protocol"], "SASL_SSL");
        std::fs::write(&path, "[routing]\nmisinfo_threshold = 0.7\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("misinfo_threshold"), "{err}");
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vigie.example.toml");
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c, Config::default(), "the example documents the defaults");
    }
}
