//! HTTP: pages for people, `/api/…` JSON for scripts, both behind one session check.
//!
//! Every route but `/login`, `/healthz` and the two static files needs a session
//! cookie (pages redirect to `/login`, the API answers 401). Every POST needs the
//! session's CSRF token (form field `csrf` or header `X-CSRF-Token`); the cookie is
//! HttpOnly and SameSite=Strict besides.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use crate::alerting::Alerting;
use crate::alerts;
use crate::auth::{self, Role};
use crate::csv_export;
use crate::feed::DecisionPublisher;
use crate::i18n::{self, tr, Locale, LANG_COOKIE};
use crate::pages::{self, url_segment};
use crate::report;
use crate::store::{
    DecisionInput, DecisionRecord, LoginOutcome, QueueFilter, Session, Store, StoreError,
};
use crate::throttle::{SignInThrottle, ThrottlePolicy};
use crate::tracker::Embedder;
use vigie_pipeline::stages::redaction::RedactionStage;

pub const SESSION_COOKIE: &str = "vigie_session";
/// Sign-ins checked at once (argon2 takes ~19 MiB and tens of ms each); more wait for a
/// permit up to [`LOGIN_WAIT`]. Throttled sign-ins never take one.
const LOGIN_PERMITS: usize = 4;
const LOGIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// How long a claimed item stays locked to its moderator.
    pub lock_ttl: Duration,
    pub session_ttl: Duration,
    /// Mark cookies `Secure` on every response. When false they are still marked
    /// `Secure` for requests a proxy says came over HTTPS (`X-Forwarded-Proto`).
    pub secure_cookies: bool,
    /// Take the client's address from the last `X-Forwarded-For` entry (set it only
    /// behind a reverse proxy that writes that header; otherwise clients could pick
    /// their own address and dodge the sign-in throttle).
    pub trust_forwarded_for: bool,
    /// Back-off and lockout of failed sign-ins.
    pub throttle: ThrottlePolicy,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            lock_ttl: Duration::minutes(15),
            session_ttl: Duration::hours(12),
            secure_cookies: true,
            trust_forwarded_for: false,
            throttle: ThrottlePolicy::default(),
        }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Arc<Store>,
    embedder: Arc<dyn Embedder>,
    /// Free text typed by people (reasons, new claims) is redacted before it is stored,
    /// by the pipeline's own redaction stage.
    redactor: RedactionStage,
    /// Caps concurrent password hashing (argon2 takes ~19 MiB and tens of ms each).
    logins: tokio::sync::Semaphore,
    throttle: SignInThrottle,
    settings: ConsoleSettings,
    decisions: DecisionPublisher,
    /// Rumour alert rules and their webhook (the defaults, no webhook, unless
    /// [`AppState::with_alerting`] says otherwise).
    alerting: Arc<Alerting>,
}

impl AppState {
    pub fn new(
        store: Arc<Store>,
        embedder: Arc<dyn Embedder>,
        redactor: RedactionStage,
        settings: ConsoleSettings,
        decisions: DecisionPublisher,
    ) -> Self {
        AppState(Arc::new(Inner {
            store,
            embedder,
            redactor,
            throttle: SignInThrottle::new(settings.throttle.clone()),
            settings,
            decisions,
            logins: tokio::sync::Semaphore::new(LOGIN_PERMITS),
            alerting: Arc::new(
                Alerting::from_config(&vigie_pipeline::config::AlertsConfig::default(), None)
                    .expect("the default alert rules parse"),
            ),
        }))
    }

    /// The alert rules and webhook the tracker shows and the alert task uses. Call it on
    /// a state just made, before it is shared.
    pub fn with_alerting(mut self, alerting: Arc<Alerting>) -> Self {
        Arc::get_mut(&mut self.0)
            .expect("with_alerting is called on a state that is not shared yet")
            .alerting = alerting;
        self
    }

