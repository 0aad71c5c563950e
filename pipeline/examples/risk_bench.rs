//! What the risk stage's judgements cost beside the encoder pass they share:
//! `cargo run --release -p vigie-pipeline --example risk_bench -- [FILE.jsonl] [ROUNDS]`
//! (default: the sample posts, 5 rounds; the repost cache off, batches of 8).
//!
//! Times the same posts through the stage as it was (misinformation head and known claims
//! only, every post embedded) and as it is (claim gate, stance head and four-way stance
//! classifier too, other
//! languages and texts without a claim not embedded), in one run, and prints both and
//! their ratio. Figures differ between machines: compare the ratio.

use std::time::Instant;

use vigie_models::{Encoder, RiskHead};
use vigie_pipeline::stages::language::LanguageStage;
use vigie_pipeline::stages::risk::{ClaimSource, RiskStage};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .unwrap_or_else(|| "datasets/samples/posts.jsonl".into());
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5);
    // The samples hold a line of invalid UTF-8 on purpose: read leniently.
    let raw = std::fs::read(&file)?;
    let texts: Vec<String> = String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text")?.as_str().map(str::to_string))
        .collect();
    let language = LanguageStage::default();
    let langs: Vec<Option<&str>> = texts
        .iter()
        .map(|t| vigie_pipeline::screener::known_language(language.detect(t).code))
        .collect();
    // The stage as it was judged every post in a scored-or-not language alike.
    let every_post_scored: Vec<Option<&str>> = langs.iter().map(|l| l.or(Some("en"))).collect();

    let model_dir = vigie_models::encoder::default_model_dir();
    let build = || -> anyhow::Result<RiskStage> {
        Ok(
            RiskStage::new(Encoder::load(&model_dir)?, RiskHead::builtin()?, 0.5)?
                .with_claims(ClaimSource::Builtin, 0.93)?
                .with_repost_cache(0),
        )
    };
    let before = build()?;
    let now = build()?
        .with_gate(RiskHead::builtin_gate()?, 0.5)?
        .with_stance(RiskHead::builtin_stance()?, 0.8)?
        .with_stance_classes(vigie_models::stance_classes::StanceClassifier::builtin()?)?;

    let time = |stage: &RiskStage, langs: &[Option<&str>]| -> anyhow::Result<f64> {
        let start = Instant::now();
        for _ in 0..rounds {
            for (chunk, chunk_langs) in texts.chunks(8).zip(langs.chunks(8)) {
                stage.score_in(chunk, chunk_langs)?;
            }
        }
        Ok((texts.len() * rounds) as f64 / start.elapsed().as_secs_f64())
    };
    // Warm up both (allocations, caches), then alternate.
    time(&before, &every_post_scored)?;
    time(&now, &langs)?;
    let mut b = Vec::new();
    let mut n = Vec::new();
    let mut same = Vec::new();
    for _ in 0..3 {
        b.push(time(&before, &every_post_scored)?);
        n.push(time(&now, &langs)?);
        // The same posts all embedded, to isolate the heads' own cost.
        same.push(time(&now, &every_post_scored)?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (b, n, same) = (median(&mut b), median(&mut n), median(&mut same));
    println!(
        "{} posts of {file}, {rounds} rounds, batches of 8, median of 3",
        texts.len()
    );
    println!("head + claims, every post embedded:        {b:8.1} posts/s");
    println!(
        "gate + stance (two-way and four-way) + head + claims, every post: {same:8.1} posts/s (cost x{:.3})",
        b / same
    );
    println!(
        "as the pipeline runs it (skips unscored):  {n:8.1} posts/s (cost x{:.3})",
        b / n
    );
    Ok(())
}
