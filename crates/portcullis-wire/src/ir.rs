//! The canonical intermediate representation (IR) of a chat call: every inbound format is
//! decoded into it and every provider format is encoded from it, so N formats need N
//! translators, not N x M.
//!
//! Fields a format knows but the IR does not are kept in `extra` maps at each level. They
//! are emitted again only when encoding back to the format they came from (`source`), so a
//! same-format call round-trips untouched. Encoding to another format either maps them, drops
//! a field documented as a harmless hint, or fails with a [`TranslateError`] naming it.

use serde::Serialize;
use serde_json::{Map, Value};

/// Unknown fields of one JSON object, in their original order.
pub type Extra = Map<String, Value>;

/// The API formats the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    OpenAiChat,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// Google Gemini `generateContent` / `streamGenerateContent` (v1beta).
    Gemini,
    /// Amazon Bedrock Converse / ConverseStream.
    Bedrock,
}

/// A request field one side cannot express: the gateway answers 400 naming `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct TranslateError {
    /// JSON path of the offending field, e.g. `n` or `messages[2].content[0].type`.
    pub field: String,
    /// Why it cannot be translated; safe to show to the client.
    pub message: String,
}

impl TranslateError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> TranslateError {
        TranslateError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A malformed body (not JSON or the wrong shape), attributed to the field serde names.
    pub fn malformed(err: &serde_json::Error) -> TranslateError {
        TranslateError::new("body", format!("invalid request body: {err}"))
    }
}

/// A chat request in canonical form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The format this request was decoded from; `extra` maps belong to it.
    pub source: Format,
    /// Model name as the client sent it (the router rewrites it).
    pub model: String,
    /// The conversation. System prompts are messages with [`Role::System`] or
    /// [`Role::Developer`]; formats with a top-level system prompt put them at the front.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// How the model must pick tools.
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tool calls may be made in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Stop sequences.
    pub stop: Option<Vec<String>>,
    /// Requested output shape.
    pub response_format: Option<ResponseFormat>,
    /// `stream` as sent (None: absent).
    pub stream: Option<bool>,
    /// End-user identifier for abuse tracking.
    pub user: Option<String>,
    /// Source-format metadata object, as sent.
    pub metadata: Option<Extra>,
    /// Top-level fields the IR does not model.
    pub extra: Extra,
}

impl ChatRequest {
    /// True when the client asked for a streamed answer.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// The system prompt as one string (system and developer messages joined by blank lines).
    pub fn system_text(&self) -> String {
        let texts: Vec<String> = self
            .messages
            .iter()
            .filter(|m| m.role.is_system())
            .map(|m| m.content.text())
            .collect();
        texts.join("\n\n")
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System instructions.
    System,
    /// OpenAI's `developer` role: system instructions under another name.
    Developer,
    /// The end user (Anthropic tool results also travel in user messages).
    User,
    /// The model.
    Assistant,
    /// A tool's result (OpenAI `tool` messages).
    Tool,
}

impl Role {
    /// System or developer instructions.
    pub fn is_system(self) -> bool {
        matches!(self, Role::System | Role::Developer)
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// What was said.
    pub content: Content,
    /// Message-level fields the IR does not model (e.g. OpenAI `name`).
    pub extra: Extra,
}

/// Message content: both formats accept a plain string or a list of typed parts, and
/// the IR keeps which one was sent so a same-format call round-trips exactly.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Content {
    /// A plain string.
    Text(String),
    /// Typed parts.
    Parts(Vec<Part>),
}

impl Content {
    /// The content as parts (a plain string becomes one text part).
    pub fn parts(&self) -> Vec<Part> {
        match self {
            Content::Text(t) => vec![Part::text(t)],
            Content::Parts(p) => p.clone(),
        }
    }

