//! Helpers shared by the fuzz targets (see `README.md`).

use portcullis_wire::ir::{ChatRequest, Format, StreamEvent};
use portcullis_wire::{anthropic, bedrock, gemini, openai_chat};

/// Translates a parsed request to every provider format. Translation may refuse a request
/// (a clear 400), never panic. Whatever a translator produces is fed back to that format's
/// own parser, which must not panic either.
pub fn translate_everywhere(req: &ChatRequest) {
    if let Ok(v) = openai_chat::request_from_ir(req) {
        let _ = openai_chat::parse_request(v.to_string().as_bytes());
    }
    if let Ok(v) = anthropic::request_from_ir(req) {
        let _ = anthropic::parse_request(v.to_string().as_bytes());
    }
    if let Ok(v) = gemini::request_from_ir(req) {
        let _ = gemini::parse_request(v.to_string().as_bytes(), &req.model, false);
    }
    if let Ok(v) = bedrock::request_from_ir(req) {
        let _ = v.to_string();
    }
}

/// Encodes decoded IR events with every stream encoder (OpenAI chunks, Anthropic events,
/// Gemini chunks), as the gateway does when it relays a translated stream.
pub fn encode_everywhere(source: Format, include_usage: bool, events: &[StreamEvent]) {
    let mut openai = openai_chat::ChunkEncoder::new(source, 1_700_000_000, include_usage);
    let mut anthropic = anthropic::EventEncoder::new(source);
    let mut gemini = gemini::ChunkEncoder::new(source);
    for event in events {
        let _ = openai.encode_sse(event);
        let _ = anthropic.encode_sse(event);
        let _ = gemini.encode_sse(event);
    }
}

/// The `data:` payloads (with the `event:` name, if any) of an SSE byte stream, as the
/// gateway sees them: split by [`portcullis_wire::sse::EventSplitter`], then
/// [`portcullis_wire::sse::event_data`].
pub fn sse_payloads(body: &[u8]) -> Vec<(Option<String>, Vec<u8>)> {
    use portcullis_wire::sse::{event_data, EventSplitter};
    let mut splitter = EventSplitter::new(1 << 20);
    let Ok(mut events) = splitter.push(body) else {
        return Vec::new();
    };
    // A stream that ends without a final blank line still delivers its last event.
    if !splitter.remainder().is_empty() {
        events.push(bytes::Bytes::copy_from_slice(splitter.remainder()));
    }
    events
        .iter()
        .filter_map(|e| {
            let data = event_data(e)?;
            let name = e
                .split(|&b| b == b'\n')
                .find_map(|l| l.strip_prefix(b"event:"))
                .map(|n| String::from_utf8_lossy(n).trim().to_string());
            Some((name, data))
        })
        .collect()
}
