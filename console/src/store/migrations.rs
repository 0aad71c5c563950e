//! Schema changes of the console's database, applied in order at start.
//!
//! The two engines get the same tables, step for step (migration N is the same change
//! on both), in each one's own types: PostgreSQL's integers are `BIGINT` (the store
//! reads every integer as i64), blobs `BYTEA`, and the text columns that are sorted or
//! compared (ids, RFC 3339 times) use the byte order of `COLLATE "C"`, as SQLite does,
//! whatever the database's locale. Never edit a migration that has shipped: add one.

/// SQLite; `PRAGMA user_version` counts those applied.
pub const SQLITE: &[&str] = &[
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

/// PostgreSQL; the `vigie_schema` table counts those applied.
pub const POSTGRES: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('moderator', 'staff', 'admin')),
    password_hash TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE TABLE sessions (
    token_digest TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE claims (
    id TEXT COLLATE "C" PRIMARY KEY,
    text TEXT NOT NULL,
    lang TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'false',
    source_url TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE TABLE clusters (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'monitoring', 'debunked', 'responded')),
    claim_id TEXT COLLATE "C" REFERENCES claims(id),
    centroid BYTEA NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE TABLE items (
    id TEXT COLLATE "C" PRIMARY KEY,
    lang TEXT COLLATE "C" NOT NULL,
    queue TEXT COLLATE "C" NOT NULL,
    priority BIGINT NOT NULL,
    misinformation BIGINT NOT NULL,
    risk_score DOUBLE PRECISION,
    redacted_text TEXT NOT NULL,
    channel TEXT NOT NULL,
    country TEXT,
    seen_at TEXT COLLATE "C" NOT NULL,
    record TEXT NOT NULL,
    embedding BYTEA,
    cluster_id BIGINT REFERENCES clusters(id),
    imported_at TEXT COLLATE "C" NOT NULL,
    locked_by TEXT,
    lock_expires_at BIGINT,
    decision TEXT,
    decision_reason TEXT,
    decided_by TEXT,
    decided_at TEXT COLLATE "C",
    claim_id TEXT COLLATE "C" REFERENCES claims(id)
);
CREATE INDEX items_open ON items (decision, priority DESC, seen_at);
CREATE INDEX items_cluster ON items (cluster_id);
CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT COLLATE "C" NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"#,
    r#"
ALTER TABLE users ADD COLUMN locked_at TEXT;
"#,
    r#"
CREATE TABLE decision_outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    item_id TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    sent_at TEXT COLLATE "C"
);
CREATE INDEX decision_outbox_pending ON decision_outbox (seq) WHERE sent_at IS NULL;
"#,
    r#"
CREATE TABLE signals (
    id TEXT COLLATE "C" PRIMARY KEY,
    cluster_id BIGINT REFERENCES clusters(id),
    lang TEXT COLLATE "C" NOT NULL,
    country TEXT,
    channel TEXT NOT NULL,
    stance TEXT,
    seen_at TEXT COLLATE "C" NOT NULL,
    redacted_text TEXT NOT NULL,
    imported_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX signals_cluster ON signals (cluster_id);
ALTER TABLE items ADD COLUMN stance TEXT;
ALTER TABLE items ADD COLUMN signal BIGINT NOT NULL DEFAULT 0;
ALTER TABLE claims ADD COLUMN verdict TEXT NOT NULL DEFAULT '';
ALTER TABLE claims ADD COLUMN correction TEXT NOT NULL DEFAULT '';
CREATE TABLE alerts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id BIGINT NOT NULL REFERENCES clusters(id),
    rule TEXT COLLATE "C" NOT NULL,
    raised_at TEXT COLLATE "C" NOT NULL,
    figures TEXT NOT NULL,
    delivered_at TEXT COLLATE "C",
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT COLLATE "C",
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alerts_rumour ON alerts (cluster_id, rule, raised_at);
"#,
];
