//! Graceful shutdown of the real binary: SIGTERM lets an in-flight stream finish, refuses
//! new connections, and the process exits 0.

mod common;

use common::{compat_provider, poll_until, sse_data, stream_text, Gateway, Spec};
use portcullis_testkit::MockUpstream;
use std::time::{Duration, Instant};

const WORDS: &str = "one two three four five six seven eight nine ten";

fn slow_spec(mock: &MockUpstream, grace: &str) -> Spec {
    let body = format!(
        "providers:\n{}models:\n  - name: slow-model\n    provider: slow\n    upstream_model: mock-gpt\n",
        compat_provider(
            "slow",
            &mock.base_url(),
            "    headers:\n      x-mock-chunk-delay-ms: \"200\"\n"
        )
    );
    Spec::new(body).server(&format!("  timeouts:\n    shutdown_grace: {grace}\n"))
}

#[tokio::test]
async fn sigterm_drains_an_inflight_stream_then_exits_zero() {
    let mock = MockUpstream::start().await;
    let mut gw = Gateway::start(slow_spec(&mock, "20s")).await;
    let key = gw.live_key("k", &[]).await;

    let started = Instant::now();
    let mut resp = gw
        .chat(
            &key,
            serde_json::json!({"model": "slow-model", "stream": true,
                "messages": [{"role": "user", "content": WORDS}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = String::new();
    let first = resp
        .chunk()
        .await
        .expect("first chunk")
        .expect("stream open");
    body.push_str(&String::from_utf8_lossy(&first));

    gw.sigterm();
    let signalled = Instant::now();

    // New connections are refused soon after the signal, while the stream still runs.
    let addr = gw.data_addr;
    let refused = poll_until(Duration::from_secs(2), || async move {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;

    while let Some(chunk) = resp.chunk().await.expect("stream cut during shutdown") {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    let stream_ended = signalled.elapsed();
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    assert!(!body.contains("\"error\""), "{body}");
    assert_eq!(stream_text(&body), format!("echo: {WORDS}"));
    // The stream really was in flight across the signal (12 chunks x 200 ms).
    assert!(
        stream_ended > Duration::from_millis(1000),
        "stream ended {stream_ended:?} after the signal (total {:?})",
        started.elapsed()
    );

    let status = gw
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("gateway still running 15 s after the stream ended");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        refused.is_some(),
        "the data plane kept accepting connections after SIGTERM"
    );
    let log = gw.stderr();
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test]
async fn sigterm_when_idle_exits_zero_quickly() {
    let mock = MockUpstream::start().await;
    let mut gw = Gateway::start(slow_spec(&mock, "20s")).await;
    let t = Instant::now();
    gw.sigterm();
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("idle gateway did not stop within 5 s");
    assert_eq!(status.code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn shutdown_grace_bounds_a_long_stream() {
    let mock = MockUpstream::start().await;
    // 12 events x 200 ms = 2.4 s of stream, but only 500 ms of grace.
    let mut gw = Gateway::start(slow_spec(&mock, "500ms")).await;
    let key = gw.live_key("k", &[]).await;
    let mut resp = gw
        .chat(
            &key,
            serde_json::json!({"model": "slow-model", "stream": true,
                "messages": [{"role": "user", "content": WORDS}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let _ = resp.chunk().await;
    let t = Instant::now();
    gw.sigterm();
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("gateway ignored its shutdown grace");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "exit took {:?} with 500 ms grace",
        t.elapsed()
    );
    assert_eq!(status.code(), Some(0), "exit status {status}");
    // The client sees the stream end (cut or error), never a hang.
    let mut rest = String::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!rest.contains("[DONE]") || rest.contains("ten"));
}
