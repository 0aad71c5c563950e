//! Redaction stage: replaces patient identifiers using the `rules` crate.

use vigie_rules::{Redactor, ReplaceMode, RuleSet};

use crate::contract::RedactionSpan;

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

    /// `lang`: the language stage's verdict (fr, en), which enables language-specific rules.
    pub fn redact(&self, text: &str, lang: Option<&str>) -> Redacted {
        let r = self.redactor.redact_in(text, lang);
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
}
