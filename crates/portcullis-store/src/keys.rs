//! Virtual API keys: records, CRUD, rotation and expiry, and the `keys`
//! revision counter that running gateways poll to know when to reload.

use crate::error::map_write_error;
use crate::{Result, Store, StoreError};

/// A key to insert, as prepared by the caller (CLI or admin API).
///
/// The caller generates the secret, shows it once, and passes only its
/// `prefix` (for display) and `hash` (lowercase hex SHA-256, for lookup):
/// the store never sees the key itself.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Stable identifier used by `keys revoke` and in logs.
    pub id: String,
    /// Human-readable label.
    pub name: String,
    /// First characters of the key, shown in listings to recognise it.
    pub prefix: String,
    /// Lowercase hex SHA-256 of the full key; unique.
    pub hash: String,
    /// Model glob patterns the key may use; empty means all models.
    pub models: Vec<String>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Expiry time, unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
    /// Team (tenant) the key belongs to; `None` for keys outside any team.
    pub team: Option<String>,
    /// Role the key carries (`admin`, `security-admin`, `auditor`,
    /// `developer`, `viewer` or a custom role); the store does not check it.
    pub role: String,
    /// Who owns the key: a user id or a service-account name.
    pub owner: Option<String>,
}

/// A stored key, as loaded by the gateway into its in-memory key table and
/// shown by `keys list` (serialisable for JSON output).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyRecord {
    /// Stable identifier.
    pub id: String,
    /// Human-readable label.
    pub name: String,
    /// First characters of the key, for display.
    pub prefix: String,
    /// Lowercase hex SHA-256 of the full key.
    pub hash: String,
    /// Model glob patterns; empty means all models.
    pub models: Vec<String>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Expiry time, unix seconds.
    pub expires_at: Option<i64>,
    /// When the key was revoked, unix seconds; `None` while active.
    pub revoked_at: Option<i64>,
    /// Last successful use, unix seconds (coarse: updated about once a minute).
    pub last_used_at: Option<i64>,
    /// Team (tenant) the key belongs to.
    pub team: Option<String>,
    /// Role the key carries (keys created before roles existed: `developer`).
    pub role: String,
    /// Owner: a user id or a service-account name.
    pub owner: Option<String>,
}

/// Raw row shape shared by both backends; `models` is still JSON text.
#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    hash: String,
    models: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    team: Option<String>,
    role: String,
    owner: Option<String>,
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<KeyRecord> {
        let models = serde_json::from_str(&row.models).map_err(|e| {
            StoreError::Corrupt(format!("api key `{}` has invalid models JSON: {e}", row.id))
        })?;
        Ok(KeyRecord {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            hash: row.hash,
            models,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
            team: row.team,
            role: row.role,
            owner: row.owner,
        })
    }
}

const KEY_COLUMNS: &str = "id, name, prefix, hash, models, created_at, expires_at, \
                           revoked_at, last_used_at, team, role, owner";

const INSERT_KEY: &str = "INSERT INTO api_keys \
    (id, name, prefix, hash, models, created_at, expires_at, team, role, owner) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Binds the columns of [`INSERT_KEY`] from a [`NewKey`] and its encoded models.
macro_rules! bind_new_key {
    ($query:expr, $key:expr, $models:expr) => {
        $query
            .bind(&$key.id)
            .bind(&$key.name)
            .bind(&$key.prefix)
            .bind(&$key.hash)
            .bind($models)
            .bind($key.created_at)
            .bind($key.expires_at)
            .bind(&$key.team)
            .bind(&$key.role)
            .bind(&$key.owner)
    };
}

fn encode_models(key: &NewKey) -> Result<String> {
    serde_json::to_string(&key.models)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode models: {e}")))
}

impl NewKey {
    /// The record of this key as just inserted (never revoked nor used).
    fn to_record(&self) -> KeyRecord {
        KeyRecord {
            id: self.id.clone(),
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            hash: self.hash.clone(),
            models: self.models.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: None,
            last_used_at: None,
            team: self.team.clone(),
            role: self.role.clone(),
            owner: self.owner.clone(),
        }
    }
}

const BUMP_KEYS_REVISION: &str = "UPDATE revisions SET value = value + 1 WHERE name = 'keys'";

