//! Generic REST routes against a real HTTP service on its own port (a small axum server
//! that records what it receives): pass-through, credentials kept back, policy, timeouts,
//! retries, streaming both ways, usage records.

mod common;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::{add_identity_key, expect_error, Harness};
use portcullis_config::{RouteConfig, Seconds};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the service received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Service {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Service {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

/// `/api/slow`: answers after 2 s; `/api/flaky`: 503 on odd calls, 200 on even ones;
/// `/api/drip`: streams "first" then, 600 ms later, "second"; anything else: 201 echoing
/// the body with an `x-upstream` header.
async fn serve(State(svc): State<Service>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path().to_string();
    svc.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(String::from),
        headers: parts.headers.clone(),
        body: body.to_vec(),
    });
    match path.as_str() {
        "/api/slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            "late".into_response()
        }
        "/api/flaky" if svc.count("/api/flaky") % 2 == 1 => {
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
        "/api/drip" => {
            let chunks = futures_util::stream::unfold(0, |i| async move {
                match i {
                    0 => Some((Ok::<_, std::io::Error>(bytes::Bytes::from("first;")), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(600)).await;
                        Some((Ok(bytes::Bytes::from("second")), 2))
                    }
                    _ => None,
                }
            });
            Body::from_stream(chunks).into_response()
        }
        _ => (StatusCode::CREATED, [("x-upstream", "yes")], body).into_response(),
    }
}

async fn start_service() -> (Service, SocketAddr) {
    let svc = Service::default();
    let app = axum::Router::new().fallback(serve).with_state(svc.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (svc, addr)
}

/// A GET written by hand (no client-side path normalization); returns the whole answer.
async fn raw_get(addr: SocketAddr, path: &str, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\nconnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn route(name: &str, prefix: &str, upstream: String) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        path_prefix: prefix.into(),
        methods: vec!["GET".into(), "POST".into(), "PUT".into()],
        upstream,
        strip_prefix: true,
        headers: BTreeMap::new(),
        timeout: Some(Seconds(Duration::from_millis(400))),
        retries: 2,
    }
}

async fn gateway() -> (Harness, Service) {
    let (svc, addr) = start_service().await;
    let h = Harness::start_with(|c| {
        let mut status = route("status", "/rest/status", format!("http://{addr}/api"));
        status.headers.insert(
            "x-service-token".into(),
            portcullis_config::Secret::new("svc-token"),
        );
        c.routes.push(status);
        c.routes.push(route(
            "billing",
            "/rest/billing",
            format!("http://{addr}/api"),
        ));
        c.server.max_body_size = portcullis_config::ByteSize(64 * 1024);
    })
    .await;
    (h, svc)
}

#[tokio::test]
async fn method_path_query_body_and_headers_pass_through_but_never_the_key() {
    let (h, svc) = gateway().await;
    let r = h
        .client
        .put(h.url("/rest/status/items/42?x=1&y=two%20words"))
        .bearer_auth(&h.key)
        .header("x-custom", "kept")
        .header("x-service-token", "client-forged")
        .header("content-type", "text/plain")
        .body("payload bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-upstream"], "yes");
    assert!(r.headers().contains_key("x-request-id"));
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(r.text().await.unwrap(), "payload bytes");

    let seen = svc.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.method, "PUT");
    assert_eq!(s.path, "/api/items/42");
    assert_eq!(s.query.as_deref(), Some("x=1&y=two%20words"));
    assert_eq!(s.body, b"payload bytes");
    assert_eq!(s.headers["x-custom"], "kept");
    assert_eq!(s.headers["content-type"], "text/plain");
    assert_eq!(
        s.headers["x-service-token"], "svc-token",
        "route headers win"
    );
    assert_eq!(s.headers["x-request-id"], request_id.as_str());
    assert_eq!(s.headers["x-forwarded-for"], "127.0.0.1");
    assert!(!s.headers.contains_key("authorization"));
    assert!(!s.headers.contains_key("x-api-key"));

    // The same with x-api-key authentication and GET.
    let r = h
        .client
        .get(h.url("/rest/status?probe=1"))
        .header("x-api-key", &h.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let s = svc.seen().pop().unwrap();
    assert_eq!((s.method.as_str(), s.path.as_str()), ("GET", "/api"));
    for s in svc.seen() {
        for (_, value) in &s.headers {
            assert!(
                !value.to_str().unwrap_or("").contains(&h.key),
                "the gateway key reached the upstream: {:?}",
                s.headers
            );
        }
    }
}

