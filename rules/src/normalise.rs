//! The view of a text that the rules match on, and the way back to the original.
//!
//! A post can be shaped to slip an identifier past patterns that read it as typed: a
//! zero-width space or a soft hyphen inside a phone number, digits typed full-width
//! (`０６`) or in another script (`٠٦`), an e-mail address broken across two lines. Every
//! such trick leaves the identifier readable to people. So the rules never see the text
//! as typed, but a [`MatchView`] of it:
//!
//! - NFKC compatibility normalisation (full-width forms, ligatures, no-break spaces),
//!   applied to each character with its combining marks, so accents compose;
//! - invisible characters dropped: every format character (Unicode category Cf: zero-width
//!   space and joiners, word joiner, soft hyphen, BOM, bidi controls), control characters
//!   other than line and tab breaks, variation selectors and the blank fillers;
//! - every Unicode decimal digit folded to its ASCII digit;
//! - in the [`MatchView::joined`] view only, line breaks that split a run of digits or an
//!   e-mail address removed.
//!
//! Each byte of the view remembers which characters of the original it came from, so a
//! match in the view maps back to a range of the original that covers the whole disguised
//! identifier, invisible characters included: redacting that range removes the
//! obfuscation with the identifier.

use std::borrow::Cow;
use std::ops::Range;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A text as the rules see it, with the map back to the text as written.
#[derive(Debug, Clone)]
pub struct MatchView<'t> {
    text: Cow<'t, str>,
    /// For each byte of `text`, the byte range of the original it stands for; empty when
    /// `text` is the original unchanged.
    origin: Vec<Range<usize>>,
    /// Byte offsets of the view where a line break was removed (the joined view only).
    joins: Vec<usize>,
}

impl<'t> MatchView<'t> {
    /// The normalised view of `original` (line breaks kept as they are).
    pub fn of(original: &'t str) -> MatchView<'t> {
        if is_already_normal(original) {
            return MatchView {
                text: Cow::Borrowed(original),
                origin: Vec::new(),
                joins: Vec::new(),
            };
        }
        MatchView::from_pieces(normal_pieces(original))
    }

    /// The normalised view with line breaks that cut through a run of digits or an e-mail
    /// address removed, or `None` when `original` has no such break (then [`MatchView::of`]
    /// sees everything there is to see).
    pub fn joined(original: &'t str) -> Option<MatchView<'t>> {
        if !original.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) {
            return None;
        }
        let pieces = normal_pieces(original);
        let chars: Vec<char> = pieces.iter().map(|p| p.0).collect();
        let cut = splitting_breaks(&chars);
        if cut.iter().all(|c| !c) {
            return None;
        }
        let mut kept = Vec::with_capacity(pieces.len());
        let mut joins = Vec::new();
        let mut byte = 0;
        let mut after_cut = false;
        for (piece, cut) in pieces.into_iter().zip(cut) {
            if cut {
                after_cut = true;
                continue;
            }
            if std::mem::take(&mut after_cut) {
                joins.push(byte);
            }
            byte += piece.0.len_utf8();
            kept.push(piece);
        }
        let mut view = MatchView::from_pieces(kept);
        view.joins = joins;
        Some(view)
    }

    /// Whether the non-empty byte range `start..end` of the view runs across a line break
    /// that the joined view removed: a match that does not is one the plain view sees too.
    pub fn spans_a_join(&self, start: usize, end: usize) -> bool {
        let first_after = self.joins.partition_point(|&j| j <= start);
        self.joins.get(first_after).is_some_and(|&j| j < end)
    }

    fn from_pieces(pieces: Vec<(char, Range<usize>)>) -> MatchView<'t> {
        let mut text = String::with_capacity(pieces.len());
        let mut origin = Vec::with_capacity(pieces.len());
        for (ch, from) in pieces {
            text.push(ch);
            origin.extend(std::iter::repeat_n(from, ch.len_utf8()));
        }
        MatchView {
            text: Cow::Owned(text),
            origin,
            joins: Vec::new(),
        }
    }

    /// The text the rules match on.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the view is the original text unchanged (offsets need no mapping).
    pub fn is_original(&self) -> bool {
        matches!(self.text, Cow::Borrowed(_))
    }

    /// The byte range of the original text that the non-empty byte range `start..end` of
    /// the view stands for: from the first character it came from to the last.
    pub fn to_original(&self, start: usize, end: usize) -> (usize, usize) {
        if self.origin.is_empty() || start >= end {
            return (start, end);
        }
        let last = end.min(self.origin.len()) - 1;
        (self.origin[start].start, self.origin[last].end)
    }
}

