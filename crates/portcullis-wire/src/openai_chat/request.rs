//! OpenAI chat request <-> IR.

use super::types as oa;
use crate::ir::{
    same_format, ChatRequest, Content, Extra, Format, ImageSource, Message, Part, ResponseFormat,
    Role, Tool, ToolChoice, TranslateError,
};
use serde_json::{json, Value};

/// Marker kept in `extra` when the client used `max_completion_tokens`, so the same key
/// is written back.
const MAX_COMPLETION_TOKENS: &str = "max_completion_tokens";

/// Parses an OpenAI chat request body into the IR.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let req: oa::Request =
        serde_json::from_slice(body).map_err(|e| TranslateError::malformed(&e))?;
    request_to_ir(req)
}

/// Converts a typed OpenAI request into the IR.
pub fn request_to_ir(req: oa::Request) -> Result<ChatRequest, TranslateError> {
    let mut extra = req.extra;
    let max_tokens = match req.max_completion_tokens {
        Some(n) => {
            extra.insert(MAX_COMPLETION_TOKENS.into(), n.into());
            Some(n)
        }
        None => req.max_tokens,
    };
    let messages = req
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| message_to_ir(i, m))
        .collect::<Result<_, _>>()?;
    let tools = req
        .tools
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, t)| match (t.kind.as_str(), t.function) {
            ("function", Some(f)) => Ok(Tool {
                name: f.name,
                description: f.description,
                parameters: f.parameters,
                extra: f.extra,
            }),
            _ => Err(TranslateError::new(
                format!("tools[{i}].type"),
                "only function tools are supported",
            )),
        })
        .collect::<Result<_, _>>()?;
    let tool_choice = req.tool_choice.map(tool_choice_to_ir).transpose()?;
    let response_format = req.response_format.map(response_format_to_ir).transpose()?;
    Ok(ChatRequest {
        source: Format::OpenAiChat,
        model: req.model,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: req.parallel_tool_calls,
        max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        // A single stop string becomes a one-element list (equivalent for OpenAI).
        stop: req.stop.map(|s| match s {
            oa::Stop::One(s) => vec![s],
            oa::Stop::Many(v) => v,
        }),
        response_format,
        stream: req.stream,
        user: req.user,
        metadata: req.metadata,
        extra,
    })
}

fn message_to_ir(i: usize, m: oa::Message) -> Result<Message, TranslateError> {
    let role = match m.role.as_str() {
        "system" => Role::System,
        "developer" => Role::Developer,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => {
            return Err(TranslateError::new(
                format!("messages[{i}].role"),
                format!("unsupported role '{other}'"),
            ))
        }
    };
    let content = m.content.map(content_to_ir);
    let content = match role {
        Role::Tool => Content::Parts(vec![Part::ToolResult {
            tool_call_id: m.tool_call_id.unwrap_or_default(),
            content: content.unwrap_or(Content::Text(String::new())),
            is_error: None,
            extra: Extra::new(),
        }]),
        Role::Assistant if m.tool_calls.is_some() => {
            let mut parts = content.map(|c| c.parts()).unwrap_or_default();
            for call in m.tool_calls.unwrap_or_default() {
                parts.push(Part::ToolCall {
                    id: call.id,
                    name: call.function.name,
                    arguments: call.function.arguments,
                    extra: call.extra,
                });
            }
            Content::Parts(parts)
        }
        _ => content.unwrap_or(Content::Parts(Vec::new())),
    };
    Ok(Message {
        role,
        content,
        extra: m.extra,
    })
}

fn content_to_ir(c: oa::MessageContent) -> Content {
    match c {
        oa::MessageContent::Text(t) => Content::Text(t),
        oa::MessageContent::Parts(parts) => {
            Content::Parts(parts.into_iter().map(part_to_ir).collect())
        }
    }
}

fn part_to_ir(p: oa::ContentPart) -> Part {
    match p {
        oa::ContentPart::Known(oa::KnownPart::Text { text, extra }) => Part::Text { text, extra },
        oa::ContentPart::Known(oa::KnownPart::ImageUrl { image_url, extra }) => Part::Image {
            source: parse_data_url(&image_url.url)
                .unwrap_or(ImageSource::Url { url: image_url.url }),
            detail: image_url.detail,
            extra,
        },
        oa::ContentPart::Other(value) => Part::Other { value },
    }
}

