//! Relaying an OpenAI-format SSE stream to the client event by event as it arrives, while
//! reading token usage from it. The usage-only chunk the gateway asked for on the client's
//! behalf is hidden again; an upstream failure mid-stream ends the stream with an error
//! event, never with a silent truncation that looks successful.

use crate::access::AccessNote;
use crate::error::GatewayError;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use portcullis_providers::{Provider, UpstreamError};
use portcullis_wire::openai::Usage;
use portcullis_wire::sse::{event_data, EventSplitter};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;

/// Largest single SSE event accepted from an upstream.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

struct Relay {
    upstream: BoxStream<'static, Result<Bytes, UpstreamError>>,
    splitter: EventSplitter,
    hide_usage_chunk: bool,
    saw_done: bool,
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

/// Wraps an upstream OpenAI-format stream for the client.
pub fn openai_stream(
    upstream: BoxStream<'static, Result<Bytes, UpstreamError>>,
    hide_usage_chunk: bool,
    note: Arc<AccessNote>,
    provider: Arc<Provider>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let relay = Relay {
        upstream,
        splitter: EventSplitter::new(MAX_EVENT_BYTES),
        hide_usage_chunk,
        saw_done: false,
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
                    if relay.saw_done {
                        relay.note.stream_outcome("complete");
                        return None;
                    }
                    let e = UpstreamError::Protocol {
                        provider: relay.provider.name.clone(),
                        detail: "stream ended before [DONE]".into(),
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
        if data == b"[DONE]" {
            self.saw_done = true;
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
                self.hide_usage_chunk && chunk.choices.is_some_and(|c| c.is_empty())
            }
            Err(_) => false,
        }
    }

    /// Ends the stream with an OpenAI-format error event.
    fn fail(&mut self, error: UpstreamError) -> Bytes {
        tracing::warn!(provider = %self.provider.name, error = %error, "upstream stream failed");
        self.finished = true;
        self.note.stream_outcome("upstream_error");
        let body = GatewayError::from_upstream(error, &self.provider).body();
        let mut out = BytesMut::with_capacity(body.len() + 8);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\n\n");
        out.freeze()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
