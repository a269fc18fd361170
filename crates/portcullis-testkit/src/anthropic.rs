//! Anthropic Messages API: `POST /v1/messages` (base URL = [`crate::MockUpstream::root_url`]).
//!
//! Shapes follow the documented API: the `message` object, the streamed event sequence
//! `message_start`, `content_block_start`, `ping`, `content_block_delta`, `content_block_stop`,
//! `message_delta`, `message_stop`, and errors `{"type":"error","error":{type,message},
//! "request_id"}` with a `request-id` header.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::faults::{model_fault, Deferred};
use crate::openai::chat::{Reply, TOOL_ARGUMENTS};
use crate::openai::{split_arguments, split_words, tokens_for_chars};
use crate::respond::{self, sse_named_event, Body};
use crate::server::Ctx;

/// The answer to one valid request, shared by the JSON and the streamed form.
struct Exchange {
    id: String,
    tool_id: String,
    model: String,
    reply: Reply,
    input_tokens: u32,
}

/// Handles every path of the Anthropic flavor.
pub(crate) async fn handle(ctx: &Ctx<'_>) -> Response<Body> {
    if ctx.path != "/v1/messages" {
        let msg = format!("Not found: {}", ctx.path);
        return error(StatusCode::NOT_FOUND, "not_found_error", &msg, ctx.seq);
    }
    if ctx.method != Method::POST {
        let msg = format!("Method Not Allowed: {}", ctx.method);
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            &msg,
            ctx.seq,
        );
    }
    if ctx.header("x-api-key").is_none_or(str::is_empty) {
        let msg = "x-api-key header is required";
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            msg,
            ctx.seq,
        );
    }
    if ctx.header("anthropic-version").is_none_or(str::is_empty) {
        let msg = "anthropic-version: header is required";
        return invalid(msg, ctx.seq);
    }
    let req: Value = match serde_json::from_slice(ctx.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return invalid(
                "There was an error parsing the body of your request",
                ctx.seq,
            )
        }
    };
    let Some(model) = req["model"].as_str().filter(|m| !m.is_empty()) else {
        return invalid("model: Field required", ctx.seq);
    };
    if !req["max_tokens"].is_u64() {
        return invalid("max_tokens: Field required", ctx.seq);
    }
    let Some(messages) = req["messages"].as_array().filter(|m| !m.is_empty()) else {
        return invalid("messages: Field required", ctx.seq);
    };
    let deferred = match model_fault(ctx, model).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let is_stream = req["stream"].as_bool().unwrap_or(false);
    if deferred == Deferred::Malformed {
        return malformed(is_stream);
    }
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default();
    let first_tool = req["tools"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(|t| t["name"].as_str());
    let prompt_chars = content_text(&req["system"]).chars().count()
        + messages
            .iter()
            .map(|m| content_text(&m["content"]).chars().count())
            .sum::<usize>();
    let ex = Exchange {
        id: format!("msg_mock_{}", ctx.seq),
        tool_id: format!("toolu_mock_{}", ctx.seq),
        model: model.to_owned(),
        reply: Reply::decide(&last_user, first_tool),
        input_tokens: tokens_for_chars(prompt_chars),
    };
    if is_stream {
        let plan = deferred.stream_plan_with(ctx.chunk_delay, || {
            sse_named_event(
                "error",
                &error_json("overloaded_error", "Overloaded", ctx.seq),
            )
        });
        let mut resp = respond::sse(events(&ex), plan, ctx.kill.clone());
        set_request_id(&mut resp, ctx.seq);
        return resp;
    }
    let mut resp = respond::json(StatusCode::OK, &message(&ex));
    set_request_id(&mut resp, ctx.seq);
    resp
}

/// Text of a `content` (string or blocks) or `system` value: text blocks joined by a space;
/// `tool_result` blocks contribute their own text.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            let texts: Vec<String> = blocks
                .iter()
                .filter_map(|b| match b["type"].as_str() {
                    Some("text") => b["text"].as_str().map(str::to_owned),
                    Some("tool_result") => Some(content_text(&b["content"])),
                    _ => None,
                })
                .filter(|t| !t.is_empty())
                .collect();
            texts.join(" ")
        }
        _ => String::new(),
    }
}

