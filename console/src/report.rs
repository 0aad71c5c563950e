//! The weekly rumour report: per rumour, posts this week and the week before, questions
//! and rumour signals, the daily trend, and a suggested response built from the known
//! claim's verdict, correction and fact-check link, in the reader's language.

use chrono::NaiveDate;

use crate::i18n::tr;
use crate::tracker::RumourView;

/// A rumour's counts over one week.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekCounts {
    pub this_week: usize,
    pub previous_week: usize,
    pub signals: usize,
    pub questions: usize,
    /// Posts per day from `from` to `to`, zeros included.
    pub daily: Vec<usize>,
}

/// Counts of the week `from..=to` and of the seven days before it.
pub fn week_counts(r: &RumourView, from: NaiveDate, to: NaiveDate) -> WeekCounts {
    let previous_from = from
        .checked_sub_signed(chrono::Duration::days(7))
        .unwrap_or(NaiveDate::MIN);
    let mut c = WeekCounts {
        this_week: 0,
        previous_week: 0,
        signals: 0,
        questions: 0,
        daily: r.daily_series(from, to),
    };
    for a in &r.activity {
        let day = a.at.date_naive();
        if day >= from && day <= to {
            c.this_week += 1;
            c.signals += usize::from(a.signal);
            c.questions += usize::from(a.question);
        } else if day >= previous_from && day < from {
            c.previous_week += 1;
        }
    }
    c
}

/// Rumours with posts in the week or the week before, busiest this week first.
pub fn weekly(
    rumours: &[RumourView],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(&RumourView, WeekCounts)> {
    let mut rows: Vec<(&RumourView, WeekCounts)> = rumours
        .iter()
        .map(|r| (r, week_counts(r, from, to)))
        .filter(|(_, c)| c.this_week + c.previous_week > 0)
        .collect();
    rows.sort_by(|a, b| {
        b.1.this_week
            .cmp(&a.1.this_week)
            .then(b.1.previous_week.cmp(&a.1.previous_week))
            .then(a.0.id.cmp(&b.0.id))
    });
    rows
}

/// A short text staff can adapt and post in their space, in the current language. It
/// quotes the known claim (the library's wording, never a post's: the text is meant to be
/// published), gives its verdict and correction and points to the fact-check; without a
/// known claim it says a rumour is being checked, quoting nothing.
pub fn suggested_response(r: &RumourView) -> String {
    let Some(claim) = r.claim_text.as_deref() else {
        return tr("Messages about a health rumour are circulating. We are checking it with the health authorities. Until then, please share only information from official sources.").to_string();
    };
    let verdict = match r.verdict.as_str() {
        "misleading" => tr("misleading"),
        _ => tr("false"),
    };
    // The verdict first: a claim's own text may hold the other placeholder.
    let mut text = tr("Some messages say: “{claim}”. This is {verdict}.")
        .replace("{verdict}", verdict)
        // The template closes the quote with its own full stop.
        .replace("{claim}", claim.trim().trim_end_matches(['.', '!']));
    if !r.correction.trim().is_empty() {
        text.push(' ');
        text.push_str(r.correction.trim());
    }
    text.push(' ');
    if r.fact_check_url.is_empty() {
        text.push_str(tr("Check with official sources before sharing."));
    } else {
        text.push_str(&tr("Read the fact-check: {url}").replace("{url}", &r.fact_check_url));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::Activity;
    use chrono::{TimeZone, Utc};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn rumour_on(days: &[(u32, bool, bool)]) -> RumourView {
        let mut r = RumourView::new(3, "le vaccin rend stérile".into(), "new".into(), None, None);
        for (d, signal, question) in days {
            let at = Utc.with_ymd_and_hms(2026, 11, *d, 10, 0, 0).unwrap();
            *r.per_day.entry(at.date_naive()).or_default() += 1;
            r.activity.push(Activity {
                at,
                signal: *signal,
                question: *question,
                lang: "fr".into(),
                country: None,
            });
        }
        r
    }

    #[test]
    fn a_week_counts_its_own_days_and_compares_with_the_week_before() {
        let r = rumour_on(&[
            (2, false, false),
            (9, true, true),
            (10, false, false),
            (15, true, false),
            (20, false, false),
        ]);
        let c = week_counts(&r, day(9), day(15));
        assert_eq!(
            (c.this_week, c.previous_week, c.signals, c.questions),
            (3, 1, 2, 1)
        );
        assert_eq!(c.daily, vec![1, 1, 0, 0, 0, 0, 1]);
        let quiet = rumour_on(&[(1, false, false)]);
        assert!(
            weekly(&[quiet], day(9), day(15)).is_empty(),
            "nothing in either week"
        );
    }

    #[test]
    fn the_response_gives_the_verdict_the_correction_and_the_link() {
        let mut r = rumour_on(&[]);
        let text = suggested_response(&r);
        assert!(text.contains("checking"), "{text}");
        assert!(
            !text.contains("stérile"),
            "a post's words are never quoted: {text}"
        );
        r.claim_text = Some("Vaccines cause infertility.".into());
        r.verdict = "false".into();
        r.correction = "Studies of millions of people found no effect on fertility.".into();
        r.fact_check_url = "https://factuel.example/vaccins-fertilite".into();
        let text = suggested_response(&r);
        for part in [
            "“Vaccines cause infertility”",
            "This is false.",
            "no effect on fertility",
            "https://factuel.example/vaccins-fertilite",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }
}
