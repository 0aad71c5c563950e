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

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::store::test_db;
    use crate::tracker::LexicalEmbedder;
    use vigie_pipeline::testing::moderation_record as record;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn firing(rumour: i64, rule: &str, recent: usize) -> Firing {
        Firing {
            rumour,
            rule: rule.into(),
            figures: Figures {
                posts: recent,
                recent,
                per_hour: recent as f64,
                baseline: 1.0,
                velocity: recent as f64,
                question_share: 0.5,
                signal_share: 0.25,
                languages: 1,
                countries: 1,
                by_language: [("fr".to_string(), recent)].into(),
                by_country: [("SN".to_string(), recent)].into(),
            },
        }
    }

    #[test]
    fn alerts_are_raised_once_per_cooldown_and_retried_until_delivered() {
        for store in test_db::fresh_stores() {
            let engine = store.engine();
            store
                .import(
                    &[record(
                        "m1",
                        "fr",
                        "Le vaccin rend stérile",
                        true,
                        "2024-05-01T09:00:00Z",
                    )],
                    &LexicalEmbedder,
                    "test",
                    t("2024-05-01T10:00:00Z"),
                )
                .unwrap();
            let rumour = store.rumours().unwrap()[0].id;
            let now = t("2024-05-02T10:00:00Z");
            let cooldown = Duration::hours(6);

            let raised = store
                .raise_alerts(&[firing(rumour, "spike", 7)], now, cooldown)
                .unwrap();
            assert_eq!(raised.len(), 1, "on {engine}");
            // Within the cool-down the same rule stays quiet; another rule does not.
            let again = store
                .raise_alerts(
                    &[
                        firing(rumour, "spike", 9),
                        firing(rumour, "information-void", 9),
                    ],
                    now + Duration::hours(1),
                    cooldown,
                )
                .unwrap();
            assert_eq!(again.len(), 1, "on {engine}");
            let listed = store.alerts_since(now - Duration::days(1)).unwrap();
            assert_eq!(listed.len(), 2, "on {engine}");
            assert_eq!(listed[1].figures.recent, 7, "figures kept, on {engine}");

            // Delivery: a failure backs off, the alert comes due again later, then is done.
            assert_eq!(store.due_alerts(now, 10).unwrap().len(), 2, "on {engine}");
            store
                .mark_alert_failed(raised[0], "connection refused", now + Duration::minutes(5))
                .unwrap();
            let soon: Vec<i64> = store
                .due_alerts(now + Duration::minutes(1), 10)
                .unwrap()
                .iter()
                .map(|a| a.id)
                .collect();
            assert_eq!(
                soon, again,
                "the failed one waits its back-off, on {engine}"
            );
            let later = now + Duration::hours(2);
            let due_later = store.due_alerts(later, 10).unwrap();
            assert_eq!(due_later.len(), 2, "on {engine}");
            for alert in &due_later {
                store.mark_alert_delivered(alert.id, later).unwrap();
            }
            assert!(
                store.due_alerts(later, 10).unwrap().is_empty(),
                "on {engine}"
            );
            let first = store
                .alerts_since(now - Duration::days(1))
                .unwrap()
                .into_iter()
                .find(|a| a.id == raised[0])
                .unwrap();
            assert_eq!(first.attempts, 2, "on {engine}");
            assert!(first.delivered_at.is_some() && first.last_error.is_empty());
            // Each raise is in the audit log.
            let audited = store
                .audit_log(100)
                .unwrap()
                .iter()
                .filter(|e| e.action == "alert")
                .count();
            assert_eq!(audited, 2, "on {engine}");
        }
    }
}
