//! Gemini API (generativelanguage v1beta) wire types for `generateContent` and
//! `streamGenerateContent`. JSON names are camelCase; each type names the fields the
//! translators touch and flattens the rest into `extra`, so unknown fields round-trip.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unknown fields of an object.
pub type Extra = Map<String, Value>;

/// `POST /v1beta/models/{model}:generateContent` body (the model is in the path).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The conversation, roles `user` and `model`.
    #[serde(default)]
    pub contents: Vec<Content>,
    /// System prompt (text parts; role ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    /// Tools: function declarations and built-in tools (googleSearch, codeExecution, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How functions may be called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    /// Sampling and output options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
    /// Everything else (safetySettings, cachedContent, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// One turn of the conversation (or the system instruction).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// `user` or `model`; absent on system instructions and in some responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Ordered parts.
    #[serde(default)]
    pub parts: Vec<Part>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One part: exactly one data field is set (text, inlineData, fileData, functionCall,
/// functionResponse, or a kind kept in `extra` such as executableCode), plus metadata.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Text (answer text, or reasoning when `thought` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Inline bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob>,
    /// A file by URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    /// A call the model makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    /// A function's result, sent by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse>,
    /// The text is the model's reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// Opaque signature of the model's reasoning, to be sent back unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
    /// Other fields and part kinds.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Inline data.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// IANA MIME type.
    pub mime_type: String,
    /// Base64 bytes.
    pub data: String,
}

/// Data referenced by URI.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    /// IANA MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The URI.
    pub file_uri: String,
}

/// A function call predicted by the model.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCall {
    /// Call id, when the API assigns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Function name.
    pub name: String,
    /// Arguments object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The result of a function call.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionResponse {
    /// The id of the call answered, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Function name (required by Gemini).
    pub name: String,
    /// Result object: `output`/`error` keys, or any object as the output.
    #[serde(default)]
    pub response: Value,
    /// Other fields (parts, willContinue, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tool entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// Functions the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_declarations: Option<Vec<FunctionDeclaration>>,
    /// Built-in tools (googleSearch, codeExecution, urlContext, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A function the model may call.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeclaration {
    /// Name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Arguments as an OpenAPI-subset `Schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Arguments as plain JSON Schema (exclusive with `parameters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_json_schema: Option<Value>,
    /// Other fields (response, behavior, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Tool configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// Function-calling mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_calling_config: Option<FunctionCallingConfig>,
    /// Other fields (retrievalConfig, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Function-calling mode.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    /// `AUTO`, `ANY`, `NONE` or `VALIDATED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// With `ANY`: the functions allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_function_names: Option<Vec<String>>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Sampling and output options.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    /// Stop sequences (up to 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Output MIME type: `text/plain` or `application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<String>,
    /// Output schema (OpenAPI subset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    /// Output schema as plain JSON Schema (exclusive with `responseSchema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_json_schema: Option<Value>,
    /// Number of candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<u64>,
    /// Output limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Temperature (0..2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// Reasoning options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
    /// Other fields (responseModalities, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Reasoning options.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    /// Return thought summaries as `thought` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
    /// Reasoning token budget (0 disables, -1 dynamic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i64>,
    /// Other fields (thinkingLevel, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `GenerateContentResponse`: the whole answer, or one chunk of a stream.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// Candidate answers (the translators use the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    /// Set when the prompt itself was blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_feedback: Option<PromptFeedback>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageMetadata>,
    /// Model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Response id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// Other fields (createTime, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// One candidate answer.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The generated content (absent when blocked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Why generation stopped (absent until the last chunk of a stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Candidate index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Other fields (safetyRatings, citationMetadata, finishMessage, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Why a prompt was blocked.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    /// SAFETY, OTHER, BLOCKLIST, PROHIBITED_CONTENT, IMAGE_SAFETY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_reason: Option<String>,
    /// Other fields (safetyRatings).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Token counts. `promptTokenCount` includes cached tokens; `candidatesTokenCount`
/// excludes reasoning, counted in `thoughtsTokenCount`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Prompt tokens, cached content included.
    #[serde(default)]
    pub prompt_token_count: u64,
    /// Answer tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates_token_count: Option<u64>,
    /// Prompt + tool-use prompt + answer + reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_token_count: Option<u64>,
    /// Prompt tokens served from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_content_token_count: Option<u64>,
    /// Reasoning tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thoughts_token_count: Option<u64>,
    /// Tokens of tool-use prompts (e.g. search results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_prompt_token_count: Option<u64>,
    /// Other fields (promptTokensDetails, ...).
    #[serde(flatten)]
    pub extra: Extra,
}
