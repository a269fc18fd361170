//! Circuit breakers of the model targets: `GET /api/v1/breakers` (`routing:read` on `*`)
//! and `POST /api/v1/breakers/{id}/reset` (`routing:write` on `*`, audited).

use super::{Ctx, GLOBAL};
use crate::error::GatewayError;
use crate::groups::TargetHealth;
use axum::extract::Path;
use axum::Json;
use portcullis_policy::rbac::Permission;
use serde_json::{json, Value};
use std::time::{Instant, SystemTime};

/// `GET /api/v1/breakers`.
pub async fn list(ctx: Ctx) -> Result<Json<Value>, GatewayError> {
    ctx.require(Permission::RoutingRead, GLOBAL, "breakers.read", "-")
        .await?;
    let data: Vec<Value> = ctx
        .state
        .routing
        .targets
        .iter()
        .map(|t| describe(&ctx, t))
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `POST /api/v1/breakers/{id}/reset`: closes the breaker and forgets failures and holds.
pub async fn reset(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, GatewayError> {
    ctx.require(Permission::RoutingWrite, GLOBAL, "breaker.reset", &id)
        .await?;
    let target = id
        .parse::<usize>()
        .ok()
        .and_then(|i| ctx.state.routing.targets.get(i))
        .ok_or_else(|| GatewayError::ResourceNotFound(format!("no breaker with id '{id}'")))?
        .clone();
    let before = target.snapshot(Instant::now()).state.label();
    target.reset();
    ctx.audit(
        "breaker.reset",
        &target.label,
        "ok",
        json!({ "id": target.id, "state_before": before }),
    )
    .await;
    Ok(Json(describe(&ctx, &target)))
}

fn describe(ctx: &Ctx, t: &TargetHealth) -> Value {
    let now = Instant::now();
    let wall = SystemTime::now();
    let at = |i: Instant| {
        let when = if i <= now {
            wall - (now - i)
        } else {
            wall + (i - now)
        };
        humantime::format_rfc3339_seconds(when).to_string()
    };
    let snap = t.snapshot(now);
    let mut models: Vec<&str> = ctx
        .state
        .routes
        .values()
        .filter(|r| r.members.iter().any(|m| m.target.id == t.id))
        .map(|r| r.model.as_str())
        .collect();
    models.sort_unstable();
    json!({
        "id": t.id,
        "target": t.label,
        "provider": t.provider,
        "upstream_model": t.upstream_model,
        "models": models,
        "state": snap.state.label(),
        "consecutive_failures": snap.consecutive_failures,
        "times_opened": snap.times_opened,
        "opened_at": snap.opened_at.map(at),
        "next_probe_at": snap.next_probe_at.filter(|p| *p > now).map(at),
        "held_until": snap.held_until.map(at),
        "in_flight": t.in_flight(),
        "latency_ewma_ms": t.latency_us().map(|us| us as f64 / 1000.0),
    })
}
