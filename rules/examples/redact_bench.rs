//! Redaction throughput on real texts:
//! `cargo run --release -p vigie-rules --example redact_bench -- GAZETTEERS_DIR FILE.jsonl...`
//! (the `text` field of each row; every file is redacted for at least 2 seconds).

use std::time::{Duration, Instant};

use vigie_rules::{Redactor, RuleSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let gazetteers = args.next().ok_or("usage: redact_bench GAZETTEERS_DIR FILE.jsonl...")?;
    let mut rules = RuleSet::builtin()?;
    rules.load_gazetteers(std::path::Path::new(&gazetteers))?;
    let redactor = Redactor::new(rules);
    for file in args {
        let texts: Vec<String> = std::fs::read_to_string(&file)?
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(String::from))
            .collect();
        let bytes: usize = texts.iter().map(String::len).sum();
        let started = Instant::now();
        let mut rounds = 0usize;
        let mut found = 0usize;
        while started.elapsed() < Duration::from_secs(2) {
            for t in &texts {
                found += redactor.redact(t).findings.len();
            }
            rounds += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{file}: {} texts, {:.0} bytes each on average: {:.1} MB/s, {:.0} texts/s on one core ({} spans per round)",
            texts.len(),
            bytes as f64 / texts.len() as f64,
            (bytes * rounds) as f64 / secs / 1e6,
            (texts.len() * rounds) as f64 / secs,
            found / rounds
        );
    }
    Ok(())
}
