//! `/api/v1/me`, `/api/v1/users`, `/api/v1/teams`, `/api/v1/roles`.

use super::{bad_request, json_body, store_error, Ctx, GLOBAL};
use crate::error::GatewayError;
use crate::policy_ops::now;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use portcullis_policy::rbac::{Permission, Relation, BUILTIN_ROLES};
use portcullis_store::NewUser;
use serde::Deserialize;
use serde_json::{json, Value};

/// `GET /api/v1/me`: who the caller is and what its role grants (any valid key).
pub async fn me(ctx: Ctx) -> Json<Value> {
    let k = &ctx.caller;
    let grants = ctx.with_policy(|p| p.and_then(|p| p.role_grants(&k.role)));
    let permissions: Vec<Value> = grants
        .unwrap_or_default()
        .into_iter()
        .map(|(p, r)| json!({"permission": p.as_str(), "resources": r}))
        .collect();
    let active = ctx.state.policy.load().active.as_ref().map(|a| a.version);
    Json(json!({
        "key_id": k.id, "name": k.name, "team": k.team, "role": k.role, "owner": k.owner,
        "expires_at": k.expires_at, "permissions": permissions, "policy_version": active,
    }))
}

/// `GET /api/v1/users`: the users the caller may read (by team relation).
pub async fn list_users(ctx: Ctx) -> Result<Json<Value>, GatewayError> {
    if !ctx.can_any(Permission::UsersRead) {
        return ctx
            .deny("user.list", "-", Permission::UsersRead, "team")
            .await;
    }
    let users = ctx.state.store.list_users().await.map_err(store_error)?;
    let visible: Vec<_> = users
        .into_iter()
        .filter(|u| {
            let rel = if u.id == ctx.identity() {
                Relation::Own
            } else {
                ctx.team_relation(u.team.as_deref())
            };
            ctx.can(Permission::UsersRead, rel.as_str())
        })
        .collect();
    Ok(Json(json!({ "data": visible })))
}

/// Body of `POST /api/v1/users`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    name: String,
    email: Option<String>,
    team: Option<String>,
    role: Option<String>,
}

/// `POST /api/v1/users`: creates a user; its role must be one the caller can grant.
pub async fn create_user(ctx: Ctx, body: Bytes) -> Result<impl IntoResponse, GatewayError> {
    let body: CreateUser = json_body(&body)?;
    if body.name.trim().is_empty() {
        return Err(bad_request("name must not be empty", "name"));
    }
    let team = body.team.or_else(|| ctx.caller.team.clone());
    let rel = ctx.team_relation(team.as_deref());
    ctx.require(
        Permission::UsersWrite,
        rel.as_str(),
        "user.create",
        &body.name,
    )
    .await?;
    let role = body.role.unwrap_or_else(|| "developer".into());
    if !ctx.role_exists(&role) {
        return Err(bad_request(format!("unknown role '{role}'"), "role"));
    }
    if !ctx.can_grant(&role) {
        let detail = json!({"role": role, "reason": "cannot grant more than held"});
        ctx.audit("user.create", &body.name, "denied", detail).await;
        return Err(GatewayError::GrantDenied { role });
    }
    let id = new_user_id()?;
    let user = ctx
        .state
        .store
        .create_user(&NewUser {
            id,
            name: body.name,
            email: body.email,
            team,
            role,
            created_at: now(),
        })
        .await
        .map_err(store_error)?;
    let detail = json!({"name": user.name, "team": user.team, "role": user.role});
    ctx.audit("user.create", &user.id, "ok", detail).await;
    Ok((StatusCode::CREATED, Json(json!(user))))
}

/// A fresh `user_` + 12 hex digits id.
pub fn new_user_id() -> Result<String, GatewayError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|_| GatewayError::Internal)?;
    Ok(format!("user_{}", hex::encode(bytes)))
}

/// `POST /api/v1/users/{id}/disable`.
pub async fn disable_user(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, GatewayError> {
    let user = ctx.state.store.get_user(&id).await.map_err(store_error)?;
    let Some(user) = user else {
        return Err(GatewayError::ResourceNotFound(format!(
            "no user with id {id}"
        )));
    };
    let rel = ctx.team_relation(user.team.as_deref());
    ctx.require(Permission::UsersWrite, rel.as_str(), "user.disable", &id)
        .await?;
    ctx.state
        .store
        .disable_user(&id, now())
        .await
        .map_err(store_error)?;
    ctx.audit("user.disable", &id, "ok", json!({})).await;
    let user = ctx.state.store.get_user(&id).await.map_err(store_error)?;
    Ok(Json(json!(user)))
}

/// `GET /api/v1/teams`: the teams the caller may read (its own for team-scoped roles).
pub async fn list_teams(ctx: Ctx) -> Result<Json<Value>, GatewayError> {
    if !ctx.can_any(Permission::TeamsRead) {
        return ctx
            .deny("team.list", "-", Permission::TeamsRead, "team")
            .await;
    }
    let teams = ctx.state.store.list_teams().await.map_err(store_error)?;
    let visible: Vec<_> = teams
        .into_iter()
        .filter(|t| {
            let rel = ctx.team_relation(Some(&t.name));
            ctx.can(Permission::TeamsRead, rel.as_str())
        })
        .collect();
    Ok(Json(json!({ "data": visible })))
}

/// Body of `POST /api/v1/teams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /api/v1/teams` (`teams:write` on `other-team`: a new team is never the caller's).
pub async fn create_team(ctx: Ctx, body: Bytes) -> Result<impl IntoResponse, GatewayError> {
    let body: CreateTeam = json_body(&body)?;
    let name = body.name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(bad_request(
            "name must be non-empty letters, digits, '-', '_' or '.'",
            "name",
        ));
    }
    let rel = ctx.team_relation(Some(name));
    ctx.require(Permission::TeamsWrite, rel.as_str(), "team.create", name)
        .await?;
    let team = ctx
        .state
        .store
        .create_team(name, &body.description, now())
        .await
        .map_err(store_error)?;
    ctx.audit(
        "team.create",
        name,
        "ok",
        json!({"description": team.description}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(json!(team))))
}

/// `GET /api/v1/roles`: built-in and custom roles with their grants (`policies:read`:
/// roles are part of the policy).
pub async fn roles(ctx: Ctx) -> Result<Json<Value>, GatewayError> {
    ctx.require(Permission::PoliciesRead, GLOBAL, "role.list", "-")
        .await?;
    let mut names: Vec<String> = BUILTIN_ROLES.iter().map(|s| s.to_string()).collect();
    let snapshot = ctx.state.policy.load();
    if let Some(active) = &snapshot.active {
        let text = ctx
            .state
            .store
            .get_policy_version(active.version)
            .await
            .map_err(store_error)?
            .map(|v| v.document)
            .unwrap_or_default();
        if let Ok(v) = portcullis_policy::document::parse_policy(&text) {
            names.extend(v.document.roles.keys().cloned());
        }
    }
    let data: Vec<Value> = names
        .iter()
        .map(|name| {
            let grants = ctx.with_policy(|p| p.and_then(|p| p.role_grants(name)));
            let permissions: Vec<Value> = grants
                .unwrap_or_default()
                .into_iter()
                .map(|(p, r)| json!({"permission": p.as_str(), "resources": r}))
                .collect();
            json!({
                "name": name,
                "builtin": BUILTIN_ROLES.contains(&name.as_str()),
                "permissions": permissions,
            })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}
