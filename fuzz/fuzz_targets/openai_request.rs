//! OpenAI-shaped client bodies: the passthrough reader (model/stream/stream_options) and the
//! Chat Completions -> IR parser; every parsed request is translated to every provider.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_wire::{openai::PassthroughRequest, openai_chat};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = PassthroughRequest::parse(data) {
        let _ = req.require("messages", true);
        let _ = req.require("input", false);
        let mut fields = req.upstream_fields("upstream-model");
        portcullis_wire::openai::request_stream_usage(&mut fields);
    }
    if let Ok(ir) = openai_chat::parse_request(data) {
        portcullis_fuzz::translate_everywhere(&ir);
    }
});
