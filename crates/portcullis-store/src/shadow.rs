//! Shadow-mode events: requests where the shadow policy version decided
//! differently from the active one, and the report that summarises them.

use crate::{Result, Store};

/// How many of the newest events a [`ShadowReport`] carries as samples.
const REPORT_SAMPLES: i64 = 20;

/// A decision difference to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShadowEvent {
    /// When the request was evaluated, unix seconds.
    pub at: i64,
    /// The enforced version (`None` if no version was active).
    pub active_version: Option<i64>,
    /// The shadow version that decided differently.
    pub shadow_version: i64,
    /// What differed, e.g. `allow->deny`, `deny->allow`, `limit`, `budget`.
    pub kind: String,
    /// Who made the request: key id or user id.
    pub principal: String,
    /// The principal's team.
    pub team: Option<String>,
    /// What was requested: model or route.
    pub target: String,
    /// The rule of the active version that decided (or `default`).
    pub active_rule: String,
    /// The rule of the shadow version that decided (or `default`).
    pub shadow_rule: String,
    /// Human-readable one-line description of the difference.
    pub summary: String,
}

/// A stored shadow event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ShadowEventRecord {
    /// Increasing id (append order).
    pub id: i64,
    /// When the request was evaluated, unix seconds.
    pub at: i64,
    /// The enforced version.
    pub active_version: Option<i64>,
    /// The shadow version.
    pub shadow_version: i64,
    /// What differed.
    pub kind: String,
    /// Who made the request.
    pub principal: String,
    /// The principal's team.
    pub team: Option<String>,
    /// What was requested.
    pub target: String,
    /// The deciding rule of the active version.
    pub active_rule: String,
    /// The deciding rule of the shadow version.
    pub shadow_rule: String,
    /// One-line description.
    pub summary: String,
}

/// Summary of every recorded difference of one shadow version.
///
/// Each breakdown is sorted by count (highest first), then key (bytewise).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ShadowReport {
    /// Number of differing requests.
    pub total: u64,
    /// Count per `kind`.
    pub by_kind: Vec<(String, u64)>,
    /// Count per rule pair, keyed `"<active_rule> -> <shadow_rule>"`.
    pub by_rule: Vec<(String, u64)>,
    /// Count per principal.
    pub by_principal: Vec<(String, u64)>,
    /// The newest events (at most 20), newest first.
    pub samples: Vec<ShadowEventRecord>,
}

#[derive(sqlx::FromRow)]
struct GroupCount {
    key: String,
    n: i64,
}

#[derive(sqlx::FromRow)]
struct RuleCount {
    active_rule: String,
    shadow_rule: String,
    n: i64,
}

/// Sorts by count descending, then key ascending (bytewise).
fn ranked(mut counts: Vec<(String, u64)>) -> Vec<(String, u64)> {
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// Records shadow events, all in one transaction (multi-row inserts):
    /// either every event is stored or none. An empty slice does nothing.
    pub async fn record_shadow_events(&self, events: &[NewShadowEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let head = "INSERT INTO shadow_events (at, active_version, shadow_version, kind, \
                    principal, team, target, active_rule, shadow_rule, summary) ";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in crate::batch::statement_chunks(events) {
                let mut insert = sqlx::QueryBuilder::new(head);
                insert.push_values(chunk, |mut row, e| {
                    row.push_bind(e.at)
                        .push_bind(e.active_version)
                        .push_bind(e.shadow_version)
                        .push_bind(&e.kind)
                        .push_bind(&e.principal)
                        .push_bind(&e.team)
                        .push_bind(&e.target)
                        .push_bind(&e.active_rule)
                        .push_bind(&e.shadow_rule)
                        .push_bind(&e.summary);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Aggregates every recorded event of `shadow_version` (across all the
    /// times it ran in shadow mode): total, breakdowns by kind, rule pair and
    /// principal, and the 20 newest events. An unknown version gives an
    /// empty report. `total` is the sum of `by_kind`; under concurrent
    /// recording the other breakdowns may include a few newer events.
    pub async fn shadow_report(&self, shadow_version: i64) -> Result<ShadowReport> {
        let group = |column: &str| {
            format!(
                "SELECT {column} AS key, COUNT(*) AS n FROM shadow_events \
                 WHERE shadow_version = $1 GROUP BY {column}"
            )
        };
        let (by_kind_sql, by_principal_sql) = (group("kind"), group("principal"));
        let by_rule_sql = "SELECT active_rule, shadow_rule, COUNT(*) AS n FROM shadow_events \
                           WHERE shadow_version = $1 GROUP BY active_rule, shadow_rule";
        let samples_sql = "SELECT id, at, active_version, shadow_version, kind, principal, team, \
                           target, active_rule, shadow_rule, summary FROM shadow_events \
                           WHERE shadow_version = $1 ORDER BY id DESC LIMIT $2";
        let (kinds, principals, rules, samples) = with_pool!(self, pool => {
            let kinds: Vec<GroupCount> = sqlx::query_as(&by_kind_sql)
                .bind(shadow_version)
                .fetch_all(pool)
                .await?;
            let principals: Vec<GroupCount> = sqlx::query_as(&by_principal_sql)
                .bind(shadow_version)
                .fetch_all(pool)
                .await?;
            let rules: Vec<RuleCount> = sqlx::query_as(by_rule_sql)
                .bind(shadow_version)
                .fetch_all(pool)
                .await?;
            let samples: Vec<ShadowEventRecord> = sqlx::query_as(samples_sql)
                .bind(shadow_version)
                .bind(REPORT_SAMPLES)
                .fetch_all(pool)
                .await?;
            (kinds, principals, rules, samples)
        });
        let by_kind = ranked(kinds.into_iter().map(|g| (g.key, count(g.n))).collect());
        let total = by_kind.iter().map(|(_, n)| n).sum();
        Ok(ShadowReport {
            total,
            by_kind,
            by_rule: ranked(
                rules
                    .into_iter()
                    .map(|r| {
                        (
                            format!("{} -> {}", r.active_rule, r.shadow_rule),
                            count(r.n),
                        )
                    })
                    .collect(),
            ),
            by_principal: ranked(
                principals
                    .into_iter()
                    .map(|g| (g.key, count(g.n)))
                    .collect(),
            ),
            samples,
        })
    }
}
