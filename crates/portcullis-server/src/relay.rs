//! Same-format stream relay: upstream SSE events are forwarded untouched, event by event as
//! they arrive, while usage and completion are read from them. The usage chunk the gateway
//! asked an OpenAI upstream for on the client's behalf is hidden again; an upstream failure
//! mid-stream ends the stream with an error event in the client's format, never with a
//! silent truncation that looks successful.

use crate::access::AccessNote;
use crate::error::GatewayError;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use portcullis_providers::{Provider, UpstreamError};
use portcullis_wire::openai::Usage;
use portcullis_wire::sse::{event_data, EventSplitter};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;

/// Largest single SSE event accepted from an upstream.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Which format is being relayed, and what to look for in it.
#[derive(Debug, Clone, Copy)]
pub enum Sniffer {
    /// OpenAI chat chunks; `hide_usage_chunk` when the client did not ask for usage.
    OpenAiChat {
        /// Drop the trailing `choices: []` usage chunk.
        hide_usage_chunk: bool,
    },
    /// Anthropic Messages events.
    Anthropic,
    /// OpenAI Responses API events.
    Responses,
}

struct Relay {
    upstream: BoxStream<'static, Result<Bytes, UpstreamError>>,
    splitter: EventSplitter,
    sniffer: Sniffer,
    usage: Usage,
    saw_end: bool,
    finished: bool,
    note: Arc<AccessNote>,
    provider: Arc<Provider>,
}

#[derive(Deserialize)]
struct UsageChunk {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    choices: Option<Vec<IgnoredAny>>,
}

/// Wraps an upstream stream of the client's own format for the client.
pub fn passthrough(
    upstream: BoxStream<'static, Result<Bytes, UpstreamError>>,
    sniffer: Sniffer,
    note: Arc<AccessNote>,
    provider: Arc<Provider>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let relay = Relay {
        upstream,
        splitter: EventSplitter::new(MAX_EVENT_BYTES),
        sniffer,
        usage: Usage::default(),
        saw_end: false,
        finished: false,
        note,
        provider,
    };
    futures_util::stream::unfold(relay, |mut relay| async move {
        if relay.finished {
            return None;
        }
        loop {
            match relay.upstream.next().await {
                Some(Ok(chunk)) => match relay.splitter.push(&chunk) {
                    Ok(events) => {
                        let out = relay.filter(events);
                        if !out.is_empty() {
                            return Some((Ok(out), relay));
                        }
                    }
                    Err(too_large) => {
                        let e = UpstreamError::Protocol {
                            provider: relay.provider.name.clone(),
                            detail: too_large.to_string(),
                        };
                        return Some((Ok(relay.fail(e)), relay));
                    }
                },
                Some(Err(e)) => return Some((Ok(relay.fail(e)), relay)),
                None => {
                    relay.finished = true;
                    if relay.saw_end {
                        relay.note.stream_outcome("complete");
                        return None;
                    }
                    let e = UpstreamError::Protocol {
                        provider: relay.provider.name.clone(),
                        detail: "stream ended before its end marker".into(),
                    };
                    return Some((Ok(relay.fail(e)), relay));
                }
            }
        }
    })
}

impl Relay {
    /// Keeps the events to forward, noting usage on the way.
    fn filter(&mut self, events: Vec<Bytes>) -> Bytes {
        if events.len() == 1 && !self.inspect(&events[0]) {
            return events.into_iter().next().unwrap_or_default();
        }
        let mut out = BytesMut::new();
        for event in events {
            if !self.inspect(&event) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// Looks at one event; returns true when it must be hidden from the client.
    fn inspect(&mut self, event: &[u8]) -> bool {
        let Some(data) = event_data(event) else {
            return false;
        };
        match self.sniffer {
            Sniffer::OpenAiChat { hide_usage_chunk } => {
                if data == b"[DONE]" {
                    self.saw_end = true;
                    return false;
                }
                if !contains(&data, b"\"usage\"") || contains(&data, b"\"usage\":null") {
                    return false;
                }
                match serde_json::from_slice::<UsageChunk>(&data) {
                    Ok(chunk) => {
                        if let Some(usage) = chunk.usage {
                            self.note.usage(usage);
                        }
                        hide_usage_chunk && chunk.choices.is_some_and(|c| c.is_empty())
                    }
                    Err(_) => false,
                }
            }
            Sniffer::Anthropic => {
                // Only message_* and error events carry usage or the end; the many
                // content_block_delta events are forwarded without being parsed.
                if !contains(&data, b"\"message_") && !contains(&data, b"\"error\"") {
                    return false;
                }
                let Ok(v) = serde_json::from_slice::<Value>(&data) else {
                    return false;
                };
                match v["type"].as_str() {
                    Some("message_start") => {
                        let u = &v["message"]["usage"];
                        self.usage.prompt_tokens = [
                            "input_tokens",
                            "cache_read_input_tokens",
                            "cache_creation_input_tokens",
                        ]
                        .iter()
                        .filter_map(|f| u[f].as_u64())
                        .sum();
                        self.usage.completion_tokens = u["output_tokens"].as_u64().unwrap_or(0);
                    }
                    Some("message_delta") => {
                        if let Some(out) = v["usage"]["output_tokens"].as_u64() {
                            self.usage.completion_tokens = out;
                        }
                    }
                    Some("message_stop") | Some("error") => self.saw_end = true,
                    _ => return false,
                }
                self.usage.total_tokens = self.usage.prompt_tokens + self.usage.completion_tokens;
                self.note.usage(self.usage);
                false
            }
            Sniffer::Responses => {
                if !contains(&data, b"\"response.") && !contains(&data, b"\"error\"") {
                    return false;
                }
                let Ok(v) = serde_json::from_slice::<Value>(&data) else {
                    return false;
                };
                let kind = v["type"].as_str().unwrap_or_default();
                if matches!(
                    kind,
                    "response.completed" | "response.incomplete" | "response.failed" | "error"
                ) {
                    self.saw_end = true;
                }
                let u = &v["response"]["usage"];
                if let (Some(i), Some(o)) =
                    (u["input_tokens"].as_u64(), u["output_tokens"].as_u64())
                {
                    self.note.usage(Usage {
                        prompt_tokens: i,
                        completion_tokens: o,
                        total_tokens: i + o,
                    });
                }
                false
            }
        }
    }

    /// Ends the stream with an error event in the relayed format.
    fn fail(&mut self, error: UpstreamError) -> Bytes {
        tracing::warn!(provider = %self.provider.name, error = %error, "upstream stream failed");
        self.finished = true;
        self.note.stream_outcome("upstream_error");
        let error = GatewayError::from_upstream(error, &self.provider);
        Bytes::from(match self.sniffer {
            Sniffer::OpenAiChat { .. } => sse_data(&error.body()),
            Sniffer::Anthropic => {
                let body =
                    portcullis_wire::anthropic::error_body(error.kind(), &error.parts().message);
                let mut out = b"event: error\n".to_vec();
                out.extend(sse_data(&body));
                out
            }
            Sniffer::Responses => {
                let parts = error.parts();
                let body = serde_json::json!({"type": "error", "code": parts.code, "message": parts.message, "param": null});
                let mut out = b"event: error\n".to_vec();
                out.extend(sse_data(body.to_string().as_bytes()));
                out
            }
        })
    }
}

/// `data: <payload>\n\n`
pub fn sse_data(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
