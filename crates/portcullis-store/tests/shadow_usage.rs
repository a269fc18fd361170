//! Shadow-mode events and their report, usage rows, their summary and spend
//! — on SQLite and PostgreSQL.

mod common;

use portcullis_store::{NewShadowEvent, NewUsage, Store, UsageQuery, UsageRow};

fn event(at: i64, shadow: i64, kind: &str, principal: &str, rules: (&str, &str)) -> NewShadowEvent {
    NewShadowEvent {
        at,
        active_version: Some(1),
        shadow_version: shadow,
        kind: kind.into(),
        principal: principal.into(),
        team: Some("t1".into()),
        target: "gpt-4o".into(),
        active_rule: rules.0.into(),
        shadow_rule: rules.1.into(),
        summary: format!("{kind} for {principal} at {at}"),
    }
}

fn pairs(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

async fn shadow_report_aggregates(store: &Store) {
    assert_eq!(store.shadow_report(2).await.unwrap().total, 0);
    store.record_shadow_events(&[]).await.unwrap();

    let mut seeded = Vec::new();
    for i in 0..25 {
        let (kind, principal, rules) = match i % 5 {
            0..=2 => ("allow->deny", "k-a", ("allow-all", "deny-gpt4")),
            3 => ("allow->deny", "k-b", ("allow-all", "deny-gpt4")),
            _ => ("limit", "k-c", ("rpm-100", "rpm-10")),
        };
        seeded.push(event(1_000 + i, 2, kind, principal, rules));
    }
    // Another shadow version's events never leak into the report.
    seeded.push(event(5_000, 3, "deny->allow", "k-z", ("x", "y")));
    let mut no_team = event(5_001, 3, "deny->allow", "k-z", ("x", "y"));
    no_team.team = None;
    no_team.active_version = None;
    seeded.push(no_team.clone());
    store.record_shadow_events(&seeded).await.unwrap();

    let report = store.shadow_report(2).await.unwrap();
    assert_eq!(report.total, 25);
    assert_eq!(report.by_kind, pairs(&[("allow->deny", 20), ("limit", 5)]));
    assert_eq!(
        report.by_rule,
        pairs(&[("allow-all -> deny-gpt4", 20), ("rpm-100 -> rpm-10", 5)])
    );
    // Ties (k-b and k-c, 5 each) ordered by key.
    assert_eq!(
        report.by_principal,
        pairs(&[("k-a", 15), ("k-b", 5), ("k-c", 5)])
    );
    assert_eq!(report.samples.len(), 20);
    let ats: Vec<i64> = report.samples.iter().map(|s| s.at).collect();
    assert_eq!(ats, (1_005..1_025).rev().collect::<Vec<_>>(), "newest 20");
    assert!(report.samples.windows(2).all(|w| w[0].id > w[1].id));
    let newest = &report.samples[0];
    assert_eq!(newest.summary, "limit for k-c at 1024");
    assert_eq!((newest.shadow_version, newest.active_version), (2, Some(1)));
    assert_eq!(newest.team.as_deref(), Some("t1"));
    assert_eq!(newest.target, "gpt-4o");

    let other = store.shadow_report(3).await.unwrap();
    assert_eq!(other.total, 2);
    assert_eq!(other.by_rule, pairs(&[("x -> y", 2)]));
    assert_eq!(other.samples[0].team, None);
    assert_eq!(other.samples[0].active_version, None);
    assert_eq!(other.samples[0].summary, no_team.summary);
    assert_eq!(store.shadow_report(99).await.unwrap(), Default::default());
}

fn usage(at: i64, key: &str, team: Option<&str>, model: &str, cost: i64) -> NewUsage {
    NewUsage {
        at,
        request_id: format!("req-{at}-{key}"),
        key_id: key.into(),
        team: team.map(Into::into),
        model: model.into(),
        provider: "openai".into(),
        status: 200,
        prompt_tokens: 100,
        completion_tokens: 10,
        cached_tokens: 40,
        cost_micros: cost,
    }
}

fn row(key: &str, team: Option<&str>, model: &str, requests: i64, cost: i64) -> UsageRow {
    UsageRow {
        key_id: key.into(),
        team: team.map(Into::into),
        model: model.into(),
        requests,
        prompt_tokens: 100 * requests,
        completion_tokens: 10 * requests,
        cached_tokens: 40 * requests,
        cost_micros: cost,
    }
}

async fn usage_summary_and_spend(store: &Store) {
    store.record_usage(&[]).await.unwrap();
    let q = |team: Option<&str>, key: Option<&str>, since, until| UsageQuery {
        team: team.map(Into::into),
        key_id: key.map(Into::into),
        since,
        until,
    };
    assert!(store
        .usage_summary(&q(None, None, 0, i64::MAX))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.spend_micros(None, None, 0).await.unwrap(), 0);

    let mut error = usage(150, "k1", Some("t1"), "gpt-4o", 0);
    error.status = 503;
    store
        .record_usage(&[
            usage(99, "k1", Some("t1"), "gpt-4o", 1_000_000), // before the period
            usage(100, "k1", Some("t1"), "gpt-4o", 2_000),
            usage(110, "k1", Some("t1"), "gpt-4o", 3_000),
            error,
            usage(120, "k1", Some("t1"), "claude", 5_000),
            usage(130, "k2", Some("t2"), "gpt-4o", 7_000),
            usage(140, "k3", None, "gpt-4o", 11_000),
            usage(200, "k1", Some("t1"), "gpt-4o", 1_000_000), // at `until`: excluded
        ])
        .await
        .unwrap();

    let all = store.usage_summary(&q(None, None, 100, 200)).await.unwrap();
    assert_eq!(
        all,
        [
            row("k1", Some("t1"), "claude", 1, 5_000),
            row("k1", Some("t1"), "gpt-4o", 3, 5_000),
            row("k2", Some("t2"), "gpt-4o", 1, 7_000),
            row("k3", None, "gpt-4o", 1, 11_000),
        ]
    );
    let t1 = store
        .usage_summary(&q(Some("t1"), None, 100, 200))
        .await
        .unwrap();
    assert_eq!(t1, all[0..2].to_vec());
    let k2 = store
        .usage_summary(&q(None, Some("k2"), 0, 1_000))
        .await
        .unwrap();
    assert_eq!(k2, [row("k2", Some("t2"), "gpt-4o", 1, 7_000)]);
    let cross = store
        .usage_summary(&q(Some("t2"), Some("k1"), 0, 1_000))
        .await
        .unwrap();
    assert!(cross.is_empty(), "team and key filters combine");

    assert_eq!(
        store.spend_micros(Some("t1"), None, 100).await.unwrap(),
        1_010_000
    );
    assert_eq!(
        store.spend_micros(Some("t1"), None, 0).await.unwrap(),
        2_010_000
    );
    assert_eq!(store.spend_micros(Some("t1"), None, 201).await.unwrap(), 0);
    assert_eq!(
        store.spend_micros(None, Some("k2"), 0).await.unwrap(),
        7_000
    );
    assert_eq!(
        store
            .spend_micros(Some("t1"), Some("k1"), 110)
            .await
            .unwrap(),
        1_008_000
    );
    assert_eq!(store.spend_micros(Some("t9"), None, 0).await.unwrap(), 0);
    assert_eq!(store.spend_micros(None, None, 0).await.unwrap(), 2_028_000);
}

/// Batches larger than one multi-row INSERT (500 rows) are written whole.
async fn large_batches(store: &Store) {
    let rows: Vec<NewUsage> = (0..1_234)
        .map(|i| usage(i, "k1", Some("t1"), "m", 3_000_000_000 + i))
        .collect();
    store.record_usage(&rows).await.unwrap();
    let summary = store
        .usage_summary(&UsageQuery {
            since: 0,
            until: 10_000,
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].requests, 1_234);
    assert_eq!(summary[0].prompt_tokens, 123_400);
    let expected: i64 = (0..1_234).map(|i| 3_000_000_000 + i).sum();
    assert_eq!(summary[0].cost_micros, expected, "sums beyond i32");
    assert_eq!(
        store.spend_micros(None, Some("k1"), 0).await.unwrap(),
        expected
    );

    let events: Vec<NewShadowEvent> = (0..1_100)
        .map(|i| event(i, 7, "limit", "k1", ("a", "b")))
        .collect();
    store.record_shadow_events(&events).await.unwrap();
    assert_eq!(store.shadow_report(7).await.unwrap().total, 1_100);
}

both_backends!(
    shadow_report_aggregates,
    usage_summary_and_spend,
    large_batches
);
