//! Anthropic Messages SSE streams <-> IR stream events, one event at a time.

use super::response::{error_value, stop_from_ir, stop_to_ir, usage_from_ir, usage_to_ir};
use super::types as an;
use crate::ir::{ErrorKind, Format, StopReason, StreamEvent, TranslateError, Usage};
use serde_json::{json, Value};

/// What a content block of the upstream stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    Tool(usize),
    Other,
}

/// Turns Anthropic stream events (the `data:` payloads) into IR events.
#[derive(Debug, Default)]
pub struct EventDecoder {
    blocks: Vec<(usize, BlockKind)>,
    next_tool: usize,
    usage: an::Usage,
}

impl EventDecoder {
    /// A decoder for one stream.
    pub fn new() -> EventDecoder {
        EventDecoder::default()
    }

    fn kind_of(&self, index: usize) -> BlockKind {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, k)| *k)
            .unwrap_or(BlockKind::Other)
    }

    /// Decodes one event's `data:` JSON into zero or more IR events.
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<StreamEvent>, TranslateError> {
        let v: Value = serde_json::from_slice(data).map_err(|e| TranslateError::malformed(&e))?;
        let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        let mut out = Vec::new();
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let usage = v.pointer("/message/usage").cloned().unwrap_or(json!({}));
                self.usage =
                    serde_json::from_value(usage).map_err(|e| TranslateError::malformed(&e))?;
                out.push(StreamEvent::MessageStart {
                    id: str_at(&v, "/message/id").unwrap_or_default(),
                    model: str_at(&v, "/message/model").unwrap_or_default(),
                    usage: Some(usage_to_ir(&self.usage)),
                });
            }
            "content_block_start" => {
                let block = v.get("content_block").cloned().unwrap_or(Value::Null);
                let kind = match block.get("type").and_then(Value::as_str).unwrap_or("") {
                    "text" => {
                        let text = str_at(&block, "/text").unwrap_or_default();
                        if !text.is_empty() {
                            out.push(StreamEvent::TextDelta { text });
                        }
                        BlockKind::Text
                    }
                    "thinking" => {
                        let text = str_at(&block, "/thinking").unwrap_or_default();
                        if !text.is_empty() {
                            out.push(StreamEvent::ThinkingDelta { text });
                        }
                        BlockKind::Thinking
                    }
                    "redacted_thinking" => {
                        out.push(StreamEvent::RedactedThinking {
                            data: str_at(&block, "/data").unwrap_or_default(),
                        });
                        BlockKind::Other
                    }
                    "tool_use" => {
                        let ordinal = self.next_tool;
                        self.next_tool += 1;
                        out.push(StreamEvent::ToolCallStart {
                            index: ordinal,
                            id: str_at(&block, "/id").unwrap_or_default(),
                            name: str_at(&block, "/name").unwrap_or_default(),
                        });
                        match block.get("input") {
                            Some(Value::Object(m)) if !m.is_empty() => {
                                out.push(StreamEvent::ToolArgsDelta {
                                    index: ordinal,
                                    fragment: Value::Object(m.clone()).to_string(),
                                })
                            }
                            _ => {}
                        }
                        BlockKind::Tool(ordinal)
                    }
                    // Server tool blocks (web search, ...) have no client-side equivalent.
                    _ => BlockKind::Other,
                };
                self.blocks.push((index, kind));
            }
            "content_block_delta" => {
                let delta = v.get("delta").cloned().unwrap_or(Value::Null);
                match (
                    delta.get("type").and_then(Value::as_str),
                    self.kind_of(index),
                ) {
                    (Some("text_delta"), _) => out.push(StreamEvent::TextDelta {
                        text: str_at(&delta, "/text").unwrap_or_default(),
                    }),
                    (Some("thinking_delta"), _) => out.push(StreamEvent::ThinkingDelta {
                        text: str_at(&delta, "/thinking").unwrap_or_default(),
                    }),
                    (Some("signature_delta"), _) => out.push(StreamEvent::ThinkingSignature {
                        signature: str_at(&delta, "/signature").unwrap_or_default(),
                    }),
                    (Some("input_json_delta"), BlockKind::Tool(ordinal)) => {
                        let fragment = str_at(&delta, "/partial_json").unwrap_or_default();
                        if !fragment.is_empty() {
                            out.push(StreamEvent::ToolArgsDelta {
                                index: ordinal,
                                fragment,
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = str_at(&v, "/delta/stop_reason") {
                    out.push(StreamEvent::Stop(stop_to_ir(
                        &r,
                        str_at(&v, "/delta/stop_sequence"),
                    )));
                }
                if let Some(Value::Object(u)) = v.get("usage") {
                    for (k, val) in u {
                        match (k.as_str(), val.as_u64()) {
                            ("input_tokens", Some(n)) => self.usage.input_tokens = n,
                            ("output_tokens", Some(n)) => self.usage.output_tokens = n,
                            ("cache_read_input_tokens", Some(n)) => {
                                self.usage.cache_read_input_tokens = Some(n)
                            }
                            ("cache_creation_input_tokens", Some(n)) => {
                                self.usage.cache_creation_input_tokens = Some(n)
                            }
                            (_, None) if val.is_null() => {}
                            _ => {
                                self.usage.extra.insert(k.clone(), val.clone());
                            }
                        }
                    }
                    out.push(StreamEvent::Usage(usage_to_ir(&self.usage)));
                }
            }
            "message_stop" => out.push(StreamEvent::Done),
            "error" => out.push(StreamEvent::Error {
                kind: ErrorKind::from_type(&str_at(&v, "/error/type").unwrap_or_default()),
                message: str_at(&v, "/error/message").unwrap_or_else(|| "upstream error".into()),
            }),
            // ping, content_block_stop, and event types added later carry nothing to translate.
            _ => {}
        }
        Ok(out)
    }
}

/// The block the encoder has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool(usize),
}

/// Turns IR events into the exact Anthropic event sequence: `message_start`, then
/// per block (the first followed by `ping`) `content_block_start`/`content_block_delta`*/`content_block_stop`, then
/// `message_delta` (stop reason and usage) and `message_stop`. Blocks are opened and
/// closed as text, thinking and tool calls begin; nothing is held back.
#[derive(Debug)]
pub struct EventEncoder {
    source: Format,
    started: bool,
    finished: bool,
    open: Option<(usize, Open)>,
    next_block: usize,
    stop: Option<StopReason>,
    usage: Usage,
    pinged: bool,
}

/// One Anthropic SSE event: its `event:` name and `data:` JSON.
pub type SseEvent = (&'static str, Value);

impl EventEncoder {
    /// An encoder; `source` is the upstream format the events were decoded from.
    pub fn new(source: Format) -> EventEncoder {
        EventEncoder {
            source,
            started: false,
            finished: false,
            open: None,
            next_block: 0,
            stop: None,
            usage: Usage::default(),
            pinged: false,
        }
    }

    fn start(&mut self, id: &str, model: &str, usage: Option<&Usage>, out: &mut Vec<SseEvent>) {
        self.started = true;
        if let Some(u) = usage {
            self.usage = u.clone();
        }
        let mut u = usage_from_ir(self.source, &self.usage);
        u.output_tokens = u.output_tokens.max(1);
        out.push((
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": u}}),
        ));
    }

    fn close(&mut self, out: &mut Vec<SseEvent>) {
        if let Some((index, _)) = self.open.take() {
            out.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    /// Makes sure a block of `kind` is open, opening it with `block` if not; returns its index.
    fn ensure(&mut self, kind: Open, block: Value, out: &mut Vec<SseEvent>) -> usize {
        if let Some((index, open)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        // Anthropic's documented order: message_start, content_block_start, ping, deltas.
        if !self.pinged {
            self.pinged = true;
            out.push(("ping", json!({"type": "ping"})));
        }
        index
    }

    fn delta(index: usize, delta: Value) -> SseEvent {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    /// Encodes one IR event as zero or more Anthropic events.
    pub fn encode(&mut self, event: &StreamEvent) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        if !self.started && !matches!(event, StreamEvent::Error { .. }) {
            match event {
                StreamEvent::MessageStart { id, model, usage } => {
                    self.start(id, model, usage.as_ref(), &mut out);
                    return out;
                }
                _ => self.start("", "", None, &mut out),
            }
        }
        match event {
            StreamEvent::MessageStart { .. } => {}
            StreamEvent::TextDelta { text } => {
                let i = self.ensure(Open::Text, json!({"type": "text", "text": ""}), &mut out);
                out.push(Self::delta(i, json!({"type": "text_delta", "text": text})));
            }
            StreamEvent::ThinkingDelta { text } => {
                let block = json!({"type": "thinking", "thinking": ""});
                let i = self.ensure(Open::Thinking, block, &mut out);
                out.push(Self::delta(
                    i,
                    json!({"type": "thinking_delta", "thinking": text}),
                ));
            }
            StreamEvent::ThinkingSignature { signature } => {
                let block = json!({"type": "thinking", "thinking": ""});
                let i = self.ensure(Open::Thinking, block, &mut out);
                let d = json!({"type": "signature_delta", "signature": signature});
                out.push(Self::delta(i, d));
            }
            StreamEvent::RedactedThinking { data } => {
                self.close(&mut out);
                let block = json!({"type": "redacted_thinking", "data": data});
                self.ensure(Open::Thinking, block, &mut out);
                self.close(&mut out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.close(&mut out);
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                self.ensure(Open::Tool(*index), block, &mut out);
            }
            StreamEvent::ToolArgsDelta { index, fragment } => match self.open {
                Some((i, Open::Tool(t))) if t == *index => out.push(Self::delta(
                    i,
                    json!({"type": "input_json_delta", "partial_json": fragment}),
                )),
                _ => {
                    // Anthropic blocks cannot interleave: arguments for a tool call whose
                    // block is closed cannot be expressed, so the stream fails visibly.
                    self.finished = true;
                    let message = "upstream interleaved tool call arguments";
                    out.push(("error", error_value(ErrorKind::Api, message)));
                }
            },
            StreamEvent::Stop(reason) => {
                self.close(&mut out);
                self.stop = Some(reason.clone());
            }
            StreamEvent::Usage(u) => self.usage = u.clone(),
            StreamEvent::Done => {
                self.close(&mut out);
                self.finished = true;
                let stop_reason = self.stop.as_ref().map(stop_from_ir).unwrap_or("end_turn");
                let stop_sequence = self.stop.as_ref().and_then(|s| s.stop_sequence.clone());
                let usage = usage_from_ir(self.source, &self.usage);
                out.push((
                    "message_delta",
                    json!({"type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                        "usage": usage}),
                ));
                out.push(("message_stop", json!({"type": "message_stop"})));
            }
            StreamEvent::Error { kind, message } => {
                self.finished = true;
                out.push(("error", error_value(*kind, message)));
            }
        }
        out
    }

    /// Encodes one IR event as SSE bytes (`event: <name>\ndata: <json>\n\n` per event).
    pub fn encode_sse(&mut self, event: &StreamEvent) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (name, data) in self.encode(event) {
            bytes.extend_from_slice(format!("event: {name}\ndata: {data}\n\n").as_bytes());
        }
        bytes
    }
}
