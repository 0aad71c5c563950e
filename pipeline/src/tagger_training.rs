//! The data of the token tagger (`vigie train --head tagger`), on the tune or the measure
//! side of the split ([`is_measure`] of each row's id):
//! - the shared named-entity sets (`redaction/ner_en_train.jsonl`, `ner_fr_train.jsonl`:
//!   tweets, Reddit-style comments, Wikipedia, French court decisions, old newspapers),
//!   glued back from their tokenised form so the tagger sees text as people type it;
//! - the shared clinical notes (`physionet_deid_en_dev.jsonl`, `eds_pseudo_fr_dev.jsonl`),
//!   cut into pieces the encoder reads whole;
//! - synthetic health-worker posts and notes: the project's sentence frames
//!   (`datasets/redaction/tagger_frames.jsonl`) filled with names of many origins, towns,
//!   streets, hospitals and dates drawn from the gazetteers, written the ways people write
//!   them (lower case, without accents, possessives, lists).
//!
//! Labels: PERSON, LOCATION (addresses and places), ORG (hospitals among them), DATE.

use std::path::Path;

use vigie_eval::datasets::jsonl_rows;
use vigie_eval::split::sample_key;
use vigie_models::rng::XorShift;
use vigie_models::tagger::{pieces, MAX_PIECE_CHARS};
use vigie_models::Encoder;

use crate::gate_training::{is_measure, Side};

/// The kinds the tagger learns, in the order of its classes.
pub const LABELS: [&str; 4] = ["PERSON", "LOCATION", "ORG", "DATE"];

/// A text with its gold spans (code points, end exclusive; label as an index of LABELS).
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedText {
    /// Row id (for the split and for sampling).
    pub id: String,
    /// The text as people write it.
    pub text: String,
    /// fr or en.
    pub lang: String,
    /// Gold spans.
    pub spans: Vec<(usize, usize, usize)>,
}

#[derive(serde::Deserialize)]
struct Row {
    id: String,
    text: String,
    #[serde(default)]
    lang: Option<String>,
    spans: Vec<GoldSpan>,
}

#[derive(serde::Deserialize)]
struct GoldSpan {
    start: usize,
    end: usize,
    label: String,
}

/// The tagger's kind for a dataset label, if it learns it.
pub fn label_index(label: &str) -> Option<usize> {
    match label {
        "PERSON" => Some(0),
        "LOCATION" | "ADDRESS" => Some(1),
        "ORG" | "HOSPITAL" => Some(2),
        "DATE" | "BIRTH_DATE" => Some(3),
        _ => None,
    }
}

/// The shared files the tagger reads: (path under the data directory, tokenised).
pub const SHARED_FILES: [(&str, bool); 4] = [
    ("redaction/ner_en_train.jsonl", true),
    ("redaction/ner_fr_train.jsonl", true),
    ("redaction/physionet_deid_en_dev.jsonl", false),
    ("redaction/eds_pseudo_fr_dev.jsonl", false),
];

/// Rows of one shared file on one side of the split, at most `cap` (a stable sample),
/// glued back when the file is tokenised, and long texts cut into pieces.
pub fn shared_rows(
    data_dir: &Path,
    file: &str,
    tokenised: bool,
    side: Side,
    cap: usize,
    seed: u64,
) -> anyhow::Result<Vec<TaggedText>> {
    let rows: Vec<Row> = jsonl_rows(&data_dir.join(file))?;
    let mut rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| is_measure(&r.id) == (side == Side::Measure))
        .collect();
    rows.sort_by_key(|r| sample_key(&r.id, seed));
    rows.truncate(cap);
    let mut out = Vec::new();
    for row in rows {
        let spans: Vec<(usize, usize, usize)> = row
            .spans
            .iter()
            .filter_map(|s| label_index(&s.label).map(|l| (s.start, s.end, l)))
            .collect();
        let (text, spans) = if tokenised {
            glue(&row.text, &spans)
        } else {
            (row.text, spans)
        };
        let lang = row.lang.unwrap_or_else(|| "en".into());
        for (i, (offset, piece)) in pieces(&text, MAX_PIECE_CHARS).into_iter().enumerate() {
            let len = piece.chars().count();
            let spans = spans
                .iter()
                .filter(|&&(s, e, _)| s >= offset && e <= offset + len)
                .map(|&(s, e, l)| (s - offset, e - offset, l))
                .collect();
            out.push(TaggedText {
                id: format!("{}#{i}", row.id),
                text: piece.to_string(),
                lang: lang.clone(),
                spans,
            });
        }
    }
    Ok(out)
}

