//! Language stage: French, English, another language, or undetermined, and whether a
//! French or English post mixes in the other language.
//!
//! whatlang (trigrams over 69 languages) is good on sentences but weak on the short lines
//! people type in chats: "J'ai compris." has few trigrams, and elided French ("c'est",
//! "qu'il", "jsuis", "j 'ai") or English full of Latin-root words look like a neighbour
//! language. When the word-frequency lists of `shared/gazetteers/` are at hand, the
//! stage weighs the words themselves:
//!
//! - **French against English** is a word-unigram likelihood ratio: each word adds the
//!   difference of its Zipf frequencies in the two lists (log10 of a frequency ratio),
//!   capped so that one odd word cannot decide alone. Elisions are split as the French
//!   list counts them (`c'est` → `c` + `est`) whatever the apostrophe (' ’ ‘ ` ´ or a
//!   space), while English contractions the list knows whole (`don't`) stay whole.
//! - **French or English against another language**: a logistic model over 18
//!   signals: whatlang's verdict and confidence, how common the words are in the language
//!   they lean to (function words are very frequent), how many are unknown to both lists,
//!   letters neither language writes (ñ, ß, ã, Cyrillic…), the number of words. It is
//!   trained by `vigie train --head langid` on the tune half of the shared lingua file
//!   and of the project's chat lines, and committed as `models/head/langid.json`.
//! - **Undetermined** (`und`): fewer than two letters once links, addresses, handles and
//!   digits are set aside (emoji, URLs, numbers); or French or English, but neither the
//!   words (a ratio under [`UND_RATIO`]) nor whatlang say which.
//! - **Mixed**: a French or English post in which words that belong clearly to the other
//!   language make a tenth or more of its clear words ("le booster est scheduled", "on va meet demain") keeps its main
//!   language and sets `mixed`, so that the redaction rules of both languages run.
//!
//! Without the lists, whatlang decides alone.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use whatlang::{Detector, Lang as WLang};

use crate::contract::{Lang, LangCode};

/// Fewer letters than this and the text is `und`: there is nothing to read.
const MIN_LETTERS: usize = 2;
/// Words less frequent than this (Zipf) in both lists are not kept in memory: they say
/// little, and the lists' long tails would cost tens of MB.
const LIST_FLOOR: f32 = 2.0;
/// A word absent from a list is counted at this Zipf frequency (once per 100M words).
const ABSENT_ZIPF: f32 = 1.0;
/// A word is common in a language from this Zipf frequency (once per million words).
const COMMON_ZIPF: f32 = 3.0;
/// One word moves the French/English ratio by at most this much (log10 units), so a
/// name or a borrowed word cannot outweigh the rest of the line.
const WORD_RATIO_CAP: f32 = 3.0;
/// Words whose frequencies differ by less than this (log10 of the likelihood ratio) do not
/// tell French from English: whatlang decides, or nobody (`und`).
pub const UND_RATIO: f32 = 0.5;
/// A word is frequent in a language from this Zipf frequency: function words, everyday verbs.
const FREQUENT_ZIPF: f32 = 5.0;
/// A word belongs clearly to one of the two languages when it is common there and this
/// much more frequent (Zipf) than in the other: the evidence for a mixed post.
const CLEAR_WORD_GAP: f32 = 1.5;
/// A post is mixed when its minority language holds at least this many clear words...
const MIXED_MIN_WORDS: usize = 1;
/// ...and this share of all its clear words.
const MIXED_MIN_SHARE: f32 = 0.1;

pub const LEXICON_FILES: [&str; 2] = ["wordfreq_large_fr.tsv", "wordfreq_large_en.tsv"];

/// French and English word frequencies (Zipf, tenths), one table for both.
#[derive(Default)]
pub struct Lexicon {
    words: HashMap<Box<str>, Zipfs>,
}

/// A word's Zipf frequency in French and in English, in tenths (0 = absent).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Zipfs {
    fr: u8,
    en: u8,
}

