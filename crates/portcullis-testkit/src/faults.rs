//! Fault injection: queued faults and faults selected by the request's model name.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use tokio::sync::Notify;

pub(crate) use crate::flavor::Flavor;
use crate::recorder::lock;
use crate::respond::{self, Body, StreamPlan};
use crate::server::Ctx;

/// A fault applied to one request.
///
/// Queue one with [`crate::MockUpstream::push_fault`], or select one through the request's
/// `model` (see [`Fault::from_model`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status. `body` defaults to an OpenAI error JSON;
    /// `retry_after` (seconds) sets the `Retry-After` header.
    Status {
        status: u16,
        body: Option<String>,
        retry_after: Option<u64>,
    },
    /// Sleep, then answer normally.
    Delay(Duration),
    /// Close the TCP connection without sending any response.
    DropConnection,
    /// `200 OK` with a body that is not valid JSON (for stream requests: an SSE stream whose
    /// data is not valid JSON).
    MalformedBody,
    /// Stream requests: send this many SSE events, then abort the connection (no `[DONE]`).
    /// Non-stream requests are answered normally.
    StreamDropAfter(usize),
    /// Stream requests: send this many SSE events, pause for the duration, then continue.
    /// Non-stream requests are answered normally.
    StreamStallAfter(usize, Duration),
    /// Stream requests: send this many events, then the provider's mid-stream error event
    /// (OpenAI `data: {"error":..}`, Anthropic `event: error` with `overloaded_error`, Gemini
    /// `data: {"error":..}`, Bedrock a `modelStreamErrorException` frame) and end the body
    /// cleanly. Non-stream requests are answered normally.
    StreamErrorAfter(usize),
}

impl Fault {
    /// A status fault with the default OpenAI error body and no `Retry-After`.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            body: None,
            retry_after: None,
        }
    }

    /// The fault a model name asks for, if any:
    ///
    /// | model                          | fault                                   |
    /// |--------------------------------|-----------------------------------------|
    /// | `fault-status-503`             | `Status { 503 }` (any code 100..=599)    |
    /// | `fault-status-429-retry-7`     | `Status { 429, retry_after: Some(7) }`  |
    /// | `fault-delay-250`              | `Delay(250ms)`                          |
    /// | `fault-drop`                   | `DropConnection`                        |
    /// | `fault-malformed`              | `MalformedBody`                         |
    /// | `fault-stream-drop-3`          | `StreamDropAfter(3)`                    |
    /// | `fault-stream-stall-2-500`     | `StreamStallAfter(2, 500ms)`            |
    /// | `fault-stream-error-2`         | `StreamErrorAfter(2)`                   |
    ///
    /// `fault-rate-30` is not a single fault: 30% of the requests naming it (exactly 30 of
    /// every 100, spread evenly) are answered 503, the others normally.
    ///
    /// For Gemini, Azure and Bedrock the "model" is the model/deployment in the URL path.
    pub fn from_model(model: &str) -> Option<Fault> {
        let rest = model.strip_prefix("fault-")?;
        if rest == "drop" {
            return Some(Fault::DropConnection);
        }
        if rest == "malformed" {
            return Some(Fault::MalformedBody);
        }
        if let Some(spec) = rest.strip_prefix("status-") {
            let (code, retry) = match spec.split_once("-retry-") {
                Some((code, secs)) => (code, Some(secs.parse::<u64>().ok()?)),
                None => (spec, None),
            };
            let status = code.parse::<u16>().ok()?;
            if !(100..=599).contains(&status) {
                return None;
            }
            return Some(Fault::Status {
                status,
                body: None,
                retry_after: retry,
            });
        }
        if let Some(ms) = rest.strip_prefix("delay-") {
            return Some(Fault::Delay(Duration::from_millis(ms.parse().ok()?)));
        }
        if let Some(n) = rest.strip_prefix("stream-drop-") {
            return Some(Fault::StreamDropAfter(n.parse().ok()?));
        }
        if let Some(n) = rest.strip_prefix("stream-error-") {
            return Some(Fault::StreamErrorAfter(n.parse().ok()?));
        }
        if let Some(spec) = rest.strip_prefix("stream-stall-") {
            let (n, ms) = spec.split_once('-')?;
            return Some(Fault::StreamStallAfter(
                n.parse().ok()?,
                Duration::from_millis(ms.parse().ok()?),
            ));
        }
        None
    }
}

