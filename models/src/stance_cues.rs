//! Lexical signs of a post's stance toward a rumour: does it ask about one, refute one,
//! report that one circulates, or urge others to pass it on.
//!
//! The encoder places a post that refutes a claim next to the claim itself (it sees the
//! topic, barely the negation), so the risk stage reads these signs beside the embedding.
//! The phrases are data (`models/cues/stance.toml`): the general forms of each stance in
//! French and English, matched as whole words on a folded copy of the text (lower case,
//! accents and apostrophe variants folded, white space collapsed).

use serde::Deserialize;

use crate::error::{CuesError, Result};

/// The cue file built into the binary.
const BUILTIN: &str = include_str!("../cues/stance.toml");

/// A stance a cue signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CueStance {
    /// Asks whether something is true.
    Queries,
    /// Says a claim is false, unproven, or not to be shared.
    Denies,
    /// Says a rumour circulates, without taking it up.
    Reports,
    /// Urges others to pass the post on.
    Amplifies,
}

/// The signs found in one text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StanceSigns {
    /// A query phrase, or a question mark in a post that does not amplify.
    pub queries: bool,
    /// A denial phrase.
    pub denies: bool,
    /// A report phrase.
    pub reports: bool,
    /// An amplification phrase.
    pub amplifies: bool,
}

impl StanceSigns {
    /// The post keeps its distance from the rumour: it asks, refutes or reports, and does
    /// not urge anyone to pass it on.
    pub fn keeps_distance(&self) -> bool {
        (self.queries || self.denies || self.reports) && !self.amplifies
    }
}

#[derive(Deserialize)]
struct CueFile {
    cue: Vec<CueGroup>,
    /// Phrases made of every `first then` pair (negations and verbs).
    #[serde(default)]
    combo: Vec<CueCombo>,
}

#[derive(Deserialize)]
struct CueCombo {
    stance: CueStance,
    #[allow(dead_code)] // As in CueGroup.
    lang: String,
    first: Vec<String>,
    then: Vec<String>,
}

#[derive(Deserialize)]
struct CueGroup {
    stance: CueStance,
    #[allow(dead_code)] // Read for the file's own clarity; matching runs every language.
    lang: String,
    phrases: Vec<String>,
}

/// The cue phrases, folded, by stance.
#[derive(Debug, Clone)]
pub struct StanceCues {
    phrases: Vec<(String, CueStance)>,
    /// Every phrase in one automaton: a post is read once, not once per phrase (the
    /// phrase-by-phrase search was the pipeline's largest cost outside the encoder).
    matcher: aho_corasick::AhoCorasick,
}

impl StanceCues {
    /// The cues built into the binary.
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN, "models/cues/stance.toml")
    }

    /// Parses a cue file (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let file: CueFile = toml::from_str(text).map_err(|source| CuesError::Parse {
            origin: origin.to_string(),
            source: Box::new(source),
        })?;
        let mut phrases = Vec::new();
        let combos = file.combo.into_iter().map(|c| {
            let joined = c.first.iter().flat_map(|a| {
                // "n'" joins the verb without a space, as written.
                c.then.iter().map(move |b| {
                    if a.ends_with('\'') {
                        format!("{a}{b}")
                    } else {
                        format!("{a} {b}")
                    }
                })
            });
            CueGroup {
                stance: c.stance,
                lang: c.lang,
                phrases: joined.collect(),
            }
        });
        for group in file.cue.into_iter().chain(combos.collect::<Vec<_>>()) {
            for phrase in group.phrases {
                let folded = fold(&phrase);
                if folded.is_empty() {
                    return Err(CuesError::EmptyPhrase {
                        origin: origin.to_string(),
                    }
                    .into());
                }
                phrases.push((folded, group.stance));
            }
        }
        // Both spellings of an elision: "c'est" and "cest" (typed without apostrophe).
        let elided: Vec<(String, CueStance)> = phrases
            .iter()
            .filter(|(p, _)| p.contains('\''))
            .map(|(p, s)| (p.replace('\'', ""), *s))
            .collect();
        phrases.extend(elided);
        phrases.sort();
        phrases.dedup();
        // Overlapping matches (standard semantics): a phrase inside a longer one is found
        // too, and the longer one decides below, as when each phrase was searched alone.
        let matcher = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(phrases.iter().map(|(p, _)| p.as_str()))
            .map_err(|e| CuesError::Automaton {
                origin: origin.to_string(),
                source: Box::new(e),
            })?;
        Ok(StanceCues { phrases, matcher })
    }

    /// The signs found in `text`.
    pub fn signs(&self, text: &str) -> StanceSigns {
        let folded = fold(text);
        let bytes = folded.as_bytes();
        let found: Vec<(std::ops::Range<usize>, CueStance)> = self
            .matcher
            .find_overlapping_iter(&folded)
            .filter(|m| whole_words(bytes, m.start(), m.end()))
            .map(|m| (m.start()..m.end(), self.phrases[m.pattern().as_usize()].1))
            .collect();
        // Where phrases overlap, the longer decides: "ne partagez pas" is a denial, not a
        // call to share; "ce n'est pas une rumeur" asserts, it reports no rumour.
        let inside_longer = |r: &std::ops::Range<usize>, stance: CueStance| {
            found.iter().any(|(d, s)| {
                *s != stance && d.start <= r.start && r.end <= d.end && d.len() > r.len()
            })
        };
        let mut signs = StanceSigns::default();
        for (range, stance) in &found {
            if inside_longer(range, *stance) {
                continue;
            }
            match stance {
                CueStance::Queries => signs.queries = true,
                CueStance::Denies => signs.denies = true,
                CueStance::Reports => signs.reports = true,
                CueStance::Amplifies => signs.amplifies = true,
            }
        }
        if ends_with_question(text) && !signs.amplifies {
            signs.queries = true;
        }
        signs
    }
}

