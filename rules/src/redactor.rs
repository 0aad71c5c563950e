//! Applies a rule set to a text: collect candidate matches, keep the most confident
//! non-overlapping ones, and rewrite the text with placeholders.

use serde::Serialize;

use crate::gate::{Gate, GateIndex};
use crate::normalise::{normalised, MatchView};
use crate::prescan::Prescan;
use crate::rule::{CompiledRule, RuleSet};

/// How a found identifier is rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReplaceMode {
    /// `[PHONE]`, `[NIR]`: readers still see what kind of thing was there.
    #[default]
    Placeholder,
    /// Every character becomes `*` except whitespace, keeping the layout.
    Mask,
    /// `[PERSON-1a2b3c4d]`: the same identifier gives the same token in every post (so a
    /// moderator can see that two posts concern one patient) without revealing it; the
    /// token is a keyed HMAC-SHA256, so it cannot be reversed by trying candidates
    /// without the key.
    Pseudonym(PseudonymKey),
}

/// Secret key of the pseudonym mode. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PseudonymKey(Vec<u8>);

/// Shorter keys are refused: they could be guessed.
pub const MIN_KEY_BYTES: usize = 16;

impl PseudonymKey {
    /// A key of these bytes; an error when shorter than [`MIN_KEY_BYTES`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, String> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "pseudonym key must be at least {MIN_KEY_BYTES} bytes"
            ));
        }
        Ok(PseudonymKey(bytes))
    }

    /// 8 hex digits of HMAC-SHA256(key, kind:normalised identifier). Separators and case
    /// are ignored so that "06 12 34 56 78" and "0612345678" get the same token.
    pub fn token(&self, kind: &str, identifier: &str) -> String {
        use hmac::{Hmac, Mac};
        let normalised: String = identifier
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(normalised.as_bytes());
        mac.finalize().into_bytes()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(<secret>)")
    }
}

/// One identifier found in the original text. Offsets count Unicode code points of the
/// original text, end exclusive (the convention of the datasets and of Python `str`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What was found (PHONE, PERSON, ...): the kind of the rule that found it.
    pub kind: String,
    /// Offset of its first character.
    pub start: usize,
    /// Offset just past its last character.
    pub end: usize,
    /// Id of the rule or name list that found it.
    pub rule: String,
    /// How sure that rule is, 0..1.
    pub confidence: f32,
}

/// A span found by something other than the rules (the token tagger), handed to
/// [`Redactor::redact_with`]. Offsets in code points, end exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraSpan {
    /// Offset of its first character.
    pub start: usize,
    /// Offset just past its last character.
    pub end: usize,
    /// What it is (PERSON, LOCATION, ...): its placeholder too.
    pub kind: String,
    /// What found it, reported as the finding's rule (e.g. `tagger`).
    pub source: String,
    /// How sure that source is, 0..1.
    pub confidence: f32,
}

/// Byte offset of every code point of `text`, and of its end.
fn char_to_byte_offsets(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect()
}

/// A text with its identifiers rewritten, and what was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Redaction {
    /// The text, each finding rewritten as the [`ReplaceMode`] says.
    pub text: String,
    /// The identifiers found, in the order of the text.
    pub findings: Vec<Finding>,
}

/// Applies a [`RuleSet`] to texts: finds identifiers and rewrites them.
#[derive(Debug, Clone)]
pub struct Redactor {
    rules: RuleSet,
    threshold: f32,
    mode: ReplaceMode,
    /// Which rules could match a text, found in one pass (see [`crate::gate`]).
    gates: GateIndex,
    /// Which rules do match a text, in one pass (see [`crate::prescan`]); `None` when the
    /// patterns could not be compiled together.
    prescan: Option<std::sync::Arc<Prescan>>,
    /// Gates and ASCII boundaries on (see [`Redactor::without_fast_paths`]).
    fast: bool,
    /// Names that are never a patient's (see [`Redactor::with_not_a_patient`]), in their
    /// [`not_a_patient_key`] form.
    not_a_patient: std::collections::HashSet<String>,
}

