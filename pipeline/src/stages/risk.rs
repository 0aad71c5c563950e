//! Risk stage: does a post spread a false health claim, discuss one, or neither.
//!
//! One encoder pass per post feeds every judgement:
//! - the **claim gate** (a head trained on ordinary posts against health claims): chatter,
//!   thanks, scheduling and logistics pass whatever the misinformation head says;
//! - the **known-claim library** (`models/claims/`), matched across French and English;
//! - the **misinformation head**, as before;
//! - the **stance** signs (`models/cues/stance.toml`): a post that asks about, refutes or
//!   reports a rumour is a `rumour-signal` for programme staff, not misinformation.
//!
//! Posts in other languages are `unscored-language`: no head here was validated on them.
//! It reads the redacted text: identifiers carry no signal about rumours, and the model
//! then never sees them.

use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use vigie_models::claim_map::ClaimMap;
use vigie_models::claims::{self, ClaimIndex};
use vigie_models::repost_cache::RepostCache;
use vigie_models::stance_classes::{StanceClassifier, STANCES};
use vigie_models::stance_cues::{StanceCues, StanceSigns};
use vigie_models::{Encoder, RiskHead};

use crate::contract::{MatchedClaim, Risk, RiskBasis, RiskLabel, RiskOutcome, Stance};

/// At most this many claims are reported per post.
const MAX_CLAIMS: usize = 3;
/// How often a claims directory and claim files are checked for edits.
const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// Where the known claims come from: the built-in files, or a directory that staff edit
/// and that is reloaded when its files change.
pub enum ClaimSource {
    None,
    Builtin,
    Dir(PathBuf),
}

/// The whole library: its base ([`ClaimSource`]) and fact-checkers' files added to it
/// (claim rows or ClaimReview, as `vigie claims import` reads them), their claims of
/// `skip_topics` left out. Reloaded when the directory or a file changes.
pub struct ClaimLibrary {
    pub source: ClaimSource,
    pub files: Vec<PathBuf>,
    pub skip_topics: Vec<String>,
}

impl From<ClaimSource> for ClaimLibrary {
    fn from(source: ClaimSource) -> Self {
        ClaimLibrary {
            source,
            files: Vec::new(),
            skip_topics: Vec::new(),
        }
    }
}

type Stamp = Vec<(PathBuf, Option<std::time::SystemTime>, u64)>;

impl ClaimLibrary {
    /// Every claim of the library, validated together.
    pub fn load(&self) -> Result<Vec<claims::Claim>, vigie_models::ModelError> {
        let mut all = match &self.source {
            ClaimSource::None => Vec::new(),
            ClaimSource::Builtin => claims::builtin_claims()?,
            ClaimSource::Dir(dir) => claims::load_dir(dir)?,
        };
        let added = claims::from_feeds(&self.files, &self.skip_topics, &all)?;
        all.extend(added);
        claims::validate(&all)?;
        Ok(all)
    }

    /// What is watched for edits: nothing for the built-in files alone.
    fn stamp(&self) -> Result<Option<Stamp>, vigie_models::ModelError> {
        let mut stamp = match &self.source {
            ClaimSource::Dir(dir) => claims::dir_stamp(dir)?,
            _ if self.files.is_empty() => return Ok(None),
            _ => Vec::new(),
        };
        stamp.extend(claims::files_stamp(&self.files));
        Ok(Some(stamp))
    }
}

struct Reload {
    library: ClaimLibrary,
    checked: Instant,
    stamp: Stamp,
}

pub struct RiskStage {
    encoder: Encoder,
    head: RiskHead,
    threshold: f32,
    /// The claim gate and the probability from which a post counts as making a claim;
    /// without one every post of a scored language counts as a claim.
    gate: Option<(RiskHead, f32)>,
    /// The stance head (positive: the post keeps its distance from the rumour it
    /// discusses) and its threshold; without one only the cue words read stance.
    stance: Option<(RiskHead, f32)>,
    /// Which of the four stances a post takes (the record's `stance`); without one the
    /// cue words and the stance head name it.
    stance_classes: Option<StanceClassifier>,
    cues: StanceCues,
    model_name: String,
    claims: RwLock<Arc<ClaimIndex>>,
    reload: Option<Mutex<Reload>>,
    claim_threshold: f32,
    /// The learned post-to-claim map and its own threshold; without one, posts are
    /// matched by plain cosine at `claim_threshold`.
    claim_map: Option<ClaimMap>,
    /// Reposts of a text (give or take spacing and invisible characters) are embedded once.
    cache: RepostCache,
}

/// A scored batch.
pub struct Scored {
    pub risks: Vec<Risk>,
    /// Texts whose embedding the repost cache held.
    pub repost_cache_hits: usize,
}

