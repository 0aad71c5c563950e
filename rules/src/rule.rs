//! Rule entries as written in TOML, and their compiled form.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use regex::Regex;
use serde::Deserialize;
use thiserror::Error;

use crate::listed::{ListedSpec, ListedWords};
use crate::names::{ListSource, NameFinder, NameListSpec};
use crate::validators::Validator;
use crate::zipf::ZipfTables;

/// The rule sets shipped with Vigie, compiled into the binary so that `vigie` works from
/// any directory. `--rules DIR` (or [`RuleSet::load_dir`]) replaces them with a user's own.
pub const BUILTIN_SETS: &[(&str, &str)] = &[
    ("contact.toml", include_str!("../sets/contact.toml")),
    (
        "national_ids.toml",
        include_str!("../sets/national_ids.toml"),
    ),
    ("dates.toml", include_str!("../sets/dates.toml")),
    ("names.toml", include_str!("../sets/names.toml")),
    ("places.toml", include_str!("../sets/places.toml")),
];

/// Why rules or their gazetteers could not be loaded.
#[derive(Debug, Error)]
pub enum RuleError {
    /// A file or directory could not be read.
    #[error("cannot read rule file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A rule file is not valid TOML, or its entries not of the expected form.
    #[error("rule file {file} is not valid TOML: {source}")]
    Toml {
        /// The rule file.
        file: String,
        /// What the parser said.
        source: toml::de::Error,
    },
    /// A pattern (`pattern`, `not_after`, `not_before`) does not compile.
    #[error("rule `{id}` in {file}: invalid pattern: {source}")]
    Pattern {
        /// The rule file.
        file: String,
        /// The rule's id.
        id: String,
        /// What the regex compiler said.
        source: Box<regex::Error>,
    },
    /// An entry that cannot be used as written (a confidence outside 0..1, a missing
    /// capture group), or a gazetteer file without a column its entry names.
    #[error("rule `{id}` in {file}: {message}")]
    Invalid {
        /// The rule file, or the gazetteer file.
        file: String,
        /// The rule's id, or the missing column.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// Two entries (rules or name lists) with the same id.
    #[error("duplicate rule id `{0}`")]
    DuplicateId(String),
    /// A rule directory without a `*.toml` file.
    #[error("no rule files (*.toml) in {0}")]
    Empty(PathBuf),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(rename = "rule", default)]
    rules: Vec<RuleSpec>,
    #[serde(rename = "name_list", default)]
    name_lists: Vec<NameListSpec>,
    #[serde(rename = "word_list", default)]
    word_lists: Vec<ListedSpec>,
}

/// One `[[rule]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable name, reported in every redaction the rule makes.
    pub id: String,
    /// Label of what is found (PHONE, EMAIL, NATIONAL_ID, DATE, PERSON, ...).
    pub kind: String,
    /// Text of the typed placeholder, `[PLACEHOLDER]`; defaults to the kind.
    pub placeholder: Option<String>,
    /// What the rule is for, for people reading the TOML.
    pub description: Option<String>,
    /// Regular expression (Rust `regex` syntax).
    pub pattern: String,
    /// Capture group to redact, when the pattern also matches context (a title, a keyword).
    #[serde(default)]
    pub group: usize,
    /// How sure a match makes us, 0..1; the redactor keeps matches at or above its threshold.
    pub confidence: f32,
    /// Checksum a match must pass (see `unvalidated_confidence`).
    pub validator: Option<Validator>,
    /// Policy for a match whose checksum fails: absent means the match is dropped; a value
    /// keeps it at that confidence (structure alone is still evidence, e.g. a 15-digit NIR
    /// typed with a wrong key is still someone's number).
    pub unvalidated_confidence: Option<f32>,
    /// The match is dropped when the text just before it (up to 40 bytes, same line) matches
    /// this pattern, written to end with `$`: settings typed like dates ("PSV 15/5").
    pub not_after: Option<String>,
    /// The match is dropped when the text just after it matches this pattern, written to
    /// start with `^` ("10/5/40%").
    pub not_before: Option<String>,
    /// Languages (fr, en, ...) the rule is meant for; absent: all. A text whose language
    /// is unknown gets every rule.
    pub languages: Option<Vec<String>>,
    /// The id of a `[[word_list]]` the match must draw on (see [`crate::listed`]): the
    /// rule runs only once the gazetteers are read.
    pub listed: Option<String>,
    /// Texts in which the rule must fire (the test suite runs them).
    #[serde(default, rename = "match")]
    pub matches: Vec<String>,
    /// Texts in which it must not.
    #[serde(default)]
    pub no_match: Vec<String>,
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// The entry as written.
    pub spec: RuleSpec,
    /// The pattern with ASCII word boundaries where safe (see `word_boundaries`), for texts
    /// whose digits are all ASCII.
    pub regex: Regex,
    /// The pattern as written, for texts with other digits (Arabic-Indic, fullwidth...);
    /// see [`CompiledRule::regex_any_digits`].
    regex_any_digits: OnceLock<Regex>,
    /// The pattern anchored at both ends; see [`CompiledRule::anchored`].
    anchored: OnceLock<Regex>,
    /// Compiled `not_after`.
    pub not_after: Option<Regex>,
    /// Compiled `not_before`.
    pub not_before: Option<Regex>,
    /// The words of `listed`, once [`RuleSet::load_gazetteers`] has read them.
    pub listed: Option<Arc<ListedWords>>,
    /// Where the rule came from, for error messages and `rules test`.
    pub file: String,
}

