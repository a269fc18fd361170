//! The response cache on the chat path: whether a request is cacheable and under which key
//! ([`plan`]), answering from the cache ([`serve_hit`]), and recording what the client
//! received so a complete, successful answer is stored ([`record`]).
//!
//! Opt-in: a team's policy (`cache: {ttl: 10m}`) or the request (`x-portcullis-cache: use`);
//! `Cache-Control: no-cache` / `x-portcullis-cache: refresh` skip the lookup but store the
//! fresh answer; `Cache-Control: no-store` / `x-portcullis-cache: off` skip both.
//! Entries are scoped by team (or by key for keys without one), inbound format and public
//! model; a hit costs nothing (usage recorded with zero tokens, provider `cache`).

use crate::access::AccessNote;
use crate::body::{json_response, stream_response};
use crate::inbound::Inbound;
use crate::state::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use portcullis_cache::{stream_is_complete, Cache, CacheKey, Directive, Entry, EntryKind};
use portcullis_config::{CacheBackendKind, Config};
use portcullis_policy::KeyEntry;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The response header that marks cached and cacheable answers: `hit`, `miss`, `refresh`.
pub const CACHE_HEADER: &str = "x-portcullis-cache";

/// How one cacheable request uses the cache.
#[derive(Debug, Clone)]
pub struct CachePlan {
    key: CacheKey,
    ttl: Duration,
    lookup: bool,
    inbound: Inbound,
    model: String,
}

/// Builds the cache of the `cache` section, if there is one (Redis uses `redis.url`).
pub async fn build(config: &Config) -> Result<Option<Cache>, String> {
    let Some(c) = &config.cache else {
        return Ok(None);
    };
    let backend: Arc<dyn portcullis_cache::CacheBackend> = match c.backend {
        CacheBackendKind::Memory => Arc::new(portcullis_cache::MemoryBackend::new(
            usize::try_from(c.max_bytes.0).unwrap_or(usize::MAX),
        )),
        CacheBackendKind::Redis => {
            let url = config
                .redis
                .as_ref()
                .map(|r| r.url.as_str())
                .ok_or("cache.backend redis needs redis.url")?;
            Arc::new(
                portcullis_cache::RedisBackend::connect(
                    url,
                    "portcullis:cache:",
                    Duration::from_millis(250),
                )
                .await
                .map_err(|e| e.to_string())?,
            )
        }
    };
    Ok(Some(Cache::new(
        backend,
        c.default_ttl.0,
        usize::try_from(c.max_entry_bytes.0).unwrap_or(usize::MAX),
    )))
}

/// Whether and how this request uses the cache; `None` when it does not.
pub fn plan(
    state: &AppState,
    headers: &HeaderMap,
    key: &KeyEntry,
    inbound: Inbound,
    model: &str,
    body: &[u8],
) -> Option<CachePlan> {
    let cache = state.cache.as_ref()?;
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let directive = Directive::from_headers(header(CACHE_HEADER), header("cache-control"));
    if directive == Directive::Off {
        return None;
    }
    let snapshot = state.policy.load();
    let compiled = snapshot.active.as_ref().map(|a| &a.compiled);
    let team_setting = compiled.and_then(|c| c.team_cache(key.team.as_deref()));
    // `use` opts in even when combined with `Cache-Control: no-cache` (a refresh).
    let asked = header(CACHE_HEADER).is_some_and(|v| v.trim().eq_ignore_ascii_case("use"));
    if team_setting.is_none() && !asked {
        return None;
    }
    let ttl = team_setting
        .and_then(|t| t.ttl)
        .map_or(cache.default_ttl, |t| Duration::from_secs(t.secs));
    let team = match compiled {
        Some(c) => c.effective_team(key.team.as_deref()),
        None => key.team.as_deref(),
    };
    let scope = match team {
        Some(t) => format!("team:{t}"),
        None => format!("key:{}", key.id),
    };
    let format = match inbound {
        Inbound::OpenAi => "openai-chat",
        Inbound::Anthropic => "anthropic-messages",
    };
    let key = CacheKey::new(format, model, &scope, body).ok()?;
    Some(CachePlan {
        key,
        ttl,
        lookup: directive != Directive::Refresh,
        inbound,
        model: model.to_string(),
    })
}

