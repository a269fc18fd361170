//! The append-only audit log: ids, JSON detail, filters and keyset
//! pagination — on SQLite and PostgreSQL.

mod common;

use portcullis_store::{AuditQuery, NewAuditEntry, Store, StoreError};
use serde_json::json;

fn entry(at: i64, actor: &str, action: &str, outcome: &str) -> NewAuditEntry {
    NewAuditEntry {
        at,
        actor: actor.into(),
        action: action.into(),
        target: format!("target-{at}"),
        outcome: outcome.into(),
        detail: json!({ "at": at }),
    }
}

fn ids(records: &[portcullis_store::AuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}

async fn append_and_read_back(store: &Store) {
    assert!(store
        .list_audit(&AuditQuery::default())
        .await
        .unwrap()
        .is_empty());
    let detail = json!({
        "version": 3,
        "comment": "tighten \"limits\" ü",
        "nested": { "list": [1, 2.5, null, true] }
    });
    let mut e = entry(100, "u-alice", "policy.activate", "ok");
    e.detail = detail.clone();
    let id1 = store.append_audit(&e).await.unwrap();
    let id2 = store
        .append_audit(&entry(100, "k-1", "keys.create", "denied"))
        .await
        .unwrap();
    assert!(id2 > id1, "ids increase: {id1} {id2}");

    let all = store.list_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(ids(&all), [id2, id1], "newest first");
    let first = &all[1];
    assert_eq!(first.at, 100);
    assert_eq!(first.actor, "u-alice");
    assert_eq!(first.action, "policy.activate");
    assert_eq!(first.target, "target-100");
    assert_eq!(first.outcome, "ok");
    assert_eq!(first.detail, detail);
    assert_eq!(all[0].outcome, "denied");

    // Unknown outcome: refused, nothing written.
    let err = store
        .append_audit(&entry(1, "a", "x", "maybe"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store
            .list_audit(&AuditQuery::default())
            .await
            .unwrap()
            .len(),
        2
    );
    let none = AuditQuery {
        limit: 0,
        ..AuditQuery::default()
    };
    assert!(store.list_audit(&none).await.unwrap().is_empty());
}

async fn keyset_pagination(store: &Store) {
    let mut appended = Vec::new();
    for i in 0..7 {
        appended.push(
            store
                .append_audit(&entry(i, "a", "keys.create", "ok"))
                .await
                .unwrap(),
        );
    }
    appended.reverse();
    let mut q = AuditQuery {
        limit: 3,
        ..AuditQuery::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = store.list_audit(&q).await.unwrap();
        if page.is_empty() {
            break;
        }
        q.before_id = Some(page.last().unwrap().id);
        pages.push(ids(&page));
    }
    assert_eq!(
        pages,
        [
            appended[0..3].to_vec(),
            appended[3..6].to_vec(),
            appended[6..7].to_vec()
        ]
    );
}

async fn filters_combine(store: &Store) {
    let rows = [
        (10, "alice", "policy.apply", "ok"),
        (20, "alice", "policy.activate", "ok"),
        (30, "bob", "policy.apply", "denied"),
        (40, "alice", "keys.create", "ok"),
        (50, "alice", "Policy.apply", "error"),
        (60, "bob", "keys_x", "ok"),
        (70, "bob", "keysXx", "ok"),
    ];
    let mut id = std::collections::HashMap::new();
    for (at, actor, action, outcome) in rows {
        let got = store
            .append_audit(&entry(at, actor, action, outcome))
            .await
            .unwrap();
        id.insert(at, got);
    }
    let list = |q: AuditQuery| async move {
        let recs = store.list_audit(&q).await.unwrap();
        recs.iter().map(|r| r.at).collect::<Vec<i64>>()
    };
    let q = AuditQuery::default();

    // Period: since inclusive, until exclusive.
    let period = AuditQuery {
        since: Some(20),
        until: Some(50),
        ..q.clone()
    };
    assert_eq!(list(period).await, [40, 30, 20]);
    let actor = AuditQuery {
        actor: Some("bob".into()),
        ..q.clone()
    };
    assert_eq!(list(actor).await, [70, 60, 30]);
    // Prefix: case-sensitive, `_` and `%` are literal.
    let prefix = AuditQuery {
        action_prefix: Some("policy.".into()),
        ..q.clone()
    };
    assert_eq!(list(prefix).await, [30, 20, 10]);
    let underscore = AuditQuery {
        action_prefix: Some("keys_".into()),
        ..q.clone()
    };
    assert_eq!(list(underscore).await, [60]);
    let combined = AuditQuery {
        actor: Some("alice".into()),
        action_prefix: Some("policy.".into()),
        since: Some(15),
        ..q.clone()
    };
    assert_eq!(list(combined).await, [20]);
    // Filters and the cursor together.
    let paged = AuditQuery {
        actor: Some("alice".into()),
        before_id: Some(id[&40]),
        limit: 1,
        ..q.clone()
    };
    assert_eq!(list(paged).await, [20]);
    let nobody = AuditQuery {
        actor: Some("carol".into()),
        ..q
    };
    assert!(list(nobody).await.is_empty());
}

both_backends!(append_and_read_back, keyset_pagination, filters_combine);
