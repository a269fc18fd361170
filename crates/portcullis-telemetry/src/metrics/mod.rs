//! Gateway metrics: typed names, bounded labels, lock-free recording, Prometheus text.
//!
//! Why not the `prometheus` or `prometheus-client` crates: their label sets are strings
//! hashed into a locked map on every observation (or a family lookup per label set), so
//! bounding cardinality and avoiding per-request allocation would be ours to do anyway.
//! Here every metric is a flat array of atomics allocated once at startup, one cell per
//! label combination; a label is an index, found from a small enum or from a [`NameSet`]
//! of configured names (unknown names map to `other`). Recording is a hash probe for the
//! model/provider names plus a few relaxed atomic adds: no lock, no allocation. The whole
//! module uses nothing beyond `std`.
//!
//! Cardinality bounds: models and providers are the configured names + `other` + `none`;
//! teams, guardrail rules and breaker targets are the first [`DYNAMIC_CAPACITY`] distinct
//! names seen + `other` + `none`; every other label is an enum. Rendering skips series of
//! multi-label families that never moved, so the output stays small.

mod cells;
mod families;
mod labels;
pub mod parse;
mod render;

pub use cells::{HistogramSnapshot, LATENCY_BUCKETS};
pub use labels::{
    AlertRule, BoundedNames, BreakerState, Direction, FailMode, GuardrailAction, NameSet, Queue,
    RateLimitKind, Route, RouteEvent, ShadowKind, Status, UpstreamErrorClass, NONE, OTHER,
    STATUS_ALLOWLIST,
};
pub use render::CONTENT_TYPE;

use cells::{Counters, Gauges, Histograms};
use render::{Kind, Writer};
use std::time::Duration;

/// Distinct teams, guardrail rules and breaker targets that get their own label value.
pub const DYNAMIC_CAPACITY: usize = 64;

/// Every metric family: its name, help text and type. Names are only spelled here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricName {
    /// Requests by route, model, provider and status.
    RequestsTotal,
    /// End-to-end request duration by route.
    RequestDuration,
    /// Time spent in the gateway itself (total minus upstream) by route.
    GatewayOverhead,
    /// Time spent waiting on the upstream provider, by provider.
    UpstreamSeconds,
    /// Time to the first streamed token, by model.
    TimeToFirstToken,
    /// Tokens by direction and model.
    TokensTotal,
    /// Cost in micro-USD by model and team.
    CostMicrosTotal,
    /// Responses served from the gateway cache.
    CacheHitsTotal,
    /// Cacheable requests the cache could not answer.
    CacheMissesTotal,
    /// Requests refused by a rate or concurrency limit, by kind.
    RateLimitRejectionsTotal,
    /// Requests refused by an exhausted budget.
    BudgetRejectionsTotal,
    /// Guardrail interventions by rule and action.
    GuardrailActionsTotal,
    /// Upstream failures by class and provider.
    UpstreamErrorsTotal,
    /// Circuit breaker state by target.
    BreakerState,
    /// Requests in flight to each upstream target.
    UpstreamInFlight,
    /// Retries, fallbacks, exhausted retry budgets and ejected-target skips, by model.
    RouteEventsTotal,
    /// Records waiting in a background queue.
    QueueDepth,
    /// Records dropped because a background queue was full.
    QueueDroppedTotal,
    /// Requests the shadow policy decided differently, by kind.
    ShadowDifferencesTotal,
    /// Limit checks decided by the fail mode because the limit store was unreachable.
    LimiterFailModeTotal,
    /// Anomaly alert occurrences by rule (repeats inside the deduplication window included).
    AlertsTotal,
}

