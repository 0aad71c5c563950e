//! The console's database: an embedded SQLite file with numbered migrations.
//!
//! Every change a person makes goes through here, inside a transaction that also appends
//! to `audit_log`; triggers make that table append-only. Claiming an item is a single
//! conditional UPDATE, so two moderators can never hold the same item.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Role};
use crate::tracker::{self, Centroid, Embedder, RumourView};
use vigie_pipeline::contract::{Priority, Reason, ScreenedRecord};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("{0}")]
    Invalid(String),
    #[error("no item {0}")]
    NotFound(String),
    #[error("item {id} is being reviewed by {holder} until {until}")]
    Locked {
        id: String,
        holder: String,
        until: String,
    },
    #[error("you do not hold item {0}: claim it first (locks expire)")]
    NotHolder(String),
    #[error("item {0} was already decided")]
    AlreadyDecided(String),
    #[error("{path} line {line}: not a moderation record: {detail}")]
    Import {
        path: String,
        line: usize,
        detail: String,
    },
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("embedding: {0}")]
    Embedding(String),
    #[error("this database was clustered with the {stored} embedder, not {given}; use the same one (--lexical or the model)")]
    EmbedderMismatch { stored: String, given: String },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

mod alerts;
pub use alerts::MAX_ATTEMPTS as MAX_ALERT_ATTEMPTS;

/// Schema changes, applied in order; `PRAGMA user_version` remembers how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('moderator', 'staff', 'admin')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE sessions (
    token_digest TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE claims (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    lang TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'false',
    source_url TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE clusters (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'monitoring', 'debunked', 'responded')),
    claim_id TEXT REFERENCES claims(id),
    centroid BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE items (
    id TEXT PRIMARY KEY,
    lang TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    misinformation INTEGER NOT NULL,
    risk_score REAL,
    redacted_text TEXT NOT NULL,
    channel TEXT NOT NULL,
    country TEXT,
    seen_at TEXT NOT NULL,
    record TEXT NOT NULL,
    embedding BLOB,
    cluster_id INTEGER REFERENCES clusters(id),
    imported_at TEXT NOT NULL,
    locked_by TEXT,
    lock_expires_at INTEGER,
    decision TEXT,
    decision_reason TEXT,
    decided_by TEXT,
    decided_at TEXT,
    claim_id TEXT REFERENCES claims(id)
);
CREATE INDEX items_open ON items (decision, priority DESC, seen_at);
CREATE INDEX items_cluster ON items (cluster_id);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    r#"
ALTER TABLE users ADD COLUMN locked_at TEXT;
"#,
    r#"
-- Decisions waiting for the feed (JSONL file, Kafka topic): written in the decision's
-- own transaction, marked sent once delivered, so a crash in between loses nothing.
CREATE TABLE decision_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    decision_id TEXT NOT NULL UNIQUE,
    item_id TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX decision_outbox_pending ON decision_outbox (seq) WHERE sent_at IS NULL;
"#,
    r#"
-- Rumour signals: posts that ask about, refute or report a rumour. Programme staff
-- track them with the rumour they discuss; they never enter the moderators' queue.
CREATE TABLE signals (
    id TEXT PRIMARY KEY,
    cluster_id INTEGER REFERENCES clusters(id),
    lang TEXT NOT NULL,
    country TEXT,
    channel TEXT NOT NULL,
    stance TEXT,
    seen_at TEXT NOT NULL,
    redacted_text TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE INDEX signals_cluster ON signals (cluster_id);
ALTER TABLE items ADD COLUMN stance TEXT;
-- A rumour signal that also held an identifier is queued (privacy) and still counts as a
-- signal of its rumour.
ALTER TABLE items ADD COLUMN signal INTEGER NOT NULL DEFAULT 0;
ALTER TABLE claims ADD COLUMN verdict TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN correction TEXT NOT NULL DEFAULT '';
-- Alerts raised by the config's rules, and their delivery to the webhook (an outbox:
-- retried until delivered, so staff's tools get each alert at least once).
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id INTEGER NOT NULL REFERENCES clusters(id),
    rule TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    figures TEXT NOT NULL,
    delivered_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alerts_rumour ON alerts (cluster_id, rule, raised_at);
"#,
];

/// The result of a sign-in.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Right name and password: a new session.
    SignedIn {
        /// The session token for the cookie (only its digest is stored).
        token: String,
        /// Who signed in.
        session: Session,
    },
    /// Unknown name or wrong password.
    Rejected,
    /// Right password, but the account is locked until an admin unlocks it.
    Locked,
}

/// What a moderator decides about an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Nothing wrong: the post stays.
    Approve,
    /// The post comes down (harmful, or exposes a patient).
    Remove,
    /// Needs someone with more authority (medical lead, programme manager).
    Escalate,
    /// A rumour: linked to a known claim, or a new one.
    Rumour,
    /// The screening was wrong: neither misinformation nor an exposed patient.
    FalsePositive,
}

impl Decision {
    pub const ALL: [Decision; 5] = [
        Decision::Approve,
        Decision::Remove,
        Decision::Escalate,
        Decision::Rumour,
        Decision::FalsePositive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Remove => "remove",
            Decision::Escalate => "escalate",
            Decision::Rumour => "rumour",
            Decision::FalsePositive => "false_positive",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Decision::Approve => "Approve",
            Decision::Remove => "Remove",
            Decision::Escalate => "Escalate",
            Decision::Rumour => "Mark as rumour",
            Decision::FalsePositive => "False positive",
        }
    }

    /// The keyboard shortcut on the item page.
    pub fn key(self) -> char {
        match self {
            Decision::Approve => 'a',
            Decision::Remove => 'r',
            Decision::Escalate => 'e',
            Decision::Rumour => 'm',
            Decision::FalsePositive => 'f',
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// Values of a facet and how many items have each.
pub type Facets = Vec<(String, usize)>;

/// A decision as submitted (form or API). `reason` is required.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DecisionInput {
    pub decision: String,
    pub reason: String,
    /// For `rumour`: an existing claim...
    #[serde(default)]
    pub claim_id: Option<String>,
    /// ...or the text of a new one.
    #[serde(default)]
    pub new_claim: Option<String>,
}

/// What gets published to the decisions feed and turned into training labels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Unique per decision: the feed is delivered at least once, and a consumer drops
    /// a record whose decision id it has seen.
    #[serde(default)]
    pub decision_id: String,
    pub item_id: String,
    pub decision: Decision,
    pub reason: String,
    pub claim_id: Option<String>,
    pub moderator: String,
    pub decided_at: DateTime<Utc>,
    pub queue: String,
    pub lang: String,
    pub risk_score: Option<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

/// An item as the queue and the item page show it.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: String,
    pub lang: String,
    pub queue: String,
    pub priority: Priority,
    pub risk_score: Option<f32>,
    pub redacted_text: String,
    pub channel: String,
    pub country: Option<String>,
    pub seen_at: String,
    pub locked_by: Option<String>,
    pub lock_expires_at: Option<DateTime<Utc>>,
    pub decision: Option<String>,
    pub decision_reason: Option<String>,
    pub decided_by: Option<String>,
    pub cluster_id: Option<i64>,
    pub claim_id: Option<String>,
    /// The moderation record as Vigie wrote it (redacted), for the explanation.
    pub record: ScreenedRecord,
}

