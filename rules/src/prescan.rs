//! Which rules match a text, found exactly in one pass over it.
//!
//! Running a rule's regex costs about half a microsecond per text even when it finds
//! nothing (a forward scan, engine setup), and the literal [`gate`](crate::gate)s still
//! open a rule or twenty per clinical note. The patterns of all rules compiled into one
//! lazy DFA and searched for every pattern that matches (overlapping semantics, as
//! `regex::RegexSet` does) say in one scan, at a few hundred MB/s, exactly which rules
//! have a match: on a tweet, none or one. Only those then run their own regex, to find
//! where.
//!
//! The lazy DFA builds its states as the text needs them, in a cache of bounded size. A
//! text that needs more states than fit (thousands of distinct states per few bytes) makes
//! the scan give up rather than crawl; the caller then falls back to the gates, so the
//! worst case stays the gated one.

use std::sync::Arc;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::pool::Pool;
use regex_automata::{Input, MatchKind, PatternSet};

/// Room for the lazy DFA's states, per thread. The union of the built-in rules needs over
/// 6 MB to scan clinical notes without refilling (measured on the EDS notes).
const CACHE_BYTES: usize = 24 << 20;

type CacheMaker = Box<
    dyn Fn() -> (Cache, PatternSet)
        + Send
        + Sync
        + std::panic::UnwindSafe
        + std::panic::RefUnwindSafe,
>;

/// The patterns of a rule set in one lazy DFA, searched for every pattern that matches.
pub struct Prescan {
    dfa: Arc<DFA>,
    /// Rule index of each pattern of the DFA.
    rules: Vec<usize>,
    /// One cache per thread that scans.
    caches: Pool<(Cache, PatternSet), CacheMaker>,
}

impl std::fmt::Debug for Prescan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prescan")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Prescan {
    /// `patterns`: (rule index, pattern). Patterns with a Unicode word boundary are left
    /// out (a DFA stops at the first non-ASCII byte when it must evaluate one), as are all
    /// when they cannot be compiled together; [`Prescan::covers`] tells which are in.
    pub fn new<'a>(patterns: impl IntoIterator<Item = (usize, &'a str)>) -> Option<Prescan> {
        Self::with_cache(patterns, CACHE_BYTES)
    }

    fn with_cache<'a>(
        patterns: impl IntoIterator<Item = (usize, &'a str)>,
        cache_bytes: usize,
    ) -> Option<Prescan> {
        let (rules, kept): (Vec<usize>, Vec<&str>) = patterns
            .into_iter()
            .filter(|(_, p)| !has_unicode_word_boundary(p))
            .unzip();
        if kept.is_empty() {
            return None;
        }
        // Only whether each pattern matches is wanted: no capture groups, every match
        // reported.
        let nfa = thompson::NFA::compiler()
            .configure(thompson::Config::new().which_captures(WhichCaptures::None))
            .build_many(&kept)
            .ok()?;
        let config = DFA::config()
            .match_kind(MatchKind::All)
            .cache_capacity(cache_bytes)
            // A cache too small for the patterns still scans, giving up sooner.
            .skip_cache_capacity_check(true)
            // Give up as soon as the cache fills at under 10 bytes of text per state built
            // since it last filled: the gates are faster then. Ordinary posts fill it
            // only after megabytes.
            .minimum_cache_clear_count(Some(0))
            .minimum_bytes_per_state(Some(10));
        let dfa = Arc::new(DFA::builder().configure(config).build_from_nfa(nfa).ok()?);
        let for_caches = Arc::clone(&dfa);
        let make: CacheMaker = Box::new(move || {
            (
                for_caches.create_cache(),
                PatternSet::new(for_caches.pattern_len()),
            )
        });
        Some(Prescan {
            dfa,
            rules,
            caches: Pool::new(make),
        })
    }

    /// Rule indexes whose patterns are in the scan.
    pub fn covers(&self) -> &[usize] {
        &self.rules
    }

    /// Sets `matched[rule]` for every covered rule with a match in `text`, and clears it for
    /// every other covered rule. `false` when the scan gave up: `matched` is then left as
    /// it was.
    pub fn scan(&self, text: &str, matched: &mut [bool]) -> bool {
        let mut guard = self.caches.get();
        let (cache, found) = &mut *guard;
        found.clear();
        // Most texts match no rule: a plain forward scan, stopping at the first match,
        // says so faster than the overlapping one, which checks for matches at each byte.
        let input = Input::new(text);
        let any = self
            .dfa
            .try_search_fwd(cache, &input.clone().earliest(true))
            .map(|m| m.is_some());
        if any.as_ref().is_ok_and(|any| !any) {
            for &rule in &self.rules {
                matched[rule] = false;
            }
            return true;
        }
        if any.is_err()
            || self
                .dfa
                .try_which_overlapping_matches(cache, &input, found)
                .is_err()
        {
            // The cache stays full after giving up, and would give up on every later
            // text needing a new state: start it afresh.
            cache.reset(&self.dfa);
            return false;
        }
        for (k, &rule) in self.rules.iter().enumerate() {
            matched[rule] = found.contains(regex_automata::PatternID::new_unchecked(k));
        }
        true
    }
}

/// Does the pattern evaluate a word boundary (or its negation) in the Unicode sense?
fn has_unicode_word_boundary(pattern: &str) -> bool {
    match regex_syntax::parse(pattern) {
        Ok(hir) => {
            let looks = hir.properties().look_set();
            looks.contains_word_unicode()
        }
        // Not compiled here; the rule's own regex reports the error.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_exactly_the_patterns_that_match() {
        let scan = Prescan::new([
            (0, r"(?-u:\b)\d{3}(?-u:\b)"),
            (1, r"(?i)rue"),
            (2, r"^abc$"),
            (3, r"z+"),
        ])
        .expect("compiles");
        let mut matched = vec![true; 4];
        assert!(scan.scan("12 Rue x 123", &mut matched));
        assert_eq!(matched, [true, true, false, false]);
        assert!(scan.scan("abc", &mut matched));
        assert_eq!(matched, [false, false, true, false]);
        // Non-ASCII text goes through the DFA too.
        assert!(scan.scan("été zzz 1234", &mut matched));
        assert_eq!(matched, [false, false, false, true]);
    }

    #[test]
    fn gives_up_rather_than_crawl_when_its_states_do_not_fit() {
        // Which of the last 13 letters are a's: up to 8192 states, for a few bytes each.
        let scan = Prescan::with_cache([(0, r"a[a-z]{12}$")], 4096).expect("compiles");
        let mut seed = 7u32;
        let text: String = (0..4000)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if seed >> 16 & 1 == 0 {
                    'a'
                } else {
                    'b'
                }
            })
            .collect();
        // Giving up leaves `matched` as it was: the gates' answer stands.
        let mut matched = vec![true];
        assert!(!scan.scan(&text, &mut matched));
        assert_eq!(matched, [true]);
        // The next text starts with an empty cache, and needs few states.
        assert!(scan.scan("zzz", &mut matched));
        assert_eq!(matched, [false]);
    }

    #[test]
    fn leaves_out_unicode_word_boundaries() {
        let scan = Prescan::new([(0, r"\bdr\b"), (1, r"(?i)(?-u:\b)mme(?-u:\b)"), (2, r"\Bx")])
            .expect("one pattern is left");
        assert_eq!(scan.covers(), [1]);
        let mut matched = vec![false; 3];
        assert!(scan.scan("Mme Été", &mut matched));
        assert_eq!(matched, [false, true, false]);
        assert!(Prescan::new([(0, r"\bdr\b")]).is_none());
    }
}
