//! Risk scoring quality: ROC-AUC, and precision/recall/F1 at the routing threshold,
//! overall and per language and source.

use std::collections::BTreeMap;

use comfy_table::Table;
use serde::Serialize;

use crate::datasets::RiskRow;
use crate::metrics::{expected_calibration_error, roc_auc, Counts};

/// Bins of the calibration error.
const ECE_BINS: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct RiskGroup {
    pub n: usize,
    pub positives: usize,
    pub roc_auc: Option<f64>,
    /// Expected calibration error of the score read as a probability (10 bins). The
    /// pipeline's score is the head's calibrated probability raised by known-claim
    /// matches, so a match that raises a reliable post shows here.
    pub ece: Option<f64>,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskReport {
    pub threshold: f32,
    /// "all", "lang=fr", "source=...", "kind=...", "topic=..." (rows without a kind).
    pub groups: BTreeMap<String, RiskGroup>,
    /// Per group, how many posts got each outcome (misinformation, rumour-signal, pass,
    /// unscored-language), when the outcomes were given ([`RiskReport::with_outcomes`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outcomes: BTreeMap<String, OutcomeGroup>,
}

/// The outcomes of one group of posts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutcomeGroup {
    /// Posts per outcome.
    pub counts: BTreeMap<String, usize>,
    /// Precision, recall and F1 of the `misinformation` outcome against the labels.
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    #[serde(skip)]
    confusion: Counts,
}

/// The figures of one group of scores (probabilities of misinformation) against labels,
/// flagged at `threshold`.
pub fn summarise(scores: &[f32], labels: &[bool], threshold: f32) -> RiskGroup {
    let mut c = Counts::default();
    let mut correct = 0;
    for (&s, &y) in scores.iter().zip(labels) {
        let flagged = s >= threshold;
        c.add(flagged, y);
        correct += (flagged == y) as usize;
    }
    let prf = c.prf();
    RiskGroup {
        n: scores.len(),
        positives: labels.iter().filter(|&&y| y).count(),
        roc_auc: roc_auc(scores, labels),
        ece: expected_calibration_error(scores, labels, ECE_BINS),
        precision: prf.precision,
        recall: prf.recall,
        f1: prf.f1,
        accuracy: if scores.is_empty() {
            0.0
        } else {
            correct as f64 / scores.len() as f64
        },
    }
}

/// `scores[i]` is the predicted misinformation probability of `rows[i]`.
pub fn evaluate(rows: &[RiskRow], scores: &[f32], threshold: f32) -> RiskReport {
    let mut buckets: BTreeMap<String, (Vec<f32>, Vec<bool>)> = BTreeMap::new();
    for (row, &s) in rows.iter().zip(scores) {
        for key in group_keys(row) {
            let b = buckets.entry(key).or_default();
            b.0.push(s);
            b.1.push(row.is_misinformation());
        }
    }
    RiskReport {
        threshold,
        groups: buckets
            .into_iter()
            .map(|(k, (s, y))| (k, summarise(&s, &y, threshold)))
            .collect(),
        outcomes: BTreeMap::new(),
    }
}

/// The groups a row is reported in.
fn group_keys(row: &RiskRow) -> Vec<String> {
    let keys = [
        Some("all".to_string()),
        Some(format!("lang={}", row.lang)),
        row.source.as_ref().map(|s| format!("source={s}")),
        row.kind.as_ref().map(|k| format!("kind={k}")),
        // The project's files group by kind; shared files by topic (DACCORD: covid,
        // ukraine-war, climate; a file of one topic repeats `all`).
        row.topic
            .as_ref()
            .filter(|_| row.kind.is_none())
            .map(|t| format!("topic={t}")),
    ];
    keys.into_iter().flatten().collect()
}

impl RiskReport {
    /// Adds the count of each outcome per group, and the precision and recall of the
    /// `misinformation` outcome; `outcomes[i]` is the outcome of `rows[i]`.
    pub fn with_outcomes(mut self, rows: &[RiskRow], outcomes: &[&str]) -> Self {
        for (row, outcome) in rows.iter().zip(outcomes) {
            let flagged = *outcome == "misinformation";
            for key in group_keys(row) {
                let g = self.outcomes.entry(key).or_default();
                *g.counts.entry(outcome.to_string()).or_default() += 1;
                g.confusion.add(flagged, row.is_misinformation());
            }
        }
        for g in self.outcomes.values_mut() {
            let prf = g.confusion.prf();
            (g.precision, g.recall, g.f1) = (prf.precision, prf.recall, prf.f1);
        }
        self
    }

