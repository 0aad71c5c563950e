//! The token tagger: finds names, places, organisations and dates that no cue word
//! announces, from the encoder's token states (see [`crate::EncodedText`]).
//!
//! A small network (one hidden layer) reads each token's last hidden state and gives
//! the probabilities of `O` and of the beginning (`B-`) or inside (`I-`) of each kind.
//! Spans are read off at the level of words: a word is tagged with the kind its tokens
//! lean to, when their probability of not being `O` reaches the threshold, and the
//! tokens of one word never split it (a name cut in two tokens is hidden whole).

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::encoded::EncodedText;
use crate::{HeadError, Result};

/// Longest piece of a text the encoder is given at once, in characters: well under its
/// 256-token window, so nothing at the end of a long note goes unread.
pub const MAX_PIECE_CHARS: usize = 600;

/// The built-in tagger (see `models/README.md` for how it was trained).
const BUILTIN: &str = include_str!("../head/tagger.json");

/// A span the tagger found, in code points of the text, end exclusive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaggedSpan {
    /// Offset of its first character.
    pub start: usize,
    /// Offset just past its last character.
    pub end: usize,
    /// PERSON, LOCATION, ORG or DATE.
    pub label: String,
    /// Mean probability, over its tokens, of not being `O`.
    pub score: f32,
}

/// The tagger's weights and settings, as saved in `models/head/tagger.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenTagger {
    /// What the file is (for people opening it).
    pub about: String,
    /// Entity kinds, in the order of the classes: class 0 is `O`, then `B-` and `I-` of
    /// each kind in turn.
    pub labels: Vec<String>,
    /// Width of the token states it reads.
    pub dim: usize,
    /// Width of its hidden layer.
    pub hidden: usize,
    /// Hidden layer weights, `hidden × dim`, row after row.
    pub w1: Vec<f32>,
    /// Hidden layer biases.
    pub b1: Vec<f32>,
    /// Output weights, `classes × hidden`.
    pub w2: Vec<f32>,
    /// Output biases.
    pub b2: Vec<f32>,
    /// A word is tagged when the probability that it is not `O` reaches this.
    pub threshold: f32,
}

/// Settings of [`TokenTagger::train`].
pub type TaggerTraining = crate::softmax::SoftmaxTraining;