/// Texts whose features are kept for reposts (6 kB each: 61 MB when full).
pub const REPOST_CACHE_ENTRIES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    #[error(
        "the head reads {head} values per post but the encoder's features are {encoder} wide \
         (a head reads the embedding or the embedding and tapped layers)"
    )]
    DimensionMismatch { head: usize, encoder: usize },
    #[error(
        "the {which} reads {head} values per post but the encoder's embeddings are {encoder} wide: \
         give [risk] a {which} trained for this encoder, or switch it off"
    )]
    AuxiliaryMismatch {
        which: &'static str,
        head: usize,
        encoder: usize,
    },
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
        if !reads_features_of(&encoder, head.dim()) {
            return Err(RiskError::DimensionMismatch {
                head: head.dim(),
                encoder: encoder.feature_dim(),
            });
        }
        let model_name = format!("{}+{}", head.encoder, head.kind_name());
        Ok(RiskStage {
            encoder,
            head,
            threshold,
            gate: None,
            stance: None,
            stance_classes: None,
            cues: StanceCues::builtin()?,
            model_name,
            claims: RwLock::new(Arc::new(ClaimIndex::empty())),
            reload: None,
            claim_threshold: 1.1,
            claim_map: None,
            cache: RepostCache::new(REPOST_CACHE_ENTRIES),
        })
    }

    /// A model added beside the head (`which`) must read this encoder's embeddings, or
    /// (`features`) the embedding and some of its tapped layers.
    fn check_width(
        &self,
        which: &'static str,
        width: usize,
        features: bool,
    ) -> Result<(), RiskError> {
        let fits = if features {
            reads_features_of(&self.encoder, width)
        } else {
            width == self.encoder.dim()
        };
        if fits {
            return Ok(());
        }
        Err(RiskError::AuxiliaryMismatch {
            which,
            head: width,
            encoder: self.encoder.dim(),
        })
    }

    /// Judges first whether a post makes a health claim at all, with `gate` (a head
    /// whose positive class is "makes or discusses a checkable health claim"): below
    /// `threshold` (its calibrated probability) a post passes.
    pub fn with_gate(mut self, gate: RiskHead, threshold: f32) -> Result<Self, RiskError> {
        self.check_width("claim gate", gate.dim(), true)?;
        self.gate = Some((gate, threshold));
        Ok(self)
    }

    /// Reads stance with `head` too (positive class: the post asks about, refutes or
    /// reports the rumour it discusses) from `threshold` on, beside the cue words.
    pub fn with_stance(mut self, head: RiskHead, threshold: f32) -> Result<Self, RiskError> {
        self.check_width("stance head", head.dim(), true)?;
        self.stance = Some((head, threshold));
        Ok(self)
    }

    /// Matches posts to known claims through `map` (a post is compared as `unit(x W)`,
    /// from the map's own threshold), and counts a matched claim only when the claim gate
    /// agrees the post makes a claim: the map reaches paraphrases and other languages,
    /// and with them some ordinary posts on a rumour's topic.
    pub fn with_claim_map(mut self, map: ClaimMap) -> Result<Self, RiskError> {
        self.check_width("claim map", map.dim, false)?;
        self.claim_map = Some(map);
        Ok(self)
    }

    /// Known claims matching a post, best first, and the threshold they passed.
    fn match_claims(
        &self,
        embedding: &[f32],
        index: &ClaimIndex,
    ) -> Result<(Vec<vigie_models::claims::ClaimMatch>, f32), RiskError> {
        Ok(match &self.claim_map {
            Some(map) => (
                index.matches(&map.apply(embedding)?, MAX_CLAIMS, map.threshold),
                map.threshold,
            ),
            None => (
                index.matches(embedding, MAX_CLAIMS, self.claim_threshold),
                self.claim_threshold,
            ),
        })
    }

    /// Names each post's stance with `classes` (supports, denies, queries, comments).
    pub fn with_stance_classes(mut self, classes: StanceClassifier) -> Result<Self, RiskError> {
        self.check_width("stance classifier", classes.embedding_dim, true)?;
        self.stance_classes = Some(classes);
        Ok(self)
    }

    /// The stance the classifier reads in a post, when there is one.
    fn classify_stance(
        &self,
        features: &[f32],
        signs: &StanceSigns,
    ) -> Result<Option<Stance>, RiskError> {
        let Some(classes) = &self.stance_classes else {
            return Ok(None);
        };
        let (best, _) = classes.classify(features, signs)?;
        Ok(stance_named(STANCES[best]))
    }

    /// Matches posts against the known claims of `library` (a [`ClaimSource`] alone, or
    /// with files added); a match at or above `match_threshold` (cosine) is reported and
    /// raises the score.
    pub fn with_claims(
        mut self,
        library: impl Into<ClaimLibrary>,
        match_threshold: f32,
    ) -> Result<Self, RiskError> {
        let library = library.into();
        let index = ClaimIndex::build(library.load()?, &self.encoder)?;
        tracing::info!(claims = index.len(), "known-claim library indexed");
        self.claims = RwLock::new(Arc::new(index));
        if let Some(stamp) = library.stamp()? {
            self.reload = Some(Mutex::new(Reload {
                library,
                checked: Instant::now(),
                stamp,
            }));
        }
        self.claim_threshold = match_threshold;
        Ok(self)
    }

    /// The current claim index, reloaded first if its directory changed. A library that
    /// no longer parses is reported and the previous one kept. A pass that finds another
    /// checking or reloading goes on with the current index rather than wait: the reload
    /// runs the encoder on the pool's threads, which may take up that very pass while
    /// they wait, and it would then wait on itself.
    fn claim_index(&self) -> Arc<ClaimIndex> {
        if let Some(reload) = &self.reload {
            let held = match reload.try_lock() {
                Ok(r) => Some(r),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(mut r) = held.filter(|r| r.checked.elapsed() >= RELOAD_CHECK) {
                r.checked = Instant::now();
                match r.library.stamp() {
                    Ok(Some(stamp)) if stamp != r.stamp => {
                        match r
                            .library
                            .load()
                            .and_then(|c| ClaimIndex::build(c, &self.encoder))
                        {
                            Ok(index) => {
                                tracing::info!(
                                    claims = index.len(),
                                    "known-claim library reloaded"
                                );
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
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot check the claims directory or files")
                    }
                }
            }
        }
        self.claims
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Scores a batch of (redacted) texts, in order, each in the language detected for
    /// it: `Some("fr")` or `Some("en")` are judged (the head has weights of its own for
    /// some languages); `None` (another or no language) is `unscored-language`.
    pub fn score_in<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        langs: &[Option<&str>],
    ) -> Result<Scored, RiskError> {
        self.score_encoded(texts, langs, &[])
    }

    /// [`RiskStage::score_in`], taking the features already made in the pipeline's one
    /// encoder pass (`features[i]`, when `Some`: the raw text's tokens without the
    /// redacted ones) rather than running the encoder again; texts without are embedded
    /// here.
    pub fn score_encoded<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        langs: &[Option<&str>],
        features: &[Option<Vec<f32>>],
    ) -> Result<Scored, RiskError> {
        let lang_of = |i: usize| langs.get(i).copied().flatten();
        // Only posts that can hold a claim, in a language the heads know, are embedded.
        let judged: Vec<usize> = (0..texts.len())
            .filter(|&i| lang_of(i).is_some() && has_claim_text(texts[i].as_ref()))
            .collect();
        let (vectors, repost_cache_hits) = self.embeddings_of(texts, features, &judged)?;
        let index = self.claim_index();
        let posts: Vec<Judged<'_>> = judged
            .iter()
            .zip(&vectors)
            .filter_map(|(&i, features)| {
                Some(Judged {
                    at: i,
                    text: texts[i].as_ref(),
                    lang: lang_of(i)?,
                    features,
                })
            })
            .collect();
        let readings = self.read(&posts, &index)?;
        let mut read = posts.iter().map(|p| p.at).zip(readings).peekable();
        let risks = (0..texts.len())
            .map(|i| match (read.next_if(|(at, _)| *at == i), lang_of(i)) {
                (Some((_, reading)), _) => self.judge(reading, &index),
                (None, Some(_)) => self.unjudged(RiskOutcome::Pass, RiskBasis::NoClaimText),
                (None, None) => self.unjudged(RiskOutcome::UnscoredLanguage, RiskBasis::Language),
            })
            .collect();
        Ok(Scored {
            risks,
            repost_cache_hits,
        })
    }

    /// The features of `texts[i]` for each `i` of `which`, in that order: those
    /// `features` gives, else the text's own (through the repost
    /// cache); and how many of those the cache answered.
    fn embeddings_of<S: AsRef<str>>(
        &self,
        texts: &[S],
        features: &[Option<Vec<f32>>],
        which: &[usize],
    ) -> Result<(Vec<Vec<f32>>, usize), RiskError> {
        let given = |i: usize| features.get(i).and_then(Option::as_ref);
        let to_embed: Vec<&str> = which
            .iter()
            .filter(|&&i| given(i).is_none())
            .map(|&i| texts[i].as_ref())
            .collect();
        let embedded = self.cache.embed(&self.encoder, &to_embed)?;
        let mut fresh = embedded.vectors.into_iter();
        let vectors = which
            .iter()
            .map(|&i| match given(i) {
                Some(v) => v.clone(),
                None => fresh.next().unwrap_or_default(),
            })
            .collect();
        Ok((vectors, embedded.hits))
    }

    /// The stance of each (redacted) reply toward the rumour it answers, as the stage reads
    /// it: a call to share is `supports`; a denial, question or report cue is `denies`,
    /// `queries` or `comments`; the stance head's "keeps distance" is `queries` or
    /// `denies`; otherwise a reply the claim gate takes for a claim `supports` the rumour
    /// and one it does not `comments`. `None` for a language the stage does not judge.
    /// `features` gives those of each reply as [`RiskStage::score_encoded`] takes
    /// it; a reply without one is embedded from its text.
    pub fn read_stance<S: AsRef<str>>(
        &self,
        texts: &[S],
        langs: &[Option<&str>],
        features: &[Option<Vec<f32>>],
    ) -> Result<Vec<Option<Stance>>, RiskError> {
        let all: Vec<usize> = (0..texts.len()).collect();
        let (vectors, _) = self.embeddings_of(texts, features, &all)?;
        let mut out = Vec::with_capacity(texts.len());
        for ((text, e), lang) in texts.iter().zip(&vectors).zip(langs) {
            let Some(lang) = *lang else {
                out.push(None);
                continue;
            };
            let signs = self.cues.signs(text.as_ref());
            if let Some(stance) = self.classify_stance(e, &signs)? {
                out.push(Some(stance));
                continue;
            }
            let distant = match &self.stance {
                Some((head, t)) => head.score(e, Some(lang))? >= *t,
                None => false,
            };
            let claim = match &self.gate {
                Some((gate, t)) => gate.score(e, Some(lang))? >= *t,
                None => true,
            };
            out.push(Some(if signs.amplifies {
                Stance::Supports
            } else if signs.keeps_distance() || distant {
                distant_stance(&signs)
            } else if claim {
                Stance::Supports
            } else {
                Stance::Comments
            }));
        }
        Ok(out)
    }

    /// A post that no model looked at.
    fn unjudged(&self, outcome: RiskOutcome, basis: RiskBasis) -> Risk {
        Risk {
            score: 0.0,
            label: RiskLabel::Reliable,
            model: self.model_name.clone(),
            head_score: 0.0,
            probability: 0.0,
            claims: Vec::new(),
            outcome,
            basis,
            claim_probability: 0.0,
            stance: None,
        }
    }

    /// What every head and the claim library read in each post, head by head over all
    /// the posts: one head's weights (0.5 to 1 MB) then stay in a core's cache while it
    /// reads every post, where post by post all of them (3 to 4 MB, more than a core's
    /// L2) streamed through it again for each (measured: the stage took 6 ms of a pass
    /// of 64 posts). Each value is the one the head gives the post alone.
    fn read(&self, posts: &[Judged<'_>], index: &ClaimIndex) -> Result<Vec<Reading>, RiskError> {
        let heads = posts
            .par_iter()
            .map(|p| self.head.scores(p.features, Some(p.lang)))
            .collect::<Result<Vec<_>, _>>()?;
        let gate_threshold = self.gate.as_ref().map_or(0.0, |(_, t)| *t);
        let claim_probabilities = match &self.gate {
            Some((gate, _)) => posts
                .par_iter()
                .map(|p| gate.score(p.features, Some(p.lang)))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![1.0; posts.len()],
        };
        let keeps_distance = match &self.stance {
            Some((head, t)) => posts
                .par_iter()
                .map(|p| Ok(head.score(p.features, Some(p.lang))? >= *t))
                .collect::<Result<Vec<_>, RiskError>>()?,
            None => vec![false; posts.len()],
        };
        let signs: Vec<StanceSigns> = posts.par_iter().map(|p| self.cues.signs(p.text)).collect();
        let named = posts
            .par_iter()
            .zip(&signs)
            .map(|(p, signs)| self.classify_stance(p.features, signs))
            .collect::<Result<Vec<_>, _>>()?;
        // Claims are matched on the embedding.
        let matches = posts
            .par_iter()
            .map(|p| self.match_claims(self.embedding_of(p.features), index))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(heads
            .into_iter()
            .zip(named)
            .zip(matches)
            .enumerate()
            .map(
                |(k, (((head_score, probability), named_stance), (mut matches, threshold)))| {
                    let claim_probability = claim_probabilities[k];
                    if self.claim_map.is_some() && claim_probability < gate_threshold {
                        matches.clear();
                    }
                    let known_claim = matches
                        .first()
                        .map(|best| claim_risk(best.similarity, threshold));
                    Reading {
                        head_score,
                        matches,
                        evidence: Evidence {
                            keeps_distance: keeps_distance[k],
                            named_stance,
                            claim_probability,
                            gate_threshold,
                            head_probability: probability,
                            known_claim,
                            signs: signs[k],
                        },
                    }
                },
            )
            .collect())
    }

    /// The judgement on one embedded post of a scored language, from what was read in it.
    fn judge(&self, reading: Reading, index: &ClaimIndex) -> Risk {
        let Reading {
            head_score,
            matches,
            evidence,
        } = reading;
        let (claim_probability, probability) =
            (evidence.claim_probability, evidence.head_probability);
        let decision = decide(&evidence, self.threshold);
        let claims = matches
            .into_iter()
            .filter_map(|m| {
                index.claim(&m.id).map(|c| MatchedClaim {
                    id: m.id,
                    similarity: m.similarity,
                    topic: c.topic.clone(),
                    lang: c.lang.clone(),
                    text: c.text.clone(),
                    verdict: c.status.clone(),
                    correction: c.correction.clone(),
                    source_url: c.source_url.clone(),
                })
            })
            .collect();
        Risk {
            score: decision.score,
            label: if decision.outcome == RiskOutcome::Misinformation {
                RiskLabel::Misinformation
            } else {
                RiskLabel::Reliable
            },
            model: self.model_name.clone(),
            head_score,
            probability,
            claims,
            outcome: decision.outcome,
            basis: decision.basis,
            claim_probability,
            stance: decision.stance,
        }
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The embedding at the head of a post's features.
    fn embedding_of<'f>(&self, features: &'f [f32]) -> &'f [f32] {
        &features[..self.encoder.dim().min(features.len())]
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

/// Whether a head `width` values wide reads a prefix of `encoder`'s features made of
/// whole parts: the embedding, or it and some tapped layers.
fn reads_features_of(encoder: &Encoder, width: usize) -> bool {
    width > 0 && width.is_multiple_of(encoder.dim().max(1)) && width <= encoder.feature_dim()
}

/// A post with fewer words than this (words holding a letter) holds no claim: "ok",
/// "👍👍", "merci", "12h".
const MIN_CLAIM_WORDS: usize = 2;

fn has_claim_text(text: &str) -> bool {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .take(MIN_CLAIM_WORDS)
        .count()
        >= MIN_CLAIM_WORDS
}

/// A post the heads read: its place in the batch, (redacted) text, language and features.
struct Judged<'a> {
    at: usize,
    text: &'a str,
    lang: &'a str,
    features: &'a [f32],
}

/// What the heads and the claim library read in one post ([`RiskStage::read`]).
struct Reading {
    head_score: f32,
    matches: Vec<vigie_models::claims::ClaimMatch>,
    evidence: Evidence,
}

/// The facts a decision on one judged post rests on.
#[derive(Debug, Clone, Copy)]
struct Evidence {
    /// The gate's probability of a health claim (1 without a gate).
    claim_probability: f32,
    /// From which the post counts as making a claim (0 without a gate).
    gate_threshold: f32,
    /// The misinformation head's calibrated probability.
    head_probability: f32,
    /// The risk a matched known false claim adds, when one matched.
    known_claim: Option<f32>,
    /// The stance head judged that the post keeps its distance from the claim.
    keeps_distance: bool,
    /// The stance the four-way classifier reads, when there is one.
    named_stance: Option<Stance>,
    signs: StanceSigns,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Decision {
    outcome: RiskOutcome,
    basis: RiskBasis,
    score: f32,
    stance: Option<Stance>,
}

/// A stance by its name in the classifier's files.
fn stance_named(name: &str) -> Option<Stance> {
    match name {
        "supports" => Some(Stance::Supports),
        "denies" => Some(Stance::Denies),
        "queries" => Some(Stance::Queries),
        "comments" => Some(Stance::Comments),
        _ => None,
    }
}

/// Which way a post that keeps its distance from a claim stands: the four-way classifier's
/// reading unless it says `supports` (the distance was seen by cue words or the stance
/// head, which outrank it there); else the cue words; else a denial (most of what the
/// stance head learned as distance).
fn distant_stance_of(e: &Evidence) -> Stance {
    match e.named_stance {
        Some(s) if s != Stance::Supports => s,
        _ => distant_stance(&e.signs),
    }
}

/// Which way a post that keeps its distance stands, by its cue words alone (a denial
/// without one).
fn distant_stance(signs: &StanceSigns) -> Stance {
    if signs.denies {
        Stance::Denies
    } else if signs.queries {
        Stance::Queries
    } else if signs.reports {
        Stance::Comments
    } else {
        Stance::Denies
    }
}

/// The outcome for one judged post; `threshold` is the score from which a post that
/// states a claim is misinformation.
fn decide(e: &Evidence, threshold: f32) -> Decision {
    let claim_risk = e.head_probability.max(e.known_claim.unwrap_or(0.0));
    // A restated known claim is a claim whatever the gate says.
    if e.known_claim.is_none() && e.claim_probability < e.gate_threshold {
        return Decision {
            outcome: RiskOutcome::Pass,
            basis: RiskBasis::NotAClaim,
            score: claim_risk.min(e.claim_probability),
            stance: None,
        };
    }
    // Cue words or the stance head; a call to pass the post on outweighs both.
    if e.signs.keeps_distance() || (e.keeps_distance && !e.signs.amplifies) {
        let stance = distant_stance_of(e);
        // Many questions about one claim are the information void staff must answer.
        let about_a_rumour = e.known_claim.is_some() || claim_risk >= threshold;
        return Decision {
            outcome: if about_a_rumour {
                RiskOutcome::RumourSignal
            } else {
                RiskOutcome::Pass
            },
            basis: RiskBasis::Stance,
            // The score says how false the claim discussed looks; the outcome, what to do.
            score: claim_risk,
            stance: Some(stance),
        };
    }
    let basis = match e.known_claim {
        Some(known) if known >= e.head_probability => RiskBasis::KnownClaim,
        _ => RiskBasis::Head,
    };
    Decision {
        outcome: if claim_risk >= threshold {
            RiskOutcome::Misinformation
        } else {
            RiskOutcome::Pass
        },
        basis,
        score: claim_risk,
        stance: Some(Stance::Supports),
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

    /// Scores texts as English posts.
    fn score_en(stage: &RiskStage, texts: &[&str]) -> Vec<Risk> {
        stage
            .score_in(texts, &vec![Some("en"); texts.len()])
            .unwrap()
            .risks
    }

    #[test]
    fn scores_follow_the_trained_head() {
        let stage = tiny_stage();
        let r = score_en(
            &stage,
            &["vaccine causes autism", "the measles vaccine is safe"],
        );
        assert!(r[0].score > r[1].score, "{r:?}");
        assert_eq!(r[0].label, RiskLabel::Misinformation);
        assert_eq!(r[0].outcome, RiskOutcome::Misinformation);
        assert_eq!(r[1].label, RiskLabel::Reliable);
        assert_eq!(r[0].model, "tiny+logreg");
    }

    #[test]
    fn other_languages_and_texts_without_a_claim_are_not_judged() {
        let stage = tiny_stage();
        let texts = [
            "vaccine causes autism",
            "vaccine causes autism",
            "ok",
            "👍👍",
            "12 h 30",
        ];
        let langs = [None, Some("en"), Some("en"), Some("fr"), Some("fr")];
        let r = stage.score_in(&texts, &langs).unwrap().risks;
        assert_eq!(r[0].outcome, RiskOutcome::UnscoredLanguage);
        assert_eq!(r[0].score, 0.0);
        assert_eq!(
            r[1].outcome,
            RiskOutcome::Misinformation,
            "the same text in English"
        );
        for risk in &r[2..] {
            assert_eq!(
                (risk.outcome, risk.basis),
                (RiskOutcome::Pass, RiskBasis::NoClaimText)
            );
        }
    }

    fn claim_file(dir: &std::path::Path, id: &str, text: &str) {
        let entry = format!("[[claim]]\nid = \"{id}\"\nlang = \"en\"\ntopic = \"vaccines\"\ntext = \"{text}\"\nsource = \"s\"\nsource_url = \"https://e\"\n");
        std::fs::write(dir.join(format!("{id}.toml")), entry).unwrap();
    }

    #[test]
    fn a_known_claim_raises_the_score_and_a_post_refuting_it_is_a_rumour_signal() {
        let dir = tempfile::tempdir().unwrap();
        claim_file(dir.path(), "c-measles", "the measles vaccine works well");
        // Matching threshold 0.99: only (near) restatements match the tiny random model.
        let stage = tiny_stage()
            .with_claims(ClaimSource::Dir(dir.path().into()), 0.99)
            .unwrap();
        let r = score_en(
            &stage,
            &[
                "the measles vaccine works well",
                "the measles vaccine works well: a hoax says otherwise",
                "vaccine causes autism",
            ],
        );
        assert_eq!(r[0].claims.len(), 1);
        assert_eq!(r[0].claims[0].id, "c-measles");
        assert!(r[0].probability < 0.5 && r[0].score >= 0.6, "{:?}", r[0]);
        assert_eq!(
            (r[0].outcome, r[0].basis),
            (RiskOutcome::Misinformation, RiskBasis::KnownClaim)
        );
        assert!(r[2].claims.is_empty());
        assert_eq!(r[2].score, r[2].probability);
        if !r[1].claims.is_empty() {
            assert_eq!(r[1].outcome, RiskOutcome::RumourSignal, "{:?}", r[1]);
            assert_eq!(r[1].stance, Some(Stance::Denies));
        }
    }

    #[test]
    fn a_claim_map_matches_through_its_own_threshold_and_needs_the_gate() {
        use vigie_models::claim_map::ClaimMap;
        let dir = tempfile::tempdir().unwrap();
        claim_file(dir.path(), "c-measles", "the measles vaccine works well");
        let dim = tiny_stage().encoder().dim();
        let map = |threshold: f32| ClaimMap::identity(dim, threshold);
        let texts = ["the measles vaccine works well", "vaccine causes autism"];
        // Plain matching at 1.1 finds nothing; the (identity) map's own 0.99 does.
        let mapped = tiny_stage()
            .with_claims(ClaimSource::Dir(dir.path().into()), 1.1)
            .unwrap()
            .with_claim_map(map(0.99))
            .unwrap();
        let r = score_en(&mapped, &texts);
        assert_eq!(r[0].claims.len(), 1, "{:?}", r[0]);
        assert_eq!(r[0].claims[0].id, "c-measles");
        assert_eq!(r[0].basis, RiskBasis::KnownClaim);
        assert!(r[1].claims.is_empty());
        // A gate that takes no post for a claim: through the map, a match no longer
        // counts; by plain cosine, a restated claim is a claim whatever the gate says.
        let gated = |stage: RiskStage| stage.with_gate(crate::testing::tiny_head(), 1.01).unwrap();
        let r = score_en(
            &gated(
                tiny_stage()
                    .with_claims(ClaimSource::Dir(dir.path().into()), 1.1)
                    .unwrap()
                    .with_claim_map(map(0.99))
                    .unwrap(),
            ),
            &texts,
        );
        assert!(r[0].claims.is_empty());
        assert_eq!(
            (r[0].outcome, r[0].basis),
            (RiskOutcome::Pass, RiskBasis::NotAClaim)
        );
        let r = score_en(
            &gated(
                tiny_stage()
                    .with_claims(ClaimSource::Dir(dir.path().into()), 0.99)
                    .unwrap(),
            ),
            &texts,
        );
        assert_eq!(r[0].claims.len(), 1);
        assert_eq!(r[0].outcome, RiskOutcome::Misinformation);
        // A map of another width is refused.
        let wrong = ClaimMap {
            dim: dim + 1,
            w: vec![0.0; (dim + 1) * (dim + 1)],
            ..map(0.9)
        };
        assert!(tiny_stage().with_claim_map(wrong).is_err());
    }

    #[test]
    fn an_edited_claims_directory_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        claim_file(dir.path(), "c1", "the measles vaccine is safe");
        let stage = tiny_stage()
            .with_claims(ClaimSource::Dir(dir.path().into()), 0.99)
            .unwrap();
        assert!(score_en(&stage, &["vaccine causes autism"])[0]
            .claims
            .is_empty());
        claim_file(dir.path(), "c2", "vaccine causes autism");
        stage.reload.as_ref().unwrap().lock().unwrap().checked -= RELOAD_CHECK; // as if 5 s had passed
        assert_eq!(
            score_en(&stage, &["vaccine causes autism"])[0].claims[0].id,
            "c2"
        );
        std::fs::write(dir.path().join("broken.toml"), "[[claim]]\nid = 1\n").unwrap();
        stage.reload.as_ref().unwrap().lock().unwrap().checked -= RELOAD_CHECK;
        assert_eq!(
            score_en(&stage, &["vaccine causes autism"])[0].claims[0].id,
            "c2",
            "a broken edit keeps the last good library"
        );
    }

    #[test]
    fn fact_checkers_files_add_to_the_library_and_are_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        claim_file(dir.path(), "c1", "the measles vaccine is safe");
        let feed = dir.path().join("known.jsonl");
        let row = |id: &str, text: &str, topic: &str| {
            serde_json::json!({"id": id, "text": text, "lang": "en", "verdict": "false",
                "topic": topic, "source": "checker", "url": "https://check/x"})
            .to_string()
        };
        let lines = [
            row("k1", "vaccine causes autism", "health"),
            row("k2", "the minister rides a scooter", "other"),
            // Same id as a claim of the directory: the directory's stays.
            row("c1", "something else entirely", "health"),
        ];
        std::fs::write(&feed, lines.join("\n")).unwrap();
        let library = ClaimLibrary {
            source: ClaimSource::Dir(dir.path().into()),
            files: vec![feed.clone()],
            skip_topics: vec!["other".into()],
        };
        let stage = tiny_stage().with_claims(library, 0.99).unwrap();
        let r = score_en(
            &stage,
            &[
                "vaccine causes autism",
                "the minister rides a scooter",
                "the measles vaccine is safe",
            ],
        );
        assert_eq!(r[0].claims[0].id, "k1");
        assert_eq!(r[0].claims[0].source_url, "https://check/x");
        assert!(r[1].claims.is_empty(), "a topic left out: {:?}", r[1]);
        assert_eq!(r[2].claims[0].id, "c1");
        assert_eq!(r[2].claims[0].text, "the measles vaccine is safe");
        // The file grows: picked up at the next check.
        std::fs::write(
            &feed,
            [
                lines.join("\n"),
                row("k3", "garlic cures malaria", "health"),
            ]
            .join("\n"),
        )
        .unwrap();
        stage.reload.as_ref().unwrap().lock().unwrap().checked -= RELOAD_CHECK;
        assert_eq!(
            score_en(&stage, &["garlic cures malaria"])[0].claims[0].id,
            "k3"
        );
        // A file that disappears leaves the last good library.
        std::fs::remove_file(&feed).unwrap();
        stage.reload.as_ref().unwrap().lock().unwrap().checked -= RELOAD_CHECK;
        assert_eq!(
            score_en(&stage, &["garlic cures malaria"])[0].claims[0].id,
            "k3"
        );
    }

    fn evidence(claim: f32, head: f32, known: Option<f32>, signs: StanceSigns) -> Evidence {
        Evidence {
            claim_probability: claim,
            gate_threshold: 0.5,
            head_probability: head,
            known_claim: known,
            keeps_distance: false,
            named_stance: None,
            signs,
        }
    }

    #[test]
    fn decisions() {
        let none = StanceSigns::default();
        let denies = StanceSigns {
            denies: true,
            ..none
        };
        let asks = StanceSigns {
            queries: true,
            ..none
        };
        let amplified_question = StanceSigns {
            queries: true,
            amplifies: true,
            ..none
        };
        let d = |e: Evidence| decide(&e, 0.5);
        // Not a claim: passes however high the head is, unless it restates a known claim.
        let r = d(evidence(0.2, 0.99, None, none));
        assert_eq!(
            (r.outcome, r.basis, r.score),
            (RiskOutcome::Pass, RiskBasis::NotAClaim, 0.2)
        );
        assert_eq!(
            d(evidence(0.2, 0.3, Some(0.9), none)).outcome,
            RiskOutcome::Misinformation
        );
        // A claim stated: the head or the known claim decides.
        assert_eq!(
            d(evidence(0.9, 0.8, None, none)).outcome,
            RiskOutcome::Misinformation
        );
        assert_eq!(
            d(evidence(0.9, 0.8, None, none)).stance,
            Some(Stance::Supports)
        );
        assert_eq!(d(evidence(0.9, 0.3, None, none)).outcome, RiskOutcome::Pass);
        // Asking about or refuting a rumour is a signal, not misinformation.
        let r = d(evidence(0.9, 0.9, None, denies));
        assert_eq!(
            (r.outcome, r.stance),
            (RiskOutcome::RumourSignal, Some(Stance::Denies))
        );
        let r = d(evidence(0.9, 0.3, Some(0.7), asks));
        assert_eq!(
            (r.outcome, r.stance),
            (RiskOutcome::RumourSignal, Some(Stance::Queries))
        );
        // ...about a claim nobody flagged, it is just a question.
        assert_eq!(d(evidence(0.9, 0.2, None, asks)).outcome, RiskOutcome::Pass);
        // The stance head alone keeps a post out of the queue, unless it urges sharing.
        let head_says = |signs| Evidence {
            keeps_distance: true,
            ..evidence(0.9, 0.9, None, signs)
        };
        assert_eq!(d(head_says(none)).outcome, RiskOutcome::RumourSignal);
        assert_eq!(d(head_says(none)).stance, Some(Stance::Denies));
        // The four-way classifier names a distant stance, but cannot call it support.
        let named = |stance| Evidence {
            named_stance: Some(stance),
            ..head_says(none)
        };
        assert_eq!(d(named(Stance::Queries)).stance, Some(Stance::Queries));
        assert_eq!(d(named(Stance::Comments)).stance, Some(Stance::Comments));
        assert_eq!(d(named(Stance::Supports)).stance, Some(Stance::Denies));
        assert_eq!(
            d(named(Stance::Supports)).outcome,
            RiskOutcome::RumourSignal
        );
        let amplifies = StanceSigns {
            amplifies: true,
            ..none
        };
        assert_eq!(d(head_says(amplifies)).outcome, RiskOutcome::Misinformation);
        // A question that urges sharing spreads.
        assert_eq!(
            d(evidence(0.9, 0.9, None, amplified_question)).outcome,
            RiskOutcome::Misinformation
        );
    }

    #[test]
    fn texts_that_can_hold_a_claim() {
        for text in ["ok", "👍👍", "Merci!", "12 30", "  ok  ", ""] {
            assert!(!has_claim_text(text), "{text}");
        }
        for text in ["vaccines kill", "le vaccin tue 💉", "ok merci"] {
            assert!(has_claim_text(text), "{text}");
        }
    }

    fn logistic_head(weights: Vec<f32>) -> RiskHead {
        RiskHead {
            encoder: "x".into(),
            classifier: Classifier::Logistic { weights, bias: 0.0 },
            calibration: Default::default(),
            trained_on: vec![],
            adapted_languages: vec![],
            trained_ids: vec![],
            options: TrainOptions::default(),
        }
    }

    #[test]
    fn mismatched_head_is_refused() {
        assert!(matches!(
            RiskStage::new(tiny_encoder(1), logistic_head(vec![0.0; 3]), 0.5),
            Err(RiskError::DimensionMismatch { .. })
        ));
    }

    #[test]
    fn heads_read_the_embedding_or_the_whole_features() {
        let enc = tiny_encoder(1);
        let (d, wide) = (enc.dim(), enc.feature_dim());
        assert!(wide > d, "the tiny encoder taps a layer");
        for (width, fits) in [(d, true), (wide, true), (wide + d, false), (d + 1, false)] {
            let built = RiskStage::new(tiny_encoder(1), logistic_head(vec![0.0; width]), 0.5);
            assert_eq!(built.is_ok(), fits, "a head {width} wide");
        }
        // A head that weighs the tapped layer alone: what it reads must reach it.
        let mut weights = vec![0.0; d];
        weights.extend((0..wide - d).map(|i| if i % 2 == 0 { 4.0 } else { -4.0 }));
        let stage = RiskStage::new(enc, logistic_head(weights), 0.5).unwrap();
        let r = score_en(
            &stage,
            &["vaccines cause autism", "the vaccine is safe and tested"],
        );
        assert_ne!(
            r[0].head_score, r[1].head_score,
            "the tapped layer's features reach the head"
        );
    }
}