    pub fn alerting(&self) -> &Arc<Alerting> {
        &self.0.alerting
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn decisions(&self) -> &DecisionPublisher {
        &self.0.decisions
    }

    /// Delivers the decisions outbox to the feed (the one just recorded, and any left by
    /// an earlier failure or crash), waiting at most a couple of seconds: what is not
    /// delivered by then stays in the outbox for [`AppState::deliver_decisions_forever`].
    pub async fn deliver_decisions(&self) {
        let delivery = self.0.decisions.deliver(&self.0.store);
        if tokio::time::timeout(std::time::Duration::from_secs(2), delivery)
            .await
            .is_err()
        {
            tracing::warn!("decision feed slow; the outbox will retry");
        }
    }

    /// Delivers the outbox now and then every `every` (run it once per console instance:
    /// it also delivers what an earlier run recorded but did not publish).
    pub async fn deliver_decisions_forever(self, every: std::time::Duration) {
        loop {
            self.0.decisions.deliver(&self.0.store).await;
            tokio::time::sleep(every).await;
        }
    }

    fn redact(&self, text: &str) -> String {
        self.0.redactor.redact(text, None).text
    }
}

/// The signed-in person, put in request extensions by [`require_session`].
#[derive(Clone)]
struct Signed {
    session: Session,
    token: String,
}

pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/", get(home))
        .route("/queue", get(queue_page))
        .route("/queue.csv", get(queue_csv))
        .route("/queue/next", post(claim_next_form))
        .route("/items/{id}", get(item_page))
        .route("/items/{id}/claim", post(claim_form))
        .route("/items/{id}/release", post(release_form))
        .route("/items/{id}/decide", post(decide_form))
        .route("/tracker", get(tracker_page))
        .route("/tracker.csv", get(tracker_csv))
        .route("/volume.csv", get(volume_csv))
        .route("/report/weekly", get(weekly_report_page))
        .route("/report/weekly.csv", get(weekly_report_csv))
        .route("/rumours/{id}/status", post(status_form))
        .route("/audit", get(audit_page))
        .route("/audit.csv", get(audit_csv))
        .route("/logout", post(logout))
        .route("/api/session", get(api_session))
        .route("/api/queue", get(api_queue))
        .route("/api/items/{id}", get(api_item))
        .route("/api/items/{id}/claim", post(api_claim))
        .route("/api/items/{id}/release", post(api_release))
        .route("/api/items/{id}/decision", post(api_decide))
        .route("/api/rumours", get(api_rumours))
        .route("/api/rumours/{id}/status", post(api_status))
        .route("/api/audit", get(api_audit))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/static/console.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    pages::CSS,
                )
            }),
        )
        .route(
            "/static/console.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    pages::JS,
                )
            }),
        )
        .route("/lang/{code}", get(set_language))
        .merge(protected)
        .layer(middleware::from_fn(language))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// The request's language: the `vigie_lang` cookie (the person's choice), else
/// `Accept-Language`, else English.
fn request_locale(headers: &HeaderMap) -> Locale {
    let chosen = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(LANG_COOKIE)?.strip_prefix('='))
        .find_map(Locale::parse);
    chosen
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Locale::from_accept_language)
        })
        .unwrap_or(Locale::En)
}

/// Runs the request in its language (pages and messages read it with `i18n::current`).
async fn language(req: Request, next: Next) -> Response {
    let locale = request_locale(req.headers());
    let mut res = i18n::scope(locale, next.run(req)).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(locale.code()),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    res
}

/// `GET /lang/fr|en`: remembers the choice in a cookie and goes back to the page.
async fn set_language(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let Some(locale) = Locale::parse(&code) else {
        return (StatusCode::NOT_FOUND, "unknown language\n").into_response();
    };
    // Back to the page the link was on, when it is one of ours.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .filter(|path| {
            path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/lang/")
        })
        .unwrap_or("/")
        .to_string();
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
        locale.code()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(&back)).into_response()
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

async fn require_session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let api = is_api(req.uri().path());
    let token = cookie(req.headers(), SESSION_COOKIE);
    let session = match token
        .as_deref()
        .map(|t| state.store().session(t, Utc::now()))
    {
        Some(Ok(Some(s))) => s,
        Some(Err(e)) => return internal(api, &e),
        _ if api => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({"error": "sign in first (POST /login)"})),
            )
                .into_response()
        }
        _ => return Redirect::to("/login").into_response(),
    };
    if req.method() == axum::http::Method::POST && api {
        let given = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !auth::same_secret(given, &session.csrf) {
            return (StatusCode::FORBIDDEN, Json(serde_json::json!({"error": "missing or wrong X-CSRF-Token (GET /api/session gives it)"}))).into_response();
        }
    }
    req.extensions_mut().insert(Signed {
        session,
        token: token.unwrap_or_default(),
    });
    next.run(req).await
}

