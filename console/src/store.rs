//! The console's database: an embedded SQLite file, or a PostgreSQL server that several
//! console instances share (`Store::connect` picks by URL), with numbered migrations.
//!
//! Every change a person makes goes through here, inside a transaction that also appends
//! to `audit_log`; triggers make that table append-only. Claiming an item is a single
//! conditional UPDATE, so two moderators can never hold the same item.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Role};
use crate::tracker::{self, Centroid, Embedder, RumourView};
use vigie_pipeline::contract::{Priority, Reason, ScreenedRecord};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
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
pub mod db;
mod migrations;
#[doc(hidden)]
pub mod test_db;

pub use alerts::MAX_ATTEMPTS as MAX_ALERT_ATTEMPTS;
use db::{args, Db, DbError, Location, Row, Sql, Value};

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
    db: Db,
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
    /// A SQLite database file (made if missing).
    pub fn open(path: &Path) -> Result<Store> {
        Self::init(Db::sqlite(
            rusqlite::Connection::open(path).map_err(DbError::from)?,
        )?)
    }

    pub fn open_in_memory() -> Result<Store> {
        Self::init(Db::sqlite(
            rusqlite::Connection::open_in_memory().map_err(DbError::from)?,
        )?)
    }

    /// The database a URL names: `sqlite:PATH` (or a bare path), `sqlite::memory:`, or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (a PostgreSQL server that several console
    /// instances can share). Migrations run before it returns.
    pub fn connect(url: &str) -> Result<Store> {
        match Location::parse(url)? {
            Location::Sqlite(path) => Self::open(Path::new(path)),
            Location::SqliteMemory => Self::open_in_memory(),
            Location::Postgres(url) => Self::init(Db::postgres(url)?),
        }
    }

    fn init(db: Db) -> Result<Store> {
        db.migrate(migrations::SQLITE, migrations::POSTGRES)?;
        Ok(Store { db })
    }

    /// "sqlite" or "postgres", for logs.
    pub fn engine(&self) -> &'static str {
        if self.db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    pub fn schema_version(&self) -> Result<usize> {
        Ok(self.db.schema_version()?)
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
        self.db.write(|s| {
            if s.query_opt("SELECT id FROM users WHERE name = ?1", &args![name])?
                .is_some()
            {
                return Err(StoreError::Invalid(format!("user {name} already exists")));
            }
            let id: i64 = s
                .query_one(
                    "INSERT INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
                    &args![name, role.as_str(), hash, rfc3339(now)],
                )?
                .get(0)?;
            audit(s, now, actor, "add_user", name, "", role.as_str())?;
            Ok(User {
                id,
                name: name.to_string(),
                role,
            })
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
        let row: Option<(i64, String, String, Option<String>)> = self.db.read(|s| {
            s.query_opt(
                "SELECT id, role, password_hash, locked_at FROM users WHERE name = ?1",
                &args![name],
            )?
            .map(|r| Ok::<_, DbError>((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .transpose()
        })?;
        let ok = match &row {
            Some((_, _, hash, _)) => auth::verify_password(password, hash),
            None => {
                auth::verify_password(password, auth::dummy_hash());
                false
            }
        };
        self.db.write(|s| {
            Ok(match row {
                Some((_, _, _, Some(_))) if ok => {
                    audit(s, now, name, "login_refused", name, "", "account locked")?;
                    LoginOutcome::Locked
                }
                Some((id, role, _, None)) if ok => {
                    let role = Role::parse(&role)
                        .ok_or_else(|| StoreError::Invalid(format!("unknown role {role}")))?;
                    let token = auth::random_token();
                    let csrf = auth::random_token();
                    s.execute(
                        "INSERT INTO sessions (token_digest, user_id, csrf, expires_at) VALUES (?1, ?2, ?3, ?4)",
                        &args![auth::token_digest(&token), id, csrf.as_str(), (now + ttl).timestamp()],
                    )?;
                    s.execute(
                        "DELETE FROM sessions WHERE expires_at < ?1",
                        &args![now.timestamp()],
                    )?;
                    audit(s, now, name, "login", "", "", "")?;
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
                    audit(s, now, name, "login_failed", name, "", "wrong password")?;
                    LoginOutcome::Rejected
                }
                None => {
                    // What was typed is not kept: people type passwords into the name field.
                    audit(s, now, "-", "login_failed", "unknown user", "", "")?;
                    LoginOutcome::Rejected
                }
            })
        })
    }

    /// Locks an account after repeated failed sign-ins (audited as `lockout`); its
    /// sessions end. The name matches whatever its case (the throttle counts failures
    /// that way). Returns false when there is no such account or it is locked already.
    pub fn lock_user(&self, name: &str, now: DateTime<Utc>, reason: &str) -> Result<bool> {
        self.db.write(|s| {
            let changed = s.execute(
                "UPDATE users SET locked_at = ?2 WHERE lower(name) = lower(?1) AND locked_at IS NULL",
                &args![name, now.to_rfc3339()],
            )?;
            if changed > 0 {
                s.execute(
                    "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE lower(name) = lower(?1))",
                    &args![name],
                )?;
                audit(s, now, "-", "lockout", name, reason, "")?;
            }
            Ok(changed > 0)
        })
    }

    /// Lifts a lockout (audited as `unlock`, with who lifted it). Returns false when the
    /// account does not exist or was not locked.
    pub fn unlock_user(&self, actor: &str, name: &str, now: DateTime<Utc>) -> Result<bool> {
        self.db.write(|s| {
            let changed = s.execute(
                "UPDATE users SET locked_at = NULL WHERE name = ?1 AND locked_at IS NOT NULL",
                &args![name],
            )?;
            if changed > 0 {
                audit(s, now, actor, "unlock", name, "", "")?;
            }
            Ok(changed > 0)
        })
    }

    /// Accounts locked now, with when they were locked (RFC 3339).
    pub fn locked_users(&self) -> Result<Vec<(String, String)>> {
        self.db.read(|s| {
            s.query(
                "SELECT name, locked_at FROM users WHERE locked_at IS NOT NULL ORDER BY name",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
        })
    }

    pub fn session(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        let row = self.db.read(|s| {
            s.query_opt(
                "SELECT u.id, u.name, u.role, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_digest = ?1 AND s.expires_at > ?2",
                &args![auth::token_digest(token), now.timestamp()],
            )?
            .map(|r| {
                Ok::<_, DbError>((
                    r.get::<i64>(0)?,
                    r.get::<String>(1)?,
                    r.get::<String>(2)?,
                    r.get::<String>(3)?,
                ))
            })
            .transpose()
        })?;
        Ok(row.and_then(|(id, name, role, csrf)| {
            Role::parse(&role).map(|role| Session {
                user: User { id, name, role },
                csrf,
            })
        }))
    }

    pub fn logout(&self, token: &str, actor: &str, now: DateTime<Utc>) -> Result<()> {
        self.db.write(|s| {
            s.execute(
                "DELETE FROM sessions WHERE token_digest = ?1",
                &args![auth::token_digest(token)],
            )?;
            audit(s, now, actor, "logout", "", "", "")
        })
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
        let fresh: Vec<&ScreenedRecord> = self.db.read(|s| {
            let mut seen = std::collections::HashSet::new();
            let mut fresh = Vec::new();
            for r in records {
                if seen.insert(r.id.as_str())
                    && s.query_opt(
                        "SELECT 1 FROM items WHERE id = ?1 UNION ALL SELECT 1 FROM signals WHERE id = ?1",
                        &args![&r.id],
                    )?
                    .is_none()
                {
                    fresh.push(r);
                }
            }
            Ok::<_, StoreError>(fresh)
        })?;
        report.duplicates = records.len() - fresh.len();
        if fresh.is_empty() {
            return Ok(report);
        }
        let texts: Vec<String> = fresh.iter().map(|r| r.redacted_text.clone()).collect();
        let vectors = embedder.embed(&texts).map_err(StoreError::Embedding)?;
        let threshold = embedder.same_rumour_threshold();

        self.db.write(|s| {
            let mut centroids = load_centroids(s)?;
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
                    let inserted = s.execute(
                        "INSERT INTO signals (id, lang, country, channel, stance, seen_at, redacted_text, imported_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                        &args![
                            &record.id,
                            record.lang.code.as_str(),
                            &record.country,
                            channel,
                            stance,
                            seen_at,
                            &record.redacted_text,
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
                    let line = serde_json::to_string(record)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    let inserted = s.execute(
                        "INSERT INTO items (id, lang, queue, priority, misinformation, risk_score, redacted_text, channel, country,
                                            seen_at, record, embedding, imported_at, stance, signal)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                         ON CONFLICT DO NOTHING",
                        &args![
                            &record.id,
                            record.lang.code.as_str(),
                            &record.route.queue,
                            priority_rank(record.route.priority),
                            misinformation,
                            record.risk.as_ref().map(|r| r.score),
                            &record.redacted_text,
                            channel,
                            &record.country,
                            seen_at,
                            line,
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
                        s,
                        &mut centroids,
                        &record.redacted_text,
                        &vector,
                        threshold,
                        claim,
                        now,
                    )?;
                    s.execute(
                        &format!("UPDATE {table} SET cluster_id = ?2 WHERE id = ?1"),
                        &args![&record.id, cluster],
                    )?;
                    report.clustered += 1;
                }
            }
            audit(
                s,
                now,
                actor,
                "import",
                "",
                "",
                &format!("{} new, {} duplicates", report.new, report.duplicates),
            )
        })?;
        Ok(report)
    }

    /// The first import fixes the embedder; later ones (and the server) must use the same.
    pub fn check_embedder(&self, embedder: &dyn Embedder) -> Result<()> {
        let given = embedder.name();
        let stored = |s: &mut dyn Sql| -> Result<Option<String>> {
            Ok(
                s.query_opt("SELECT value FROM meta WHERE key = 'embedder'", &[])?
                    .map(|r| r.get(0))
                    .transpose()?,
            )
        };
        // Read first: the write lock is taken only by the very first import.
        let known = match self.db.read(stored)? {
            Some(known) => known,
            None => self.db.write(|s| {
                s.execute(
                    "INSERT INTO meta (key, value) VALUES ('embedder', ?1) ON CONFLICT DO NOTHING",
                    &args![given.as_str()],
                )?;
                Ok::<_, StoreError>(stored(s)?.unwrap_or_default())
            })?,
        };
        if known != given {
            return Err(StoreError::EmbedderMismatch {
                stored: known,
                given,
            });
        }
        Ok(())
    }

    // ---- the review queue --------------------------------------------------------

    /// Undecided items, highest priority first, then oldest first.
    pub fn queue(&self, filter: &QueueFilter, limit: usize) -> Result<Vec<Item>> {
        let lang = filter.lang.as_deref().filter(|s| !s.is_empty());
        let queue = filter.queue.as_deref().filter(|s| !s.is_empty());
        self.db.read(|s| {
            s.query(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM items WHERE decision IS NULL
                       AND (CAST(?1 AS TEXT) IS NULL OR lang = ?1) AND (CAST(?2 AS TEXT) IS NULL OR queue = ?2)
                     ORDER BY priority DESC, seen_at ASC, id ASC LIMIT ?3"
                ),
                &args![lang, queue, limit],
            )?
            .iter()
            .map(item_from_row)
            .collect()
        })
    }

    /// Queue names and languages with undecided items, for the filters.
    pub fn queue_facets(&self) -> Result<(Facets, Facets)> {
        self.db.read(|s| {
            let mut facet = |column: &str| -> Result<Facets> {
                s.query(
                    &format!(
                        "SELECT {column}, COUNT(*) FROM items WHERE decision IS NULL GROUP BY {column} ORDER BY {column}"
                    ),
                    &[],
                )?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get::<i64>(1)? as usize)))
                .collect()
            };
            Ok((facet("queue")?, facet("lang")?))
        })
    }

    pub fn item(&self, id: &str) -> Result<Item> {
        self.db
            .read(|s| {
                s.query_opt(
                    &format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"),
                    &args![id],
                )?
                .as_ref()
                .map(item_from_row)
                .transpose()
            })?
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
        self.db.write(|s| {
            let changed = s.execute(
                "UPDATE items SET locked_by = ?2, lock_expires_at = ?3
                 WHERE id = ?1 AND decision IS NULL
                   AND (locked_by IS NULL OR locked_by = ?2 OR lock_expires_at <= ?4)",
                &args![id, user, until.timestamp(), now.timestamp()],
            )?;
            if changed == 0 {
                return Err(match lock_state(s, id)? {
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
                s,
                now,
                user,
                "claim",
                id,
                "",
                &format!("until {}", rfc3339(until)),
            )?;
            Ok(until)
        })
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
        self.db.write(|s| {
            let changed = s.execute(
                "UPDATE items SET locked_by = NULL, lock_expires_at = NULL WHERE id = ?1 AND locked_by = ?2 AND decision IS NULL",
                &args![id, user],
            )?;
            if changed == 0 {
                return Err(StoreError::NotHolder(id.to_string()));
            }
            audit(s, now, user, "release", id, "", "")
        })
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
        self.db.write(|s| {
            match lock_state(s, id)? {
                None => return Err(StoreError::NotFound(id.to_string())),
                Some((_, _, Some(_))) => return Err(StoreError::AlreadyDecided(id.to_string())),
                Some((Some(holder), Some(until), None))
                    if holder == user && until > now.timestamp() => {}
                Some(_) => return Err(StoreError::NotHolder(id.to_string())),
            }
            let claim_id = match (decision, claim_id, new_claim) {
                (Decision::Rumour, Some(existing), _) => Some(
                    s.query_opt("SELECT id FROM claims WHERE id = ?1", &args![existing])?
                        .map(|r| r.get::<String>(0))
                        .transpose()?
                        .ok_or_else(|| StoreError::Invalid(format!("no known claim {existing}")))?,
                ),
                (Decision::Rumour, None, Some(text)) => {
                    let lang: String = s
                        .query_one("SELECT lang FROM items WHERE id = ?1", &args![id])?
                        .get(0)?;
                    Some(insert_claim(s, text, &lang, "", "", user, now)?)
                }
                _ => None,
            };
            s.execute(
                "UPDATE items SET decision = ?2, decision_reason = ?3, decided_by = ?4, decided_at = ?5, claim_id = ?6,
                                  locked_by = NULL, lock_expires_at = NULL
                 WHERE id = ?1",
                &args![id, decision.as_str(), reason, user, rfc3339(now), &claim_id],
            )?;
            if let Some(claim) = &claim_id {
                link_rumour(s, id, claim, embedder.same_rumour_threshold(), now)?;
            }
            audit(
                s,
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
            let row = s.query_one(
                "SELECT queue, lang, risk_score FROM items WHERE id = ?1",
                &args![id],
            )?;
            let risk_score: Option<f64> = row.get(2)?;
            let record = DecisionRecord {
                decision_id: format!("dec-{}", &auth::random_token()[..24]),
                item_id: id.to_string(),
                decision,
                reason: reason.to_string(),
                claim_id,
                moderator: user.to_string(),
                decided_at: now,
                queue: row.get(0)?,
                lang: row.get(1)?,
                risk_score: risk_score.map(|s| s as f32),
            };
            let line = serde_json::to_string(&record)
                .map_err(|e| StoreError::Invalid(format!("cannot encode a decision: {e}")))?;
            s.execute(
                "INSERT INTO decision_outbox (decision_id, item_id, record, created_at) VALUES (?1, ?2, ?3, ?4)",
                &args![&record.decision_id, id, line, rfc3339(now)],
            )?;
            Ok(record)
        })
    }

    /// Decisions not yet delivered to the feed, oldest first: `(seq, item id, JSON line)`.
    pub fn pending_decisions(&self, limit: usize) -> Result<Vec<(i64, String, String)>> {
        self.db.read(|s| {
            s.query(
                "SELECT seq, item_id, record FROM decision_outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?1",
                &args![limit],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect()
        })
    }

    /// Marks outbox rows delivered.
    pub fn mark_decisions_sent(&self, seqs: &[i64], now: DateTime<Utc>) -> Result<()> {
        self.db.write(|s| {
            for seq in seqs {
                s.execute(
                    "UPDATE decision_outbox SET sent_at = ?2 WHERE seq = ?1",
                    &args![*seq, rfc3339(now)],
                )?;
            }
            Ok(())
        })
    }

    /// Decisions with the items they are about, for `vigie export-labels`.
    pub fn decided_items(&self) -> Result<Vec<(Item, Decision)>> {
        let items: Vec<Item> = self.db.read(|s| {
            s.query(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM items WHERE decision IS NOT NULL ORDER BY decided_at, id"
                ),
                &[],
            )?
            .iter()
            .map(item_from_row)
            .collect::<Result<_>>()
        })?;
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
        self.db
            .write(|s| insert_claim(s, text, lang, topic, source_url, actor, now))
    }

    pub fn claims(&self) -> Result<Vec<Claim>> {
        self.db.read(|s| {
            s.query(
                "SELECT id, text, lang, topic, source_url FROM claims ORDER BY created_at, id",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(Claim {
                    id: r.get(0)?,
                    text: r.get(1)?,
                    lang: r.get(2)?,
                    topic: r.get(3)?,
                    source_url: r.get(4)?,
                })
            })
            .collect()
        })
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
        self.db.write(|s| {
            if s.execute(
                "UPDATE clusters SET status = ?2 WHERE id = ?1",
                &args![cluster, status],
            )? == 0
            {
                return Err(StoreError::NotFound(format!("rumour {cluster}")));
            }
            audit(
                s,
                now,
                actor,
                "rumour_status",
                &format!("rumour {cluster}"),
                "",
                status,
            )
        })
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
        let (rumours, posts) = self.db.read(|s| {
            let rumours = s.query(
                "SELECT c.id, c.title, c.status, c.claim_id, cl.text, cl.verdict, cl.correction, cl.source_url
                 FROM clusters c LEFT JOIN claims cl ON cl.id = c.claim_id
                 WHERE CAST(?1 AS BIGINT) IS NULL OR c.id = ?1",
                &args![only],
            )?;
            // Flagged posts (false positives left out) and rumour signals, oldest first.
            let posts = s.query(
                "SELECT cluster_id, lang, country, channel, seen_at, decision, stance, signal FROM items
                 WHERE cluster_id IS NOT NULL AND (CAST(?1 AS BIGINT) IS NULL OR cluster_id = ?1)
                   AND (decision IS NULL OR decision != 'false_positive')
                 UNION ALL
                 SELECT cluster_id, lang, country, channel, seen_at, NULL, stance, 1 FROM signals
                 WHERE cluster_id IS NOT NULL AND (CAST(?1 AS BIGINT) IS NULL OR cluster_id = ?1)
                 ORDER BY 5",
                &args![only],
            )?;
            Ok::<_, StoreError>((rumours, posts))
        })?;
        let mut views: BTreeMap<i64, RumourView> = BTreeMap::new();
        for r in &rumours {
            let mut view = RumourView::new(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            view.verdict = r.get::<Option<String>>(5)?.unwrap_or_default();
            view.correction = r.get::<Option<String>>(6)?.unwrap_or_default();
            view.fact_check_url = r.get::<Option<String>>(7)?.unwrap_or_default();
            views.insert(view.id, view);
        }
        for r in &posts {
            let cluster: i64 = r.get(0)?;
            let lang: String = r.get(1)?;
            let country: Option<String> = r.get(2)?;
            let channel: String = r.get(3)?;
            let seen_at: String = r.get(4)?;
            let decision: Option<String> = r.get(5)?;
            let stance: Option<String> = r.get(6)?;
            let signal: bool = r.get(7)?;
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
        let rows = self
            .db
            .read(|s| s.query("SELECT seen_at, misinformation FROM items", &[]))?;
        let mut out: BTreeMap<NaiveDate, (usize, usize)> = BTreeMap::new();
        for row in &rows {
            let seen_at: String = row.get(0)?;
            let misinformation: bool = row.get(1)?;
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
        self.db.read(|s| {
            s.query(
                "SELECT id, at, actor, action, target, reason, detail FROM audit_log ORDER BY id DESC LIMIT ?1",
                &args![limit],
            )?
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    reason: r.get(5)?,
                    detail: r.get(6)?,
                })
            })
            .collect()
        })
    }

    /// Every text column of the database, for privacy tests.
    #[doc(hidden)]
    pub fn dump_text(&self) -> Result<String> {
        let mut out = String::new();
        for table in self.db.tables()? {
            let rows = self
                .db
                .read(|s| s.query(&format!("SELECT * FROM \"{table}\""), &[]))?;
            for row in &rows {
                for value in row.values() {
                    if let Value::Text(text) = value {
                        out.push_str(text);
                        out.push('\n');
                    }
                }
            }
        }
        Ok(out)
    }

    /// Runs raw SQL in a write transaction (tests that check what the schema refuses).
    #[doc(hidden)]
    pub fn execute_raw(&self, sql: &str) -> Result<u64> {
        self.db.write(|s| Ok(s.execute(sql, &[])?))
    }
}

const ITEM_COLUMNS: &str =
    "id, lang, queue, priority, risk_score, redacted_text, channel, country, seen_at, locked_by,
    lock_expires_at, decision, decision_reason, decided_by, cluster_id, claim_id, record";

fn item_from_row(r: &Row) -> Result<Item> {
    let record: String = r.get(16)?;
    let record: ScreenedRecord = serde_json::from_str(&record)
        .map_err(|e| StoreError::Invalid(format!("a stored record does not parse: {e}")))?;
    let priority = match r.get::<i64>(3)? {
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
        risk_score: r.get::<Option<f64>>(4)?.map(|s| s as f32),
        redacted_text: r.get(5)?,
        channel: r.get(6)?,
        country: r.get(7)?,
        seen_at: r.get(8)?,
        locked_by: r.get(9)?,
        lock_expires_at: r
            .get::<Option<i64>>(10)?
            .and_then(|t| DateTime::from_timestamp(t, 0)),
        decision: r.get(11)?,
        decision_reason: r.get(12)?,
        decided_by: r.get(13)?,
        cluster_id: r.get(14)?,
        claim_id: r.get(15)?,
        record,
    })
}

