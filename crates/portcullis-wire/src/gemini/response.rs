//! Gemini `GenerateContentResponse` <-> IR, finish reasons and usage.

use super::parts::{part_from_ir, part_to_ir};
use super::types as gm;
use crate::ir::{
    same_format, ChatResponse, Extra, Format, Part, StopKind, StopReason, TranslateError, Usage,
};
use serde_json::{json, Value};

/// Key of [`ChatResponse::extra`] keeping the unknown fields of `candidates[0]`
/// (safetyRatings, citationMetadata, ...), so a Gemini -> IR -> Gemini trip loses nothing.
const CANDIDATE_EXTRA: &str = "candidates[0]";

/// Gemini finish reasons and the IR kind each maps to. Unknown values map to `Stop`.
const FINISH_REASONS: &[(&str, StopKind)] = &[
    ("STOP", StopKind::Stop),
    ("MAX_TOKENS", StopKind::Length),
    ("SAFETY", StopKind::ContentFilter),
    ("RECITATION", StopKind::ContentFilter),
    ("BLOCKLIST", StopKind::ContentFilter),
    ("PROHIBITED_CONTENT", StopKind::ContentFilter),
    ("SPII", StopKind::ContentFilter),
    ("IMAGE_SAFETY", StopKind::ContentFilter),
    ("IMAGE_PROHIBITED_CONTENT", StopKind::ContentFilter),
    ("IMAGE_RECITATION", StopKind::ContentFilter),
    ("MODEL_ARMOR", StopKind::ContentFilter),
    ("LANGUAGE", StopKind::Stop),
    ("OTHER", StopKind::Stop),
    ("MALFORMED_FUNCTION_CALL", StopKind::Stop),
    ("UNEXPECTED_TOOL_CALL", StopKind::Stop),
    ("TOO_MANY_TOOL_CALLS", StopKind::Stop),
    ("FINISH_REASON_UNSPECIFIED", StopKind::Stop),
];

/// Maps a Gemini `finishReason` (or a `promptFeedback.blockReason`, which is always a
/// filter) to the IR. Gemini reports function calls with `STOP`: `has_calls` says whether
/// the candidate made any, which makes a natural stop `tool_calls`.
pub fn stop_to_ir(raw: &str, has_calls: bool) -> StopReason {
    let kind = FINISH_REASONS
        .iter()
        .find(|(r, _)| *r == raw)
        .map(|(_, k)| *k)
        .unwrap_or(StopKind::Stop);
    let kind = match kind {
        StopKind::Stop if has_calls => StopKind::ToolCalls,
        k => k,
    };
    StopReason::new(kind, raw)
}

/// The Gemini `finishReason` for an IR stop reason (the original spelling when it fits).
pub fn stop_from_ir(stop: &StopReason) -> &'static str {
    let kept = FINISH_REASONS
        .iter()
        .find(|(r, k)| *r == stop.raw && (*k == stop.kind || stop.kind == StopKind::ToolCalls));
    if let Some((raw, _)) = kept {
        return raw;
    }
    match stop.kind {
        StopKind::Stop | StopKind::ToolCalls => "STOP",
        StopKind::Length => "MAX_TOKENS",
        StopKind::ContentFilter => "SAFETY",
    }
}

/// Gemini usage -> IR. `input` is every prompt token (tool-use prompts included, cached
/// content included as Gemini already counts it); `output` counts answer and reasoning
/// tokens, both billed as output. Gemini's own split is kept in `extra`.
pub fn usage_to_ir(u: &gm::UsageMetadata) -> Usage {
    let tool_prompt = u.tool_use_prompt_token_count.unwrap_or(0);
    let thoughts = u.thoughts_token_count.unwrap_or(0);
    let mut extra = u.extra.clone();
    for (key, v) in [
        ("thoughtsTokenCount", u.thoughts_token_count),
        ("toolUsePromptTokenCount", u.tool_use_prompt_token_count),
        ("totalTokenCount", u.total_token_count),
    ] {
        if let Some(v) = v {
            extra.insert(key.into(), v.into());
        }
    }
    if u.candidates_token_count.is_none() {
        extra.insert("candidatesTokenCount".into(), Value::Null);
    }
    Usage {
        input: u.prompt_token_count + tool_prompt,
        output: u.candidates_token_count.unwrap_or(0) + thoughts,
        cached_input: u.cached_content_token_count,
        cache_creation_input: None,
        extra,
    }
}

