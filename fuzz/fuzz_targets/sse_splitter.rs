//! `sse::EventSplitter`: the input (after two bytes choosing a cut) is pushed in two pieces.
//! Checks: no panic; the events plus the remainder reassemble to exactly the input; every
//! event ends at its first blank line; the result does not depend on where the input was
//! cut (same events as one single push). `event_data` runs on every event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_wire::sse::{event_data, EventSplitter};

/// Reference: position just past the first blank line (`\n\n`, `\r\r`, `\r\n\r\n`).
fn first_blank_line(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find_map(|i| {
        let rest = &buf[i..];
        if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\r") {
            Some(i + 2)
        } else if rest.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else {
            None
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (head, body) = data.split_at(2);
    let cut = u16::from_le_bytes([head[0], head[1]]) as usize % (body.len() + 1);
    const MAX: usize = 1 << 20;

    let mut split = EventSplitter::new(MAX);
    let mut events = split.push(&body[..cut]).expect("below the bound");
    events.extend(split.push(&body[cut..]).expect("below the bound"));

    let mut whole = EventSplitter::new(MAX);
    let once = whole.push(body).expect("below the bound");
    assert_eq!(events, once, "events depend on the cut at {cut}");
    assert_eq!(split.remainder(), whole.remainder());

    let mut joined = Vec::with_capacity(body.len());
    for event in &events {
        assert_eq!(
            first_blank_line(event),
            Some(event.len()),
            "event does not end at its first blank line: {event:?}"
        );
        if let Some(d) = event_data(event) {
            assert!(d.len() <= event.len());
        }
        joined.extend_from_slice(event);
    }
    joined.extend_from_slice(split.remainder());
    assert_eq!(
        joined, body,
        "events + remainder do not reassemble the input"
    );
    assert_eq!(first_blank_line(split.remainder()), None);
    let _ = event_data(split.remainder());

    // A small bound: an oversized partial event is refused, never a panic.
    let mut small = EventSplitter::new(head[0] as usize);
    let _ = small.push(&body[..cut]);
    let _ = small.push(&body[cut..]);
});
