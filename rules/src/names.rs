//! Finding people's names without a title in front: name lists (first names, surnames)
//! read from gazetteer files, guarded by word frequencies so that common words that are
//! also names (Pierre, Rose, MARTIN, Grace, Bill…) need more evidence than membership.
//!
//! The lists and thresholds are declared in TOML (`[[name_list]]` in `rules/sets/names.toml`);
//! the files are read from a gazetteer directory at start-up (`../shared/gazetteers` or the
//! one configured). Without the directory, the entry is skipped.

use std::collections::HashMap;
use std::io::BufRead;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::rule::RuleError;
use crate::zipf::ZipfTable;

/// One column of one gazetteer file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSource {
    /// File name, relative to the gazetteer directory.
    pub file: String,
    /// Header name of the column holding the name or word.
    pub column: String,
    /// Keep only rows whose `filter_column` equals `filter_value`.
    pub filter_column: Option<String>,
    /// The value `filter_column` must hold.
    pub filter_value: Option<String>,
    /// Numeric column: for names, rows under `min_count` are dropped; for word lists, the Zipf value.
    pub value_column: Option<String>,
    /// Rows whose `value_column` holds less than this are dropped.
    pub min_count: Option<f64>,
    /// Field separator; tab unless the file name ends in `.csv`.
    pub separator: Option<char>,
}

/// `[[name_list]]`: how to recognise names from lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameListSpec {
    /// Stable name, reported in every redaction the entry makes.
    pub id: String,
    /// Label of what is found (PERSON).
    pub kind: String,
    /// What the entry is for, for people reading the TOML.
    pub description: Option<String>,
    /// Gazetteer columns of first names.
    pub first_names: Vec<ListSource>,
    /// Gazetteer columns of surnames.
    pub surnames: Vec<ListSource>,
    /// Word-frequency lists (Zipf scale) used to tell names from ordinary words.
    pub common_words: Vec<ListSource>,
    /// Two or more adjacent capitalised name tokens, at least one rarer than this as a word.
    pub run_max_zipf: f32,
    /// Confidence of a name of listed words found without a cue: a run of them, an initial
    /// and a surname, or a surname, a comma and a first name.
    pub run_confidence: f32,
    /// A lone UPPER-CASE name token (≥ 4 letters: shorter ones are mostly acronyms such as
    /// NIR or IPP) rarer than this as a word...
    pub upper_max_zipf: f32,
    /// ...in texts of these languages, where upper-case surnames are the custom (French
    /// notes); in English notes upper-case words are mostly acronyms.
    #[serde(default)]
    pub upper_single_languages: Vec<String>,
    /// A lone Title-case first name, not at the start of a sentence, rarer than this.
    pub title_max_zipf: f32,
    /// Confidence of a lone name token (an upper-case surname, a Title-case first name).
    pub single_confidence: f32,
    /// Titles (dr, mme, mr): a name follows, in any case, even one in no list (dr cozzi).
    #[serde(default)]
    pub titles: Vec<String>,
    /// Titles that are also clinical abbreviations (MS: mental status, morphine sulfate):
    /// a name follows only after one space or a dot, and only one rare as a word or an
    /// initial (MS SANTANGELO, MS S.; not "MS: Pleasant", "ms given").
    #[serde(default)]
    pub strict_titles: Vec<String>,
    /// Other words after which a name is expected, in any case: relatives (wife, fille),
    /// labels (nom, signé par). Several words are a sequence.
    #[serde(default)]
    pub cues_before: Vec<String>,
    /// Words before which a name is expected: credentials in signatures (RN, RRT, MD).
    #[serde(default)]
    pub cues_after: Vec<String>,
    /// Credentials that are also words in notes (MD, RN): only after a comma ("Nolan, RN"),
    /// or ending a signature line or sentence ("anita morris rn").
    #[serde(default)]
    pub cues_after_comma: Vec<String>,
    /// Words after a name in a sentence that goes on: "W. MAROTTA AWARE", "Bea Tura
    /// notified". One or two capitalised or listed words before them are taken.
    #[serde(default)]
    pub cues_after_midline: Vec<String>,
    /// Labels before a colon and a name: "Patient : X", "Patiente 2 : X". Without the colon
    /// they are ordinary words ("Patient NIR").
    #[serde(default)]
    pub cues_before_colon: Vec<String>,
    /// Next to a cue, a word from the name lists rarer than this is taken as a name...
    #[serde(default)]
    pub cue_list_max_zipf: f32,
    /// ...and a word in no name list must be rarer than this (unknown surnames: cozzi).
    #[serde(default)]
    pub cue_unknown_max_zipf: f32,
    /// Confidence of a name found next to a cue.
    #[serde(default)]
    pub cue_confidence: f32,
    /// Clinical words (devices, eponyms, drugs) that name lists also hold: never taken as
    /// names in a run of capitalised words (a title still makes "Dr Foley" a name).
    #[serde(default)]
    pub not_names: Vec<String>,
    /// A capitalised word in no list next to an initial (E. PENICOT) or a first name
    /// (Jean-Jacques DEPROGES) is a surname when rarer than this as a word.
    #[serde(default)]
    pub unknown_surname_max_zipf: f32,
    /// Texts in which the entry must find a name (the test suite runs them).
    #[serde(default, rename = "match")]
    pub matches: Vec<String>,
    /// Texts in which it must not.
    #[serde(default)]
    pub no_match: Vec<String>,
}

/// How much more common as a word a first name may be when a surname follows it (Marie
/// is 5.0 in French text).
const FIRST_LAST_EXTRA_ZIPF: f32 = 1.25;

/// Words this common (the, in, to, most) are not names inside a run, whatever the lists say.
const FUNCTION_WORD_ZIPF: f32 = 5.8;

/// A surname after an initial may be this common as a word (J. Brown, E. Welsh, J. Petit).
const INITIAL_SURNAME_MAX_ZIPF: f32 = 5.7;

/// In notes typed in capitals, less: "E. WELSH", "Z. MILLER" but not "R. RATE".
const SHOUTED_INITIAL_SURNAME_MAX_ZIPF: f32 = 4.6;

/// ...and the surname may be as common as "Petit", not as "This".
const COMMON_SURNAME_MAX_ZIPF: f32 = 6.0;

/// A first name typed in lower case before a midline cue may be at most this common as
/// a word (in English or French: grace is grâce, 5.3): george and bill called, not
/// (son in) law (5.5) called.
const LOWER_CASE_FIRST_NAME_MAX_ZIPF: f32 = 5.35;

/// A word in no list is a surname next to a listed name at most this common as a word.
const NAME_BESIDE_MAX_ZIPF: f32 = 3.0;

/// From this Zipf frequency, a capitalised word at the start of a sentence is taken to
/// be an ordinary word, whatever the name lists say.
const SENTENCE_START_COMMON_ZIPF: f32 = 3.0;

/// What the name and word lists say of a word, as [`NameFinder::word_profile`] gives it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct WordProfile {
    /// Listed as a first name or a surname.
    pub name: bool,
    /// Zipf frequency as an ordinary word; 0 when not in the word lists.
    pub zipf: f32,
    /// A clinical word the lists also hold as a name (Foley, Swan, Ganz).
    pub clinical: bool,
    /// A one-word cue that introduces a name (a title, Dr, Mme; a relation, nurse):
    /// never part of the name.
    pub cue: bool,
}

/// What the lists say of one word.
#[derive(Debug, Default, Clone, Copy)]
struct Word {
    first: bool,
    last: bool,
    /// Zipf frequency as an ordinary word; 0 when not in the word lists.
    zipf: f32,
    /// A one-word cue (Docteur, Née): it introduces a name rather than being one.
    cue: bool,
    /// A clinical word the lists also hold as a name (Foley, Swan, Ganz).
    clinical: bool,
}

/// The cues that start at one token, by the number of tokens they take.
#[derive(Debug, Default, Clone, Copy)]
struct CueHit {
    before: Option<usize>,
    after: Option<usize>,
    midline: Option<usize>,
    /// The cue before is a title (dr, mme).
    title: bool,
    /// ...one that is also an abbreviation (MS).
    strict: bool,
    /// The cue after is a credential that wants a comma (RN, MD).
    needs_comma: bool,
    /// A label (Patient): a name follows its colon. With or without the colon it is no
    /// part of a name, like every cue word.
    label: bool,
}

impl CueHit {
    fn any(&self) -> bool {
        self.before.is_some() || self.after.is_some() || self.midline.is_some() || self.label
    }
}

/// A name found: byte offsets into the text (`end` exclusive) and a confidence.
#[derive(Debug, Clone, Copy)]
struct NameSpan {
    start: usize,
    end: usize,
    confidence: f32,
}

