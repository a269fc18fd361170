//! Request logs: the access note of every data-plane request becomes one record that is
//! queued (a cheap `try_send`, never a wait) and written to the store in batches by a
//! [`BatchWriter`]. Bodies are captured only for teams whose policy sets `log_bodies`, and
//! are redacted with the team's guardrail profile (or the default profile) in the writer
//! task, off the request path. A purge task deletes records older than the retention.

use crate::access::AccessNote;
use crate::state::AppState;
use crate::writer::{BatchWriter, Flush};
use bytes::Bytes;
use portcullis_guard::{CompiledProfile, Direction};
use portcullis_policy::KeyEntry;
use portcullis_store::{NewRequestLog, Store};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Largest part of a body kept in a record (bytes); longer bodies are cut, marked, after
/// redaction.
pub const BODY_CAP: usize = 64 * 1024;
/// Extra bytes captured past [`BODY_CAP`] so a secret straddling the cut is still seen
/// whole by the redactor before the cut.
const BODY_MARGIN: usize = 4 * 1024;
/// Bytes captured per body at most.
pub const CAPTURE_CAP: usize = BODY_CAP + BODY_MARGIN;
/// How often expired records are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The default guardrail profile, used to redact bodies of teams without one.
static DEFAULT_PROFILE: LazyLock<Arc<CompiledProfile>> =
    LazyLock::new(|| Arc::new(CompiledProfile::default_profile()));

/// The profile that redacts logged bodies: the team's own, else the default.
pub fn redaction_profile(team_profile: Option<Arc<CompiledProfile>>) -> Arc<CompiledProfile> {
    team_profile.unwrap_or_else(|| DEFAULT_PROFILE.clone())
}

/// Raw bodies of a request whose team logs bodies, redacted before they are stored.
#[derive(Clone)]
pub struct RawBodies {
    /// The profile that redacts them.
    pub profile: Arc<CompiledProfile>,
    /// The request body (at most [`CAPTURE_CAP`] bytes).
    pub request: Bytes,
    /// The response body as sent (at most [`CAPTURE_CAP`] bytes).
    pub response: Bytes,
    /// The response is a stream of server-sent events: its text is reassembled before
    /// redaction, so a value split across events is still found.
    pub stream: bool,
}

/// One queued request log.
#[derive(Clone)]
pub struct LogEntry {
    /// The record, bodies not yet filled in.
    pub record: NewRequestLog,
    /// Bodies to redact and store, when the team logs them.
    pub bodies: Option<Arc<RawBodies>>,
}

/// The request-log queue and its writer task.
pub type RequestLogWriter = BatchWriter<LogEntry>;

/// Starts the request-log writer for `store`, holding at most `capacity` records.
pub fn start_writer(store: &Store, capacity: usize) -> RequestLogWriter {
    let store = store.clone();
    let flush: Flush<LogEntry> = Arc::new(move |entries: Arc<[LogEntry]>| {
        let store = store.clone();
        Box::pin(async move {
            let written = if entries.iter().any(|e| e.bodies.is_some()) {
                let rows = tokio::task::spawn_blocking(move || finish_all(&entries))
                    .await
                    .map_err(|e| format!("redaction task failed: {e}"))?;
                store.record_request_logs(&rows).await
            } else {
                let rows: Vec<&NewRequestLog> = entries.iter().map(|e| &e.record).collect();
                store.record_request_logs(&rows).await
            };
            written.map_err(|e| e.to_string())
        })
    });
    BatchWriter::start("request_log", capacity, flush)
}

fn finish_all(entries: &[LogEntry]) -> Vec<NewRequestLog> {
    entries
        .iter()
        .map(|e| {
            let mut record = e.record.clone();
            if let Some(b) = &e.bodies {
                record.request_body = Some(redact_body(&b.profile, &b.request, Direction::Input));
                let text = b.stream.then(|| stream_text(&b.response)).flatten();
                let response = text.as_deref().map_or(&b.response[..], str::as_bytes);
                record.response_body = Some(redact_body(&b.profile, response, Direction::Output));
            }
            record
        })
        .collect()
}

