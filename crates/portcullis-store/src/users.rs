//! Users (people who administer or develop) and teams (tenants), with the
//! `identity` revision counter that gateways poll to reload them.

use crate::error::map_write_error;
use crate::{Result, Store};

/// Bumped in the same transaction as every change to users or teams.
const BUMP_IDENTITY_REVISION: &str =
    "UPDATE revisions SET value = value + 1 WHERE name = 'identity'";

/// A user to insert, as prepared by the CLI or the admin API.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Stable identifier (keys name it as their `owner`).
    pub id: String,
    /// Unique login/display name.
    pub name: String,
    /// Contact address, if known.
    pub email: Option<String>,
    /// Team the user belongs to; `None` for cross-team administrators.
    pub team: Option<String>,
    /// Role of the user (built-in or custom); the store does not check it.
    pub role: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
}

/// A stored user (serialisable for the admin API and CLI JSON output).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct UserRecord {
    /// Stable identifier.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Contact address.
    pub email: Option<String>,
    /// Team the user belongs to.
    pub team: Option<String>,
    /// Role of the user.
    pub role: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// When the user was disabled, unix seconds; `None` while enabled.
    pub disabled_at: Option<i64>,
}

/// A stored team (tenant/project).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct TeamRecord {
    /// Unique name, used as the team of keys, users and usage rows.
    pub name: String,
    /// Free text; empty when not given.
    pub description: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
}

const USER_COLUMNS: &str = "id, name, email, team, role, created_at, disabled_at";

impl Store {
    /// Inserts a user and bumps the identity revision in one transaction.
    ///
    /// A duplicate `id` or `name` yields [`crate::StoreError::Conflict`] and
    /// changes nothing. The team is not required to exist as a team record.
    pub async fn create_user(&self, u: &NewUser) -> Result<UserRecord> {
        let sql = "INSERT INTO users (id, name, email, team, role, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql)
                .bind(&u.id)
                .bind(&u.name)
                .bind(&u.email)
                .bind(&u.team)
                .bind(&u.role)
                .bind(u.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_write_error(e, "a user with this id or name"))?;
            sqlx::query(BUMP_IDENTITY_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(UserRecord {
            id: u.id.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            team: u.team.clone(),
            role: u.role.clone(),
            created_at: u.created_at,
            disabled_at: None,
        })
    }

    /// All users (disabled ones included), ordered by `created_at`, then `id`
    /// compared bytewise (identical on both backends).
    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users");
        let mut users: Vec<UserRecord> = with_pool!(self, pool => {
            sqlx::query_as::<_, UserRecord>(&sql).fetch_all(pool).await?
        });
        users.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(users)
    }

    /// One user by id, or `None` if there is no such user.
    pub async fn get_user(&self, id: &str) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, UserRecord>(&sql).bind(id).fetch_optional(pool).await?
        }))
    }

    /// Disables a user (sets `disabled_at = now`) and bumps the identity
    /// revision in the same transaction. The user's keys are not touched:
    /// callers revoke them (or the gateway refuses keys of disabled owners).
    ///
    /// Returns `Ok(false)` if there is no such user. Disabling twice keeps
    /// the first `disabled_at`, does not bump the revision, and returns
    /// `Ok(true)`.
    pub async fn disable_user(&self, id: &str, now: i64) -> Result<bool> {
        let disable = "UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL";
        let exists = "SELECT COUNT(*) FROM users WHERE id = $1";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(disable)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed > 0 {
                sqlx::query(BUMP_IDENTITY_REVISION).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            } else {
                let count: i64 = sqlx::query_scalar(exists).bind(id).fetch_one(&mut *tx).await?;
                tx.rollback().await?;
                Ok(count > 0)
            }
        })
    }

    /// Inserts a team and bumps the identity revision in one transaction.
    /// A duplicate name yields [`crate::StoreError::Conflict`].
    pub async fn create_team(&self, name: &str, description: &str, now: i64) -> Result<TeamRecord> {
        let sql = "INSERT INTO teams (name, description, created_at) VALUES ($1, $2, $3)";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql)
                .bind(name)
                .bind(description)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_write_error(e, "a team with this name"))?;
            sqlx::query(BUMP_IDENTITY_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(TeamRecord {
            name: name.to_string(),
            description: description.to_string(),
            created_at: now,
        })
    }

    /// All teams, ordered by name compared bytewise.
    pub async fn list_teams(&self) -> Result<Vec<TeamRecord>> {
        let sql = "SELECT name, description, created_at FROM teams";
        let mut teams: Vec<TeamRecord> = with_pool!(self, pool => {
            sqlx::query_as::<_, TeamRecord>(sql).fetch_all(pool).await?
        });
        teams.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(teams)
    }

    /// Monotonic counter bumped in the same transaction as every change to
    /// users or teams (create, disable). Gateways poll it like
    /// [`Store::keys_revision`].
    pub async fn identity_revision(&self) -> Result<i64> {
        self.revision("identity").await
    }
}