impl MetricName {
    /// Every family, in rendering order.
    pub const ALL: &'static [MetricName] = &[
        MetricName::RequestsTotal,
        MetricName::RequestDuration,
        MetricName::GatewayOverhead,
        MetricName::UpstreamSeconds,
        MetricName::TimeToFirstToken,
        MetricName::TokensTotal,
        MetricName::CostMicrosTotal,
        MetricName::CacheHitsTotal,
        MetricName::CacheMissesTotal,
        MetricName::RateLimitRejectionsTotal,
        MetricName::BudgetRejectionsTotal,
        MetricName::GuardrailActionsTotal,
        MetricName::UpstreamErrorsTotal,
        MetricName::BreakerState,
        MetricName::UpstreamInFlight,
        MetricName::RouteEventsTotal,
        MetricName::QueueDepth,
        MetricName::QueueDroppedTotal,
        MetricName::ShadowDifferencesTotal,
        MetricName::LimiterFailModeTotal,
        MetricName::AlertsTotal,
    ];

    /// The exposed name.
    pub fn name(self) -> &'static str {
        use MetricName::*;
        match self {
            RequestsTotal => "portcullis_requests_total",
            RequestDuration => "portcullis_request_duration_seconds",
            GatewayOverhead => "portcullis_gateway_overhead_seconds",
            UpstreamSeconds => "portcullis_upstream_seconds",
            TimeToFirstToken => "portcullis_time_to_first_token_seconds",
            TokensTotal => "portcullis_tokens_total",
            CostMicrosTotal => "portcullis_cost_usd_micros_total",
            CacheHitsTotal => "portcullis_cache_hits_total",
            CacheMissesTotal => "portcullis_cache_misses_total",
            RateLimitRejectionsTotal => "portcullis_rate_limit_rejections_total",
            BudgetRejectionsTotal => "portcullis_budget_rejections_total",
            GuardrailActionsTotal => "portcullis_guardrail_actions_total",
            UpstreamErrorsTotal => "portcullis_upstream_errors_total",
            BreakerState => "portcullis_breaker_state",
            UpstreamInFlight => "portcullis_upstream_in_flight",
            RouteEventsTotal => "portcullis_route_events_total",
            QueueDepth => "portcullis_queue_depth",
            QueueDroppedTotal => "portcullis_queue_dropped_total",
            ShadowDifferencesTotal => "portcullis_shadow_differences_total",
            LimiterFailModeTotal => "portcullis_limiter_fail_mode_total",
            AlertsTotal => "portcullis_alerts_total",
        }
    }

    fn kind(self) -> Kind {
        use MetricName::*;
        match self {
            RequestDuration | GatewayOverhead | UpstreamSeconds | TimeToFirstToken => {
                Kind::Histogram
            }
            BreakerState | QueueDepth | UpstreamInFlight => Kind::Gauge,
            _ => Kind::Counter,
        }
    }

    fn help(self) -> &'static str {
        use MetricName::*;
        match self {
            RequestsTotal => "Requests by route, model, provider and status (exact code for common codes, else class).",
            RequestDuration => "End-to-end request duration in seconds, until the response body ended.",
            GatewayOverhead => "Request duration minus time spent waiting on the upstream, in seconds.",
            UpstreamSeconds => "Time spent waiting on the upstream provider, in seconds.",
            TimeToFirstToken => "Time from request start to the first streamed token, in seconds.",
            TokensTotal => "Tokens reported by upstreams, by direction (in = prompt, out = completion).",
            CostMicrosTotal => "Cost in micro-USD computed from configured prices, by model and team.",
            CacheHitsTotal => "Responses served from the gateway cache.",
            CacheMissesTotal => "Cacheable requests the gateway cache could not answer (sent upstream).",
            RateLimitRejectionsTotal => "Requests refused by a rate or concurrency limit.",
            BudgetRejectionsTotal => "Requests refused because a budget was exhausted.",
            GuardrailActionsTotal => "Guardrail interventions by rule and action.",
            UpstreamErrorsTotal => "Upstream failures by class and provider.",
            BreakerState => "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            UpstreamInFlight => "Requests in flight to each upstream target (provider/upstream model).",
            RouteEventsTotal => "Routing events by model: retry, fallback, budget_exhausted (a retry refused by the retry budget), ejected (a target skipped because its breaker is open).",
            QueueDepth => "Records waiting in a background queue.",
            QueueDroppedTotal => "Records dropped because a background queue was full.",
            ShadowDifferencesTotal => "Requests the shadow policy decided differently from the active one.",
            LimiterFailModeTotal => "Limit checks decided by the fail mode because the limit store was unreachable.",
            AlertsTotal => "Anomaly alert occurrences by rule, repeats inside the deduplication window included.",
        }
    }
}

