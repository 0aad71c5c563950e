//! Redaction stage: replaces patient identifiers using the `rules` crate.

use vigie_models::tagger::TaggedSpan;
use vigie_rules::{ExtraSpan, Redactor, ReplaceMode, RuleSet};

use crate::contract::RedactionSpan;

/// Kinds that point at one person by themselves (a date or a place does not).
pub const DIRECT_IDENTIFIERS: &[&str] = &[
    "PERSON",
    "EMAIL",
    "PHONE",
    "NATIONAL_ID",
    "PATIENT_ID",
    "VISIT_ID",
    "FINANCIAL_ID",
    "ADDRESS",
    "IP_ADDRESS",
    "URL_ID",
];

/// What finds a span in the records' `rule` field when the token tagger did.
pub const TAGGER_RULE: &str = "tagger";

/// Words that make an organisation a health facility, the only organisations redacted:
/// a hospital or a health centre points at where a patient is, while a ministry, an
/// agency or a vaccine maker named in a post points at no one.
const FACILITY_WORDS: &[&str] = &[
    "hôpital",
    "hopital",
    "hospital",
    "hôpitaux",
    "hospitals",
    "clinique",
    "clinic",
    "polyclinique",
    "chu",
    "chr",
    "chru",
    "chi",
    "centre hospitalier",
    "center hospitalier",
    "centre de santé",
    "centre de sante",
    "health centre",
    "health center",
    "medical centre",
    "medical center",
    "dispensaire",
    "maternité",
    "maternite",
    "maternity",
    "ehpad",
    "infirmary",
    "poste de santé",
    "case de santé",
    "cscom",
    "csps",
    "hosp",
    "nursing home",
    "care home",
    "ward",
];

/// The tagger's spans that are redacted, as the kinds the rules use: every PERSON,
/// LOCATION and DATE; an ORG only when it names a health facility (as HOSPITAL).
pub fn tagger_spans(text: &str, tagged: &[TaggedSpan]) -> Vec<ExtraSpan> {
    let chars: Vec<char> = if tagged.iter().any(|t| t.label == "ORG") {
        text.chars().collect()
    } else {
        Vec::new()
    };
    tagged
        .iter()
        .filter_map(|t| {
            let kind = match t.label.as_str() {
                "PERSON" | "LOCATION" | "DATE" => t.label.clone(),
                "ORG" => {
                    let name: String = chars.get(t.start..t.end)?.iter().collect();
                    let name = name.to_lowercase();
                    let facility = FACILITY_WORDS.iter().any(|w| {
                        name.split(|c: char| !c.is_alphanumeric())
                            .any(|word| word == *w)
                            || (w.contains(' ') && name.contains(w))
                    });
                    if !facility {
                        return None;
                    }
                    "HOSPITAL".to_string()
                }
                _ => return None,
            };
            Some(ExtraSpan {
                start: t.start,
                end: t.end,
                kind,
                source: TAGGER_RULE.to_string(),
                confidence: t.score,
            })
        })
        .collect()
}

/// Zipf frequency from which a word that no name list holds is an ordinary word (3.0:
/// about once per million words, *smoker*, *admin*, *wean*).
const COMMON_WORD_ZIPF: f32 = 3.0;

/// Whether a span the tagger takes for a person could be a name by the lists: not when
/// every word of it is a clinical word (Swan, Foley) or a common word that no name list
/// holds (SMOKER, ADMIN, *wean*), the shorthand of notes typed in capitals. A word no list
/// knows at all (Okonkwo, Ikechukwu) stays a name: that is what the tagger is for.
fn could_be_a_name(
    text: &str,
    span: &ExtraSpan,
    finders: &[std::sync::Arc<vigie_rules::names::NameFinder>],
) -> bool {
    let name: String = text
        .chars()
        .skip(span.start)
        .take(span.end - span.start)
        .collect();
    name.split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() >= 2)
        .any(|word| {
            let profiles: Vec<_> = finders.iter().map(|f| f.word_profile(word)).collect();
            let clinical = profiles.iter().any(|p| p.clinical);
            let listed = profiles.iter().any(|p| p.name);
            let zipf = profiles.iter().map(|p| p.zipf).fold(0.0, f32::max);
            !clinical && (listed || zipf < COMMON_WORD_ZIPF)
        })
}

/// Month names and their abbreviations, French and English (folded: no accents).
const MONTH_WORDS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "janvier",
    "fevrier",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "aout",
    "septembre",
    "octobre",
    "novembre",
    "decembre",
    "janv",
    "fevr",
    "avr",
    "juil",
];

