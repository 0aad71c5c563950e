//! What the token tagger costs: `cargo run --release -p vigie-pipeline --example
//! tagger_bench -- [FILE.jsonl] [ROUNDS]` (default: the sample posts, 5 rounds; the repost
//! cache off, batches of 8).
//!
//! Screens the same posts through the whole pipeline with the tagger off (rules, then the
//! risk stage's own encoder pass) and on (one pass on the raw text that the tagger reads
//! and the risk heads pool), alternately in one run, and prints posts/s, MB/s and their
//! ratio; then redaction alone, rules against rules and tagger. Figures differ between
//! machines: compare the ratios.

use std::time::Instant;

use vigie_pipeline::config::Config;
use vigie_pipeline::contract::Origin;
use vigie_pipeline::screener::Screener;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .unwrap_or_else(|| "datasets/samples/posts.jsonl".into());
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5);
    // The samples hold a line of invalid UTF-8 on purpose: read leniently.
    let raw = std::fs::read(&file)?;
    let lines: Vec<Vec<u8>> = String::from_utf8_lossy(&raw)
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .map(|l| l.as_bytes().to_vec())
        .collect();
    let texts: Vec<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text")?.as_str().map(str::to_string))
        .collect();
    let bytes: usize = texts.iter().map(|t| t.len()).sum();

    let build = |tagger: bool| -> anyhow::Result<Screener> {
        let mut config = Config::default();
        config.redaction.tagger = tagger;
        config.risk.repost_cache = 0;
        Ok(Screener::from_config(&config)?)
    };
    let (off, on) = (build(false)?, build(true)?);
    anyhow::ensure!(on.tags() && !off.tags(), "the tagger did not load");
    let inputs: Vec<(Origin, &[u8])> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let origin = Origin::Line {
                file: "bench".into(),
                line: i + 1,
            };
            (origin, l.as_slice())
        })
        .collect();
    let pipeline = |s: &Screener| -> f64 {
        let start = Instant::now();
        for _ in 0..rounds {
            for chunk in inputs.chunks(8) {
                s.process(chunk);
            }
        }
        start.elapsed().as_secs_f64()
    };
    let redaction = |s: &Screener| -> anyhow::Result<f64> {
        let start = Instant::now();
        for _ in 0..rounds {
            for t in &texts {
                s.redact_text(t)?;
            }
        }
        Ok(start.elapsed().as_secs_f64())
    };
    pipeline(&off);
    pipeline(&on);
    let (mut t_off, mut t_on, mut r_off, mut r_on) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..2 {
        t_off += pipeline(&off);
        t_on += pipeline(&on);
        r_off += redaction(&off)?;
        r_on += redaction(&on)?;
    }
    let posts = (texts.len() * rounds * 2) as f64;
    let mb = (bytes * rounds * 2) as f64 / 1e6;
    println!(
        "{} posts ({} bytes each on average), {rounds} rounds x 2",
        texts.len(),
        bytes / texts.len().max(1)
    );
    println!(
        "pipeline, tagger off: {:>8.1} posts/s {:>6.3} MB/s",
        posts / t_off,
        mb / t_off
    );
    println!(
        "pipeline, tagger on:  {:>8.1} posts/s {:>6.3} MB/s  (x{:.2})",
        posts / t_on,
        mb / t_on,
        t_off / t_on
    );
    println!(
        "redaction, rules:     {:>8.1} posts/s {:>6.3} MB/s",
        posts / r_off,
        mb / r_off
    );
    println!(
        "redaction, + tagger:  {:>8.1} posts/s {:>6.3} MB/s  (one post at a time)",
        posts / r_on,
        mb / r_on
    );
    Ok(())
}
