//! Policy enforcement on the request path, in order: decide (active policy, and the shadow
//! candidate next to it) -> rate limits -> concurrency -> budgets. What was reserved is
//! settled when the response ends — even when the client disconnected — with the actual
//! tokens and cost, and the usage record is queued for the store.

use crate::access::{AccessNote, Finished};
use crate::error::GatewayError;
use crate::state::AppState;
use axum::http::{HeaderName, HeaderValue};
use portcullis_config::Price;
use portcullis_policy::decide::{compare, LimitKind, Principal, Target};
use portcullis_policy::limits::{plan, ConcurrencyGuard, RateKind, RateStatus};
use portcullis_policy::KeyEntry;
use portcullis_store::{NewShadowEvent, NewUsage};
use portcullis_telemetry::metrics::{RateLimitKind, ShadowKind};
use portcullis_wire::openai::PassthroughRequest;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;

/// Completion tokens assumed for estimates when the request sets no maximum.
const DEFAULT_COMPLETION_ESTIMATE: u64 = 256;

/// What the request is for, as far as enforcement cares.
pub struct Call<'a> {
    /// The authenticated key.
    pub key: &'a KeyEntry,
    /// Client address.
    pub client_ip: Option<IpAddr>,
    /// Public model name (or route path).
    pub target: Target<'a>,
    /// Parsed body, for token estimates (None for routes).
    pub request: Option<&'a PassthroughRequest>,
    /// Request body size.
    pub body_bytes: u64,
    /// Price of the model, for cost.
    pub price: Option<Price>,
    /// Provider name (the route's name for REST routes), for usage records.
    pub provider: &'a str,
}

/// The guardrail profile that applies to an admitted request, if any.
pub type Guard = Option<Arc<portcullis_guard::CompiledProfile>>;