/// Glues a tokenised text back as people type it (see `gate_training::detokenise`),
/// moving its spans along.
pub fn glue(text: &str, spans: &[(usize, usize, usize)]) -> (String, Vec<(usize, usize, usize)>) {
    let mut out = String::with_capacity(text.len());
    let mut out_len = 0usize; // in chars
                              // Old char offset of each token's start and end -> new char offset.
    let mut starts = std::collections::HashMap::new();
    let mut ends = std::collections::HashMap::new();
    let mut tokens: Vec<(usize, &str)> = Vec::new();
    let mut pos = 0usize;
    for piece in text.split(' ') {
        if !piece.is_empty() {
            tokens.push((pos, piece));
        }
        pos += piece.chars().count() + 1;
    }
    for (i, &(old, token)) in tokens.iter().enumerate() {
        let glue_left = matches!(token, "." | "," | "!" | "?" | ";" | ":" | ")" | "]" | "%")
            || token.starts_with('\'')
            || token == "n't"
            || i > 0 && matches!(tokens[i - 1].1, "(" | "[" | "@" | "#");
        if i > 0 && !glue_left {
            out.push(' ');
            out_len += 1;
        }
        starts.insert(old, out_len);
        out.push_str(token);
        out_len += token.chars().count();
        ends.insert(old + token.chars().count(), out_len);
    }
    let spans = spans
        .iter()
        .filter_map(|&(s, e, l)| Some((*starts.get(&s)?, *ends.get(&e)?, l)))
        .collect();
    (out, spans)
}

/// What the tagger trains on: token states, their classes and weights.
#[derive(Debug, Default)]
pub struct TokenSet {
    /// Token states, `dim` values each.
    pub states: Vec<f32>,
    /// Class of each token: 0 for O, 1 + 2k for B- of LABELS[k], 2 + 2k for I-.
    pub classes: Vec<u8>,
    /// Weight of each token.
    pub weights: Vec<f32>,
}

/// Runs `texts` through the encoder and labels each token by the gold span it falls in.
pub fn token_set(
    encoder: &Encoder,
    texts: &[TaggedText],
    progress: impl Fn(usize),
) -> anyhow::Result<TokenSet> {
    let mut set = TokenSet::default();
    for (done, chunk) in texts.chunks(64).enumerate() {
        let raw: Vec<&str> = chunk.iter().map(|t| t.text.as_str()).collect();
        let batch = encoder.encode(&raw)?;
        for (text, encoded) in chunk.iter().zip(&batch.texts) {
            let mut begun = vec![false; text.spans.len()];
            for (t, span) in encoded.spans.iter().enumerate() {
                let Some((s, e)) = *span else { continue };
                let gold = text.spans.iter().position(|&(gs, ge, _)| s < ge && gs < e);
                let class = match gold {
                    None => 0u8,
                    Some(g) => {
                        let first = !begun[g];
                        begun[g] = true;
                        let k = text.spans[g].2 as u8;
                        if first {
                            1 + 2 * k
                        } else {
                            2 + 2 * k
                        }
                    }
                };
                set.states.extend_from_slice(encoded.state(t));
                set.classes.push(class);
                set.weights.push(1.0);
            }
        }
        progress((done + 1) * chunk.len());
    }
    Ok(set)
}

