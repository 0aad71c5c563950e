//! Turns raw bytes (a JSONL line, a Kafka payload) into an [`InputPost`], or a reason
//! why not. Error details name fields and positions only: serde's own messages can
//! quote the offending value, so they are never passed on.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::contract::{Channel, InputPost};

/// Longest accepted post id, in characters.
pub const MAX_ID_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    Oversized { size: usize, limit: usize },
    #[error("invalid UTF-8 at byte {0}")]
    InvalidUtf8(usize),
    #[error("malformed JSON at line {line} column {column}")]
    MalformedJson { line: usize, column: usize },
    #[error("expected a JSON object")]
    NotAnObject,
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}`: {expected}")]
    InvalidField {
        field: &'static str,
        expected: &'static str,
    },
    #[error("field `text` is empty")]
    EmptyText,
}

impl DecodeError {
    /// Stable, machine-readable reason (DLQ header, rejected.jsonl, metrics label).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::InvalidUtf8(_) => "invalid_utf8",
            DecodeError::MalformedJson { .. } | DecodeError::NotAnObject => "malformed_json",
            DecodeError::MissingField(_) => "missing_field",
            DecodeError::InvalidField { .. } => "invalid_field",
            DecodeError::EmptyText => "empty_text",
        }
    }
}

/// A failed decode, with the post id when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub error: DecodeError,
    pub id: Option<String>,
}

pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<InputPost, Rejection> {
    let reject = |error| Rejection { error, id: None };
    if bytes.len() > max_bytes {
        return Err(reject(DecodeError::Oversized {
            size: bytes.len(),
            limit: max_bytes,
        }));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| reject(DecodeError::InvalidUtf8(e.valid_up_to())))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        reject(DecodeError::MalformedJson {
            line: e.line(),
            column: e.column(),
        })
    })?;
    let Value::Object(obj) = value else {
        return Err(reject(DecodeError::NotAnObject));
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => return Err(reject(DecodeError::MissingField("id"))),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_ID_CHARS => {
            s.clone()
        }
        // Numeric ids are common on platforms; accept them as their decimal text.
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(reject(DecodeError::InvalidField {
                field: "id",
                expected: "a non-empty string of at most 256 characters",
            }))
        }
    };
    fields(&obj, id.clone()).map_err(|error| Rejection {
        error,
        id: Some(id),
    })
}

fn fields(obj: &Map<String, Value>, id: String) -> Result<InputPost, DecodeError> {
    let text = match obj.get("text") {
        None | Some(Value::Null) => return Err(DecodeError::MissingField("text")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(DecodeError::InvalidField {
                field: "text",
                expected: "a string",
            })
        }
    };
    if text.trim().is_empty() {
        return Err(DecodeError::EmptyText);
    }
    let channel = match obj.get("channel") {
        None | Some(Value::Null) => return Err(DecodeError::MissingField("channel")),
        Some(v) => {
            serde_json::from_value::<Channel>(v.clone()).map_err(|_| DecodeError::InvalidField {
                field: "channel",
                expected: "one of newsfeed, forum, message, other",
            })?
        }
    };
    let created_at = match obj.get("created_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| DecodeError::InvalidField {
                    field: "created_at",
                    expected: "an RFC 3339 timestamp",
                })?
                .with_timezone(&Utc),
        ),
        Some(_) => {
            return Err(DecodeError::InvalidField {
                field: "created_at",
                expected: "an RFC 3339 timestamp",
            })
        }
    };
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Some(_) => {
            return Err(DecodeError::InvalidField {
                field: "metadata",
                expected: "an object",
            })
        }
    };
    Ok(InputPost {
        id,
        text,
        channel,
        author: optional_string(obj, "author")?,
        created_at,
        lang_hint: optional_string(obj, "lang_hint")?,
        country: optional_string(obj, "country")?,
        metadata,
    })
}

fn optional_string(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, DecodeError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(DecodeError::InvalidField {
            field,
            expected: "a string",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64 * 1024;

    fn reason(bytes: &[u8]) -> &'static str {
        decode(bytes, MAX).unwrap_err().error.reason()
    }

    #[test]
    fn valid_post_decodes() {
        let p = decode(
            br#"{"id":42,"text":"Bonjour","channel":"message","extra":1}"#,
            MAX,
        )
        .unwrap();
        assert_eq!(p.id, "42");
        assert_eq!(p.channel, Channel::Message);
    }

    #[test]
    fn every_kind_of_bad_input_has_its_reason() {
        assert_eq!(reason(b"\xff\xfe{}"), "invalid_utf8");
        assert_eq!(reason(b"{\"id\":\"1\",\"text\":"), "malformed_json");
        assert_eq!(reason(b"[1,2]"), "malformed_json");
        assert_eq!(
            reason(br#"{"text":"a","channel":"forum"}"#),
            "missing_field"
        );
        assert_eq!(reason(br#"{"id":"1","channel":"forum"}"#), "missing_field");
        assert_eq!(reason(br#"{"id":"1","text":"a"}"#), "missing_field");
        assert_eq!(
            reason(br#"{"id":"1","text":"a","channel":"tv"}"#),
            "invalid_field"
        );
        assert_eq!(
            reason(br#"{"id":"1","text":"a","channel":"forum","created_at":"yesterday"}"#),
            "invalid_field"
        );
        assert_eq!(
            reason(br#"{"id":"1","text":"   ","channel":"forum"}"#),
            "empty_text"
        );
        assert_eq!(
            reason(br#"{"id":["x"],"text":"a","channel":"forum"}"#),
            "invalid_field"
        );
        let big = format!(
            r#"{{"id":"1","text":"{}","channel":"forum"}}"#,
            "a".repeat(MAX)
        );
        assert_eq!(reason(big.as_bytes()), "oversized");
    }

    #[test]
    fn details_never_quote_content() {
        let secret = "0612345678";
        let inputs = [
            format!(r#"{{"id":"1","text":"{secret}","channel":"{secret}"}}"#),
            format!(r#"{{"id":"1","text":"{secret}","channel":"forum","created_at":"{secret}"}}"#),
            format!(r#"{{"id":"1","text":"{secret}","channel":"forum","author":{secret}}}"#),
            format!(r#"{{"id":"1","text":"{secret}" "channel":"forum"}}"#),
        ];
        for input in inputs {
            let r = decode(input.as_bytes(), MAX).unwrap_err();
            assert!(!r.error.to_string().contains(secret), "{}", r.error);
        }
    }

    #[test]
    fn rejection_keeps_the_id_when_readable() {
        let r = decode(br#"{"id":"p-9","text":""}"#, MAX).unwrap_err();
        assert_eq!(r.id.as_deref(), Some("p-9"));
    }
}
