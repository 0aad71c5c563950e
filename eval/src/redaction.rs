//! Redaction quality: precision, recall and F1 per label, with exact and overlap span
//! matching and token by token, plus a label-agnostic row (any identifier caught by any
//! rule). Tokens are runs of letters and digits: a gold token counts as found when a
//! prediction of its label covers it; "hidden" counts it when any prediction does (what
//! matters for privacy: a date redacted as a phone number is still hidden).

use std::collections::BTreeMap;

use comfy_table::Table;
use serde::Serialize;

use crate::datasets::RedactionRow;
use crate::metrics::{Prf, SpanCounts};

/// A predicted span, code-point offsets of the original text.
#[derive(Debug, Clone, PartialEq)]
pub struct PredSpan {
    pub start: usize,
    pub end: usize,
    pub label: String,
}

/// Label used for the row that ignores labels.
pub const ANY: &str = "ANY";

/// Birth dates are dates to a redactor, and visit numbers (NDA) are record numbers:
/// both sides are compared as DATE and PATIENT_ID. A social handle (`USERNAME`, @name)
/// stands for its owner as a name does, and tweet corpora label the handles of people
/// PERSON: it is compared as PERSON (the handles of organisations then count against
/// PERSON's precision, as they should).
pub fn normalise_label(label: &str) -> &str {
    match label {
        "BIRTH_DATE" => "DATE",
        "VISIT_ID" => "PATIENT_ID",
        "USERNAME" => "PERSON",
        other => other,
    }
}

/// How predicted social handles are scored against a corpus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Handles {
    /// The corpus labels people's handles (the Broad Twitter Corpus does): every predicted
    /// handle is scored.
    #[default]
    Labelled,
    /// The corpus labels only some handles (WNUT-17 labels a quarter of its test tweets'
    /// @mentions, those of the people its annotators picked): a predicted handle that
    /// touches no gold span is set aside, neither right nor wrong. Redacting it is still
    /// what the pipeline does; only the corpus cannot say whether it was right.
    PartlyLabelled,
}

