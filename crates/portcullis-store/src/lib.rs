//! Portcullis persistent store.
//!
//! The gateway keeps its durable state (virtual API keys, users and teams,
//! versioned policy documents, the audit log, shadow-mode events and usage)
//! in an embedded SQLite database by default, or in PostgreSQL when several
//! instances share state. The CLI writes to the store directly while running
//! gateways poll cheap revision counters ([`Store::keys_revision`],
//! [`Store::identity_revision`], [`Store::policy_revision`]) and reload when
//! one changes, so the same SQLite file is routinely open in two processes at
//! once (WAL mode, busy timeout).
//!
//! One file per concept: `keys`, `users` (users and teams), `policies`,
//! `audit`, `shadow`, `usage`, `alerts` and `request_logs`, each with its records and its
//! methods.
//!
//! Design notes:
//! - One concrete pool per backend (no `sqlx::Any`), so each driver's types
//!   and error kinds are used directly.
//! - SQL is written once with `$1`-style placeholders, which both PostgreSQL
//!   and sqlx's SQLite driver accept; the private `with_pool!` macro expands the
//!   same query code for each backend.
//! - Queries are built at runtime (no compile-time `query!`), so building the
//!   crate needs no database; migrations are embedded with `sqlx::migrate!`
//!   from `migrations/sqlite` and `migrations/postgres`.

use sqlx::{PgPool, SqlitePool};

/// Runs the same query code against whichever pool the store holds; `$pool`
/// is bound to the concrete `SqlitePool` or `PgPool` inside `$body`.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}

mod alerts;
mod audit;
pub mod audit_chain;
mod batch;
mod connect;
mod error;
mod filter;
mod keys;
mod policies;
mod request_logs;
mod shadow;
pub mod testing;
mod usage;
mod users;

pub use alerts::{AlertQuery, AlertRecord, AlertWrite, NewAlert};
pub use audit::{AuditQuery, AuditRecord, NewAuditEntry, AUDIT_OUTCOMES};
pub use audit_chain::{ChainHead, ChainVerdict, GENESIS_HASH};
pub use error::{redact_url, StoreError};
pub use keys::{KeyRecord, NewKey};
pub use policies::{PolicyState, PolicyVersion, PolicyVersionSummary};
pub use request_logs::{
    AccessSummary, GuardrailEntry, NewRequestLog, RequestLogQuery, RequestLogRecord,
};
pub use shadow::{NewShadowEvent, ShadowEventRecord, ShadowReport};
pub use usage::{NewUsage, UsageQuery, UsageRow};
pub use users::{NewUser, TeamRecord, UserRecord};

/// Result type of every store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Handle to the opened, migrated store.
///
/// Cheap to clone (the pools are reference counted); share one per process.
/// Every method is safe to call concurrently.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

/// The concrete connection pool behind a [`Store`].
#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Which backend is in use, for logs and `/readyz` details:
    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Cheap liveness check (`SELECT 1`) used by `/readyz`, so a gateway whose
    /// database went away stops reporting ready.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Current value of the revision counter `name` (a row of `revisions`).
    async fn revision(&self, name: &str) -> Result<i64> {
        let sql = "SELECT value FROM revisions WHERE name = $1";
        let value: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(sql).bind(name).fetch_optional(pool).await?
        });
        value.ok_or_else(|| {
            StoreError::Corrupt(format!("missing `{name}` row in table `revisions`"))
        })
    }

    /// Closes every pooled connection and waits for them to finish. Call on
    /// shutdown so SQLite checkpoints its WAL, and in tests before dropping a
    /// PostgreSQL schema. Later calls on this store (or its clones) fail.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}
