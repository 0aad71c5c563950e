//! Language identification: accuracy per text kind and per length, a confusion matrix,
//! and how well the `mixed` flag is set where the rows say.

use std::collections::BTreeMap;

use comfy_table::Table;
use serde::Serialize;

use crate::datasets::LangIdRow;

/// Length buckets in characters (code points): 1–9, 10–19, 20–49, ≥ 50.
pub const LENGTH_BUCKETS: [(usize, &str); 4] =
    [(1, "1-9"), (10, "10-19"), (20, "20-49"), (50, ">=50")];

/// What the detector answered for a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicted {
    pub lang: String,
    pub mixed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LangIdReport {
    pub total: usize,
    pub accuracy: f64,
    /// kind (sentences, word-pairs, ...) -> (correct, total, accuracy)
    pub by_kind: BTreeMap<String, KindAccuracy>,
    /// length bucket -> (correct, total, accuracy)
    pub by_length: BTreeMap<String, KindAccuracy>,
    /// gold -> predicted -> count
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    /// The `mixed` flag on rows that say whether they are mixed.
    pub mixed: Option<FlagScore>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct KindAccuracy {
    pub correct: usize,
    pub total: usize,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FlagScore {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub precision: f64,
    pub recall: f64,
}

fn bucket_of(text: &str) -> &'static str {
    let n = text.chars().count();
    LENGTH_BUCKETS
        .iter()
        .rev()
        .find(|(min, _)| n >= *min)
        .map_or("0", |(_, name)| name)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn accuracies(counts: BTreeMap<String, (usize, usize)>) -> BTreeMap<String, KindAccuracy> {
    counts
        .into_iter()
        .map(|(k, (correct, total))| {
            let accuracy = ratio(correct, total);
            (
                k,
                KindAccuracy {
                    correct,
                    total,
                    accuracy,
                },
            )
        })
        .collect()
}

pub fn evaluate(rows: &[LangIdRow], mut predict: impl FnMut(&str) -> Predicted) -> LangIdReport {
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut by_length: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut mixed: Option<FlagScore> = None;
    let mut correct = 0;
    for row in rows {
        let predicted = predict(&row.text);
        let ok = predicted.lang == row.lang;
        correct += ok as usize;
        let kind = row.kind.clone().unwrap_or_else(|| "all".into());
        for (map, key) in [
            (&mut by_kind, kind),
            (&mut by_length, bucket_of(&row.text).to_string()),
        ] {
            let entry = map.entry(key).or_default();
            entry.0 += ok as usize;
            entry.1 += 1;
        }
        *confusion
            .entry(row.lang.clone())
            .or_default()
            .entry(predicted.lang)
            .or_default() += 1;
        if let Some(gold) = row.mixed {
            let m = mixed.get_or_insert_with(FlagScore::default);
            match (gold, predicted.mixed) {
                (true, true) => m.true_positives += 1,
                (false, true) => m.false_positives += 1,
                (true, false) => m.false_negatives += 1,
                (false, false) => {}
            }
        }
    }
    if let Some(m) = &mut mixed {
        m.precision = ratio(m.true_positives, m.true_positives + m.false_positives);
        m.recall = ratio(m.true_positives, m.true_positives + m.false_negatives);
    }
    LangIdReport {
        total: rows.len(),
        accuracy: ratio(correct, rows.len()),
        by_kind: accuracies(by_kind),
        by_length: accuracies(by_length),
        confusion,
        mixed,
    }
}

impl LangIdReport {
    pub fn tables(&self) -> String {
        let accuracy_table =
            |title: &str, rows: &BTreeMap<String, KindAccuracy>, order: &[&str]| {
                let mut table = Table::new();
                table.set_header([title, "correct", "total", "accuracy"]);
                let mut keys: Vec<&String> = rows.keys().collect();
                keys.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
                for key in keys {
                    let k = &rows[key];
                    table.add_row([
                        key.clone(),
                        k.correct.to_string(),
                        k.total.to_string(),
                        format!("{:.2}%", k.accuracy * 100.0),
                    ]);
                }
                table
            };
        let mut kinds = accuracy_table("kind", &self.by_kind, &[]);
        kinds.add_row([
            "all".to_string(),
            String::new(),
            self.total.to_string(),
            format!("{:.2}%", self.accuracy * 100.0),
        ]);
        let order: Vec<&str> = LENGTH_BUCKETS.iter().map(|(_, n)| *n).collect();
        let lengths = accuracy_table("characters", &self.by_length, &order);
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
        let mixed = match &self.mixed {
            Some(m) => format!(
                "\nMixed French-English flag: precision {:.2}, recall {:.2} ({} flagged right, {} wrongly, {} missed)",
                m.precision, m.recall, m.true_positives, m.false_positives, m.false_negatives
            ),
            None => String::new(),
        };
        format!(
            "Language identification\n{kinds}\nBy length\n{lengths}\nConfusion matrix\n{confusion}{mixed}"
        )
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
            mixed: None,
        }
    }

    fn said(lang: &str) -> Predicted {
        Predicted {
            lang: lang.into(),
            mixed: false,
        }
    }

    #[test]
    fn accuracy_confusion_and_length_buckets() {
        let long = "a".repeat(60);
        let rows = [
            row("a", "fr", "sentences"),
            row("bbbbbbbbbbbb", "en", "sentences"),
            row(&long, "other", "word-pairs"),
        ];
        let r = evaluate(&rows, |t| if t == "a" { said("fr") } else { said("en") });
        assert_eq!(r.by_kind["sentences"].correct, 2);
        assert_eq!(r.by_kind["word-pairs"].correct, 0);
        assert_eq!(r.confusion["other"]["en"], 1);
        assert!((r.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.by_length["1-9"].total, 1);
        assert_eq!(r.by_length["10-19"].correct, 1);
        assert_eq!(r.by_length[">=50"].correct, 0);
        assert!(r.mixed.is_none());
        let tables = r.tables();
        assert!(tables.contains("word-pairs") && !tables.contains("20-49"));
    }

    #[test]
    fn mixed_flag_precision_and_recall() {
        let mut rows = vec![row("un", "fr", "chat"), row("deux", "fr", "chat")];
        rows[0].mixed = Some(true);
        rows[1].mixed = Some(false);
        let r = evaluate(&rows, |_| Predicted {
            lang: "fr".into(),
            mixed: true,
        });
        let m = r.mixed.unwrap();
        assert_eq!((m.true_positives, m.false_positives), (1, 1));
        assert!((m.precision - 0.5).abs() < 1e-12 && (m.recall - 1.0).abs() < 1e-12);
    }
}
