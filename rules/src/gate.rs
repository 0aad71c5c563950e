//! Cheap necessary conditions for rules, computed from their patterns, so that one pass
//! over a text tells which rules could match it and the others are never run.
//!
//! A rule set runs ~60 regular expressions; on a tweet-length post most of them cannot
//! match (no digits, no *wife*, no *rue*). Each pattern is analysed once, at load time,
//! into a [`Gate`]: the fewest digits any match contains, and sets of strings such that
//! any match contains a string of every set (compared after case folding). A `\b` beside
//! a string is kept as a mark, so *ch* at a word's edges is not found inside *check*.
//! At run time a [`GateIndex`] folds the text once, counts its digits and runs one
//! Aho-Corasick automaton over the strings of every rule. The analysis errs only towards
//! running a rule: a gate never skips a rule that would have matched (tested against the
//! ungated redactor on the shared datasets and on random texts).

use std::collections::{BTreeSet, HashMap};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// Exact string sets larger than this are given up (they stop paying for themselves).
const MAX_STRINGS: usize = 64;
/// A gate checks at most this many string sets (the most selective ones).
const MAX_NEEDS: usize = 3;
/// In analysed strings: a word boundary in the Unicode sense (`\b`), and in the ASCII
/// sense (`(?-u:\b)`). Marks take no room in the text; they are checked around a hit.
const UNICODE_BOUNDARY: char = '\u{1}';
const ASCII_BOUNDARY: char = '\u{2}';

fn is_mark(c: char) -> bool {
    c == UNICODE_BOUNDARY || c == ASCII_BOUNDARY
}

/// What every match of one pattern contains.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gate {
    /// At least this many numeric characters.
    pub min_digits: usize,
    /// At least one string of each set (case-folded with [`fold_char`], boundary marks
    /// at their ends); empty: no usable set.
    pub needs: Vec<Vec<String>>,
}

impl Gate {
    /// Analyses a pattern written for the `regex` crate (same default flags).
    pub fn of_pattern(pattern: &str) -> Gate {
        match regex_syntax::parse(pattern) {
            Ok(hir) => {
                let info = analyse(&hir);
                Gate {
                    min_digits: info.min_digits,
                    needs: info.needs,
                }
            }
            // The regex crate compiled it, so this does not happen; no gate is the safe answer.
            Err(_) => Gate::default(),
        }
    }

    /// The needs with boundary marks written as `\b`, for people reading them.
    pub fn describe(&self) -> Vec<Vec<String>> {
        self.needs
            .iter()
            .map(|set| {
                set.iter()
                    .map(|s| {
                        s.replace(UNICODE_BOUNDARY, r"\b")
                            .replace(ASCII_BOUNDARY, r"(?-u:\b)")
                    })
                    .collect()
            })
            .collect()
    }
}

/// Case folding used on both sides: one char to one char, so substrings are kept. Digits
/// all fold to `0`, so that `\d{4}` is the one string "0000" rather than ten thousand;
/// accents fold away and tabs and line breaks become spaces. Folding more on both sides
/// only lets more texts through, never fewer.
pub fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return fold_byte(c as u8) as char;
    }
    match c {
        // Long s is its own lower case but folds with s in `(?i)` patterns.
        'ſ' => 's',
        // Only digits that are word characters, so that folding keeps word boundaries.
        c if c.is_numeric() && regex_syntax::try_is_word_character(c).unwrap_or(false) => '0',
        c => {
            let lower = c.to_lowercase().next().unwrap_or(c);
            base_letter(lower).unwrap_or(lower)
        }
    }
}

/// A French or Spanish accented letter's base letter, in the same case (é → e, É → E):
/// fewer distinct characters make a smaller automaton here, and the name lists are
/// written without accents.
pub(crate) fn strip_accent(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    match base_letter(c.to_lowercase().next().unwrap_or(c)) {
        Some(base) if c.is_uppercase() => base.to_ascii_uppercase(),
        Some(base) => base,
        None => c,
    }
}

/// The base letter of an accented lower-case letter.
pub(crate) fn base_letter(lower: char) -> Option<char> {
    Some(match lower {
        'à' | 'â' | 'ä' | 'á' | 'ã' => 'a',
        'ç' => 'c',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'î' | 'ï' | 'í' | 'ì' => 'i',
        'ô' | 'ö' | 'ó' | 'ò' | 'õ' => 'o',
        'û' | 'ü' | 'ú' | 'ù' => 'u',
        'ÿ' => 'y',
        'ñ' => 'n',
        _ => return None,
    })
}

