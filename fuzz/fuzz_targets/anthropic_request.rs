//! Anthropic Messages client bodies (`POST /v1/messages`) -> IR -> every provider.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_wire::anthropic;

fuzz_target!(|data: &[u8]| {
    if let Ok(ir) = anthropic::parse_request(data) {
        portcullis_fuzz::translate_everywhere(&ir);
    }
});
