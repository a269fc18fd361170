//! `/api/v1/keys`: list, create (the secret is returned once), revoke, rotate, expire.
//! Team isolation: every key is checked against its relation to the caller.

use super::{bad_request, json_body, store_error, Ctx};
use crate::error::GatewayError;
use crate::policy_ops::now;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use portcullis_policy::rbac::Permission;
use portcullis_store::{KeyRecord, NewKey};
use serde::Deserialize;
use serde_json::{json, Value};

/// The public view of a key: never the secret, never its hash.
pub fn view(r: &KeyRecord, now: i64) -> Value {
    let state = if r.revoked_at.is_some() {
        "revoked"
    } else if r.expires_at.is_some_and(|at| now >= at) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": r.id, "name": r.name, "prefix": r.prefix, "state": state, "models": r.models,
        "team": r.team, "role": r.role, "owner": r.owner, "created_at": r.created_at,
        "expires_at": r.expires_at, "revoked_at": r.revoked_at, "last_used_at": r.last_used_at,
    })
}

/// Filters of `GET /api/v1/keys`.
#[derive(Deserialize)]
pub struct ListQuery {
    team: Option<String>,
    owner: Option<String>,
}

/// `GET /api/v1/keys`: the keys the caller may read (`?team=` of another team is 403).
pub async fn list(ctx: Ctx, Query(q): Query<ListQuery>) -> Result<Json<Value>, GatewayError> {
    if !ctx.can_any(Permission::KeysRead) {
        return ctx.deny("key.list", "-", Permission::KeysRead, "own").await;
    }
    if let Some(team) = &q.team {
        let rel = ctx.team_relation(Some(team));
        ctx.require(Permission::KeysRead, rel.as_str(), "key.list", team)
            .await?;
    }
    let records = ctx.state.store.list_keys().await.map_err(store_error)?;
    let now = now();
    let keys: Vec<Value> = records
        .iter()
        .filter(|r| q.team.as_ref().is_none_or(|t| r.team.as_ref() == Some(t)))
        .filter(|r| q.owner.as_ref().is_none_or(|o| r.owner.as_ref() == Some(o)))
        .filter(|r| {
            let rel = ctx.key_relation(&r.id, r.owner.as_deref(), r.team.as_deref());
            ctx.can(Permission::KeysRead, rel.as_str())
        })
        .map(|r| view(r, now))
        .collect();
    Ok(Json(json!({ "data": keys })))
}

/// Body of `POST /api/v1/keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    #[serde(default)]
    models: Vec<String>,
    team: Option<String>,
    role: Option<String>,
    owner: Option<String>,
    expires_in: Option<String>,
}

/// `POST /api/v1/keys`: creates a key; the answer carries the secret, shown only once.
pub async fn create(ctx: Ctx, body: Bytes) -> Result<impl IntoResponse, GatewayError> {
    let body: CreateKey = json_body(&body)?;
    if body.name.trim().is_empty() {
        return Err(bad_request("name must not be empty", "name"));
    }
    for glob in &body.models {
        if globset_invalid(glob) {
            return Err(bad_request(
                format!("'{glob}' is not a valid glob"),
                "models",
            ));
        }
    }
    let team = body.team.or_else(|| ctx.caller.team.clone());
    let owner = body.owner.unwrap_or_else(|| ctx.identity().to_string());
    let role = body.role.unwrap_or_else(|| "developer".into());
    let rel = ctx.key_relation("", Some(&owner), team.as_deref());
    let target = format!("owner={owner}");
    ctx.require(Permission::KeysCreate, rel.as_str(), "key.create", &target)
        .await?;
    if !ctx.role_exists(&role) {
        return Err(bad_request(format!("unknown role '{role}'"), "role"));
    }
    if !ctx.can_grant(&role) {
        let detail = json!({"role": role, "reason": "cannot grant more than held"});
        ctx.audit("key.create", &target, "denied", detail).await;
        return Err(GatewayError::GrantDenied { role });
    }
    let created_at = now();
    let expires_at = match &body.expires_in {
        None => None,
        Some(text) => Some(
            created_at + super::parse_lifetime(text).map_err(|m| bad_request(m, "expires_in"))?,
        ),
    };
    let key = portcullis_policy::generate_key().map_err(|_| GatewayError::Internal)?;
    let record = ctx
        .state
        .store
        .create_key(&NewKey {
            id: key.id.clone(),
            name: body.name,
            prefix: key.prefix.clone(),
            hash: key.hash.clone(),
            models: body.models,
            created_at,
            expires_at,
            team,
            role,
            owner: Some(owner),
        })
        .await
        .map_err(store_error)?;
    let detail = json!({"name": record.name, "team": record.team, "role": record.role,
        "owner": record.owner, "models": record.models, "expires_at": record.expires_at});
    ctx.audit("key.create", &record.id, "ok", detail).await;
    refresh_keys(&ctx).await;
    let mut out = view(&record, created_at);
    out["key"] = Value::String(key.secret);
    Ok((StatusCode::CREATED, Json(out)))
}