/// How a name is compared with the not-a-patient list: normalised as the rules read text,
/// lower case, runs of spaces as one.
fn not_a_patient_key(name: &str) -> String {
    normalised(name)
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `view` rank of spans handed in by other finders: after both views' rule matches.
const EXTRA_VIEW: u8 = 2;

/// A match before overlap resolution, in byte offsets.
#[derive(Clone, Copy)]
struct Candidate<'r> {
    /// 0 for a match in the text's view, 1 in its joined view (line breaks bridged), 2 for
    /// a span handed in ([`ExtraSpan`]): each only adds what those before it leave
    /// uncovered, so a line that follows an identifier never changes how that identifier
    /// is read, and a tagger never overrides a rule.
    view: u8,
    id: &'r str,
    kind: &'r str,
    placeholder: &'r str,
    start: usize,
    end: usize,
    confidence: f32,
}

impl Redactor {
    /// Threshold 0.5 and placeholders: what `vigie` uses unless configured otherwise.
    pub fn new(rules: RuleSet) -> Self {
        let gates = GateIndex::new(
            rules
                .rules()
                .iter()
                .map(|r| Gate::of_pattern(&r.spec.pattern))
                .collect(),
        );
        // The faster forms of the patterns (ASCII boundaries and digits), as the texts that
        // fit them are the ones scanned.
        let prescan = Prescan::new(
            rules
                .rules()
                .iter()
                .enumerate()
                .map(|(i, r)| (i, r.regex.as_str())),
        )
        .map(std::sync::Arc::new);
        Redactor {
            rules,
            threshold: 0.5,
            mode: ReplaceMode::Placeholder,
            gates,
            prescan,
            fast: true,
            not_a_patient: Default::default(),
        }
    }

    /// Runs every rule on every text with its pattern as written: no gates, no ASCII word
    /// boundaries. Slower; the reference the fast paths are tested against.
    pub fn without_fast_paths(mut self) -> Self {
        self.fast = false;
        self
    }

    /// Keeps only matches whose confidence is at least `threshold` (0.5 by default).
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// Rewrites identifiers as `mode` says (placeholders by default).
    pub fn with_mode(mut self, mode: ReplaceMode) -> Self {
        self.mode = mode;
        self
    }

