//! Connecting to an upstream over real sockets: a connect that cannot complete is a
//! `connect` timeout after `server.timeouts.connect`, a refused one is unreachable.

use portcullis_config::load_str;
use portcullis_providers::{Operation, Providers, UpstreamError};
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};

fn providers(base_url: &str) -> Providers {
    let yaml = format!(
        "server:\n  timeouts: {{connect: 300ms, request: 3s}}\nproviders:\n  - name: up\n    kind: openai-compatible\n    base_url: {base_url}\nmodels:\n  - name: m\n    provider: up\n"
    );
    let config = load_str(&yaml, &|_| None).expect("config").config;
    Providers::from_config(&config).expect("providers")
}

#[tokio::test]
async fn a_connect_that_never_completes_is_a_connect_timeout() {
    // A listener that never accepts, with its accept queue filled: the kernel drops
    // further SYNs, so a new connect neither succeeds nor fails.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await
        {
            queued.push(s);
        }
    }
    let providers = providers(&format!("http://{addr}/v1"));
    let provider = providers.get("up").unwrap();
    let started = Instant::now();
    let result = provider
        .send(Operation::Chat, "m", b"{}".to_vec(), false)
        .await;
    let elapsed = started.elapsed();
    match result {
        Err(UpstreamError::Timeout { phase, .. }) => assert_eq!(phase, "connect"),
        Err(other) => panic!("expected a connect timeout, got {other}"),
        Ok(_) => panic!("expected a connect timeout, got an answer"),
    }
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    drop(queued);
}

#[tokio::test]
async fn a_refused_connect_is_unreachable() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let providers = providers(&format!("http://{closed}/v1"));
    let result = providers
        .get("up")
        .unwrap()
        .send(Operation::Chat, "m", b"{}".to_vec(), false)
        .await;
    assert!(
        matches!(result, Err(UpstreamError::Unreachable { .. })),
        "{:?}",
        result.err()
    );
}
