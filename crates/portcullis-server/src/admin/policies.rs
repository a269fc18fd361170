//! `/api/v1/policies`: history, active, one version, validate, diff, apply (enforced or
//! shadow), rollback, shadow report, promote, discard. The lifecycle itself lives in
//! [`crate::policy_ops`], shared with the CLI.

use super::{json_body, store_error, Ctx, GLOBAL};
use crate::error::GatewayError;
use crate::policy_ops::{self, OpsError};
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use portcullis_policy::rbac::Permission;
use serde::Deserialize;
use serde_json::{json, Value};

fn ops_error(e: OpsError) -> GatewayError {
    match e {
        OpsError::Invalid(problems) => GatewayError::InvalidPolicy(problems),
        OpsError::NotFound(m) => GatewayError::ResourceNotFound(m),
        OpsError::Conflict(m) => GatewayError::Conflict(m),
        OpsError::Store(e) => store_error(e),
    }
}

/// A document sent as YAML text, or as JSON `{"document": "..."}`.
fn document(headers: &HeaderMap, body: &[u8]) -> Result<String, GatewayError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped {
        document: String,
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if is_json {
        return json_body::<Wrapped>(body).map(|w| w.document);
    }
    String::from_utf8(body.to_vec()).map_err(|_| GatewayError::BadRequest {
        message: "the policy document must be UTF-8 text".into(),
        param: None,
    })
}

async fn read(ctx: &Ctx, action: &str, target: &str) -> Result<(), GatewayError> {
    ctx.require(Permission::PoliciesRead, GLOBAL, action, target)
        .await
}

async fn write(ctx: &Ctx, action: &str, target: &str) -> Result<(), GatewayError> {
    ctx.require(Permission::PoliciesWrite, GLOBAL, action, target)
        .await
}

/// Makes this instance switch at once (others follow by polling within a second).
async fn refresh(ctx: &Ctx) {
    if let Err(e) = ctx.state.refresh_policy().await {
        tracing::error!(error = %e, "cannot load the policy just changed; the poller will retry");
    }
}

/// `GET /api/v1/policies`: every version (without documents) and the active/shadow state.
pub async fn history(ctx: Ctx) -> Result<Json<Value>, GatewayError> {
    read(&ctx, "policy.history", "-").await?;
    let store = &ctx.state.store;
    let versions = store.list_policy_versions().await.map_err(store_error)?;
    let state = store.policy_state().await.map_err(store_error)?;
    Ok(Json(json!({ "data": versions, "state": state })))
}

/// `GET /api/v1/policies/active`: the enforced version with its document.
pub async fn active(ctx: Ctx) -> Result<Json<Value>, GatewayError> {
    read(&ctx, "policy.show", "active").await?;
    let state = ctx.state.store.policy_state().await.map_err(store_error)?;
    let Some(v) = state.active_version else {
        return Err(GatewayError::ResourceNotFound(
            "no policy version is active".into(),
        ));
    };
    show_version(&ctx, v).await
}

/// `GET /api/v1/policies/{version}`: one version with its document.
pub async fn show(ctx: Ctx, Path(version): Path<String>) -> Result<Json<Value>, GatewayError> {
    read(&ctx, "policy.show", &version).await?;
    let v = parse_version(&version)?;
    show_version(&ctx, v).await
}

fn parse_version(text: &str) -> Result<i64, GatewayError> {
    text.parse()
        .map_err(|_| GatewayError::ResourceNotFound(format!("no policy version '{text}'")))
}

async fn show_version(ctx: &Ctx, v: i64) -> Result<Json<Value>, GatewayError> {
    let stored = ctx
        .state
        .store
        .get_policy_version(v)
        .await
        .map_err(store_error)?
        .ok_or_else(|| GatewayError::ResourceNotFound(format!("no policy version {v}")))?;
    Ok(Json(json!(stored)))
}

