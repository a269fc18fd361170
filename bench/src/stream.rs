//! Stream time-to-first-event (TTFE): the time from sending a `"stream": true` chat
//! request to receiving the first complete `data:` line of its server-sent events.
//!
//! Requests are sequential (one in flight at a time) so the figure is pure latency. The
//! two sides are measured one after the other, not interleaved: work a gateway does after
//! each stream (logging, usage accounting) would otherwise land on the next direct request
//! and make the gateway look better than it is. A side takes well under a second, so
//! drift of the machine between them is small.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::StatusCode;

use crate::load::Target;

/// Requests sent to each side before measuring, to warm connections and caches.
const WARMUP_REQUESTS: usize = 10;

/// Longest a single stream may take before it is counted as an error.
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// TTFE samples for one side (direct or gateway).
#[derive(Debug, Default)]
pub struct TtfeResult {
    /// Time to the first event of each successful stream, in nanoseconds, sorted.
    pub samples_ns: Vec<u64>,
    /// Time to the response headers of each successful stream, in nanoseconds, sorted.
    pub headers_ns: Vec<u64>,
    /// Streams that failed: non-200, no `data:` line, no `[DONE]`, transport error.
    pub errors: u64,
    /// The first few distinct error messages.
    pub error_samples: Vec<String>,
}

impl TtfeResult {
    /// The `q` quantile (0..=1, nearest rank) in microseconds, or `None` without samples.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        quantile_us(&self.samples_ns, q)
    }

    /// The median time to the response headers in microseconds, or `None` without samples.
    pub fn headers_median_us(&self) -> Option<f64> {
        quantile_us(&self.headers_ns, 0.5)
    }

    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.error_samples.len() < 3 && !self.error_samples.contains(&msg) {
            self.error_samples.push(msg);
        }
    }
}

/// The `q` quantile (nearest rank) of sorted nanosecond samples, in microseconds.
fn quantile_us(sorted_ns: &[u64], q: f64) -> Option<f64> {
    if sorted_ns.is_empty() {
        return None;
    }
    let rank = ((sorted_ns.len() - 1) as f64 * q).round() as usize;
    Some(sorted_ns[rank] as f64 / 1_000.0)
}

/// A target, its (lazily opened) connection and what was measured so far.
struct Side<'a> {
    target: &'a Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    result: TtfeResult,
}

impl Side<'_> {
    /// Runs one stream; records its TTFE when `record` is set and it succeeds.
    async fn one(&mut self, record: bool) {
        let outcome =
            tokio::time::timeout(STREAM_TIMEOUT, stream_once(&mut self.sender, self.target)).await;
        match outcome {
            Ok(Ok((headers, ttfe))) => {
                if record {
                    self.result.headers_ns.push(headers.as_nanos() as u64);
                    self.result.samples_ns.push(ttfe.as_nanos() as u64);
                }
            }
            Ok(Err(e)) => {
                self.sender = None;
                self.result
                    .error(format!("{} stream: {e:#}", self.target.label));
            }
            Err(_) => {
                self.sender = None;
                self.result.error(format!(
                    "{} stream: no end within {} s",
                    self.target.label,
                    STREAM_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

/// Measures TTFE of `n` sequential streams to `target`, after a short warmup.
pub async fn measure(target: &Target, n: usize) -> TtfeResult {
    let mut side = Side {
        target,
        sender: None,
        result: TtfeResult::default(),
    };
    for i in 0..WARMUP_REQUESTS + n {
        side.one(i >= WARMUP_REQUESTS).await;
    }
    side.result.samples_ns.sort_unstable();
    side.result.headers_ns.sort_unstable();
    side.result
}

/// Sends one streaming request, returns its times to the response headers and to the first
/// `data:` line, and reads the rest of the stream, which must end with `data: [DONE]`.
async fn stream_once(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    target: &Target,
) -> Result<(Duration, Duration)> {
    if let Some(s) = sender.as_mut() {
        if s.ready().await.is_err() {
            // The server closed the keep-alive connection; not counted against TTFE.
            *sender = None;
        }
    }
    let s = match sender {
        Some(s) => s,
        None => sender.insert(target.connect().await?),
    };
    let start = Instant::now();
    let resp = s.send_request(target.request()).await?;
    let headers = start.elapsed();
    let status = resp.status();
    let mut body = resp.into_body();
    if status != StatusCode::OK {
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let excerpt = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        bail!("HTTP {status}: {excerpt}");
    }
    let mut head = Vec::with_capacity(1024);
    let mut ttfe = None;
    let mut tail: Vec<u8> = Vec::with_capacity(64);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if ttfe.is_none() {
            head.extend_from_slice(&data);
            if has_complete_data_line(&head) {
                ttfe = Some(start.elapsed());
            }
        }
        tail.extend_from_slice(&data);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    let Some(ttfe) = ttfe else {
        bail!("stream ended without a data: line");
    };
    if !contains(&tail, b"data: [DONE]") {
        bail!("stream did not end with data: [DONE]");
    }
    Ok((headers, ttfe))
}

/// Whether `buf` holds a line starting with `data:` that is terminated by a newline.
fn has_complete_data_line(buf: &[u8]) -> bool {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            if buf[line_start..i].starts_with(b"data:") {
                return true;
            }
            line_start = i + 1;
        }
    }
    false
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_line_needs_its_newline() {
        assert!(!has_complete_data_line(b"data: {\"a\":1}"));
        assert!(has_complete_data_line(b"data: {\"a\":1}\n"));
        assert!(has_complete_data_line(b": comment\n\ndata: {}\r\n"));
        assert!(!has_complete_data_line(b"event: x\n"));
        assert!(!has_complete_data_line(b"xdata: y\n"));
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let r = TtfeResult {
            samples_ns: vec![1_000, 2_000, 3_000, 4_000, 5_000],
            ..Default::default()
        };
        assert_eq!(r.quantile_us(0.5), Some(3.0));
        assert_eq!(r.quantile_us(1.0), Some(5.0));
        assert_eq!(TtfeResult::default().quantile_us(0.5), None);
    }
}
