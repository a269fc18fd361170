//! Anthropic Messages response <-> IR, stop reasons, usage and the error shape.

use super::request::block_to_ir;
use super::types as an;
use crate::ir::{
    same_format, ChatResponse, ErrorKind, Format, Part, StopKind, StopReason, TranslateError, Usage,
};
use serde_json::{json, Value};

/// Maps an Anthropic `stop_reason` (and matched `stop_sequence`) to the IR.
pub fn stop_to_ir(raw: &str, stop_sequence: Option<String>) -> StopReason {
    let kind = match raw {
        "max_tokens" | "model_context_window_exceeded" => StopKind::Length,
        "tool_use" => StopKind::ToolCalls,
        "refusal" => StopKind::ContentFilter,
        _ => StopKind::Stop,
    };
    StopReason {
        kind,
        raw: raw.to_string(),
        stop_sequence,
    }
}

/// The Anthropic `stop_reason` for an IR stop reason (the original spelling when it fits).
pub fn stop_from_ir(stop: &StopReason) -> &'static str {
    match (stop.kind, stop.raw.as_str()) {
        (StopKind::Stop, "pause_turn") => "pause_turn",
        (StopKind::Stop, _) if stop.stop_sequence.is_some() || stop.raw == "stop_sequence" => {
            "stop_sequence"
        }
        (StopKind::Stop, _) => "end_turn",
        (StopKind::Length, "model_context_window_exceeded") => "model_context_window_exceeded",
        (StopKind::Length, _) => "max_tokens",
        (StopKind::ToolCalls, _) => "tool_use",
        (StopKind::ContentFilter, _) => "refusal",
    }
}

/// Anthropic usage -> IR (`input` becomes the total prompt, cache reads and writes included).
pub fn usage_to_ir(u: &an::Usage) -> Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let created = u.cache_creation_input_tokens.unwrap_or(0);
    Usage {
        input: u.input_tokens + read + created,
        output: u.output_tokens,
        cached_input: u.cache_read_input_tokens,
        cache_creation_input: u.cache_creation_input_tokens,
        extra: u.extra.clone(),
    }
}

/// IR usage -> Anthropic (`input_tokens` excludes cache reads and writes).
pub fn usage_from_ir(source: Format, u: &Usage) -> an::Usage {
    let cached = u.cached_input.unwrap_or(0) + u.cache_creation_input.unwrap_or(0);
    an::Usage {
        input_tokens: u.input.saturating_sub(cached),
        output_tokens: u.output,
        cache_creation_input_tokens: u.cache_creation_input,
        cache_read_input_tokens: u.cached_input,
        extra: same_format(source, Format::Anthropic, &u.extra),
    }
}

/// Parses an Anthropic response body into the IR.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let resp: an::Response =
        serde_json::from_slice(body).map_err(|e| TranslateError::malformed(&e))?;
    Ok(response_to_ir(resp))
}

/// Converts a typed Anthropic response into the IR.
pub fn response_to_ir(resp: an::Response) -> ChatResponse {
    ChatResponse {
        source: Format::Anthropic,
        id: resp.id,
        model: resp.model,
        content: resp.content.into_iter().map(block_to_ir).collect(),
        stop: resp
            .stop_reason
            .as_deref()
            .map(|r| stop_to_ir(r, resp.stop_sequence.clone())),
        usage: Some(usage_to_ir(&resp.usage)),
        extra: resp.extra,
    }
}

/// Encodes an IR response as an Anthropic `message` body.
pub fn response_from_ir(resp: &ChatResponse) -> Value {
    let same = resp.source == Format::Anthropic;
    let content: Vec<an::Block> = resp
        .content
        .iter()
        .filter_map(|p| {
            let known = match p.clone() {
                Part::Text { text, extra } => an::KnownBlock::Text {
                    text,
                    extra: same_format(resp.source, Format::Anthropic, &extra),
                },
                Part::Thinking {
                    text,
                    signature,
                    extra,
                } => an::KnownBlock::Thinking {
                    thinking: text,
                    signature: Some(signature.unwrap_or_default()),
                    extra: same_format(resp.source, Format::Anthropic, &extra),
                },
                Part::RedactedThinking { data } => an::KnownBlock::RedactedThinking { data },
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                    extra,
                } => an::KnownBlock::ToolUse {
                    id,
                    name,
                    // A model's malformed arguments are kept as text under a single key rather than lost.
                    input: serde_json::from_str(&arguments)
                        .unwrap_or_else(|_| json!({ "_raw_arguments": arguments })),
                    extra: same_format(resp.source, Format::Anthropic, &extra),
                },
                Part::Other { value } if same => return Some(an::Block::Other(value)),
                _ => return None,
            };
            Some(an::Block::Known(known))
        })
        .collect();
    let out = an::Response {
        id: resp.id.clone(),
        kind: "message".into(),
        role: "assistant".into(),
        content,
        model: resp.model.clone(),
        stop_reason: resp.stop.as_ref().map(|s| stop_from_ir(s).to_string()),
        stop_sequence: resp.stop.as_ref().and_then(|s| s.stop_sequence.clone()),
        usage: resp
            .usage
            .as_ref()
            .map(|u| usage_from_ir(resp.source, u))
            .unwrap_or_default(),
        extra: same_format(resp.source, Format::Anthropic, &resp.extra),
    };
    serde_json::to_value(out).unwrap_or(Value::Null)
}

/// The Anthropic error object: `{"type":"error","error":{"type":...,"message":...}}`.
pub fn error_value(kind: ErrorKind, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind.anthropic_type(), "message": message}})
}

/// The Anthropic error body, serialized.
pub fn error_body(kind: ErrorKind, message: &str) -> Vec<u8> {
    error_value(kind, message).to_string().into_bytes()
}