impl NameSpan {
    /// From the start of token `first` to the end of token `last`.
    fn over(first: &Token, last: &Token, confidence: f32) -> Self {
        NameSpan {
            start: first.start,
            end: last.end,
            confidence,
        }
    }
}

/// Names and words, upper-cased and without accents for lookup.
pub struct NameFinder {
    /// The entry the lists were read for.
    pub spec: NameListSpec,
    /// Cue word sequences, folded, by their first word.
    cues_before: HashMap<String, Vec<Vec<String>>>,
    cues_after: HashMap<String, Vec<Vec<String>>>,
    cues_after_midline: HashMap<String, Vec<Vec<String>>>,
    /// The most tokens any cue takes.
    longest_cue: usize,
    /// Credentials that also are ordinary words in notes (MD, RN): a comma must precede them.
    cues_after_comma: Vec<String>,
    /// Titles (folded): after them a word in no list may be a name even in lower case.
    titles: Vec<String>,
    /// Titles that are also abbreviations (folded; see [`NameListSpec::strict_titles`]).
    strict_titles: Vec<String>,
    /// Labels a colon must follow (folded one-word cues).
    labels: Vec<String>,
    /// Every cue's first word, folded: a small set, so that looking each word of a post
    /// up in it stays in the cache (the word map would miss it for every word).
    cue_starts: WordSet,
    /// One lookup per token tells all the lists, cues and clinical words say of it;
    /// foldhash because SipHash was a tenth of the redactor's time.
    words: WordMap<Word>,
}

/// Folded words and what the lists say of each. A word of up to 16 bytes (nearly every
/// one) is its own key, packed into a `u128`: a lookup compares two integers instead of
/// following a pointer to the key's bytes, a cache miss of its own in a map this size.
struct WordMap<V> {
    short: HashMap<u128, V, foldhash::fast::FixedState>,
    long: HashMap<Box<str>, V, foldhash::fast::FixedState>,
}

impl<V> Default for WordMap<V> {
    fn default() -> Self {
        WordMap {
            short: HashMap::default(),
            long: HashMap::default(),
        }
    }
}

/// Up to 16 bytes zero-padded into a key.
fn pack(bytes: &[u8]) -> u128 {
    let mut key = [0u8; 16];
    key[..bytes.len()].copy_from_slice(bytes);
    u128::from_le_bytes(key)
}

impl<V: Default> WordMap<V> {
    /// The bytes zero-padded: distinct words give distinct keys, as no word holds a NUL.
    fn short_key(bytes: &[u8]) -> Option<u128> {
        (bytes.len() <= 16 && !bytes.contains(&0)).then(|| pack(bytes))
    }

    fn get(&self, folded: &str) -> Option<&V> {
        match Self::short_key(folded.as_bytes()) {
            Some(key) => self.short.get(&key),
            None => self.long.get(folded),
        }
    }

    /// An ASCII word, folded (upper-cased) on the way into its key; `None` when too long
    /// to be a short key.
    fn get_ascii(&self, word: &str) -> Option<Option<&V>> {
        // Callers pass tokens: letters, hyphens and apostrophes, never a NUL.
        debug_assert!(word.is_ascii() && !word.contains('\0'));
        if word.len() > 16 {
            return None;
        }
        Some(self.short.get(&ascii_upper(pack(word.as_bytes()))))
    }

    fn entry(&mut self, folded: &str) -> &mut V {
        match Self::short_key(folded.as_bytes()) {
            Some(key) => self.short.entry(key).or_default(),
            None => self.long.entry(folded.into()).or_default(),
        }
    }

    fn retain(&mut self, keep: impl Fn(&V) -> bool) {
        self.short.retain(|_, w| keep(w));
        self.long.retain(|_, w| keep(w));
        self.short.shrink_to_fit();
        self.long.shrink_to_fit();
    }
}

/// Sixteen ASCII bytes upper-cased at once: 0x20 taken from each byte in a..=z.
fn ascii_upper(bytes: u128) -> u128 {
    const ONES: u128 = u128::MAX / 0xFF;
    // A byte below 0x80 plus these stays below 0x100: no carry into its neighbour.
    let past_z = bytes + ONES * u128::from(0x7F - b'z');
    let from_a = bytes + ONES * u128::from(0x80 - b'a');
    let lower = from_a & !past_z & (ONES * 0x80);
    bytes - (lower >> 2)
}

/// A few folded words (the first words of cues), and the first letter and length of
/// each ASCII one: most words of a post are turned away before any hashing.
struct WordSet {
    words: WordMap<()>,
    /// Bit `n` of entry `k`: some word starts with the `k`th letter and has `n` bytes.
    shapes: [u32; 26],
}

impl WordSet {
    fn new<'a>(folded: impl IntoIterator<Item = &'a str>) -> Self {
        let mut words = WordMap::default();
        let mut shapes = [0u32; 26];
        for word in folded {
            words.entry(word);
            // A word without a shape (SŒUR) can only be the fold of words without one,
            // which are never turned away: an ASCII word folds to itself in upper case.
            if let Some((letter, len)) = Self::shape(word, word.is_ascii()) {
                shapes[letter] |= 1 << len;
            }
        }
        WordSet { words, shapes }
    }

    /// First letter (A = 0) and length of an ASCII word (`ascii`: known to be) of under
    /// 32 bytes starting with a letter.
    fn shape(word: &str, ascii: bool) -> Option<(usize, usize)> {
        let first = *word.as_bytes().first()?;
        (ascii && first.is_ascii_alphabetic() && word.len() < 32)
            .then(|| (usize::from(first.to_ascii_uppercase() - b'A'), word.len()))
    }

    /// Is `word` (as written; `ascii`: whether it is) one of the set once folded?
    fn contains(&self, word: &str, ascii: bool, buf: &mut String) -> bool {
        if let Some((letter, len)) = Self::shape(word, ascii) {
            if self.shapes[letter] & (1 << len) == 0 {
                return false;
            }
        }
        match ascii.then(|| self.words.get_ascii(word)).flatten() {
            Some(found) => found.is_some(),
            None => {
                fold_into(word, buf);
                self.words.get(buf).is_some()
            }
        }
    }
}

/// Upper case without diacritics: INSEE's surnames are ASCII, SSA's names Title-case.
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    fold_into(word, &mut out);
    out
}

/// The fold of ASCII and of the accented letters `gate::base_letter` knows, in either case,
/// without Unicode's case tables; `None` for other characters.
fn fold_common(c: char) -> Option<char> {
    if c.is_ascii() {
        return Some(c.to_ascii_uppercase());
    }
    if c == '’' {
        return Some('\'');
    }
    // Latin-1 capitals are their small letters less 0x20 (× has no case).
    let lower = match c {
        'À'..='Þ' if c != '×' => char::from_u32(u32::from(c) + 0x20)?,
        c => c,
    };
    crate::gate::base_letter(lower).map(|base| base.to_ascii_uppercase())
}

/// `char::is_alphabetic`, answering Latin-1 and Latin Extended-A (French, Spanish,
/// German, Polish... letters) without Unicode's tables.
fn is_letter(c: char) -> bool {
    if c < '\u{180}' {
        c.is_ascii_alphabetic()
            || (c >= '\u{C0}' && c != '×' && c != '÷')
            || matches!(c, 'ª' | 'µ' | 'º')
    } else {
        c.is_alphabetic()
    }
}

fn fold_into(word: &str, out: &mut String) {
    out.clear();
    if word.is_ascii() {
        out.push_str(word);
        out.make_ascii_uppercase();
        return;
    }
    for c in word.chars() {
        if let Some(folded) = fold_common(c) {
            out.push(folded);
        } else {
            out.extend(c.to_uppercase().map(|c| {
                if c == '’' {
                    '\''
                } else {
                    crate::gate::strip_accent(c)
                }
            }));
        }
    }
}

pub(crate) fn read_list(
    dir: &Path,
    src: &ListSource,
    mut add: impl FnMut(&str, Option<f64>),
) -> Result<(), RuleError> {
    let path = dir.join(&src.file);
    let io = |source| RuleError::Io {
        path: path.clone(),
        source,
    };
    let file = std::fs::File::open(&path).map_err(io)?;
    let sep = src.separator.unwrap_or(if src.file.ends_with(".csv") {
        ','
    } else {
        '\t'
    });
    let mut lines = std::io::BufReader::new(file).lines();
    let header = lines.next().transpose().map_err(io)?.unwrap_or_default();
    let header: Vec<String> = header
        .trim_start_matches('\u{feff}')
        .split(sep)
        .map(|h| h.trim().to_string())
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| RuleError::Invalid {
                file: path.display().to_string(),
                id: src.column.clone(),
                message: format!("no column `{name}` in the header"),
            })
    };
    let name_col = col(&src.column)?;
    let filter = match (&src.filter_column, &src.filter_value) {
        (Some(c), Some(v)) => Some((col(c)?, v.clone())),
        _ => None,
    };
    let value_col = src.value_column.as_deref().map(col).transpose()?;
    for line in lines {
        let line = line.map_err(io)?;
        let fields: Vec<&str> = line.split(sep).collect();
        let Some(name) = fields.get(name_col).map(|s| s.trim()) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        if let Some((c, v)) = &filter {
            if fields.get(*c).map(|s| s.trim()) != Some(v.as_str()) {
                continue;
            }
        }
        let value = value_col
            .and_then(|c| fields.get(c))
            .and_then(|s| s.trim().parse::<f64>().ok());
        if let (Some(min), Some(v)) = (src.min_count, value) {
            if v < min {
                continue;
            }
        }
        add(name, value);
    }
    Ok(())
}