    /// Leaves these names in place wherever a rule takes them for an identifier: public
    /// figures and bodies named in the news (a minister, WHO, a vaccine maker) that a
    /// programme does not want hidden. Compared whole, ignoring case, spacing and the
    /// disguises [`MatchView`] undoes. Empty unless configured: by default every name is
    /// taken for a patient's.
    pub fn with_not_a_patient<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.not_a_patient = names
            .into_iter()
            .map(|n| not_a_patient_key(n.as_ref()))
            .filter(|n| !n.is_empty())
            .collect();
        self
    }

    /// The rules it applies.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Redacts with every rule (the language is unknown).
    pub fn redact(&self, text: &str) -> Redaction {
        self.redact_in(text, None)
    }

    /// Redacts a text known to be in `lang` (fr, en, ...; `fr+en` for a post that mixes
    /// two): rules meant for other languages are skipped.
    ///
    /// The rules match on the [`MatchView`] of the text (invisible characters dropped,
    /// digits of every script folded, NFKC), and also on its [`MatchView::joined`] view
    /// when a line break cuts through a number or an address; each match is mapped back to
    /// the original text, so what is rewritten covers the disguise with the identifier.
    pub fn redact_in(&self, text: &str, lang: Option<&str>) -> Redaction {
        self.redact_with(text, lang, &[])
    }

    /// [`Redactor::redact_in`], with spans found by other means (a learned tagger) taken
    /// as candidates beside the rules' matches: where they overlap, the rule's match is
    /// kept whole and the extra span's parts outside it stay redacted too, so the union of
    /// what both found is hidden.
    pub fn redact_with(&self, text: &str, lang: Option<&str>, extra: &[ExtraSpan]) -> Redaction {
        let mut candidates = Vec::new();
        if !extra.is_empty() {
            let bytes = char_to_byte_offsets(text);
            for span in extra {
                let (Some(&start), Some(&end)) = (bytes.get(span.start), bytes.get(span.end))
                else {
                    continue;
                };
                if start < end && span.confidence >= self.threshold {
                    candidates.push(Candidate {
                        // After every rule match: where they overlap, the rule's reading
                        // (its kind, its bounds) stands, and the extra span adds the parts
                        // it leaves uncovered.
                        view: EXTRA_VIEW,
                        id: &span.source,
                        kind: &span.kind,
                        placeholder: &span.kind,
                        start,
                        end,
                        confidence: span.confidence,
                    });
                }
            }
        }
        let views = std::iter::once(MatchView::of(text)).chain(MatchView::joined(text));
        for (i, view) in (0u8..).zip(views) {
            let found = self.candidates(view.text(), lang).into_iter();
            // What the joined view finds without crossing a removed break, the plain view
            // found already (or rejected in its context).
            let found = found.filter(|c| i == 0 || view.spans_a_join(c.start, c.end));
            candidates.extend(found.map(|c| {
                let (start, end) = view.to_original(c.start, c.end);
                Candidate {
                    view: i,
                    start,
                    end,
                    ..c
                }
            }));
        }
        if !self.not_a_patient.is_empty() {
            candidates.retain(|c| {
                !self
                    .not_a_patient
                    .contains(&not_a_patient_key(&text[c.start..c.end]))
            });
        }
        let kept = resolve_overlaps(text, candidates);
        self.rewrite(text, kept)
    }

    fn candidates<'r>(&'r self, text: &str, lang: Option<&str>) -> Vec<Candidate<'r>> {
        let mut out = Vec::new();
        // The faster form of each pattern takes `\d` for ASCII digits (`word_boundaries`).
        let ascii_digits = self.fast && crate::word_boundaries::fits_rewritten(text);
        let open = self.fast.then(|| self.open_rules(text, ascii_digits));
        for (i, rule) in self.rules.rules().iter().enumerate() {
            if open.as_ref().is_some_and(|o| !o[i]) || !rule.runs() {
                continue;
            }
            if let (Some(l), Some(langs)) = (lang, &rule.spec.languages) {
                if !crate::includes_language(l, langs) {
                    continue;
                }
            }
            let regex = if ascii_digits {
                &rule.regex
            } else {
                rule.regex_any_digits()
            };
            // Capture groups cost a second engine run per match: only ask for them when the
            // rule redacts a group rather than the whole match.
            let matches: Box<dyn Iterator<Item = regex::Match<'_>>> = if rule.spec.group == 0 {
                Box::new(regex.find_iter(text))
            } else {
                Box::new(
                    regex
                        .captures_iter(text)
                        .filter_map(|caps| caps.get(rule.spec.group)),
                )
            };
            for m in matches {
                if m.is_empty() || !rule.listed_accepts(m.as_str()) {
                    continue;
                }
                let (start, end, confidence) = match rule.spec.validator {
                    Some(v) if !v.check(m.as_str()) => {
                        match validated_part(rule, v, text, m.start(), m.end()) {
                            Some((s, e)) => (s, e, rule.spec.confidence),
                            None => match rule.spec.unvalidated_confidence {
                                Some(c) => (m.start(), m.end(), c),
                                None => continue,
                            },
                        }
                    }
                    _ => (m.start(), m.end(), rule.spec.confidence),
                };
                if confidence >= self.threshold && !rule.excluded_by_context(text, start, end) {
                    out.push(candidate(rule, start, end, confidence));
                }
            }
        }
        for finder in self.rules.name_finders() {
            let spec = &finder.spec;
            for (start, end, confidence) in finder.find(text, lang) {
                if confidence >= self.threshold {
                    out.push(Candidate {
                        view: 0,
                        id: &spec.id,
                        kind: &spec.kind,
                        placeholder: &spec.kind,
                        start,
                        end,
                        confidence,
                    });
                }
            }
        }
        out
    }

    /// Which rules to run on `text`: those the prescan found, where it can tell, and
    /// those whose gate opens otherwise.
    fn open_rules(&self, text: &str, ascii_digits: bool) -> Vec<bool> {
        let Some(prescan) = self.prescan.as_ref().filter(|_| ascii_digits) else {
            return self.gates.open(text);
        };
        // Rules the prescan leaves out keep their gate's answer; so do all when it gives up
        // (it then leaves `open` as it was).
        if prescan.covers().len() < self.rules.rules().len() {
            let mut open = self.gates.open(text);
            prescan.scan(text, &mut open);
            return open;
        }
        let mut open = vec![false; self.rules.rules().len()];
        if prescan.scan(text, &mut open) {
            open
        } else {
            self.gates.open(text)
        }
    }

    fn rewrite(&self, text: &str, kept: Vec<Candidate<'_>>) -> Redaction {
        let mut redacted = String::with_capacity(text.len());
        let mut findings = Vec::with_capacity(kept.len());
        // Byte -> code point offsets, walked once since candidates are sorted by start.
        let mut byte_pos = 0;
        let mut char_pos = 0;
        let mut to_chars = |byte: usize| {
            char_pos += text[byte_pos..byte].chars().count();
            byte_pos = byte;
            char_pos
        };
        let mut copied = 0;
        for c in kept {
            redacted.push_str(&text[copied..c.start]);
            match &self.mode {
                ReplaceMode::Placeholder => {
                    redacted.push('[');
                    redacted.push_str(c.placeholder);
                    redacted.push(']');
                }
                ReplaceMode::Mask => redacted.extend(text[c.start..c.end].chars().map(|ch| {
                    if ch.is_whitespace() {
                        ch
                    } else {
                        '*'
                    }
                })),
                ReplaceMode::Pseudonym(key) => {
                    redacted.push('[');
                    redacted.push_str(c.placeholder);
                    redacted.push('-');
                    // The identifier as the rules read it: a disguised and a plain writing
                    // of one number get one pseudonym.
                    let identifier = normalised(&text[c.start..c.end]);
                    redacted.push_str(&key.token(c.kind, &identifier));
                    redacted.push(']');
                }
            }
            copied = c.end;
            let start = to_chars(c.start);
            let end = to_chars(c.end);
            findings.push(Finding {
                kind: c.kind.to_string(),
                start,
                end,
                rule: c.id.to_string(),
                confidence: c.confidence,
            });
        }
        redacted.push_str(&text[copied..]);
        Redaction {
            text: redacted,
            findings,
        }
    }
}