fn stop_reason(reply: &Reply) -> &'static str {
    match reply {
        Reply::Text(_) => "end_turn",
        Reply::ToolCall { .. } => "tool_use",
    }
}

fn usage(input_tokens: u32, output_tokens: u32) -> Value {
    json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    })
}

/// The complete `message` object.
fn message(ex: &Exchange) -> Value {
    let content = match &ex.reply {
        Reply::Text(text) => json!([{"type": "text", "text": text}]),
        Reply::ToolCall { name } => json!([{
            "type": "tool_use",
            "id": ex.tool_id,
            "name": name,
            "input": {"location": "Paris"},
        }]),
    };
    json!({
        "id": ex.id,
        "type": "message",
        "role": "assistant",
        "model": ex.model,
        "content": content,
        "stop_reason": stop_reason(&ex.reply),
        "stop_sequence": null,
        "usage": usage(ex.input_tokens, ex.reply.completion_tokens()),
    })
}

/// Every event of the stream, in the documented order.
fn events(ex: &Exchange) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(10);
    let start = json!({
        "type": "message_start",
        "message": {
            "id": ex.id,
            "type": "message",
            "role": "assistant",
            "model": ex.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(ex.input_tokens, 1),
        },
    });
    out.push(sse_named_event("message_start", &start));
    let (block, deltas): (Value, Vec<Value>) = match &ex.reply {
        Reply::Text(text) => (
            json!({"type": "text", "text": ""}),
            split_words(text)
                .into_iter()
                .map(|w| json!({"type": "text_delta", "text": w}))
                .collect(),
        ),
        Reply::ToolCall { name } => (
            json!({"type": "tool_use", "id": ex.tool_id, "name": name, "input": {}}),
            std::iter::once("")
                .chain(split_arguments(TOOL_ARGUMENTS))
                .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                .collect(),
        ),
    };
    let block_start = json!({"type": "content_block_start", "index": 0, "content_block": block});
    out.push(sse_named_event("content_block_start", &block_start));
    out.push(sse_named_event("ping", &json!({"type": "ping"})));
    for delta in deltas {
        let ev = json!({"type": "content_block_delta", "index": 0, "delta": delta});
        out.push(sse_named_event("content_block_delta", &ev));
    }
    let stop = json!({"type": "content_block_stop", "index": 0});
    out.push(sse_named_event("content_block_stop", &stop));
    let delta = json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(&ex.reply), "stop_sequence": null},
        "usage": {"output_tokens": ex.reply.completion_tokens()},
    });
    out.push(sse_named_event("message_delta", &delta));
    out.push(sse_named_event(
        "message_stop",
        &json!({"type": "message_stop"}),
    ));
    out
}

fn error_json(kind: &str, message: &str, seq: u64) -> Value {
    json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": format!("req_mock_{seq}"),
    })
}

fn set_request_id(resp: &mut Response<Body>, seq: u64) {
    if let Ok(v) = HeaderValue::from_str(&format!("req_mock_{seq}")) {
        resp.headers_mut().insert("request-id", v);
    }
}

/// An Anthropic-shaped error response.
fn error(status: StatusCode, kind: &str, message: &str, seq: u64) -> Response<Body> {
    let mut resp = respond::json(status, &error_json(kind, message, seq));
    set_request_id(&mut resp, seq);
    resp
}

fn invalid(message: &str, seq: u64) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        message,
        seq,
    )
}

/// The error Anthropic sends with `status` (status faults): 429 `rate_limit_error`,
/// 529 `overloaded_error`, 500 `api_error`, and so on.
pub(crate) fn status_error(status: StatusCode) -> Response<Body> {
    let (kind, message) = match status.as_u16() {
        400 => (
            "invalid_request_error",
            "mock upstream fault: invalid request",
        ),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
        529 => ("overloaded_error", "Overloaded"),
        500..=599 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "mock upstream fault"),
    };
    respond::json(status, &error_json(kind, message, 0))
}

/// `200 OK` that is not a valid message (or a stream whose first event is cut short).
fn malformed(stream: bool) -> Response<Body> {
    if stream {
        return respond::full(
            StatusCode::OK,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
            Bytes::from_static(
                b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\n\n",
            ),
        );
    }
    respond::json_bytes(
        StatusCode::OK,
        Bytes::from_static(b"{\"id\":\"msg_mock_broken\",\"type\":\"message\",\"content\":["),
    )
}
