//! The screening pipeline: source → language → redaction → risk → routing → sink.
//! [`Screener`] composes the stages; sources and sinks live in [`crate::io`] and
//! [`crate::kafka`] and only move bytes and records.

use std::time::{Duration, Instant};

use chrono::Utc;
use rayon::prelude::*;
use vigie_models::tagger::{TaggedBatch, TokenTagger};
use vigie_models::Encoder;
use vigie_rules::RuleSet;

use crate::config::Config;
use crate::contract::{InputPost, Origin, RejectedRecord, ScreenedRecord, VIGIE_VERSION};
use crate::decode::{decode, Rejection};
use crate::stages::language::{LanguageStage, Lexicon};
use crate::stages::redaction::RedactionStage;
use crate::stages::risk::{RiskError, RiskStage};
use crate::stages::routing::RoutingStage;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("rules: {0}")]
    Rules(#[from] vigie_rules::RuleError),
    #[error("model: {0}")]
    Model(#[from] vigie_models::ModelError),
    #[error("risk stage: {0}")]
    Risk(#[from] RiskError),
    /// Boxed: configuration errors carry paths and values, and would make every
    /// `Result` of this module large.
    #[error("configuration: {0}")]
    Config(Box<crate::config::ConfigError>),
    #[error("language stage: {0}")]
    Lexicon(#[from] crate::stages::language::LexiconError),
    #[error("language stage: {0}")]
    LanguageModel(#[from] crate::stages::language::FrEnModelError),
}

impl From<crate::config::ConfigError> for BuildError {
    fn from(e: crate::config::ConfigError) -> Self {
        BuildError::Config(Box::new(e))
    }
}

pub struct Screener {
    language: LanguageStage,
    redaction: RedactionStage,
    /// The token tagger, run on the risk stage's encoder (see [`Screener::with_risk`]).
    tagger: Option<TokenTagger>,
    risk: Option<RiskStage>,
    routing: RoutingStage,
    max_message_bytes: usize,
    excerpt_chars: usize,
}

/// Time a batch spent in each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    pub decode: Duration,
    pub language: Duration,
    pub redaction: Duration,
    pub risk: Duration,
    pub routing: Duration,
    /// Posts sent to the risk model (0 when risk scoring is off or nothing decoded).
    pub model_batch: usize,
    /// Of those, how many the repost cache answered.
    pub repost_cache_hits: usize,
}

impl StageTimes {
    pub fn named(&self) -> [(&'static str, Duration); 5] {
        [
            ("decode", self.decode),
            ("language", self.language),
            ("redaction", self.redaction),
            ("risk", self.risk),
            ("routing", self.routing),
        ]
    }
}

/// What became of one input.
#[derive(Debug, Clone)]
pub enum Outcome {
    Screened(ScreenedRecord),
    Rejected(RejectedRecord),
}

/// Language, redaction and what the risk heads read, for a batch of texts in order.
pub struct Prepared {
    pub langs: Vec<crate::contract::Lang>,
    pub redacted: Vec<crate::stages::redaction::Redacted>,
    /// The features of the raw text's encoder pass ([`vigie_models::Encoder::features`])
    /// pooled without its redacted tokens; `None` when the tagger did not run or read the
    /// text in pieces (the risk stage then embeds the redacted text).
    pub features: Vec<Option<Vec<f32>>>,
}

impl Screener {
    /// Builds every stage from the configuration, loading rules, model and head.
    pub fn from_config(config: &Config) -> Result<Self, BuildError> {
        let risk = if config.risk.enabled {
            let encoder = Encoder::load(&config.risk.model_dir())?;
            let head = config.risk.head()?;
            let mut stage = RiskStage::new(encoder, head, config.routing.misinformation_threshold)?;
            if let Some(gate) = config.risk.gate()? {
                stage = stage.with_gate(gate, config.risk.claim_gate_threshold)?;
            }
            if let Some(head) = config.risk.stance()? {
                stage = stage.with_stance(head, config.risk.stance_threshold)?;
            }
            if let Some(classes) = config.risk.stance_classes()? {
                stage = stage.with_stance_classes(classes)?;
            }
            if let Some(map) = config.risk.claim_map()? {
                stage = stage.with_claim_map(map)?;
            }
            Some(
                stage
                    .with_claims(
                        config.risk.claim_library(),
                        config.risk.claim_match_threshold,
                    )?
                    .with_repost_cache(config.risk.repost_cache),
            )
        } else {
            None
        };
        Self::with_risk(config, risk)
    }

    /// Builds the pipeline around a given risk stage (or none).
    pub fn with_risk(config: &Config, risk: Option<RiskStage>) -> Result<Self, BuildError> {
        Self::build(config, risk, false)
    }

    /// Language and redaction as configured, with the token tagger but no risk stage:
    /// what training runs [`Screener::prepare_for_risk`] with, on an encoder of its own.
    pub fn for_training(config: &Config) -> Result<Self, BuildError> {
        Self::build(config, None, true)
    }

    fn build(
        config: &Config,
        risk: Option<RiskStage>,
        tagger_without_risk: bool,
    ) -> Result<Self, BuildError> {
        let redaction = redaction_stage(config)?;
        let lexicon = match config.gazetteers_dir() {
            Some(dir) => Some(Lexicon::load(&dir)?),
            None => {
                tracing::warn!("no gazetteers directory: whatlang alone for short texts");
                None
            }
        };
        let tagger = match (config.redaction.tagger()?, &risk) {
            (Some(tagger), Some(stage)) if tagger.dim == stage.encoder().dim() => Some(tagger),
            (Some(tagger), Some(stage)) => {
                tracing::warn!(
                    tagger = tagger.dim,
                    encoder = stage.encoder().dim(),
                    "the token tagger reads states of another width than this encoder's: \
                     redaction runs on the rules alone"
                );
                None
            }
            (Some(tagger), None) if tagger_without_risk => Some(tagger),
            (Some(_), None) => {
                tracing::warn!(
                    "risk scoring is off, so is the token tagger (it reads the same encoder \
                     pass): redaction runs on the rules alone"
                );
                None
            }
            (None, _) => None,
        };
        Ok(Screener {
            language: LanguageStage::new(lexicon)?,
            redaction,
            tagger,
            risk,
            routing: RoutingStage::new(config.routing.clone()),
            max_message_bytes: config.limits.max_message_bytes,
            excerpt_chars: config.limits.rejected_excerpt_chars,
        })
    }

    pub fn language(&self) -> &LanguageStage {
        &self.language
    }

    pub fn redaction(&self) -> &RedactionStage {
        &self.redaction
    }

    pub fn risk(&self) -> Option<&RiskStage> {
        self.risk.as_ref()
    }

    /// Decodes and screens a batch of raw inputs; one outcome per input, in order.
    /// A model failure rejects the posts of the batch (`processing_failed`) rather than
    /// losing them.
    pub fn process(&self, inputs: &[(Origin, &[u8])]) -> Vec<Outcome> {
        self.process_timed(inputs).0
    }

    /// [`Screener::process`], with the time spent in each stage.
    pub fn process_timed(&self, inputs: &[(Origin, &[u8])]) -> (Vec<Outcome>, StageTimes) {
        // On the pool's threads: the stages' parallel steps (and the encoder's, many per
        // layer) are then forked from a worker, not injected from outside at the cost
        // of a sleep and a wake-up of the calling thread each (a pass of 8 posts took
        // about a third less time so).
        rayon::scope(|_| self.process_timed_on_pool(inputs))
    }

    fn process_timed_on_pool(&self, inputs: &[(Origin, &[u8])]) -> (Vec<Outcome>, StageTimes) {
        let mut times = StageTimes::default();
        let started = Instant::now();
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(inputs.len());
        let mut posts = Vec::new();
        let mut slots = Vec::new();
        for (i, (origin, bytes)) in inputs.iter().enumerate() {
            match decode(bytes, self.max_message_bytes) {
                Ok(post) if self.redaction.id_exposes_identifier(&post.id) => {
                    outcomes.push(Some(Outcome::Rejected(
                        self.rejected_record(
                            origin.clone(),
                            "identifier_in_id",
                            "field `id` holds what the redaction rules take for a personal \
                         identifier; ids are copied into every output, use an opaque id"
                                .to_string(),
                            None,
                            bytes,
                        ),
                    )))
                }
                Ok(post) => {
                    posts.push(post);
                    slots.push(i);
                    outcomes.push(None);
                }
                Err(rejection) => outcomes.push(Some(Outcome::Rejected(self.reject(
                    origin.clone(),
                    &rejection,
                    bytes,
                )))),
            }
        }
        times.decode = started.elapsed();
        match self.screen_timed(&posts, &mut times) {
            Ok(records) => {
                for (slot, record) in slots.into_iter().zip(records) {
                    outcomes[slot] = Some(Outcome::Screened(record));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, posts = posts.len(), "screening failed; dead-lettering the batch");
                for (slot, post) in slots.into_iter().zip(&posts) {
                    let (origin, bytes) = &inputs[slot];
                    let record = self.rejected_record(
                        origin.clone(),
                        "processing_failed",
                        e.to_string(),
                        Some(post.id.clone()),
                        bytes,
                    );
                    outcomes[slot] = Some(Outcome::Rejected(record));
                }
            }
        }
        (
            outcomes
                .into_iter()
                .map(|o| o.expect("every input has an outcome"))
                .collect(),
            times,
        )
    }

    /// Screens decoded posts.
    pub fn screen(&self, posts: &[InputPost]) -> Result<Vec<ScreenedRecord>, RiskError> {
        self.screen_timed(posts, &mut StageTimes::default())
    }

    fn screen_timed(
        &self,
        posts: &[InputPost],
        times: &mut StageTimes,
    ) -> Result<Vec<ScreenedRecord>, RiskError> {
        let raw: Vec<&str> = posts.iter().map(|p| p.text.as_str()).collect();
        let encoder = self.risk.as_ref().map(RiskStage::encoder);
        let Prepared {
            langs,
            redacted,
            features,
        } = self.prepare(encoder, &raw, times)?;
        let clock = Instant::now();
        let risks = match &self.risk {
            Some(stage) if !posts.is_empty() => {
                let texts: Vec<&str> = redacted.iter().map(|r| r.text.as_str()).collect();
                let text_langs: Vec<Option<&str>> =
                    langs.iter().map(|l| known_language(l.code)).collect();
                times.model_batch = texts.len();
                let scored = stage.score_encoded(&texts, &text_langs, &features)?;
                times.repost_cache_hits = scored.repost_cache_hits;
                scored.risks.into_iter().map(Some).collect()
            }
            _ => vec![None; posts.len()],
        };
        times.risk = clock.elapsed();
        let clock = Instant::now();
        let now = Utc::now();
        let records = posts
            .iter()
            .zip(langs)
            .zip(redacted)
            .zip(risks)
            .map(|(((post, lang), redacted), risk)| {
                let route = self.routing.route(&lang, &redacted.spans, risk.as_ref());
                ScreenedRecord {
                    id: post.id.clone(),
                    lang,
                    redacted_text: redacted.text,
                    redactions: redacted.spans,
                    risk,
                    route,
                    channel: post.channel,
                    country: post.country.clone(),
                    created_at: post.created_at,
                    processed_at: now,
                    vigie_version: VIGIE_VERSION.to_string(),
                }
            })
            .collect();
        times.routing = clock.elapsed();
        Ok(records)
    }

    /// Language, redaction and the risk stage's view of a batch of raw texts, as
    /// [`Screener::screen`] computes them, with `encoder` for the tagger's pass (none: the
    /// rules alone, and no pooled features).
    fn prepare(
        &self,
        encoder: Option<&Encoder>,
        texts: &[&str],
        times: &mut StageTimes,
    ) -> Result<Prepared, RiskError> {
        let clock = Instant::now();
        // Per post and independent: spread over the cores, which the encoder pass alone
        // keeps busy otherwise (one thread for these left the API at two thirds of the
        // encoder's rate once the encoder ran on AMX).
        let langs: Vec<_> = texts.par_iter().map(|t| self.language.detect(t)).collect();
        times.language = clock.elapsed();
        let clock = Instant::now();
        // One encoder pass over the raw texts: the tagger reads its token states, and the
        // risk heads pool them without the redacted tokens.
        let tagged = self.tag(encoder, texts)?;
        let redacted: Vec<_> = texts
            .par_iter()
            .zip(&langs)
            .zip(&tagged.spans)
            .map(|((t, l), spans)| self.redaction.redact_tagged(t, rule_language(l), spans))
            .collect();
        let features = tagged
            .encoded
            .par_iter()
            .zip(&redacted)
            .map(|(pass, r)| {
                let hidden: Vec<(usize, usize)> =
                    r.spans.iter().map(|s| (s.start, s.end)).collect();
                pass.as_ref().map(|p| p.features_without(&hidden))
            })
            .collect();
        times.redaction = clock.elapsed();
        Ok(Prepared {
            langs,
            redacted,
            features,
        })
    }

    /// What the risk heads read of each text, computed exactly as [`Screener::screen`]
    /// computes it but with the given encoder: training runs the f32 pass here, so the
    /// heads are fitted on the vectors they will be given (the raw text's pass pooled
    /// without the redacted tokens; the redacted text itself when it was read in pieces).
    pub fn prepare_for_risk(
        &self,
        encoder: &Encoder,
        texts: &[&str],
    ) -> Result<Prepared, RiskError> {
        self.prepare(Some(encoder), texts, &mut StageTimes::default())
    }

    /// The tagger's spans for each text, and the encoder pass they came from; nothing
    /// when the tagger is off or there is no encoder to run it on.
    fn tag(&self, encoder: Option<&Encoder>, texts: &[&str]) -> Result<TaggedBatch, RiskError> {
        match (&self.tagger, encoder) {
            (Some(tagger), Some(encoder)) if !texts.is_empty() => {
                Ok(tagger.tag_batch(encoder, texts)?)
            }
            _ => Ok(TaggedBatch {
                spans: vec![Vec::new(); texts.len()],
                encoded: vec![None; texts.len()],
            }),
        }
    }

    /// Redacts one text as the pipeline does (language, tagger, rules): what `vigie eval
    /// redaction` and `vigie rules explain` measure and show.
    pub fn redact_text(&self, text: &str) -> Result<crate::stages::redaction::Redacted, RiskError> {
        let lang = rule_language(&self.language.detect(text));
        let tagged = self.tag(self.risk.as_ref().map(RiskStage::encoder), &[text])?;
        Ok(self.redaction.redact_tagged(text, lang, &tagged.spans[0]))
    }

    /// What the token tagger finds in one text (nothing when it is off).
    pub fn tagged(&self, text: &str) -> Result<Vec<vigie_models::tagger::TaggedSpan>, RiskError> {
        let encoder = self.risk.as_ref().map(RiskStage::encoder);
        Ok(self.tag(encoder, &[text])?.spans.swap_remove(0))
    }

    /// The loaded token tagger's [`TokenTagger::fingerprint`], if one is loaded.
    pub fn tagger_fingerprint(&self) -> Option<u64> {
        self.tagger.as_ref().map(TokenTagger::fingerprint)
    }

    /// Whether the token tagger runs.
    pub fn tags(&self) -> bool {
        self.tagger.is_some() && self.risk.is_some()
    }

    fn reject(&self, origin: Origin, rejection: &Rejection, bytes: &[u8]) -> RejectedRecord {
        self.rejected_record(
            origin,
            rejection.error.reason(),
            rejection.error.to_string(),
            // An id is only passed on when it exposes no one.
            rejection
                .id
                .clone()
                .filter(|id| !self.redaction.id_exposes_identifier(id)),
            bytes,
        )
    }

    fn rejected_record(
        &self,
        origin: Origin,
        reason: &str,
        detail: String,
        id: Option<String>,
        bytes: &[u8],
    ) -> RejectedRecord {
        RejectedRecord {
            origin,
            reason: reason.to_string(),
            detail,
            id,
            payload_bytes: bytes.len(),
            redacted_payload: self.redaction.redact_payload(bytes, self.excerpt_chars),
            rejected_at: Utc::now(),
            vigie_version: VIGIE_VERSION.to_string(),
        }
    }
}

/// The redaction stage as configured (rules, name lists, threshold, replacement mode):
/// the pipeline and the console redact with exactly the same one.
pub fn redaction_stage(config: &Config) -> Result<RedactionStage, BuildError> {
    let mut rules = match &config.redaction.rules_dir {
        Some(dir) => RuleSet::load_dir(dir)?,
        None => RuleSet::builtin()?,
    };
    match config.gazetteers_dir() {
        Some(dir) => {
            let lists = rules.load_gazetteers(&dir)?;
            tracing::info!(dir = %dir.display(), name_lists = lists, "gazetteers loaded");
        }
        None => tracing::warn!("no gazetteers directory: no name lists for redaction"),
    }
    Ok(RedactionStage::new(
        rules,
        config.redaction.threshold,
        config.redaction.replace_mode()?,
    )
    .with_not_a_patient(&config.redaction.not_a_patient))
}

/// The languages whose redaction rules run on a post: fr, en, or fr+en when it mixes the
/// two; None (every rule) when it is in another language or undetermined.
pub fn rule_language(lang: &crate::contract::Lang) -> Option<&'static str> {
    match known_language(lang.code) {
        Some(_) if lang.mixed => Some("fr+en"),
        known => known,
    }
}

/// fr or en, for language-specific rules; None when other or undetermined.
pub fn known_language(code: crate::contract::LangCode) -> Option<&'static str> {
    match code {
        crate::contract::LangCode::Fr => Some("fr"),
        crate::contract::LangCode::En => Some("en"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{LangCode, Reason};
    use crate::stages::risk::tests::tiny_stage;

    fn origin(line: usize) -> Origin {
        Origin::Line {
            file: "t.jsonl".into(),
            line,
        }
    }

    #[test]
    fn batch_outcomes_keep_input_order() {
        let s = Screener::with_risk(&Config::default(), Some(tiny_stage())).unwrap();
        let inputs: Vec<(Origin, &[u8])> = vec![
            (origin(1), br#"{"id":"a","text":"Le vaccin cause autisme chez les enfants, il faut appeler le 06 12 34 56 78 pour en parler","channel":"forum"}"#),
            (origin(2), b"not json"),
            (origin(3), br#"{"id":"c","text":"the measles vaccine is safe","channel":"newsfeed"}"#),
        ];
        let out = s.process(&inputs);
        assert_eq!(out.len(), 3);
        let Outcome::Screened(a) = &out[0] else {
            panic!("a screened")
        };
        assert_eq!(a.id, "a");
        assert_eq!(a.lang.code, LangCode::Fr);
        assert!(a.redacted_text.contains("[PHONE]") && !a.redacted_text.contains("06 12"));
        assert!(a.route.reasons.contains(&Reason::Privacy));
        let Outcome::Rejected(b) = &out[1] else {
            panic!("b rejected")
        };
        assert_eq!(b.reason, "malformed_json");
        assert_eq!(b.origin, origin(2));
        let Outcome::Screened(c) = &out[2] else {
            panic!("c screened")
        };
        assert!(c.risk.as_ref().unwrap().score < a.risk.as_ref().unwrap().score);
    }

    #[test]
    fn a_post_mixing_french_and_english_gets_both_languages_rules() {
        // Upper-case surnames are a French habit (a rule for French posts only); ten bare
        // digits shaped like a NANP number a phone in English posts only.
        let config = Config {
            gazetteers_dir: Some(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/gazetteers"),
            ),
            ..Config::default()
        };
        let s = Screener::with_risk(&config, None).unwrap();
        let screened = |text: &str| {
            let json =
                serde_json::json!({"id": "m1", "text": text, "channel": "forum"}).to_string();
            let out = s.process(&[(origin(1), json.as_bytes())]);
            let Some(Outcome::Screened(record)) = out.into_iter().next() else {
                panic!("{text} not screened")
            };
            let rules: Vec<String> = record.redactions.iter().map(|s| s.rule.clone()).collect();
            (record.lang, record.redacted_text, rules)
        };
        let (lang, out, rules) = screened("le patient DIALLO est sorti, rappeler le 5145550199");
        assert_eq!((lang.code, lang.mixed), (LangCode::Fr, false), "{out}");
        assert!(!out.contains("DIALLO"), "{out}");
        assert!(!rules.iter().any(|r| r == "phone_nanp_bare"), "{rules:?}");
        let (lang, out, rules) = screened("patient DIALLO went home, call back at 5145550199");
        assert_eq!((lang.code, lang.mixed), (LangCode::En, false), "{out}");
        assert!(out.contains("DIALLO"), "{out}");
        assert!(rules.iter().any(|r| r == "phone_nanp_bare"), "{rules:?}");
        let (lang, out, rules) =
            screened("le patient DIALLO est sorti, call him back at 5145550199 asap");
        assert!(lang.mixed, "{lang:?}");
        assert!(!out.contains("DIALLO"), "{out}");
        assert!(rules.iter().any(|r| r == "phone_nanp_bare"), "{rules:?}");
    }

    #[test]
    fn risk_off_gives_null_risk() {
        let s = Screener::with_risk(&Config::default(), None).unwrap();
        let out = s.process(&[(
            origin(1),
            br#"{"id":"a","text":"hello there friends","channel":"forum"}"#,
        )]);
        let Outcome::Screened(a) = &out[0] else {
            panic!()
        };
        assert!(a.risk.is_none());
        assert!(!a.route.is_flagged());
    }
}
