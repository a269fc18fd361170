//! Gemini `generateContent` bodies (the mock upstream and a future inbound API) -> IR ->
//! every provider.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_wire::gemini;

fuzz_target!(|data: &[u8]| {
    let stream = data.first().is_some_and(|b| b & 1 == 1);
    if let Ok(ir) = gemini::parse_request(data, "gemini-fuzz", stream) {
        portcullis_fuzz::translate_everywhere(&ir);
    }
});
