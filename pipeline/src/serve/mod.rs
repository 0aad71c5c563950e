//! `vigie serve`: the screening API. A post is screened in the request that sends it,
//! by the same stages and configuration as `vigie screen`, its encoder pass shared with
//! the requests that arrive meanwhile ([`crate::batcher`]).
//!
//! - `POST /v1/screen`: one input post → its screened record;
//! - `POST /v1/screen/batch`: a JSON array of posts → `{"results": [...]}` in order, each
//!   `{"status": 200, "record": …}` or `{"status": 4xx, "error": …}`;
//! - `POST /v1/redact`: `{"text", "lang"?}` → redacted text and spans (rules only, no
//!   model: quick enough to run while an author types);
//! - `/healthz`, `/readyz`, `/metrics`, `/openapi.json` without a key.
//!
//! Requests need `Authorization: Bearer <key>`; keys are kept as SHA-256 digests and
//! compared in constant time; each key has its own rate limit, and each client address
//! a budget of requests without a valid key ([`KeyGuessing`]). Errors carry the
//! dead-letter reasons (`malformed_json`, `missing_field`, …) and field names, never the
//! text; logs carry request ids, sizes and reasons only.

pub mod openapi;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::batcher::{AfterPass, BatchPolicy, Batcher, SubmitError};
use crate::config::{KafkaConfig, ServeConfig};
use crate::contract::{Origin, RedactionSpan, ScreenedRecord};
use crate::io::{MODERATION_FILE, RUMOURS_FILE};
use crate::metrics::Metrics;
use crate::screener::{Outcome, Screener};

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("serve.api_key_sha256[{index}] is not 64 hexadecimal digits")]
    BadDigest { index: usize },
    #[error("no API key: set {env} (keys, comma-separated) or serve.api_key_sha256 (their SHA-256 digests)")]
    NoKeys { env: String },
    #[error("serve.{0} must be at least 1")]
    Zero(&'static str),
    #[error("serve.client_address_header {0:?} is no header name")]
    BadHeader(String),
    #[error("TLS: {path}: {detail}")]
    Tls { path: String, detail: String },
    #[error("cannot open {path}: {source}")]
    Sink {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start the batcher: {0}")]
    Worker(std::io::Error),
    #[error("serve.to_kafka needs the [kafka] section's brokers")]
    NoKafka,
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// The API keys, as digests. A presented key is found by comparing its digest with
/// every stored one, each in constant time.
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl ApiKeys {
    /// Keys from the config's digests and the environment's clear keys (comma-separated).
    pub fn load(cfg: &ServeConfig, clear: Option<&str>) -> Result<ApiKeys, ServeError> {
        let mut digests = Vec::new();
        for (index, hex) in cfg.api_key_sha256.iter().enumerate() {
            digests.push(parse_digest(hex.trim()).ok_or(ServeError::BadDigest { index })?);
        }
        for key in clear.unwrap_or("").split(',').map(str::trim) {
            if !key.is_empty() {
                digests.push(Sha256::digest(key.as_bytes()).into());
            }
        }
        if digests.is_empty() {
            return Err(ServeError::NoKeys {
                env: cfg.api_keys_env.clone(),
            });
        }
        Ok(ApiKeys { digests })
    }

    /// The key's index (its rate-limit bucket), when it is one of ours.
    pub fn check(&self, presented: &str) -> Option<usize> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        // Every digest is compared, so timing does not tell which one matched.
        for (i, d) in self.digests.iter().enumerate() {
            if bool::from(d.ct_eq(&digest)) {
                found = Some(i);
            }
        }
        found
    }
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What an API answers when it cannot give a record: a machine-readable reason (the
/// dead-letter reasons and the API's own), a detail naming fields and positions only,
/// and the field at fault when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiError {
    pub error: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// One post's answer within a batch.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BatchItem {
    /// The HTTP status this post would have had on its own.
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<ScreenedRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchItem>,
}

/// `POST /v1/redact`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactRequest {
    pub text: String,
    /// `fr` or `en` enables that language's rules only; without it every rule runs.
    #[serde(default)]
    pub lang: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RedactResponse {
    pub redacted_text: String,
    pub redactions: Vec<RedactionSpan>,
}

/// Each client address's budget of requests without a valid key. Past it the address
/// is shut out, valid key or not, until the budget refills: answering a right guess
/// with 200 and wrong ones with 429 would still let guesses through at full speed.
pub struct KeyGuessing {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses shut out, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl KeyGuessing {
    /// Shut-out addresses kept before the expired ones are swept.
    const SWEEP_AT: usize = 10_000;

    fn new(per_minute: u32) -> Option<KeyGuessing> {
        let n = NonZeroU32::new(per_minute)?;
        Some(KeyGuessing {
            limiter: RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)),
            blocked: Mutex::new(HashMap::new()),
        })
    }

    /// How long `address` is still shut out, if it is.
    fn shut_out(&self, address: IpAddr) -> Option<Duration> {
        let blocked = self.blocked.lock().ok()?;
        let until = *blocked.get(&address)?;
        until.checked_duration_since(Instant::now())
    }

    /// A request from `address` came without a valid key: how long the address is now
    /// shut out, when that used up its budget.
    fn failed(&self, address: IpAddr) -> Option<Duration> {
        let wait = wait_of(&self.limiter.check_key(&address).err()?);
        if let Ok(mut blocked) = self.blocked.lock() {
            if blocked.len() >= Self::SWEEP_AT {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
                self.limiter.retain_recent();
            }
            blocked.insert(address, Instant::now() + wait);
        }
        Some(wait)
    }
}

struct Inner {
    screener: Arc<Screener>,
    batcher: Batcher,
    keys: ApiKeys,
    limiter: DefaultKeyedRateLimiter<usize>,
    guessing: Option<KeyGuessing>,
    client_address_header: Option<header::HeaderName>,
    metrics: Arc<Metrics>,
    timeout: Duration,
    max_batch: usize,
    requests: AtomicU64,
}

/// The API's shared state.
#[derive(Clone)]
pub struct Api(Arc<Inner>);

impl Api {
    /// Starts the batcher over `screener`. Flagged records and rumour signals are
    /// appended to `cfg.out_dir` (when set) before their requests are answered.
    pub fn new(
        screener: Arc<Screener>,
        cfg: &ServeConfig,
        keys: ApiKeys,
        metrics: Arc<Metrics>,
    ) -> Result<Api, ServeError> {
        Self::with_kafka(screener, cfg, None, keys, metrics)
    }

    /// [`Api::new`], also producing flagged records and rumour signals to Kafka when
    /// `cfg.to_kafka` (with `kafka`'s brokers and topics).
    pub fn with_kafka(
        screener: Arc<Screener>,
        cfg: &ServeConfig,
        kafka: Option<&KafkaConfig>,
        keys: ApiKeys,
        metrics: Arc<Metrics>,
    ) -> Result<Api, ServeError> {
        let per_second =
            NonZeroU32::new(cfg.rate_per_second).ok_or(ServeError::Zero("rate_per_second"))?;
        let burst = NonZeroU32::new(cfg.rate_burst.max(cfg.rate_per_second))
            .ok_or(ServeError::Zero("rate_burst"))?;
        if cfg.max_batch == 0 {
            return Err(ServeError::Zero("max_batch"));
        }
        let client_address_header = match &cfg.client_address_header {
            Some(name) => Some(
                header::HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| ServeError::BadHeader(name.clone()))?,
            ),
            None => None,
        };
        let mut sinks: Vec<AfterPass> = Vec::new();
        if let Some(dir) = &cfg.out_dir {
            sinks.push(moderation_sink(dir)?);
        }
        if cfg.to_kafka {
            let kafka = kafka.ok_or(ServeError::NoKafka)?;
            sinks.push(kafka_sink(
                kafka,
                Duration::from_millis(cfg.request_timeout_ms.max(1)),
            )?);
        }
        let after_pass: Option<AfterPass> = match sinks.len() {
            0 => None,
            _ => Some(Box::new(move |outcomes: &[Outcome]| {
                sinks.iter().try_for_each(|sink| sink(outcomes))
            })),
        };
        let batcher = Batcher::start(
            screener.clone(),
            BatchPolicy {
                max_batch: cfg.max_batch,
                max_wait: Duration::from_millis(cfg.max_wait_ms),
                capacity: cfg.queue_capacity,
                pass_target: Some(Duration::from_millis(cfg.pass_target_ms)),
            },
            metrics.clone(),
            after_pass,
        )
        .map_err(ServeError::Worker)?;
        Ok(Api(Arc::new(Inner {
            screener,
            batcher,
            keys,
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            guessing: KeyGuessing::new(cfg.failed_keys_per_minute),
            client_address_header,
            metrics,
            timeout: Duration::from_millis(cfg.request_timeout_ms.max(1)),
            max_batch: cfg.max_batch,
            requests: AtomicU64::new(0),
        })))
    }

    /// Encoder passes run so far and the posts they held.
    pub fn pass_counts(&self) -> (u64, u64) {
        self.0.batcher.pass_counts()
    }
}

