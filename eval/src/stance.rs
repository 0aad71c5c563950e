//! Stance quality: per-class precision, recall and F1 over supports / denies / queries /
//! comments, their macro average (the shared task's measure: the majority class,
//! comments, is easy, denials are hard), and the confusion matrix.

use std::collections::BTreeMap;

use comfy_table::Table;
use serde::Serialize;

use crate::metrics::Counts;

/// The four stances, in report order.
pub const STANCES: [&str; 4] = ["supports", "denies", "queries", "comments"];

/// Figures over one set of replies.
#[derive(Debug, Clone, Serialize)]
pub struct StanceReport {
    /// Replies scored (those of an unjudged language are left out).
    pub n: usize,
    /// Mean of the four classes' F1.
    pub macro_f1: f64,
    /// Share of replies whose stance is right.
    pub accuracy: f64,
    /// Per class: precision, recall, F1, support.
    pub classes: BTreeMap<String, (f64, f64, f64, usize)>,
    /// `confusion[gold][predicted]`.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
}

/// Compares predicted stances with gold ones (pairs of gold, predicted).
pub fn evaluate<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> StanceReport {
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let (mut n, mut right) = (0, 0);
    for (gold, predicted) in pairs {
        n += 1;
        right += usize::from(gold == predicted);
        *confusion
            .entry(gold.into())
            .or_default()
            .entry(predicted.into())
            .or_default() += 1;
    }
    let count = |g: &str, p: &str| {
        confusion
            .get(g)
            .and_then(|m| m.get(p))
            .copied()
            .unwrap_or(0)
    };
    let mut classes = BTreeMap::new();
    for class in STANCES {
        let tp = count(class, class);
        let support: usize = confusion.get(class).map_or(0, |m| m.values().sum());
        let predicted: usize = STANCES.iter().map(|g| count(g, class)).sum();
        let prf = Counts {
            tp,
            fp: predicted - tp,
            fn_: support - tp,
        }
        .prf();
        classes.insert(
            class.to_string(),
            (prf.precision, prf.recall, prf.f1, support),
        );
    }
    let macro_f1 = classes.values().map(|c| c.2).sum::<f64>() / STANCES.len() as f64;
    StanceReport {
        n,
        macro_f1,
        accuracy: if n == 0 { 0.0 } else { right as f64 / n as f64 },
        classes,
        confusion,
    }
}

impl StanceReport {
    /// The figures and the confusion matrix as tables.
    pub fn table(&self) -> String {
        let mut t = Table::new();
        t.set_header(["stance", "support", "precision", "recall", "F1"]);
        for class in STANCES {
            let (p, r, f, n) = self.classes[class];
            t.add_row([
                class.to_string(),
                n.to_string(),
                format!("{p:.3}"),
                format!("{r:.3}"),
                format!("{f:.3}"),
            ]);
        }
        let mut c = Table::new();
        let mut header = vec!["gold \\ predicted".to_string()];
        header.extend(STANCES.iter().map(|s| s.to_string()));
        c.set_header(header);
        for gold in STANCES {
            let mut row = vec![gold.to_string()];
            row.extend(STANCES.iter().map(|p| {
                self.confusion
                    .get(gold)
                    .and_then(|m| m.get(*p))
                    .copied()
                    .unwrap_or(0)
                    .to_string()
            }));
            c.add_row(row);
        }
        format!(
            "Stance ({} replies): macro-F1 {:.3}, accuracy {:.3}\n{t}\n{c}",
            self.n, self.macro_f1, self.accuracy
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_averages_the_four_classes() {
        let pairs = [
            ("supports", "supports"),
            ("denies", "supports"),
            ("queries", "queries"),
            ("comments", "comments"),
            ("comments", "queries"),
        ];
        let r = evaluate(pairs);
        assert_eq!(r.n, 5);
        assert_eq!(r.classes["denies"].2, 0.0);
        assert_eq!(r.classes["supports"], (0.5, 1.0, 2.0 / 3.0, 1));
        assert_eq!(r.confusion["comments"]["queries"], 1);
        let expected = (2.0 / 3.0 + 0.0 + 2.0 / 3.0 + 2.0 / 3.0) / 4.0;
        assert!((r.macro_f1 - expected).abs() < 1e-12);
        assert!(r.table().contains("macro-F1 0.500"));
    }
}
