//! Language stage: French, English, another language, or undetermined.
//!
//! whatlang's trigram model is good on sentences but weak on the two- or three-word
//! messages common in chats, where it often picks a neighbouring language. When a word
//! frequency lexicon is available (the wordfreq lists of `shared/gazetteers/`), it
//! settles French vs English for texts made of common French or English words:
//! - short texts (≤ 3 words) whose every word is common in one of the two languages;
//! - longer texts ≥ 80% of whose words are common French or English words, clearly more
//!   frequent in one of the two, when whatlang is unsure, or whatever whatlang says when
//!   the frequencies are decisive.
//!
//! Everything else is whatlang's verdict.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use whatlang::{Detector, Lang as WLang};

use crate::contract::{Lang, LangCode};

/// Fewer letters than this and the text is `und`: trigram statistics mean nothing.
const MIN_LETTERS: usize = 2;
/// A word is "common" in a language at or above this Zipf frequency (once per 1M words).
const COMMON_ZIPF: f32 = 3.0;
/// Texts of at most this many words are decided by the lexicon when it covers them.
const SHORT_TEXT_WORDS: usize = 3;
/// Share of common words from which a longer text may be taken to be French or English...
const LONG_TEXT_COVERAGE: f32 = 0.8;
/// ...when whatlang is this unsure of its own verdict...
const LONG_TEXT_MAX_WHATLANG_CONFIDENCE: f64 = 0.3;
/// ...and the words are on average this much more frequent (Zipf) in one language.
const LONG_TEXT_MIN_MEAN_ZIPF_GAP: f32 = 1.0;
/// A gap this wide overrules whatlang however sure it is: its trigrams mistake English
/// full of Latin-root words ("vaccine causes autism … vaccinate") for French.
const LONG_TEXT_DECISIVE_ZIPF_GAP: f32 = 2.0;

pub const LEXICON_FILES: [&str; 2] = ["wordfreq_large_fr.tsv", "wordfreq_large_en.tsv"];

/// Common French and English words with their Zipf frequency.
#[derive(Default)]
pub struct Lexicon {
    fr: HashMap<String, f32>,
    en: HashMap<String, f32>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read lexicon {path}: {source}")]
pub struct LexiconError {
    path: PathBuf,
    source: std::io::Error,
}

impl Lexicon {
    /// Reads `wordfreq_large_{fr,en}.tsv` (word, Zipf) from a gazetteer directory,
    /// keeping only common words.
    pub fn load(dir: &Path) -> Result<Self, LexiconError> {
        let read = |name: &str| -> Result<HashMap<String, f32>, LexiconError> {
            let path = dir.join(name);
            let err = |source| LexiconError {
                path: path.clone(),
                source,
            };
            let file = std::fs::File::open(&path).map_err(err)?;
            let mut words = HashMap::new();
            for line in std::io::BufReader::new(file).lines() {
                let line = line.map_err(err)?;
                let Some((word, zipf)) = line.split_once('\t') else {
                    continue;
                };
                if let Ok(z) = zipf.trim().parse::<f32>() {
                    if z >= COMMON_ZIPF {
                        words.insert(word.to_lowercase(), z);
                    }
                }
            }
            Ok(words)
        };
        Ok(Lexicon {
            fr: read(LEXICON_FILES[0])?,
            en: read(LEXICON_FILES[1])?,
        })
    }

    pub fn from_words(fr: &[(&str, f32)], en: &[(&str, f32)]) -> Self {
        let map = |w: &[(&str, f32)]| w.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Lexicon {
            fr: map(fr),
            en: map(en),
        }
    }

