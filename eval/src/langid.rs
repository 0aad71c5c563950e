//! Language identification: accuracy per text kind and a confusion matrix.

use std::collections::BTreeMap;

use comfy_table::Table;
use serde::Serialize;

use crate::datasets::LangIdRow;

#[derive(Debug, Clone, Serialize)]
pub struct LangIdReport {
    pub total: usize,
    pub accuracy: f64,
    /// kind (sentences, word-pairs, ...) -> (correct, total, accuracy)
    pub by_kind: BTreeMap<String, KindAccuracy>,
    /// gold -> predicted -> count
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct KindAccuracy {
    pub correct: usize,
    pub total: usize,
    pub accuracy: f64,
}

pub fn evaluate(rows: &[LangIdRow], mut predict: impl FnMut(&str) -> String) -> LangIdReport {
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut correct = 0;
    for row in rows {
        let predicted = predict(&row.text);
        let ok = predicted == row.lang;
        correct += ok as usize;
        let kind = row.kind.clone().unwrap_or_else(|| "all".into());
        let entry = by_kind.entry(kind).or_default();
        entry.0 += ok as usize;
        entry.1 += 1;
        *confusion
            .entry(row.lang.clone())
            .or_default()
            .entry(predicted)
            .or_default() += 1;
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    LangIdReport {
        total: rows.len(),
        accuracy: ratio(correct, rows.len()),
        by_kind: by_kind
            .into_iter()
            .map(|(k, (c, t))| {
                (
                    k,
                    KindAccuracy {
                        correct: c,
                        total: t,
                        accuracy: ratio(c, t),
                    },
                )
            })
            .collect(),
        confusion,
    }
}

impl LangIdReport {
    pub fn tables(&self) -> String {
        let mut kinds = Table::new();
        kinds.set_header(["kind", "correct", "total", "accuracy"]);
        for (kind, k) in &self.by_kind {
            kinds.add_row([
                kind.clone(),
                k.correct.to_string(),
                k.total.to_string(),
                format!("{:.2}%", k.accuracy * 100.0),
            ]);
        }
        kinds.add_row([
            "all".to_string(),
            String::new(),
            self.total.to_string(),
            format!("{:.2}%", self.accuracy * 100.0),
        ]);
        let predicted: Vec<String> = {
            let mut p: Vec<String> = self
                .confusion
                .values()
                .flat_map(|m| m.keys().cloned())
                .collect();
            p.sort();
            p.dedup();
            p
        };
        let mut confusion = Table::new();
        let mut header = vec!["gold \\ predicted".to_string()];
        header.extend(predicted.iter().cloned());
        confusion.set_header(header);
        for (gold, row) in &self.confusion {
            let mut cells = vec![gold.clone()];
            cells.extend(
                predicted
                    .iter()
                    .map(|p| row.get(p).copied().unwrap_or(0).to_string()),
            );
            confusion.add_row(cells);
        }
        format!("Language identification\n{kinds}\nConfusion matrix\n{confusion}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str, lang: &str, kind: &str) -> LangIdRow {
        LangIdRow {
            id: text.into(),
            text: text.into(),
            lang: lang.into(),
            kind: Some(kind.into()),
        }
    }

    #[test]
    fn accuracy_and_confusion() {
        let rows = [
            row("a", "fr", "sentences"),
            row("b", "en", "sentences"),
            row("c", "other", "word-pairs"),
        ];
        let r = evaluate(&rows, |t| if t == "a" { "fr".into() } else { "en".into() });
        assert_eq!(r.by_kind["sentences"].correct, 2);
        assert_eq!(r.by_kind["word-pairs"].correct, 0);
        assert_eq!(r.confusion["other"]["en"], 1);
        assert!((r.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert!(r.tables().contains("word-pairs"));
    }
}
