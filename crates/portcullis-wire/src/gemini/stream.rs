//! Gemini `streamGenerateContent?alt=sse` streams <-> IR stream events, one chunk at a
//! time. Each SSE `data:` payload is a whole `GenerateContentResponse`; there is no
//! `[DONE]`: the chunk carrying `finishReason` (with the final `usageMetadata`) ends it.

use super::error::{error_from_value, error_value};
use super::parts::call_id;
use super::response::{answer_parts, stop_from_ir, stop_to_ir, usage_from_ir, usage_to_ir};
use super::types as gm;
use crate::ir::{
    ErrorKind, Extra, Format, Part, StopKind, StopReason, StreamEvent, TranslateError, Usage,
};
use serde_json::Value;

/// Turns Gemini stream chunks (the `data:` payloads) into IR events.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    started: bool,
    finished: bool,
    next_call: usize,
    usage: Option<Usage>,
}

impl ChunkDecoder {
    /// A decoder for one stream.
    pub fn new() -> ChunkDecoder {
        ChunkDecoder::default()
    }

    /// True once the final chunk (or an error) has been decoded.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Decodes one `data:` payload into zero or more events. The first chunk yields
    /// `MessageStart`; text and thought parts yield deltas; each `functionCall` (sent whole)
    /// yields `ToolCallStart` and one `ToolArgsDelta`; the chunk with `finishReason` (or a
    /// `promptFeedback.blockReason`) yields `Stop`, `Usage` and `Done`. Chunks after that
    /// are ignored.
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<StreamEvent>, TranslateError> {
        if self.finished {
            return Ok(Vec::new());
        }
        let value: Value =
            serde_json::from_slice(data).map_err(|e| TranslateError::malformed(&e))?;
        if let Some(err) = error_from_value(&value) {
            self.finished = true;
            return Ok(vec![StreamEvent::Error {
                kind: err.kind,
                message: err.message,
            }]);
        }
        let chunk: gm::Response =
            serde_json::from_value(value).map_err(|e| TranslateError::malformed(&e))?;
        let mut events = Vec::new();
        if !self.started {
            self.started = true;
            events.push(StreamEvent::MessageStart {
                id: chunk.response_id.clone().unwrap_or_default(),
                model: chunk.model_version.clone().unwrap_or_default(),
                usage: None,
            });
        }
        if let Some(u) = &chunk.usage_metadata {
            self.usage = Some(usage_to_ir(u));
        }
        let mut stop = None;
        if let Some(c) = chunk.candidates.into_iter().next() {
            for p in c.content.map(|c| c.parts).unwrap_or_default() {
                self.part(p, &mut events);
            }
            stop = c.finish_reason.map(|r| stop_to_ir(&r, self.next_call > 0));
        }
        if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
            stop = Some(StopReason::new(StopKind::ContentFilter, reason));
        }
        if let Some(stop) = stop {
            self.finished = true;
            events.push(StreamEvent::Stop(stop));
            if let Some(u) = self.usage.take() {
                events.push(StreamEvent::Usage(u));
            }
            events.push(StreamEvent::Done);
        }
        Ok(events)
    }

    fn part(&mut self, p: gm::Part, events: &mut Vec<StreamEvent>) {
        if let Some(fc) = p.function_call {
            let index = self.next_call;
            self.next_call += 1;
            events.push(StreamEvent::ToolCallStart {
                index,
                id: fc.id.unwrap_or_else(|| call_id(index)),
                name: fc.name,
            });
            let args = fc.args.unwrap_or_else(|| Value::Object(Extra::new()));
            events.push(StreamEvent::ToolArgsDelta {
                index,
                fragment: args.to_string(),
            });
        } else if p.thought == Some(true) {
            if let Some(text) = p.text.filter(|t| !t.is_empty()) {
                events.push(StreamEvent::ThinkingDelta { text });
            }
            if let Some(signature) = p.thought_signature {
                events.push(StreamEvent::ThinkingSignature { signature });
            }
        } else if let Some(text) = p.text.filter(|t| !t.is_empty()) {
            events.push(StreamEvent::TextDelta { text });
        }
        // Signatures on answer parts, inline media and other part kinds have no stream
        // event; they only matter to a same-format (non-streamed) round trip.
    }

    /// Called when the upstream body ended: a stream that never sent its final chunk was
    /// truncated, which must not look like a success.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        vec![StreamEvent::Error {
            kind: ErrorKind::Api,
            message: "upstream stream ended before its final chunk".into(),
        }]
    }
}

