//! Request ids and the access log: one line per request, written when the response body
//! has been fully sent (or abandoned), so streamed responses are logged with their tokens.
//! The same moment records the request metrics (requests, latencies, tokens, upstream
//! errors) into the [`Metrics`] registry: the one place they are recorded, and queues the
//! data-plane request's record for the request log ([`crate::request_log`]).

use crate::alerts::Observation;
use crate::error::{ErrorCode, ErrorReason};
use crate::request_log::{LogEntry, RawBodies, CAPTURE_CAP};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use portcullis_guard::CompiledProfile;
use portcullis_policy::KeyEntry;
use portcullis_store::{GuardrailEntry, NewRequestLog};
use portcullis_telemetry::access_log::AccessRecord;
use portcullis_telemetry::metrics::{
    self, GuardrailAction, Metrics, RequestSample, Route, UpstreamErrorClass,
};
use portcullis_wire::openai::Usage;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The request id, also returned in `x-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// What the handler learned about a request, filled in as it goes and logged at the end.
#[derive(Default)]
pub struct AccessNote {
    fields: Mutex<NoteFields>,
    /// The request's OpenTelemetry spans, when trace export is configured (otel.rs).
    trace: OnceLock<crate::otel::RequestTrace>,
}

/// Called once when the response is over (sent, failed, or abandoned by the client).
pub type OnFinish = Box<dyn FnOnce(Finished) + Send>;

#[derive(Default)]
struct NoteFields {
    key_id: Option<String>,
    team: Option<String>,
    principal: Option<String>,
    cache: Option<&'static str>,
    cost_micros: i64,
    bodies: Option<(Arc<CompiledProfile>, Bytes)>,
    model: Option<String>,
    provider: Option<String>,
    usage: Option<Usage>,
    cached_tokens: u64,
    stream_outcome: Option<&'static str>,
    policy_rule: Option<String>,
    guardrails: Vec<(String, &'static str)>,
    upstream: Option<(Instant, Instant)>,
    rate_headers: Vec<(HeaderName, HeaderValue)>,
    cache_hit: bool,
    on_finish: Option<OnFinish>,
    attempts: u32,
    target: Option<String>,
    upstream_errors_counted: bool,
}

/// How a request ended, for settlement and usage records.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Request id.
    pub request_id: Arc<str>,
    /// Final HTTP status.
    pub status: u16,
    /// Tokens reported by the upstream (zero when none came).
    pub usage: Usage,
    /// Prompt tokens served from the provider's cache.
    pub cached_tokens: u64,
    /// Whether a usage record should be written.
    pub record_usage: bool,
    /// The provider that finally answered, when it differs from the one admitted with.
    pub provider: Option<String>,
    /// Served from the gateway's response cache (no upstream call, no cost).
    pub cache_hit: bool,
}

impl Finished {
    /// A request refused before it reached the upstream: reservations are returned, no usage.
    pub fn refused() -> Finished {
        Finished {
            request_id: Arc::from(""),
            status: 429,
            usage: Usage::default(),
            cached_tokens: 0,
            record_usage: false,
            provider: None,
            cache_hit: false,
        }
    }
}

impl AccessNote {
    fn with<R>(&self, f: impl FnOnce(&mut NoteFields) -> R) -> R {
        let mut guard = self.fields.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
    /// Records the authenticated key, its team and its principal (owner, else the key id).
    pub fn key(&self, key: &KeyEntry) {
        self.with(|f| {
            f.key_id = Some(key.id.clone());
            f.team = key.team.clone();
            f.principal = Some(key.owner.clone().unwrap_or_else(|| key.id.clone()));
        });
    }
    /// Records whether the response cache answered (`true`) or was consulted and missed.
    pub fn cache(&self, hit: bool) {
        self.with(|f| f.cache = Some(if hit { "hit" } else { "miss" }));
    }
    /// Records the request's cost in micro-USD (set by the settlement).
    pub fn cost(&self, micros: u64) {
        self.with(|f| f.cost_micros = i64::try_from(micros).unwrap_or(i64::MAX));
    }
    /// Asks for the request and response bodies to be kept in the request log, redacted
    /// with `profile` when written. Only the first [`CAPTURE_CAP`] bytes are kept.
    pub fn log_bodies(&self, profile: Arc<CompiledProfile>, request: &Bytes) {
        let request = request.slice(..request.len().min(CAPTURE_CAP));
        self.with(|f| f.bodies = Some((profile, request)));
    }
    /// Records the model and provider serving the request.
    pub fn route(&self, model: &str, provider: &str) {
        self.with(|f| {
            f.model = Some(model.to_string());
            f.provider = Some(provider.to_string());
        });
    }
    /// Records the provider that served the request (after retries and fallbacks).
    pub fn route_provider(&self, provider: &str) {
        self.with(|f| f.provider = Some(provider.to_string()));
    }
    /// Records the upstream attempts made so far and the target of the last one.
    pub fn attempts(&self, attempts: u32, target: &str) {
        self.with(|f| {
            f.attempts = attempts;
            f.target = Some(target.to_string());
        });
    }
    /// Marks upstream failures as already counted per attempt (not again from the status).
    pub fn upstream_errors_counted(&self) {
        self.with(|f| f.upstream_errors_counted = true);
    }
    /// Records token usage reported by the upstream.
    pub fn usage(&self, usage: Usage) {
        self.with(|f| f.usage = Some(usage));
    }
    /// Records prompt tokens served from the provider's cache.
    pub fn cached_tokens(&self, n: u64) {
        self.with(|f| f.cached_tokens = n);
    }
    /// Records the policy rule that admitted or refused the request.
    pub fn policy_rule(&self, rule: &str) {
        self.with(|f| f.policy_rule = Some(rule.to_string()));
    }
    /// Records a guardrail finding: rule id and action (`block`, `redact`, `log`), never the value.
    pub fn guardrail(&self, rule: &str, action: &'static str) {
        self.with(|f| f.guardrails.push((rule.to_string(), action)));
    }
    /// Sets the x-ratelimit-* headers every response of this request carries.
    pub fn rate_headers(&self, headers: Vec<(HeaderName, HeaderValue)>) {
        self.with(|f| f.rate_headers = headers);
    }
    /// Marks the answer as served from the gateway's response cache.
    pub fn cache_hit(&self) {
        self.with(|f| f.cache_hit = true);
    }
    /// Registers the settlement to run when the response is over.
    pub fn on_finish(&self, f: OnFinish) {
        self.with(|fields| fields.on_finish = Some(f));
    }
    /// Records the upstream call that started at `started` and answered just now (for a
    /// stream: its headers; the stream's own time is counted as upstream time too).
    pub fn upstream_call(&self, started: Instant) {
        self.with(|f| f.upstream = Some((started, Instant::now())));
    }
    /// Attaches the request's trace (once; only when trace export is configured).
    pub fn set_trace(&self, trace: crate::otel::RequestTrace) {
        let _ = self.trace.set(trace);
    }
    /// The request's trace, if it is traced.
    pub fn trace(&self) -> Option<&crate::otel::RequestTrace> {
        self.trace.get()
    }
    /// Records how a stream ended: "complete", "upstream_error", "client_closed".
    pub fn stream_outcome(&self, outcome: &'static str) {
        self.with(|f| f.stream_outcome = Some(outcome));
    }
}

/// Middleware: assigns the request id (keeping a sane client-sent one), exposes an
/// `AccessNote` to handlers, and logs the access line and records metrics when the
/// response body ends.
pub async fn track(State(tracking): State<Tracking>, mut request: Request, next: Next) -> Response {
    let Tracking {
        state,
        request_logs,
    } = tracking;
    let started = Instant::now();
    let metrics = state.metrics.clone();
    let client_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_request_id(v))
        .map(Arc::<str>::from)
        .unwrap_or_else(new_request_id);
    let note = Arc::new(AccessNote::default());
    let method = request.method().clone();
    let path: Arc<str> = Arc::from(request.uri().path());
    request.extensions_mut().insert(RequestId(id.clone()));
    request.extensions_mut().insert(note.clone());
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let (rate_headers, attempts, target) = note.with(|f| {
        (
            std::mem::take(&mut f.rate_headers),
            f.attempts,
            f.target.clone(),
        )
    });
    for (name, value) in rate_headers {
        response.headers_mut().insert(name, value);
    }
    if attempts > 0 {
        response
            .headers_mut()
            .insert("x-portcullis-attempts", HeaderValue::from(attempts));
        if let Some(v) = target.and_then(|t| HeaderValue::try_from(t).ok()) {
            response.headers_mut().insert("x-portcullis-target", v);
        }
    }
    let streaming = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let logs = request_logs && !crate::app::PUBLIC_ROUTES.contains(&path.as_ref());
    let captured = match logs && note.with(|f| f.bodies.is_some()) {
        true => Some(Vec::new()),
        false => None,
    };
    let line = AccessLine {
        logs,
        captured,
        reason: response
            .extensions()
            .get::<ErrorReason>()
            .map(|r| r.0.clone()),
        route: Route::from_path(&path),
        metrics,
        state,
        client_ip,
        streaming,
        first_frame: None,
        id,
        method: method.as_str().to_string(),
        path,
        status: response.status(),
        error: response.extensions().get::<ErrorCode>().map(|c| c.0),
        note,
        started,
    };
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(LoggedBody {
            inner: body,
            line: Some(line),
        }),
    )
}

/// State of the [`track`] middleware: the gateway state (metrics, alerts, the request-log
/// writer) and whether this plane's requests go to the request log (data plane only).
#[derive(Clone)]
pub struct Tracking {
    /// The gateway state.
    pub state: Arc<AppState>,
    /// Write a request-log record per request.
    pub request_logs: bool,
}

struct AccessLine {
    logs: bool,
    captured: Option<Vec<u8>>,
    reason: Option<Arc<str>>,
    route: Route,
    metrics: Arc<Metrics>,
    state: Arc<AppState>,
    client_ip: Option<IpAddr>,
    streaming: bool,
    first_frame: Option<Instant>,
    id: Arc<str>,
    method: String,
    path: Arc<str>,
    status: StatusCode,
    error: Option<&'static str>,
    note: Arc<AccessNote>,
    started: Instant,
}

impl AccessLine {
    fn emit(mut self, body_complete: bool) {
        let captured = self.captured.take();
        let latency_us = self.started.elapsed().as_micros() as u64;
        let finish = self.note.with(|f| {
            f.on_finish.take().map(|callback| {
                (
                    callback,
                    Finished {
                        request_id: self.id.clone(),
                        status: self.status.as_u16(),
                        usage: f.usage.unwrap_or_default(),
                        cached_tokens: f.cached_tokens,
                        record_usage: true,
                        provider: f.provider.clone(),
                        cache_hit: f.cache_hit,
                    },
                )
            })
        });
        if let Some((callback, finished)) = finish {
            callback(finished);
        }
        self.note.with(|f| {
            let usage = f.usage.unwrap_or_default();
            let outcome = match (body_complete, f.stream_outcome) {
                (false, _) => "client_closed",
                (true, Some(o)) => o,
                (true, None) => "complete",
            };
            let upstream = self.upstream_time(f);
            self.record_metrics(f, outcome, upstream);
            self.observe(f, &usage);
            if let Some(trace) = self.note.trace.get() {
                trace.finish(self.status.as_u16(), self.error, f.usage);
            }
            portcullis_telemetry::access_log::write(&AccessRecord {
                request_id: &self.id,
                method: &self.method,
                path: &self.path,
                status: self.status.as_u16(),
                error: self.error.unwrap_or(""),
                key_id: f.key_id.as_deref().unwrap_or("-"),
                model: f.model.as_deref().unwrap_or("-"),
                provider: f.provider.as_deref().unwrap_or("-"),
                upstream: f.target.as_deref().unwrap_or("-"),
                attempts: f.attempts,
                policy_rule: f.policy_rule.as_deref().unwrap_or("-"),
                guardrails: &guardrail_text(&f.guardrails),
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                latency_us,
                outcome,
            });
            self.queue_log(f, outcome, latency_us, upstream, captured);
        });
    }
}

impl AccessLine {
    /// Queues the request-log record (a non-blocking push); the note's lock is held by
    /// the caller.
    fn queue_log(
        &self,
        f: &mut NoteFields,
        outcome: &str,
        latency_us: u64,
        upstream: Option<Duration>,
        captured: Option<Vec<u8>>,
    ) {
        if !self.logs {
            return;
        }
        let Some(writer) = &self.state.request_logs else {
            return;
        };
        let usage = f.usage.unwrap_or_default();
        let upstream_us = upstream.map(|u| u.as_micros() as i64);
        let bodies = f.bodies.take().map(|(profile, request)| {
            Arc::new(RawBodies {
                profile,
                request,
                response: Bytes::from(captured.unwrap_or_default()),
                stream: self.streaming,
            })
        });
        let record = NewRequestLog {
            at: crate::auth::unix_now(),
            request_id: self.id.to_string(),
            method: self.method.clone(),
            path: self.path.to_string(),
            key_id: f.key_id.take(),
            principal: f.principal.take(),
            team: f.team.take(),
            model: f.model.clone(),
            provider: f.provider.clone(),
            status: self.status.as_u16(),
            denied: self.error.is_some_and(crate::error::is_denial),
            error: self.error.map(String::from),
            reason: self.reason.as_deref().map(String::from),
            policy_rule: f.policy_rule.take(),
            guardrails: f
                .guardrails
                .iter()
                .map(|(rule, action)| GuardrailEntry {
                    rule: rule.clone(),
                    action: action.to_string(),
                })
                .collect(),
            cache: f.cache.or(f.cache_hit.then_some("hit")).map(String::from),
            outcome: outcome.to_string(),
            latency_us: latency_us as i64,
            upstream_us,
            prompt_tokens: usage.prompt_tokens as i64,
            completion_tokens: usage.completion_tokens as i64,
            cached_tokens: f.cached_tokens as i64,
            cost_micros: f.cost_micros,
            client_ip: self.client_ip.map(|ip| ip.to_string()),
            request_body: None,
            response_body: None,
        };
        writer.push(LogEntry { record, bodies });
    }

    /// Hands the request to the anomaly alert engine (in place, never waiting on I/O).
    fn observe(&self, f: &NoteFields, usage: &Usage) {
        self.state.alerts.observe(Observation {
            ip: self.client_ip,
            key_id: f.key_id.as_deref().map(Arc::from),
            status: self.status.as_u16(),
            tokens: usage.prompt_tokens + usage.completion_tokens,
            // The cost the settlement recorded (it ran just before, on the same note).
            cost_micros: u64::try_from(f.cost_micros).unwrap_or(0),
        });
    }

    /// Time spent on the upstream call: until its answer, or for a stream until now.
    fn upstream_time(&self, f: &NoteFields) -> Option<Duration> {
        f.upstream.map(|(start, answered)| {
            let end = if self.streaming {
                Instant::now()
            } else {
                answered
            };
            end.saturating_duration_since(start)
        })
    }

    /// Records the request metrics; the access note's lock is held by the caller.
    fn record_metrics(&self, f: &NoteFields, outcome: &str, upstream: Option<Duration>) {
        let total = self.started.elapsed();
        let usage = f.usage.unwrap_or_default();
        let upstream_error = match (self.error, outcome) {
            (Some(_), _) if f.upstream_errors_counted => None,
            (Some(code), _) => UpstreamErrorClass::from_error_code(code),
            (None, "upstream_error") => Some(UpstreamErrorClass::Stream),
            _ => None,
        };
        let first_token = match (self.streaming, self.first_frame) {
            (true, Some(at)) => Some(at.saturating_duration_since(self.started)),
            _ => None,
        };
        for (rule, action) in &f.guardrails {
            let action = match *action {
                "block" => GuardrailAction::Block,
                "redact" => GuardrailAction::Redact,
                _ => GuardrailAction::Flag,
            };
            self.metrics.guardrail_action(rule, action);
        }
        self.metrics.record_request(&RequestSample {
            route: self.route,
            // A model the configuration does not know is counted as `other`.
            model: f
                .model
                .as_deref()
                .or((self.error == Some("model_not_found")).then_some(metrics::OTHER)),
            provider: f.provider.as_deref(),
            status: self.status.as_u16(),
            total,
            upstream: upstream.map(|u| u.min(total)),
            first_token,
            tokens_in: usage.prompt_tokens,
            tokens_out: usage.completion_tokens,
            upstream_error,
        });
    }
}

/// Response body that emits the access line when it ends or is dropped.
struct LoggedBody {
    inner: Body,
    line: Option<AccessLine>,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(line)) = (&polled, self.line.as_mut()) {
            if line.first_frame.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
                line.first_frame = Some(Instant::now());
            }
            if let (Some(buf), Some(data)) = (line.captured.as_mut(), frame.data_ref()) {
                let room = CAPTURE_CAP.saturating_sub(buf.len());
                buf.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        if let Poll::Ready(None) = polled {
            if let Some(line) = self.line.take() {
                line.emit(true);
            }
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

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            let complete = http_body::Body::is_end_stream(&self.inner);
            line.emit(complete);
        }
    }
}

fn is_sane_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

fn new_request_id() -> Arc<str> {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        let _ = getrandom::fill(&mut b);
        u32::from_le_bytes(b)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Arc::from(format!("req_{prefix:08x}{n:012x}"))
}

/// `rule:action` pairs for the access line (`-` when none).
fn guardrail_text(findings: &[(String, &'static str)]) -> String {
    if findings.is_empty() {
        return "-".into();
    }
    findings
        .iter()
        .map(|(rule, action)| format!("{rule}:{action}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_sane() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert!(is_sane_request_id(&a));
        assert!(!is_sane_request_id("has space"));
        assert!(!is_sane_request_id(""));
        assert!(!is_sane_request_id(&"x".repeat(129)));
    }
}