/// `POST /api/v1/policies/validate`: `{valid, problems, warnings, hash}`; writes nothing.
pub async fn validate(
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, GatewayError> {
    read(&ctx, "policy.validate", "-").await?;
    let text = document(&headers, &body)?;
    Ok(Json(json!(policy_ops::validate(&text))))
}

/// `POST /api/v1/policies/diff`: changes of a document against the active version.
pub async fn diff(ctx: Ctx, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, GatewayError> {
    read(&ctx, "policy.diff", "-").await?;
    let text = document(&headers, &body)?;
    let outcome = policy_ops::diff_against_active(&ctx.state.store, &text)
        .await
        .map_err(ops_error)?;
    Ok(Json(json!({
        "against": outcome.against,
        "changes": outcome.changes.changes,
        "text": outcome.text,
    })))
}

/// Query of `POST /api/v1/policies`.
#[derive(Deserialize)]
pub struct ApplyQuery {
    #[serde(default)]
    shadow: bool,
    #[serde(default)]
    comment: String,
}

/// `POST /api/v1/policies?shadow=&comment=`: validates, appends and activates (or shadows)
/// a document. Invalid documents answer 400 with every problem; nothing changes.
pub async fn apply(
    ctx: Ctx,
    Query(q): Query<ApplyQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, GatewayError> {
    let action = if q.shadow {
        "policy.shadow"
    } else {
        "policy.apply"
    };
    write(&ctx, action, "-").await?;
    let text = document(&headers, &body)?;
    let actor = ctx.caller.id.clone();
    let applied = policy_ops::apply(
        &ctx.state.store,
        &text,
        &actor,
        &q.comment,
        q.shadow,
        ctx.actor(),
    )
    .await
    .map_err(ops_error)?;
    refresh(&ctx).await;
    Ok((StatusCode::CREATED, Json(json!(applied))))
}

/// `POST /api/v1/policies/{version}/rollback`: activates an earlier version.
pub async fn rollback(ctx: Ctx, Path(version): Path<String>) -> Result<Json<Value>, GatewayError> {
    write(&ctx, "policy.rollback", &version).await?;
    let v = parse_version(&version)?;
    let from = policy_ops::rollback(&ctx.state.store, v, ctx.actor())
        .await
        .map_err(ops_error)?;
    refresh(&ctx).await;
    Ok(Json(json!({"active_version": v, "previous_version": from})))
}

/// Query of `GET /api/v1/policies/shadow`.
#[derive(Deserialize)]
pub struct ShadowQuery {
    version: Option<i64>,
}

/// `GET /api/v1/policies/shadow[?version=N]`: the shadow-mode report.
pub async fn shadow_report(
    ctx: Ctx,
    Query(q): Query<ShadowQuery>,
) -> Result<Json<Value>, GatewayError> {
    read(&ctx, "policy.shadow_report", "-").await?;
    let status = policy_ops::shadow_report(&ctx.state.store, q.version)
        .await
        .map_err(ops_error)?;
    Ok(Json(json!(status)))
}

/// `POST /api/v1/policies/shadow/promote`: enforces the shadow version.
pub async fn promote(ctx: Ctx) -> Result<Json<Value>, GatewayError> {
    write(&ctx, "policy.promote", "-").await?;
    let v = policy_ops::promote(&ctx.state.store, ctx.actor())
        .await
        .map_err(ops_error)?;
    refresh(&ctx).await;
    Ok(Json(json!({"active_version": v})))
}

/// `POST /api/v1/policies/shadow/discard`: ends shadow mode.
pub async fn discard(ctx: Ctx) -> Result<Json<Value>, GatewayError> {
    write(&ctx, "policy.discard", "-").await?;
    let v = policy_ops::discard(&ctx.state.store, ctx.actor())
        .await
        .map_err(ops_error)?;
    refresh(&ctx).await;
    Ok(Json(json!({"discarded_version": v})))
}
