//! Anomaly alerts: deduplication window, repeats counted, filters and pagination — on
//! SQLite and PostgreSQL.

mod common;

use portcullis_store::{AlertQuery, NewAlert, Store};

fn alert(at: i64, rule: &str, subject: &str) -> NewAlert {
    NewAlert {
        at,
        rule: rule.into(),
        subject: subject.into(),
        severity: "high".into(),
        message: format!("{rule} on {subject} at {at}"),
        key_id: Some("key_a".into()),
        team: Some("t1".into()),
        detail: serde_json::json!({"count": 20, "threshold": 20}),
    }
}

async fn repeats_inside_the_window_are_folded(store: &Store) {
    let first = store
        .record_alert(&alert(1_000, "auth_failures", "ip:203.0.113.7"), 1, 600)
        .await
        .unwrap();
    assert!(first.raised);
    let again = store
        .record_alert(&alert(1_300, "auth_failures", "ip:203.0.113.7"), 4, 600)
        .await
        .unwrap();
    assert_eq!((again.id, again.raised), (first.id, false));
    // A different subject or rule is a different alert.
    let other_ip = store
        .record_alert(&alert(1_300, "auth_failures", "ip:198.51.100.1"), 1, 600)
        .await
        .unwrap();
    let other_rule = store
        .record_alert(&alert(1_300, "new_network", "ip:203.0.113.7"), 1, 600)
        .await
        .unwrap();
    assert!(other_ip.raised && other_rule.raised);
    // After the window (from the first occurrence) a new alert is raised.
    let later = store
        .record_alert(&alert(1_601, "auth_failures", "ip:203.0.113.7"), 1, 600)
        .await
        .unwrap();
    assert!(later.raised);
    assert_ne!(later.id, first.id);

    let all = store.list_alerts(&AlertQuery::default()).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let folded = all.iter().find(|a| a.id == first.id).unwrap();
    assert_eq!(
        (folded.count, folded.first_at, folded.last_at),
        (5, 1_000, 1_300)
    );
    assert_eq!(folded.message, "auth_failures on ip:203.0.113.7 at 1000");
    assert_eq!(folded.detail["threshold"], 20);
    assert_eq!(folded.key_id.as_deref(), Some("key_a"));
    assert_eq!(folded.team.as_deref(), Some("t1"));
    assert_eq!(folded.severity, "high");
}

async fn filters_and_pages(store: &Store) {
    for i in 0..5 {
        store
            .record_alert(&alert(100 + i, "token_spike", &format!("key:k{i}")), 1, 60)
            .await
            .unwrap();
    }
    store
        .record_alert(&alert(200, "spend_spike", "team:t1"), 1, 60)
        .await
        .unwrap();
    let q = |f: &dyn Fn(&mut AlertQuery)| {
        let mut q = AlertQuery::default();
        f(&mut q);
        q
    };
    let spikes = store
        .list_alerts(&q(&|q| q.rule = Some("token_spike".into())))
        .await
        .unwrap();
    assert_eq!(spikes.len(), 5);
    let window = store
        .list_alerts(&q(&|q| {
            q.since = Some(101);
            q.until = Some(104);
        }))
        .await
        .unwrap();
    let ats: Vec<i64> = window.iter().map(|a| a.first_at).collect();
    assert_eq!(ats, vec![103, 102, 101]);
    let subject = store
        .list_alerts(&q(&|q| q.subject = Some("team:t1".into())))
        .await
        .unwrap();
    assert_eq!(subject.len(), 1);
    assert_eq!(subject[0].rule, "spend_spike");
    let page1 = store.list_alerts(&q(&|q| q.limit = 4)).await.unwrap();
    let before = page1.last().unwrap().id;
    let page2 = store
        .list_alerts(&q(&|q| {
            q.limit = 4;
            q.before_id = Some(before);
        }))
        .await
        .unwrap();
    assert_eq!((page1.len(), page2.len()), (4, 2));
    assert!(page2.iter().all(|a| a.id < before));
    assert!(store
        .list_alerts(&q(&|q| q.limit = 0))
        .await
        .unwrap()
        .is_empty());
}

both_backends!(repeats_inside_the_window_are_folded, filters_and_pages);
