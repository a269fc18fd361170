//! `POST /v1/chat/completions`: echo replies, tool calls, usage.

use http::{Response, StatusCode};

use super::types::{
    AssistantMessage, ChatCompletion, ChatRequest, Choice, FunctionCall, ToolCall, Usage,
};
use super::{model_fault, now_secs, stream, tokens_for_chars};
use crate::faults::{self, Deferred};
use crate::respond::{self, Body};
use crate::server::Ctx;

/// Arguments of the mock tool call.
pub(crate) const TOOL_ARGUMENTS: &str = r#"{"location":"Paris"}"#;

/// What the mock model answers.
pub(crate) enum Reply {
    Text(String),
    ToolCall { name: String },
}

impl Reply {
    /// The mock model's decision, shared by every provider: a call of the first tool when
    /// tools are offered and the last user text mentions the weather, else an echo.
    pub(crate) fn decide(last_user: &str, first_tool: Option<&str>) -> Reply {
        match first_tool {
            Some(name) if last_user.to_ascii_lowercase().contains("weather") => Reply::ToolCall {
                name: name.to_owned(),
            },
            _ => Reply::Text(format!("echo: {last_user}")),
        }
    }

    pub(crate) fn finish_reason(&self) -> &'static str {
        match self {
            Reply::Text(_) => "stop",
            Reply::ToolCall { .. } => "tool_calls",
        }
    }

    /// Completion tokens: words of a text reply; ceil(chars/4) of name + arguments for a call.
    pub(crate) fn completion_tokens(&self) -> u32 {
        match self {
            Reply::Text(text) => u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX),
            Reply::ToolCall { name } => {
                tokens_for_chars(name.chars().count() + TOOL_ARGUMENTS.chars().count())
            }
        }
    }
}

/// A parsed, validated chat request and the mock's answer to it.
pub(crate) struct Exchange {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub reply: Reply,
    pub usage: Usage,
    pub call_id: String,
}

pub(crate) async fn handle(ctx: &Ctx<'_>) -> Response<Body> {
    let req: ChatRequest = match serde_json::from_slice(ctx.body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("We could not parse the JSON body of your request. ({e})");
            return respond::bad_request(&msg, None);
        }
    };
    let Some(model) = req.model.as_deref().filter(|m| !m.is_empty()) else {
        return respond::bad_request("you must provide a model parameter", Some("model"));
    };
    let Some(messages) = req.messages.as_ref().filter(|m| !m.is_empty()) else {
        return respond::bad_request("Missing required parameter: 'messages'.", Some("messages"));
    };
    let deferred = match model_fault(ctx, model).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let is_stream = req.stream.unwrap_or(false);
    if deferred == Deferred::Malformed {
        return faults::malformed_response(is_stream);
    }

    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role.as_deref() == Some("user"))
        .and_then(|m| m.content.as_ref())
        .map(|c| c.text())
        .unwrap_or_default();
    let first_tool = req
        .tools
        .as_deref()
        .and_then(|tools| tools.first())
        .and_then(|t| t.function.as_ref());
    let reply = match first_tool {
        Some(f) if last_user.to_ascii_lowercase().contains("weather") => Reply::ToolCall {
            name: f.name.clone(),
        },
        _ => {
            let mut text = String::with_capacity(6 + last_user.len());
            text.push_str("echo: ");
            text.push_str(&last_user);
            Reply::Text(text)
        }
    };
    let prompt_chars: usize = messages
        .iter()
        .filter_map(|m| m.content.as_ref())
        .map(|c| c.text_chars())
        .sum();
    let usage = Usage::new(tokens_for_chars(prompt_chars), reply.completion_tokens());
    let exchange = Exchange {
        id: format!("chatcmpl-mock-{}", ctx.seq),
        created: now_secs(),
        model: model.to_owned(),
        reply,
        usage,
        call_id: format!("call_mock_{}", ctx.seq),
    };

    if is_stream {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let plan = deferred.stream_plan_with(ctx.chunk_delay, || {
            let body = respond::openai_error_body(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
                None,
            );
            let mut event = b"data: ".to_vec();
            event.extend_from_slice(&body);
            event.extend_from_slice(b"\n\n");
            bytes::Bytes::from(event)
        });
        // Mistral sends usage unasked on its last chunk (and rejects `stream_options`).
        let usage_on_finish = model.starts_with("mistral") && req.stream_options.is_none();
        let events = stream::events(&exchange, include_usage, usage_on_finish);
        return respond::sse(events, plan, ctx.kill.clone());
    }
    completion(&exchange)
}

fn completion(ex: &Exchange) -> Response<Body> {
    let (content, tool_calls) = match &ex.reply {
        Reply::Text(text) => (Some(text.as_str()), None),
        Reply::ToolCall { name } => (
            None,
            Some([ToolCall {
                id: &ex.call_id,
                kind: "function",
                function: FunctionCall {
                    name,
                    arguments: TOOL_ARGUMENTS,
                },
            }]),
        ),
    };
    let body = ChatCompletion {
        id: &ex.id,
        object: "chat.completion",
        created: ex.created,
        model: &ex.model,
        choices: [Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                tool_calls,
                refusal: None,
                annotations: [],
            },
            logprobs: None,
            finish_reason: ex.reply.finish_reason(),
        }],
        usage: ex.usage,
        service_tier: "default",
        system_fingerprint: "fp_mock",
    };
    respond::json(StatusCode::OK, &body)
}