impl TokenTagger {
    /// The tagger shipped with Vigie.
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN, Path::new("models/head/tagger.json"))
    }

    /// A stable 64-bit digest of what decides its spans (labels, weights, threshold), so
    /// that what was computed with one tagger is not reused with another.
    pub fn fingerprint(&self) -> u64 {
        let mut key = crate::embedding_store::Fnv::default();
        for label in &self.labels {
            key.write(label.as_bytes());
            key.write(&[0]);
        }
        for part in [&self.w1, &self.b1, &self.w2, &self.b2] {
            part.iter().for_each(|x| key.write(&x.to_le_bytes()));
        }
        key.write(&self.threshold.to_le_bytes());
        key.finish()
    }

    /// Loads a tagger saved by [`TokenTagger::save`].
    pub fn load(path: &Path) -> Result<Self> {
        Self::parse(&crate::head::read_file(path)?, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        let mut tagger: TokenTagger =
            serde_json::from_str(text).map_err(|source| HeadError::Parse {
                origin: origin.clone(),
                source,
            })?;
        let fault = if !tagger.weights().consistent() || tagger.b2.len() != tagger.classes() {
            Some(crate::error::ClassifierFault::MlpShapes {
                hidden: tagger.hidden,
            })
        } else if !tagger.weights().finite() {
            Some(crate::error::ClassifierFault::MlpNonFinite)
        } else {
            None
        };
        if let Some(fault) = fault {
            return Err(HeadError::Invalid { origin, fault }.into());
        }
        // Subnormal weights cost a microcode assist per multiply on Intel processors.
        for v in [
            &mut tagger.w1,
            &mut tagger.b1,
            &mut tagger.w2,
            &mut tagger.b2,
        ] {
            crate::head::flush_subnormals(v);
        }
        Ok(tagger)
    }

    /// Writes the tagger as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::head::write_json(self, path)
    }

    /// `O`, then `B-` and `I-` of each kind.
    pub fn classes(&self) -> usize {
        1 + 2 * self.labels.len()
    }

    fn weights(&self) -> crate::softmax::Weights<'_> {
        crate::softmax::Weights {
            dim: self.dim,
            hidden: self.hidden,
            w1: &self.w1,
            b1: &self.b1,
            w2: &self.w2,
            b2: &self.b2,
        }
    }

    /// Class probabilities of one token state.
    pub fn probabilities(&self, state: &[f32]) -> Vec<f32> {
        self.weights().probabilities(state)
    }

    /// The spans of `text` (the text `encoded` was made from) that the tagger finds.
    pub fn tag(&self, encoded: &EncodedText, text: &str) -> Vec<TaggedSpan> {
        let chars: Vec<char> = text.chars().collect();
        // Tokens grouped into words: runs of characters without white space.
        let mut words: Vec<Word> = Vec::new();
        for (t, span) in encoded.spans.iter().enumerate() {
            let Some((start, end)) = *span else { continue };
            let p = self.probabilities(encoded.state(t));
            let continues = words.last().is_some_and(|w| {
                w.end >= start || (w.end..start).all(|i| !chars[i].is_whitespace())
            });
            if continues {
                if let Some(w) = words.last_mut() {
                    w.end = w.end.max(end);
                    w.add(&p);
                }
            } else {
                let mut w = Word::new(start, end, self.classes());
                w.add(&p);
                words.push(w);
            }
        }
        let mut spans: Vec<TaggedSpan> = Vec::new();
        let mut open: Option<(usize, usize, f32, usize)> = None; // label, start, score sum, words
        let mut last_end = 0;
        for w in &words {
            let p = w.mean();
            let not_o = 1.0 - p[0];
            let tagged = (not_o >= self.threshold).then(|| {
                let (label, begins) = (0..self.labels.len())
                    .map(|k| (k, p[1 + 2 * k] + p[2 + 2 * k], p[1 + 2 * k] > p[2 + 2 * k]))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(k, _, b)| (k, b))
                    .unwrap_or((0, true));
                (label, begins)
            });
            match (tagged, open) {
                (Some((label, begins)), Some((l, s, sum, n))) if l == label && !begins => {
                    open = Some((l, s, sum + not_o, n + 1));
                }
                (Some((label, _)), _) => {
                    if let Some(o) = open.take() {
                        spans.push(self.close(o, last_end, &chars));
                    }
                    open = Some((label, w.start, not_o, 1));
                }
                (None, _) => {
                    if let Some(o) = open.take() {
                        spans.push(self.close(o, last_end, &chars));
                    }
                }
            }
            last_end = w.end;
        }
        if let Some(o) = open.take() {
            spans.push(self.close(o, last_end, &chars));
        }
        spans
    }

    /// A span from its open state, trimmed of the punctuation its words carry.
    fn close(
        &self,
        (label, start, sum, n): (usize, usize, f32, usize),
        end: usize,
        chars: &[char],
    ) -> TaggedSpan {
        let mut s = start;
        let mut e = end.min(chars.len());
        while s < e && !chars[s].is_alphanumeric() {
            s += 1;
        }
        while e > s && !chars[e - 1].is_alphanumeric() {
            e -= 1;
        }
        // A possessive stays outside the name ("Okonkwo's").
        if e >= s + 3 && chars[e - 1] == 's' && matches!(chars[e - 2], '\'' | '’') {
            e -= 2;
        }
        TaggedSpan {
            start: s,
            end: e,
            label: self.labels[label].clone(),
            score: sum / n as f32,
        }
    }

    /// Fits a tagger on token states (`n × dim`, row after row) and their classes (0 for
    /// `O`, `1 + 2k` for `B-` of `labels[k]`, `2 + 2k` for `I-`), each example weighted.
    /// Deterministic for a seed.
    pub fn train(
        states: &[f32],
        classes: &[u8],
        weights: &[f32],
        labels: Vec<String>,
        dim: usize,
        options: &TaggerTraining,
    ) -> Result<TokenTagger> {
        let k = 1 + 2 * labels.len();
        let fitted = crate::softmax::train(states, classes, k, weights, dim, options)?;
        Ok(TokenTagger {
            about: "Vigie token tagger: BIO classes over the last hidden states of \
                    multilingual-e5-small; see models/README.md"
                .to_string(),
            labels,
            dim,
            hidden: fitted.hidden,
            w1: fitted.w1,
            b1: fitted.b1,
            w2: fitted.w2,
            b2: fitted.b2,
            threshold: 0.5,
        })
    }
}

/// One word's tokens: where it lies and the sum of its tokens' class probabilities.
struct Word {
    start: usize,
    end: usize,
    sum: Vec<f32>,
    tokens: usize,
}

impl Word {
    fn new(start: usize, end: usize, classes: usize) -> Self {
        Word {
            start,
            end,
            sum: vec![0.0; classes],
            tokens: 0,
        }
    }

    fn add(&mut self, p: &[f32]) {
        self.sum.iter_mut().zip(p).for_each(|(s, v)| *s += v);
        self.tokens += 1;
    }