impl NameFinder {
    /// Reads the gazetteer files `spec` names from `dir`; the frequencies of its
    /// `common_words` come from `zipf`, read from those lists down to
    /// [`NameListSpec::least_zipf_compared`] at least.
    pub fn load(spec: NameListSpec, dir: &Path, zipf: &ZipfTable) -> Result<Self, RuleError> {
        zipf.check_serves(
            &spec.common_words,
            spec.least_zipf_compared(),
            dir,
            &spec.id,
        )?;
        let mut words: WordMap<Word> = WordMap::default();
        for src in &spec.first_names {
            read_list(dir, src, |n, _| words.entry(&fold(n)).first = true)?;
        }
        for src in &spec.surnames {
            read_list(dir, src, |n, _| {
                if n != "AUTRES NOMS" {
                    words.entry(&fold(n)).last = true;
                }
            })?;
        }
        for (word, frequency) in zipf.iter() {
            words.entry(word).zipf = frequency;
        }
        let cues = |list: &[String]| {
            let mut by_first: HashMap<String, Vec<Vec<String>>> = HashMap::new();
            for cue in list {
                let words: Vec<String> = tokens(cue)
                    .iter()
                    .map(|t| {
                        let mut word = String::new();
                        fold_token(cue, t, &mut word);
                        word
                    })
                    .collect();
                if let Some(first) = words.first() {
                    by_first.entry(first.clone()).or_default().push(words);
                }
            }
            by_first
        };
        let all_before: Vec<String> = spec
            .titles
            .iter()
            .chain(&spec.strict_titles)
            .chain(&spec.cues_before)
            .cloned()
            .collect();
        let all_after: Vec<String> = spec
            .cues_after
            .iter()
            .chain(&spec.cues_after_comma)
            .cloned()
            .collect();
        let (cues_before, cues_after) = (cues(&all_before), cues(&all_after));
        let cues_after_midline = cues(&spec.cues_after_midline);
        let all_cues = [&cues_before, &cues_after, &cues_after_midline];
        let longest_cue = all_cues
            .iter()
            .flat_map(|c| c.values().flatten())
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        // The cues' first words, as the automaton and the word map both know them.
        let labels: Vec<String> = spec.cues_before_colon.iter().map(|c| fold(c)).collect();
        let first_words: std::collections::BTreeSet<&String> = all_cues
            .iter()
            .flat_map(|c| c.keys())
            .chain(&labels)
            .collect();
        let cues_after_comma = spec.cues_after_comma.iter().map(|c| fold(c)).collect();
        let titles = spec
            .titles
            .iter()
            .chain(&spec.strict_titles)
            .map(|c| fold(c))
            .collect();
        let strict_titles = spec.strict_titles.iter().map(|c| fold(c)).collect();
        // Cue words are never part of a name run ("le Docteur Gabriel Lhermine").
        for cue in spec
            .cues_before
            .iter()
            .chain(&spec.titles)
            .chain(&spec.strict_titles)
            .filter(|c| !c.contains(' '))
        {
            words.entry(&fold(cue)).cue = true;
        }
        for word in &spec.not_names {
            words.entry(&fold(word)).clinical = true;
        }
        // A word the lists know only by a frequency below every threshold it is ever
        // compared with behaves as a word in no list: leaving the 430,000 rare words out
        // makes the map a third of its size, and lookups (a cache miss each) faster.
        let least = spec.least_zipf_compared();
        words.retain(|w| w.first || w.last || w.cue || w.clinical || w.zipf >= least);
        let cue_starts = WordSet::new(first_words.iter().map(|w| w.as_str()));
        Ok(NameFinder {
            spec,
            cues_before,
            cues_after,
            cues_after_midline,
            longest_cue,
            cues_after_comma,
            titles,
            strict_titles,
            labels,
            cue_starts,
            words,
        })
    }

    /// What the lists say of one word (any case, accents or not): for finders other than
    /// the rules, such as a learned tagger, to check a name against.
    pub fn word_profile(&self, word: &str) -> WordProfile {
        let mut buf = String::new();
        let w = self.word_known(word, word.is_ascii(), &mut buf);
        WordProfile {
            name: w.first || w.last,
            zipf: w.zipf,
            clinical: w.clinical,
            cue: w.cue,
        }
    }

    /// What the lists say of a token.
    fn token_word(&self, text: &str, t: &Token, buf: &mut String) -> Word {
        self.word_known(&text[t.start..t.end], t.ascii, buf)
    }

    /// `ascii`: whether `text` is known to be ASCII.
    fn word_known(&self, text: &str, ascii: bool, buf: &mut String) -> Word {
        if let Some(found) = ascii.then(|| self.words.get_ascii(text)).flatten() {
            return found.copied().unwrap_or_default();
        }
        fold_into(text, buf);
        self.words.get(buf.as_str()).copied().unwrap_or_default()
    }

    /// Name spans as (byte start, byte end, confidence).
    /// `lang`: the text's language when known (fr, en, or fr+en for a post mixing both).
    pub fn find(&self, text: &str, lang: Option<&str>) -> Vec<(usize, usize, f32)> {
        let upper_singles =
            lang.is_some_and(|l| crate::includes_language(l, &self.spec.upper_single_languages));
        let tokens = tokens(text);
        let shouting = shouting_lines(text, &tokens);
        let mut out: Vec<NameSpan> = Vec::new();
        let mut buf = String::new();
        let mut i = 0;
        while i < tokens.len() {
            if !tokens[i].capitalised {
                i += 1;
                continue;
            }
            // A run of capitalised tokens separated by single spaces.
            let mut j = i + 1;
            while j < tokens.len()
                && tokens[j].capitalised
                && text[tokens[j - 1].end..tokens[j].start] == *" "
            {
                j += 1;
            }
            let shouts = shouting.as_ref().is_some_and(|s| s[i]);
            self.judge_run(
                text,
                &tokens[i..j],
                shouts,
                upper_singles,
                &mut buf,
                &mut out,
            );
            i = j;
        }
        self.find_by_cues(text, &tokens, &mut out);
        self.find_surname_comma_first(text, &tokens, upper_singles, &mut buf, &mut out);
        out.into_iter()
            .map(|span| (span.start, span.end, span.confidence))
            .collect()
    }

    /// A surname in capitals, a comma, then a first name, perhaps after the surname again
    /// (French identity lines give the usual then the birth name): "TAILLARD, TAILLARD
    /// PIERRE", "AID MERGHAD, ZINEDINE", "M. MENARD, Julien". A first name in capitals
    /// only after the surname again, or where names in capitals are the custom
    /// (`upper_singles`, French notes): in English notes typed in capitals "PERL, MAE" is
    /// pupils and limbs.
    fn find_surname_comma_first(
        &self,
        text: &str,
        tokens: &[Token],
        upper_singles: bool,
        buf: &mut String,
        out: &mut Vec<NameSpan>,
    ) {
        let s = &self.spec;
        for i in 1..tokens.len() {
            if !tokens[i - 1].caps
                || !tokens[i].capitalised
                || &text[tokens[i - 1].end..tokens[i].start] != ", "
            {
                continue;
            }
            let surname = |t: &Token, buf: &mut String| {
                let w = self.token_word(text, t, buf);
                t.caps
                    && !t.initial
                    && !w.clinical
                    && !w.cue
                    && (w.zipf < s.run_max_zipf || (w.last && w.zipf < COMMON_SURNAME_MAX_ZIPF))
            };
            let mut start = i;
            while start > 0
                && i - start < 3
                && (start == i || name_gap(text, &tokens[start - 1], &tokens[start]))
                && surname(&tokens[start - 1], buf)
            {
                start -= 1;
            }
            if start == i {
                continue;
            }
            // The surname again, word for word, then the first name.
            let repeated = &tokens[start..i];
            let mut k = i;
            while k < tokens.len()
                && k - i < repeated.len()
                && text[tokens[k].start..tokens[k].end]
                    == text[repeated[k - i].start..repeated[k - i].end]
            {
                k += 1;
            }
            let Some(first) = tokens.get(k) else { continue };
            if k > i && !name_gap(text, &tokens[k - 1], first) {
                continue;
            }
            let w = self.token_word(text, first, buf);
            let case_fits = upper_singles || !first.caps || k > i;
            // The comma after a surname in capitals is a cue: a first name as common as a
            // word may be as next to other cues (Pierre, Jean).
            let rare = w.zipf < s.cue_list_max_zipf;
            if case_fits
                && rare
                && first.capitalised
                && !first.initial
                && first.letters >= 3
                && w.first
                && !w.clinical
                && !w.cue
            {
                out.push(NameSpan::over(
                    &tokens[start],
                    &tokens[i - 1],
                    s.run_confidence,
                ));
                out.push(NameSpan::over(&tokens[i], first, s.run_confidence));
            }
        }
    }

