//! Where the language stage goes wrong on a labeled file, for tuning its rules:
//! `cargo run -p vigie-pipeline --example langid_errors -- [FILE] [GAZETTEERS_DIR] [-v]`
//! (defaults: ../shared/datasets/langid/lingua_dev.jsonl, ../shared/gazetteers).
//! Prints error counts by gold language (source language) and prediction; `-v` lists the
//! misclassified sentences too.

use std::collections::BTreeMap;
use std::path::Path;

use vigie_pipeline::stages::language::{LanguageStage, Lexicon};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let mut positional = args.iter().filter(|a| *a != "-v");
    let file = positional
        .next()
        .map_or("../shared/datasets/langid/lingua_dev.jsonl", |s| s.as_str());
    let gazetteers = positional
        .next()
        .map_or("../shared/gazetteers", |s| s.as_str());
    let stage = LanguageStage::new(Some(Lexicon::load(Path::new(gazetteers))?));
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(file)?.lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        if row["kind"] != "sentences" {
            continue;
        }
        let (text, gold) = (
            row["text"].as_str().unwrap_or(""),
            row["lang"].as_str().unwrap_or(""),
        );
        let found = stage.detect(text);
        if found.code.as_str() != gold {
            let source = row["source_lang"].as_str().unwrap_or("?");
            *errors
                .entry(format!("{gold}({source}) -> {}", found.code.as_str()))
                .or_default() += 1;
            if verbose {
                println!(
                    "{gold} -> {} ({:.2}) {}",
                    found.code.as_str(),
                    found.confidence,
                    text.chars().take(100).collect::<String>()
                );
            }
        }
    }
    println!(
        "{} errors on sentences: {errors:?}",
        errors.values().sum::<usize>()
    );
    Ok(())
}
