//! A cached answer: exactly the bytes the client received (after guardrails), either a
//! JSON body or the recorded server-sent events of a stream, with a compact binary
//! encoding for shared backends.

use bytes::Bytes;

/// What a cached answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A whole JSON response body.
    Json,
    /// The server-sent events of a streamed answer, as sent.
    Stream,
}

/// One cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// JSON body or recorded events.
    pub kind: EntryKind,
    /// HTTP status it was served with (only successful answers are stored).
    pub status: u16,
    /// The body bytes.
    pub body: Bytes,
}

/// Version byte of the encoding; a different version is a miss.
const FORMAT: u8 = 1;

impl Entry {
    /// Bytes this entry occupies in a size-bounded backend (body plus bookkeeping).
    pub fn weight(&self) -> usize {
        self.body.len() + 96
    }

    /// `[version, kind, status (2 bytes LE), body...]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 4);
        out.push(FORMAT);
        out.push(match self.kind {
            EntryKind::Json => 0,
            EntryKind::Stream => 1,
        });
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// The inverse of [`Entry::encode`]; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let (&[version, kind, s0, s1], body) = bytes.split_first_chunk::<4>()?;
        if version != FORMAT {
            return None;
        }
        let kind = match kind {
            0 => EntryKind::Json,
            1 => EntryKind::Stream,
            _ => return None,
        };
        Some(Entry {
            kind,
            status: u16::from_le_bytes([s0, s1]),
            body: Bytes::copy_from_slice(body),
        })
    }

    /// The recorded events one by one (each with its terminating blank line), for replay.
    pub fn events(&self) -> Vec<Bytes> {
        let mut out = Vec::new();
        let body = &self.body;
        let mut start = 0;
        let mut i = 0;
        while i + 1 < body.len() {
            if body[i] == b'\n' && body[i + 1] == b'\n' {
                out.push(body.slice(start..i + 2));
                start = i + 2;
                i += 2;
            } else {
                i += 1;
            }
        }
        if start < body.len() {
            out.push(body.slice(start..));
        }
        out
    }
}

/// Whether recorded events form a complete, successful stream in the client's format:
/// OpenAI streams end with `data: [DONE]`, Anthropic streams with a `message_stop` event;
/// a stream that carried an error event is never complete.
pub fn stream_is_complete(anthropic: bool, events: &[u8]) -> bool {
    let text = String::from_utf8_lossy(events);
    let trimmed = text.trim_end();
    if anthropic {
        !text.contains("event: error") && trimmed.contains("event: message_stop")
    } else {
        !text.contains("data: {\"error\"") && trimmed.ends_with("data: [DONE]")
    }
}

/// What the client asked of the cache for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// No preference: the team's policy decides.
    Default,
    /// `x-portcullis-cache: use`: cache this request even if the team does not.
    Use,
    /// `x-portcullis-cache: refresh` or `Cache-Control: no-cache`: do not answer from the
    /// cache, but store the fresh answer.
    Refresh,
    /// `x-portcullis-cache: off` or `Cache-Control: no-store`: neither read nor store.
    Off,
}

impl Directive {
    /// Reads the `x-portcullis-cache` and `Cache-Control` header values; the stronger
    /// restriction wins (off over refresh over use). Unknown values are ignored.
    pub fn from_headers(portcullis: Option<&str>, cache_control: Option<&str>) -> Directive {
        let mut d = match portcullis.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("use") => Directive::Use,
            Some("refresh") | Some("bypass") => Directive::Refresh,
            Some("off") | Some("no-store") => Directive::Off,
            _ => Directive::Default,
        };
        for token in cache_control
            .unwrap_or("")
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
        {
            match token.as_str() {
                "no-store" => d = Directive::Off,
                "no-cache" if d != Directive::Off => d = Directive::Refresh,
                _ => {}
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_garbage_is_a_miss() {
        let e = Entry {
            kind: EntryKind::Stream,
            status: 200,
            body: Bytes::from_static(b"data: {}\n\ndata: [DONE]\n\n"),
        };
        assert_eq!(Entry::decode(&e.encode()), Some(e));
        assert_eq!(Entry::decode(b"\x02\x00\xc8\x00{}"), None);
        assert_eq!(Entry::decode(b"\x01"), None);
    }

    #[test]
    fn events_split_on_blank_lines() {
        let e = Entry {
            kind: EntryKind::Stream,
            status: 200,
            body: Bytes::from_static(b"data: 1\n\nevent: x\ndata: 2\n\ndata: [DONE]\n\n"),
        };
        let events = e.events();
        assert_eq!(events.len(), 3);
        assert_eq!(&events[1][..], b"event: x\ndata: 2\n\n");
        assert_eq!(events.concat(), e.body.to_vec());
    }

    #[test]
    fn only_complete_streams_count() {
        assert!(stream_is_complete(
            false,
            b"data: {\"a\":1}\n\ndata: [DONE]\n\n"
        ));
        assert!(!stream_is_complete(false, b"data: {\"a\":1}\n\n"));
        assert!(!stream_is_complete(
            false,
            b"data: {\"a\":1}\n\ndata: {\"error\":{}}\n\ndata: [DONE]\n\n"
        ));
        assert!(stream_is_complete(
            true,
            b"event: message_start\ndata: {}\n\nevent: message_stop\ndata: {}\n\n"
        ));
        assert!(!stream_is_complete(
            true,
            b"event: message_start\ndata: {}\n\nevent: error\ndata: {}\n\n"
        ));
    }

    #[test]
    fn directives_from_headers() {
        use Directive::*;
        assert_eq!(Directive::from_headers(None, None), Default);
        assert_eq!(Directive::from_headers(Some("use"), None), Use);
        assert_eq!(Directive::from_headers(Some("USE"), Some("max-age=0")), Use);
        assert_eq!(
            Directive::from_headers(Some("use"), Some("no-cache")),
            Refresh
        );
        assert_eq!(Directive::from_headers(None, Some("no-cache")), Refresh);
        assert_eq!(
            Directive::from_headers(Some("use"), Some("no-cache, no-store")),
            Off
        );
        assert_eq!(Directive::from_headers(Some("off"), Some("no-cache")), Off);
        assert_eq!(Directive::from_headers(Some("bogus"), None), Default);
    }
}
