//! `vigie train` rebuilds the committed head from the shared datasets: same classifier,
//! same rows, and the same scores on dev texts. (A release build reproduces the file
//! byte for byte; this debug build's float rounding differs slightly, which moves the
//! MLP's weights along an equivalent solution, so scores are compared, not weights.)
//! Needs the real model and `../shared/datasets` (or `$VIGIE_DATA_DIR`); fails naming
//! them when missing.

use std::path::PathBuf;
use std::process::Command;

use vigie_models::{Encoder, RiskHead};

/// The first `n` texts and languages of a risk JSONL file.
fn dev_texts(path: &std::path::Path, n: usize) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some((
                v.get("text")?.as_str()?.to_string(),
                v.get("lang")?.as_str()?.to_string(),
            ))
        })
        .take(n)
        .collect()
}

#[test]
fn vigie_train_reproduces_the_committed_head() {
    let data = std::env::var("VIGIE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets")
        });
    assert!(
        data.join("risk/constraint_en_train.jsonl").is_file(),
        "shared datasets not found in {} (set VIGIE_DATA_DIR)",
        data.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("head.json");
    // From the repository root, as the README runs it: the gazetteers (`../shared/`) that
    // redaction and language detection read, and so the texts the head sees, resolve
    // from there.
    let run = Command::new(env!("CARGO_BIN_EXE_vigie"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["train", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "vigie train failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("fr, trained without French"),
        "the comparison tables are printed:\n{stdout}"
    );

    let fresh = RiskHead::load(&out).unwrap();
    let committed = RiskHead::builtin().unwrap();
    assert_eq!(fresh.kind_name(), committed.kind_name());
    assert_eq!(fresh.trained_ids, committed.trained_ids);
    assert_eq!(fresh.adapted_languages, committed.adapted_languages);
    assert_eq!(fresh.options, committed.options);

    let encoder = Encoder::load(&vigie_models::encoder::default_model_dir()).unwrap();
    let mut texts = dev_texts(&data.join("risk/constraint_en_val.jsonl"), 100);
    texts.extend(dev_texts(&data.join("risk/daccord_fr_dev.jsonl"), 100));
    let vectors = encoder
        .features(&texts.iter().map(|t| t.0.as_str()).collect::<Vec<_>>())
        .unwrap();
    let gaps: Vec<f32> = vectors
        .iter()
        .zip(&texts)
        .map(|(v, (_, lang))| {
            (fresh.score(v, Some(lang)).unwrap() - committed.score(v, Some(lang)).unwrap()).abs()
        })
        .collect();
    let worst = gaps.iter().copied().fold(0.0f32, f32::max);
    let mean = gaps.iter().sum::<f32>() / gaps.len() as f32;
    assert!(
        worst < 0.1 && mean < 0.02,
        "scores of the retrained head differ: largest {worst}, mean {mean}"
    );
}
