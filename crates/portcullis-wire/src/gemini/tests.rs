//! Unit tests of the Gemini translator's rules.

use super::*;
use crate::ir::{ErrorKind, Format, StopKind, StopReason, StreamEvent};
use crate::openai_chat;
use serde_json::{json, Value};

fn openai_to_gemini(body: Value) -> Result<Value, crate::ir::TranslateError> {
    let ir = openai_chat::parse_request(body.to_string().as_bytes()).unwrap();
    request_from_ir(&ir)
}

#[test]
fn tool_results_are_named_after_the_call_they_answer() {
    let out = openai_to_gemini(json!({
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                {"id": "b", "type": "function", "function": {"name": "time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "b", "content": "noon"},
            {"role": "tool", "tool_call_id": "a", "content": "{\"celsius\": 3}"}
        ]
    }))
    .unwrap();
    assert_eq!(
        out["contents"][1]["parts"],
        json!([
            {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"name": "time", "args": {}}}
        ])
    );
    // Both results travel in one user content, each named after its call.
    assert_eq!(out["contents"].as_array().unwrap().len(), 3);
    assert_eq!(
        out["contents"][2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "time", "response": {"output": "noon"}}},
            {"functionResponse": {"name": "weather", "response": {"celsius": 3}}}
        ]})
    );
}

#[test]
fn a_tool_result_without_its_call_names_the_field() {
    let err = openai_to_gemini(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "missing", "content": "x"}
        ]
    }))
    .unwrap_err();
    assert_eq!(err.field, "messages[1].tool_call_id");
    assert!(err.message.contains("missing"), "{}", err.message);
}

#[test]
fn invalid_tool_arguments_are_an_error_naming_the_field() {
    for (args, why) in [("{\"city\": ", "not valid JSON"), ("[1, 2]", "JSON object")] {
        let err = openai_to_gemini(json!({
            "model": "m",
            "messages": [{"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": args}}
            ]}]
        }))
        .unwrap_err();
        assert_eq!(err.field, "messages[0].content[0].arguments");
        assert!(err.message.contains(why), "{}", err.message);
    }
}

#[test]
fn finish_reasons_map_to_ir_kinds() {
    let table = [
        ("STOP", false, StopKind::Stop, "stop"),
        ("STOP", true, StopKind::ToolCalls, "tool_calls"),
        ("MAX_TOKENS", false, StopKind::Length, "length"),
        ("MAX_TOKENS", true, StopKind::Length, "length"),
        ("SAFETY", false, StopKind::ContentFilter, "content_filter"),
        (
            "RECITATION",
            false,
            StopKind::ContentFilter,
            "content_filter",
        ),
        (
            "BLOCKLIST",
            false,
            StopKind::ContentFilter,
            "content_filter",
        ),
        (
            "PROHIBITED_CONTENT",
            false,
            StopKind::ContentFilter,
            "content_filter",
        ),
        ("SPII", false, StopKind::ContentFilter, "content_filter"),
        (
            "IMAGE_SAFETY",
            false,
            StopKind::ContentFilter,
            "content_filter",
        ),
        ("MALFORMED_FUNCTION_CALL", false, StopKind::Stop, "stop"),
        ("OTHER", false, StopKind::Stop, "stop"),
        ("SOMETHING_NEW", false, StopKind::Stop, "stop"),
    ];
    for (raw, calls, kind, openai) in table {
        let stop = stop_to_ir(raw, calls);
        assert_eq!((stop.kind, stop.raw.as_str()), (kind, raw), "{raw}");
        assert_eq!(openai_chat::stop_from_ir(&stop), openai, "{raw}");
        if raw != "SOMETHING_NEW" {
            assert_eq!(stop_from_ir(&stop), raw, "{raw} keeps its spelling");
        }
    }
    let foreign = |kind| stop_from_ir(&StopReason::new(kind, "x"));
    assert_eq!(foreign(StopKind::Stop), "STOP");
    assert_eq!(foreign(StopKind::ToolCalls), "STOP");
    assert_eq!(foreign(StopKind::Length), "MAX_TOKENS");
    assert_eq!(foreign(StopKind::ContentFilter), "SAFETY");
}