/// Appends flagged records to `moderation.jsonl` and rumour signals to `rumours.jsonl`
/// under `dir`, flushed before the pass's requests are answered.
fn moderation_sink(dir: &Path) -> Result<AfterPass, ServeError> {
    let open = |name: &str| {
        let path = dir.join(name);
        std::fs::create_dir_all(dir)
            .and_then(|_| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
            })
            .map_err(|source| ServeError::Sink {
                path: path.display().to_string(),
                source,
            })
    };
    let files = Mutex::new((open(MODERATION_FILE)?, open(RUMOURS_FILE)?));
    Ok(Box::new(move |outcomes: &[Outcome]| {
        use std::io::Write;
        let mut files = files.lock().map_err(|_| "sink lock poisoned".to_string())?;
        let (moderation, rumours) = &mut *files;
        let (mut m, mut r) = (Vec::new(), Vec::new());
        for outcome in outcomes {
            if let Outcome::Screened(record) = outcome {
                let line = |buf: &mut Vec<u8>| -> Result<(), String> {
                    serde_json::to_writer(&mut *buf, record).map_err(|e| e.to_string())?;
                    buf.push(b'\n');
                    Ok(())
                };
                if record.route.is_flagged() {
                    line(&mut m)?;
                }
                if record.is_rumour_signal() {
                    line(&mut r)?;
                }
            }
        }
        // One write per file per pass: lines of concurrent passes never interleave.
        moderation
            .write_all(&m)
            .and_then(|_| moderation.flush())
            .and_then(|_| rumours.write_all(&r))
            .and_then(|_| rumours.flush())
            .map_err(|e| e.to_string())
    }))
}

