//! IR -> Bedrock Converse request, and the request path of a model.

use super::types as br;
use crate::ir::{ChatRequest, Content, Extra, Format, ImageSource, Part, ResponseFormat, Role};
use crate::ir::{ToolChoice, TranslateError};
use serde_json::{json, Value};

/// OpenAI request fields the IR does not model that may be dropped going to Bedrock:
/// transport options the gateway handles itself, or hints with no effect on the answer.
const DROPPABLE_OPENAI: &[&str] = &[
    "stream_options",
    "store",
    "service_tier",
    "seed",
    "max_completion_tokens",
    "prompt_cache_key",
    "safety_identifier",
    "reasoning_effort",
];

/// Anthropic request fields that do not go to the model: Bedrock has its own service tiers.
/// Every other Anthropic field (`top_k`, `thinking`, ...) is passed to the model in
/// `additionalModelRequestFields`, which is how Bedrock accepts them for Claude.
const DROPPABLE_ANTHROPIC: &[&str] = &["service_tier"];

/// OpenAI fields accepted only at their default value (which Bedrock already behaves as).
fn is_default(key: &str, v: &Value) -> bool {
    match key {
        "n" => v.as_u64() == Some(1) || v.is_null(),
        "logprobs" => v.as_bool() == Some(false) || v.is_null(),
        "frequency_penalty" | "presence_penalty" => v.as_f64() == Some(0.0) || v.is_null(),
        "logit_bias" => v.as_object().is_some_and(|m| m.is_empty()) || v.is_null(),
        "modalities" => v == &json!(["text"]) || v.is_null(),
        "top_logprobs" | "audio" | "prediction" | "web_search_options" => v.is_null(),
        _ => false,
    }
}

/// The request path of a model: `/model/{modelId}/converse` (or `/converse-stream`), the
/// model id percent-encoded as one path segment (`:` becomes `%3A`, `/` of an inference
/// profile ARN becomes `%2F`).
pub fn model_path(model_id: &str, stream: bool) -> String {
    let op = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    let mut id = String::with_capacity(model_id.len() + 8);
    for b in model_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            id.push(b as char);
        } else {
            id.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/model/{id}/{op}")
}

/// Encodes the IR as a Converse (or ConverseStream: the body is the same) request body.
/// `user` and `metadata` are dropped: they are tracking hints Bedrock has no field for.
pub fn request_from_ir(req: &ChatRequest) -> Result<Value, TranslateError> {
    let mut additional = Extra::new();
    for (key, v) in &req.extra {
        match req.source {
            Format::Bedrock => {}
            Format::Anthropic if DROPPABLE_ANTHROPIC.contains(&key.as_str()) => {}
            Format::Anthropic => {
                additional.insert(key.clone(), v.clone());
            }
            _ if DROPPABLE_OPENAI.contains(&key.as_str()) || is_default(key, v) => {}
            _ => {
                return Err(TranslateError::new(
                    key.clone(),
                    format!("'{key}' cannot be expressed in the Bedrock Converse API"),
                ))
            }
        }
    }
    if let Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema(_)) = req.response_format {
        return Err(TranslateError::new(
            "response_format",
            "JSON response formats cannot be expressed in the Bedrock Converse API",
        ));
    }
    if req.parallel_tool_calls == Some(false) {
        return Err(TranslateError::new(
            "parallel_tool_calls",
            "the Bedrock Converse API cannot disable parallel tool calls",
        ));
    }
    let (system, messages) = messages_from_ir(req)?;
    let inference = br::InferenceConfig {
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: req.stop.clone(),
    };
    let out = br::Request {
        messages,
        system,
        inference_config: (!inference.is_empty()).then_some(inference),
        tool_config: tool_config_from_ir(req)?,
        additional_model_request_fields: (!additional.is_empty()).then_some(additional),
        extra: Extra::new(),
    };
    serde_json::to_value(out).map_err(|e| TranslateError::new("body", e.to_string()))
}

fn has_tool_parts(req: &ChatRequest) -> bool {
    req.messages.iter().any(|m| match &m.content {
        Content::Parts(p) => p
            .iter()
            .any(|p| matches!(p, Part::ToolCall { .. } | Part::ToolResult { .. })),
        Content::Text(_) => false,
    })
}

