//! The built-in `mock` provider: echoes the last user message, in-process, in OpenAI's
//! shapes (chat completion, streamed chunks, embeddings). It exists so that
//! `portcullis serve` works for a new user before any provider account is configured.

use crate::client::{UpstreamBody, UpstreamResponse};
use crate::error::UpstreamError;
use bytes::Bytes;
use futures_util::stream::StreamExt;
use http::HeaderValue;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Answers a request the way an OpenAI-compatible server would.
pub fn respond(
    provider: &str,
    path: &str,
    body: &[u8],
    stream: bool,
) -> Result<UpstreamResponse, UpstreamError> {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or("mock-echo").to_string();
    match path {
        "/chat/completions" => {
            let prompt = last_user_text(&request["messages"]);
            let reply = format!("echo: {prompt}");
            let usage = json!({
                "prompt_tokens": approx_tokens(&prompt),
                "completion_tokens": approx_tokens(&reply),
                "total_tokens": approx_tokens(&prompt) + approx_tokens(&reply),
            });
            if stream {
                Ok(sse_response(stream_chunks(&model, &reply, usage)))
            } else {
                Ok(json_response(json!({
                    "id": "chatcmpl-mock",
                    "object": "chat.completion",
                    "created": now(),
                    "model": model,
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "logprobs": null,
                        "finish_reason": "stop"
                    }],
                    "usage": usage
                })))
            }
        }
        "/embeddings" => {
            let inputs: Vec<String> = match &request["input"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items.iter().map(|v| v.to_string()).collect(),
                other => vec![other.to_string()],
            };
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": embed(text)}))
                .collect();
            let tokens: u64 = inputs.iter().map(|t| approx_tokens(t)).sum();
            Ok(json_response(json!({
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
            })))
        }
        _ => Err(UpstreamError::Status {
            provider: provider.to_string(),
            status: 404,
            retry_after: None,
            body: Bytes::from_static(br#"{"error":{"message":"the mock provider does not serve this endpoint","type":"invalid_request_error","param":null,"code":null}}"#),
        }),
    }
}

fn json_response(value: Value) -> UpstreamResponse {
    UpstreamResponse {
        status: 200,
        content_type: Some(HeaderValue::from_static("application/json")),
        body: UpstreamBody::Full(Bytes::from(value.to_string())),
    }
}

fn sse_response(events: Vec<Bytes>) -> UpstreamResponse {
    UpstreamResponse {
        status: 200,
        content_type: Some(HeaderValue::from_static("text/event-stream")),
        body: UpstreamBody::Stream(futures_util::stream::iter(events.into_iter().map(Ok)).boxed()),
    }
}

fn stream_chunks(model: &str, reply: &str, usage: Value) -> Vec<Bytes> {
    let created = now();
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let choices = if delta.is_null() {
            json!([])
        } else {
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}])
        };
        let body = json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": choices, "usage": usage
        });
        Bytes::from(format!("data: {body}\n\n"))
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
        Value::Null,
    )];
    let words: Vec<&str> = reply.split_inclusive(' ').collect();
    for word in words {
        events.push(chunk(json!({"content": word}), Value::Null, Value::Null));
    }
    events.push(chunk(json!({}), json!("stop"), Value::Null));
    events.push(chunk(Value::Null, Value::Null, usage));
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

fn last_user_text(messages: &Value) -> String {
    let Some(last) = messages
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
    else {
        return String::new();
    };
    match &last["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn approx_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

fn embed(text: &str) -> Vec<f32> {
    let mut state: u32 = 2166136261;
    (0..8)
        .map(|i| {
            for b in text.bytes().chain([i as u8]) {
                state = (state ^ b as u32).wrapping_mul(16777619);
            }
            (state % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_last_user_message() {
        let body = br#"{"model":"mock-echo","messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"text","text":"hello there"}]}]}"#;
        let r = respond("mock", "/chat/completions", body, false).unwrap();
        let UpstreamBody::Full(bytes) = r.body else {
            panic!("expected full body")
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "echo: hello there");
        assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    }

    #[tokio::test]
    async fn streams_ends_with_usage_and_done() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"a b"}]}"#;
        let r = respond("mock", "/chat/completions", body, true).unwrap();
        let UpstreamBody::Stream(s) = r.body else {
            panic!("expected stream")
        };
        let events: Vec<Bytes> = s.map(|c| c.unwrap()).collect().await;
        let text: String = events
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect();
        assert!(text.contains("\"content\":\"echo: \""));
        assert!(text.contains("\"finish_reason\":\"stop\""));
        assert!(text.contains("\"prompt_tokens\""));
        assert!(text.ends_with("data: [DONE]\n\n"));
    }
}
