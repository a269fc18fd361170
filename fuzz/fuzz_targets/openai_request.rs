//! OpenAI-shaped client bodies: the passthrough reader (raw top-level fields, the fields the
//! gateway reads, the upstream encoding) and the Chat Completions -> IR parser; every parsed
//! request is translated to every provider.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_wire::openai::{request_stream_usage, PassthroughRequest};
use portcullis_wire::openai_chat;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = PassthroughRequest::parse(data) {
        passthrough(data, &req);
    }
    if let Ok(ir) = openai_chat::parse_request(data) {
        portcullis_fuzz::translate_everywhere(&ir);
    }
});

/// The raw passthrough: reading fields never panics, and the upstream body it writes is
/// JSON holding exactly what the field-by-field parse holds.
fn passthrough(data: &[u8], req: &PassthroughRequest) {
    let _ = req.require("messages", true);
    let _ = req.require("input", false);
    for field in [
        "model",
        "messages",
        "metadata",
        "max_tokens",
        "stream_options",
    ] {
        let _ = req.get(field);
    }
    let whole_body_parses = serde_json::from_slice::<Value>(data).is_ok();
    let parsed_fields = req.upstream_fields("upstream-model");
    for ask_stream_usage in [false, true] {
        let raw = req.encode_upstream("upstream-model", ask_stream_usage);
        let reparsed = serde_json::from_slice::<Value>(&raw);
        // Fields kept as sent may hold what only a full parse refuses (a lone surrogate
        // escape, a number beyond f64): the output is then as unparseable as the input.
        if whole_body_parses {
            assert!(
                reparsed.is_ok(),
                "encode_upstream wrote invalid JSON for a valid body: {:?}",
                String::from_utf8_lossy(&raw)
            );
        }
        if let (Ok(fields), Ok(reparsed)) = (&parsed_fields, reparsed) {
            let mut fields = fields.clone();
            if ask_stream_usage {
                request_stream_usage(&mut fields);
            }
            assert_eq!(
                reparsed,
                Value::Object(fields),
                "the raw encoding differs from the parsed fields"
            );
        }
    }
}
