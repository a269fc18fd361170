//! Golden tests for the Gemini translator: every fixture under /fixtures/gemini is
//! translated to the IR and on to OpenAI (and back to Gemini, which must reproduce it),
//! and the OpenAI and Anthropic request fixtures are translated to Gemini requests.

mod common;

use common::*;

use portcullis_wire::ir::{Format, StreamEvent};
use portcullis_wire::sse::{event_data, EventSplitter};
use portcullis_wire::{anthropic, gemini, openai_chat};
use serde_json::{json, Value};

const MODEL: &str = "gemini-2.5-flash";

/// Decodes a whole Gemini stream into IR events, one chunk at a time.
fn decode_stream(body: &[u8]) -> Vec<StreamEvent> {
    let mut decoder = gemini::ChunkDecoder::new();
    let mut events = Vec::new();
    for data in sse_payloads(body) {
        events.extend(decoder.decode(&data).unwrap());
    }
    events.extend(decoder.finish());
    events
}

#[test]
fn gemini_fixtures() {
    for (name, body) in fixtures("gemini") {
        let stem = format!("gemini__{}", name.replace('.', "_"));
        if name.starts_with("request") {
            let ir = gemini::parse_request(&body, MODEL, false).unwrap();
            let back = gemini::request_from_ir(&ir).unwrap();
            let original: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(back, original, "{name}: Gemini -> IR -> Gemini");
            let openai = result(openai_chat::request_from_ir(&ir));
            snap(&stem, json!({ "ir": ir, "openai": openai }));
        } else if name.starts_with("response") {
            let ir = gemini::parse_response(&body).unwrap();
            let back = gemini::response_from_ir(&ir);
            let original: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(back, original, "{name}: Gemini -> IR -> Gemini");
            let openai = openai_chat::response_from_ir(&ir, 1_700_000_000);
            snap(&stem, json!({ "ir": ir, "openai": openai }));
        } else if name.ends_with(".sse") {
            let mut decoder = gemini::ChunkDecoder::new();
            let mut encoder = openai_chat::ChunkEncoder::new(Format::Gemini, 1_700_000_000, true);
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
            assert!(decoder.is_finished(), "{name}: stream has a final chunk");
            snap(&stem, Value::Array(steps));
        }
    }
}

/// OpenAI and Anthropic requests -> IR -> Gemini requests; OpenAI responses and streams ->
/// IR -> Gemini responses and chunks (the mock upstream's direction).
#[test]
fn foreign_fixtures_to_gemini() {
    for provider in ["openai", "anthropic"] {
        for (name, body) in fixtures(provider) {
            if !name.starts_with("request") {
                continue;
            }
            let ir = match provider {
                "openai" => openai_chat::parse_request(&body).unwrap(),
                _ => anthropic::parse_request(&body).unwrap(),
            };
            let stem = format!("{provider}_to_gemini__{}", name.replace('.', "_"));
            snap(&stem, result(gemini::request_from_ir(&ir)));
        }
    }
    for (name, body) in fixtures("openai") {
        let stem = format!("openai_to_gemini__{}", name.replace('.', "_"));
        if name.starts_with("response") {
            let ir = openai_chat::parse_response(&body).unwrap();
            snap(&stem, gemini::response_from_ir(&ir));
        } else if name.ends_with(".sse") {
            let mut decoder = openai_chat::ChunkDecoder::new();
            let mut encoder = gemini::ChunkEncoder::new(Format::OpenAiChat);
            let mut sse = String::new();
            for data in sse_payloads(&body) {
                for e in decoder.decode(&data).unwrap() {
                    sse.push_str(&String::from_utf8(encoder.encode_sse(&e)).unwrap());
                }
            }
            // What the encoder produced decodes to the same calls, text and stop.
            let reread = decode_stream(sse.as_bytes());
            assert!(matches!(reread.last(), Some(StreamEvent::Done)), "{name}");
            snap(&stem, json!({ "sse": sse, "ir_again": reread }));
        }
    }
}

/// Gemini stream -> IR -> Gemini chunks -> IR gives the same events: the encoder loses
/// nothing the decoder reads.
#[test]
fn gemini_stream_round_trip() {
    for (name, body) in fixtures("gemini") {
        if !name.ends_with(".sse") {
            continue;
        }
        let events = decode_stream(&body);
        let mut encoder = gemini::ChunkEncoder::new(Format::Gemini);
        let sse: Vec<u8> = events.iter().flat_map(|e| encoder.encode_sse(e)).collect();
        assert_eq!(decode_stream(&sse), events, "{name}");
    }
}

/// Splitting the stream's bytes at any offset yields the same IR events.
#[test]
fn stream_split_at_every_byte_offset() {
    for (name, body) in fixtures("gemini") {
        if !name.ends_with(".sse") {
            continue;
        }
        let whole = decode_stream(&body);
        for cut in 0..=body.len() {
            let mut splitter = EventSplitter::new(1 << 20);
            let mut decoder = gemini::ChunkDecoder::new();
            let mut events = Vec::new();
            for piece in [&body[..cut], &body[cut..]] {
                for event in splitter.push(piece).unwrap() {
                    if let Some(data) = event_data(&event) {
                        events.extend(decoder.decode(&data).unwrap());
                    }
                }
            }
            events.extend(decoder.finish());
            assert_eq!(events, whole, "{name}: cut at byte {cut}");
        }
    }
}