/// Produces flagged records to the moderation topic and rumour signals to the rumour
/// topic (when one is set), keyed by post id, and waits for the broker's acknowledgement
/// of every one before the pass's requests are answered (at least once).
fn kafka_sink(cfg: &KafkaConfig, timeout: Duration) -> Result<AfterPass, ServeError> {
    use rdkafka::producer::FutureRecord;
    // A broker that does not answer fails the pass within the request's own deadline,
    // rather than holding the worker for librdkafka's five minutes.
    let mut cfg = cfg.clone();
    if !cfg.properties.contains_key("message.timeout.ms") {
        cfg.producer_properties
            .entry("message.timeout.ms".into())
            .or_insert_with(|| timeout.as_millis().max(1).to_string());
    }
    let producer = crate::kafka::future_producer(&cfg)?;
    let moderation = cfg.moderation_topic.clone();
    let rumours = cfg.rumour_topic.clone();
    Ok(Box::new(move |outcomes: &[Outcome]| {
        let mut deliveries = Vec::new();
        for outcome in outcomes {
            let Outcome::Screened(record) = outcome else {
                continue;
            };
            let mut topics = Vec::new();
            if record.route.is_flagged() {
                topics.push(moderation.as_str());
            }
            if let Some(t) = rumours.as_deref().filter(|_| record.is_rumour_signal()) {
                topics.push(t);
            }
            if topics.is_empty() {
                continue;
            }
            let payload = serde_json::to_vec(record).map_err(|e| e.to_string())?;
            for topic in topics {
                let sent = producer
                    .send_result(FutureRecord::to(topic).key(&record.id).payload(&payload))
                    .map_err(|(e, _)| e.to_string())?;
                deliveries.push(sent);
            }
        }
        // The worker is a plain thread: block on the acknowledgements here.
        for result in futures::executor::block_on(futures::future::join_all(deliveries)) {
            match result {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(e.to_string()),
                Err(_) => return Err("delivery cancelled".into()),
            }
        }
        Ok(())
    }))
}

