//! Request logs: one row per data-plane request (who, what, how it ended, tokens, cost,
//! guardrail and policy decisions), batch-written by the gateway's request-log queue,
//! read back newest first with keyset pagination, summarised for compliance reports and
//! purged after the retention period.

use crate::filter::{bind_args, Filter};
use crate::{Result, Store, StoreError};
use serde::{Deserialize, Serialize};

/// One guardrail action taken on a request: the rule id and the action, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailEntry {
    /// Rule id (detector name or the profile's custom rule id).
    pub rule: String,
    /// `block`, `redact` or `log`.
    pub action: String,
}

/// A request to record (and, read back, a stored one: see [`RequestLogRecord`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NewRequestLog {
    /// When the request ended, unix seconds.
    pub at: i64,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// The authenticated key (`None` when authentication failed).
    pub key_id: Option<String>,
    /// The key's owner (user id or service account), else the key id.
    pub principal: Option<String>,
    /// The key's team.
    pub team: Option<String>,
    /// Public model name (or route).
    pub model: Option<String>,
    /// Provider that served it.
    pub provider: Option<String>,
    /// HTTP status returned to the client.
    pub status: u16,
    /// Refused by the gateway (authentication, policy, limits, budget, guardrail block).
    pub denied: bool,
    /// Error class (the error `code`, e.g. `policy_denied`, `upstream_timeout`).
    pub error: Option<String>,
    /// Why it was refused or failed, as told to the client (never a secret).
    pub reason: Option<String>,
    /// The policy rule that decided.
    pub policy_rule: Option<String>,
    /// Guardrail actions taken.
    pub guardrails: Vec<GuardrailEntry>,
    /// Response cache: `hit`, `miss`, or `None` when the cache was not consulted.
    pub cache: Option<String>,
    /// How the response ended: `complete`, `upstream_error`, `client_closed`.
    pub outcome: String,
    /// Total time in the gateway, microseconds.
    pub latency_us: i64,
    /// Time spent waiting on the upstream, microseconds.
    pub upstream_us: Option<i64>,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Prompt tokens served from the provider's cache.
    pub cached_tokens: i64,
    /// Cost in micro-USD.
    pub cost_micros: i64,
    /// Client address.
    pub client_ip: Option<String>,
    /// Request body after guardrail redaction (only when the team logs bodies).
    pub request_body: Option<String>,
    /// Response body after guardrail redaction (only when the team logs bodies).
    pub response_body: Option<String>,
}

/// A stored request log: its id (the pagination cursor) and the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestLogRecord {
    /// Increasing id (append order).
    pub id: i64,
    /// The record.
    #[serde(flatten)]
    pub log: NewRequestLog,
}

/// Filters and page of [`Store::list_request_logs`]; all filters combine with AND.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestLogQuery {
    /// Only records with `at >= from`.
    pub from: Option<i64>,
    /// Only records with `at < to`.
    pub to: Option<i64>,
    /// Only this team.
    pub team: Option<String>,
    /// Only this key.
    pub key_id: Option<String>,
    /// Only this principal.
    pub principal: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this status.
    pub status: Option<u16>,
    /// Only refused requests.
    pub denied_only: bool,
    /// Only records with `id < before_id` (the previous page's last id).
    pub before_id: Option<i64>,
    /// Page size (0 returns none).
    pub limit: u32,
}

/// Request totals of one (principal, team) over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AccessSummary {
    /// Principal (owner or key id; `-` when unauthenticated).
    pub principal: String,
    /// Team (`-` when none).
    pub team: String,
    /// Requests.
    pub requests: i64,
    /// Refused requests.
    pub denied: i64,
    /// Prompt + completion tokens.
    pub tokens: i64,
    /// Cost, micro-USD.
    pub cost_micros: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: i64,
    request_id: String,
    method: String,
    path: String,
    key_id: Option<String>,
    principal: Option<String>,
    team: Option<String>,
    model: Option<String>,
    provider: Option<String>,
    status: i32,
    denied: bool,
    error: Option<String>,
    reason: Option<String>,
    policy_rule: Option<String>,
    guardrails: String,
    cache: Option<String>,
    outcome: String,
    latency_us: i64,
    upstream_us: Option<i64>,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    cost_micros: i64,
    client_ip: Option<String>,
    request_body: Option<String>,
    response_body: Option<String>,
}