impl Zipfs {
    fn fr(self) -> f32 {
        tenths(self.fr)
    }
    fn en(self) -> f32 {
        tenths(self.en)
    }
}

fn tenths(z: u8) -> f32 {
    if z == 0 {
        ABSENT_ZIPF
    } else {
        z as f32 / 10.0
    }
}

fn to_tenths(z: f32) -> u8 {
    (z * 10.0).round().clamp(1.0, 255.0) as u8
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read lexicon {path}: {source}")]
pub struct LexiconError {
    path: PathBuf,
    source: std::io::Error,
}

impl Lexicon {
    /// Reads `wordfreq_large_{fr,en}.tsv` (word, Zipf) from a gazetteer directory.
    pub fn load(dir: &Path) -> Result<Self, LexiconError> {
        let mut lexicon = Lexicon::default();
        for (i, name) in LEXICON_FILES.iter().enumerate() {
            let path = dir.join(name);
            let err = |source| LexiconError {
                path: path.clone(),
                source,
            };
            let file = std::fs::File::open(&path).map_err(err)?;
            for line in std::io::BufReader::new(file).lines() {
                let line = line.map_err(err)?;
                let Some((word, zipf)) = line.split_once('\t') else {
                    continue;
                };
                if let Ok(z) = zipf.trim().parse::<f32>() {
                    if z >= LIST_FLOOR {
                        lexicon.insert(word, i == 0, z);
                    }
                }
            }
        }
        lexicon.words.shrink_to_fit();
        Ok(lexicon)
    }

    pub fn from_words(fr: &[(&str, f32)], en: &[(&str, f32)]) -> Self {
        let mut lexicon = Lexicon::default();
        for (word, z) in fr {
            lexicon.insert(word, true, *z);
        }
        for (word, z) in en {
            lexicon.insert(word, false, *z);
        }
        lexicon
    }

    fn insert(&mut self, word: &str, french: bool, zipf: f32) {
        let key = fold_apostrophes(&word.to_lowercase());
        let entry = self.words.entry(key.into_boxed_str()).or_default();
        let z = to_tenths(zipf);
        let slot = if french { &mut entry.fr } else { &mut entry.en };
        *slot = (*slot).max(z);
    }

    fn get(&self, word: &str) -> Zipfs {
        self.words.get(word).copied().unwrap_or_default()
    }

    fn knows(&self, word: &str) -> bool {
        self.words.contains_key(word)
    }

    /// What the words of a text say about French and English.
    fn evidence(&self, words: &[String]) -> Evidence {
        let mut ev = Evidence {
            words: words.len(),
            min_zipf_fr: f32::MAX,
            min_zipf_en: f32::MAX,
            ..Evidence::default()
        };
        for w in words {
            let z = self.get(w);
            let (fr, en) = (z.fr(), z.en());
            ev.ratio += (fr - en).clamp(-WORD_RATIO_CAP, WORD_RATIO_CAP);
            ev.zipf_fr += fr;
            ev.zipf_en += en;
            ev.zipf_either += fr.max(en);
            ev.min_zipf_fr = ev.min_zipf_fr.min(fr);
            ev.min_zipf_en = ev.min_zipf_en.min(en);
            ev.common_fr += (fr >= COMMON_ZIPF) as usize;
            ev.common_en += (en >= COMMON_ZIPF) as usize;
            ev.frequent_fr += (fr >= FREQUENT_ZIPF) as usize;
            ev.frequent_en += (en >= FREQUENT_ZIPF) as usize;
            ev.common_either += (fr.max(en) >= COMMON_ZIPF) as usize;
            ev.unknown += (z == Zipfs::default()) as usize;
            ev.clear_fr += (fr >= COMMON_ZIPF && fr - en >= CLEAR_WORD_GAP) as usize;
            ev.clear_en += (en >= COMMON_ZIPF && en - fr >= CLEAR_WORD_GAP) as usize;
        }
        ev
    }
}

/// The French/English evidence of a text's words.
#[derive(Debug, Default, Clone, Copy)]
struct Evidence {
    words: usize,
    /// Σ (Zipf in French − Zipf in English), each word capped: > 0 leans French.
    ratio: f32,
    /// Σ Zipf of the words in each list (absent words at [`ABSENT_ZIPF`]).
    zipf_fr: f32,
    zipf_en: f32,
    /// The least frequent word's Zipf in each list: one word of another language in a
    /// short text shows there.
    min_zipf_fr: f32,
    min_zipf_en: f32,
    /// Σ of each word's higher Zipf of the two: how well French and English together
    /// account for the words (a mixed post's are all accounted for).
    zipf_either: f32,
    common_fr: usize,
    common_en: usize,
    frequent_fr: usize,
    frequent_en: usize,
    /// Words common in at least one of the two (a post mixing them has many).
    common_either: usize,
    /// Words in neither list.
    unknown: usize,
    clear_fr: usize,
    clear_en: usize,
}

impl Evidence {
    fn leaning(&self) -> LangCode {
        if self.ratio > 0.0 {
            LangCode::Fr
        } else {
            LangCode::En
        }
    }

    /// Whether a text in `main` holds clear words of the other language.
    fn mixed(&self, main: LangCode) -> bool {
        let (majority, minority) = match main {
            LangCode::Fr => (self.clear_fr, self.clear_en),
            LangCode::En => (self.clear_en, self.clear_fr),
            _ => return false,
        };
        minority >= MIXED_MIN_WORDS
            && majority >= minority
            && minority as f32 >= MIXED_MIN_SHARE * (majority + minority) as f32
    }
}

/// Names of the signals the French-or-English model weighs, in the order of
/// [`signals`]; a model file must list the same.
pub const SIGNALS: [&str; 18] = [
    "whatlang_fr_en_confidence",
    "whatlang_other_confidence",
    "whatlang_no_verdict",
    "whatlang_agrees_with_words",
    "mean_zipf_leaning",
    "mean_zipf_other_of_two",
    "min_zipf_leaning",
    "mean_zipf_either",
    "share_common_leaning",
    "share_frequent_leaning",
    "share_common_either",
    "share_clear_either",
    "share_unknown",
    "ratio_per_word",
    "ratio_total",
    "share_foreign_letters",
    "one_over_words",
    "words_up_to_20",
];

/// The signals of one text, each scaled to about 0..1.
fn signals(ev: &Evidence, trigrams: Option<(LangCode, f64)>, text: &str) -> [f32; 18] {
    let n = ev.words.max(1) as f32;
    let lean = ev.leaning();
    let (zipf, zipf_other, min_zipf, common, frequent) = match lean {
        LangCode::Fr => (
            ev.zipf_fr,
            ev.zipf_en,
            ev.min_zipf_fr,
            ev.common_fr,
            ev.frequent_fr,
        ),
        _ => (
            ev.zipf_en,
            ev.zipf_fr,
            ev.min_zipf_en,
            ev.common_en,
            ev.frequent_en,
        ),
    };
    let (fr_en, other, none, agrees) = match trigrams {
        Some((code @ (LangCode::Fr | LangCode::En), c)) => {
            (c as f32, 0.0, 0.0, (code == lean) as u8)
        }
        Some((_, c)) => (0.0, c as f32, 0.0, 0),
        None => (0.0, 0.0, 1.0, 0),
    };
    [
        fr_en,
        other,
        none,
        agrees as f32,
        zipf / n / 7.0,
        zipf_other / n / 7.0,
        min_zipf.min(7.0) / 7.0,
        ev.zipf_either / n / 7.0,
        common as f32 / n,
        frequent as f32 / n,
        ev.common_either as f32 / n,
        (ev.clear_fr + ev.clear_en) as f32 / n,
        ev.unknown as f32 / n,
        (ev.ratio.abs() / n).min(WORD_RATIO_CAP) / WORD_RATIO_CAP,
        ev.ratio.abs().min(6.0) / 6.0,
        foreign_letter_share(text),
        1.0 / n,
        n.min(20.0) / 20.0,
    ]
}

/// Share of the letters that neither French nor English writes (ñ, ß, ã, å, Cyrillic,
/// Arabic…).
fn foreign_letter_share(text: &str) -> f32 {
    let (mut letters, mut foreign) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        let known = c
            .to_lowercase()
            .all(|l| l.is_ascii_lowercase() || "àâäçéèêëîïôöùûüÿœæ".contains(l));
        foreign += (!known) as usize;
    }
    foreign as f32 / letters.max(1) as f32
}