/// The TLS settings for a PEM certificate chain and its PEM private key (PKCS#8, PKCS#1
/// or SEC1), with TLS 1.2 and 1.3 and HTTP/1.1.
pub fn tls_config(
    cert: &Path,
    key: &Path,
) -> Result<axum_server::tls_rustls::RustlsConfig, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |path: &Path, detail: String| ServeError::Tls {
        path: path.display().to_string(),
        detail,
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| fail(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(fail(cert, "no certificate in the file".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| fail(key, format!("does not go with the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(config),
    ))
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then lets the
/// requests under way finish (up to 10 s). Each request knows its peer's address.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    app: Router,
    tls: axum_server::tls_rustls::RustlsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    axum_server::from_tcp_rustls(listener, tls)?
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
}

/// The API's routes. `max_body_bytes` bounds every request body.
pub fn router(api: Api, max_body_bytes: usize) -> Router {
    let guarded = Router::new()
        .route("/v1/screen", post(screen_one))
        .route("/v1/screen/batch", post(screen_batch))
        .route("/v1/redact", post(redact))
        .route_layer(middleware::from_fn_with_state(api.clone(), require_key));
    Router::new()
        .merge(guarded)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_document))
        .layer(middleware::from_fn_with_state(api.clone(), observe))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(api)
}

fn error(status: StatusCode, reason: &str, detail: &str, field: Option<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: reason.to_string(),
            detail: detail.to_string(),
            field,
        }),
    )
        .into_response()
}

/// Counts and times every answer by route pattern and status; logs ids and sizes only.
async fn observe(State(api): State<Api>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let mut response = next.run(req).await;
    // Answers made by axum itself (body over the limit, unknown route or method) are
    // plain text: every error leaves as the API's JSON.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status().is_client_error() && !is_json {
        let (reason, detail) = match response.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ("oversized", "the body exceeds the size limit"),
            StatusCode::NOT_FOUND => ("not_found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "see /openapi.json"),
            _ => ("bad_request", "the request could not be read"),
        };
        let mut replaced = error(response.status(), reason, detail, None);
        for name in [header::RETRY_AFTER, header::WWW_AUTHENTICATE, header::ALLOW] {
            if let Some(v) = response.headers().get(&name) {
                replaced.headers_mut().insert(name, v.clone());
            }
        }
        response = replaced;
    }
    let status = response.status().as_u16();
    api.0
        .metrics
        .http_request(&route, status, started.elapsed());
    if response.status().is_server_error() {
        tracing::warn!(route, status, "screening request failed");
    }
    response
}

/// The client's address: the proxy's header when one is configured, else the peer's
/// (none for requests that did not come over a socket, as in tests).
fn client_address(api: &Api, req: &Request) -> Option<IpAddr> {
    if let Some(name) = &api.0.client_address_header {
        let value = req.headers().get(name)?.to_str().ok()?;
        // X-Forwarded-For lists the hops; the last is the one the proxy saw.
        return value.rsplit(',').next()?.trim().parse().ok();
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())
}

/// How long until a governor limiter lets the next request through.
fn wait_of(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> Duration {
    not_until.wait_time_from(governor::clock::Clock::now(
        &governor::clock::DefaultClock::default(),
    ))
}

/// 429 with the reason and a `Retry-After` of the wait, in whole seconds (at least one).
fn too_many(reason: &str, detail: &str, wait: Duration) -> Response {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, reason, detail, None);
    retry_after(&mut r, wait.as_secs_f64().ceil().max(1.0) as u64);
    r
}

fn too_many_failed_keys(wait: Duration) -> Response {
    too_many(
        "too_many_failed_keys",
        "too many requests without a valid key from this address",
        wait,
    )
}