/// Whether a span the tagger takes for a date could be one that locates a patient in
/// time: a digit or a month's name in it, and three letters or digits at least. A bare
/// one- or two-digit number (a room, a dose), a two-letter word (*on*, *of*), an ordinal
/// with nothing to count ("the second dose") or the word *date* itself is no date.
fn could_be_a_date(text: &str, span: &ExtraSpan) -> bool {
    let date: String = text
        .chars()
        .skip(span.start)
        .take(span.end - span.start)
        .collect();
    if date.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
        return false;
    }
    date.chars().any(|c| c.is_numeric())
        || date
            .split(|c: char| !c.is_alphabetic())
            .any(|w| MONTH_WORDS.contains(&vigie_rules::names::fold(w).to_lowercase().as_str()))
}

/// A span the tagger takes for a person, without the titles and cue words it opens with
/// ("Ms Adaeze Hughes" → "Adaeze Hughes", "Dr. Adeyemi" → "Adeyemi"); None when nothing
/// else is left ("Dr", "DOB").
fn without_leading_cues(
    text: &str,
    span: &ExtraSpan,
    finders: &[std::sync::Arc<vigie_rules::names::NameFinder>],
) -> Option<ExtraSpan> {
    let chars: Vec<char> = text.chars().collect();
    let mut start = span.start;
    loop {
        let word_end = (start..span.end)
            .find(|&i| !chars[i].is_alphabetic())
            .unwrap_or(span.end);
        if word_end == start {
            break;
        }
        let word: String = chars[start..word_end].iter().collect();
        if !finders.iter().any(|f| f.word_profile(&word).cue) {
            break;
        }
        start = (word_end..span.end)
            .find(|&i| chars[i].is_alphabetic())
            .unwrap_or(span.end);
    }
    (start < span.end).then(|| ExtraSpan {
        start,
        ..span.clone()
    })
}

/// Below this confidence a finding in an id is a context-free guess (a long digit group of
/// a UUID read as a record number), not evidence that the id exposes someone.
const ID_CHECK_CONFIDENCE: f32 = 0.8;

pub struct RedactionStage {
    redactor: Redactor,
}

pub struct Redacted {
    pub text: String,
    pub spans: Vec<RedactionSpan>,
}

impl RedactionStage {
    pub fn new(rules: RuleSet, threshold: f32, mode: ReplaceMode) -> Self {
        RedactionStage {
            redactor: Redactor::new(rules)
                .with_threshold(threshold)
                .with_mode(mode),
        }
    }

    /// Leaves the listed public names in place (see `Redactor::with_not_a_patient`).
    pub fn with_not_a_patient(mut self, names: &[String]) -> Self {
        self.redactor = self.redactor.with_not_a_patient(names);
        self
    }

    /// `lang`: the language stage's verdict (fr, en), which enables language-specific rules.
    pub fn redact(&self, text: &str, lang: Option<&str>) -> Redacted {
        self.redact_tagged(text, lang, &[])
    }

    /// [`RedactionStage::redact`] with the token tagger's spans beside the rules (see
    /// [`tagger_spans`] for which of them are redacted).
    pub fn redact_tagged(&self, text: &str, lang: Option<&str>, tagged: &[TaggedSpan]) -> Redacted {
        let mut extra = tagger_spans(text, tagged);
        let finders = self.redactor.rules().name_finders();
        if !finders.is_empty() {
            extra = extra
                .into_iter()
                .filter_map(|span| match span.kind.as_str() {
                    "PERSON" => without_leading_cues(text, &span, finders)
                        .filter(|span| could_be_a_name(text, span, finders)),
                    _ => Some(span),
                })
                .collect();
        }
        extra.retain(|span| span.kind != "DATE" || could_be_a_date(text, span));
        let r = self.redactor.redact_with(text, lang, &extra);
        Redacted {
            text: r.text,
            spans: r
                .findings
                .into_iter()
                .map(|f| RedactionSpan {
                    kind: f.kind,
                    start: f.start,
                    end: f.end,
                    rule: f.rule,
                })
                .collect(),
        }
    }

