//! Rumour alerts for programme staff: per rumour, volume and velocity against its own
//! baseline, the share of questions and of rumour signals (information voids), languages
//! and countries; rules from the config (`when = "recent >= 5 and velocity >= 3"`) raise
//! alerts, which the tracker shows and a webhook delivers (JSON POST, signed, retried).
//!
//! This module is pure (figures, rules, payloads, signatures, the webhook client); the
//! store raises alerts (one per rumour and rule per cool-down, audited) and
//! the `alerting` module runs the checks and deliveries.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::tracker::RumourView;

/// The figures a rule can test, as written in the config.
const METRICS: [(&str, Metric); 9] = [
    ("posts", Metric::Posts),
    ("recent", Metric::Recent),
    ("per_hour", Metric::PerHour),
    ("baseline", Metric::Baseline),
    ("velocity", Metric::Velocity),
    ("question_share", Metric::QuestionShare),
    ("signal_share", Metric::SignalShare),
    ("languages", Metric::Languages),
    ("countries", Metric::Countries),
];

/// What a rumour looks like at one moment, over the alert window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Posts of the rumour ever (flagged posts and rumour signals).
    pub posts: usize,
    /// Posts within the window that ends now.
    pub recent: usize,
    /// `recent` as posts per hour.
    pub per_hour: f64,
    /// The rumour's usual posts per window, over the baseline period before the window.
    pub baseline: f64,
    /// `recent` against the baseline, counting at least one post per window as usual
    /// (so a new rumour's velocity is its post count, not infinity).
    pub velocity: f64,
    /// Of the recent posts, those asking whether it is true.
    pub question_share: f64,
    /// Of the recent posts, rumour signals (asking, refuting, reporting).
    pub signal_share: f64,
    /// Languages and countries among the recent posts.
    pub languages: usize,
    pub countries: usize,
    pub by_language: BTreeMap<String, usize>,
    pub by_country: BTreeMap<String, usize>,
}

impl Figures {
    fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Posts => self.posts as f64,
            Metric::Recent => self.recent as f64,
            Metric::PerHour => self.per_hour,
            Metric::Baseline => self.baseline,
            Metric::Velocity => self.velocity,
            Metric::QuestionShare => self.question_share,
            Metric::SignalShare => self.signal_share,
            Metric::Languages => self.languages as f64,
            Metric::Countries => self.countries as f64,
        }
    }
}

/// The alert window and the baseline it is compared with.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub window: chrono::Duration,
    pub baseline: chrono::Duration,
}

/// A rumour's figures at `now`. Posts dated after `now` (clocks of other platforms; the
/// import keeps them at most ten minutes past their screening) count as recent.
pub fn figures(rumour: &RumourView, now: DateTime<Utc>, w: Windows) -> Figures {
    let window_start = now - w.window;
    let baseline_start = window_start - w.baseline;
    let mut f = Figures {
        posts: rumour.posts,
        recent: 0,
        per_hour: 0.0,
        baseline: 0.0,
        velocity: 0.0,
        question_share: 0.0,
        signal_share: 0.0,
        languages: 0,
        countries: 0,
        by_language: BTreeMap::new(),
        by_country: BTreeMap::new(),
    };
    let (mut before, mut questions, mut signals) = (0usize, 0usize, 0usize);
    for a in &rumour.activity {
        if a.at > window_start {
            f.recent += 1;
            questions += usize::from(a.question);
            signals += usize::from(a.signal);
            *f.by_language.entry(a.lang.clone()).or_default() += 1;
            if let Some(c) = &a.country {
                *f.by_country.entry(c.clone()).or_default() += 1;
            }
        } else if a.at > baseline_start {
            before += 1;
        }
    }
    let window_secs = w.window.num_seconds().max(1) as f64;
    let windows_in_baseline = (w.baseline.num_seconds() as f64 / window_secs).max(1.0);
    f.baseline = before as f64 / windows_in_baseline;
    f.velocity = f.recent as f64 / f.baseline.max(1.0);
    f.per_hour = f.recent as f64 * 3600.0 / window_secs;
    if f.recent > 0 {
        f.question_share = questions as f64 / f.recent as f64;
        f.signal_share = signals as f64 / f.recent as f64;
    }
    f.languages = f.by_language.len();
    f.countries = f.by_country.len();
    f
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Posts,
    Recent,
    PerHour,
    Baseline,
    Velocity,
    QuestionShare,
    SignalShare,
    Languages,
    Countries,
}

