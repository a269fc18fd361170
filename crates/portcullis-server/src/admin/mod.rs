//! The admin REST API under `/api/v1/` on the admin listener.
//!
//! Every route needs a virtual key (default deny: the only public admin routes are
//! `/healthz` and `/readyz`, outside this router). Authorization is RBAC through the key's
//! role: the active policy's [`CompiledPolicy::can`] when one is active, else the built-in
//! roles. Management permissions are checked against the [`Relation`] of the target to the
//! caller (`own`, `team`, `other-team`), which is how team isolation is expressed; global
//! resources (policies, audit, roles) are checked with the resource `*`. Every change and
//! every denied attempt is written to the audit log with the caller's key id as actor.

mod audit;
mod breakers;
mod identity;
mod keys;
mod logs;
pub mod openapi;
mod policies;
pub mod reports;
mod security;
pub mod usage;

use crate::auth::authenticate;
use crate::error::GatewayError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use portcullis_policy::decide::CompiledPolicy;
use portcullis_policy::rbac::{Permission, Relation};
use portcullis_policy::KeyEntry;
use serde_json::Value;
use std::sync::{Arc, LazyLock};

/// Resource string for permissions on global objects (policies, audit log, roles).
pub const GLOBAL: &str = "*";

/// The routes of the admin API as (method, path) in axum syntax; `openapi.json` must
/// describe each (tested).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/me"),
    ("get", "/api/v1/keys"),
    ("post", "/api/v1/keys"),
    ("post", "/api/v1/keys/{id}/revoke"),
    ("post", "/api/v1/keys/{id}/rotate"),
    ("post", "/api/v1/keys/{id}/expire"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("post", "/api/v1/users/{id}/disable"),
    ("get", "/api/v1/teams"),
    ("post", "/api/v1/teams"),
    ("get", "/api/v1/roles"),
    ("get", "/api/v1/policies"),
    ("post", "/api/v1/policies"),
    ("get", "/api/v1/policies/active"),
    ("post", "/api/v1/policies/validate"),
    ("post", "/api/v1/policies/diff"),
    ("get", "/api/v1/policies/shadow"),
    ("post", "/api/v1/policies/shadow/promote"),
    ("post", "/api/v1/policies/shadow/discard"),
    ("get", "/api/v1/policies/{version}"),
    ("post", "/api/v1/policies/{version}/rollback"),
    ("get", "/api/v1/usage"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/breakers"),
    ("post", "/api/v1/breakers/{id}/reset"),
    ("get", "/api/v1/logs"),
    ("get", "/api/v1/reports/compliance"),
    ("get", "/api/v1/audit/config"),
    ("get", "/api/v1/alerts"),
    ("get", "/api/v1/openapi.json"),
];

/// The `/api/v1` router, every route behind key authentication.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/me", get(identity::me))
        .route("/api/v1/keys", get(keys::list).post(keys::create))
        .route("/api/v1/keys/{id}/revoke", post(keys::revoke))
        .route("/api/v1/keys/{id}/rotate", post(keys::rotate))
        .route("/api/v1/keys/{id}/expire", post(keys::expire))
        .route(
            "/api/v1/users",
            get(identity::list_users).post(identity::create_user),
        )
        .route("/api/v1/users/{id}/disable", post(identity::disable_user))
        .route(
            "/api/v1/teams",
            get(identity::list_teams).post(identity::create_team),
        )
        .route("/api/v1/roles", get(identity::roles))
        .route(
            "/api/v1/policies",
            get(policies::history).post(policies::apply),
        )
        .route("/api/v1/policies/active", get(policies::active))
        .route("/api/v1/policies/validate", post(policies::validate))
        .route("/api/v1/policies/diff", post(policies::diff))
        .route("/api/v1/policies/shadow", get(policies::shadow_report))
        .route("/api/v1/policies/shadow/promote", post(policies::promote))
        .route("/api/v1/policies/shadow/discard", post(policies::discard))
        .route("/api/v1/policies/{version}", get(policies::show))
        .route(
            "/api/v1/policies/{version}/rollback",
            post(policies::rollback),
        )
        .route("/api/v1/usage", get(usage::summary))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/breakers", get(breakers::list))
        .route("/api/v1/breakers/{id}/reset", post(breakers::reset))
        .route("/api/v1/logs", get(logs::list))
        .route("/api/v1/reports/compliance", get(reports::compliance))
        .route("/api/v1/audit/config", get(security::config_audit))
        .route("/api/v1/alerts", get(security::alerts))
        .route("/api/v1/openapi.json", get(openapi::serve))
}