    /// Whether a post id carries what the rules take for a direct identifier (an e-mail
    /// address, a phone number, a national, patient or card number, a name). Ids are copied
    /// into every record, Kafka key and log line, so such an id is refused rather than
    /// passed on; so are weak guesses (see `ID_CHECK_CONFIDENCE`). Dates and places are common in ids ("post-2024-05-01") and identify no one
    /// alone. Ids made of digits only are platforms' numeric ids and pass: checksum rules
    /// alone would take one in ten of them for a card number.
    pub fn id_exposes_identifier(&self, id: &str) -> bool {
        if id.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        // Separators in ids stand where spaces would in text ("jean.dupont@x.fr-17").
        let spaced: String = id
            .chars()
            .map(|c| {
                if matches!(c, '_' | '|' | ':' | ',' | ';' | '=' | '&') {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        [id, spaced.as_str()].iter().any(|view| {
            self.redactor.redact(view).findings.iter().any(|f| {
                f.confidence >= ID_CHECK_CONFIDENCE && DIRECT_IDENTIFIERS.contains(&f.kind.as_str())
            })
        })
    }

    /// Redacts a payload that could not be parsed, for dead-letter records: decoded
    /// leniently and cut to `max_chars` (after redaction, so no identifier is cut in half
    /// and left readable).
    pub fn redact_payload(&self, bytes: &[u8], max_chars: usize) -> String {
        let lossy = String::from_utf8_lossy(bytes);
        truncate_chars(&self.redactor.redact(&lossy).text, max_chars)
    }
}

/// At most `max` characters (Unicode scalar values), with an ellipsis when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut cut: String = s.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_payloads_are_redacted() {
        let stage = RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder);
        let r = stage.redact("Rappeler Mme Diallo au 06 12 34 56 78", Some("fr"));
        assert_eq!(r.text, "Rappeler Mme [PERSON] au [PHONE]");
        assert_eq!(r.spans.len(), 2);
        let p = stage.redact_payload(b"{\"id\":1,\"text\":\"tel 06 12 34 56 78\xff", 1000);
        assert!(!p.contains("06 12 34 56 78"), "{p}");
        let cut = stage.redact_payload("a".repeat(50).as_bytes(), 10);
        assert_eq!(cut.chars().count(), 11);
    }

