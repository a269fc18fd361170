//! Golden tests: every fixture under /fixtures is translated both ways and snapshotted, and
//! same-format round trips must reproduce the fixture exactly.

mod common;

use common::*;

use portcullis_wire::ir::{Format, StreamEvent};
use portcullis_wire::{anthropic, openai_chat};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[test]
fn openai_fixtures() {
    for (name, body) in fixtures("openai") {
        let stem = format!("openai__{}", name.replace('.', "_"));
        if name.starts_with("request") {
            let ir = openai_chat::parse_request(&body).unwrap();
            let back = openai_chat::request_from_ir(&ir).unwrap();
            let original: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(back, original, "{name}: OpenAI -> IR -> OpenAI");
            let anthropic = result(anthropic::request_from_ir(&ir));
            snap(&stem, json!({ "ir": ir, "anthropic": anthropic }));
        } else if name.starts_with("response") {
            let ir = openai_chat::parse_response(&body).unwrap();
            let back = openai_chat::response_from_ir(&ir, 0);
            let original: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(back, original, "{name}: OpenAI -> IR -> OpenAI");
            snap(
                &stem,
                json!({ "ir": ir, "anthropic": anthropic::response_from_ir(&ir) }),
            );
        } else if name.ends_with(".sse") {
            let mut decoder = openai_chat::ChunkDecoder::new();
            let mut encoder = anthropic::EventEncoder::new(Format::OpenAiChat);
            let mut steps = Vec::new();
            for data in sse_payloads(&body) {
                let events = decoder.decode(&data).unwrap();
                let out: Vec<Value> = events
                    .iter()
                    .flat_map(|e| encoder.encode(e))
                    .map(|(name, data)| json!({ "event": name, "data": data }))
                    .collect();
                steps.push(json!({
                    "upstream": String::from_utf8_lossy(&data),
                    "ir": events,
                    "anthropic": out,
                }));
            }
            snap(&stem, Value::Array(steps));
        }
    }
}

#[test]
fn anthropic_fixtures() {
    for (name, body) in fixtures("anthropic") {
        let stem = format!("anthropic__{}", name.replace('.', "_"));
        if name.starts_with("request") {
            let ir = anthropic::parse_request(&body).unwrap();
            let back = anthropic::request_from_ir(&ir).unwrap();
            let original: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(back, original, "{name}: Anthropic -> IR -> Anthropic");
            let openai = result(openai_chat::request_from_ir(&ir));
            snap(&stem, json!({ "ir": ir, "openai": openai }));
        } else if name.starts_with("response") {
            let ir = anthropic::parse_response(&body).unwrap();
            let back = anthropic::response_from_ir(&ir);
            let original: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(back, original, "{name}: Anthropic -> IR -> Anthropic");
            let openai = openai_chat::response_from_ir(&ir, 1_700_000_000);
            snap(&stem, json!({ "ir": ir, "openai": openai }));
        } else if name.ends_with(".sse") {
            let mut decoder = anthropic::EventDecoder::new();
            let mut encoder =
                openai_chat::ChunkEncoder::new(Format::Anthropic, 1_700_000_000, true);
            let mut steps = Vec::new();
            for data in sse_payloads(&body) {
                let events = decoder.decode(&data).unwrap();
                let out: Vec<String> = events
                    .iter()
                    .map(|e| String::from_utf8(encoder.encode_sse(e)).unwrap())
                    .filter(|s| !s.is_empty())
                    .collect();
                steps.push(json!({
                    "upstream": String::from_utf8_lossy(&data),
                    "ir": events,
                    "openai": out,
                }));
            }
            snap(&stem, Value::Array(steps));
        }
    }
}

/// Anthropic stream -> IR -> Anthropic stream reproduces the upstream event sequence
/// (pings aside, which the encoder emits once after message_start, and empty argument
/// fragments, which carry nothing).
#[test]
fn anthropic_stream_round_trip() {
    for (name, body) in fixtures("anthropic") {
        if !name.ends_with(".sse") {
            continue;
        }
        let mut decoder = anthropic::EventDecoder::new();
        let mut encoder = anthropic::EventEncoder::new(Format::Anthropic);
        let upstream: Vec<Value> = sse_payloads(&body)
            .iter()
            .map(|d| serde_json::from_slice::<Value>(d).unwrap())
            .filter(|v| v.pointer("/delta/partial_json") != Some(&json!("")))
            .collect();
        let mut produced = Vec::new();
        for data in sse_payloads(&body) {
            for e in decoder.decode(&data).unwrap() {
                produced.extend(encoder.encode(&e).into_iter().map(|(_, v)| v));
            }
        }
        let kinds = |v: &[Value]| -> Vec<String> {
            v.iter()
                .map(|e| e["type"].as_str().unwrap().to_string())
                .filter(|t| t != "ping")
                .collect()
        };
        assert_eq!(kinds(&produced), kinds(&upstream), "{name}");
    }
}

