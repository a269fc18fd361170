//! What reaches the upstream: the provider key from `${ENV}` (never the client's gateway
//! key), the upstream model name, unknown fields untouched; upstream faults mapped; the way
//! through the forward proxy that `HTTP_PROXY` / `NO_PROXY` name.

mod common;

use common::{compat_provider, sse_data, stream_text, Gateway, Spec};
use portcullis_testkit::{ForwardProxy, MockUpstream};
use serde_json::json;
use std::time::Duration;

const PROVIDER_KEY: &str = "sk-e2e-provider-0123456789abcdef";

fn spec(mock: &MockUpstream) -> Spec {
    let body = format!(
        "providers:\n{}models:\n  - name: team-gpt\n    provider: up\n    upstream_model: mock-gpt\n  - name: flaky\n    provider: up\n    upstream_model: fault-status-503\n  - name: dropper\n    provider: up\n    upstream_model: fault-stream-drop-2\n  - name: embedder\n    provider: up\n    upstream_model: mock-embed\n",
        compat_provider(
            "up",
            &mock.base_url(),
            "    api_key: ${E2E_PROVIDER_KEY}\n    headers:\n      x-team: ${E2E_TEAM}\n"
        )
    );
    Spec::new(body)
        .env("E2E_PROVIDER_KEY", PROVIDER_KEY)
        .env("E2E_TEAM", "blue")
}

#[tokio::test]
async fn gateway_key_never_reaches_the_upstream() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(spec(&mock)).await;
    let key = gw.live_key("client", &[]).await;

    // Bearer, non-streaming, with an unknown field that must pass through.
    let r = gw
        .chat(
            &key,
            json!({"model": "team-gpt", "messages": [{"role": "user", "content": "hello"}],
                   "x_custom": {"keep": [1, 2, 3]}, "temperature": 0.25}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // x-api-key, streaming.
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .header("x-api-key", &key)
        .json(&json!({"model": "team-gpt", "stream": true,
                      "messages": [{"role": "user", "content": "a b c"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert_eq!(stream_text(&body), "echo: a b c");
    assert_eq!(sse_data(&body).last().unwrap(), "[DONE]");

    // Embeddings.
    let r = gw
        .client
        .post(gw.url("/v1/embeddings"))
        .bearer_auth(&key)
        .json(&json!({"model": "embedder", "input": ["x", "y"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);

    let seen = mock.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for req in &seen {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {PROVIDER_KEY}").as_str()),
            "{} {}",
            req.method,
            req.path
        );
        assert_eq!(req.header("x-team"), Some("blue"));
        assert!(req.header("x-api-key").is_none(), "x-api-key forwarded");
        for (name, value) in &req.headers {
            assert!(
                !value.contains(&key),
                "gateway key in upstream header {name}"
            );
            assert!(!value.contains(&key[..12]), "key prefix in header {name}");
        }
        assert!(
            !req.body_text().contains(&key),
            "gateway key in upstream body"
        );
    }
    let chat = seen[0].json();
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(chat["model"], "mock-gpt");
    assert_eq!(chat["x_custom"], json!({"keep": [1, 2, 3]}));
    assert_eq!(chat["temperature"], 0.25);
    assert_eq!(seen[1].json()["stream"], true);
    assert_eq!(seen[2].path, "/v1/embeddings");
    assert_eq!(seen[2].json()["model"], "mock-embed");

    // Neither key shows up in the gateway's own log.
    let log = gw.stderr();
    assert!(!log.contains(&key));
    assert!(!log.contains(PROVIDER_KEY));
}

#[tokio::test]
async fn upstream_faults_are_mapped() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(spec(&mock)).await;
    let key = gw.live_key("client", &[]).await;

    let (status, body) = gw.simple_chat(&key, "flaky").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "api_error");

    // A mid-stream drop ends the stream with an error event, never a fake [DONE].
    let r = gw
        .chat(
            &key,
            json!({"model": "dropper", "stream": true,
                   "messages": [{"role": "user", "content": "one two three four five"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let data = sse_data(&body);
    assert!(!data.iter().any(|d| d == "[DONE]"), "{body}");
    let last: serde_json::Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{body}");

    // Unreachable upstream: 502.
    let dead = common::closed_addr();
    let body = format!(
        "providers:\n{}models:\n  - name: gone\n    provider: dead\n",
        compat_provider("dead", &format!("http://{dead}/v1"), "")
    );
    let gw2 = Gateway::start(Spec::new(body)).await;
    let key2 = gw2.live_key("k", &[]).await;
    let (status, body) = gw2.simple_chat(&key2, "gone").await;
    assert_eq!(status, 502, "{body}");
}

#[tokio::test]
async fn plain_http_upstream_goes_through_the_environment_proxy() {
    let mock = MockUpstream::start().await;
    let proxy = ForwardProxy::start().await;
    // A gateway whose environment names the proxy and `no_proxy`, and one chat through it.
    let chat_with_no_proxy = |no_proxy: &'static str| {
        let spec = spec(&mock)
            .env(
                "HTTP_PROXY",
                &format!("http://gw-user:proxy-pass@{}", proxy.addr()),
            )
            .env("NO_PROXY", no_proxy);
        async move {
            let gw = Gateway::start(spec).await;
            let key = gw.live_key("client", &[]).await;
            let (status, body) = gw.simple_chat(&key, "team-gpt").await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["choices"][0]["message"]["content"], "echo: hi");
        }
    };

    chat_with_no_proxy("example.invalid").await;
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // Absolute-form request line, credentials from the proxy URL as Basic auth.
    assert_eq!(
        seen[0].request_line,
        format!("POST {}/chat/completions HTTP/1.1", mock.base_url())
    );
    assert_eq!(
        seen[0].proxy_authorization.as_deref(),
        Some("Basic Z3ctdXNlcjpwcm94eS1wYXNz")
    );
    let upstream = mock.requests();
    assert_eq!(upstream.len(), 1);
    assert_eq!(
        upstream[0].header("authorization"),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );

    // NO_PROXY naming the upstream's host: straight to the upstream.
    chat_with_no_proxy("127.0.0.1").await;
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(
        proxy.seen().len(),
        1,
        "NO_PROXY host went through the proxy"
    );
}

#[tokio::test]
async fn a_proxy_of_an_unsupported_scheme_fails_closed() {
    let mock = MockUpstream::start().await;
    let gw = Gateway::start(
        spec(&mock)
            .env("HTTP_PROXY", "socks5://user:hidden-pass@127.0.0.1:1080")
            .env("NO_PROXY", ""),
    )
    .await;
    let key = gw.live_key("client", &[]).await;
    let (status, body) = gw.simple_chat(&key, "team-gpt").await;
    // Never around the proxy the environment demands, straight to the upstream.
    assert_eq!(status, 502, "{body}");
    assert!(mock.requests().is_empty());
    // The log is written in batches by its own thread.
    let logged = common::poll_until(Duration::from_secs(5), || async {
        gw.stderr().contains("not an http:// proxy")
    })
    .await;
    let log = gw.stderr();
    assert!(logged.is_some(), "{log}");
    assert!(!log.contains("hidden-pass"), "{log}");
    assert!(!body.to_string().contains("hidden-pass"), "{body}");
}