/// `(locked_by, lock_expires_at, decision)` of an item, if it exists.
type LockState = (Option<String>, Option<i64>, Option<String>);

fn lock_state(s: &mut dyn Sql, id: &str) -> Result<Option<LockState>> {
    Ok(s.query_opt(
        "SELECT locked_by, lock_expires_at, decision FROM items WHERE id = ?1",
        &args![id],
    )?
    .map(|r| Ok::<_, DbError>((r.get(0)?, r.get(1)?, r.get(2)?)))
    .transpose()?)
}

fn audit(
    s: &mut dyn Sql,
    now: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: &str,
    reason: &str,
    detail: &str,
) -> Result<()> {
    s.execute(
        "INSERT INTO audit_log (at, actor, action, target, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &args![rfc3339(now), actor, action, target, reason, detail],
    )?;
    Ok(())
}

fn insert_claim(
    s: &mut dyn Sql,
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
    let n: i64 = s
        .query_one("SELECT COUNT(*) FROM claims WHERE id LIKE 'console-%'", &[])?
        .get(0)?;
    let id = format!("console-{:04}", n + 1);
    s.execute(
        "INSERT INTO claims (id, text, lang, topic, source_url, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &args![id.as_str(), text, lang, topic, source_url, actor, rfc3339(now)],
    )?;
    audit(s, now, actor, "add_claim", &id, "", text)?;
    Ok(id)
}