fn fold_byte(b: u8) -> u8 {
    if b.is_ascii_digit() {
        b'0'
    } else if matches!(b, b'\t' | b'\n' | b'\r') {
        b' '
    } else {
        b.to_ascii_lowercase()
    }
}

/// The characters of a string that stand for text (not boundary marks).
fn core(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().filter(|&c| !is_mark(c))
}

/// A string set worth looking for: single letters or dots are everywhere.
fn selective(strings: &[String]) -> bool {
    strings.iter().all(|s| {
        let mut chars = core(s);
        match (chars.next(), chars.next()) {
            (None, _) => false,
            (Some(c), None) => rare_symbol(c),
            _ => true,
        }
    })
}

fn rare_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace() && !".,;:-'’\"()/!?".contains(c)
}

/// The most frequent words of French and English: a set that holds one is met by nearly
/// every post, so it selects nothing yet costs a hit at each occurrence.
const FUNCTION_WORDS: &[&str] = &[
    "a", "and", "at", "au", "by", "de", "des", "du", "en", "et", "for", "from", "in", "is", "la",
    "le", "les", "ne", "of", "on", "the", "to", "un", "une",
];

fn has_function_word(strings: &[String]) -> bool {
    strings.iter().any(|s| {
        let word: String = core(s).collect();
        FUNCTION_WORDS.contains(&word.trim())
    })
}

/// Worth checking beside a better set: three characters or more, two letters at a word's
/// edge (*yo*, *mi*), or a rare symbol (@); never a set with a function word.
fn strong(strings: &[String]) -> bool {
    !has_function_word(strings)
        && strings.iter().all(|s| {
            let n = core(s).count();
            let marked = s.chars().any(is_mark) && core(s).any(char::is_alphabetic);
            n >= 3 || (n == 2 && marked) || (n == 1 && core(s).all(rare_symbol))
        })
}

/// How selective a string is, in half characters: a letter or symbol counts 2; a digit,
/// which folds with every other digit, and a boundary mark count 1.
fn weight(s: &str) -> usize {
    s.chars()
        .map(|c| if is_mark(c) || c == '0' { 1 } else { 2 })
        .sum()
}

#[derive(Debug, Clone)]
struct Info {
    /// The node matches exactly one of these (folded) strings.
    exact: Option<BTreeSet<String>>,
    /// Every match starts with one of these.
    prefix: Option<BTreeSet<String>>,
    /// Every match ends with one of these.
    suffix: Option<BTreeSet<String>>,
    /// Every match contains a string of each set, most selective first.
    needs: Vec<Vec<String>>,
    min_digits: usize,
}

impl Info {
    fn exact(exact: BTreeSet<String>, min_digits: usize) -> Info {
        let needs = need_of_exact(&exact).into_iter().collect();
        Info {
            prefix: Some(exact.clone()),
            suffix: Some(exact.clone()),
            exact: Some(exact),
            needs,
            min_digits,
        }
    }

    fn unknown(min_digits: usize) -> Info {
        Info {
            exact: None,
            prefix: None,
            suffix: None,
            needs: Vec::new(),
            min_digits,
        }
    }
}

