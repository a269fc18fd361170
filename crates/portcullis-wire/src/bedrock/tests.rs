//! Bedrock translation edge cases not covered by the golden fixtures.

use super::*;
use crate::ir::{ChatRequest, StreamEvent};
use crate::{anthropic, openai_chat};
use serde_json::json;

fn openai(body: serde_json::Value) -> ChatRequest {
    openai_chat::parse_request(body.to_string().as_bytes()).unwrap()
}

fn field_of(req: &ChatRequest) -> String {
    request_from_ir(req).unwrap_err().field
}

const TOOL: &str = r#"{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}"#;

#[test]
fn model_ids_are_one_encoded_path_segment() {
    assert_eq!(
        model_path("anthropic.claude-3-haiku-20240307-v1:0", false),
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert_eq!(
        model_path("arn:aws:bedrock:us-east-1:1:inference-profile/us.x", true),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x/converse-stream"
    );
}

#[test]
fn tool_choice_none_drops_tools_unless_the_conversation_used_them() {
    let tool: serde_json::Value = serde_json::from_str(TOOL).unwrap();
    let req = openai(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tools": [tool], "tool_choice": "none"}),
    );
    assert_eq!(request_from_ir(&req).unwrap().get("toolConfig"), None);
    let req = openai(json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "ok"}],
        "tools": [tool], "tool_choice": "none"}));
    assert_eq!(field_of(&req), "tool_choice");
}

#[test]
fn inexpressible_fields_are_named() {
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let req = openai(json!({"model": "m", "messages": msgs, "parallel_tool_calls": false}));
    assert_eq!(field_of(&req), "parallel_tool_calls");
    let req =
        openai(json!({"model": "m", "messages": msgs, "response_format": {"type": "json_object"}}));
    assert_eq!(field_of(&req), "response_format");
    let req = openai(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}]}]}),
    );
    assert_eq!(field_of(&req), "messages[0].content[0]");
    let req = openai(
        json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}),
    );
    assert_eq!(field_of(&req), "messages[0].content[0].arguments");
    let req = anthropic::parse_request(
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],
            "tools":[{"type":"web_search_20250305","name":"web_search"}]}"#,
    )
    .unwrap();
    assert_eq!(field_of(&req), "tools[0].type");
}

#[test]
fn defaults_and_hints_are_accepted() {
    let req = openai(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "n": 1, "logprobs": false, "seed": 3, "store": false, "user": "u", "parallel_tool_calls": true}),
    );
    let body = request_from_ir(&req).unwrap();
    assert_eq!(
        body,
        json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    );
}

#[test]
fn stream_tolerates_unknown_events_and_reports_truncation() {
    let mut d = StreamDecoder::new("m", "id");
    assert!(d.decode("somethingNew", b"{}").unwrap().is_empty());
    assert!(d.decode("messageStart", b"not json").is_err());
    // A tool delta for a block that never started carries nothing it can be attached to.
    let delta = br#"{"contentBlockIndex":3,"delta":{"toolUse":{"input":"{}"}}}"#;
    assert!(d.decode("contentBlockDelta", delta).unwrap().is_empty());
    assert!(matches!(d.finish()[..], [StreamEvent::Error { .. }]));
    assert!(d.finish().is_empty());

    let mut d = StreamDecoder::new("m", "id");
    d.decode("messageStop", br#"{"stopReason":"end_turn"}"#)
        .unwrap();
    assert_eq!(d.finish(), vec![StreamEvent::Done]);
}
