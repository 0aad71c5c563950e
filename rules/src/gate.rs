//! Cheap necessary conditions for rules, computed from their patterns, so that one pass
//! over a text tells which rules could match it and the others are never run.
//!
//! A rule set runs ~40 regular expressions; on a tweet-length post most of them cannot
//! match (no digits, no *wife*, no *rue*). Each pattern is analysed once, at load time,
//! into a [`Gate`]: the fewest digits any match contains, and a set of strings of which
//! any match contains at least one (compared after case folding). At run time a
//! [`GateIndex`] folds the text once, counts its digits and runs one Aho-Corasick
//! automaton over the strings of every rule. The analysis errs only towards running a
//! rule: a gate never skips a rule that would have matched (tested against the ungated
//! redactor on the shared datasets and on random texts).

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex_syntax::hir::{Class, Hir, HirKind};

/// Exact string sets larger than this are given up (they stop paying for themselves).
const MAX_STRINGS: usize = 64;

/// What every match of one pattern contains.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gate {
    /// At least this many numeric characters.
    pub min_digits: usize,
    /// At least one of these strings (case-folded with [`fold_char`]); `None`: no usable set.
    pub strings: Option<Vec<String>>,
}

impl Gate {
    /// Analyses a pattern written for the `regex` crate (same default flags).
    pub fn of_pattern(pattern: &str) -> Gate {
        match regex_syntax::parse(pattern) {
            Ok(hir) => {
                let info = analyse(&hir);
                Gate { min_digits: info.min_digits, strings: info.need.filter(|s| selective(s)) }
            }
            // The regex crate compiled it, so this does not happen; no gate is the safe answer.
            Err(_) => Gate::default(),
        }
    }
}

/// Case folding used on both sides: one char to one char, so substrings are kept.
pub fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    match c {
        // Long s is its own lower case but folds with s in `(?i)` patterns.
        'ſ' => 's',
        c => c.to_lowercase().next().unwrap_or(c),
    }
}

/// A string set worth looking for: single letters or dots are everywhere.
fn selective(strings: &[String]) -> bool {
    strings.iter().all(|s| {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (None, _) => false,
            (Some(c), None) => !c.is_alphanumeric() && !c.is_whitespace() && !".,;:-'’\"()/!?".contains(c),
            _ => true,
        }
    })
}

#[derive(Debug, Clone)]
struct Info {
    /// The node matches exactly one of these (folded) strings.
    exact: Option<BTreeSet<String>>,
    /// Every match contains one of these.
    need: Option<Vec<String>>,
    min_digits: usize,
}

fn analyse(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info { exact: Some(BTreeSet::from([String::new()])), need: None, min_digits: 0 },
        HirKind::Literal(lit) => {
            let text = String::from_utf8_lossy(&lit.0);
            let folded: String = text.chars().map(fold_char).collect();
            let digits = text.chars().filter(|c| c.is_numeric()).count();
            exact_info(BTreeSet::from([folded]), digits)
        }
        HirKind::Class(class) => class_info(class),
        HirKind::Capture(cap) => analyse(&cap.sub),
        HirKind::Repetition(rep) => {
            let sub = analyse(&rep.sub);
            if rep.min == 0 {
                let exact = match (&sub.exact, rep.max) {
                    (Some(e), Some(1)) => Some(e.iter().cloned().chain([String::new()]).collect()),
                    _ => None,
                };
                Info { exact, need: None, min_digits: 0 }
            } else {
                let exact = if rep.max == Some(1) { sub.exact } else { None };
                Info { exact, need: sub.need, min_digits: sub.min_digits * rep.min as usize }
            }
        }
        HirKind::Concat(subs) => concat_info(subs.iter().map(analyse).collect()),
        HirKind::Alternation(subs) => {
            let infos: Vec<Info> = subs.iter().map(analyse).collect();
            let min_digits = infos.iter().map(|i| i.min_digits).min().unwrap_or(0);
            let exact = infos
                .iter()
                .map(|i| i.exact.clone())
                .try_fold(BTreeSet::new(), |mut all, e| {
                    all.extend(e?);
                    Some(all)
                })
                .filter(|all| all.len() <= MAX_STRINGS);
            let need = infos
                .iter()
                .map(|i| i.need.clone())
                .try_fold(Vec::new(), |mut all, n| {
                    all.extend(n?);
                    Some(all)
                })
                .filter(|all| all.len() <= MAX_STRINGS);
            let need = best([need, exact.as_ref().and_then(need_of_exact)]);
            Info { exact, need, min_digits }
        }
    }
}