/// The logistic model that tells French or English from another language.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FrEnModel {
    /// What it was trained on and how (free text, for the model card).
    #[serde(default)]
    pub trained_on: String,
    /// The signal each weight multiplies: must equal [`SIGNALS`].
    pub signals: Vec<String>,
    pub weights: Vec<f32>,
    pub bias: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum FrEnModelError {
    #[error("cannot read the language model {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("language model {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("language model {0}: it weighs other signals than this build computes")]
    Signals(PathBuf),
}

/// The model committed in `models/head/langid.json`, built into the binary.
pub const DEFAULT_FR_EN_MODEL: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../models/head/langid.json");
const BUILT_IN_FR_EN_MODEL: &str = include_str!("../../../models/head/langid.json");

impl FrEnModel {
    /// The committed model.
    pub fn built_in() -> Result<Self, FrEnModelError> {
        Self::parse(BUILT_IN_FR_EN_MODEL, Path::new(DEFAULT_FR_EN_MODEL))
    }

    pub fn load(path: &Path) -> Result<Self, FrEnModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| FrEnModelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, FrEnModelError> {
        let model: FrEnModel =
            serde_json::from_str(text).map_err(|source| FrEnModelError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        if model.signals != SIGNALS || model.weights.len() != SIGNALS.len() {
            return Err(FrEnModelError::Signals(path.to_path_buf()));
        }
        Ok(model)
    }

    /// All weights zero (every text at 0.5): the start of training.
    pub fn untrained() -> Self {
        FrEnModel {
            trained_on: String::new(),
            signals: SIGNALS.iter().map(|s| s.to_string()).collect(),
            weights: vec![0.0; SIGNALS.len()],
            bias: 0.0,
        }
    }

    /// Probability that the text is French or English.
    pub fn probability(&self, signals: &[f32]) -> f32 {
        let z: f32 = self
            .weights
            .iter()
            .zip(signals)
            .map(|(w, x)| w * x)
            .sum::<f32>()
            + self.bias;
        1.0 / (1.0 + (-z).exp())
    }
}

/// One text as the French-or-English model sees it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub signals: [f32; 18],
}

