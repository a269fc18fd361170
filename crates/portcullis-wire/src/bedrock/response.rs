//! Bedrock Converse response -> IR, stop reasons and usage.

use super::types as br;
use crate::ir::{ChatResponse, Format, ImageSource, Part, StopKind, StopReason, TranslateError};
use crate::ir::{Extra, Usage};
use serde_json::Value;

/// Maps a Bedrock `stopReason` to the IR.
pub fn stop_to_ir(raw: &str) -> StopReason {
    let kind = match raw {
        "max_tokens" | "model_context_window_exceeded" => StopKind::Length,
        "tool_use" => StopKind::ToolCalls,
        "guardrail_intervened" | "content_filtered" => StopKind::ContentFilter,
        _ => StopKind::Stop,
    };
    StopReason::new(kind, raw)
}

/// Bedrock usage -> IR (`input` becomes the total prompt, cache reads and writes included:
/// Bedrock's `inputTokens` counts neither).
pub fn usage_to_ir(u: &br::Usage) -> Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let written = u.cache_write_input_tokens.unwrap_or(0);
    Usage {
        input: u.input_tokens + read + written,
        output: u.output_tokens,
        cached_input: u.cache_read_input_tokens,
        cache_creation_input: u.cache_write_input_tokens,
        extra: u.extra.clone(),
    }
}

/// Parses a Converse response body into the IR. Bedrock's body names neither the model nor
/// a response id: the caller passes the model it called and an id (e.g. the
/// `x-amzn-RequestId` header).
pub fn parse_response(body: &[u8], model: &str, id: &str) -> Result<ChatResponse, TranslateError> {
    let resp: br::Response =
        serde_json::from_slice(body).map_err(|e| TranslateError::malformed(&e))?;
    Ok(response_to_ir(resp, model, id))
}

/// Converts a typed Converse response into the IR.
pub fn response_to_ir(resp: br::Response, model: &str, id: &str) -> ChatResponse {
    let mut stop = stop_to_ir(&resp.stop_reason);
    // Claude models report the matched stop sequence among the model-specific fields.
    stop.stop_sequence = resp
        .extra
        .get("additionalModelResponseFields")
        .and_then(|f| f.get("stop_sequence"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    ChatResponse {
        source: Format::Bedrock,
        id: id.to_string(),
        model: model.to_string(),
        content: resp
            .output
            .message
            .content
            .into_iter()
            .map(block_to_ir)
            .collect(),
        stop: Some(stop),
        usage: resp.usage.as_ref().map(usage_to_ir),
        extra: resp.extra,
    }
}

/// One Bedrock content block -> one IR part.
pub(crate) fn block_to_ir(b: br::Block) -> Part {
    let known = match b {
        br::Block::Known(k) => k,
        br::Block::Other(value) => return Part::Other { value },
    };
    match known {
        br::KnownBlock::Text(text) => Part::text(text),
        br::KnownBlock::ToolUse(t) => Part::ToolCall {
            id: t.tool_use_id,
            name: t.name,
            arguments: t.input.to_string(),
            extra: Extra::new(),
        },
        br::KnownBlock::ReasoningContent(br::Reasoning::ReasoningText { text, signature }) => {
            Part::Thinking {
                text,
                signature,
                extra: Extra::new(),
            }
        }
        br::KnownBlock::ReasoningContent(br::Reasoning::RedactedContent(data)) => {
            Part::RedactedThinking { data }
        }
        br::KnownBlock::Image(img) => match img.source.get("bytes").and_then(Value::as_str) {
            Some(data) => Part::Image {
                source: ImageSource::Base64 {
                    media_type: format!("image/{}", img.format),
                    data: data.to_string(),
                },
                detail: None,
                extra: Extra::new(),
            },
            None => Part::Other {
                value: serde_json::json!({ "image": img }),
            },
        },
        other @ (br::KnownBlock::ToolResult(_) | br::KnownBlock::CachePoint(_)) => Part::Other {
            value: serde_json::to_value(other).unwrap_or(Value::Null),
        },
    }
}