/// Reassembles tool call arguments by index from IR events.
fn reassemble(events: &[StreamEvent]) -> BTreeMap<usize, (String, String, String)> {
    let mut calls = BTreeMap::new();
    for e in events {
        match e {
            StreamEvent::ToolCallStart { index, id, name } => {
                calls.insert(*index, (id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolArgsDelta { index, fragment } => {
                calls.get_mut(index).unwrap().2.push_str(fragment);
            }
            _ => {}
        }
    }
    calls
}

fn split_at_char(s: &str, at: usize) -> Vec<String> {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    [&s[..at], &s[at..]]
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parallel tool calls whose arguments are split at every offset reassemble into the same
/// arguments through OpenAI chunks -> IR -> Anthropic events -> IR -> OpenAI chunks -> IR.
#[test]
fn parallel_tool_call_fragments_reassemble_at_every_offset() {
    let a = r#"{"location": "Zürich, CH", "unit": "celsius"}"#;
    let b = r#"{"query": "a \"quoted\" value", "n": [1, 2, 3]}"#;
    for at in 0..=a.len().max(b.len()) {
        let mut events = vec![StreamEvent::MessageStart {
            id: "chatcmpl-1".into(),
            model: "m".into(),
            usage: None,
        }];
        for (index, (id, args)) in [("call_a", a), ("call_b", b)].into_iter().enumerate() {
            events.push(StreamEvent::ToolCallStart {
                index,
                id: id.into(),
                name: "tool".into(),
            });
            for fragment in split_at_char(args, at) {
                events.push(StreamEvent::ToolArgsDelta { index, fragment });
            }
        }
        events.push(StreamEvent::Stop(openai_chat::stop_to_ir("tool_calls")));
        events.push(StreamEvent::Done);

        let mut oa_enc = openai_chat::ChunkEncoder::new(Format::OpenAiChat, 0, false);
        let mut oa_dec = openai_chat::ChunkDecoder::new();
        let mut an_enc = anthropic::EventEncoder::new(Format::OpenAiChat);
        let mut an_dec = anthropic::EventDecoder::new();
        let mut oa_enc2 = openai_chat::ChunkEncoder::new(Format::Anthropic, 0, false);
        let mut oa_dec2 = openai_chat::ChunkDecoder::new();
        let mut out = Vec::new();
        for e in &events {
            let bytes = oa_enc.encode_sse(e);
            for data in sse_payloads(&bytes) {
                for e in oa_dec.decode(&data).unwrap() {
                    let bytes = an_enc.encode_sse(&e);
                    for data in sse_payloads(&bytes) {
                        for e in an_dec.decode(&data).unwrap() {
                            let bytes = oa_enc2.encode_sse(&e);
                            for data in sse_payloads(&bytes) {
                                out.extend(oa_dec2.decode(&data).unwrap());
                            }
                        }
                    }
                }
            }
        }
        let calls = reassemble(&out);
        assert_eq!(
            calls[&0],
            ("call_a".into(), "tool".into(), a.into()),
            "offset {at}"
        );
        assert_eq!(
            calls[&1],
            ("call_b".into(), "tool".into(), b.into()),
            "offset {at}"
        );
        assert!(matches!(out.last(), Some(StreamEvent::Done)), "offset {at}");
    }
}

#[test]
fn unsupported_fields_name_the_field() {
    let err = anthropic::request_from_ir(
        &openai_chat::parse_request(br#"{"model":"m","messages":[],"n":2}"#).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.field, "n");
    let err = anthropic::request_from_ir(
        &openai_chat::parse_request(br#"{"model":"m","messages":[],"logprobs":true}"#).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.field, "logprobs");
    let ok = anthropic::request_from_ir(
        &openai_chat::parse_request(br#"{"model":"m","messages":[],"n":1,"logprobs":false}"#)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ok["max_tokens"], anthropic::DEFAULT_MAX_TOKENS);
    let err = openai_chat::request_from_ir(
        &anthropic::parse_request(br#"{"model":"m","max_tokens":5,"messages":[],"top_k":3}"#)
            .unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.field, "top_k");
}

#[test]
fn anthropic_error_shape() {
    let body = anthropic::error_body(portcullis_wire::ir::ErrorKind::Overloaded, "Overloaded");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
}

#[test]
fn usage_cache_accounting_round_trips() {
    let an_usage = anthropic::types::Usage {
        input_tokens: 100,
        output_tokens: 7,
        cache_creation_input_tokens: Some(20),
        cache_read_input_tokens: Some(300),
        extra: Default::default(),
    };
    let ir = anthropic::usage_to_ir(&an_usage);
    assert_eq!((ir.input, ir.cached_input), (420, Some(300)));
    let oa = openai_chat::usage_from_ir(Format::Anthropic, &ir);
    assert_eq!((oa.prompt_tokens, oa.total_tokens), (420, 427));
    let back = anthropic::usage_from_ir(Format::Anthropic, &ir);
    assert_eq!(back.input_tokens, 100);
}

#[test]
fn interleaved_tool_arguments_fail_visibly_in_anthropic_streams() {
    let mut enc = anthropic::EventEncoder::new(Format::OpenAiChat);
    for e in [
        StreamEvent::ToolCallStart {
            index: 0,
            id: "a".into(),
            name: "t".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "b".into(),
            name: "t".into(),
        },
    ] {
        enc.encode(&e);
    }
    let out = enc.encode(&StreamEvent::ToolArgsDelta {
        index: 0,
        fragment: "{}".into(),
    });
    assert_eq!(out.last().unwrap().0, "error");
    assert!(enc.encode(&StreamEvent::Done).is_empty());
}