fn internal(api: bool, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    if api {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"error": "internal error"})),
        )
            .into_response()
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(
                pages::message(
                    tr("Error"),
                    None,
                    tr("Something went wrong; the error is in the server log."),
                )
                .into_string(),
            ),
        )
            .into_response()
    }
}

fn status_of(e: &StoreError) -> StatusCode {
    match e {
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::Locked { .. } | StoreError::NotHolder(_) | StoreError::AlreadyDecided(_) => {
            StatusCode::CONFLICT
        }
        StoreError::Invalid(_) | StoreError::Auth(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A store error as people read it, in the page's language.
fn error_text(e: &StoreError) -> String {
    match e {
        StoreError::NotFound(id) => format!("{id}: {}", tr("not found")),
        StoreError::Locked { .. } => tr("someone else is reviewing this item").to_string(),
        StoreError::NotHolder(_) => tr("claim the item before deciding").to_string(),
        StoreError::AlreadyDecided(_) => tr("this item is already decided").to_string(),
        StoreError::Invalid(message) => i18n::tr_dynamic(message),
        other => other.to_string(),
    }
}

fn bad_request(session: &Session, message: &'static str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(pages::message(tr("Cannot do that"), Some(session), tr(message)).into_string()),
    )
        .into_response()
}

fn page_error(session: &Session, e: StoreError) -> Response {
    let status = status_of(&e);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return internal(false, &e);
    }
    (
        status,
        Html(pages::message(tr("Cannot do that"), Some(session), &error_text(&e)).into_string()),
    )
        .into_response()
}

fn api_error(e: StoreError) -> Response {
    let status = status_of(&e);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return internal(true, &e);
    }
    (status, Json(serde_json::json!({"error": e.to_string()}))).into_response()
}

fn forbidden(api: bool, session: &Session, what: &str) -> Response {
    let text = tr("{what} is not open to the {role} role")
        .replace("{what}", what)
        .replace("{role}", session.user.role.as_str());
    if api {
        (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({"error": text})),
        )
            .into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            Html(pages::message(tr("Not allowed"), Some(session), &text).into_string()),
        )
            .into_response()
    }
}

fn bad_csrf(session: &Session) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(
            pages::message(
                tr("Form expired"),
                Some(session),
                tr("This form is stale (CSRF check failed); reload the page and try again."),
            )
            .into_string(),
        ),
    )
        .into_response()
}

fn csv_response(name: &str, body: Result<String, csv::Error>) -> Response {
    match body {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => internal(false, &e),
    }
}

// ---- sign in and out ---------------------------------------------------------------