fn analyse(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty => Info::exact(BTreeSet::from([String::new()]), 0),
        HirKind::Look(look) => {
            let mark = match look {
                Look::WordUnicode | Look::WordStartUnicode | Look::WordEndUnicode => {
                    UNICODE_BOUNDARY.to_string()
                }
                Look::WordAscii | Look::WordStartAscii | Look::WordEndAscii => {
                    ASCII_BOUNDARY.to_string()
                }
                // Half boundaries, negations and anchors say nothing checkable here.
                _ => String::new(),
            };
            Info::exact(BTreeSet::from([mark]), 0)
        }
        HirKind::Literal(lit) => {
            let text = String::from_utf8_lossy(&lit.0);
            let folded: String = text.chars().map(fold_char).collect();
            let digits = text.chars().filter(|c| c.is_numeric()).count();
            Info::exact(BTreeSet::from([folded]), digits)
        }
        HirKind::Class(class) => class_info(class),
        HirKind::Capture(cap) => analyse(&cap.sub),
        HirKind::Repetition(rep) => {
            let sub = analyse(&rep.sub);
            if rep.min == 0 {
                let optional = |set: &Option<BTreeSet<String>>| match (set, rep.max) {
                    (Some(e), Some(1)) => Some(e.iter().cloned().chain([String::new()]).collect()),
                    _ => None,
                };
                Info {
                    exact: optional(&sub.exact),
                    prefix: optional(&sub.prefix),
                    suffix: optional(&sub.suffix),
                    needs: Vec::new(),
                    min_digits: 0,
                }
            } else {
                // The first copies start every match: `[ \t]+` starts with a space or a
                // tab, `\d{4,5}` with four digits.
                let copies = sub.exact.as_ref().and_then(|e| power(e, rep.min));
                let exact = if rep.max == Some(rep.min) {
                    copies.clone()
                } else {
                    None
                };
                // ...and the last copies end it.
                let suffix = copies.clone().or(sub.suffix);
                let prefix = copies.or(sub.prefix);
                let mut needs = sub.needs;
                needs.extend(exact.as_ref().or(prefix.as_ref()).and_then(need_of_exact));
                Info {
                    exact,
                    prefix,
                    suffix,
                    needs: best(needs.into_iter().map(Some)),
                    min_digits: sub.min_digits * rep.min as usize,
                }
            }
        }
        HirKind::Concat(subs) => concat_info(subs.iter().map(analyse).collect()),
        HirKind::Alternation(subs) => {
            let infos: Vec<Info> = subs.iter().map(analyse).collect();
            let min_digits = infos.iter().map(|i| i.min_digits).min().unwrap_or(0);
            let exact = union(infos.iter().map(|i| i.exact.as_ref()));
            let prefix = union(infos.iter().map(|i| i.prefix.as_ref()));
            let suffix = union(infos.iter().map(|i| i.suffix.as_ref()));
            // Each branch's best set, together: every match contains one of them.
            let need = infos
                .iter()
                .map(|i| i.needs.first().cloned())
                .try_fold(Vec::new(), |mut all, n| {
                    all.extend(n?);
                    Some(all)
                })
                .filter(|all| all.len() <= MAX_STRINGS);
            // A set every branch needs (the @ of two e-mail forms) is needed too.
            let shared = infos.first().map_or(Vec::new(), |first| {
                first
                    .needs
                    .iter()
                    .filter(|n| infos.iter().all(|i| i.needs.contains(n)))
                    .cloned()
                    .collect()
            });
            let needs = best(
                [need, exact.as_ref().and_then(need_of_exact)]
                    .into_iter()
                    .chain(shared.into_iter().map(Some)),
            );
            Info {
                exact,
                prefix,
                suffix,
                needs,
                min_digits,
            }
        }
    }
}

/// All the strings of all the sets, if each set is known and there are not too many.
fn union<'a>(
    mut sets: impl Iterator<Item = Option<&'a BTreeSet<String>>>,
) -> Option<BTreeSet<String>> {
    sets.try_fold(BTreeSet::new(), |mut all, e| {
        all.extend(e?.iter().cloned());
        Some(all)
    })
    .filter(|all| all.len() <= MAX_STRINGS)
}

/// An exact set is a need when none of its strings is empty (marks alone are empty).
fn need_of_exact(exact: &BTreeSet<String>) -> Option<Vec<String>> {
    (!exact.iter().any(|s| core(s).next().is_none())).then(|| exact.iter().cloned().collect())
}

fn class_info(class: &Class) -> Info {
    let chars: Option<Vec<char>> = match class {
        Class::Unicode(u) => {
            let size: u32 = u
                .ranges()
                .iter()
                .map(|r| r.end() as u32 - r.start() as u32 + 1)
                .sum();
            (size <= 4096).then(|| {
                u.ranges()
                    .iter()
                    .flat_map(|r| r.start()..=r.end())
                    .collect()
            })
        }
        Class::Bytes(b) => {
            let size: u32 = b
                .ranges()
                .iter()
                .map(|r| r.end() as u32 - r.start() as u32 + 1)
                .sum();
            (size <= 128 && b.is_ascii()).then(|| {
                b.ranges()
                    .iter()
                    .flat_map(|r| r.start()..=r.end())
                    .map(char::from)
                    .collect()
            })
        }
    };
    let Some(chars) = chars.filter(|c| !c.is_empty()) else {
        return Info::unknown(0);
    };
    let digits = usize::from(chars.iter().all(|c| c.is_numeric()));
    let folded: BTreeSet<String> = chars.iter().map(|&c| fold_char(c).to_string()).collect();
    if folded.len() <= 8 {
        Info::exact(folded, digits)
    } else {
        Info::unknown(digits)
    }
}

