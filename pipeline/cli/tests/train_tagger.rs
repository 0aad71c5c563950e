//! `vigie train --head tagger` on a small seeded sample: the same seed gives the same
//! tagger, byte for byte, and the tagger it trains finds names in the measure side of the
//! shared named-entity sets, which it never saw. (The committed tagger comes from the full
//! sample: `scripts/reproduce-heads`.) Needs the real model, `../shared/datasets` and
//! `../shared/gazetteers` (or `$VIGIE_DATA_DIR`, `$VIGIE_GAZETTEERS`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn data_dir() -> PathBuf {
    std::env::var("VIGIE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets")
        })
}

fn train(out: &Path) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_vigie"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(["train", "--head", "tagger", "--seed", "5", "--cap", "40"])
        .args(["--synthetic", "150", "--epochs", "4"])
        .arg("--data-dir")
        .arg(data_dir())
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "warn")
        .output()
        .expect("vigie runs");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "vigie train --head tagger failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

/// The PERSON recall printed for a file's measure side.
fn person_recall(report: &str, file: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.contains(file))
        .unwrap_or_else(|| panic!("no line for {file} in\n{report}"));
    let after = line.split("PERSON R ").nth(1).expect("a PERSON figure");
    after
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a recall")
}

#[test]
fn a_seeded_tagger_is_reproduced_and_finds_names_it_never_saw() {
    assert!(
        data_dir().join("redaction/ner_en_train.jsonl").is_file(),
        "shared datasets not found in {} (set VIGIE_DATA_DIR)",
        data_dir().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let report = train(&a);
    train(&b);
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "the same seed gives the same tagger"
    );
    // A tagger that learned nothing finds no name (recall 0); 40 rows a file and a few
    // synthetic posts are enough to find most.
    for file in ["ner_en_train", "ner_fr_train"] {
        let recall = person_recall(&report, file);
        assert!(recall >= 0.4, "{file}: PERSON recall {recall}\n{report}");
    }
}
