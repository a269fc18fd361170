//! The OpenAPI 3.1 document of the admin API, served at `GET /api/v1/openapi.json`.
//! Hand-written: one entry per route of [`super::ROUTES`] (a test checks none is missing).

use axum::Json;
use serde_json::{json, Map, Value};

/// What an operation takes as its body.
enum Body {
    None,
    /// A JSON object schema (by component name).
    Json(&'static str),
    /// A policy document: YAML text, or JSON `{"document": "..."}`.
    Policy,
}

struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    permission: &'static str,
    query: &'static [&'static str],
    body: Body,
    created: bool,
}

const OPS: &[Op] = &[
    op("get", "/api/v1/me", "The calling key: id, team, role, granted permissions", "any valid key", &[], Body::None),
    op("get", "/api/v1/keys", "List keys the caller may read (never secrets)", "keys:read", &["team", "owner"], Body::None),
    Op { created: true, ..op("post", "/api/v1/keys", "Create a key; the secret is returned once in `key`", "keys:create + can grant role", &[], Body::Json("CreateKey")) },
    op("post", "/api/v1/keys/{id}/revoke", "Revoke a key", "keys:revoke", &[], Body::None),
    op("post", "/api/v1/keys/{id}/rotate", "Revoke a key and return its replacement with the new secret", "keys:revoke", &[], Body::None),
    op("post", "/api/v1/keys/{id}/expire", "Set or clear a key's expiry (unix seconds or null)", "keys:revoke", &[], Body::Json("Expire")),
    op("get", "/api/v1/users", "List users the caller may read", "users:read", &[], Body::None),
    Op { created: true, ..op("post", "/api/v1/users", "Create a user", "users:write + can grant role", &[], Body::Json("CreateUser")) },
    op("post", "/api/v1/users/{id}/disable", "Disable a user", "users:write", &[], Body::None),
    op("get", "/api/v1/teams", "List teams the caller may read", "teams:read", &[], Body::None),
    Op { created: true, ..op("post", "/api/v1/teams", "Create a team", "teams:write", &[], Body::Json("CreateTeam")) },
    op("get", "/api/v1/roles", "Built-in and custom roles with their grants", "policies:read", &[], Body::None),
    op("get", "/api/v1/policies", "Policy version history and active/shadow state", "policies:read", &[], Body::None),
    Op { created: true, ..op("post", "/api/v1/policies", "Validate, store and activate a document (or shadow it with ?shadow=true); invalid documents answer 400 with every problem", "policies:write", &["shadow", "comment"], Body::Policy) },
    op("get", "/api/v1/policies/active", "The active version with its document", "policies:read", &[], Body::None),
    op("post", "/api/v1/policies/validate", "Validate a document: {valid, problems, warnings, hash}; writes nothing", "policies:read", &[], Body::Policy),
    op("post", "/api/v1/policies/diff", "Changes of a document against the active version: {against, changes, text}", "policies:read", &[], Body::Policy),
    op("get", "/api/v1/policies/shadow", "Shadow-mode report: differences by kind, rule and principal, with samples", "policies:read", &["version"], Body::None),
    op("post", "/api/v1/policies/shadow/promote", "Enforce the shadow version", "policies:write", &[], Body::None),
    op("post", "/api/v1/policies/shadow/discard", "End shadow mode without enforcing", "policies:write", &[], Body::None),
    op("get", "/api/v1/policies/{version}", "One version with its document", "policies:read", &[], Body::None),
    op("post", "/api/v1/policies/{version}/rollback", "Activate an earlier version (history is immutable)", "policies:write", &[], Body::None),
    op("get", "/api/v1/usage", "Usage and spend per key, team and model", "usage:read", &["team", "key_id", "since", "until"], Body::None),
    op("get", "/api/v1/audit", "The audit log, newest first (keyset pagination with before_id)", "audit:read", &["since", "until", "actor", "action", "limit", "before_id"], Body::None),
    op("get", "/api/v1/breakers", "Circuit breakers of every model target: state, failures, opened_at, next probe, in flight, latency", "routing:read", &[], Body::None),
    op("post", "/api/v1/breakers/{id}/reset", "Close a target's breaker and forget its failures (audited)", "routing:write", &[], Body::None),
    op("get", "/api/v1/logs", "Request logs, newest first (keyset pagination with before_id): who, model, status, latency, tokens, cost, guardrail actions, policy decision, redacted bodies when the team logs them", "logs:read (own / team / other-team)", &["from", "to", "team", "key", "principal", "model", "status", "denied", "limit", "before_id"], Body::None),
    op("get", "/api/v1/reports/compliance", "Compliance report of [from, to): access, denials, policy changes with diffs, key events, guardrail actions, anomalies, audit-chain verification; JSON, CSV or self-contained HTML", "audit:read + logs:read", &["from", "to", "format"], Body::None),
    op("get", "/api/v1/audit/config", "Configuration security audit: findings (id, severity, what, where, fix), summary, worst", "audit:read", &[], Body::None),
    op("get", "/api/v1/alerts", "Anomaly alerts, newest first: rule, subject, severity, first/last seen, count (keyset pagination)", "audit:read", &["since", "until", "rule", "subject", "limit", "before_id"], Body::None),
    op("get", "/api/v1/openapi.json", "This document", "any valid key", &[], Body::None),
];

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    permission: &'static str,
    query: &'static [&'static str],
    body: Body,
) -> Op {
    Op {
        method,
        path,
        summary,
        permission,
        query,
        body,
        created: false,
    }
}

