//! The routing table: public model names -> model groups of targets, each target with its
//! live health (circuit breaker, requests in flight, latency EWMA), built once from the
//! configuration. A target is a provider + upstream model; its health is shared by every
//! group that lists it.

use crate::state::StateError;
use portcullis_config::{Config, Price, StrategyConfig, Timeouts};
use portcullis_providers::{Provider, Providers};
use portcullis_route::{
    Admission, Breaker, BreakerConfig, BreakerSnapshot, BreakerState, BudgetConfig, ClassSet,
    FailureClass, RetryBudget, RetryPolicy, Rule, Strategy,
};
use portcullis_telemetry::metrics::{self, Metrics};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Weight of a new latency sample in the EWMA, percent.
const LATENCY_ALPHA_PERCENT: u64 = 30;

/// A public model: its group of targets and how the group is used.
#[derive(Debug)]
pub struct Route {
    /// Public name.
    pub model: String,
    /// Prices for cost and budgets.
    pub price: Option<Price>,
    /// The group's targets, in configuration order (never empty).
    pub members: Vec<Member>,
    /// How requests are spread over the members.
    pub strategy: Strategy,
    /// Public model names tried in order after the group's own targets failed.
    pub fallbacks: Vec<String>,
    /// Retry policy for attempts on this group.
    pub retry: RetryPolicy,
    /// Retry budget of requests for this model (every extra attempt draws from it).
    pub budget: Mutex<RetryBudget>,
    /// Time limits.
    pub timeouts: RouteTimeouts,
}

impl Route {
    /// The first target (for listings).
    pub fn primary(&self) -> &Member {
        &self.members[0]
    }

    /// Counts a request in the retry budget.
    pub fn count_request(&self) {
        lock(&self.budget).record_request(Instant::now());
    }

    /// Takes a retry from the budget; false when it is spent.
    pub fn try_retry(&self) -> bool {
        lock(&self.budget).try_retry(Instant::now())
    }
}

/// Resolved time limits of a model.
#[derive(Debug, Clone, Copy)]
pub struct RouteTimeouts {
    /// Until the response headers.
    pub first_byte: Duration,
    /// The whole request.
    pub total: Duration,
    /// Between stream chunks.
    pub idle: Duration,
}

/// One target of a group.
#[derive(Debug, Clone)]
pub struct Member {
    /// Shared health of the target.
    pub target: Arc<TargetHealth>,
    /// Client of the serving provider (with the model's connect timeout).
    pub provider: Arc<Provider>,
    /// Name sent upstream.
    pub upstream_model: String,
    /// Share of traffic (`weighted`, and among equal priorities).
    pub weight: u32,
    /// Order for the `priority` strategy (lower first).
    pub priority: u32,
}

/// Live health of one target (provider + upstream model).
#[derive(Debug)]
pub struct TargetHealth {
    /// Position in the table: the breaker id on the admin API.
    pub id: usize,
    /// `provider/upstream_model`: metrics label, logs, `x-portcullis-target`.
    pub label: String,
    /// Provider name.
    pub provider: String,
    /// Upstream model name.
    pub upstream_model: String,
    breaker: Mutex<Breaker>,
    in_flight: AtomicU32,
    /// Latency EWMA in microseconds; 0 before the first sample.
    latency_us: AtomicU64,
    metrics: Arc<Metrics>,
}

impl TargetHealth {
    /// Whether a call could go now (breaker closed or due for a probe, not held).
    pub fn available(&self, now: Instant) -> bool {
        lock(&self.breaker).available(now)
    }

    /// What a call would be told at `now` (nothing claimed).
    pub fn check(&self, now: Instant) -> Admission {
        lock(&self.breaker).check(now)
    }

    /// How long the target is still held after a throttling answer.
    pub fn held_for(&self, now: Instant) -> Duration {
        lock(&self.breaker).held_for(now)
    }

    /// Claims a call (possibly the half-open probe).
    pub fn admit(&self, now: Instant) -> Admission {
        let mut breaker = lock(&self.breaker);
        let before = breaker.state();
        let answer = breaker.admit(now);
        self.publish(before, breaker.state());
        answer
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The latency EWMA, `None` before the first success.
    pub fn latency_us(&self) -> Option<u64> {
        Some(self.latency_us.load(Ordering::Relaxed)).filter(|l| *l > 0)
    }

    /// Marks a call in flight until the returned guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        let n = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.set_in_flight(&self.label, u64::from(n));
        InFlight(self.clone())
    }

