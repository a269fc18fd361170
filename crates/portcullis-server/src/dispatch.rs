//! Sending one request to a model group, with retries and fallbacks.
//!
//! The plan is the requested group, then each fallback group in order. For each attempt a
//! target is chosen by the group's strategy among the targets whose breaker lets calls
//! through, preferring targets this request has not tried yet (failover is immediate); a
//! retry of an already tried target waits for the backoff (exponential, full jitter) or the
//! upstream's `Retry-After`, whichever is longer, unless that exceeds the cap. Every attempt
//! after the first draws from the requested model's retry budget. A failure class that
//! the group does not retry ends the request with that failure. Streams are committed only
//! once their first chunk arrived and is not an error event: until then nothing has
//! reached the client and the request may still move on.

use crate::access::AccessNote;
use crate::error::GatewayError;
use crate::groups::{InFlight, Member, Route};
use crate::state::AppState;
use bytes::Bytes;
use futures_util::stream::StreamExt;
use portcullis_providers::{CallLimits, Operation, UpstreamBody, UpstreamError, UpstreamResponse};
use portcullis_route::{parse_retry_after, pick, Admission, Candidate, FailureClass};
use portcullis_telemetry::metrics::{RouteEvent, UpstreamErrorClass};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A request header that sets the request's whole upstream time limit (`20s`, `1500ms`, or
/// seconds), capped by the team's `max_timeout_secs` in the policy, else by the model's own.
pub const TIMEOUT_HEADER: &str = "x-portcullis-timeout";

/// What was sent where, and the answer.
pub struct Answered {
    /// The target that answered.
    pub member: Member,
    /// Its answer; a stream's first chunk has already been read and is put back in front.
    pub response: UpstreamResponse,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// Keeps the target's in-flight count until dropped (hold it until the body ends).
    pub in_flight: InFlight,
}

/// One request's dispatch.
pub struct Dispatch<'a> {
    /// Gateway state (routes for fallbacks, metrics).
    pub state: &'a AppState,
    /// The group the request resolved to.
    pub route: &'a Arc<Route>,
    /// What is asked.
    pub op: Operation,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Time limits of the whole request.
    pub limits: CallLimits,
    /// The access note (attempts, target).
    pub note: &'a AccessNote,
}

/// The time limits of a request to `route`: the model's, with the whole-request limit
/// replaced by the [`TIMEOUT_HEADER`] value when given (capped by `max` when the policy
/// sets one, else by the model's own limit: without a policy maximum the header may only
/// shorten it).
pub fn limits(
    route: &Route,
    header: Option<&http::HeaderValue>,
    max: Option<Duration>,
) -> Result<CallLimits, GatewayError> {
    let t = route.timeouts;
    let mut total = t.total;
    if let Some(value) = header {
        let bad = || GatewayError::BadRequest {
            message: format!(
                "header {TIMEOUT_HEADER} must be a duration such as 20s, 1500ms or 2m"
            ),
            param: Some(TIMEOUT_HEADER.into()),
        };
        let text = value.to_str().map_err(|_| bad())?.trim();
        let asked = match text.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => humantime::parse_duration(text).map_err(|_| bad())?,
        };
        if asked.is_zero() {
            return Err(bad());
        }
        total = asked.min(max.unwrap_or(t.total));
    }
    Ok(CallLimits {
        first_byte: t.first_byte.min(total),
        deadline: tokio::time::Instant::now() + total,
        idle: t.idle,
    })
}