fn concat_info(infos: Vec<Info>) -> Info {
    let min_digits = infos.iter().map(|i| i.min_digits).sum();
    let mut candidates: Vec<Option<Vec<String>>> = infos
        .iter()
        .flat_map(|i| i.needs.iter().cloned().map(Some))
        .collect();
    // Runs of exact children multiply into longer strings: "w" "i" "f" "e" -> "wife"; a
    // run ends at a child that is not exact, lengthened by what that child starts with.
    let empty = || BTreeSet::from([String::new()]);
    let mut run = empty();
    let mut run_from_start = true;
    let mut prefix: Option<BTreeSet<String>> = None;
    let mut whole: Option<BTreeSet<String>> = Some(empty());
    for info in &infos {
        match &info.exact {
            Some(e) => {
                match product(&run, e) {
                    Some(joined) => run = joined,
                    None => {
                        // Too many combinations: keep the run so far, start a new one here.
                        candidates.push(need_of_exact(&run));
                        run = e.clone();
                        run_from_start = false;
                    }
                }
                whole = whole.and_then(|w| product(&w, e));
            }
            None => {
                let lengthened = info.prefix.as_ref().and_then(|p| product(&run, p));
                if run_from_start && prefix.is_none() {
                    prefix = Some(lengthened.clone().unwrap_or_else(|| run.clone()));
                }
                candidates.push(need_of_exact(lengthened.as_ref().unwrap_or(&run)));
                // The next run starts with what this child ends with: `[ \t]+` then `St`
                // gives " st", not the "st" inside "first".
                run = info.suffix.clone().unwrap_or_else(empty);
                run_from_start = false;
                whole = None;
            }
        }
    }
    candidates.push(need_of_exact(&run));
    let prefix = if whole.is_some() {
        whole.clone()
    } else {
        prefix
    };
    // The last run is made of the last children: every match ends with one of its strings.
    let suffix = Some(whole.clone().unwrap_or(run));
    Info {
        needs: best(candidates),
        exact: whole,
        prefix,
        suffix,
        min_digits,
    }
}

/// `min` copies of a set one after another, if not too many strings.
fn power(set: &BTreeSet<String>, min: u32) -> Option<BTreeSet<String>> {
    (0..min).try_fold(BTreeSet::from([String::new()]), |acc, _| product(&acc, set))
}

