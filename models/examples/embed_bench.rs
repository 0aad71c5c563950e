//! Embedding throughput: `cargo run --release -p vigie-models --example embed_bench -- FILE.jsonl [N] [BATCH]`.
//! Reads the `text` field of the first N rows and embeds them in batches of BATCH.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: embed_bench FILE.jsonl [N] [BATCH]")?;
    let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(256);
    let batch: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let texts: Vec<String> = std::fs::read_to_string(path)?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(String::from))
        .take(n)
        .collect();
    let started = Instant::now();
    let enc = vigie_models::Encoder::load(&vigie_models::encoder::default_model_dir())?;
    println!("load: {:.2}s", started.elapsed().as_secs_f64());
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
    println!(
        "{} texts, batch {}: {:.1} texts/s; batch latency p50 {:.0} ms, p99 {:.0} ms",
        texts.len(),
        batch,
        texts.len() as f64 / secs,
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}
