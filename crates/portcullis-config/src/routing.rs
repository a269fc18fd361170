//! Model groups and resilience settings: targets, strategy, fallbacks, retries, timeouts,
//! circuit breakers, and the top-level conditional `routing` rules.

use crate::units::Seconds;
use crate::validate::Positions;
use crate::{Config, ModelConfig};
use serde::{de, Deserialize, Deserializer};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// One target of a model group: a provider and the model it is asked for.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name of the provider serving this target.
    pub provider: String,
    /// What the provider is asked for; defaults to the group's public name.
    pub upstream_model: Option<String>,
    /// Relative share of traffic for the `weighted` strategy (and among equal priorities).
    #[serde(default = "one")]
    pub weight: u32,
    /// Lower is tried first with the `priority` strategy (default 0).
    #[serde(default)]
    pub priority: u32,
}

fn one() -> u32 {
    1
}

/// How a model group spreads requests over its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyConfig {
    /// Random in proportion to the weights (the default).
    #[default]
    Weighted,
    /// Fewest requests in flight.
    LeastInFlight,
    /// Lowest observed latency (EWMA, scaled by requests in flight).
    Latency,
    /// Lowest `priority` first; weighted among equals.
    Priority,
}

/// A failure class name in `retry.on`; YAML may write `429` as a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassName(pub String);

impl<'de> Deserialize<'de> for ClassName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer) {
            Ok(Raw::Number(n)) => Ok(ClassName(n.to_string())),
            Ok(Raw::Text(t)) => Ok(ClassName(t)),
            Err(_) => Err(de::Error::custom("expected a failure class name")),
        }
    }
}

/// Failure classes `retry.on` accepts.
pub const RETRY_CLASSES: &[&str] = &[
    "connect",
    "timeout",
    "429",
    "5xx",
    "overloaded",
    "bad_response",
    "misconfigured",
];

/// Retry settings of a model group.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Most attempts on the group's targets per request, the first included (default 3).
    pub attempts: Option<u32>,
    /// Backoff between attempts on the same target.
    #[serde(default)]
    pub backoff: BackoffConfig,
    /// Failure classes retried (default: connect, timeout, 429, 5xx, overloaded).
    pub on: Option<Vec<ClassName>>,
    /// Longest upstream `Retry-After` waited for (default 10s).
    pub max_retry_after: Option<Seconds>,
    /// Retry budget: extra attempts allowed per request over a sliding window.
    pub budget: Option<BudgetSettings>,
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    /// First backoff ceiling (default 100ms); doubles with each retry.
    pub base: Seconds,
    /// Largest backoff ceiling (default 2s).
    pub max: Seconds,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: Seconds(Duration::from_millis(100)),
            max: Seconds(Duration::from_secs(2)),
        }
    }
}

/// Retry budget settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetSettings {
    /// Retries per request allowed over the window (default 0.2).
    pub ratio: f64,
    /// Retries per second always allowed (default 1).
    pub min_per_second: u32,
    /// Sliding window (default 10s).
    pub window: Seconds,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            ratio: 0.2,
            min_per_second: 1,
            window: Seconds(Duration::from_secs(10)),
        }
    }
}

/// Per-model time limits; each defaults to the matching `server.timeouts` value.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelTimeouts {
    /// TCP + TLS connect (default `server.timeouts.connect`).
    pub connect: Option<Seconds>,
    /// Until the response headers arrive (default `server.timeouts.request`).
    pub first_byte: Option<Seconds>,
    /// The whole request, retries and streaming included (default `server.timeouts.request`).
    pub total: Option<Seconds>,
    /// Longest silence between two stream chunks (default `server.timeouts.stream_idle`).
    pub idle: Option<Seconds>,
}