/// The cached answer of `plan`, if there is one (counted as a hit or a miss).
pub async fn serve_hit(state: &AppState, plan: &CachePlan, note: &AccessNote) -> Option<Response> {
    let cache = state.cache.as_ref()?;
    if !plan.lookup {
        return None;
    }
    let Some(entry) = cache.get(&plan.key).await else {
        state.metrics.cache_miss();
        note.cache(false);
        return None;
    };
    state.metrics.cache_hit();
    note.cache_hit();
    // The access line names `cache` as the provider of a hit.
    note.route(&plan.model, "cache");
    let status = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK);
    let mut response = match entry.kind {
        EntryKind::Json => json_response(status, entry.body),
        EntryKind::Stream => {
            let events = entry.events();
            stream_response(futures_util::stream::iter(
                events.into_iter().map(Ok::<_, Infallible>),
            ))
        }
    };
    response
        .headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static("hit"));
    Some(response)
}

/// Marks an answer from the upstream and, when it is a success, records its body as it
/// streams to the client; once the body ended complete it is stored.
pub fn record(state: &AppState, plan: CachePlan, mut response: Response) -> Response {
    let Some(cache) = state.cache.clone() else {
        return response;
    };
    let mark = if plan.lookup { "miss" } else { "refresh" };
    response
        .headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static(mark));
    if !response.status().is_success() {
        return response;
    }
    let kind = match response.headers().get(axum::http::header::CONTENT_TYPE) {
        Some(v) if v.as_bytes().starts_with(b"text/event-stream") => EntryKind::Stream,
        _ => EntryKind::Json,
    };
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let recorder = Recorder {
        inner: body,
        buffer: Some(BytesMut::new()),
        cache,
        plan,
        kind,
        status,
    };
    Response::from_parts(parts, Body::new(recorder))
}

/// The response of a chat handler: errors in the client's format; an answer from the
/// upstream to a cacheable request is marked and recorded ([`record`]).
pub fn finish(
    state: &AppState,
    plan: Option<CachePlan>,
    answer: Result<Response, crate::error::GatewayError>,
    inbound: Inbound,
) -> Response {
    match (answer, plan) {
        (Ok(response), Some(plan)) => record(state, plan, response),
        (Ok(response), None) => response,
        (Err(e), _) => e.respond(inbound),
    }
}

/// A response body that keeps a copy of what went to the client (up to the entry limit).
struct Recorder {
    inner: Body,
    /// `None` once over the limit or stored.
    buffer: Option<BytesMut>,
    cache: Cache,
    plan: CachePlan,
    kind: EntryKind,
    status: u16,
}

impl Recorder {
    fn finish(&mut self) {
        let Some(buffer) = self.buffer.take() else {
            return;
        };
        let body: Bytes = buffer.freeze();
        if self.kind == EntryKind::Stream
            && !stream_is_complete(self.plan.inbound == Inbound::Anthropic, &body)
        {
            return;
        }
        if self.kind == EntryKind::Json && body.is_empty() {
            return;
        }
        self.cache.put(
            self.plan.key,
            Entry {
                kind: self.kind,
                status: self.status,
                body,
            },
            self.plan.ttl,
        );
    }
}

impl http_body::Body for Recorder {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let limit = self.cache.max_entry_bytes;
                    let over = self
                        .buffer
                        .as_ref()
                        .is_some_and(|b| b.len() + data.len() > limit);
                    if over {
                        self.buffer = None;
                    } else if let Some(b) = self.buffer.as_mut() {
                        b.extend_from_slice(data);
                    }
                }
                // A whole body may end without a final poll.
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => self.buffer = None,
            Poll::Ready(None) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
