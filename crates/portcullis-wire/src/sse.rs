//! Incremental Server-Sent-Events framing: bytes arrive in arbitrary pieces, complete events
//! leave as soon as their terminating blank line has arrived. The buffer holds at most one
//! partial event, bounded by `max_event_bytes`.

use bytes::{Buf, Bytes, BytesMut};

/// Splits a byte stream into whole SSE events (each returned with its trailing blank line).
#[derive(Debug)]
pub struct EventSplitter {
    buffer: BytesMut,
    max_event_bytes: usize,
}

/// An event longer than the configured bound: the stream is not SSE or is hostile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server-sent event exceeds {0} bytes")]
pub struct EventTooLarge(pub usize);

impl EventSplitter {
    /// A splitter refusing events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> EventSplitter {
        EventSplitter {
            buffer: BytesMut::new(),
            max_event_bytes,
        }
    }

    /// Adds bytes and returns every event completed by them, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, EventTooLarge> {
        let mut events = Vec::new();
        let search_from = self.buffer.len().saturating_sub(3);
        self.buffer.extend_from_slice(chunk);
        let mut from = search_from;
        while let Some(end) = find_event_end(&self.buffer[from..]) {
            let event = self.buffer.split_to(from + end).freeze();
            events.push(event);
            from = 0;
        }
        if self.buffer.len() > self.max_event_bytes {
            self.buffer.advance(self.buffer.len());
            return Err(EventTooLarge(self.max_event_bytes));
        }
        Ok(events)
    }

    /// Bytes of an unfinished event left when the stream ended.
    pub fn remainder(&self) -> &[u8] {
        &self.buffer
    }
}

/// Position just past the first blank line (`\n\n`, `\r\n\r\n` or `\r\r`), if any.
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        match (buf[i], buf[i + 1]) {
            (b'\n', b'\n') | (b'\r', b'\r') => return Some(i + 2),
            (b'\r', b'\n') if buf.get(i + 2..i + 4) == Some(b"\r\n") => return Some(i + 4),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The concatenated `data:` lines of one event (joined by `\n`), or None for events without data.
pub fn event_data(event: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match &mut data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_arbitrary_chunking() {
        let stream = b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n: comment\n\ndata: [DONE]\n\n";
        for cut in 0..stream.len() {
            let mut s = EventSplitter::new(1024);
            let mut events = s.push(&stream[..cut]).unwrap();
            events.extend(s.push(&stream[cut..]).unwrap());
            assert_eq!(events.len(), 4, "cut at {cut}");
            assert_eq!(event_data(&events[0]).unwrap(), b"{\"a\":1}");
            assert_eq!(event_data(&events[1]).unwrap(), b"{\"b\":2}");
            assert!(event_data(&events[2]).is_none());
            assert_eq!(event_data(&events[3]).unwrap(), b"[DONE]");
            assert!(s.remainder().is_empty());
        }
    }

    #[test]
    fn bounds_a_partial_event() {
        let mut s = EventSplitter::new(8);
        assert!(s.push(b"data: 0123456789").is_err());
    }

    #[test]
    fn joins_multiline_data() {
        assert_eq!(
            event_data(b"event: x\ndata: a\ndata:b\n\n").unwrap(),
            b"a\nb"
        );
    }
}