fn tool_config_from_ir(req: &ChatRequest) -> Result<Option<br::ToolConfig>, TranslateError> {
    let tool_choice = match &req.tool_choice {
        _ if req.tools.is_empty() => return Ok(None),
        None => None,
        Some(ToolChoice::Auto) => Some(br::ToolChoice::Auto(Extra::new())),
        Some(ToolChoice::Required) => Some(br::ToolChoice::Any(Extra::new())),
        Some(ToolChoice::Tool(name)) => Some(br::ToolChoice::Tool { name: name.clone() }),
        // Without tools the model cannot call one; but a conversation that already holds
        // tool calls needs the tool definitions, and Bedrock has no "none" choice.
        Some(ToolChoice::None) if !has_tool_parts(req) => return Ok(None),
        Some(ToolChoice::None) => {
            return Err(TranslateError::new(
                "tool_choice",
                "tool_choice 'none' cannot be expressed in the Bedrock Converse API \
                 for a conversation that contains tool calls",
            ))
        }
    };
    let mut tools = Vec::with_capacity(req.tools.len());
    for (k, t) in req.tools.iter().enumerate() {
        if let Some(kind) = t.extra.get("type").and_then(Value::as_str) {
            if kind != "custom" && kind != "function" {
                return Err(TranslateError::new(
                    format!("tools[{k}].type"),
                    format!(
                        "tools of type '{kind}' cannot be expressed in the Bedrock Converse API"
                    ),
                ));
            }
        }
        tools.push(br::ToolEntry::ToolSpec(br::ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: br::InputSchema {
                json: t
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            },
        }));
        if t.extra.contains_key("cache_control") {
            tools.push(br::ToolEntry::CachePoint(json!({"type": "default"})));
        }
    }
    Ok(Some(br::ToolConfig { tools, tool_choice }))
}

type SystemAndMessages = (Vec<br::Block>, Vec<br::Message>);

/// System and developer messages become the top-level `system` blocks; tool messages become
/// user messages of `toolResult` blocks, and consecutive messages of one role are merged, as
/// Bedrock requires user and assistant turns to alternate.
fn messages_from_ir(req: &ChatRequest) -> Result<SystemAndMessages, TranslateError> {
    let mut system = Vec::new();
    let mut out: Vec<br::Message> = Vec::new();
    // Anthropic's top-level system prompt is the IR's first message: name fields by the
    // client's own message indexes.
    let offset = match req.messages.first() {
        Some(m) if req.source == Format::Anthropic && m.role.is_system() => 1,
        _ => 0,
    };
    for (i, m) in req.messages.iter().enumerate() {
        let field = match i.checked_sub(offset) {
            Some(i) if !m.role.is_system() || offset == 0 => format!("messages[{i}].content"),
            _ => "system".to_string(),
        };
        let blocks = blocks_from_ir(req.source, &field, &m.content)?;
        let role = match m.role {
            Role::System | Role::Developer => {
                for (j, b) in blocks.into_iter().enumerate() {
                    match b {
                        br::Block::Known(
                            br::KnownBlock::Text(_) | br::KnownBlock::CachePoint(_),
                        ) => system.push(b),
                        _ => {
                            return Err(TranslateError::new(
                                format!("{field}[{j}]"),
                                "system prompts sent to Bedrock may only contain text",
                            ))
                        }
                    }
                }
                continue;
            }
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
        };
        match out.last_mut() {
            Some(prev) if prev.role == role => prev.content.extend(blocks),
            _ => out.push(br::Message {
                role: role.into(),
                content: blocks,
            }),
        }
    }
    Ok((system, out))
}

fn known(b: br::KnownBlock) -> br::Block {
    br::Block::Known(b)
}

