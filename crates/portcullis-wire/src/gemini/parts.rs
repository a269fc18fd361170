//! Gemini parts <-> IR parts, shared by requests and responses.

use super::types as gm;
use crate::ir::{same_format, Content, Extra, Format, ImageSource, Part, TranslateError};
use serde_json::{json, Map, Value};

/// The id given to the `index`-th function call of a message or conversation: Gemini
/// usually sends no call ids, while the IR (and OpenAI/Anthropic clients) need one.
pub fn call_id(index: usize) -> String {
    format!("call_{index}")
}

/// One Gemini part -> one IR part. `next_call` numbers function calls without an id.
/// Function responses are handled by the request translator, which pairs them with calls.
pub(crate) fn part_to_ir(p: gm::Part, next_call: &mut usize) -> Part {
    let gm::Part {
        text,
        inline_data,
        file_data,
        function_call,
        function_response,
        thought,
        thought_signature,
        mut extra,
    } = p;
    let with_signature = |mut extra: Extra| {
        if let Some(s) = &thought_signature {
            extra.insert("thoughtSignature".into(), s.clone().into());
        }
        extra
    };
    if let Some(text) = text {
        return if thought == Some(true) {
            Part::Thinking {
                text,
                signature: thought_signature,
                extra,
            }
        } else {
            Part::Text {
                text,
                extra: with_signature(extra),
            }
        };
    }
    if let Some(fc) = function_call {
        let id = fc.id.unwrap_or_else(|| call_id(*next_call));
        *next_call += 1;
        let args = fc.args.unwrap_or_else(|| json!({}));
        return Part::ToolCall {
            id,
            name: fc.name,
            arguments: args.to_string(),
            extra: with_signature(extra),
        };
    }
    match (inline_data, file_data) {
        (Some(b), None) if b.mime_type.starts_with("image/") && thought.is_none() => Part::Image {
            source: ImageSource::Base64 {
                media_type: b.mime_type,
                data: b.data,
            },
            detail: None,
            extra: with_signature(extra),
        },
        (None, Some(f)) if is_image(f.mime_type.as_deref(), &f.file_uri) && thought.is_none() => {
            Part::Image {
                source: ImageSource::Url { url: f.file_uri },
                detail: None,
                extra: with_signature(extra),
            }
        }
        (inline_data, file_data) => {
            // Audio, video, documents, executable code, ...: kept verbatim.
            let whole = gm::Part {
                text: None,
                inline_data,
                file_data,
                function_call: None,
                function_response,
                thought,
                thought_signature,
                extra: std::mem::take(&mut extra),
            };
            Part::Other {
                value: serde_json::to_value(whole).unwrap_or(Value::Null),
            }
        }
    }
}

fn is_image(mime: Option<&str>, uri: &str) -> bool {
    match mime {
        Some(m) => m.starts_with("image/") && guess_image_mime(uri) == Some(m),
        None => guess_image_mime(uri).is_some(),
    }
}

/// The image MIME type implied by a URL's extension, if it names a common image format.
pub(crate) fn guess_image_mime(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => return None,
    })
}

/// Parses IR tool-call arguments (a JSON text) into Gemini's `args` object.
pub(crate) fn args_object(field: &str, arguments: &str) -> Result<Value, TranslateError> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(TranslateError::new(
            field,
            "tool call arguments must be a JSON object",
        )),
        Err(e) => Err(TranslateError::new(
            field,
            format!("tool call arguments are not valid JSON: {e}"),
        )),
    }
}

/// A Gemini part with only `extra` and the given data set.
fn part_with(extra: Extra) -> gm::Part {
    gm::Part {
        extra,
        ..gm::Part::default()
    }
}

/// Splits a Gemini-sourced `extra` into the part's signature and the rest.
fn take_signature(source: Format, extra: &Extra) -> (Option<String>, Extra) {
    let mut extra = same_format(source, Format::Gemini, extra);
    let sig = extra
        .remove("thoughtSignature")
        .and_then(|v| v.as_str().map(str::to_owned));
    (sig, extra)
}

