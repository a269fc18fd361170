//! Anthropic Messages request <-> IR.

use super::types as an;
use crate::ir::{
    same_format, ChatRequest, Content, Extra, Format, ImageSource, Message, Part, ResponseFormat,
    Role, Tool, ToolChoice, TranslateError,
};
use serde_json::{json, Value};

/// `max_tokens` sent to Anthropic when the client (OpenAI may omit it) gave none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Parses an Anthropic Messages request body into the IR.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let req: an::Request =
        serde_json::from_slice(body).map_err(|e| TranslateError::malformed(&e))?;
    request_to_ir(req)
}

/// Converts a typed Anthropic request into the IR.
pub fn request_to_ir(req: an::Request) -> Result<ChatRequest, TranslateError> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system {
        messages.push(Message {
            role: Role::System,
            content: content_to_ir(system),
            extra: Extra::new(),
        });
    }
    for (i, m) in req.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(TranslateError::new(
                    format!("messages[{i}].role"),
                    format!("unsupported role '{other}'"),
                ))
            }
        };
        messages.push(Message {
            role,
            content: content_to_ir(m.content),
            extra: m.extra,
        });
    }
    let (tool_choice, parallel_tool_calls) = match req.tool_choice {
        None => (None, None),
        Some(an::ToolChoice::None) => (Some(ToolChoice::None), None),
        Some(an::ToolChoice::Auto {
            disable_parallel_tool_use: d,
        }) => (Some(ToolChoice::Auto), d.map(|d| !d)),
        Some(an::ToolChoice::Any {
            disable_parallel_tool_use: d,
        }) => (Some(ToolChoice::Required), d.map(|d| !d)),
        Some(an::ToolChoice::Tool {
            name,
            disable_parallel_tool_use: d,
        }) => (Some(ToolChoice::Tool(name)), d.map(|d| !d)),
    };
    let mut metadata = req.metadata;
    let user = metadata
        .as_mut()
        .and_then(|m| m.remove("user_id"))
        .and_then(|v| v.as_str().map(str::to_owned));
    let metadata = metadata.filter(|m| !m.is_empty());
    Ok(ChatRequest {
        source: Format::Anthropic,
        model: req.model,
        messages,
        tools: req
            .tools
            .unwrap_or_default()
            .into_iter()
            .map(|t| Tool {
                name: t.name,
                description: t.description,
                parameters: t.input_schema,
                extra: t.extra,
            })
            .collect(),
        tool_choice,
        parallel_tool_calls,
        max_tokens: Some(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop_sequences,
        response_format: None,
        stream: req.stream,
        user,
        metadata,
        extra: req.extra,
    })
}

/// Anthropic content -> IR content.
pub(crate) fn content_to_ir(c: an::Content) -> Content {
    match c {
        an::Content::Text(t) => Content::Text(t),
        an::Content::Blocks(b) => Content::Parts(b.into_iter().map(block_to_ir).collect()),
    }
}

/// One Anthropic block -> one IR part.
pub(crate) fn block_to_ir(b: an::Block) -> Part {
    let known = match b {
        an::Block::Known(k) => k,
        an::Block::Other(value) => return Part::Other { value },
    };
    match known {
        an::KnownBlock::Text { text, extra } => Part::Text { text, extra },
        an::KnownBlock::Image { source, extra } => Part::Image {
            source: match source {
                an::ImageSource::Base64 { media_type, data } => {
                    ImageSource::Base64 { media_type, data }
                }
                an::ImageSource::Url { url } => ImageSource::Url { url },
            },
            detail: None,
            extra,
        },
        an::KnownBlock::ToolUse {
            id,
            name,
            input,
            extra,
        } => Part::ToolCall {
            id,
            name,
            arguments: input.to_string(),
            extra,
        },
        an::KnownBlock::ToolResult {
            tool_use_id,
            content,
            is_error,
            extra,
        } => Part::ToolResult {
            tool_call_id: tool_use_id,
            content: content
                .map(content_to_ir)
                .unwrap_or(Content::Parts(Vec::new())),
            is_error,
            extra,
        },
        an::KnownBlock::Thinking {
            thinking,
            signature,
            extra,
        } => Part::Thinking {
            text: thinking,
            signature,
            extra,
        },
        an::KnownBlock::RedactedThinking { data } => Part::RedactedThinking { data },
    }
}