fn anchored_pattern(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// Builds a form of a rule's pattern that already compiled when the rule was read.
fn recompile(pattern: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("the pattern compiled when its rule was read")
}

/// How much context `not_after` and `not_before` see.
const CONTEXT_BYTES: usize = 40;

impl CompiledRule {
    /// The pattern as written, for texts with other digits (Arabic-Indic, fullwidth...).
    ///
    /// Built on first use: most texts have ASCII digits only and never need it, and the
    /// Unicode classes make each such automaton large (16 MB for the built-in rules).
    pub fn regex_any_digits(&self) -> &Regex {
        self.regex_any_digits
            .get_or_init(|| recompile(&self.spec.pattern))
    }

    /// The pattern anchored at both ends, to test sub-spans of a match (see the
    /// redactor). Built on first use, like [`CompiledRule::regex_any_digits`]: only
    /// validated rules whose match failed its check ask for it.
    pub fn anchored(&self) -> &Regex {
        self.anchored
            .get_or_init(|| recompile(&anchored_pattern(&self.spec.pattern)))
    }

    /// Does the context around `start..end` (byte offsets) rule the match out?
    pub fn excluded_by_context(&self, text: &str, start: usize, end: usize) -> bool {
        let mut from = start.saturating_sub(CONTEXT_BYTES);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let mut to = (end + CONTEXT_BYTES).min(text.len());
        while !text.is_char_boundary(to) {
            to -= 1;
        }
        let before = text[from..start].rsplit('\n').next().unwrap_or("");
        let after = text[end..to].split('\n').next().unwrap_or("");
        self.not_after.as_ref().is_some_and(|r| r.is_match(before))
            || self.not_before.as_ref().is_some_and(|r| r.is_match(after))
    }
}

impl CompiledRule {
    /// Whether the rule can match: a rule with a `listed` word list needs it read.
    pub fn runs(&self) -> bool {
        self.spec.listed.is_none() || self.listed.is_some()
    }

    /// Whether a match (the redacted part, as written) passes the rule's word list, when
    /// it has one.
    pub fn listed_accepts(&self, matched: &str) -> bool {
        match (&self.spec.listed, &self.listed) {
            (None, _) => true,
            (Some(_), Some(list)) => list.has_a_word_of(matched),
            (Some(_), None) => false,
        }
    }

    /// Text of the placeholder: the entry's `placeholder`, or else its kind.
    pub fn placeholder(&self) -> &str {
        self.spec.placeholder.as_deref().unwrap_or(&self.spec.kind)
    }
}

/// An ordered collection of compiled rules.
#[derive(Clone, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    name_specs: Vec<NameListSpec>,
    name_finders: Vec<Arc<NameFinder>>,
    word_list_specs: Vec<ListedSpec>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("name_lists", &self.name_specs.len())
            .field("name_lists_loaded", &self.name_finders.len())
            .finish()
    }
}

/// A rule example that did not behave as its TOML entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleFailure {
    /// Id of the rule or name list.
    pub rule: String,
    /// The example's text.
    pub example: String,
    /// `true`: a `match` example in which nothing was found; `false`: a `no_match` example
    /// in which something was.
    pub expected_match: bool,
}

impl RuleSet {
    /// The rule sets shipped with Vigie ([`BUILTIN_SETS`]); their name lists are read by
    /// [`RuleSet::load_gazetteers`].
    pub fn builtin() -> Result<Self, RuleError> {
        let mut set = RuleSet::default();
        for (name, text) in BUILTIN_SETS {
            set.add_toml(name, text)?;
        }
        Ok(set)
    }