    /// Records a successful call that answered after `latency`.
    pub fn success(&self, now: Instant, latency: Duration) {
        let sample = (latency.as_micros() as u64).max(1);
        let _ = self
            .latency_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |prev| {
                let prev = (prev > 0).then_some(prev);
                Some(portcullis_route::ewma(prev, sample, LATENCY_ALPHA_PERCENT))
            });
        let mut breaker = lock(&self.breaker);
        let before = breaker.state();
        breaker.on_success(now);
        self.publish(before, breaker.state());
    }

    /// Records a failed call; a throttled target is held for `hold` when given.
    pub fn failure(&self, now: Instant, class: FailureClass, hold: Option<Duration>) {
        let mut breaker = lock(&self.breaker);
        let before = breaker.state();
        if let Some(d) = hold {
            breaker.hold(now + d);
        }
        if class.is_target_failure() {
            breaker.on_failure(now);
        } else if class == FailureClass::Rejected {
            // The target answered sensibly: it is healthy.
            breaker.on_success(now);
        }
        self.publish(before, breaker.state());
    }

    /// Closes the breaker (operator reset).
    pub fn reset(&self) {
        let mut breaker = lock(&self.breaker);
        let before = breaker.state();
        breaker.reset(Instant::now());
        self.publish(before, breaker.state());
    }

    /// The breaker as an operator sees it.
    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        lock(&self.breaker).snapshot(now)
    }

    fn publish(&self, before: BreakerState, after: BreakerState) {
        if before == after {
            return;
        }
        self.metrics
            .set_breaker_state(&self.label, metric_state(after));
        match after {
            BreakerState::Open => {
                tracing::warn!(target = %self.label, "circuit breaker opened: target ejected")
            }
            BreakerState::HalfOpen => {
                tracing::info!(target = %self.label, "circuit breaker half-open: probing")
            }
            BreakerState::Closed => {
                tracing::info!(target = %self.label, "circuit breaker closed: target readmitted")
            }
        }
    }
}

fn metric_state(s: BreakerState) -> metrics::BreakerState {
    match s {
        BreakerState::Closed => metrics::BreakerState::Closed,
        BreakerState::HalfOpen => metrics::BreakerState::HalfOpen,
        BreakerState::Open => metrics::BreakerState::Open,
    }
}

/// A call in flight to a target; dropping it ends the call.
#[derive(Debug)]
pub struct InFlight(Arc<TargetHealth>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let n = self.0.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        self.0.metrics.set_in_flight(&self.0.label, u64::from(n));
    }
}

/// The whole routing table.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Public model name -> group.
    pub routes: HashMap<String, Arc<Route>>,
    /// Conditional routing rules, in order.
    pub rules: Vec<Rule>,
    /// Every target, indexed by [`TargetHealth::id`].
    pub targets: Vec<Arc<TargetHealth>>,
}

