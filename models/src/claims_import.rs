//! Bringing fact-checkers' claims into the known-claim library: `vigie claims import`.
//!
//! Two forms are read, one record at a time:
//! - **ClaimReview** (schema.org JSON-LD, as fact-checkers publish it): `claimReviewed`,
//!   `reviewRating.alternateName` (the verdict in the checker's words), `url`,
//!   `author.name`, `datePublished`, `inLanguage`; a file may hold one review, an array,
//!   a `@graph`, or one review per line;
//! - **claim rows** (`claims_known.jsonl` of the shared datasets): `id`, `text`, `lang`,
//!   `verdict`, `topic`, `source`, `url`.
//!
//! Records are merged into one TOML file of a claims directory by id (a ClaimReview's id
//! is derived from its URL and claim text), and the file is written sorted by id: importing
//! the same feed again changes nothing, importing a newer one updates what changed. A
//! running pipeline whose `[risk] claims_dir` is that directory reloads it within seconds.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::claims::Claim;

/// Why a record was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skipped {
    /// Neither a ClaimReview nor a claim row.
    NotAClaim,
    /// No claim text.
    NoText,
    /// A language other than French or English.
    Language,
    /// A verdict that is not false or misleading (true, unproven, satire…).
    Verdict,
}

/// What an import read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Imported {
    /// The claims read, in input order.
    pub claims: Vec<Claim>,
    /// Records left out, by reason.
    pub skipped: BTreeMap<Skipped, usize>,
}

/// Reads every record of `text` (a JSON document or JSON lines).
pub fn read_records(text: &str) -> Vec<Value> {
    if let Ok(doc) = serde_json::from_str::<Value>(text) {
        return flatten(doc);
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or(Value::Null))
        .flat_map(flatten)
        .collect()
}

fn flatten(doc: Value) -> Vec<Value> {
    match doc {
        Value::Array(items) => items.into_iter().flat_map(flatten).collect(),
        Value::Object(ref o) if o.contains_key("@graph") => {
            flatten(o.get("@graph").cloned().unwrap_or(Value::Null))
        }
        other => vec![other],
    }
}

/// The claims among `records`, with what was left out and why.
pub fn import(records: &[Value]) -> Imported {
    let mut out = Imported::default();
    for record in records {
        match claim_of(record) {
            Ok(claim) => out.claims.push(claim),
            Err(why) => *out.skipped.entry(why).or_default() += 1,
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut at = v;
    for key in path {
        at = match at {
            // An array of reviews or authors: the first.
            Value::Array(items) => items.first()?.get(key)?,
            _ => at.get(key)?,
        };
    }
    match at {
        Value::Array(items) => items.first()?.as_str(),
        _ => at.as_str(),
    }
    .map(str::trim)
    .filter(|s| !s.is_empty())
}

fn claim_of(v: &Value) -> Result<Claim, Skipped> {
    let is_review = v.get("claimReviewed").is_some()
        || str_at(v, &["@type"]).is_some_and(|t| t.eq_ignore_ascii_case("ClaimReview"));
    if is_review {
        review(v)
    } else if v.get("text").is_some() && v.get("id").is_some() {
        row(v)
    } else {
        Err(Skipped::NotAClaim)
    }
}

/// A ClaimReview record.
fn review(v: &Value) -> Result<Claim, Skipped> {
    let text = str_at(v, &["claimReviewed"]).ok_or(Skipped::NoText)?;
    let lang = language(
        str_at(v, &["inLanguage"]).or_else(|| str_at(v, &["itemReviewed", "inLanguage"])),
    )?;
    let rating = str_at(v, &["reviewRating", "alternateName"]).unwrap_or("");
    let status = verdict(rating)?;
    let url = str_at(v, &["url"]).unwrap_or("");
    let source = str_at(v, &["author", "name"]).unwrap_or("ClaimReview");
    let date = str_at(v, &["datePublished"]).unwrap_or("");
    let id = format!(
        "cr-{:016x}",
        crate::embedding_store::text_key(&format!("{url}\n{text}"))
    );
    Ok(Claim {
        id,
        text: text.to_string(),
        lang,
        topic: "imported".into(),
        status,
        correction: match (rating, date) {
            ("", _) => String::new(),
            (r, "") => format!("Rated \"{r}\"."),
            (r, d) => format!("Rated \"{r}\" on {d}."),
        },
        source: source.to_string(),
        source_url: url.to_string(),
    })
}

/// A claim row of `claims_known.jsonl`.
fn row(v: &Value) -> Result<Claim, Skipped> {
    let text = str_at(v, &["text"]).ok_or(Skipped::NoText)?;
    let lang = language(str_at(v, &["lang"]))?;
    let status = verdict(
        str_at(v, &["verdict"])
            .or_else(|| str_at(v, &["rating"]))
            .unwrap_or("false"),
    )?;
    let raw_id = str_at(v, &["id"]).unwrap_or("");
    // Library ids are ASCII letters, digits, - and _.
    let mut id: String = raw_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.trim_matches('-').is_empty() {
        id = format!("row-{:016x}", crate::embedding_store::text_key(text));
    } else if id != raw_id {
        // "a/x" and "a:x" would both become "a-x": the raw id's hash keeps them apart.
        id = format!(
            "{id}-{:08x}",
            crate::embedding_store::text_key(raw_id) as u32
        );
    }
    Ok(Claim {
        id,
        text: text.to_string(),
        lang,
        topic: str_at(v, &["topic"]).unwrap_or("imported").to_string(),
        status,
        correction: String::new(),
        source: str_at(v, &["source"]).unwrap_or("imported").to_string(),
        source_url: str_at(v, &["url"]).unwrap_or("").to_string(),
    })
}

/// `fr` or `en` from a language tag (`fr-FR`, `en_GB`, `French`).
fn language(tag: Option<&str>) -> Result<String, Skipped> {
    let tag = tag.unwrap_or("").to_ascii_lowercase();
    if tag.starts_with("fr") {
        Ok("fr".into())
    } else if tag.starts_with("en") {
        Ok("en".into())
    } else {
        Err(Skipped::Language)
    }
}

/// `false` or `misleading` from a checker's verdict, in French or English; anything else
/// (true, unproven, satire, out of context is misleading) is not imported.
fn verdict(rating: &str) -> Result<String, Skipped> {
    let r = rating.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| r.contains(w));
    if has(&[
        "trompeur",
        "misleading",
        "partly",
        "partiellement",
        "manque de contexte",
        "out of context",
        "missing context",
        "exagéré",
        "exaggerat",
    ]) {
        Ok("misleading".into())
    } else if has(&[
        "faux",
        "fausse",
        "false",
        "fake",
        "incorrect",
        "wrong",
        "pants on fire",
        "infondé",
        "unfounded",
    ]) {
        Ok("false".into())
    } else {
        Err(Skipped::Verdict)
    }
}

#[derive(Serialize)]
struct ClaimFileOut<'a> {
    claim: Vec<&'a Claim>,
}

