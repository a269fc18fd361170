//! The OpenAI data plane against a real mock upstream over sockets.

mod common;

use common::{expect_error, Harness, PROVIDER_KEY};
use futures_util::StreamExt;
use portcullis_testkit::Fault;
use std::time::{Duration, Instant};

#[tokio::test]
async fn chat_is_forwarded_with_model_rewritten_fields_kept_and_keys_swapped() {
    let h = Harness::start().await;
    let body = r#"{"model":"gpt-test","messages":[{"role":"user","content":"hi there"}],"temperature":0.3,"x_vendor_extension":{"keep":[1,2]}}"#;
    let r = h.post("/v1/chat/completions", body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi there");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let seen = h.mock.requests();
    assert_eq!(seen.len(), 1);
    let sent = seen[0].json();
    assert_eq!(sent["model"], "mock-gpt", "upstream model name");
    assert_eq!(sent["temperature"], 0.3);
    assert_eq!(
        sent["x_vendor_extension"]["keep"],
        serde_json::json!([1, 2]),
        "unknown fields pass through"
    );
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
    let all_headers = format!("{:?}", seen[0].headers);
    assert!(
        !all_headers.contains(&h.key),
        "the gateway key must never reach the upstream"
    );
    assert!(!seen[0].body_text().contains(&h.key));
}

#[tokio::test]
async fn stream_chunks_are_forwarded_as_they_arrive() {
    let h = Harness::start_with(|c| {
        let up = c.providers.iter_mut().find(|p| p.name == "up").unwrap();
        up.headers.insert(
            portcullis_testkit::CHUNK_DELAY_HEADER.into(),
            portcullis_config::Secret::new("150"),
        );
    })
    .await;
    let started = Instant::now();
    let r = h.chat("gpt-test", true).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        arrivals.push(started.elapsed());
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.contains("\"finish_reason\":\"stop\""));
    assert!(
        !text.contains("\"usage\":{"),
        "usage chunk requested by the gateway must be hidden: {text}"
    );
    assert!(
        arrivals.len() >= 4,
        "chunks arrive separately, got {}",
        arrivals.len()
    );
    let first = arrivals[0];
    let last = *arrivals.last().unwrap();
    assert!(
        last - first >= Duration::from_millis(300),
        "not buffered: first {first:?} last {last:?}"
    );
    let sent = h.mock.requests()[0].json();
    assert_eq!(sent["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn client_requested_usage_chunk_is_kept() {
    let h = Harness::start().await;
    let body = r#"{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count me"}]}"#;
    let text = h
        .post("/v1/chat/completions", body)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("\"choices\":[]"), "{text}");
    assert!(text.contains("\"prompt_tokens\""), "{text}");
}

#[tokio::test]
async fn embeddings_and_models() {
    let h = Harness::start().await;
    let r = h
        .post(
            "/v1/embeddings",
            r#"{"model":"gpt-test","input":["a","b"]}"#,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(h.mock.requests()[0].path, "/v1/embeddings");

    let r = h
        .client
        .get(h.url("/v1/models"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"mock-echo") && ids.contains(&"gpt-test"),
        "{ids:?}"
    );
    assert_eq!(v["object"], "list");
}

#[tokio::test]
async fn built_in_mock_echoes() {
    let h = Harness::start().await;
    let v: serde_json::Value = h.chat("mock-echo", false).await.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "echo: hello there gateway friend"
    );
    let text = h.chat("mock-echo", true).await.text().await.unwrap();
    assert!(text.contains("gateway ") && text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn upstream_failures_map_to_the_right_status() {
    let h = Harness::start().await;
    let r = h.chat("fault-status-429-retry-7", false).await;
    assert_eq!(
        r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
        Some("7")
    );
    expect_error(r, 429, "upstream_rate_limited").await;
    let body = expect_error(
        h.chat("fault-status-401", false).await,
        502,
        "upstream_misconfigured",
    )
    .await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not your API key"));
    expect_error(
        h.chat("fault-status-404", false).await,
        502,
        "upstream_misconfigured",
    )
    .await;
    expect_error(
        h.chat("fault-status-500", false).await,
        502,
        "upstream_error",
    )
    .await;
    expect_error(
        h.chat("fault-status-503", false).await,
        503,
        "upstream_overloaded",
    )
    .await;
    expect_error(
        h.chat("fault-malformed", false).await,
        502,
        "upstream_bad_response",
    )
    .await;
    expect_error(
        h.chat("fault-drop", false).await,
        502,
        "upstream_unreachable",
    )
    .await;
    expect_error(
        h.chat("dead-model", false).await,
        502,
        "upstream_unreachable",
    )
    .await;
}

#[tokio::test]
async fn upstream_client_errors_pass_with_secrets_scrubbed() {
    let h = Harness::start().await;
    h.mock.push_fault(Fault::Status {
        status: 400,
        body: Some(format!(
            r#"{{"error":{{"message":"bad temperature; key {PROVIDER_KEY} used","type":"invalid_request_error","param":"temperature","code":null}}}}"#
        )),
        retry_after: None,
    });
    let body = expect_error(h.chat("gpt-test", false).await, 400, "upstream_rejected").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("bad temperature"), "{message}");
    assert!(!message.contains(PROVIDER_KEY), "{message}");
}

#[tokio::test]
async fn upstream_timeout_is_504() {
    let h = Harness::start_with(|c| c.server.timeouts.request.0 = Duration::from_millis(300)).await;
    let started = Instant::now();
    expect_error(
        h.chat("fault-delay-3000", false).await,
        504,
        "upstream_timeout",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn mid_stream_failure_ends_with_an_error_event() {
    let h = Harness::start().await;
    let r = h.chat("fault-stream-drop-2", true).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(
        last.starts_with("data: {\"error\""),
        "last event must be an error: {last}"
    );

    let h =
        Harness::start_with(|c| c.server.timeouts.stream_idle.0 = Duration::from_millis(300)).await;
    h.mock
        .push_fault(Fault::StreamStallAfter(2, Duration::from_secs(5)));
    let started = Instant::now();
    let text = h.chat("gpt-test", true).await.text().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(text.contains("\"code\":\"upstream_timeout\""), "{text}");
}
