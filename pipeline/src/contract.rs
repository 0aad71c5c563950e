//! The message contract: what Vigie reads, what it writes.
//!
//! The JSON Schema files under `pipeline/schema/` are generated from these types
//! (`vigie schema --out-dir pipeline/schema`) and a test keeps them in step.
//! No output type has a field for the original text: only `redacted_text` leaves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a post was published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Newsfeed,
    Forum,
    Message,
    #[default]
    Other,
}

/// A post or message to screen. Fields other than these are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InputPost {
    /// Unique id given by the platform; echoed in every record about this post.
    pub id: String,
    pub text: String,
    /// Absent: `other`.
    #[serde(default)]
    pub channel: Channel,
    /// Author's id on the platform (opaque; never a display name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Language the platform believes the post is in (fr, en, ...); advisory only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang_hint: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LangCode {
    Fr,
    En,
    /// A language other than French or English.
    Other,
    /// Undetermined: too short or no letters.
    Und,
}

impl LangCode {
    pub fn as_str(self) -> &'static str {
        match self {
            LangCode::Fr => "fr",
            LangCode::En => "en",
            LangCode::Other => "other",
            LangCode::Und => "und",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Lang {
    pub code: LangCode,
    /// 0..1, how sure the language stage is of `code` (whatlang's confidence, or the
    /// word frequencies' when they decided).
    pub confidence: f32,
    /// A French or English post that holds clear words of the other language too (the
    /// redaction rules of both run on it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mixed: bool,
}

impl Lang {
    pub fn new(code: LangCode, confidence: f32) -> Self {
        Lang {
            code,
            confidence,
            mixed: false,
        }
    }

    pub fn undetermined() -> Self {
        Lang::new(LangCode::Und, 0.0)
    }
}

/// One identifier removed from the text. Offsets count Unicode code points of the
/// original text, end exclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RedactionSpan {
    /// PHONE, EMAIL, NATIONAL_ID, DATE, PERSON, PATIENT_ID, ...
    pub kind: String,
    pub start: usize,
    pub end: usize,
    /// Id of the rule that found it (see `rules/sets/*.toml`).
    pub rule: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RiskLabel {
    Misinformation,
    Reliable,
}

/// What the risk stage decided for a post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RiskOutcome {
    /// The post asserts or spreads a false or harmful health claim: moderators' queue.
    Misinformation,
    /// The post asks about, reports or refutes a rumour: for programme staff
    /// (`rumours.jsonl`, `[kafka] rumour_topic`), not the moderators' queue.
    RumourSignal,
    /// Nothing to act on.
    #[default]
    Pass,
    /// The post is in a language the heads were never validated on: not judged.
    UnscoredLanguage,
}

/// What a risk decision rested on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RiskBasis {
    /// Not French or English.
    Language,
    /// Too little text to hold a claim (emoji, numbers, one word).
    NoClaimText,
    /// The claim gate found no health claim in it.
    NotAClaim,
    /// It keeps its distance from the claim it discusses (asks, refutes, reports).
    Stance,
    /// It restates a known false claim.
    KnownClaim,
    /// The misinformation head's score.
    #[default]
    Head,
}

/// A post's stance toward the claim it discusses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stance {
    /// Asserts or spreads it.
    Supports,
    /// Asks whether it is true.
    Queries,
    /// Says it is false.
    Denies,
    /// Neither (e.g. reports that it circulates).
    Comments,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Risk {
    /// Risk that the post carries misinformation, 0..1: the head's calibrated
    /// probability, raised when the post restates a known false claim.
    pub score: f32,
    pub label: RiskLabel,
    /// Encoder and head that produced the score.
    pub model: String,
    /// The trained head's own output (sigmoid of its logit), before calibration.
    #[serde(default)]
    pub head_score: f32,
    /// The head's calibrated probability of misinformation (Platt scaling fit on
    /// held-out predictions): of posts given 0.7, about 7 in 10 were misinformation in
    /// the evaluation data.
    #[serde(default)]
    pub probability: f32,
    /// Known false claims (`models/claims/`) the post is close to, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<MatchedClaim>,
    /// The decision: misinformation, rumour-signal, pass or unscored-language.
    #[serde(default)]
    pub outcome: RiskOutcome,
    /// What the decision rested on.
    #[serde(default)]
    pub basis: RiskBasis,
    /// The claim gate's probability that the post makes (or discusses) a checkable
    /// health claim (1 when no gate is configured; 0 when not judged).
    #[serde(default)]
    pub claim_probability: f32,
    /// The post's stance toward the claim, when it makes or discusses one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stance: Option<Stance>,
}

