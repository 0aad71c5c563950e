//! The two databases the console runs on, behind one small SQL interface.
//!
//! The store writes each query once, in the SQL both engines speak (`?N` parameters,
//! `RETURNING`, `ON CONFLICT DO NOTHING`); this module binds the parameters, rewrites
//! `?N` to PostgreSQL's `$N`, and reads rows into plain [`Value`]s.
//!
//! Write transactions are serialised on both: SQLite has one writer by design
//! (`BEGIN IMMEDIATE`), and on PostgreSQL every write transaction first takes one
//! transaction-scoped advisory lock, so two console instances on one database see each
//! other's claims, rumour centroids and alert cool-downs exactly as one instance would.
//! Reads never wait for it: PostgreSQL reads come from a pool of connections.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres_native_tls::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;

/// The advisory lock every PostgreSQL write transaction holds ("vigie" in ASCII).
const WRITE_LOCK: i64 = 0x0076_6967_6965;

/// Connections a console instance keeps to PostgreSQL at most.
const POOL_SIZE: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Shown with its causes ("db error" alone says nothing), which are therefore not
    /// also given as this error's source.
    #[error("PostgreSQL: {}", with_causes(.0))]
    Postgres(postgres::Error),
    #[error("PostgreSQL connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("TLS for PostgreSQL: {0}")]
    Tls(#[from] native_tls::Error),
    #[error("column {column}: expected {expected}, found {found}")]
    Type {
        column: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error("column {0} is not in the row")]
    Column(usize),
    #[error("column {column} has the unsupported type {ty}")]
    Unsupported { column: usize, ty: String },
    #[error("the database is closed")]
    Closed,
    #[error("the query returned no row")]
    NoRow,
    #[error(
        "unknown database {0:?}: use sqlite:PATH, a file path, or postgres://USER@HOST:PORT/DB"
    )]
    Url(String),
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> DbError {
        DbError::Postgres(e)
    }
}

fn with_causes(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One value, as both engines store it (booleans are integers, times RFC 3339 text).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Real(f64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Value {
        v.as_deref().into()
    }
}

/// Query parameters: `args![a, b]` is `[Value::from(a), Value::from(b)]`.
macro_rules! args {
    ($($e:expr),* $(,)?) => { [$($crate::store::db::Value::from($e)),*] };
}
pub(crate) use args;

/// A row of a result, read by column position.
#[derive(Debug)]
pub struct Row(Vec<Value>);

impl Row {
    pub fn get<T: FromValue>(&self, column: usize) -> Result<T, DbError> {
        let value = self.0.get(column).ok_or(DbError::Column(column))?;
        T::from_value(value, column)
    }

    pub fn values(&self) -> &[Value] {
        &self.0
    }
}

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: &Value, column: usize) -> Result<Self, DbError>;
}

fn mismatch<T>(value: &Value, column: usize, expected: &'static str) -> Result<T, DbError> {
    Err(DbError::Type {
        column,
        expected,
        found: value.kind(),
    })
}

impl FromValue for i64 {
    fn from_value(value: &Value, column: usize) -> Result<Self, DbError> {
        match value {
            Value::Int(v) => Ok(*v),
            other => mismatch(other, column, "integer"),
        }
    }
}
impl FromValue for bool {
    fn from_value(value: &Value, column: usize) -> Result<Self, DbError> {
        i64::from_value(value, column).map(|v| v != 0)
    }
}
impl FromValue for f64 {
    fn from_value(value: &Value, column: usize) -> Result<Self, DbError> {
        match value {
            Value::Real(v) => Ok(*v),
            Value::Int(v) => Ok(*v as f64),
            other => mismatch(other, column, "real"),
        }
    }
}
impl FromValue for String {
    fn from_value(value: &Value, column: usize) -> Result<Self, DbError> {
        match value {
            Value::Text(v) => Ok(v.clone()),
            other => mismatch(other, column, "text"),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(value: &Value, column: usize) -> Result<Self, DbError> {
        match value {
            Value::Blob(v) => Ok(v.clone()),
            other => mismatch(other, column, "blob"),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value, column: usize) -> Result<Self, DbError> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other, column).map(Some),
        }
    }
}

/// A connection, or a transaction on one, that runs the store's SQL.
pub trait Sql {
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, DbError>;
    /// Runs a query; every row.
    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, DbError>;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, args: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }

    /// The first row, which must exist.
    fn query_one(&mut self, sql: &str, args: &[Value]) -> Result<Row, DbError> {
        self.query_opt(sql, args)?.ok_or(DbError::NoRow)
    }
}