/// Circuit breaker settings of a group's targets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// Consecutive failures that eject a target (default 5; 0 turns the breaker off).
    pub failures: u32,
    /// Failure rate (0..1] over `window` that ejects a target (default: not used).
    pub failure_rate: Option<f64>,
    /// Fewest calls in the window before the rate counts (default 20).
    pub min_calls: u32,
    /// Failure-rate window (default 30s).
    pub window: Seconds,
    /// How long an ejected target rests before a probe (default 30s).
    pub cooldown: Seconds,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failures: 5,
            failure_rate: None,
            min_calls: 20,
            window: Seconds(Duration::from_secs(30)),
            cooldown: Seconds(Duration::from_secs(30)),
        }
    }
}

/// A conditional routing rule (top-level `routing:` list).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    /// The requested public model name the rule applies to.
    pub model: String,
    /// Conditions; all must hold (an empty `when` always matches).
    #[serde(default)]
    pub when: RuleConditions,
    /// The public model name (group) that serves matching requests.
    pub route_to: String,
}

/// Conditions of a routing rule.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConditions {
    /// Request headers and their exact values.
    pub header: BTreeMap<String, String>,
    /// The calling key's team.
    pub team: Option<String>,
    /// String values in the request body's `metadata` object.
    pub metadata: BTreeMap<String, String>,
}

impl ModelConfig {
    /// A model served by one provider (today's shape).
    pub fn single(name: &str, provider: &str, upstream_model: Option<&str>) -> ModelConfig {
        ModelConfig {
            name: name.into(),
            provider: Some(provider.into()),
            upstream_model: upstream_model.map(Into::into),
            price: None,
            targets: Vec::new(),
            strategy: None,
            fallbacks: Vec::new(),
            retry: None,
            timeouts: None,
            breaker: None,
        }
    }

    /// The group's targets: `targets`, or the one given by `provider`/`upstream_model`;
    /// every `upstream_model` filled in.
    pub fn effective_targets(&self) -> Vec<TargetConfig> {
        if self.targets.is_empty() {
            return self
                .provider
                .iter()
                .map(|p| TargetConfig {
                    provider: p.clone(),
                    upstream_model: Some(self.upstream().to_string()),
                    weight: 1,
                    priority: 0,
                })
                .collect();
        }
        self.targets
            .iter()
            .map(|t| TargetConfig {
                upstream_model: Some(t.upstream_model.clone().unwrap_or(self.name.clone())),
                ..t.clone()
            })
            .collect()
    }
}

