//! OpenAI `chat.completion.chunk` streams <-> IR stream events, one chunk at a time.

use super::response::{stop_from_ir, stop_to_ir, usage_from_ir, usage_to_ir};
use super::types as oa;
use crate::ir::{ErrorKind, Extra, Format, StreamEvent, TranslateError};
use serde_json::{json, Value};

/// Turns OpenAI stream chunks (the `data:` payloads) into IR events.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    started: bool,
}

impl ChunkDecoder {
    /// A decoder for one stream.
    pub fn new() -> ChunkDecoder {
        ChunkDecoder::default()
    }

    /// Decodes one `data:` payload (`[DONE]` included) into zero or more events.
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<StreamEvent>, TranslateError> {
        if data.trim_ascii() == b"[DONE]" {
            return Ok(vec![StreamEvent::Done]);
        }
        let value: Value =
            serde_json::from_slice(data).map_err(|e| TranslateError::malformed(&e))?;
        if let Some(err) = value.get("error") {
            let kind = err
                .get("type")
                .and_then(Value::as_str)
                .map(ErrorKind::from_type)
                .unwrap_or(ErrorKind::Api);
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error")
                .to_string();
            return Ok(vec![StreamEvent::Error { kind, message }]);
        }
        let chunk: oa::Chunk =
            serde_json::from_value(value).map_err(|e| TranslateError::malformed(&e))?;
        let mut events = Vec::new();
        if !self.started {
            self.started = true;
            events.push(StreamEvent::MessageStart {
                id: chunk.id.clone(),
                model: chunk.model.clone(),
                usage: None,
            });
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let d = choice.delta;
            if let Some(r) = d.reasoning_content.filter(|s| !s.is_empty()) {
                events.push(StreamEvent::ThinkingDelta { text: r });
            }
            if let Some(t) = d.content.filter(|s| !s.is_empty()) {
                events.push(StreamEvent::TextDelta { text: t });
            }
            for call in d.tool_calls.unwrap_or_default() {
                let f = call.function.unwrap_or_default();
                if let Some(id) = call.id {
                    events.push(StreamEvent::ToolCallStart {
                        index: call.index,
                        id,
                        name: f.name.unwrap_or_default(),
                    });
                }
                if let Some(a) = f.arguments.filter(|a| !a.is_empty()) {
                    events.push(StreamEvent::ToolArgsDelta {
                        index: call.index,
                        fragment: a,
                    });
                }
            }
            if let Some(r) = choice.finish_reason {
                events.push(StreamEvent::Stop(stop_to_ir(&r)));
            }
        }
        if let Some(u) = chunk.usage {
            events.push(StreamEvent::Usage(usage_to_ir(u)));
        }
        Ok(events)
    }
}

/// Turns IR events into OpenAI chunks. Stateless apart from the ids every chunk repeats.
#[derive(Debug)]
pub struct ChunkEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    source: Format,
}

impl ChunkEncoder {
    /// An encoder; `include_usage` mirrors the client's `stream_options.include_usage`,
    /// `created` is the unix time stamped on every chunk, `source` the upstream format.
    pub fn new(source: Format, created: u64, include_usage: bool) -> ChunkEncoder {
        ChunkEncoder {
            id: String::new(),
            model: String::new(),
            created,
            include_usage,
            source,
        }
    }

    fn chunk(&self, delta: oa::Delta, finish_reason: Option<String>) -> Value {
        let c = oa::Chunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![oa::ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                extra: Extra::new(),
            }],
            usage: None,
            extra: Extra::new(),
        };
        serde_json::to_value(c).unwrap_or(Value::Null)
    }

    fn tool_delta(&self, call: oa::ToolCallDelta) -> Value {
        self.chunk(
            oa::Delta {
                tool_calls: Some(vec![call]),
                ..oa::Delta::default()
            },
            None,
        )
    }

    /// Encodes one event as zero or more chunk payloads (JSON values; `Done` yields none —
    /// see [`ChunkEncoder::encode_sse`] for the `[DONE]` line).
    pub fn encode(&mut self, event: &StreamEvent) -> Vec<Value> {
        match event {
            StreamEvent::MessageStart { id, model, .. } => {
                self.id = id.clone();
                self.model = model.clone();
                vec![self.chunk(
                    oa::Delta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                        ..oa::Delta::default()
                    },
                    None,
                )]
            }
            StreamEvent::TextDelta { text } => vec![self.chunk(
                oa::Delta {
                    content: Some(text.clone()),
                    ..oa::Delta::default()
                },
                None,
            )],
            StreamEvent::ThinkingDelta { text } => vec![self.chunk(
                oa::Delta {
                    reasoning_content: Some(text.clone()),
                    ..oa::Delta::default()
                },
                None,
            )],
            StreamEvent::ToolCallStart { index, id, name } => {
                vec![self.tool_delta(oa::ToolCallDelta {
                    index: *index,
                    id: Some(id.clone()),
                    kind: Some("function".into()),
                    function: Some(oa::FunctionDelta {
                        name: Some(name.clone()),
                        arguments: Some(String::new()),
                    }),
                })]
            }
            StreamEvent::ToolArgsDelta { index, fragment } => {
                vec![self.tool_delta(oa::ToolCallDelta {
                    index: *index,
                    id: None,
                    kind: None,
                    function: Some(oa::FunctionDelta {
                        name: None,
                        arguments: Some(fragment.clone()),
                    }),
                })]
            }
            StreamEvent::Stop(stop) => {
                vec![self.chunk(oa::Delta::default(), Some(stop_from_ir(stop).into()))]
            }
            StreamEvent::Usage(u) if self.include_usage => {
                let c = oa::Chunk {
                    id: self.id.clone(),
                    object: "chat.completion.chunk".into(),
                    created: self.created,
                    model: self.model.clone(),
                    choices: Vec::new(),
                    usage: Some(usage_from_ir(self.source, u)),
                    extra: Extra::new(),
                };
                vec![serde_json::to_value(c).unwrap_or(Value::Null)]
            }
            StreamEvent::Error { kind, message } => vec![json!({
                "error": {"message": message, "type": kind.openai_type(), "param": null, "code": null}
            })],
            StreamEvent::Usage(_)
            | StreamEvent::ThinkingSignature { .. }
            | StreamEvent::RedactedThinking { .. }
            | StreamEvent::Done => Vec::new(),
        }
    }

    /// Encodes one event as SSE bytes (`data: {...}\n\n` lines, `data: [DONE]\n\n` at the end).
    pub fn encode_sse(&mut self, event: &StreamEvent) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in self.encode(event) {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(chunk.to_string().as_bytes());
            out.extend_from_slice(b"\n\n");
        }
        if matches!(event, StreamEvent::Done) {
            out.extend_from_slice(b"data: [DONE]\n\n");
        }
        out
    }
}
