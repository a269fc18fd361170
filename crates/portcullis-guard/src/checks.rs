//! Validators run on candidate matches only (never on the whole text).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Whether byte `b` continues a "word" for boundary purposes.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The byte before `start`, if any.
pub(crate) fn before(text: &str, start: usize) -> Option<u8> {
    start.checked_sub(1).map(|i| text.as_bytes()[i])
}

/// The byte at `end`, if any.
pub(crate) fn after(text: &str, end: usize) -> Option<u8> {
    text.as_bytes().get(end).copied()
}

/// True when the match is not glued to a word character on either side.
pub(crate) fn word_bounded(text: &str, start: usize, end: usize) -> bool {
    !before(text, start).is_some_and(is_word) && !after(text, end).is_some_and(is_word)
}

/// Luhn checksum over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// Card candidate: 13-19 digits, one consistent separator style, a known issuer prefix, Luhn.
pub(crate) fn card(text: &str, start: usize, end: usize) -> bool {
    if !word_bounded(text, start, end) {
        return false;
    }
    // A card number glued to a decimal point or a dash-number is part of something else.
    if matches!(before(text, start), Some(b'.' | b'-' | b'+' | b'/' | b'#'))
        || matches!(after(text, end), Some(b'-' | b'/'))
        || (after(text, end) == Some(b'.')
            && text.as_bytes().get(end + 1).is_some_and(u8::is_ascii_digit))
    {
        return false;
    }
    let s = &text.as_bytes()[start..end];
    let digits: Vec<u8> = s.iter().copied().filter(u8::is_ascii_digit).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let seps: Vec<u8> = s.iter().copied().filter(|b| !b.is_ascii_digit()).collect();
    if seps.windows(2).any(|w| w[0] != w[1]) {
        return false;
    }
    if digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    known_issuer(&digits) && luhn_valid(&digits)
}

fn known_issuer(d: &[u8]) -> bool {
    let n = |k: usize| -> u32 { d[..k].iter().fold(0, |a, &b| a * 10 + u32::from(b - b'0')) };
    let len = d.len();
    match d[0] {
        b'4' => matches!(len, 13 | 16 | 19),
        b'5' => (51..=55).contains(&n(2)) && len == 16,
        b'2' => (2221..=2720).contains(&n(4)) && len == 16,
        b'3' => match n(2) {
            34 | 37 => len == 15,
            35 => (16..=19).contains(&len),
            36 | 38 | 39 | 30 => (14..=19).contains(&len),
            _ => false,
        },
        b'6' => {
            n(4) == 6011 || n(2) == 65 || (644..=649).contains(&n(3)) || n(2) == 62 || n(2) == 60
        }
        _ => false,
    }
}

/// IBAN total length per country code (ISO 13616 registry, common subset).
fn iban_length(cc: &[u8]) -> Option<usize> {
    #[rustfmt::skip]
    const TABLE: &[(&str, usize)] = &[
        ("AD", 24), ("AE", 23), ("AL", 28), ("AT", 20), ("AZ", 28), ("BA", 20), ("BE", 16),
        ("BG", 22), ("BH", 22), ("BR", 29), ("BY", 28), ("CH", 21), ("CR", 22), ("CY", 28),
        ("CZ", 24), ("DE", 22), ("DK", 18), ("DO", 28), ("EE", 20), ("EG", 29), ("ES", 24),
        ("FI", 18), ("FO", 18), ("FR", 27), ("GB", 22), ("GE", 22), ("GI", 23), ("GL", 18),
        ("GR", 27), ("GT", 28), ("HR", 21), ("HU", 28), ("IE", 22), ("IL", 23), ("IQ", 23),
        ("IS", 26), ("IT", 27), ("JO", 30), ("KW", 30), ("KZ", 20), ("LB", 28), ("LC", 32),
        ("LI", 21), ("LT", 20), ("LU", 20), ("LV", 21), ("MC", 27), ("MD", 24), ("ME", 22),
        ("MK", 19), ("MR", 27), ("MT", 31), ("MU", 30), ("NL", 18), ("NO", 15), ("PK", 24),
        ("PL", 28), ("PS", 29), ("PT", 25), ("QA", 29), ("RO", 24), ("RS", 22), ("SA", 24),
        ("SC", 31), ("SE", 24), ("SI", 19), ("SK", 24), ("SM", 27), ("TL", 23), ("TN", 24),
        ("TR", 26), ("UA", 29), ("VA", 22), ("VG", 24), ("XK", 20),
    ];
    TABLE
        .iter()
        .find(|(c, _)| c.as_bytes() == cc)
        .map(|&(_, l)| l)
}

