//! Risk stage: misinformation score from the encoder and the trained head, raised when a
//! post restates a known false claim (`models/claims/`).
//! It reads the redacted text: identifiers carry no signal about rumours, and the model
//! then never sees them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use vigie_models::claims::{self, ClaimIndex};
use vigie_models::repost_cache::RepostCache;
use vigie_models::{Encoder, RiskHead};

use crate::contract::{MatchedClaim, Risk, RiskLabel};

/// At most this many claims are reported per post.
const MAX_CLAIMS: usize = 3;
/// How often a claims directory is checked for edits.
const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// Words with which posts report a claim as false. A post that restates a claim in
/// order to refute it embeds close to the claim (the encoder barely sees negation), so
/// with one of these cues the match is still reported but does not raise the score.
const DEBUNK_CUES: &[&str] = &[
    "myth",
    "hoax",
    "debunk",
    "fake news",
    "false claim",
    "not true",
    "untrue",
    "no evidence",
    "does not cause",
    "doesn't cause",
    "fact check",
    "fact-check",
    "c'est faux",
    "infox",
    "intox",
    "fausse information",
    "aucune preuve",
    "ne provoque pas",
    "ne cause pas",
    "ne rend pas",
    "idée reçue",
];

fn debunks(text: &str) -> bool {
    let lower = text.to_lowercase().replace('’', "'");
    DEBUNK_CUES.iter().any(|cue| lower.contains(cue))
}

/// Where the known claims come from: the built-in files, or a directory that staff edit
/// and that is reloaded when its files change.
pub enum ClaimSource {
    None,
    Builtin,
    Dir(PathBuf),
}

struct Reload {
    dir: PathBuf,
    checked: Instant,
    stamp: Vec<(PathBuf, Option<std::time::SystemTime>, u64)>,
}

pub struct RiskStage {
    encoder: Encoder,
    head: RiskHead,
    threshold: f32,
    model_name: String,
    claims: RwLock<Arc<ClaimIndex>>,
    reload: Option<Mutex<Reload>>,
    claim_threshold: f32,
    /// Reposts of a text (give or take spacing and invisible characters) are embedded once.
    cache: RepostCache,
}

/// A scored batch.
pub struct Scored {
    pub risks: Vec<Risk>,
    /// Texts whose embedding the repost cache held.
    pub repost_cache_hits: usize,
}

/// Embeddings kept for reposts (about 1.6 kB each: 16 MB).
pub const REPOST_CACHE_ENTRIES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    #[error("head expects {head}-dimensional embeddings but the encoder makes {encoder}")]
    DimensionMismatch { head: usize, encoder: usize },
    #[error(transparent)]
    Model(#[from] vigie_models::ModelError),
}

/// Risk added by a known claim at `similarity` (≥ the match threshold `t`): 0.6 at the
/// threshold, rising to 0.95 at t + 0.04 (restatements measured 0.94-0.98).
fn claim_risk(similarity: f32, t: f32) -> f32 {
    (0.6 + (similarity - t) / 0.04 * 0.35).clamp(0.6, 0.95)
}

impl RiskStage {
    pub fn new(encoder: Encoder, head: RiskHead, threshold: f32) -> Result<Self, RiskError> {
        if head.dim() != encoder.dim() {
            return Err(RiskError::DimensionMismatch {
                head: head.dim(),
                encoder: encoder.dim(),
            });
        }
        let model_name = format!("{}+{}", head.encoder, head.kind_name());
        Ok(RiskStage {
            encoder,
            head,
            threshold,
            model_name,
            claims: RwLock::new(Arc::new(ClaimIndex::empty())),
            reload: None,
            claim_threshold: 1.1,
            cache: RepostCache::new(REPOST_CACHE_ENTRIES),
        })
    }