impl Item {
    pub fn is_locked_for(&self, user: &str, now: DateTime<Utc>) -> bool {
        matches!((&self.locked_by, self.lock_expires_at), (Some(who), Some(until)) if who != user && until > now)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub id: String,
    pub text: String,
    pub lang: String,
    pub topic: String,
    pub source_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub detail: String,
}

/// Filters of the review queue.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueueFilter {
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub queue: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ImportReport {
    pub read: usize,
    pub new: usize,
    pub duplicates: usize,
    pub clustered: usize,
    /// Of the new records, rumour signals (tracked with their rumour, not queued).
    pub signals: usize,
}

pub struct Store {
    conn: Mutex<Connection>,
}

fn priority_rank(p: Priority) -> i64 {
    match p {
        Priority::None => 0,
        Priority::Low => 1,
        Priority::Medium => 2,
        Priority::High => 3,
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        Self::init(Connection::open(path)?)
    }

    pub fn open_in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        // WAL lets `vigie console import` write while the server reads; in-memory
        // databases answer "memory" here, which is fine.
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        let store = Store {
            conn: Mutex::new(conn),
        };
        store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.conn();
        let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<usize> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    // ---- accounts and sessions -------------------------------------------------

    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "._-@".contains(c))
        {
            return Err(StoreError::Invalid(
                "user names are 1-64 letters, digits or . _ - @".into(),
            ));
        }
        let hash = auth::hash_password(password)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: Option<i64> = tx
            .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::Invalid(format!("user {name} already exists")));
        }
        tx.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), hash, rfc3339(now)],
        )?;
        let id = tx.last_insert_rowid();
        audit(&tx, now, actor, "add_user", name, "", role.as_str())?;
        tx.commit()?;
        Ok(User {
            id,
            name: name.to_string(),
            role,
        })
    }

    /// Checks a password; every attempt, good or bad, is audited. A locked account
    /// (see [`Store::lock_user`]) does not sign in even with the right password.
    pub fn login(
        &self,
        name: &str,
        password: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<LoginOutcome> {
        let row: Option<(i64, String, String, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT id, role, password_hash, locked_at FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let ok = match &row {
            Some((_, _, hash, _)) => auth::verify_password(password, hash),
            None => {
                auth::verify_password(password, auth::dummy_hash());
                false
            }
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let result = match row {
            Some((_, _, _, Some(_))) if ok => {
                audit(&tx, now, name, "login_refused", name, "", "account locked")?;
                LoginOutcome::Locked
            }
            Some((id, role, _, None)) if ok => {
                let role = Role::parse(&role)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown role {role}")))?;
                let token = auth::random_token();
                let csrf = auth::random_token();
                tx.execute(
                    "INSERT INTO sessions (token_digest, user_id, csrf, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![auth::token_digest(&token), id, csrf, (now + ttl).timestamp()],
                )?;
                tx.execute(
                    "DELETE FROM sessions WHERE expires_at < ?1",
                    [now.timestamp()],
                )?;
                audit(&tx, now, name, "login", "", "", "")?;
                LoginOutcome::SignedIn {
                    token,
                    session: Session {
                        user: User {
                            id,
                            name: name.to_string(),
                            role,
                        },
                        csrf,
                    },
                }
            }
            Some(_) => {
                audit(&tx, now, name, "login_failed", name, "", "wrong password")?;
                LoginOutcome::Rejected
            }
            None => {
                // What was typed is not kept: people type passwords into the name field.
                audit(&tx, now, "-", "login_failed", "unknown user", "", "")?;
                LoginOutcome::Rejected
            }
        };
        tx.commit()?;
        Ok(result)
    }

    /// Locks an account after repeated failed sign-ins (audited as `lockout`); its
    /// sessions end. The name matches whatever its case (the throttle counts failures
    /// that way). Returns false when there is no such account or it is locked already.
    pub fn lock_user(&self, name: &str, now: DateTime<Utc>, reason: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE users SET locked_at = ?2 WHERE lower(name) = lower(?1) AND locked_at IS NULL",
            params![name, now.to_rfc3339()],
        )?;
        if changed > 0 {
            tx.execute(
                "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE lower(name) = lower(?1))",
                [name],
            )?;
            audit(&tx, now, "-", "lockout", name, reason, "")?;
        }
        tx.commit()?;
        Ok(changed > 0)
    }

    /// Lifts a lockout (audited as `unlock`, with who lifted it). Returns false when the
    /// account does not exist or was not locked.
    pub fn unlock_user(&self, actor: &str, name: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE users SET locked_at = NULL WHERE name = ?1 AND locked_at IS NOT NULL",
            [name],
        )?;
        if changed > 0 {
            audit(&tx, now, actor, "unlock", name, "", "")?;
        }
        tx.commit()?;
        Ok(changed > 0)
    }

    /// Accounts locked now, with when they were locked (RFC 3339).
    pub fn locked_users(&self) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, locked_at FROM users WHERE locked_at IS NOT NULL ORDER BY name",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn session(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        let row = self
            .conn()
            .query_row(
                "SELECT u.id, u.name, u.role, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_digest = ?1 AND s.expires_at > ?2",
                params![auth::token_digest(token), now.timestamp()],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)),
            )
            .optional()?;
        Ok(row.and_then(|(id, name, role, csrf)| {
            Role::parse(&role).map(|role| Session {
                user: User { id, name, role },
                csrf,
            })
        }))
    }

    pub fn logout(&self, token: &str, actor: &str, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM sessions WHERE token_digest = ?1",
            [auth::token_digest(token)],
        )?;
        audit(&tx, now, actor, "logout", "", "", "")?;
        tx.commit()?;
        Ok(())
    }

    // ---- import and clustering ---------------------------------------------------

    /// Reads a moderation JSONL file (what `vigie screen` writes to `moderation.jsonl`).
    pub fn import_file(
        &self,
        path: &Path,
        embedder: &dyn Embedder,
        now: DateTime<Utc>,
    ) -> Result<ImportReport> {
        use vigie_eval::datasets::{jsonl_rows, JsonlError};
        // Only redacted records are accepted: a raw post has `text`, which the record type
        // refuses (deny_unknown_fields), so raw text never gets in. serde's messages can
        // quote values from the line, which may not be redacted: only the kind of error
        // and its position are reported.
        let records: Vec<ScreenedRecord> = jsonl_rows(path).map_err(|e| match e {
            JsonlError::Io { path, source } => StoreError::Io { path, source },
            JsonlError::Row { path, line, source } => StoreError::Import {
                path,
                line,
                detail: format!(
                    "{:?} error at column {}",
                    source.classify(),
                    source.column()
                ),
            },
        })?;
        self.import(&records, embedder, "import", now)
    }

    /// Adds records not seen before (re-deliveries are counted and skipped), embeds them,
    /// and groups those flagged for misinformation into rumour clusters.
    pub fn import(
        &self,
        records: &[ScreenedRecord],
        embedder: &dyn Embedder,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportReport> {
        self.check_embedder(embedder)?;
        let mut report = ImportReport {
            read: records.len(),
            ..Default::default()
        };
        let fresh: Vec<&ScreenedRecord> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT 1 FROM items WHERE id = ?1 UNION ALL SELECT 1 FROM signals WHERE id = ?1",
            )?;
            let mut seen = std::collections::HashSet::new();
            let mut fresh = Vec::new();
            for r in records {
                if seen.insert(r.id.as_str()) && !stmt.exists([&r.id])? {
                    fresh.push(r);
                }
            }
            fresh
        };
        report.duplicates = records.len() - fresh.len();
        if fresh.is_empty() {
            return Ok(report);
        }
        let texts: Vec<String> = fresh.iter().map(|r| r.redacted_text.clone()).collect();
        let vectors = embedder.embed(&texts).map_err(StoreError::Embedding)?;
        let threshold = embedder.same_rumour_threshold();

        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut centroids = load_centroids(&tx)?;
        for (record, vector) in fresh.iter().zip(vectors) {
            let misinformation = record.route.reasons.contains(&Reason::Misinformation);
            let signal = record.is_rumour_signal();
            // The platform's date, unless it lies in the future (a wrong clock, or a date
            // set to keep a rumour "recent"): then no later than shortly after screening.
            let latest = record.processed_at + Duration::minutes(10);
            let seen_at = rfc3339(
                record
                    .created_at
                    .filter(|t| *t <= latest)
                    .unwrap_or(record.processed_at),
            );
            let channel = serde_json::to_value(record.channel)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let stance = record
                .risk
                .as_ref()
                .and_then(|r| r.stance)
                .and_then(|s| serde_json::to_value(s).ok())
                .and_then(|v| v.as_str().map(str::to_string));
            // A post that only discusses a rumour (asks, refutes, reports) and holds no
            // identifier is for programme staff: tracked with its rumour, never queued.
            let table = if signal && !record.route.is_flagged() {
                // Ids were checked above, outside this transaction: another import may
                // have stored the same post since, in which case nothing is inserted here.
                let inserted = tx.execute(
                    "INSERT OR IGNORE INTO signals (id, lang, country, channel, stance, seen_at, redacted_text, imported_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        record.id,
                        record.lang.code.as_str(),
                        record.country,
                        channel,
                        stance,
                        seen_at,
                        record.redacted_text,
                        rfc3339(now),
                    ],
                )?;
                if inserted == 0 {
                    report.duplicates += 1;
                    continue;
                }
                report.signals += 1;
                "signals"
            } else {
                let inserted = tx.execute(
                    "INSERT OR IGNORE INTO items (id, lang, queue, priority, misinformation, risk_score, redacted_text, channel, country,
                                        seen_at, record, embedding, imported_at, stance, signal)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                    params![
                        record.id,
                        record.lang.code.as_str(),
                        record.route.queue,
                        priority_rank(record.route.priority),
                        misinformation,
                        record.risk.as_ref().map(|r| r.score),
                        record.redacted_text,
                        channel,
                        record.country,
                        seen_at,
                        serde_json::to_string(record).map_err(|e| StoreError::Invalid(e.to_string()))?,
                        tracker::to_blob(&vector),
                        rfc3339(now),
                        stance,
                        signal,
                    ],
                )?;
                if inserted == 0 {
                    report.duplicates += 1;
                    continue;
                }
                "items"
            };
            report.new += 1;
            if misinformation || signal {
                let claim = record.risk.as_ref().and_then(|r| r.claims.first());
                let cluster = place_in_rumour(
                    &tx,
                    &mut centroids,
                    &record.redacted_text,
                    &vector,
                    threshold,
                    claim,
                    now,
                )?;
                tx.execute(
                    &format!("UPDATE {table} SET cluster_id = ?2 WHERE id = ?1"),
                    params![record.id, cluster],
                )?;
                report.clustered += 1;
            }
        }
        audit(
            &tx,
            now,
            actor,
            "import",
            "",
            "",
            &format!("{} new, {} duplicates", report.new, report.duplicates),
        )?;
        tx.commit()?;
        Ok(report)
    }

    /// The first import fixes the embedder; later ones (and the server) must use the same.
    pub fn check_embedder(&self, embedder: &dyn Embedder) -> Result<()> {
        let conn = self.conn();
        let given = embedder.name();
        let stored: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'embedder'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match stored {
            Some(stored) if stored != given => Err(StoreError::EmbedderMismatch { stored, given }),
            Some(_) => Ok(()),
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('embedder', ?1)",
                    [given],
                )?;
                Ok(())
            }
        }
    }

    // ---- the review queue --------------------------------------------------------

    /// Undecided items, highest priority first, then oldest first.
    pub fn queue(&self, filter: &QueueFilter, limit: usize) -> Result<Vec<Item>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE decision IS NULL
               AND (?1 IS NULL OR lang = ?1) AND (?2 IS NULL OR queue = ?2)
             ORDER BY priority DESC, seen_at ASC, id ASC LIMIT ?3"
        ))?;
        let lang = filter.lang.as_deref().filter(|s| !s.is_empty());
        let queue = filter.queue.as_deref().filter(|s| !s.is_empty());
        let items = stmt
            .query_map(params![lang, queue, limit as i64], item_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(items)
    }

    /// Queue names and languages with undecided items, for the filters.
    pub fn queue_facets(&self) -> Result<(Facets, Facets)> {
        let conn = self.conn();
        let facet = |column: &str| -> Result<Vec<(String, usize)>> {
            let mut stmt = conn.prepare(&format!(
                "SELECT {column}, COUNT(*) FROM items WHERE decision IS NULL GROUP BY {column} ORDER BY {column}"
            ))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        };
        Ok((facet("queue")?, facet("lang")?))
    }

    pub fn item(&self, id: &str) -> Result<Item> {
        self.conn()
            .query_row(
                &format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"),
                [id],
                item_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Locks an item for `user` until `now + ttl`. Claiming again extends one's own lock;
    /// someone else's unexpired lock wins.
    pub fn claim(
        &self,
        id: &str,
        user: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<DateTime<Utc>> {
        let until = now + ttl;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE items SET locked_by = ?2, lock_expires_at = ?3
             WHERE id = ?1 AND decision IS NULL
               AND (locked_by IS NULL OR locked_by = ?2 OR lock_expires_at <= ?4)",
            params![id, user, until.timestamp(), now.timestamp()],
        )?;
        if changed == 0 {
            let row: Option<(Option<String>, Option<i64>, Option<String>)> = tx
                .query_row(
                    "SELECT locked_by, lock_expires_at, decision FROM items WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            return Err(match row {
                None => StoreError::NotFound(id.to_string()),
                Some((_, _, Some(_))) => StoreError::AlreadyDecided(id.to_string()),
                Some((holder, until, None)) => StoreError::Locked {
                    id: id.to_string(),
                    holder: holder.unwrap_or_default(),
                    until: until
                        .and_then(|t| DateTime::from_timestamp(t, 0))
                        .map(rfc3339)
                        .unwrap_or_default(),
                },
            });
        }
        audit(
            &tx,
            now,
            user,
            "claim",
            id,
            "",
            &format!("until {}", rfc3339(until)),
        )?;
        tx.commit()?;
        Ok(until)
    }

    /// Claims the first item of the (filtered) queue that nobody else holds.
    pub fn claim_next(
        &self,
        filter: &QueueFilter,
        user: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<String>> {
        for item in self.queue(filter, 200)? {
            if item.is_locked_for(user, now) {
                continue;
            }
            match self.claim(&item.id, user, now, ttl) {
                Ok(_) => return Ok(Some(item.id)),
                Err(StoreError::Locked { .. } | StoreError::AlreadyDecided(_)) => continue, // lost a race
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Gives a claimed item back to the queue.
    pub fn release(&self, id: &str, user: &str, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE items SET locked_by = NULL, lock_expires_at = NULL WHERE id = ?1 AND locked_by = ?2 AND decision IS NULL",
            params![id, user],
        )?;
        if changed == 0 {
            return Err(StoreError::NotHolder(id.to_string()));
        }
        audit(&tx, now, user, "release", id, "", "")?;
        tx.commit()?;
        Ok(())
    }

    /// Records a decision by the holder of the item's lock. `reason` and new claim text
    /// must already be redacted by the caller (the web layer does it).
    pub fn decide(
        &self,
        id: &str,
        user: &str,
        input: &DecisionInput,
        embedder: &dyn Embedder,
        now: DateTime<Utc>,
    ) -> Result<DecisionRecord> {
        let decision = Decision::parse(input.decision.trim()).ok_or_else(|| {
            StoreError::Invalid(format!(
                "unknown decision {:?}",
                truncate(&input.decision, 32)
            ))
        })?;
        let reason = input.reason.trim();
        if reason.is_empty() {
            return Err(StoreError::Invalid("a reason is required".into()));
        }
        let claim_id = input
            .claim_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let new_claim = input
            .new_claim
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if decision == Decision::Rumour && claim_id.is_none() && new_claim.is_none() {
            return Err(StoreError::Invalid(
                "a rumour needs a known claim or the text of a new one".into(),
            ));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(Option<String>, Option<i64>, Option<String>)> = tx
            .query_row(
                "SELECT locked_by, lock_expires_at, decision FROM items WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match row {
            None => return Err(StoreError::NotFound(id.to_string())),
            Some((_, _, Some(_))) => return Err(StoreError::AlreadyDecided(id.to_string())),
            Some((Some(holder), Some(until), None))
                if holder == user && until > now.timestamp() => {}
            Some(_) => return Err(StoreError::NotHolder(id.to_string())),
        }
        let claim_id = if decision == Decision::Rumour {
            Some(match (claim_id, new_claim) {
                (Some(existing), _) => {
                    let found: Option<String> = tx
                        .query_row("SELECT id FROM claims WHERE id = ?1", [existing], |r| {
                            r.get(0)
                        })
                        .optional()?;
                    found
                        .ok_or_else(|| StoreError::Invalid(format!("no known claim {existing}")))?
                }
                (None, Some(text)) => {
                    let lang: String =
                        tx.query_row("SELECT lang FROM items WHERE id = ?1", [id], |r| r.get(0))?;
                    insert_claim(&tx, text, &lang, "", "", user, now)?
                }
                (None, None) => unreachable!("checked above"),
            })
        } else {
            None
        };
        tx.execute(
            "UPDATE items SET decision = ?2, decision_reason = ?3, decided_by = ?4, decided_at = ?5, claim_id = ?6,
                              locked_by = NULL, lock_expires_at = NULL
             WHERE id = ?1",
            params![id, decision.as_str(), reason, user, rfc3339(now), claim_id],
        )?;
        if let Some(claim) = &claim_id {
            link_rumour(&tx, id, claim, embedder.same_rumour_threshold(), now)?;
        }
        audit(
            &tx,
            now,
            user,
            &format!("decide:{}", decision.as_str()),
            id,
            reason,
            claim_id
                .as_deref()
                .map(|c| format!("claim {c}"))
                .as_deref()
                .unwrap_or(""),
        )?;
        let (queue, lang, risk_score): (String, String, Option<f64>) = tx.query_row(
            "SELECT queue, lang, risk_score FROM items WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let record = DecisionRecord {
            decision_id: format!("dec-{}", &auth::random_token()[..24]),
            item_id: id.to_string(),
            decision,
            reason: reason.to_string(),
            claim_id,
            moderator: user.to_string(),
            decided_at: now,
            queue,
            lang,
            risk_score: risk_score.map(|s| s as f32),
        };
        let line = serde_json::to_string(&record)
            .map_err(|e| StoreError::Invalid(format!("cannot encode a decision: {e}")))?;
        tx.execute(
            "INSERT INTO decision_outbox (decision_id, item_id, record, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![record.decision_id, id, line, rfc3339(now)],
        )?;
        tx.commit()?;
        Ok(record)
    }

    /// Decisions not yet delivered to the feed, oldest first: `(seq, item id, JSON line)`.
    pub fn pending_decisions(&self, limit: usize) -> Result<Vec<(i64, String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT seq, item_id, record FROM decision_outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Marks outbox rows delivered.
    pub fn mark_decisions_sent(&self, seqs: &[i64], now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for seq in seqs {
            tx.execute(
                "UPDATE decision_outbox SET sent_at = ?2 WHERE seq = ?1",
                params![seq, rfc3339(now)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Decisions with the items they are about, for `vigie export-labels`.
    pub fn decided_items(&self) -> Result<Vec<(Item, Decision)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE decision IS NOT NULL ORDER BY decided_at, id"
        ))?;
        let items = stmt
            .query_map([], item_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(items
            .into_iter()
            .filter_map(|i| {
                i.decision
                    .as_deref()
                    .and_then(Decision::parse)
                    .map(|d| (i, d))
            })
            .collect())
    }

    // ---- claims and rumours ------------------------------------------------------

    pub fn add_claim(
        &self,
        text: &str,
        lang: &str,
        topic: &str,
        source_url: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = insert_claim(&tx, text, lang, topic, source_url, actor, now)?;
        tx.commit()?;
        Ok(id)
    }

    pub fn claims(&self) -> Result<Vec<Claim>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, text, lang, topic, source_url FROM claims ORDER BY created_at, id",
        )?;
        let claims = stmt
            .query_map([], |r| {
                Ok(Claim {
                    id: r.get(0)?,
                    text: r.get(1)?,
                    lang: r.get(2)?,
                    topic: r.get(3)?,
                    source_url: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(claims)
    }

    pub fn set_cluster_status(
        &self,
        cluster: i64,
        status: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if !tracker::CLUSTER_STATUSES.contains(&status) {
            return Err(StoreError::Invalid(format!(
                "status must be one of {}",
                tracker::CLUSTER_STATUSES.join(", ")
            )));
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if tx.execute(
            "UPDATE clusters SET status = ?2 WHERE id = ?1",
            params![cluster, status],
        )? == 0
        {
            return Err(StoreError::NotFound(format!("rumour {cluster}")));
        }
        audit(
            &tx,
            now,
            actor,
            "rumour_status",
            &format!("rumour {cluster}"),
            "",
            status,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Rumours, most posts first.
    pub fn rumours(&self) -> Result<Vec<RumourView>> {
        self.rumour_views(None)
    }

    /// One rumour (the item page's), counted without scanning the others.
    pub fn rumour(&self, id: i64) -> Result<Option<RumourView>> {
        Ok(self.rumour_views(Some(id))?.pop())
    }

    /// Rumours with at least one post, all of them or only `only`.
    fn rumour_views(&self, only: Option<i64>) -> Result<Vec<RumourView>> {
        let conn = self.conn();
        let mut views: BTreeMap<i64, RumourView> = BTreeMap::new();
        let mut stmt = conn.prepare(
            "SELECT c.id, c.title, c.status, c.claim_id, cl.text, cl.verdict, cl.correction, cl.source_url
             FROM clusters c LEFT JOIN claims cl ON cl.id = c.claim_id
             WHERE ?1 IS NULL OR c.id = ?1",
        )?;
        let rows = stmt.query_map([only], |r| {
            let mut view = RumourView::new(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            view.verdict = r.get::<_, Option<String>>(5)?.unwrap_or_default();
            view.correction = r.get::<_, Option<String>>(6)?.unwrap_or_default();
            view.fact_check_url = r.get::<_, Option<String>>(7)?.unwrap_or_default();
            Ok(view)
        })?;
        for view in rows {
            let view = view?;
            views.insert(view.id, view);
        }
        // Flagged posts (false positives left out) and rumour signals, oldest first.
        let mut stmt = conn.prepare(
            "SELECT cluster_id, lang, country, channel, seen_at, decision, stance, signal FROM items
             WHERE cluster_id IS NOT NULL AND (?1 IS NULL OR cluster_id = ?1)
               AND (decision IS NULL OR decision != 'false_positive')
             UNION ALL
             SELECT cluster_id, lang, country, channel, seen_at, NULL, stance, 1 FROM signals
             WHERE cluster_id IS NOT NULL AND (?1 IS NULL OR cluster_id = ?1)
             ORDER BY 5",
        )?;
        let rows = stmt.query_map([only], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, bool>(7)?,
            ))
        })?;
        for row in rows {
            let (cluster, lang, country, channel, seen_at, decision, stance, signal) = row?;
            let Some(v) = views.get_mut(&cluster) else {
                continue;
            };
            v.posts += 1;
            if decision.as_deref() == Some("rumour") {
                v.confirmed += 1;
            }
            let question = stance.as_deref() == Some("queries");
            v.signals += usize::from(signal);
            v.questions += usize::from(question);
            if let Ok(at) = DateTime::parse_from_rfc3339(&seen_at) {
                let at = at.with_timezone(&Utc);
                *v.per_day.entry(at.date_naive()).or_default() += 1;
                v.activity.push(tracker::Activity {
                    at,
                    signal,
                    question,
                    lang: lang.clone(),
                    country: country.clone(),
                });
            }
            *v.by_language.entry(lang).or_default() += 1;
            *v.by_country
                .entry(country.unwrap_or_else(|| "?".into()))
                .or_default() += 1;
            *v.by_channel.entry(channel).or_default() += 1;
            v.first_seen.get_or_insert_with(|| seen_at.clone());
            v.last_seen = Some(seen_at);
        }
        let mut out: Vec<RumourView> = views.into_values().filter(|v| v.posts > 0).collect();
        out.sort_by(|a, b| {
            b.posts
                .cmp(&a.posts)
                .then(b.last_seen.cmp(&a.last_seen))
                .then(a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Flagged posts per day, by reason (misinformation, privacy-only).
    pub fn volume(&self) -> Result<BTreeMap<NaiveDate, (usize, usize)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT seen_at, misinformation FROM items")?;
        let mut out: BTreeMap<NaiveDate, (usize, usize)> = BTreeMap::new();
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))? {
            let (seen_at, misinformation) = row?;
            if let Some(day) = day_of(&seen_at) {
                let e = out.entry(day).or_default();
                if misinformation {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
        }
        Ok(out)
    }

    // ---- audit -------------------------------------------------------------------

    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, at, actor, action, target, reason, detail FROM audit_log ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    reason: r.get(5)?,
                    detail: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every text column of the database, for privacy tests.
    #[doc(hidden)]
    pub fn dump_text(&self) -> Result<String> {
        let conn = self.conn();
        let mut out = String::new();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for table in tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                for i in 0..columns {
                    if let Ok(Some(s)) = row.get::<_, Option<String>>(i) {
                        out.push_str(&s);
                        out.push('\n');
                    }
                }
            }
        }
        Ok(out)
    }
}

const ITEM_COLUMNS: &str =
    "id, lang, queue, priority, risk_score, redacted_text, channel, country, seen_at, locked_by,
    lock_expires_at, decision, decision_reason, decided_by, cluster_id, claim_id, record";

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let record: String = r.get(16)?;
    let record: ScreenedRecord = serde_json::from_str(&record).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(16, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let priority = match r.get::<_, i64>(3)? {
        3 => Priority::High,
        2 => Priority::Medium,
        1 => Priority::Low,
        _ => Priority::None,
    };
    Ok(Item {
        id: r.get(0)?,
        lang: r.get(1)?,
        queue: r.get(2)?,
        priority,
        risk_score: r.get::<_, Option<f64>>(4)?.map(|s| s as f32),
        redacted_text: r.get(5)?,
        channel: r.get(6)?,
        country: r.get(7)?,
        seen_at: r.get(8)?,
        locked_by: r.get(9)?,
        lock_expires_at: r
            .get::<_, Option<i64>>(10)?
            .and_then(|t| DateTime::from_timestamp(t, 0)),
        decision: r.get(11)?,
        decision_reason: r.get(12)?,
        decided_by: r.get(13)?,
        cluster_id: r.get(14)?,
        claim_id: r.get(15)?,
        record,
    })
}

fn audit(
    tx: &rusqlite::Transaction<'_>,
    now: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: &str,
    reason: &str,
    detail: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, target, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![rfc3339(now), actor, action, target, reason, detail],
    )?;
    Ok(())
}

fn insert_claim(
    tx: &rusqlite::Transaction<'_>,
    text: &str,
    lang: &str,
    topic: &str,
    source_url: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(StoreError::Invalid("a claim is 1 to 500 characters".into()));
    }
    let n: i64 = tx.query_row(
        "SELECT COUNT(*) FROM claims WHERE id LIKE 'console-%'",
        [],
        |r| r.get(0),
    )?;
    let id = format!("console-{:04}", n + 1);
    tx.execute(
        "INSERT INTO claims (id, text, lang, topic, source_url, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![id, text, lang, topic, source_url, actor, rfc3339(now)],
    )?;
    audit(tx, now, actor, "add_claim", &id, "", text)?;
    Ok(id)
}

fn load_centroids(tx: &rusqlite::Transaction<'_>) -> Result<Vec<Centroid>> {
    let mut stmt = tx.prepare("SELECT id, centroid FROM clusters ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Centroid {
                cluster: r.get(0)?,
                sum: tracker::from_blob(&r.get::<_, Vec<u8>>(1)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The rumour a post belongs to: the one already linked to the known claim the pipeline
/// matched (a question and an assertion of one claim embed apart, the claim joins them),
/// else the nearest by embedding, else a new one titled by the post's text. A matched
/// claim is stored (with its verdict and fact-check) and names a rumour that had none.
fn place_in_rumour(
    tx: &rusqlite::Transaction<'_>,
    centroids: &mut Vec<Centroid>,
    text: &str,
    vector: &[f32],
    threshold: f32,
    claim: Option<&vigie_pipeline::contract::MatchedClaim>,
    now: DateTime<Utc>,
) -> Result<i64> {
    let by_claim: Option<i64> = match claim {
        Some(c) => tx
            .query_row(
                "SELECT id FROM clusters WHERE claim_id = ?1 ORDER BY id LIMIT 1",
                [&c.id],
                |r| r.get(0),
            )
            .optional()?,
        None => None,
    };
    // A post matched to one claim never joins the rumour of another claim.
    let other_claims: std::collections::HashSet<i64> = match claim {
        Some(c) => {
            let mut stmt = tx
                .prepare("SELECT id FROM clusters WHERE claim_id IS NOT NULL AND claim_id != ?1")?;
            let ids = stmt
                .query_map([&c.id], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            ids
        }
        None => Default::default(),
    };
    let found = by_claim.or_else(|| {
        let candidates = centroids
            .iter()
            .filter(|c| !other_claims.contains(&c.cluster));
        tracker::nearest(candidates, vector, threshold).map(|(c, _)| c)
    });
    let cluster = match found.and_then(|id| centroids.iter_mut().find(|c| c.cluster == id)) {
        Some(c) => {
            c.sum.iter_mut().zip(vector).for_each(|(s, v)| *s += v);
            tx.execute(
                "UPDATE clusters SET centroid = ?2 WHERE id = ?1",
                params![c.cluster, tracker::to_blob(&c.sum)],
            )?;
            c.cluster
        }
        None => {
            tx.execute(
                "INSERT INTO clusters (title, centroid, created_at) VALUES (?1, ?2, ?3)",
                params![truncate(text, 120), tracker::to_blob(vector), rfc3339(now)],
            )?;
            let cluster = tx.last_insert_rowid();
            centroids.push(Centroid {
                cluster,
                sum: vector.to_vec(),
            });
            cluster
        }
    };
    if let Some(claim) = claim {
        tx.execute(
            "INSERT OR IGNORE INTO claims (id, text, lang, topic, created_by, created_at) VALUES (?1, ?2, ?3, ?4, 'library', ?5)",
            params![claim.id, claim.text, claim.lang, claim.topic, rfc3339(now)],
        )?;
        // Records of older versions carry no verdict or link: the first that does fills them.
        tx.execute(
            "UPDATE claims SET verdict = CASE WHEN verdict = '' THEN ?2 ELSE verdict END,
                               correction = CASE WHEN correction = '' THEN ?3 ELSE correction END,
                               source_url = CASE WHEN source_url = '' THEN ?4 ELSE source_url END
             WHERE id = ?1",
            params![claim.id, claim.verdict, claim.correction, claim.source_url],
        )?;
        tx.execute(
            "UPDATE clusters SET title = CASE WHEN claim_id IS NULL THEN ?3 ELSE title END, claim_id = COALESCE(claim_id, ?2) WHERE id = ?1",
            params![cluster, claim.id, truncate(&claim.text, 120)],
        )?;
    }
    Ok(cluster)
}

/// A moderator confirmed an item as a rumour of `claim`: the item's cluster (made now if
/// the item had none, e.g. it was flagged only for privacy) takes the claim as its known
/// claim and its title, and leaves the `new` status.
fn link_rumour(
    tx: &rusqlite::Transaction<'_>,
    item: &str,
    claim: &str,
    threshold: f32,
    now: DateTime<Utc>,
) -> Result<()> {
    let (cluster, embedding, text): (Option<i64>, Option<Vec<u8>>, String) = tx.query_row(
        "SELECT cluster_id, embedding, redacted_text FROM items WHERE id = ?1",
        [item],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let cluster = match cluster {
        Some(c) => c,
        None => {
            let vector = embedding
                .map(|b| tracker::from_blob(&b))
                .unwrap_or_default();
            let mut centroids = load_centroids(tx)?;
            let cluster =
                place_in_rumour(tx, &mut centroids, &text, &vector, threshold, None, now)?;
            tx.execute(
                "UPDATE items SET cluster_id = ?2 WHERE id = ?1",
                params![item, cluster],
            )?;
            cluster
        }
    };
    let claim_text: String =
        tx.query_row("SELECT text FROM claims WHERE id = ?1", [claim], |r| {
            r.get(0)
        })?;
    tx.execute(
        "UPDATE clusters SET claim_id = COALESCE(claim_id, ?2),
                             title = CASE WHEN claim_id IS NULL THEN ?3 ELSE title END,
                             status = CASE WHEN status = 'new' THEN 'monitoring' ELSE status END
         WHERE id = ?1",
        params![cluster, claim, truncate(&claim_text, 120)],
    )?;
    Ok(())
}

fn day_of(rfc: &str) -> Option<NaiveDate> {
    DateTime::parse_from_rfc3339(rfc)
        .ok()
        .map(|t| t.with_timezone(&Utc).date_naive())
}

pub(crate) use vigie_pipeline::stages::redaction::truncate_chars as truncate;

/// Decisions as training rows in the risk dataset format (`shared/datasets/README.md`):
/// items flagged for misinformation that a moderator confirmed (rumour, remove) become
/// `misinformation`, those approved or marked false positive `reliable`; escalations
/// and privacy-only items say nothing about risk and are left out.
pub fn label_rows(decided: &[(Item, Decision)]) -> Vec<serde_json::Value> {
    decided
        .iter()
        .filter(|(item, _)| item.record.route.reasons.contains(&Reason::Misinformation))
        .filter_map(|(item, decision)| {
            let label = match decision {
                Decision::Rumour | Decision::Remove => "misinformation",
                Decision::Approve | Decision::FalsePositive => "reliable",
                Decision::Escalate => return None,
            };
            Some(serde_json::json!({
                "id": item.id,
                "text": item.redacted_text,
                "lang": item.lang,
                "label": label,
                "source": "vigie-moderators",
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::LexicalEmbedder;
    use vigie_pipeline::testing::moderation_record as record;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn store_with(records: &[ScreenedRecord]) -> Store {
        let store = Store::open_in_memory().unwrap();
        store
            .import(records, &LexicalEmbedder, "test", t("2024-05-01T00:00:00Z"))
            .unwrap();
        store
    }

    fn decision(d: &str, reason: &str) -> DecisionInput {
        DecisionInput {
            decision: d.into(),
            reason: reason.into(),
            ..Default::default()
        }
    }

    #[test]
    fn queue_orders_by_priority_then_age_and_skips_duplicates() {
        let store = store_with(&[
            record(
                "p1",
                "fr",
                "Rappeler [PHONE] demain",
                false,
                "2024-05-01T08:00:00Z",
            ),
            record(
                "m2",
                "fr",
                "Le vaccin ROR provoque l'autisme",
                true,
                "2024-05-02T08:00:00Z",
            ),
            record(
                "m1",
                "en",
                "The MMR vaccine causes autism",
                true,
                "2024-05-01T09:00:00Z",
            ),
        ]);
        let ids: Vec<String> = store
            .queue(&QueueFilter::default(), 10)
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["m1", "m2", "p1"]);
        let fr = QueueFilter {
            lang: Some("fr".into()),
            queue: None,
        };
        assert_eq!(store.queue(&fr, 10).unwrap().len(), 2);
        let again = store
            .import(
                &[record(
                    "m1",
                    "en",
                    "The MMR vaccine causes autism",
                    true,
                    "2024-05-01T09:00:00Z",
                )],
                &LexicalEmbedder,
                "test",
                t("2024-05-03T00:00:00Z"),
            )
            .unwrap();
        assert_eq!((again.new, again.duplicates), (0, 1));
    }

    #[test]
    fn a_lock_keeps_others_out_until_it_expires() {
        let store = store_with(&[record(
            "m1",
            "en",
            "The MMR vaccine causes autism",
            true,
            "2024-05-01T09:00:00Z",
        )]);
        let now = t("2024-05-05T10:00:00Z");
        let ttl = Duration::minutes(15);
        store.claim("m1", "alice", now, ttl).unwrap();
        let err = store
            .claim("m1", "bob", now + Duration::minutes(5), ttl)
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Locked { ref holder, .. } if holder == "alice"),
            "{err}"
        );
        let err = store
            .decide(
                "m1",
                "bob",
                &decision("approve", "fine"),
                &LexicalEmbedder,
                now,
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::NotHolder(_)), "{err}");
        // Alice walks away; after the lock expires Bob may take it, and Alice may no longer decide.
        store
            .claim("m1", "bob", now + Duration::minutes(16), ttl)
            .unwrap();
        let err = store
            .decide(
                "m1",
                "alice",
                &decision("approve", "fine"),
                &LexicalEmbedder,
                now + Duration::minutes(17),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::NotHolder(_)), "{err}");
        store
            .decide(
                "m1",
                "bob",
                &decision("remove", "false claim"),
                &LexicalEmbedder,
                now + Duration::minutes(17),
            )
            .unwrap();
        assert!(matches!(
            store.claim("m1", "alice", now + Duration::hours(1), ttl),
            Err(StoreError::AlreadyDecided(_))
        ));
        assert!(store.queue(&QueueFilter::default(), 10).unwrap().is_empty());
    }

    #[test]
    fn decisions_need_a_reason_and_rumours_a_claim() {
        let store = store_with(&[record(
            "m1",
            "fr",
            "Le vaccin ROR provoque l'autisme",
            true,
            "2024-05-01T09:00:00Z",
        )]);
        let now = t("2024-05-05T10:00:00Z");
        store
            .claim("m1", "alice", now, Duration::minutes(15))
            .unwrap();
        for bad in [
            decision("approve", "  "),
            decision("delete", "x"),
            decision("rumour", "known rumour"),
        ] {
            assert!(matches!(
                store.decide("m1", "alice", &bad, &LexicalEmbedder, now),
                Err(StoreError::Invalid(_))
            ));
        }
        let input = DecisionInput {
            new_claim: Some("Le vaccin ROR cause l'autisme".into()),
            ..decision("rumour", "déjà démenti")
        };
        let rec = store
            .decide("m1", "alice", &input, &LexicalEmbedder, now)
            .unwrap();
        let claim = rec.claim_id.expect("a claim was created");
        let rumours = store.rumours().unwrap();
        assert_eq!(rumours.len(), 1);
        assert_eq!(
            (
                rumours[0].claim_id.as_deref(),
                rumours[0].confirmed,
                rumours[0].status.as_str()
            ),
            (Some(claim.as_str()), 1, "monitoring")
        );
        assert_eq!(rumours[0].title, "Le vaccin ROR cause l'autisme");
    }

    #[test]
    fn similar_posts_share_a_rumour_and_false_positives_leave_its_counts() {
        let store = store_with(&[
            record(
                "a",
                "fr",
                "Le vaccin ROR provoque l'autisme chez les enfants",
                true,
                "2024-05-01T09:00:00Z",
            ),
            record(
                "b",
                "fr",
                "ATTENTION le vaccin ROR provoque l'autisme chez nos enfants",
                true,
                "2024-05-02T09:00:00Z",
            ),
            record(
                "c",
                "fr",
                "Les antennes 5G propagent le coronavirus dans les villes",
                true,
                "2024-05-02T10:00:00Z",
            ),
            record(
                "d",
                "fr",
                "Rappeler Mme [PERSON] au [PHONE]",
                false,
                "2024-05-02T11:00:00Z",
            ),
        ]);
        let rumours = store.rumours().unwrap();
        assert_eq!(
            rumours.iter().map(|r| r.posts).collect::<Vec<_>>(),
            [2, 1],
            "privacy-only posts are not rumours"
        );
        assert_eq!(rumours[0].per_day.len(), 2);
        let now = t("2024-05-05T10:00:00Z");
        store
            .claim("b", "alice", now, Duration::minutes(15))
            .unwrap();
        store
            .decide(
                "b",
                "alice",
                &decision("false_positive", "c'est une question"),
                &LexicalEmbedder,
                now,
            )
            .unwrap();
        assert_eq!(store.rumours().unwrap()[0].posts, 1);
        let one = store
            .rumour(rumours[0].id)
            .unwrap()
            .expect("the rumour by id");
        assert_eq!(
            (one.posts, one.title.as_str()),
            (1, rumours[0].title.as_str())
        );
        assert!(store
            .set_cluster_status(rumours[0].id, "debunked", "sam", now)
            .is_ok());
        assert!(matches!(
            store.set_cluster_status(rumours[0].id, "gone", "sam", now),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn a_claim_matched_by_the_pipeline_names_the_rumour() {
        let mut r = record(
            "m1",
            "fr",
            "Les antennes 5G propagent le coronavirus",
            true,
            "2024-05-01T09:00:00Z",
        );
        if let Some(risk) = r.risk.as_mut() {
            risk.claims.push(vigie_pipeline::contract::MatchedClaim {
                id: "covid-5g".into(),
                similarity: 0.95,
                topic: "covid".into(),
                lang: "en".into(),
                text: "5G mobile networks spread the coronavirus.".into(),
                verdict: "false".into(),
                correction: String::new(),
                source_url: "https://example.org/fact-check/5g".into(),
            });
        }
        let store = store_with(&[r]);
        let rumours = store.rumours().unwrap();
        assert_eq!(
            (rumours[0].claim_id.as_deref(), rumours[0].title.as_str()),
            (
                Some("covid-5g"),
                "5G mobile networks spread the coronavirus."
            )
        );
        assert_eq!(
            store.claims().unwrap()[0].id,
            "covid-5g",
            "moderators can link other posts to it"
        );
    }

    #[test]
    fn posts_matched_to_different_claims_never_share_a_rumour() {
        let claim = |id: &str| vigie_pipeline::contract::MatchedClaim {
            id: id.into(),
            similarity: 0.93,
            topic: "vaccines".into(),
            lang: "fr".into(),
            text: format!("claim {id}"),
            verdict: "false".into(),
            correction: String::new(),
            source_url: String::new(),
        };
        // Nearly the same words, two different known claims.
        let text = "le vaccin contre la rougeole provoque des maladies graves";
        let mut a = record("a", "fr", text, true, "2024-05-01T09:00:00Z");
        let mut b = record("b", "fr", text, true, "2024-05-01T10:00:00Z");
        a.risk.as_mut().unwrap().claims = vec![claim("measles-1")];
        b.risk.as_mut().unwrap().claims = vec![claim("measles-2")];
        let store = store_with(&[a, b]);
        let mut claims: Vec<Option<String>> = store
            .rumours()
            .unwrap()
            .into_iter()
            .map(|r| r.claim_id)
            .collect();
        claims.sort();
        assert_eq!(
            claims,
            [Some("measles-1".to_string()), Some("measles-2".to_string())]
        );
    }

    #[test]
    fn a_post_dated_in_the_future_counts_from_its_screening() {
        let mut r = record(
            "f",
            "fr",
            "le vaccin rend stérile",
            true,
            "2035-01-01T00:00:00Z",
        );
        r.processed_at = t("2024-05-01T09:00:00Z");
        let store = store_with(&[r]);
        let view = &store.rumours().unwrap()[0];
        assert_eq!(view.first_seen.as_deref(), Some("2024-05-01T09:00:00Z"));
    }

    #[test]
    fn the_audit_log_is_append_only() {
        let store = store_with(&[record("m1", "en", "text", true, "2024-05-01T09:00:00Z")]);
        store
            .claim(
                "m1",
                "alice",
                t("2024-05-05T10:00:00Z"),
                Duration::minutes(15),
            )
            .unwrap();
        let log = store.audit_log(10).unwrap();
        assert_eq!(
            log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["claim", "import"]
        );
        let conn = store.conn();
        assert!(conn
            .execute("UPDATE audit_log SET actor = 'mallory'", [])
            .is_err());
        assert!(conn.execute("DELETE FROM audit_log", []).is_err());
    }

    #[test]
    fn logins_make_sessions_and_failures_are_audited() {
        let store = Store::open_in_memory().unwrap();
        let now = t("2024-05-05T10:00:00Z");
        store
            .add_user(
                "alice",
                Role::Moderator,
                "a long enough password",
                "cli",
                now,
            )
            .unwrap();
        assert!(store
            .add_user("alice", Role::Admin, "another long password", "cli", now)
            .is_err());
        assert!(matches!(
            store
                .login("alice", "wrong password!", now, Duration::hours(1))
                .unwrap(),
            LoginOutcome::Rejected
        ));
        assert!(matches!(
            store
                .login("nobody", "a long enough password", now, Duration::hours(1))
                .unwrap(),
            LoginOutcome::Rejected
        ));
        let LoginOutcome::SignedIn { token, session } = store
            .login("alice", "a long enough password", now, Duration::hours(1))
            .unwrap()
        else {
            panic!("alice signs in")
        };
        assert_eq!(
            store.session(&token, now).unwrap().unwrap().csrf,
            session.csrf
        );
        assert!(
            store
                .session(&token, now + Duration::hours(2))
                .unwrap()
                .is_none(),
            "sessions expire"
        );
        assert!(store.session("forged", now).unwrap().is_none());
        assert!(
            !store.dump_text().unwrap().contains(&token),
            "only a digest of the token is stored"
        );
        let actions: Vec<String> = store
            .audit_log(10)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            ["login", "login_failed", "login_failed", "add_user"]
        );
    }

    #[test]
    fn a_locked_account_does_not_sign_in_until_an_admin_unlocks_it() {
        let store = Store::open_in_memory().unwrap();
        let now = Utc::now();
        store
            .add_user(
                "alice",
                Role::Moderator,
                "a long enough password",
                "cli",
                now,
            )
            .unwrap();
        let LoginOutcome::SignedIn { token, .. } = store
            .login("alice", "a long enough password", now, Duration::hours(1))
            .unwrap()
        else {
            panic!("alice signs in")
        };
        assert!(store.lock_user("alice", now, "20 failed sign-ins").unwrap());
        assert!(!store.lock_user("alice", now, "again").unwrap(), "once");
        assert!(!store.lock_user("nobody", now, "x").unwrap());
        assert!(
            store.session(&token, now).unwrap().is_none(),
            "sessions end"
        );
        assert!(matches!(
            store
                .login("alice", "a long enough password", now, Duration::hours(1))
                .unwrap(),
            LoginOutcome::Locked
        ));
        assert!(matches!(
            store
                .login("alice", "wrong password!!", now, Duration::hours(1))
                .unwrap(),
            LoginOutcome::Rejected
        ));
        assert_eq!(store.locked_users().unwrap().len(), 1);
        assert!(store.unlock_user("root", "alice", now).unwrap());
        assert!(!store.unlock_user("root", "alice", now).unwrap());
        assert!(matches!(
            store
                .login("alice", "a long enough password", now, Duration::hours(1))
                .unwrap(),
            LoginOutcome::SignedIn { .. }
        ));
        let log: Vec<(String, String, String)> = store
            .audit_log(10)
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.actor, e.target))
            .collect();
        assert!(log.contains(&("lockout".into(), "-".into(), "alice".into())));
        assert!(log.contains(&("unlock".into(), "root".into(), "alice".into())));
    }

    #[test]
    fn labels_come_from_misinformation_decisions_only() {
        let store = store_with(&[
            record(
                "m1",
                "en",
                "The MMR vaccine causes autism",
                true,
                "2024-05-01T09:00:00Z",
            ),
            record(
                "m2",
                "fr",
                "Réunion lundi au centre de santé",
                true,
                "2024-05-01T10:00:00Z",
            ),
            record(
                "m3",
                "fr",
                "Ebola est une invention",
                true,
                "2024-05-01T11:00:00Z",
            ),
            record(
                "p1",
                "fr",
                "Rappeler [PHONE]",
                false,
                "2024-05-01T12:00:00Z",
            ),
        ]);
        let now = t("2024-05-05T10:00:00Z");
        for (id, d) in [
            ("m1", "remove"),
            ("m2", "false_positive"),
            ("m3", "escalate"),
            ("p1", "approve"),
        ] {
            store
                .claim(id, "alice", now, Duration::minutes(15))
                .unwrap();
            store
                .decide(id, "alice", &decision(d, "checked"), &LexicalEmbedder, now)
                .unwrap();
        }
        let rows = label_rows(&store.decided_items().unwrap());
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().into(),
                    r["label"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("m1".to_string(), "misinformation".to_string()),
                ("m2".to_string(), "reliable".to_string())
            ]
        );
        assert_eq!(rows[0]["text"], "The MMR vaccine causes autism");
    }

    #[test]
    fn another_embedder_is_refused_on_the_same_database() {
        struct Other;
        impl Embedder for Other {
            fn name(&self) -> String {
                "other".into()
            }
            fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
                Ok(texts.iter().map(|_| vec![1.0]).collect())
            }
            fn same_rumour_threshold(&self) -> f32 {
                0.5
            }
        }
        let store = store_with(&[record("m1", "en", "text", true, "2024-05-01T09:00:00Z")]);
        let err = store
            .import(
                &[record("m2", "en", "text", true, "2024-05-01T09:00:00Z")],
                &Other,
                "t",
                Utc::now(),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::EmbedderMismatch { .. }), "{err}");
    }
}