fn exact_info(exact: BTreeSet<String>, min_digits: usize) -> Info {
    let need = need_of_exact(&exact);
    Info { exact: Some(exact), need, min_digits }
}

/// An exact set is a need when none of its strings is empty.
fn need_of_exact(exact: &BTreeSet<String>) -> Option<Vec<String>> {
    (!exact.iter().any(String::is_empty)).then(|| exact.iter().cloned().collect())
}

fn class_info(class: &Class) -> Info {
    let chars: Option<Vec<char>> = match class {
        Class::Unicode(u) => {
            let size: u32 = u.ranges().iter().map(|r| r.end() as u32 - r.start() as u32 + 1).sum();
            (size <= 4096).then(|| u.ranges().iter().flat_map(|r| r.start()..=r.end()).collect())
        }
        Class::Bytes(b) => {
            let size: u32 = b.ranges().iter().map(|r| r.end() as u32 - r.start() as u32 + 1).sum();
            (size <= 128 && b.is_ascii()).then(|| b.ranges().iter().flat_map(|r| r.start()..=r.end()).map(char::from).collect())
        }
    };
    let Some(chars) = chars.filter(|c| !c.is_empty()) else {
        return Info { exact: None, need: None, min_digits: 0 };
    };
    let digits = usize::from(chars.iter().all(|c| c.is_numeric()));
    let folded: BTreeSet<String> = chars.iter().map(|&c| fold_char(c).to_string()).collect();
    if folded.len() <= 8 {
        exact_info(folded, digits)
    } else {
        Info { exact: None, need: None, min_digits: digits }
    }
}

fn concat_info(infos: Vec<Info>) -> Info {
    let min_digits = infos.iter().map(|i| i.min_digits).sum();
    let mut candidates: Vec<Option<Vec<String>>> = infos.iter().map(|i| i.need.clone()).collect();
    // Runs of exact children multiply into longer strings: "w" "i" "f" "e" -> "wife".
    let mut run: Option<BTreeSet<String>> = None;
    let mut whole: Option<BTreeSet<String>> = Some(BTreeSet::from([String::new()]));
    for info in &infos {
        match &info.exact {
            Some(e) => {
                let joined = product(run.as_ref().unwrap_or(&BTreeSet::from([String::new()])), e);
                if joined.is_none() {
                    // Too many combinations: keep the run so far, start a new one here.
                    candidates.push(run.as_ref().and_then(need_of_exact));
                }
                run = joined.or_else(|| Some(e.clone()));
                whole = whole.and_then(|w| product(&w, e));
            }
            None => {
                candidates.push(run.take().as_ref().and_then(need_of_exact));
                whole = None;
            }
        }
    }
    candidates.push(run.as_ref().and_then(need_of_exact));
    Info { need: best(candidates), exact: whole, min_digits }
}

