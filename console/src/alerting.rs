//! The console's alerting task: checks every rumour against the rules, has the store
//! raise the alerts that are news, and delivers undelivered ones to the webhook, so an
//! alert raised before a crash or while the receiver is down is delivered later.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alerts::{
    evaluate, retry_delay, Alert, AlertPayload, AlertRule, RuleError, RumourSummary, Webhook,
    WebhookError, Windows,
};
use crate::store::{Store, StoreError};

/// Why the alerts section of the config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AlertConfigError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("console.alerts: {0}")]
    Invalid(String),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

/// The console's alerting: rules, windows, and where alerts go.
pub struct Alerting {
    rules: Vec<AlertRule>,
    windows: Windows,
    cooldown: chrono::Duration,
    webhook: Option<Webhook>,
    console_url: Option<String>,
}

/// Undelivered alerts read per round.
const DELIVERY_BATCH: usize = 64;

impl Alerting {
    /// `secret` is the webhook's shared secret (from the environment variable the config
    /// names); a webhook without one is refused rather than sending unsigned alerts.
    pub fn from_config(
        c: &vigie_pipeline::config::AlertsConfig,
        secret: Option<&str>,
    ) -> Result<Alerting, AlertConfigError> {
        let rules = c
            .rules
            .iter()
            .map(|r| AlertRule::parse(&r.name, &r.when))
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = std::collections::HashSet::new();
        if let Some(dup) = rules.iter().find(|r| !names.insert(r.name.as_str())) {
            return Err(AlertConfigError::Invalid(format!(
                "two rules are named {:?}",
                dup.name
            )));
        }
        // Bounded so that the windows stay within what dates can express, and an alert
        // cannot fire at every check.
        if !(1..=7 * 24 * 60).contains(&c.window_minutes)
            || !(1..=366 * 24).contains(&c.baseline_hours)
            || !(1..=366 * 24).contains(&c.cooldown_hours)
        {
            return Err(AlertConfigError::Invalid(
                "window_minutes must be 1 to 10080 (a week), baseline_hours and cooldown_hours 1 to 8784 (a year)"
                    .into(),
            ));
        }
        let webhook = match (&c.webhook_url, secret.filter(|s| !s.is_empty())) {
            (None, _) => None,
            (Some(url), Some(secret)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(AlertConfigError::Invalid(
                        "webhook_url must be an http:// or https:// address".into(),
                    ));
                }
                Some(Webhook::new(
                    url,
                    secret.as_bytes(),
                    Duration::from_secs(10),
                )?)
            }
            (Some(_), None) => {
                return Err(AlertConfigError::Invalid(format!(
                    "webhook_url is set but {} holds no secret: alerts are signed with it",
                    c.webhook_secret_env
                )))
            }
        };
        Ok(Alerting {
            rules,
            windows: Windows {
                window: chrono::Duration::minutes(c.window_minutes),
                baseline: chrono::Duration::hours(c.baseline_hours),
            },
            cooldown: chrono::Duration::hours(c.cooldown_hours),
            webhook,
            console_url: c.console_url.clone(),
        })
    }

    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    pub fn has_webhook(&self) -> bool {
        self.webhook.is_some()
    }

    pub fn windows(&self) -> Windows {
        self.windows
    }

    /// Checks every rumour at `now` and stores the alerts that are news; returns their ids.
    pub fn check(&self, store: &Store, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        let firings = evaluate(&store.rumours()?, &self.rules, now, self.windows);
        store.raise_alerts(&firings, now, self.cooldown)
    }

    /// Posts the alerts due at `now` to the webhook, oldest first; a failure is retried
    /// later with back-off. Returns how many were delivered.
    pub async fn deliver(&self, store: &Store, now: DateTime<Utc>) -> usize {
        let Some(webhook) = &self.webhook else {
            return 0;
        };
        let due = match store.due_alerts(now, DELIVERY_BATCH) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot read undelivered alerts");
                return 0;
            }
        };
        let mut delivered = 0;
        for alert in due {
            let payload = match self.payload(store, &alert) {
                Ok(p) => p,
                Err(e) => {
                    // Counted as a failed try, so that it backs off (and stops after the
                    // last try) rather than blocking the alerts behind it.
                    tracing::error!(error = %e, alert = alert.id, "cannot prepare an alert");
                    let next = now + retry_delay(alert.attempts);
                    if let Err(e) = store.mark_alert_failed(alert.id, &e.to_string(), next) {
                        tracing::error!(error = %e, alert = alert.id, "cannot record an alert's delivery");
                    }
                    continue;
                }
            };
            let outcome = webhook.post(&payload).await;
            let stored = match &outcome {
                Ok(()) => store.mark_alert_delivered(alert.id, now),
                Err(e) => {
                    tracing::warn!(error = %e, alert = alert.id, attempts = alert.attempts + 1, "alert not delivered; will retry");
                    store.mark_alert_failed(
                        alert.id,
                        &e.to_string(),
                        now + retry_delay(alert.attempts),
                    )
                }
            };
            if let Err(e) = stored {
                tracing::error!(error = %e, alert = alert.id, "cannot record an alert's delivery");
            }
            delivered += usize::from(outcome.is_ok());
        }
        delivered
    }

    fn payload(&self, store: &Store, alert: &Alert) -> Result<AlertPayload, StoreError> {
        let rumour = store
            .rumour(alert.rumour)?
            .ok_or_else(|| StoreError::NotFound(format!("rumour {}", alert.rumour)))?;
        let condition = self
            .rules
            .iter()
            .find(|r| r.name == alert.rule)
            .map(|r| r.when.clone())
            .unwrap_or_default();
        Ok(AlertPayload {
            kind: "vigie.rumour_alert".into(),
            alert_id: alert.id,
            rule: alert.rule.clone(),
            condition,
            raised_at: alert.raised_at.clone(),
            rumour: RumourSummary::of(&rumour, self.console_url.as_deref()),
            figures: alert.figures.clone(),
        })
    }

    /// Checks and delivers every `every`, for as long as the console runs.
    pub async fn run_forever(
        self: std::sync::Arc<Self>,
        store: std::sync::Arc<Store>,
        every: Duration,
    ) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let (this, s) = (self.clone(), store.clone());
            match tokio::task::spawn_blocking(move || this.check(&s, Utc::now())).await {
                Ok(Ok(raised)) if !raised.is_empty() => {
                    tracing::info!(alerts = raised.len(), "rumour alerts raised")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "cannot check rumours for alerts"),
                Err(e) => tracing::error!(error = %e, "the alert check failed"),
            }
            self.deliver(&store, Utc::now()).await;
        }
    }
}