/// Merges `new` into `existing` by id (a new record replaces an old one of the same id)
/// and renders the claims file, sorted by id: the same input gives the same bytes.
pub fn merge_and_render(existing: Vec<Claim>, new: Vec<Claim>) -> Result<String, toml::ser::Error> {
    let mut by_id: BTreeMap<String, Claim> =
        existing.into_iter().map(|c| (c.id.clone(), c)).collect();
    for c in new {
        by_id.insert(c.id.clone(), c);
    }
    let file = ClaimFileOut {
        claim: by_id.values().collect(),
    };
    Ok(format!(
        "# Imported by `vigie claims import`; re-importing replaces claims of the same id.\n\n{}",
        toml::to_string(&file)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REVIEW: &str = r#"{
      "@context": "https://schema.org", "@type": "ClaimReview",
      "url": "https://factuel.afp.com/exemple",
      "claimReviewed": "Le vaccin contre la rougeole provoque l'autisme",
      "datePublished": "2024-03-01", "inLanguage": "fr",
      "author": {"@type": "Organization", "name": "AFP Factuel"},
      "reviewRating": {"@type": "Rating", "alternateName": "Faux"}
    }"#;

    #[test]
    fn a_claim_review_becomes_a_claim_with_its_verdict_and_link() {
        let got = import(&read_records(REVIEW));
        assert_eq!(got.claims.len(), 1, "{got:?}");
        let c = &got.claims[0];
        assert_eq!((c.lang.as_str(), c.status.as_str()), ("fr", "false"));
        assert_eq!(c.source, "AFP Factuel");
        assert_eq!(c.source_url, "https://factuel.afp.com/exemple");
        assert!(c.correction.contains("Faux") && c.correction.contains("2024-03-01"));
        crate::claims::validate(&got.claims).expect("valid claims");
    }

    #[test]
    fn arrays_graphs_and_lines_are_read_and_others_skipped_with_a_reason() {
        let other_lang = REVIEW.replace("\"fr\"", "\"es\"");
        let true_claim = REVIEW.replace("Faux", "Vrai").replace("exemple", "autre");
        let doc = format!("{{\"@graph\": [{REVIEW}, {other_lang}, {true_claim}, {{\"x\": 1}}]}}");
        let got = import(&read_records(&doc));
        assert_eq!(got.claims.len(), 1);
        assert_eq!(got.skipped[&Skipped::Language], 1);
        assert_eq!(got.skipped[&Skipped::Verdict], 1);
        assert_eq!(got.skipped[&Skipped::NotAClaim], 1);
        let lines = concat!(
            r#"{"id": "afp-1/x", "text": "Il n'y a pas de pandémie", "lang": "fr", "verdict": "false", "topic": "health", "source": "AFP", "url": "https://a"}"#,
            "\n",
            r#"{"id": "cl-2", "text": "5G spreads the virus", "lang": "en", "verdict": "misleading", "topic": "covid", "source": "COVID-Lies"}"#,
            "\nnot json\n"
        );
        let got = import(&read_records(lines));
        assert_eq!(got.claims.len(), 2);
        assert!(
            got.claims[0].id.starts_with("afp-1-x-"),
            "ids made safe for the library"
        );
        let twins = concat!(
            r#"{"id": "a/x", "text": "one", "lang": "en", "verdict": "false"}"#,
            "\n",
            r#"{"id": "a:x", "text": "two", "lang": "en", "verdict": "false"}"#,
        );
        let twins = import(&read_records(twins)).claims;
        assert_ne!(
            twins[0].id, twins[1].id,
            "two raw ids never share a library id"
        );
        assert_eq!(got.claims[1].status, "misleading");
        assert_eq!(got.skipped[&Skipped::NotAClaim], 1);
        crate::claims::validate(&got.claims).expect("valid claims");
    }

    #[test]
    fn re_importing_is_idempotent_and_updates_by_id() {
        let first = import(&read_records(REVIEW)).claims;
        let once = merge_and_render(Vec::new(), first.clone()).unwrap();
        let parsed: Vec<Claim> = crate::claims::parse_str("imported.toml", &once).unwrap();
        let twice = merge_and_render(parsed.clone(), first).unwrap();
        assert_eq!(once, twice, "the same feed again changes nothing");
        let mut changed = parsed[0].clone();
        changed.correction = "Mis à jour.".into();
        let updated = merge_and_render(parsed, vec![changed]).unwrap();
        let again: Vec<Claim> = crate::claims::parse_str("imported.toml", &updated).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].correction, "Mis à jour.");
    }
}
