//! ConverseStream events -> IR stream events. The binary event-stream framing is decoded by
//! the provider; this decoder takes each message's `:event-type` and JSON payload.

use super::error::parse_exception;
use super::response::{stop_to_ir, usage_to_ir};
use super::types as br;
use crate::ir::{ErrorKind, StreamEvent, TranslateError};
use serde_json::Value;

/// What a content block of the upstream stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Tool(usize),
    Other,
}

/// Turns ConverseStream events into IR events, one event at a time.
///
/// Bedrock sends `messageStart`, per block an optional `contentBlockStart` (tool calls),
/// `contentBlockDelta`s and `contentBlockStop`, then `messageStop` (stop reason) and
/// `metadata` (usage, metrics). `Done` is emitted after `metadata`, or by
/// [`StreamDecoder::finish`] when the body ends after `messageStop` without one.
#[derive(Debug)]
pub struct StreamDecoder {
    id: String,
    model: String,
    blocks: Vec<(usize, BlockKind)>,
    next_tool: usize,
    stopped: bool,
    done: bool,
}

impl StreamDecoder {
    /// A decoder for one stream. ConverseStream names neither the model nor an id, so the
    /// caller passes the model it called and an id (e.g. the `x-amzn-RequestId` header).
    pub fn new(model: &str, id: &str) -> StreamDecoder {
        StreamDecoder {
            id: id.to_string(),
            model: model.to_string(),
            blocks: Vec::new(),
            next_tool: 0,
            stopped: false,
            done: false,
        }
    }

    fn kind_of(&self, index: usize) -> BlockKind {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, k)| *k)
            .unwrap_or(BlockKind::Other)
    }

    /// Decodes one event (`:message-type: event`) into zero or more IR events. Unknown
    /// event types carry nothing to translate and yield none.
    pub fn decode(
        &mut self,
        event_type: &str,
        payload: &[u8],
    ) -> Result<Vec<StreamEvent>, TranslateError> {
        let v: Value =
            serde_json::from_slice(payload).map_err(|e| TranslateError::malformed(&e))?;
        let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let index = v
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let mut out = Vec::new();
        if self.done {
            return Ok(out);
        }
        match event_type {
            "messageStart" => out.push(StreamEvent::MessageStart {
                id: self.id.clone(),
                model: self.model.clone(),
                usage: None,
            }),
            "contentBlockStart" => {
                let kind = match v.pointer("/start/toolUse") {
                    Some(tool) => {
                        let ordinal = self.next_tool;
                        self.next_tool += 1;
                        out.push(StreamEvent::ToolCallStart {
                            index: ordinal,
                            id: str_at(tool, "/toolUseId").unwrap_or_default(),
                            name: str_at(tool, "/name").unwrap_or_default(),
                        });
                        BlockKind::Tool(ordinal)
                    }
                    None => BlockKind::Other,
                };
                self.blocks.push((index, kind));
            }
            "contentBlockDelta" => {
                let delta = v.get("delta").unwrap_or(&Value::Null);
                if let Some(text) = str_at(delta, "/text") {
                    out.push(StreamEvent::TextDelta { text });
                } else if let Some(fragment) = str_at(delta, "/toolUse/input") {
                    if let (BlockKind::Tool(ordinal), false) =
                        (self.kind_of(index), fragment.is_empty())
                    {
                        out.push(StreamEvent::ToolArgsDelta {
                            index: ordinal,
                            fragment,
                        });
                    }
                } else if let Some(r) = delta.get("reasoningContent") {
                    if let Some(text) = str_at(r, "/text") {
                        out.push(StreamEvent::ThinkingDelta { text });
                    } else if let Some(signature) = str_at(r, "/signature") {
                        out.push(StreamEvent::ThinkingSignature { signature });
                    } else if let Some(data) = str_at(r, "/redactedContent") {
                        out.push(StreamEvent::RedactedThinking { data });
                    }
                }
            }
            "messageStop" => {
                self.stopped = true;
                let mut stop = stop_to_ir(&str_at(&v, "/stopReason").unwrap_or_default());
                stop.stop_sequence = str_at(&v, "/additionalModelResponseFields/stop_sequence");
                out.push(StreamEvent::Stop(stop));
            }
            "metadata" => {
                if let Some(u) = v.get("usage") {
                    let usage: br::Usage = serde_json::from_value(u.clone())
                        .map_err(|e| TranslateError::malformed(&e))?;
                    out.push(StreamEvent::Usage(usage_to_ir(&usage)));
                }
                self.done = true;
                out.push(StreamEvent::Done);
            }
            // contentBlockStop, and event types added later, carry nothing to translate.
            _ => {}
        }
        Ok(out)
    }

    /// Decodes an exception message (`:message-type: exception`) into a final error event.
    pub fn exception(&mut self, exception_type: &str, payload: &[u8]) -> Vec<StreamEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let e = parse_exception(exception_type, payload);
        vec![StreamEvent::Error {
            kind: e.kind,
            message: e.message,
        }]
    }

    /// Call when the upstream body ends: yields `Done` if the message stopped but no
    /// `metadata` followed, or an error if the stream was cut before `messageStop`, so a
    /// truncated stream never looks successful.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        if self.stopped {
            vec![StreamEvent::Done]
        } else {
            vec![StreamEvent::Error {
                kind: ErrorKind::Api,
                message: "upstream stream ended before the message was complete".into(),
            }]
        }
    }
}