    /// Names in any case next to a cue: "dr. john bowman", "WIFE HELEN", "son, dave",
    /// "ANTHONY C. KOZICKI, RRT".
    fn find_by_cues(&self, text: &str, tokens: &[Token], out: &mut Vec<NameSpan>) {
        if self.cues_before.is_empty()
            && self.cues_after.is_empty()
            && self.cues_after_midline.is_empty()
            && self.labels.is_empty()
        {
            return;
        }
        let mut buf = String::new();
        // Most posts hold no cue word.
        let Some(hits) = self.cue_hits(text, tokens, &mut buf) else {
            return;
        };
        let mut scan = CueScan {
            finder: self,
            text,
            tokens,
            hits: &hits,
            buf,
            out,
        };
        for i in 0..hits.len() {
            scan.name_after_label(i);
            // A title that is also an abbreviation with no name after it, or a credential
            // where no signature ends, leaves the token's later cues untried.
            if scan.name_after_cue(i).is_break() || scan.signature_before(i).is_break() {
                continue;
            }
            scan.name_before_midline(i);
        }
    }

    /// After a title that is also an abbreviation: one space or a dot, then an initial or a
    /// capitalised word rarer than most surnames (MS SANTANGELO, Ms Kowalczyk; not Ms Gray,
    /// whose surname is as common a word as "grey").
    fn strict_title_name(&self, text: &str, title: &Token, name: &Token, buf: &mut String) -> bool {
        if !matches!(&text[title.end..name.start], " " | ". ") || !name.capitalised {
            return false;
        }
        if name.initial {
            return true;
        }
        let w = self.token_word(text, name, buf);
        name.letters >= 3 && !w.clinical && !w.cue && w.zipf < self.spec.unknown_surname_max_zipf
    }

    /// The cues starting at each token; `None` when no token starts one. One lookup per
    /// token in the small set of first words; only those are folded again with the
    /// tokens after them. A word joined to digits ("2Dr") starts no cue.
    fn cue_hits(&self, text: &str, tokens: &[Token], buf: &mut String) -> Option<Vec<CueHit>> {
        let mut hits: Option<Vec<CueHit>> = None;
        let bytes = text.as_bytes();
        for (i, t) in tokens.iter().enumerate() {
            let word = &text[t.start..t.end];
            let word = if t.initial {
                &word[..word.len() - 1]
            } else {
                word
            };
            if !self.cue_starts.contains(word, t.ascii, buf) {
                continue;
            }
            let joined = |at: Option<usize>| {
                at.and_then(|a| bytes.get(a))
                    .is_some_and(u8::is_ascii_digit)
            };
            if joined(t.start.checked_sub(1)) || joined(Some(t.end)) {
                continue;
            }
            let folded: Vec<String> = tokens[i..(i + self.longest_cue).min(tokens.len())]
                .iter()
                .map(|t| {
                    let mut s = String::new();
                    fold_token(text, t, &mut s);
                    s
                })
                .collect();
            let longest = |cues: &HashMap<String, Vec<Vec<String>>>| {
                cues.get(&folded[0])?
                    .iter()
                    .filter(|seq| folded.get(..seq.len()).is_some_and(|w| w == seq.as_slice()))
                    .map(Vec::len)
                    .max()
            };
            let before = longest(&self.cues_before);
            let after = longest(&self.cues_after);
            hits.get_or_insert_with(|| vec![CueHit::default(); tokens.len()])[i] = CueHit {
                before,
                after,
                midline: longest(&self.cues_after_midline),
                title: before.is_some() && self.titles.contains(&folded[0]),
                strict: before.is_some() && self.strict_titles.contains(&folded[0]),
                needs_comma: after.is_some() && self.cues_after_comma.contains(&folded[0]),
                label: self.labels.contains(&folded[0]),
            };
        }
        hits
    }

    /// Could this token, next to a cue, be (part of) a name? `next_to_cue`: the token right
    /// beside the cue, where common first names (John, Mary) are still names.
    /// `strong`: right after a title or an initial, where a listed surname may be a common
    /// word (mrs. powers, J. PETIT) short of a function word.
    fn plausible(
        &self,
        text: &str,
        t: &Token,
        after_title: bool,
        strong: bool,
        buf: &mut String,
    ) -> bool {
        let word = &text[t.start..t.end];
        let letters = t.letters;
        if t.initial || (letters == 1 && t.capitalised) {
            // J. or an initial typed without its dot (Dr K Lartigue).
            return true;
        }
        if letters < 2 {
            // Beside a credential or a title, notes typed in lower case write initials so
            // too: "barbara j. parrilli bsn", "q. lander rrt".
            return after_title && text[t.end..].starts_with('.');
        }
        let w = self.token_word(text, t, buf);
        if w.clinical && !strong {
            // Foley, tel: a title right before still makes "Dr Foley" a name.
            return false;
        }
        if letters <= 3 && word.chars().all(|c| !c.is_lowercase()) && !(w.first || w.last) {
            // An acronym (NIR, ICU), not a name nobody has heard of.
            return false;
        }
        // A possessive only right after a title (dr. white's order): elsewhere pt's, it's.
        if (word.ends_with("'s") || word.ends_with("’s")) && !strong || word.ends_with("'t") {
            return false;
        }
        let s = &self.spec;
        if w.first {
            w.zipf < s.cue_list_max_zipf
        } else if w.last {
            w.zipf
                < if strong {
                    FUNCTION_WORD_ZIPF
                } else {
                    s.run_max_zipf
                }
        } else {
            // Rare words abound in notes (suctioned, integrillin): a word in no list is a
            // name after a title, or when written with a capital.
            (after_title || t.capitalised) && w.zipf < s.cue_unknown_max_zipf
        }
    }

    /// Is token `k` of a run a name by what the lists say of it and its neighbours?
    fn listed_name(run: &[Token], words: &[Word], k: usize, shouting: bool) -> bool {
        let (t, word) = (&run[k], words[k]);
        // A common word capitalised because it starts a sentence ("Patient NIR ...") says
        // nothing about names; a first name followed by a capitalised word of four letters
        // or more (". Jacques Delors était") still may.
        let surname_follows = run.get(k + 1).is_some_and(|n| n.letters >= 4);
        let ordinary_opener = t.sentence_start
            && word.zipf >= SENTENCE_START_COMMON_ZIPF
            && !(word.first && surname_follows);
        // Cue words (Docteur, Née) introduce names rather than being one.
        let cue = !t.initial && word.cue;
        // IV, PA, NPN: acronyms, however many lists hold them; 3 capitals are still a name
        // (JON, BOB) outside notes typed in capitals.
        let acronym = !t.initial && t.caps && t.letters <= if shouting { 3 } else { 2 };
        // "Hanks To Star In The Most": function words are in surname lists too; a surname
        // after a first name is no function word (Isabelle BON).
        let after_first = k > 0 && words[k - 1].first && !run[k - 1].initial;
        let function_word = word.zipf >= FUNCTION_WORD_ZIPF
            && !(after_first && word.last && word.zipf < COMMON_SURNAME_MAX_ZIPF);
        // Single letters in lists (C, IV...) are mostly abbreviations.
        !ordinary_opener
            && !cue
            && !acronym
            && !word.clinical
            && !function_word
            && (t.initial || ((word.first || word.last) && t.letters >= 2))
    }

    /// `upper_singles`: names in capitals are the custom (French notes).
    fn judge_run(
        &self,
        text: &str,
        run: &[Token],
        shouting: bool,
        upper_singles: bool,
        buf: &mut String,
        out: &mut Vec<NameSpan>,
    ) {
        if run.len() == 1 {
            // Most runs are one capitalised word. In capitals on a shouting line it says
            // nothing; otherwise it is judged alone, without the pair rules below.
            self.judge_one_word(text, run, shouting, upper_singles, buf, out);
            return;
        }
        let words: Vec<Word> = run.iter().map(|t| self.token_word(text, t, buf)).collect();
        let info = (0..run.len())
            .map(|k| RunWord {
                name: Self::listed_name(run, &words, k, shouting),
                word: words[k],
            })
            .collect();
        let mut scan = RunScan {
            spec: &self.spec,
            text,
            run,
            info,
            shouting,
            upper_singles,
            out,
        };
        scan.mark_unlisted_surnames();
        if shouting {
            scan.initial_then_surname();
            scan.first_then_surname();
            // Not in English notes typed in capitals, where ABD DISTENDED is the abdomen.
            if upper_singles {
                scan.identity_lines();
            }
        } else {
            scan.name_stretches();
        }
    }

