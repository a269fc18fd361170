//! The configuration document (YAML with `${ENV}` references), with no variable set.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = portcullis_config::load_str(text, &|_| None);
    }
});
