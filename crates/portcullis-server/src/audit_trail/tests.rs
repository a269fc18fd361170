//! The audit queue: records are stored in order and forwarded (JSON lines file, syslog
//! over a local UDP and TCP socket); shutdown drains the queue; a full queue is counted.

use super::*;
use portcullis_config::{AuditForward, SyslogTransport};
use portcullis_store::AuditQuery;
use std::time::Duration;

fn entry(i: usize, outcome: &str) -> NewAuditEntry {
    NewAuditEntry {
        at: 1_800_000_000 + i as i64,
        actor: "key_admin".into(),
        action: "keys.create".into(),
        target: format!("key_{i}"),
        outcome: outcome.into(),
        detail: serde_json::json!({"n": i}),
    }
}

async fn store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    Store::connect(&url).await.unwrap()
}

#[tokio::test]
async fn records_are_stored_and_forwarded_to_file_and_syslog() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jsonl = dir.path().join("audit.jsonl");
    let config = AuditConfig {
        queue_capacity: 16,
        forward: vec![
            AuditForward::File {
                path: jsonl.clone(),
            },
            AuditForward::Syslog {
                address: udp.local_addr().unwrap().to_string(),
                transport: SyslogTransport::Udp,
                app_name: "pc-test".into(),
            },
            AuditForward::Syslog {
                address: tcp.local_addr().unwrap().to_string(),
                transport: SyslogTransport::Tcp,
                app_name: "pc-test".into(),
            },
        ],
    };
    let trail = AuditTrail::start(&config, store.clone()).await.unwrap();
    assert!(trail.append(entry(1, "ok")).await);
    assert!(trail.append(entry(2, "denied")).await);

    let mut buf = vec![0u8; 65_536];
    let mut datagrams = Vec::new();
    for _ in 0..2 {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut buf))
            .await
            .expect("syslog datagram")
            .unwrap();
        datagrams.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    assert!(datagrams[0].starts_with("<109>1 "), "{}", datagrams[0]);
    assert!(datagrams[0].contains(" pc-test "), "{}", datagrams[0]);
    assert!(datagrams[1].starts_with("<108>1 "), "denied is a warning");
    assert!(datagrams[1].contains("target=\"key_2\""));

    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(5), tcp.accept())
        .await
        .unwrap()
        .unwrap();
    trail.shutdown().await;
    let mut received = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut conn, &mut received)
        .await
        .unwrap_or_default();
    let (len, rest) = received.split_once(' ').unwrap();
    let first_len: usize = len.parse().unwrap();
    assert!(rest[..first_len].starts_with("<109>1 "), "{received}");
    assert!(
        rest[first_len..].trim_start().split_once(' ').is_some(),
        "second frame"
    );

    let stored = store.list_audit(&AuditQuery::default()).await.unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    // Oldest first in the file; the stored hashes travel with the records.
    assert_eq!(lines[0]["target"], "key_1");
    assert_eq!(lines[1]["id"], stored[0].id);
    assert_eq!(lines[1]["hash"], stored[0].hash.clone().unwrap());
    assert_eq!(lines[1]["prev_hash"], stored[1].hash.clone().unwrap());
    assert!(store.verify_audit_chain().await.unwrap().is_intact());
    store.close().await;
}

#[tokio::test]
async fn shutdown_stores_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let trail = AuditTrail::with_forwarders(1000, store.clone(), vec![]);
    for i in 0..300 {
        assert!(trail.try_append(entry(i, "ok")));
    }
    trail.shutdown().await;
    let q = AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    };
    let stored = store.list_audit(&q).await.unwrap();
    assert_eq!(stored.len(), 300, "nothing accepted is lost");
    assert_eq!(trail.dropped(), 0);
    // Append order is kept.
    assert_eq!(stored.last().unwrap().target, "key_0");
    assert_eq!(stored[0].target, "key_299");
    store.close().await;
}

#[tokio::test]
async fn a_full_queue_is_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    // The test runtime is single-threaded: the writer runs only when this task yields,
    // so the queue fills deterministically.
    let trail = AuditTrail::with_forwarders(2, store.clone(), vec![]);
    assert!(trail.has_room());
    let accepted = (0..5).filter(|i| trail.try_append(entry(*i, "ok"))).count();
    assert_eq!(accepted, 2);
    assert!(!trail.has_room());
    assert_eq!(trail.depth(), 2);
    assert_eq!(trail.dropped(), 3);
    // A waiting append gets in once the writer drains.
    assert!(trail.append(entry(9, "ok")).await);
    trail.shutdown().await;
    let stored = store.list_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(stored.len(), 3);
    store.close().await;
}

#[tokio::test]
async fn an_unwritable_file_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let config = AuditConfig {
        queue_capacity: 4,
        forward: vec![AuditForward::File {
            path: dir.path().join("missing-dir").join("audit.jsonl"),
        }],
    };
    let err = AuditTrail::start(&config, store.clone())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("missing-dir"), "{err}");
    store.close().await;
}
