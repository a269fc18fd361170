//! Record of the requests a mock upstream received.

use std::sync::Mutex;

use bytes::Bytes;

/// One request as the mock upstream received it (recorded before any fault is applied).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `"POST"`.
    pub method: String,
    /// Path including the query string, e.g. `"/v1/chat/completions?x=1"`.
    pub path: String,
    /// Headers in arrival order; names are lowercase.
    pub headers: Vec<(String, String)>,
    /// The complete request body.
    pub body: Bytes,
    /// The HTTP version the request came over.
    pub version: http::Version,
}

impl RecordedRequest {
    pub(crate) fn from_parts(parts: &http::request::Parts, body: Bytes) -> Self {
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| parts.uri.path().to_owned());
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path,
            headers,
            body,
            version: parts.version,
        }
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, or `Value::Null` if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as (lossy) UTF-8 text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Thread-safe, append-only list of recorded requests.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    requests: Mutex<Vec<RecordedRequest>>,
}

impl Recorder {
    pub(crate) fn push(&self, request: RecordedRequest) {
        lock(&self.requests).push(request);
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub(crate) fn clear(&self) {
        lock(&self.requests).clear();
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.requests).len()
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test must not break the others).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
