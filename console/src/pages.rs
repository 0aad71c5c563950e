//! The console's HTML, rendered with maud (every interpolated value is escaped). Pages
//! carry no inline script or style, so the Content-Security-Policy can forbid both.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use maud::{html, Markup, DOCTYPE};

use crate::alerts::{Alert, AlertRule, Figures};
use crate::i18n::{self, tr};
use crate::store::{truncate, AuditEntry, Claim, Decision, Item, QueueFilter, Session};
use crate::tracker::{RumourView, CLUSTER_STATUSES};

/// Post ids come from platforms: percent-encode anything outside a safe set (links
/// here and the server's redirects).
pub(crate) fn url_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub const CSS: &str = include_str!("static/console.css");
pub const JS: &str = include_str!("static/console.js");

fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(i18n::current().code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Vigie" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "Vigie" }
                    nav.langs aria-label=(tr("Language")) {
                        a href="/lang/fr" lang="fr" hreflang="fr" { "FR" }
                        " · "
                        a href="/lang/en" lang="en" hreflang="en" { "EN" }
                    }
                    @if let Some(s) = session {
                        nav {
                            @if s.user.role.can_moderate() { a href="/queue" { (tr("Review queue")) } }
                            a href="/tracker" { (tr("Rumour tracker")) }
                            @if s.user.role.can_audit() { a href="/audit" { (tr("Audit log")) } }
                        }
                        form.logout method="post" action="/logout" {
                            span.who { (s.user.name) " (" (tr(s.user.role.as_str())) ")" }
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { (tr("Sign out")) }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    layout(
        tr("Sign in"),
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.login method="post" action="/login" {
                label { (tr("User name")) input type="text" name="username" autocomplete="username" required autofocus; }
                label { (tr("Password")) input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { (tr("Sign in")) }
            }
        },
    )
}

pub fn message(title: &str, session: Option<&Session>, text: &str) -> Markup {
    layout(
        title,
        session,
        html! { p.error role="alert" { (text) } p { a href="/" { (tr("Back")) } } },
    )
}

fn age(seen_at: &str, now: DateTime<Utc>) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(seen_at) else {
        return "?".into();
    };
    let mins = (now - t.with_timezone(&Utc)).num_minutes().max(0);
    match mins {
        m if m < 60 => format!("{m} {}", tr("min")),
        m if m < 48 * 60 => format!("{} {}", m / 60, tr("h")),
        m => format!("{} {}", m / (24 * 60), tr("d")),
    }
}

/// A priority's name in the page's language.
fn priority_name(item: &Item) -> &'static str {
    match item.priority {
        vigie_pipeline::contract::Priority::High => tr("high"),
        vigie_pipeline::contract::Priority::Medium => tr("medium"),
        vigie_pipeline::contract::Priority::Low => tr("low"),
        vigie_pipeline::contract::Priority::None => tr("none"),
    }
}

/// A rumour status's name in the page's language (the value sent stays the code).
fn tr_status(status: &str) -> String {
    match CLUSTER_STATUSES.iter().find(|s| **s == status) {
        Some(s) => tr(s).to_string(),
        None => status.to_string(),
    }
}

/// A stored decision's label in the page's language.
fn decision_label(decision: &str) -> String {
    match Decision::parse(decision) {
        Some(d) => tr(d.label()).to_string(),
        None => decision.to_string(),
    }
}

fn priority_class(item: &Item) -> &'static str {
    match item.priority {
        vigie_pipeline::contract::Priority::High => "p-high",
        vigie_pipeline::contract::Priority::Medium => "p-medium",
        vigie_pipeline::contract::Priority::Low => "p-low",
        vigie_pipeline::contract::Priority::None => "p-none",
    }
}

fn query_string(filter: &QueueFilter) -> String {
    let enc = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect::<String>()
    };
    format!(
        "lang={}&queue={}",
        enc(filter.lang.as_deref().unwrap_or("")),
        enc(filter.queue.as_deref().unwrap_or(""))
    )
}

pub struct QueuePage<'a> {
    pub session: &'a Session,
    pub items: &'a [Item],
    pub filter: &'a QueueFilter,
    pub queues: &'a [(String, usize)],
    pub langs: &'a [(String, usize)],
    pub now: DateTime<Utc>,
    pub notice: Option<&'a str>,
}

