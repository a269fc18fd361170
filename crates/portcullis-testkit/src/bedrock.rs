//! AWS Bedrock Runtime: `POST /model/{modelId}/converse` and `/model/{modelId}/converse-stream`
//! (the model id is percent-decoded: `anthropic.claude-3-haiku-20240307-v1%3A0`).
//!
//! Requests need `Authorization: AWS4-HMAC-SHA256 Credential=...` and `X-Amz-Date`; the
//! signature is verified only after [`crate::MockUpstream::expect_aws_credentials`]. Errors
//! are `{"message": ...}` with an `x-amzn-ErrorType` header
//! (`ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/`). The stream is
//! the binary event stream ([`crate::eventstream_encode`]); payloads carry the random-length
//! `p` padding field the real service adds.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::eventstream_encode::{event, exception};
use crate::faults::{model_fault, Deferred};
use crate::openai::chat::{Reply, TOOL_ARGUMENTS};
use crate::openai::{split_arguments, split_words, tokens_for_chars};
use crate::recorder::lock;
use crate::respond::{self, Body};
use crate::server::Ctx;
use crate::sigv4::{self, SignedRequest};

/// Credentials the mock checks SigV4 signatures against.
#[derive(Debug, Clone)]
pub(crate) struct AwsCredentials {
    pub access_key: String,
    pub secret: String,
}

/// Content type of `converse-stream` responses.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

const ERROR_TYPE_SUFFIX: &str = ":http://internal.amazon.com/coral/com.amazon.bedrock/";
/// Latency reported in `metrics.latencyMs`.
const LATENCY_MS: u64 = 42;

/// Handles every path of the Bedrock flavor.
pub(crate) async fn handle(ctx: &Ctx<'_>) -> Response<Body> {
    let route = ctx
        .path
        .strip_prefix("/model/")
        .and_then(|r| r.rsplit_once('/'));
    let Some((raw_model, operation)) = route.filter(|(m, _)| !m.is_empty()) else {
        return unknown_operation();
    };
    let is_stream = match operation {
        "converse" => false,
        "converse-stream" => true,
        _ => return unknown_operation(),
    };
    if ctx.method != Method::POST {
        return unknown_operation();
    }
    if let Err(resp) = check_auth(ctx) {
        return *resp;
    }
    let model = sigv4::percent_decode(raw_model);
    let req: Value = match serde_json::from_slice(ctx.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "Malformed input request, please reformat your input and try again.",
            )
        }
    };
    let Some(messages) = req["messages"].as_array().filter(|m| !m.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "The model returned the following errors: messages: field required",
        );
    };
    if messages.first().is_some_and(|m| m["role"] != "user") {
        return error(StatusCode::BAD_REQUEST, "ValidationException", "A conversation must start with a user message. Try again with a conversation that starts with a user message.");
    }
    let deferred = match model_fault(ctx, &model).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    if deferred == Deferred::Malformed {
        return malformed(is_stream);
    }
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| blocks_text(&m["content"]))
        .unwrap_or_default();
    let first_tool = req["toolConfig"]["tools"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(|t| t["toolSpec"]["name"].as_str());
    let prompt_chars = blocks_text(&req["system"]).chars().count()
        + messages
            .iter()
            .map(|m| blocks_text(&m["content"]).chars().count())
            .sum::<usize>();
    let reply = Reply::decide(&last_user, first_tool);
    let input = tokens_for_chars(prompt_chars);
    let output = reply.completion_tokens();
    let usage =
        json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output});
    let tool_id = format!("tooluse_mock_{}", ctx.seq);
    let mut resp = if is_stream {
        let plan = deferred.stream_plan_with(ctx.chunk_delay, || {
            let payload = json!({
                "message": "The system encountered an unexpected error during processing. Try your request again.",
                "originalStatusCode": 529,
                "originalMessage": "Overloaded",
            });
            exception("modelStreamErrorException", payload.to_string().as_bytes())
        });
        let frames = stream_frames(&reply, &tool_id, usage);
        let ct = HeaderValue::from_static(EVENT_STREAM_CONTENT_TYPE);
        respond::streamed(frames, plan, ctx.kill.clone(), ct)
    } else {
        respond::json(StatusCode::OK, &converse_response(&reply, &tool_id, usage))
    };
    set_request_id(&mut resp, ctx.seq);
    resp
}

/// Checks the SigV4 headers (and the signature, when credentials are expected).
fn check_auth(ctx: &Ctx<'_>) -> Result<(), Box<Response<Body>>> {
    let Some(value) = ctx.header("authorization") else {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )));
    };
    let auth = sigv4::parse_authorization(value);
    let (Some(auth), Some(_)) = (auth, ctx.header("x-amz-date")) else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters, and an 'X-Amz-Date' header.",
        )));
    };
    let expected = lock(&ctx.shared.aws_credentials).clone();
    let Some(creds) = expected else {
        return Ok(());
    };
    if auth.access_key != creds.access_key {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )));
    }
    let req = SignedRequest {
        method: ctx.method.as_str(),
        path: ctx.path,
        query: ctx.query,
        headers: ctx.headers,
        body: ctx.body,
    };
    if sigv4::expected_signature(&req, &auth, &creds.secret) != auth.signature {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )));
    }
    Ok(())
}

