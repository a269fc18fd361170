//! Response building blocks shared by every API family: body type, JSON, errors, SSE.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use serde::Serialize;
use tokio::sync::Notify;

/// A streamed body: a boxed stream of frames that may end with an I/O error.
pub(crate) type FrameStream = BoxStream<'static, Result<Frame<Bytes>, io::Error>>;

/// Response body: either one buffer (no boxing) or a stream of frames.
pub(crate) type Body = Either<Full<Bytes>, StreamBody<FrameStream>>;

pub(crate) type HandlerResult = Result<Response<Body>, Infallible>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream; charset=utf-8");

/// A buffered response with the given status, content type and body.
pub(crate) fn full(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Either::Left(Full::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    resp
}

/// A JSON response (`application/json`) from pre-serialized bytes.
pub(crate) fn json_bytes(status: StatusCode, body: Bytes) -> Response<Body> {
    full(status, JSON, body)
}

/// A JSON response serialized from `value`.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    // Serializing our own structs cannot fail.
    let body = serde_json::to_vec(value).unwrap_or_default();
    json_bytes(status, Bytes::from(body))
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// OpenAI error JSON: `{"error":{"message","type","param","code"}}`.
pub(crate) fn openai_error_body(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Bytes {
    let env = ErrorEnvelope {
        error: ErrorObject {
            message,
            kind,
            param,
            code,
        },
    };
    Bytes::from(serde_json::to_vec(&env).unwrap_or_default())
}

/// An OpenAI-shaped error response.
pub(crate) fn openai_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response<Body> {
    json_bytes(status, openai_error_body(message, kind, param, code))
}

/// 400 `invalid_request_error`.
pub(crate) fn bad_request(message: &str, param: Option<&str>) -> Response<Body> {
    openai_error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        None,
    )
}

/// Appends one SSE event `data: <payload>\n\n` serialized from `value`.
pub(crate) fn sse_event<T: Serialize>(value: &T) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"data: ");
    // Serializing our own structs cannot fail.
    let _ = serde_json::to_writer(&mut buf, value);
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

/// One named SSE event `event: <name>\ndata: <payload>\n\n` (Anthropic style).
pub(crate) fn sse_named_event<T: Serialize>(name: &str, value: &T) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    let _ = serde_json::to_writer(&mut buf, value);
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

/// The terminating SSE event of OpenAI streams.
pub(crate) const SSE_DONE: &[u8] = b"data: [DONE]\n\n";

/// How a pre-built list of SSE events is paced and (possibly) broken.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamPlan {
    /// Pause between consecutive events.
    pub chunk_delay: Duration,
    /// After this many events, pause once for the duration.
    pub stall_after: Option<(usize, Duration)>,
    /// After this many events, abort the connection (no further data, no `[DONE]`).
    pub drop_after: Option<usize>,
    /// After this many events, send this (provider-shaped) error event and end the body.
    pub error_after: Option<(usize, Bytes)>,
}

struct StreamState {
    events: Vec<Bytes>,
    next: usize,
    plan: StreamPlan,
    kill: Arc<Notify>,
    done: bool,
}

/// A `text/event-stream` response sending `events` according to `plan`.
///
/// `kill` aborts the whole connection; it is used for `drop_after`, after the events already
/// sent have been handed to the socket.
pub(crate) fn sse(events: Vec<Bytes>, plan: StreamPlan, kill: Arc<Notify>) -> Response<Body> {
    let mut resp = streamed(events, plan, kill, EVENT_STREAM);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// A `200 OK` response with this content type whose body is `events`, one frame each, sent
/// according to `plan` (see [`sse`]).
pub(crate) fn streamed(
    events: Vec<Bytes>,
    plan: StreamPlan,
    kill: Arc<Notify>,
    content_type: HeaderValue,
) -> Response<Body> {
    let state = StreamState {
        events,
        next: 0,
        plan,
        kill,
        done: false,
    };
    let frames = stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let i = st.next;
        if st.plan.drop_after == Some(i) {
            // Let the connection flush what was already written, then cut it.
            tokio::time::sleep(Duration::from_millis(5)).await;
            st.done = true;
            st.kill.notify_one();
            let err = io::Error::new(io::ErrorKind::ConnectionAborted, "mock stream drop");
            return Some((Err(err), st));
        }
        if let Some((n, _)) = &st.plan.error_after {
            if *n == i {
                st.done = true;
                let event = st
                    .plan
                    .error_after
                    .take()
                    .map(|(_, e)| e)
                    .unwrap_or_default();
                return Some((Ok(Frame::data(event)), st));
            }
        }
        if i >= st.events.len() {
            return None;
        }
        if i > 0 && !st.plan.chunk_delay.is_zero() {
            tokio::time::sleep(st.plan.chunk_delay).await;
        }
        if let Some((n, pause)) = st.plan.stall_after {
            if n == i {
                tokio::time::sleep(pause).await;
            }
        }
        let event = std::mem::take(&mut st.events[i]);
        st.next += 1;
        Some((Ok(Frame::data(event)), st))
    });
    let mut resp = Response::new(Either::Right(StreamBody::new(frames.boxed())));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    resp
}