#[tokio::test]
async fn errors_are_json_with_the_right_status() {
    let (h, svc) = gateway().await;
    let r = h.client.get(h.url("/rest/status/x")).send().await.unwrap();
    expect_error(r, 401, "invalid_api_key").await;
    let r = h
        .client
        .get(h.url("/rest/unknown/x"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    let r = h
        .client
        .delete(h.url("/rest/status/x"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    expect_error(r, 405, "method_not_allowed").await;
    // HTTP clients resolve dot segments themselves; a raw request keeps them.
    for path in [
        "/rest/status/%2e%2e/secret",
        "/rest/status/../x",
        "/rest/status/a%2Fb",
    ] {
        let head = raw_get(h.gateway.data_addr, path, &h.key).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{path}: {head}");
        assert!(head.contains("invalid_request"), "{head}");
    }
    let r = h
        .client
        .post(h.url("/rest/status/upload"))
        .bearer_auth(&h.key)
        .body(vec![b'x'; 65 * 1024])
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "request_too_large").await;
    assert!(svc.seen().is_empty(), "nothing refused reached the service");
}

#[tokio::test]
async fn a_team_without_the_route_gets_403() {
    let (h, svc) = gateway().await;
    h.apply_policy(
        r#"
version: 1
teams:
  ops:
    routes: ["/rest/status/*"]
  sales:
    routes: ["/rest/billing/*"]
"#,
        false,
    )
    .await;
    let (_, ops) = add_identity_key(&h.store, Some("ops"), "developer", None).await;
    let (_, sales) = add_identity_key(&h.store, Some("sales"), "developer", None).await;
    let (_, viewer) = add_identity_key(&h.store, Some("ops"), "viewer", None).await;
    h.gateway.state.refresh_keys().await.unwrap();
    let get = |key: &str, path: &str| {
        h.client
            .get(h.url(path))
            .bearer_auth(key.to_string())
            .send()
    };
    assert_eq!(
        get(&ops, "/rest/status/health").await.unwrap().status(),
        201
    );
    let body = expect_error(
        get(&sales, "/rest/status/health").await.unwrap(),
        403,
        "policy_denied",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("teams.sales.routes"),
        "{body}"
    );
    assert_eq!(
        get(&sales, "/rest/billing/inv").await.unwrap().status(),
        201
    );
    // The viewer role has no routes:invoke.
    expect_error(
        get(&viewer, "/rest/status/health").await.unwrap(),
        403,
        "policy_denied",
    )
    .await;
    assert_eq!(svc.count("/api/health"), 1);
}

#[tokio::test]
async fn a_key_limited_to_models_cannot_call_routes_without_a_policy() {
    let (h, svc) = gateway().await;
    let (_, scoped) = common::add_key(&h.store, vec!["gpt-*".into()], None).await;
    h.gateway.state.refresh_keys().await.unwrap();
    let r = h
        .client
        .get(h.url("/rest/status/x"))
        .bearer_auth(&scoped)
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "permission_denied").await;
    assert!(svc.seen().is_empty());
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_after_the_route_timeout() {
    let (h, svc) = gateway().await;
    let started = Instant::now();
    let r = h
        .client
        .post(h.url("/rest/status/slow"))
        .bearer_auth(&h.key)
        .body("x")
        .send()
        .await
        .unwrap();
    expect_error(r, 504, "upstream_timeout").await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(svc.count("/api/slow"), 1, "POST is not retried");
}

#[tokio::test]
async fn get_is_retried_but_post_is_not() {
    let (h, svc) = gateway().await;
    let r = h
        .client
        .get(h.url("/rest/status/flaky"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "the retry succeeded");
    assert_eq!(svc.count("/api/flaky"), 2);
    let r = h
        .client
        .post(h.url("/rest/status/flaky"))
        .bearer_auth(&h.key)
        .body("once")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "the service's own answer is passed on");
    assert_eq!(r.text().await.unwrap(), "try again");
    assert_eq!(svc.count("/api/flaky"), 3, "POST went out once");
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let (h, svc) = gateway().await;
    // A chunked upload of unknown length arrives whole.
    let parts: Vec<Result<&'static str, std::io::Error>> =
        vec![Ok("part one, "), Ok("part two, "), Ok("part three")];
    let r = h
        .client
        .post(h.url("/rest/status/upload"))
        .bearer_auth(&h.key)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            parts,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(svc.seen()[0].body, b"part one, part two, part three");

    // The answer's first chunk reaches the client before the service has finished.
    let started = Instant::now();
    let mut r = h
        .client
        .get(h.url("/rest/status/drip"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"first;");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the first chunk was held back: {:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"second");
}

#[tokio::test]
async fn usage_is_recorded_per_route() {
    let (h, _svc) = gateway().await;
    for _ in 0..2 {
        let r = h
            .client
            .get(h.url("/rest/status/a"))
            .bearer_auth(&h.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.bytes().await.unwrap();
    }
    let q = portcullis_store::UsageQuery {
        team: None,
        key_id: None,
        since: 0,
        until: i64::MAX,
    };
    for _ in 0..100 {
        let rows = h.store.usage_summary(&q).await.unwrap();
        if let Some(row) = rows.iter().find(|r| r.model == "route:status") {
            if row.requests == 2 {
                assert_eq!(row.cost_micros, 0);
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("usage of the route was not recorded");
}
