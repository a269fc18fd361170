//! The AWS binary event-stream framing (`application/vnd.amazon.eventstream`), used by
//! Bedrock ConverseStream. Each message is
//!
//! ```text
//! total length u32 BE | headers length u32 BE | prelude CRC32 (of the 8 bytes before)
//! headers: (name length u8, name, value type u8, value)*
//! payload
//! message CRC32 (of every byte before it)
//! ```
//!
//! The decoder is fed arbitrary chunks and yields complete messages; damaged input is an
//! error, never a panic.

use bytes::{Buf, Bytes, BytesMut};

/// Largest message accepted (AWS's own limit is 16 MiB).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
const PRELUDE_LEN: usize = 12;
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + 4;

/// A header value, by wire type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6: u16 length, then bytes.
    Bytes(Vec<u8>),
    /// Type 7: u16 length, then UTF-8.
    String(String),
    /// Type 8: milliseconds since the epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

/// One header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Name, e.g. `:event-type`.
    pub name: String,
    /// Value.
    pub value: HeaderValue,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Headers in wire order.
    pub headers: Vec<Header>,
    /// Payload (JSON for Bedrock).
    pub payload: Bytes,
}

impl Message {
    /// A Bedrock-style event: `:event-type`, `:content-type: application/json`,
    /// `:message-type: event`.
    pub fn event(event_type: &str, payload: impl Into<Bytes>) -> Message {
        Message::with_strings(
            &[
                (":event-type", event_type),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload,
        )
    }

    /// A Bedrock-style exception: `:exception-type`, `:content-type: application/json`,
    /// `:message-type: exception`.
    pub fn exception(exception_type: &str, payload: impl Into<Bytes>) -> Message {
        Message::with_strings(
            &[
                (":exception-type", exception_type),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            payload,
        )
    }

    /// A message whose headers are all strings.
    pub fn with_strings(headers: &[(&str, &str)], payload: impl Into<Bytes>) -> Message {
        Message {
            headers: headers
                .iter()
                .map(|(n, v)| Header {
                    name: n.to_string(),
                    value: HeaderValue::String(v.to_string()),
                })
                .collect(),
            payload: payload.into(),
        }
    }

    /// The value of a string header.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| match &h.value {
            HeaderValue::String(s) if h.name == name => Some(s.as_str()),
            _ => None,
        })
    }

    /// Encodes the message in the binary framing. Names longer than 255 bytes and
    /// string/byte values longer than 65535 bytes are truncated to fit.
    pub fn encode(&self) -> Vec<u8> {
        let mut headers = Vec::new();
        for h in &self.headers {
            let name = &h.name.as_bytes()[..h.name.len().min(255)];
            headers.push(name.len() as u8);
            headers.extend_from_slice(name);
            let var = |headers: &mut Vec<u8>, kind: u8, b: &[u8]| {
                let b = &b[..b.len().min(u16::MAX as usize)];
                headers.push(kind);
                headers.extend_from_slice(&(b.len() as u16).to_be_bytes());
                headers.extend_from_slice(b);
            };
            match &h.value {
                HeaderValue::Bool(true) => headers.push(0),
                HeaderValue::Bool(false) => headers.push(1),
                HeaderValue::Byte(v) => headers.extend_from_slice(&[2, *v as u8]),
                HeaderValue::Short(v) => {
                    headers.push(3);
                    headers.extend_from_slice(&v.to_be_bytes());
                }
                HeaderValue::Int(v) => {
                    headers.push(4);
                    headers.extend_from_slice(&v.to_be_bytes());
                }
                HeaderValue::Long(v) => {
                    headers.push(5);
                    headers.extend_from_slice(&v.to_be_bytes());
                }
                HeaderValue::Bytes(b) => var(&mut headers, 6, b),
                HeaderValue::String(s) => var(&mut headers, 7, s.as_bytes()),
                HeaderValue::Timestamp(v) => {
                    headers.push(8);
                    headers.extend_from_slice(&v.to_be_bytes());
                }
                HeaderValue::Uuid(u) => {
                    headers.push(9);
                    headers.extend_from_slice(u);
                }
            }
        }
        let total = MIN_MESSAGE_LEN + headers.len() + self.payload.len();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
        out.extend_from_slice(&headers);
        out.extend_from_slice(&self.payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }
}

