//! OpenAI chat response <-> IR.

use super::types as oa;
use crate::ir::{
    same_format, ChatResponse, Extra, Format, Part, StopKind, StopReason, TranslateError, Usage,
};
use serde_json::Value;

/// Keys under which choice- and message-level unknown fields of an OpenAI response are kept
/// in [`ChatResponse::extra`], so an OpenAI -> IR -> OpenAI trip loses nothing.
const CHOICE_EXTRA: &str = "choices[0]";
const MESSAGE_EXTRA: &str = "choices[0].message";

/// Maps an OpenAI `finish_reason` to the IR.
pub fn stop_to_ir(raw: &str) -> StopReason {
    let kind = match raw {
        "length" => StopKind::Length,
        "tool_calls" | "function_call" => StopKind::ToolCalls,
        "content_filter" => StopKind::ContentFilter,
        _ => StopKind::Stop,
    };
    StopReason::new(kind, raw)
}

/// The OpenAI `finish_reason` for an IR stop reason.
pub fn stop_from_ir(stop: &StopReason) -> &'static str {
    match stop.kind {
        StopKind::Stop => "stop",
        StopKind::Length => "length",
        StopKind::ToolCalls => "tool_calls",
        StopKind::ContentFilter => "content_filter",
    }
}

/// OpenAI usage -> IR.
pub fn usage_to_ir(u: oa::Usage) -> Usage {
    let mut details = u.prompt_tokens_details.unwrap_or_default();
    let cached = details.remove("cached_tokens").and_then(|v| v.as_u64());
    let mut extra = u.extra;
    if !details.is_empty() {
        extra.insert("prompt_tokens_details".into(), Value::Object(details));
    }
    Usage {
        input: u.prompt_tokens,
        output: u.completion_tokens,
        cached_input: cached,
        cache_creation_input: None,
        extra,
    }
}

/// IR usage -> OpenAI (`prompt_tokens` includes cached tokens).
pub fn usage_from_ir(source: Format, u: &Usage) -> oa::Usage {
    let mut extra = same_format(source, Format::OpenAiChat, &u.extra);
    let mut details = match extra.remove("prompt_tokens_details") {
        Some(Value::Object(m)) => m,
        _ => Extra::new(),
    };
    if let Some(c) = u.cached_input {
        details.insert("cached_tokens".into(), c.into());
    }
    oa::Usage {
        prompt_tokens: u.input,
        completion_tokens: u.output,
        total_tokens: u.input + u.output,
        prompt_tokens_details: (!details.is_empty()).then_some(details),
        extra,
    }
}

/// Parses an OpenAI chat response body into the IR.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let resp: oa::Response =
        serde_json::from_slice(body).map_err(|e| TranslateError::malformed(&e))?;
    response_to_ir(resp)
}

/// Converts a typed OpenAI response into the IR (exactly one choice is expected).
pub fn response_to_ir(resp: oa::Response) -> Result<ChatResponse, TranslateError> {
    if resp.choices.len() > 1 {
        return Err(TranslateError::new(
            "choices",
            "only one choice can be translated",
        ));
    }
    let mut extra = resp.extra;
    extra.insert("object".into(), resp.object.into());
    extra.insert("created".into(), resp.created.into());
    let mut content = Vec::new();
    let mut stop = None;
    if let Some(choice) = resp.choices.into_iter().next() {
        if !choice.extra.is_empty() {
            extra.insert(CHOICE_EXTRA.into(), Value::Object(choice.extra));
        }
        let m = choice.message;
        if !m.extra.is_empty() {
            extra.insert(MESSAGE_EXTRA.into(), Value::Object(m.extra));
        }
        if let Some(r) = m.reasoning_content {
            content.push(Part::Thinking {
                text: r,
                signature: None,
                extra: Extra::new(),
            });
        }
        if let Some(t) = m.content {
            content.push(Part::text(t));
        }
        for call in m.tool_calls.unwrap_or_default() {
            content.push(Part::ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
                extra: call.extra,
            });
        }
        stop = choice.finish_reason.as_deref().map(stop_to_ir);
    }
    Ok(ChatResponse {
        source: Format::OpenAiChat,
        id: resp.id,
        model: resp.model,
        content,
        stop,
        usage: resp.usage.map(usage_to_ir),
        extra,
    })
}

/// Encodes an IR response as an OpenAI `chat.completion` body. `created` (unix seconds) is
/// used unless the response came from OpenAI with its own.
pub fn response_from_ir(resp: &ChatResponse, created: u64) -> Value {
    let mut extra = same_format(resp.source, Format::OpenAiChat, &resp.extra);
    let object = extra
        .remove("object")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "chat.completion".into());
    let created = extra
        .remove("created")
        .and_then(|v| v.as_u64())
        .unwrap_or(created);
    let take = |extra: &mut Extra, key: &str| match extra.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Extra::new(),
    };
    let choice_extra = take(&mut extra, CHOICE_EXTRA);
    let message_extra = take(&mut extra, MESSAGE_EXTRA);
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls = Vec::new();
    for p in &resp.content {
        match p {
            Part::Text { text: t, .. } => text.get_or_insert_with(String::new).push_str(t),
            Part::Thinking { text: t, .. } => reasoning.get_or_insert_with(String::new).push_str(t),
            Part::ToolCall {
                id,
                name,
                arguments,
                extra,
            } => calls.push(oa::ToolCall {
                id: id.clone(),
                kind: "function".into(),
                function: oa::FunctionCall {
                    name: name.clone(),
                    arguments: arguments.clone(),
                },
                extra: same_format(resp.source, Format::OpenAiChat, extra),
            }),
            _ => {}
        }
    }
    let out = oa::Response {
        id: resp.id.clone(),
        object,
        created,
        model: resp.model.clone(),
        choices: vec![oa::Choice {
            index: 0,
            message: oa::ResponseMessage {
                role: "assistant".into(),
                content: text,
                reasoning_content: reasoning,
                tool_calls: (!calls.is_empty()).then_some(calls),
                extra: message_extra,
            },
            finish_reason: resp.stop.as_ref().map(|s| match resp.source {
                Format::OpenAiChat => s.raw.clone(),
                Format::Anthropic | Format::Gemini | Format::Bedrock => stop_from_ir(s).to_string(),
            }),
            extra: choice_extra,
        }],
        usage: resp.usage.as_ref().map(|u| usage_from_ir(resp.source, u)),
        extra,
    };
    serde_json::to_value(out).unwrap_or(Value::Null)
}