/// IR usage -> Gemini (the inverse of [`usage_to_ir`]).
pub fn usage_from_ir(source: Format, u: &Usage) -> gm::UsageMetadata {
    let mut extra = same_format(source, Format::Gemini, &u.extra);
    let mut take = |key: &str| extra.remove(key).and_then(|v| v.as_u64());
    let thoughts = take("thoughtsTokenCount");
    let tool_prompt = take("toolUsePromptTokenCount");
    let total = take("totalTokenCount");
    let no_candidates = extra.remove("candidatesTokenCount").is_some();
    gm::UsageMetadata {
        prompt_token_count: u.input.saturating_sub(tool_prompt.unwrap_or(0)),
        candidates_token_count: (!no_candidates)
            .then(|| u.output.saturating_sub(thoughts.unwrap_or(0))),
        total_token_count: Some(total.unwrap_or(u.input + u.output)),
        cached_content_token_count: u.cached_input,
        thoughts_token_count: thoughts,
        tool_use_prompt_token_count: tool_prompt,
        extra,
    }
}

/// Parses a Gemini response body into the IR.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let resp: gm::Response =
        serde_json::from_slice(body).map_err(|e| TranslateError::malformed(&e))?;
    response_to_ir(resp)
}

/// Converts a typed Gemini response into the IR (the first candidate; more than one is
/// an error, as only one can be translated). A blocked prompt yields no content and a
/// `content_filter` stop whose raw value is the block reason.
pub fn response_to_ir(resp: gm::Response) -> Result<ChatResponse, TranslateError> {
    if resp.candidates.len() > 1 {
        return Err(TranslateError::new(
            "candidates",
            "only one candidate can be translated",
        ));
    }
    let mut extra = resp.extra;
    let mut content = Vec::new();
    let mut stop = None;
    if let Some(c) = resp.candidates.into_iter().next() {
        if !c.extra.is_empty() {
            extra.insert(CANDIDATE_EXTRA.into(), Value::Object(c.extra));
        }
        let mut next_call = 0;
        content = c
            .content
            .map(|c| c.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| part_to_ir(p, &mut next_call))
            .collect();
        stop = c
            .finish_reason
            .as_deref()
            .map(|r| stop_to_ir(r, next_call > 0));
    }
    if let Some(feedback) = resp.prompt_feedback {
        if let Some(reason) = &feedback.block_reason {
            stop = Some(StopReason::new(StopKind::ContentFilter, reason.clone()));
        }
        let v = serde_json::to_value(feedback).unwrap_or(Value::Null);
        extra.insert("promptFeedback".into(), v);
    }
    Ok(ChatResponse {
        source: Format::Gemini,
        id: resp.response_id.unwrap_or_default(),
        model: resp.model_version.unwrap_or_default(),
        content,
        stop,
        usage: resp.usage_metadata.as_ref().map(usage_to_ir),
        extra,
    })
}

/// IR parts -> Gemini parts of a model answer. Malformed tool arguments (a model's, not a
/// client's) are kept as text under one key rather than lost.
pub(crate) fn answer_parts(source: Format, content: &[Part]) -> Vec<gm::Part> {
    content
        .iter()
        .enumerate()
        .filter_map(
            |(j, p)| match part_from_ir(source, &format!("content[{j}]"), p) {
                Ok(part) => part,
                Err(_) => match p {
                    Part::ToolCall {
                        name, arguments, ..
                    } => Some(gm::Part {
                        function_call: Some(gm::FunctionCall {
                            name: name.clone(),
                            args: Some(json!({ "_raw_arguments": arguments })),
                            ..gm::FunctionCall::default()
                        }),
                        ..gm::Part::default()
                    }),
                    _ => None,
                },
            },
        )
        .collect()
}

/// Encodes an IR response as a Gemini `GenerateContentResponse` body.
pub fn response_from_ir(resp: &ChatResponse) -> Value {
    let mut extra = same_format(resp.source, Format::Gemini, &resp.extra);
    let candidate_extra = match extra.remove(CANDIDATE_EXTRA) {
        Some(Value::Object(m)) => m,
        _ => Extra::new(),
    };
    let blocked_prompt = extra
        .get("promptFeedback")
        .and_then(|f| f.get("blockReason"))
        .is_some();
    let mut candidates = Vec::new();
    if !(blocked_prompt && resp.content.is_empty()) {
        candidates.push(gm::Candidate {
            content: Some(gm::Content {
                role: Some("model".into()),
                parts: answer_parts(resp.source, &resp.content),
                extra: Extra::new(),
            }),
            finish_reason: resp.stop.as_ref().map(|s| stop_from_ir(s).to_string()),
            index: Some(0),
            extra: candidate_extra,
        });
    }
    let out = gm::Response {
        candidates,
        prompt_feedback: None,
        usage_metadata: resp.usage.as_ref().map(|u| usage_from_ir(resp.source, u)),
        model_version: Some(resp.model.clone()).filter(|m| !m.is_empty()),
        response_id: Some(resp.id.clone()).filter(|i| !i.is_empty()),
        extra,
    };
    serde_json::to_value(out).unwrap_or(Value::Null)
}
