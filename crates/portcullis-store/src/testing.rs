//! Test helpers shared with other crates' tests (the server crate runs its
//! own suites against PostgreSQL too).
//!
//! Each PostgreSQL test gets a fresh schema and a URL whose connections use it
//! as `search_path`, so tests running in parallel (in one process or several)
//! never see each other's tables or migrations.
//!
//! ```no_run
//! # async fn t() {
//! use portcullis_store::{testing, Store};
//! let Some(base) = testing::postgres_base_url("PostgreSQL server tests") else { return };
//! let (url, schema) = testing::postgres_schema_url(&base).await.unwrap();
//! let store = Store::connect(&url).await.unwrap();
//! // ... test ...
//! store.close().await;
//! schema.drop_schema().await.unwrap();
//! # }
//! ```

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor, PgConnection};

use crate::error::{redact_url, scrub};
use crate::{Result, StoreError};

/// Environment variable holding the base PostgreSQL URL for tests,
/// e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_URL_ENV: &str = "PORTCULLIS_TEST_POSTGRES_URL";

/// When this environment variable is `1`, tests needing an external service
/// panic instead of skipping when it is not configured (used in CI so a
/// missing service cannot silently turn tests green).
pub const REQUIRE_SERVICES_ENV: &str = "PORTCULLIS_REQUIRE_SERVICES";

/// The base PostgreSQL URL from [`POSTGRES_URL_ENV`], or `None` after printing
/// `SKIPPED: <suite> (PORTCULLIS_TEST_POSTGRES_URL not set)` to stderr.
///
/// # Panics
/// If the variable is unset (or empty) while [`REQUIRE_SERVICES_ENV`] is `1`.
pub fn postgres_base_url(suite: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_SERVICES_ENV).as_deref() == Ok("1") {
                panic!("{suite}: {POSTGRES_URL_ENV} is not set but {REQUIRE_SERVICES_ENV}=1");
            }
            // Written to the stderr handle directly, not with `eprintln!`,
            // so libtest's output capture does not hide the skip.
            let line = format!("SKIPPED: {suite} ({POSTGRES_URL_ENV} not set)\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            None
        }
    }
}

/// Creates a fresh schema `portcullis_test_<random>` in the database of
/// `base` and returns a URL whose connections use it as `search_path`
/// (so `Store::connect(url)` migrates into it), plus a guard that drops the
/// schema.
///
/// Prefer `guard.drop_schema().await` at the end of the test (after
/// `Store::close`); if the guard is dropped instead (e.g. the test panicked),
/// it drops the schema synchronously on a helper thread, best effort.
pub async fn postgres_schema_url(base: &str) -> Result<(String, PostgresSchemaGuard)> {
    let schema = unique_schema_name();
    let mut conn = admin_connection(base).await?;
    conn.execute(format!(r#"CREATE SCHEMA "{schema}""#).as_str())
        .await?;
    let _ = conn.close().await;

    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let guard = PostgresSchemaGuard {
        base: base.to_string(),
        schema,
        dropped: false,
    };
    Ok((url, guard))
}

/// Owns a per-test PostgreSQL schema created by [`postgres_schema_url`] and
/// drops it (with everything in it) when the test is done.
#[derive(Debug)]
pub struct PostgresSchemaGuard {
    base: String,
    schema: String,
    dropped: bool,
}

impl PostgresSchemaGuard {
    /// The schema's name, e.g. for assertions or debugging leftovers.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the schema now (`DROP SCHEMA ... CASCADE`), reporting errors.
    pub async fn drop_schema(mut self) -> Result<()> {
        self.dropped = true;
        drop_schema_at(&self.base, &self.schema).await
    }
}

impl Drop for PostgresSchemaGuard {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (base, schema) = (self.base.clone(), self.schema.clone());
        // Drop cannot await, and may run inside a runtime: use a private
        // runtime on its own thread.
        let outcome = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(drop_schema_at(&base, &schema))
                .map_err(|e| e.to_string())
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: cannot drop test schema {}: {e}", self.schema),
            Err(_) => eprintln!("warning: cannot drop test schema {}: panic", self.schema),
        }
    }
}

async fn drop_schema_at(base: &str, schema: &str) -> Result<()> {
    let mut conn = admin_connection(base).await?;
    conn.execute(format!(r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#).as_str())
        .await?;
    let _ = conn.close().await;
    Ok(())
}

async fn admin_connection(base: &str) -> Result<PgConnection> {
    PgConnection::connect(base)
        .await
        .map_err(|e| StoreError::Connect {
            backend: "postgres",
            url: redact_url(base),
            message: scrub(&e.to_string(), base),
        })
}

/// `portcullis_test_<pid>_<random hex>`: lowercase identifier, unique across
/// threads and processes.
fn unique_schema_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(elapsed.as_nanos());
    }
    format!(
        "portcullis_test_{}_{:016x}",
        std::process::id(),
        hasher.finish()
    )
}
