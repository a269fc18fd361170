//! Google Gemini API: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent` (`?alt=sse`: SSE with CRLF line ends as the real API sends;
//! without it: one JSON array streamed element by element).
//!
//! The key is taken from `x-goog-api-key` (or the `key` query parameter). Errors use Google's
//! shape `{"error":{"code","message","status"}}`. The model `fault-safety` answers with
//! `finishReason: "SAFETY"` and no content.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::faults::{model_fault, Deferred};
use crate::openai::chat::Reply;
use crate::openai::{split_words, tokens_for_chars};
use crate::respond::{self, Body};
use crate::server::Ctx;

/// Model name that makes the mock block the answer for safety.
pub const SAFETY_MODEL: &str = "fault-safety";

/// The answer to one valid request.
struct Exchange {
    model: String,
    response_id: String,
    /// `None` when blocked for safety.
    reply: Option<Reply>,
    prompt_tokens: u32,
}

/// Handles every path of the Gemini flavor.
pub(crate) async fn handle(ctx: &Ctx<'_>) -> Response<Body> {
    let spec = ctx
        .path
        .strip_prefix("/v1beta/models/")
        .or_else(|| ctx.path.strip_prefix("/v1/models/"));
    let Some((model, method)) = spec.and_then(|s| s.rsplit_once(':')) else {
        let msg = format!("Requested entity was not found: {}", ctx.path);
        return error(StatusCode::NOT_FOUND, &msg);
    };
    let is_stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => {
            let msg = format!("Method not found: {method}");
            return error(StatusCode::NOT_FOUND, &msg);
        }
    };
    if ctx.method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let has_key = ctx.header("x-goog-api-key").is_some_and(|k| !k.is_empty())
        || ctx.query_param("key").is_some_and(|k| !k.is_empty());
    if !has_key {
        return error(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        );
    }
    let req: Value = match serde_json::from_slice(ctx.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error(StatusCode::BAD_REQUEST, "Invalid JSON payload received."),
    };
    let Some(contents) = req["contents"].as_array().filter(|c| !c.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "* GenerateContentRequest.contents: contents is not specified\n",
        );
    };
    let deferred = match model_fault(ctx, model).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let sse = ctx.query_param("alt") == Some("sse");
    if deferred == Deferred::Malformed {
        return malformed(is_stream && sse);
    }
    let last_user = contents
        .iter()
        .rev()
        .find(|c| c["role"].as_str().is_none_or(|r| r == "user"))
        .map(|c| parts_text(&c["parts"]))
        .unwrap_or_default();
    let first_tool = req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["functionDeclarations"].as_array())
        .flatten()
        .find_map(|f| f["name"].as_str());
    let prompt_chars = parts_text(&req["systemInstruction"]["parts"])
        .chars()
        .count()
        + contents
            .iter()
            .map(|c| parts_text(&c["parts"]).chars().count())
            .sum::<usize>();
    let ex = Exchange {
        model: model.to_owned(),
        response_id: format!("mock-response-{}", ctx.seq),
        reply: (model != SAFETY_MODEL).then(|| Reply::decide(&last_user, first_tool)),
        prompt_tokens: tokens_for_chars(prompt_chars),
    };
    if !is_stream {
        return respond::json(StatusCode::OK, &full_response(&ex));
    }
    let chunks = chunks(&ex);
    let plan = deferred.stream_plan_with(ctx.chunk_delay, || {
        let err = error_json(StatusCode::SERVICE_UNAVAILABLE, OVERLOADED);
        if sse {
            sse_chunk(&err)
        } else {
            Bytes::from(format!(",\r\n{err}\r\n]"))
        }
    });
    if sse {
        let events = chunks.iter().map(sse_chunk).collect();
        return respond::sse(events, plan, ctx.kill.clone());
    }
    // JSON array: "[" + first, then ",\r\n" + each next, then "]".
    let n = chunks.len();
    let frames = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let lead = if i == 0 { "[" } else { ",\r\n" };
            let tail = if i + 1 == n { "]" } else { "" };
            Bytes::from(format!("{lead}{c}{tail}"))
        })
        .collect();
    let json = HeaderValue::from_static("application/json; charset=UTF-8");
    respond::streamed(frames, plan, ctx.kill.clone(), json)
}

const OVERLOADED: &str = "The model is overloaded. Please try again later.";

