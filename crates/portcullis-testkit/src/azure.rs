//! Azure OpenAI: `POST /openai/deployments/{deployment}/chat/completions?api-version=...` and
//! `.../embeddings?api-version=...`.
//!
//! Like the real service: without `api-version` the answer is `404 {"error":{"code":"404",
//! "message":"Resource not found"}}`; without an `api-key` header (or `Authorization: Bearer`
//! for Entra ID tokens) it is `401` with Azure's "Access denied" message. Valid requests are
//! answered by the OpenAI module with `model` set to the deployment name (so fault model names
//! work as deployment names: `/openai/deployments/fault-status-503/...`).

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::openai::{chat, embeddings};
use crate::respond::{self, Body};
use crate::server::Ctx;

const ACCESS_DENIED: &str = "Access denied due to invalid subscription key or wrong API endpoint. \
Make sure to provide a valid key for an active subscription and use a correct regional API \
endpoint for your resource.";

/// Handles every path of the Azure flavor.
pub(crate) async fn handle(ctx: &Ctx<'_>) -> Response<Body> {
    let route = ctx
        .path
        .strip_prefix("/openai/deployments/")
        .and_then(|rest| rest.split_once('/'));
    let Some((deployment, operation)) = route.filter(|(d, _)| !d.is_empty()) else {
        return not_found();
    };
    if !matches!(operation, "chat/completions" | "embeddings")
        || ctx.query_param("api-version").is_none_or(str::is_empty)
    {
        return not_found();
    }
    let has_key = ctx.header("api-key").is_some_and(|k| !k.is_empty())
        || ctx
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer ") && a.len() > 7);
    if !has_key {
        return error(StatusCode::UNAUTHORIZED, "401", ACCESS_DENIED);
    }
    if ctx.method != http::Method::POST {
        return not_found();
    }
    // The body may omit `model`: the deployment decides it. Unparsable bodies are passed on
    // untouched so that the OpenAI module reports them.
    let body = match serde_json::from_slice::<Value>(ctx.body) {
        Ok(Value::Object(mut map)) => {
            map.insert("model".into(), Value::String(deployment.to_owned()));
            bytes::Bytes::from(serde_json::to_vec(&map).unwrap_or_default())
        }
        _ => ctx.body.clone(),
    };
    let inner = Ctx {
        method: ctx.method,
        path: ctx.path,
        query: ctx.query,
        headers: ctx.headers,
        body: &body,
        flavor: ctx.flavor,
        shared: ctx.shared,
        seq: ctx.seq,
        chunk_delay: ctx.chunk_delay,
        kill: ctx.kill,
        queued: ctx.queued,
    };
    if operation == "embeddings" {
        embeddings::handle(&inner).await
    } else {
        chat::handle(&inner).await
    }
}

/// Azure's `{"error":{"code","message"}}` error.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    respond::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "404", "Resource not found")
}

/// The error Azure sends with `status` (status faults).
pub(crate) fn status_error(status: StatusCode) -> Response<Body> {
    let code = status.as_str();
    match status.as_u16() {
        401 => error(status, code, ACCESS_DENIED),
        404 => error(
            status,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist. If you created the \
             deployment within the last 5 minutes, please wait a moment and try again.",
        ),
        429 => error(
            status,
            code,
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version \
             2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. \
             Please retry after 1 second.",
        ),
        500..=599 => error(
            status,
            "InternalServerError",
            "The service is temporarily unable to process your request. Please try again later.",
        ),
        _ => error(status, code, "mock upstream fault"),
    }
}
