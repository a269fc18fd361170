#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// One SSE `data:` payload and when it arrived.
#[derive(Debug, Clone)]
pub struct Event {
    pub data: String,
    pub at: Duration,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event is not JSON ({e}): {}", self.data))
    }
}

/// Outcome of reading an SSE body to its end.
#[derive(Debug)]
pub struct SseRead {
    pub events: Vec<Event>,
    /// The body ended with an error (connection dropped mid-stream).
    pub error: Option<String>,
    /// Raw text received.
    pub raw: String,
}

/// Reads an SSE response incrementally, recording the arrival time of each event.
pub async fn read_sse(resp: reqwest::Response) -> SseRead {
    let start = Instant::now();
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut raw = String::new();
    let mut events = Vec::new();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => {
                let text = std::str::from_utf8(&bytes).expect("utf-8 stream");
                raw.push_str(text);
                buf.push_str(text);
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    for line in block.lines() {
                        if let Some(data) = line.strip_prefix("data: ") {
                            events.push(Event {
                                data: data.to_owned(),
                                at: start.elapsed(),
                            });
                        }
                    }
                }
            }
            Err(e) => {
                error = Some(format!("{e:?}"));
                break;
            }
        }
    }
    SseRead { events, error, raw }
}

pub fn chat_body(model: &str, user: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": user}
        ]
    })
}

/// A whole response body read to its end; `error` is set if the connection broke.
#[derive(Debug)]
pub struct RawRead {
    pub bytes: Vec<u8>,
    pub error: Option<String>,
}

/// Reads a body to its end without failing on a broken connection.
pub async fn read_raw(resp: reqwest::Response) -> RawRead {
    let mut stream = resp.bytes_stream();
    let mut bytes = Vec::new();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => bytes.extend_from_slice(&b),
            Err(e) => {
                error = Some(format!("{e:?}"));
                break;
            }
        }
    }
    RawRead { bytes, error }
}

/// One parsed SSE event: optional `event:` name and the `data:` payload.
#[derive(Debug, Clone)]
pub struct NamedEvent {
    pub event: Option<String>,
    pub data: String,
}

impl NamedEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event is not JSON ({e}): {}", self.data))
    }
}

/// Parses complete SSE events from text with LF or CRLF line ends (per the SSE spec).
pub fn parse_sse(text: &str) -> Vec<NamedEvent> {
    let normalized = text.replace("\r\n", "\n");
    normalized
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            NamedEvent {
                event,
                data: data.join("\n"),
            }
        })
        .collect()
}