    /// Loads every `*.toml` file of a directory, in name order.
    pub fn load_dir(dir: &Path) -> Result<Self, RuleError> {
        let io = |source| RuleError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(RuleError::Empty(dir.to_path_buf()));
        }
        let mut set = RuleSet::default();
        for path in files {
            set.add_file(&path)?;
        }
        Ok(set)
    }

    /// Adds the entries of one TOML file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), RuleError> {
        let text = std::fs::read_to_string(path).map_err(|source| RuleError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.add_toml(&path.display().to_string(), &text)
    }

    /// Adds the entries of a TOML text; `file` names it in errors.
    pub fn add_toml(&mut self, file: &str, text: &str) -> Result<(), RuleError> {
        let parsed: RuleFile = toml::from_str(text).map_err(|source| RuleError::Toml {
            file: file.to_string(),
            source,
        })?;
        for spec in parsed.rules {
            self.push(file, spec)?;
        }
        for spec in parsed.name_lists {
            if self.name_specs.iter().any(|s| s.id == spec.id)
                || self.rules.iter().any(|r| r.spec.id == spec.id)
            {
                return Err(RuleError::DuplicateId(spec.id));
            }
            self.name_specs.push(spec);
        }
        for spec in parsed.word_lists {
            if self.word_list_specs.iter().any(|s| s.id == spec.id) {
                return Err(RuleError::DuplicateId(spec.id));
            }
            self.word_list_specs.push(spec);
        }
        Ok(())
    }

    /// Reads the gazetteer files that the `[[name_list]]` entries and the rules' `listed`
    /// word lists name, from `dir`. Returns how many name lists are now active.
    pub fn load_gazetteers(&mut self, dir: &Path) -> Result<usize, RuleError> {
        let listed_specs: Vec<&ListedSpec> = self
            .word_list_specs
            .iter()
            .filter(|spec| {
                let id = Some(spec.id.as_str());
                self.rules.iter().any(|r| r.spec.listed.as_deref() == id)
            })
            .collect();
        // The word-frequency lists, the largest files, are read once for every loader.
        let zipf = ZipfTables::load(
            dir,
            self.name_specs
                .iter()
                .map(|s| (&s.common_words[..], s.least_zipf_compared()))
                .chain(
                    listed_specs
                        .iter()
                        .map(|s| (&s.common_words[..], s.max_zipf)),
                ),
        )?;
        let zipf_for = |sources: &[ListSource], floor: f32| {
            zipf.serving(sources, floor).ok_or_else(|| RuleError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::other("word frequencies were not read"),
            })
        };
        // Each list is read once, and only when a rule draws on it.
        let mut read: Vec<(&str, Arc<ListedWords>)> = Vec::new();
        for rule in &mut self.rules {
            let Some(id) = rule.spec.listed.as_deref() else {
                continue;
            };
            let words = match read.iter().find(|(read_id, _)| *read_id == id) {
                Some((_, words)) => words.clone(),
                None => {
                    let spec = self
                        .word_list_specs
                        .iter()
                        .find(|s| s.id == id)
                        .ok_or_else(|| RuleError::Invalid {
                            file: rule.file.clone(),
                            id: rule.spec.id.clone(),
                            message: format!("no [[word_list]] with id `{id}`"),
                        })?;
                    let table = zipf_for(&spec.common_words, spec.max_zipf)?;
                    let words = Arc::new(ListedWords::load(spec, dir, table)?);
                    read.push((&spec.id, words.clone()));
                    words
                }
            };
            rule.listed = Some(words);
        }
        self.name_finders = self
            .name_specs
            .iter()
            .map(|spec| {
                let table = zipf_for(&spec.common_words, spec.least_zipf_compared())?;
                NameFinder::load(spec.clone(), dir, table).map(Arc::new)
            })
            .collect::<Result<_, _>>()?;
        Ok(self.name_finders.len())
    }

    /// The name lists read by [`RuleSet::load_gazetteers`].
    pub fn name_finders(&self) -> &[Arc<NameFinder>] {
        &self.name_finders
    }

    /// The `[[name_list]]` entries, read or not.
    pub fn name_specs(&self) -> &[NameListSpec] {
        &self.name_specs
    }

    fn push(&mut self, file: &str, spec: RuleSpec) -> Result<(), RuleError> {
        let invalid = |message: String| RuleError::Invalid {
            file: file.into(),
            id: spec.id.clone(),
            message,
        };
        if self.rules.iter().any(|r| r.spec.id == spec.id) {
            return Err(RuleError::DuplicateId(spec.id));
        }
        for c in [Some(spec.confidence), spec.unvalidated_confidence]
            .into_iter()
            .flatten()
        {
            if !(0.0..=1.0).contains(&c) {
                return Err(invalid(format!("confidence {c} is outside 0..1")));
            }
        }
        if spec.unvalidated_confidence.is_some() && spec.validator.is_none() {
            return Err(invalid("unvalidated_confidence needs a validator".into()));
        }
        // Same matches, but the DFA can run on accented text (see `word_boundaries`).
        let pattern = crate::word_boundaries::rewrite(&spec.pattern);
        let regex = Regex::new(&pattern).map_err(|source| RuleError::Pattern {
            file: file.into(),
            id: spec.id.clone(),
            source: Box::new(source),
        })?;
        if spec.group >= regex.captures_len() {
            return Err(invalid(format!(
                "group {} does not exist in the pattern",
                spec.group
            )));
        }
        // The other two forms are built here only to report a pattern that cannot be
        // compiled when the rules are read, then dropped; they are built again on first
        // use (the same pattern, so the same result).
        for other in [spec.pattern.clone(), anchored_pattern(&spec.pattern)] {
            Regex::new(&other).map_err(|source| RuleError::Pattern {
                file: file.into(),
                id: spec.id.clone(),
                source: Box::new(source),
            })?;
        }
        let context = |pattern: &Option<String>| {
            pattern
                .as_deref()
                .map(|p| {
                    Regex::new(p).map_err(|source| RuleError::Pattern {
                        file: file.into(),
                        id: spec.id.clone(),
                        source: Box::new(source),
                    })
                })
                .transpose()
        };
        let (not_after, not_before) = (context(&spec.not_after)?, context(&spec.not_before)?);
        self.rules.push(CompiledRule {
            spec,
            regex,
            regex_any_digits: OnceLock::new(),
            anchored: OnceLock::new(),
            not_after,
            not_before,
            listed: None,
            file: file.to_string(),
        });
        Ok(())
    }

    /// The `[[rule]]` entries, in the order they were added.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Number of rules, name lists included.
    pub fn len(&self) -> usize {
        self.rules.len() + self.name_specs.len()
    }

    /// No `[[rule]]` entry (unlike [`RuleSet::len`], name lists are not counted).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every entry (rule or name list) as a set of its own, with its id: to run or time
    /// one entry alone.
    pub fn single_entries(&self) -> Vec<(String, RuleSet)> {
        let lists = self.name_finders.iter().map(|f| {
            (
                f.spec.id.clone(),
                RuleSet {
                    name_finders: vec![f.clone()],
                    ..Default::default()
                },
            )
        });
        let rules = self.rules.iter().map(|r| {
            (
                r.spec.id.clone(),
                RuleSet {
                    rules: vec![r.clone()],
                    ..Default::default()
                },
            )
        });
        lists.chain(rules).collect()
    }

    /// Runs every rule's inline `match` / `no_match` examples through that rule alone
    /// (validators included) and returns the examples that misbehave.
    pub fn check_examples(&self) -> Vec<ExampleFailure> {
        let mut failures = Vec::new();
        for finder in &self.name_finders {
            let single = RuleSet {
                name_finders: vec![finder.clone()],
                ..Default::default()
            };
            // Examples are written in the languages the entry serves first.
            let lang = finder
                .spec
                .upper_single_languages
                .first()
                .map(String::as_str);
            let spec = &finder.spec;
            failures.extend(run_examples(
                single,
                &spec.id,
                &spec.matches,
                &spec.no_match,
                lang,
            ));
        }
        // A rule whose word list is not read yet finds nothing: its examples run once the
        // gazetteers are loaded.
        for rule in self.rules.iter().filter(|r| r.runs()) {
            let single = RuleSet {
                rules: vec![rule.clone()],
                ..Default::default()
            };
            let spec = &rule.spec;
            failures.extend(run_examples(
                single,
                &spec.id,
                &spec.matches,
                &spec.no_match,
                None,
            ));
        }
        failures
    }
}