/// Bearer key check, the key's rate limit, and the address's budget of failed keys.
async fn require_key(State(api): State<Api>, req: Request, next: Next) -> Response {
    let address = client_address(&api, &req);
    let guarded = api.0.guessing.as_ref().zip(address);
    if let Some(wait) = guarded.and_then(|(g, a)| g.shut_out(a)) {
        return too_many_failed_keys(wait);
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme's name is case-insensitive (RFC 7235).
        .and_then(|v| {
            v.get(..7)
                .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
                .map(|_| &v[7..])
        })
        .map(str::trim);
    let Some(key) = presented.and_then(|k| api.0.keys.check(k)) else {
        if let Some(wait) = guarded.and_then(|(g, a)| g.failed(a)) {
            tracing::warn!(address = %address.map(|a| a.to_string()).unwrap_or_default(), "too many requests without a valid key; address shut out");
            return too_many_failed_keys(wait);
        }
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <API key>",
            None,
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    if let Err(not_until) = api.0.limiter.check_key(&key) {
        return too_many(
            "rate_limited",
            "this key's request rate is over its limit",
            wait_of(&not_until),
        );
    }
    next.run(req).await
}

fn retry_after(r: &mut Response, secs: u64) {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn unsupported_media() -> Response {
    error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send Content-Type: application/json",
        None,
    )
}

/// The status a rejection reason gets.
fn status_of(reason: &str) -> StatusCode {
    match reason {
        "oversized" => StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_utf8" | "malformed_json" => StatusCode::BAD_REQUEST,
        "processing_failed" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The field a decoder detail names (``missing field `text` `` → `text`).
fn field_of(detail: &str) -> Option<String> {
    let start = detail.find('`')? + 1;
    let len = detail[start..].find('`')?;
    Some(detail[start..start + len].to_string())
}

fn outcome_item(outcome: Outcome) -> BatchItem {
    match outcome {
        Outcome::Screened(record) => BatchItem {
            status: 200,
            record: Some(record),
            error: None,
        },
        // A model fault's message names files and internals: clients get a fixed text.
        Outcome::Rejected(r) if r.reason == "processing_failed" => BatchItem {
            status: 500,
            record: None,
            error: Some(ApiError {
                error: r.reason,
                detail: "screening failed; the error is in the server's log".into(),
                field: None,
            }),
        },
        Outcome::Rejected(r) => BatchItem {
            status: status_of(&r.reason).as_u16(),
            record: None,
            error: Some(ApiError {
                field: field_of(&r.detail),
                error: r.reason,
                detail: r.detail,
            }),
        },
    }
}

fn submit_error(e: SubmitError) -> Response {
    let (status, reason) = match e {
        SubmitError::Full => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        SubmitError::Expired => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        SubmitError::Stopped | SubmitError::NotStored => {
            (StatusCode::INTERNAL_SERVER_ERROR, "unavailable")
        }
    };
    let mut r = error(status, reason, &e.to_string(), None);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        retry_after(&mut r, 1);
    }
    r
}

impl Api {
    fn request_id(&self) -> String {
        format!("r{}", self.0.requests.fetch_add(1, Ordering::Relaxed))
    }

    async fn screen(&self, inputs: Vec<(Origin, Vec<u8>)>) -> Result<Vec<Outcome>, Response> {
        let deadline = Instant::now() + self.0.timeout;
        self.0
            .batcher
            .screen(inputs, deadline)
            .await
            .map_err(submit_error)
    }
}

async fn screen_one(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_json(&headers) {
        return unsupported_media();
    }
    let request = api.request_id();
    tracing::debug!(request, bytes = body.len(), "screen");
    let origin = Origin::Request { request, item: 0 };
    match api.screen(vec![(origin, body.to_vec())]).await {
        Ok(mut outcomes) => match outcomes.pop().map(outcome_item) {
            Some(BatchItem {
                record: Some(record),
                ..
            }) => Json(record).into_response(),
            Some(BatchItem {
                status,
                error: Some(e),
                ..
            }) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                Json(e),
            )
                .into_response(),
            _ => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unavailable",
                "no outcome",
                None,
            ),
        },
        Err(r) => r,
    }
}

async fn screen_batch(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_json(&headers) {
        return unsupported_media();
    }
    let items: Vec<serde_json::Value> = match serde_json::from_slice(&body) {
        Ok(serde_json::Value::Array(items)) => items,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "expected a JSON array of posts",
                None,
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                &format!("malformed JSON at line {} column {}", e.line(), e.column()),
                None,
            )
        }
    };
    if items.len() > api.0.max_batch {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_posts",
            &format!(
                "{} posts; a batch holds at most {}",
                items.len(),
                api.0.max_batch
            ),
            None,
        );
    }
    if items.is_empty() {
        return Json(BatchResponse {
            results: Vec::new(),
        })
        .into_response();
    }
    let request = api.request_id();
    tracing::debug!(
        request,
        posts = items.len(),
        bytes = body.len(),
        "screen batch"
    );
    let inputs = items
        .iter()
        .enumerate()
        .map(|(item, v)| {
            (
                Origin::Request {
                    request: request.clone(),
                    item,
                },
                serde_json::to_vec(v).unwrap_or_default(),
            )
        })
        .collect();
    match api.screen(inputs).await {
        Ok(outcomes) => Json(BatchResponse {
            results: outcomes.into_iter().map(outcome_item).collect(),
        })
        .into_response(),
        Err(r) => r,
    }
}