/// OpenAI request fields the IR does not model that may be dropped going to Anthropic:
/// transport options the gateway handles itself, or hints with no effect on the answer.
const DROPPABLE_FOREIGN: &[&str] = &[
    "stream_options",
    "store",
    "service_tier",
    "seed",
    "max_completion_tokens",
    "prompt_cache_key",
    "safety_identifier",
    "reasoning_effort",
];

/// OpenAI fields accepted only at their default value (which Anthropic already behaves as).
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

/// Encodes the IR as an Anthropic Messages request body.
pub fn request_from_ir(req: &ChatRequest) -> Result<Value, TranslateError> {
    let same = req.source == Format::Anthropic;
    let mut extra = Extra::new();
    if same {
        extra = req.extra.clone();
    } else {
        for (key, v) in &req.extra {
            if !DROPPABLE_FOREIGN.contains(&key.as_str()) && !is_default(key, v) {
                return Err(TranslateError::new(
                    key.clone(),
                    format!("'{key}' cannot be expressed in the Anthropic Messages API"),
                ));
            }
        }
        if let Some(t) = req.temperature.filter(|t| *t > 1.0) {
            return Err(TranslateError::new(
                "temperature",
                format!("Anthropic accepts a temperature between 0 and 1, got {t}"),
            ));
        }
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(_) => {
            return Err(TranslateError::new(
                "response_format",
                "JSON response formats cannot be expressed in the Anthropic Messages API",
            ))
        }
    }
    let (system, messages) = messages_from_ir(req)?;
    let disable = req.parallel_tool_calls.map(|p| !p);
    let tool_choice = match (&req.tool_choice, disable) {
        (None, None) => None,
        (None, _) if req.tools.is_empty() => None,
        (None | Some(ToolChoice::Auto), d) => Some(an::ToolChoice::Auto {
            disable_parallel_tool_use: d,
        }),
        (Some(ToolChoice::None), _) => Some(an::ToolChoice::None),
        (Some(ToolChoice::Required), d) => Some(an::ToolChoice::Any {
            disable_parallel_tool_use: d,
        }),
        (Some(ToolChoice::Tool(name)), d) => Some(an::ToolChoice::Tool {
            name: name.clone(),
            disable_parallel_tool_use: d,
        }),
    };
    let mut metadata = if same {
        req.metadata.clone().unwrap_or_default()
    } else {
        Extra::new()
    };
    if let Some(u) = &req.user {
        metadata.insert("user_id".into(), u.clone().into());
    }
    let tools: Vec<an::Tool> = req
        .tools
        .iter()
        .map(|t| an::Tool {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: Some(
                t.parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            ),
            extra: same_format(req.source, Format::Anthropic, &t.extra),
        })
        .collect();
    let out = an::Request {
        model: req.model.clone(),
        messages,
        max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system,
        metadata: (!metadata.is_empty()).then_some(metadata),
        stop_sequences: req.stop.clone(),
        stream: req.stream,
        temperature: req.temperature,
        top_p: req.top_p,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        extra,
    };
    serde_json::to_value(out).map_err(|e| TranslateError::new("body", e.to_string()))
}

type SystemAndMessages = (Option<an::Content>, Vec<an::Message>);

