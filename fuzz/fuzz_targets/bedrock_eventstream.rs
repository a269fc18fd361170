//! The AWS binary event-stream framing (`aws::eventstream::Decoder`) and the whole
//! ConverseStream decoder (`aws::ConverseStream`: framing + events -> IR).
//!
//! Input: one mode byte, then the body.
//! - mode bit 0 clear: the body is raw bytes (CRCs, lengths, headers as sent: mostly
//!   rejected early, which is the point);
//! - mode bit 0 set: the body is a list of `[headers_len: u8][headers][payload_len: u16 BE]
//!   [payload]` records, framed here with correct lengths and CRCs so the fuzzer reaches the
//!   header parser and the event decoder.
//!
//! The bytes are fed in chunks whose size comes from the mode byte; the messages, errors
//! and IR events must be the same as for one single push (chunking must not matter).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_providers::aws::eventstream::Decoder;
use portcullis_providers::aws::ConverseStream;

fn frame(mut input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some((&hlen, rest)) = input.split_first() {
        let hlen = (hlen as usize).min(rest.len());
        let (headers, rest) = rest.split_at(hlen);
        let (plen, rest) = match rest {
            [a, b, rest @ ..] => (
                (u16::from_be_bytes([*a, *b]) as usize).min(rest.len()),
                rest,
            ),
            _ => (0, rest),
        };
        let (payload, rest) = rest.split_at(plen);
        input = rest;
        let total = (12 + headers.len() + payload.len() + 4) as u32;
        let start = out.len();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let crc = crc32(&out[start..start + 8]);
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(headers);
        out.extend_from_slice(payload);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

/// CRC-32 (IEEE), bitwise: slow but dependency-free and only run on fuzz inputs.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn decode_all(chunks: &mut dyn Iterator<Item = &[u8]>) -> (Vec<Result<String, String>>, usize) {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        loop {
            match d.next_message() {
                Ok(Some(m)) => out.push(Ok(format!("{m:?}"))),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    // After an error every call returns that error.
                    assert_eq!(
                        d.next_message().map_err(|e| e.to_string()),
                        Err(e.to_string())
                    );
                    d.push(b"more");
                    assert_eq!(d.buffered(), 0, "bytes buffered after an error");
                    return (out, 0);
                }
            }
        }
    }
    (out, d.buffered())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let framed;
    let bytes = if mode & 1 == 1 {
        framed = frame(body);
        &framed[..]
    } else {
        body
    };
    let chunk = (mode >> 1) as usize + 1;

    let (whole, whole_left) = decode_all(&mut std::iter::once(bytes));
    let (chunked, chunked_left) = decode_all(&mut bytes.chunks(chunk));
    // Errors end the stream, at the same point however the bytes arrived.
    assert_eq!(whole, chunked, "decoded messages depend on chunking");
    assert_eq!(whole_left, chunked_left);

    let mut one = ConverseStream::new("fuzz-model", "fuzz-id");
    let mut events = one.push(bytes);
    events.extend(one.finish());
    let mut many = ConverseStream::new("fuzz-model", "fuzz-id");
    let mut events2 = Vec::new();
    for c in bytes.chunks(chunk) {
        events2.extend(many.push(c));
    }
    events2.extend(many.finish());
    assert_eq!(events, events2, "ConverseStream output depends on chunking");
    portcullis_fuzz::encode_everywhere(
        portcullis_wire::ir::Format::Bedrock,
        mode & 2 == 2,
        &events,
    );
});