/// Judges and reserves; on success the settlement is registered on the access note and the
/// team's guardrail profile (if the policy names one) is returned.
pub async fn admit(
    state: &Arc<AppState>,
    call: Call<'_>,
    note: &Arc<AccessNote>,
) -> Result<Guard, GatewayError> {
    let snapshot = state.policy.load_full();
    let key = call.key;
    // Usage of a REST route is recorded under `route:<name>` (one row per route, not per path).
    let model_name = match call.target {
        Target::Model(m) => m.to_string(),
        Target::Route(_) => format!("route:{}", call.provider),
    };
    let mut settlement = Settlement {
        state: state.clone(),
        note: Arc::downgrade(note),
        key_id: key.id.clone(),
        team: key.team.clone(),
        model: model_name,
        provider: call.provider.to_string(),
        price: call.price,
        rate: None,
        lease: None,
        budget: None,
    };
    let Some(active) = &snapshot.active else {
        note.on_finish(Box::new(move |done| settlement.run(done)));
        return Ok(None);
    };
    let team = key.team.as_deref();
    let wants_estimate = active.compiled.needs_token_estimate(team)
        || snapshot
            .shadow
            .as_ref()
            .is_some_and(|s| s.compiled.needs_token_estimate(team));
    let mut estimate = match wants_estimate {
        true => Some(estimate_tokens(call.request)?),
        false => None,
    };
    let principal = |estimated_tokens| Principal {
        key_id: &key.id,
        user_id: key.owner.as_deref(),
        team,
        role: &key.role,
        client_ip: call.client_ip,
        target: call.target,
        estimated_tokens,
        body_bytes: Some(call.body_bytes),
    };
    let decision = active.compiled.decide(&principal(estimate));
    if let Some(shadow) = &snapshot.shadow {
        let candidate = shadow.compiled.decide(&principal(estimate));
        if let Some(diff) = compare(&decision, &candidate) {
            state
                .shadow_differences
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            state.metrics.shadow_difference(shadow_kind(diff.kind));
            tracing::info!(
                target: "portcullis::shadow",
                kind = diff.kind.label(),
                key_id = %key.id,
                team = team.unwrap_or("-"),
                target = %target_text(call.target),
                active_rule = %diff.active_rule,
                shadow_rule = %diff.shadow_rule,
                "shadow policy would decide differently: {}", diff.summary
            );
            state.shadow_writer.push(NewShadowEvent {
                at: crate::auth::unix_now(),
                active_version: Some(active.version),
                shadow_version: shadow.version,
                kind: diff.kind.label().to_string(),
                principal: key.id.clone(),
                team: key.team.clone(),
                target: target_text(call.target),
                active_rule: diff.active_rule.clone(),
                shadow_rule: diff.shadow_rule.clone(),
                summary: diff.summary.clone(),
            });
        }
    }
    note.policy_rule(&decision.rule);
    if !decision.allowed {
        return Err(GatewayError::PolicyDenied {
            rule: decision.rule,
            reason: decision.reason,
        });
    }
    let guard = decision
        .guardrails
        .as_ref()
        .and_then(|name| active.guards.get(name).cloned());
    if decision.limits.is_empty() {
        note.on_finish(Box::new(move |done| settlement.run(done)));
        return Ok(guard);
    }
    // The tokenizer runs only when a token limit or a budget needs the estimate.
    let needs_tokens = decision
        .limits
        .iter()
        .any(|l| matches!(l.kind, LimitKind::Tokens { .. } | LimitKind::Budget { .. }));
    let tokens = match (estimate, needs_tokens) {
        (Some(t), _) => t,
        (None, true) => *estimate.insert(estimate_tokens(call.request)?),
        (None, false) => 0,
    };
    let cost = match call.price {
        Some(p) => p.cost_micros(
            prompt_part(tokens, call.request)?,
            0,
            completion_part(call.request)?,
        ),
        None => 0,
    };
    let checks = plan(&decision.limits, tokens, cost);
    let limiter = &state.limiter;

    let rate = limiter.reserve_rate(&checks.rate).await;
    note.rate_headers(rate_headers(&rate.statuses));
    if let Some(mode) = rate.unavailable {
        state.count_limiter_unavailable(mode);
    }
    if !rate.allowed {
        if let Some(check) = rate.denied_by.and_then(|i| checks.rate.get(i)) {
            state.metrics.rate_limit_rejected(match check.kind {
                RateKind::Requests => RateLimitKind::Requests,
                RateKind::Tokens => RateLimitKind::Tokens,
            });
        }
        return Err(match (rate.unavailable, rate.denied_by) {
            (Some(_), _) => GatewayError::LimiterUnavailable,
            (None, i) => GatewayError::RateLimited {
                rule: i
                    .and_then(|i| checks.rate.get(i))
                    .map(|c| c.id.clone())
                    .unwrap_or_default(),
                retry_after: rate.retry_after_secs().unwrap_or(1),
            },
        });
    }
    settlement.rate = rate.reservation;

    let slots = limiter.acquire(&checks.concurrency).await;
    if let Some(mode) = slots.unavailable {
        state.count_limiter_unavailable(mode);
    }
    if !slots.allowed {
        if slots.unavailable.is_none() {
            state
                .metrics
                .rate_limit_rejected(RateLimitKind::Concurrency);
        }
        settlement.run(Finished::refused());
        return Err(match (slots.unavailable, slots.denied_by) {
            (Some(_), _) => GatewayError::LimiterUnavailable,
            (None, i) => GatewayError::RateLimited {
                rule: i
                    .and_then(|i| checks.concurrency.get(i))
                    .map(|c| c.id.clone())
                    .unwrap_or_default(),
                retry_after: 1,
            },
        });
    }
    settlement.lease = Some(ConcurrencyGuard::new(
        limiter.backend().clone(),
        slots.lease,
    ));

    let budget = limiter.reserve_budget(&checks.budgets).await;
    if let Some(mode) = budget.unavailable {
        state.count_limiter_unavailable(mode);
    }
    for status in budget.statuses.iter().filter(|s| s.exceeded) {
        tracing::warn!(budget = %status.id, spent_micros = status.spent_micros, limit_micros = status.limit_micros, key_id = %key.id, "ALERT: budget exceeded");
    }
    if !budget.allowed {
        if budget.unavailable.is_none() {
            state.metrics.budget_rejected();
        }
        settlement.run(Finished::refused());
        return Err(match (budget.unavailable, budget.denied_by) {
            (Some(_), _) => GatewayError::LimiterUnavailable,
            (None, i) => GatewayError::BudgetExceeded {
                rule: i
                    .and_then(|i| checks.budgets.get(i))
                    .map(|c| c.id.clone())
                    .unwrap_or_default(),
            },
        });
    }
    settlement.budget = budget.reservation;
    note.on_finish(Box::new(move |done| settlement.run(done)));
    Ok(guard)
}

/// Reservations to settle and the usage to record once the response is over.
struct Settlement {
    state: Arc<AppState>,
    note: std::sync::Weak<AccessNote>,
    key_id: String,
    team: Option<String>,
    model: String,
    provider: String,
    price: Option<Price>,
    rate: Option<portcullis_policy::limits::RateReservation>,
    lease: Option<ConcurrencyGuard>,
    budget: Option<portcullis_policy::limits::BudgetReservation>,
}

