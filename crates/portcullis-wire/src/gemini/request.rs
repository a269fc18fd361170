//! IR -> Gemini `generateContent` request (the direction the gateway uses upstream).

use super::parts::{part_from_ir, response_object};
use super::types as gm;
use crate::ir::{
    same_format, ChatRequest, Extra, Format, Part, ResponseFormat, Role, ToolChoice, TranslateError,
};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Keys of [`ChatRequest::extra`] under which a Gemini-sourced request keeps what the IR
/// does not model of `generationConfig`, `toolConfig` and non-function `tools` entries.
pub(crate) const GENERATION_CONFIG: &str = "generationConfig";
pub(crate) const TOOL_CONFIG: &str = "toolConfig";
pub(crate) const TOOLS: &str = "tools";
/// Marker in a Gemini-sourced tool's `extra`: its schema came as OpenAPI `parameters`.
pub(crate) const OPENAPI_PARAMETERS: &str = "parameters";

/// Foreign request fields the IR does not model that may be dropped going to Gemini:
/// transport options the gateway handles itself, or hints with no effect on the answer.
const DROPPABLE_FOREIGN: &[&str] = &[
    "stream_options",
    "store",
    "service_tier",
    "max_completion_tokens",
    "prompt_cache_key",
    "safety_identifier",
];

/// OpenAI fields accepted only at their default value (which Gemini already behaves as).
fn is_default(key: &str, v: &Value) -> bool {
    match key {
        "n" => v.as_u64() == Some(1) || v.is_null(),
        "logprobs" => v.as_bool() == Some(false) || v.is_null(),
        "logit_bias" => v.as_object().is_some_and(|m| m.is_empty()) || v.is_null(),
        "modalities" => v == &json!(["text"]) || v.is_null(),
        "top_logprobs" | "audio" | "prediction" | "web_search_options" => v.is_null(),
        _ => false,
    }
}

/// Path of the Gemini endpoint for `model` (appended to the provider's base URL).
pub fn endpoint_path(model: &str, stream: bool) -> String {
    if stream {
        format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/v1beta/models/{model}:generateContent")
    }
}

/// Encodes the IR as a Gemini `generateContent` body. The model and streaming are not part
/// of the body: see [`endpoint_path`].
pub fn request_from_ir(req: &ChatRequest) -> Result<Value, TranslateError> {
    let same = req.source == Format::Gemini;
    let mut extra = same_format(req.source, Format::Gemini, &req.extra);
    let mut gen: gm::GenerationConfig = match extra.remove(GENERATION_CONFIG) {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| TranslateError::new(GENERATION_CONFIG, e.to_string()))?,
        None => gm::GenerationConfig::default(),
    };
    let mut tool_config: gm::ToolConfig = match extra.remove(TOOL_CONFIG) {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| TranslateError::new(TOOL_CONFIG, e.to_string()))?,
        None => gm::ToolConfig::default(),
    };
    let other_tools: Vec<gm::Tool> = match extra.remove(TOOLS) {
        Some(v) => {
            serde_json::from_value(v).map_err(|e| TranslateError::new(TOOLS, e.to_string()))?
        }
        None => Vec::new(),
    };
    if !same {
        foreign_options(req, &mut gen)?;
    }
    gen.max_output_tokens = req.max_tokens;
    gen.temperature = req.temperature;
    gen.top_p = req.top_p;
    gen.stop_sequences = req.stop.clone();
    match &req.response_format {
        None => {}
        Some(ResponseFormat::Text) => gen.response_mime_type = Some("text/plain".into()),
        Some(ResponseFormat::JsonObject) => {
            gen.response_mime_type = Some("application/json".into())
        }
        Some(ResponseFormat::JsonSchema(s)) => {
            gen.response_mime_type = Some("application/json".into());
            gen.response_json_schema = s.get("schema").cloned();
        }
    }
    if req.parallel_tool_calls == Some(false) {
        return Err(TranslateError::new(
            "parallel_tool_calls",
            "the Gemini API cannot be told to make at most one tool call",
        ));
    }
    let mut calling = tool_config
        .function_calling_config
        .take()
        .unwrap_or_default();
    match &req.tool_choice {
        None => {}
        Some(ToolChoice::Auto) => calling.mode = Some("AUTO".into()),
        Some(ToolChoice::None) => calling.mode = Some("NONE".into()),
        Some(ToolChoice::Required) => calling.mode = Some("ANY".into()),
        Some(ToolChoice::Tool(name)) => {
            calling.mode = Some("ANY".into());
            calling.allowed_function_names = Some(vec![name.clone()]);
        }
    }
    if calling.mode.is_some()
        || calling.allowed_function_names.is_some()
        || !calling.extra.is_empty()
    {
        tool_config.function_calling_config = Some(calling);
    }
    let mut tools = Vec::new();
    if !req.tools.is_empty() {
        let declarations = req
            .tools
            .iter()
            .map(|t| {
                let mut extra = same_format(req.source, Format::Gemini, &t.extra);
                let openapi = extra.remove(OPENAPI_PARAMETERS) == Some(Value::Bool(true));
                let (parameters, parameters_json_schema) = match &t.parameters {
                    Some(p) if openapi => (Some(p.clone()), None),
                    p => (None, p.clone()),
                };
                gm::FunctionDeclaration {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters,
                    parameters_json_schema,
                    extra,
                }
            })
            .collect();
        tools.push(gm::Tool {
            function_declarations: Some(declarations),
            extra: Extra::new(),
        });
    }
    tools.extend(other_tools);
    let (system_instruction, contents) = contents_from_ir(req)?;
    let out = gm::Request {
        contents,
        system_instruction,
        tools: (!tools.is_empty()).then_some(tools),
        tool_config: (tool_config.function_calling_config.is_some()
            || !tool_config.extra.is_empty())
        .then_some(tool_config),
        generation_config: Some(gen)
            .filter(|g| serde_json::to_value(g).is_ok_and(|v| v != json!({}))),
        extra,
    };
    serde_json::to_value(out).map_err(|e| TranslateError::new("body", e.to_string()))
}

