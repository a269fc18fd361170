//! Anthropic Messages API wire types. Each names the fields the translators touch and
//! flattens the rest into `extra`, so unknown fields round-trip.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unknown fields of an object.
pub type Extra = Map<String, Value>;

/// `POST /v1/messages` body.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Request {
    /// Model name.
    pub model: String,
    /// Conversation (user/assistant alternating).
    pub messages: Vec<Message>,
    /// Output limit (required by Anthropic).
    pub max_tokens: u64,
    /// System prompt: a string or text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Content>,
    /// `{"user_id": ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Extra>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Everything else (top_k, thinking, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// One message.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// A string or content blocks.
    pub content: Content,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A string or content blocks.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Blocks.
    Blocks(Vec<Block>),
}

/// A content block: a known type, or anything else kept verbatim.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Block {
    /// A block type the translators understand.
    Known(KnownBlock),
    /// Any other block (document, server_tool_use, ...).
    Other(Value),
}

/// Content block types the translators understand.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KnownBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Other fields (cache_control, citations, ...).
        #[serde(flatten)]
        extra: Extra,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: ImageSource,
        /// Other fields.
        #[serde(flatten)]
        extra: Extra,
    },
    /// A tool call by the model.
    ToolUse {
        /// Call id (`toolu_...`).
        id: String,
        /// Tool name.
        name: String,
        /// Arguments object.
        input: Value,
        /// Other fields.
        #[serde(flatten)]
        extra: Extra,
    },
    /// A tool result, in a user message.
    ToolResult {
        /// The call answered.
        tool_use_id: String,
        /// Result text or blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
        /// The tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Other fields.
        #[serde(flatten)]
        extra: Extra,
    },
    /// Extended thinking.
    Thinking {
        /// Reasoning text.
        thinking: String,
        /// Signature to send back unchanged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
        /// Other fields.
        #[serde(flatten)]
        extra: Extra,
    },
    /// Encrypted thinking.
    RedactedThinking {
        /// Opaque data.
        data: String,
    },
}

/// Image source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline data.
    Base64 {
        /// MIME type.
        media_type: String,
        /// Base64 data.
        data: String,
    },
    /// A URL.
    Url {
        /// The URL.
        url: String,
    },
}

/// A tool definition.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Tool {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Other fields (type of server tools, cache_control, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Tool choice.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// Some tool must be called.
    Any {
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// This tool must be called.
    Tool {
        /// Tool name.
        name: String,
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// No tool calls.
    None,
}

/// A complete `message` response.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Response {
    /// `msg_...`.
    pub id: String,
    /// `message`.
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    /// `assistant`.
    #[serde(default = "assistant_role")]
    pub role: String,
    /// Generated blocks.
    pub content: Vec<Block>,
    /// Model.
    pub model: String,
    /// end_turn, max_tokens, stop_sequence, tool_use, pause_turn, refusal.
    pub stop_reason: Option<String>,
    /// The matched stop sequence.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: Usage,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

fn message_type() -> String {
    "message".into()
}

fn assistant_role() -> String {
    "assistant".into()
}

/// Token counts; `input_tokens` excludes cache reads and writes.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Other fields (service_tier, server_tool_use, ...).
    #[serde(flatten)]
    pub extra: Extra,
}
