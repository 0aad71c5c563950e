//! Prints the rows of a language-ID file that the language stage gets wrong.
//! `cargo run --example langid_errors -- FILE [measure]` (measure: the half never trained on),
//! or `-- --text TEXT…` for the signals the model reads.
use std::io::BufRead;

use vigie_pipeline::stages::language::{LanguageStage, Lexicon};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/gazetteers");
    let stage = LanguageStage::new(Some(Lexicon::load(&dir)?))?;
    let plain = LanguageStage::default();
    if args[1] == "--text" {
        for text in &args[2..] {
            let o = stage.observe_signals(text);
            println!(
                "{text}: {:?} whatlang={:?}",
                stage.detect(text),
                plain.detect(text)
            );
            if let Some(o) = o {
                for (n, v) in vigie_pipeline::stages::language::SIGNALS
                    .iter()
                    .zip(o.signals)
                {
                    println!("  {n} = {v:.3}");
                }
            }
        }
        return Ok(());
    }
    let file = std::io::BufReader::new(std::fs::File::open(&args[1])?);
    let mut counts = (0usize, 0usize);
    for line in file.lines() {
        let row: serde_json::Value = serde_json::from_str(&line?)?;
        let kind = row["kind"].as_str().unwrap_or("");
        let id = row["id"].as_str().unwrap_or("");
        if args.get(2).is_some_and(|k| k == "measure")
            && !vigie_pipeline::langid_training::is_measure(id)
        {
            continue;
        }
        let text = row["text"].as_str().unwrap_or("");
        let gold = row["lang"].as_str().unwrap_or("");
        let got = stage.detect(text);
        if (gold == "fr" || gold == "en") && text.chars().count() >= 10 {
            counts.0 += 1;
            counts.1 += (got.code.as_str() == gold) as usize;
        }
        if got.code.as_str() != gold {
            let w = plain.detect(text);
            println!(
                "{gold}\t{}\t{:.2}\twl={} {:.2}\t{kind}\t{text}",
                got.code.as_str(),
                got.confidence,
                w.code.as_str(),
                w.confidence
            );
        }
    }
    eprintln!(
        "French and English, >= 10 characters: {} of {} right",
        counts.1, counts.0
    );
    Ok(())
}