/// Why the byte stream cannot be decoded. The stream cannot be resynchronized after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    /// The prelude checksum does not match.
    #[error("event-stream prelude CRC mismatch")]
    PreludeCrc,
    /// The message checksum does not match.
    #[error("event-stream message CRC mismatch")]
    MessageCrc,
    /// The declared lengths are impossible or above [`MAX_MESSAGE_LEN`].
    #[error("event-stream message length {total} (headers {headers}) is invalid")]
    BadLength {
        /// Declared total length.
        total: u32,
        /// Declared headers length.
        headers: u32,
    },
    /// A header is malformed.
    #[error("event-stream header is malformed: {0}")]
    BadHeader(&'static str),
}

/// Incremental decoder: [`Decoder::push`] chunks, then take [`Decoder::next_message`]s
/// until `None`. After an error every call returns that error.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    failed: Option<EventStreamError>,
}

impl Decoder {
    /// A decoder for one stream.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Bytes received but not yet part of a complete message (non-zero at the end of the
    /// body means the stream was truncated).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends `chunk` and returns every message it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Message>, EventStreamError> {
        self.push(chunk);
        let mut out = Vec::new();
        while let Some(m) = self.next_message()? {
            out.push(m);
        }
        Ok(out)
    }

    /// The next complete message, `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, EventStreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.decode_one() {
            Ok(m) => Ok(m),
            Err(e) => {
                self.buf.clear();
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    fn decode_one(&mut self) -> Result<Option<Message>, EventStreamError> {
        if self.buf.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let word =
            |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let (total, headers_len) = (word(&self.buf, 0), word(&self.buf, 4));
        if crc32fast::hash(&self.buf[..8]) != word(&self.buf, 8) {
            return Err(EventStreamError::PreludeCrc);
        }
        let (t, h) = (total as usize, headers_len as usize);
        if !(MIN_MESSAGE_LEN..=MAX_MESSAGE_LEN).contains(&t) || h > t - MIN_MESSAGE_LEN {
            return Err(EventStreamError::BadLength {
                total,
                headers: headers_len,
            });
        }
        if self.buf.len() < t {
            return Ok(None);
        }
        if crc32fast::hash(&self.buf[..t - 4]) != word(&self.buf, t - 4) {
            return Err(EventStreamError::MessageCrc);
        }
        let mut frame = self.buf.split_to(t).freeze();
        frame.advance(PRELUDE_LEN);
        let headers = parse_headers(&frame[..h])?;
        let payload = frame.slice(h..t - MIN_MESSAGE_LEN);
        Ok(Some(Message { headers, payload }))
    }
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<Header>, EventStreamError> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], EventStreamError> {
        if b.len() < n {
            return Err(EventStreamError::BadHeader("header runs past its section"));
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    fn fixed<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], EventStreamError> {
        let mut out = [0; N];
        out.copy_from_slice(take(b, N)?);
        Ok(out)
    }
    let mut headers = Vec::new();
    while !b.is_empty() {
        let name_len = take(&mut b, 1)?[0] as usize;
        let name = std::str::from_utf8(take(&mut b, name_len)?)
            .map_err(|_| EventStreamError::BadHeader("name is not UTF-8"))?
            .to_string();
        let kind = take(&mut b, 1)?[0];
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(fixed(&mut b)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(fixed(&mut b)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(fixed(&mut b)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(fixed(&mut b)?)),
            6 | 7 => {
                let len = u16::from_be_bytes(fixed(&mut b)?) as usize;
                let v = take(&mut b, len)?;
                if kind == 6 {
                    HeaderValue::Bytes(v.to_vec())
                } else {
                    let s = std::str::from_utf8(v)
                        .map_err(|_| EventStreamError::BadHeader("string value is not UTF-8"))?;
                    HeaderValue::String(s.to_string())
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed(&mut b)?)),
            9 => HeaderValue::Uuid(fixed(&mut b)?),
            _ => return Err(EventStreamError::BadHeader("unknown value type")),
        };
        headers.push(Header { name, value });
    }
    Ok(headers)
}

#[cfg(test)]
#[path = "eventstream_tests.rs"]
mod tests;