    /// French or English when the words say so clearly, else None.
    fn decide(&self, words: &[String], whatlang_confidence: f64) -> Option<LangCode> {
        if words.is_empty() {
            return None;
        }
        let (mut fr_hits, mut en_hits, mut fr_sum, mut en_sum) = (0usize, 0usize, 0f32, 0f32);
        for w in words {
            if let Some(z) = self.fr.get(w) {
                fr_hits += 1;
                fr_sum += z;
            }
            if let Some(z) = self.en.get(w) {
                en_hits += 1;
                en_sum += z;
            }
        }
        let n = words.len();
        if n <= SHORT_TEXT_WORDS {
            if fr_hits == n || en_hits == n {
                return Some(if fr_sum > en_sum {
                    LangCode::Fr
                } else {
                    LangCode::En
                });
            }
            return None;
        }
        let (fr_cov, en_cov) = (fr_hits as f32 / n as f32, en_hits as f32 / n as f32);
        // Both lists hold some words of the other language (web text mixes them), so the
        // frequencies, not mere membership, tell which language the words belong to.
        let mean_gap = (fr_sum - en_sum) / n as f32;
        let unsure = whatlang_confidence < LONG_TEXT_MAX_WHATLANG_CONFIDENCE
            && mean_gap.abs() >= LONG_TEXT_MIN_MEAN_ZIPF_GAP;
        if fr_cov.max(en_cov) >= LONG_TEXT_COVERAGE
            && (unsure || mean_gap.abs() >= LONG_TEXT_DECISIVE_ZIPF_GAP)
        {
            return Some(if mean_gap > 0.0 {
                LangCode::Fr
            } else {
                LangCode::En
            });
        }
        None
    }
}

#[derive(Default)]
pub struct LanguageStage {
    detector: Detector,
    lexicon: Option<Lexicon>,
}

/// Lower-cased words: letters, with inner apostrophes kept (aujourd'hui, don't).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphabetic() {
            cur.extend(c.to_lowercase());
        } else if (c == '\'' || c == '’')
            && !cur.is_empty()
            && chars.peek().is_some_and(|n| n.is_alphabetic())
        {
            cur.push('\'');
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl LanguageStage {
    pub fn new(lexicon: Option<Lexicon>) -> Self {
        LanguageStage {
            detector: Detector::new(),
            lexicon,
        }
    }

    pub fn has_lexicon(&self) -> bool {
        self.lexicon.is_some()
    }

    pub fn detect(&self, text: &str) -> Lang {
        let letters = text.chars().filter(|c| c.is_alphabetic()).count();
        if letters < MIN_LETTERS {
            return Lang {
                code: LangCode::Und,
                confidence: 0.0,
            };
        }
        let info = self.detector.detect(text);
        let code = info.as_ref().map(|i| match i.lang() {
            WLang::Fra => LangCode::Fr,
            WLang::Eng => LangCode::En,
            _ => LangCode::Other,
        });
        if let Some(lex) = &self.lexicon {
            let confidence = info.as_ref().map_or(0.0, |i| i.confidence());
            if let Some(decided) = lex.decide(&words(text), confidence) {
                let confidence = match &info {
                    Some(i) if code == Some(decided) => i.confidence().max(0.5) as f32,
                    _ => 0.5,
                };
                return Lang {
                    code: decided,
                    confidence,
                };
            }
        }
        match (code, info) {
            (Some(code), Some(info)) => Lang {
                code,
                confidence: info.confidence() as f32,
            },
            _ => Lang {
                code: LangCode::Und,
                confidence: 0.0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_english_other_und() {
        let s = LanguageStage::default();
        assert_eq!(
            s.detect("Le vaccin contre la rougeole protège les enfants dès leur plus jeune âge.")
                .code,
            LangCode::Fr
        );
        assert_eq!(
            s.detect("The measles vaccine protects children from a very young age.")
                .code,
            LangCode::En
        );
        assert_eq!(
            s.detect("La vacuna contra el sarampión protege a los niños desde muy pequeños.")
                .code,
            LangCode::Other
        );
        assert_eq!(s.detect("Прививка защищает детей").code, LangCode::Other);
        assert_eq!(s.detect("12 34 !!").code, LangCode::Und);
        assert_eq!(s.detect("").code, LangCode::Und);
    }

    #[test]
    fn decisive_word_frequencies_overrule_a_confident_whatlang() {
        let fr = [
            ("the", 5.35),
            ("in", 5.24),
            ("children", 3.21),
            ("do", 4.45),
            ("not", 4.07),
            ("let", 3.61),
            ("them", 3.35),
            ("your", 4.16),
            ("kids", 3.55),
            ("causes", 4.39),
        ];
        let en = [
            ("the", 7.73),
            ("vaccine", 4.0),
            ("causes", 4.63),
            ("autism", 3.97),
            ("in", 7.27),
            ("children", 5.47),
            ("do", 6.35),
            ("not", 6.69),
            ("let", 5.6),
            ("them", 6.19),
            ("your", 6.53),
            ("kids", 5.28),
        ];
        let s = LanguageStage::new(Some(Lexicon::from_words(&fr, &en)));
        // whatlang alone answers French (0.57) for this one.
        assert_eq!(
            s.detect(
                "The MMR vaccine causes autism in children, do not let them vaccinate your kids!"
            )
            .code,
            LangCode::En
        );
    }

    #[test]
    fn confidence_is_a_probability() {
        let s = LanguageStage::default();
        let l = s.detect("Les agents de santé communautaires sont formés chaque année.");
        assert!(
            (0.0..=1.0).contains(&l.confidence) && l.confidence > 0.5,
            "{l:?}"
        );
    }

    #[test]
    fn lexicon_settles_short_texts_only_when_every_word_is_common() {
        let lex = Lexicon::from_words(
            &[("bonne", 5.0), ("nuit", 5.0), ("the", 3.5)],
            &[("good", 6.0), ("night", 5.5), ("the", 7.7)],
        );
        let s = LanguageStage::new(Some(lex));
        assert_eq!(s.detect("bonne nuit").code, LangCode::Fr);
        assert_eq!(s.detect("good night").code, LangCode::En);
        // One unknown word: the lexicon abstains and whatlang decides.
        let plain = LanguageStage::default();
        assert_eq!(
            s.detect("buenas noches").code,
            plain.detect("buenas noches").code
        );
    }

    #[test]
    fn words_keep_inner_apostrophes() {
        assert_eq!(
            words("Aujourd'hui, l’enfant dort!"),
            vec!["aujourd'hui", "l'enfant", "dort"]
        );
    }

    #[test]
    fn shared_lexicon_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/gazetteers");
        let s = LanguageStage::new(Some(Lexicon::load(&dir).unwrap()));
        assert_eq!(s.detect("merci beaucoup").code, LangCode::Fr);
        assert_eq!(s.detect("thank you").code, LangCode::En);
    }
}