/// FIFO of queued faults; an atomic length keeps the no-fault path lock-free.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    queue: Mutex<VecDeque<Fault>>,
    len: AtomicUsize,
}

impl FaultQueue {
    pub(crate) fn push(&self, fault: Fault) {
        let mut q = lock(&self.queue);
        q.push_back(fault);
        self.len.store(q.len(), Ordering::Release);
    }

    pub(crate) fn pop(&self) -> Option<Fault> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = lock(&self.queue);
        let fault = q.pop_front();
        self.len.store(q.len(), Ordering::Release);
        fault
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

/// What is left of a fault once its immediate part (status, delay, drop) has been applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Deferred {
    #[default]
    None,
    Malformed,
    StreamDrop(usize),
    StreamStall(usize, Duration),
    StreamError(usize),
}

impl Deferred {
    /// `self` unless it is `None`, then `other`.
    pub(crate) fn or(self, other: Deferred) -> Deferred {
        if self == Deferred::None {
            other
        } else {
            self
        }
    }

    /// The pacing of a stream under this fault; `error_event` builds the provider's
    /// mid-stream error event (only called for `StreamError`).
    pub(crate) fn stream_plan_with(
        self,
        chunk_delay: Duration,
        error_event: impl FnOnce() -> Bytes,
    ) -> StreamPlan {
        let mut plan = self.stream_plan(chunk_delay);
        if let Deferred::StreamError(n) = self {
            plan.error_after = Some((n, error_event()));
        }
        plan
    }

    /// The pacing of an SSE stream under this fault (ignores `StreamError`).
    pub(crate) fn stream_plan(self, chunk_delay: Duration) -> StreamPlan {
        let mut plan = StreamPlan {
            chunk_delay,
            ..StreamPlan::default()
        };
        match self {
            Deferred::StreamDrop(n) => plan.drop_after = Some(n),
            Deferred::StreamStall(n, d) => plan.stall_after = Some((n, d)),
            Deferred::None | Deferred::Malformed | Deferred::StreamError(_) => {}
        }
        plan
    }
}

/// The percentage of a `fault-rate-N` model name (N in 0..=100).
pub(crate) fn rate_percent(model: &str) -> Option<u64> {
    let n: u64 = model.strip_prefix("fault-rate-")?.parse().ok()?;
    (n <= 100).then_some(n)
}

/// Whether request number `n` (0-based) of a `fault-rate-{percent}` model fails: exactly
/// `percent` of every 100 consecutive requests, spread evenly.
pub(crate) fn rate_fails(n: u64, percent: u64) -> bool {
    (n + 1) * percent / 100 != n * percent / 100
}

/// Applies the fault selected by `model` (if any) and merges it with the queued one.
pub(crate) async fn model_fault(ctx: &Ctx<'_>, model: &str) -> Result<Deferred, Response<Body>> {
    if let Some(percent) = rate_percent(model) {
        let n = ctx.shared.rate_seq.fetch_add(1, Ordering::Relaxed);
        if rate_fails(n, percent) {
            return Err(status_response(ctx.flavor, 503, None, None));
        }
        return Ok(ctx.queued);
    }
    let from_model = apply(Fault::from_model(model), ctx.kill, ctx.flavor).await?;
    Ok(ctx.queued.or(from_model))
}

/// Applies the immediate part of `fault`; status faults answer in `flavor`'s error shape.
///
/// Returns `Err(response)` when the fault decides the answer. For `DropConnection` this
/// never returns: the connection is killed and the future stays pending until dropped.
pub(crate) async fn apply(
    fault: Option<Fault>,
    kill: &Notify,
    flavor: Flavor,
) -> Result<Deferred, Response<Body>> {
    let Some(fault) = fault else {
        return Ok(Deferred::None);
    };
    match fault {
        Fault::Status {
            status,
            body,
            retry_after,
        } => Err(status_response(flavor, status, body, retry_after)),
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            Ok(Deferred::None)
        }
        Fault::DropConnection => {
            kill.notify_one();
            std::future::pending::<()>().await;
            unreachable!("a pending future never completes")
        }
        Fault::MalformedBody => Ok(Deferred::Malformed),
        Fault::StreamDropAfter(n) => Ok(Deferred::StreamDrop(n)),
        Fault::StreamStallAfter(n, d) => Ok(Deferred::StreamStall(n, d)),
        Fault::StreamErrorAfter(n) => Ok(Deferred::StreamError(n)),
    }
}

