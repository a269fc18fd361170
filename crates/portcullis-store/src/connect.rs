//! Opening a store from its URL: backend selection, SQLite file setup,
//! connection pools and migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::{redact_url, scrub};
use crate::{Backend, Result, Store, StoreError};

/// SQLite schema migrations, embedded at compile time.
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
/// PostgreSQL schema migrations, embedded at compile time.
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite writer waits for another process (the CLI, a second
/// gateway) to release its lock before failing with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long acquiring a pooled connection may take, including (re)connecting.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens of a SQLite file tried before "database is locked" is an error (see `connect_sqlite`).
const SQLITE_OPEN_ATTEMPTS: u32 = 5;

/// SQLITE_BUSY ("database is locked").
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("5"))
}

impl Store {
    /// Opens (creating when needed) and migrates the store named by `url`.
    ///
    /// - `sqlite://<path>` / `sqlite:<path>` (e.g. the default
    ///   `sqlite://portcullis-data/portcullis.db`): creates the parent
    ///   directory and the file if missing, uses WAL journal mode and a 5 s
    ///   busy timeout so the CLI and a running gateway can share the file.
    ///   `sqlite::memory:` gives a throwaway in-memory store.
    /// - `postgres://...` / `postgresql://...`: connects to PostgreSQL.
    ///
    /// Pending migrations are applied before returning. Errors never contain
    /// the password of the URL.
    pub async fn connect(url: &str) -> Result<Store> {
        let lower = url.trim_start().to_ascii_lowercase();
        let store = if lower.starts_with("sqlite:") {
            connect_sqlite(url, &lower).await?
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            connect_postgres(url).await?
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            });
        };
        tracing::info!(backend = store.backend(), url = %redact_url(url), "store opened");
        Ok(store)
    }
}

async fn connect_sqlite(url: &str, lower: &str) -> Result<Store> {
    let options =
        SqliteConnectOptions::from_str(url.trim_start()).map_err(|e| StoreError::InvalidUrl {
            url: redact_url(url),
            message: scrub(&e.to_string(), url),
        })?;
    let in_memory = lower.contains(":memory:") || lower.contains("mode=memory");
    if !in_memory {
        let parent = options.get_filename().parent();
        if let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
    }
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // Statement journals of the batched multi-row inserts (and sorts) stay in memory
        // instead of a temporary file created and unlinked per batch.
        .pragma("temp_store", "memory")
        .foreign_keys(true);
    let mut pool_options = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(ACQUIRE_TIMEOUT);
    if in_memory {
        // An in-memory database lives only while a connection is open.
        pool_options = pool_options
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    // Opening a fresh file switches it to WAL, which upgrades a read lock to a write lock.
    // When another process is doing the same, SQLite answers "database is locked" at once
    // instead of waiting (a waiting upgrade could deadlock), so the busy timeout does not
    // apply: the open is retried a few times instead.
    let mut attempt = 1;
    let pool = loop {
        match pool_options.clone().connect_with(options.clone()).await {
            Ok(pool) => break pool,
            Err(e) if attempt < SQLITE_OPEN_ATTEMPTS && is_sqlite_busy(&e) => {
                tracing::debug!(error = %e, attempt, "sqlite open found the file locked, retrying");
                tokio::time::sleep(Duration::from_millis(20 * attempt as u64)).await;
                attempt += 1;
            }
            Err(e) => return Err(connect_error("sqlite", url, &e)),
        }
    };

    // Two processes opening a fresh file at the same moment can race on the
    // first migration (SQLite has no migration lock): the loser fails with
    // "table already exists". Running the migrator again then sees the
    // winner's work and succeeds.
    if let Err(first) = SQLITE_MIGRATOR.run(&pool).await {
        tracing::debug!(error = %first, "sqlite migration failed, retrying once");
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Err(e) = SQLITE_MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(migrate_error("sqlite", url, &e));
        }
    }
    Ok(Store {
        backend: Backend::Sqlite(pool),
    })
}

async fn connect_postgres(url: &str) -> Result<Store> {
    let options =
        PgConnectOptions::from_str(url.trim_start()).map_err(|e| StoreError::InvalidUrl {
            url: redact_url(url),
            message: scrub(&e.to_string(), url),
        })?;
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| connect_error("postgres", url, &e))?;
    // sqlx serialises concurrent migrators with an advisory lock.
    if let Err(e) = POSTGRES_MIGRATOR.run(&pool).await {
        pool.close().await;
        return Err(migrate_error("postgres", url, &e));
    }
    Ok(Store {
        backend: Backend::Postgres(pool),
    })
}

fn connect_error(backend: &'static str, url: &str, err: &sqlx::Error) -> StoreError {
    StoreError::Connect {
        backend,
        url: redact_url(url),
        message: scrub(&err.to_string(), url),
    }
}

fn migrate_error(
    backend: &'static str,
    url: &str,
    err: &sqlx::migrate::MigrateError,
) -> StoreError {
    StoreError::Migrate {
        backend,
        url: redact_url(url),
        message: scrub(&err.to_string(), url),
    }
}
