//! The language stage with the committed French-or-English model, on the halves of the
//! language-ID files it never trained on, and `vigie train --head langid` reproducing it.

use std::path::{Path, PathBuf};

use vigie_eval::datasets::{read_jsonl, LangIdRow};
use vigie_pipeline::contract::LangCode;
use vigie_pipeline::langid_training::{is_measure, train, FitOptions, Sources};
use vigie_pipeline::stages::language::{FrEnModel, LanguageStage, Lexicon};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared() -> PathBuf {
    root().join("../shared")
}

fn stage() -> LanguageStage {
    LanguageStage::new(Some(Lexicon::load(&shared().join("gazetteers")).unwrap())).unwrap()
}

fn measured(path: &Path) -> Vec<LangIdRow> {
    let rows: Vec<LangIdRow> = read_jsonl(path).unwrap();
    rows.into_iter().filter(|r| is_measure(&r.id)).collect()
}

/// Share of `rows` the stage labels as the row says.
fn accuracy<'a>(stage: &LanguageStage, rows: impl Iterator<Item = &'a LangIdRow>) -> (f64, usize) {
    let (mut right, mut total) = (0, 0);
    for row in rows {
        total += 1;
        right += (stage.detect(&row.text).code.as_str() == row.lang) as usize;
    }
    (right as f64 / total.max(1) as f64, total)
}

#[test]
fn chat_lines_of_ten_characters_or_more_are_read_right() {
    let stage = stage();
    let rows = measured(&root().join("datasets/langid/chat_lines.jsonl"));
    let fr_en = || {
        rows.iter()
            .filter(|r| r.lang == "fr" || r.lang == "en")
            .filter(|r| r.text.chars().count() >= 10)
    };
    let (acc, n) = accuracy(&stage, fr_en());
    assert!(
        n > 300 && acc >= 0.98,
        "French and English chat lines: {acc:.4} of {n}"
    );
    let french: Vec<_> = fr_en().filter(|r| r.lang == "fr").collect();
    let to_other = french
        .iter()
        .filter(|r| stage.detect(&r.text).code == LangCode::Other)
        .count();
    assert!(
        to_other as f64 <= 0.01 * french.len() as f64,
        "{to_other} of {} French lines sent to other",
        french.len()
    );
    let (acc, n) = accuracy(&stage, rows.iter().filter(|r| r.lang == "other"));
    assert!(acc >= 0.8, "other languages: {acc:.4} of {n}");
    let (acc, n) = accuracy(&stage, rows.iter().filter(|r| r.lang == "und"));
    assert!(acc >= 0.9, "nothing to read: {acc:.4} of {n}");
}

#[test]
fn shared_sentences_and_word_pairs_hold() {
    let stage = stage();
    let rows = measured(&shared().join("datasets/langid/lingua_dev.jsonl"));
    let of_kind = |kind: &'static str| rows.iter().filter(move |r| r.kind.as_deref() == Some(kind));
    let (acc, n) = accuracy(&stage, of_kind("sentences"));
    assert!(n > 4000 && acc >= 0.99, "sentences: {acc:.4} of {n}");
    let (acc, n) = accuracy(&stage, of_kind("word-pairs"));
    assert!(n > 4000 && acc >= 0.95, "word pairs: {acc:.4} of {n}");
}

#[test]
fn training_reproduces_the_committed_model() {
    let sources = Sources {
        shared_dir: shared().join("datasets"),
        project_dir: root().join("datasets"),
        gazetteers: shared().join("gazetteers"),
    };
    let trained = train(&sources, FitOptions::default(), 17, |_| {}).unwrap();
    let committed = FrEnModel::built_in().unwrap();
    assert_eq!(trained.model.signals, committed.signals);
    for (i, (a, b)) in trained
        .model
        .weights
        .iter()
        .zip(&committed.weights)
        .enumerate()
    {
        assert!(
            (a - b).abs() < 1e-3,
            "weight of {}: trained {a}, committed {b}: run `vigie train --head langid`",
            committed.signals[i]
        );
    }
    assert!((trained.model.bias - committed.bias).abs() < 1e-3);
    assert!(
        trained.measure_accuracy > 0.9,
        "{}",
        trained.measure_accuracy
    );
}