fn product(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Option<BTreeSet<String>> {
    if a.len() * b.len() > MAX_STRINGS {
        return None;
    }
    Some(a.iter().flat_map(|x| b.iter().map(move |y| format!("{x}{y}"))).collect())
}

/// The most selective set: longest shortest string, then fewest strings.
fn best(candidates: impl IntoIterator<Item = Option<Vec<String>>>) -> Option<Vec<String>> {
    let score = |s: &Vec<String>| (s.iter().map(|x| x.chars().count()).min().unwrap_or(0), usize::MAX - s.len());
    candidates.into_iter().flatten().filter(|s| selective(s)).max_by_key(score)
}

/// The gates of a whole rule set, checked together in one pass over a text.
#[derive(Debug, Clone)]
pub struct GateIndex {
    gates: Vec<Gate>,
    automaton: Option<AhoCorasick>,
    /// Automaton pattern -> the rules it opens.
    opens: Vec<Vec<usize>>,
}

impl GateIndex {
    pub fn new(gates: Vec<Gate>) -> GateIndex {
        let mut patterns: Vec<String> = Vec::new();
        let mut opens: Vec<Vec<usize>> = Vec::new();
        for (rule, gate) in gates.iter().enumerate() {
            for s in gate.strings.iter().flatten() {
                match patterns.iter().position(|p| p == s) {
                    Some(k) => opens[k].push(rule),
                    None => {
                        patterns.push(s.clone());
                        opens.push(vec![rule]);
                    }
                }
            }
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            // Standard semantics: overlapping search reports every pattern that occurs.
            // A full DFA: a few hundred short strings make a small one, and it is the fastest.
            AhoCorasick::builder().match_kind(MatchKind::Standard).kind(Some(AhoCorasickKind::DFA)).build(&patterns).ok()
        };
        // Without an automaton every string gate must be treated as open.
        let gates = if automaton.is_none() { gates.into_iter().map(|g| Gate { strings: None, ..g }).collect() } else { gates };
        GateIndex { gates, automaton, opens }
    }

    /// Which rules could match `text` (indexed as the gates were given).
    pub fn open(&self, text: &str) -> Vec<bool> {
        let ascii = text.is_ascii();
        let digits = if ascii {
            text.bytes().filter(u8::is_ascii_digit).count()
        } else {
            text.chars().filter(|c| c.is_numeric()).count()
        };
        let mut open: Vec<bool> = self.gates.iter().map(|g| g.strings.is_none() && digits >= g.min_digits).collect();
        if let Some(automaton) = &self.automaton {
            let folded: String = if ascii { text.to_ascii_lowercase() } else { text.chars().map(fold_char).collect() };
            for m in automaton.find_overlapping_iter(folded.as_str()) {
                for &rule in &self.opens[m.pattern().as_usize()] {
                    open[rule] = digits >= self.gates[rule].min_digits;
                }
            }
        }
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(pattern: &str) -> Option<Vec<String>> {
        let mut s = Gate::of_pattern(pattern).strings?;
        s.sort();
        Some(s)
    }

    #[test]
    fn case_insensitive_keywords_become_folded_strings() {
        assert_eq!(strings(r"\b(?i:wife|husband)\s+(\p{Lu}\w+)"), Some(vec!["husband".into(), "wife".into()]));
        assert_eq!(strings(r"(?i)\bépouse\b"), Some(vec!["épouse".into()]));
        assert_eq!(strings(r"[\w.+-]+@[\w-]+\.\w+"), Some(vec!["@".into()]));
    }

    #[test]
    fn optional_parts_and_bare_classes_give_no_strings() {
        assert_eq!(strings(r"(?:wife)?\s*\p{Lu}\w+"), None);
        assert_eq!(strings(r"\p{Lu}\p{Ll}+"), None);
        // One of the alternatives has no string, so none is necessary.
        assert_eq!(strings(r"wife|\d+"), None);
    }

    #[test]
    fn digits_are_counted_through_repetitions_and_alternations() {
        assert_eq!(Gate::of_pattern(r"\b0[67](?:[ .]?\d{2}){4}\b").min_digits, 10);
        assert_eq!(Gate::of_pattern(r"\d{3}|\d{5}").min_digits, 3);
        assert_eq!(Gate::of_pattern(r"(?:\d{2})?x").min_digits, 0);
    }

    #[test]
    fn the_index_opens_only_rules_whose_conditions_hold() {
        let gates = ["(?i)wife", r"\d{4}", r"(?i)rue \d+", r"\p{Lu}+"].map(Gate::of_pattern).to_vec();
        let index = GateIndex::new(gates);
        assert_eq!(index.open("His WIFE called"), vec![true, false, false, true]);
        assert_eq!(index.open("12 RUE de la Paix, 2021"), vec![false, true, true, true]);
        assert_eq!(index.open("rue sans numéro"), vec![false, false, false, true]);
    }
}