/// The normalised form of a short text, e.g. an identifier, so that its disguised and
/// plain forms compare equal (pseudonyms, duplicate checks).
pub fn normalised(text: &str) -> Cow<'_, str> {
    match MatchView::of(text).text {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// True when the view of `text` would be `text` itself: checked without allocating, as
/// most posts are plain.
fn is_already_normal(text: &str) -> bool {
    if text.is_ascii() {
        return !text.bytes().any(is_dropped_ascii_control);
    }
    !text.chars().any(needs_change) && is_nfkc_quick(text.chars()) == IsNormalized::Yes
}

fn needs_change(c: char) -> bool {
    is_invisible(c) || (!c.is_ascii() && c.general_category() == GeneralCategory::DecimalNumber)
}

/// Characters of the normalised text, each with the byte range of the original that it
/// comes from.
fn normal_pieces(original: &str) -> Vec<(char, Range<usize>)> {
    let mut out = Vec::with_capacity(original.len());
    let mut chars = original.char_indices().peekable();
    let mut cluster = String::new();
    while let Some((start, first)) = chars.next() {
        // A character with the combining marks that follow it: NFKC composes within it.
        cluster.clear();
        cluster.push(first);
        let mut end = start + first.len_utf8();
        while let Some(&(i, mark)) = chars.peek() {
            if !is_combining_mark(mark) || is_invisible(mark) {
                break;
            }
            cluster.push(mark);
            end = i + mark.len_utf8();
            chars.next();
        }
        if first.is_ascii() && cluster.len() == 1 {
            if !is_dropped_ascii_control(first as u8) {
                out.push((first, start..end));
            }
            continue;
        }
        for c in cluster.chars().filter(|&c| !is_invisible(c)).nfkc() {
            if is_invisible(c) {
                continue;
            }
            out.push((ascii_digit(c).unwrap_or(c), start..end));
        }
    }
    out
}

/// ASCII control characters that carry nothing readable: all but tab and line breaks.
fn is_dropped_ascii_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)) || b == 0x7f
}

/// Characters that show nothing (or nothing but a gap no wider than none) and can be
/// slipped inside an identifier unseen.
fn is_invisible(c: char) -> bool {
    if c.is_ascii() {
        return is_dropped_ascii_control(c as u8);
    }
    match c.general_category() {
        GeneralCategory::Format => true,
        GeneralCategory::Control => c != '\u{85}',
        _ => matches!(
            c,
            '\u{034F}'              // combining grapheme joiner
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{E0100}'..='\u{E01EF}'
        ),
    }
}

/// The ASCII digit of a non-ASCII decimal digit. Unicode guarantees that decimal digits
/// come in contiguous runs of ten, ascending from zero, so the value is the distance to
/// the start of the run, modulo ten.
fn ascii_digit(c: char) -> Option<char> {
    if c.is_ascii() || c.general_category() != GeneralCategory::DecimalNumber {
        return None;
    }
    let mut value = 0u32;
    let mut code = c as u32;
    while let Some(prev) = code.checked_sub(1).and_then(char::from_u32) {
        if prev.general_category() != GeneralCategory::DecimalNumber {
            break;
        }
        value += 1;
        code -= 1;
    }
    char::from_digit(value % 10, 10)
}

fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Characters an identifier is written with: the runs that a line break can split.
fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | '+' | '/')
}

/// Characters a written number is made of: digits and the separators between its groups.
fn is_number_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, ' ' | '\t' | '.' | '-' | '/' | '(' | ')' | '+')
}

/// For each character, whether it is a line break that splits one identifier in two:
/// - inside a written number, when the number runs on both sides of the break hold digits
///   and six or more together (phones have 8+, ids more; a list item number or a dose on
///   the next line is not joined to anything);
/// - between two characters of an e-mail address that the break cuts.
fn splitting_breaks(chars: &[char]) -> Vec<bool> {
    let mut cut = vec![false; chars.len()];
    let mut i = 0;
    while i < chars.len() {
        if !is_line_break(chars[i]) {
            i += 1;
            continue;
        }
        let first = i;
        while i < chars.len() && is_line_break(chars[i]) {
            i += 1;
        }
        let digits_in = |run: &mut dyn Iterator<Item = &char>| {
            run.take_while(|c| is_number_char(**c))
                .filter(|c| c.is_ascii_digit())
                .count()
        };
        let digits_before = digits_in(&mut chars[..first].iter().rev());
        let digits_after = digits_in(&mut chars[i..].iter());
        // A number may open with a bracket or a plus sign before its first digit.
        let opens_number = chars[..first]
            .iter()
            .rev()
            .find(|c| !matches!(c, ' ' | '\t'))
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '(' | ')' | '+' | '-' | '.' | '/'));
        let number = opens_number && digits_after > 0 && digits_before + digits_after >= 6;
        if number || cuts_address(chars, first, i) {
            cut[first..i].iter_mut().for_each(|c| *c = true);
        }
    }
    cut
}