    /// Share of a group's posts with the `misinformation` outcome.
    pub fn flag_rate(&self, group: &str) -> Option<f64> {
        let counts = &self.outcomes.get(group)?.counts;
        let n: usize = counts.values().sum();
        let flagged = counts.get("misinformation").copied().unwrap_or(0);
        (n > 0).then(|| flagged as f64 / n as f64)
    }

    /// The outcome counts as a table (empty when none were given).
    pub fn outcome_table(&self) -> String {
        if self.outcomes.is_empty() {
            return String::new();
        }
        let names = [
            "misinformation",
            "rumour-signal",
            "pass",
            "unscored-language",
        ];
        let mut t = Table::new();
        let mut header = vec![
            "group".to_string(),
            "n".to_string(),
            "flag rate".to_string(),
        ];
        header.extend(names.iter().map(|n| n.to_string()));
        header.extend(["flag P", "flag R", "flag F1"].map(String::from));
        t.set_header(header);
        let f = |x: f64| format!("{x:.3}");
        for (group, g) in &self.outcomes {
            let n: usize = g.counts.values().sum();
            let mut row = vec![
                group.clone(),
                n.to_string(),
                self.flag_rate(group)
                    .map_or("n/a".into(), |r| format!("{:.1} %", 100.0 * r)),
            ];
            row.extend(
                names
                    .iter()
                    .map(|k| g.counts.get(*k).copied().unwrap_or(0).to_string()),
            );
            row.extend([f(g.precision), f(g.recall), f(g.f1)]);
            t.add_row(row);
        }
        format!("Outcomes (flag: the misinformation outcome)\n{t}")
    }

    pub fn table(&self) -> String {
        let mut t = Table::new();
        t.set_header([
            "group",
            "n",
            "misinfo",
            "ROC-AUC",
            "ECE",
            "precision",
            "recall",
            "F1",
            "accuracy",
        ]);
        let f = |x: f64| format!("{x:.3}");
        for (name, g) in &self.groups {
            t.add_row([
                name.clone(),
                g.n.to_string(),
                g.positives.to_string(),
                g.roc_auc.map(f).unwrap_or_else(|| "n/a".into()),
                g.ece.map(f).unwrap_or_else(|| "n/a".into()),
                f(g.precision),
                f(g.recall),
                f(g.f1),
                f(g.accuracy),
            ]);
        }
        format!("Risk (threshold {:.2})\n{t}", self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_language_and_source() {
        let row = |id: &str, lang: &str, label: &str| RiskRow {
            id: id.into(),
            text: String::new(),
            lang: lang.into(),
            label: label.into(),
            source: Some("s".into()),
            article: None,
            kind: (id == "2").then(|| "ops".into()),
            claim: None,
            topic: Some("covid".into()),
        };
        let rows = [
            row("1", "en", "misinformation"),
            row("2", "en", "reliable"),
            row("3", "fr", "misinformation"),
            row("4", "fr", "reliable"),
        ];
        let r = evaluate(&rows, &[0.9, 0.2, 0.4, 0.6], 0.5);
        assert_eq!(r.groups["lang=en"].roc_auc, Some(1.0));
        assert_eq!(r.groups["lang=fr"].roc_auc, Some(0.0));
        assert_eq!(r.groups["all"].n, 4);
        assert_eq!(r.groups["kind=ops"].n, 1);
        // Topics group the rows that have no kind of their own.
        assert_eq!(r.groups["topic=covid"].n, 3);
        let r = r.with_outcomes(
            &rows,
            &["misinformation", "pass", "rumour-signal", "misinformation"],
        );
        assert_eq!(r.flag_rate("all"), Some(0.5));
        assert_eq!(r.flag_rate("kind=ops"), Some(0.0));
        assert_eq!(r.outcomes["lang=fr"].counts["rumour-signal"], 1);
        assert_eq!(r.outcomes["all"].recall, 0.5);
        assert_eq!(r.outcomes["all"].precision, 0.5);
        assert!(r.outcome_table().contains("50.0 %"));
        assert_eq!(r.groups["source=s"].f1, 0.5);
        assert!(r.table().contains("lang=fr"));
    }
}