/// Runs one entry's examples through a set holding that entry alone.
fn run_examples(
    single: RuleSet,
    id: &str,
    matches: &[String],
    no_match: &[String],
    lang: Option<&str>,
) -> Vec<ExampleFailure> {
    // Both with the fast paths and with the patterns as written, so that a faulty rewrite
    // of a pattern shows up on its own examples.
    let redactors = [
        crate::Redactor::new(single.clone()),
        crate::Redactor::new(single).without_fast_paths(),
    ];
    let cases = matches
        .iter()
        .map(|e| (e, true))
        .chain(no_match.iter().map(|e| (e, false)));
    cases
        .filter(|(example, expected_match)| {
            redactors
                .iter()
                .any(|r| r.redact_in(example, lang).findings.is_empty() == *expected_match)
        })
        .map(|(example, expected_match)| ExampleFailure {
            rule: id.to_string(),
            example: example.clone(),
            expected_match,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_load_and_every_example_behaves() {
        let set = RuleSet::builtin().expect("built-in rules compile");
        assert!(set.len() >= 10);
        for rule in set.rules() {
            assert!(
                !rule.spec.matches.is_empty(),
                "rule {} has no `match` example",
                rule.spec.id
            );
        }
        let failures = set.check_examples();
        assert!(
            failures.is_empty(),
            "rule examples misbehave: {failures:#?}"
        );
    }

    #[test]
    fn name_lists_load_from_the_shared_gazetteers_and_their_examples_behave() {
        let mut set = RuleSet::builtin().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/gazetteers");
        assert_eq!(set.load_gazetteers(&dir).unwrap(), set.name_specs().len());
        assert!(!set.name_finders().is_empty());
        let failures = set.check_examples();
        assert!(failures.is_empty(), "examples misbehave: {failures:#?}");
    }

    #[test]
    fn a_rule_drawing_on_a_word_list_waits_for_it_and_names_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("vigie-word-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sites.tsv"), "name\nSITE BRUGMANN\n").unwrap();
        let rule = "[[rule]]\nid='at_site'\nkind='HOSPITAL'\npattern='à (\\w+)'\ngroup=1\n\
                    confidence=0.8\nlisted='sites'\n";
        let list = "[[word_list]]\nid='sites'\nsources=[{file='sites.tsv',column='name'}]\n\
                    drop_words=['site']\nmax_zipf=3.0\nmin_letters=4\n";
        let mut set = RuleSet::default();
        set.add_toml("r.toml", &(rule.to_string() + list)).unwrap();
        let text = "dialyse à Brugmann, vue à Lyon";
        // Before the gazetteers are read the rule finds nothing, rather than every word.
        assert!(crate::Redactor::new(set.clone())
            .redact(text)
            .findings
            .is_empty());
        set.load_gazetteers(&dir).unwrap();
        let found = crate::Redactor::new(set).redact(text);
        assert_eq!(found.text, "dialyse à [HOSPITAL], vue à Lyon");

        let mut orphan = RuleSet::default();
        orphan
            .add_toml("r.toml", &rule.replace("'sites'", "'nowhere'"))
            .unwrap();
        let err = orphan.load_gazetteers(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("at_site") && err.contains("nowhere"), "{err}");
    }

    #[test]
    fn bad_rule_files_give_clear_errors() {
        let mut set = RuleSet::default();
        let err = set
            .add_toml(
                "x.toml",
                "[[rule]]\nid='a'\nkind='A'\npattern='('\nconfidence=0.5\n",
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("rule `a` in x.toml: invalid pattern"),
            "{err}"
        );
        let err = set
            .add_toml(
                "x.toml",
                "[[rule]]\nid='a'\nkind='A'\npattern='a'\nconfidence=2.0\n",
            )
            .unwrap_err();
        assert!(err.to_string().contains("outside 0..1"), "{err}");
        let err = set
            .add_toml(
                "x.toml",
                "[[rule]]\nid='a'\nkind='A'\npattern='a'\nconfidence=0.5\ngroup=1\n",
            )
            .unwrap_err();
        assert!(err.to_string().contains("group 1"), "{err}");
        let err = set
            .add_toml(
                "x.toml",
                "[[rule]]\nid='a'\nkind='A'\npatern='a'\nconfidence=0.5\n",
            )
            .unwrap_err();
        assert!(matches!(err, RuleError::Toml { .. }), "{err}");
    }

    #[test]
    fn load_dir_reads_user_rule_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            RuleSet::load_dir(dir.path()),
            Err(RuleError::Empty(_))
        ));
        std::fs::write(
            dir.path().join("mine.toml"),
            "[[rule]]\nid='ward'\nkind='LOCATION'\npattern='ward [0-9]+'\nconfidence=0.9\nmatch=['in ward 12']\n",
        )
        .unwrap();
        let set = RuleSet::load_dir(dir.path()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.check_examples().is_empty());
    }
}