/// Maps the OpenAI/Anthropic options the IR keeps in `extra` onto `generationConfig`, and
/// rejects the ones Gemini cannot express.
fn foreign_options(
    req: &ChatRequest,
    gen: &mut gm::GenerationConfig,
) -> Result<(), TranslateError> {
    let bad = |key: &str, what: &str| TranslateError::new(key, format!("expected {what}"));
    for (key, v) in &req.extra {
        match key.as_str() {
            "seed" => gen.seed = Some(v.as_i64().ok_or_else(|| bad(key, "an integer"))?),
            "top_k" => gen.top_k = Some(v.as_u64().ok_or_else(|| bad(key, "an integer"))?),
            "frequency_penalty" => {
                gen.frequency_penalty = Some(v.as_f64().ok_or_else(|| bad(key, "a number"))?)
            }
            "presence_penalty" => {
                gen.presence_penalty = Some(v.as_f64().ok_or_else(|| bad(key, "a number"))?)
            }
            "thinking" => gen.thinking_config = Some(anthropic_thinking(v)?),
            "reasoning_effort" => gen.thinking_config = Some(reasoning_effort(v)?),
            k if DROPPABLE_FOREIGN.contains(&k) || is_default(k, v) => {}
            _ => {
                return Err(TranslateError::new(
                    key.clone(),
                    format!("'{key}' cannot be expressed in the Gemini API"),
                ))
            }
        }
    }
    Ok(())
}

/// Anthropic `thinking` -> Gemini `thinkingConfig`.
fn anthropic_thinking(v: &Value) -> Result<gm::ThinkingConfig, TranslateError> {
    let budget = match v.get("type").and_then(Value::as_str) {
        Some("enabled") => v.get("budget_tokens").and_then(Value::as_i64),
        Some("adaptive") => Some(-1),
        Some("disabled") => {
            return Ok(gm::ThinkingConfig {
                thinking_budget: Some(0),
                ..gm::ThinkingConfig::default()
            })
        }
        _ => None,
    };
    let budget = budget.ok_or_else(|| {
        TranslateError::new(
            "thinking",
            "expected type enabled (with budget_tokens), adaptive or disabled",
        )
    })?;
    Ok(gm::ThinkingConfig {
        include_thoughts: Some(true),
        thinking_budget: Some(budget),
        extra: Extra::new(),
    })
}