/// A tool call whose arguments are still arriving.
#[derive(Debug)]
struct PendingCall {
    index: usize,
    id: String,
    name: String,
    arguments: String,
}

/// Turns IR events into Gemini chunks. Text and thoughts are sent as they come; a tool
/// call is sent whole (as Gemini does) once its arguments are complete, i.e. when the next
/// non-argument event arrives; the final chunk carries `finishReason` and `usageMetadata`.
#[derive(Debug)]
pub struct ChunkEncoder {
    source: Format,
    id: String,
    model: String,
    pending: Vec<PendingCall>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
    finished: bool,
}

impl ChunkEncoder {
    /// An encoder; `source` is the upstream format the events were decoded from.
    pub fn new(source: Format) -> ChunkEncoder {
        ChunkEncoder {
            source,
            id: String::new(),
            model: String::new(),
            pending: Vec::new(),
            stop: None,
            usage: None,
            finished: false,
        }
    }

    fn chunk(&self, parts: Vec<gm::Part>, finish: Option<String>, usage: Option<&Usage>) -> Value {
        let candidate = gm::Candidate {
            content: (!parts.is_empty()).then(|| gm::Content {
                role: Some("model".into()),
                parts,
                extra: Extra::new(),
            }),
            finish_reason: finish,
            index: Some(0),
            extra: Extra::new(),
        };
        let r = gm::Response {
            candidates: vec![candidate],
            prompt_feedback: None,
            usage_metadata: usage.map(|u| usage_from_ir(self.source, u)),
            model_version: Some(self.model.clone()).filter(|m| !m.is_empty()),
            response_id: Some(self.id.clone()).filter(|i| !i.is_empty()),
            extra: Extra::new(),
        };
        serde_json::to_value(r).unwrap_or(Value::Null)
    }

    fn flush(&mut self, out: &mut Vec<Value>) {
        if self.pending.is_empty() {
            return;
        }
        let calls: Vec<Part> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|c| Part::ToolCall {
                id: c.id,
                name: c.name,
                arguments: c.arguments,
                extra: Extra::new(),
            })
            .collect();
        out.push(self.chunk(answer_parts(self.source, &calls), None, None));
    }

    /// Encodes one event as zero or more chunk payloads (JSON values).
    pub fn encode(&mut self, event: &StreamEvent) -> Vec<Value> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        if !matches!(event, StreamEvent::ToolArgsDelta { .. }) {
            self.flush(&mut out);
        }
        let text_part = |text: &str, thought: Option<bool>| gm::Part {
            text: Some(text.to_string()),
            thought,
            ..gm::Part::default()
        };
        match event {
            StreamEvent::MessageStart { id, model, .. } => {
                self.id = id.clone();
                self.model = model.clone();
            }
            StreamEvent::TextDelta { text } => {
                out.push(self.chunk(vec![text_part(text, None)], None, None))
            }
            StreamEvent::ThinkingDelta { text } => {
                out.push(self.chunk(vec![text_part(text, Some(true))], None, None))
            }
            StreamEvent::ThinkingSignature { signature } => {
                let mut p = text_part("", Some(true));
                p.thought_signature = Some(signature.clone());
                out.push(self.chunk(vec![p], None, None));
            }
            StreamEvent::RedactedThinking { .. } => {}
            StreamEvent::ToolCallStart { index, id, name } => self.pending.push(PendingCall {
                index: *index,
                id: id.clone(),
                name: name.clone(),
                arguments: String::new(),
            }),
            StreamEvent::ToolArgsDelta { index, fragment } => {
                if let Some(c) = self.pending.iter_mut().find(|c| c.index == *index) {
                    c.arguments.push_str(fragment);
                }
            }
            StreamEvent::Stop(stop) => self.stop = Some(stop.clone()),
            StreamEvent::Usage(u) => self.usage = Some(u.clone()),
            StreamEvent::Done => {
                self.finished = true;
                let stop = self.stop.as_ref().map(stop_from_ir).unwrap_or("STOP");
                out.push(self.chunk(Vec::new(), Some(stop.into()), self.usage.as_ref()));
            }
            StreamEvent::Error { kind, message } => {
                self.finished = true;
                out.push(error_value(*kind, message));
            }
        }
        out
    }

    /// Encodes one event as SSE bytes (`data: {...}\r\n\r\n` per chunk, as Gemini frames them).
    pub fn encode_sse(&mut self, event: &StreamEvent) -> Vec<u8> {
        let mut bytes = Vec::new();
        for chunk in self.encode(event) {
            bytes.extend_from_slice(format!("data: {chunk}\r\n\r\n").as_bytes());
        }
        bytes
    }
}