/// What one finished request contributes; built by the access log at the end of a request.
/// Cost is recorded apart ([`Metrics::record_cost`]) where prices and teams are known.
#[derive(Debug, Clone, Copy)]
pub struct RequestSample<'a> {
    /// The endpoint kind.
    pub route: Route,
    /// Public model name, if the request named one.
    pub model: Option<&'a str>,
    /// Provider that served it, if any.
    pub provider: Option<&'a str>,
    /// Final HTTP status.
    pub status: u16,
    /// From request start to the end of the response body.
    pub total: Duration,
    /// Time spent waiting on the upstream, when one was called.
    pub upstream: Option<Duration>,
    /// Time from request start to the first streamed token.
    pub first_token: Option<Duration>,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Upstream failure class, when the upstream failed.
    pub upstream_error: Option<UpstreamErrorClass>,
}

/// The registry: create once from the configured model and provider names, share by `Arc`.
#[derive(Debug)]
pub struct Metrics {
    models: NameSet,
    providers: NameSet,
    teams: BoundedNames,
    rules: BoundedNames,
    targets: BoundedNames,
    requests: Counters,
    duration: Histograms,
    overhead: Histograms,
    upstream: Histograms,
    ttft: Histograms,
    tokens: Counters,
    cost: Counters,
    cache_hits: Counters,
    cache_misses: Counters,
    rate_limited: Counters,
    budget: Counters,
    guardrail: Counters,
    upstream_errors: Counters,
    breaker: Gauges,
    in_flight: Gauges,
    route_events: Counters,
    queue_depth: Gauges,
    queue_dropped: Counters,
    shadow: Counters,
    fail_mode: Counters,
    alerts: Counters,
}

impl Metrics {
    /// A registry whose `model` and `provider` labels are these names (+ `other`, `none`).
    pub fn new<S: AsRef<str>>(
        models: impl IntoIterator<Item = S>,
        providers: impl IntoIterator<Item = S>,
    ) -> Metrics {
        let models = NameSet::new(models);
        let providers = NameSet::new(providers);
        let teams = BoundedNames::new(DYNAMIC_CAPACITY);
        let rules = BoundedNames::new(DYNAMIC_CAPACITY);
        let targets = BoundedNames::new(DYNAMIC_CAPACITY);
        let (m, p, r) = (models.len(), providers.len(), Route::ALL.len());
        Metrics {
            requests: Counters::new(r * m * p * Status::COUNT),
            duration: Histograms::new(r),
            overhead: Histograms::new(r),
            upstream: Histograms::new(p),
            ttft: Histograms::new(m),
            tokens: Counters::new(Direction::ALL.len() * m),
            cost: Counters::new(m * teams.len()),
            cache_hits: Counters::new(1),
            cache_misses: Counters::new(1),
            rate_limited: Counters::new(RateLimitKind::ALL.len()),
            budget: Counters::new(1),
            guardrail: Counters::new(rules.len() * GuardrailAction::ALL.len()),
            upstream_errors: Counters::new(UpstreamErrorClass::ALL.len() * p),
            breaker: Gauges::new(targets.len()),
            in_flight: Gauges::new(targets.len()),
            route_events: Counters::new(RouteEvent::ALL.len() * m),
            queue_depth: Gauges::new(Queue::ALL.len()),
            queue_dropped: Counters::new(Queue::ALL.len()),
            shadow: Counters::new(ShadowKind::ALL.len()),
            fail_mode: Counters::new(FailMode::ALL.len()),
            alerts: Counters::new(AlertRule::ALL.len()),
            models,
            providers,
            teams,
            rules,
            targets,
        }
    }

