//! Routing stage: decides whether a post goes to moderators, which queue, how urgent.

use serde::{Deserialize, Serialize};

use crate::contract::{Lang, LangCode, Priority, Reason, RedactionSpan, Risk, RiskOutcome, Route};

/// `[routing]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Risk score at or above which a post is flagged as misinformation.
    pub misinformation_threshold: f32,
    /// Risk score at or above which a misinformation flag is high priority.
    pub high_priority_threshold: f32,
    /// Redaction kinds that make a post a privacy case for moderators: direct identifiers.
    /// Other kinds (a date, a place, a hospital) are redacted all the same, but alone they
    /// point at no one and do not fill the privacy queue.
    pub privacy_kinds: Vec<String>,
    /// Redaction kinds that make a privacy flag high priority.
    pub high_priority_kinds: Vec<String>,
    /// Queue for posts that need no moderator.
    pub pass_queue: String,
    /// Queue name pattern; `{reason}` and `{lang}` (fr, en, other) are filled in.
    pub queue_pattern: String,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            misinformation_threshold: 0.5,
            privacy_kinds: crate::stages::redaction::DIRECT_IDENTIFIERS
                .iter()
                .map(|k| k.to_string())
                .collect(),
            high_priority_threshold: 0.85,
            high_priority_kinds: vec![
                "NATIONAL_ID".into(),
                "PATIENT_ID".into(),
                "FINANCIAL_ID".into(),
            ],
            pass_queue: "pass".into(),
            queue_pattern: "{reason}-{lang}".into(),
        }
    }
}

pub struct RoutingStage {
    config: RoutingConfig,
}

impl RoutingStage {
    pub fn new(config: RoutingConfig) -> Self {
        RoutingStage { config }
    }

    pub fn route(&self, lang: &Lang, redactions: &[RedactionSpan], risk: Option<&Risk>) -> Route {
        let c = &self.config;
        let mut reasons = Vec::new();
        let mut priority = Priority::None;
        // The risk stage decided the outcome (with the same threshold); a rumour signal,
        // a pass or an unscored language is not for moderators.
        let flagged = |r: &&Risk| {
            r.outcome == RiskOutcome::Misinformation && r.score >= c.misinformation_threshold
        };
        if let Some(risk) = risk.filter(flagged) {
            reasons.push(Reason::Misinformation);
            priority = priority.max(if risk.score >= c.high_priority_threshold {
                Priority::High
            } else {
                Priority::Medium
            });
        }
        if redactions.iter().any(|r| c.privacy_kinds.contains(&r.kind)) {
            reasons.push(Reason::Privacy);
            let sensitive = redactions
                .iter()
                .any(|r| c.high_priority_kinds.contains(&r.kind));
            priority = priority.max(if sensitive {
                Priority::High
            } else {
                Priority::Low
            });
        }
        // Misinformation needs a judgement; a privacy flag alone reports what was removed.
        let queue = match reasons.first() {
            None => c.pass_queue.clone(),
            Some(reason) => {
                let lang = match lang.code {
                    LangCode::Fr => "fr",
                    LangCode::En => "en",
                    LangCode::Other | LangCode::Und => "other",
                };
                let reason = match reason {
                    Reason::Misinformation => "misinformation",
                    Reason::Privacy => "privacy",
                };
                c.queue_pattern
                    .replace("{reason}", reason)
                    .replace("{lang}", lang)
            }
        };
        Route {
            queue,
            priority,
            reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::RiskLabel;

    fn risk(score: f32) -> Risk {
        Risk {
            score,
            label: RiskLabel::Reliable,
            model: "m".into(),
            head_score: score,
            probability: score,
            claims: vec![],
            outcome: if score >= RoutingConfig::default().misinformation_threshold {
                RiskOutcome::Misinformation
            } else {
                RiskOutcome::Pass
            },
            basis: crate::contract::RiskBasis::Head,
            claim_probability: 1.0,
            stance: None,
        }
    }
    fn span(kind: &str) -> RedactionSpan {
        RedactionSpan {
            kind: kind.into(),
            start: 0,
            end: 1,
            rule: "r".into(),
        }
    }
    const FR: Lang = Lang {
        code: LangCode::Fr,
        confidence: 1.0,
        mixed: false,
    };
    const UND: Lang = Lang {
        code: LangCode::Und,
        confidence: 0.0,
        mixed: false,
    };

    #[test]
    fn thresholds_queues_and_priorities() {
        let s = RoutingStage::new(RoutingConfig::default());
        let r = s.route(&FR, &[], Some(&risk(0.2)));
        assert_eq!(
            (r.queue.as_str(), r.priority, r.reasons.len()),
            ("pass", Priority::None, 0)
        );
        let r = s.route(&FR, &[], Some(&risk(0.5)));
        assert_eq!(
            (r.queue.as_str(), r.priority),
            ("misinformation-fr", Priority::Medium)
        );
        let r = s.route(&FR, &[], Some(&risk(0.9)));
        assert_eq!(r.priority, Priority::High);
        let r = s.route(&UND, &[span("PHONE")], Some(&risk(0.1)));
        assert_eq!(
            (r.queue.as_str(), r.priority),
            ("privacy-other", Priority::Low)
        );
        let r = s.route(&FR, &[span("NATIONAL_ID")], Some(&risk(0.6)));
        assert_eq!(r.reasons, vec![Reason::Misinformation, Reason::Privacy]);
        assert_eq!(
            (r.queue.as_str(), r.priority),
            ("misinformation-fr", Priority::High)
        );
        let r = s.route(&FR, &[], None);
        assert!(!r.is_flagged());
    }

    #[test]
    fn only_direct_identifiers_make_a_privacy_case() {
        let s = RoutingStage::new(RoutingConfig::default());
        for alone in [
            &["DATE"][..],
            &["HOSPITAL", "LOCATION"],
            &["AGE", "ZIP"],
            &["USERNAME"],
        ] {
            let spans: Vec<_> = alone.iter().map(|k| span(k)).collect();
            assert!(!s.route(&FR, &spans, None).is_flagged(), "{alone:?}");
        }
        for direct in ["PERSON", "PHONE", "EMAIL", "PATIENT_ID"] {
            let r = s.route(&FR, &[span("DATE"), span(direct)], None);
            assert_eq!(r.reasons, vec![Reason::Privacy], "{direct}");
        }
    }

    #[test]
    fn configured_pattern_and_threshold_apply() {
        let s = RoutingStage::new(RoutingConfig {
            misinformation_threshold: 0.8,
            queue_pattern: "mod.{lang}.{reason}".into(),
            ..Default::default()
        });
        assert!(!s.route(&FR, &[], Some(&risk(0.7))).is_flagged());
        assert_eq!(
            s.route(&FR, &[], Some(&risk(0.81))).queue,
            "mod.fr.misinformation"
        );
    }
}