// ---- SQLite -----------------------------------------------------------------------

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

struct SqliteSql<'c>(&'c rusqlite::Connection);

impl Sql for SqliteSql<'_> {
    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, DbError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(args))? as u64)
    }

    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, DbError> {
        use rusqlite::types::ValueRef;
        let mut stmt = self.0.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(v) => Value::Blob(v.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

// ---- PostgreSQL -------------------------------------------------------------------

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // PostgreSQL types every parameter from its place in the query: convert to it.
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Real(v) => match *ty {
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Text(v) => v.to_sql(ty, out),
            Value::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// `?N` (SQLite's numbered parameters) to `$N`, outside quoted text.
fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

struct PgSql<'c, C: postgres::GenericClient>(&'c mut C);

impl<C: postgres::GenericClient> PgSql<'_, C> {
    fn bind(args: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
        args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
    }
}

impl<C: postgres::GenericClient> Sql for PgSql<'_, C> {
    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, DbError> {
        Ok(self
            .0
            .execute(postgres_placeholders(sql).as_str(), &Self::bind(args))?)
    }

    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, DbError> {
        let rows = self
            .0
            .query(postgres_placeholders(sql).as_str(), &Self::bind(args))?;
        rows.iter().map(pg_row).collect()
    }
}

fn pg_row(row: &postgres::Row) -> Result<Row, DbError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = match *ty {
            Type::INT8 => row.try_get::<_, Option<i64>>(i)?.into(),
            Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(i64::from).into(),
            Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(i64::from).into(),
            Type::BOOL => row.try_get::<_, Option<bool>>(i)?.into(),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.into(),
            Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.into(),
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.into(),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                row.try_get::<_, Option<String>>(i)?.into()
            }
            _ => {
                return Err(DbError::Unsupported {
                    column: i,
                    ty: ty.to_string(),
                })
            }
        };
        values.push(value);
    }
    Ok(Row(values))
}

// ---- the database -----------------------------------------------------------------

/// Store calls block: on a file lock (SQLite) or a network round trip (PostgreSQL, whose
/// synchronous client runs its own small runtime). Called from an async task of a
/// multi-thread runtime (the console's web handlers), the call runs under
/// `block_in_place`, which hands that worker's other tasks to another thread and lets
/// the PostgreSQL client block here; elsewhere (the blocking pool, the CLI) it runs as
/// is. A current-thread runtime cannot do this: its callers use `spawn_blocking`.
pub(crate) fn off_the_async_workers<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

type Pool = r2d2::Pool<PostgresConnectionManager<MakeTlsConnector>>;
type PooledClient = r2d2::PooledConnection<PostgresConnectionManager<MakeTlsConnector>>;

/// The pool of PostgreSQL connections. Closing a connection blocks (it says goodbye to
/// the server), so the pool is dropped off the async workers too.
pub struct PgPool(Option<Pool>);

impl PgPool {
    fn get(&self) -> Result<PooledClient, DbError> {
        let pool = self.0.as_ref().ok_or(DbError::Closed)?;
        Ok(pool.get()?)
    }
}

impl Drop for PgPool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            off_the_async_workers(|| drop(pool));
        }
    }
}

/// Which engine, and how to reach it.
pub enum Db {
    /// One connection: SQLite serialises writers anyway, and an in-memory database
    /// exists only on its own connection.
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(PgPool),
}

