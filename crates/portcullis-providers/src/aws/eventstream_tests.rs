//! Event-stream framing: round trips split at every offset, corruption, truncation.

use super::*;

fn sample() -> Vec<Message> {
    let mut all_types = Message::event(
        "contentBlockDelta",
        &br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#[..],
    );
    for (name, value) in [
        ("t", HeaderValue::Bool(true)),
        ("f", HeaderValue::Bool(false)),
        ("b", HeaderValue::Byte(-3)),
        ("s", HeaderValue::Short(-300)),
        ("i", HeaderValue::Int(70_000)),
        ("l", HeaderValue::Long(-5_000_000_000)),
        ("bytes", HeaderValue::Bytes(vec![0, 1, 255])),
        ("ts", HeaderValue::Timestamp(1_700_000_000_000)),
        ("id", HeaderValue::Uuid([7; 16])),
    ] {
        all_types.headers.push(Header {
            name: name.into(),
            value,
        });
    }
    vec![
        Message::event("messageStart", &br#"{"role":"assistant"}"#[..]),
        all_types,
        Message::with_strings(&[], Bytes::new()),
        Message::exception("throttlingException", &br#"{"message":"slow down"}"#[..]),
    ]
}

fn encoded() -> Vec<u8> {
    sample().iter().flat_map(Message::encode).collect()
}

#[test]
fn round_trip_split_at_every_offset() {
    let bytes = encoded();
    for split in 0..=bytes.len() {
        let mut d = Decoder::new();
        let mut got = d.feed(&bytes[..split]).unwrap();
        got.extend(d.feed(&bytes[split..]).unwrap());
        assert_eq!(got, sample(), "split at {split}");
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn round_trip_byte_by_byte() {
    let mut d = Decoder::new();
    let mut got = Vec::new();
    for b in encoded() {
        got.extend(d.feed(&[b]).unwrap());
    }
    assert_eq!(got, sample());
    assert_eq!(got[0].header_str(":event-type"), Some("messageStart"));
    assert_eq!(got[3].header_str(":message-type"), Some("exception"));
}

#[test]
fn truncated_input_waits_for_more() {
    let bytes = encoded();
    let first = sample()[0].encode().len();
    let mut d = Decoder::new();
    assert_eq!(d.feed(&bytes[..first - 1]).unwrap(), vec![]);
    assert_eq!(d.buffered(), first - 1);
    assert_eq!(
        d.feed(&bytes[first - 1..first]).unwrap(),
        vec![sample()[0].clone()]
    );
}

#[test]
fn corrupted_crcs_are_detected() {
    let good = sample()[1].encode();
    // Flip one bit of every byte in turn: each must fail, never panic or pass.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let r = Decoder::new().feed(&bad);
        assert!(
            r.is_err() || r.as_ref().unwrap().is_empty(),
            "byte {i}: {r:?}"
        );
    }
    let mut bad = good.clone();
    bad[8] ^= 0xff;
    assert_eq!(Decoder::new().feed(&bad), Err(EventStreamError::PreludeCrc));
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert_eq!(Decoder::new().feed(&bad), Err(EventStreamError::MessageCrc));
    let mut bad = good;
    bad[20] ^= 0xff;
    let mut d = Decoder::new();
    assert_eq!(d.feed(&bad), Err(EventStreamError::MessageCrc));
    // A failed decoder stays failed.
    assert_eq!(d.feed(&encoded()), Err(EventStreamError::MessageCrc));
}

fn prelude(total: u32, headers: u32) -> Vec<u8> {
    let mut p = total.to_be_bytes().to_vec();
    p.extend_from_slice(&headers.to_be_bytes());
    let crc = crc32fast::hash(&p);
    p.extend_from_slice(&crc.to_be_bytes());
    p
}

#[test]
fn absurd_lengths_are_rejected_before_buffering() {
    for (total, headers) in [
        (17 * 1024 * 1024, 0),
        (u32::MAX, 0),
        (15, 0),
        (16, 1),
        (100, 90),
    ] {
        let r = Decoder::new().feed(&prelude(total, headers));
        assert_eq!(r, Err(EventStreamError::BadLength { total, headers }));
    }
}

/// Frames with valid CRCs around malformed header sections.
fn frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (16 + headers.len() + payload.len()) as u32;
    let mut out = prelude(total, headers.len() as u32);
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn malformed_headers_are_errors() {
    for headers in [
        &[5, b'a'][..],                // name runs past the section
        &[1, b'a', 7, 0, 9, b'x'][..], // string value runs past the section
        &[1, b'a', 42][..],            // unknown type
        &[1, b'a', 4, 0, 0][..],       // int cut short
        &[1, 0xff, 0][..],             // name not UTF-8
        &[1, b'a', 7, 0, 1, 0xff][..], // value not UTF-8
    ] {
        let r = Decoder::new().feed(&frame(headers, b"{}"));
        assert!(
            matches!(r, Err(EventStreamError::BadHeader(_))),
            "{headers:?}: {r:?}"
        );
    }
    let ok = Decoder::new()
        .feed(&frame(&[1, b'a', 7, 0, 1, b'z'], b"{}"))
        .unwrap();
    assert_eq!(ok[0].header_str("a"), Some("z"));
    assert_eq!(&ok[0].payload[..], b"{}");
}
