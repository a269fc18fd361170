//! Generic REST routes: a configured path prefix proxied to a plain HTTP service, read top
//! to bottom: authenticate -> find the route (404) and check the method (405) and path (400)
//! -> admit (policy with `Target::Route(path)`: RBAC `routes:invoke`, team `routes` globs,
//! body size, rate limits) -> forward with the body streamed (retrying safe requests without
//! a body on connect errors, timeouts and 502/503/504) -> stream the answer back.
//!
//! Unknown paths reach this handler too (the data plane's fallback): they are still
//! authenticated first, then answered 404.

mod table;

pub use table::{check_path, response_headers, RestRoute, RestRoutes};

use crate::access::{AccessNote, RequestId};
use crate::auth::authenticate;
use crate::enforce::{self, Call};
use crate::error::GatewayError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use portcullis_policy::decide::Target;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The data plane's fallback: a REST route when the path has one, else 404.
pub async fn dispatch(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    Extension(RequestId(id)): Extension<RequestId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    handle(&state, note, &id, peer, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    state: &Arc<AppState>,
    note: Arc<AccessNote>,
    request_id: &str,
    peer: SocketAddr,
    request: Request,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    let key = authenticate(state, &parts.headers)?;
    note.key(&key);
    let path = parts.uri.path();
    let route = state.rest.find(path).ok_or(GatewayError::NotFound)?.clone();
    note.route(&route.name, "rest");
    if !route.allows(&parts.method) {
        return Err(GatewayError::MethodNotAllowed);
    }
    check_path(path).map_err(|why| GatewayError::BadRequest {
        message: why.into(),
        param: None,
    })?;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body) {
        return Err(GatewayError::BodyTooLarge(state.max_body));
    }
    let has_body = declared.is_some_and(|n| n > 0)
        || (declared.is_none() && parts.headers.contains_key(header::TRANSFER_ENCODING));
    let snapshot = state.policy.load_full();
    // Without a policy, a key limited to some models is not a key for services.
    if snapshot.active.is_none() && !key.model_globs().is_empty() {
        return Err(GatewayError::Forbidden {
            permission: "routes:invoke",
        });
    }
    // A body of unknown length is cut (413) at the team's limit while it streams.
    let max_body = snapshot
        .active
        .as_ref()
        .and_then(|a| a.compiled.max_body_bytes(key.team.as_deref()))
        .map_or(state.max_body, |team| team.min(state.max_body));
    drop(snapshot);
    let call = Call {
        key: &key,
        client_ip: Some(peer.ip()),
        target: Target::Route(path),
        request: None,
        body_bytes: declared.unwrap_or(0),
        price: None,
        provider: &route.name,
    };
    let _guard = enforce::admit(state, call, &note).await?;

    let url = route.upstream_url(path, parts.uri.query());
    let headers = route.upstream_headers(&parts.headers, peer.ip(), request_id);
    let retry = route.may_retry(&parts.method, has_body);
    let too_large = Arc::new(AtomicBool::new(false));
    let mut body =
        has_body.then(|| reqwest::Body::wrap_stream(limited(body, max_body, too_large.clone())));
    let sent = Instant::now();
    let mut attempt = 0;
    let answer = loop {
        let mut upstream = state
            .rest_client
            .request(parts.method.clone(), &url)
            .headers(headers.clone());
        if let Some(b) = body.take() {
            upstream = upstream.body(b);
        }
        let result = match tokio::time::timeout(route.timeout, upstream.send()).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(Failure::Error(e)),
            Err(_) => Err(Failure::Timeout),
        };
        let retryable = match &result {
            Ok(r) => matches!(r.status().as_u16(), 502..=504),
            Err(Failure::Timeout) => true,
            Err(Failure::Error(e)) => e.is_connect() || e.is_timeout(),
        };
        if retry && retryable && attempt < route.retries {
            attempt += 1;
            tracing::debug!(route = %route.name, attempt, "retrying the upstream call");
            tokio::time::sleep(backoff(attempt)).await;
            continue;
        }
        break result;
    };
    note.upstream_call(sent);
    let answer = answer.map_err(|failure| {
        if too_large.load(Ordering::Acquire) {
            return GatewayError::BodyTooLarge(max_body);
        }
        match failure {
            Failure::Timeout => {
                tracing::warn!(route = %route.name, timeout_ms = route.timeout.as_millis() as u64, "route upstream timed out");
                GatewayError::UpstreamTimeout
            }
            Failure::Error(e) => {
                let timeout = e.is_timeout();
                tracing::warn!(route = %route.name, error = %e.without_url(), "route upstream call failed");
                if timeout {
                    GatewayError::UpstreamTimeout
                } else {
                    GatewayError::UpstreamUnreachable
                }
            }
        }
    })?;

    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers: HeaderMap = response_headers(answer.headers());
    let stream = idle_bounded(answer.bytes_stream(), route.idle, note);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

enum Failure {
    Timeout,
    Error(reqwest::Error),
}

/// 50 ms, 100 ms, 200 ms, ... (at most 1 s) plus up to 25% jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64 << attempt.saturating_sub(1).min(4);
    let base = base.min(1000);
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let jitter = u64::from(u16::from_le_bytes(b)) % (base / 4 + 1);
    Duration::from_millis(base + jitter)
}

/// The client's body as a stream that fails once more than `max` bytes went through
/// (setting `too_large`, so the failure becomes a 413).
fn limited(
    body: Body,
    max: u64,
    too_large: Arc<AtomicBool>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut seen = 0u64;
    body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len() as u64;
        if seen > max {
            too_large.store(true, Ordering::Release);
            return Err(std::io::Error::other("request body exceeds the limit"));
        }
        Ok(chunk)
    })
}

/// The upstream's body as it comes; a silence longer than `idle` or a broken upstream ends
/// it with an error (the client sees an incomplete transfer, never a silently cut body).
fn idle_bounded(
    upstream: impl Stream<Item = reqwest::Result<Bytes>> + Send + Unpin + 'static,
    idle: Duration,
    note: Arc<AccessNote>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some(upstream), move |state| {
        let note = note.clone();
        async move {
            let mut upstream = state?;
            match tokio::time::timeout(idle, upstream.next()).await {
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(upstream))),
                Ok(None) => None,
                Ok(Some(Err(e))) => {
                    note.stream_outcome("upstream_error");
                    tracing::warn!(error = %e.without_url(), "route upstream body failed");
                    Some((Err(std::io::Error::other("upstream body failed")), None))
                }
                Err(_) => {
                    note.stream_outcome("upstream_error");
                    tracing::warn!("route upstream body went silent; closing");
                    Some((Err(std::io::Error::other("upstream went silent")), None))
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= Duration::from_millis(50));
        assert!(backoff(1) <= Duration::from_millis(63));
        assert!(backoff(3) >= Duration::from_millis(200));
        assert!(backoff(30) <= Duration::from_millis(1250));
    }
}