async fn redact(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_json(&headers) {
        return unsupported_media();
    }
    let req: RedactRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        // serde's message can quote the text: only its kind and position go back.
        Err(e) if e.is_data() => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "expected {\"text\": string, \"lang\"?: \"fr\" | \"en\"}",
                None,
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                &format!("malformed JSON at line {} column {}", e.line(), e.column()),
                None,
            )
        }
    };
    let lang = match req.lang.as_deref() {
        None => None,
        Some("fr") => Some("fr"),
        Some("en") => Some("en"),
        Some(_) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "field `lang`: fr or en",
                Some("lang".into()),
            )
        }
    };
    // Rules over up to a body's worth of text: off the threads that drive the server.
    let screener = api.0.screener.clone();
    match tokio::task::spawn_blocking(move || screener.redaction().redact(&req.text, lang)).await {
        Ok(redacted) => Json(RedactResponse {
            redacted_text: redacted.text,
            redactions: redacted.spans,
        })
        .into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            "redaction failed",
            None,
        ),
    }
}

async fn openapi_document(State(api): State<Api>) -> Response {
    Json(openapi::document(api.0.max_batch)).into_response()
}

/// Ready while the batcher's worker runs (the model was loaded before the server began
/// listening).
async fn ready(State(api): State<Api>) -> Response {
    if api.0.batcher.alive() {
        "ready".into_response()
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the screening worker stopped",
            None,
        )
    }
}