    #[test]
    fn tagged_names_places_and_facilities_are_redacted_and_agencies_are_not() {
        let stage = RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder);
        let text = "took aminata to the CHU de Thiès, then OMS called";
        let span = |needle: &str, label: &str| tagged(text, needle, label);
        let tagged = [
            span("aminata", "PERSON"),
            span("CHU de Thiès", "ORG"),
            span("OMS", "ORG"),
        ];
        let r = stage.redact_tagged(text, Some("en"), &tagged);
        assert_eq!(r.text, "took [PERSON] to the [HOSPITAL], then OMS called");
        // The name only the tagger found is its own; the hospital a rule found in part
        // is one span, under the rule's name.
        assert_eq!(r.spans[0].rule, TAGGER_RULE);
        assert_eq!(r.spans.len(), 2);
        // Below the redaction threshold a tagged span stays.
        let weak = [TaggedSpan {
            score: 0.3,
            ..span("aminata", "PERSON")
        }];
        assert!(stage
            .redact_tagged(text, Some("en"), &weak)
            .text
            .contains("aminata"));
    }

    fn tagged(text: &str, needle: &str, label: &str) -> TaggedSpan {
        let start = text[..text.find(needle).unwrap()].chars().count();
        TaggedSpan {
            start,
            end: start + needle.chars().count(),
            label: label.into(),
            score: 0.9,
        }
    }

    #[test]
    fn tagged_dates_need_a_digit_or_a_month() {
        let stage = RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder);
        let text = "vu on 7 puis le lendemain, the second dose late in Sept, Date: 2e";
        let at = |needle: &str| tagged(text, needle, "DATE");
        let r = stage.redact_tagged(
            text,
            Some("fr+en"),
            &[
                at("on"),
                at("7"),
                at("lendemain"),
                at("the second"),
                at("late in Sept"),
                at("Date"),
            ],
        );
        assert_eq!(
            r.text,
            "vu on 7 puis le lendemain, the second dose [DATE], Date: 2e"
        );
    }

    /// The built-in rules with the shared gazetteers, as the pipeline loads them.
    fn stage_with_gazetteers() -> RedactionStage {
        let mut rules = RuleSet::builtin().unwrap();
        let gazetteers =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/gazetteers");
        rules.load_gazetteers(&gazetteers).unwrap();
        RedactionStage::new(rules, 0.5, ReplaceMode::Placeholder)
    }

    #[test]
    fn tagged_persons_lose_the_titles_they_open_with() {
        let stage = stage_with_gazetteers();
        let text = "Ms Adaeze Okonkwo called; Dr. Ngozi Eze too. DOB: unknown";
        let r = stage.redact_tagged(
            text,
            Some("en"),
            &[
                tagged(text, "Ms Adaeze Okonkwo", "PERSON"),
                tagged(text, "Dr. Ngozi Eze", "PERSON"),
                tagged(text, "DOB", "PERSON"),
            ],
        );
        assert_eq!(r.text, "Ms [PERSON] called; Dr. [PERSON] too. DOB: unknown");
    }

    #[test]
    fn medicines_lines_and_note_abbreviations_are_no_names_but_names_beside_them_are() {
        let stage = stage_with_gazetteers();
        // What the tagger reads as a lone name in ward notes, each shape of the family:
        // brand and generic medicines, ward shorthand, lines and devices, abbreviations,
        // in capitals and not, English and French; with real names in the same notes.
        let cases = [
            (
                "en",
                "Started on Zofran and Protonix, Kelechi aware",
                &["Zofran", "Protonix"][..],
                &["Kelechi"][..],
            ),
            (
                "en",
                "RIJ CORDIS D/C'D, PLEURX TO SUCTION. WIFE ADAEZE IN",
                &["RIJ", "CORDIS", "PLEURX"],
                &["ADAEZE"],
            ),
            (
                "en",
                "PMHx: GERD, COPD. Lytes repleted. Oluwaseun updated",
                &["GERD", "COPD", "Lytes"],
                &["Oluwaseun"],
            ),
            (
                "en",
                "levophed weaned, ceftaz and tobra continued per Okafor",
                &["levophed", "ceftaz", "tobra"],
                &["Okafor"],
            ),
            (
                "fr",
                "Doliprane et Kardégic poursuivis, Mme Ndiaye prévenue",
                &["Doliprane", "Kardégic"],
                &["Ndiaye"],
            ),
            (
                "fr",
                "SNG en place, VNI la nuit, vu avec Aïssatou",
                &["SNG", "VNI"],
                &["Aïssatou"],
            ),
        ];
        for (lang, text, clinical, names) in cases {
            let spans: Vec<TaggedSpan> = clinical
                .iter()
                .chain(names.iter())
                .map(|w| tagged(text, w, "PERSON"))
                .collect();
            let r = stage.redact_tagged(text, Some(lang), &spans);
            for word in clinical {
                assert!(
                    r.text.contains(word),
                    "{word} redacted in {text:?}: {}",
                    r.text
                );
            }
            for name in names {
                assert!(
                    !r.text.contains(name),
                    "{name} kept in {text:?}: {}",
                    r.text
                );
            }
        }
    }

    #[test]
    fn listed_public_names_stay_and_patients_do_not() {
        let rules = RuleSet::builtin().unwrap();
        let text = "Le Dr Olivier Véran a parlé ; le Dr Martin Lefèvre a vu la patiente";
        let all = RedactionStage::new(rules.clone(), 0.5, ReplaceMode::Placeholder);
        assert!(!all.redact(text, Some("fr")).text.contains("Véran"));
        let public = RedactionStage::new(rules, 0.5, ReplaceMode::Placeholder)
            .with_not_a_patient(&["olivier  VÉRAN".to_string()]);
        let r = public.redact(text, Some("fr"));
        assert!(r.text.contains("Olivier Véran"), "{}", r.text);
        assert!(!r.text.contains("Lefèvre"), "{}", r.text);
    }

    #[test]
    fn ids_that_carry_an_identifier_are_told_apart_from_platform_ids() {
        let stage = RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder);
        for platform_id in [
            "p1",
            "1789234567890123456",
            "4111111111111111",
            "550e8400-e29b-41d4-a716-446655440000",
            "t3_abc123",
            "msg_01HZX3K5M8Q2",
            "post-2024-05-01-17",
            "forum:thread/88412#c7",
        ] {
            assert!(!stage.id_exposes_identifier(platform_id), "{platform_id}");
        }
        for exposing in [
            "awa.diop@example.sn",
            "jean.dupont@exemple.fr-17",
            "msg_06.12.34.56.78",
            "+221-77-123-45-67",
            "nir:1-85-05-75-123-456-73",
        ] {
            assert!(stage.id_exposes_identifier(exposing), "{exposing}");
        }
    }
}