/// The post ends with a question: its last word-bearing part (links, mentions, hashtags
/// and emoji aside) closes with a question mark. A question followed by assertions ("Is
/// it a bioweapon? The book was published in 1981.") insinuates rather than asks. Question
/// marks that stand for broken quotation marks (text decoded with the wrong charset:
/// "???Sunlight kills the virus.)??") are no question: one opening the text, or one after
/// a closed sentence.
fn ends_with_question(text: &str) -> bool {
    if text.trim_start().starts_with(['?', '？']) {
        return false;
    }
    let is_mark = |c: char| matches!(c, '?' | '？');
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| !(w.starts_with("http") || w.starts_with('@') || w.starts_with('#')))
        .filter(|w| w.chars().any(|c| c.is_alphanumeric() || is_mark(c)))
        .collect();
    // Questions only, not assertions closed by one ("Vaccines cause autism. Why else
    // would they hide it?"): no sentence of the post ends with a full stop or "!".
    let mut sentence_has_words = false;
    for c in words.join(" ").chars() {
        if matches!(c, '.' | '!' | '…') && sentence_has_words {
            return false;
        }
        if matches!(c, '.' | '!' | '…' | '?' | '？') {
            sentence_has_words = false;
        } else if c.is_alphanumeric() {
            sentence_has_words = true;
        }
    }
    let Some(last) = words.last() else {
        return false;
    };
    let closed = last.trim_end_matches(|c: char| !(c.is_alphanumeric() || is_mark(c)));
    let before = closed.trim_end_matches(is_mark);
    if before.len() == closed.len() {
        return false;
    }
    !before
        .trim_end_matches([')', '"', '\'', '”', '»'])
        .ends_with('.')
}

