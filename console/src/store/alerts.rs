//! The store's side of rumour alerts: raising (at most one per rumour and rule per
//! cool-down, audited) and the delivery outbox the webhook reads.

use chrono::{DateTime, Utc};

use super::db::{args, Value};
use super::{audit, rfc3339, Result, Store, StoreError};
use crate::alerts::{Alert, Figures, Firing};

/// Deliveries tried per alert before it is left for an admin to see on the tracker.
pub const MAX_ATTEMPTS: i64 = 50;

impl Store {
    /// Stores the firings that are news: a rule that already raised an alert for the same
    /// rumour within `cooldown` stays quiet. Returns the alerts raised.
    pub fn raise_alerts(
        &self,
        firings: &[Firing],
        now: DateTime<Utc>,
        cooldown: chrono::Duration,
    ) -> Result<Vec<i64>> {
        let since = rfc3339(now - cooldown);
        // One write transaction: the check and the insert never interleave with another
        // writer's (a second console, an import), so one rise raises one alert.
        self.db.write(|s| {
            let mut raised = Vec::new();
            for f in firings {
                let recent = s.query_opt(
                    "SELECT id FROM alerts WHERE cluster_id = ?1 AND rule = ?2 AND raised_at > ?3 LIMIT 1",
                    &args![f.rumour, f.rule.as_str(), since.as_str()],
                )?;
                if recent.is_some() {
                    continue;
                }
                let figures = serde_json::to_string(&f.figures)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                let id: i64 = s
                    .query_one(
                        "INSERT INTO alerts (cluster_id, rule, raised_at, figures) VALUES (?1, ?2, ?3, ?4) RETURNING id",
                        &args![f.rumour, f.rule.as_str(), rfc3339(now), figures],
                    )?
                    .get(0)?;
                audit(
                    s,
                    now,
                    "alerts",
                    "alert",
                    &format!("rumour {}", f.rumour),
                    &f.rule,
                    &format!(
                        "{} recent posts, velocity {:.1}, questions {:.0} %",
                        f.figures.recent,
                        f.figures.velocity,
                        f.figures.question_share * 100.0
                    ),
                )?;
                raised.push(id);
            }
            Ok(raised)
        })
    }

    /// Alerts raised since `since`, newest first.
    pub fn alerts_since(&self, since: DateTime<Utc>) -> Result<Vec<Alert>> {
        self.select_alerts(
            "WHERE raised_at >= ?1 ORDER BY id DESC",
            &args![rfc3339(since)],
        )
    }

    /// Undelivered alerts whose next try is due, oldest first.
    pub fn due_alerts(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Alert>> {
        self.select_alerts(
            "WHERE delivered_at IS NULL AND attempts < ?2 AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
             ORDER BY id LIMIT ?3",
            &args![rfc3339(now), MAX_ATTEMPTS, limit],
        )
    }

    pub fn mark_alert_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        self.db.write(|s| {
            s.execute(
                "UPDATE alerts SET delivered_at = ?2, attempts = attempts + 1, last_error = '' WHERE id = ?1",
                &args![id, rfc3339(now)],
            )?;
            Ok(())
        })
    }

    pub fn mark_alert_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt: DateTime<Utc>,
    ) -> Result<()> {
        self.db.write(|s| {
            s.execute(
                "UPDATE alerts SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                &args![id, error, rfc3339(next_attempt)],
            )?;
            Ok(())
        })
    }

    fn select_alerts(&self, tail: &str, args: &[Value]) -> Result<Vec<Alert>> {
        let rows = self.db.read(|s| {
            s.query(
                &format!(
                    "SELECT id, cluster_id, rule, raised_at, figures, delivered_at, attempts, last_error FROM alerts {tail}"
                ),
                args,
            )
        })?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0)?;
                let figures: String = r.get(4)?;
                let figures: Figures = serde_json::from_str(&figures)
                    .map_err(|e| StoreError::Invalid(format!("alert {id}: {e}")))?;
                Ok(Alert {
                    id,
                    rumour: r.get(1)?,
                    rule: r.get(2)?,
                    raised_at: r.get(3)?,
                    figures,
                    delivered_at: r.get(5)?,
                    attempts: r.get(6)?,
                    last_error: r.get(7)?,
                })
            })
            .collect()
    }
}