/// How a database URL names its engine.
pub enum Location<'a> {
    Sqlite(&'a str),
    SqliteMemory,
    Postgres(&'a str),
}

impl<'a> Location<'a> {
    /// `postgres://…` or `postgresql://…`; `sqlite:PATH` or `sqlite://PATH`;
    /// `sqlite::memory:`; anything else is a SQLite file path.
    pub fn parse(url: &'a str) -> Result<Location<'a>, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        match path {
            ":memory:" => Ok(Location::SqliteMemory),
            "" => Err(DbError::Url(url.to_string())),
            p if p.contains("://") => Err(DbError::Url(url.to_string())),
            p => Ok(Location::Sqlite(p)),
        }
    }
}

/// A database URL fit for logs and messages: a PostgreSQL password (in the user part or
/// a `password=` parameter) becomes `***`.
pub fn without_password(url: &str) -> String {
    let Location::Postgres(url) = Location::parse(url).unwrap_or(Location::Sqlite(url)) else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl Db {
    pub fn sqlite(conn: rusqlite::Connection) -> Result<Db, DbError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        // WAL lets `vigie console import` write while the server reads; in-memory
        // databases answer "memory" here, which is fine.
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        Ok(Db::Sqlite(Mutex::new(conn)))
    }

    /// A pool of connections to the server at `url` (TLS when the server offers it, as
    /// `sslmode` in the URL asks).
    pub fn postgres(url: &str) -> Result<Db, DbError> {
        off_the_async_workers(|| Self::postgres_here(url))
    }

    fn postgres_here(url: &str) -> Result<Db, DbError> {
        let config = postgres::Config::from_str(url)?;
        let tls = MakeTlsConnector::new(native_tls::TlsConnector::new()?);
        // One connection first, so that a wrong address or password is reported with its
        // cause at once rather than as the pool's time-out.
        config.connect(tls.clone())?;
        let manager = PostgresConnectionManager::new(config, tls);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Db::Postgres(PgPool(Some(pool))))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    fn sqlite_conn(
        m: &Mutex<rusqlite::Connection>,
    ) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on a connection outside any transaction (reads, single statements).
    pub fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, E>,
    ) -> Result<T, E> {
        off_the_async_workers(|| self.read_here(f))
    }

    fn read_here<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Db::Sqlite(m) => f(&mut SqliteSql(&Self::sqlite_conn(m))),
            Db::Postgres(pool) => {
                let mut client = pool.get()?;
                f(&mut PgSql(&mut *client))
            }
        }
    }

    /// Runs `f` in a write transaction, committed when `f` returns `Ok`, rolled back
    /// otherwise. Write transactions never interleave (see the module's notes).
    pub fn write<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, E>,
    ) -> Result<T, E> {
        off_the_async_workers(|| self.write_here(f))
    }

    fn write_here<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Db::Sqlite(m) => {
                let mut conn = Self::sqlite_conn(m);
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(DbError::from)?;
                let out = f(&mut SqliteSql(&tx))?;
                tx.commit().map_err(DbError::from)?;
                Ok(out)
            }
            Db::Postgres(pool) => {
                let mut client = pool.get()?;
                let mut tx = client.transaction().map_err(DbError::from)?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                    .map_err(DbError::from)?;
                let out = f(&mut PgSql(&mut tx))?;
                tx.commit().map_err(DbError::from)?;
                Ok(out)
            }
        }
    }

    /// Applies the migrations not applied yet, each in its own transaction; returns how
    /// many the database has now. SQLite counts them in `PRAGMA user_version`,
    /// PostgreSQL in the `vigie_schema` table (under the write lock, so two instances
    /// starting together migrate once).
    pub fn migrate(&self, sqlite: &[&str], postgres: &[&str]) -> Result<usize, DbError> {
        off_the_async_workers(|| self.migrate_here(sqlite, postgres))
    }

    fn migrate_here(&self, sqlite: &[&str], postgres: &[&str]) -> Result<usize, DbError> {
        match self {
            Db::Sqlite(m) => {
                let mut conn = Self::sqlite_conn(m);
                let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                for (i, sql) in sqlite.iter().enumerate().skip(done) {
                    let tx = conn.transaction()?;
                    tx.execute_batch(sql)?;
                    tx.pragma_update(None, "user_version", i + 1)?;
                    tx.commit()?;
                }
                Ok(sqlite.len().max(done))
            }
            Db::Postgres(pool) => {
                let mut client = pool.get()?;
                loop {
                    let mut tx = client.transaction()?;
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
                    let exists: bool = tx
                        .query_one("SELECT to_regclass('vigie_schema') IS NOT NULL", &[])?
                        .get(0);
                    if !exists {
                        tx.batch_execute("CREATE TABLE vigie_schema (version BIGINT NOT NULL)")?;
                    }
                    let row =
                        tx.query_one("SELECT COALESCE(MAX(version), 0) FROM vigie_schema", &[])?;
                    let done = usize::try_from(row.get::<_, i64>(0)).unwrap_or(0);
                    let Some(sql) = postgres.get(done) else {
                        return Ok(done);
                    };
                    tx.batch_execute(sql)?;
                    tx.execute(
                        "INSERT INTO vigie_schema (version) VALUES ($1)",
                        &[&((done + 1) as i64)],
                    )?;
                    tx.commit()?;
                }
            }
        }
    }

    /// How many migrations the database has.
    pub fn schema_version(&self) -> Result<usize, DbError> {
        match self {
            Db::Sqlite(m) => {
                Ok(Self::sqlite_conn(m).query_row("PRAGMA user_version", [], |r| r.get(0))?)
            }
            Db::Postgres(_) => self.read(|sql| {
                let v: i64 = sql
                    .query_one("SELECT COALESCE(MAX(version), 0) FROM vigie_schema", &[])?
                    .get(0)?;
                Ok(usize::try_from(v).unwrap_or(0))
            }),
        }
    }

    /// The store's tables (for the privacy tests' dump of every text column).
    pub fn tables(&self) -> Result<Vec<String>, DbError> {
        let sql = match self {
            Db::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'table'",
            Db::Postgres(_) => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            }
        };
        self.read(|s| s.query(sql, &[])?.iter().map(|r| r.get(0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            postgres_placeholders("SELECT '?1', \"a?2\" FROM t WHERE a = ?1 AND b = ?12 OR c ?"),
            "SELECT '?1', \"a?2\" FROM t WHERE a = $1 AND b = $12 OR c ?"
        );
    }

    #[test]
    fn shown_urls_keep_no_password() {
        assert_eq!(
            without_password("postgres://vigie:s3cret@db.example:5432/console?sslmode=require"),
            "postgres://vigie:***@db.example:5432/console?sslmode=require"
        );
        assert_eq!(
            without_password("postgresql://vigie@h/db?user=x&password=s3cret"),
            "postgresql://vigie@h/db?user=x&password=***"
        );
        assert_eq!(without_password("postgres://h"), "postgres://h");
        assert_eq!(without_password("sqlite:console.db"), "sqlite:console.db");
    }

    #[test]
    fn urls_name_their_engine() {
        assert!(matches!(
            Location::parse("postgres://u@h/db"),
            Ok(Location::Postgres(_))
        ));
        assert!(matches!(
            Location::parse("postgresql://u@h/db"),
            Ok(Location::Postgres(_))
        ));
        assert!(matches!(
            Location::parse("sqlite:console.db"),
            Ok(Location::Sqlite("console.db"))
        ));
        assert!(matches!(
            Location::parse("sqlite:///tmp/c.db"),
            Ok(Location::Sqlite("/tmp/c.db"))
        ));
        assert!(matches!(
            Location::parse("sqlite::memory:"),
            Ok(Location::SqliteMemory)
        ));
        assert!(matches!(
            Location::parse("out/console.db"),
            Ok(Location::Sqlite("out/console.db"))
        ));
        assert!(matches!(
            Location::parse("mysql://h/db"),
            Err(DbError::Url(_))
        ));
        assert!(matches!(Location::parse("sqlite:"), Err(DbError::Url(_))));
    }

    #[test]
    fn rows_read_what_was_written_and_name_type_mismatches() {
        let db = Db::sqlite(rusqlite::Connection::open_in_memory().unwrap()).unwrap();
        db.write(|s| {
            s.execute("CREATE TABLE t (a INTEGER, b REAL, c TEXT, d BLOB)", &[])?;
            s.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
                &args![7_i64, 0.5_f64, "x", vec![1_u8, 2]],
            )?;
            Ok::<_, DbError>(())
        })
        .unwrap();
        let row = db
            .read(|s| s.query_one("SELECT a, b, c, d, NULL FROM t", &[]))
            .unwrap();
        assert_eq!(row.get::<i64>(0).unwrap(), 7);
        assert!(row.get::<bool>(0).unwrap());
        assert_eq!(row.get::<f64>(1).unwrap(), 0.5);
        assert_eq!(row.get::<String>(2).unwrap(), "x");
        assert_eq!(row.get::<Vec<u8>>(3).unwrap(), vec![1, 2]);
        assert_eq!(row.get::<Option<String>>(4).unwrap(), None);
        assert!(matches!(
            row.get::<i64>(2),
            Err(DbError::Type { column: 2, .. })
        ));
        assert!(matches!(row.get::<i64>(9), Err(DbError::Column(9))));
    }

    #[test]
    fn a_failed_write_rolls_back() {
        let db = Db::sqlite(rusqlite::Connection::open_in_memory().unwrap()).unwrap();
        db.write(|s| s.execute("CREATE TABLE t (a INTEGER)", &[]).map(|_| ()))
            .unwrap();
        let failed: Result<(), DbError> = db.write(|s| {
            s.execute("INSERT INTO t VALUES (1)", &[])?;
            Err(DbError::NoRow)
        });
        assert!(failed.is_err());
        let n: i64 = db
            .read(|s| s.query_one("SELECT COUNT(*) FROM t", &[]))
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(n, 0);
    }
}
