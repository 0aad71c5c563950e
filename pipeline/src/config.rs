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
    pub serve: ServeConfig,
    pub metrics: MetricsConfig,
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
    /// Names never redacted, whatever rule finds them: public figures and bodies that
    /// posts name in the news ("Olivier Véran", "OMS", "Pfizer"). Empty by default: every
    /// name is taken for a patient's unless a programme lists it here.
    pub not_a_patient: Vec<String>,
    /// Run the learned token tagger beside the rules: it finds names, places and dates
    /// that no cue word announces. It reads the risk stage's encoder pass (one pass per
    /// post for both), so it runs when risk scoring does.
    pub tagger: bool,
    /// A tagger trained by `vigie train --head tagger` (default: the one committed in
    /// `models/head/tagger.json`, built in).
    pub tagger_file: Option<PathBuf>,
    /// The tagger's probability, for a word, of being part of a name, place or date at
    /// which it is tagged (default: the one saved with the tagger). Spans below
    /// `threshold` are not redacted either way.
    pub tagger_threshold: Option<f32>,
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
            not_a_patient: Vec::new(),
            tagger: true,
            tagger_file: None,
            tagger_threshold: None,
        }
    }
}

impl RedactionConfig {
    /// The token tagger, when switched on.
    pub fn tagger(
        &self,
    ) -> Result<Option<vigie_models::tagger::TokenTagger>, vigie_models::ModelError> {
        use vigie_models::tagger::TokenTagger;
        if !self.tagger {
            return Ok(None);
        }
        let mut tagger = match &self.tagger_file {
            Some(path) => TokenTagger::load(path)?,
            None => TokenTagger::builtin()?,
        };
        if let Some(t) = self.tagger_threshold {
            tagger.threshold = t;
        }
        Ok(Some(tagger))
    }

    pub fn replace_mode(&self) -> Result<vigie_rules::ReplaceMode, ConfigError> {
        use vigie_rules::{PseudonymKey, ReplaceMode};
        Ok(match self.mode {
            ReplaceModeName::Placeholder => ReplaceMode::Placeholder,
            ReplaceModeName::Mask => ReplaceMode::Mask,
            ReplaceModeName::Pseudonym => {
                let var = &self.pseudonym_key_env;
                let key = std::env::var_os(var).ok_or_else(|| {
                    ConfigError::Key(format!("pseudonym mode needs the key in ${var}"))
                })?;
                let key = PseudonymKey::new(key.into_encoded_bytes())
                    .map_err(|e| ConfigError::Key(format!("${var}: {e}")))?;
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
    /// Fact-checkers' claim files added to the library (claim rows as in
    /// `claims_known.jsonl`, or ClaimReview JSON-LD: what `vigie claims import` reads;
    /// false and misleading French and English claims are kept). Default: the shared
    /// `risk/claims_known.jsonl` (under `$VIGIE_DATA_DIR`, else `../shared/datasets`)
    /// when it exists; `[]` for none. Edits are picked up within seconds.
    pub claims_files: Option<Vec<PathBuf>>,
    /// Claims of these topics in `claims_files` are left out: `other` is what
    /// `claims_known.jsonl` calls its claims that are not about health (politics, war…),
    /// which a health programme's moderators are not there to judge.
    pub claims_skip_topics: Vec<String>,
    /// Cosine similarity from which a post counts as restating a claim (plain matching,
    /// `claim_map = false`; the learned map carries its own threshold).
    pub claim_match_threshold: f32,
    /// Match posts to claims through the learned post-to-claim map (it finds claims
    /// across wordings and languages; a match then counts only when the claim gate
    /// agrees the post makes a claim). Off by default: it finds more of the posts
    /// spreading a known claim, but also flags more ordinary posts and rumour talk
    /// (figures in `models/README.md`).
    pub claim_map: bool,
    /// A trained claim map (default: the one committed in `models/head/`, built in).
    pub claim_map_file: Option<PathBuf>,
    /// Judge first whether a post makes (or discusses) a health claim at all: chatter,
    /// thanks, scheduling and logistics then pass whatever the misinformation head says.
    pub claim_gate: bool,
    /// A trained claim gate (default: the one committed in `models/head/`, built in; it
    /// reads multilingual-e5-small embeddings).
    pub gate_head: Option<PathBuf>,
    /// The gate's probability from which a post counts as making a claim.
    pub claim_gate_threshold: f32,
    /// Read a post's stance with the trained stance head besides the cue words: a post
    /// that asks about, refutes or reports a rumour is a rumour signal, not misinformation.
    pub stance_head_enabled: bool,
    /// A trained stance head (default: the one committed in `models/head/`, built in).
    pub stance_head: Option<PathBuf>,
    /// The stance head's probability from which a post keeps its distance from the claim.
    pub stance_threshold: f32,
    /// A trained four-way stance classifier (supports, denies, queries, comments; default:
    /// the one committed in `models/head/`, built in). It names the stance that records
    /// carry; whether a post keeps its distance stays the stance head's and cues' call.
    pub stance_classes: Option<PathBuf>,
    /// Features kept so that reposts of a text (same words, give or take spacing and
    /// invisible characters) are embedded once; about 6 kB each. 0 turns the cache off.
    pub repost_cache: usize,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            enabled: true,
            model_dir: None,
            head: None,
            claims: true,
            claims_dir: None,
            claims_files: None,
            claims_skip_topics: vec!["other".into()],
            claim_match_threshold: 0.93,
            claim_gate: true,
            gate_head: None,
            claim_gate_threshold: 0.5,
            stance_head_enabled: true,
            stance_head: None,
            stance_threshold: 0.8,
            stance_classes: None,
            claim_map: false,
            claim_map_file: None,
            repost_cache: crate::stages::risk::REPOST_CACHE_ENTRIES,
        }
    }
}

/// Where `vigie train --head tagger` writes the token tagger by default: the committed file.
pub const DEFAULT_TAGGER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/head/tagger.json");

/// Where `vigie train --head claim-map` writes the map by default: the committed file.
pub const DEFAULT_CLAIM_MAP: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../models/head/claim_map.json");

/// Where `vigie train --head gate` writes the claim gate by default: the committed file.
pub const DEFAULT_GATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/head/claim_gate.json"
);

/// Where `vigie train --head stance` writes the stance head by default: the committed file.
pub const DEFAULT_STANCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/head/stance_head.json"
);