impl Settlement {
    fn run(self, done: Finished) {
        let usage = done.usage;
        let cost = self
            .price
            .map(|p| {
                p.cost_micros(
                    usage.prompt_tokens,
                    done.cached_tokens,
                    usage.completion_tokens,
                )
            })
            .unwrap_or(0);
        let (model, team) = (Some(self.model.as_str()), self.team.as_deref());
        self.state.metrics.record_cost(model, team, cost);
        if let Some(note) = self.note.upgrade() {
            note.cost(cost);
        }
        if done.record_usage {
            self.state.usage_writer.push(NewUsage {
                at: crate::auth::unix_now(),
                request_id: done.request_id.to_string(),
                key_id: self.key_id.clone(),
                team: self.team.clone(),
                model: self.model.clone(),
                // A cache hit is recorded as the `cache` provider's, with no tokens and no cost.
                provider: if done.cache_hit {
                    "cache".into()
                } else {
                    done.provider
                        .clone()
                        .unwrap_or_else(|| self.provider.clone())
                },
                status: done.status,
                prompt_tokens: usage.prompt_tokens as i64,
                completion_tokens: usage.completion_tokens as i64,
                cached_tokens: done.cached_tokens as i64,
                cost_micros: cost as i64,
            });
        }
        if self.rate.is_none() && self.lease.is_none() && self.budget.is_none() {
            return;
        }
        let limiter = self.state.limiter.clone();
        let actual_tokens = usage.prompt_tokens + usage.completion_tokens;
        tokio::spawn(async move {
            if let Some(r) = &self.rate {
                if let Err(e) = limiter.backend().settle_rate(r, actual_tokens).await {
                    tracing::warn!(error = %e, "cannot settle token limits");
                }
            }
            if let Some(lease) = self.lease {
                if let Err(e) = lease.release().await {
                    tracing::warn!(error = %e, "cannot release concurrency slots");
                }
            }
            if let Some(b) = &self.budget {
                if let Err(e) = limiter.backend().settle_budget(b, cost).await {
                    tracing::warn!(error = %e, "cannot settle budget");
                }
            }
        });
    }
}

fn shadow_kind(kind: portcullis_policy::decide::ShadowDiffKind) -> ShadowKind {
    use portcullis_policy::decide::ShadowDiffKind as K;
    match kind {
        K::NewlyDenied => ShadowKind::NewlyDenied,
        K::NewlyAllowed => ShadowKind::NewlyAllowed,
        K::OtherRule => ShadowKind::OtherRule,
        K::OtherLimits => ShadowKind::OtherLimits,
    }
}

fn target_text(t: Target<'_>) -> String {
    match t {
        Target::Model(m) => format!("model:{m}"),
        Target::Route(r) => format!("route:{r}"),
    }
}

/// The most constraining status of each kind becomes the x-ratelimit-* headers.
fn rate_headers(statuses: &[RateStatus]) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for kind in [RateKind::Requests, RateKind::Tokens] {
        let Some(s) = statuses
            .iter()
            .filter(|s| s.kind == kind)
            .min_by_key(|s| s.remaining)
        else {
            continue;
        };
        let label = kind.label();
        for (name, value) in [
            ("limit", s.limit),
            ("remaining", s.remaining),
            ("reset", s.reset_secs),
        ] {
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(format!("x-ratelimit-{name}-{label}")),
                HeaderValue::try_from(if name == "reset" {
                    format!("{value}s")
                } else {
                    value.to_string()
                }),
            ) {
                out.push((n, v));
            }
        }
    }
    out
}

/// Estimated prompt + completion tokens of a chat body (real tokenizer on the message
/// text); a read field that does not parse is the client's error, never left uncounted.
fn estimate_tokens(request: Option<&PassthroughRequest>) -> Result<u64, GatewayError> {
    let Some(r) = request else { return Ok(0) };
    let mut text = String::new();
    for field in ["messages", "system", "input", "prompt"] {
        if let Some(v) = r.get(field)? {
            collect_text(&v, &mut text);
        }
    }
    Ok(portcullis_policy::tokens::estimate_prompt_tokens(&text) + completion_part(request)?)
}

fn prompt_part(total: u64, request: Option<&PassthroughRequest>) -> Result<u64, GatewayError> {
    Ok(total.saturating_sub(completion_part(request)?))
}

fn completion_part(request: Option<&PassthroughRequest>) -> Result<u64, GatewayError> {
    let Some(r) = request else {
        return Ok(DEFAULT_COMPLETION_ESTIMATE);
    };
    for field in ["max_completion_tokens", "max_tokens", "max_output_tokens"] {
        if let Some(n) = r.get(field)?.as_ref().and_then(Value::as_u64) {
            return Ok(n);
        }
    }
    Ok(DEFAULT_COMPLETION_ESTIMATE)
}

fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, out)),
        Value::Object(map) => {
            for (k, item) in map {
                if matches!(
                    k.as_str(),
                    "content" | "text" | "arguments" | "input" | "output"
                ) {
                    collect_text(item, out);
                }
            }
        }
        _ => {}
    }
}
