//! Helpers shared by the golden tests: fixture loading, SSE payloads, snapshots.

#![allow(dead_code)]

use portcullis_wire::sse::{event_data, EventSplitter};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Every fixture file of a provider, sorted by name.
pub fn fixtures(provider: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(provider);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// The `data:` payloads of an SSE stream.
pub fn sse_payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut splitter = EventSplitter::new(1 << 20);
    let events = splitter.push(bytes).unwrap();
    assert!(splitter.remainder().is_empty());
    events.iter().filter_map(|e| event_data(e)).collect()
}

/// `{"ok": ...}` or `{"error": ...}` for a snapshot.
pub fn result<T: serde::Serialize, E: serde::Serialize>(r: Result<T, E>) -> Value {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": e }),
    }
}

/// Snapshots a value under `name` in tests/snapshots.
pub fn snap(name: &str, value: Value) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("../snapshots");
    settings.bind(|| insta::assert_json_snapshot!(name.to_string(), value));
}