async fn metrics(State(api): State<Api>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.0.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_digest_and_bad_digests_refused() {
        let cfg = ServeConfig {
            api_key_sha256: vec![
                // sha256("alpha")
                "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8".into(),
            ],
            ..ServeConfig::default()
        };
        let keys = ApiKeys::load(&cfg, Some(" beta , ,gamma")).unwrap();
        assert_eq!(keys.check("alpha"), Some(0));
        assert_eq!(keys.check("beta"), Some(1));
        assert_eq!(keys.check("gamma"), Some(2));
        assert_eq!(keys.check("delta"), None);
        assert_eq!(keys.check(""), None);
        let bad = ServeConfig {
            api_key_sha256: vec!["xyz".into()],
            ..ServeConfig::default()
        };
        assert!(matches!(
            ApiKeys::load(&bad, None),
            Err(ServeError::BadDigest { index: 0 })
        ));
        assert!(matches!(
            ApiKeys::load(&ServeConfig::default(), Some("")),
            Err(ServeError::NoKeys { .. })
        ));
    }

    /// An API over a rules-only screener, with `keys` in clear.
    fn test_api(cfg: &ServeConfig, keys: &str) -> Result<Api, ServeError> {
        let mut config = crate::config::Config::default();
        config.risk.enabled = false;
        let screener = Arc::new(Screener::with_risk(&config, None).unwrap());
        let keys = ApiKeys::load(cfg, Some(keys)).unwrap();
        Api::new(screener, cfg, keys, Arc::new(Metrics::new()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_key_has_its_own_rate_limit() {
        use tower::ServiceExt;
        let cfg = ServeConfig {
            rate_per_second: 1,
            rate_burst: 1,
            ..ServeConfig::default()
        };
        let api = test_api(&cfg, "k1,k2").unwrap();
        let app = router(api, 1 << 16);
        let call = |key: &str| {
            axum::http::Request::post("/v1/redact")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(r#"{"text":"rdv 06 12 34 56 78"}"#))
                .unwrap()
        };
        let first = app.clone().oneshot(call("k1")).await.unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let second = app.clone().oneshot(call("k1")).await.unwrap();
        assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(second.headers().contains_key(header::RETRY_AFTER));
        let other = app.clone().oneshot(call("k2")).await.unwrap();
        assert_eq!(
            other.status(),
            StatusCode::OK,
            "another key has its own budget"
        );
        let stranger = app.clone().oneshot(call("k3")).await.unwrap();
        assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(stranger.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_address_that_keeps_guessing_keys_is_shut_out_and_others_are_not() {
        use tower::ServiceExt;
        let cfg = ServeConfig {
            failed_keys_per_minute: 3,
            ..ServeConfig::default()
        };
        let api = test_api(&cfg, "right").unwrap();
        let app = router(api, 1 << 16);
        let call = |from: [u8; 4], key: &str| {
            let mut req = axum::http::Request::post("/v1/redact")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(r#"{"text":"ok"}"#))
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((from, 40000))));
            req
        };
        let guesser = [203, 0, 113, 7];
        for i in 0..3 {
            let r = app
                .clone()
                .oneshot(call(guesser, &format!("guess{i}")))
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "guess {i} is within the budget"
            );
        }
        let over = app.clone().oneshot(call(guesser, "guess3")).await.unwrap();
        assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(over.headers().contains_key(header::RETRY_AFTER));
        let right = app.clone().oneshot(call(guesser, "right")).await.unwrap();
        assert_eq!(
            right.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "a right guess is not told apart while shut out"
        );
        let neighbour = app
            .clone()
            .oneshot(call([203, 0, 113, 8], "right"))
            .await
            .unwrap();
        assert_eq!(
            neighbour.status(),
            StatusCode::OK,
            "another address is not shut out"
        );
        let stranger = app
            .clone()
            .oneshot(call([198, 51, 100, 1], "nope"))
            .await
            .unwrap();
        assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn behind_a_proxy_the_address_comes_from_its_header() {
        let cfg = ServeConfig {
            client_address_header: Some("X-Forwarded-For".into()),
            ..ServeConfig::default()
        };
        let api = test_api(&cfg, "k").unwrap();
        let req = axum::http::Request::post("/v1/redact")
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(
            client_address(&api, &req),
            Some(IpAddr::from([203, 0, 113, 9])),
            "the last hop, the one the proxy saw"
        );
        let bad = ServeConfig {
            client_address_header: Some("not a header".into()),
            ..ServeConfig::default()
        };
        assert!(matches!(test_api(&bad, "k"), Err(ServeError::BadHeader(_))));
    }

    #[test]
    fn a_missing_or_mismatched_certificate_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let Err(err) = tls_config(&missing, &missing) else {
            panic!("no file, no TLS")
        };
        assert!(
            matches!(&err, ServeError::Tls { path, .. } if path.ends_with("nope.pem")),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let Err(err) = tls_config(&empty, &empty) else {
            panic!("no certificate in it")
        };
        assert!(err.to_string().contains("no certificate"), "{err}");
    }

    #[test]
    fn fields_and_statuses_come_from_the_rejection() {
        assert_eq!(field_of("missing field `text`").as_deref(), Some("text"));
        assert_eq!(field_of("malformed JSON at line 1"), None);
        assert_eq!(status_of("oversized"), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status_of("malformed_json"), StatusCode::BAD_REQUEST);
        assert_eq!(status_of("missing_field"), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