    /// A run of one capitalised word, `run[0]`.
    fn judge_one_word(
        &self,
        text: &str,
        run: &[Token],
        shouting: bool,
        upper_singles: bool,
        buf: &mut String,
        out: &mut Vec<NameSpan>,
    ) {
        let s = &self.spec;
        // `judge_single` only takes a first name inside a sentence, or a word of four
        // capitals or more where those are names: other words need no lookup.
        let t = &run[0];
        let could_be = !t.initial
            && if t.uppers == t.letters {
                upper_singles && t.letters >= 4
            } else {
                !t.sentence_start
            };
        if !shouting && could_be {
            let word = self.token_word(text, &run[0], buf);
            if Self::listed_name(run, &[word], 0, false) {
                judge_single(s, &run[0], word, upper_singles, out);
            }
        }
    }
}

/// One pass of [`NameFinder::find_by_cues`] over a text: its tokens, the cues starting at
/// each, and the names found so far.
struct CueScan<'a> {
    finder: &'a NameFinder,
    text: &'a str,
    tokens: &'a [Token],
    /// The cues starting at each token.
    hits: &'a [CueHit],
    /// Room to fold words in.
    buf: String,
    out: &'a mut Vec<NameSpan>,
}

impl CueScan<'_> {
    /// Does token `k` start a cue? Cue words are no part of a name.
    fn is_cue(&self, k: usize) -> bool {
        self.hits[k].any()
    }

    /// What the lists say of token `k`.
    fn word(&mut self, k: usize) -> Word {
        self.finder
            .token_word(self.text, &self.tokens[k], &mut self.buf)
    }

    /// [`NameFinder::plausible`] for token `k`.
    fn plausible(&mut self, k: usize, after_title: bool, strong: bool) -> bool {
        self.finder.plausible(
            self.text,
            &self.tokens[k],
            after_title,
            strong,
            &mut self.buf,
        )
    }

    /// [`name_gap`] between tokens `a` and `b`.
    fn name_gap(&self, a: usize, b: usize) -> bool {
        name_gap(self.text, &self.tokens[a], &self.tokens[b])
    }

    /// A name after a label (token `i`) and its colon.
    fn name_after_label(&mut self, i: usize) {
        let tokens = self.tokens;
        // Without its colon a label introduces nothing ("Patient NIR").
        if !(self.hits[i].label
            && i + 1 < tokens.len()
            && label_gap(&self.text[tokens[i].end..tokens[i + 1].start]))
        {
            return;
        }
        // "Patient 1: Azila Marie", "Patiente : M. DAUBERT": up to three capitalised
        // words or initials.
        let mut end = i + 1;
        while end < tokens.len()
            && end < i + 4
            && !self.is_cue(end)
            && (tokens[end].capitalised || tokens[end].initial)
            && self.plausible(end, false, end > i + 1 && tokens[end - 1].initial)
            && (end == i + 1 || self.name_gap(end - 1, end))
        {
            end += 1;
        }
        if end > i + 1 {
            self.push_cued(i + 1, end);
        }
    }

    /// A name after a cue starting at token `i` (a title, a relative: "dr. john bowman",
    /// "WIFE HELEN"), then the names listed after it. `Break` when the cue is a title that
    /// is also an abbreviation and no name follows it.
    fn name_after_cue(&mut self, i: usize) -> ControlFlow<()> {
        let hit = self.hits[i];
        let Some(len) = hit.before else {
            return ControlFlow::Continue(());
        };
        let (text, tokens) = (self.text, self.tokens);
        let after = i + len;
        // "Dr. X" but not "husband. Stable".
        let short_title = tokens[after - 1].end - tokens[i].start <= 3;
        let title = hit.title;
        if hit.strict
            && !(after < tokens.len()
                && self.finder.strict_title_name(
                    text,
                    &tokens[after - 1],
                    &tokens[after],
                    &mut self.buf,
                ))
        {
            return ControlFlow::Break(());
        }
        if after < tokens.len()
            && cue_gap(
                text,
                tokens[after - 1].end,
                tokens[after].start,
                short_title,
            )
        {
            let end = self.cued_name_end(after, title);
            self.push_cued(after, end);
            if end > after {
                self.continue_list(end, title);
            }
        }
        ControlFlow::Continue(())
    }

    /// Where a name starting at token `after`, right after a cue (`title`: a title), ends:
    /// `after` when there is none.
    fn cued_name_end(&mut self, after: usize, title: bool) -> usize {
        let (finder, text, tokens) = (self.finder, self.text, self.tokens);
        let mut end = after;
        // Right after a title or an initial, a surname may be a common word too
        // (mrs. powers, Patient J. PETIT).
        // Not in capitals after a title: "PR GIVEN" is per rectum.
        let strong = |end: usize| {
            (title && end == after && !tokens[end].caps)
                || (end > after && tokens[end - 1].initial && tokens[end].capitalised)
        };
        // After a capitalised name a word in lower case goes on with it only when
        // rare as a word (Janet logan, Dr. Caroline pidoux; not Dr Vining early).
        let case_fits = |end: usize, buf: &mut String| {
            let t = &tokens[end];
            end == after
                || !tokens[after].capitalised
                || t.capitalised
                || t.initial
                || finder.token_word(text, t, buf).zipf < finder.spec.run_max_zipf
        };
        while end < tokens.len()
            && end < after + 3
            && !self.is_cue(end)
            && case_fits(end, &mut self.buf)
            && self.plausible(end, title, strong(end))
            && (end == after || self.name_gap(end - 1, end))
        {
            end += 1;
        }
        end
    }

    /// Names listed after the first one: "Dr. Rakusin and Toolis", "Sons Smokey, Morris and
    /// Roger". Each must be capitalised (or follow a title) and plausible.
    fn continue_list(&mut self, mut end: usize, title: bool) {
        let (text, tokens) = (self.text, self.tokens);
        for _ in 0..4 {
            let Some(next) = tokens.get(end) else { return };
            let gap = &text[tokens[end - 1].end..next.start];
            // "X, Y", "X & Y", or "X and Y" / "X, et Y" with the conjunction as a token.
            let conjunction = matches!(
                text[next.start..next.end].to_lowercase().as_str(),
                "and" | "et"
            );
            let first = if conjunction {
                let Some(after) = tokens.get(end + 1) else {
                    return;
                };
                if !matches!(gap, " " | ", ") || &text[next.end..after.start] != " " {
                    return;
                }
                end + 1
            } else if matches!(gap.trim(), "," | "&") && gap.starts_with([',', ' ']) {
                end
            } else {
                return;
            };
            let mut stop = first;
            while stop < tokens.len()
                && stop < first + 2
                // Lower case continues only a list written in lower case (dr. x and y).
                && (tokens[stop].capitalised || (title && !tokens[end - 1].capitalised))
                && !self.is_cue(stop)
                && self.plausible(stop, title, false)
                && (stop == first || self.name_gap(stop - 1, stop))
            {
                stop += 1;
            }
            if stop == first {
                return;
            }
            self.push_cued(first, stop);
            end = stop;
        }
    }

    /// A signature: a name before a credential starting at token `i`. `Break` when the
    /// credential is not where a signature ends.
    fn signature_before(&mut self, i: usize) -> ControlFlow<()> {
        let hit = self.hits[i];
        let Some(len) = hit.after.filter(|_| i > 0) else {
            return ControlFlow::Continue(());
        };
        let (text, tokens) = (self.text, self.tokens);
        // A signature: "X, RN" or "X RRT", the credential ending the line or sentence
        // ("RN to follow" and "per MD report" are not signatures).
        let comma = text[tokens[i - 1].end..tokens[i].start].contains(',');
        let cue_end = tokens[i + len - 1].end;
        let rest = text[cue_end..].trim_start_matches([' ', '\t']);
        let ends = rest.is_empty() || rest.starts_with(['\n', '\r', '.', ',', ';', ')', '/']);
        let needs_comma = hit.needs_comma;
        if !cue_gap(text, tokens[i - 1].end, tokens[i].start, false) {
            return ControlFlow::Break(());
        }
        let start = self.signed_name_start(i);
        // "per MD report" is no signature; "anita morris rn" opening a sentence is, and
        // so is a double-barrelled name (Stord-Painter MD plans).
        let compound = &text[tokens[start].start..tokens[start].end];
        // Not Swan-Ganz: neither part a clinical word.
        let double_barrelled = i - start == 1
            && is_double_barrelled(compound)
            && !compound.split('-').any(|part| {
                self.finder
                    .word_known(part, part.is_ascii(), &mut self.buf)
                    .clinical
            });
        if !ends && !double_barrelled {
            return ControlFlow::Break(());
        }
        if needs_comma
            && !comma
            && !double_barrelled
            && (i - start < 2 || !starts_sentence(text, tokens[start].start))
        {
            return ControlFlow::Break(());
        }
        self.push_cued(start, i);
        ControlFlow::Continue(())
    }

    /// Where a name right before a credential at token `i` starts: `i` when there is none.
    fn signed_name_start(&mut self, i: usize) -> usize {
        let mut start = i;
        while start > 0
            && start + 3 > i
            && !self.is_cue(start - 1)
            && self.plausible(start - 1, true, false)
            && (start == i || self.name_gap(start - 1, start))
        {
            start -= 1;
        }
        start
    }

    /// A name before a cue at token `i` in a sentence that goes on: "W. MAROTTA AWARE",
    /// "Bea Tura notified".
    fn name_before_midline(&mut self, i: usize) {
        if !(self.hits[i].midline.is_some() && i > 0) {
            return;
        }
        let (text, tokens) = (self.text, self.tokens);
        // Only spaces between: "GI- Family to assist", "Soc: family in" are headings.
        if !text[tokens[i - 1].end..tokens[i].start]
            .chars()
            .all(|c| c == ' ' || c == '\t')
        {
            return;
        }
        // Two words at most ("VENT BIGEMINY BEA TURA AWARE": not the rhythm); an
        // initial does not count.
        let mut start = i;
        let mut words = 0;
        while start > 0
            && words < 2
            && !self.is_cue(start - 1)
            && (tokens[start - 1].capitalised || tokens[start - 1].initial)
            && self.plausible(start - 1, false, start >= 2 && tokens[start - 2].initial)
            && (start == i || self.name_gap(start - 1, start))
        {
            words += usize::from(!tokens[start - 1].initial);
            start -= 1;
        }
        // With no title before it, the run needs a listed name or an initial
        // ("S-RESIDENT AWARE" is none).
        let listed = (start..i).any(|k| {
            let w = self.word(k);
            tokens[k].initial || w.first || w.last
        });
        if start < i && listed {
            self.push_cued(start, i);
        } else if let Some(start) = self.lower_case_name_before(i) {
            self.push_cued(start, i);
        }
    }

    /// A name typed in lower case right before a midline cue: a first name not too common
    /// as a word, perhaps followed by a surname rare as a word ("george called", "grace
    /// dudak aware"; not "pt aware", "team notified"). Returns where it starts.
    fn lower_case_name_before(&mut self, cue: usize) -> Option<usize> {
        let (finder, text, tokens, hits) = (self.finder, self.text, self.tokens, self.hits);
        let s = &finder.spec;
        let is_cue = |k: usize| hits[k].any();
        let usable = |k: usize| {
            tokens[k].uppers == 0 && !tokens[k].initial && tokens[k].letters >= 3 && !is_cue(k)
        };
        let first = |k: usize, buf: &mut String| {
            let w = finder.token_word(text, &tokens[k], buf);
            usable(k) && w.first && w.zipf < LOWER_CASE_FIRST_NAME_MAX_ZIPF && !w.clinical && !w.cue
        };
        let surname = |k: usize, buf: &mut String| {
            let w = finder.token_word(text, &tokens[k], buf);
            usable(k)
                && tokens[k].letters >= 4
                && w.zipf < s.cue_unknown_max_zipf
                && !w.clinical
                && !w.cue
        };
        let buf = &mut self.buf;
        let last = cue.checked_sub(1)?;
        if first(last, buf) {
            return Some(last);
        }
        let before = last.checked_sub(1)?;
        (surname(last, buf) && name_gap(text, &tokens[before], &tokens[last]) && first(before, buf))
            .then_some(before)
    }

    /// Tokens `start..end` as a name found next to a cue.
    fn push_cued(&mut self, start: usize, end: usize) {
        let tokens = self.tokens;
        // Initials alone are not a name.
        if tokens[start..end]
            .iter()
            .any(|t| !t.initial && t.end - t.start > 1)
        {
            self.out.push(NameSpan::over(
                &tokens[start],
                &tokens[end - 1],
                self.finder.spec.cue_confidence,
            ));
        }
    }
}