impl Metric {
    fn parse(s: &str) -> Option<Metric> {
        METRICS.iter().find(|(name, _)| *name == s).map(|(_, m)| *m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

#[derive(Debug, Clone, PartialEq)]
struct Test {
    metric: Metric,
    op: Op,
    value: f64,
}

/// A config rule: a name and its condition, tests joined by `and`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub name: String,
    pub when: String,
    tests: Vec<Test>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("alert rule {rule:?}: {message}")]
pub struct RuleError {
    pub rule: String,
    pub message: String,
}

impl AlertRule {
    /// Parses `metric op number [and metric op number]...`, e.g.
    /// `recent >= 5 and velocity >= 3`. Operators: `>=`, `>`, `<=`, `<`, `==`.
    pub fn parse(name: &str, when: &str) -> Result<AlertRule, RuleError> {
        let err = |message: String| RuleError {
            rule: name.to_string(),
            message,
        };
        if name.trim().is_empty() {
            return Err(err("a rule needs a name".into()));
        }
        let mut tests = Vec::new();
        for part in when.split(" and ") {
            let words: Vec<&str> = part.split_whitespace().collect();
            let [metric, op, value] = words[..] else {
                return Err(err(format!(
                    "{:?} is not `metric operator number` (e.g. `velocity >= 3`)",
                    part.trim()
                )));
            };
            let metric = Metric::parse(metric).ok_or_else(|| {
                err(format!(
                    "unknown figure {metric:?}; known: {}",
                    METRICS.map(|(name, _)| name).join(", ")
                ))
            })?;
            let op = match op {
                ">=" => Op::Ge,
                ">" => Op::Gt,
                "<=" => Op::Le,
                "<" => Op::Lt,
                "==" => Op::Eq,
                other => {
                    return Err(err(format!(
                        "unknown operator {other:?}; use >=, >, <=, < or =="
                    )))
                }
            };
            let value: f64 = value
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| err(format!("{value:?} is not a number")))?;
            tests.push(Test { metric, op, value });
        }
        Ok(AlertRule {
            name: name.trim().to_string(),
            when: when.trim().to_string(),
            tests,
        })
    }

    pub fn holds(&self, f: &Figures) -> bool {
        self.tests.iter().all(|t| {
            let x = f.get(t.metric);
            match t.op {
                Op::Ge => x >= t.value,
                Op::Gt => x > t.value,
                Op::Le => x <= t.value,
                Op::Lt => x < t.value,
                Op::Eq => (x - t.value).abs() < 1e-9,
            }
        })
    }
}

impl fmt::Display for AlertRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.when)
    }
}

/// A rule that holds for a rumour now.
#[derive(Debug, Clone)]
pub struct Firing {
    pub rumour: i64,
    pub rule: String,
    pub figures: Figures,
}

/// Every (rumour, rule) whose condition holds at `now`. Rumours of every status are
/// watched: a debunked rumour that spikes again is news.
pub fn evaluate(
    rumours: &[RumourView],
    rules: &[AlertRule],
    now: DateTime<Utc>,
    w: Windows,
) -> Vec<Firing> {
    let mut out = Vec::new();
    for r in rumours {
        let f = figures(r, now, w);
        for rule in rules {
            if rule.holds(&f) {
                out.push(Firing {
                    rumour: r.id,
                    rule: rule.name.clone(),
                    figures: f.clone(),
                });
            }
        }
    }
    out
}

