//! Streamed scanning is identical to whole-text scanning, however the stream is split.

use portcullis_guard::{
    CompiledProfile, Detector, Direction, ProfileDef, Redactor, StreamScanner, DEFAULT_HOLD_BACK,
};

fn prose(n: usize) -> String {
    "The quick brown fox jumps over the lazy dog; we ship v1.2.3 on 2024-05-01. ".repeat(n)
}

/// Streams `text` split at `cut` (and into 7-byte pieces after it), returns emitted text.
fn stream_split(p: &CompiledProfile, text: &str, cuts: &[usize]) -> (String, Option<Detector>) {
    let mut s = StreamScanner::new(p, Direction::Output, DEFAULT_HOLD_BACK);
    let mut out = String::new();
    let mut prev = 0;
    for &c in cuts.iter().chain(std::iter::once(&text.len())) {
        let o = s.push(&text[prev..c]);
        out.push_str(&o.emit);
        if let Some(f) = o.blocked {
            return (out, Some(f.detector));
        }
        prev = c;
    }
    out.push_str(&s.finish().emit);
    (out, None)
}

fn every_offset(secret: &str) {
    let p = CompiledProfile::default_profile();
    let text = format!("{}contact: {secret} thanks!\n{}", prose(8), prose(3));
    let whole = p
        .scan_text(&text, Direction::Output)
        .redacted
        .expect("redacted");
    assert!(!whole.contains(secret));
    let at = text.find(secret).unwrap();
    for off in 0..=secret.len() {
        let cut = at + off;
        let (out, blocked) = stream_split(&p, &text, &[cut]);
        assert_eq!(blocked, None);
        assert_eq!(out, whole, "split at +{off}");
        // And in many small chunks around it.
        let cuts: Vec<usize> = (1..text.len()).filter(|i| (i + off) % 7 == 0).collect();
        assert_eq!(
            stream_split(&p, &text, &cuts).0,
            whole,
            "7-byte chunks, phase {off}"
        );
    }
}

#[test]
fn email_split_at_every_offset() {
    every_offset("jane.doe@example.com");
}

#[test]
fn card_split_at_every_offset() {
    every_offset("4111 1111 1111 1111");
}

#[test]
fn aws_key_split_at_every_offset() {
    every_offset("AKIAIOSFODNN7EXAMPLE");
}

