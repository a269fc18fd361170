//! OpenAI-shaped API: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`.

pub(crate) mod chat;
pub(crate) mod embeddings;
mod stream;
mod types;

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::faults::{self, Deferred};
use crate::respond::{self, Body};
use crate::server::Ctx;

pub use embeddings::{embed, DEFAULT_DIMENSIONS};

/// Models listed by `GET /v1/models`.
pub const MODELS: &[&str] = &["mock-gpt", "mock-gpt-mini", "mock-embed"];

/// `created` timestamp of every listed model.
const MODELS_CREATED: u64 = 1_700_000_000;

/// Handles a request under `/v1/` that belongs to the OpenAI family, or returns `None`.
pub(crate) async fn handle(
    method: &Method,
    path: &str,
    ctx: &Ctx<'_>,
) -> Option<http::Response<Body>> {
    let resp = match (method, path) {
        (&Method::POST, "/v1/chat/completions") => chat::handle(ctx).await,
        (&Method::POST, "/v1/embeddings") => embeddings::handle(ctx).await,
        (&Method::GET, "/v1/models") => match ctx.queued {
            Deferred::Malformed => faults::malformed_response(false),
            _ => models(),
        },
        _ => return None,
    };
    Some(resp)
}

/// 404 in OpenAI's words for anything that is not routed.
pub(crate) fn not_found(method: &Method, path: &str) -> http::Response<Body> {
    let message = format!("Invalid URL ({method} {path})");
    respond::openai_error(
        StatusCode::NOT_FOUND,
        &message,
        "invalid_request_error",
        None,
        None,
    )
}

fn models() -> http::Response<Body> {
    static BODY: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let body = BODY.get_or_init(|| {
        let data: Vec<_> = MODELS
            .iter()
            .map(|id| types::Model {
                id,
                object: "model",
                created: MODELS_CREATED,
                owned_by: "portcullis-mock",
            })
            .collect();
        let list = types::List {
            object: "list",
            data,
        };
        Bytes::from(serde_json::to_vec(&list).unwrap_or_default())
    });
    respond::json_bytes(StatusCode::OK, body.clone())
}

pub(crate) use crate::faults::model_fault;
pub(crate) use stream::{split_arguments, split_words};

/// Whole seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Deterministic token estimate: ceil(chars / 4).
pub(crate) fn tokens_for_chars(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}
