//! Embedding speed and memory:
//! `cargo run --release -p vigie-models --example embed_bench -- FILE.jsonl [N] [BATCHES] [--reference]`.
//!
//! Reads the `text` field of the first N rows (default 512), then for each batch size in
//! BATCHES (default `1,8,64`) embeds them in file order, batch by batch, as the pipeline
//! does, and prints posts/s, the p50/p99 latency of a batch and the resident memory.
//! `--reference` runs candle-transformers' `BertModel` instead of the fast forward.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let reference = args.iter().any(|a| a == "--reference");
    args.retain(|a| a != "--reference");
    let path = args
        .first()
        .ok_or("usage: embed_bench FILE.jsonl [N] [BATCHES] [--reference]")?;
    let n: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(512);
    let batches: Vec<usize> = args
        .get(2)
        .map_or("1,8,64", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let texts: Vec<String> = String::from_utf8_lossy(&std::fs::read(path)?)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(String::from))
        .take(n)
        .collect();
    let started = Instant::now();
    let enc =
        vigie_models::Encoder::load_with(&vigie_models::encoder::default_model_dir(), reference)?;
    let (rss, _) = vigie_models::bench::resident_mb();
    println!(
        "{} model loaded in {:.2}s, resident {rss:.0} MB",
        if reference {
            "reference (candle-transformers BertModel)"
        } else {
            "fast"
        },
        started.elapsed().as_secs_f64()
    );
    let tokens: usize = enc.token_counts(&texts)?.iter().sum();
    println!(
        "{} texts, {:.1} tokens per text (prefix and special tokens included)",
        texts.len(),
        tokens as f64 / texts.len() as f64
    );
    for batch in batches {
        let batch = batch.max(1);
        let started = Instant::now();
        let mut latencies = Vec::new();
        for chunk in texts.chunks(batch) {
            let t = Instant::now();
            enc.embed(chunk)?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let secs = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
        let (rss, peak) = vigie_models::bench::resident_mb();
        println!(
            "batch {batch:>3}: {:>6.1} posts/s, {:>6.0} tokens/s; batch latency p50 {:.0} ms, p99 {:.0} ms; resident {rss:.0} MB (peak {peak:.0} MB)",
            texts.len() as f64 / secs,
            tokens as f64 / secs,
            pct(0.5),
            pct(0.99),
        );
    }
    Ok(())
}
