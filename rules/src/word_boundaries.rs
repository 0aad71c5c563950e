//! Unicode word boundaries (`\b`) rewritten as ASCII ones where that cannot lose a match.
//!
//! The `regex` crate's DFAs cannot evaluate a Unicode `\b` on non-ASCII text, so a rule
//! that has one falls back to a slower engine on every French post with an accent (2.5
//! times slower over the EDS notes). An ASCII `\b` runs in the DFA. The two agree except
//! when one side of the boundary is a non-ASCII letter or digit, so a `\b` is rewritten
//! only where the pattern puts an ASCII word character on one side (`\b(?i:dr|mme)`,
//! `rue\b`): there the ASCII boundary holds whenever the Unicode one does (it also holds
//! after *é* in "éDr", where Unicode sees none), so the rule can only match more.
//! `\d` counts as ASCII here, and so do the Kelvin sign, long s and Ångström sign that
//! `(?i)` adds to k, s and å: the rewritten pattern is only run on texts without those
//! characters and without non-ASCII digits ([`fits_rewritten`]; other texts get the
//! pattern as written). "Can only match more" holds at each position; iterating over a
//! text, an extra match next to an accented letter ("éDr") may shift the next ones.
//! A `\b` beside *é* stays Unicode.

use regex_syntax::ast::{self, Ast};
use regex_syntax::hir::{Class, Hir, HirKind};

/// The pattern with safe boundaries made ASCII: each such `\b` is replaced in the text of
/// the pattern by `(?-u:\b)`, everything else kept as written. The pattern itself when it
/// does not parse (the regex crate then reports why).
pub fn rewrite(pattern: &str) -> String {
    let Ok(parsed) = ast::parse::Parser::new().parse(pattern) else {
        return pattern.to_string();
    };
    let mut spans = Vec::new();
    safe_boundaries(pattern, &parsed, &mut spans);
    // Splice from the end so that earlier offsets stay valid.
    spans.sort_by_key(|s: &ast::Span| std::cmp::Reverse(s.start.offset));
    let mut out = pattern.to_string();
    for span in spans {
        out.replace_range(span.start.offset..span.end.offset, r"(?-u:\b)");
    }
    out
}

/// Collects the spans of the `\b` that have an ASCII word character on one side.
fn safe_boundaries(pattern: &str, node: &Ast, out: &mut Vec<ast::Span>) {
    match node {
        Ast::Concat(concat) => {
            let asts = &concat.asts;
            for (i, piece) in asts.iter().enumerate() {
                match piece {
                    Ast::Assertion(a) if a.kind == ast::AssertionKind::WordBoundary => {
                        let left = side_is_ascii_word(pattern, asts[..i].iter().rev(), false);
                        let right = side_is_ascii_word(pattern, asts[i + 1..].iter(), true);
                        if left || right {
                            out.push(a.span);
                        }
                    }
                    other => safe_boundaries(pattern, other, out),
                }
            }
        }
        Ast::Alternation(alt) => alt
            .asts
            .iter()
            .for_each(|a| safe_boundaries(pattern, a, out)),
        Ast::Group(group) => safe_boundaries(pattern, &group.ast, out),
        Ast::Repetition(rep) => safe_boundaries(pattern, &rep.ast, out),
        // A boundary alone (a whole alternative, a group of its own) has no neighbour here.
        _ => {}
    }
}

/// Walks pieces outward from a boundary: is the first character they consume, whichever
/// it is, an ASCII word character? Each piece is translated on its own; flags set earlier
/// in the pattern are then lost, which only makes the answer more cautious (a class
/// becomes its Unicode form).
fn side_is_ascii_word<'a>(
    pattern: &str,
    pieces: impl Iterator<Item = &'a Ast>,
    start: bool,
) -> bool {
    for piece in pieces {
        if matches!(piece, Ast::Flags(_)) {
            continue;
        }
        let Ok(hir) = regex_syntax::hir::translate::Translator::new().translate(pattern, piece)
        else {
            return false;
        };
        let e = edge(&hir, start);
        if !e.ascii {
            return false;
        }
        if !e.can_be_empty {
            return true;
        }
    }
    // The pattern may end here: the character beyond is unknown.
    false
}

/// Can `text` be searched with rewritten patterns? Not when it holds a digit of another
/// script or a character that `(?i)` folds with an ASCII letter.
pub fn fits_rewritten(text: &str) -> bool {
    if text.is_ascii() {
        return true;
    }
    // Only non-ASCII characters can fail it: decode those alone.
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at].is_ascii() {
            at += 1;
            continue;
        }
        let Some(c) = text[at..].chars().next() else {
            break;
        };
        // Below U+0660 (Latin, Greek, Cyrillic, Hebrew: most non-ASCII text here) the only
        // numeric characters are these, and Unicode's numeric table is slow to consult.
        // Emoji (U+1F110 to U+1FBEF) hold none either.
        let numeric = if c < '\u{660}' {
            matches!(c, '²' | '³' | '¹' | '¼' | '½' | '¾')
        } else {
            !('\u{1F110}'..'\u{1FBF0}').contains(&c) && c.is_numeric()
        };
        if numeric || case_fold_extra(c) {
            return false;
        }
        at += c.len_utf8();
    }
    true
}

/// Characters that `(?i)` adds to ASCII letters (Kelvin sign, long s, Ångström sign):
/// they do not make a class non-ASCII in practice.
fn case_fold_extra(c: char) -> bool {
    matches!(c, '\u{212A}' | '\u{017F}' | '\u{212B}')
}

