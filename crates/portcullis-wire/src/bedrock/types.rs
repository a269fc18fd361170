//! Amazon Bedrock Converse / ConverseStream wire types. Each names the fields the
//! translators touch and flattens the rest into `extra`, so unknown fields round-trip.
//! Bedrock content blocks are unions: an object with exactly one key naming the member.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unknown fields of an object.
pub type Extra = Map<String, Value>;

/// `POST /model/{modelId}/converse` (and `/converse-stream`) body. The model id travels in
/// the path, not the body.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Conversation (user/assistant alternating).
    pub messages: Vec<Message>,
    /// System prompt blocks (`{text}`, `{cachePoint}`, `{guardContent}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<Block>,
    /// Common inference parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfig>,
    /// Tools and tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    /// Model-specific parameters passed through to the model (e.g. `top_k`, `thinking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<Extra>,
    /// Everything else (guardrailConfig, requestMetadata, performanceConfig, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `inferenceConfig`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig {
    /// Output limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
}

impl InferenceConfig {
    /// True when no parameter is set (the object is then omitted).
    pub fn is_empty(&self) -> bool {
        self == &InferenceConfig::default()
    }
}

/// `toolConfig`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// Tool definitions: `{"toolSpec": {...}}` (or `{"cachePoint": ...}`).
    pub tools: Vec<ToolEntry>,
    /// `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name":...}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

/// One entry of `toolConfig.tools`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolEntry {
    /// A tool definition.
    ToolSpec(ToolSpec),
    /// A prompt-cache checkpoint after the tools.
    CachePoint(Value),
}

/// `toolSpec`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec {
    /// Tool name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{"json": <JSON schema>}`.
    pub input_schema: InputSchema,
}

/// `inputSchema`: a union whose only member is `json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputSchema {
    /// The JSON schema.
    pub json: Value,
}

/// `toolChoice` union.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolChoice {
    /// The model decides.
    Auto(Map<String, Value>),
    /// Some tool must be called.
    Any(Map<String, Value>),
    /// This tool must be called.
    Tool {
        /// Tool name.
        name: String,
    },
}

/// One message.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// Content blocks.
    pub content: Vec<Block>,
}

/// A content block: a known member, or anything else kept verbatim.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Block {
    /// A member the translators understand.
    Known(KnownBlock),
    /// Any other member (document, video, guardContent, citationsContent, ...).
    Other(Value),
}

/// Content block members the translators understand.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KnownBlock {
    /// Text.
    Text(String),
    /// An image, as bytes.
    Image(Image),
    /// A tool call by the model.
    ToolUse(ToolUse),
    /// A tool result, in a user message.
    ToolResult(ToolResult),
    /// Model reasoning.
    ReasoningContent(Reasoning),
    /// A prompt-cache checkpoint: `{"type": "default"}`.
    CachePoint(Value),
}

/// `image` block.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Image {
    /// `png`, `jpeg`, `gif` or `webp`.
    pub format: String,
    /// `{"bytes": <base64>}` (or `{"s3Location": ...}`).
    pub source: Value,
}

/// `toolUse` block.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    /// Call id (`tooluse_...`).
    pub tool_use_id: String,
    /// Tool name.
    pub name: String,
    /// Arguments object.
    pub input: Value,
}

/// `toolResult` block.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// The call answered.
    pub tool_use_id: String,
    /// Result blocks: `{text}`, `{json}`, `{image}`, `{document}`, `{video}`.
    pub content: Vec<Value>,
    /// `success` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `reasoningContent` union.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reasoning {
    /// Visible reasoning.
    ReasoningText {
        /// The reasoning text.
        text: String,
        /// Signature to send back unchanged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// Encrypted reasoning (base64 bytes).
    RedactedContent(String),
}

/// A complete Converse response.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// `{"message": {...}}`.
    pub output: Output,
    /// end_turn, tool_use, max_tokens, stop_sequence, guardrail_intervened,
    /// content_filtered, model_context_window_exceeded.
    pub stop_reason: String,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Other fields (metrics, additionalModelResponseFields, trace, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `output` union; its only member in practice is `message`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Output {
    /// The assistant message.
    pub message: Message,
}

/// Token counts. Bedrock reports `inputTokens` without cache reads and writes.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Sum of all tokens.
    #[serde(default)]
    pub total_tokens: u64,
    /// Tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
    /// Other fields (cacheDetails, ...).
    #[serde(flatten)]
    pub extra: Extra,
}
