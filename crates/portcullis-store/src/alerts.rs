//! Anomaly alerts raised by the gateway's alert engine, deduplicated per rule and
//! subject: a repeat inside the deduplication window bumps the open alert's `count`
//! and `last_at` instead of adding a row. Read by the admin API and compliance reports.

use crate::filter::{bind_args, Filter};
use crate::{Result, Store, StoreError};

/// An alert occurrence to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// When it happened, unix seconds.
    pub at: i64,
    /// Rule that fired: `auth_failures`, `new_network`, `token_spike`,
    /// `rate_limit_storm`, `spend_spike`.
    pub rule: String,
    /// What it is about, e.g. `ip:203.0.113.7` or `key:key_abc`.
    pub subject: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// One human-readable line.
    pub message: String,
    /// The key involved, when there is one.
    pub key_id: Option<String>,
    /// The key's team, when known.
    pub team: Option<String>,
    /// Structured details (numbers, thresholds); stored as JSON text. Never secrets.
    pub detail: serde_json::Value,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRecord {
    /// Increasing id; the pagination cursor.
    pub id: i64,
    /// Rule that fired.
    pub rule: String,
    /// What it is about.
    pub subject: String,
    /// Severity.
    pub severity: String,
    /// Message of the first occurrence.
    pub message: String,
    /// The key involved.
    pub key_id: Option<String>,
    /// The key's team.
    pub team: Option<String>,
    /// Details of the first occurrence.
    pub detail: serde_json::Value,
    /// First occurrence, unix seconds.
    pub first_at: i64,
    /// Latest occurrence, unix seconds.
    pub last_at: i64,
    /// Occurrences folded into this alert (1 + repeats).
    pub count: i64,
}

/// Whether [`Store::record_alert`] opened a new alert or counted a repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertWrite {
    /// Id of the alert row.
    pub id: i64,
    /// True when a new row was inserted, false when an open one was bumped.
    pub raised: bool,
}

/// Filters and page of [`Store::list_alerts`]; all optional, combined with AND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertQuery {
    /// Only alerts first seen at or after this time.
    pub since: Option<i64>,
    /// Only alerts first seen before this time (exclusive).
    pub until: Option<i64>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Only this subject.
    pub subject: Option<String>,
    /// Maximum number returned (0 returns none).
    pub limit: u32,
    /// Keyset cursor: only alerts with `id < before_id`.
    pub before_id: Option<i64>,
}

impl Default for AlertQuery {
    /// No filters, first page of 100 alerts.
    fn default() -> Self {
        AlertQuery {
            since: None,
            until: None,
            rule: None,
            subject: None,
            limit: 100,
            before_id: None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    rule: String,
    subject: String,
    severity: String,
    message: String,
    key_id: Option<String>,
    team: Option<String>,
    detail: String,
    first_at: i64,
    last_at: i64,
    count: i64,
}

impl TryFrom<AlertRow> for AlertRecord {
    type Error = StoreError;

    fn try_from(row: AlertRow) -> Result<AlertRecord> {
        let detail = serde_json::from_str(&row.detail).map_err(|e| {
            StoreError::Corrupt(format!("alert {} has invalid detail JSON: {e}", row.id))
        })?;
        Ok(AlertRecord {
            id: row.id,
            rule: row.rule,
            subject: row.subject,
            severity: row.severity,
            message: row.message,
            key_id: row.key_id,
            team: row.team,
            detail,
            first_at: row.first_at,
            last_at: row.last_at,
            count: row.count,
        })
    }
}

impl Store {
    /// Records `occurrences` (at least 1) of alert `a`. When an alert of the same rule and
    /// subject was first seen within `window_secs` before `a.at`, it is bumped (`count`
    /// grows, `last_at` moves forward) and `raised` is false; otherwise a new alert is
    /// inserted. Two gateway instances racing on the same new alert may each insert one.
    pub async fn record_alert(
        &self,
        a: &NewAlert,
        occurrences: u64,
        window_secs: i64,
    ) -> Result<AlertWrite> {
        let detail = serde_json::to_string(&a.detail)
            .map_err(|e| StoreError::Invalid(format!("cannot encode alert detail: {e}")))?;
        let n = i64::try_from(occurrences.max(1)).unwrap_or(i64::MAX);
        let open = "SELECT id FROM alerts WHERE rule = $1 AND subject = $2 AND first_at >= $3 \
                    ORDER BY id DESC LIMIT 1";
        let bump = "UPDATE alerts SET count = count + $1, \
                    last_at = CASE WHEN last_at < $2 THEN $2 ELSE last_at END WHERE id = $3";
        let insert = "INSERT INTO alerts (rule, subject, severity, message, key_id, team, detail, \
                      first_at, last_at, count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
                      RETURNING id";
        let since = a.at.saturating_sub(window_secs.max(0));
        let write = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let existing: Option<i64> = sqlx::query_scalar(open)
                .bind(&a.rule)
                .bind(&a.subject)
                .bind(since)
                .fetch_optional(&mut *tx)
                .await?;
            let write = match existing {
                Some(id) => {
                    sqlx::query(bump).bind(n).bind(a.at).bind(id).execute(&mut *tx).await?;
                    AlertWrite { id, raised: false }
                }
                None => {
                    let id: i64 = sqlx::query_scalar(insert)
                        .bind(&a.rule)
                        .bind(&a.subject)
                        .bind(&a.severity)
                        .bind(&a.message)
                        .bind(&a.key_id)
                        .bind(&a.team)
                        .bind(&detail)
                        .bind(a.at)
                        .bind(n)
                        .fetch_one(&mut *tx)
                        .await?;
                    AlertWrite { id, raised: true }
                }
            };
            tx.commit().await?;
            write
        });
        Ok(write)
    }

    /// Alerts matching `q`, newest (highest id) first, at most `q.limit`. For the next
    /// page pass the last returned id as `before_id`.
    pub async fn list_alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = Filter::default();
        filter
            .opt_int("first_at >= {}", q.since)
            .opt_int("first_at < {}", q.until)
            .opt_text("rule = {}", q.rule.as_deref())
            .opt_text("subject = {}", q.subject.as_deref())
            .opt_int("id < {}", q.before_id);
        let sql = format!(
            "SELECT id, rule, subject, severity, message, key_id, team, detail, first_at, \
             last_at, count FROM alerts{} ORDER BY id DESC LIMIT {}",
            filter.where_clause(),
            filter.next_placeholder()
        );
        let limit = i64::from(q.limit);
        let rows: Vec<AlertRow> = with_pool!(self, pool => {
            bind_args!(sqlx::query_as::<_, AlertRow>(&sql), &filter.args)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(AlertRecord::try_from).collect()
    }
}