/// Text parts of a `parts` array joined by a space.
fn parts_text(parts: &Value) -> String {
    let texts: Vec<&str> = parts
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect();
    texts.join(" ")
}

/// `data: <json>\r\n\r\n`, the framing of the real `alt=sse` stream.
fn sse_chunk(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\r\n\r\n"))
}

fn usage(prompt: u32, candidates: Option<u32>) -> Value {
    let mut u = json!({
        "promptTokenCount": prompt,
        "totalTokenCount": prompt + candidates.unwrap_or(0),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    });
    if let Some(c) = candidates {
        u["candidatesTokenCount"] = json!(c);
    }
    u
}

fn response(ex: &Exchange, candidate: Value, usage_metadata: Value) -> Value {
    json!({
        "candidates": [candidate],
        "usageMetadata": usage_metadata,
        "modelVersion": ex.model,
        "responseId": ex.response_id,
    })
}

/// The candidate blocked for safety: no content.
fn safety_candidate() -> Value {
    let rating = |category: &str, probability: &str, blocked: bool| {
        let mut r = json!({"category": category, "probability": probability});
        if blocked {
            r["blocked"] = json!(true);
        }
        r
    };
    json!({
        "finishReason": "SAFETY",
        "index": 0,
        "safetyRatings": [
            rating("HARM_CATEGORY_SEXUALLY_EXPLICIT", "NEGLIGIBLE", false),
            rating("HARM_CATEGORY_HATE_SPEECH", "NEGLIGIBLE", false),
            rating("HARM_CATEGORY_HARASSMENT", "NEGLIGIBLE", false),
            rating("HARM_CATEGORY_DANGEROUS_CONTENT", "HIGH", true),
        ],
    })
}

fn candidate(parts: Value, finish: bool) -> Value {
    let mut c = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if finish {
        c["finishReason"] = json!("STOP");
    }
    c
}

fn call_part(name: &str) -> Value {
    json!({"functionCall": {"name": name, "args": {"location": "Paris"}}})
}

/// The `GenerateContentResponse` of a non-stream request.
fn full_response(ex: &Exchange) -> Value {
    match &ex.reply {
        None => response(ex, safety_candidate(), usage(ex.prompt_tokens, None)),
        Some(reply) => {
            let parts = match reply {
                Reply::Text(text) => json!([{"text": text}]),
                Reply::ToolCall { name } => json!([call_part(name)]),
            };
            let u = usage(ex.prompt_tokens, Some(reply.completion_tokens()));
            response(ex, candidate(parts, true), u)
        }
    }
}

/// Stream chunks: one per word; the last one carries `finishReason` and the full usage.
fn chunks(ex: &Exchange) -> Vec<Value> {
    let Some(reply) = &ex.reply else {
        return vec![full_response(ex)];
    };
    let words = match reply {
        Reply::Text(text) => split_words(text),
        Reply::ToolCall { .. } => return vec![full_response(ex)],
    };
    let n = words.len();
    words
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let last = i + 1 == n;
            let u = if last {
                usage(ex.prompt_tokens, Some(reply.completion_tokens()))
            } else {
                usage(ex.prompt_tokens, None)
            };
            response(ex, candidate(json!([{"text": w}]), last), u)
        })
        .collect()
}

/// Google's canonical status name for an HTTP status.
#[allow(clippy::match_overlapping_arm)] // specific codes first, then the class
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        400..=499 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

fn error_json(status: StatusCode, message: &str) -> Value {
    json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": status_name(status),
    }})
}

/// A Gemini-shaped error response.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    respond::json(status, &error_json(status, message))
}

/// The error Gemini sends with `status` (status faults).
pub(crate) fn status_error(status: StatusCode) -> Response<Body> {
    let message = match status.as_u16() {
        429 => "Resource has been exhausted (e.g. check quota).",
        503 => OVERLOADED,
        500 => "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        504 => "Deadline expired before operation could complete.",
        _ => "mock upstream fault",
    };
    error(status, message)
}

fn malformed(sse: bool) -> Response<Body> {
    if sse {
        return respond::full(
            StatusCode::OK,
            HeaderValue::from_static("text/event-stream"),
            Bytes::from_static(b"data: {\"candidates\": [{\"content\": \r\n\r\n"),
        );
    }
    respond::json_bytes(
        StatusCode::OK,
        Bytes::from_static(b"{\"candidates\": [{\"content\": {\"parts\": ["),
    )
}
