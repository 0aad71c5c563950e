//! The evasion cases the project writes (`datasets/redaction/evasion.jsonl`, made by
//! `make_evasion.py`): identifiers with invisible characters, other scripts' digits,
//! full-width forms, odd spaces and line breaks inside. Every letter and digit of every
//! identifier must be redacted, in every family.

mod common;

use std::collections::BTreeMap;

use common::redactor;

#[test]
fn every_disguised_identifier_is_covered() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../datasets/redaction/evasion.jsonl"
    );
    let rows = std::fs::read_to_string(path).expect("datasets/redaction/evasion.jsonl");
    let redactor = redactor();
    let mut per_family: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    for line in rows.lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("a JSON row");
        let text = row["text"].as_str().expect("text");
        let family = row["family"].as_str().expect("family").to_string();
        let r = redactor.redact_in(text, row["lang"].as_str());
        let chars: Vec<char> = text.chars().collect();
        for span in row["spans"].as_array().expect("spans") {
            let (start, end) = (
                span["start"].as_u64().unwrap(),
                span["end"].as_u64().unwrap(),
            );
            let covered = (start as usize..end as usize)
                .filter(|&i| chars[i].is_alphanumeric())
                .all(|i| r.findings.iter().any(|f| f.start <= i && i < f.end));
            let entry = per_family.entry(family.clone()).or_default();
            entry.0 += 1;
            if !covered {
                missed.push(format!("{family}: {text:?} -> {:?}", r.text));
                entry.1 += 1;
            }
        }
    }
    assert!(
        per_family.len() >= 8,
        "all families present: {per_family:?}"
    );
    assert!(
        missed.is_empty(),
        "{} of {} identifiers not fully redacted ({per_family:?}):\n{}",
        missed.len(),
        per_family.values().map(|v| v.0).sum::<usize>(),
        missed.join("\n")
    );
}