/// Middleware: authenticates the key of every admin request (default deny) and hands
/// the caller to the handlers through the request extensions. A refused key is audited
/// (best effort: see [`crate::audit_trail`]); an authenticated call is refused with 503
/// while the audit queue is full, before it can act unaudited.
pub async fn require_key(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, GatewayError> {
    let key = match authenticate(&state, request.headers()) {
        Ok(key) => key,
        Err(e) => {
            let peer = request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string());
            state.audit.try_append(portcullis_store::NewAuditEntry {
                at: crate::policy_ops::now(),
                actor: "anonymous".into(),
                action: "admin.authenticate".into(),
                target: request.uri().path().chars().take(200).collect(),
                outcome: "denied".into(),
                detail: serde_json::json!({
                    "reason": e.parts().code, "method": request.method().as_str(), "client_ip": peer,
                }),
            });
            return Err(e);
        }
    };
    if !state.audit.has_room() {
        tracing::error!("ALERT: audit queue full; admin call refused");
        return Err(GatewayError::AuditUnavailable);
    }
    request.extensions_mut().insert(Caller(key));
    Ok(next.run(request).await)
}

/// The authenticated key of an admin request.
#[derive(Clone)]
pub struct Caller(pub Arc<KeyEntry>);

/// The built-in roles, used while no policy is active.
static BUILTIN: LazyLock<Option<CompiledPolicy>> = LazyLock::new(|| {
    portcullis_policy::document::parse_policy("version: 1\n")
        .ok()
        .and_then(|v| CompiledPolicy::compile(&v.document).ok())
});

/// What a handler needs: the state and the authenticated caller.
pub struct Ctx {
    /// Shared gateway state.
    pub state: Arc<AppState>,
    /// The caller's key.
    pub caller: Arc<KeyEntry>,
}

impl FromRequestParts<Arc<AppState>> for Ctx {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Ctx, GatewayError> {
        let caller = match parts.extensions.get::<Caller>() {
            Some(c) => c.0.clone(),
            None => authenticate(state, &parts.headers)?,
        };
        Ok(Ctx {
            state: state.clone(),
            caller,
        })
    }
}

impl Ctx {
    /// Runs `f` with the policy that decides permissions (active, or built-in roles).
    pub fn with_policy<T>(&self, f: impl FnOnce(Option<&CompiledPolicy>) -> T) -> T {
        let snapshot = self.state.policy.load();
        match &snapshot.active {
            Some(active) => f(Some(&active.compiled)),
            None => f(BUILTIN.as_ref()),
        }
    }

    /// Whether the caller's role grants `permission` on `resource`.
    pub fn can(&self, permission: Permission, resource: &str) -> bool {
        self.with_policy(|p| p.is_some_and(|p| p.can(&self.caller.role, permission, resource)))
    }

    /// Whether the caller may give `role` to a new key or user.
    pub fn can_grant(&self, role: &str) -> bool {
        self.with_policy(|p| p.is_some_and(|p| p.can_grant(&self.caller.role, role)))
    }

    /// Whether `role` exists (built-in or in the active policy).
    pub fn role_exists(&self, role: &str) -> bool {
        self.with_policy(|p| p.is_some_and(|p| p.has_role(role)))
    }

    /// Whether the caller holds `permission` on at least one relation (lists).
    pub fn can_any(&self, permission: Permission) -> bool {
        [Relation::Own, Relation::Team, Relation::OtherTeam]
            .iter()
            .any(|r| self.can(permission, r.as_str()))
    }

    /// The caller's identity for ownership: its owner, or the key itself.
    pub fn identity(&self) -> &str {
        self.caller.owner.as_deref().unwrap_or(&self.caller.id)
    }

    /// The caller's team (its own, or the active policy's default team).
    pub fn team(&self) -> Option<String> {
        let own = self.caller.team.clone();
        own.or_else(|| {
            self.with_policy(|p| p.and_then(|p| p.effective_team(None)).map(String::from))
        })
    }