impl TryFrom<Row> for RequestLogRecord {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<RequestLogRecord> {
        let guardrails = serde_json::from_str(&r.guardrails).map_err(|e| {
            StoreError::Corrupt(format!(
                "request log {} has invalid guardrails JSON: {e}",
                r.id
            ))
        })?;
        Ok(RequestLogRecord {
            id: r.id,
            log: NewRequestLog {
                at: r.at,
                request_id: r.request_id,
                method: r.method,
                path: r.path,
                key_id: r.key_id,
                principal: r.principal,
                team: r.team,
                model: r.model,
                provider: r.provider,
                status: u16::try_from(r.status).unwrap_or(0),
                denied: r.denied,
                error: r.error,
                reason: r.reason,
                policy_rule: r.policy_rule,
                guardrails,
                cache: r.cache,
                outcome: r.outcome,
                latency_us: r.latency_us,
                upstream_us: r.upstream_us,
                prompt_tokens: r.prompt_tokens,
                completion_tokens: r.completion_tokens,
                cached_tokens: r.cached_tokens,
                cost_micros: r.cost_micros,
                client_ip: r.client_ip,
                request_body: r.request_body,
                response_body: r.response_body,
            },
        })
    }
}

const COLUMNS: &str = "at, request_id, method, path, key_id, principal, team, model, provider, \
     status, denied, error, reason, policy_rule, guardrails, cache, outcome, latency_us, \
     upstream_us, prompt_tokens, completion_tokens, cached_tokens, cost_micros, client_ip, \
     request_body, response_body";

fn period_filter(from: Option<i64>, to: Option<i64>) -> Filter {
    let mut filter = Filter::default();
    filter.opt_int("at >= {}", from).opt_int("at < {}", to);
    filter
}

