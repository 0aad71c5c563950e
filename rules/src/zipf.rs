//! How common a word is in ordinary language, on the Zipf scale, read once from the
//! gazetteer's word-frequency lists.
//!
//! The name lists and the rules' word lists both tell names from ordinary words by this
//! frequency, and the lists are half a million rows per language: read for each loader,
//! they doubled the gazetteers' load time. [`crate::RuleSet::load_gazetteers`] reads each
//! set of lists once, keeping only the words at or above the lowest frequency any loader
//! compares with, and hands the same table to every loader.

use std::collections::HashMap;
use std::path::Path;

use crate::names::{fold, read_list, ListSource};
use crate::rule::RuleError;

/// Folded words (upper case, no accents) and their Zipf frequency, the highest over the
/// lists read; words under `floor` are left out.
#[derive(Debug, Default)]
pub struct ZipfTable {
    sources: Vec<ListSource>,
    floor: f32,
    words: HashMap<String, f32>,
}

impl ZipfTable {
    /// Reads the word-frequency columns `sources` names from `dir`, keeping the words at or
    /// above `floor`.
    pub fn load(dir: &Path, sources: &[ListSource], floor: f32) -> Result<Self, RuleError> {
        let mut words: HashMap<String, f32> = HashMap::new();
        for src in sources {
            read_list(dir, src, |word, zipf| {
                let Some(zipf) = zipf.map(|z| z as f32).filter(|z| *z >= floor) else {
                    return;
                };
                let known = words.entry(fold(word)).or_insert(zipf);
                *known = known.max(zipf);
            })?;
        }
        Ok(ZipfTable {
            sources: sources.to_vec(),
            floor,
            words,
        })
    }

    /// Whether this table was read from `sources` and holds every word at or above `floor`.
    pub fn serves(&self, sources: &[ListSource], floor: f32) -> bool {
        self.sources == sources && self.floor <= floor
    }

    /// Refuses, with the loader's `id`, a table not read from `sources` down to `floor`:
    /// the check every loader that takes a table makes first.
    pub fn check_serves(
        &self,
        sources: &[ListSource],
        floor: f32,
        dir: &Path,
        id: &str,
    ) -> Result<(), RuleError> {
        if self.serves(sources, floor) {
            return Ok(());
        }
        Err(RuleError::Invalid {
            file: dir.display().to_string(),
            id: id.to_string(),
            message: "the word frequencies given are not those of `common_words`".into(),
        })
    }

    /// The frequency of a folded word; 0 for words the lists do not hold (or hold under
    /// the floor).
    pub fn zipf(&self, folded: &str) -> f32 {
        self.words.get(folded).copied().unwrap_or(0.0)
    }

    /// Every word held, with its frequency.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f32)> {
        self.words.iter().map(|(w, z)| (w.as_str(), *z))
    }
}

/// The tables the loaders of one rule set need: one per distinct set of frequency lists,
/// each read at the lowest floor asked of it.
#[derive(Debug, Default)]
pub(crate) struct ZipfTables {
    tables: Vec<ZipfTable>,
}

impl ZipfTables {
    /// Reads one table per distinct `sources` among `wanted` (sources, floor asked).
    pub(crate) fn load<'a>(
        dir: &Path,
        wanted: impl IntoIterator<Item = (&'a [ListSource], f32)>,
    ) -> Result<Self, RuleError> {
        let mut floors: Vec<(&[ListSource], f32)> = Vec::new();
        for (sources, floor) in wanted {
            match floors.iter_mut().find(|(s, _)| *s == sources) {
                Some((_, least)) => *least = least.min(floor),
                None => floors.push((sources, floor)),
            }
        }
        let tables = floors
            .into_iter()
            .map(|(sources, floor)| ZipfTable::load(dir, sources, floor))
            .collect::<Result<_, _>>()?;
        Ok(ZipfTables { tables })
    }

    /// The table read from `sources` down to `floor` at least.
    pub(crate) fn serving(&self, sources: &[ListSource], floor: f32) -> Option<&ZipfTable> {
        self.tables.iter().find(|t| t.serves(sources, floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(file: &str) -> ListSource {
        ListSource {
            file: file.into(),
            column: "word".into(),
            filter_column: None,
            filter_value: None,
            value_column: Some("zipf".into()),
            min_count: None,
            separator: None,
        }
    }

    #[test]
    fn one_table_per_set_of_lists_read_at_the_lowest_floor_asked() {
        let dir = std::env::temp_dir().join(format!("vigie-zipf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("fr.tsv"),
            "word\tzipf\nhôpital\t4.6\npitie\t3.2\nbichat\t1.9\n",
        )
        .unwrap();
        std::fs::write(dir.join("en.tsv"), "word\tzipf\nhopital\t2.0\nward\t4.0\n").unwrap();
        let lists = vec![src("fr.tsv"), src("en.tsv")];
        let tables = ZipfTables::load(&dir, [(&lists[..], 3.0), (&lists[..], 2.5)]).unwrap();
        assert_eq!(tables.tables.len(), 1, "the same lists are read once");
        let table = tables.serving(&lists, 3.0).unwrap();
        assert!(
            tables.serving(&lists, 2.0).is_none(),
            "read down to 2.5 only"
        );
        assert!(tables.serving(&lists[..1], 3.0).is_none(), "other lists");
        // Folded, and the highest frequency over the lists.
        assert_eq!(table.zipf("HOPITAL"), 4.6);
        assert_eq!(table.zipf("PITIE"), 3.2);
        assert_eq!(table.zipf("WARD"), 4.0);
        // Under the floor: as if unknown.
        assert_eq!(table.zipf("BICHAT"), 0.0);
        assert_eq!(table.zipf("NECKER"), 0.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_list_is_an_error() {
        let dir = std::env::temp_dir().join(format!("vigie-zipf-none-{}", std::process::id()));
        assert!(ZipfTable::load(&dir, &[src("absent.tsv")], 3.0).is_err());
    }
}