fn ascii_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// What a pattern piece puts at one of its edges.
#[derive(Clone, Copy)]
struct Edge {
    /// Every character it can put there is an ASCII word character (or a digit).
    ascii: bool,
    /// It can match the empty string, so the character may come from further out.
    can_be_empty: bool,
}

fn edge(hir: &Hir, start: bool) -> Edge {
    let solid = |ascii| Edge {
        ascii,
        can_be_empty: false,
    };
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Edge {
            ascii: true,
            can_be_empty: true,
        },
        HirKind::Literal(lit) => {
            let byte = if start { lit.0.first() } else { lit.0.last() };
            solid(byte.is_some_and(|&b| ascii_word(char::from(b))))
        }
        HirKind::Class(Class::Unicode(class)) => solid(class.ranges().iter().all(|r| {
            (r.start()..=r.end()).all(|c| ascii_word(c) || case_fold_extra(c) || c.is_numeric())
        })),
        HirKind::Class(Class::Bytes(class)) => solid(
            class
                .ranges()
                .iter()
                .all(|r| (r.start()..=r.end()).all(|b| ascii_word(char::from(b)))),
        ),
        HirKind::Capture(cap) => edge(&cap.sub, start),
        HirKind::Repetition(rep) => {
            let sub = edge(&rep.sub, start);
            Edge {
                ascii: sub.ascii,
                can_be_empty: rep.min == 0 || sub.can_be_empty,
            }
        }
        HirKind::Alternation(subs) => {
            let edges: Vec<Edge> = subs.iter().map(|s| edge(s, start)).collect();
            Edge {
                ascii: edges.iter().all(|e| e.ascii),
                can_be_empty: edges.iter().any(|e| e.can_be_empty),
            }
        }
        HirKind::Concat(subs) => {
            let mut ascii = true;
            let mut can_be_empty = true;
            let ordered: Box<dyn Iterator<Item = &Hir>> = if start {
                Box::new(subs.iter())
            } else {
                Box::new(subs.iter().rev())
            };
            for piece in ordered {
                let e = edge(piece, start);
                ascii &= e.ascii;
                if !e.can_be_empty {
                    can_be_empty = false;
                    break;
                }
            }
            Edge {
                ascii,
                can_be_empty,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    #[test]
    fn texts_fit_the_rewritten_patterns_unless_they_hold_odd_digits_or_letters() {
        for text in ["plain ascii 12", "été à 12 h", "emoji 🙂 ok 🦠", ""] {
            assert!(fits_rewritten(text), "{text}");
        }
        // Arabic-Indic three, superscript two, Kelvin sign, long s.
        for text in ["n° ٣", "m² é", "5 \u{212A}", "\u{017F}é", "🄁", "🯹"] {
            assert!(!fits_rewritten(text), "{text}");
        }
    }

    #[test]
    fn boundaries_beside_ascii_letters_become_ascii() {
        let rewritten = rewrite(r"\b(?i:dr|mme)\s+(\p{Lu}\w+)");
        assert!(rewritten.contains(r"(?-u:\b)"), "{rewritten}");
        let re = Regex::new(&rewritten).unwrap();
        assert_eq!(&re.captures("vue par Mme Élodie").unwrap()[1], "Élodie");
        assert!(!re.is_match("adrénaline"));
    }

    #[test]
    fn boundaries_beside_accents_or_unicode_digits_stay_unicode() {
        assert!(
            rewrite(r"\b\d{10}\b").contains(r"(?-u:\b)"),
            "\\d is ASCII on texts with ASCII digits"
        );
        // The first boundary has an ASCII letter beside it; the last one only an accent.
        let rewritten = rewrite(r"\bné\b");
        assert_eq!(rewritten.matches(r"(?-u:\b)").count(), 1, "{rewritten}");
        assert_eq!(rewritten, r"(?-u:\b)né\b");
        let re = Regex::new(&rewritten).unwrap();
        assert!(re.is_match("Mme X, né le 3"));
        assert!(!re.is_match("Mme X, néerlandaise"));
    }

    #[test]
    fn everything_but_the_boundaries_is_kept_as_written() {
        // A negated class printed back from its parsed form did not parse to the same
        // class; the rewrite now only touches the `\b` themselves.
        let pattern =
            r"(?i)(?:num[ée]ro\s+d['’]assur[ée]e?)[^\d\n]{0,40}?\b([1278](?:[ \u00a0]?\d){12})\b";
        let rewritten = rewrite(pattern);
        assert_eq!(
            rewritten,
            pattern
                .replace(r"?\b(", r"?(?-u:\b)(")
                .replace(r"})\b", r"})(?-u:\b)")
        );
        let re = Regex::new(&rewritten).unwrap();
        assert_eq!(
            &re.captures("Son numéro d'assuré est 1980612385213, et")
                .unwrap()[1],
            "1980612385213"
        );
    }

    #[test]
    fn rewritten_patterns_keep_their_groups() {
        let pattern = r"\b(?i:wife|husband)[ \t]+(\p{Lu}\p{Ll}+)";
        let re = Regex::new(&rewrite(pattern)).unwrap();
        assert_eq!(
            re.captures_len(),
            Regex::new(pattern).unwrap().captures_len()
        );
        assert_eq!(&re.captures("his WIFE Hélène called").unwrap()[1], "Hélène");
    }
}
