//! Golden tests for Bedrock: OpenAI and Anthropic request fixtures -> IR -> Converse
//! requests, and Bedrock Converse responses and ConverseStream events (fixtures/bedrock,
//! streams as one JSON object per event-stream message) -> IR -> OpenAI and Anthropic.

mod common;

use common::*;

use portcullis_wire::ir::{Format, StreamEvent};
use portcullis_wire::{anthropic, bedrock, openai_chat};
use serde_json::{json, Value};

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const REQUEST_ID: &str = "5e8a5d4c-0b6e-4a57-9d3a-7f1c2b9e8a10";
const CREATED: u64 = 1_700_000_000;

#[test]
fn openai_and_anthropic_requests_to_converse() {
    for provider in ["openai", "anthropic"] {
        for (name, body) in fixtures(provider) {
            if !name.starts_with("request") {
                continue;
            }
            let ir = match provider {
                "openai" => openai_chat::parse_request(&body),
                _ => anthropic::parse_request(&body),
            }
            .unwrap();
            let stem = format!("bedrock__from_{provider}__{}", name.replace('.', "_"));
            let path = bedrock::model_path(MODEL, ir.is_stream());
            snap(
                &stem,
                json!({ "path": path, "converse": result(bedrock::request_from_ir(&ir)) }),
            );
        }
    }
}

/// Requests written for these tests (fixtures/bedrock/{openai,anthropic}_request_*): shapes
/// Bedrock can express in full, so every translation path shows up in a snapshot.
#[test]
fn expressible_requests_to_converse() {
    for (name, body) in fixtures("bedrock") {
        let ir = if name.starts_with("openai_request") {
            openai_chat::parse_request(&body).unwrap()
        } else if name.starts_with("anthropic_request") {
            anthropic::parse_request(&body).unwrap()
        } else {
            continue;
        };
        let converse = bedrock::request_from_ir(&ir).unwrap();
        snap(
            &format!("bedrock__{}", name.replace('.', "_")),
            json!({ "path": bedrock::model_path(MODEL, ir.is_stream()), "converse": converse }),
        );
    }
}

#[test]
fn converse_responses_to_openai_and_anthropic() {
    for (name, body) in fixtures("bedrock") {
        if !name.starts_with("response") {
            continue;
        }
        let ir = bedrock::parse_response(&body, MODEL, REQUEST_ID).unwrap();
        assert_eq!(ir.source, Format::Bedrock);
        snap(
            &format!("bedrock__{}", name.replace('.', "_")),
            json!({
                "ir": ir,
                "openai": openai_chat::response_from_ir(&ir, CREATED),
                "anthropic": anthropic::response_from_ir(&ir),
            }),
        );
    }
}

/// Feeds one fixture message to the decoder, as the provider does after unframing it.
fn decode(decoder: &mut bedrock::StreamDecoder, message: &Value) -> Vec<StreamEvent> {
    let payload = message["payload"].to_string();
    match message[":message-type"].as_str() {
        Some("exception") => {
            let kind = message[":exception-type"].as_str().unwrap();
            decoder.exception(kind, payload.as_bytes())
        }
        _ => {
            let kind = message[":event-type"].as_str().unwrap();
            decoder.decode(kind, payload.as_bytes()).unwrap()
        }
    }
}

#[test]
fn converse_streams_to_openai_and_anthropic() {
    for (name, body) in fixtures("bedrock") {
        if !name.starts_with("stream") {
            continue;
        }
        let messages: Vec<Value> = serde_json::from_slice(&body).unwrap();
        let mut decoder = bedrock::StreamDecoder::new(MODEL, REQUEST_ID);
        let mut openai = openai_chat::ChunkEncoder::new(Format::Bedrock, CREATED, true);
        let mut anthropic = anthropic::EventEncoder::new(Format::Bedrock);
        let mut steps = Vec::new();
        let mut all = Vec::new();
        for m in &messages {
            let events = decode(&mut decoder, m);
            steps.push(step(m.clone(), &events, &mut openai, &mut anthropic));
            all.extend(events);
        }
        let tail = decoder.finish();
        if !tail.is_empty() {
            steps.push(step(
                json!("<end of body>"),
                &tail,
                &mut openai,
                &mut anthropic,
            ));
        }
        all.extend(tail);
        // Every stream ends exactly once: Done or Error, and nothing after it.
        let ends = all
            .iter()
            .filter(|e| matches!(e, StreamEvent::Done | StreamEvent::Error { .. }))
            .count();
        assert_eq!(ends, 1, "{name}: {all:?}");
        assert!(matches!(
            all.last(),
            Some(StreamEvent::Done | StreamEvent::Error { .. })
        ));
        snap(
            &format!("bedrock__{}", name.replace('.', "_")),
            Value::Array(steps),
        );
    }
}

fn step(
    upstream: Value,
    events: &[StreamEvent],
    openai: &mut openai_chat::ChunkEncoder,
    anthropic: &mut anthropic::EventEncoder,
) -> Value {
    let openai: Vec<String> = events
        .iter()
        .map(|e| String::from_utf8(openai.encode_sse(e)).unwrap())
        .filter(|s| !s.is_empty())
        .collect();
    let anthropic: Vec<Value> = events
        .iter()
        .flat_map(|e| anthropic.encode(e))
        .map(|(name, data)| json!({ "event": name, "data": data }))
        .collect();
    json!({ "upstream": upstream, "ir": events, "openai": openai, "anthropic": anthropic })
}

/// Streamed tool-call fragments reassemble into the same arguments the complete response
/// carries.
#[test]
fn streamed_tool_arguments_reassemble() {
    let (_, body) = fixtures("bedrock")
        .into_iter()
        .find(|(n, _)| n == "stream_tool_use.events.json")
        .unwrap();
    let messages: Vec<Value> = serde_json::from_slice(&body).unwrap();
    let mut decoder = bedrock::StreamDecoder::new(MODEL, REQUEST_ID);
    let mut args = vec![String::new(); 2];
    for m in &messages {
        for e in decode(&mut decoder, m) {
            if let StreamEvent::ToolArgsDelta { index, fragment } = e {
                args[index].push_str(&fragment);
            }
        }
    }
    let parsed: Vec<Value> = args
        .iter()
        .map(|a| serde_json::from_str(a).unwrap())
        .collect();
    assert_eq!(
        parsed,
        vec![
            json!({"location": "Boston, MA"}),
            json!({"location": "Paris, France", "unit": "celsius"})
        ]
    );
}