pub struct LanguageStage {
    detector: Detector,
    words: Option<(Lexicon, FrEnModel)>,
}

impl Default for LanguageStage {
    /// whatlang alone.
    fn default() -> Self {
        LanguageStage {
            detector: Detector::new(),
            words: None,
        }
    }
}

/// Every apostrophe-like character (’ ‘ ` ´ ʼ ′) as `'`.
fn fold_apostrophes(s: &str) -> String {
    s.chars()
        .map(|c| if is_apostrophe(c) { '\'' } else { c })
        .collect()
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | '`' | '´' | 'ʼ' | '′')
}

/// The text without what carries no language: links, e-mail addresses, @handles, the
/// `#` of hashtags (their words stay) and digits.
fn language_bearing(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for token in text.split_whitespace() {
        let lower = token.to_ascii_lowercase();
        if lower.contains("://") || lower.starts_with("www.") || token.contains('@') {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(
            token
                .chars()
                .filter(|c| *c != '#' && !c.is_numeric())
                .map(|c| if c == '_' { ' ' } else { c }),
        );
    }
    out
}

/// Lower-cased words with inner apostrophes folded to `'` (aujourd'hui, don't, c'est).
fn raw_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphabetic() {
            cur.extend(c.to_lowercase());
        } else if is_apostrophe(c)
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

/// Words as the frequency lists count them: a form with an apostrophe that the lists
/// know whole stays whole (don't, aujourd'hui); any other splits at its apostrophes
/// (c'est → c, est; qu'il → qu, il), as the French list counts elisions.
fn lexicon_words(text: &str, lexicon: &Lexicon) -> Vec<String> {
    let mut out = Vec::new();
    for word in raw_words(text) {
        if word.contains('\'') && !lexicon.knows(&word) {
            out.extend(
                word.split('\'')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string),
            );
        } else {
            out.push(word);
        }
    }
    out
}

