//! Fault injection, queued and by model name, observed from a real HTTP client.

mod common;

use std::time::{Duration, Instant};

use common::{chat_body, client, read_sse};
use portcullis_testkit::{Fault, MockUpstream};
use serde_json::Value;

async fn post_chat(mock: &MockUpstream, body: &Value) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(body)
        .send()
        .await
}

#[tokio::test]
async fn status_fault_with_retry_after_then_normal() {
    let mock = MockUpstream::start().await;
    mock.push_fault(Fault::Status {
        status: 429,
        body: None,
        retry_after: Some(7),
    });
    mock.push_fault(Fault::Status {
        status: 502,
        body: Some("bad gateway, plain".into()),
        retry_after: None,
    });
    assert_eq!(mock.pending_faults(), 2);
    let body = chat_body("mock-gpt", "hi", false);

    let resp = post_chat(&mock, &body).await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(v["error"]["message"].is_string());
    assert!(v["error"].get("param").is_some());

    let resp = post_chat(&mock, &body).await.unwrap();
    assert_eq!(resp.status(), 502);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(resp.text().await.unwrap(), "bad gateway, plain");

    let resp = post_chat(&mock, &body).await.unwrap();
    assert_eq!(resp.status(), 200, "faults are consumed once each");
    assert_eq!(mock.pending_faults(), 0);
}

#[tokio::test]
async fn status_fault_by_model() {
    let mock = MockUpstream::start().await;
    for _ in 0..2 {
        let resp = post_chat(&mock, &chat_body("fault-status-503", "hi", false))
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "server_error");
    }
    let resp = post_chat(&mock, &chat_body("fault-status-429-retry-3", "hi", false))
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
}

fn assert_connection_error(err: &reqwest::Error) {
    assert!(err.status().is_none(), "no HTTP status expected: {err:?}");
    assert!(
        !err.is_timeout(),
        "must be a connection error, not a timeout: {err:?}"
    );
}

#[tokio::test]
async fn drop_connection_gives_no_status() {
    let mock = MockUpstream::start().await;
    mock.push_fault(Fault::DropConnection);
    let started = Instant::now();
    let err = post_chat(&mock, &chat_body("mock-gpt", "hi", false))
        .await
        .expect_err("dropped connection must fail");
    assert_connection_error(&err);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The next request gets a normal answer on a fresh connection.
    let resp = post_chat(&mock, &chat_body("mock-gpt", "hi", false))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let err = post_chat(&mock, &chat_body("fault-drop", "hi", true))
        .await
        .expect_err("fault-drop model must fail");
    assert_connection_error(&err);
    assert_eq!(
        mock.requests().len(),
        3,
        "dropped requests are recorded too"
    );
}

#[tokio::test]
async fn delay_fault_delays_answer() {
    let mock = MockUpstream::start().await;
    mock.push_fault(Fault::Delay(Duration::from_millis(300)));
    let started = Instant::now();
    let resp = post_chat(&mock, &chat_body("mock-gpt", "hi", false))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let started = Instant::now();
    let v: Value = post_chat(&mock, &chat_body("fault-delay-200", "hi", false))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(v["model"], "fault-delay-200");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
}

#[tokio::test]
async fn malformed_body_is_not_json() {
    let mock = MockUpstream::start().await;
    mock.push_fault(Fault::MalformedBody);
    for model in ["mock-gpt", "fault-malformed"] {
        let resp = post_chat(&mock, &chat_body(model, "hi", false))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    }
    // Stream variant: an event whose data is not JSON.
    let resp = post_chat(&mock, &chat_body("fault-malformed", "hi", true))
        .await
        .unwrap();
    let read = read_sse(resp).await;
    assert!(serde_json::from_str::<Value>(&read.events[0].data).is_err());
}

#[tokio::test]
async fn stream_drop_ends_without_done() {
    let mock = MockUpstream::start().await;
    mock.push_fault(Fault::StreamDropAfter(2));
    let resp = post_chat(&mock, &chat_body("mock-gpt", "a b c d e f", true))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let read = read_sse(resp).await;
    assert!(
        read.error.is_some(),
        "body must end with an error: {read:?}"
    );
    assert_eq!(read.events.len(), 2, "{read:?}");
    assert!(!read.raw.contains("[DONE]"));
    assert_eq!(
        read.events[0].json()["choices"][0]["delta"]["role"],
        "assistant"
    );

    let resp = post_chat(
        &mock,
        &chat_body("fault-stream-drop-3", "a b c d e f", true),
    )
    .await
    .unwrap();
    let read = read_sse(resp).await;
    assert!(read.error.is_some());
    assert_eq!(read.events.len(), 3);
    assert!(!read.raw.contains("[DONE]"));

    // Non-stream requests ignore stream faults.
    let resp = post_chat(&mock, &chat_body("fault-stream-drop-3", "x", false))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn stream_stall_pauses_then_completes() {
    let mock = MockUpstream::start().await;
    mock.push_fault(Fault::StreamStallAfter(2, Duration::from_millis(400)));
    let resp = post_chat(&mock, &chat_body("mock-gpt", "a b c", true))
        .await
        .unwrap();
    let read = read_sse(resp).await;
    assert!(read.error.is_none());
    assert_eq!(read.events.last().unwrap().data, "[DONE]");
    let gap = read.events[2].at - read.events[1].at;
    assert!(gap >= Duration::from_millis(350), "gap {gap:?}");
}

#[tokio::test]
async fn chunk_delay_header_streams_incrementally() {
    let mock = MockUpstream::start().await;
    let resp = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .header("x-mock-chunk-delay-ms", "60")
        .json(&chat_body("mock-gpt", "one two three", true))
        .send()
        .await
        .unwrap();
    let read = read_sse(resp).await;
    let ev = &read.events;
    assert_eq!(ev.len(), 7);
    // Six gaps of 60ms: the first event arrives long before the last one.
    let spread = ev.last().unwrap().at - ev[0].at;
    assert!(spread >= Duration::from_millis(300), "spread {spread:?}");
    for pair in ev.windows(2) {
        assert!(pair[1].at > pair[0].at);
    }
}

#[tokio::test]
async fn stream_error_fault_sends_an_error_chunk() {
    let mock = MockUpstream::start().await;
    let resp = post_chat(&mock, &chat_body("fault-stream-error-2", "a b c", true))
        .await
        .unwrap();
    let read = read_sse(resp).await;
    assert!(read.error.is_none(), "ends cleanly: {read:?}");
    assert_eq!(read.events.len(), 3);
    assert!(!read.raw.contains("[DONE]"));
    assert_eq!(read.events[2].json()["error"]["type"], "server_error");
}