#[test]
fn byte_by_byte_equals_whole() {
    let p = CompiledProfile::default_profile();
    let text = format!(
        "{}mail a@b.io and c.d@example.org, card 5555555555554444, ünïcödé ✓ {}",
        prose(20),
        prose(2)
    );
    let whole = p.scan_text(&text, Direction::Output).redacted.unwrap();
    let cuts: Vec<usize> = (1..text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    assert_eq!(stream_split(&p, &text, &cuts).0, whole);
}

#[test]
fn releases_early_with_bounded_hold_back() {
    let p = CompiledProfile::default_profile();
    let mut s = StreamScanner::new(&p, Direction::Output, DEFAULT_HOLD_BACK);
    let text = prose(30);
    let mut emitted = 0;
    for chunk in text.as_bytes().chunks(100) {
        emitted += s.push(std::str::from_utf8(chunk).unwrap()).emit.len();
        assert!(s.held() <= DEFAULT_HOLD_BACK * 3 / 2 + 100);
    }
    assert!(
        emitted >= text.len() - DEFAULT_HOLD_BACK * 3 / 2 - 100,
        "{emitted}"
    );
    emitted += s.finish().emit.len();
    assert_eq!(emitted, text.len());
}

#[test]
fn pem_block_held_until_end_marker() {
    let mut def = ProfileDef::default_profile();
    def.detectors.get_mut("private_key").unwrap().output_action =
        Some(portcullis_guard::Action::Redact);
    let p = CompiledProfile::compile(&def).unwrap();
    let body = "MIIEowIBAAKCAQEAx1234567890abcdefABCDEF+/\n".repeat(40); // ~1.6 KB
    let pem = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----");
    let text = format!("here is the key:\n{pem}\nkeep it safe. {}", prose(2));
    let cuts: Vec<usize> = (1..text.len()).filter(|i| i % 64 == 0).collect();
    let (out, _) = stream_split(&p, &text, &cuts);
    assert!(!out.contains("MIIEow"), "{out}");
    assert!(out.starts_with("here is the key:\n[PRIVATE_KEY_1]\nkeep it safe."));
}

#[test]
fn blocked_stream_stops() {
    let def: ProfileDef = serde_json::from_value(serde_json::json!({
        "detectors": {"github_token": {"action": "block"}}
    }))
    .unwrap();
    let p = CompiledProfile::compile(&def).unwrap();
    let text = format!(
        "{} ghp_16C7e42F292c6912E7710c838347Ae178B4a {}",
        prose(10),
        prose(10)
    );
    let (out, blocked) = stream_split(&p, &text, &[100, 200, 790, 800]);
    assert_eq!(blocked, Some(Detector::GithubToken));
    assert!(!out.contains("ghp_"));
}

#[test]
fn restore_round_trip_including_streams() {
    let def: ProfileDef = serde_json::from_value(serde_json::json!({
        "detectors": {"email": {"action": "redact", "restore": true}, "credit_card": {"action": "redact"}}
    }))
    .unwrap();
    let p = CompiledProfile::compile(&def).unwrap();
    let mut r = Redactor::new();
    let prompt = "Write to jane@example.com about card 4111111111111111; cc jane@example.com";
    let out = p.scan_text_with(prompt, Direction::Input, &mut r);
    let red = out.redacted.unwrap();
    assert_eq!(
        red,
        "Write to [EMAIL_1] about card [CREDIT_CARD_1]; cc [EMAIL_1]"
    );
    // Only restorable placeholders come back.
    assert_eq!(
        r.restore("Dear [EMAIL_1], card [CREDIT_CARD_1]"),
        "Dear jane@example.com, card [CREDIT_CARD_1]"
    );
    // Streamed response: a placeholder split across chunks is restored too.
    let response = format!("{}Sent to [EMAIL_1]. {}", prose(9), prose(1));
    let at = response.find("[EMAIL_1]").unwrap();
    for off in 0..=9 {
        let mut s = StreamScanner::with_redactor(&p, Direction::Output, 128, r.clone());
        let mut got = s.push(&response[..at + off]).emit;
        got.push_str(&s.push(&response[at + off..]).emit);
        got.push_str(&s.finish().emit);
        assert_eq!(
            got,
            response.replace("[EMAIL_1]", "jane@example.com"),
            "offset {off}"
        );
    }
}

/// Many bounded-length detectors (phones, IPs, SSNs, cards, IBANs) and near misses spread
/// over a long stream: whatever the chunk size, the stream equals the whole-text scan (the
/// resumed per-rule searches settle and release matches exactly like one pass would).
#[test]
fn dense_bounded_detectors_equal_whole_text_for_every_chunk_size() {
    let p = CompiledProfile::default_profile();
    let mut text = String::new();
    let items = [
        "call +1 415 555 0134 now",
        "or (212) 555-0188,",
        "ssn 078-05-1120 maybe",
        "card 4111-1111-1111-1111 and 5500 0000 0000 0004;",
        "iban DE89 3704 0044 0532 0130 00 ok",
        "host 192.168.10.254 and fe80::1ff:fe23:4567:890a here",
        "uuid 550e8400-e29b-41d4-a716-446655440000 is no card",
        "log::info!(\"x\"); std::mem::take(&mut v);",
        "version 1.2.3.4 and 0123456789012 digits",
        "mail jo.ann@example.org, 030 1234 5678 (Berlin)",
    ];
    for i in 0..120 {
        text.push_str(items[i % items.len()]);
        text.push_str(if i % 3 == 0 { "\n" } else { " " });
        text.push_str(&prose(i % 2));
    }
    let whole = p.scan_text(&text, Direction::Output);
    let expected = whole.redacted.clone().unwrap_or_else(|| text.clone());
    assert!(whole.findings.len() > 100, "{}", whole.findings.len());
    for size in [1, 3, 7, 16, 61, 100, 257, 700, 1500, 5000] {
        let cuts: Vec<usize> = (size..text.len())
            .step_by(size)
            .filter(|&c| text.is_char_boundary(c))
            .collect();
        let (out, blocked) = stream_split(&p, &text, &cuts);
        assert_eq!(blocked, None);
        assert_eq!(out, expected, "chunk size {size}");
    }
}