async fn login_page() -> Html<String> {
    Html(pages::login(None).into_string())
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

/// Who is signing in from where, for the throttle: the peer address, or the proxy's
/// `X-Forwarded-For` when the settings trust it.
fn client_address(
    settings: &ConsoleSettings,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
) -> String {
    if settings.trust_forwarded_for {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(address) = forwarded {
            return address.to_string();
        }
    }
    peer.map_or_else(|| "unknown".to_string(), |p| p.ip().to_string())
}

async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // Login CSRF: browsers send Origin on every POST; one from another site, or the
    // opaque "null" of sandboxed frames and cross-site redirects, is refused. Scripts
    // (curl, tests) send none.
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get(header::HOST))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split("://").nth(1).unwrap_or("");
        if origin_host.is_empty() || origin_host != host {
            return (
                StatusCode::FORBIDDEN,
                Html(pages::login(Some(tr("Sign in from the console's own page."))).into_string()),
            )
                .into_response();
        }
    }
    let account = form.username.trim().to_string();
    let address = client_address(&state.0.settings, &headers, peer.map(|p| p.0 .0));
    if let Err(wait) = state
        .0
        .throttle
        .begin(&account, &address, std::time::Instant::now())
    {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        tracing::info!(address = %address, retry_after = seconds, "sign-in throttled");
        let message = tr("Too many failed sign-ins. Try again in {} seconds.")
            .replace("{}", &seconds.to_string());
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, seconds.to_string())],
            Html(pages::login(Some(&message)).into_string()),
        )
            .into_response();
    }
    let Ok(Ok(_permit)) = tokio::time::timeout(LOGIN_WAIT, state.0.logins.acquire()).await else {
        state.0.throttle.abandoned(&account, &address);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5".to_string())],
            Html(
                pages::login(Some(tr(
                    "Too many sign-ins at once; try again in a moment.",
                )))
                .into_string(),
            ),
        )
            .into_response();
    };
    let store = state.0.store.clone();
    let ttl = state.0.settings.session_ttl;
    // Hashing costs tens of milliseconds of CPU: keep it off the async workers.
    let name = account.clone();
    let result =
        tokio::task::spawn_blocking(move || store.login(&name, &form.password, Utc::now(), ttl))
            .await;
    match result {
        Ok(Ok(LoginOutcome::SignedIn { token, session })) => {
            state.0.throttle.succeeded(&account, &address);
            tracing::info!(user = %session.user.name, role = session.user.role.as_str(), "signed in");
            let forwarded_https = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                == Some("https");
            let secure = if state.0.settings.secure_cookies || forwarded_https {
                "; Secure"
            } else {
                ""
            };
            let max_age = ttl.num_seconds();
            let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
            let home = if session.user.role == Role::Staff {
                "/tracker"
            } else {
                "/queue"
            };
            ([(header::SET_COOKIE, cookie)], Redirect::to(home)).into_response()
        }
        Ok(Ok(LoginOutcome::Rejected)) => {
            let outcome = state.0.throttle.failed(&account);
            if outcome.lock_account {
                let store = state.0.store.clone();
                let reason = format!(
                    "{} consecutive failed sign-ins",
                    state.0.settings.throttle.lockout_after
                );
                let name = account.clone();
                match tokio::task::spawn_blocking(move || store.lock_user(&name, Utc::now(), &reason))
                    .await
                {
                    Ok(Ok(true)) => tracing::warn!(address = %address, "account locked after repeated failed sign-ins"),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => return internal(false, &e),
                    Err(e) => return internal(false, &e),
                }
            }
            (
                StatusCode::UNAUTHORIZED,
                Html(pages::login(Some(tr("Unknown user or wrong password."))).into_string()),
            )
                .into_response()
        }
        Ok(Ok(LoginOutcome::Locked)) => (
            StatusCode::FORBIDDEN,
            Html(
                pages::login(Some(tr(
                    "This account is locked after repeated failed sign-ins. An administrator can unlock it (vigie console unlock-user).",
                )))
                .into_string(),
            ),
        )
            .into_response(),
        Ok(Err(e)) => internal(false, &e),
        Err(e) => internal(false, &e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !auth::same_secret(&form.csrf, &me.session.csrf) {
        return bad_csrf(&me.session);
    }
    if let Err(e) = state
        .store()
        .logout(&me.token, &me.session.user.name, Utc::now())
    {
        return internal(false, &e);
    }
    let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, expired)], Redirect::to("/login")).into_response()
}

async fn home(Extension(me): Extension<Signed>) -> Redirect {
    Redirect::to(if me.session.user.role.can_moderate() {
        "/queue"
    } else {
        "/tracker"
    })
}

// ---- review queue --------------------------------------------------------------------

async fn queue_page(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Query(filter): Query<QueueFilter>,
) -> Response {
    if !me.session.user.role.can_moderate() {
        return forbidden(false, &me.session, "The review queue");
    }
    let store = state.store();
    let (items, facets) = match store
        .queue(&filter, 500)
        .and_then(|i| Ok((i, store.queue_facets()?)))
    {
        Ok(x) => x,
        Err(e) => return page_error(&me.session, e),
    };
    let notice = if items.is_empty() && (filter.lang.is_some() || filter.queue.is_some()) {
        Some(tr("No item matches these filters."))
    } else {
        None
    };
    Html(
        pages::queue(pages::QueuePage {
            session: &me.session,
            items: &items,
            filter: &filter,
            queues: &facets.0,
            langs: &facets.1,
            now: Utc::now(),
            notice,
        })
        .into_string(),
    )
    .into_response()
}

async fn queue_csv(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Query(filter): Query<QueueFilter>,
) -> Response {
    if !me.session.user.role.can_moderate() {
        return forbidden(false, &me.session, "The review queue");
    }
    match state.store().queue(&filter, 100_000) {
        Ok(items) => csv_response("queue.csv", csv_export::queue(&items)),
        Err(e) => page_error(&me.session, e),
    }
}

