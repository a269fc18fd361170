//! `GET /api/v1/audit?since=&until=&actor=&action=&limit=&before_id=`: the audit log,
//! newest first, with keyset pagination (`audit:read` on `*`).

use super::usage::time_bound;
use super::{store_error, Ctx, GLOBAL};
use crate::error::GatewayError;
use axum::extract::Query;
use axum::Json;
use portcullis_policy::rbac::Permission;
use portcullis_store::AuditQuery;
use serde::Deserialize;
use serde_json::{json, Value};

/// Query of `GET /api/v1/audit`.
#[derive(Deserialize)]
pub struct Params {
    since: Option<String>,
    until: Option<String>,
    actor: Option<String>,
    /// Action prefix, e.g. `policy.`.
    action: Option<String>,
    limit: Option<u32>,
    before_id: Option<i64>,
}

/// `GET /api/v1/audit`.
pub async fn list(ctx: Ctx, Query(q): Query<Params>) -> Result<Json<Value>, GatewayError> {
    ctx.require(Permission::AuditRead, GLOBAL, "audit.read", "-")
        .await?;
    let query = AuditQuery {
        since: q
            .since
            .as_deref()
            .map(|t| time_bound(t, "since"))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|t| time_bound(t, "until"))
            .transpose()?,
        actor: q.actor,
        action_prefix: q.action,
        limit: q.limit.unwrap_or(100).min(1000),
        before_id: q.before_id,
    };
    let entries = ctx
        .state
        .store
        .list_audit(&query)
        .await
        .map_err(store_error)?;
    let next = (entries.len() as u32 == query.limit && query.limit > 0)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(json!({ "data": entries, "next_before_id": next })))
}