/// One IR part -> one Gemini part (None: nothing to send, e.g. foreign reasoning).
/// Tool results are not handled here: they need the call's name (see the request
/// translator). `field` names the part in errors.
pub(crate) fn part_from_ir(
    source: Format,
    field: &str,
    p: &Part,
) -> Result<Option<gm::Part>, TranslateError> {
    let part = match p {
        Part::Text { text, extra } => {
            let (thought_signature, extra) = take_signature(source, extra);
            gm::Part {
                text: Some(text.clone()),
                thought_signature,
                ..part_with(extra)
            }
        }
        Part::Image {
            source: s, extra, ..
        } => {
            let (thought_signature, extra) = take_signature(source, extra);
            let mut part = gm::Part {
                thought_signature,
                ..part_with(extra)
            };
            match s {
                ImageSource::Base64 { media_type, data } => {
                    part.inline_data = Some(gm::Blob {
                        mime_type: media_type.clone(),
                        data: data.clone(),
                    })
                }
                ImageSource::Url { url } => {
                    part.file_data = Some(gm::FileData {
                        mime_type: Some(guess_image_mime(url).unwrap_or("image/jpeg").into()),
                        file_uri: url.clone(),
                    })
                }
            }
            part
        }
        Part::ToolCall {
            name,
            arguments,
            extra,
            ..
        } => {
            let (thought_signature, extra) = take_signature(source, extra);
            gm::Part {
                function_call: Some(gm::FunctionCall {
                    id: None,
                    name: name.clone(),
                    args: Some(args_object(&format!("{field}.arguments"), arguments)?),
                    extra: Extra::new(),
                }),
                thought_signature,
                ..part_with(extra)
            }
        }
        // Reasoning is only meaningful to the model that produced it (its signature is
        // checked), so another format's reasoning is not sent back.
        Part::Thinking {
            text,
            signature,
            extra,
        } if source == Format::Gemini => gm::Part {
            text: Some(text.clone()),
            thought: Some(true),
            thought_signature: signature.clone(),
            ..part_with(extra.clone())
        },
        Part::Thinking { .. } | Part::RedactedThinking { .. } => return Ok(None),
        Part::Other { value } if source == Format::Gemini => serde_json::from_value(value.clone())
            .map_err(|e| TranslateError::new(field, e.to_string()))?,
        Part::Other { value } => {
            let kind = value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            return Err(TranslateError::new(
                format!("{field}.type"),
                format!("content of type '{kind}' cannot be expressed in the Gemini API"),
            ));
        }
        Part::ToolResult { .. } => {
            return Err(TranslateError::new(
                field,
                "a tool result cannot be expressed in this position of a Gemini request",
            ))
        }
    };
    Ok(Some(part))
}

/// A tool result's content -> Gemini's `functionResponse.response` object: a JSON object
/// text is sent as the object itself, other text under `output` (or `error` when the tool
/// failed), as the Gemini API documents.
pub(crate) fn response_object(
    field: &str,
    content: &Content,
    is_error: Option<bool>,
) -> Result<Value, TranslateError> {
    if let Content::Parts(parts) = content {
        if let Some(j) = parts.iter().position(|p| !matches!(p, Part::Text { .. })) {
            return Err(TranslateError::new(
                format!("{field}.content[{j}]"),
                "only text tool results can be expressed in the Gemini API",
            ));
        }
    }
    let text = content.text();
    let parsed = serde_json::from_str::<Value>(&text).ok();
    Ok(match (is_error == Some(true), parsed) {
        (true, _) => json!({ "error": text }),
        (false, Some(Value::Object(m))) => Value::Object(m),
        (false, _) => json!({ "output": text }),
    })
}

/// Gemini's `functionResponse.response` -> IR tool-result content and error flag (the
/// inverse of [`response_object`]).
pub(crate) fn response_to_content(response: Value) -> (Content, Option<bool>) {
    let single = |m: &Map<String, Value>, key: &str| match m.get(key) {
        Some(Value::String(s)) if m.len() == 1 => Some(s.clone()),
        _ => None,
    };
    match &response {
        Value::Object(m) => {
            if let Some(s) = single(m, "output") {
                (Content::Text(s), None)
            } else if let Some(s) = single(m, "error") {
                (Content::Text(s), Some(true))
            } else {
                (Content::Text(response.to_string()), None)
            }
        }
        Value::Null => (Content::Text(String::new()), None),
        other => (Content::Text(other.to_string()), None),
    }
}