#[derive(Deserialize)]
struct NextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    queue: Option<String>,
}

async fn claim_next_form(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Form(form): Form<NextForm>,
) -> Response {
    if !auth::same_secret(&form.csrf, &me.session.csrf) {
        return bad_csrf(&me.session);
    }
    if !me.session.user.role.can_moderate() {
        return forbidden(false, &me.session, "Claiming items");
    }
    let filter = QueueFilter {
        lang: form.lang,
        queue: form.queue,
    };
    match state.store().claim_next(
        &filter,
        &me.session.user.name,
        Utc::now(),
        state.0.settings.lock_ttl,
    ) {
        Ok(Some(id)) => Redirect::to(&format!("/items/{}", url_segment(&id))).into_response(),
        Ok(None) => Redirect::to("/queue").into_response(),
        Err(e) => page_error(&me.session, e),
    }
}

fn render_item(
    state: &AppState,
    session: &Session,
    id: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let store = state.store();
    let loaded = store.item(id).and_then(|item| {
        let claims = store.claims()?;
        let rumour = match item.cluster_id {
            Some(c) => store.rumour(c)?,
            None => None,
        };
        Ok((item, claims, rumour))
    });
    match loaded {
        Ok((item, claims, rumour)) => (
            status,
            Html(
                pages::item(pages::ItemPage {
                    session,
                    item: &item,
                    claims: &claims,
                    rumour: rumour.as_ref(),
                    now: Utc::now(),
                    error,
                })
                .into_string(),
            ),
        )
            .into_response(),
        Err(e) => page_error(session, e),
    }
}

async fn item_page(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    if !me.session.user.role.can_moderate() {
        return forbidden(false, &me.session, "Reading items");
    }
    render_item(&state, &me.session, &id, None, StatusCode::OK)
}

async fn claim_form(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !auth::same_secret(&form.csrf, &me.session.csrf) {
        return bad_csrf(&me.session);
    }
    if !me.session.user.role.can_moderate() {
        return forbidden(false, &me.session, "Claiming items");
    }
    match state.store().claim(
        &id,
        &me.session.user.name,
        Utc::now(),
        state.0.settings.lock_ttl,
    ) {
        Ok(_) => Redirect::to(&format!("/items/{}", url_segment(&id))).into_response(),
        Err(e @ (StoreError::Locked { .. } | StoreError::AlreadyDecided(_))) => render_item(
            &state,
            &me.session,
            &id,
            Some(&e.to_string()),
            StatusCode::CONFLICT,
        ),
        Err(e) => page_error(&me.session, e),
    }
}

async fn release_form(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !auth::same_secret(&form.csrf, &me.session.csrf) {
        return bad_csrf(&me.session);
    }
    match state
        .store()
        .release(&id, &me.session.user.name, Utc::now())
    {
        Ok(()) => Redirect::to("/queue").into_response(),
        Err(e) => page_error(&me.session, e),
    }
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    claim_id: Option<String>,
    #[serde(default)]
    new_claim: Option<String>,
}

fn decide(
    state: &AppState,
    session: &Session,
    id: &str,
    input: DecisionInput,
) -> Result<DecisionRecord, StoreError> {
    if !session.user.role.can_moderate() {
        return Err(StoreError::Invalid(format!(
            "deciding is not open to the {} role",
            session.user.role.as_str()
        )));
    }
    let input = DecisionInput {
        decision: input.decision,
        reason: state.redact(&input.reason),
        claim_id: input.claim_id,
        new_claim: input.new_claim.map(|c| state.redact(&c)),
    };
    let record = state.store().decide(
        id,
        &session.user.name,
        &input,
        state.0.embedder.as_ref(),
        Utc::now(),
    )?;
    tracing::info!(user = %session.user.name, item = %record.item_id, decision = record.decision.as_str(), "decision recorded");
    Ok(record)
}