/// Keeps the kill switch type in one place for callers holding an `Arc`.
pub(crate) type Kill = Arc<Notify>;

fn status_response(
    flavor: Flavor,
    status: u16,
    body: Option<String>,
    retry_after: Option<u64>,
) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match (body, flavor) {
        (Some(b), _) => respond::json_bytes(code, Bytes::from(b)),
        (None, Flavor::OpenAi) => respond::json_bytes(code, default_error_body(code)),
        (None, other) => other.status_error(code),
    };
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The OpenAI error body a real provider would plausibly send with this status.
pub(crate) fn default_error_body(status: StatusCode) -> Bytes {
    let (kind, code) = match status.as_u16() {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => (
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
        ),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    let message = format!("mock upstream fault: status {}", status.as_u16());
    respond::openai_error_body(&message, kind, None, code)
}

/// The (OpenAI) malformed body sent for [`Fault::MalformedBody`].
pub(crate) fn malformed_response(stream: bool) -> Response<Body> {
    if stream {
        respond::full(
            StatusCode::OK,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
            Bytes::from_static(
                b"data: {\"id\":\"chatcmpl-mock-broken\",\"choices\":[{\"delta\":\n\ndata: [DONE]\n\n",
            ),
        )
    } else {
        respond::json_bytes(
            StatusCode::OK,
            Bytes::from_static(
                b"{\"id\":\"chatcmpl-mock-broken\",\"object\":\"chat.completion\",\"choices\":[{",
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_select_faults() {
        assert_eq!(Fault::from_model("mock-gpt"), None);
        assert_eq!(
            Fault::from_model("fault-status-503"),
            Some(Fault::status(503))
        );
        assert_eq!(
            Fault::from_model("fault-status-429-retry-7"),
            Some(Fault::Status {
                status: 429,
                body: None,
                retry_after: Some(7)
            })
        );
        assert_eq!(Fault::from_model("fault-status-999"), None);
        assert_eq!(
            Fault::from_model("fault-delay-250"),
            Some(Fault::Delay(Duration::from_millis(250)))
        );
        assert_eq!(Fault::from_model("fault-drop"), Some(Fault::DropConnection));
        assert_eq!(
            Fault::from_model("fault-malformed"),
            Some(Fault::MalformedBody)
        );
        assert_eq!(
            Fault::from_model("fault-stream-drop-3"),
            Some(Fault::StreamDropAfter(3))
        );
        assert_eq!(
            Fault::from_model("fault-stream-stall-2-500"),
            Some(Fault::StreamStallAfter(2, Duration::from_millis(500)))
        );
        assert_eq!(Fault::from_model("fault-delay-x"), None);
        assert_eq!(
            Fault::from_model("fault-stream-error-2"),
            Some(Fault::StreamErrorAfter(2))
        );
    }

    #[test]
    fn fault_rates_are_exact_and_spread() {
        assert_eq!(rate_percent("fault-rate-30"), Some(30));
        assert_eq!(rate_percent("fault-rate-101"), None);
        assert_eq!(rate_percent("mock-gpt"), None);
        let fails: Vec<bool> = (0..100).map(|n| rate_fails(n, 30)).collect();
        assert_eq!(fails.iter().filter(|f| **f).count(), 30);
        assert!(
            fails.windows(4).all(|w| w.iter().any(|f| *f)),
            "spread evenly"
        );
        assert_eq!((0..100).filter(|n| rate_fails(*n, 0)).count(), 0);
        assert_eq!((0..100).filter(|n| rate_fails(*n, 100)).count(), 100);
    }

    #[test]
    fn queue_is_fifo() {
        let q = FaultQueue::default();
        assert_eq!(q.pop(), None);
        q.push(Fault::status(500));
        q.push(Fault::DropConnection);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(Fault::status(500)));
        assert_eq!(q.pop(), Some(Fault::DropConnection));
        assert_eq!(q.pop(), None);
        assert_eq!(q.len(), 0);
    }
}