/// Mod-97 check of an IBAN given as uppercase alphanumerics without spaces.
pub fn iban_mod97(iban: &[u8]) -> bool {
    let mut rem = 0u32;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// IBAN candidate: trims the candidate to the country's length, then mod-97.
/// Returns the end of the accepted span.
pub(crate) fn iban(text: &str, start: usize, end: usize) -> Option<usize> {
    if before(text, start).is_some_and(is_word) {
        return None;
    }
    let bytes = text.as_bytes();
    let want = iban_length(&bytes[start..start + 2])?;
    let mut compact = Vec::with_capacity(want);
    let mut stop = start;
    for (i, &b) in bytes[start..end].iter().enumerate() {
        if b != b' ' {
            compact.push(b);
            stop = start + i + 1;
        }
        if compact.len() == want {
            break;
        }
    }
    if compact.len() != want || after(text, stop).is_some_and(is_word) {
        return None;
    }
    iban_mod97(&compact).then_some(stop)
}

/// US SSN `AAA-GG-SSSS` outside the never-issued ranges.
pub(crate) fn ssn(text: &str, start: usize, end: usize) -> bool {
    if !word_bounded(text, start, end)
        || matches!(before(text, start), Some(b'-' | b'.'))
        || matches!(after(text, end), Some(b'-'))
    {
        return false;
    }
    let s = &text[start..end];
    let (area, rest) = s.split_at(3);
    let group = &rest[1..3];
    let serial = &rest[4..];
    let area: u32 = area.parse().unwrap_or(0);
    !(area == 0 || area == 666 || area >= 900 || group == "00" || serial == "0000")
        && s != "078-05-1120"
        && s != "219-09-9999"
}

/// Phone candidate: digit count and boundaries; `+` numbers follow E.164 (8-15 digits).
pub(crate) fn phone(text: &str, start: usize, end: usize) -> bool {
    let b = before(text, start);
    if b.is_some_and(|c| is_word(c) || matches!(c, b'-' | b'.' | b'/' | b'+' | b'#' | b'$'))
        || after(text, end).is_some_and(|c| is_word(c) || c == b'-' || c == b'/')
        || (after(text, end) == Some(b'.')
            && text.as_bytes().get(end + 1).is_some_and(u8::is_ascii_digit))
    {
        return false;
    }
    let s = &text.as_bytes()[start..end];
    let digits = s.iter().filter(|b| b.is_ascii_digit()).count();
    // Separators come alone, except around a parenthesised area code: "+1 (415) 555".
    let glued = s[1..].windows(2).any(|w| {
        !w[0].is_ascii_digit()
            && !w[1].is_ascii_digit()
            && !matches!(w, [b')', b' ' | b'-' | b'.'] | [b' ' | b'-', b'('])
    });
    if glued {
        return false;
    }
    if s[0] == b'+' {
        (8..=15).contains(&digits)
    } else {
        (10..=11).contains(&digits)
    }
}

/// IPv4 with octets <= 255, not part of a longer dotted version string.
pub(crate) fn ipv4(text: &str, start: usize, end: usize) -> bool {
    if !word_bounded(text, start, end)
        || matches!(before(text, start), Some(b'.'))
        || (after(text, end) == Some(b'.')
            && text.as_bytes().get(end + 1).is_some_and(u8::is_ascii_digit))
    {
        return false;
    }
    // "v1.2.3.4" / "version 1.2.3.4" are versions, not hosts.
    let head = &text[..start];
    if head.ends_with('v') || head.trim_end().to_ascii_lowercase().ends_with("version") {
        return false;
    }
    text[start..end].parse::<Ipv4Addr>().is_ok()
}

/// IPv6: parses, not glued to words/colons, and not a short `a::b` code path.
pub(crate) fn ipv6(text: &str, start: usize, end: usize) -> bool {
    if !word_bounded(text, start, end)
        || matches!(before(text, start), Some(b':'))
        || matches!(after(text, end), Some(b':'))
    {
        return false;
    }
    let s = &text[start..end];
    if s.parse::<Ipv6Addr>().is_err() {
        return false;
    }
    let groups = s.split(':').filter(|g| !g.is_empty()).count();
    groups >= 3 || s == "::1"
}

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// UUID in 8-4-4-4-12 hex form.
pub(crate) fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, &b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// Generic secret value: long, random-looking, not a UUID or a SHA-1/SHA-256 digest.
pub(crate) fn high_entropy(s: &[u8]) -> bool {
    if s.len() < 32 || is_uuid(s) {
        return false;
    }
    if s.iter().all(u8::is_ascii_hexdigit) {
        return !matches!(s.len(), 40 | 64) && shannon_entropy(s) >= 3.0;
    }
    let has_digit = s.iter().any(u8::is_ascii_digit);
    let has_alpha = s.iter().any(u8::is_ascii_alphabetic);
    has_digit && has_alpha && shannon_entropy(s) >= 3.5
}

/// Provider keys are random: they mix upper case, lower case and digits.
pub(crate) fn mixed_charset(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_uppercase)
        && s.iter().any(u8::is_ascii_lowercase)
        && s.iter().any(u8::is_ascii_digit)
}

/// JWT: the header segment must decode (base64url) to a JSON object naming `alg` or `typ`.
pub(crate) fn jwt(text: &str, start: usize, end: usize) -> bool {
    if !word_bounded(text, start, end) {
        return false;
    }
    let header = text[start..end].split('.').next().unwrap_or("");
    let decoded = base64url_decode(header.as_bytes());
    decoded.first() == Some(&b'{')
        && (contains(&decoded, b"\"alg\"") || contains(&decoded, b"\"typ\""))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn base64url_decode(s: &[u8]) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s.iter().take(512) {
        let Some(v) = val(c) else { break };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_mod97() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(!iban_mod97(b"DE89370400440532013001"));
    }

    #[test]
    fn entropy() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!(is_uuid(b"550e8400-e29b-41d4-a716-446655440000"));
    }
}