    /// Matches posts against known claims from `source`; a match at or above
    /// `match_threshold` (cosine) is reported and raises the score.
    pub fn with_claims(
        mut self,
        source: ClaimSource,
        match_threshold: f32,
    ) -> Result<Self, RiskError> {
        let claims = match &source {
            ClaimSource::None => Vec::new(),
            ClaimSource::Builtin => claims::builtin_claims()?,
            ClaimSource::Dir(dir) => claims::load_dir(dir)?,
        };
        let index = ClaimIndex::build(claims, &self.encoder)?;
        tracing::info!(claims = index.len(), "known-claim library indexed");
        self.claims = RwLock::new(Arc::new(index));
        if let ClaimSource::Dir(dir) = source {
            let stamp = claims::dir_stamp(&dir)?;
            self.reload = Some(Mutex::new(Reload {
                dir,
                checked: Instant::now(),
                stamp,
            }));
        }
        self.claim_threshold = match_threshold;
        Ok(self)
    }

    /// The current claim index, reloaded first if its directory changed. A library that
    /// no longer parses is reported and the previous one kept.
    fn claim_index(&self) -> Arc<ClaimIndex> {
        if let Some(reload) = &self.reload {
            let mut r = reload.lock().unwrap_or_else(|p| p.into_inner());
            if r.checked.elapsed() >= RELOAD_CHECK {
                r.checked = Instant::now();
                match claims::dir_stamp(&r.dir) {
                    Ok(stamp) if stamp != r.stamp => {
                        match claims::load_dir(&r.dir)
                            .and_then(|c| ClaimIndex::build(c, &self.encoder))
                        {
                            Ok(index) => {
                                tracing::info!(claims = index.len(), dir = %r.dir.display(), "known-claim library reloaded");
                                *self.claims.write().unwrap_or_else(|p| p.into_inner()) =
                                    Arc::new(index);
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "claim library not reloaded; keeping the previous one")
                            }
                        }
                        r.stamp = stamp;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot check the claims directory"),
                }
            }
        }
        self.claims
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Scores a batch of (redacted) texts of unknown language, in order.
    pub fn score<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Risk>, RiskError> {
        Ok(self.score_in(texts, &vec![None; texts.len()])?.risks)
    }

    /// Scores a batch of (redacted) texts, in order, each in the language detected for
    /// it (`None` when unknown): the head has weights of its own for some languages.
    pub fn score_in<S: AsRef<str>>(
        &self,
        texts: &[S],
        langs: &[Option<&str>],
    ) -> Result<Scored, RiskError> {
        let embedded = self.cache.embed(&self.encoder, texts)?;
        let index = self.claim_index();
        let embeddings = embedded.vectors;
        let risks = texts
            .iter()
            .zip(&embeddings)
            .zip(langs.iter().chain(std::iter::repeat(&None)))
            .map(|((text, e), lang)| {
                let (head_score, probability) = self.head.scores(e, *lang)?;
                let matches = index.matches(e, MAX_CLAIMS, self.claim_threshold);
                let mut score = probability;
                if let Some(best) = matches.first() {
                    if !debunks(text.as_ref()) {
                        score = score.max(claim_risk(best.similarity, self.claim_threshold));
                    }
                }
                let claims = matches
                    .into_iter()
                    .filter_map(|m| {
                        index.claim(&m.id).map(|c| MatchedClaim {
                            id: m.id,
                            similarity: m.similarity,
                            topic: c.topic.clone(),
                            lang: c.lang.clone(),
                            text: c.text.clone(),
                        })
                    })
                    .collect();
                let label = if score >= self.threshold {
                    RiskLabel::Misinformation
                } else {
                    RiskLabel::Reliable
                };
                Ok(Risk {
                    score,
                    label,
                    model: self.model_name.clone(),
                    head_score,
                    probability,
                    claims,
                })
            })
            .collect::<Result<_, RiskError>>()?;
        Ok(Scored {
            risks,
            repost_cache_hits: embedded.hits,
        })
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    pub fn head(&self) -> &RiskHead {
        &self.head
    }

    /// Sets how many embeddings are kept for reposts (0 turns the cache off).
    pub fn with_repost_cache(mut self, entries: usize) -> Self {
        self.cache = RepostCache::new(entries);
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vigie_models::encoder::testing::tiny_encoder;
    use vigie_models::head::Classifier;
    use vigie_models::TrainOptions;

    pub(crate) fn tiny_stage() -> RiskStage {
        crate::testing::tiny_risk_stage()
    }

    #[test]
    fn scores_follow_the_trained_head() {
        let stage = tiny_stage();
        let r = stage
            .score(&["vaccine causes autism", "the measles vaccine is safe"])
            .unwrap();
        assert!(r[0].score > r[1].score, "{r:?}");
        assert_eq!(r[0].label, RiskLabel::Misinformation);
        assert_eq!(r[1].label, RiskLabel::Reliable);
        assert_eq!(r[0].model, "tiny+logreg");
    }

    fn claim_file(dir: &std::path::Path, id: &str, text: &str) {
        let entry = format!("[[claim]]\nid = \"{id}\"\nlang = \"en\"\ntopic = \"vaccines\"\ntext = \"{text}\"\nsource = \"s\"\nsource_url = \"https://e\"\n");
        std::fs::write(dir.join(format!("{id}.toml")), entry).unwrap();
    }

    #[test]
    fn a_known_claim_is_reported_and_raises_the_score_unless_the_post_debunks_it() {
        let dir = tempfile::tempdir().unwrap();
        claim_file(dir.path(), "c-measles", "the measles vaccine is safe");
        // Matching threshold 0.99: only (near) restatements match the tiny random model.
        let stage = tiny_stage()
            .with_claims(ClaimSource::Dir(dir.path().into()), 0.99)
            .unwrap();
        let r = stage
            .score(&[
                "the measles vaccine is safe",
                "the measles vaccine is safe: a hoax says otherwise",
                "vaccine causes autism",
            ])
            .unwrap();
        assert_eq!(r[0].claims.len(), 1);
        assert_eq!(r[0].claims[0].id, "c-measles");
        assert!(r[0].probability < 0.5 && r[0].score >= 0.6, "{:?}", r[0]);
        assert_eq!(r[0].label, RiskLabel::Misinformation);
        assert!(r[2].claims.is_empty());
        assert_eq!(r[2].score, r[2].probability);
        if !r[1].claims.is_empty() {
            assert_eq!(
                r[1].score, r[1].probability,
                "a debunking cue keeps the match from raising the score"
            );
        }
    }

    #[test]
    fn an_edited_claims_directory_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        claim_file(dir.path(), "c1", "the measles vaccine is safe");
        let stage = tiny_stage()
            .with_claims(ClaimSource::Dir(dir.path().into()), 0.99)
            .unwrap();
        assert!(stage.score(&["vaccine causes autism"]).unwrap()[0]
            .claims
            .is_empty());
        claim_file(dir.path(), "c2", "vaccine causes autism");
        stage.reload.as_ref().unwrap().lock().unwrap().checked -= RELOAD_CHECK; // as if 5 s had passed
        assert_eq!(
            stage.score(&["vaccine causes autism"]).unwrap()[0].claims[0].id,
            "c2"
        );
        std::fs::write(dir.path().join("broken.toml"), "[[claim]]\nid = 1\n").unwrap();
        stage.reload.as_ref().unwrap().lock().unwrap().checked -= RELOAD_CHECK;
        assert_eq!(
            stage.score(&["vaccine causes autism"]).unwrap()[0].claims[0].id,
            "c2",
            "a broken edit keeps the last good library"
        );
    }

    #[test]
    fn debunking_cues() {
        assert!(debunks(
            "C’est faux : le vaccin ROR ne provoque pas l'autisme"
        ));
        assert!(debunks("MYTH: 5G spreads COVID"));
        assert!(!debunks("Le vaccin ROR provoque l'autisme, partagez"));
    }

    #[test]
    fn mismatched_head_is_refused() {
        let head = RiskHead {
            encoder: "x".into(),
            classifier: Classifier::Logistic {
                weights: vec![0.0; 3],
                bias: 0.0,
            },
            calibration: Default::default(),
            trained_on: vec![],
            adapted_languages: vec![],
            trained_ids: vec![],
            options: TrainOptions::default(),
        };
        assert!(matches!(
            RiskStage::new(tiny_encoder(1), head, 0.5),
            Err(RiskError::DimensionMismatch { .. })
        ));
    }
}
