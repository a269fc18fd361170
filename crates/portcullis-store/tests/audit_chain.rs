//! The tamper-evident audit chain on SQLite and PostgreSQL: an intact chain
//! verifies; edits, deletions and truncation made with direct database
//! access (triggers dropped, as an attacker would) are detected and the first
//! broken record named; concurrent appenders never fork the chain; records
//! from before the chain are reported as unchained.

mod common;

use portcullis_store::{NewAuditEntry, Store, GENESIS_HASH};
use serde_json::json;

fn entry(n: i64) -> NewAuditEntry {
    NewAuditEntry {
        at: 1_700_000_000 + n,
        actor: format!("u-{}", n % 3),
        action: "keys.create".into(),
        target: format!("key_{n}"),
        outcome: "ok".into(),
        detail: json!({ "n": n, "ratio": 0.1 + n as f64, "note": "ü \"q\"" }),
    }
}

async fn append(store: &Store, count: i64) {
    for n in 1..=count {
        store.append_audit(&entry(n)).await.unwrap();
    }
}

/// Runs `sql` with a raw connection, after dropping the append-only triggers
/// (what an attacker with database access would do).
async fn tamper(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        for s in [
            "DROP TRIGGER IF EXISTS audit_log_no_update",
            "DROP TRIGGER IF EXISTS audit_log_no_delete",
            sql,
        ] {
            sqlx::query(s).execute(&pool).await.unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        for s in [
            "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
            sql,
        ] {
            sqlx::query(s).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
}

async fn intact_chain_verifies(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let empty = store.verify_audit_chain().await.unwrap();
    assert!(empty.is_intact() && empty.records == 0 && empty.head.is_none());
    append(&store, 5).await;
    let v = store.verify_audit_chain().await.unwrap();
    assert!(v.is_intact(), "{v}");
    assert_eq!((v.records, v.unchained), (5, 0));
    let head = v.head.clone().unwrap();
    assert_eq!(head.id, 5);
    let all = store.list_audit(&Default::default()).await.unwrap();
    let ids: Vec<i64> = all.iter().map(|r| r.id).collect();
    assert_eq!(ids, [5, 4, 3, 2, 1], "contiguous ids");
    assert_eq!(all[4].prev_hash.as_deref(), Some(GENESIS_HASH));
    assert_eq!(all[0].hash.as_deref(), Some(head.hash.as_str()));
    for pair in all.windows(2) {
        assert_eq!(
            pair[0].prev_hash, pair[1].hash,
            "each links to the previous"
        );
    }
    assert!(
        v.to_string().starts_with("audit chain intact: 5 record(s)"),
        "{v}"
    );
    store.close().await;
}

async fn edited_record_is_named(url: &str) {
    let store = Store::connect(url).await.unwrap();
    append(&store, 6).await;
    store.close().await;
    tamper(
        url,
        r#"UPDATE audit_log SET detail = '{"n":3,"hidden":true}' WHERE id = 3"#,
    )
    .await;
    let store = Store::connect(url).await.unwrap();
    let v = store.verify_audit_chain().await.unwrap();
    let (id, reason) = v.first_broken.clone().expect("edit detected");
    assert_eq!(id, 3, "{reason}");
    assert!(reason.contains("edited"), "{reason}");
    assert_eq!(v.records, 6);
    assert!(v.to_string().contains("BROKEN at record 3"), "{v}");
    store.close().await;

    // Recomputing the edited record's own hash only moves the break forward.
    tamper(url, "UPDATE audit_log SET hash = 'f00d' WHERE id = 3").await;
    let store = Store::connect(url).await.unwrap();
    let v = store.verify_audit_chain().await.unwrap();
    assert_eq!(v.first_broken.unwrap().0, 3);
    store.close().await;
}

async fn deleted_record_is_named(url: &str) {
    let store = Store::connect(url).await.unwrap();
    append(&store, 6).await;
    store.close().await;
    tamper(url, "DELETE FROM audit_log WHERE id = 3").await;
    let store = Store::connect(url).await.unwrap();
    let v = store.verify_audit_chain().await.unwrap();
    let (id, reason) = v.first_broken.clone().expect("deletion detected");
    assert_eq!(id, 4, "the record after the gap: {reason}");
    assert!(reason.contains("records 3..=3 are missing"), "{reason}");
    assert_eq!(v.records, 5);
    store.close().await;
}

async fn truncated_end_and_first_record_are_detected(url: &str) {
    let store = Store::connect(url).await.unwrap();
    append(&store, 4).await;
    store.close().await;
    tamper(url, "DELETE FROM audit_log WHERE id = 4").await;
    let store = Store::connect(url).await.unwrap();
    let v = store.verify_audit_chain().await.unwrap();
    let (id, reason) = v.first_broken.expect("truncation detected");
    assert_eq!(id, 4, "{reason}");
    assert!(reason.contains("missing at the end"), "{reason}");
    store.close().await;

    tamper(url, "DELETE FROM audit_log WHERE id = 1").await;
    let store = Store::connect(url).await.unwrap();
    let (id, reason) = store
        .verify_audit_chain()
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(id, 2, "{reason}");
    assert!(reason.contains("genesis"), "{reason}");
    store.close().await;
}

async fn concurrent_appends_keep_one_chain(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    store.append_audit(&entry(t * 100 + i)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let v = store.verify_audit_chain().await.unwrap();
    assert!(v.is_intact(), "{v}");
    assert_eq!(v.records, 80);
    assert_eq!(v.head.unwrap().id, 80);
    store.close().await;
}

async fn records_before_the_chain_are_unchained(url: &str) {
    let legacy = "INSERT INTO audit_log (at, actor, action, target, outcome, detail) \
                  VALUES (1, 'old', 'keys.create', 'k', 'ok', '{}')";
    let store = Store::connect(url).await.unwrap();
    store.close().await;
    tamper(url, legacy).await;
    tamper(url, legacy).await;
    let store = Store::connect(url).await.unwrap();
    append(&store, 3).await;
    let v = store.verify_audit_chain().await.unwrap();
    assert!(v.is_intact(), "{v}");
    assert_eq!((v.records, v.unchained), (5, 2));
    assert_eq!(v.head.as_ref().unwrap().id, 5);
    assert!(v.to_string().contains("2 unchained"));
    store.close().await;
}

both_backends_url!(
    intact_chain_verifies,
    edited_record_is_named,
    deleted_record_is_named,
    truncated_end_and_first_record_are_detected,
    concurrent_appends_keep_one_chain,
    records_before_the_chain_are_unchained,
);
