//! Anthropic Messages API mock (`POST /v1/messages`) over real HTTP.

mod common;

use common::{client, parse_sse, read_raw};
use portcullis_testkit::{Fault, MockUpstream};
use serde_json::{json, Value};

fn body(model: &str, user: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "max_tokens": 256,
        "stream": stream,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": user}]}
        ]
    })
}

fn weather_body(stream: bool) -> Value {
    let mut b = body("claude-mock", "What is the weather in Paris?", stream);
    b["tools"] = json!([{
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}
    }]);
    b
}

async fn post(mock: &MockUpstream, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", mock.root_url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn message_echoes_last_user_text() {
    let mock = MockUpstream::start().await;
    assert_eq!(mock.root_url(), format!("http://{}", mock.addr()));
    let resp = post(&mock, &body("claude-mock", "hello there", false)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("request-id").is_some());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["id"], "msg_mock_1");
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-mock");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "echo: hello there"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
    let usage = &v["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(usage["output_tokens"], 3);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);

    let rec = &mock.requests()[0];
    assert_eq!(rec.path, "/v1/messages");
    assert_eq!(rec.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(rec.header("anthropic-version"), Some("2023-06-01"));
}

#[tokio::test]
async fn auth_and_validation_errors_are_anthropic_shaped() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/messages", mock.root_url());
    let b = body("claude-mock", "hi", false);
    let resp = client()
        .post(&url)
        .header("anthropic-version", "2023-06-01")
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("x-api-key"));

    let resp = client()
        .post(&url)
        .header("x-api-key", "k")
        .json(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "the real API answers 400 here");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(
        v["error"]["message"],
        "anthropic-version: header is required"
    );

    let mut no_max = b.clone();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let resp = post(&mock, &no_max).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));
}

#[tokio::test]
async fn tool_use_non_stream() {
    let mock = MockUpstream::start().await;
    let v: Value = post(&mock, &weather_body(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["id"], "toolu_mock_1");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"location": "Paris"}));
}

#[tokio::test]
async fn stream_has_the_documented_event_sequence() {
    let mock = MockUpstream::start().await;
    let resp = post(&mock, &body("claude-mock", "one two", true)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let raw = read_raw(resp).await;
    assert!(raw.error.is_none());
    let events = parse_sse(std::str::from_utf8(&raw.bytes).unwrap());
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for e in &events {
        assert_eq!(
            e.json()["type"],
            e.event.as_deref().unwrap(),
            "type matches event name"
        );
    }
    let start = events[0].json();
    assert_eq!(start["message"]["content"], json!([]));
    assert!(start["message"]["stop_reason"].is_null());
    assert_eq!(start["message"]["usage"]["output_tokens"], 1);
    assert!(start["message"]["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        events[1].json()["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = events[3..6]
        .iter()
        .map(|e| {
            let d = e.json();
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "echo: one two");
    let delta = events[7].json();
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(delta["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn stream_tool_use_json_deltas_reassemble() {
    let mock = MockUpstream::start().await;
    let raw = read_raw(post(&mock, &weather_body(true)).await).await;
    let events = parse_sse(std::str::from_utf8(&raw.bytes).unwrap());
    let block = events[1].json()["content_block"].clone();
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({}));
    let json_text: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let d = e.json();
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    let input: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(input, json!({"location": "Paris"}));
    let delta = events
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"));
    assert_eq!(delta.unwrap().json()["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn status_faults_use_anthropic_error_types() {
    let mock = MockUpstream::start().await;
    let resp = post(&mock, &body("fault-status-529", "hi", false)).await;
    assert_eq!(resp.status(), 529);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");

    mock.push_fault(Fault::Status {
        status: 429,
        body: None,
        retry_after: Some(4),
    });
    let resp = post(&mock, &body("claude-mock", "hi", false)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "4");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");

    let resp = post(&mock, &body("fault-status-500", "hi", false)).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "api_error");
}

#[tokio::test]
async fn mid_stream_error_event_and_drop() {
    let mock = MockUpstream::start().await;
    let raw = read_raw(post(&mock, &body("fault-stream-error-3", "a b c d", true)).await).await;
    assert!(raw.error.is_none(), "an error event ends the body cleanly");
    let events = parse_sse(std::str::from_utf8(&raw.bytes).unwrap());
    assert_eq!(events.len(), 4);
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    let v = last.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");

    mock.push_fault(Fault::StreamDropAfter(2));
    let raw = read_raw(post(&mock, &body("claude-mock", "a b c d", true)).await).await;
    assert!(raw.error.is_some(), "dropped connection");
    let events = parse_sse(std::str::from_utf8(&raw.bytes).unwrap());
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e.event.as_deref() != Some("message_stop")));

    // Malformed: 200 with a body that is not a message.
    let resp = post(&mock, &body("fault-malformed", "hi", false)).await;
    assert_eq!(resp.status(), 200);
    assert!(serde_json::from_str::<Value>(&resp.text().await.unwrap()).is_err());
}
