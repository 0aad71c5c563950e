//! Counts of a run, printed as a table at the end of `vigie screen`.

use std::collections::BTreeMap;

use comfy_table::Table;
use serde::Serialize;

use crate::contract::Reason;
use crate::screener::Outcome;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub inputs: usize,
    pub screened: usize,
    pub flagged_misinformation: usize,
    pub flagged_privacy: usize,
    pub rejected: usize,
    pub by_language: BTreeMap<String, usize>,
    pub by_queue: BTreeMap<String, usize>,
    pub redactions_by_kind: BTreeMap<String, usize>,
    pub rejected_by_reason: BTreeMap<String, usize>,
}

impl Summary {
    pub fn add(&mut self, outcome: &Outcome) {
        self.inputs += 1;
        match outcome {
            Outcome::Screened(r) => {
                self.screened += 1;
                *self
                    .by_language
                    .entry(r.lang.code.as_str().to_string())
                    .or_default() += 1;
                *self.by_queue.entry(r.route.queue.clone()).or_default() += 1;
                self.flagged_misinformation +=
                    r.route.reasons.contains(&Reason::Misinformation) as usize;
                self.flagged_privacy += r.route.reasons.contains(&Reason::Privacy) as usize;
                for s in &r.redactions {
                    *self.redactions_by_kind.entry(s.kind.clone()).or_default() += 1;
                }
            }
            Outcome::Rejected(r) => {
                self.rejected += 1;
                *self.rejected_by_reason.entry(r.reason.clone()).or_default() += 1;
            }
        }
    }

    pub fn table(&self) -> String {
        let mut t = Table::new();
        t.set_header(["", "count"]);
        let mut row = |k: String, v: usize| {
            t.add_row([k, v.to_string()]);
        };
        row("inputs".into(), self.inputs);
        row("screened".into(), self.screened);
        row(
            "flagged: misinformation".into(),
            self.flagged_misinformation,
        );
        row("flagged: privacy".into(), self.flagged_privacy);
        row("rejected".into(), self.rejected);
        for (k, v) in &self.by_language {
            row(format!("language {k}"), *v);
        }
        for (k, v) in &self.by_queue {
            row(format!("queue {k}"), *v);
        }
        for (k, v) in &self.redactions_by_kind {
            row(format!("redacted {k}"), *v);
        }
        for (k, v) in &self.rejected_by_reason {
            row(format!("rejected {k}"), *v);
        }
        t.to_string()
    }
}