impl LanguageStage {
    /// With the word lists, French/English decisions use the built-in model.
    pub fn new(lexicon: Option<Lexicon>) -> Result<Self, FrEnModelError> {
        let words = match lexicon {
            Some(lexicon) => Some((lexicon, FrEnModel::built_in()?)),
            None => None,
        };
        Ok(LanguageStage {
            detector: Detector::new(),
            words,
        })
    }

    pub fn with_model(lexicon: Lexicon, model: FrEnModel) -> Self {
        LanguageStage {
            detector: Detector::new(),
            words: Some((lexicon, model)),
        }
    }

    pub fn has_lexicon(&self) -> bool {
        self.words.is_some()
    }

    pub fn detect(&self, text: &str) -> Lang {
        match self.observe(text) {
            Ok((lang, _)) | Err(lang) => lang,
        }
    }

    /// The model's view of a text (None when the decision needs no model: nothing to
    /// read, or no word lists).
    pub fn observe_signals(&self, text: &str) -> Option<Observed> {
        self.observe(text).ok().map(|(_, o)| o)
    }

    /// whatlang's verdict: French, English or another language, and its confidence.
    fn trigrams(&self, text: &str) -> Option<(LangCode, f64)> {
        self.detector.detect(text).map(|i| {
            let code = match i.lang() {
                WLang::Fra => LangCode::Fr,
                WLang::Eng => LangCode::En,
                _ => LangCode::Other,
            };
            (code, i.confidence())
        })
    }