impl Handles {
    /// The predictions to score for `gold`.
    fn keep(self, gold: &[crate::datasets::GoldSpan], pred: Vec<PredSpan>) -> Vec<PredSpan> {
        match self {
            Handles::Labelled => pred,
            Handles::PartlyLabelled => pred
                .into_iter()
                .filter(|p| {
                    p.label != "USERNAME"
                        || gold
                            .iter()
                            .any(|g| overlaps((p.start, p.end), (g.start, g.end)))
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelScores {
    pub exact: Prf,
    pub overlap: Prf,
    /// Token level, labels compared.
    pub token: Prf,
    /// Share of the label's gold tokens that some prediction covers, whatever its label.
    pub token_hidden: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedactionReport {
    pub documents: usize,
    /// label -> scores; includes [`ANY`].
    pub labels: BTreeMap<String, LabelScores>,
}

#[derive(Default)]
struct Tally {
    exact: SpanCounts,
    overlap: SpanCounts,
    token: SpanCounts,
    /// Gold tokens of the label covered by any prediction.
    token_hidden: usize,
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

pub fn evaluate(
    rows: &[RedactionRow],
    handles: Handles,
    mut predict: impl FnMut(&str) -> Vec<PredSpan>,
) -> RedactionReport {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for row in rows {
        let gold: Vec<(usize, usize, &str)> = row
            .spans
            .iter()
            .map(|s| (s.start, s.end, normalise_label(&s.label)))
            .collect();
        let pred_owned = handles.keep(&row.spans, predict(&row.text));
        let pred: Vec<(usize, usize, &str)> = pred_owned
            .iter()
            .map(|s| (s.start, s.end, normalise_label(&s.label)))
            .collect();
        let same = |label: Option<&str>, l: &str| label.is_none_or(|x| x == l);
        for label in labels_of(&gold, &pred).into_iter().map(Some).chain([None]) {
            let t = tallies.entry(label.unwrap_or(ANY).to_string()).or_default();
            let g: Vec<_> = gold.iter().filter(|s| same(label, s.2)).collect();
            let p: Vec<_> = pred.iter().filter(|s| same(label, s.2)).collect();
            tally(&mut t.exact, &p, &g, |a, b| a.0 == b.0 && a.1 == b.1);
            tally(&mut t.overlap, &p, &g, |a, b| {
                overlaps((a.0, a.1), (b.0, b.1))
            });
        }
        for (start, end) in word_tokens(&row.text) {
            // A gold token is found when a prediction of its label covers it whole, hidden
            // when any prediction does; a predicted token is right when a gold span of its
            // label touches it.
            let covers = |s: &&(usize, usize, &str)| s.0 <= start && end <= s.1;
            let touches = |s: &&(usize, usize, &str)| overlaps((s.0, s.1), (start, end));
            let g = gold.iter().find(touches).map(|s| s.2);
            let hidden = pred.iter().any(|s| covers(&s));
            let found = |label: &str| pred.iter().filter(covers).any(|s| s.2 == label);
            let p = pred.iter().find(touches).map(|s| s.2);
            let right = |label: &str| gold.iter().filter(touches).any(|s| s.2 == label);
            if let Some(gl) = g {
                let t = tallies.entry(gl.to_string()).or_default();
                t.token.gold_total += 1;
                t.token.gold_found += usize::from(found(gl));
                t.token_hidden += usize::from(hidden);
            }
            if let Some(pl) = p {
                let t = tallies.entry(pl.to_string()).or_default();
                t.token.pred_total += 1;
                t.token.pred_correct += usize::from(right(pl));
            }
            let any = tallies.entry(ANY.to_string()).or_default();
            any.token.gold_total += usize::from(g.is_some());
            any.token.gold_found += usize::from(g.is_some() && hidden);
            any.token_hidden += usize::from(g.is_some() && hidden);
            any.token.pred_total += usize::from(p.is_some());
            any.token.pred_correct += usize::from(p.is_some() && g.is_some());
        }
    }
    RedactionReport {
        documents: rows.len(),
        labels: tallies
            .into_iter()
            .map(|(k, t)| {
                let hidden = if t.token.gold_total == 0 {
                    0.0
                } else {
                    t.token_hidden as f64 / t.token.gold_total as f64
                };
                (
                    k,
                    LabelScores {
                        exact: t.exact.prf(),
                        overlap: t.overlap.prf(),
                        token: t.token.prf(),
                        token_hidden: hidden,
                    },
                )
            })
            .collect(),
    }
}

type Span<'a> = (usize, usize, &'a str);

/// Runs of letters and digits, as code-point offsets.
fn word_tokens(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.chars().enumerate() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.chars().count()));
    }
    out
}

fn tally(
    counts: &mut SpanCounts,
    pred: &[&Span<'_>],
    gold: &[&Span<'_>],
    matches: fn(&Span<'_>, &Span<'_>) -> bool,
) {
    counts.pred_total += pred.len();
    counts.pred_correct += pred
        .iter()
        .filter(|s| gold.iter().any(|x| matches(s, x)))
        .count();
    counts.gold_total += gold.len();
    counts.gold_found += gold
        .iter()
        .filter(|s| pred.iter().any(|x| matches(s, x)))
        .count();
}

fn labels_of<'a>(
    gold: &[(usize, usize, &'a str)],
    pred: &[(usize, usize, &'a str)],
) -> Vec<&'a str> {
    let mut labels: Vec<&str> = gold.iter().chain(pred).map(|s| s.2).collect();
    labels.sort();
    labels.dedup();
    labels
}

/// A gold span no prediction overlaps (`missed`), or a prediction overlapping no gold
/// span (`spurious`), with some surrounding text: what a rule author reads to improve rules.
#[derive(Debug, Clone, Serialize)]
pub struct SpanError {
    pub id: String,
    /// `missed`, `spurious`, or `mislabelled` (caught, but only under another label).
    pub error: &'static str,
    pub label: String,
    /// For `mislabelled`: the labels the overlapping predictions carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<String>,
    pub span: String,
    pub context: String,
}

pub fn errors(
    rows: &[RedactionRow],
    handles: Handles,
    mut predict: impl FnMut(&str) -> Vec<PredSpan>,
) -> Vec<SpanError> {
    let mut out = Vec::new();
    for row in rows {
        let chars: Vec<char> = row.text.chars().collect();
        let cut = |a: usize, b: usize| {
            chars[a.min(chars.len())..b.min(chars.len())]
                .iter()
                .collect::<String>()
        };
        let around = |a: usize, b: usize| {
            format!(
                "{}[{}]{}",
                cut(a.saturating_sub(40), a),
                cut(a, b),
                cut(b, b + 40)
            )
            .replace('\n', " ")
        };
        let pred = handles.keep(&row.spans, predict(&row.text));
        for g in &row.spans {
            let over: Vec<&PredSpan> = pred
                .iter()
                .filter(|p| overlaps((p.start, p.end), (g.start, g.end)))
                .collect();
            let same_label = over
                .iter()
                .any(|p| normalise_label(&p.label) == normalise_label(&g.label));
            let (error, predicted) = match (over.is_empty(), same_label) {
                (true, _) => ("missed", None),
                (false, false) => {
                    let mut labels: Vec<&str> = over.iter().map(|p| p.label.as_str()).collect();
                    labels.sort();
                    labels.dedup();
                    ("mislabelled", Some(labels.join(",")))
                }
                (false, true) => continue,
            };
            out.push(SpanError {
                id: row.id.clone(),
                error,
                label: g.label.clone(),
                predicted,
                span: cut(g.start, g.end),
                context: around(g.start, g.end),
            });
        }
        for p in &pred {
            if !row
                .spans
                .iter()
                .any(|g| overlaps((p.start, p.end), (g.start, g.end)))
            {
                out.push(SpanError {
                    id: row.id.clone(),
                    error: "spurious",
                    label: p.label.clone(),
                    predicted: None,
                    span: cut(p.start, p.end),
                    context: around(p.start, p.end),
                });
            }
        }
    }
    out
}

impl RedactionReport {
    pub fn table(&self) -> String {
        let mut t = Table::new();
        t.set_header([
            "label",
            "gold",
            "P exact",
            "R exact",
            "P overlap",
            "R overlap",
            "F1 overlap",
            "tokens",
            "P token",
            "R token",
            "hidden",
        ]);
        let f = |x: f64| format!("{x:.3}");
        for (label, s) in &self.labels {
            t.add_row([
                label.clone(),
                s.overlap.support.to_string(),
                f(s.exact.precision),
                f(s.exact.recall),
                f(s.overlap.precision),
                f(s.overlap.recall),
                f(s.overlap.f1),
                s.token.support.to_string(),
                f(s.token.precision),
                f(s.token.recall),
                f(s.token_hidden),
            ]);
        }
        format!("Redaction ({} documents)\n{t}", self.documents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::GoldSpan;

    #[test]
    fn exact_and_overlap_counts() {
        let rows = vec![RedactionRow {
            id: "1".into(),
            text: "x".repeat(40),
            lang: None,
            spans: vec![
                GoldSpan {
                    start: 0,
                    end: 5,
                    label: "PHONE".into(),
                },
                GoldSpan {
                    start: 10,
                    end: 15,
                    label: "BIRTH_DATE".into(),
                },
                GoldSpan {
                    start: 20,
                    end: 25,
                    label: "PERSON".into(),
                },
            ],
        }];
        let r = evaluate(&rows, Handles::Labelled, |_| {
            vec![
                PredSpan {
                    start: 0,
                    end: 5,
                    label: "PHONE".into(),
                },
                PredSpan {
                    start: 11,
                    end: 15,
                    label: "DATE".into(),
                },
                PredSpan {
                    start: 30,
                    end: 35,
                    label: "EMAIL".into(),
                },
            ]
        });
        let phone = &r.labels["PHONE"];
        assert_eq!((phone.exact.precision, phone.exact.recall), (1.0, 1.0));
        let date = &r.labels["DATE"];
        assert_eq!(date.exact.recall, 0.0);
        assert_eq!(date.overlap.recall, 1.0);
        assert_eq!(r.labels["PERSON"].overlap.recall, 0.0);
        assert_eq!(r.labels["EMAIL"].overlap.precision, 0.0);
        let any = &r.labels[ANY];
        assert!((any.overlap.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((any.overlap.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!(r.table().contains("PERSON"));
    }

    #[test]
    fn token_scores_compare_labels_and_hidden_ignores_them() {
        let text = "call 06 12 34 56 78 or Awa Diop on 12/03";
        let span = |start, end, label: &str| GoldSpan {
            start,
            end,
            label: label.into(),
        };
        let rows = vec![RedactionRow {
            id: "1".into(),
            text: text.into(),
            lang: None,
            spans: vec![
                span(5, 19, "PHONE"),
                span(23, 31, "PERSON"),
                span(35, 40, "DATE"),
            ],
        }];
        let pred = |start, end, label: &str| PredSpan {
            start,
            end,
            label: label.into(),
        };
        let r = evaluate(&rows, Handles::Labelled, |_| {
            vec![
                pred(5, 19, "PHONE"),
                pred(23, 26, "PERSON"),
                pred(35, 40, "PHONE"),
            ]
        });
        let phone = &r.labels["PHONE"];
        assert_eq!(phone.token.support, 5);
        assert!((phone.token.precision - 5.0 / 7.0).abs() < 1e-12 && phone.token.recall == 1.0);
        let person = &r.labels["PERSON"];
        assert_eq!((person.token.recall, person.token_hidden), (0.5, 0.5));
        let date = &r.labels["DATE"];
        assert_eq!((date.token.recall, date.token_hidden), (0.0, 1.0));
        let any = &r.labels[ANY];
        assert!((any.token.recall - 8.0 / 9.0).abs() < 1e-12 && any.token.precision == 1.0);
        assert!((any.token_hidden - 8.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn handles_a_corpus_leaves_unlabelled_are_set_aside_only_when_asked() {
        let text = "RT @bintou_k: @Awa_Diop92 saw Awa Diop";
        let rows = vec![RedactionRow {
            id: "1".into(),
            text: text.into(),
            lang: None,
            // The corpus labels one handle and one name, not @bintou_k.
            spans: vec![
                GoldSpan {
                    start: 14,
                    end: 25,
                    label: "PERSON".into(),
                },
                GoldSpan {
                    start: 30,
                    end: 38,
                    label: "PERSON".into(),
                },
            ],
        }];
        let pred = |start, end, label: &str| PredSpan {
            start,
            end,
            label: label.into(),
        };
        let predict = |_: &str| {
            vec![
                pred(3, 12, "USERNAME"),
                pred(14, 25, "USERNAME"),
                pred(30, 38, "PERSON"),
                pred(0, 2, "PERSON"),
            ]
        };
        let all = &evaluate(&rows, Handles::Labelled, predict).labels["PERSON"];
        assert_eq!((all.overlap.precision, all.overlap.recall), (0.5, 1.0));
        let part = &evaluate(&rows, Handles::PartlyLabelled, predict).labels["PERSON"];
        // @bintou_k is set aside; the labelled handle still counts, and a spurious name
        // still counts against precision.
        assert!((part.overlap.precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(part.overlap.recall, 1.0);
        let spurious = |h| {
            errors(&rows, h, predict)
                .iter()
                .filter(|e| e.span == "@bintou_k")
                .count()
        };
        assert_eq!(
            (
                spurious(Handles::Labelled),
                spurious(Handles::PartlyLabelled)
            ),
            (1, 0)
        );
    }
}
