//! The lean Unigram tokenizer gives the same token ids and offsets as the `tokenizers`
//! crate's own model, row by row, on every text of every shared dataset and of the
//! project's datasets (as the encoder runs them: `query: ` prefix, special tokens,
//! truncation at 256). Needs the real model (`vigie model fetch`) and `../shared/datasets`
//! (or `$VIGIE_DATA_DIR`); fails naming the fix when either is missing.

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationParams};
use vigie_models::encoder::{default_model_dir, EMBEDDING_PREFIX, MAX_TOKENS, TOKENIZER_FILE};
use vigie_models::lean_unigram;

fn shared() -> PathBuf {
    std::env::var("VIGIE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets"))
}

fn jsonl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            jsonl_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
}

/// Every string field named `text` or `claim` of every row.
fn texts(file: &Path) -> Vec<String> {
    let raw = std::fs::read(file).unwrap();
    String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|v| {
            ["text", "claim"]
                .into_iter()
                .filter_map(|k| v.get(k).and_then(|t| t.as_str()).map(String::from))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn same_ids_and_offsets_as_the_tokenizers_crate_on_every_dataset() {
    let path = default_model_dir().join(TOKENIZER_FILE);
    assert!(
        path.is_file(),
        "{} not found: run `vigie model fetch`",
        path.display()
    );
    let truncation = Some(TruncationParams {
        max_length: MAX_TOKENS,
        ..Default::default()
    });
    let mut theirs = Tokenizer::from_file(&path).unwrap();
    theirs.with_truncation(truncation.clone()).unwrap();
    let mut ours = lean_unigram::load(&path).unwrap();
    ours.with_truncation(truncation).unwrap();

    let mut files = Vec::new();
    let data = shared();
    jsonl_files(&data, &mut files);
    assert!(
        files.len() >= 10,
        "shared datasets not found in {} (set VIGIE_DATA_DIR)",
        data.display()
    );
    jsonl_files(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets"),
        &mut files,
    );

    let mut rows = 0;
    for file in &files {
        let texts: Vec<String> = texts(file)
            .into_iter()
            .map(|t| format!("{EMBEDDING_PREFIX}{t}"))
            .collect();
        for chunk in texts.chunks(512) {
            let a = theirs
                .encode_batch_char_offsets(chunk.to_vec(), true)
                .unwrap();
            let b = ours
                .encode_batch_char_offsets(chunk.to_vec(), true)
                .unwrap();
            for ((x, y), text) in a.iter().zip(&b).zip(chunk) {
                assert_eq!(x.get_ids(), y.get_ids(), "{}: {text:?}", file.display());
                assert_eq!(
                    x.get_offsets(),
                    y.get_offsets(),
                    "{}: {text:?}",
                    file.display()
                );
                assert_eq!(
                    x.get_special_tokens_mask(),
                    y.get_special_tokens_mask(),
                    "{}: {text:?}",
                    file.display()
                );
            }
            rows += chunk.len();
        }
    }
    assert!(rows > 80_000, "only {rows} texts compared");

    // Texts shaped to be awkward: unknown characters in runs, emoji, invisible and
    // combining characters, special-token text, very long words and truncation.
    let awkward = [
        "𓀀𓀁𓀂 hieroglyphs",
        "👍👍👍",
        "zero\u{200B}width\u{2060}joiner\u{FEFF}",
        "e\u{301}te\u{301} combining",
        "<s> literal </s> <unk> <mask>",
        "",
        "   ",
        &"a".repeat(3000),
        &"antidisestablishmentarianism ".repeat(40),
        "ＦＵＬＬＷＩＤＴＨ １２３ ٠١٢٣",
    ];
    for text in awkward {
        let t = format!("{EMBEDDING_PREFIX}{text}");
        let x = theirs.encode_char_offsets(t.as_str(), true).unwrap();
        let y = ours.encode_char_offsets(t.as_str(), true).unwrap();
        assert_eq!(x.get_ids(), y.get_ids(), "{text:?}");
        assert_eq!(x.get_offsets(), y.get_offsets(), "{text:?}");
    }
}