/// What is known of one token of a run of capitalised tokens.
#[derive(Debug, Clone, Copy)]
struct RunWord {
    /// Taken as (part of) a name, so far.
    name: bool,
    /// What the lists say of it.
    word: Word,
}

/// A run of two capitalised tokens or more being judged by [`NameFinder::judge_run`], what
/// is known of each, and the names found so far.
struct RunScan<'a> {
    spec: &'a NameListSpec,
    text: &'a str,
    run: &'a [Token],
    /// One per token of the run.
    info: Vec<RunWord>,
    /// The run's line is typed in capitals.
    shouting: bool,
    /// Names in capitals are the custom (French notes).
    upper_singles: bool,
    out: &'a mut Vec<NameSpan>,
}

impl RunScan<'_> {
    /// Is token `k` an initial that may stand for a first name?
    fn name_initial(&self, k: usize) -> bool {
        let t = &self.run[k];
        // "S. INTUBATED" heads a section of a note (S, O, A, P: subjective, objective,
        // assessment, plan); "W. MAROTTA" is a name.
        // R. and L. before a word in no list are right and left (R. GROIN, L. Suct).
        let laterality = matches!(self.text[t.start..].chars().next(), Some('R' | 'L'));
        t.initial && !soap_heading(self.text, t) && !laterality
    }

    /// A capitalised word in no list is a surname right after an initial (E. PENICOT) or
    /// next to a first name (Jean-Jacques DEPROGES, IVANKA PRIGOSIEV) when rare as a word.
    fn mark_unlisted_surnames(&mut self) {
        let (s, run) = (self.spec, self.run);
        for k in 0..run.len() {
            let RunWord {
                name: is_name,
                word: w,
            } = self.info[k];
            let letters = run[k].letters;
            if is_name
                || w.clinical
                || run[k].initial
                || w.first
                || w.last
                || w.zipf >= s.unknown_surname_max_zipf
                || letters < 3
            {
                continue;
            }
            let initial = k > 0 && self.name_initial(k - 1);
            // After a first name or a surname rare as a word (Fredérique Cohen); before one
            // only in capitals, as French lists put surnames first (OBAMA Barack).
            let name = |j: usize| {
                self.info[j].name
                    && !run[j].initial
                    && (self.info[j].word.first || self.info[j].word.zipf < NAME_BESIDE_MAX_ZIPF)
            };
            let caps = run[k].caps;
            let beside_name = (k > 0 && name(k - 1)) || (caps && k + 1 < run.len() && name(k + 1));
            // In notes typed in capitals only "W. MAROTTA" is evidence enough.
            self.info[k].name = if self.shouting {
                initial && letters >= 4
            } else {
                initial || beside_name
            };
        }
    }

    /// On a line typed in capitals: an initial, then a surname rarer than most words
    /// (E. WELSH, Z. MILLER; not R. RATE).
    fn initial_then_surname(&mut self) {
        let run = self.run;
        for k in 1..run.len() {
            let w = self.info[k].word;
            let surname = self.info[k].name
                && (w.last || !w.first)
                && w.zipf < SHOUTED_INITIAL_SURNAME_MAX_ZIPF;
            if self.name_initial(k - 1) && surname && !run[k].initial {
                self.out.push(NameSpan::over(
                    &run[k - 1],
                    &run[k],
                    self.spec.run_confidence,
                ));
            }
        }
    }

    /// On a line typed in capitals: a first name, then a surname.
    fn first_then_surname(&mut self) {
        let (s, run) = (self.spec, self.run);
        // Only a first name followed by a surname, neither an ordinary word, is evidence.
        for (k, pair) in run.windows(2).enumerate() {
            let (a, b) = (self.info[k].word, self.info[k + 1].word);
            let names = self.info[k].name && self.info[k + 1].name;
            if names && a.first && b.last && a.zipf < s.run_max_zipf && b.zipf < s.run_max_zipf {
                self.out
                    .push(NameSpan::over(&pair[0], &pair[1], s.run_confidence));
            }
        }
    }

    /// On a line typed in capitals where names in capitals are the custom: the names of
    /// an identity line.
    fn identity_lines(&mut self) {
        let (s, run, info) = (self.spec, self.run, &self.info);
        // Identity lines of French notes: a first name rare as a word beside one or two
        // surnames in capitals, in either order, the first name perhaps in Title case
        // (TRAVIS GUILLAUMET, LIMONE Félicia, LIMONE LIMONE Sandra).
        let first = |k: usize| {
            let w = info[k].word;
            w.first
                && !run[k].initial
                && run[k].letters >= 3
                && w.zipf < s.run_max_zipf
                && !w.clinical
                && !w.cue
        };
        let caps_surname = |k: usize| {
            let (t, w) = (&run[k], info[k].word);
            let listed = w.last && w.zipf < s.run_max_zipf;
            let unknown =
                !w.first && !w.last && w.zipf < s.unknown_surname_max_zipf && t.letters >= 4;
            t.caps && !t.initial && t.letters >= 3 && !w.clinical && !w.cue && (listed || unknown)
        };
        for k in (0..run.len()).filter(|&k| first(k)) {
            let mut a = k;
            while a > 0 && k - a < 2 && caps_surname(a - 1) {
                a -= 1;
            }
            let mut b = k + 1;
            while b < run.len() && b - k <= 2 && caps_surname(b) {
                b += 1;
            }
            if a < k || b > k + 1 {
                self.out
                    .push(NameSpan::over(&run[a], &run[b - 1], s.run_confidence));
            }
        }
    }

    /// On a line not typed in capitals: each stretch of name tokens, when rare enough as
    /// words; a stretch of one token is judged alone.
    fn name_stretches(&mut self) {
        let run = self.run;
        // Keep the longest stretch of name tokens inside the run.
        let mut k = 0;
        while k < run.len() {
            if !self.info[k].name {
                k += 1;
                continue;
            }
            let mut m = k;
            while m < run.len() && self.info[m].name {
                m += 1;
            }
            let stretch = &run[k..m];
            let rare = self.rare_stretch(k, m);
            if m - k >= 2 && rare {
                self.out.push(NameSpan::over(
                    &stretch[0],
                    &stretch[m - k - 1],
                    self.spec.run_confidence,
                ));
            } else if m - k == 1 {
                judge_single(
                    self.spec,
                    &stretch[0],
                    self.info[k].word,
                    self.upper_singles,
                    self.out,
                );
            }
            k = m;
        }
    }

    /// Is the stretch `k..m` of name tokens a name by how rare its words are?
    fn rare_stretch(&self, k: usize, m: usize) -> bool {
        let s = self.spec;
        let (stretch, info) = (&self.run[k..m], &self.info[k..m]);
        info.iter()
            .zip(stretch)
            .any(|(r, t)| !t.initial && r.word.zipf < s.run_max_zipf)
            // An initial makes a surname-list word a name even when it is a word too
            // (E. WELSH, J. Brown).
            || (stretch[0].initial
                && info
                    .iter()
                    .any(|r| r.word.last && r.word.zipf < INITIAL_SURNAME_MAX_ZIPF))
            // A first name then a surname (Julie Petit) is a name even when both are words.
            || info.windows(2).any(|p| {
                p[0].word.first
                    && p[1].word.last
                    && p[0].word.zipf < s.run_max_zipf + FIRST_LAST_EXTRA_ZIPF
                    && p[1].word.zipf < COMMON_SURNAME_MAX_ZIPF
            })
    }
}