fn blocks_from_ir(
    source: Format,
    field: &str,
    c: &Content,
) -> Result<Vec<br::Block>, TranslateError> {
    let parts = match c {
        Content::Text(t) if t.is_empty() => return Ok(Vec::new()),
        Content::Text(t) => return Ok(vec![known(br::KnownBlock::Text(t.clone()))]),
        Content::Parts(p) => p,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let field = format!("{field}[{j}]");
        match p {
            // Bedrock rejects blank text blocks; an empty part carries nothing.
            Part::Text { text, .. } if text.is_empty() => {}
            Part::Text { text, extra } => {
                blocks.push(known(br::KnownBlock::Text(text.clone())));
                if extra.contains_key("cache_control") {
                    blocks.push(known(br::KnownBlock::CachePoint(
                        json!({"type": "default"}),
                    )));
                }
            }
            Part::Image { source: s, .. } => blocks.push(known(br::KnownBlock::Image(
                image_from_ir(source, &field, s)?,
            ))),
            Part::ToolCall {
                id,
                name,
                arguments,
                ..
            } => {
                let input = if arguments.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(arguments).map_err(|e| {
                        TranslateError::new(
                            format!("{field}.arguments"),
                            format!("tool call arguments are not valid JSON: {e}"),
                        )
                    })?
                };
                blocks.push(known(br::KnownBlock::ToolUse(br::ToolUse {
                    tool_use_id: id.clone(),
                    name: name.clone(),
                    input,
                })));
            }
            Part::ToolResult {
                tool_call_id,
                content,
                is_error,
                ..
            } => {
                let mut result = Vec::new();
                for (k, b) in blocks_from_ir(source, &format!("{field}.content"), content)?
                    .into_iter()
                    .enumerate()
                {
                    match b {
                        br::Block::Known(br::KnownBlock::Text(t)) => {
                            result.push(json!({"text": t}))
                        }
                        br::Block::Known(br::KnownBlock::Image(img)) => {
                            result.push(json!({"image": img}))
                        }
                        br::Block::Known(br::KnownBlock::CachePoint(_)) => {}
                        _ => {
                            return Err(TranslateError::new(
                                format!("{field}.content[{k}]"),
                                "tool results sent to Bedrock may only contain text and images",
                            ))
                        }
                    }
                }
                blocks.push(known(br::KnownBlock::ToolResult(br::ToolResult {
                    tool_use_id: tool_call_id.clone(),
                    content: result,
                    status: is_error.map(|e| if e { "error" } else { "success" }.to_string()),
                })));
            }
            // Reasoning without a signature (from OpenAI-family models) would be rejected
            // and is not needed to continue the conversation.
            Part::Thinking {
                signature: None, ..
            } if source != Format::Bedrock => {}
            Part::Thinking {
                text, signature, ..
            } => blocks.push(known(br::KnownBlock::ReasoningContent(
                br::Reasoning::ReasoningText {
                    text: text.clone(),
                    signature: signature.clone(),
                },
            ))),
            Part::RedactedThinking { data } => blocks.push(known(
                br::KnownBlock::ReasoningContent(br::Reasoning::RedactedContent(data.clone())),
            )),
            Part::Other { value } if source == Format::Bedrock => {
                blocks.push(br::Block::Other(value.clone()))
            }
            Part::Other { value } => {
                let kind = value
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                return Err(TranslateError::new(
                    format!("{field}.type"),
                    format!(
                        "content of type '{kind}' cannot be expressed in the Bedrock Converse API"
                    ),
                ));
            }
        }
    }
    Ok(blocks)
}

/// Bedrock takes images as inline bytes of a known format only.
fn image_from_ir(
    source: Format,
    field: &str,
    s: &ImageSource,
) -> Result<br::Image, TranslateError> {
    match s {
        ImageSource::Base64 { media_type, data } => {
            let format = match media_type.as_str() {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" => "jpeg",
                "image/gif" => "gif",
                "image/webp" => "webp",
                other => {
                    return Err(TranslateError::new(
                        field,
                        format!("Bedrock accepts png, jpeg, gif and webp images, not '{other}'"),
                    ))
                }
            };
            Ok(br::Image {
                format: format.into(),
                source: json!({"bytes": data}),
            })
        }
        ImageSource::Url { .. } => {
            let url_field = match source {
                Format::OpenAiChat => format!("{field}.image_url.url"),
                _ => format!("{field}.source.url"),
            };
            Err(TranslateError::new(
                url_field,
                "image URLs cannot be expressed in the Bedrock Converse API, which needs \
                 the image bytes: send a base64 data URL instead",
            ))
        }
    }
}