fn globset_invalid(glob: &str) -> bool {
    globset::Glob::new(glob).is_err()
}

async fn refresh_keys(ctx: &Ctx) {
    if let Err(e) = ctx.state.refresh_keys().await {
        tracing::warn!(error = %e, "cannot refresh keys after an admin change; the poller will");
    }
}

/// Loads a key and checks `permission` on it (404 for unknown ids, audited 403 otherwise).
async fn target_key(
    ctx: &Ctx,
    id: &str,
    permission: Permission,
    action: &str,
) -> Result<KeyRecord, GatewayError> {
    let record = ctx.state.store.get_key(id).await.map_err(store_error)?;
    let Some(record) = record else {
        return Err(GatewayError::ResourceNotFound(format!(
            "no key with id {id}"
        )));
    };
    let rel = ctx.key_relation(&record.id, record.owner.as_deref(), record.team.as_deref());
    ctx.require(permission, rel.as_str(), action, id).await?;
    Ok(record)
}

/// `POST /api/v1/keys/{id}/revoke`.
pub async fn revoke(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, GatewayError> {
    target_key(&ctx, &id, Permission::KeysRevoke, "key.revoke").await?;
    ctx.state
        .store
        .revoke_key(&id, now())
        .await
        .map_err(store_error)?;
    ctx.audit("key.revoke", &id, "ok", json!({})).await;
    refresh_keys(&ctx).await;
    let record = ctx.state.store.get_key(&id).await.map_err(store_error)?;
    Ok(Json(record.map_or(Value::Null, |r| view(&r, now()))))
}

/// `POST /api/v1/keys/{id}/rotate`: revokes the key and returns a replacement (same name,
/// models, team, role, owner and expiry) with its secret, shown only once.
pub async fn rotate(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, GatewayError> {
    let old = target_key(&ctx, &id, Permission::KeysRevoke, "key.rotate").await?;
    let key = portcullis_policy::generate_key().map_err(|_| GatewayError::Internal)?;
    let at = now();
    let new = NewKey {
        id: key.id.clone(),
        name: old.name,
        prefix: key.prefix.clone(),
        hash: key.hash.clone(),
        models: old.models,
        created_at: at,
        expires_at: old.expires_at,
        team: old.team,
        role: old.role,
        owner: old.owner,
    };
    let Some(record) = ctx
        .state
        .store
        .rotate_key(&id, &new, at)
        .await
        .map_err(store_error)?
    else {
        return Err(GatewayError::Conflict(format!(
            "key {id} is revoked; only active keys rotate"
        )));
    };
    ctx.audit("key.rotate", &id, "ok", json!({"new_id": record.id}))
        .await;
    refresh_keys(&ctx).await;
    let mut out = view(&record, at);
    out["key"] = Value::String(key.secret);
    out["replaces"] = Value::String(id);
    Ok(Json(out))
}

/// Body of `POST /api/v1/keys/{id}/expire`: a unix time, or `null` for no expiry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expire {
    at: Option<i64>,
}

/// `POST /api/v1/keys/{id}/expire`.
pub async fn expire(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, GatewayError> {
    let body: Expire = json_body(&body)?;
    target_key(&ctx, &id, Permission::KeysRevoke, "key.expire").await?;
    ctx.state
        .store
        .set_key_expiry(&id, body.at)
        .await
        .map_err(store_error)?;
    ctx.audit("key.expire", &id, "ok", json!({"expires_at": body.at}))
        .await;
    refresh_keys(&ctx).await;
    let record = ctx.state.store.get_key(&id).await.map_err(store_error)?;
    Ok(Json(record.map_or(Value::Null, |r| view(&r, now()))))
}