/// OpenAI `reasoning_effort` -> a Gemini thinking budget (the budgets Google's own OpenAI
/// compatibility layer documents for low/medium/high).
fn reasoning_effort(v: &Value) -> Result<gm::ThinkingConfig, TranslateError> {
    let budget = match v.as_str() {
        Some("none") => 0,
        Some("minimal" | "low") => 1024,
        Some("medium") => 8192,
        Some("high") => 24576,
        _ => {
            return Err(TranslateError::new(
                "reasoning_effort",
                "expected none, minimal, low, medium or high",
            ))
        }
    };
    Ok(gm::ThinkingConfig {
        thinking_budget: Some(budget),
        ..gm::ThinkingConfig::default()
    })
}

type SystemAndContents = (Option<gm::Content>, Vec<gm::Content>);

/// System and developer messages become `systemInstruction`; assistant messages `model`
/// contents; tool results `user` contents of `functionResponse` parts named after the call
/// they answer. Consecutive contents of one role are merged (Gemini wants all responses to
/// one turn's calls in one content).
fn contents_from_ir(req: &ChatRequest) -> Result<SystemAndContents, TranslateError> {
    let source = req.source;
    let mut system_parts = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut out: Vec<gm::Content> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let parts = m.content.parts();
        if m.role.is_system() {
            for (j, p) in parts.iter().enumerate() {
                let field = format!("messages[{i}].content[{j}]");
                if !matches!(p, Part::Text { .. }) {
                    return Err(TranslateError::new(field, "system content must be text"));
                }
                system_parts.extend(part_from_ir(source, &field, p)?);
            }
            continue;
        }
        let role = if m.role == Role::Assistant {
            "model"
        } else {
            "user"
        };
        let mut gparts = Vec::with_capacity(parts.len());
        for (j, p) in parts.iter().enumerate() {
            let field = if m.role == Role::Tool {
                format!("messages[{i}]")
            } else {
                format!("messages[{i}].content[{j}]")
            };
            match p {
                Part::ToolCall { id, name, .. } => {
                    names.insert(id.clone(), name.clone());
                    gparts.extend(part_from_ir(source, &field, p)?);
                }
                Part::ToolResult {
                    tool_call_id,
                    content,
                    is_error,
                    ..
                } => {
                    let id_field = if m.role == Role::Tool {
                        format!("{field}.tool_call_id")
                    } else {
                        format!("{field}.tool_use_id")
                    };
                    let name = names.get(tool_call_id.as_str()).ok_or_else(|| {
                        TranslateError::new(
                            id_field,
                            format!(
                                "no earlier assistant tool call has id '{tool_call_id}'; Gemini needs the called function's name"
                            ),
                        )
                    })?;
                    gparts.push(gm::Part {
                        function_response: Some(gm::FunctionResponse {
                            id: None,
                            name: name.clone(),
                            response: response_object(&field, content, *is_error)?,
                            extra: Extra::new(),
                        }),
                        ..gm::Part::default()
                    });
                }
                // An empty text next to tool calls (OpenAI `content: ""`) says nothing.
                Part::Text { text, .. } if text.is_empty() && parts.len() > 1 => {}
                p => gparts.extend(part_from_ir(source, &field, p)?),
            }
        }
        if role == "model" && !same_source(source) && needs_signature_sentinel(&req.model) {
            if let Some(p) = gparts.iter_mut().find(|p| p.function_call.is_some()) {
                p.thought_signature
                    .get_or_insert_with(|| SKIP_SIGNATURE_VALIDATOR.into());
            }
        }
        let extra = same_format(source, Format::Gemini, &m.extra);
        match out.last_mut() {
            Some(prev) if !same_source(source) && prev.role.as_deref() == Some(role) => {
                prev.parts.extend(gparts)
            }
            _ if gparts.is_empty() && !same_source(source) => {}
            _ => out.push(gm::Content {
                role: Some(role.into()),
                parts: gparts,
                extra,
            }),
        }
    }
    let system = (!system_parts.is_empty()).then(|| gm::Content {
        role: None,
        parts: system_parts,
        extra: Extra::new(),
    });
    Ok((system, out))
}

/// The value Gemini documents for function calls it did not produce (history from another
/// model or client that dropped the signature): without a signature on the first call of
/// each model turn, Gemini 3 models reject the request.
pub const SKIP_SIGNATURE_VALIDATOR: &str = "skip_thought_signature_validator";

/// Gemini 1.x/2.x models neither require nor expect thought signatures on replayed calls;
/// later ones require them.
fn needs_signature_sentinel(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    !(m.contains("gemini-1") || m.contains("gemini-2") || m.contains("gemma"))
}

fn same_source(source: Format) -> bool {
    source == Format::Gemini
}