fn product(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Option<BTreeSet<String>> {
    if a.len() * b.len() > MAX_STRINGS {
        return None;
    }
    Some(
        a.iter()
            .flat_map(|x| b.iter().map(move |y| format!("{x}{y}")))
            .collect(),
    )
}

/// The most selective set first (heaviest lightest string, then fewest strings), then up
/// to two more strong ones.
fn best(candidates: impl IntoIterator<Item = Option<Vec<String>>>) -> Vec<Vec<String>> {
    // A set with a function word comes last, whatever its length.
    let score = |s: &Vec<String>| {
        (
            !has_function_word(s),
            s.iter().map(|x| weight(x)).min().unwrap_or(0),
            usize::MAX - s.len(),
        )
    };
    let mut sets: Vec<Vec<String>> = candidates
        .into_iter()
        .flatten()
        .filter(|s| selective(s))
        .collect();
    sets.iter_mut().for_each(|s| {
        // A string that holds another of its set is met only where that one is: leaving
        // it out changes nothing but the size of the automaton (*fevrier* beside *fev*).
        let all = s.clone();
        s.retain(|x| !all.iter().any(|y| y != x && x.contains(y.as_str())));
        s.sort();
    });
    sets.sort_by_key(|s| std::cmp::Reverse(score(s)));
    sets.dedup();
    // A set is implied by a chosen one when each of its strings holds one of the set's.
    let implied = |chosen: &[Vec<String>], set: &[String]| {
        let cores: Vec<String> = set.iter().map(|s| core(s).collect()).collect();
        chosen.iter().any(|c| {
            c.iter().all(|s| {
                cores
                    .iter()
                    .any(|x| core(s).collect::<String>().contains(x.as_str()))
            })
        })
    };
    let mut chosen: Vec<Vec<String>> = Vec::new();
    for set in sets {
        if chosen.is_empty()
            || (chosen.len() < MAX_NEEDS && strong(&set) && !implied(&chosen, &set))
        {
            chosen.push(set);
        }
    }
    chosen
}

/// A Unicode word boundary in the folded text at byte `at`.
fn boundary_at(text: &str, at: usize) -> bool {
    let word = |c: Option<char>| match c {
        None => Some(false),
        Some(c) if c.is_ascii() => Some(regex_syntax::is_word_byte(c as u8)),
        Some(c) => regex_syntax::try_is_word_character(c).ok(),
    };
    match (
        word(text[..at].chars().next_back()),
        word(text[at..].chars().next()),
    ) {
        (Some(before), Some(after)) => before != after,
        // Without Unicode tables, assume the boundary is there (run the rule).
        _ => true,
    }
}

/// One rule's string of one need, as the automaton looks for it.
#[derive(Debug, Clone)]
struct Opener {
    rule: usize,
    need: usize,
    /// A Unicode word boundary must stand before (after) the string. ASCII boundary marks
    /// are not checked: one may hold beside a letter that folding took its accent from
    /// ("énhs" folds to "enhs").
    boundary_before: bool,
    boundary_after: bool,
}

/// The gates of a whole rule set, checked together in one pass over a text.
#[derive(Debug, Clone)]
pub struct GateIndex {
    gates: Vec<Gate>,
    automaton: Option<AhoCorasick>,
    /// Automaton pattern -> the needs it meets.
    opens: Vec<Vec<Opener>>,
    /// Per rule: needs made of digits only ("000"), met by a run of that many digits. They
    /// stay out of the automaton, where a long number would hit them at every position.
    digit_runs: Vec<Vec<(usize, usize)>>,
}

/// The shortest run of digits that meets a set of digit-only strings, if it is one.
fn digit_run(set: &[String]) -> Option<usize> {
    set.iter()
        .map(|s| (core(s).all(|c| c == '0')).then(|| core(s).count()))
        .collect::<Option<Vec<usize>>>()?
        .into_iter()
        .min()
}

impl GateIndex {
    /// The gates of a rule set, rule `i`'s at index `i`.
    pub fn new(gates: Vec<Gate>) -> GateIndex {
        let mut patterns: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut opens: Vec<Vec<Opener>> = Vec::new();
        let mut digit_runs: Vec<Vec<(usize, usize)>> = vec![Vec::new(); gates.len()];
        for (rule, gate) in gates.iter().enumerate() {
            for (need, set) in gate.needs.iter().enumerate() {
                if let Some(run) = digit_run(set) {
                    // Boundary marks are dropped: a weaker condition, still a necessary one.
                    digit_runs[rule].push((need, run));
                    continue;
                }
                for s in set {
                    let text: String = core(s).collect();
                    let opener = Opener {
                        rule,
                        need,
                        boundary_before: s.starts_with(UNICODE_BOUNDARY),
                        boundary_after: s.ends_with(UNICODE_BOUNDARY),
                    };
                    let k = *index.entry(text.clone()).or_insert_with(|| {
                        patterns.push(text);
                        opens.push(Vec::new());
                        patterns.len() - 1
                    });
                    opens[k].push(opener);
                }
            }
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            // Standard semantics: overlapping search reports every pattern that occurs.
            // A full DFA: a few hundred short strings make a small one, and it is the fastest.
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&patterns)
                .ok()
        };
        // Without an automaton every string gate must be treated as open.
        let gates = if automaton.is_none() {
            gates
                .into_iter()
                .map(|g| Gate {
                    needs: Vec::new(),
                    ..g
                })
                .collect()
        } else {
            gates
        };
        GateIndex {
            gates,
            automaton,
            opens,
            digit_runs,
        }
    }

    /// Which rules could match `text` (indexed as the gates were given).
    pub fn open(&self, text: &str) -> Vec<bool> {
        // One pass folds the text, counts its numeric characters and finds the longest run
        // of characters that fold to `0`.
        let (mut digits, mut longest_run, mut run) = (0, 0, 0);
        let mut count = |numeric: bool, folded_zero: bool| {
            digits += usize::from(numeric);
            run = if folded_zero { run + 1 } else { 0 };
            longest_run = longest_run.max(run);
        };
        let folded: String = if text.is_ascii() {
            let bytes: Vec<u8> = text
                .bytes()
                .map(|b| {
                    count(b.is_ascii_digit(), b.is_ascii_digit());
                    fold_byte(b)
                })
                .collect();
            // ASCII in, ASCII out: the bytes stay valid UTF-8.
            String::from_utf8(bytes).unwrap_or_default()
        } else {
            text.chars()
                .map(|c| {
                    let f = fold_char(c);
                    count(c.is_numeric(), f == '0');
                    f
                })
                .collect()
        };
        // Bit k of a rule's entry: its need k was met.
        let mut met: Vec<u32> = self
            .digit_runs
            .iter()
            .map(|needs| {
                needs
                    .iter()
                    .filter(|&&(_, run)| longest_run >= run)
                    .fold(0, |m, &(need, _)| m | 1 << need)
            })
            .collect();
        if let Some(automaton) = &self.automaton {
            for m in automaton.find_overlapping_iter(folded.as_str()) {
                for o in &self.opens[m.pattern().as_usize()] {
                    if (o.boundary_before && !boundary_at(&folded, m.start()))
                        || (o.boundary_after && !boundary_at(&folded, m.end()))
                    {
                        continue;
                    }
                    met[o.rule] |= 1 << o.need;
                }
            }
        }
        self.gates
            .iter()
            .zip(met)
            .map(|(g, met)| {
                let all = (1u32 << g.needs.len()) - 1;
                digits >= g.min_digits && met & all == all
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The best set, sorted, boundary marks as `\b`.
    fn strings(pattern: &str) -> Option<Vec<String>> {
        Gate::of_pattern(pattern).describe().into_iter().next()
    }

    #[test]
    fn case_insensitive_keywords_become_folded_strings() {
        assert_eq!(
            strings(r"(?i:wife|husband)\s+(\p{Lu}\w+)"),
            Some(vec!["husband".into(), "wife".into()])
        );
        // French accents fold away on both sides: one string for numéro and numero.
        assert_eq!(strings(r"(?i)épouse"), Some(vec!["epouse".into()]));
        assert_eq!(fold_char('É'), 'e');
        assert_eq!(strings(r"[\w.+-]+@[\w-]+\.\w+"), Some(vec!["@".into()]));
    }

    #[test]
    fn word_boundaries_are_kept_as_marks() {
        assert_eq!(
            strings(r"\b(?:CHU|CH)\b"),
            Some(vec![r"\bch\b".into(), r"\bchu\b".into()])
        );
        assert_eq!(strings(r"(?-u:\b)nhs"), Some(vec![r"(?-u:\b)nhs".into()]));
        // An ASCII boundary holds after é, which folds to e: it is not checked.
        let index = GateIndex::new(vec![Gate::of_pattern(r"(?-u:\b)nhs")]);
        assert_eq!(index.open("énhs"), vec![true]);
    }

    #[test]
    fn a_repetition_lengthens_the_run_before_it_with_its_first_copy() {
        // Tabs and line breaks fold to spaces.
        assert_eq!(
            strings(r"\bMs\.?[ \t]+\p{Lu}"),
            Some(vec![r"\bms ".into(), r"\bms. ".into()])
        );
    }

    #[test]
    fn a_run_starts_with_what_the_part_before_ends_with() {
        // `[ \t]+` ends with a space: "st" is looked for as " st", not inside "first".
        assert_eq!(
            strings(r"\p{Lu}\p{Ll}+[ \t]+(?:St|Ave)\b"),
            Some(vec![r" ave\b".into(), r" st\b".into()])
        );
        let index = GateIndex::new(vec![Gate::of_pattern(
            r"\d+[ \t]+\p{Lu}\p{Ll}+[ \t]+(?:St|Ave)\b",
        )]);
        assert_eq!(index.open("at 221 Baker St."), vec![true]);
        assert_eq!(index.open("the first 2 weeks"), vec![false]);
    }

    #[test]
    fn strings_holding_another_of_their_set_are_left_out() {
        assert_eq!(
            strings(r"(?i)\b(?:fev|fevr|fevrier)\s"),
            Some(vec![r"\bfev".into()])
        );
        let index = GateIndex::new(vec![Gate::of_pattern(r"(?i)\b(?:fev|fevrier) \d")]);
        assert_eq!(index.open("le 3 FEVRIER 2020"), vec![true]);
        assert_eq!(index.open("fevrier"), vec![false]);
    }

    #[test]
    fn sets_with_function_words_are_not_checked_beside_better_ones() {
        // "on" and "the" are in nearly every English post: only the ordinal is checked.
        let gate = Gate::of_pattern(r"(?i)\bon\s+the\s+(\d{1,2}(?:st|nd|rd|th))\b");
        assert_eq!(gate.describe().len(), 1);
        assert!(
            gate.describe()
                .iter()
                .all(|set| !set.iter().any(|s| s.contains("the"))),
            "{:?}",
            gate.describe()
        );
        assert!(!gate.needs.is_empty());
    }

    #[test]
    fn separate_necessary_strings_are_all_checked() {
        let gate = Gate::of_pattern(r"\w+@\w+\.(?:com|org)\b");
        // "com" or "org" alone is implied by the first set, so not checked again.
        assert_eq!(
            gate.describe(),
            vec![
                vec![r".com\b".to_string(), r".org\b".into()],
                vec!["@".into()]
            ]
        );
        let index = GateIndex::new(vec![gate]);
        assert_eq!(index.open("write to a@b.com"), vec![true]);
        assert_eq!(index.open("@handle on .com"), vec![true]);
        assert_eq!(index.open("@handle on the common"), vec![false]);
        assert_eq!(index.open("a.com without at sign"), vec![false]);
    }

    #[test]
    fn digits_fold_together_into_short_strings() {
        assert_eq!(
            strings(r"(?:0?[1-9]|1[0-2])/(?:[12]\d|3[01])"),
            Some(vec!["0/00".into()])
        );
        // The last four digits of `\d{4,5}` end before the boundary.
        assert_eq!(
            strings(r"(?i)\b(?:pager|x)\s*(\d{4,5})\b"),
            Some(vec![r"0000\b".into()])
        );
        let index = GateIndex::new(vec![Gate::of_pattern(r"\b\d{2}/\d{2}\b")]);
        assert_eq!(index.open("le 12/03"), vec![true]);
        assert_eq!(index.open("12 and 03, 1/2"), vec![false]);
    }

    #[test]
    fn digit_strings_are_checked_as_runs_of_digits() {
        let index = GateIndex::new(vec![
            Gate::of_pattern(r"\b\d{4}\b"),
            Gate::of_pattern(r"(?i)ref\s*\d{3}"),
        ]);
        assert_eq!(index.open("in 2021"), vec![true, false]);
        assert_eq!(index.open("12 34 56"), vec![false, false]);
        assert_eq!(index.open("REF 123"), vec![false, true]);
        assert_eq!(index.open("ref 12 3"), vec![false, false]);
        // Digits of other scripts fold with ASCII ones.
        assert_eq!(index.open("en ٢٠٢١"), vec![true, false]);
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
        assert_eq!(
            Gate::of_pattern(r"\b0[67](?:[ .]?\d{2}){4}\b").min_digits,
            10
        );
        assert_eq!(Gate::of_pattern(r"\d{3}|\d{5}").min_digits, 3);
        assert_eq!(Gate::of_pattern(r"(?:\d{2})?x").min_digits, 0);
    }

    #[test]
    fn the_index_opens_only_rules_whose_conditions_hold() {
        let gates = ["(?i)wife", r"\d{4}", r"(?i)rue \d+", r"\p{Lu}+", r"\bCH\b"]
            .map(Gate::of_pattern)
            .to_vec();
        let index = GateIndex::new(gates);
        assert_eq!(
            index.open("His WIFE called"),
            vec![true, false, false, true, false]
        );
        assert_eq!(
            index.open("RUE 12 de la Paix, 2021"),
            vec![false, true, true, true, false]
        );
        // "rue" followed by a digit is needed, not just both somewhere.
        assert_eq!(
            index.open("12 RUE de la Paix, 2021"),
            vec![false, true, false, true, false]
        );
        assert_eq!(
            index.open("rue sans numéro, check"),
            vec![false, false, false, true, false]
        );
        assert_eq!(
            index.open("au CH de Mâcon"),
            vec![false, false, false, true, true]
        );
        assert_eq!(index.open("éch"), vec![false, false, false, true, false]);
    }
}
