//! The response cache on the chat path, against the mock upstream: hits never reach the
//! upstream (its request recorder proves it), streams are replayed as parseable SSE in the
//! client's format, teams never share entries, failures and cut streams are never stored,
//! hits cost nothing.

mod common;

use common::{add_identity_key, Harness};
use portcullis_config::CacheConfig;
use serde_json::{json, Value};
use std::time::Duration;

const POLICY: &str = r#"
version: 1
default_team: eng
teams:
  eng:
    models: ["*"]
    cache: { ttl: 10m }
  ops:
    models: ["*"]
    cache: {}
  plain:
    models: ["*"]
"#;

async fn harness(policy: Option<&str>) -> Harness {
    let h = Harness::start_with(|c| {
        c.cache = Some(CacheConfig::default());
        let m = c.models.iter_mut().find(|m| m.name == "gpt-test").unwrap();
        m.price = Some(portcullis_config::Price {
            input_per_mtok: 100.0,
            output_per_mtok: 100.0,
            cached_input_per_mtok: None,
        });
    })
    .await;
    if let Some(yaml) = policy {
        h.apply_policy(yaml, false).await;
    }
    h
}

async fn send(
    h: &Harness,
    key: &str,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut rb = h
        .client
        .post(h.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01");
    for (n, v) in headers {
        rb = rb.header(*n, *v);
    }
    rb.body(body.to_string()).send().await.unwrap()
}

fn cache_header(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("x-portcullis-cache")
        .map(|v| v.to_str().unwrap().to_string())
}

/// Waits until the background store of an entry has happened (a hit proves it).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn chat(content: &str, stream: bool) -> Value {
    json!({"model": "gpt-test", "stream": stream, "messages": [{"role": "user", "content": content}]})
}

#[tokio::test]
async fn a_second_identical_request_never_reaches_the_upstream() {
    let h = harness(Some(POLICY)).await;
    let first = send(
        &h,
        &h.key,
        "/v1/chat/completions",
        &chat("cache me", false),
        &[],
    )
    .await;
    assert_eq!(first.status(), 200);
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    let first: Value = first.json().await.unwrap();
    settle().await;
    // Same request with other key order, whitespace and a different `user`.
    let again = json!({"messages": [{"content": "cache me", "role": "user"}], "user": "bob", "model": "gpt-test"});
    let second = send(&h, &h.key, "/v1/chat/completions", &again, &[]).await;
    assert_eq!(second.status(), 200);
    assert_eq!(cache_header(&second).as_deref(), Some("hit"));
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        h.mock.request_count(),
        1,
        "the hit did not touch the upstream"
    );

    // A different prompt is a miss.
    let other = send(
        &h,
        &h.key,
        "/v1/chat/completions",
        &chat("other", false),
        &[],
    )
    .await;
    assert_eq!(cache_header(&other).as_deref(), Some("miss"));
    assert_eq!(h.mock.request_count(), 2);

    let metrics = h.gateway.state.render_metrics();
    assert!(
        metrics.contains("portcullis_cache_hits_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_cache_misses_total 2"),
        "{metrics}"
    );
}

