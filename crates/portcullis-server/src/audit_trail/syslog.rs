//! RFC 5424 formatting of audit records (a few lines; no crate needed):
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [portcullis@32473 ...] MSG`.
//!
//! Facility 13 (log audit); severity notice for `ok`, warning for `denied`, error for
//! `error`. MSGID is the action; the structured element carries id, actor, target,
//! outcome and the chain hash; MSG is the whole record as JSON. 32473 is the private
//! enterprise number reserved for documentation (RFC 5612).

use portcullis_store::AuditRecord;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

/// The log-audit facility.
const FACILITY: u8 = 13;
/// SD-ID of the structured element.
const SD_ID: &str = "portcullis@32473";

/// How a message is framed on its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// As is (one UDP datagram per message).
    Datagram,
    /// `LEN SP MSG` octet counting (RFC 6587), for TCP.
    OctetCounted,
}

/// Formats one record.
pub fn format(record: &AuditRecord, app_name: &str, frame: Frame) -> String {
    let severity: u8 = match record.outcome.as_str() {
        "ok" => 5,
        "denied" => 4,
        _ => 3,
    };
    let pri = FACILITY * 8 + severity;
    let time = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + Duration::from_secs(record.at.max(0) as u64),
    );
    let msg = serde_json::to_string(record).unwrap_or_default();
    let line = format!(
        "<{pri}>1 {time} {} {} {} {} [{SD_ID} id=\"{}\" actor=\"{}\" target=\"{}\" outcome=\"{}\" hash=\"{}\"] {msg}",
        header_field(hostname(), 255),
        header_field(app_name, 48),
        std::process::id(),
        header_field(&record.action, 32),
        record.id,
        param_value(&record.actor),
        param_value(&record.target),
        param_value(&record.outcome),
        param_value(record.hash.as_deref().unwrap_or("")),
    );
    match frame {
        Frame::Datagram => line,
        Frame::OctetCounted => format!("{} {line}", line.len()),
    }
}

/// A header field: printable ASCII without spaces, at most `max` characters, `-` when empty.
fn header_field(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

/// A PARAM-VALUE with `"`, `\` and `]` escaped.
fn param_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// This host's name (from the kernel), `-` when unknown.
fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::env::var("HOSTNAME"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: &str) -> AuditRecord {
        AuditRecord {
            id: 7,
            at: 1_800_000_000,
            actor: "key_\"x]".into(),
            action: "keys.create".into(),
            target: "key_abc".into(),
            outcome: outcome.into(),
            detail: serde_json::json!({"role": "developer"}),
            prev_hash: Some("00".into()),
            hash: Some("ab12".into()),
        }
    }

    #[test]
    fn rfc5424_shape() {
        let line = format(&record("ok"), "portcullis", Frame::Datagram);
        assert!(line.starts_with("<109>1 2027-01-15T08:00:00Z "), "{line}");
        let fields: Vec<&str> = line.splitn(8, ' ').collect();
        assert_eq!(fields[3], "portcullis");
        assert_eq!(fields[4], std::process::id().to_string());
        assert_eq!(fields[5], "keys.create");
        assert!(line.contains(
            "[portcullis@32473 id=\"7\" actor=\"key_\\\"x\\]\" target=\"key_abc\" outcome=\"ok\" hash=\"ab12\"]"
        ), "{line}");
        let json = line.split("\"ab12\"] ").nth(1).unwrap();
        let back: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back["detail"]["role"], "developer");
        assert_eq!(back["hash"], "ab12");
    }

    #[test]
    fn severity_follows_the_outcome_and_tcp_is_octet_counted() {
        assert!(format(&record("denied"), "p", Frame::Datagram).starts_with("<108>1 "));
        assert!(format(&record("error"), "p", Frame::Datagram).starts_with("<107>1 "));
        let framed = format(&record("ok"), "p", Frame::OctetCounted);
        let (len, rest) = framed.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert_eq!(header_field("", 5), "-");
        assert_eq!(header_field("a b\u{e9}cdefgh", 5), "abcde");
    }
}