#[test]
fn a_blocked_prompt_is_a_content_filter_with_no_content() {
    let body = json!({"promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}});
    let ir = parse_response(body.to_string().as_bytes()).unwrap();
    assert!(ir.content.is_empty());
    assert_eq!(ir.stop.as_ref().unwrap().kind, StopKind::ContentFilter);
    let mut d = ChunkDecoder::new();
    let events = d.decode(body.to_string().as_bytes()).unwrap();
    assert!(matches!(&events[1], StreamEvent::Stop(s) if s.kind == StopKind::ContentFilter));
    assert_eq!(events.last(), Some(&StreamEvent::Done));
}

#[test]
fn usage_counts_reasoning_as_output_and_keeps_the_split() {
    let u: types::UsageMetadata = serde_json::from_value(json!({
        "promptTokenCount": 100, "candidatesTokenCount": 10, "totalTokenCount": 160,
        "cachedContentTokenCount": 64, "thoughtsTokenCount": 50}))
    .unwrap();
    let ir = usage_to_ir(&u);
    assert_eq!((ir.input, ir.output, ir.cached_input), (100, 60, Some(64)));
    assert_eq!(usage_from_ir(Format::Gemini, &ir), u);
    let o = openai_chat::usage_from_ir(Format::Gemini, &ir);
    assert_eq!(
        (o.prompt_tokens, o.completion_tokens, o.total_tokens),
        (100, 60, 160)
    );
}

#[test]
fn errors_are_classified() {
    let cases = [
        (
            json!({"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}),
            ErrorKind::InvalidRequest,
        ),
        (
            json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}),
            ErrorKind::Authentication,
        ),
        (
            json!({"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}),
            ErrorKind::Permission,
        ),
        (
            json!({"error": {"code": 404, "message": "no model", "status": "NOT_FOUND"}}),
            ErrorKind::NotFound,
        ),
        (
            json!([{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}]),
            ErrorKind::RateLimit,
        ),
        (
            json!({"error": {"code": 500, "message": "oops", "status": "INTERNAL"}}),
            ErrorKind::Api,
        ),
        (
            json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
            ErrorKind::Overloaded,
        ),
        (
            json!({"error": {"code": 429, "message": "no status"}}),
            ErrorKind::RateLimit,
        ),
    ];
    for (body, kind) in cases {
        let e = parse_error(body.to_string().as_bytes()).unwrap();
        assert_eq!(e.kind, kind, "{body}");
    }
    assert!(parse_error(b"{\"candidates\": []}").is_none());
    let back = parse_error(&error_body(ErrorKind::RateLimit, "slow down")).unwrap();
    assert_eq!(
        (back.kind, back.code, back.message.as_str()),
        (ErrorKind::RateLimit, 429, "slow down")
    );
}

#[test]
fn a_truncated_stream_ends_with_an_error() {
    let mut d = ChunkDecoder::new();
    let chunk = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}}]});
    let events = d.decode(chunk.to_string().as_bytes()).unwrap();
    assert_eq!(events.len(), 2);
    assert!(matches!(
        d.finish().as_slice(),
        [StreamEvent::Error {
            kind: ErrorKind::Api,
            ..
        }]
    ));
    assert!(d.finish().is_empty());
}

#[test]
fn options_map_or_fail_clearly() {
    let out = openai_to_gemini(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "seed": 7, "reasoning_effort": "low", "tool_choice": {"type": "function", "function": {"name": "f"}},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"}}))
    .unwrap();
    assert_eq!(
        out["generationConfig"],
        json!({"seed": 7, "thinkingConfig": {"thinkingBudget": 1024},
        "responseMimeType": "application/json"})
    );
    assert_eq!(
        out["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}})
    );
    let err = openai_to_gemini(json!({"model": "m", "messages": [], "parallel_tool_calls": false}))
        .unwrap_err();
    assert_eq!(err.field, "parallel_tool_calls");
    let err = openai_to_gemini(json!({"model": "m", "messages": [], "logit_bias": {"1": 2}}))
        .unwrap_err();
    assert_eq!(err.field, "logit_bias");
}

#[test]
fn replayed_calls_get_the_signature_sentinel_on_gemini_3_only() {
    let body = |model: &str| {
        json!({"model": model, "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": "2"}
        ]})
    };
    let out = openai_to_gemini(body("gemini-3-pro-preview")).unwrap();
    let parts = &out["contents"][1]["parts"];
    assert_eq!(
        parts[0]["thoughtSignature"],
        json!(SKIP_SIGNATURE_VALIDATOR)
    );
    assert!(parts[1].get("thoughtSignature").is_none());
    let out = openai_to_gemini(body("gemini-2.5-flash")).unwrap();
    assert!(out["contents"][1]["parts"][0]
        .get("thoughtSignature")
        .is_none());
}
