//! Prints the rows of a language-ID file that the language stage gets wrong.
//! `cargo run --example langid_errors -- FILE [KIND]`
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
    for line in file.lines() {
        let row: serde_json::Value = serde_json::from_str(&line?)?;
        let kind = row["kind"].as_str().unwrap_or("");
        if args.get(2).is_some_and(|k| k != kind) {
            continue;
        }
        let text = row["text"].as_str().unwrap_or("");
        let gold = row["lang"].as_str().unwrap_or("");
        let got = stage.detect(text);
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
    Ok(())
}