/// A match that fails its checksum may have swallowed neighbouring digits ("9 4539 1488
/// 0343 6467 9"): drop whole groups (separated by spaces, dashes or dots) from either end,
/// fewest first, and return the first sub-span that the rule still matches entirely and
/// whose checksum holds.
fn validated_part(
    rule: &CompiledRule,
    v: crate::Validator,
    text: &str,
    start: usize,
    end: usize,
) -> Option<(usize, usize)> {
    if rule.spec.group != 0 {
        return None;
    }
    let span = &text[start..end];
    // Byte ranges of the groups inside the span.
    let mut groups = Vec::new();
    let mut group_start = None;
    for (i, c) in span.char_indices() {
        let sep = c.is_whitespace() || c == '-' || c == '.';
        match (sep, group_start) {
            (false, None) => group_start = Some(i),
            (true, Some(g)) => {
                groups.push((g, i));
                group_start = None;
            }
            _ => {}
        }
    }
    if let Some(g) = group_start {
        groups.push((g, span.len()));
    }
    let n = groups.len();
    for dropped in 1..n {
        for from_start in 0..=dropped {
            let (first, last) = (from_start, n - 1 - (dropped - from_start));
            // Digits typed one by one ("2 1 5 6 3 ...") are one number, not several.
            if groups[first..=last].iter().any(|(a, b)| b - a < 2) {
                continue;
            }
            let (s, e) = (groups[first].0, groups[last].1);
            let part = &span[s..e];
            if rule.anchored().is_match(part) && v.check(part) {
                return Some((start + s, start + e));
            }
        }
    }
    None
}

fn candidate(rule: &CompiledRule, start: usize, end: usize, confidence: f32) -> Candidate<'_> {
    Candidate {
        view: 0,
        id: &rule.spec.id,
        kind: &rule.spec.kind,
        placeholder: rule.placeholder(),
        start,
        end,
        confidence,
    }
}

