//! CSV exports of the console's views. Cells that a spreadsheet would run as a formula
//! (starting with `=`, `+`, `-`, `@`) get a leading apostrophe: post text is written by
//! strangers.

use chrono::NaiveDate;

use crate::store::{AuditEntry, Item};
use crate::tracker::RumourView;

pub fn queue(items: &[Item]) -> Result<String, csv::Error> {
    write(
        &[
            "id",
            "queue",
            "lang",
            "priority",
            "risk_score",
            "channel",
            "country",
            "seen_at",
            "locked_by",
            "redacted_text",
        ],
        items.iter().map(|i| {
            vec![
                i.id.clone(),
                i.queue.clone(),
                i.lang.clone(),
                format!("{:?}", i.priority).to_lowercase(),
                i.risk_score.map(|s| format!("{s:.3}")).unwrap_or_default(),
                i.channel.clone(),
                i.country.clone().unwrap_or_default(),
                i.seen_at.clone(),
                i.locked_by.clone().unwrap_or_default(),
                i.redacted_text.clone(),
            ]
        }),
    )
}

pub fn rumours(rumours: &[RumourView]) -> Result<String, csv::Error> {
    let join = |m: &std::collections::BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    write(
        &[
            "id",
            "title",
            "status",
            "claim_id",
            "posts",
            "confirmed",
            "languages",
            "countries",
            "channels",
            "first_seen",
            "last_seen",
        ],
        rumours.iter().map(|r| {
            vec![
                r.id.to_string(),
                r.title.clone(),
                r.status.clone(),
                r.claim_id.clone().unwrap_or_default(),
                r.posts.to_string(),
                r.confirmed.to_string(),
                join(&r.by_language),
                join(&r.by_country),
                join(&r.by_channel),
                r.first_seen.clone().unwrap_or_default(),
                r.last_seen.clone().unwrap_or_default(),
            ]
        }),
    )
}

pub fn weekly(rows: &[(&RumourView, crate::report::WeekCounts)]) -> Result<String, csv::Error> {
    write(
        &[
            "id",
            "title",
            "status",
            "claim_id",
            "verdict",
            "fact_check_url",
            "posts_this_week",
            "posts_previous_week",
            "questions",
            "rumour_signals",
            "posts_per_day",
            "suggested_response",
        ],
        rows.iter().map(|(r, c)| {
            vec![
                r.id.to_string(),
                r.title.clone(),
                r.status.clone(),
                r.claim_id.clone().unwrap_or_default(),
                r.verdict.clone(),
                r.fact_check_url.clone(),
                c.this_week.to_string(),
                c.previous_week.to_string(),
                c.questions.to_string(),
                c.signals.to_string(),
                c.daily
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                crate::report::suggested_response(r),
            ]
        }),
    )
}

pub fn volume(
    days: &std::collections::BTreeMap<NaiveDate, (usize, usize)>,
) -> Result<String, csv::Error> {
    write(
        &["day", "misinformation", "privacy_only"],
        days.iter()
            .map(|(d, (m, p))| vec![d.to_string(), m.to_string(), p.to_string()]),
    )
}

pub fn audit(entries: &[AuditEntry]) -> Result<String, csv::Error> {
    write(
        &["id", "at", "actor", "action", "target", "reason", "detail"],
        entries.iter().map(|e| {
            vec![
                e.id.to_string(),
                e.at.clone(),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.reason.clone(),
                e.detail.clone(),
            ]
        }),
    )
}

/// The header row is in the request's language (`i18n`); columns keep their order.
fn write(
    header: &[&'static str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<String, csv::Error> {
    let header: Vec<&str> = header.iter().map(|h| crate::i18n::tr(h)).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    for row in rows {
        w.write_record(row.iter().map(|c| defuse(c)))?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_cells_are_defused_and_quotes_escaped() {
        let out = super::write(
            &["a", "b"],
            vec![vec![
                "=HYPERLINK(\"x\")".to_string(),
                "plain, text".to_string(),
            ]]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(out, "a,b\n\"'=HYPERLINK(\"\"x\"\")\",\"plain, text\"\n");
    }
}
