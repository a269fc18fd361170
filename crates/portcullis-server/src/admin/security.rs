//! Security views of the admin API, `audit:read` on `*`: `GET /api/v1/audit/config` (the
//! configuration security audit of the running gateway: its configuration, the active
//! policy, the stored keys) and `GET /api/v1/alerts` (stored anomaly alerts).

use super::{Ctx, GLOBAL};
use crate::config_audit::{self, AuditInput};
use crate::error::GatewayError;
use axum::Json;
use portcullis_policy::rbac::Permission;
use serde_json::{json, Value};

/// `GET /api/v1/audit/config`: `{findings, summary, worst}`.
pub async fn config_audit(ctx: Ctx) -> Result<Json<Value>, GatewayError> {
    ctx.require(Permission::AuditRead, GLOBAL, "audit.config", "-")
        .await?;
    let (policy, keys) = config_audit::read_store(&ctx.state.store)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "configuration audit: cannot read the store");
            GatewayError::Internal
        })?;
    let source = &ctx.state.config;
    let findings = config_audit::audit(&AuditInput {
        config: &source.config,
        warnings: source.warnings.get().map_or(&[], Vec::as_slice),
        policy: policy.as_ref(),
        keys: &keys,
        now: crate::policy_ops::now(),
    });
    let summary: serde_json::Map<String, Value> = config_audit::summary(&findings)
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), n.into()))
        .collect();
    Ok(Json(json!({
        "findings": findings,
        "summary": summary,
        "worst": config_audit::worst(&findings),
    })))
}

/// Query of `GET /api/v1/alerts`.
#[derive(serde::Deserialize)]
pub struct AlertParams {
    since: Option<String>,
    until: Option<String>,
    rule: Option<String>,
    subject: Option<String>,
    limit: Option<u32>,
    before_id: Option<i64>,
}

/// `GET /api/v1/alerts?since=&until=&rule=&subject=&limit=&before_id=`: anomaly alerts,
/// newest first (`audit:read` on `*`).
pub async fn alerts(
    ctx: Ctx,
    axum::extract::Query(q): axum::extract::Query<AlertParams>,
) -> Result<Json<Value>, GatewayError> {
    ctx.require(Permission::AuditRead, GLOBAL, "alerts.read", "-")
        .await?;
    let bound = |t: Option<String>, name| {
        t.as_deref()
            .map(|t| super::usage::time_bound(t, name))
            .transpose()
    };
    let query = portcullis_store::AlertQuery {
        since: bound(q.since, "since")?,
        until: bound(q.until, "until")?,
        rule: q.rule,
        subject: q.subject,
        limit: q.limit.unwrap_or(100).min(1000),
        before_id: q.before_id,
    };
    let alerts = ctx
        .state
        .store
        .list_alerts(&query)
        .await
        .map_err(super::store_error)?;
    let next = (alerts.len() as u32 == query.limit && query.limit > 0)
        .then(|| alerts.last().map(|a| a.id))
        .flatten();
    Ok(Json(json!({ "data": alerts, "next_before_id": next })))
}