impl Dispatch<'_> {
    /// Runs the plan; `encode` builds the upstream body for a target (its error ends the
    /// request at once: a body that cannot be encoded is the client's problem).
    pub async fn send(
        self,
        encode: &mut (dyn FnMut(&Member) -> Result<Vec<u8>, GatewayError> + Send),
    ) -> Result<Answered, GatewayError> {
        let Dispatch {
            state,
            route,
            op,
            stream,
            limits,
            note,
        } = self;
        let model = Some(route.model.as_str());
        let metrics = &state.metrics;
        let mut groups = vec![route.clone()];
        groups.extend(
            route
                .fallbacks
                .iter()
                .filter_map(|name| state.routes.get(name).cloned()),
        );
        route.count_request();
        let first_start = Instant::now();
        let mut attempts = 0u32;
        let mut last: Option<GatewayError> = None;
        let mut soonest: Option<Duration> = None;
        for (gi, group) in groups.iter().enumerate() {
            let policy = &group.retry;
            let mut tried: Vec<usize> = Vec::new();
            let mut skipped: Vec<usize> = Vec::new();
            let mut group_attempts = 0u32;
            let mut same_retries = 0u32;
            while group_attempts < policy.attempts {
                let now = Instant::now();
                if tokio::time::Instant::now() >= limits.deadline {
                    return Err(finish(
                        note,
                        attempts,
                        last.unwrap_or(GatewayError::UpstreamTimeout),
                    ));
                }
                // Candidates: untried targets that take calls now; else tried ones, and
                // targets held by a short Retry-After (within the cap), after a wait.
                let mut fresh = Vec::new();
                let mut again = Vec::new();
                for (i, m) in group.members.iter().enumerate() {
                    if skipped.contains(&i) || !m.provider.supports(op) {
                        continue;
                    }
                    match m.target.check(now) {
                        Admission::Refused(wait) => {
                            let held = m.target.held_for(now);
                            let free_after_hold = !held.is_zero()
                                && !matches!(m.target.check(now + held), Admission::Refused(_));
                            if free_after_hold {
                                again.push(i);
                            } else {
                                soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
                                if !tried.contains(&i) {
                                    metrics.route_event(model, RouteEvent::Ejected);
                                }
                                skipped.push(i);
                            }
                        }
                        _ if tried.contains(&i) => again.push(i),
                        _ => fresh.push(i),
                    }
                }
                let (pool, again) = if fresh.is_empty() {
                    (again, true)
                } else {
                    (fresh, false)
                };
                let candidates: Vec<Candidate> = pool
                    .iter()
                    .map(|&i| {
                        let m = &group.members[i];
                        Candidate {
                            weight: m.weight,
                            priority: m.priority,
                            in_flight: m.target.in_flight(),
                            latency_us: m.target.latency_us(),
                        }
                    })
                    .collect();
                let Some(choice) = pick(group.strategy, &candidates, fastrand::u64(..)) else {
                    break;
                };
                let index = pool[choice];
                let member = &group.members[index];
                let mut wait = Duration::ZERO;
                if again {
                    let held = member.target.held_for(now);
                    let backoff_step = if tried.contains(&index) {
                        Some(same_retries)
                    } else {
                        None
                    };
                    let step = backoff_step.unwrap_or(0);
                    match policy.wait(step, fastrand::u64(..), (!held.is_zero()).then_some(held)) {
                        // A target not tried yet only waits out its hold, not a backoff.
                        Some(w) if backoff_step.is_none() => wait = held.min(w),
                        Some(w) => wait = w,
                        None => {
                            // Throttled for longer than the cap: not for this request.
                            skipped.push(index);
                            continue;
                        }
                    }
                    if backoff_step.is_some() {
                        same_retries += 1;
                    }
                }
                if attempts > 0 {
                    if !route.try_retry() {
                        metrics.route_event(model, RouteEvent::BudgetExhausted);
                        tracing::warn!(model = %route.model, "retry budget exhausted; not retrying");
                        return Err(finish(
                            note,
                            attempts,
                            last.unwrap_or(GatewayError::UpstreamUnreachable),
                        ));
                    }
                    let event = if gi > 0 && group_attempts == 0 {
                        RouteEvent::Fallback
                    } else {
                        RouteEvent::Retry
                    };
                    metrics.route_event(model, event);
                }
                if !wait.is_zero() {
                    let wake = tokio::time::Instant::now() + wait;
                    if wake >= limits.deadline {
                        return Err(finish(
                            note,
                            attempts,
                            last.unwrap_or(GatewayError::UpstreamTimeout),
                        ));
                    }
                    tokio::time::sleep_until(wake).await;
                }
                if let Admission::Refused(_) = member.target.admit(Instant::now()) {
                    // Another request took the half-open probe meanwhile.
                    skipped.push(index);
                    continue;
                }
                let body = encode(member)?;
                attempts += 1;
                group_attempts += 1;
                if !tried.contains(&index) {
                    tried.push(index);
                }
                let in_flight = member.target.start();
                let started = Instant::now();
                let trace_headers =
                    crate::otel::attempt(note, &member.provider, op, &member.upstream_model);
                let sent = member
                    .provider
                    .send_limited(
                        op,
                        &member.upstream_model,
                        body,
                        stream,
                        limits,
                        &trace_headers,
                    )
                    .await;
                let sent = match sent {
                    Ok(response) => first_chunk(response, &member.provider.name).await,
                    Err(e) => Err(e),
                };
                crate::otel::answered(note, &sent);
                note.upstream_call(first_start);
                match sent {
                    Ok(response) => {
                        member.target.success(Instant::now(), started.elapsed());
                        note.attempts(attempts, &member.target.label);
                        note.route_provider(&member.provider.name);
                        return Ok(Answered {
                            member: member.clone(),
                            response,
                            attempts,
                            in_flight,
                        });
                    }
                    Err(e) => {
                        drop(in_flight);
                        let (class, retry_after) = classify(&e);
                        let hold = (class == FailureClass::RateLimited)
                            .then_some(retry_after)
                            .flatten();
                        member.target.failure(Instant::now(), class, hold);
                        metrics.upstream_error(metric_class(class), Some(&member.provider.name));
                        tracing::warn!(
                            model = %route.model,
                            target = %member.target.label,
                            attempt = attempts,
                            class = class.label(),
                            error = %e,
                            "upstream attempt failed"
                        );
                        note.attempts(attempts, &member.target.label);
                        note.route_provider(&member.provider.name);
                        let error = GatewayError::from_upstream(e, &member.provider);
                        if !policy.retryable(class) {
                            return Err(finish(note, attempts, error));
                        }
                        last = Some(error);
                    }
                }
            }
        }
        let error = last.unwrap_or_else(|| GatewayError::UpstreamUnavailable {
            retry_after: soonest.map(|d| d.as_secs_f64().ceil().max(1.0) as u64),
        });
        Err(finish(note, attempts, error))
    }
}

