//! A compact Unigram (SentencePiece) model for the `tokenizers` pipeline: the same token
//! ids as the crate's own `Unigram`, in about a twentieth of the memory.
//!
//! The `tokenizers` crate keeps XLM-R's 250,002 pieces in a byte trie whose every node is
//! a hash map: about 290 MB resident, three quarters of the whole encoder. Here the pieces
//! sit in one string arena (2.6 MB), their scores in one array, and a table maps the
//! FNV-1a hash of a piece to its id. Candidate pieces at a position are found by hashing
//! the text's prefixes from there (incrementally, up to the longest piece), in order of
//! length, which is the order the trie yields them in; the Viterbi search, the unknown
//! score (lowest score − 10), the merging of consecutive unknowns and every tie rule are
//! those of `tokenizers::models::unigram::Unigram::encode_optimized`, so the paths and
//! ids are identical (a test checks every row of every shared dataset).
//!
//! Only the model is replaced: normaliser, pre-tokeniser, added tokens, post-processor
//! and truncation stay the `tokenizers` crate's own, read from the same `tokenizer.json`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::unigram::UnigramTrainer;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{Model, Token, TokenizerImpl};

/// The `tokenizers` pipeline around a [`LeanUnigram`].
pub type LeanTokenizer = TokenizerImpl<
    LeanUnigram,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// What `tokenizers` charges an unknown character, below the lowest piece score.
const UNKNOWN_PENALTY: f64 = 10.0;

/// Why a `tokenizer.json` cannot be read into a [`LeanTokenizer`]. The encoder then
/// falls back to the `tokenizers` crate's own model.
#[derive(Debug, thiserror::Error)]
pub enum LeanError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The JSON does not describe a Unigram tokenizer this model can run.
    #[error("{path}: {message}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is wrong or missing.
        message: String,
    },
}