/// Keeps the matches of the plain view before those of the joined one, and of each the most
/// confident matches (then the longest, then the earliest) whole; of a match
/// that overlaps one kept before it, the parts outside keep being redacted under its own
/// kind (a name run "Awa DIOP March" losing "March 3rd" to a date still hides "Awa DIOP"),
/// trimmed to their letters and digits, when two or more remain: a lone letter left over is
/// mostly a title ("M." of "M. Dupont", whose name a title rule took). Returns them sorted by
/// position.
fn resolve_overlaps<'r>(text: &str, mut candidates: Vec<Candidate<'r>>) -> Vec<Candidate<'r>> {
    candidates.sort_by(|a, b| {
        a.view
            .cmp(&b.view)
            .then(b.confidence.total_cmp(&a.confidence))
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Candidate<'r>> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if kept.iter().all(|k| c.end <= k.start || c.start >= k.end) {
            kept.push(c);
            continue;
        }
        for (start, end) in uncovered(&kept, c.start, c.end) {
            let piece = &text[start..end];
            let trimmed = piece.trim_matches(|ch: char| !ch.is_alphanumeric());
            if trimmed.chars().filter(|ch| ch.is_alphanumeric()).count() >= 2
                && !is_linking_word(trimmed)
            {
                let start = start
                    + (piece.len()
                        - piece
                            .trim_start_matches(|ch: char| !ch.is_alphanumeric())
                            .len());
                kept.push(Candidate {
                    start,
                    end: start + trimmed.len(),
                    ..c
                });
            }
        }
    }
    kept.sort_by_key(|c| c.start);
    merge_extra_with_neighbours(text, kept)
}