impl Store {
    /// Inserts a new key and bumps the keys revision in one transaction, so a
    /// polling gateway sees the key as soon as the revision changes.
    ///
    /// A duplicate `id` or `hash` yields [`StoreError::Conflict`] and changes
    /// nothing.
    pub async fn create_key(&self, key: &NewKey) -> Result<KeyRecord> {
        let models = encode_models(key)?;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            bind_new_key!(sqlx::query(INSERT_KEY), key, &models)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_write_error(e, "an API key with this id or hash"))?;
            sqlx::query(BUMP_KEYS_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(key.to_record())
    }

    /// All keys (revoked and expired included), ordered by `created_at`, then
    /// `id` compared bytewise — identical on both backends whatever the
    /// PostgreSQL collation.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id");
        let rows: Vec<KeyRow> = with_pool!(self, pool => {
            sqlx::query_as::<_, KeyRow>(&sql).fetch_all(pool).await?
        });
        let mut keys = rows
            .into_iter()
            .map(KeyRecord::try_from)
            .collect::<Result<Vec<_>>>()?;
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    /// One key by id, or `None` if there is no such key.
    pub async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let row: Option<KeyRow> = with_pool!(self, pool => {
            sqlx::query_as::<_, KeyRow>(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(KeyRecord::try_from).transpose()
    }

    /// Marks a key revoked (sets `revoked_at = now`) and bumps the keys
    /// revision in the same transaction, so gateways drop it on their next
    /// poll.
    ///
    /// Returns `Ok(false)` if there is no such key. Revoking twice keeps the
    /// first `revoked_at`, does not bump the revision, and returns `Ok(true)`.
    pub async fn revoke_key(&self, id: &str, now: i64) -> Result<bool> {
        let revoke = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        let exists = "SELECT COUNT(*) FROM api_keys WHERE id = $1";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(revoke)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed > 0 {
                sqlx::query(BUMP_KEYS_REVISION).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            } else {
                let count: i64 = sqlx::query_scalar(exists).bind(id).fetch_one(&mut *tx).await?;
                tx.rollback().await?;
                Ok(count > 0)
            }
        })
    }

    /// Rotates a key atomically: inserts `new` (the caller generates its
    /// secret and copies name, models, team, role and owner from the old
    /// key) and revokes `old_id` at `now`, bumping the keys revision, all in
    /// one transaction — a polling gateway sees either both changes or none.
    ///
    /// Returns `Ok(None)` and changes nothing if `old_id` is unknown or
    /// already revoked; a duplicate new id or hash yields
    /// [`StoreError::Conflict`] and leaves the old key active.
    pub async fn rotate_key(
        &self,
        old_id: &str,
        new: &NewKey,
        now: i64,
    ) -> Result<Option<KeyRecord>> {
        let models = encode_models(new)?;
        let revoke = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let revoked = sqlx::query(revoke)
                .bind(now)
                .bind(old_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if revoked == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            bind_new_key!(sqlx::query(INSERT_KEY), new, &models)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_write_error(e, "an API key with this id or hash"))?;
            sqlx::query(BUMP_KEYS_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(Some(new.to_record()))
    }

    /// Sets (or with `None` removes) a key's expiry time and bumps the keys
    /// revision in the same transaction. Works on revoked keys too (it does
    /// not un-revoke them). Returns `Ok(false)` if there is no such key.
    pub async fn set_key_expiry(&self, id: &str, expires_at: Option<i64>) -> Result<bool> {
        let sql = "UPDATE api_keys SET expires_at = $1 WHERE id = $2";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(sql)
                .bind(expires_at)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(BUMP_KEYS_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Records a successful use (`last_used_at = now`). Best effort: the
    /// gateway calls it at most about once a minute per key and only logs
    /// failures. Unknown ids are ignored, `last_used_at` never moves
    /// backwards, and the keys revision is deliberately not bumped (usage is
    /// not a configuration change and must not trigger reloads).
    pub async fn touch_key(&self, id: &str, now: i64) -> Result<()> {
        let sql = "UPDATE api_keys SET last_used_at = $1 \
                   WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)";
        with_pool!(self, pool => {
            sqlx::query(sql).bind(now).bind(id).execute(pool).await?;
        });
        Ok(())
    }

    /// Monotonic counter bumped in the same transaction as every change to
    /// keys (create, revoke, rotate, expiry; not `touch_key`). Gateways poll it every ~500 ms
    /// and reload keys only when it differs from the value they last loaded.
    pub async fn keys_revision(&self) -> Result<i64> {
        self.revision("keys").await
    }
}