/// Checks the routing parts of every model and the `routing` rules.
pub(crate) fn validate_routing(
    config: &Config,
    positions: &Positions,
    push: &mut dyn FnMut(String, String),
) {
    let models: HashSet<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
    let declared =
        |name: &str| models.contains(name) || positions.model_names.iter().any(|n| n == name);
    for (m, i) in config.models.iter().zip(&positions.models) {
        let path = format!("models[{i}]");
        match (&m.provider, m.targets.is_empty()) {
            (None, true) => push(
                path.clone(),
                "missing field `provider` (or list the group's `targets`)".into(),
            ),
            (Some(_), false) => push(
                format!("{path}.targets"),
                "give either provider (one target) or targets (a group), not both".into(),
            ),
            _ => {}
        }
        if !m.targets.is_empty() && m.upstream_model.is_some() {
            push(
                format!("{path}.upstream_model"),
                "set upstream_model on each target of a group".into(),
            );
        }
        if let Some(p) = &m.provider {
            if !positions.provider_names.contains(p) {
                push(
                    format!("{path}.provider"),
                    format!("no provider named '{p}' is declared"),
                );
            }
        }
        for (j, t) in m.targets.iter().enumerate() {
            if !positions.provider_names.contains(&t.provider) {
                push(
                    format!("{path}.targets[{j}].provider"),
                    format!("no provider named '{}' is declared", t.provider),
                );
            }
        }
        if !m.targets.is_empty() && m.targets.iter().all(|t| t.weight == 0) {
            push(
                format!("{path}.targets"),
                "at least one target needs a weight above zero".into(),
            );
        }
        let mut seen = HashSet::new();
        for (j, f) in m.fallbacks.iter().enumerate() {
            let at = format!("{path}.fallbacks[{j}]");
            if f == &m.name {
                push(at, "a model cannot be its own fallback".into());
            } else if !declared(f) {
                push(at, format!("no model named '{f}' is declared"));
            } else if !seen.insert(f.as_str()) {
                push(at, format!("'{f}' is listed twice"));
            }
        }
        if let Some(r) = &m.retry {
            check_retry(&format!("{path}.retry"), r, push);
        }
        if let Some(t) = &m.timeouts {
            for (name, v) in [
                ("connect", t.connect),
                ("first_byte", t.first_byte),
                ("total", t.total),
                ("idle", t.idle),
            ] {
                if v.is_some_and(|v| v.0.is_zero()) {
                    push(
                        format!("{path}.timeouts.{name}"),
                        "must be greater than zero".into(),
                    );
                }
            }
        }
        if let Some(b) = &m.breaker {
            if b.failure_rate.is_some_and(|r| !(r > 0.0 && r <= 1.0)) {
                push(
                    format!("{path}.breaker.failure_rate"),
                    "must be above 0 and at most 1".into(),
                );
            }
            if b.cooldown.0.is_zero() {
                push(
                    format!("{path}.breaker.cooldown"),
                    "must be greater than zero".into(),
                );
            }
            if b.window.0.is_zero() {
                push(
                    format!("{path}.breaker.window"),
                    "must be greater than zero".into(),
                );
            }
        }
    }
    for (r, i) in config.routing.iter().zip(&positions.routing) {
        let path = format!("routing[{i}]");
        if !declared(&r.model) {
            push(
                format!("{path}.model"),
                format!("no model named '{}' is declared", r.model),
            );
        }
        if !declared(&r.route_to) {
            push(
                format!("{path}.route_to"),
                format!("no model named '{}' is declared", r.route_to),
            );
        } else if r.route_to == r.model {
            push(format!("{path}.route_to"), "must differ from model".into());
        }
        for name in r.when.header.keys() {
            if http_header_name(name).is_none() {
                push(
                    format!("{path}.when.header.{name}"),
                    "is not a valid HTTP header name".into(),
                );
            }
        }
    }
}

fn check_retry(path: &str, r: &RetryConfig, push: &mut dyn FnMut(String, String)) {
    if r.attempts == Some(0) {
        push(
            format!("{path}.attempts"),
            "must be at least 1 (1 = no retry)".into(),
        );
    }
    if r.attempts.is_some_and(|a| a > 10) {
        push(format!("{path}.attempts"), "must be at most 10".into());
    }
    if r.backoff.base.0.is_zero() {
        push(
            format!("{path}.backoff.base"),
            "must be greater than zero".into(),
        );
    }
    if r.backoff.max.0 < r.backoff.base.0 {
        push(
            format!("{path}.backoff.max"),
            "must not be shorter than backoff.base".into(),
        );
    }
    for (k, class) in r.on.iter().flatten().enumerate() {
        if !RETRY_CLASSES.contains(&class.0.as_str()) {
            push(
                format!("{path}.on[{k}]"),
                format!(
                    "unknown failure class '{}'; expected one of: {}",
                    class.0,
                    RETRY_CLASSES.join(", ")
                ),
            );
        }
    }
    if let Some(b) = &r.budget {
        if !(b.ratio.is_finite() && b.ratio >= 0.0) {
            push(
                format!("{path}.budget.ratio"),
                "must be a non-negative number".into(),
            );
        }
        if b.window.0.is_zero() {
            push(
                format!("{path}.budget.window"),
                "must be greater than zero".into(),
            );
        }
    }
}

/// The lowercase name when `name` is a valid header name.
fn http_header_name(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    valid.then(|| name.to_ascii_lowercase())
}
