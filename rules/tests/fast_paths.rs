//! The redactor's fast paths (rule gates, ASCII word boundaries) must not lose a match:
//! they give exactly what running every pattern as written gives, on real texts and on
//! random ones.

mod common;

use common::{rules, shared, Rng};
use vigie_rules::Redactor;

fn texts(file: &str) -> Vec<(String, Option<String>)> {
    let path = shared().join("datasets").join(file);
    let content =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    content
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let text = v.get("text")?.as_str()?.to_string();
            let lang = v.get("lang").and_then(|l| l.as_str()).map(String::from);
            Some((text, lang))
        })
        .collect()
}

#[test]
fn fast_paths_change_nothing_on_the_shared_datasets() {
    let fast = Redactor::new(rules());
    let reference = Redactor::new(rules()).without_fast_paths();
    let files = [
        "redaction/eds_pseudo_fr_dev.jsonl",
        "redaction/physionet_deid_en_dev.jsonl",
        "risk/constraint_en_val.jsonl",
        "risk/daccord_fr_dev.jsonl",
    ];
    let mut compared = 0;
    for file in files {
        for (text, lang) in texts(file) {
            for lang in [lang.as_deref(), None] {
                let (a, b) = (
                    fast.redact_in(&text, lang),
                    reference.redact_in(&text, lang),
                );
                assert_eq!(
                    a, b,
                    "{file}: fast and reference redactions differ on {text:?}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 5000, "only {compared} texts compared");
}

/// Pieces chosen to put accents, other scripts' digits and keywords next to each other.
const POOL: &[&str] = &[
    "é",
    "É",
    "ß",
    "ж",
    "٣",
    "٠٦",
    "１２",
    "7",
    "06 12 34 56 78",
    "+221 77 123 45 67",
    " ",
    " ",
    "\n",
    ".",
    "/",
    "-",
    "Dr ",
    "Mme ",
    "épouse ",
    "wife ",
    "née ",
    "le 12 mars 2021",
    "March 3rd",
    "rue ",
    "12 rue de la Paix",
    "IPP ",
    "123456789",
    "Awa ",
    "DIOP ",
    "Hôpital ",
    "Saint-Louis ",
    "habite à ",
    "Dakar",
    "NHS ",
    "943 476 5919",
    "NIR ",
    "1 85 05 75 123 456 73",
    "ﬁ",
    "K",
    "ſ",
];

const SEPARATORS: &[&str] = &[" ", "\n", ", ", ". ", " / ", " - ", "\t"];

/// Where a non-ASCII letter touches an ASCII one ("ß06"), an ASCII boundary sees a word
/// start that Unicode does not, and the two may pick different matches; everywhere else
/// they must agree exactly. Pieces are joined by separators to test the latter.
#[test]
fn fast_paths_agree_with_the_reference_on_random_texts() {
    let fast = Redactor::new(rules());
    let reference = Redactor::new(rules()).without_fast_paths();
    let mut rng = Rng(0x5eed_1234_abcd_0077);
    for _ in 0..4000 {
        let mut text = String::new();
        for _ in 0..rng.below(12) {
            text.push_str(POOL[rng.below(POOL.len())]);
            text.push_str(SEPARATORS[rng.below(SEPARATORS.len())]);
        }
        for lang in [Some("fr"), Some("en"), None] {
            assert_eq!(
                fast.redact_in(&text, lang),
                reference.redact_in(&text, lang),
                "on {text:?}"
            );
        }
    }
}