    /// Records a finished request: requests, latencies, tokens, upstream errors.
    pub fn record_request(&self, s: &RequestSample<'_>) {
        let route = s.route.index();
        let model = self.models.get(s.model);
        let provider = self.providers.get(s.provider);
        let status = Status::from_code(s.status).index();
        let (m, p) = (self.models.len(), self.providers.len());
        self.requests.add(
            ((route * m + model) * p + provider) * Status::COUNT + status,
            1,
        );
        self.duration.observe(route, s.total);
        self.overhead.observe(
            route,
            s.total.saturating_sub(s.upstream.unwrap_or_default()),
        );
        if let Some(u) = s.upstream {
            self.upstream.observe(provider, u);
        }
        if let Some(t) = s.first_token {
            self.ttft.observe(model, t);
        }
        self.tokens
            .add(Direction::In.index() * m + model, s.tokens_in);
        self.tokens
            .add(Direction::Out.index() * m + model, s.tokens_out);
        if let Some(class) = s.upstream_error {
            self.upstream_error(class, s.provider);
        }
    }

    /// The settled cost of a request, micro-USD (recorded where prices are known).
    pub fn record_cost(&self, model: Option<&str>, team: Option<&str>, micros: u64) {
        if micros > 0 {
            let (model, team) = (self.models.get(model), self.teams.get(team));
            self.cost.add(model * self.teams.len() + team, micros);
        }
    }

    /// A response served from the gateway cache.
    pub fn cache_hit(&self) {
        self.cache_hits.add(0, 1);
    }

    /// A cacheable request the gateway cache could not answer.
    pub fn cache_miss(&self) {
        self.cache_misses.add(0, 1);
    }

    /// A request refused by a rate or concurrency limit.
    pub fn rate_limit_rejected(&self, kind: RateLimitKind) {
        self.rate_limited.add(kind.index(), 1);
    }

    /// A request refused by an exhausted budget.
    pub fn budget_rejected(&self) {
        self.budget.add(0, 1);
    }

    /// A guardrail intervention.
    pub fn guardrail_action(&self, rule: &str, action: GuardrailAction) {
        let rule = self.rules.get(Some(rule));
        self.guardrail
            .add(rule * GuardrailAction::ALL.len() + action.index(), 1);
    }

    /// An upstream failure.
    pub fn upstream_error(&self, class: UpstreamErrorClass, provider: Option<&str>) {
        let p = self.providers.get(provider);
        self.upstream_errors
            .add(class.index() * self.providers.len() + p, 1);
    }

    /// The current state of a circuit breaker.
    pub fn set_breaker_state(&self, target: &str, state: BreakerState) {
        let t = self.targets.get(Some(target));
        self.breaker.set(t, state.index() as i64);
    }

    /// The number of requests in flight to a target.
    pub fn set_in_flight(&self, target: &str, n: u64) {
        let t = self.targets.get(Some(target));
        self.in_flight.set(t, i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A routing event of a request for `model`.
    pub fn route_event(&self, model: Option<&str>, event: RouteEvent) {
        let m = self.models.get(model);
        self.route_events
            .add(event.index() * self.models.len() + m, 1);
    }

    /// The current depth of a background queue and its dropped total so far.
    pub fn set_queue(&self, queue: Queue, depth: u64, dropped_total: u64) {
        self.queue_depth
            .set(queue.index(), i64::try_from(depth).unwrap_or(i64::MAX));
        self.queue_dropped.raise_to(queue.index(), dropped_total);
    }

    /// A shadow-policy difference.
    pub fn shadow_difference(&self, kind: ShadowKind) {
        self.shadow.add(kind.index(), 1);
    }

    /// A limit check decided by the fail mode.
    pub fn limiter_fail_mode(&self, mode: FailMode) {
        self.fail_mode.add(mode.index(), 1);
    }

    /// An anomaly alert occurrence.
    pub fn alert(&self, rule: AlertRule) {
        self.alerts.add(rule.index(), 1);
    }

    /// The Prometheus text exposition of every family (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut w = Writer::default();
        for &family in MetricName::ALL {
            w.family(family.name(), family.help(), family.kind());
            self.render_family(&mut w, family);
        }
        w.finish()
    }
}