    fn mean(&self) -> Vec<f32> {
        let n = self.tokens.max(1) as f32;
        self.sum.iter().map(|s| s / n).collect()
    }
}

/// A long text cut at line ends (else sentence ends, else spaces) into pieces of at
/// most `max` characters: (char offset, piece). Short texts are one piece.
pub fn pieces(text: &str, max: usize) -> Vec<(usize, &str)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    if chars.len() <= max {
        return vec![(0, text)];
    }
    let mut out = Vec::new();
    let mut start = 0usize; // char index
    while start < chars.len() {
        let limit = (start + max).min(chars.len());
        let cut = if limit == chars.len() {
            limit
        } else {
            let window = &chars[start..limit];
            let after = |pred: &dyn Fn(char) -> bool| {
                window
                    .iter()
                    .rposition(|&(_, c)| pred(c))
                    .filter(|&p| p > max / 3)
                    .map(|p| start + p + 1)
            };
            after(&|c| c == '\n')
                .or_else(|| after(&|c| matches!(c, '.' | '!' | '?')))
                .or_else(|| after(&|c| c.is_whitespace()))
                .unwrap_or(limit)
        };
        let byte_start = chars[start].0;
        let byte_end = chars.get(cut).map_or(text.len(), |c| c.0);
        out.push((start, &text[byte_start..byte_end]));
        start = cut;
    }
    out
}

/// What the tagger found in a batch of texts, from one encoder pass.
pub struct TaggedBatch {
    /// Spans found in each text (code points of the whole text).
    pub spans: Vec<Vec<TaggedSpan>>,
    /// The pass over each text that fit in one piece (all but long notes): the risk heads
    /// pool it rather than running the encoder again.
    pub encoded: Vec<Option<EncodedText>>,
}

impl TokenTagger {
    /// Tags a batch of texts in one encoder pass, long texts piece by piece.
    pub fn tag_batch<S: AsRef<str>>(
        &self,
        encoder: &crate::Encoder,
        texts: &[S],
    ) -> Result<TaggedBatch> {
        let mut owners = Vec::new();
        let mut all_pieces: Vec<(usize, &str)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            for piece in pieces(text.as_ref(), MAX_PIECE_CHARS) {
                owners.push(i);
                all_pieces.push(piece);
            }
        }
        let raw: Vec<&str> = all_pieces.iter().map(|p| p.1).collect();
        let batch = encoder.encode(&raw)?;
        let mut spans = vec![Vec::new(); texts.len()];
        let mut counts = vec![0usize; texts.len()];
        let mut encoded: Vec<Option<EncodedText>> = vec![None; texts.len()];
        // Each piece's token states are read on their own: spread over the cores, which
        // the encoder pass before this keeps busy while this work would use one.
        let found: Vec<Vec<TaggedSpan>> = all_pieces
            .par_iter()
            .zip(&batch.texts)
            .map(|(&(offset, piece), pass)| {
                let mut found = self.tag(pass, piece);
                for span in &mut found {
                    span.start += offset;
                    span.end += offset;
                }
                found
            })
            .collect();
        for ((&owner, found), pass) in owners.iter().zip(found).zip(batch.texts) {
            spans[owner].extend(found);
            counts[owner] += 1;
            encoded[owner] = Some(pass);
        }
        for (slot, count) in encoded.iter_mut().zip(counts) {
            if count != 1 {
                *slot = None;
            }
        }
        Ok(TaggedBatch { spans, encoded })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaded_tagger_holds_no_subnormal_weights() {
        let raw: TokenTagger = serde_json::from_str(BUILTIN).unwrap();
        assert!(
            raw.w1.iter().any(|v| v.is_subnormal()),
            "the file holds some"
        );
        let tagger = TokenTagger::builtin().unwrap();
        for v in [&tagger.w1, &tagger.b1, &tagger.w2, &tagger.b2] {
            assert!(!v.iter().any(|v| v.is_subnormal()));
        }
        let mut rng = crate::rng::XorShift::new(9);
        for _ in 0..10 {
            let state = rng.vec(tagger.dim, 1.0);
            let (a, b) = (raw.probabilities(&state), tagger.probabilities(&state));
            for (a, b) in a.iter().zip(&b) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn long_texts_are_cut_at_line_ends_and_keep_their_offsets() {
        let text = format!("{}\n{}\nend", "a".repeat(400), "b".repeat(400));
        let parts = pieces(&text, 600);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].0, 401);
        let total: String = parts.iter().map(|p| p.1).collect();
        assert_eq!(total, text);
        assert_eq!(pieces("court", 600), vec![(0, "court")]);
    }
}