    /// The verdict, with the signals the model read (Err: decided without them).
    fn observe(&self, text: &str) -> Result<(Lang, Observed), Lang> {
        let text = language_bearing(text);
        let letters = text.chars().filter(|c| c.is_alphabetic()).count();
        if letters < MIN_LETTERS {
            return Err(Lang::undetermined());
        }
        let trigrams = self.trigrams(&text);
        let Some((lexicon, model)) = &self.words else {
            return Err(match trigrams {
                Some((code, confidence)) => Lang::new(code, confidence as f32),
                None => Lang::undetermined(),
            });
        };
        let ev = lexicon.evidence(&lexicon_words(&text, lexicon));
        let observed = Observed {
            signals: signals(&ev, trigrams, &text),
        };
        let p = model.probability(&observed.signals);
        if p < 0.5 {
            let lang = match trigrams {
                Some(_) => Lang::new(LangCode::Other, 1.0 - p),
                None => Lang::undetermined(),
            };
            return Ok((lang, observed));
        }
        // French or English: the words say which, else whatlang, else nobody.
        let words_sure = 1.0 / (1.0 + 10f32.powf(-ev.ratio.abs()));
        let code = match trigrams {
            _ if ev.ratio.abs() >= UND_RATIO => ev.leaning(),
            Some((code @ (LangCode::Fr | LangCode::En), _)) => code,
            _ => return Ok((Lang::undetermined(), observed)),
        };
        let sure = match trigrams {
            Some((c, conf)) if c == code => words_sure.max(conf as f32),
            _ => words_sure,
        };
        let lang = Lang {
            code,
            confidence: p * sure,
            mixed: ev.mixed(code),
        };
        Ok((lang, observed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> LanguageStage {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/gazetteers");
        LanguageStage::new(Some(Lexicon::load(&dir).unwrap())).unwrap()
    }

    #[test]
    fn french_english_other_und_without_lists() {
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
    fn nothing_to_read_is_undetermined() {
        let s = shared();
        for text in [
            "👍👍",
            "https://example.org/vaccins/rougeole?id=42",
            "06 12 34 56 78",
            "??!!",
            "a.b@example.com",
            "@moderation_team 12h30",
        ] {
            assert_eq!(s.detect(text).code, LangCode::Und, "{text}");
        }
    }

    #[test]
    fn ratio_of_word_frequencies_overrules_a_confident_whatlang() {
        let fr = [
            ("the", 5.35),
            ("in", 5.24),
            ("children", 3.21),
            ("do", 4.45),
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
        ];
        let s = LanguageStage::new(Some(Lexicon::from_words(&fr, &en))).unwrap();
        // whatlang alone answers French (0.57) for this one.
        let text =
            "The MMR vaccine causes autism in children, do not let them vaccinate your kids!";
        assert_eq!(LanguageStage::default().detect(text).code, LangCode::Fr);
        assert_eq!(s.detect(text).code, LangCode::En);
    }

    #[test]
    fn elisions_in_every_spelling_are_french() {
        let s = shared();
        for text in [
            "J'ai compris.",
            "J’ai compris.",
            "J‘ai compris.",
            "jai compris",
            "J 'ai compris",
            "C'est propre.",
            "cest propre",
            "Qu'est-ce qu'il y a ?",
            "qu est ce quil y a",
            "jsuis en route",
            "n'importe quoi",
            "l'équipe est là",
        ] {
            assert_eq!(s.detect(text).code, LangCode::Fr, "{text}");
        }
        for text in [
            "I don't know.",
            "I don’t know",
            "dont know yet",
            "It's fine.",
            "Got it, thanks.",
            "The session is at the community centre",
        ] {
            assert_eq!(s.detect(text).code, LangCode::En, "{text}");
        }
    }

    #[test]
    fn other_languages_stay_other() {
        let s = shared();
        for text in [
            "La vacuna contra el sarampión protege a los niños.",
            "Il vaccino è arrivato ieri sera.",
            "Die Impfung ist morgen früh.",
            "Het vaccin is aangekomen.",
            "Chanjo imefika leo asubuhi.",
        ] {
            assert_eq!(s.detect(text).code, LangCode::Other, "{text}");
        }
    }

    #[test]
    fn clear_words_of_the_other_language_make_a_post_mixed() {
        let s = shared();
        for text in [
            "le meeting est cancelled",
            "on va meet demain matin",
            "je suis busy, je te call later",
        ] {
            let l = s.detect(text);
            assert_eq!((l.code, l.mixed), (LangCode::Fr, true), "{text}: {l:?}");
        }
        let l = s.detect("sorry I'm late, j'arrive dans cinq minutes");
        assert!(l.mixed, "{l:?}");
        let l = s.detect("Les doses sont arrivées au centre ce matin.");
        assert_eq!((l.code, l.mixed), (LangCode::Fr, false), "{l:?}");
        let l = s.detect("The doses arrived at the centre this morning.");
        assert_eq!((l.code, l.mixed), (LangCode::En, false), "{l:?}");
    }

    #[test]
    fn confidence_is_a_probability() {
        let s = shared();
        for text in [
            "Les agents de santé communautaires sont formés chaque année.",
            "ok merci",
            "J'ai compris.",
        ] {
            let l = s.detect(text);
            assert!((0.5..=1.0).contains(&l.confidence), "{text}: {l:?}");
        }
    }

    #[test]
    fn words_fold_apostrophes_and_split_unknown_elisions() {
        assert_eq!(
            raw_words("Aujourd'hui, l’enfant dort!"),
            vec!["aujourd'hui", "l'enfant", "dort"]
        );
        let lex = Lexicon::from_words(&[("aujourd'hui", 5.6)], &[("don't", 6.2)]);
        assert_eq!(
            lexicon_words("Aujourd’hui l’enfant don‘t", &lex),
            vec!["aujourd'hui", "l", "enfant", "don't"]
        );
    }

    #[test]
    fn links_handles_and_digits_carry_no_language() {
        assert_eq!(
            language_bearing("voir https://x.org/a @equipe_nord #vaccination 14h30"),
            "voir vaccination h"
        );
    }
}
