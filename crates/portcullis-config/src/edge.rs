//! Configuration of the gateway's edge features: generic REST routes (plain HTTP services
//! behind the same authentication, policy and logging as the models) and the response cache.

use crate::types::Secret;
use crate::units::{ByteSize, Seconds};
use crate::Problem;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// HTTP methods a route may list.
pub const ROUTE_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Methods that are retried (when the route sets `retries` and the request has no body).
pub const RETRYABLE_METHODS: &[&str] = &["GET", "HEAD", "OPTIONS"];

/// A path prefix served by a plain HTTP upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name for logs and usage records.
    pub name: String,
    /// Requests whose path is this prefix or starts with it followed by `/` are served by
    /// the route (e.g. `/rest/status`).
    pub path_prefix: String,
    /// Accepted methods (upper case); empty = all of [`ROUTE_METHODS`].
    #[serde(default)]
    pub methods: Vec<String>,
    /// Base URL of the service, e.g. `http://127.0.0.1:9000/api`.
    pub upstream: String,
    /// Remove `path_prefix` before appending the path to `upstream` (default true).
    #[serde(default = "yes")]
    pub strip_prefix: bool,
    /// Headers added to every upstream request (values may use `${ENV_VAR}`); they replace
    /// client headers of the same name.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Time allowed until the upstream's response headers, per attempt (default:
    /// `server.timeouts.request`). The body then streams with `server.timeouts.stream_idle`
    /// as the longest allowed silence.
    pub timeout: Option<Seconds>,
    /// Extra attempts after a connect error, a timeout or a 502/503/504 answer; only for
    /// GET, HEAD and OPTIONS requests without a body (default 0).
    #[serde(default)]
    pub retries: u32,
}

fn yes() -> bool {
    true
}

impl RouteConfig {
    /// Whether the route accepts `method` (upper case).
    pub fn allows_method(&self, method: &str) -> bool {
        if self.methods.is_empty() {
            ROUTE_METHODS.contains(&method)
        } else {
            self.methods.iter().any(|m| m == method)
        }
    }
}

/// Where cached responses are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackendKind {
    /// In the gateway process, bounded by `max_bytes` (least recently used evicted first).
    #[default]
    Memory,
    /// In the Redis of the `redis` section, shared by every instance.
    Redis,
}

/// The response cache. Caching is opt-in per team (policy) or per request (header).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// `memory` (default) or `redis` (uses `redis.url`).
    pub backend: CacheBackendKind,
    /// Upper bound of the memory backend, in bytes of stored answers (default 64MiB).
    pub max_bytes: ByteSize,
    /// Time to live of an entry when neither the policy nor the request sets one (default 5m).
    pub default_ttl: Seconds,
    /// Largest single answer stored, in bytes (default 1MiB).
    pub max_entry_bytes: ByteSize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            backend: CacheBackendKind::Memory,
            max_bytes: ByteSize(64 << 20),
            default_ttl: Seconds(Duration::from_secs(300)),
            max_entry_bytes: ByteSize(1 << 20),
        }
    }
}

/// Validates the `routes` list (positions are document indexes) and the `cache` section.
pub(crate) fn validate_edge(
    routes: &[RouteConfig],
    positions: &[usize],
    cache: Option<&CacheConfig>,
    has_redis: bool,
    problems: &mut Vec<Problem>,
) {
    let mut push = |path: String, message: String| problems.push(Problem { path, message });
    let (mut names, mut prefixes) = (HashSet::new(), HashSet::new());
    for (r, i) in routes.iter().zip(positions) {
        let path = format!("routes[{i}]");
        if r.name.trim().is_empty() {
            push(format!("{path}.name"), "must not be empty".into());
        } else if !names.insert(r.name.as_str()) {
            push(
                format!("{path}.name"),
                format!("duplicate route name '{}'", r.name),
            );
        }
        if let Err(why) = check_prefix(&r.path_prefix) {
            push(format!("{path}.path_prefix"), why);
        } else if !prefixes.insert(r.path_prefix.as_str()) {
            push(
                format!("{path}.path_prefix"),
                format!("duplicate path prefix '{}'", r.path_prefix),
            );
        }
        for (j, m) in r.methods.iter().enumerate() {
            if !ROUTE_METHODS.contains(&m.as_str()) {
                push(
                    format!("{path}.methods[{j}]"),
                    format!("'{m}' is not one of {}", ROUTE_METHODS.join(", ")),
                );
            }
        }
        if let Err(why) = check_upstream(&r.upstream) {
            push(format!("{path}.upstream"), why);
        }
        crate::validate::check_headers(&path, &r.headers, &mut push);
        if r.timeout.is_some_and(|t| t.0.is_zero()) {
            push(
                format!("{path}.timeout"),
                "must be greater than zero".into(),
            );
        }
        if r.retries > 5 {
            push(format!("{path}.retries"), "at most 5".into());
        }
    }
    if let Some(cache) = cache {
        if cache.backend == CacheBackendKind::Redis && !has_redis {
            push(
                "cache.backend".into(),
                "redis needs the redis section (redis.url)".into(),
            );
        }
        if cache.max_bytes.0 == 0 {
            push("cache.max_bytes".into(), "must be greater than zero".into());
        }
        if cache.max_entry_bytes.0 == 0 {
            push(
                "cache.max_entry_bytes".into(),
                "must be greater than zero".into(),
            );
        }
        if cache.default_ttl.0.is_zero() {
            push(
                "cache.default_ttl".into(),
                "must be greater than zero".into(),
            );
        }
    }
}

/// Paths the gateway serves itself; a route may not shadow them.
const RESERVED: &[&str] = &["/v1", "/healthz", "/readyz", "/api", "/metrics"];

fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') || prefix.len() < 2 {
        return Err(format!("'{prefix}' must start with / and name a path"));
    }
    if prefix.ends_with('/') {
        return Err(format!("'{prefix}' must not end with /"));
    }
    if prefix.split('/').skip(1).any(|s| {
        s.is_empty()
            || s == "."
            || s == ".."
            || s.bytes()
                .any(|b| !(b.is_ascii_alphanumeric() || b"-_.~".contains(&b)))
    }) {
        return Err(format!(
            "'{prefix}' must be /segment/segment with letters, digits, '-', '_', '.', '~'"
        ));
    }
    if let Some(r) = RESERVED
        .iter()
        .find(|r| prefix == **r || prefix.starts_with(&format!("{r}/")))
    {
        return Err(format!("'{prefix}' is under {r}, which the gateway serves"));
    }
    Ok(())
}

fn check_upstream(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("'{url}' must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("'{url}' has no valid host"));
    }
    if url.contains(['?', '#']) {
        return Err(format!("'{url}' must not have a query or fragment"));
    }
    Ok(())
}
