//! Where a screening pass's time goes, by pass size:
//! `cargo run --release -p vigie-pipeline --example pass_profile -- [FILE.jsonl] [SIZES]`
//! (default: the sample posts; sizes 8,16,32,64; the repost cache off).
//!
//! For each size, times whole passes of `Screener::process_timed` over the posts (cycled,
//! with fresh ids) beside the encoder's own pass over the same texts, and prints the
//! stages' shares. Figures differ between machines: compare the shares.

use std::time::{Duration, Instant};

use vigie_pipeline::config::Config;
use vigie_pipeline::contract::Origin;
use vigie_pipeline::screener::Screener;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .unwrap_or_else(|| "datasets/samples/posts.jsonl".into());
    let sizes: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "8,16,32,64".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(
        sizes.iter().all(|&s| s > 0),
        "pass sizes must be at least 1"
    );
    let raw = std::fs::read(&file).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    // The posts the pipeline would screen (as `vigie bench kafka` sends them).
    let posts: Vec<serde_json::Value> = raw
        .split(|b| *b == b'\n')
        .filter(|line| vigie_pipeline::decode::decode(line, usize::MAX).is_ok())
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .collect();
    anyhow::ensure!(!posts.is_empty(), "no posts in {file}");
    let mut config = Config::default();
    config.risk.repost_cache = 0;
    let screener = Screener::from_config(&config)?;
    let encoder = screener
        .risk()
        .map(|r| r.encoder())
        .ok_or_else(|| anyhow::anyhow!("no model"))?;
    let mut serial = 0usize;
    println!("size  pass ms  encoder ms  decode  language  redaction  risk  routing  (ms)");
    for &size in &sizes {
        let rounds = (512 / size).max(4);
        let (mut pass, mut enc) = (Duration::ZERO, Duration::ZERO);
        let mut stages = [Duration::ZERO; 5];
        for _ in 0..rounds {
            let (batch, texts): (Vec<Vec<u8>>, Vec<String>) = (0..size)
                .map(|_| {
                    let mut p = posts[serial % posts.len()].clone();
                    p["id"] = format!("profile-{serial}").into();
                    serial += 1;
                    let text = p["text"].as_str().unwrap_or_default().to_string();
                    (serde_json::to_vec(&p).unwrap_or_default(), text)
                })
                .unzip();
            let inputs: Vec<(Origin, &[u8])> = batch
                .iter()
                .map(|b| {
                    (
                        Origin::Line {
                            file: "profile".into(),
                            line: 0,
                        },
                        b.as_slice(),
                    )
                })
                .collect();
            let start = Instant::now();
            encoder.encode(&texts)?;
            enc += start.elapsed();
            let start = Instant::now();
            let (_, times) = screener.process_timed(&inputs);
            pass += start.elapsed();
            for (s, (_, t)) in stages.iter_mut().zip(times.named()) {
                *s += t;
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / rounds as f64;
        print!("{size:>4}  {:>7.1}  {:>10.1}", ms(pass), ms(enc));
        for s in stages {
            print!("  {:>7.1}", ms(s));
        }
        println!();
    }
    Ok(())
}