    /// How a team relates to the caller: its own team, or another.
    pub fn team_relation(&self, team: Option<&str>) -> Relation {
        let effective = team.map(String::from).or_else(|| {
            self.with_policy(|p| p.and_then(|p| p.effective_team(None)).map(String::from))
        });
        match (self.team(), effective) {
            (Some(mine), Some(theirs)) if mine == theirs => Relation::Team,
            _ => Relation::OtherTeam,
        }
    }

    /// How a key (id, owner, team) relates to the caller.
    pub fn key_relation(&self, id: &str, owner: Option<&str>, team: Option<&str>) -> Relation {
        if id == self.caller.id || owner == Some(self.identity()) {
            Relation::Own
        } else {
            self.team_relation(team)
        }
    }

    /// Checks a permission; a refusal is audited (outcome `denied`) and answered 403.
    pub async fn require(
        &self,
        permission: Permission,
        resource: &str,
        action: &str,
        target: &str,
    ) -> Result<(), GatewayError> {
        if self.can(permission, resource) {
            return Ok(());
        }
        self.deny(action, target, permission, resource).await
    }

    /// Audits a refusal and returns the 403.
    pub async fn deny<T>(
        &self,
        action: &str,
        target: &str,
        permission: Permission,
        resource: &str,
    ) -> Result<T, GatewayError> {
        let detail = serde_json::json!({
            "permission": permission.as_str(), "resource": resource, "role": self.caller.role,
        });
        self.audit(action, target, "denied", detail).await;
        Err(GatewayError::Forbidden {
            permission: permission.as_str(),
        })
    }

    /// Appends an audit entry as this caller through the audit queue and waits until it
    /// is stored. The append runs on its own task, so it completes even if the client
    /// disconnects.
    pub async fn audit(&self, action: &str, target: &str, outcome: &str, detail: Value) {
        let state = self.state.clone();
        let entry = portcullis_store::NewAuditEntry {
            at: crate::policy_ops::now(),
            actor: self.caller.id.clone(),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
            detail,
        };
        let task = tokio::spawn(async move { state.audit.append(entry).await });
        let _ = task.await;
    }

    /// The caller as the actor of a policy lifecycle step (audited through the queue).
    pub fn actor(&self) -> crate::policy_ops::Actor<'_> {
        crate::policy_ops::Actor {
            id: &self.caller.id,
            trail: Some(&self.state.audit),
        }
    }
}

/// Maps a store failure to the client answer (details logged once).
pub fn store_error(e: portcullis_store::StoreError) -> GatewayError {
    use portcullis_store::StoreError;
    match e {
        StoreError::Conflict(m) => GatewayError::Conflict(m),
        StoreError::NotFound(m) => GatewayError::ResourceNotFound(m),
        StoreError::Invalid(m) => GatewayError::BadRequest {
            message: m,
            param: None,
        },
        other => {
            tracing::error!(error = %other, "admin API: store failure");
            GatewayError::Internal
        }
    }
}

/// Parses a lifetime such as `30d`, `12h`, `90m` into seconds.
pub fn parse_lifetime(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a lifetime (examples: 30d, 12h, 90m)"))?;
    let factor = match unit.trim() {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "'{text}' is not a lifetime (examples: 30d, 12h, 90m)"
            ))
        }
    };
    if n <= 0 {
        return Err("a lifetime must be longer than zero".into());
    }
    n.checked_mul(factor)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// A `BadRequest` with a message and the field at fault.
pub fn bad_request(message: impl Into<String>, param: &str) -> GatewayError {
    GatewayError::BadRequest {
        message: message.into(),
        param: Some(param.to_string()),
    }
}

/// Parses a JSON request body (an empty body reads as `{}`), answering 400 in the
/// OpenAI error envelope when it does not fit.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| GatewayError::BadRequest {
        message: format!("invalid JSON body: {e}"),
        param: None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn lifetimes() {
        assert_eq!(super::parse_lifetime("30d"), Ok(30 * 86_400));
        assert_eq!(super::parse_lifetime("90m"), Ok(5400));
        assert!(super::parse_lifetime("0d").is_err());
        assert!(super::parse_lifetime("1y").is_err());
        assert!(super::BUILTIN.is_some());
    }
}