impl Store {
    /// Records request logs (owned or borrowed), all in one transaction (multi-row
    /// inserts): either every row is stored or none. An empty slice does nothing.
    pub async fn record_request_logs<R>(&self, rows: &[R]) -> Result<()>
    where
        R: std::borrow::Borrow<NewRequestLog> + Sync,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let guardrails: Vec<String> = rows
            .iter()
            .map(|r| serde_json::to_string(&r.borrow().guardrails))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| StoreError::Invalid(format!("cannot encode guardrails: {e}")))?;
        let head = format!("INSERT INTO request_logs ({COLUMNS}) ");
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (chunk, json) in crate::batch::statement_chunks(rows)
                .zip(crate::batch::statement_chunks(&guardrails))
            {
                let mut insert = sqlx::QueryBuilder::new(&head);
                insert.push_values(chunk.iter().zip(json), |mut row, (r, g)| {
                    let r = r.borrow();
                    row.push_bind(r.at)
                        .push_bind(&r.request_id)
                        .push_bind(&r.method)
                        .push_bind(&r.path)
                        .push_bind(&r.key_id)
                        .push_bind(&r.principal)
                        .push_bind(&r.team)
                        .push_bind(&r.model)
                        .push_bind(&r.provider)
                        .push_bind(i32::from(r.status))
                        .push_bind(r.denied)
                        .push_bind(&r.error)
                        .push_bind(&r.reason)
                        .push_bind(&r.policy_rule)
                        .push_bind(g)
                        .push_bind(&r.cache)
                        .push_bind(&r.outcome)
                        .push_bind(r.latency_us)
                        .push_bind(r.upstream_us)
                        .push_bind(r.prompt_tokens)
                        .push_bind(r.completion_tokens)
                        .push_bind(r.cached_tokens)
                        .push_bind(r.cost_micros)
                        .push_bind(&r.client_ip)
                        .push_bind(&r.request_body)
                        .push_bind(&r.response_body);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Request logs matching `q`, newest (highest id) first, at most `q.limit`. For the
    /// next page pass the last returned id as `before_id`; a short page means the end.
    pub async fn list_request_logs(&self, q: &RequestLogQuery) -> Result<Vec<RequestLogRecord>> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = period_filter(q.from, q.to);
        filter
            .opt_text("team = {}", q.team.as_deref())
            .opt_text("key_id = {}", q.key_id.as_deref())
            .opt_text("principal = {}", q.principal.as_deref())
            .opt_text("model = {}", q.model.as_deref())
            .opt_int("status = {}", q.status.map(i64::from))
            .opt_int("id < {}", q.before_id);
        if q.denied_only {
            filter.condition("denied = TRUE");
        }
        let sql = format!(
            "SELECT id, {COLUMNS} FROM request_logs{} ORDER BY id DESC LIMIT {}",
            filter.where_clause(),
            filter.next_placeholder()
        );
        let rows: Vec<Row> = with_pool!(self, pool => {
            bind_args!(sqlx::query_as::<_, Row>(&sql), &filter.args)
                .bind(i64::from(q.limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(RequestLogRecord::try_from).collect()
    }

    /// Requests, refusals, tokens and cost per (principal, team) over `[from, to)`,
    /// ordered by principal then team.
    pub async fn access_summary(&self, from: i64, to: i64) -> Result<Vec<AccessSummary>> {
        let filter = period_filter(Some(from), Some(to));
        let sql = format!(
            "SELECT COALESCE(principal, '-') AS principal, COALESCE(team, '-') AS team, \
             COUNT(*) AS requests, \
             CAST(SUM(CASE WHEN denied THEN 1 ELSE 0 END) AS BIGINT) AS denied, \
             CAST(SUM(prompt_tokens + completion_tokens) AS BIGINT) AS tokens, \
             CAST(SUM(cost_micros) AS BIGINT) AS cost_micros \
             FROM request_logs{} GROUP BY COALESCE(principal, '-'), COALESCE(team, '-')",
            filter.where_clause()
        );
        let mut rows: Vec<AccessSummary> = with_pool!(self, pool => {
            bind_args!(sqlx::query_as::<_, AccessSummary>(&sql), &filter.args)
                .fetch_all(pool)
                .await?
        });
        rows.sort_by(|a, b| (&a.principal, &a.team).cmp(&(&b.principal, &b.team)));
        Ok(rows)
    }

    /// Every request log of `[from, to)` that was refused or carries a guardrail action,
    /// oldest first, without bodies (for reports). At most `max` rows; the second value
    /// tells whether more matched.
    pub async fn notable_request_logs(
        &self,
        from: i64,
        to: i64,
        max: u32,
    ) -> Result<(Vec<RequestLogRecord>, bool)> {
        let filter = period_filter(Some(from), Some(to));
        let sql = format!(
            "SELECT id, {} FROM request_logs{} AND (denied = TRUE OR guardrails <> '[]') \
             ORDER BY id ASC LIMIT {}",
            COLUMNS
                .replace("request_body", "NULL AS request_body")
                .replace("response_body", "NULL AS response_body"),
            filter.where_clause(),
            filter.next_placeholder()
        );
        let rows: Vec<Row> = with_pool!(self, pool => {
            bind_args!(sqlx::query_as::<_, Row>(&sql), &filter.args)
                .bind(i64::from(max) + 1)
                .fetch_all(pool)
                .await?
        });
        let mut records = rows
            .into_iter()
            .map(RequestLogRecord::try_from)
            .collect::<Result<Vec<_>>>()?;
        let more = records.len() > max as usize;
        records.truncate(max as usize);
        Ok((records, more))
    }

    /// Requests and refusals per UTC day over `[from, to)`: `(day start, requests,
    /// denied)`, oldest first, days without requests left out.
    pub async fn daily_request_counts(&self, from: i64, to: i64) -> Result<Vec<(i64, i64, i64)>> {
        let filter = period_filter(Some(from), Some(to));
        let sql = format!(
            "SELECT CAST((at / 86400) * 86400 AS BIGINT) AS day, COUNT(*) AS n, \
             CAST(SUM(CASE WHEN denied THEN 1 ELSE 0 END) AS BIGINT) AS denied \
             FROM request_logs{} GROUP BY (at / 86400) ORDER BY day",
            filter.where_clause()
        );
        let rows: Vec<(i64, i64, i64)> = with_pool!(self, pool => {
            bind_args!(sqlx::query_as::<_, (i64, i64, i64)>(&sql), &filter.args)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Deletes request logs older than `before` (unix seconds, exclusive); returns how
    /// many were deleted.
    pub async fn purge_request_logs(&self, before: i64) -> Result<u64> {
        let sql = "DELETE FROM request_logs WHERE at < $1";
        let n = with_pool!(self, pool => {
            sqlx::query(sql).bind(before).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }
}