impl RouteTable {
    /// Builds the table from the configuration: one client per provider (plus one per
    /// distinct model connect timeout), one health record per provider/upstream model.
    pub fn build(
        config: &Config,
        providers: &Providers,
        metrics: &Arc<Metrics>,
    ) -> Result<RouteTable, StateError> {
        let server = &config.server.timeouts;
        let now = Instant::now();
        let mut table = RouteTable::default();
        let mut by_key: HashMap<(String, String), Arc<TargetHealth>> = HashMap::new();
        let mut clients: HashMap<(String, Duration), Arc<Provider>> = HashMap::new();
        for m in &config.models {
            let t = m.timeouts.clone().unwrap_or_default();
            let connect = t.connect.map_or(server.connect.0, |s| s.0);
            let breaker = breaker_config(m.breaker.as_ref());
            let mut members = Vec::new();
            for target in m.effective_targets() {
                let Some(default_client) = providers.get(&target.provider) else {
                    continue;
                };
                let provider = if connect == server.connect.0 {
                    default_client.clone()
                } else {
                    client_with_connect(config, &target.provider, connect, server, &mut clients)?
                        .unwrap_or_else(|| default_client.clone())
                };
                let upstream = target.upstream_model.clone().unwrap_or(m.name.clone());
                let key = (target.provider.clone(), upstream.clone());
                let health = by_key
                    .entry(key)
                    .or_insert_with(|| {
                        let health = Arc::new(TargetHealth {
                            id: table.targets.len(),
                            label: format!("{}/{}", target.provider, upstream),
                            provider: target.provider.clone(),
                            upstream_model: upstream.clone(),
                            breaker: Mutex::new(Breaker::new(breaker, now)),
                            in_flight: AtomicU32::new(0),
                            latency_us: AtomicU64::new(0),
                            metrics: metrics.clone(),
                        });
                        table.targets.push(health.clone());
                        health
                    })
                    .clone();
                members.push(Member {
                    target: health,
                    provider,
                    upstream_model: upstream,
                    weight: target.weight,
                    priority: target.priority,
                });
            }
            if members.is_empty() {
                continue;
            }
            let request = server.request.0;
            let total = t.total.map_or(request, |s| s.0);
            let group_size = members.len() as u32;
            table.routes.insert(
                m.name.clone(),
                Arc::new(Route {
                    model: m.name.clone(),
                    price: m.price,
                    strategy: match m.strategy.unwrap_or_default() {
                        StrategyConfig::Weighted => Strategy::Weighted,
                        StrategyConfig::LeastInFlight => Strategy::LeastInFlight,
                        StrategyConfig::Latency => Strategy::Latency,
                        StrategyConfig::Priority => Strategy::Priority,
                    },
                    members,
                    fallbacks: m.fallbacks.clone(),
                    retry: retry_policy(m.retry.as_ref(), group_size),
                    budget: Mutex::new(RetryBudget::new(budget_config(m.retry.as_ref()), now)),
                    timeouts: RouteTimeouts {
                        first_byte: t.first_byte.map_or(request, |s| s.0),
                        total,
                        idle: t.idle.map_or(server.stream_idle.0, |s| s.0),
                    },
                }),
            );
        }
        for target in &table.targets {
            metrics.set_breaker_state(&target.label, metrics::BreakerState::Closed);
            metrics.set_in_flight(&target.label, 0);
        }
        table.rules = config
            .routing
            .iter()
            .map(|r| Rule {
                from: r.model.clone(),
                to: r.route_to.clone(),
                headers: r
                    .when
                    .header
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
                team: r.when.team.clone(),
                metadata: r
                    .when
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect();
        Ok(table)
    }
}

/// A client of `provider` with its own connect timeout (shared per provider and timeout).
fn client_with_connect(
    config: &Config,
    provider: &str,
    connect: Duration,
    server: &Timeouts,
    clients: &mut HashMap<(String, Duration), Arc<Provider>>,
) -> Result<Option<Arc<Provider>>, StateError> {
    let Some(pc) = config.provider(provider) else {
        return Ok(None);
    };
    let key = (provider.to_string(), connect);
    if let Some(p) = clients.get(&key) {
        return Ok(Some(p.clone()));
    }
    let timeouts = Timeouts {
        connect: portcullis_config::Seconds(connect),
        ..server.clone()
    };
    let client = Arc::new(Provider::new(pc, &timeouts)?);
    clients.insert(key, client.clone());
    Ok(Some(client))
}

/// The retry policy of a model: without a `retry` section each target of the group is
/// tried once (failover, no retry of the same target); with one, `attempts` defaults to 3.
fn retry_policy(config: Option<&portcullis_config::RetryConfig>, group_size: u32) -> RetryPolicy {
    let defaults = RetryPolicy::default();
    let Some(r) = config else {
        return RetryPolicy {
            attempts: group_size.max(1),
            ..defaults
        };
    };
    RetryPolicy {
        attempts: r.attempts.unwrap_or(3),
        base: r.backoff.base.0,
        max: r.backoff.max.0,
        on: match &r.on {
            None => ClassSet::DEFAULT,
            Some(names) => names
                .iter()
                .filter_map(|n| FailureClass::from_label(&n.0))
                .collect(),
        },
        max_retry_after: r.max_retry_after.map_or(defaults.max_retry_after, |s| s.0),
    }
}

fn budget_config(config: Option<&portcullis_config::RetryConfig>) -> BudgetConfig {
    match config.and_then(|r| r.budget.as_ref()) {
        None => BudgetConfig::default(),
        Some(b) => BudgetConfig {
            ratio: b.ratio,
            min_per_second: b.min_per_second,
            window: b.window.0,
        },
    }
}

fn breaker_config(config: Option<&portcullis_config::BreakerSettings>) -> BreakerConfig {
    let b = config.cloned().unwrap_or_default();
    BreakerConfig {
        failures: b.failures,
        failure_rate: b.failure_rate,
        min_calls: b.min_calls,
        window: b.window.0,
        cooldown: b.cooldown.0,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