/// A known false claim that a post restates (embedding similarity, across languages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MatchedClaim {
    pub id: String,
    /// Cosine similarity of the post and the claim, 0..1.
    pub similarity: f32,
    pub topic: String,
    /// Language of the claim's text (fr, en): it may differ from the post's.
    pub lang: String,
    /// The claim as the library states it (not the post's words).
    pub text: String,
    /// The fact-checkers' verdict (`false`, `misleading`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verdict: String,
    /// What the fact-checkers found, in a sentence or two: the correction staff can give.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub correction: String,
    /// Where the fact-check is published.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_url: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    None,
    Low,
    Medium,
    High,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Misinformation,
    Privacy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Route {
    /// Moderation queue, e.g. `misinformation-fr`; the configured pass queue when nothing was flagged.
    pub queue: String,
    pub priority: Priority,
    /// Why the post goes to moderators; empty when it does not.
    pub reasons: Vec<Reason>,
}

impl Route {
    pub fn is_flagged(&self) -> bool {
        !self.reasons.is_empty()
    }
}

impl ScreenedRecord {
    /// The post asks about, refutes or reports a rumour: for programme staff's rumour
    /// tracking (`rumours.jsonl`, `[kafka] rumour_topic`), not for moderators.
    pub fn is_rumour_signal(&self) -> bool {
        self.risk
            .as_ref()
            .is_some_and(|r| r.outcome == RiskOutcome::RumourSignal)
    }
}

/// What Vigie writes for every post it could read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenedRecord {
    pub id: String,
    pub lang: Lang,
    pub redacted_text: String,
    pub redactions: Vec<RedactionSpan>,
    /// Absent when risk scoring is switched off.
    pub risk: Option<Risk>,
    pub route: Route,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// When the platform says the post was published (copied from the input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    pub processed_at: DateTime<Utc>,
    pub vigie_version: String,
}

/// Where a rejected input came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Origin {
    Line {
        file: String,
        line: usize,
    },
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// A post sent to the screening API (`vigie serve`): the request's id and, for a
    /// batch, the post's place in it.
    Request {
        request: String,
        item: usize,
    },
}

/// What Vigie writes for input it could not screen. It never carries the input as
/// received: `redacted_payload` is the input (decoded leniently) after redaction, cut
/// to a few kilobytes, enough for an operator to see what went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectedRecord {
    pub origin: Origin,
    /// Machine-readable reason: invalid_utf8, malformed_json, missing_field, invalid_field, empty_text, oversized, processing_failed.
    pub reason: String,
    /// Human-readable detail (field names and positions, never content).
    pub detail: String,
    /// The post id, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub payload_bytes: usize,
    pub redacted_payload: String,
    pub rejected_at: DateTime<Utc>,
    pub vigie_version: String,
}

pub const VIGIE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The schemas of the contract, by file name.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("input_post.schema.json", schemars::schema_for!(InputPost)),
        (
            "screened_record.schema.json",
            schemars::schema_for!(ScreenedRecord),
        ),
        (
            "rejected_record.schema.json",
            schemars::schema_for!(RejectedRecord),
        ),
    ]
}

pub fn schema_text(schema: &schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
        for (name, schema) in schemas() {
            let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| {
                panic!("{name}: {e}; run `vigie schema --out-dir pipeline/schema`")
            });
            assert_eq!(
                committed,
                schema_text(&schema),
                "{name} is stale; run `vigie schema --out-dir pipeline/schema`"
            );
        }
    }

    #[test]
    fn screened_record_has_no_field_for_original_text() {
        let (_, schema) = &schemas()[1];
        let props = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .expect("properties");
        assert!(props.contains_key("redacted_text"));
        assert!(!props.contains_key("text"));
    }

    #[test]
    fn input_post_round_trips_and_rejects_unknown_channels() {
        let json = r#"{"id":"p1","text":"bonjour","channel":"forum","created_at":"2024-05-01T10:00:00Z","country":"SN"}"#;
        let post: InputPost = serde_json::from_str(json).unwrap();
        assert_eq!(post.channel, Channel::Forum);
        let back: InputPost = serde_json::from_str(&serde_json::to_string(&post).unwrap()).unwrap();
        assert_eq!(back, post);
        assert!(
            serde_json::from_str::<InputPost>(r#"{"id":"p","text":"t","channel":"tv"}"#).is_err()
        );
    }
}
