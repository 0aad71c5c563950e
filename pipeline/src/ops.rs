//! The operators' endpoints of `vigie run`: `/metrics` (Prometheus), `/healthz`
//! (the process is alive and its run has not failed) and `/readyz` (it is consuming:
//! subscribed, a broker reachable, not shutting down).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// What the endpoints report; set by the run loop and the Kafka client callbacks.
#[derive(Debug, Default)]
pub struct Health {
    consuming: AtomicBool,
    brokers_down: AtomicBool,
    draining: AtomicBool,
    failed: AtomicBool,
}

impl Health {
    pub fn set_consuming(&self, v: bool) {
        self.consuming.store(v, Ordering::Relaxed);
    }
    pub fn set_brokers_down(&self, v: bool) {
        self.brokers_down.store(v, Ordering::Relaxed);
    }
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
    pub fn set_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }
    pub fn alive(&self) -> bool {
        !self.failed.load(Ordering::Relaxed)
    }
    /// Why the instance is not ready, if it is not.
    pub fn not_ready(&self) -> Option<&'static str> {
        if self.failed.load(Ordering::Relaxed) {
            Some("the run failed")
        } else if self.draining.load(Ordering::Relaxed) {
            Some("shutting down")
        } else if !self.consuming.load(Ordering::Relaxed) {
            Some("not consuming yet")
        } else if self.brokers_down.load(Ordering::Relaxed) {
            Some("no broker reachable")
        } else {
            None
        }
    }
}

#[derive(Clone)]
struct Ops {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Ops { metrics, health })
}

async fn metrics_page(State(ops): State<Ops>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ops.metrics.render(),
    )
}

async fn healthz(State(ops): State<Ops>) -> impl IntoResponse {
    if ops.health.alive() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "failed\n")
    }
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    match ops.health.not_ready() {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Binds the endpoints; serving runs in a background task for the life of the runtime.
pub async fn spawn(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(metrics, health)).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_run() {
        let h = Health::default();
        assert_eq!(h.not_ready(), Some("not consuming yet"));
        h.set_consuming(true);
        assert_eq!(h.not_ready(), None);
        h.set_brokers_down(true);
        assert_eq!(h.not_ready(), Some("no broker reachable"));
        h.set_brokers_down(false);
        h.set_draining();
        assert_eq!(h.not_ready(), Some("shutting down"));
        assert!(h.alive());
        h.set_failed();
        assert!(!h.alive());
    }
}
