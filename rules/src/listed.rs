//! Word lists that a rule's match must draw on (`[[word_list]]` entries, named by a
//! rule's `listed`): the
//! pattern finds where a name stands ("à Bichat", "at Beaumont"), a gazetteer says what
//! kind of name it is. A town or a person can stand in the same place, so the pattern
//! alone cannot tell.
//!
//! The list is every word of the named gazetteer columns (hospital names: "GRP HU PARIS
//! NORD SITE BICHAT APHP"), less the words that name a kind of place rather than one place
//! (CENTRE, HOPITAL, SITE), the words of ordinary language (a Zipf frequency at or above
//! `max_zipf`: PARIS, NORD, ENFANTS, PITIE) and the words that also name a town (so that
//! those stay with the place rules). What is left is what names one hospital: BICHAT,
//! NECKER, PURPAN, BRUGMANN.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::names::{fold, read_list, ListSource};
use crate::rule::RuleError;
use crate::zipf::ZipfTable;

/// A `[[word_list]]` entry, which rules name in their `listed` field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedSpec {
    /// Stable name, which rules give in `listed`.
    pub id: String,
    /// What the list is for, for people reading the TOML.
    pub description: Option<String>,
    /// Gazetteer columns whose entries' words make the list.
    pub sources: Vec<ListSource>,
    /// Words of those entries that name a kind of place, not one (CENTRE, HOPITAL, SITE).
    #[serde(default)]
    pub drop_words: Vec<String>,
    /// Word-frequency lists (Zipf scale): a word this common is no name of its own.
    #[serde(default)]
    pub common_words: Vec<ListSource>,
    /// Words at or above this Zipf frequency are left out.
    pub max_zipf: f32,
    /// Gazetteer columns of other places (towns): their words are left out.
    #[serde(default)]
    pub not_words_of: Vec<ListSource>,
    /// Words shorter than this (in letters) are left out: initials and abbreviations.
    pub min_letters: usize,
}

/// The words of a [`ListedSpec`], read and folded (upper case, no accents).
#[derive(Debug, Default)]
pub struct ListedWords {
    words: HashSet<String>,
}

/// The words of an entry or a match: runs of letters (hyphens, spaces and apostrophes
/// separate them).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
}

impl ListedWords {
    /// Reads the gazetteer files `spec` names from `dir`; the frequencies of its
    /// `common_words` come from `zipf`, read from those lists down to `max_zipf` at least.
    pub fn load(spec: &ListedSpec, dir: &Path, zipf: &ZipfTable) -> Result<Self, RuleError> {
        zipf.check_serves(&spec.common_words, spec.max_zipf, dir, &spec.id)?;
        let common = |folded: &str| zipf.zipf(folded) >= spec.max_zipf;
        let mut left_out: HashSet<String> = spec.drop_words.iter().map(|w| fold(w)).collect();
        for src in &spec.not_words_of {
            read_list(dir, src, |place, _| {
                left_out.extend(words(place).map(fold));
            })?;
        }
        let mut list = HashSet::new();
        for src in &spec.sources {
            read_list(dir, src, |entry, _| {
                for word in words(entry) {
                    let folded = fold(word);
                    if folded.chars().count() >= spec.min_letters
                        && !left_out.contains(&folded)
                        && !common(&folded)
                    {
                        list.insert(folded);
                    }
                }
            })?;
        }
        Ok(ListedWords { words: list })
    }

    /// A list of the given words (folded here), for tests and callers with their own.
    pub fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        ListedWords {
            words: words.into_iter().map(fold).collect(),
        }
    }

    /// Does some word of `matched` belong to the list?
    pub fn has_a_word_of(&self, matched: &str) -> bool {
        words(matched).any(|w| self.words.contains(&fold(w)))
    }

    /// How many words the list holds.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// No word at all.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_belongs_when_one_of_its_words_does_in_any_case_and_accent() {
        let list = ListedWords::from_words(["Lariboisière", "BRUGMANN"]);
        assert!(list.has_a_word_of("Lariboisiere"));
        assert!(list.has_a_word_of("hôpital LARIBOISIÈRE"));
        assert!(list.has_a_word_of("Brugmann-Horta"));
        assert!(!list.has_a_word_of("Lyon"));
        assert!(!list.has_a_word_of(""));
    }

    #[test]
    fn kinds_of_place_common_words_and_towns_are_left_out() {
        let dir = std::env::temp_dir().join(format!("vigie-listed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("h.tsv"),
            "name\nCENTRE HOSPITALIER DE DAX\nGRP HU SITE BICHAT APHP\nHOPITAL DE LA PITIE\n",
        )
        .unwrap();
        std::fs::write(dir.join("z.tsv"), "word\tzipf\npitie\t4.4\nbichat\t2.5\n").unwrap();
        std::fs::write(dir.join("t.tsv"), "nom\nDax\n").unwrap();
        let src = |file: &str, column: &str, value: Option<&str>| ListSource {
            file: file.into(),
            column: column.into(),
            filter_column: None,
            filter_value: None,
            value_column: value.map(Into::into),
            min_count: None,
            separator: None,
        };
        let spec = ListedSpec {
            id: "hospitals".into(),
            description: None,
            sources: vec![src("h.tsv", "name", None)],
            drop_words: vec![
                "centre".into(),
                "hospitalier".into(),
                "hôpital".into(),
                "site".into(),
            ],
            common_words: vec![src("z.tsv", "word", Some("zipf"))],
            max_zipf: 3.0,
            not_words_of: vec![src("t.tsv", "nom", None)],
            min_letters: 4,
        };
        let zipf = ZipfTable::load(&dir, &spec.common_words, spec.max_zipf).unwrap();
        let list = ListedWords::load(&spec, &dir, &zipf).unwrap();
        // Frequencies read from other lists, or not low enough, are refused.
        let other = ZipfTable::load(&dir, &spec.common_words, 3.5).unwrap();
        assert!(ListedWords::load(&spec, &dir, &other).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(list.has_a_word_of("Bichat"));
        // A kind of place, a town, a common word, a short word.
        for word in ["Centre", "Hôpital", "Dax", "Pitié", "GRP", "de"] {
            assert!(!list.has_a_word_of(word), "{word}");
        }
        assert_eq!(list.len(), 2, "BICHAT and APHP");
    }
}