/// `data:<media type>;base64,<data>` -> base64 source.
fn parse_data_url(url: &str) -> Option<ImageSource> {
    let rest = url.strip_prefix("data:")?;
    let (media_type, data) = rest.split_once(";base64,")?;
    Some(ImageSource::Base64 {
        media_type: media_type.to_string(),
        data: data.to_string(),
    })
}

fn tool_choice_to_ir(v: Value) -> Result<ToolChoice, TranslateError> {
    match &v {
        Value::String(s) if s == "auto" => Ok(ToolChoice::Auto),
        Value::String(s) if s == "none" => Ok(ToolChoice::None),
        Value::String(s) if s == "required" => Ok(ToolChoice::Required),
        _ => v
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Tool(n.to_string()))
            .ok_or_else(|| TranslateError::new("tool_choice", "unsupported tool_choice")),
    }
}

fn response_format_to_ir(v: Value) -> Result<ResponseFormat, TranslateError> {
    match v.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => Ok(ResponseFormat::JsonSchema(
            v.get("json_schema").cloned().unwrap_or(Value::Null),
        )),
        _ => Err(TranslateError::new(
            "response_format.type",
            "expected text, json_object or json_schema",
        )),
    }
}

/// Anthropic request fields the IR does not model that may be dropped going to OpenAI:
/// they are hints the OpenAI side has no equivalent for and that do not change the answer's
/// meaning. Every other unknown field is a [`TranslateError`].
const DROPPABLE_FOREIGN: &[&str] = &["thinking", "service_tier"];

/// Encodes the IR as an OpenAI chat request body.
pub fn request_from_ir(req: &ChatRequest) -> Result<Value, TranslateError> {
    let same = req.source == Format::OpenAiChat;
    let mut out = oa::Request {
        model: req.model.clone(),
        messages: Vec::with_capacity(req.messages.len()),
        tools: None,
        tool_choice: req.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        }),
        parallel_tool_calls: req.parallel_tool_calls,
        max_tokens: None,
        max_completion_tokens: None,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop.clone().map(oa::Stop::Many),
        response_format: req.response_format.as_ref().map(|f| match f {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema(s) => json!({"type": "json_schema", "json_schema": s}),
        }),
        stream: req.stream,
        user: req.user.clone(),
        metadata: if same { req.metadata.clone() } else { None },
        extra: Extra::new(),
    };
    if same {
        out.extra = req.extra.clone();
        if out.extra.contains_key(MAX_COMPLETION_TOKENS) {
            out.extra.remove(MAX_COMPLETION_TOKENS);
            out.max_completion_tokens = req.max_tokens;
        } else {
            out.max_tokens = req.max_tokens;
        }
    } else {
        out.max_tokens = req.max_tokens;
        for key in req.extra.keys() {
            if !DROPPABLE_FOREIGN.contains(&key.as_str()) {
                return Err(TranslateError::new(
                    key.clone(),
                    "not supported by the OpenAI chat format",
                ));
            }
        }
    }
    if !req.tools.is_empty() {
        out.tools = Some(
            req.tools
                .iter()
                .map(|t| oa::ToolDef {
                    kind: "function".into(),
                    function: Some(oa::FunctionDef {
                        name: t.name.clone(),
                        description: t.description.clone(),
                        parameters: t.parameters.clone(),
                        extra: same_format(req.source, Format::OpenAiChat, &t.extra),
                    }),
                    extra: Extra::new(),
                })
                .collect(),
        );
    }
    for (i, m) in req.messages.iter().enumerate() {
        messages_from_ir(req.source, i, m, &mut out.messages)?;
    }
    serde_json::to_value(out).map_err(|e| TranslateError::new("body", e.to_string()))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// One IR message becomes one OpenAI message, except tool results carried inside a user
