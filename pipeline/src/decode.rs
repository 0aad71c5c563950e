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
        Some(Value::String(s)) if is_plain_id(s) => s.clone(),
        // Numeric ids are common on platforms; accept them as their decimal text.
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(reject(DecodeError::InvalidField {
                field: "id",
                expected: "1 to 256 visible ASCII characters (no spaces) or a number",
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
        // Many platforms have one kind of space and send no channel: screened as `other`.
        None | Some(Value::Null) => Channel::Other,
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
        country: optional_string(obj, "country")?
            .map(|c| {
                country_code(&c).ok_or(DecodeError::InvalidField {
                    field: "country",
                    expected: "an ISO 3166-1 alpha-2 country code",
                })
            })
            .transpose()?,
        metadata,
    })
}

/// Ids are copied into every record, key and log line, so they are held to what platform
/// ids look like: visible ASCII, no spaces. Invisible or look-alike characters, which could
/// hide an identifier from the check the screener runs on ids, are refused here.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_CHARS && id.bytes().all(|b| b.is_ascii_graphic())
}

/// ISO 3166-1 alpha-2 codes (and XK, Kosovo's code in common use).
const COUNTRY_CODES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ \
    BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ \
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT \
    GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY \
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX \
    MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS \
    RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN \
    TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK";

/// The upper-case ISO 3166-1 alpha-2 code that `value` spells (any case, surrounding
/// spaces allowed), or `None`: `country` is copied into every record, so nothing else may
/// ride in it.
pub fn country_code(value: &str) -> Option<String> {
    let code = value.trim().to_ascii_uppercase();
    (code.len() == 2 && COUNTRY_CODES.split_whitespace().any(|c| c == code)).then_some(code)
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
        assert_eq!(
            decode(br#"{"id":"1","text":"a"}"#, MAX).map(|p| p.channel),
            Ok(Channel::Other),
            "a post without a channel is screened as `other`"
        );
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

    #[test]
    fn ids_and_countries_are_held_to_their_form() {
        for id in ["p 1", "p\u{200b}1", "", "é1"] {
            let post = serde_json::json!({"id": id, "text": "a", "channel": "forum"}).to_string();
            assert_eq!(reason(post.as_bytes()), "invalid_field", "{id:?}");
        }
        for (country, expected) in [("sn", Some("SN")), (" CA ", Some("CA")), ("France", None)] {
            assert_eq!(country_code(country).as_deref(), expected, "{country}");
        }
        let bad = r#"{"id":"1","text":"a","channel":"forum","country":"06 12 34 56 78"}"#;
        let r = decode(bad.as_bytes(), MAX).unwrap_err();
        assert_eq!(r.error.reason(), "invalid_field");
        assert!(!r.error.to_string().contains("06 12"));
    }

    /// A string strategy that mixes JSON syntax, quotes, escapes, invisible characters and
    /// digits of other scripts with plain text: what a hostile or broken producer sends.
    fn hostile_text() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex(
            r#"[a-z0-9 {}\[\]:,"\\\u{200b}\u{feff}\u{202e}\u{ad}٠-٩０-９é\n]{0,40}"#,
        )
        .expect("a valid strategy")
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bytes_decode_or_are_rejected(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode(&bytes, MAX);
        }

        /// Objects with arbitrary values in every field decode or are rejected with a
        /// reason, and no rejection quotes what a field held.
        #[test]
        fn hostile_fields_never_leak_into_rejections(
            id in hostile_text(),
            text in hostile_text(),
            channel in hostile_text(),
            country in hostile_text(),
            created_at in hostile_text(),
        ) {
            let post = serde_json::json!({
                "id": id, "text": text, "channel": channel,
                "country": country, "created_at": created_at,
            })
            .to_string();
            match decode(post.as_bytes(), MAX) {
                Ok(p) => {
                    proptest::prop_assert!(p.id.bytes().all(|b| b.is_ascii_graphic()));
                    if let Some(c) = p.country {
                        proptest::prop_assert!(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()));
                    }
                }
                Err(r) => {
                    let detail = r.error.to_string();
                    for value in [&text, &channel, &country, &created_at] {
                        if value.chars().count() >= 8 {
                            proptest::prop_assert!(!detail.contains(value.as_str()), "{detail}");
                        }
                    }
                }
            }
        }
    }
}
