//! Usage: one row per settled request (tokens, cost), batch-written by the
//! gateway's usage queue, summarised for reports and summed to seed budgets.

use crate::filter::{bind_args, Arg, Filter};
use crate::{Result, Store};

/// One settled request to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUsage {
    /// Settlement time, unix seconds.
    pub at: i64,
    /// The request id (`x-request-id`), to join with request logs.
    pub request_id: String,
    /// The key that made the request.
    pub key_id: String,
    /// The key's team.
    pub team: Option<String>,
    /// The model actually used (after aliasing/fallback).
    pub model: String,
    /// The provider that served it.
    pub provider: String,
    /// HTTP status returned to the client.
    pub status: u16,
    /// Prompt (input) tokens, cached ones included.
    pub prompt_tokens: i64,
    /// Completion (output) tokens.
    pub completion_tokens: i64,
    /// Prompt tokens served from the provider's cache (priced separately).
    pub cached_tokens: i64,
    /// Cost in micro-USD (1 USD = 1 000 000).
    pub cost_micros: i64,
}

/// Filter of [`Store::usage_summary`]: the period `[since, until)` (unix
/// seconds), optionally one team and/or one key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageQuery {
    /// Only this team's usage.
    pub team: Option<String>,
    /// Only this key's usage.
    pub key_id: Option<String>,
    /// Start of the period, inclusive.
    pub since: i64,
    /// End of the period, exclusive.
    pub until: i64,
}

/// Usage totals of one (key, team, model) over the queried period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct UsageRow {
    /// The key.
    pub key_id: String,
    /// The team recorded with the usage.
    pub team: Option<String>,
    /// The model.
    pub model: String,
    /// Number of requests (every status).
    pub requests: i64,
    /// Sum of prompt tokens.
    pub prompt_tokens: i64,
    /// Sum of completion tokens.
    pub completion_tokens: i64,
    /// Sum of cached prompt tokens.
    pub cached_tokens: i64,
    /// Sum of cost, micro-USD.
    pub cost_micros: i64,
}

impl Store {
    /// Records usage rows, all in one transaction (multi-row inserts):
    /// either every row is stored or none. An empty slice does nothing.
    pub async fn record_usage(&self, rows: &[NewUsage]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let head = "INSERT INTO usage (at, request_id, key_id, team, model, provider, status, \
                    prompt_tokens, completion_tokens, cached_tokens, cost_micros) ";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in crate::batch::statement_chunks(rows) {
                let mut insert = sqlx::QueryBuilder::new(head);
                insert.push_values(chunk, |mut row, u| {
                    row.push_bind(u.at)
                        .push_bind(&u.request_id)
                        .push_bind(&u.key_id)
                        .push_bind(&u.team)
                        .push_bind(&u.model)
                        .push_bind(&u.provider)
                        .push_bind(i32::from(u.status))
                        .push_bind(u.prompt_tokens)
                        .push_bind(u.completion_tokens)
                        .push_bind(u.cached_tokens)
                        .push_bind(u.cost_micros);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Usage over `[q.since, q.until)`, optionally of one team and/or key,
    /// grouped by (key, team, model) and ordered by key, team (no team
    /// first), model, compared bytewise.
    pub async fn usage_summary(&self, q: &UsageQuery) -> Result<Vec<UsageRow>> {
        let mut filter = Filter::default();
        filter
            .push("at >= {}", Arg::Int(q.since))
            .push("at < {}", Arg::Int(q.until))
            .opt_text("team = {}", q.team.as_deref())
            .opt_text("key_id = {}", q.key_id.as_deref());
        let sql = format!(
            "SELECT key_id, team, model, COUNT(*) AS requests, \
             CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
             CAST(SUM(cached_tokens) AS BIGINT) AS cached_tokens, \
             CAST(SUM(cost_micros) AS BIGINT) AS cost_micros \
             FROM usage{} GROUP BY key_id, team, model",
            filter.where_clause()
        );
        let mut rows: Vec<UsageRow> = with_pool!(self, pool => {
            bind_args!(sqlx::query_as::<_, UsageRow>(&sql), &filter.args)
                .fetch_all(pool)
                .await?
        });
        rows.sort_by(|a, b| (&a.key_id, &a.team, &a.model).cmp(&(&b.key_id, &b.team, &b.model)));
        Ok(rows)
    }

    /// Total cost in micro-USD recorded since `since` (inclusive), of one
    /// team and/or one key (both `None`: everything). Used at startup to
    /// seed the in-memory budget counters of the current day/month.
    pub async fn spend_micros(
        &self,
        team: Option<&str>,
        key_id: Option<&str>,
        since: i64,
    ) -> Result<i64> {
        let mut filter = Filter::default();
        filter
            .push("at >= {}", Arg::Int(since))
            .opt_text("team = {}", team)
            .opt_text("key_id = {}", key_id);
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage{}",
            filter.where_clause()
        );
        let total: i64 = with_pool!(self, pool => {
            bind_args!(sqlx::query_scalar::<_, i64>(&sql), &filter.args)
                .fetch_one(pool)
                .await?
        });
        Ok(total)
    }
}