/// message (Anthropic style), which become `tool` messages ahead of the rest.
fn messages_from_ir(
    source: Format,
    i: usize,
    m: &Message,
    out: &mut Vec<oa::Message>,
) -> Result<(), TranslateError> {
    let extra = same_format(source, Format::OpenAiChat, &m.extra);
    let msg = |role: Role, content: Option<oa::MessageContent>| oa::Message {
        role: role_name(role).into(),
        content,
        tool_calls: None,
        tool_call_id: None,
        extra: extra.clone(),
    };
    let parts = match &m.content {
        Content::Text(t) if m.role != Role::Tool => {
            out.push(msg(m.role, Some(oa::MessageContent::Text(t.clone()))));
            return Ok(());
        }
        other => other.parts(),
    };
    let field = |j: usize| format!("messages[{i}].content[{j}]");
    let mut rest = Vec::new();
    let mut calls = Vec::new();
    for (j, p) in parts.into_iter().enumerate() {
        match p {
            Part::ToolResult {
                tool_call_id,
                content,
                ..
            } => {
                let content = match content {
                    Content::Text(t) => oa::MessageContent::Text(t),
                    Content::Parts(ps) => oa::MessageContent::Parts(
                        ps.into_iter()
                            .map(|p| part_from_ir(source, &field(j), p))
                            .collect::<Result<_, _>>()?,
                    ),
                };
                let mut tm = msg(Role::Tool, Some(content));
                tm.tool_call_id = Some(tool_call_id);
                if m.role != Role::Tool {
                    tm.extra = Extra::new();
                }
                out.push(tm);
            }
            Part::ToolCall {
                id,
                name,
                arguments,
                extra,
            } => calls.push(oa::ToolCall {
                id,
                kind: "function".into(),
                function: oa::FunctionCall { name, arguments },
                extra: same_format(source, Format::OpenAiChat, &extra),
            }),
            // Earlier turns' reasoning cannot be sent back to OpenAI-family models and
            // does not change the conversation's meaning.
            Part::Thinking { .. } | Part::RedactedThinking { .. } if m.role == Role::Assistant => {}
            p => rest.push(part_from_ir(source, &field(j), p)?),
        }
    }
    if m.role == Role::Tool {
        return Ok(());
    }
    if m.role == Role::Assistant && !calls.is_empty() {
        let content = match rest.as_slice() {
            [] => None,
            [oa::ContentPart::Known(oa::KnownPart::Text { text, extra })] if extra.is_empty() => {
                Some(oa::MessageContent::Text(text.clone()))
            }
            _ => Some(oa::MessageContent::Parts(rest)),
        };
        let mut am = msg(Role::Assistant, content);
        am.tool_calls = Some(calls);
        out.push(am);
    } else if !rest.is_empty() || matches!(&m.content, Content::Parts(p) if p.is_empty()) {
        out.push(msg(m.role, Some(oa::MessageContent::Parts(rest))));
    }
    Ok(())
}

fn part_from_ir(source: Format, field: &str, p: Part) -> Result<oa::ContentPart, TranslateError> {
    let keep = |e: &Extra| same_format(source, Format::OpenAiChat, e);
    Ok(match p {
        Part::Text { text, extra } => oa::ContentPart::Known(oa::KnownPart::Text {
            text,
            extra: keep(&extra),
        }),
        Part::Image {
            source: img,
            detail,
            extra,
        } => oa::ContentPart::Known(oa::KnownPart::ImageUrl {
            image_url: oa::ImageUrl {
                url: match img {
                    ImageSource::Url { url } => url,
                    ImageSource::Base64 { media_type, data } => {
                        format!("data:{media_type};base64,{data}")
                    }
                },
                detail,
            },
            extra: keep(&extra),
        }),
        Part::Other { value } if source == Format::OpenAiChat => oa::ContentPart::Other(value),
        other => {
            let kind = serde_json::to_value(&other)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            let kind = match &other {
                Part::Other { value } => value
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string(),
                _ => kind,
            };
            return Err(TranslateError::new(
                format!("{field}.type"),
                format!("content of type '{kind}' cannot be expressed in this position of an OpenAI chat message"),
            ));
        }
    })
}
