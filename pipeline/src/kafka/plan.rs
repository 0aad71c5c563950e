//! What records one input becomes, and on which topics: the screened record (and a copy
//! for moderation when it is flagged), or a dead letter. Pure: no broker, no producer, so
//! the choices are tested on their own; the run loop only sends what is planned.

use rdkafka::message::OwnedHeaders;

use super::dead_letter;
use super::error::InputPosition;
use crate::contract::{Origin, RejectedRecord, VIGIE_VERSION};
use crate::screener::Outcome;

/// Where the records of a run go, and how large one may be.
#[derive(Debug, Clone)]
pub(crate) struct OutputTopics {
    pub screened: String,
    pub moderation: String,
    pub dead_letters: String,
    /// Rumour signals are copied here too, when configured.
    pub rumours: Option<String>,
    /// A serialised screened record above this size goes to the dead letters instead.
    pub max_record_bytes: usize,
}

/// One record to produce.
pub(crate) struct Output {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Option<OwnedHeaders>,
}

/// What became of the input, for the run's counts and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Screened; `flagged` when a copy goes to the moderation topic, `rumour` when the
    /// post is a rumour signal.
    Screened { flagged: bool, rumour: bool },
    /// Dead-lettered, with the record's reason and detail (never content).
    DeadLetter { reason: String, detail: String },
}

/// The records planned for one input.
pub(crate) struct Plan {
    pub outputs: Vec<Output>,
    pub disposition: Disposition,
}

/// Plans the records of the input read at `input` (`payload_bytes` long) that screening
/// turned into `outcome`. Every record is keyed by post id; a dead letter whose id could
/// not be read is keyed by its position.
pub(crate) fn plan(
    topics: &OutputTopics,
    input: &InputPosition,
    payload_bytes: usize,
    outcome: Outcome,
) -> Result<Plan, serde_json::Error> {
    let rejected = match outcome {
        Outcome::Screened(record) => {
            let json = serde_json::to_vec(&record)?;
            if json.len() <= topics.max_record_bytes {
                let flagged = record.route.is_flagged();
                let rumour = record.is_rumour_signal();
                let rumours = topics
                    .rumours
                    .as_ref()
                    .filter(|_| rumour)
                    .map(|topic| Output {
                        topic: topic.clone(),
                        key: record.id.clone(),
                        payload: json.clone(),
                        headers: None,
                    });
                let moderation = flagged.then(|| Output {
                    topic: topics.moderation.clone(),
                    key: record.id.clone(),
                    payload: json.clone(),
                    headers: None,
                });
                let screened = Output {
                    topic: topics.screened.clone(),
                    key: record.id,
                    payload: json,
                    headers: None,
                };
                return Ok(Plan {
                    outputs: std::iter::once(screened)
                        .chain(moderation)
                        .chain(rumours)
                        .collect(),
                    disposition: Disposition::Screened { flagged, rumour },
                });
            }
            too_large(
                input,
                record.id,
                json.len(),
                topics.max_record_bytes,
                payload_bytes,
            )
        }
        Outcome::Rejected(record) => record,
    };
    let key = rejected
        .id
        .clone()
        .unwrap_or_else(|| format!("{}-{}-{}", input.topic, input.partition, input.offset));
    let headers = dead_letter::headers(&rejected, &input.topic, input.partition, input.offset);
    Ok(Plan {
        outputs: vec![Output {
            topic: topics.dead_letters.clone(),
            key,
            payload: serde_json::to_vec(&rejected)?,
            headers: Some(headers),
        }],
        disposition: Disposition::DeadLetter {
            reason: rejected.reason,
            detail: rejected.detail,
        },
    })
}

