//! Stores for tests, on every engine the test run reaches.
//!
//! SQLite is always there. PostgreSQL is when `VIGIE_TEST_POSTGRES` holds a server's URL
//! (`scripts/test` starts one on a loopback port): each store then gets a schema of its
//! own in that database, so tests run side by side without seeing each other's rows.
//! `VIGIE_REQUIRE_POSTGRES=1` turns a missing server into a failure, so a test run that
//! should cover PostgreSQL cannot pass on SQLite alone.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Store;

/// The environment variable with the test server's URL.
pub const URL_VAR: &str = "VIGIE_TEST_POSTGRES";

/// The test server's URL, if this run has one.
pub fn postgres_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("VIGIE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "VIGIE_REQUIRE_POSTGRES=1 but {URL_VAR} is not set: start PostgreSQL (scripts/test does)"
            );
            None
        }
    }
}

/// The URL of a new, empty schema on the test server: every connection made with it
/// works in that schema. Panics when the server cannot be reached (a test fixture).
pub fn fresh_postgres_url(base: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    );
    super::db::off_the_async_workers(|| {
        let mut client = postgres::Client::connect(base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL ({URL_VAR}): {e}"));
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("creating schema {schema}: {e}"));
    });
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

/// A new store on each engine: SQLite in memory, then PostgreSQL when there is one.
pub fn fresh_stores() -> Vec<Store> {
    let mut stores = vec![Store::open_in_memory().expect("an in-memory SQLite store")];
    if let Some(base) = postgres_url() {
        let url = fresh_postgres_url(&base);
        stores.push(Store::connect(&url).expect("a PostgreSQL store"));
    }
    stores
}