async fn decide_form(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    if !auth::same_secret(&form.csrf, &me.session.csrf) {
        return bad_csrf(&me.session);
    }
    let input = DecisionInput {
        decision: form.decision,
        reason: form.reason,
        claim_id: form.claim_id,
        new_claim: form.new_claim,
    };
    let decided = decide(&state, &me.session, &id, input);
    if decided.is_ok() {
        state.deliver_decisions().await;
    }
    match decided {
        Ok(_) => Redirect::to("/queue").into_response(),
        Err(
            e @ (StoreError::Invalid(_) | StoreError::NotHolder(_) | StoreError::AlreadyDecided(_)),
        ) => {
            let status = status_of(&e);
            render_item(&state, &me.session, &id, Some(&e.to_string()), status)
        }
        Err(e) => page_error(&me.session, e),
    }
}

// ---- rumour tracker --------------------------------------------------------------------

async fn tracker_page(State(state): State<AppState>, Extension(me): Extension<Signed>) -> Response {
    let store = state.store();
    let now = Utc::now();
    let loaded = store.rumours().and_then(|r| {
        Ok((
            r,
            store.volume()?,
            store.alerts_since(now - Duration::days(7))?,
        ))
    });
    match loaded {
        Ok((rumours, volume, alerts)) => {
            let alerting = state.alerting();
            let windows = alerting.windows();
            let figures: BTreeMap<i64, alerts::Figures> = rumours
                .iter()
                .map(|r| (r.id, alerts::figures(r, now, windows)))
                .collect();
            Html(
                pages::tracker(pages::TrackerPage {
                    session: &me.session,
                    rumours: &rumours,
                    volume: &volume,
                    alerts: &alerts,
                    rules: alerting.rules(),
                    figures: &figures,
                    window_minutes: windows.window.num_minutes(),
                    webhook: alerting.has_webhook(),
                })
                .into_string(),
            )
            .into_response()
        }
        Err(e) => page_error(&me.session, e),
    }
}

#[derive(Deserialize)]
struct WeekQuery {
    /// The week's last day (`YYYY-MM-DD`); today when absent.
    #[serde(default)]
    end: Option<String>,
}

/// The week ending on `end` (or today), as (first day, last day).
fn report_week(q: &WeekQuery) -> Option<(NaiveDate, NaiveDate)> {
    let end = match q.end.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?,
        None => Utc::now().date_naive(),
    };
    Some((end.checked_sub_signed(Duration::days(6))?, end))
}

async fn weekly_report_page(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Query(q): Query<WeekQuery>,
) -> Response {
    let Some((from, to)) = report_week(&q) else {
        return bad_request(&me.session, "end must be a date (YYYY-MM-DD)");
    };
    match state.store().rumours() {
        Ok(rumours) => {
            let rows: Vec<pages::ReportRow<'_>> = report::weekly(&rumours, from, to)
                .into_iter()
                .map(|(r, c)| pages::ReportRow {
                    rumour: r,
                    this_week: c.this_week,
                    previous_week: c.previous_week,
                    signals: c.signals,
                    questions: c.questions,
                    daily: c.daily,
                    response: report::suggested_response(r),
                })
                .collect();
            Html(pages::weekly_report(&me.session, from, to, &rows).into_string()).into_response()
        }
        Err(e) => page_error(&me.session, e),
    }
}

async fn weekly_report_csv(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Query(q): Query<WeekQuery>,
) -> Response {
    let Some((from, to)) = report_week(&q) else {
        return bad_request(&me.session, "end must be a date (YYYY-MM-DD)");
    };
    match state.store().rumours() {
        Ok(rumours) => csv_response(
            &format!("rumours-week-{to}.csv"),
            csv_export::weekly(&report::weekly(&rumours, from, to)),
        ),
        Err(e) => page_error(&me.session, e),
    }
}

async fn tracker_csv(State(state): State<AppState>, Extension(me): Extension<Signed>) -> Response {
    match state.store().rumours() {
        Ok(r) => csv_response("rumours.csv", csv_export::rumours(&r)),
        Err(e) => page_error(&me.session, e),
    }
}

async fn volume_csv(State(state): State<AppState>, Extension(me): Extension<Signed>) -> Response {
    match state.store().volume() {
        Ok(v) => csv_response("volume.csv", csv_export::volume(&v)),
        Err(e) => page_error(&me.session, e),
    }
}

#[derive(Deserialize)]
struct StatusForm {
    #[serde(default)]
    csrf: String,
    status: String,
}

