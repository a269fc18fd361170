//! Gemini `generateContent` request -> IR (for the mock upstream and round-trip tests;
//! a future Gemini inbound API).

use super::parts::{part_to_ir, response_to_content};
use super::request::{GENERATION_CONFIG, OPENAPI_PARAMETERS, TOOLS, TOOL_CONFIG};
use super::types as gm;
use crate::ir::{
    ChatRequest, Content, Format, Message, Part, ResponseFormat, Role, Tool, ToolChoice,
    TranslateError,
};
use serde_json::Value;

/// Parses a Gemini request body into the IR. The model and streaming come from the URL
/// (`models/{model}:generateContent` or `:streamGenerateContent`).
pub fn parse_request(
    body: &[u8],
    model: &str,
    stream: bool,
) -> Result<ChatRequest, TranslateError> {
    let req: gm::Request =
        serde_json::from_slice(body).map_err(|e| TranslateError::malformed(&e))?;
    request_to_ir(req, model, stream)
}

/// Converts a typed Gemini request into the IR. Function calls without an id get
/// `call_<n>` (numbered through the conversation) and each function response is paired
/// with the oldest unanswered call of the same name.
pub fn request_to_ir(
    req: gm::Request,
    model: &str,
    stream: bool,
) -> Result<ChatRequest, TranslateError> {
    let mut extra = req.extra;
    let mut messages = Vec::with_capacity(req.contents.len() + 1);
    if let Some(system) = req.system_instruction {
        let mut next = 0;
        let parts: Vec<Part> = system
            .parts
            .into_iter()
            .map(|p| part_to_ir(p, &mut next))
            .collect();
        messages.push(Message {
            role: Role::System,
            content: simplify(parts),
            extra: system.extra,
        });
    }
    let mut next_call = 0;
    let mut pending: Vec<(String, String)> = Vec::new();
    for (i, c) in req.contents.into_iter().enumerate() {
        let role = match c.role.as_deref() {
            None | Some("user") | Some("function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(TranslateError::new(
                    format!("contents[{i}].role"),
                    format!("unsupported role '{other}'"),
                ))
            }
        };
        let mut parts = Vec::with_capacity(c.parts.len());
        for (j, mut p) in c.parts.into_iter().enumerate() {
            if let Some(fr) = p.function_response.take() {
                let id =
                    match fr.id {
                        Some(id) => {
                            pending.retain(|(pid, _)| *pid != id);
                            id
                        }
                        None => {
                            let at = pending.iter().position(|(_, n)| *n == fr.name).ok_or_else(
                                || {
                                    TranslateError::new(
                                        format!("contents[{i}].parts[{j}].functionResponse.name"),
                                        format!(
                                            "no earlier functionCall named '{}' is unanswered",
                                            fr.name
                                        ),
                                    )
                                },
                            )?;
                            pending.remove(at).0
                        }
                    };
                let (content, is_error) = response_to_content(fr.response);
                parts.push(Part::ToolResult {
                    tool_call_id: id,
                    content,
                    is_error,
                    extra: fr.extra,
                });
                continue;
            }
            let part = part_to_ir(p, &mut next_call);
            if let Part::ToolCall { id, name, .. } = &part {
                pending.push((id.clone(), name.clone()));
            }
            parts.push(part);
        }
        messages.push(Message {
            role,
            content: simplify(parts),
            extra: c.extra,
        });
    }
    let mut tools = Vec::new();
    let mut other_tools = Vec::new();
    for t in req.tools.unwrap_or_default() {
        match t.function_declarations {
            Some(decls) if t.extra.is_empty() => {
                for d in decls {
                    let mut extra = d.extra;
                    let parameters = match (d.parameters, d.parameters_json_schema) {
                        (Some(p), None) => {
                            extra.insert(OPENAPI_PARAMETERS.into(), Value::Bool(true));
                            Some(p)
                        }
                        (None, p) => p,
                        (Some(_), Some(_)) => {
                            return Err(TranslateError::new(
                                "tools.functionDeclarations.parameters",
                                "parameters and parametersJsonSchema are mutually exclusive",
                            ))
                        }
                    };
                    tools.push(Tool {
                        name: d.name,
                        description: d.description,
                        parameters,
                        extra,
                    });
                }
            }
            _ => other_tools.push(t),
        }
    }
    if !other_tools.is_empty() {
        let v = serde_json::to_value(other_tools)
            .map_err(|e| TranslateError::new(TOOLS, e.to_string()))?;
        extra.insert(TOOLS.into(), v);
    }
    let mut tool_choice = None;
    if let Some(mut tc) = req.tool_config {
        if let Some(mut fc) = tc.function_calling_config.take() {
            let names = fc.allowed_function_names.take();
            tool_choice = match (fc.mode.take().as_deref(), names.as_deref()) {
                (Some("ANY"), Some([one])) => Some(ToolChoice::Tool(one.clone())),
                (Some("ANY"), None) => Some(ToolChoice::Required),
                (Some("AUTO"), None) => Some(ToolChoice::Auto),
                (Some("NONE"), None) => Some(ToolChoice::None),
                (None, None) => None,
                _ => {
                    return Err(TranslateError::new(
                        "toolConfig.functionCallingConfig",
                        "only modes AUTO, NONE and ANY (with at most one allowed function) are supported",
                    ))
                }
            };
            if !fc.extra.is_empty() {
                tc.function_calling_config = Some(gm::FunctionCallingConfig {
                    extra: fc.extra,
                    ..Default::default()
                });
            }
        }
        if tc.function_calling_config.is_some() || !tc.extra.is_empty() {
            let v = serde_json::to_value(tc)
                .map_err(|e| TranslateError::new(TOOL_CONFIG, e.to_string()))?;
            extra.insert(TOOL_CONFIG.into(), v);
        }
    }
    let mut gen = req.generation_config.unwrap_or_default();
    let response_format = match gen.response_mime_type.take().as_deref() {
        None => None,
        Some("text/plain") => Some(ResponseFormat::Text),
        Some("application/json") => Some(match gen.response_json_schema.take() {
            Some(schema) => ResponseFormat::JsonSchema(
                serde_json::json!({"name": "response", "schema": schema}),
            ),
            None => ResponseFormat::JsonObject,
        }),
        Some(other) => {
            gen.response_mime_type = Some(other.to_string());
            None
        }
    };
    let mut out = ChatRequest {
        source: Format::Gemini,
        model: model.to_string(),
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: None,
        max_tokens: gen.max_output_tokens.take(),
        temperature: gen.temperature.take(),
        top_p: gen.top_p.take(),
        stop: gen.stop_sequences.take(),
        response_format,
        stream: Some(stream),
        user: None,
        metadata: None,
        extra,
    };
    let rest = serde_json::to_value(&gen)
        .map_err(|e| TranslateError::new(GENERATION_CONFIG, e.to_string()))?;
    if rest.as_object().is_some_and(|m| !m.is_empty()) {
        out.extra.insert(GENERATION_CONFIG.into(), rest);
    }
    Ok(out)
}

/// One plain text part becomes a string (friendlier to every other format).
fn simplify(parts: Vec<Part>) -> Content {
    match parts.as_slice() {
        [Part::Text { text, extra }] if extra.is_empty() => Content::Text(text.clone()),
        _ => Content::Parts(parts),
    }
}