/// Lower case, Latin accents folded, apostrophes and hyphens unified, every other
/// non-alphanumeric character a space, white space collapsed.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars().flat_map(char::to_lowercase) {
        // Accents typed as combining marks (e + U+0301) fold like precomposed ones.
        if ('\u{0300}'..='\u{036F}').contains(&c) {
            continue;
        }
        let c = match c {
            '\'' | '’' | '‘' | '`' | 'ʼ' | '´' => '\'',
            '-' | '‐' | '‑' | '–' => '-',
            c if c.is_alphanumeric() => base_letter(c),
            _ => ' ',
        };
        if c == ' ' {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// The base letter of a lower-case accented Latin letter (others unchanged).
fn base_letter(c: char) -> char {
    match c {
        'à' | 'â' | 'ä' | 'á' | 'ã' => 'a',
        'ç' => 'c',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'î' | 'ï' | 'í' | 'ì' => 'i',
        'ô' | 'ö' | 'ó' | 'ò' | 'õ' => 'o',
        'ù' | 'û' | 'ü' | 'ú' => 'u',
        'ÿ' => 'y',
        'ñ' => 'n',
        c => c,
    }
}

/// Where `phrase` occurs in `text` (both folded), starting and ending at word boundaries.
/// The match `start..end` begins and ends at word boundaries. An elided article or
/// pronoun may come right before: "de l'intox", "qu'on dit que".
fn whole_words(bytes: &[u8], start: usize, end: usize) -> bool {
    let before = start == 0 || !is_word_byte(bytes[start - 1]) || bytes[start - 1] == b'\'';
    let after = end == bytes.len() || !is_word_byte(bytes[end]);
    before && after
}

/// A byte that continues a word: ASCII alphanumerics, the apostrophe, and every byte of
/// a multi-byte character (folded text keeps only letters and digits beyond ASCII).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'\'' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signs(text: &str) -> StanceSigns {
        StanceCues::builtin().expect("builtin cues").signs(text)
    }

    #[test]
    fn questions_in_either_language_and_any_spelling() {
        for text in [
            "Is it true that the polio vaccine makes girls sterile",
            "des gens disent que le vaccin donne le palu, c’est vrai",
            "VRAI OU FAUX le vaccin contient une puce",
            "cest vrai que l'eau chaude tue le virus",
            "any truth in this 5G story??",
            "le vaccin rend sterile ? 🤔",
            "5G and covid? https://t.co/x #covid",
        ] {
            assert!(signs(text).queries, "{text}");
        }
    }

    #[test]
    fn denials_and_reports_keep_their_distance() {
        for text in [
            "No, the measles vaccine does NOT cause autism.",
            "Arrêtez de partager ce message, c'est une infox",
            "le vaccin ne rend pas sterile",
            "Parents in the village are refusing the HPV jab, they heard it causes infertility",
            "Dans mon aire de santé on dit que le vaccin tue",
        ] {
            let s = signs(text);
            assert!(s.keeps_distance(), "{text}: {s:?}");
        }
    }

    #[test]
    fn amplification_outweighs_a_rhetorical_question() {
        let s = signs("Why are they hiding that the vaccine kills? PARTAGEZ avant suppression");
        assert!(s.amplifies && !s.queries && !s.keeps_distance(), "{s:?}");
    }

    #[test]
    fn telling_people_not_to_share_is_a_denial() {
        for text in [
            "Stop sharing this, it is fake",
            "ne partagez pas ce message svp",
        ] {
            let s = signs(text);
            assert!(s.denies && !s.amplifies, "{text}: {s:?}");
        }
    }

    #[test]
    fn plain_assertions_carry_no_sign() {
        for text in [
            "Vaccines cause autism, period.",
            "le vaccin contre le paludisme rend les femmes steriles",
            "Session moved to Thursday at 10",
        ] {
            assert_eq!(signs(text), StanceSigns::default(), "{text}");
        }
    }

    #[test]
    fn question_marks_of_broken_quotation_marks_ask_nothing() {
        for text in [
            "???Sunlight actually can kill the virus.)??",
            "???They want to chip us.??",
        ] {
            assert!(!signs(text).queries, "{text}");
        }
    }

    #[test]
    fn false_and_fake_as_adjectives_deny_nothing() {
        for text in [
            "Flu shots give a false positive PCR test",
            "les faux vaccins circulent",
        ] {
            assert!(!signs(text).denies, "{text}");
        }
        assert!(signs("This is FALSE. Stop it").denies);
        assert!(signs("ce message est faux").denies);
    }

    #[test]
    fn negated_causal_verbs_deny() {
        for text in [
            "Hot water with lemon won't kill the coronavirus.",
            "mRNA never enters the nucleus",
            "the microchip story makes no sense",
            "le vaccin n'altère pas l'ADN",
        ] {
            assert!(signs(text).denies, "{text}");
        }
        // A claim of its own, not a denial.
        assert!(!signs("vaccines don't work and don't protect anyone").denies);
    }

    #[test]
    fn the_longer_of_overlapping_phrases_decides() {
        let s = signs("C'est faux, merci de ne pas partager");
        assert!(s.denies && !s.amplifies && s.keeps_distance(), "{s:?}");
        let s = signs("ce n'est pas une rumeur, le vaccin tue nos enfants");
        assert!(s.amplifies && !s.keeps_distance(), "{s:?}");
    }

    #[test]
    fn elisions_and_combining_accents_do_not_hide_a_cue() {
        assert!(signs("c'est de l'intox tout ça").denies);
        assert!(signs("encore de la de\u{0301}sinformation").denies);
    }

    #[test]
    fn a_question_closing_assertions_asserts() {
        assert!(!signs("Vaccines cause autism. Why else would they hide it?").queries);
        assert!(
            signs("Sérieux ? Tu as une source ?").queries,
            "questions only"
        );
    }

    #[test]
    fn a_question_followed_by_assertions_insinuates() {
        let s = signs("Is covid a bioweapon? This book was published in 1981. Read the excerpt.");
        assert!(!s.queries, "{s:?}");
    }

    #[test]
    fn phrases_match_whole_words_only() {
        // "fauxbourg" holds "faux", "sharepoint" holds "share": neither is a cue.
        assert_eq!(
            signs("rdv au fauxbourg, lien sharepoint"),
            StanceSigns::default()
        );
    }

    #[test]
    fn a_malformed_cue_file_is_an_error() {
        assert!(StanceCues::parse("[[cue]]\nstance = \"maybe\"", "t").is_err());
        let empty = "[[cue]]\nstance = \"denies\"\nlang = \"en\"\nphrases = [\" ! \"]";
        assert!(StanceCues::parse(empty, "t").is_err());
    }
}