/// Fills the project's frames with gazetteer names, places and dates: `count` texts,
/// seeded.
pub fn synthetic_rows(
    frames: &Path,
    gazetteers: &Path,
    count: usize,
    seed: u64,
) -> anyhow::Result<Vec<TaggedText>> {
    let fills = crate::synthetic::Fills::load(gazetteers)?;
    let frames = crate::synthetic::read_frames(frames)?;
    anyhow::ensure!(!frames.is_empty(), "no frames in {}", frames_path_hint());
    let mut rng = XorShift::new(seed ^ 0x7a66_e25e_u64);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let frame = &frames[rng.below(frames.len() as u64) as usize];
        let (text, spans) = fills.fill(frame, &mut rng);
        out.push(TaggedText {
            id: format!("synthetic-{i}"),
            text,
            lang: frame.lang.clone(),
            spans,
        });
    }
    Ok(out)
}

fn frames_path_hint() -> &'static str {
    "datasets/redaction/tagger_frames.jsonl"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenised_text_is_glued_back_with_its_spans() {
        let text = "Rendez - vous avec Awa Diop , à Dakar ( Sénégal ) le 3 mars .";
        let at = |needle: &str| text[..text.find(needle).unwrap()].chars().count();
        let (awa, dakar) = (at("Awa Diop"), at("Dakar"));
        let (glued, spans) = glue(text, &[(awa, awa + 8, 0), (dakar, dakar + 5, 1)]);
        assert_eq!(
            glued,
            "Rendez - vous avec Awa Diop, à Dakar (Sénégal) le 3 mars."
        );
        let chars: Vec<char> = glued.chars().collect();
        let got: Vec<String> = spans
            .iter()
            .map(|&(s, e, _)| chars[s..e].iter().collect())
            .collect();
        assert_eq!(got, ["Awa Diop", "Dakar"]);
    }
}

/// Span figures of a tagger on texts with gold spans, per label: gold spans, gold spans
/// that a predicted span of the same label overlaps, predicted spans, predicted spans
/// that overlap a gold span of the same label.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpanCounts {
    /// Gold spans.
    pub gold: usize,
    /// Of them, found.
    pub found: usize,
    /// Predicted spans.
    pub predicted: usize,
    /// Of them, right.
    pub right: usize,
}

impl SpanCounts {
    /// found / gold.
    pub fn recall(&self) -> f64 {
        self.found as f64 / self.gold.max(1) as f64
    }

    /// right / predicted.
    pub fn precision(&self) -> f64 {
        self.right as f64 / self.predicted.max(1) as f64
    }
}

/// [`SpanCounts`] per label (index of LABELS) of `tagger` on `texts`.
pub fn span_counts(
    encoder: &Encoder,
    tagger: &vigie_models::tagger::TokenTagger,
    texts: &[TaggedText],
) -> anyhow::Result<[SpanCounts; 4]> {
    let mut counts = [SpanCounts::default(); 4];
    for chunk in texts.chunks(64) {
        let raw: Vec<&str> = chunk.iter().map(|t| t.text.as_str()).collect();
        let tagged = tagger.tag_batch(encoder, &raw)?;
        for (text, spans) in chunk.iter().zip(&tagged.spans) {
            let predicted: Vec<(usize, usize, usize)> = spans
                .iter()
                .filter_map(|s| {
                    let l = LABELS.iter().position(|l| *l == s.label)?;
                    Some((s.start, s.end, l))
                })
                .collect();
            let overlaps = |a: &(usize, usize, usize), b: &(usize, usize, usize)| {
                a.2 == b.2 && a.0 < b.1 && b.0 < a.1
            };
            for g in &text.spans {
                counts[g.2].gold += 1;
                counts[g.2].found += usize::from(predicted.iter().any(|p| overlaps(g, p)));
            }
            for p in &predicted {
                counts[p.2].predicted += 1;
                counts[p.2].right += usize::from(text.spans.iter().any(|g| overlaps(g, p)));
            }
        }
    }
    Ok(counts)
}
