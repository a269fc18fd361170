//! The audit queue fails closed over real HTTP: while the store is locked the writer
//! stalls, the queue fills, and authenticated admin calls are refused with 503 before
//! they act; the queue depth is visible in /metrics; once the store is free every
//! accepted record is written.

mod common;

use common::{add_identity_key, base_config};
use portcullis_store::{AuditQuery, Store};
use portcullis_testkit::MockUpstream;
use sqlx::{Connection, Executor};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_fail_closed_while_the_audit_queue_is_full() {
    let mock = MockUpstream::start().await;
    let mut config = base_config(&mock);
    config.audit.queue_capacity = 1;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/p.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    let (_, admin) = add_identity_key(&store, None, "admin", None).await;
    let (_, dev) = add_identity_key(&store, None, "developer", None).await;
    let gateway = portcullis_server::start(&config, store.clone())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let admin_url = |p: &str| format!("http://{}{p}", gateway.admin_addr);
    let get = |key: String, path: &str| {
        let request = client.get(admin_url(path)).bearer_auth(key);
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    };

    // Another connection takes the write lock: the audit writer blocks on its next append.
    let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
    lock.execute("BEGIN IMMEDIATE").await.unwrap();

    // A denied call writes nothing but its audit record. The writer takes the first and
    // stalls; the second waits in the queue (capacity 1).
    let first = get(dev.clone(), "/api/v1/audit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = get(dev.clone(), "/api/v1/audit");
    let state = gateway.state.clone();
    let mut waited = 0;
    while state.audit.depth() < 1 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(
        state.audit.depth(),
        1,
        "the second record waits in the queue"
    );

    // Full queue: authenticated calls are refused before acting, whatever their rights.
    for key in [&admin, &dev] {
        let resp = client
            .get(admin_url("/api/v1/me"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");
    }
    let created = client
        .post(admin_url("/api/v1/teams"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "never"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 503, "no change is made unaudited");
    let metrics = client
        .get(admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("portcullis_queue_depth{queue=\"audit\"} 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("queue"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The store frees up: both accepted records are written and both calls answer.
    lock.execute("ROLLBACK").await.unwrap();
    lock.close().await.unwrap();
    assert_eq!(first.await.unwrap(), 403);
    assert_eq!(second.await.unwrap(), 403);
    let records = store.list_audit(&AuditQuery::default()).await.unwrap();
    let denied: Vec<_> = records
        .iter()
        .filter(|r| r.action == "audit.read" && r.outcome == "denied")
        .collect();
    assert_eq!(denied.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r.target != "never"));
    assert!(store.list_teams().await.unwrap().is_empty());
    let resp = client
        .get(admin_url("/api/v1/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "admin calls work again");
    gateway.shutdown(Duration::from_secs(1));
    gateway.wait().await.unwrap();
}
