//! Every finding on every row of JSONL files, one line each, for comparing two builds:
//! `cargo run --release -p vigie-rules --example dump_findings -- GAZETTEERS_DIR FILE.jsonl...`
//! (the `text` field of each row, redacted in the row's `lang` when it has one).

use vigie_rules::{Redactor, RuleSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let gazetteers = args
        .next()
        .ok_or("usage: dump_findings GAZETTEERS_DIR FILE.jsonl...")?;
    let mut rules = RuleSet::builtin()?;
    rules.load_gazetteers(std::path::Path::new(&gazetteers))?;
    let redactor = Redactor::new(rules);
    for file in args {
        for (n, line) in std::fs::read_to_string(&file)?.lines().enumerate() {
            let Ok(row) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let Some(text) = row.get("text").and_then(|t| t.as_str()) else {
                continue;
            };
            let lang = row.get("lang").and_then(|l| l.as_str());
            for f in redactor.redact_in(text, lang).findings {
                // Offsets, not the text: two builds compare as well, and no identifier is printed.
                println!("{file}:{n} {} {}..{} {}", f.kind, f.start, f.end, f.rule);
            }
        }
    }
    Ok(())
}