/// Whether the line break at `first..after` cuts an e-mail address: it sits between two
/// characters of addresses, and the part before is a local part (an `@` follows the break)
/// or a domain that has no dot yet or ends with one. A complete address followed by a
/// line is left alone.
fn cuts_address(chars: &[char], first: usize, after: usize) -> bool {
    let (Some(&before), Some(&next)) = (first.checked_sub(1).map(|p| &chars[p]), chars.get(after))
    else {
        return false;
    };
    if !is_identifier_char(before) || !is_identifier_char(next) {
        return false;
    }
    let run_start = chars[..first]
        .iter()
        .rposition(|c| !is_identifier_char(*c))
        .map_or(0, |p| p + 1);
    let before: String = chars[run_start..first].iter().collect();
    let lower_local =
        |part: &str| part.chars().any(char::is_alphabetic) && !part.chars().any(char::is_uppercase);
    match before.rsplit_once('@') {
        // A local part cut: addresses are written in lower case, while a line that ends
        // in a capitalised word or a number is a line of its own.
        None => {
            let next: String = chars[after..]
                .iter()
                .take_while(|c| is_identifier_char(**c))
                .collect();
            match next.split_once('@') {
                Some((rest, _)) => lower_local(&before) && !rest.chars().any(char::is_uppercase),
                None => false,
            }
        }
        // A domain cut: no dot yet, or one dot that ends it ("exemple.|fr"); a domain with
        // its dots and a final one is a complete address at the end of a sentence.
        Some((_, domain)) => {
            let dots = domain.matches('.').count();
            dots == 0 || (dots == 1 && domain.ends_with('.')) || domain.ends_with('-')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn back<'a>(view: &MatchView<'_>, original: &'a str, needle: &str) -> &'a str {
        let start = view.text().find(needle).expect("needle in view");
        let (s, e) = view.to_original(start, start + needle.len());
        &original[s..e]
    }

    #[test]
    fn plain_text_is_borrowed() {
        for text in [
            "Rappeler au 06 12 34 56 78",
            "Élodie à l’hôpital, ça va ?",
            "line\nbreak",
        ] {
            let view = MatchView::of(text);
            assert!(view.is_original(), "{text}");
            assert_eq!(view.text(), text);
        }
    }

    #[test]
    fn invisible_characters_are_dropped_and_kept_in_the_span() {
        let text = "tel 06\u{200B}12\u{00AD}34\u{2060}56\u{FEFF}78 merci";
        let view = MatchView::of(text);
        assert_eq!(view.text(), "tel 0612345678 merci");
        assert_eq!(
            back(&view, text, "0612345678"),
            "06\u{200B}12\u{00AD}34\u{2060}56\u{FEFF}78"
        );
    }

    #[test]
    fn digits_of_every_script_fold_to_ascii() {
        let text = "٠٦ ١٢ / ０６ / ०६ / 𝟎𝟔 / ߀߆";
        assert_eq!(MatchView::of(text).text(), "06 12 / 06 / 06 / 06 / 06");
    }

    #[test]
    fn accents_compose_and_map_to_the_whole_letter() {
        let text = "Ame\u{301}lie Dupont";
        let view = MatchView::of(text);
        assert_eq!(view.text(), "Amélie Dupont");
        assert_eq!(back(&view, text, "Amélie"), "Ame\u{301}lie");
    }

    #[test]
    fn joined_view_bridges_breaks_inside_numbers_and_addresses_only() {
        let text = "appelle 0612\n345678 ou jean.du\r\npont@exemple.fr\nMerci\nMarie";
        let joined = MatchView::joined(text).expect("breaks to bridge");
        assert_eq!(
            joined.text(),
            "appelle 0612345678 ou jean.dupont@exemple.fr\nMerci\nMarie"
        );
        assert_eq!(back(&joined, text, "0612345678"), "0612\n345678");
        let at = joined.text().find("0612345678").unwrap();
        assert!(joined.spans_a_join(at, at + 10));
        assert!(!joined.spans_a_join(at, at + 4) && !joined.spans_a_join(at + 4, at + 10));
        assert!(MatchView::joined("Bonjour\nà tous\n2 doses").is_none());
    }

    #[test]
    fn offsets_stay_on_char_boundaries() {
        let text = "é\u{200B}١\u{FE0F}ﬁ 𝟗";
        let view = MatchView::of(text);
        for start in 0..view.text().len() {
            for end in start + 1..=view.text().len() {
                let (s, e) = view.to_original(start, end);
                assert!(text.is_char_boundary(s) && text.is_char_boundary(e) && s < e);
            }
        }
    }
}