fn judge_single(
    s: &NameListSpec,
    t: &Token,
    info: Word,
    upper_singles: bool,
    out: &mut Vec<NameSpan>,
) {
    let zipf = info.zipf;
    let letters = t.letters;
    let upper = t.uppers == t.letters;
    let ok = if t.initial {
        false
    } else if upper {
        upper_singles && letters >= 4 && zipf < s.upper_max_zipf
    } else {
        // Surnames alone collide with rare words (drug and device names); first names
        // are more distinctive.
        !t.sentence_start && zipf < s.title_max_zipf && info.first
    };
    if ok {
        out.push(NameSpan::over(t, t, s.single_confidence));
    }
}

#[derive(Debug)]
struct Token {
    start: usize,
    end: usize,
    capitalised: bool,
    /// A single capital followed by a dot ("J."): part of a name only next to other names.
    initial: bool,
    sentence_start: bool,
    /// Letters, and how many of them are capitals.
    letters: usize,
    uppers: usize,
    /// Two letters or more, all capitals (DUPONT, IV).
    caps: bool,
    /// Every byte ASCII (the word and an initial's dot).
    ascii: bool,
}

/// Words (letters, inner hyphens and apostrophes) with byte offsets, read in one pass.
fn tokens(text: &str) -> Vec<Token> {
    // About one word in six bytes of text.
    let mut out: Vec<Token> = Vec::with_capacity(text.len() / 6 + 1);
    let mut next = 0;
    while let Some(c) = char_at(text, next) {
        let start = next;
        next += c.len_utf8();
        if !is_letter(c) {
            continue;
        }
        // French elision before a name: d'Emmanuel, l'Hôpital are read from the capital.
        if let Some(skip) = matches!(c, 'd' | 'q')
            .then(|| elision(&text[start..]))
            .flatten()
        {
            next = start + skip;
            continue;
        }
        let mut end = next;
        let (mut letters, mut uppers) = (1, usize::from(c.is_uppercase()));
        let mut ascii = c.is_ascii();
        loop {
            // ASCII letters, the bulk of words, without decoding or Unicode tables.
            while let Some(b) = text.as_bytes().get(end).filter(|b| b.is_ascii_alphabetic()) {
                letters += 1;
                uppers += usize::from(b.is_ascii_uppercase());
                end += 1;
            }
            let Some(ch) = char_at(text, end) else { break };
            let alphabetic = is_letter(ch);
            let joins = !alphabetic
                && matches!(ch, '-' | '\'' | '’')
                && char_at(text, end + ch.len_utf8()).is_some_and(is_letter);
            if !alphabetic && !joins {
                break;
            }
            if alphabetic {
                letters += 1;
                uppers += usize::from(ch.is_uppercase());
            }
            ascii &= ch.is_ascii();
            end += ch.len_utf8();
        }
        next = end;
        // An initial stands apart: "W&D." and "A/P." are abbreviations.
        // After an apostrophe only when it opens a quote: in 80'S and PT'S the S is a plural.
        let quote_opens = || {
            text[..start]
                .chars()
                .rev()
                .nth(1)
                .is_none_or(|q| !q.is_alphanumeric())
        };
        let apart = || {
            text[..start].chars().next_back().is_none_or(|p| {
                p.is_whitespace() || "(,;:\"«-".contains(p) || (p == '\'' && quote_opens())
            })
        };
        // Compound initials stand for compound or digraph first names: P-A. (Pierre-Alain),
        // Ph. (Philippe), Ch., Th.
        let compound = || {
            (letters == 2 && uppers == 2 && end - start == 3 && text.as_bytes()[start + 1] == b'-')
                || matches!(&text[start..end], "Ph" | "Ch" | "Th")
        };
        let initial = text[end..].starts_with('.')
            && ((letters == 1 && end == start + c.len_utf8() && c.is_uppercase()) || compound())
            && apart();
        if initial {
            next += 1;
        }
        // #IndiaFightsCorona and @DrTedros are tags and handles, not names in running text.
        let tag = text[..start].ends_with(['#', '@']);
        let capitalised = c.is_uppercase() && !tag;
        // Only capitalised words are judged, so only they need to know.
        let sentence_start = capitalised && starts_sentence(text, start);
        out.push(Token {
            start,
            end: if initial { end + 1 } else { end },
            capitalised,
            initial,
            sentence_start,
            letters,
            uppers,
            caps: letters >= 2 && uppers == letters,
            ascii,
        });
    }
    out
}

/// The character starting at byte `at` (a character boundary), without decoding ASCII.
#[inline]
fn char_at(text: &str, at: usize) -> Option<char> {
    let b = *text.as_bytes().get(at)?;
    if b.is_ascii() {
        Some(char::from(b))
    } else {
        text[at..].chars().next()
    }
}

/// A token folded as cue words are: upper case, no accents, no dot after an abbreviation
/// ("Dr." is DR).
fn fold_token(text: &str, t: &Token, out: &mut String) {
    fold_into(&text[t.start..t.end], out);
    let kept = out.trim_end_matches('.').len();
    out.truncate(kept);
}

/// The length of an elided "de" or "que" (d', qu') before a capital, if any.
fn elision(word: &str) -> Option<usize> {
    let letters = word.bytes().take_while(u8::is_ascii_lowercase).count();
    // Only "of" and "that" come before names; l'Hôpital is a noun.
    if !matches!(&word[..letters], "d" | "qu") {
        return None;
    }
    let rest = &word[letters..];
    let apostrophe = ['\'', '’'].into_iter().find(|&a| rest.starts_with(a))?;
    let after = &rest[apostrophe.len_utf8()..];
    after
        .chars()
        .next()
        .filter(|c| c.is_uppercase())
        .map(|_| letters + apostrophe.len_utf8())
}