fn load_centroids(s: &mut dyn Sql) -> Result<Vec<Centroid>> {
    s.query("SELECT id, centroid FROM clusters ORDER BY id", &[])?
        .iter()
        .map(|r| {
            Ok(Centroid {
                cluster: r.get(0)?,
                sum: tracker::from_blob(&r.get::<Vec<u8>>(1)?),
            })
        })
        .collect()
}

/// The rumour a post belongs to: the one already linked to the known claim the pipeline
/// matched (a question and an assertion of one claim embed apart, the claim joins them),
/// else the nearest by embedding, else a new one titled by the post's text. A matched
/// claim is stored (with its verdict and fact-check) and names a rumour that had none.
fn place_in_rumour(
    s: &mut dyn Sql,
    centroids: &mut Vec<Centroid>,
    text: &str,
    vector: &[f32],
    threshold: f32,
    claim: Option<&vigie_pipeline::contract::MatchedClaim>,
    now: DateTime<Utc>,
) -> Result<i64> {
    let by_claim: Option<i64> = match claim {
        Some(c) => s
            .query_opt(
                "SELECT id FROM clusters WHERE claim_id = ?1 ORDER BY id LIMIT 1",
                &args![&c.id],
            )?
            .map(|r| r.get(0))
            .transpose()?,
        None => None,
    };
    // A post matched to one claim never joins the rumour of another claim.
    let other_claims: std::collections::HashSet<i64> = match claim {
        Some(c) => s
            .query(
                "SELECT id FROM clusters WHERE claim_id IS NOT NULL AND claim_id != ?1",
                &args![&c.id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_, DbError>>()?,
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
            s.execute(
                "UPDATE clusters SET centroid = ?2 WHERE id = ?1",
                &args![c.cluster, tracker::to_blob(&c.sum)],
            )?;
            c.cluster
        }
        None => {
            let cluster: i64 = s
                .query_one(
                    "INSERT INTO clusters (title, centroid, created_at) VALUES (?1, ?2, ?3) RETURNING id",
                    &args![truncate(text, 120), tracker::to_blob(vector), rfc3339(now)],
                )?
                .get(0)?;
            centroids.push(Centroid {
                cluster,
                sum: vector.to_vec(),
            });
            cluster
        }
    };
    if let Some(claim) = claim {
        s.execute(
            "INSERT INTO claims (id, text, lang, topic, created_by, created_at) VALUES (?1, ?2, ?3, ?4, 'library', ?5)
             ON CONFLICT DO NOTHING",
            &args![&claim.id, &claim.text, &claim.lang, &claim.topic, rfc3339(now)],
        )?;
        // Records of older versions carry no verdict or link: the first that does fills them.
        s.execute(
            "UPDATE claims SET verdict = CASE WHEN verdict = '' THEN ?2 ELSE verdict END,
                               correction = CASE WHEN correction = '' THEN ?3 ELSE correction END,
                               source_url = CASE WHEN source_url = '' THEN ?4 ELSE source_url END
             WHERE id = ?1",
            &args![
                &claim.id,
                &claim.verdict,
                &claim.correction,
                &claim.source_url
            ],
        )?;
        s.execute(
            "UPDATE clusters SET title = CASE WHEN claim_id IS NULL THEN ?3 ELSE title END, claim_id = COALESCE(claim_id, ?2) WHERE id = ?1",
            &args![cluster, &claim.id, truncate(&claim.text, 120)],
        )?;
    }
    Ok(cluster)
}

/// A moderator confirmed an item as a rumour of `claim`: the item's cluster (made now if
/// the item had none, e.g. it was flagged only for privacy) takes the claim as its known
/// claim and its title, and leaves the `new` status.
fn link_rumour(
    s: &mut dyn Sql,
    item: &str,
    claim: &str,
    threshold: f32,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = s.query_one(
        "SELECT cluster_id, embedding, redacted_text FROM items WHERE id = ?1",
        &args![item],
    )?;
    let cluster = match row.get::<Option<i64>>(0)? {
        Some(c) => c,
        None => {
            let vector = row
                .get::<Option<Vec<u8>>>(1)?
                .map(|b| tracker::from_blob(&b))
                .unwrap_or_default();
            let text: String = row.get(2)?;
            let mut centroids = load_centroids(s)?;
            let cluster = place_in_rumour(s, &mut centroids, &text, &vector, threshold, None, now)?;
            s.execute(
                "UPDATE items SET cluster_id = ?2 WHERE id = ?1",
                &args![item, cluster],
            )?;
            cluster
        }
    };
    let claim_text: String = s
        .query_one("SELECT text FROM claims WHERE id = ?1", &args![claim])?
        .get(0)?;
    s.execute(
        "UPDATE clusters SET claim_id = COALESCE(claim_id, ?2),
                             title = CASE WHEN claim_id IS NULL THEN ?3 ELSE title END,
                             status = CASE WHEN status = 'new' THEN 'monitoring' ELSE status END
         WHERE id = ?1",
        &args![cluster, claim, truncate(&claim_text, 120)],
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

    /// A new, empty store on each engine the tests reach: SQLite in memory, and the
    /// PostgreSQL server of `VIGIE_TEST_POSTGRES` (a schema of its own per store).
    fn fresh_stores() -> Vec<Store> {
        test_db::fresh_stores()
    }

    fn stores_with(records: &[ScreenedRecord]) -> Vec<Store> {
        let stores = fresh_stores();
        for store in &stores {
            store
                .import(records, &LexicalEmbedder, "test", t("2024-05-01T00:00:00Z"))
                .unwrap();
        }
        stores
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
        for store in stores_with(&[
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
        ]) {
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
    }

    #[test]
    fn a_lock_keeps_others_out_until_it_expires() {
        for store in stores_with(&[record(
            "m1",
            "en",
            "The MMR vaccine causes autism",
            true,
            "2024-05-01T09:00:00Z",
        )]) {
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
    }

    #[test]
    fn decisions_need_a_reason_and_rumours_a_claim() {
        for store in stores_with(&[record(
            "m1",
            "fr",
            "Le vaccin ROR provoque l'autisme",
            true,
            "2024-05-01T09:00:00Z",
        )]) {
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
    }

    #[test]
    fn similar_posts_share_a_rumour_and_false_positives_leave_its_counts() {
        for store in stores_with(&[
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
        ]) {
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
        for store in stores_with(&[r]) {
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
        for store in stores_with(&[a, b]) {
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
        for store in stores_with(&[r]) {
            let view = &store.rumours().unwrap()[0];
            assert_eq!(view.first_seen.as_deref(), Some("2024-05-01T09:00:00Z"));
        }
    }

    #[test]
    fn the_audit_log_is_append_only() {
        for store in stores_with(&[record("m1", "en", "text", true, "2024-05-01T09:00:00Z")]) {
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
            assert!(store
                .execute_raw("UPDATE audit_log SET actor = 'mallory'")
                .is_err());
            assert!(store.execute_raw("DELETE FROM audit_log").is_err());
            assert_eq!(
                store.audit_log(10).unwrap().len(),
                2,
                "on {}",
                store.engine()
            );
        }
    }

    #[test]
    fn logins_make_sessions_and_failures_are_audited() {
        for store in fresh_stores() {
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
    }

    #[test]
    fn a_locked_account_does_not_sign_in_until_an_admin_unlocks_it() {
        for store in fresh_stores() {
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
    }

    #[test]
    fn labels_come_from_misinformation_decisions_only() {
        for store in stores_with(&[
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
        ]) {
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
        for store in stores_with(&[record("m1", "en", "text", true, "2024-05-01T09:00:00Z")]) {
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
}