/// Where `vigie train --head stance-classes` writes the four-way stance classifier by
/// default: the committed file.
pub const DEFAULT_STANCE_CLASSES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/head/stance_classes.json"
);

/// Where `vigie train` writes the head by default: the committed file, in the sources.
pub const DEFAULT_HEAD: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../models/head/risk_head.json");

impl RiskConfig {
    pub fn model_dir(&self) -> PathBuf {
        self.model_dir
            .clone()
            .unwrap_or_else(vigie_models::encoder::default_model_dir)
    }
    pub fn claim_source(&self) -> crate::stages::risk::ClaimSource {
        use crate::stages::risk::ClaimSource;
        match (&self.claims_dir, self.claims) {
            (_, false) => ClaimSource::None,
            (Some(dir), true) => ClaimSource::Dir(dir.clone()),
            (None, true) => ClaimSource::Builtin,
        }
    }

    /// The fact-checkers' files added to the library (see `claims_files`).
    pub fn claims_files(&self) -> Vec<PathBuf> {
        if !self.claims {
            return Vec::new();
        }
        match &self.claims_files {
            Some(files) => files.clone(),
            None => {
                let data = std::env::var_os("VIGIE_DATA_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("../shared/datasets"));
                let known = data.join("risk/claims_known.jsonl");
                if known.is_file() {
                    vec![known]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// The whole known-claim library: its base and the files added to it.
    pub fn claim_library(&self) -> crate::stages::risk::ClaimLibrary {
        crate::stages::risk::ClaimLibrary {
            source: self.claim_source(),
            files: self.claims_files(),
            skip_topics: self.claims_skip_topics.clone(),
        }
    }

    /// The claim gate, when configured.
    pub fn gate(&self) -> Result<Option<vigie_models::RiskHead>, vigie_models::ModelError> {
        if !self.claim_gate {
            return Ok(None);
        }
        match &self.gate_head {
            Some(path) => vigie_models::RiskHead::load(path).map(Some),
            None => vigie_models::RiskHead::builtin_gate().map(Some),
        }
    }

    /// The stance head, when configured.
    pub fn stance(&self) -> Result<Option<vigie_models::RiskHead>, vigie_models::ModelError> {
        if !self.stance_head_enabled {
            return Ok(None);
        }
        match &self.stance_head {
            Some(path) => vigie_models::RiskHead::load(path).map(Some),
            None => vigie_models::RiskHead::builtin_stance().map(Some),
        }
    }

    /// The learned post-to-claim map, when configured.
    pub fn claim_map(
        &self,
    ) -> Result<Option<vigie_models::claim_map::ClaimMap>, vigie_models::ModelError> {
        use vigie_models::claim_map::ClaimMap;
        if !self.claim_map || !self.claims {
            return Ok(None);
        }
        match &self.claim_map_file {
            Some(path) => ClaimMap::load(path).map(Some),
            None => ClaimMap::builtin().map(Some),
        }
    }

    /// The four-way stance classifier, when the stance head is on.
    pub fn stance_classes(
        &self,
    ) -> Result<Option<vigie_models::stance_classes::StanceClassifier>, vigie_models::ModelError>
    {
        use vigie_models::stance_classes::StanceClassifier;
        if !self.stance_head_enabled {
            return Ok(None);
        }
        match &self.stance_classes {
            Some(path) => StanceClassifier::load(path).map(Some),
            None => StanceClassifier::builtin().map(Some),
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
    /// Where rumour signals (posts that ask about, refute or report a rumour) also go,
    /// for programme staff's rumour tracking; none by default (they are in the screened
    /// topic either way, with `risk.outcome = "rumour-signal"`).
    pub rumour_topic: Option<String>,
    /// Posts screened together at most. The model is faster on batches, but a post that
    /// arrives under load waits for the pass under way and then its own: on 2 cores a
    /// pass of 64 posts takes about 110 ms. At 80 % of the backlog rate, p99 was
    /// 147–210 ms over four runs with 32 and 223–504 ms with 64, for about the same
    /// backlog rate (466–566 posts/s, noisy either way; `scripts/bench-kafka`); 16 did
    /// not keep up at that load.
    pub batch_size: usize,
    /// Under load (the last batch held more than one message), how long to wait to fill
    /// a batch before screening what is there; a message arriving at a quiet moment is
    /// screened at once.
    pub batch_wait_ms: u64,
    /// While fewer than `batch_size` messages wait, hand over only as many as the model
    /// screens in this many ms (learned from its passes; 0 = always up to `batch_size`),
    /// as `[serve] pass_target_ms` does for the API: a message that arrives during a
    /// pass waits for it and then for its own, so short passes bound the latency at
    /// moderate load, while a backlog still gets full batches.
    pub pass_target_ms: u64,
    /// at-least-once (default): offsets are committed once every record made from a
    /// message, and from all earlier ones of its partition, is acknowledged; a crash
    /// means some posts are screened twice, never lost. exactly-once: each batch's
    /// records and offsets are written in one Kafka transaction; readers of the outputs
    /// must set `isolation.level=read_committed`.
    pub delivery: DeliveryMode,
    /// Transactional id for exactly-once (default: `<group_id>-<input_topic>-<$HOSTNAME>`;
    /// give each instance its own when several run on one host).
    pub transactional_id: Option<String>,
    /// Messages read and not yet acknowledged, at most: reading pauses beyond it.
    pub max_in_flight: usize,
    /// How often completed offsets are committed.
    pub commit_interval_ms: u64,
    /// How long a rebalance or a shutdown waits for in-flight messages to be
    /// acknowledged; what is not done by then is left uncommitted, to be read again.
    pub drain_timeout_ms: u64,
    /// Stop when more than this share of the last `dead_letter_window` messages were
    /// dead-lettered (1.0 switches the check off).
    pub dead_letter_max_ratio: f64,
    pub dead_letter_window: usize,
    /// librdkafka statistics (consumer lag for `/metrics`) every this many ms; 0 = off.
    pub statistics_interval_ms: u64,
    /// Passed to every librdkafka client as is (security.protocol, sasl.*, ssl.*, ...).
    pub properties: BTreeMap<String, String>,
    /// Passed to the consumers only, over `properties` (fetch.*, session.timeout.ms,
    /// max.poll.interval.ms…): librdkafka warns when a producer is given one.
    pub consumer_properties: BTreeMap<String, String>,
    /// Passed to the producers only, over `properties` (linger.ms, compression.type,
    /// message.max.bytes…).
    pub producer_properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryMode {
    #[default]
    AtLeastOnce,
    ExactlyOnce,
}

/// The operators' endpoints of `vigie run`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics`, `/healthz` and `/readyz` on this address (e.g. "0.0.0.0:9464").
    pub listen: Option<std::net::SocketAddr>,
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
            rumour_topic: None,
            batch_size: 32,
            batch_wait_ms: 5,
            pass_target_ms: 80,
            delivery: DeliveryMode::AtLeastOnce,
            transactional_id: None,
            max_in_flight: 1024,
            commit_interval_ms: 1000,
            drain_timeout_ms: 30_000,
            dead_letter_max_ratio: 0.5,
            dead_letter_window: 1000,
            statistics_interval_ms: 5000,
            properties: BTreeMap::new(),
            consumer_properties: BTreeMap::new(),
            producer_properties: BTreeMap::new(),
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
        Limits {
            max_message_bytes: 256 * 1024,
            rejected_excerpt_chars: 2000,
        }
    }
}

/// `vigie serve`: the screening API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Most posts in one encoder pass, and in one `/v1/screen/batch` request.
    pub max_batch: usize,
    /// Under load, how long the batcher waits for more posts before a pass (never when
    /// it was idle: a lone request goes at once).
    pub max_wait_ms: u64,
    /// While fewer than `max_batch` posts wait, a pass takes as many as the worker
    /// screens in this long (learned from its passes), so that a request waits about
    /// twice this under steady load; 0 lets every pass grow to `max_batch`.
    pub pass_target_ms: u64,
    /// Posts waiting at most; beyond, requests are answered 503 with Retry-After.
    pub queue_capacity: usize,
    /// A request not answered within this is answered 503 (its posts are dropped from
    /// the queue if they were not screened yet).
    pub request_timeout_ms: u64,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// SHA-256 digests (hex) of the API keys; keys themselves are never stored.
    pub api_key_sha256: Vec<String>,
    /// Environment variable with more keys in clear, comma-separated (hashed at start).
    pub api_keys_env: String,
    /// Requests per second allowed per key, and the burst above it.
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// Requests without a valid key allowed per client address and minute (the burst
    /// too); past it, every request from that address is answered 429 until its budget
    /// refills, a valid key or not, so that keys cannot be guessed at speed. 0 = no limit.
    pub failed_keys_per_minute: u32,
    /// Behind a reverse proxy every request comes from the proxy's address: name the
    /// header the proxy sets to the client's (`x-forwarded-for`: its last address is
    /// taken; `x-real-ip`). Only for a proxy you run, since clients can send the header.
    pub client_address_header: Option<String>,
    /// Serve HTTPS with this PEM certificate chain and `tls_key` (its PEM private key;
    /// both or neither). Without them the API speaks plain HTTP: put it behind a reverse
    /// proxy that terminates TLS, or keep it on a private network.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Append flagged records to `moderation.jsonl` and rumour signals to `rumours.jsonl`
    /// here, as `vigie screen` does, so the console's queue fills from the API.
    pub out_dir: Option<PathBuf>,
    /// Also produce flagged records to `[kafka] moderation_topic` and rumour signals to
    /// `[kafka] rumour_topic` (when set), keyed by post id, acknowledged before the answer.
    pub to_kafka: bool,
    /// Threads that run HTTP. The encoder uses every core and requests cost little
    /// beside it: measured on two cores, one HTTP thread gave 0.81 × the encoder's
    /// batch-64 rate and two gave 0.70 × (the threads took turns with the encoder's).
    pub http_threads: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_batch: 64,
            max_wait_ms: 5,
            pass_target_ms: 80,
            queue_capacity: 2048,
            request_timeout_ms: 10_000,
            max_body_bytes: 1 << 20,
            api_key_sha256: Vec::new(),
            api_keys_env: "VIGIE_API_KEYS".into(),
            rate_per_second: 200,
            rate_burst: 400,
            failed_keys_per_minute: 30,
            client_address_header: None,
            tls_cert: None,
            tls_key: None,
            out_dir: None,
            to_kafka: false,
            http_threads: 1,
        }
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
    /// Behind a reverse proxy that sets `X-Forwarded-For`: take the client's address
    /// from it (for the sign-in throttle). Leave false when clients reach the console
    /// directly, or they could choose their own address.
    pub trust_forwarded_for: bool,
    /// Consecutive failed sign-ins on one account that lock it until an admin runs
    /// `vigie console unlock-user`.
    pub lockout_after: u32,
    /// Seconds a client has to send a request's headers.
    pub header_timeout_secs: u64,
    /// Seconds a whole request (body included) may take.
    pub request_timeout_secs: u64,
    /// Connections served at once.
    pub max_connections: usize,
    /// Rumour alerts for programme staff (`[console.alerts]`).
    pub alerts: AlertsConfig,
}

/// `[console.alerts]`: when a rumour raises an alert, and where alerts go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// The recent window the rules look at.
    pub window_minutes: i64,
    /// The period before the window that gives each rumour's usual rate.
    pub baseline_hours: i64,
    /// A rule that alerted for a rumour stays quiet for it this long.
    pub cooldown_hours: i64,
    /// How often rumours are checked and undelivered alerts retried.
    pub check_seconds: u64,
    /// POST each alert here as JSON (signed; see the README).
    pub webhook_url: Option<String>,
    /// The environment variable holding the webhook's shared secret (required with a URL).
    pub webhook_secret_env: String,
    /// The console's public address, for links in alerts (`https://console.example.org`).
    pub console_url: Option<String>,
    /// Each rule: `name` and `when`, figures compared with numbers and joined by `and`.
    /// Figures: posts, recent, per_hour, baseline, velocity, question_share,
    /// signal_share, languages, countries. Replaces the default rules when given.
    pub rules: Vec<AlertRuleConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleConfig {
    pub name: String,
    pub when: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        let rule = |name: &str, when: &str| AlertRuleConfig {
            name: name.into(),
            when: when.into(),
        };
        AlertsConfig {
            window_minutes: 60,
            baseline_hours: 24 * 7,
            cooldown_hours: 12,
            check_seconds: 30,
            webhook_url: None,
            webhook_secret_env: "VIGIE_ALERT_WEBHOOK_SECRET".into(),
            console_url: None,
            rules: vec![
                // Five or more posts in the hour, three times the rumour's usual rate.
                rule("spike", "recent >= 5 and velocity >= 3"),
                // Many people asking whether it is true: the information void staff fill.
                rule("information-void", "recent >= 5 and question_share >= 0.5"),
            ],
        }
    }
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            lock_minutes: 15,
            session_hours: 12,
            secure_cookies: None,
            decisions_out: None,
            trust_forwarded_for: false,
            lockout_after: 20,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            max_connections: 512,
            alerts: AlertsConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {source}")]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{0}")]
    Key(String),
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("configuration after the environment overrides ({vars}): {source}")]
    Overridden {
        vars: String,
        source: toml::de::Error,
    },
}