/// Reads a Hugging Face `tokenizer.json` whose model is a Unigram without byte fallback.
pub fn load(path: &Path) -> Result<LeanTokenizer, LeanError> {
    let bytes = std::fs::read(path).map_err(|source| LeanError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| LeanError::Unsupported {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A Unigram model: pieces, scores and a hash index, with `tokenizers`' encoding rules.
pub struct LeanUnigram {
    /// Every piece, one after another.
    arena: String,
    /// Where piece `i` ends in `arena` (it starts where piece `i - 1` ends).
    ends: Vec<u32>,
    scores: Vec<f64>,
    /// FNV-1a hash of a piece → its id (the last id, when a piece is listed twice).
    index: HashMap<u64, u32, BuildIdentity>,
    /// Pieces whose hash another piece already holds in `index` (practically never).
    collisions: Vec<(u64, u32)>,
    longest: usize,
    min_score: f64,
    unk_id: u32,
}

/// The keys of `index` are hashes already.
#[derive(Default, Clone, Copy)]
struct BuildIdentity;

impl std::hash::BuildHasher for BuildIdentity {
    type Hasher = Identity;
    fn build_hasher(&self) -> Identity {
        Identity(0)
    }
}

struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(FNV_OFFSET, |h, &b| (h ^ b as u64).wrapping_mul(FNV_PRIME))
}

/// A node of the best-path search: the best score of a path ending here, where its last
/// piece starts, and that piece's id.
#[derive(Clone, Copy)]
struct Best {
    score: f64,
    start: Option<usize>,
    id: u32,
}

impl LeanUnigram {
    fn empty() -> Self {
        LeanUnigram {
            arena: String::new(),
            ends: Vec::new(),
            scores: Vec::new(),
            index: HashMap::with_hasher(BuildIdentity),
            collisions: Vec::new(),
            longest: 0,
            min_score: f64::INFINITY,
            unk_id: 0,
        }
    }

    fn push(&mut self, piece: &str, score: f64) {
        let id = self.scores.len() as u32;
        self.arena.push_str(piece);
        self.ends.push(self.arena.len() as u32);
        self.scores.push(score);
        self.longest = self.longest.max(piece.len());
        if score < self.min_score {
            self.min_score = score;
        }
        let hash = fnv(piece.as_bytes());
        match self.index.get(&hash).copied() {
            Some(other) if self.piece(other) != piece => self.collisions.push((hash, id)),
            _ => {
                self.index.insert(hash, id);
            }
        }
    }

    /// Piece `id`'s text.
    fn piece(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    fn lookup_hashed(&self, hash: u64, bytes: &[u8]) -> Option<u32> {
        if let Some(&id) = self.index.get(&hash) {
            if self.piece(id).as_bytes() == bytes {
                return Some(id);
            }
        }
        // Later duplicates of a colliding piece win, as in `tokenizers`' map.
        self.collisions
            .iter()
            .rev()
            .find(|&&(h, id)| h == hash && self.piece(id).as_bytes() == bytes)
            .map(|&(_, id)| id)
    }

    fn lookup(&self, piece: &str) -> Option<u32> {
        self.lookup_hashed(fnv(piece.as_bytes()), piece.as_bytes())
    }

    /// The best segmentation of `text` as `(start, end)` byte ranges and ids.
    fn segment(&self, text: &str) -> Vec<(usize, usize, u32)> {
        let bytes = text.as_bytes();
        let size = bytes.len();
        let unknown = self.min_score - UNKNOWN_PENALTY;
        let mut best = vec![
            Best {
                score: 0.0,
                start: None,
                id: 0,
            };
            size + 1
        ];
        let mut start = 0;
        while start < size {
            let here = best[start].score;
            let char_len = text[start..].chars().next().map_or(1, char::len_utf8);
            let mut single = false;
            let mut hash = FNV_OFFSET;
            let last = size.min(start + self.longest);
            for end in start + 1..=last {
                hash = (hash ^ bytes[end - 1] as u64).wrapping_mul(FNV_PRIME);
                let Some(id) = self.lookup_hashed(hash, &bytes[start..end]) else {
                    continue;
                };
                let candidate = self.scores[id as usize] + here;
                let node = &mut best[end];
                if node.start.is_none() || candidate > node.score {
                    *node = Best {
                        score: candidate,
                        start: Some(start),
                        id,
                    };
                }
                single |= end - start == char_len;
            }
            if !single {
                let candidate = unknown + here;
                let node = &mut best[start + char_len];
                if node.start.is_none() || candidate > node.score {
                    *node = Best {
                        score: candidate,
                        start: Some(start),
                        id: self.unk_id,
                    };
                }
            }
            start += char_len;
        }
        // Back from the end; runs of unknown pieces become one piece.
        let mut pieces = Vec::new();
        let mut end = size;
        let mut unknown_run: Option<(usize, usize)> = None;
        while end > 0 {
            let node = best[end];
            let Some(start) = node.start else { break };
            if node.id == self.unk_id {
                unknown_run = Some((start, unknown_run.map_or(end, |(_, e)| e)));
            } else {
                if let Some((s, e)) = unknown_run.take() {
                    pieces.push((s, e, self.unk_id));
                }
                pieces.push((start, end, node.id));
            }
            end = start;
        }
        if let Some((s, e)) = unknown_run {
            pieces.push((s, e, self.unk_id));
        }
        pieces.reverse();
        // A run of unknowns may spell a known piece; `tokenizers` looks every piece up
        // again by its text, so the same is done here (and the last duplicate wins).
        for piece in &mut pieces {
            piece.2 = self.lookup(&text[piece.0..piece.1]).unwrap_or(self.unk_id);
        }
        pieces
    }
}

impl Model for LeanUnigram {
    type Trainer = UnigramTrainer;

    fn tokenize(&self, sequence: &str) -> tokenizers::Result<Vec<Token>> {
        if sequence.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .segment(sequence)
            .into_iter()
            .map(|(s, e, id)| Token::new(id, sequence[s..e].to_string(), (s, e)))
            .collect())
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.lookup(token)
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        ((id as usize) < self.scores.len()).then(|| self.piece(id).to_string())
    }

    fn get_vocab(&self) -> std::collections::HashMap<String, u32> {
        (0..self.scores.len() as u32)
            .map(|id| (self.piece(id).to_string(), id))
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.scores.len()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        Err("the lean Unigram model is read-only: save the original tokenizer.json".into())
    }

    fn get_trainer(&self) -> UnigramTrainer {
        UnigramTrainer::default()
    }
}

impl<'de> Deserialize<'de> for LeanUnigram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ModelVisitor)
    }
}

struct ModelVisitor;

