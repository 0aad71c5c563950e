//! Redaction throughput on real texts:
//! `cargo run --release -p vigie-rules --example redact_bench -- GAZETTEERS_DIR FILE.jsonl...`
//! (the `text` field of each row; every file is redacted for at least 2 seconds).

use std::time::{Duration, Instant};

use vigie_rules::{Redactor, RuleSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let gazetteers = args
        .next()
        .ok_or("usage: redact_bench GAZETTEERS_DIR FILE.jsonl...")?;
    // VIGIE_BENCH_RULES=DIR times a rule directory of one's own instead of the built-in sets.
    let mut rules = match std::env::var_os("VIGIE_BENCH_RULES") {
        Some(dir) => RuleSet::load_dir(std::path::Path::new(&dir))?,
        None => RuleSet::builtin()?,
    };
    rules.load_gazetteers(std::path::Path::new(&gazetteers))?;
    let per_entry = std::env::var_os("VIGIE_BENCH_PER_RULE").is_some();
    let entries = if per_entry {
        rules.single_entries()
    } else {
        Vec::new()
    };
    if per_entry {
        for rule in rules.rules() {
            let gate = vigie_rules::gate::Gate::of_pattern(&rule.spec.pattern);
            let rewritten = vigie_rules::word_boundaries::rewrite(&rule.spec.pattern);
            let unicode_b =
                rewritten.matches(r"\b").count() - rewritten.matches(r"(?-u:\b)").count();
            println!(
                "gate {:<26} digits >= {:<2} unicode \\b {unicode_b} strings {:?}",
                rule.spec.id,
                gate.min_digits,
                gate.describe()
            );
        }
    }
    let redactor = Redactor::new(rules);
    // VIGIE_BENCH_SECS: seconds per file (2 by default); longer runs profile better.
    let seconds: f64 = std::env::var("VIGIE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
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
        // VIGIE_BENCH_ROUNDS=N: exactly N rounds, for counting instructions with `perf stat`.
        let fixed_rounds: Option<usize> = std::env::var("VIGIE_BENCH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok());
        while fixed_rounds.map_or(started.elapsed() < Duration::from_secs_f64(seconds), |n| {
            rounds < n
        }) {
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
        if per_entry {
            // Which rules fire on this corpus, and how often.
            let mut fired: std::collections::BTreeMap<String, usize> = Default::default();
            for t in &texts {
                for f in redactor.redact(t).findings {
                    *fired.entry(f.rule).or_default() += 1;
                }
            }
            let mut fired: Vec<_> = fired.into_iter().collect();
            fired.sort_by_key(|e| std::cmp::Reverse(e.1));
            println!("  findings by rule: {fired:?}");
            // VIGIE_BENCH_SHOW=RULE quotes a few of that rule's findings (from the corpus given).
            if let Ok(show) = std::env::var("VIGIE_BENCH_SHOW") {
                let quoted = texts.iter().flat_map(|t| {
                    let chars: Vec<char> = t.chars().collect();
                    redactor
                        .redact(t)
                        .findings
                        .into_iter()
                        .filter(|f| f.rule == show)
                        .map(move |f| {
                            let at = |a: usize, b: usize| {
                                chars[a.min(chars.len())..b.min(chars.len())]
                                    .iter()
                                    .collect::<String>()
                            };
                            format!(
                                "{}[{}]{}",
                                at(f.start.saturating_sub(30), f.start),
                                at(f.start, f.end),
                                at(f.end, f.end + 30)
                            )
                        })
                });
                for q in quoted.take(25) {
                    println!("    {}", q.replace('\n', " "));
                }
            }
        }
        if per_entry {
            // How often each rule's gate lets it run on this corpus.
            let index = vigie_rules::gate::GateIndex::new(
                redactor
                    .rules()
                    .rules()
                    .iter()
                    .map(|r| vigie_rules::gate::Gate::of_pattern(&r.spec.pattern))
                    .collect(),
            );
            let mut opened = vec![0usize; redactor.rules().rules().len()];
            for t in &texts {
                for (n, open) in opened.iter_mut().zip(index.open(t)) {
                    *n += usize::from(open);
                }
            }
            let mut opened: Vec<(usize, &str)> = opened
                .into_iter()
                .zip(redactor.rules().rules())
                .map(|(n, r)| (n, r.spec.id.as_str()))
                .filter(|(n, _)| *n > 0)
                .collect();
            opened.sort_by_key(|e| std::cmp::Reverse(e.0));
            let per_text = opened.iter().map(|(n, _)| n).sum::<usize>() as f64 / texts.len() as f64;
            let shown: Vec<String> = opened
                .iter()
                .take(20)
                .map(|(n, id)| format!("{id} {:.0}%", 100.0 * *n as f64 / texts.len() as f64))
                .collect();
            println!(
                "  rules run per text: {per_text:.1}; most often: {}",
                shown.join(", ")
            );
        }
        // Where the time goes: each entry alone over one round.
        let mut times: Vec<(f64, &str)> = entries
            .iter()
            .map(|(id, set)| {
                let single = Redactor::new(set.clone());
                let t = Instant::now();
                let mut rounds = 0;
                while t.elapsed() < Duration::from_millis(300) {
                    for text in &texts {
                        std::hint::black_box(single.redact(text));
                    }
                    rounds += 1;
                }
                (t.elapsed().as_secs_f64() / rounds as f64, id.as_str())
            })
            .collect();
        times.sort_by(|a, b| b.0.total_cmp(&a.0));
        // The cheapest entry is mostly the redactor's own work: what each costs above it.
        let floor = times.last().map_or(0.0, |t| t.0);
        for (secs, id) in times.iter().take(25) {
            let above = (secs - floor) / texts.len() as f64 * 1e9;
            println!(
                "  {id:<28} {:.1} MB/s alone, {above:.0} ns per text above the cheapest",
                bytes as f64 / secs / 1e6
            );
        }
    }
    Ok(())
}
