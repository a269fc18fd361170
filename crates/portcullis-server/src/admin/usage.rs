//! `GET /api/v1/usage?team=&key_id=&since=&until=`: usage and spend, filtered to what the
//! caller may read (a `team` or `key_id` of another team is refused outright).

use super::{bad_request, store_error, Ctx};
use crate::error::GatewayError;
use crate::policy_ops::now;
use axum::extract::Query;
use axum::Json;
use portcullis_policy::rbac::Permission;
use portcullis_store::UsageQuery;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Query of `GET /api/v1/usage`.
#[derive(Deserialize)]
pub struct Params {
    team: Option<String>,
    key_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// A time bound: unix seconds, or a lifetime back from now (`7d`, `12h`).
pub fn time_bound(text: &str, param: &str) -> Result<i64, GatewayError> {
    if let Ok(at) = text.trim().parse::<i64>() {
        return Ok(at);
    }
    super::parse_lifetime(text)
        .map(|secs| now() - secs)
        .map_err(|m| bad_request(format!("{param}: {m} or unix seconds"), param))
}

/// `GET /api/v1/usage`.
pub async fn summary(ctx: Ctx, Query(q): Query<Params>) -> Result<Json<Value>, GatewayError> {
    if !ctx.can_any(Permission::UsageRead) {
        return ctx
            .deny("usage.read", "-", Permission::UsageRead, "own")
            .await;
    }
    let keys = ctx.state.store.list_keys().await.map_err(store_error)?;
    let owners: HashMap<&str, (Option<&str>, Option<&str>)> = keys
        .iter()
        .map(|k| (k.id.as_str(), (k.owner.as_deref(), k.team.as_deref())))
        .collect();
    if let Some(team) = &q.team {
        let rel = ctx.team_relation(Some(team));
        ctx.require(Permission::UsageRead, rel.as_str(), "usage.read", team)
            .await?;
    }
    if let Some(id) = &q.key_id {
        let (owner, team) = owners.get(id.as_str()).copied().unwrap_or((None, None));
        let rel = ctx.key_relation(id, owner, team);
        ctx.require(Permission::UsageRead, rel.as_str(), "usage.read", id)
            .await?;
    }
    let until = match &q.until {
        Some(t) => time_bound(t, "until")?,
        None => now() + 1,
    };
    let since = match &q.since {
        Some(t) => time_bound(t, "since")?,
        None => now() - 30 * 86_400,
    };
    let rows = ctx
        .state
        .store
        .usage_summary(&UsageQuery {
            team: q.team.clone(),
            key_id: q.key_id.clone(),
            since,
            until,
        })
        .await
        .map_err(store_error)?;
    let visible: Vec<_> = rows
        .into_iter()
        .filter(|r| {
            let owner = owners.get(r.key_id.as_str()).and_then(|(o, _)| *o);
            let rel = ctx.key_relation(&r.key_id, owner, r.team.as_deref());
            ctx.can(Permission::UsageRead, rel.as_str())
        })
        .collect();
    let total_cost: i64 = visible.iter().map(|r| r.cost_micros).sum();
    let total_requests: i64 = visible.iter().map(|r| r.requests).sum();
    Ok(Json(json!({
        "since": since, "until": until, "data": visible,
        "total": {"requests": total_requests, "cost_micros": total_cost},
    })))
}