pub fn queue(p: QueuePage<'_>) -> Markup {
    let selected = |v: &Option<String>, s: &str| v.as_deref() == Some(s);
    layout(
        tr("Review queue"),
        Some(p.session),
        html! {
            @if let Some(n) = p.notice { p.notice role="status" { (n) } }
            div.toolbar {
                form method="get" action="/queue" {
                    label { (tr("Language")) " "
                        select name="lang" {
                            option value="" { (tr("all")) }
                            @for (l, n) in p.langs { option value=(l) selected[selected(&p.filter.lang, l)] { (l) " (" (n) ")" } }
                        }
                    }
                    label { " " (tr("Queue")) " "
                        select name="queue" {
                            option value="" { (tr("all")) }
                            @for (q, n) in p.queues { option value=(q) selected[selected(&p.filter.queue, q)] { (q) " (" (n) ")" } }
                        }
                    }
                    button type="submit" { (tr("Filter")) }
                }
                form id="claim-next" method="post" action="/queue/next" {
                    input type="hidden" name="csrf" value=(p.session.csrf);
                    input type="hidden" name="lang" value=(p.filter.lang.clone().unwrap_or_default());
                    input type="hidden" name="queue" value=(p.filter.queue.clone().unwrap_or_default());
                    button type="submit" title=(tr("Shortcut: n")) { (tr("Claim next item (n)")) }
                }
                a href={ "/queue.csv?" (query_string(p.filter)) } { (tr("Export CSV")) }
            }
            @if p.items.is_empty() {
                p { (tr("Nothing to review.")) }
            } @else {
                table.queue {
                    thead { tr { th { (tr("Priority")) } th { (tr("Age")) } th { (tr("Queue")) } th { (tr("Lang")) } th { (tr("Risk")) } th { (tr("Post (redacted)")) } th { (tr("Action")) } } }
                    tbody {
                        @for item in p.items {
                            tr class=(priority_class(item)) data-item=(item.id) {
                                td { (priority_name(item)) }
                                td { (age(&item.seen_at, p.now)) }
                                td { (item.queue) }
                                td { (item.lang) }
                                td { (item.risk_score.map(|s| i18n::number(s, 2)).unwrap_or_else(|| "–".into())) }
                                td.text { a href={ "/items/" (url_segment(&item.id)) } { (truncate(&item.redacted_text, 140)) } }
                                td {
                                    @if item.is_locked_for(&p.session.user.name, p.now) {
                                        span.locked { (tr("with")) " " (item.locked_by.clone().unwrap_or_default()) }
                                    } @else {
                                        form method="post" action={ "/items/" (url_segment(&item.id)) "/claim" } {
                                            input type="hidden" name="csrf" value=(p.session.csrf);
                                            button type="submit" { (tr("Claim")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub struct ItemPage<'a> {
    pub session: &'a Session,
    pub item: &'a Item,
    pub claims: &'a [Claim],
    pub rumour: Option<&'a RumourView>,
    pub now: DateTime<Utc>,
    pub error: Option<&'a str>,
}

pub fn item(p: ItemPage<'_>) -> Markup {
    let item = p.item;
    let r = &item.record;
    let mine = item.locked_by.as_deref() == Some(p.session.user.name.as_str())
        && item.lock_expires_at.is_some_and(|t| t > p.now);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &r.redactions {
        *kinds.entry(s.kind.as_str()).or_default() += 1;
    }
    // The claim a moderator most likely means: the rumour's, else the pipeline's best match.
    let suggested: Option<&str> = p.rumour.and_then(|x| x.claim_id.as_deref()).or_else(|| {
        r.risk
            .as_ref()
            .and_then(|k| k.claims.first())
            .map(|c| c.id.as_str())
    });
    let mut rules: Vec<&str> = r.redactions.iter().map(|s| s.rule.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    layout(
        &format!("{} {}", tr("Item"), item.id),
        Some(p.session),
        html! {
            @if let Some(e) = p.error { p.error role="alert" { (e) } }
            blockquote.post lang=(item.lang) { (item.redacted_text) }
            div.columns {
                dl.meta {
                    dt { (tr("Language")) } dd { (r.lang.code.as_str()) " (" (tr("confidence")) " " (i18n::number(r.lang.confidence, 2)) ")" }
                    dt { (tr("Channel")) } dd { (item.channel) }
                    dt { (tr("Country")) } dd { (item.country.clone().unwrap_or_else(|| "–".into())) }
                    dt { (tr("Queue")) } dd { (item.queue) " · " (tr("priority")) " " (priority_name(item)) }
                    dt { (tr("Posted")) } dd { (item.seen_at) }
                }
                section.explanation {
                    h2 { (tr("Why it is here")) }
                    ul {
                        @for reason in &r.route.reasons {
                            li { (i18n::tr_dynamic(&format!("{reason:?}").to_lowercase())) }
                        }
                    }
                    @if let Some(risk) = &r.risk {
                        p { (tr("Risk score")) " " strong { (i18n::number(risk.score, 2)) } " (" (i18n::tr_dynamic(&format!("{:?}", risk.label).to_lowercase()))
                            "; " (tr("calibrated probability")) " " (i18n::number(risk.probability, 2)) ", " (tr("classifier output")) " " (i18n::number(risk.head_score, 2))
                            ", " (tr("model")) " " (risk.model) ")" }
                        p { (tr("Decision")) " " strong { (wire_name(risk.outcome)) }
                            ", " (tr("on")) " " (wire_name(risk.basis))
                            "; " (tr("health claim")) " " (i18n::number(risk.claim_probability, 2))
                            @if let Some(stance) = risk.stance { "; " (tr("stance")) " " (format!("{stance:?}").to_lowercase()) } }
                        @if !risk.claims.is_empty() {
                            p { (tr("Restates known false claims:")) }
                            ul.claims {
                                @for c in &risk.claims {
                                    li { span.kind { (c.id) } " " (i18n::number(c.similarity, 2)) " — " (c.text) " (" (c.lang) ")" }
                                }
                            }
                        }
                    } @else {
                        p { (tr("Not scored for risk.")) }
                    }
                    @if kinds.is_empty() {
                        p { (tr("No identifiers were redacted.")) }
                    } @else {
                        p { (tr("Redacted:")) " "
                            @for (i, (kind, n)) in kinds.iter().enumerate() {
                                @if i > 0 { ", " }
                                span.kind { (kind) } " ×" (n)
                            }
                        }
                        p.rules { (tr("Rules:")) " " (rules.join(", ")) }
                    }
                    @if let Some(rumour) = p.rumour {
                        p { (tr("Part of rumour")) " " a href={ "/tracker#rumour-" (rumour.id) } { "#" (rumour.id) } ": " (rumour.title)
                            " (" (rumour.posts) " " (tr("posts")) ", " (tr_status(&rumour.status)) ")" }
                    }
                }
            }
            @if let Some(decision) = &item.decision {
                p.notice { (tr("Decided:")) " " strong { (decision_label(decision)) } " " (tr("by")) " " (item.decided_by.clone().unwrap_or_default())
                    " — " (item.decision_reason.clone().unwrap_or_default()) }
            } @else if mine {
                form id="decide" method="post" action={ "/items/" (url_segment(&item.id)) "/decide" } {
                    input type="hidden" name="csrf" value=(p.session.csrf);
                    fieldset.decisions {
                        legend { (tr("Decision (keys: a r e m f; Ctrl+Enter submits)")) }
                        @for d in Decision::ALL {
                            label {
                                input type="radio" name="decision" value=(d.as_str()) data-key=(d.key()) required;
                                " " (tr(d.label())) " " kbd { (d.key()) }
                            }
                        }
                    }
                    label.block { (tr("Reason (required)"))
                        textarea name="reason" rows="2" required placeholder=(tr("Why? Other moderators and the audit log will read this.")) {}
                    }
                    fieldset.rumour {
                        legend { (tr("For a rumour: the known claim it repeats")) }
                        select name="claim_id" aria-label=(tr("Known claim")) {
                            option value="" { (tr("— new claim —")) }
                            @for c in p.claims { option value=(c.id) selected[suggested == Some(c.id.as_str())] { (c.id) ": " (truncate(&c.text, 80)) } }
                        }
                        input type="text" name="new_claim" aria-label=(tr("New claim")) placeholder=(tr("…or state the new claim in a sentence"));
                    }
                    button type="submit" { (tr("Record decision")) }
                }
                form method="post" action={ "/items/" (url_segment(&item.id)) "/release" } {
                    input type="hidden" name="csrf" value=(p.session.csrf);
                    button.secondary type="submit" { (tr("Give back to the queue")) }
                }
            } @else if item.is_locked_for(&p.session.user.name, p.now) {
                p.locked { (tr("Being reviewed by")) " " (item.locked_by.clone().unwrap_or_default()) "." }
            } @else if p.session.user.role.can_moderate() {
                form method="post" action={ "/items/" (url_segment(&item.id)) "/claim" } {
                    input type="hidden" name="csrf" value=(p.session.csrf);
                    button type="submit" { (tr("Claim this item")) }
                }
            }
        },
    )
}

pub struct TrackerPage<'a> {
    pub session: &'a Session,
    pub rumours: &'a [RumourView],
    pub volume: &'a BTreeMap<NaiveDate, (usize, usize)>,
    /// Alerts of the last days, newest first.
    pub alerts: &'a [Alert],
    pub rules: &'a [AlertRule],
    /// Each rumour's figures now, over the alert window.
    pub figures: &'a BTreeMap<i64, Figures>,
    pub window_minutes: i64,
    /// Whether alerts go to a webhook (else they are only shown here).
    pub webhook: bool,
}

/// A share as a whole percentage.
fn percent(share: f64) -> String {
    format!("{} %", (share * 100.0).round() as i64)
}

fn alerts_section(p: &TrackerPage<'_>) -> Markup {
    let titles: BTreeMap<i64, &str> = p.rumours.iter().map(|r| (r.id, r.title.as_str())).collect();
    html! {
        section.alerts aria-labelledby="alerts-heading" {
            h2 id="alerts-heading" { (tr("Alerts")) }
            p.rules {
                (tr("Rules")) " (" (tr("window")) " " (p.window_minutes) " " (tr("min")) "): "
                @for (i, rule) in p.rules.iter().enumerate() {
                    @if i > 0 { " · " }
                    span.kind { (rule.name) } " " (rule.when)
                }
            }
            @if p.alerts.is_empty() {
                p { (tr("No alerts in the last 7 days.")) }
            } @else {
                table.alerts {
                    thead { tr { th { (tr("When (UTC)")) } th { (tr("Rumour")) } th { (tr("Rule")) } th { (tr("Recent posts")) } th { (tr("Velocity")) } th { (tr("Questions")) } th { (tr("Languages")) } th { (tr("Delivery")) } } }
                    tbody {
                        @for a in p.alerts {
                            tr.alert data-alert=(a.id) data-rumour=(a.rumour) {
                                td.dates { (a.raised_at.replace('T', " ").trim_end_matches('Z')) }
                                td.text { a href={ "#rumour-" (a.rumour) } { "#" (a.rumour) } " " (titles.get(&a.rumour).copied().unwrap_or("")) }
                                td { span.kind { (a.rule) } }
                                td { (a.figures.recent) }
                                td { "×" (i18n::number(a.figures.velocity as f32, 1)) }
                                td { (percent(a.figures.question_share)) }
                                td { (a.figures.by_language.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" · ")) }
                                td {
                                    @if a.delivered_at.is_some() { (tr("sent")) }
                                    @else if !p.webhook { (tr("shown here only")) }
                                    @else if a.attempts > 0 { (tr("retrying")) " (" (a.attempts) ")" }
                                    @else { (tr("pending")) }
                                }
                            }
                        }
                    }
                }
            }
            p { a href="/report/weekly" { (tr("Weekly rumour report")) } }
        }
    }
}

pub fn tracker(p: TrackerPage<'_>) -> Markup {
    let last = p
        .rumours
        .iter()
        .flat_map(|r| r.per_day.keys().next_back())
        .max()
        .copied();
    let window = last.map(|l| (l - chrono::Duration::days(29), l));
    let join = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    layout(
        tr("Rumour tracker"),
        Some(p.session),
        html! {
            section.volume {
                h2 { (tr("Flagged posts per day")) }
                (volume_chart(p.volume))
                p.legend { span.swatch.misinfo {} " " (tr("misinformation")) " " span.swatch.privacy {} " " (tr("privacy only")) " · " a href="/volume.csv" { (tr("Export CSV")) } }
            }
            (alerts_section(&p))
            section {
                h2 { (tr("Rumours")) }
                p { a href="/tracker.csv" { (tr("Export CSV")) } }
                @if p.rumours.is_empty() {
                    p { (tr("No posts flagged for misinformation yet.")) }
                } @else {
                    table.rumours {
                        thead { tr { th { "#" } th { (tr("Rumour")) } th { (tr("Posts")) } th { (tr("Recent posts")) } th { (tr("Velocity")) } th { (tr("Questions")) } th { (tr("Confirmed")) } th { (tr("Languages")) } th { (tr("Countries")) } th { (tr("Channels")) } th { (tr("Last 30 days")) } th { (tr("First / last seen")) } th { (tr("Status")) } } }
                        tbody {
                            @for r in p.rumours {
                                tr id={ "rumour-" (r.id) } data-rumour=(r.id) class=[p.alerts.iter().any(|a| a.rumour == r.id).then_some("alerted")] {
                                    td { (r.id) }
                                    td.text {
                                        (r.title)
                                        @if let Some(claim) = &r.claim_id { br; small.claim { (tr("known claim")) " " (claim) } }
                                    }
                                    td.posts { (r.posts) }
                                    @if let Some(f) = p.figures.get(&r.id) {
                                        td.recent { (f.recent) }
                                        td.velocity { "×" (i18n::number(f.velocity as f32, 1)) }
                                        td.questions { (percent(f.question_share)) }
                                    } @else {
                                        td {} td {} td {}
                                    }
                                    td.confirmed { (r.confirmed) }
                                    td { (join(&r.by_language)) }
                                    td { (join(&r.by_country)) }
                                    td { (join(&r.by_channel)) }
                                    td { @if let Some((from, to)) = window { (sparkline(&r.daily_series(from, to))) } }
                                    td.dates { (r.first_seen.as_deref().map(|s| &s[..s.len().min(10)]).unwrap_or("")) br; (r.last_seen.as_deref().map(|s| &s[..s.len().min(10)]).unwrap_or("")) }
                                    td {
                                        @if p.session.user.role.can_manage_rumours() {
                                            form.status method="post" action={ "/rumours/" (r.id) "/status" } {
                                                input type="hidden" name="csrf" value=(p.session.csrf);
                                                select name="status" aria-label={ (tr("Status of rumour")) " " (r.id) } {
                                                    @for s in CLUSTER_STATUSES { option value=(s) selected[s == r.status] { (tr_status(s)) } }
                                                }
                                                button type="submit" { (tr("Set")) }
                                            }
                                        } @else {
                                            span.status { (tr_status(&r.status)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One rumour in the weekly report.
pub struct ReportRow<'a> {
    pub rumour: &'a RumourView,
    pub this_week: usize,
    pub previous_week: usize,
    pub signals: usize,
    pub questions: usize,
    /// Posts per day over the week, oldest first.
    pub daily: Vec<usize>,
    pub response: String,
}

/// The weekly rumour report: a printable page (the browser's print prints it plainly).
pub fn weekly_report(
    session: &Session,
    from: NaiveDate,
    to: NaiveDate,
    rows: &[ReportRow<'_>],
) -> Markup {
    layout(
        tr("Weekly rumour report"),
        Some(session),
        html! {
            p.period { (from) " – " (to) " · " a href={ "/report/weekly.csv?end=" (to) } { (tr("Export CSV")) } " · "
                a href={ "/report/weekly?end=" (from - chrono::Duration::days(1)) } { (tr("Previous week")) } }
            @if rows.is_empty() {
                p { (tr("No rumour had posts this week.")) }
            }
            @for row in rows {
                @let r = row.rumour;
                article.report-rumour id={ "report-" (r.id) } {
                    h2 { "#" (r.id) " " (r.title) }
                    dl.meta {
                        dt { (tr("Status")) } dd { (tr_status(&r.status)) }
                        dt { (tr("Posts this week")) } dd { (row.this_week) " (" (tr("previous week")) " " (row.previous_week) ")" }
                        dt { (tr("Questions")) } dd { (row.questions) }
                        dt { (tr("Rumour signals")) } dd { (row.signals) }
                        dt { (tr("Languages")) } dd { (r.by_language.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" · ")) }
                        dt { (tr("Countries")) } dd { (r.by_country.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" · ")) }
                        @if let Some(claim) = &r.claim_text {
                            dt { (tr("Known claim")) } dd { (claim) @if !r.verdict.is_empty() { " (" (r.verdict) ")" } }
                        }
                        @if !r.fact_check_url.is_empty() {
                            dt { (tr("Fact-check")) }
                            dd {
                                // Links come from claim libraries and imports: only web addresses become links.
                                @if r.fact_check_url.starts_with("https://") || r.fact_check_url.starts_with("http://") {
                                    a href=(r.fact_check_url) rel="noopener noreferrer" { (r.fact_check_url) }
                                } @else { (r.fact_check_url) }
                            }
                        }
                        dt { (tr("Trend")) } dd { (sparkline(&row.daily)) }
                    }
                    h3 { (tr("Suggested response")) }
                    blockquote.response { (row.response) }
                }
            }
        },
    )
}

fn sparkline(series: &[usize]) -> Markup {
    let (w, h) = (120.0f32, 24.0f32);
    let max = series.iter().copied().max().unwrap_or(0).max(1) as f32;
    let step = if series.len() > 1 {
        w / (series.len() - 1) as f32
    } else {
        w
    };
    let points: Vec<String> = series
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f32 * step,
                h - 2.0 - (*v as f32 / max) * (h - 4.0)
            )
        })
        .collect();
    html! {
        svg.sparkline width="120" height="24" viewBox="0 0 120 24" role="img" aria-label={ (tr("posts per day:")) " " (series.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" ")) } {
            polyline points=(points.join(" ")) fill="none" stroke="#b4412e" stroke-width="1.5" {}
        }
    }
}

fn volume_chart(days: &BTreeMap<NaiveDate, (usize, usize)>) -> Markup {
    let (Some(first), Some(last)) = (
        days.keys().next().copied(),
        days.keys().next_back().copied(),
    ) else {
        return html! { p { (tr("No data yet.")) } };
    };
    let first = first.max(last - chrono::Duration::days(89));
    let series: Vec<(NaiveDate, usize, usize)> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| {
            let (m, p) = days.get(&d).copied().unwrap_or((0, 0));
            (d, m, p)
        })
        .collect();
    let max = series
        .iter()
        .map(|(_, m, p)| m + p)
        .max()
        .unwrap_or(0)
        .max(1) as f32;
    let (w, h) = (720.0f32, 140.0f32);
    let bar = w / series.len() as f32;
    html! {
        svg.chart width="720" height="160" viewBox="0 0 720 160" role="img" aria-label=(tr("flagged posts per day")) {
            @for (i, (day, m, p)) in series.iter().enumerate() {
                @let x = i as f32 * bar;
                @let hm = *m as f32 / max * h;
                @let hp = *p as f32 / max * h;
                g {
                    title { (day) ": " (m) " " (tr("misinformation")) ", " (p) " " (tr("privacy only")) }
                    rect x=(format!("{x:.1}")) y=(format!("{:.1}", h - hm - hp)) width=(format!("{:.1}", (bar - 1.0).max(1.0))) height=(format!("{hp:.1}")) fill="#6b8fb3" {}
                    rect x=(format!("{x:.1}")) y=(format!("{:.1}", h - hm)) width=(format!("{:.1}", (bar - 1.0).max(1.0))) height=(format!("{hm:.1}")) fill="#b4412e" {}
                }
            }
            text x="0" y="156" font-size="11" { (first) }
            text x="720" y="156" font-size="11" text-anchor="end" { (last) }
            text x="0" y="10" font-size="11" { "max " (max as usize) " " (tr("per day")) }
        }
    }
}

pub fn audit(session: &Session, entries: &[AuditEntry]) -> Markup {
    layout(
        tr("Audit log"),
        Some(session),
        html! {
            p { (tr("Append-only: every sign-in, claim, decision and status change.")) " " a href="/audit.csv" { (tr("Export CSV")) } }
            table.audit {
                thead { tr { th { "#" } th { (tr("When (UTC)")) } th { (tr("Who")) } th { (tr("What")) } th { (tr("Target")) } th { (tr("Why")) } th { (tr("Detail")) } } }
                tbody {
                    @for e in entries {
                        tr { td { (e.id) } td { (e.at) } td { (e.actor) } td { (e.action) } td { (e.target) } td { (e.reason) } td { (e.detail) } }
                    }
                }
            }
        },
    )
}

/// A contract enum's name as records carry it (`rumour-signal`, `not-a-claim`).
fn wire_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