/// An alert as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: i64,
    pub rumour: i64,
    pub rule: String,
    pub raised_at: String,
    pub figures: Figures,
    pub delivered_at: Option<String>,
    pub attempts: i64,
    pub last_error: String,
}

/// What the webhook receives (one alert per POST).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertPayload {
    /// Always `vigie.rumour_alert`.
    #[serde(rename = "type")]
    pub kind: String,
    pub alert_id: i64,
    pub rule: String,
    /// The rule's condition as configured.
    pub condition: String,
    pub raised_at: String,
    pub rumour: RumourSummary,
    pub figures: Figures,
}

/// The rumour an alert is about: its title is redacted text, its claim the library's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RumourSummary {
    pub id: i64,
    pub title: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub verdict: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fact_check_url: String,
    /// The rumour on the tracker page, when the console's public address is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracker_url: Option<String>,
}

impl RumourSummary {
    pub fn of(r: &RumourView, console_url: Option<&str>) -> Self {
        RumourSummary {
            id: r.id,
            title: r.title.clone(),
            status: r.status.clone(),
            claim_id: r.claim_id.clone(),
            claim: r.claim_text.clone(),
            verdict: r.verdict.clone(),
            fact_check_url: r.fact_check_url.clone(),
            tracker_url: console_url
                .map(|u| format!("{}/tracker#rumour-{}", u.trim_end_matches('/'), r.id)),
        }
    }
}

/// The signature header's name. Its value is `t=<unix seconds>,v1=<hex>`, where `<hex>`
/// is HMAC-SHA256 with the shared secret over `<unix seconds>.<body>`: a receiver
/// recomputes it, compares in constant time, and refuses old timestamps (replays).
pub const SIGNATURE_HEADER: &str = "X-Vigie-Signature";

pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("t={timestamp},v1={}", crate::auth::hex(&digest))
}

/// Checks a signature header as a receiver would (used by the tests; receivers in other
/// languages follow the description of [`SIGNATURE_HEADER`]).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut given = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => given = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(given)) = (timestamp, given) else {
        return false;
    };
    if now.abs_diff(t) > tolerance_secs.unsigned_abs() {
        return false;
    }
    let expected = signature(secret, t, body);
    crate::auth::same_secret(&expected, &format!("t={t},v1={given}"))
}

/// Posts alerts to one URL.
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
}

/// Why a delivery failed (kept on the alert, shown to admins; never holds post text).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook unreachable: {0}")]
    Transport(String),
    #[error("webhook answered {0}")]
    Status(u16),
}

impl Webhook {
    pub fn new(url: &str, secret: &[u8], timeout: Duration) -> Result<Webhook, WebhookError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A signed alert goes to the address configured, not wherever it redirects.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookError::Transport(e.to_string()))?;
        Ok(Webhook {
            client,
            url: url.to_string(),
            secret: secret.to_vec(),
        })
    }

    pub async fn post(&self, payload: &AlertPayload) -> Result<(), WebhookError> {
        let body =
            serde_json::to_vec(payload).map_err(|e| WebhookError::Transport(e.to_string()))?;
        let sig = signature(&self.secret, Utc::now().timestamp(), &body);
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await
            // Without the URL: it may carry a token in its query.
            .map_err(|e| WebhookError::Transport(e.without_url().to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(WebhookError::Status(response.status().as_u16()))
        }
    }
}