/// The `data:` payloads of an SSE body.
fn data_lines(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

fn openai_stream_text(body: &str) -> String {
    let data = data_lines(body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).expect("each event is JSON"))
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

#[tokio::test]
async fn streamed_answers_are_replayed_as_sse_in_the_client_format() {
    let h = harness(Some(POLICY)).await;
    let body = chat("stream me please", true);
    let first = send(&h, &h.key, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    let first = first.text().await.unwrap();
    settle().await;
    let second = send(&h, &h.key, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(cache_header(&second).as_deref(), Some("hit"));
    assert!(second.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let second = second.text().await.unwrap();
    let text = openai_stream_text(&second);
    assert!(!text.is_empty());
    assert_eq!(text, openai_stream_text(&first));
    assert_eq!(h.mock.request_count(), 1);

    // The non-streamed form of the same prompt is its own entry.
    let plain = send(
        &h,
        &h.key,
        "/v1/chat/completions",
        &chat("stream me please", false),
        &[],
    )
    .await;
    assert_eq!(cache_header(&plain).as_deref(), Some("miss"));

    // Anthropic clients get Anthropic events back from the cache.
    let messages = json!({"model": "gpt-test", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "anthropic stream"}]});
    let a1 = send(&h, &h.key, "/v1/messages", &messages, &[]).await;
    assert_eq!(a1.status(), 200);
    a1.text().await.unwrap();
    settle().await;
    let a2 = send(&h, &h.key, "/v1/messages", &messages, &[]).await;
    assert_eq!(cache_header(&a2).as_deref(), Some("hit"));
    let a2 = a2.text().await.unwrap();
    let events: Vec<&str> = a2
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"), "{a2}");
    assert_eq!(events.last(), Some(&"message_stop"), "{a2}");
    for d in data_lines(&a2) {
        serde_json::from_str::<Value>(&d).expect("each Anthropic event is JSON");
    }
    assert_eq!(h.mock.request_count(), 3);
}

#[tokio::test]
async fn teams_never_share_entries_and_teams_without_cache_do_not_cache() {
    let h = harness(Some(POLICY)).await;
    let (_, eng) = add_identity_key(&h.store, Some("eng"), "developer", None).await;
    let (_, ops) = add_identity_key(&h.store, Some("ops"), "developer", None).await;
    let (_, plain) = add_identity_key(&h.store, Some("plain"), "developer", None).await;
    h.gateway.state.refresh_keys().await.unwrap();
    let body = chat("shared question", false);
    let r = send(&h, &eng, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(cache_header(&r).as_deref(), Some("miss"));
    settle().await;
    let r = send(&h, &ops, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(
        cache_header(&r).as_deref(),
        Some("miss"),
        "ops cannot read eng's entry"
    );
    assert_eq!(h.mock.request_count(), 2);
    // The harness key has no team: it counts as the default team, eng.
    let r = send(&h, &h.key, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(cache_header(&r).as_deref(), Some("hit"));
    // A team without `cache` is not cached unless the request asks.
    for _ in 0..2 {
        let r = send(&h, &plain, "/v1/chat/completions", &body, &[]).await;
        assert_eq!(cache_header(&r), None);
    }
    assert_eq!(h.mock.request_count(), 4);
    let r = send(
        &h,
        &plain,
        "/v1/chat/completions",
        &body,
        &[("x-portcullis-cache", "use")],
    )
    .await;
    assert_eq!(cache_header(&r).as_deref(), Some("miss"));
    settle().await;
    let r = send(
        &h,
        &plain,
        "/v1/chat/completions",
        &body,
        &[("x-portcullis-cache", "use")],
    )
    .await;
    assert_eq!(cache_header(&r).as_deref(), Some("hit"));
    assert_eq!(h.mock.request_count(), 5);
}

#[tokio::test]
async fn request_headers_opt_in_refresh_and_opt_out() {
    let h = harness(None).await;
    let body = chat("headers", false);
    // No policy: only on request.
    let r = send(&h, &h.key, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(cache_header(&r), None);
    let r = send(
        &h,
        &h.key,
        "/v1/chat/completions",
        &body,
        &[("x-portcullis-cache", "use")],
    )
    .await;
    assert_eq!(cache_header(&r).as_deref(), Some("miss"));
    settle().await;
    let r = send(
        &h,
        &h.key,
        "/v1/chat/completions",
        &body,
        &[("x-portcullis-cache", "use")],
    )
    .await;
    assert_eq!(cache_header(&r).as_deref(), Some("hit"));
    assert_eq!(h.mock.request_count(), 2);
    let r = send(
        &h,
        &h.key,
        "/v1/chat/completions",
        &body,
        &[("x-portcullis-cache", "use"), ("cache-control", "no-cache")],
    )
    .await;
    assert_eq!(cache_header(&r).as_deref(), Some("refresh"));
    let r = send(
        &h,
        &h.key,
        "/v1/chat/completions",
        &body,
        &[("x-portcullis-cache", "use"), ("cache-control", "no-store")],
    )
    .await;
    assert_eq!(cache_header(&r), None);
    assert_eq!(h.mock.request_count(), 4);
}

#[tokio::test]
async fn failures_and_cut_streams_are_never_stored() {
    let h = harness(Some(POLICY)).await;
    for model in ["fault-status-500", "fault-stream-drop-2"] {
        let stream = model.contains("stream");
        for _ in 0..2 {
            let body = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]});
            let r = send(&h, &h.key, "/v1/chat/completions", &body, &[]).await;
            assert_ne!(cache_header(&r).as_deref(), Some("hit"), "{model}");
            let _ = r.text().await;
            settle().await;
        }
    }
    assert_eq!(h.mock.request_count(), 4, "every call went upstream");
}

#[tokio::test]
async fn hits_cost_nothing() {
    let h = harness(Some(POLICY)).await;
    let body = chat("what does this cost", false);
    let mut usage = Value::Null;
    for _ in 0..3 {
        let r = send(&h, &h.key, "/v1/chat/completions", &body, &[]).await;
        assert_eq!(r.status(), 200);
        usage = r.json::<Value>().await.unwrap()["usage"].clone();
        settle().await;
    }
    let (prompt, completion) = (
        usage["prompt_tokens"].as_i64().unwrap(),
        usage["completion_tokens"].as_i64().unwrap(),
    );
    assert!(prompt > 0);
    assert_eq!(h.mock.request_count(), 1);
    let q = portcullis_store::UsageQuery {
        team: None,
        key_id: None,
        since: 0,
        until: i64::MAX,
    };
    for _ in 0..100 {
        let rows = h.store.usage_summary(&q).await.unwrap();
        let requests: i64 = rows.iter().map(|r| r.requests).sum();
        if requests == 3 {
            let row = rows.iter().find(|r| r.model == "gpt-test").unwrap();
            // Only the upstream call counts: its tokens once, at 100 micro-USD a token.
            assert_eq!(
                (row.prompt_tokens, row.completion_tokens),
                (prompt, completion),
                "{rows:?}"
            );
            assert_eq!(row.cost_micros, (prompt + completion) * 100, "{rows:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("usage of the three requests was not recorded");
}