    /// The concatenated text parts.
    pub fn text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Parts(p) => p
                .iter()
                .filter_map(|p| match p {
                    Part::Text { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ImageSource {
    /// A URL the provider fetches.
    Url {
        /// The URL.
        url: String,
    },
    /// Inline bytes.
    Base64 {
        /// MIME type, e.g. `image/png`.
        media_type: String,
        /// Base64 data.
        data: String,
    },
}

/// One typed piece of content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Part-level fields the IR does not model (e.g. Anthropic `cache_control`).
        extra: Extra,
    },
    /// An image.
    Image {
        /// Its source.
        source: ImageSource,
        /// OpenAI's `detail` hint (`low`/`high`/`auto`).
        detail: Option<String>,
        /// Part-level fields the IR does not model.
        extra: Extra,
    },
    /// A tool call made by the model.
    ToolCall {
        /// Call id, echoed by the matching result.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments as a JSON text.
        arguments: String,
        /// Part-level fields the IR does not model.
        extra: Extra,
    },
    /// The result of a tool call.
    ToolResult {
        /// The id of the call this answers.
        tool_call_id: String,
        /// The result.
        content: Content,
        /// The tool failed.
        is_error: Option<bool>,
        /// Part-level fields the IR does not model.
        extra: Extra,
    },
    /// Visible model reasoning.
    Thinking {
        /// The reasoning text.
        text: String,
        /// Provider signature that must be sent back unchanged.
        signature: Option<String>,
        /// Part-level fields the IR does not model.
        extra: Extra,
    },
    /// Encrypted reasoning (Anthropic `redacted_thinking`).
    RedactedThinking {
        /// Opaque data.
        data: String,
    },
    /// A part type of the source format that the IR does not model, kept verbatim.
    Other {
        /// The part as sent.
        value: Value,
    },
}

impl Part {
    /// A plain text part.
    pub fn text(text: impl Into<String>) -> Part {
        Part::Text {
            text: text.into(),
            extra: Extra::new(),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    /// Name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// JSON schema of its arguments.
    pub parameters: Option<Value>,
    /// Tool-level fields the IR does not model (e.g. OpenAI `strict`).
    pub extra: Extra,
}

/// How the model must choose tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "name")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call (OpenAI `required`, Anthropic `any`).
    Required,
    /// This tool must be called.
    Tool(String),
}

/// Requested output shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "schema")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema (OpenAI's `json_schema` object as sent).
    JsonSchema(Value),
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// Natural end or a stop sequence.
    Stop,
    /// Token limit reached.
    Length,
    /// The model called tools.
    ToolCalls,
    /// Refused or filtered.
    ContentFilter,
}

/// A stop reason with the provider's own value kept for same-format round trips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopReason {
    /// Canonical kind.
    pub kind: StopKind,
    /// The value as the source format spelled it (e.g. `end_turn`).
    pub raw: String,
    /// The stop sequence that matched, when known.
    pub stop_sequence: Option<String>,
}

impl StopReason {
    /// A stop reason of `kind` with `raw` spelling.
    pub fn new(kind: StopKind, raw: impl Into<String>) -> StopReason {
        StopReason {
            kind,
            raw: raw.into(),
            stop_sequence: None,
        }
    }
}

/// Token counts. `input` counts every prompt token, cached ones included (OpenAI's
/// convention); Anthropic's `input_tokens` excludes cache reads and writes, so its
/// translator adds and subtracts them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// All prompt tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_input: Option<u64>,
    /// Prompt tokens written to the provider's cache.
    pub cache_creation_input: Option<u64>,
    /// Usage fields of the source format the IR does not model.
    pub extra: Extra,
}

/// A complete (non-streamed) chat response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatResponse {
    /// The format this response was decoded from.
    pub source: Format,
    /// Response id.
    pub id: String,
    /// Model that answered.
    pub model: String,
    /// Generated parts: text, thinking, tool calls.
    pub content: Vec<Part>,
    /// Why generation stopped.
    pub stop: Option<StopReason>,
    /// Token counts.
    pub usage: Option<Usage>,
    /// Top-level fields the IR does not model (e.g. `created`, `system_fingerprint`).
    pub extra: Extra,
}

/// Error families shared by both formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad request.
    InvalidRequest,
    /// Bad or missing credentials.
    Authentication,
    /// Not allowed.
    Permission,
    /// No such resource or model.
    NotFound,
    /// Body too large.
    RequestTooLarge,
    /// Rate limited.
    RateLimit,
    /// Internal error.
    Api,
    /// Temporarily overloaded.
    Overloaded,
}

impl ErrorKind {
    /// Anthropic's `error.type` spelling.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Api => "api_error",
            ErrorKind::Overloaded => "overloaded_error",
        }
    }

    /// OpenAI's `error.type` spelling.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RateLimit => "rate_limit_exceeded",
            ErrorKind::Api | ErrorKind::Overloaded => "server_error",
        }
    }

    /// Parses an error type of either format; unknown values are `Api`.
    pub fn from_type(t: &str) -> ErrorKind {
        match t {
            "invalid_request_error" => ErrorKind::InvalidRequest,
            "authentication_error" => ErrorKind::Authentication,
            "permission_error" => ErrorKind::Permission,
            "not_found_error" => ErrorKind::NotFound,
            "request_too_large" => ErrorKind::RequestTooLarge,
            "rate_limit_error" | "rate_limit_exceeded" | "insufficient_quota" => {
                ErrorKind::RateLimit
            }
            "overloaded_error" => ErrorKind::Overloaded,
            _ => ErrorKind::Api,
        }
    }
}

/// One incremental stream event. Each upstream chunk decodes to zero or more events and
/// each event encodes to zero or more client chunks, so nothing waits for the whole stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum StreamEvent {
    /// The assistant message begins.
    MessageStart {
        /// Response id.
        id: String,
        /// Model that answers.
        model: String,
        /// Usage known at the start (Anthropic reports input tokens here).
        usage: Option<Usage>,
    },
    /// More answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// A tool call begins; `index` counts tool calls of this message from 0.
    ToolCallStart {
        /// Tool-call ordinal.
        index: usize,
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
    },
    /// A fragment of a tool call's JSON arguments.
    ToolArgsDelta {
        /// Tool-call ordinal.
        index: usize,
        /// The fragment (not valid JSON on its own).
        fragment: String,
    },
    /// More reasoning text.
    ThinkingDelta {
        /// The new reasoning text.
        text: String,
    },
    /// The signature closing a thinking block.
    ThinkingSignature {
        /// Opaque signature.
        signature: String,
    },
    /// A redacted thinking block, whole.
    RedactedThinking {
        /// Opaque data.
        data: String,
    },
    /// Why generation stopped.
    Stop(StopReason),
    /// Token counts (cumulative; the last one wins).
    Usage(Usage),
    /// The stream ended normally.
    Done,
    /// The stream failed; nothing follows.
    Error {
        /// Error family.
        kind: ErrorKind,
        /// Message safe for the client.
        message: String,
    },
}

/// Emits `extra` only when encoding back to the format it came from.
pub(crate) fn same_format(source: Format, target: Format, extra: &Extra) -> Extra {
    if source == target {
        extra.clone()
    } else {
        Extra::new()
    }
}