/// For each token: is its line typed in capitals? There upper case says nothing about
/// names. A line is, when over 30% of its words are in capitals and under 20% in Title
/// case (French lists write surnames in capitals beside Title-case first names: that is
/// not shouting). A line of four words or more is judged on its own; a shorter one with a
/// word in capitals takes the verdict of the whole text.
/// `None` when no line does.
fn shouting_lines(text: &str, tokens: &[Token]) -> Option<Vec<bool>> {
    // Without a word in capitals no line shouts.
    if !tokens.iter().any(|t| t.caps) {
        return None;
    }
    #[derive(Clone, Copy, Default)]
    struct Count {
        words: usize,
        caps: usize,
        title: usize,
    }
    let shouts = |c: Count, min_words: usize| {
        c.words >= min_words
            && c.caps as f32 > 0.3 * c.words as f32
            && (c.title as f32) < 0.2 * c.words as f32
    };
    let mut line_of = Vec::with_capacity(tokens.len());
    let mut counts: Vec<Count> = vec![Count::default()];
    let mut previous = 0;
    for t in tokens {
        let newlines = text[previous..t.start]
            .bytes()
            .filter(|&b| b == b'\n')
            .count();
        counts.extend(std::iter::repeat_n(Count::default(), newlines));
        previous = t.start;
        let line = counts.len() - 1;
        line_of.push(line);
        if !t.initial {
            let caps = t.caps;
            counts[line].words += 1;
            counts[line].caps += usize::from(caps);
            counts[line].title += usize::from(t.capitalised && !caps && t.end - t.start > 1);
        }
    }
    let all = counts.iter().fold(Count::default(), |a, c| Count {
        words: a.words + c.words,
        caps: a.caps + c.caps,
        title: a.title + c.title,
    });
    let whole = shouts(all, 6);
    Some(
        line_of
            .into_iter()
            .map(|line| {
                let c = counts[line];
                if c.words >= 4 {
                    shouts(c, 4)
                } else {
                    c.caps > 0 && whole
                }
            })
            .collect(),
    )
}

/// An initial that opens a sentence and is S, O, A or P: the heading of a SOAP note section.
fn soap_heading(text: &str, t: &Token) -> bool {
    t.sentence_start
        && t.letters == 1
        && matches!(text[t.start..].chars().next(), Some('S' | 'O' | 'A' | 'P'))
}

/// Between a cue and a name: spaces and at most one punctuation mark ("son, dave",
/// "Nom : X", "X, RRT", "X (PHC)"); a dot only after a short title ("Dr. X").
fn cue_gap(text: &str, from: usize, to: usize, dot: bool) -> bool {
    // "frère d'Emmanuel": the elided "of" belongs with the cue.
    let gap = &text[from..to];
    let gap = gap
        .strip_suffix(" d'")
        .or_else(|| gap.strip_suffix(" d’"))
        .unwrap_or(gap);
    gap.chars().count() <= 4
        && gap
            .chars()
            .all(|c| c == ' ' || c == '\t' || ",:;-(".contains(c) || (dot && c == '.'))
        && gap.chars().filter(|c| !c.is_whitespace()).count() <= 1
}

/// Two capitalised parts of two letters or more joined by a hyphen, not in capitals
/// throughout: Stord-Painter, Lévy-Bruhl.
fn is_double_barrelled(word: &str) -> bool {
    let Some((a, b)) = word.split_once('-') else {
        return false;
    };
    let part = |p: &str| {
        p.chars().count() >= 2
            && p.chars().next().is_some_and(char::is_uppercase)
            && p.chars().skip(1).all(|c| c.is_lowercase())
    };
    part(a) && part(b)
}

/// Between a label and a name: a colon, perhaps after a number ("Patient 2 : ").
fn label_gap(gap: &str) -> bool {
    let gap = gap
        .trim_start_matches([' ', '\t'])
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start_matches([' ', '\t']);
    gap.strip_prefix(':')
        .is_some_and(|rest| rest.len() <= 2 && rest.chars().all(|c| c == ' ' || c == '\t'))
}

/// Between two words of one name: one space or a hyphen; an initial's dot is part of it.
fn name_gap(text: &str, a: &Token, b: &Token) -> bool {
    // An initial's dot is part of its token, unless it was typed in lower case.
    matches!(&text[a.end..b.start], " " | "-") || (a.letters == 1 && &text[a.end..b.start] == ". ")
}

fn starts_sentence(text: &str, start: usize) -> bool {
    let before = text[..start].trim_end();
    // A dot after an initial or a short title (J., Dr., Mme.) does not end a sentence.
    let abbreviation_dot = before.ends_with('.') && {
        let mut word = before[..before.len() - 1]
            .chars()
            .rev()
            .take_while(|c| c.is_alphabetic());
        // Read backwards: the word's first letter comes last.
        let (count, first) = word.by_ref().fold((0, None), |(n, _), c| (n + 1, Some(c)));
        (1..=3).contains(&count) && first.is_some_and(char::is_uppercase)
    };
    before.is_empty()
        || (before.ends_with(['.', '!', '?', '"', '«', '(', '-', '*']) && !abbreviation_dot)
        || text[..start].trim_end_matches([' ', '\t']).ends_with('\n')
}

impl NameListSpec {
    /// The lowest Zipf frequency any rule compares a word's with: below it, all words
    /// are judged alike.
    pub fn least_zipf_compared(&self) -> f32 {
        [
            self.run_max_zipf,
            self.upper_max_zipf,
            self.title_max_zipf,
            self.unknown_surname_max_zipf,
            self.cue_list_max_zipf,
            self.cue_unknown_max_zipf,
            FIRST_LAST_EXTRA_ZIPF + self.run_max_zipf,
            FUNCTION_WORD_ZIPF,
            INITIAL_SURNAME_MAX_ZIPF,
            SHOUTED_INITIAL_SURNAME_MAX_ZIPF,
            COMMON_SURNAME_MAX_ZIPF,
            SENTENCE_START_COMMON_ZIPF,
            NAME_BESIDE_MAX_ZIPF,
            LOWER_CASE_FIRST_NAME_MAX_ZIPF,
        ]
        .into_iter()
        .fold(f32::INFINITY, f32::min)
    }

    /// The gazetteer files the entry reads (first names, surnames, word lists), relative
    /// to the gazetteer directory.
    pub fn gazetteer_files(&self) -> Vec<PathBuf> {
        self.first_names
            .iter()
            .chain(&self.surnames)
            .chain(&self.common_words)
            .map(|s| PathBuf::from(&s.file))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_mark_initials_and_sentence_starts() {
        let t = tokens("Vu par J. Dupont-Martin. Rose l'a revu");
        let words: Vec<&str> = t
            .iter()
            .map(|t| &"Vu par J. Dupont-Martin. Rose l'a revu"[t.start..t.end])
            .collect();
        assert_eq!(
            words,
            vec!["Vu", "par", "J.", "Dupont-Martin", "Rose", "l'a", "revu"]
        );
        assert!(t[2].initial && !t[3].initial);
        assert!(t[0].sentence_start && t[4].sentence_start && !t[3].sentence_start);
    }

    #[test]
    fn word_sets_find_words_in_any_case_and_accent() {
        let set = WordSet::new(["WIFE", "SŒUR", "EPOUSE", "DR"]);
        let mut buf = String::new();
        for word in ["wife", "Wife", "sœur", "Sœur", "épouse", "Dr"] {
            assert!(set.contains(word, word.is_ascii(), &mut buf), "{word}");
        }
        for word in ["wifey", "wif", "soeur", "dre", "d", "époux", "x"] {
            assert!(!set.contains(word, word.is_ascii(), &mut buf), "{word}");
        }
    }

    #[test]
    fn ascii_words_are_upper_cased_sixteen_bytes_at_once() {
        let all: Vec<u8> = (0u8..0x80).collect();
        for chunk in all.chunks(16) {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(chunk);
            let upper = ascii_upper(u128::from_le_bytes(bytes)).to_le_bytes();
            assert_eq!(upper.to_vec(), chunk.to_ascii_uppercase());
        }
    }

    #[test]
    fn shortcuts_agree_with_unicode_tables() {
        for c in (0..0x250u32).filter_map(char::from_u32) {
            assert_eq!(is_letter(c), c.is_alphabetic(), "{c:?}");
            let reference: String = c
                .to_uppercase()
                .map(|c| {
                    if c == '’' {
                        '\''
                    } else {
                        crate::gate::strip_accent(c)
                    }
                })
                .collect();
            assert_eq!(fold(&c.to_string()), reference, "{c:?}");
        }
        assert_eq!(fold("’"), "'");
    }

    #[test]
    fn fold_removes_accents_and_case() {
        assert_eq!(fold("Hélène"), "HELENE");
        assert_eq!(fold("N’Diaye"), "N'DIAYE");
    }
}