/// Text of a list of content blocks (`[{"text": ..}, {"toolResult": {"content": [..]}}]`).
fn blocks_text(blocks: &Value) -> String {
    let texts: Vec<String> = blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| match (&b["text"], &b["toolResult"]) {
            (Value::String(t), _) => Some(t.clone()),
            (_, Value::Object(r)) => r.get("content").map(blocks_text),
            _ => None,
        })
        .filter(|t| !t.is_empty())
        .collect();
    texts.join(" ")
}

fn stop_reason(reply: &Reply) -> &'static str {
    match reply {
        Reply::Text(_) => "end_turn",
        Reply::ToolCall { .. } => "tool_use",
    }
}

fn converse_response(reply: &Reply, tool_id: &str, usage: Value) -> Value {
    let content = match reply {
        Reply::Text(text) => json!([{"text": text}]),
        Reply::ToolCall { name } => json!([{
            "toolUse": {"toolUseId": tool_id, "name": name, "input": {"location": "Paris"}}
        }]),
    };
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason(reply),
        "usage": usage,
        "metrics": {"latencyMs": LATENCY_MS},
    })
}

/// The `p` padding: a prefix of the alphabet whose length varies with the event.
fn padding(i: usize) -> &'static str {
    const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    &ALPHABET[..(i * 7 + 3) % ALPHABET.len()]
}

/// The event frames: messageStart, [contentBlockStart for a tool], contentBlockDelta...,
/// contentBlockStop, messageStop, metadata.
fn stream_frames(reply: &Reply, tool_id: &str, usage: Value) -> Vec<Bytes> {
    let mut events: Vec<(&str, Value)> = vec![("messageStart", json!({"role": "assistant"}))];
    match reply {
        Reply::Text(text) => {
            for word in split_words(text) {
                let ev = json!({"contentBlockIndex": 0, "delta": {"text": word}});
                events.push(("contentBlockDelta", ev));
            }
        }
        Reply::ToolCall { name } => {
            let start = json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": tool_id, "name": name}}});
            events.push(("contentBlockStart", start));
            for fragment in split_arguments(TOOL_ARGUMENTS) {
                let ev = json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": fragment}}});
                events.push(("contentBlockDelta", ev));
            }
        }
    }
    events.push(("contentBlockStop", json!({"contentBlockIndex": 0})));
    events.push(("messageStop", json!({"stopReason": stop_reason(reply)})));
    let metadata = json!({"usage": usage, "metrics": {"latencyMs": LATENCY_MS}});
    events.push(("metadata", metadata));
    events
        .into_iter()
        .enumerate()
        .map(|(i, (kind, mut payload))| {
            payload["p"] = json!(padding(i));
            event(kind, payload.to_string().as_bytes())
        })
        .collect()
}

fn set_request_id(resp: &mut Response<Body>, seq: u64) {
    if let Ok(v) = HeaderValue::from_str(&format!("00000000-0000-4000-8000-{seq:012}")) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
}

/// A Bedrock error: `{"message"}` with `x-amzn-ErrorType: <kind>:<namespace>`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let mut resp = respond::json(status, &json!({"message": message}));
    if let Ok(v) = HeaderValue::from_str(&format!("{kind}{ERROR_TYPE_SUFFIX}")) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

fn unknown_operation() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "UnknownOperationException", "")
}

/// The error Bedrock sends with `status` (status faults).
pub(crate) fn status_error(status: StatusCode) -> Response<Body> {
    let (kind, message) = match status.as_u16() {
        403 => (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404 => (
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
        ),
        408 => (
            "ModelTimeoutException",
            "Model has timed out in processing the request. Try your request again.",
        ),
        424 => (
            "ModelErrorException",
            "The system encountered an unexpected error during processing. Try your request again.",
        ),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        503 => (
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        400..=499 => ("ValidationException", "mock upstream fault"),
        _ => (
            "InternalServerException",
            "The server encountered an internal error while processing the request.",
        ),
    };
    error(status, kind, message)
}

fn malformed(stream: bool) -> Response<Body> {
    if stream {
        // A well-formed prelude followed by a frame whose message CRC is wrong.
        let mut frame = event("messageStart", br#"{"role":"assistant"}"#).to_vec();
        if let Some(last) = frame.last_mut() {
            *last ^= 0xff;
        }
        return respond::full(
            StatusCode::OK,
            HeaderValue::from_static(EVENT_STREAM_CONTENT_TYPE),
            Bytes::from(frame),
        );
    }
    respond::json_bytes(
        StatusCode::OK,
        Bytes::from_static(b"{\"output\":{\"message\":{"),
    )
}