impl<'de> Visitor<'de> for ModelVisitor {
    type Value = LeanUnigram;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Unigram model")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeanUnigram, A::Error> {
        let mut model = LeanUnigram::empty();
        let (mut kind, mut unk_id, mut has_vocab) = (None::<String>, None::<usize>, false);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => kind = Some(map.next_value()?),
                "unk_id" => unk_id = map.next_value()?,
                "byte_fallback" => {
                    if map.next_value::<bool>()? {
                        return Err(de::Error::custom(
                            "byte_fallback is not supported by the lean Unigram model",
                        ));
                    }
                }
                "vocab" => {
                    map.next_value_seed(VocabSeed(&mut model))?;
                    has_vocab = true;
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        if kind.as_deref() != Some("Unigram") {
            return Err(de::Error::custom(format!(
                "model type {kind:?}: the lean tokenizer runs Unigram models only"
            )));
        }
        if !has_vocab || model.scores.is_empty() {
            return Err(de::Error::custom("the Unigram model has no vocabulary"));
        }
        let unk = unk_id.ok_or_else(|| de::Error::custom("the Unigram model has no unk_id"))?;
        if unk >= model.scores.len() {
            return Err(de::Error::custom("unk_id is outside the vocabulary"));
        }
        model.unk_id = unk as u32;
        Ok(model)
    }
}

/// Streams `[[piece, score], …]` straight into the arena, without a list of strings.
struct VocabSeed<'a>(&'a mut LeanUnigram);

impl<'de> DeserializeSeed<'de> for VocabSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for VocabSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [piece, score] pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((piece, score)) = seq.next_element::<(std::borrow::Cow<'de, str>, f64)>()? {
            self.0.push(&piece, score);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::models::unigram::Unigram;

    fn vocab() -> Vec<(String, f64)> {
        [
            ("<unk>", 0.0),
            ("▁", -2.0),
            ("▁vac", -5.0),
            ("cin", -4.0),
            ("▁vaccin", -6.0),
            ("e", -3.0),
            ("s", -3.1),
            ("a", -3.5),
            ("c", -3.6),
            ("v", -3.7),
            ("i", -3.8),
            ("n", -3.9),
            ("ab", -1.0),
            ("▁le", -2.5),
            ("l", -4.4),
            ("é", -4.5),
            ("▁été", -7.0),
            ("t", -4.6),
            ("é", -1.0),
        ]
        .iter()
        .map(|(p, s)| (p.to_string(), *s))
        .collect()
    }

    fn lean(vocab: &[(String, f64)]) -> LeanUnigram {
        let mut m = LeanUnigram::empty();
        for (p, s) in vocab {
            m.push(p, *s);
        }
        m
    }

    /// The same pieces, offsets and ids as `tokenizers`' Unigram, unknown characters and
    /// duplicated pieces included.
    #[test]
    fn agrees_with_the_tokenizers_unigram() {
        let v = vocab();
        let theirs = Unigram::from(v.clone(), Some(0), false).unwrap();
        let ours = lean(&v);
        for text in [
            "▁vaccines",
            "▁vaccin▁le▁été",
            "▁xyz▁vac",
            "ab",
            "zzab",
            "▁€€€▁le",
            "é",
            "",
            "▁🙂🙂a",
        ] {
            let a: Vec<(u32, String, (usize, usize))> = theirs
                .tokenize(text)
                .unwrap()
                .into_iter()
                .map(|t| (t.id, t.value, t.offsets))
                .collect();
            let b: Vec<(u32, String, (usize, usize))> = ours
                .tokenize(text)
                .unwrap()
                .into_iter()
                .map(|t| (t.id, t.value, t.offsets))
                .collect();
            assert_eq!(a, b, "{text:?}");
        }
        assert_eq!(ours.token_to_id("é"), theirs.token_to_id("é"));
        assert_eq!(ours.id_to_token(4), Some("▁vaccin".into()));
        assert_eq!(ours.get_vocab_size(), v.len());
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let bad = |json: &str| {
            serde_json::from_str::<LeanUnigram>(json)
                .err()
                .map(|e| e.to_string())
        };
        assert!(bad(r#"{"type":"BPE","vocab":[["a",0.0]],"unk_id":0}"#)
            .unwrap()
            .contains("Unigram"));
        assert!(
            bad(r#"{"type":"Unigram","vocab":[["a",0.0]],"unk_id":0,"byte_fallback":true}"#)
                .unwrap()
                .contains("byte_fallback")
        );
        assert!(bad(r#"{"type":"Unigram","vocab":[["a",0.0]],"unk_id":5}"#).is_some());
        assert!(bad(r#"{"type":"Unigram","vocab":[],"unk_id":0}"#).is_some());
        let ok: LeanUnigram = serde_json::from_str(
            r#"{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0.0],["a\"b",-1.0]]}"#,
        )
        .unwrap();
        assert_eq!(ok.token_to_id("a\"b"), Some(1));
    }
}
