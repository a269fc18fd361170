//! The append-only audit log: every administrative change and every denied
//! attempt, newest first with keyset pagination.
//!
//! There is no update or delete API (and the migration installs triggers
//! refusing both). Every append extends the tamper-evident hash chain (see
//! [`crate::audit_chain`]), so an edit or deletion made behind the API's back
//! is detected by [`Store::verify_audit_chain`].

use crate::audit_chain::{ChainFields, GENESIS_HASH};
use crate::filter::{bind_args, Arg, Filter};
use crate::{Result, Store, StoreError};

/// The outcomes an audit entry may record.
pub const AUDIT_OUTCOMES: [&str; 3] = ["ok", "denied", "error"];

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// When it happened, unix seconds.
    pub at: i64,
    /// Who did it: user id, key id, `cli`, `system`.
    pub actor: String,
    /// What was done, dotted: `keys.create`, `policy.activate`, ...
    pub action: String,
    /// What it was done to: a key id, a policy version, a user id, ...
    pub target: String,
    /// `ok`, `denied` or `error` (see [`AUDIT_OUTCOMES`]).
    pub outcome: String,
    /// Structured details; stored as JSON text. Never put secrets here.
    pub detail: serde_json::Value,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRecord {
    /// Increasing id (append order); the pagination cursor.
    pub id: i64,
    /// When it happened, unix seconds.
    pub at: i64,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// Structured details.
    pub detail: serde_json::Value,
    /// Hash of the previous chained record ([`crate::GENESIS_HASH`] for the
    /// first); `None` for records from before the chain existed.
    pub prev_hash: Option<String>,
    /// This record's chain hash; `None` for records from before the chain.
    pub hash: Option<String>,
}

/// Filters and page of [`Store::list_audit`]. All filters are optional and
/// combine with AND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries with `at >= since`.
    pub since: Option<i64>,
    /// Only entries with `at < until` (exclusive).
    pub until: Option<i64>,
    /// Only entries of this exact actor.
    pub actor: Option<String>,
    /// Only entries whose action starts with this (case-sensitive), e.g.
    /// `policy.` for every policy change.
    pub action_prefix: Option<String>,
    /// Maximum number of entries returned (0 returns none).
    pub limit: u32,
    /// Keyset cursor: only entries with `id < before_id`; pass the `id` of
    /// the last entry of the previous page.
    pub before_id: Option<i64>,
}

impl Default for AuditQuery {
    /// No filters, first page of 100 entries.
    fn default() -> Self {
        AuditQuery {
            since: None,
            until: None,
            actor: None,
            action_prefix: None,
            limit: 100,
            before_id: None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    detail: String,
    prev_hash: Option<String>,
    hash: Option<String>,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<AuditRecord> {
        let detail = serde_json::from_str(&row.detail).map_err(|e| {
            StoreError::Corrupt(format!(
                "audit entry {} has invalid detail JSON: {e}",
                row.id
            ))
        })?;
        Ok(AuditRecord {
            id: row.id,
            at: row.at,
            actor: row.actor,
            action: row.action,
            target: row.target,
            outcome: row.outcome,
            detail,
            prev_hash: row.prev_hash,
            hash: row.hash,
        })
    }
}

impl Store {
    /// Appends one audit entry, chained to the previous one, and returns its
    /// id (ids increase in append order, without gaps, and are never reused).
    ///
    /// Race-safe across processes: the `audit` revision row is locked first,
    /// then the chain head is read and the record inserted with id
    /// `head + 1` and its hash, in one transaction (see
    /// [`crate::audit_chain`]).
    ///
    /// An outcome other than `ok`, `denied` or `error` yields
    /// [`StoreError::Invalid`] and writes nothing.
    pub async fn append_audit(&self, e: &NewAuditEntry) -> Result<i64> {
        self.append_audit_record(e).await.map(|r| r.id)
    }

    /// Like [`Store::append_audit`], returning the stored record with its chain hashes
    /// (what audit forwarding sends).
    pub async fn append_audit_record(&self, e: &NewAuditEntry) -> Result<AuditRecord> {
        if !AUDIT_OUTCOMES.contains(&e.outcome.as_str()) {
            return Err(StoreError::Invalid(format!(
                "audit outcome `{}` is not one of ok, denied, error",
                e.outcome
            )));
        }
        let detail = serde_json::to_string(&e.detail)
            .map_err(|err| StoreError::Invalid(format!("cannot encode audit detail: {err}")))?;
        let lock = "UPDATE revisions SET value = value + 1 WHERE name = 'audit'";
        let head = "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1";
        let insert = "INSERT INTO audit_log \
                      (id, at, actor, action, target, outcome, detail, prev_hash, hash) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let link = |last: Option<(i64, Option<String>)>| {
            let (last_id, last_hash) = last.unwrap_or((0, None));
            let prev = last_hash.unwrap_or_else(|| GENESIS_HASH.to_string());
            let id = last_id + 1;
            let fields = ChainFields {
                action: &e.action,
                actor: &e.actor,
                at: e.at,
                detail: &detail,
                id,
                outcome: &e.outcome,
                target: &e.target,
            };
            let hash = fields.hash(&prev);
            (id, prev, hash)
        };
        let (id, prev, hash) = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let locked = sqlx::query(lock).execute(&mut *tx).await?.rows_affected();
            if locked != 1 {
                return Err(StoreError::Corrupt(
                    "missing `audit` row in table `revisions`".into(),
                ));
            }
            let last: Option<(i64, Option<String>)> =
                sqlx::query_as(head).fetch_optional(&mut *tx).await?;
            let (id, prev, hash) = link(last);
            sqlx::query(insert)
                .bind(id)
                .bind(e.at)
                .bind(&e.actor)
                .bind(&e.action)
                .bind(&e.target)
                .bind(&e.outcome)
                .bind(&detail)
                .bind(&prev)
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            (id, prev, hash)
        });
        Ok(AuditRecord {
            id,
            at: e.at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            outcome: e.outcome.clone(),
            detail: e.detail.clone(),
            prev_hash: Some(prev),
            hash: Some(hash),
        })
    }

    /// Audit entries matching `q`, newest (highest id) first, at most
    /// `q.limit`. For the next page pass the last returned id as
    /// `before_id`; an empty or short page means the end.
    pub async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = Filter::default();
        filter
            .opt_int("at >= {}", q.since)
            .opt_int("at < {}", q.until)
            .opt_text("actor = {}", q.actor.as_deref())
            .opt_int("id < {}", q.before_id);
        if let Some(prefix) = &q.action_prefix {
            // substr/length count characters on both backends, and unlike
            // LIKE this is case-sensitive on both and needs no escaping.
            let template = format!("substr(action, 1, {}) = {{}}", prefix.chars().count());
            filter.push(&template, Arg::Text(prefix.clone()));
        }
        let sql = format!(
            "SELECT id, at, actor, action, target, outcome, detail, prev_hash, hash \
             FROM audit_log{} \
             ORDER BY id DESC LIMIT {}",
            filter.where_clause(),
            filter.next_placeholder()
        );
        let limit = i64::from(q.limit);
        let rows: Vec<AuditRow> = with_pool!(self, pool => {
            bind_args!(sqlx::query_as::<_, AuditRow>(&sql), &filter.args)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(AuditRecord::try_from).collect()
    }
}
