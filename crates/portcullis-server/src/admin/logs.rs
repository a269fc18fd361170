//! `GET /api/v1/logs`: request logs, newest first, with filters and keyset pagination
//! (`before_id`). Needs `logs:read`; what a caller sees follows the relation of each
//! record to it, like usage: `own` (its own key or principal), `team`, `other-team`.

use super::{bad_request, store_error, Ctx};
use crate::error::GatewayError;
use axum::extract::Query;
use axum::Json;
use portcullis_policy::rbac::{Permission, Relation};
use portcullis_store::{RequestLogQuery, RequestLogRecord};
use serde::Deserialize;
use serde_json::{json, Value};

/// Largest page.
const MAX_LIMIT: u32 = 1000;

/// Query of `GET /api/v1/logs`.
#[derive(Deserialize)]
pub struct Params {
    from: Option<String>,
    to: Option<String>,
    team: Option<String>,
    key: Option<String>,
    principal: Option<String>,
    model: Option<String>,
    status: Option<u16>,
    denied: Option<bool>,
    limit: Option<u32>,
    before_id: Option<i64>,
}

/// `GET /api/v1/logs`.
pub async fn list(ctx: Ctx, Query(q): Query<Params>) -> Result<Json<Value>, GatewayError> {
    if !ctx.can_any(Permission::LogsRead) {
        return ctx
            .deny("logs.read", "-", Permission::LogsRead, "own")
            .await;
    }
    let mut query = RequestLogQuery {
        from: q
            .from
            .as_deref()
            .map(|t| super::reports::instant(t, "from"))
            .transpose()?,
        to: q
            .to
            .as_deref()
            .map(|t| super::reports::instant(t, "to"))
            .transpose()?,
        team: q.team.clone(),
        key_id: q.key.clone(),
        principal: q.principal.clone(),
        model: q.model,
        status: q.status,
        denied_only: q.denied.unwrap_or(false),
        before_id: q.before_id,
        limit: q.limit.unwrap_or(100).min(MAX_LIMIT),
    };
    if let Some(team) = &q.team {
        let rel = ctx.team_relation(Some(team));
        ctx.require(Permission::LogsRead, rel.as_str(), "logs.read", team)
            .await?;
    }
    if let Some(id) = &q.key {
        let key = ctx.state.store.get_key(id).await.map_err(store_error)?;
        let (owner, team) = key
            .as_ref()
            .map(|k| (k.owner.as_deref(), k.team.as_deref()))
            .unwrap_or((None, None));
        let rel = ctx.key_relation(id, owner, team);
        ctx.require(Permission::LogsRead, rel.as_str(), "logs.read", id)
            .await?;
    }
    // Narrow the query to what the caller may read, so pages are not emptied by the
    // per-record check below.
    if !ctx.can(Permission::LogsRead, Relation::OtherTeam.as_str()) {
        if ctx.can(Permission::LogsRead, Relation::Team.as_str()) {
            match ctx.team() {
                Some(team) => query.team = Some(team),
                None => query.principal = Some(ctx.identity().to_string()),
            }
        } else {
            if q.principal.as_deref().is_some_and(|p| p != ctx.identity()) {
                return Err(bad_request(
                    "this key may read only its own request logs",
                    "principal",
                ));
            }
            query.principal = Some(ctx.identity().to_string());
        }
    }
    let records = ctx
        .state
        .store
        .list_request_logs(&query)
        .await
        .map_err(store_error)?;
    let next = (records.len() as u32 == query.limit && query.limit > 0)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let visible: Vec<RequestLogRecord> = records
        .into_iter()
        .filter(|r| ctx.can(Permission::LogsRead, relation(&ctx, r).as_str()))
        .collect();
    Ok(Json(json!({ "data": visible, "next_before_id": next })))
}

/// How a record relates to the caller.
fn relation(ctx: &Ctx, r: &RequestLogRecord) -> Relation {
    let own = r.log.key_id.as_deref() == Some(ctx.caller.id.as_str())
        || r.log.principal.as_deref() == Some(ctx.identity());
    if own {
        Relation::Own
    } else {
        ctx.team_relation(r.log.team.as_deref())
    }
}