/// Notes that per-attempt upstream errors were counted, and hands the error back.
fn finish(note: &AccessNote, attempts: u32, error: GatewayError) -> GatewayError {
    if attempts > 0 {
        note.upstream_errors_counted();
    }
    error
}

/// The failure class of an upstream error and its `Retry-After`.
fn classify(e: &UpstreamError) -> (FailureClass, Option<Duration>) {
    match e {
        UpstreamError::Unreachable { .. } => (FailureClass::Connect, None),
        UpstreamError::Timeout { .. } => (FailureClass::Timeout, None),
        UpstreamError::Protocol { .. } => (FailureClass::BadResponse, None),
        UpstreamError::Status {
            status,
            retry_after,
            body,
            ..
        } => (
            FailureClass::from_status(*status, body),
            retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        ),
    }
}

fn metric_class(class: FailureClass) -> UpstreamErrorClass {
    match class {
        FailureClass::Connect => UpstreamErrorClass::Unreachable,
        FailureClass::Timeout => UpstreamErrorClass::Timeout,
        FailureClass::RateLimited => UpstreamErrorClass::RateLimited,
        FailureClass::ServerError => UpstreamErrorClass::ServerError,
        FailureClass::Overloaded => UpstreamErrorClass::Overloaded,
        FailureClass::BadResponse => UpstreamErrorClass::BadResponse,
        FailureClass::Misconfigured => UpstreamErrorClass::Misconfigured,
        FailureClass::Rejected => UpstreamErrorClass::Rejected,
    }
}

/// Reads a stream's first chunk before anything is committed to the client: a stream
/// that breaks, ends or reports an error before its first event is a failed attempt.
async fn first_chunk(
    response: UpstreamResponse,
    provider: &str,
) -> Result<UpstreamResponse, UpstreamError> {
    let UpstreamResponse {
        status,
        content_type,
        body,
    } = response;
    let mut chunks = match body {
        UpstreamBody::Stream(chunks) => chunks,
        full => {
            return Ok(UpstreamResponse {
                status,
                content_type,
                body: full,
            })
        }
    };
    match chunks.next().await {
        Some(Ok(first)) => {
            if let Some(status) = error_event_status(&first) {
                return Err(UpstreamError::Status {
                    provider: provider.to_string(),
                    status,
                    retry_after: None,
                    body: first,
                });
            }
            let rest = futures_util::stream::once(async move { Ok(first) }).chain(chunks);
            Ok(UpstreamResponse {
                status,
                content_type,
                body: UpstreamBody::Stream(rest.boxed()),
            })
        }
        Some(Err(e)) => Err(e),
        None => Err(UpstreamError::Protocol {
            provider: provider.to_string(),
            detail: "the stream ended before its first event".into(),
        }),
    }
}

/// When the first SSE event of a stream is an error event (Anthropic `event: error`,
/// OpenAI or Gemini `data: {"error": ...}`), the status it stands for: 529 when overloaded.
fn error_event_status(chunk: &Bytes) -> Option<u16> {
    let end = chunk
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(chunk.len());
    let event = &chunk[..end];
    let is_error = event.starts_with(b"event: error")
        || event.starts_with(b"data: {\"error\"")
        || event.starts_with(b"data:{\"error\"");
    if !is_error {
        return None;
    }
    Some(if event.windows(16).any(|w| w == b"overloaded_error") {
        529
    } else {
        500
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_events_that_are_errors() {
        let anthropic = Bytes::from_static(
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n",
        );
        assert_eq!(error_event_status(&anthropic), Some(529));
        let openai = Bytes::from_static(b"data: {\"error\":{\"message\":\"boom\"}}\n\n");
        assert_eq!(error_event_status(&openai), Some(500));
        let ok = Bytes::from_static(b"data: {\"id\":\"x\",\"choices\":[]}\n\ndata: {\"error\"");
        assert_eq!(error_event_status(&ok), None);
        let start = Bytes::from_static(b"event: message_start\ndata: {}\n\n");
        assert_eq!(error_event_status(&start), None);
    }
}
