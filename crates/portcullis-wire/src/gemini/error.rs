//! Gemini's error shape: `{"error":{"code":400,"message":"...","status":"INVALID_ARGUMENT",
//! "details":[...]}}` (google.rpc.Status), classified into IR error kinds.

use crate::ir::ErrorKind;
use serde_json::{json, Value};

/// A Gemini error, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// Error family.
    pub kind: ErrorKind,
    /// The HTTP-like `code` Gemini sent (0 when absent).
    pub code: u16,
    /// The canonical `status` (e.g. `RESOURCE_EXHAUSTED`), empty when absent.
    pub status: String,
    /// Gemini's message. It may echo request details: log it, do not forward it blindly.
    pub message: String,
}

/// Classifies a Gemini error by its canonical `status`, falling back to the HTTP code.
/// `reason` is the `google.rpc.ErrorInfo` reason when present: Gemini reports a bad API
/// key as `INVALID_ARGUMENT` with reason `API_KEY_INVALID`, which is an authentication
/// failure (the gateway's own misconfiguration, not the client's fault).
pub fn error_kind(status: &str, code: u16, reason: Option<&str>) -> ErrorKind {
    if matches!(reason, Some("API_KEY_INVALID" | "API_KEY_EXPIRED")) {
        return ErrorKind::Authentication;
    }
    match status {
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" => ErrorKind::InvalidRequest,
        "FAILED_PRECONDITION" | "PERMISSION_DENIED" => ErrorKind::Permission,
        "UNAUTHENTICATED" => ErrorKind::Authentication,
        "NOT_FOUND" => ErrorKind::NotFound,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimit,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "INTERNAL" | "UNKNOWN" | "DEADLINE_EXCEEDED" | "ABORTED" | "CANCELLED" => ErrorKind::Api,
        _ => match code {
            400 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimit,
            503 | 529 => ErrorKind::Overloaded,
            _ => ErrorKind::Api,
        },
    }
}

/// Parses a Gemini error body (also accepted wrapped in a one-element array, as the
/// non-SSE stream endpoint sends it). None when the body is not Gemini's error shape.
pub fn parse_error(body: &[u8]) -> Option<UpstreamError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    error_from_value(&v)
}

/// Like [`parse_error`], for an already parsed JSON value.
pub fn error_from_value(v: &Value) -> Option<UpstreamError> {
    let v = match v {
        Value::Array(items) if items.len() == 1 => &items[0],
        v => v,
    };
    let err = v.get("error")?.as_object()?;
    let code = err.get("code").and_then(Value::as_u64).unwrap_or(0);
    let code = u16::try_from(code).unwrap_or(0);
    let status = err.get("status").and_then(Value::as_str).unwrap_or("");
    let reason = err
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|d| d.get("reason").and_then(Value::as_str));
    Some(UpstreamError {
        kind: error_kind(status, code, reason),
        code,
        status: status.to_string(),
        message: err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("upstream error")
            .to_string(),
    })
}

/// The HTTP status and canonical `status` Gemini uses for an error kind.
pub fn error_status(kind: ErrorKind) -> (u16, &'static str) {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => (400, "INVALID_ARGUMENT"),
        ErrorKind::Authentication => (401, "UNAUTHENTICATED"),
        ErrorKind::Permission => (403, "PERMISSION_DENIED"),
        ErrorKind::NotFound => (404, "NOT_FOUND"),
        ErrorKind::RateLimit => (429, "RESOURCE_EXHAUSTED"),
        ErrorKind::Api => (500, "INTERNAL"),
        ErrorKind::Overloaded => (503, "UNAVAILABLE"),
    }
}

/// The Gemini error object for an error kind (for the mock upstream and a future Gemini
/// inbound API).
pub fn error_value(kind: ErrorKind, message: &str) -> Value {
    let (code, status) = error_status(kind);
    json!({"error": {"code": code, "message": message, "status": status}})
}

/// The Gemini error body, serialized.
pub fn error_body(kind: ErrorKind, message: &str) -> Vec<u8> {
    error_value(kind, message).to_string().into_bytes()
}