fn query_schema(name: &str) -> Value {
    match name {
        "shadow" => json!({"type": "boolean"}),
        "limit" | "before_id" | "version" | "status" => json!({"type": "integer"}),
        "denied" => json!({"type": "boolean", "description": "only refused requests"}),
        "from" | "to" => {
            json!({"type": "string", "description": "unix seconds, a date (2026-11-01), an RFC 3339 time, or a span back from now such as 7d"})
        }
        "format" => json!({"type": "string", "enum": ["json", "csv", "html"], "default": "json"}),
        "since" | "until" => {
            json!({"type": "string", "description": "unix seconds, or a span back from now such as 7d"})
        }
        _ => json!({"type": "string"}),
    }
}

fn operation(o: &Op) -> Value {
    let mut params: Vec<Value> = o
        .query
        .iter()
        .map(|q| json!({"name": q, "in": "query", "required": false, "schema": query_schema(q)}))
        .collect();
    for segment in o.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            params.push(
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
    }
    let ok = if o.created { "201" } else { "200" };
    let mut value = json!({
        "summary": o.summary,
        "description": format!("Requires: {}.", o.permission),
        "parameters": params,
        "responses": {
            ok: {"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "409": {"$ref": "#/components/responses/Error"},
        },
    });
    match o.body {
        Body::None => {}
        Body::Json(schema) => {
            value["requestBody"] = json!({"required": true, "content": {"application/json": {
                "schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        Body::Policy => {
            value["requestBody"] = json!({"required": true, "content": {
                "text/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/PolicyDocument"}},
            }});
        }
    }
    value
}

/// Builds the document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPS {
        let entry = paths
            .entry(o.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[o.method] = operation(o);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portcullis admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Control plane of the Portcullis AI gateway. Authenticate with a virtual key \
                (Authorization: Bearer). Every route is checked against the key's role (RBAC) and team; \
                every change and every refusal is written to the audit log.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "An error in the OpenAI error envelope",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"}, "type": {"type": "string"},
                "code": {"type": ["string", "null"]}, "param": {"type": ["string", "null"]},
                "problems": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
            }}}},
        "Problem": {"type": "object", "properties": {
            "path": {"type": "string"}, "message": {"type": "string"}}},
        "CreateKey": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string"},
            "models": {"type": "array", "items": {"type": "string"}},
            "team": {"type": "string"}, "role": {"type": "string"}, "owner": {"type": "string"},
            "expires_in": {"type": "string", "examples": ["30d"]}}},
        "Expire": {"type": "object", "required": ["at"], "additionalProperties": false, "properties": {
            "at": {"type": ["integer", "null"]}}},
        "CreateUser": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string"}, "email": {"type": "string"},
            "team": {"type": "string"}, "role": {"type": "string"}}},
        "CreateTeam": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string"}, "description": {"type": "string"}}},
        "PolicyDocument": {"type": "object", "required": ["document"], "properties": {
            "document": {"type": "string", "description": "the policy YAML text"}}},
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn serve(_ctx: super::Ctx) -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_routed_path_is_documented() {
        let doc = super::document();
        for (method, path) in super::super::ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is missing from openapi.json"
            );
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_object().unwrap().len())
            .sum();
        assert_eq!(
            documented,
            super::super::ROUTES.len(),
            "no undocumented extras"
        );
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
