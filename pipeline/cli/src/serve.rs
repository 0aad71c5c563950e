//! `vigie serve`: the screening API (see `vigie_pipeline::serve`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use crate::common::*;
use vigie_pipeline::metrics::Metrics;
use vigie_pipeline::serve::{self, ApiKeys};

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. HTTPS when `[serve] tls_cert` and `tls_key` are set;
    /// otherwise plain HTTP, for a reverse proxy in front (see the README).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub(crate) listen: std::net::SocketAddr,
    /// Append flagged records and rumour signals here (overrides [serve] out_dir).
    #[arg(long)]
    pub(crate) out_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

pub(crate) fn serve(a: ServeArgs) -> Result<()> {
    let mut config = a.common.config()?;
    if a.out_dir.is_some() {
        config.serve.out_dir = a.out_dir;
    }
    let cfg = config.serve.clone();
    let clear = std::env::var(&cfg.api_keys_env).ok();
    let keys = ApiKeys::load(&cfg, clear.as_deref())?;
    let screener = Arc::new(build_screener(&config)?);
    let metrics = Arc::new(Metrics::new());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.http_threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let api = serve::Api::with_kafka(screener, &cfg, Some(&config.kafka), keys, metrics)?;
        let app = serve::router(api, cfg.max_body_bytes);
        let tls = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(cert), Some(key)) => Some(serve::tls_config(cert, key)?),
            (None, None) => None,
            _ => anyhow::bail!("[serve] tls_cert and tls_key go together: set both or neither"),
        };
        let listener = std::net::TcpListener::bind(a.listen)
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let address = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%address, scheme, max_batch = cfg.max_batch, "screening API ready");
        eprintln!("screening API on {scheme}://{address}");
        match tls {
            Some(tls) => serve::serve_tls(listener, app, tls, shutdown_signal()).await?,
            None => {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown_signal())
                .await?;
            }
        }
        anyhow::Ok(())
    })
}