/// When a failed delivery is tried again: 15 s, 30 s, 1 min... up to an hour.
pub fn retry_delay(attempts: i64) -> chrono::Duration {
    let secs = 15i64.saturating_mul(1i64 << attempts.clamp(0, 8));
    chrono::Duration::seconds(secs.min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::Activity;

    fn at(minutes_ago: i64, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::minutes(minutes_ago)
    }

    fn rumour(posts: &[(i64, bool, bool, &str)], now: DateTime<Utc>) -> RumourView {
        let mut r = RumourView::new(7, "t".into(), "new".into(), None, None);
        for (ago, signal, question, lang) in posts {
            r.posts += 1;
            r.activity.push(Activity {
                at: at(*ago, now),
                signal: *signal,
                question: *question,
                lang: lang.to_string(),
                country: Some(if *lang == "fr" { "SN" } else { "GB" }.into()),
            });
        }
        r
    }

    const HOURLY: Windows = Windows {
        window: chrono::Duration::hours(1),
        baseline: chrono::Duration::hours(24),
    };

    #[test]
    fn velocity_compares_the_last_window_with_the_rumours_own_usual_rate() {
        let now = Utc::now();
        // Two posts an hour for the day before, then twelve in the last hour.
        let mut posts: Vec<(i64, bool, bool, &str)> =
            (0..48).map(|i| (61 + i * 30, false, false, "en")).collect();
        posts.extend((0..12).map(|i| (i * 5, i % 2 == 0, i % 3 == 0, "fr")));
        let f = figures(&rumour(&posts, now), now, HOURLY);
        assert_eq!(f.recent, 12);
        assert!((f.baseline - 2.0).abs() < 0.1, "baseline {}", f.baseline);
        assert!((f.velocity - 6.0).abs() < 0.3, "velocity {}", f.velocity);
        assert!((f.signal_share - 0.5).abs() < 1e-9);
        assert!((f.question_share - 4.0 / 12.0).abs() < 1e-9);
        assert_eq!((f.languages, f.countries), (1, 1));
        // A steady rumour at its usual rate is not a spike.
        let steady: Vec<_> = (0..50).map(|i| (i * 30, false, false, "en")).collect();
        let f = figures(&rumour(&steady, now), now, HOURLY);
        assert!(f.velocity < 1.5, "velocity {}", f.velocity);
    }

    #[test]
    fn a_new_rumour_counts_at_least_one_post_per_window_as_usual() {
        let now = Utc::now();
        let f = figures(&rumour(&[(5, false, false, "fr"); 4], now), now, HOURLY);
        assert_eq!(f.baseline, 0.0);
        assert_eq!(f.velocity, 4.0);
    }

    #[test]
    fn rules_parse_test_and_explain_their_mistakes() {
        let rule = AlertRule::parse("spike", "recent >= 5 and velocity > 3").unwrap();
        let now = Utc::now();
        let many = rumour(&[(1, false, false, "fr"); 6], now);
        let few = rumour(&[(1, false, false, "fr"); 3], now);
        assert!(rule.holds(&figures(&many, now, HOURLY)));
        assert!(!rule.holds(&figures(&few, now, HOURLY)));
        for (when, says) in [
            ("recnt >= 5", "unknown figure"),
            ("recent => 5", "unknown operator"),
            ("recent >= five", "not a number"),
            ("recent >= 5 and", "not `metric operator number`"),
            ("recent >= NaN", "not a number"),
        ] {
            let e = AlertRule::parse("r", when).unwrap_err();
            assert!(e.to_string().contains(says), "{when}: {e}");
        }
    }

    #[test]
    fn signatures_verify_only_with_the_secret_the_body_and_a_fresh_timestamp() {
        let body = br#"{"alert_id":1}"#;
        let header = signature(b"s3cret", 1_700_000_000, body);
        assert!(verify(b"s3cret", &header, body, 1_700_000_010, 300));
        assert!(!verify(b"other", &header, body, 1_700_000_010, 300));
        assert!(!verify(
            b"s3cret",
            &header,
            br#"{"alert_id":2}"#,
            1_700_000_010,
            300
        ));
        assert!(!verify(b"s3cret", &header, body, 1_700_009_000, 300));
        assert!(!verify(b"s3cret", "v1=00", body, 1_700_000_010, 300));
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(retry_delay(0).num_seconds(), 15);
        assert_eq!(retry_delay(2).num_seconds(), 60);
        assert_eq!(retry_delay(60).num_seconds(), 3600);
    }
}