/// A screened record too large for the output topic goes to the dead letters instead.
fn too_large(
    input: &InputPosition,
    id: String,
    size: usize,
    limit: usize,
    payload_bytes: usize,
) -> RejectedRecord {
    RejectedRecord {
        origin: Origin::Kafka {
            topic: input.topic.clone(),
            partition: input.partition,
            offset: input.offset,
        },
        reason: "output_too_large".into(),
        detail: format!(
            "screened record of {size} bytes exceeds the producer's {limit}-byte limit"
        ),
        id: Some(id),
        payload_bytes,
        // The input is unredacted; the record carries no excerpt of it.
        redacted_payload: String::new(),
        rejected_at: chrono::Utc::now(),
        vigie_version: VIGIE_VERSION.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::*;
    use crate::config::Config;
    use crate::screener::Screener;

    fn topics(max_record_bytes: usize) -> OutputTopics {
        OutputTopics {
            screened: "s".into(),
            moderation: "m".into(),
            dead_letters: "d".into(),
            rumours: Some("r".into()),
            max_record_bytes,
        }
    }

    fn at(offset: i64) -> InputPosition {
        InputPosition {
            topic: "posts".into(),
            partition: 2,
            offset,
        }
    }

    /// Screens one raw input without a model, as the run loop would.
    fn outcome(raw: &str) -> Outcome {
        let screener = Screener::with_risk(&Config::default(), None).expect("screener");
        let origin = Origin::Kafka {
            topic: "posts".into(),
            partition: 2,
            offset: 7,
        };
        screener
            .process(&[(origin, raw.as_bytes())])
            .pop()
            .expect("one outcome")
    }

    fn header(h: &OwnedHeaders, key: &str) -> Option<String> {
        h.iter()
            .find(|x| x.key == key)
            .and_then(|x| x.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn a_clean_post_becomes_one_screened_record_keyed_by_its_id() {
        let raw = r#"{"id":"p1","text":"Rappel : réunion jeudi à 10 h.","channel":"forum"}"#;
        let plan = plan(&topics(1 << 20), &at(7), raw.len(), outcome(raw)).expect("plan");
        assert_eq!(
            plan.disposition,
            Disposition::Screened {
                flagged: false,
                rumour: false
            }
        );
        assert_eq!(plan.outputs.len(), 1);
        assert_eq!(
            (plan.outputs[0].topic.as_str(), plan.outputs[0].key.as_str()),
            ("s", "p1")
        );
        assert!(plan.outputs[0].headers.is_none());
    }

    #[test]
    fn a_flagged_post_is_copied_to_moderation() {
        let raw = r#"{"id":"p2","text":"Patient joignable au 06 12 34 56 78","channel":"message"}"#;
        let plan = plan(&topics(1 << 20), &at(7), raw.len(), outcome(raw)).expect("plan");
        assert_eq!(
            plan.disposition,
            Disposition::Screened {
                flagged: true,
                rumour: false
            }
        );
        let topics: Vec<&str> = plan.outputs.iter().map(|o| o.topic.as_str()).collect();
        assert_eq!(topics, ["s", "m"]);
        assert_eq!(plan.outputs[0].payload, plan.outputs[1].payload);
        assert!(plan.outputs.iter().all(|o| o.key == "p2"));
    }

    #[test]
    fn a_rumour_signal_is_copied_to_the_rumour_topic_when_one_is_configured() {
        let raw =
            r#"{"id":"p4","text":"Is it true the polio drops sterilise girls?","channel":"forum"}"#;
        let mut outcome = outcome(raw);
        if let Outcome::Screened(record) = &mut outcome {
            let mut risk =
                crate::testing::moderation_record("p4", "en", "t", false, "2024-01-01T00:00:00Z")
                    .risk
                    .expect("a risk");
            risk.outcome = crate::contract::RiskOutcome::RumourSignal;
            record.risk = Some(risk);
        }
        let Outcome::Screened(record) = &outcome else {
            panic!("screened")
        };
        let again = Outcome::Screened(record.clone());
        let with = plan(&topics(1 << 20), &at(7), raw.len(), outcome).expect("plan");
        let names: Vec<&str> = with.outputs.iter().map(|o| o.topic.as_str()).collect();
        assert_eq!(names, ["s", "r"]);
        assert_eq!(
            with.disposition,
            Disposition::Screened {
                flagged: false,
                rumour: true
            }
        );
        let without = OutputTopics {
            rumours: None,
            ..topics(1 << 20)
        };
        let plan = plan(&without, &at(7), raw.len(), again).expect("plan");
        assert_eq!(
            plan.outputs.len(),
            1,
            "no rumour topic configured: screened only"
        );
    }

    #[test]
    fn a_record_too_large_for_the_topic_is_a_dead_letter_without_excerpt() {
        let raw = r#"{"id":"p3","text":"Rappel : réunion jeudi à 10 h.","channel":"forum"}"#;
        let plan = plan(&topics(10), &at(7), raw.len(), outcome(raw)).expect("plan");
        let Disposition::DeadLetter { reason, .. } = &plan.disposition else {
            panic!("expected a dead letter, got {:?}", plan.disposition);
        };
        assert_eq!(reason, "output_too_large");
        assert_eq!(plan.outputs.len(), 1);
        let out = &plan.outputs[0];
        assert_eq!((out.topic.as_str(), out.key.as_str()), ("d", "p3"));
        let record: serde_json::Value = serde_json::from_slice(&out.payload).expect("json");
        assert_eq!(record["redacted_payload"], "");
        assert_eq!(record["payload_bytes"], raw.len());
        let headers = out.headers.as_ref().expect("headers");
        assert_eq!(
            header(headers, dead_letter::HEADER_REASON).as_deref(),
            Some("output_too_large")
        );
        assert_eq!(
            header(headers, dead_letter::HEADER_PARTITION).as_deref(),
            Some("2")
        );
        assert_eq!(
            header(headers, dead_letter::HEADER_OFFSET).as_deref(),
            Some("7")
        );
    }

    #[test]
    fn a_rejected_input_without_id_is_keyed_by_its_position() {
        let raw = "{not json";
        let plan = plan(&topics(1 << 20), &at(41), raw.len(), outcome(raw)).expect("plan");
        assert!(matches!(
            &plan.disposition,
            Disposition::DeadLetter { reason, .. } if reason == "malformed_json"
        ));
        assert_eq!(plan.outputs[0].key, "posts-2-41");
        assert_eq!(plan.outputs[0].topic, "d");
        let headers = plan.outputs[0].headers.as_ref().expect("headers");
        assert_eq!(
            header(headers, dead_letter::HEADER_TOPIC).as_deref(),
            Some("posts")
        );
    }
}
