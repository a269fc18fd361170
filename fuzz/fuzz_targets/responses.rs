//! Upstream response bodies: every provider's non-streaming parser, and every stream
//! decoder followed by both client-facing stream encoders.
//!
//! Input: a selector byte, then the body.
//! - selector % 8 in 0..4: `parse_response` of OpenAI chat, Anthropic, Gemini, Bedrock;
//! - selector % 8 in 4..8: the body is an SSE stream (split with `sse::EventSplitter`, its
//!   `data:` payloads decoded one by one) for OpenAI chat `ChunkDecoder`, Anthropic
//!   `EventDecoder`, Gemini `ChunkDecoder`, Bedrock `StreamDecoder`. For Bedrock the SSE
//!   `event:` line carries the ConverseStream event type; `event: !<type>` is an exception
//!   message. Every IR event is then encoded with `openai_chat::ChunkEncoder` and
//!   `anthropic::EventEncoder`; selector bit 3 sets `include_usage`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_fuzz::{encode_everywhere, sse_payloads};
use portcullis_wire::ir::{Format, StreamEvent};
use portcullis_wire::{anthropic, bedrock, gemini, openai_chat};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let include_usage = selector & 8 == 8;
    match selector % 8 {
        0 => {
            if let Ok(r) = openai_chat::parse_response(body) {
                let _ = openai_chat::response_from_ir(&r, 1);
                let _ = anthropic::response_from_ir(&r);
                let _ = gemini::response_from_ir(&r);
            }
        }
        1 => {
            if let Ok(r) = anthropic::parse_response(body) {
                let _ = openai_chat::response_from_ir(&r, 1);
                let _ = anthropic::response_from_ir(&r);
                let _ = gemini::response_from_ir(&r);
            }
        }
        2 => {
            if let Ok(r) = gemini::parse_response(body) {
                let _ = openai_chat::response_from_ir(&r, 1);
                let _ = anthropic::response_from_ir(&r);
                let _ = gemini::response_from_ir(&r);
            }
        }
        3 => {
            if let Ok(r) = bedrock::parse_response(body, "fuzz-model", "fuzz-id") {
                let _ = openai_chat::response_from_ir(&r, 1);
                let _ = anthropic::response_from_ir(&r);
                let _ = gemini::response_from_ir(&r);
            }
        }
        mode => {
            let mut events: Vec<StreamEvent> = Vec::new();
            let payloads = sse_payloads(body);
            let source = match mode {
                4 => {
                    let mut d = openai_chat::ChunkDecoder::new();
                    for (_, p) in &payloads {
                        events.extend(d.decode(p).unwrap_or_default());
                    }
                    Format::OpenAiChat
                }
                5 => {
                    let mut d = anthropic::EventDecoder::new();
                    for (_, p) in &payloads {
                        events.extend(d.decode(p).unwrap_or_default());
                    }
                    Format::Anthropic
                }
                6 => {
                    let mut d = gemini::ChunkDecoder::new();
                    for (_, p) in &payloads {
                        events.extend(d.decode(p).unwrap_or_default());
                    }
                    let _ = d.is_finished();
                    events.extend(d.finish());
                    Format::Gemini
                }
                _ => {
                    let mut d = bedrock::StreamDecoder::new("fuzz-model", "fuzz-id");
                    for (name, p) in &payloads {
                        let name = name.as_deref().unwrap_or("");
                        match name.strip_prefix('!') {
                            Some(exception) => events.extend(d.exception(exception, p)),
                            None => events.extend(d.decode(name, p).unwrap_or_default()),
                        }
                    }
                    events.extend(d.finish());
                    Format::Bedrock
                }
            };
            encode_everywhere(source, include_usage, &events);
        }
    }
});