/// System messages become the top-level `system` (later ones are appended to it: Anthropic
/// has one system prompt); tool messages become user messages of `tool_result` blocks, and
/// consecutive messages of one role are merged, as Anthropic requires alternation.
fn messages_from_ir(req: &ChatRequest) -> Result<SystemAndMessages, TranslateError> {
    let source = req.source;
    let systems: Vec<&Message> = req.messages.iter().filter(|m| m.role.is_system()).collect();
    let system = match systems.as_slice() {
        [] => None,
        [one] => Some(content_from_ir(source, "system", &one.content)?),
        many => {
            let mut blocks = Vec::new();
            for m in many {
                for (j, p) in m.content.parts().into_iter().enumerate() {
                    blocks.push(block_from_ir(source, &format!("system[{j}]"), p)?);
                }
            }
            Some(an::Content::Blocks(blocks))
        }
    };
    let mut out: Vec<an::Message> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role {
            Role::System | Role::Developer => continue,
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
        };
        let content = content_from_ir(source, &format!("messages[{i}].content"), &m.content)?;
        let extra = same_format(source, Format::Anthropic, &m.extra);
        match out.last_mut() {
            Some(prev) if !req.source.eq(&Format::Anthropic) && prev.role == role => {
                let mut blocks = blocks_of(std::mem::replace(
                    &mut prev.content,
                    an::Content::Blocks(Vec::new()),
                ));
                blocks.extend(blocks_of(content));
                prev.content = an::Content::Blocks(blocks);
            }
            _ => out.push(an::Message {
                role: role.into(),
                content,
                extra,
            }),
        }
    }
    Ok((system, out))
}

fn blocks_of(c: an::Content) -> Vec<an::Block> {
    match c {
        an::Content::Text(t) => vec![text_block(t, Extra::new())],
        an::Content::Blocks(b) => b,
    }
}

fn text_block(text: String, extra: Extra) -> an::Block {
    an::Block::Known(an::KnownBlock::Text { text, extra })
}

fn content_from_ir(
    source: Format,
    field: &str,
    c: &Content,
) -> Result<an::Content, TranslateError> {
    match c {
        Content::Text(t) => Ok(an::Content::Text(t.clone())),
        Content::Parts(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                // Reasoning without a signature (from OpenAI-family models) is rejected by
                // Anthropic and not needed to continue the conversation.
                if source != Format::Anthropic
                    && matches!(
                        p,
                        Part::Thinking {
                            signature: None,
                            ..
                        }
                    )
                {
                    continue;
                }
                blocks.push(block_from_ir(source, &format!("{field}[{j}]"), p.clone())?);
            }
            Ok(an::Content::Blocks(blocks))
        }
    }
}

fn block_from_ir(source: Format, field: &str, p: Part) -> Result<an::Block, TranslateError> {
    let keep = |e: &Extra| same_format(source, Format::Anthropic, e);
    let known = match p {
        Part::Text { text, extra } => an::KnownBlock::Text {
            text,
            extra: keep(&extra),
        },
        Part::Image {
            source: s, extra, ..
        } => an::KnownBlock::Image {
            source: match s {
                ImageSource::Url { url } => an::ImageSource::Url { url },
                ImageSource::Base64 { media_type, data } => {
                    an::ImageSource::Base64 { media_type, data }
                }
            },
            extra: keep(&extra),
        },
        Part::ToolCall {
            id,
            name,
            arguments,
            extra,
        } => {
            let input = if arguments.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&arguments).map_err(|e| {
                    TranslateError::new(
                        format!("{field}.arguments"),
                        format!("tool call arguments are not valid JSON: {e}"),
                    )
                })?
            };
            an::KnownBlock::ToolUse {
                id,
                name,
                input,
                extra: keep(&extra),
            }
        }
        Part::ToolResult {
            tool_call_id,
            content,
            is_error,
            extra,
        } => an::KnownBlock::ToolResult {
            tool_use_id: tool_call_id,
            content: match &content {
                Content::Parts(p) if p.is_empty() => None,
                c => Some(content_from_ir(source, &format!("{field}.content"), c)?),
            },
            is_error,
            extra: keep(&extra),
        },
        Part::Thinking {
            text,
            signature,
            extra,
        } => an::KnownBlock::Thinking {
            thinking: text,
            signature,
            extra: keep(&extra),
        },
        Part::RedactedThinking { data } => an::KnownBlock::RedactedThinking { data },
        Part::Other { value } if source == Format::Anthropic => return Ok(an::Block::Other(value)),
        Part::Other { value } => {
            let kind = value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            return Err(TranslateError::new(
                format!("{field}.type"),
                format!(
                    "content of type '{kind}' cannot be expressed in the Anthropic Messages API"
                ),
            ));
        }
    };
    Ok(an::Block::Known(known))
}
