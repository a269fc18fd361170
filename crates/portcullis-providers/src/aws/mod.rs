//! Amazon Web Services plumbing for the Bedrock provider, all pure (no I/O): SigV4 request
//! signing, the binary event-stream framing, and [`ConverseStream`], which turns a
//! ConverseStream response body into IR stream events chunk by chunk.

pub mod eventstream;
pub mod sigv4;

use eventstream::{Decoder, Message};
use portcullis_wire::bedrock::StreamDecoder;
use portcullis_wire::ir::{ErrorKind, StreamEvent};

/// Service name Bedrock Runtime requests are signed for.
pub const BEDROCK_SERVICE: &str = "bedrock";

/// Decodes a ConverseStream body: feed each received chunk to [`ConverseStream::push`] and
/// call [`ConverseStream::finish`] at the end of the body. Framing damage, undecodable
/// payloads, exceptions and truncation all end the stream with one `Error` event.
#[derive(Debug)]
pub struct ConverseStream {
    frames: Decoder,
    events: StreamDecoder,
    failed: bool,
}

impl ConverseStream {
    /// A decoder for one response; `model` and `id` label the IR `MessageStart`.
    pub fn new(model: &str, id: &str) -> ConverseStream {
        ConverseStream {
            frames: Decoder::new(),
            events: StreamDecoder::new(model, id),
            failed: false,
        }
    }

    fn fail(&mut self, message: &str) -> Vec<StreamEvent> {
        self.failed = true;
        vec![StreamEvent::Error {
            kind: ErrorKind::Api,
            message: message.into(),
        }]
    }

    /// Decodes the messages `chunk` completes into IR events.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.failed {
            return out;
        }
        self.frames.push(chunk);
        loop {
            let message = match self.frames.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => return out,
                Err(e) => {
                    tracing::warn!(error = %e, "corrupt Bedrock event stream");
                    out.extend(self.fail("upstream event stream is corrupt"));
                    return out;
                }
            };
            let events = self.message(&message);
            let ended = events
                .iter()
                .any(|e| matches!(e, StreamEvent::Error { .. }));
            out.extend(events);
            if ended {
                self.failed = true;
                return out;
            }
        }
    }

    fn message(&mut self, m: &Message) -> Vec<StreamEvent> {
        match m.header_str(":message-type").unwrap_or("event") {
            "event" => {
                let event_type = m.header_str(":event-type").unwrap_or("");
                match self.events.decode(event_type, &m.payload) {
                    Ok(events) => events,
                    Err(e) => {
                        tracing::warn!(error = %e, event_type, "undecodable Bedrock stream event");
                        self.fail("upstream sent an undecodable stream event")
                    }
                }
            }
            "exception" => {
                let exception_type = m.header_str(":exception-type").unwrap_or("");
                self.events.exception(exception_type, &m.payload)
            }
            _ => {
                // `:message-type: error` carries its code and message in headers.
                let code = m.header_str(":error-code").unwrap_or("");
                let message = m.header_str(":error-message").unwrap_or("upstream error");
                let payload = serde_json::json!({ "message": message }).to_string();
                self.events.exception(code, payload.as_bytes())
            }
        }
    }

    /// Call at the end of the body: `Done` if the message completed, else an error.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.failed {
            return Vec::new();
        }
        if self.frames.buffered() > 0 {
            return self.fail("upstream event stream ended mid-message");
        }
        self.failed = true;
        self.events.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(messages: &[Message]) -> Vec<u8> {
        messages.iter().flat_map(Message::encode).collect()
    }

    #[test]
    fn stream_decodes_across_chunks() {
        let bytes = body(&[
            Message::event("messageStart", &br#"{"role":"assistant","p":"abc"}"#[..]),
            Message::event("contentBlockDelta", &br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#[..]),
            Message::event("contentBlockStop", &br#"{"contentBlockIndex":0}"#[..]),
            Message::event("messageStop", &br#"{"stopReason":"end_turn"}"#[..]),
            Message::event("metadata", &br#"{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4},"metrics":{"latencyMs":5}}"#[..]),
        ]);
        let mut s = ConverseStream::new("m", "id");
        let mut events = Vec::new();
        for chunk in bytes.chunks(7) {
            events.extend(s.push(chunk));
        }
        events.extend(s.finish());
        assert_eq!(events.len(), 5, "{events:?}");
        assert!(matches!(&events[1], StreamEvent::TextDelta { text } if text == "Hi"));
        assert!(matches!(&events[3], StreamEvent::Usage(u) if u.input == 3 && u.output == 1));
        assert_eq!(events[4], StreamEvent::Done);
    }

    #[test]
    fn exceptions_truncation_and_corruption_end_with_an_error() {
        let mut s = ConverseStream::new("m", "id");
        let events = s.push(&body(&[
            Message::event("messageStart", &b"{}"[..]),
            Message::exception("throttlingException", &br#"{"message":"slow"}"#[..]),
        ]));
        assert_eq!(
            events[1],
            StreamEvent::Error {
                kind: ErrorKind::RateLimit,
                message: "slow".into()
            }
        );
        assert!(s.finish().is_empty());

        let mut s = ConverseStream::new("m", "id");
        let bytes = body(&[Message::event("messageStart", &b"{}"[..])]);
        assert!(s.push(&bytes[..bytes.len() - 2]).is_empty());
        assert!(matches!(s.finish()[..], [StreamEvent::Error { .. }]));

        let mut s = ConverseStream::new("m", "id");
        let mut bytes = bytes;
        bytes[3] ^= 1;
        assert!(matches!(s.push(&bytes)[..], [StreamEvent::Error { .. }]));
        assert!(s.push(&bytes).is_empty());
    }
}
