//! Versioned security policy documents: an immutable, gap-free history of
//! versions, the active/shadow pointers, and the `policy` revision counter.
//!
//! There is deliberately no API to update or delete a version (and the
//! migration installs triggers refusing it): a rollback activates an older
//! version, it never rewrites history.

use crate::{Result, Store, StoreError};

/// Bumped in the same transaction as every change to policy versions or the
/// policy state. Taking this row lock first also serialises concurrent
/// policy writers, which is what makes version numbering race-free.
const BUMP_POLICY_REVISION: &str = "UPDATE revisions SET value = value + 1 WHERE name = 'policy'";

/// Whether policy version `$version` exists, inside transaction `$tx`.
macro_rules! version_exists {
    ($tx:expr, $version:expr) => {{
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM policy_versions WHERE version = $1")
                .bind($version)
                .fetch_one($tx)
                .await?;
        count > 0
    }};
}

/// One stored policy version, document included.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct PolicyVersion {
    /// Version number: 1, 2, 3, ... in append order, without gaps.
    pub version: i64,
    /// The policy document exactly as applied (YAML text).
    pub document: String,
    /// Hash of the document as computed by the policy crate (canonical hash).
    pub hash: String,
    /// Who appended it (user id, key id or `cli`).
    pub author: String,
    /// Free-text comment; empty when not given.
    pub comment: String,
    /// Append time, unix seconds.
    pub created_at: i64,
}

/// A policy version without its document, for history listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct PolicyVersionSummary {
    /// Version number.
    pub version: i64,
    /// Hash of the document.
    pub hash: String,
    /// Who appended it.
    pub author: String,
    /// Free-text comment.
    pub comment: String,
    /// Append time, unix seconds.
    pub created_at: i64,
}

/// Which version is enforced and which one runs in shadow mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, sqlx::FromRow)]
pub struct PolicyState {
    /// The enforced version; `None` until a version is first activated.
    pub active_version: Option<i64>,
    /// The version evaluated next to the active one without being enforced.
    pub shadow_version: Option<i64>,
    /// When shadow mode started for `shadow_version`, unix seconds.
    pub shadow_started_at: Option<i64>,
}

impl Store {
    /// Appends an immutable policy version and bumps the policy revision in
    /// one transaction; returns its number (`max + 1`, starting at 1).
    ///
    /// Race-safe: concurrent appenders (in this process or others) are
    /// serialised on the revision row, so numbers are unique and gap-free.
    /// Appending a document identical to an earlier one still creates a new
    /// version. Appending does not activate it (see [`Store::activate_policy`]).
    pub async fn append_policy_version(
        &self,
        document: &str,
        hash: &str,
        author: &str,
        comment: &str,
        now: i64,
    ) -> Result<i64> {
        let insert = "INSERT INTO policy_versions \
                      (version, document, hash, author, comment, created_at) \
                      SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4, $5 \
                      FROM policy_versions \
                      RETURNING version";
        let version: i64 = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Lock first (see BUMP_POLICY_REVISION), then read the maximum.
            sqlx::query(BUMP_POLICY_REVISION).execute(&mut *tx).await?;
            let version: i64 = sqlx::query_scalar(insert)
                .bind(document)
                .bind(hash)
                .bind(author)
                .bind(comment)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            version
        });
        Ok(version)
    }

    /// One policy version with its document, or `None` if it does not exist.
    pub async fn get_policy_version(&self, version: i64) -> Result<Option<PolicyVersion>> {
        let sql = "SELECT version, document, hash, author, comment, created_at \
                   FROM policy_versions WHERE version = $1";
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, PolicyVersion>(sql).bind(version).fetch_optional(pool).await?
        }))
    }

    /// Every policy version without its document, oldest (version 1) first.
    pub async fn list_policy_versions(&self) -> Result<Vec<PolicyVersionSummary>> {
        let sql = "SELECT version, hash, author, comment, created_at \
                   FROM policy_versions ORDER BY version";
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, PolicyVersionSummary>(sql).fetch_all(pool).await?
        }))
    }

    /// The active and shadow version pointers.
    pub async fn policy_state(&self) -> Result<PolicyState> {
        let sql = "SELECT active_version, shadow_version, shadow_started_at \
                   FROM policy_state WHERE id = 1";
        let state: Option<PolicyState> = with_pool!(self, pool => {
            sqlx::query_as::<_, PolicyState>(sql).fetch_optional(pool).await?
        });
        state.ok_or_else(|| StoreError::Corrupt("missing row in table `policy_state`".into()))
    }

    /// Makes `version` the enforced policy (apply, promote and rollback all
    /// end here) and bumps the policy revision, in one transaction. If
    /// `version` was the shadow version, shadow mode ends (shadow cleared).
    ///
    /// Returns [`StoreError::NotFound`] and changes nothing if no such
    /// version exists. Activating the already active version is allowed (it
    /// still bumps the revision).
    pub async fn activate_policy(&self, version: i64) -> Result<()> {
        let update = "UPDATE policy_state SET active_version = $1, \
                      shadow_started_at = CASE WHEN shadow_version = $1 THEN NULL \
                                               ELSE shadow_started_at END, \
                      shadow_version = CASE WHEN shadow_version = $1 THEN NULL \
                                            ELSE shadow_version END \
                      WHERE id = 1";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_POLICY_REVISION).execute(&mut *tx).await?;
            if !version_exists!(&mut *tx, version) {
                tx.rollback().await?;
                return Err(not_found(version));
            }
            sqlx::query(update).bind(version).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Starts shadow mode for `Some(version)` (evaluated on live traffic next
    /// to the active version, never enforced; `shadow_started_at = now`) or
    /// ends it with `None` (discard). Bumps the policy revision in the same
    /// transaction.
    ///
    /// Setting the current shadow version again restarts it at `now`.
    /// Errors: [`StoreError::NotFound`] if the version does not exist,
    /// [`StoreError::Invalid`] if it is the active version (nothing to
    /// compare); both change nothing.
    pub async fn set_shadow_policy(&self, version: Option<i64>, now: i64) -> Result<()> {
        let update = "UPDATE policy_state SET shadow_version = $1, shadow_started_at = $2 \
                      WHERE id = 1";
        let active = "SELECT active_version FROM policy_state WHERE id = 1";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_POLICY_REVISION).execute(&mut *tx).await?;
            if let Some(v) = version {
                if !version_exists!(&mut *tx, v) {
                    tx.rollback().await?;
                    return Err(not_found(v));
                }
                let current: Option<i64> =
                    sqlx::query_scalar(active).fetch_one(&mut *tx).await?;
                if current == Some(v) {
                    tx.rollback().await?;
                    return Err(StoreError::Invalid(format!(
                        "policy version {v} is the active version; it cannot also be the shadow"
                    )));
                }
            }
            sqlx::query(update)
                .bind(version)
                .bind(version.map(|_| now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Monotonic counter bumped in the same transaction as every change to
    /// policy versions or the active/shadow state. Gateways poll it and
    /// rebuild their compiled policy snapshot when it changes.
    pub async fn policy_revision(&self) -> Result<i64> {
        self.revision("policy").await
    }
}

fn not_found(version: i64) -> StoreError {
    StoreError::NotFound(format!("policy version {version} does not exist"))
}
