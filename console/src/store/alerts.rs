//! The store's side of rumour alerts: raising (at most one per rumour and rule per
//! cool-down, audited) and the delivery outbox the webhook reads.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

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
        let mut conn = self.conn();
        // Immediate: the check and the insert must not interleave with another writer's
        // (a second console, an import), or one rise could raise two alerts.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let since = rfc3339(now - cooldown);
        let mut raised = Vec::new();
        for f in firings {
            let recent: Option<i64> = tx
                .query_row(
                    "SELECT id FROM alerts WHERE cluster_id = ?1 AND rule = ?2 AND raised_at > ?3 LIMIT 1",
                    params![f.rumour, f.rule, since],
                    |r| r.get(0),
                )
                .optional()?;
            if recent.is_some() {
                continue;
            }
            let figures = serde_json::to_string(&f.figures)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            tx.execute(
                "INSERT INTO alerts (cluster_id, rule, raised_at, figures) VALUES (?1, ?2, ?3, ?4)",
                params![f.rumour, f.rule, rfc3339(now), figures],
            )?;
            let id = tx.last_insert_rowid();
            audit(
                &tx,
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
        tx.commit()?;
        Ok(raised)
    }

    /// Alerts raised since `since`, newest first.
    pub fn alerts_since(&self, since: DateTime<Utc>) -> Result<Vec<Alert>> {
        self.select_alerts(
            "WHERE raised_at >= ?1 ORDER BY id DESC",
            params![rfc3339(since)],
        )
    }

    /// Undelivered alerts whose next try is due, oldest first.
    pub fn due_alerts(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Alert>> {
        self.select_alerts(
            "WHERE delivered_at IS NULL AND attempts < ?2 AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
             ORDER BY id LIMIT ?3",
            params![rfc3339(now), MAX_ATTEMPTS, limit as i64],
        )
    }

    pub fn mark_alert_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        self.conn().execute(
            "UPDATE alerts SET delivered_at = ?2, attempts = attempts + 1, last_error = '' WHERE id = ?1",
            params![id, rfc3339(now)],
        )?;
        Ok(())
    }

    pub fn mark_alert_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt: DateTime<Utc>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE alerts SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            params![id, error, rfc3339(next_attempt)],
        )?;
        Ok(())
    }

    fn select_alerts(&self, tail: &str, args: impl rusqlite::Params) -> Result<Vec<Alert>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, cluster_id, rule, raised_at, figures, delivered_at, attempts, last_error FROM alerts {tail}"
        ))?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(
                |(id, rumour, rule, raised_at, figures, delivered_at, attempts, last_error)| {
                    let figures: Figures = serde_json::from_str(&figures)
                        .map_err(|e| StoreError::Invalid(format!("alert {id}: {e}")))?;
                    Ok(Alert {
                        id,
                        rumour,
                        rule,
                        raised_at,
                        figures,
                        delivered_at,
                        attempts,
                        last_error,
                    })
                },
            )
            .collect()
    }
}