/// Environment variables that override the file: `VIGIE__<SECTION>__<KEY>`, e.g.
/// `VIGIE__KAFKA__BROKERS=broker:9092`, `VIGIE__ROUTING__MISINFORMATION_THRESHOLD=0.7`.
/// librdkafka properties go under `VIGIE__KAFKA__PROPERTIES__` (or `…__CONSUMER_PROPERTIES__`,
/// `…__PRODUCER_PROPERTIES__`), with `_` for `.`: `VIGIE__KAFKA__PROPERTIES__SASL_PASSWORD`
/// sets `sasl.password` (secrets stay out of files).
pub const ENV_PREFIX: &str = "VIGIE__";

impl Config {
    pub fn gazetteers_dir(&self) -> Option<PathBuf> {
        self.gazetteers_dir
            .clone()
            .or_else(|| std::env::var_os("VIGIE_GAZETTEERS").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("../shared/gazetteers")).filter(|d| d.is_dir()))
    }

    /// The file (or the defaults), then the `VIGIE__…` environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(
            path,
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    pub fn load_with_env(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.into(),
                    source,
                })?;
                // Parsed as the config first, so that file errors name the file.
                toml::from_str::<Config>(&text).map_err(|source| ConfigError::Toml {
                    path: path.into(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|source| ConfigError::Toml {
                    path: path.into(),
                    source,
                })?
            }
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Config::default())
            .map_err(|e| ConfigError::Key(e.to_string()))?;
        let mut applied: Vec<String> = Vec::new();
        for (var, value) in vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let keys = env_path(rest).ok_or_else(|| ConfigError::Env {
                var: var.clone(),
                message: "expected VIGIE__<SECTION>__<KEY>".into(),
            })?;
            let value =
                env_value(&defaults, &keys, &value).map_err(|message| ConfigError::Env {
                    var: var.clone(),
                    message,
                })?;
            set_path(&mut table, &keys, value).map_err(|message| ConfigError::Env {
                var: var.clone(),
                message,
            })?;
            applied.push(var);
        }
        let config: Config = if applied.is_empty() {
            toml::Value::Table(table)
                .try_into()
                .map_err(|source| ConfigError::Toml {
                    path: path.unwrap_or(Path::new("-")).into(),
                    source,
                })?
        } else {
            applied.sort();
            toml::Value::Table(table)
                .try_into()
                .map_err(|source| ConfigError::Overridden {
                    vars: applied.join(", "),
                    source,
                })?
        };
        config.validate()?;
        Ok(config)
    }

    /// Values that parse but make no sense.
    fn validate(&self) -> Result<(), ConfigError> {
        let ratio = self.kafka.dead_letter_max_ratio;
        if !(ratio.is_finite() && ratio > 0.0 && ratio <= 1.0) {
            return Err(ConfigError::Key(format!(
                "kafka.dead_letter_max_ratio must be in (0, 1], not {ratio}"
            )));
        }
        if self.kafka.max_in_flight == 0 || self.kafka.batch_size == 0 {
            return Err(ConfigError::Key(
                "kafka.max_in_flight and kafka.batch_size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The `[kafka]` tables of librdkafka properties, whose keys hold dots.
const PROPERTY_TABLES: [&str; 3] = ["properties", "consumer_properties", "producer_properties"];

/// Whether `keys` name one librdkafka property: `kafka`, one of [`PROPERTY_TABLES`], the
/// property.
fn is_kafka_property(keys: &[String]) -> bool {
    keys.len() == 3 && keys[0] == "kafka" && PROPERTY_TABLES.contains(&keys[1].as_str())
}

/// `KAFKA__PROPERTIES__SASL_MECHANISM` → ["kafka", "properties", "sasl.mechanism"];
/// `KAFKA__CONSUMER_PROPERTIES__FETCH_WAIT_MAX_MS` → [.., "fetch.wait.max.ms"].
fn env_path(rest: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = rest.split("__").collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut keys: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    if is_kafka_property(&keys) {
        keys[2] = keys[2].replace('_', ".");
    } else if keys.iter().any(|k| PROPERTY_TABLES.contains(&k.as_str())) {
        return None;
    }
    Some(keys)
}

/// The text of a variable, typed like the setting's default (strings when the default
/// is unset, as for paths).
fn env_value(defaults: &toml::Table, keys: &[String], text: &str) -> Result<toml::Value, String> {
    let mut node: Option<&toml::Value> = None;
    let mut table = Some(defaults);
    for key in keys {
        node = table.and_then(|t| t.get(key));
        table = node.and_then(toml::Value::as_table);
    }
    let parse = |what: &str| -> Result<toml::Value, String> {
        let doc: toml::Table =
            toml::from_str(&format!("v = {text}")).map_err(|_| format!("expected {what}"))?;
        doc.get("v")
            .cloned()
            .ok_or_else(|| format!("expected {what}"))
    };
    // librdkafka takes every property as text ("true", "5000"): never typed.
    if is_kafka_property(keys) {
        return Ok(toml::Value::String(text.to_string()));
    }
    match node {
        Some(toml::Value::Integer(_)) => parse("an integer").and_then(|v| {
            if v.is_integer() {
                Ok(v)
            } else {
                Err("expected an integer".into())
            }
        }),
        Some(toml::Value::Float(_)) => parse("a number").map(|v| match v {
            toml::Value::Integer(i) => toml::Value::Float(i as f64),
            other => other,
        }),
        Some(toml::Value::Boolean(_)) => parse("true or false").and_then(|v| {
            if v.is_bool() {
                Ok(v)
            } else {
                Err("expected true or false".into())
            }
        }),
        Some(toml::Value::Array(_)) => parse("a TOML array"),
        Some(toml::Value::Table(_)) => Err("names a section, not a setting".into()),
        // Unset by default (paths, optional switches): a boolean when it reads as one.
        _ if text == "true" || text == "false" => Ok(toml::Value::Boolean(text == "true")),
        _ => Ok(toml::Value::String(text.to_string())),
    }
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = keys.split_last().ok_or("empty name")?;
    let mut t = table;
    for key in parents {
        t = t
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{key}` is not a section"))?;
    }
    t.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.toml");
        std::fs::write(
            &path,
            "[kafka]\nbrokers = \"file:9092\"\ngroup_id = \"from-file\"\n",
        )
        .unwrap();
        let vars = env(&[
            ("VIGIE__KAFKA__BROKERS", "env:9092"),
            ("VIGIE__KAFKA__BATCH_SIZE", "8"),
            ("VIGIE__KAFKA__DELIVERY", "exactly-once"),
            ("VIGIE__KAFKA__PROPERTIES__SASL_PASSWORD", "s3cret"),
            ("VIGIE__KAFKA__CONSUMER_PROPERTIES__FETCH_WAIT_MAX_MS", "10"),
            ("VIGIE__KAFKA__CONSUMER_PROPERTIES__CHECK_CRCS", "true"),
            (
                "VIGIE__KAFKA__PROPERTIES__ENABLE_SSL_CERTIFICATE_VERIFICATION",
                "false",
            ),
            (
                "VIGIE__KAFKA__PRODUCER_PROPERTIES__COMPRESSION_TYPE",
                "zstd",
            ),
            ("VIGIE__ROUTING__MISINFORMATION_THRESHOLD", "1"),
            ("VIGIE__RISK__ENABLED", "false"),
            ("VIGIE__METRICS__LISTEN", "127.0.0.1:9464"),
            ("VIGIE__CONSOLE__SECURE_COOKIES", "true"),
            ("VIGIE_MODEL_DIR", "/not/an/override"),
        ]);
        let c = Config::load_with_env(Some(&path), vars).unwrap();
        assert_eq!(c.kafka.brokers, "env:9092");
        assert_eq!(c.kafka.group_id, "from-file");
        assert_eq!(c.kafka.batch_size, 8);
        assert_eq!(c.kafka.delivery, DeliveryMode::ExactlyOnce);
        assert_eq!(c.kafka.properties["sasl.password"], "s3cret");
        assert_eq!(c.kafka.consumer_properties["fetch.wait.max.ms"], "10");
        assert_eq!(c.kafka.consumer_properties["check.crcs"], "true");
        assert_eq!(
            c.kafka.properties["enable.ssl.certificate.verification"],
            "false"
        );
        assert_eq!(c.kafka.producer_properties["compression.type"], "zstd");
        assert_eq!(c.routing.misinformation_threshold, 1.0);
        assert!(!c.risk.enabled);
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.console.secure_cookies, Some(true));
        let nan =
            Config::load_with_env(None, env(&[("VIGIE__KAFKA__DEAD_LETTER_MAX_RATIO", "nan")]))
                .unwrap_err();
        assert!(nan.to_string().contains("dead_letter_max_ratio"), "{nan}");
    }

    #[test]
    fn bad_overrides_name_the_variable() {
        for (var, value) in [
            ("VIGIE__KAFKA__BATCH_SIZE", "lots"),
            ("VIGIE__KAFKA__BROKRS", "x:1"),
            ("VIGIE__KAFKA", "x"),
            ("VIGIE__RISK__ENABLED", "1"),
        ] {
            let err = Config::load_with_env(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(var), "{var}: {err}");
        }
    }

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
