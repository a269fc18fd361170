//! The REST route table and the pure parts of proxying: which route serves a path, which
//! paths are refused, the upstream URL, and which headers cross the gateway.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use portcullis_config::{Config, RouteConfig, RETRYABLE_METHODS};
use std::sync::Arc;
use std::time::Duration;

/// One configured route, ready to serve.
#[derive(Debug)]
pub struct RestRoute {
    /// Name for logs and usage records.
    pub name: String,
    /// Path prefix without a trailing slash.
    pub prefix: String,
    methods: Vec<Method>,
    upstream: String,
    strip_prefix: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Time allowed until response headers, per attempt.
    pub timeout: Duration,
    /// Longest silence between two body chunks of the answer.
    pub idle: Duration,
    /// Extra attempts for retryable requests.
    pub retries: u32,
}

/// Every route, longest prefix first.
#[derive(Debug, Default)]
pub struct RestRoutes {
    routes: Vec<Arc<RestRoute>>,
}

impl RestRoutes {
    /// Builds the table from a validated configuration.
    pub fn from_config(config: &Config) -> RestRoutes {
        let timeouts = &config.server.timeouts;
        let mut routes: Vec<Arc<RestRoute>> = config
            .routes
            .iter()
            .map(|r| {
                Arc::new(RestRoute::new(
                    r,
                    timeouts.request.0,
                    timeouts.stream_idle.0,
                ))
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        RestRoutes { routes }
    }

    /// The route serving `path`: the longest prefix equal to it or followed by `/`.
    pub fn find(&self, path: &str) -> Option<&Arc<RestRoute>> {
        self.routes.iter().find(|r| {
            path.strip_prefix(r.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// Whether no route is configured.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

impl RestRoute {
    fn new(config: &RouteConfig, default_timeout: Duration, idle: Duration) -> RestRoute {
        let methods = if config.methods.is_empty() {
            portcullis_config::ROUTE_METHODS.to_vec()
        } else {
            config.methods.iter().map(String::as_str).collect()
        };
        RestRoute {
            name: config.name.clone(),
            prefix: config.path_prefix.clone(),
            methods: methods
                .into_iter()
                .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                .collect(),
            upstream: config.upstream.trim_end_matches('/').to_string(),
            strip_prefix: config.strip_prefix,
            // Validated as header names and values without control characters.
            headers: config
                .headers
                .iter()
                .filter_map(|(n, v)| {
                    Some((
                        HeaderName::from_bytes(n.as_bytes()).ok()?,
                        HeaderValue::from_str(v.expose()).ok()?,
                    ))
                })
                .collect(),
            timeout: config.timeout.map_or(default_timeout, |t| t.0),
            idle,
            retries: config.retries,
        }
    }

    /// Whether the route accepts `method`.
    pub fn allows(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }

    /// Whether a request may be retried: a retryable method, retries configured, no body.
    pub fn may_retry(&self, method: &Method, has_body: bool) -> bool {
        self.retries > 0 && !has_body && RETRYABLE_METHODS.contains(&method.as_str())
    }

    /// The upstream URL of a request path (which this route serves) and query.
    pub fn upstream_url(&self, path: &str, query: Option<&str>) -> String {
        let rest = if self.strip_prefix {
            &path[self.prefix.len()..]
        } else {
            path
        };
        let mut url = format!("{}{rest}", self.upstream);
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        url
    }

    /// The headers sent upstream: the client's minus hop-by-hop headers, the gateway
    /// credentials (`Authorization`, `x-api-key`), `Host` and gateway controls
    /// (`x-portcullis-*`); plus `x-forwarded-for`, the gateway's `x-request-id` and the
    /// route's own headers (which win).
    pub fn upstream_headers(
        &self,
        client: &HeaderMap,
        peer: std::net::IpAddr,
        request_id: &str,
    ) -> HeaderMap {
        let mut out = HeaderMap::with_capacity(client.len() + self.headers.len() + 2);
        let named_in_connection = connection_tokens(client);
        for (name, value) in client {
            let n = name.as_str();
            if is_hop_by_hop(n)
                || named_in_connection.iter().any(|t| t == n)
                || matches!(
                    n,
                    "host" | "authorization" | "x-api-key" | "expect" | "x-request-id"
                )
                || n.starts_with("x-portcullis-")
            {
                continue;
            }
            out.append(name.clone(), value.clone());
        }
        let forwarded = match client.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {peer}"),
            None => peer.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded) {
            out.insert("x-forwarded-for", v);
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            out.insert("x-request-id", v);
        }
        for (name, value) in &self.headers {
            out.insert(name.clone(), value.clone());
        }
        out
    }
}

/// The upstream's response headers minus hop-by-hop ones.
pub fn response_headers(upstream: &HeaderMap) -> HeaderMap {
    let named = connection_tokens(upstream);
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let n = name.as_str();
        if !is_hop_by_hop(n) && !named.iter().any(|t| t == n) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Refuses paths that could leave the route's upstream base once the upstream resolves
/// them: `.`/`..` segments and encoded slashes or backslashes (also percent-encoded).
pub fn check_path(path: &str) -> Result<(), &'static str> {
    for segment in path.split('/') {
        let lower = segment.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") || segment.contains('\\') {
            return Err("encoded slashes are not allowed in route paths");
        }
        let decoded = lower.replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err("'.' and '..' segments are not allowed in route paths");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_config::{RouteConfig, Secret};
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    fn route(prefix: &str, strip: bool) -> RestRoute {
        let mut headers = BTreeMap::new();
        headers.insert("x-service-token".to_string(), Secret::new("svc"));
        RestRoute::new(
            &RouteConfig {
                name: "r".into(),
                path_prefix: prefix.into(),
                methods: vec!["GET".into(), "POST".into()],
                upstream: "http://up:9/api/".into(),
                strip_prefix: strip,
                headers,
                timeout: None,
                retries: 2,
            },
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
    }

    #[test]
    fn longest_prefix_on_segment_boundary_wins() {
        let table = RestRoutes {
            routes: vec![
                Arc::new(route("/rest/status/deep", true)),
                Arc::new(route("/rest/status", true)),
            ],
        };
        assert_eq!(table.find("/rest/status").unwrap().prefix, "/rest/status");
        assert_eq!(table.find("/rest/status/x").unwrap().prefix, "/rest/status");
        assert_eq!(
            table.find("/rest/status/deep/1").unwrap().prefix,
            "/rest/status/deep"
        );
        assert!(table.find("/rest/statusx").is_none());
        assert!(table.find("/rest").is_none());
    }

    #[test]
    fn upstream_url_strips_or_keeps_the_prefix() {
        let r = route("/rest/status", true);
        assert_eq!(
            r.upstream_url("/rest/status/a/b", Some("x=1&y=2")),
            "http://up:9/api/a/b?x=1&y=2"
        );
        assert_eq!(r.upstream_url("/rest/status", None), "http://up:9/api");
        let keep = route("/rest/status", false);
        assert_eq!(
            keep.upstream_url("/rest/status/a", None),
            "http://up:9/api/rest/status/a"
        );
    }

    #[test]
    fn credentials_and_hop_by_hop_headers_stay_behind() {
        let r = route("/rest/status", true);
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("authorization", "Bearer pcl_secret"),
            ("x-api-key", "pcl_secret"),
            ("host", "gateway"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-portcullis-cache", "use"),
            ("x-request-id", "client-chosen"),
            ("x-custom", "kept"),
            ("x-service-token", "client-value"),
            ("x-forwarded-for", "10.0.0.1"),
        ] {
            h.append(n, HeaderValue::from_static(v));
        }
        let out = r.upstream_headers(&h, IpAddr::from([127, 0, 0, 1]), "req_1");
        for gone in [
            "authorization",
            "x-api-key",
            "host",
            "connection",
            "x-hop",
            "keep-alive",
            "transfer-encoding",
            "x-portcullis-cache",
        ] {
            assert!(!out.contains_key(gone), "{gone} forwarded");
        }
        assert_eq!(out["x-custom"], "kept");
        assert_eq!(out["x-service-token"], "svc");
        assert_eq!(out["x-request-id"], "req_1");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    }

    #[test]
    fn retries_only_for_safe_methods_without_body() {
        let r = route("/rest/status", true);
        assert!(r.may_retry(&Method::GET, false));
        assert!(!r.may_retry(&Method::GET, true));
        assert!(!r.may_retry(&Method::POST, false));
        assert!(r.allows(&Method::POST));
        assert!(!r.allows(&Method::DELETE));
    }

    #[test]
    fn traversal_paths_are_refused() {
        assert!(check_path("/rest/status/a/b.json").is_ok());
        assert!(check_path("/rest/status/../admin").is_err());
        assert!(check_path("/rest/status/%2E%2e/admin").is_err());
        assert!(check_path("/rest/status/a%2Fb").is_err());
        assert!(check_path("/rest/status/.").is_err());
        assert!(check_path("/rest/status/a\\b").is_err());
    }
}