/// The text a streamed answer carried: the deltas of its events concatenated (OpenAI chat
/// `choices[].delta.content` and tool-call arguments, Anthropic `delta.text` and
/// `delta.partial_json`); `None` when no event carries any.
pub fn stream_text(raw: &[u8]) -> Option<String> {
    use serde_json::Value;
    let mut out = String::new();
    let mut push = |v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str) {
            out.push_str(s);
        }
    };
    for line in String::from_utf8_lossy(raw).lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<Value>(data.trim()) else {
            continue;
        };
        for choice in event["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            push(delta.get("content"));
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                push(call["function"].get("arguments"));
            }
        }
        push(event["delta"].get("text"));
        push(event["delta"].get("partial_json"));
    }
    (!out.is_empty()).then_some(out)
}

/// A body as stored: every guardrail finding replaced by its placeholder, then cut at
/// [`BODY_CAP`] bytes (on a character boundary) with a marker.
pub fn redact_body(profile: &CompiledProfile, raw: &[u8], dir: Direction) -> String {
    let text = String::from_utf8_lossy(raw);
    let redacted = profile.redact_all(&text, dir);
    if redacted.len() <= BODY_CAP && raw.len() < CAPTURE_CAP {
        return redacted.into_owned();
    }
    let mut cut = BODY_CAP.min(redacted.len());
    while !redacted.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…[truncated]", &redacted[..cut])
}

/// Asks for the bodies of this request to be logged when the key's team sets
/// `log_bodies` in the active policy (redacted with the team's guardrail profile, else the
/// default profile). A no-op when request logs are off or the team does not log bodies.
pub fn capture_bodies(state: &AppState, key: &KeyEntry, note: &AccessNote, body: &Bytes) {
    if state.request_logs.is_none() {
        return;
    }
    let snapshot = state.policy.load();
    let Some(active) = &snapshot.active else {
        return;
    };
    let Some(profile) = active.compiled.log_bodies(key.team.as_deref()) else {
        return;
    };
    let profile = profile.and_then(|name| active.guards.get(name).cloned());
    note.log_bodies(redaction_profile(profile), body);
}

/// Deletes records older than `retention` now and then every hour, until aborted.
pub fn spawn_purge(store: Store, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let before = crate::auth::unix_now() - retention.as_secs() as i64;
            match store.purge_request_logs(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "request logs past retention purged"),
                Err(e) => tracing::warn!(error = %e, "cannot purge request logs"),
            }
            tokio::time::sleep(PURGE_EVERY).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_redacted_then_cut() {
        let profile = CompiledProfile::default_profile();
        let body = br#"{"messages":[{"role":"user","content":"mail jane.doe@example.com"}]}"#;
        let stored = redact_body(&profile, body, Direction::Input);
        assert!(!stored.contains("jane.doe@example.com"), "{stored}");
        assert!(stored.contains("[EMAIL_1]"), "{stored}");

        let long = format!("{}jane.doe@example.com", "x ".repeat(BODY_CAP));
        let stored = redact_body(&profile, long.as_bytes(), Direction::Input);
        assert!(stored.ends_with("…[truncated]"));
        assert!(stored.len() <= BODY_CAP + "…[truncated]".len());
    }

    #[test]
    fn a_value_split_across_stream_events_is_redacted_whole() {
        let raw = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"mail jane.doe@exa\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"mple.com now\"}}]}\n\n",
            "event: content_block_delta\ndata: {\"delta\":{\"text\":\" ok\"}}\n\n",
            "data: [DONE]\n\n"
        );
        let text = stream_text(raw.as_bytes()).unwrap();
        assert_eq!(text, "mail jane.doe@example.com now ok");
        let profile = CompiledProfile::default_profile();
        let stored = redact_body(&profile, text.as_bytes(), Direction::Output);
        assert_eq!(stored, "mail [EMAIL_1] now ok");
        assert_eq!(stream_text(b": ping\n\n"), None);
    }

    #[test]
    fn blocked_and_logged_findings_are_redacted_too() {
        let profile = CompiledProfile::default_profile();
        let key = "AKIAIOSFODNN7EXAMPLE";
        let stored = redact_body(
            &profile,
            format!("my key is {key} from 10.1.2.3").as_bytes(),
            Direction::Input,
        );
        assert!(!stored.contains(key), "{stored}");
        assert!(!stored.contains("10.1.2.3"), "{stored}");
    }
}
