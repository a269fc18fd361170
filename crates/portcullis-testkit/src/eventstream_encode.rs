//! Encoder for the AWS binary event-stream framing (`application/vnd.amazon.eventstream`).
//!
//! A message is: total length (u32 BE), headers length (u32 BE), CRC32 of those 8 bytes,
//! headers, payload, CRC32 of everything before it. Each header is: name length (u8), name,
//! value type (u8; 7 = string), value length (u16 BE), value.

use bytes::Bytes;

/// Header value type: UTF-8 string.
const TYPE_STRING: u8 = 7;

/// Encodes one message with string headers (in the given order) and `payload`.
///
/// # Panics
/// If a header name exceeds 255 bytes or a value 65535 bytes (never for our own headers).
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut hdrs = Vec::with_capacity(96);
    for (name, value) in headers {
        hdrs.push(u8::try_from(name.len()).expect("header name <= 255 bytes"));
        hdrs.extend_from_slice(name.as_bytes());
        hdrs.push(TYPE_STRING);
        let len = u16::try_from(value.len()).expect("header value <= 65535 bytes");
        hdrs.extend_from_slice(&len.to_be_bytes());
        hdrs.extend_from_slice(value.as_bytes());
    }
    let total = 12 + hdrs.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(hdrs.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&hdrs);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Bytes::from(out)
}

/// An `event` message as Bedrock sends it: `:event-type`, `:content-type`
/// (`application/json`), `:message-type` (`event`), JSON payload.
pub fn event(event_type: &str, payload: &[u8]) -> Bytes {
    encode_message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// An `exception` message: `:exception-type`, `:content-type`, `:message-type` (`exception`).
pub fn exception(exception_type: &str, payload: &[u8]) -> Bytes {
    encode_message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout_and_crcs() {
        let msg = event("messageStop", br#"{"stopReason":"end_turn"}"#);
        let total = u32::from_be_bytes(msg[0..4].try_into().unwrap()) as usize;
        let hlen = u32::from_be_bytes(msg[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, msg.len());
        let prelude_crc = u32::from_be_bytes(msg[8..12].try_into().unwrap());
        assert_eq!(prelude_crc, crc32fast::hash(&msg[..8]));
        let crc = u32::from_be_bytes(msg[total - 4..].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&msg[..total - 4]));
        assert_eq!(msg[12], 11); // ":event-type".len()
        assert_eq!(&msg[13..24], b":event-type");
        assert_eq!(msg[24], TYPE_STRING);
        assert_eq!(&msg[12 + hlen..total - 4], br#"{"stopReason":"end_turn"}"#);
    }

    #[test]
    fn empty_message_is_16_bytes() {
        // The AWS reference vector for an empty message (no headers, no payload).
        let msg = encode_message(&[], b"");
        assert_eq!(
            msg.as_ref(),
            &[0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff]
        );
    }
}