async fn status_form(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> Response {
    if !auth::same_secret(&form.csrf, &me.session.csrf) {
        return bad_csrf(&me.session);
    }
    if !me.session.user.role.can_manage_rumours() {
        return forbidden(false, &me.session, "Changing a rumour's status");
    }
    match state
        .store()
        .set_cluster_status(id, &form.status, &me.session.user.name, Utc::now())
    {
        Ok(()) => Redirect::to(&format!("/tracker#rumour-{id}")).into_response(),
        Err(e) => page_error(&me.session, e),
    }
}

// ---- audit ---------------------------------------------------------------------------

async fn audit_page(State(state): State<AppState>, Extension(me): Extension<Signed>) -> Response {
    if !me.session.user.role.can_audit() {
        return forbidden(false, &me.session, "The audit log");
    }
    match state.store().audit_log(1000) {
        Ok(entries) => Html(pages::audit(&me.session, &entries).into_string()).into_response(),
        Err(e) => page_error(&me.session, e),
    }
}

async fn audit_csv(State(state): State<AppState>, Extension(me): Extension<Signed>) -> Response {
    if !me.session.user.role.can_audit() {
        return forbidden(false, &me.session, "The audit log");
    }
    match state.store().audit_log(usize::MAX >> 1) {
        Ok(entries) => csv_response("audit.csv", csv_export::audit(&entries)),
        Err(e) => page_error(&me.session, e),
    }
}

// ---- JSON API ---------------------------------------------------------------------------

async fn api_session(Extension(me): Extension<Signed>) -> Json<serde_json::Value> {
    Json(
        serde_json::json!({ "user": me.session.user.name, "role": me.session.user.role, "csrf": me.session.csrf }),
    )
}

async fn api_queue(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Query(filter): Query<QueueFilter>,
) -> Response {
    if !me.session.user.role.can_moderate() {
        return forbidden(true, &me.session, "The review queue");
    }
    match state.store().queue(&filter, 500) {
        Ok(items) => Json(items).into_response(),
        Err(e) => api_error(e),
    }
}

async fn api_item(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    if !me.session.user.role.can_moderate() {
        return forbidden(true, &me.session, "Reading items");
    }
    match state.store().item(&id) {
        Ok(item) => Json(item).into_response(),
        Err(e) => api_error(e),
    }
}

async fn api_claim(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    if !me.session.user.role.can_moderate() {
        return forbidden(true, &me.session, "Claiming items");
    }
    match state.store().claim(&id, &me.session.user.name, Utc::now(), state.0.settings.lock_ttl) {
        Ok(until) => Json(serde_json::json!({ "item": id, "locked_by": me.session.user.name, "locked_until": until })).into_response(),
        Err(e) => api_error(e),
    }
}

async fn api_release(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    match state
        .store()
        .release(&id, &me.session.user.name, Utc::now())
    {
        Ok(()) => Json(serde_json::json!({ "item": id, "released": true })).into_response(),
        Err(e) => api_error(e),
    }
}

async fn api_decide(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
    Json(input): Json<DecisionInput>,
) -> Response {
    if !me.session.user.role.can_moderate() {
        return forbidden(true, &me.session, "Deciding");
    }
    let decided = decide(&state, &me.session, &id, input);
    if decided.is_ok() {
        state.deliver_decisions().await;
    }
    match decided {
        Ok(record) => Json(record).into_response(),
        Err(e) => api_error(e),
    }
}

async fn api_rumours(State(state): State<AppState>) -> Response {
    match state.store().rumours() {
        Ok(r) => Json(r).into_response(),
        Err(e) => api_error(e),
    }
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

async fn api_status(
    State(state): State<AppState>,
    Extension(me): Extension<Signed>,
    Path(id): Path<i64>,
    Json(body): Json<StatusBody>,
) -> Response {
    if !me.session.user.role.can_manage_rumours() {
        return forbidden(true, &me.session, "Changing a rumour's status");
    }
    match state
        .store()
        .set_cluster_status(id, &body.status, &me.session.user.name, Utc::now())
    {
        Ok(()) => Json(serde_json::json!({ "rumour": id, "status": body.status })).into_response(),
        Err(e) => api_error(e),
    }
}

async fn api_audit(State(state): State<AppState>, Extension(me): Extension<Signed>) -> Response {
    if !me.session.user.role.can_audit() {
        return forbidden(true, &me.session, "The audit log");
    }
    match state.store().audit_log(1000) {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => api_error(e),
    }
}