/// Joins a span handed in (the tagger's) to a neighbour of the same kind that only
/// white space separates from it: what overlapped a rule's match and was cut around it
/// is one entity ("CHU de" + "Thiès"), redacted as one, under the rule's name.
fn merge_extra_with_neighbours<'r>(text: &str, kept: Vec<Candidate<'r>>) -> Vec<Candidate<'r>> {
    let mut out: Vec<Candidate<'r>> = Vec::with_capacity(kept.len());
    for c in kept {
        if let Some(last) = out.last_mut() {
            let touching = last.kind == c.kind
                && (last.view == EXTRA_VIEW || c.view == EXTRA_VIEW)
                && last.end <= c.start
                && text[last.end..c.start].chars().all(char::is_whitespace);
            if touching {
                if last.view == EXTRA_VIEW {
                    last.id = c.id;
                    last.view = c.view;
                }
                last.end = c.end;
                last.confidence = last.confidence.max(c.confidence);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Prepositions and articles that a wider span took with a name ("de Beaujon" from the
/// tagger, "Beaujon" from a rule that knows it is a hospital): left over alone, they
/// identify no one.
fn is_linking_word(piece: &str) -> bool {
    const LINKING: &[&str] = &[
        "de", "du", "des", "la", "le", "les", "à", "au", "aux", "en", "of", "the", "at", "in",
        "to", "from",
    ];
    let lower = piece.to_lowercase();
    LINKING.contains(&lower.as_str())
}

/// The parts of `start..end` that no kept span covers.
fn uncovered(kept: &[Candidate<'_>], start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut covered: Vec<(usize, usize)> = kept
        .iter()
        .filter(|k| k.start < end && k.end > start)
        .map(|k| (k.start, k.end))
        .collect();
    covered.sort();
    let mut pieces = Vec::new();
    let mut at = start;
    for (a, b) in covered {
        if a > at {
            pieces.push((at, a));
        }
        at = at.max(b);
    }
    if at < end {
        pieces.push((at, end));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Redactor {
        Redactor::new(RuleSet::builtin().unwrap())
    }

    #[test]
    fn four_identifiers_in_one_post_are_replaced() {
        let text = "Patient NIR 1 85 05 2A 123 456 33, NHS 943 476 5919, tél +221 77 123 45 67, mail awa.diop@example.sn";
        let r = builtin().redact(text);
        for secret in [
            "1 85 05 2A 123 456 33",
            "943 476 5919",
            "+221 77 123 45 67",
            "awa.diop@example.sn",
        ] {
            assert!(!r.text.contains(secret), "{secret} survived in {}", r.text);
        }
        let kinds: Vec<&str> = r.findings.iter().map(|f| f.kind.as_str()).collect();
        assert!(
            kinds.contains(&"NATIONAL_ID") && kinds.contains(&"PHONE") && kinds.contains(&"EMAIL"),
            "{kinds:?}"
        );
        assert!(
            r.text.contains("[NHS]") && r.text.contains("[PHONE]") && r.text.contains("[EMAIL]"),
            "{}",
            r.text
        );
    }

    #[test]
    fn offsets_count_code_points_of_the_original() {
        let text = "Évacué: écrivez à éloïse@exemple.fr dès demain";
        let r = builtin().redact(text);
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        let f = &r.findings[0];
        let span: String = text.chars().skip(f.start).take(f.end - f.start).collect();
        assert_eq!(span, "éloïse@exemple.fr");
        assert_eq!(r.text, "Évacué: écrivez à [EMAIL] dès demain");
    }

    #[test]
    fn mask_mode_keeps_layout() {
        let r = builtin()
            .with_mode(ReplaceMode::Mask)
            .redact("call 07700 900123 now");
        assert_eq!(
            r.text.chars().count(),
            "call 07700 900123 now".chars().count()
        );
        assert!(r.text.contains("***** ******"), "{}", r.text);
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_secret() {
        let key = PseudonymKey::new(*b"0123456789abcdef-test-key").unwrap();
        let r = builtin().with_mode(ReplaceMode::Pseudonym(key.clone()));
        let a = r.redact("appeler le 06 12 34 56 78 svp").text;
        let b = r.redact("son numéro: 0612345678.").text;
        let token = a
            .split('[')
            .nth(1)
            .and_then(|t| t.split(']').next())
            .unwrap()
            .to_string();
        assert!(
            token.starts_with("PHONE-") && token.len() == "PHONE-".len() + 8,
            "{a}"
        );
        assert!(b.contains(&token), "same number, same token: {a} / {b}");
        assert!(!r.redact("appeler le 06 12 34 56 79").text.contains(&token));
        let other = builtin().with_mode(ReplaceMode::Pseudonym(
            PseudonymKey::new(*b"another-key-of-16+bytes").unwrap(),
        ));
        assert!(
            !other
                .redact("appeler le 06 12 34 56 78")
                .text
                .contains(&token),
            "the token depends on the key"
        );
        assert_eq!(format!("{key:?}"), "PseudonymKey(<secret>)");
        assert!(PseudonymKey::new(*b"short").is_err());
    }

    #[test]
    fn a_checksum_is_found_inside_a_longer_digit_run() {
        let r = builtin().redact("né le 9 4539 1488 0343 6467 9 ok");
        assert!(!r.text.contains("4539 1488 0343 6467"), "{}", r.text);
        assert!(r.text.contains("[CARD]"), "{}", r.text);
    }

    #[test]
    fn a_losing_overlap_keeps_its_uncovered_part() {
        let mut rules = RuleSet::default();
        let toml = "[[rule]]\nid='strong'\nkind='DATE'\npattern='March 3rd'\nconfidence=0.9\nmatch=['March 3rd']\n\
                    [[rule]]\nid='weak'\nkind='PERSON'\npattern='Awa DIOP March'\nconfidence=0.8\nmatch=['Awa DIOP March']\n";
        rules.add_toml("t.toml", toml).unwrap();
        let r = Redactor::new(rules).redact("vu Awa DIOP March 3rd");
        assert_eq!(r.text, "vu [PERSON] [DATE]");
        let kinds: Vec<(&str, usize, usize)> = r
            .findings
            .iter()
            .map(|f| (f.kind.as_str(), f.start, f.end))
            .collect();
        assert_eq!(kinds, vec![("PERSON", 3, 11), ("DATE", 12, 21)]);
    }

    #[test]
    fn a_linking_word_left_over_from_a_tagger_span_stays_text() {
        // The tagger read "de Beaujon" as a town; the care-unit rule reads "Beaujon" as the
        // hospital. "de" alone is no identifier and stays.
        let text = "suivi dans le service d'hématologie de Beaujon depuis mai";
        let start = text.chars().count() - "de Beaujon depuis mai".chars().count();
        let extra = [ExtraSpan {
            start,
            end: start + "de Beaujon".len(),
            kind: "LOCATION".into(),
            source: "tagger".into(),
            confidence: 0.9,
        }];
        let r = builtin().redact_with(text, Some("fr"), &extra);
        assert_eq!(
            r.text,
            "suivi dans le service d'hématologie de [HOSPITAL] depuis mai"
        );
    }

    #[test]
    fn threshold_drops_weak_matches() {
        let strict = builtin().with_threshold(1.01);
        let r = strict.redact("mail a@b.fr");
        assert!(r.findings.is_empty());
        assert_eq!(r.text, "mail a@b.fr");
    }

    #[test]
    fn clean_text_is_untouched() {
        let text = "Le vaccin contre la rougeole est sûr, 2 doses à 12 et 18 mois.";
        let r = builtin().redact(text);
        assert_eq!(r.text, text, "{:?}", r.findings);
    }
}
