//! Request logs: batch insert, filters, keyset pagination, report aggregates, retention
//! purge — on SQLite and PostgreSQL.

mod common;

use portcullis_store::{GuardrailEntry, NewRequestLog, RequestLogQuery, Store};

fn log(
    at: i64,
    id: &str,
    principal: Option<&str>,
    team: Option<&str>,
    status: u16,
) -> NewRequestLog {
    NewRequestLog {
        at,
        request_id: id.into(),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        key_id: principal.map(|p| format!("key_{p}")),
        principal: principal.map(String::from),
        team: team.map(String::from),
        model: Some("gpt-test".into()),
        provider: Some("up".into()),
        status,
        denied: matches!(status, 401 | 403 | 429),
        error: (status >= 400).then(|| "policy_denied".to_string()),
        reason: (status >= 400).then(|| "not allowed".to_string()),
        policy_rule: Some("teams.a.models".into()),
        guardrails: Vec::new(),
        cache: None,
        outcome: "complete".into(),
        latency_us: 1200,
        upstream_us: Some(1000),
        prompt_tokens: 10,
        completion_tokens: 5,
        cached_tokens: 0,
        cost_micros: 30,
        client_ip: Some("127.0.0.1".into()),
        request_body: None,
        response_body: None,
    }
}

fn ids(records: &[portcullis_store::RequestLogRecord]) -> Vec<String> {
    records.iter().map(|r| r.log.request_id.clone()).collect()
}

async fn insert_filter_and_page(store: &Store) {
    store
        .record_request_logs::<NewRequestLog>(&[])
        .await
        .unwrap();
    let mut rows = vec![
        log(100, "r1", Some("alice"), Some("a"), 200),
        log(200, "r2", Some("bob"), Some("b"), 403),
        log(300, "r3", Some("alice"), Some("a"), 429),
        log(400, "r4", None, None, 401),
    ];
    rows[0].guardrails = vec![GuardrailEntry {
        rule: "email".into(),
        action: "redact".into(),
    }];
    rows[0].request_body = Some("hi [EMAIL_1]".into());
    rows[0].cache = Some("hit".into());
    store.record_request_logs(&rows).await.unwrap();

    let all = |q: RequestLogQuery| async move {
        store
            .list_request_logs(&RequestLogQuery { limit: 100, ..q })
            .await
            .unwrap()
    };
    let every = all(RequestLogQuery::default()).await;
    assert_eq!(ids(&every), ["r4", "r3", "r2", "r1"], "newest first");
    assert_eq!(every[3].log, rows[0], "read back as written");
    assert_eq!(every[0].log, rows[3]);

    let q = |f: fn(&mut RequestLogQuery)| {
        let mut q = RequestLogQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(&all(q(|q| q.team = Some("a".into()))).await),
        ["r3", "r1"]
    );
    assert_eq!(
        ids(&all(q(|q| q.key_id = Some("key_bob".into()))).await),
        ["r2"]
    );
    assert_eq!(
        ids(&all(q(|q| q.principal = Some("alice".into()))).await),
        ["r3", "r1"]
    );
    assert_eq!(ids(&all(q(|q| q.status = Some(429))).await), ["r3"]);
    assert_eq!(
        ids(&all(q(|q| q.denied_only = true)).await),
        ["r4", "r3", "r2"]
    );
    assert_eq!(
        ids(&all(q(|q| q.model = Some("other".into()))).await),
        Vec::<String>::new()
    );
    let period = all(q(|q| {
        q.from = Some(200);
        q.to = Some(400);
    }))
    .await;
    assert_eq!(ids(&period), ["r3", "r2"], "from inclusive, to exclusive");

    let page1 = store
        .list_request_logs(&RequestLogQuery {
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&page1), ["r4", "r3", "r2"]);
    let page2 = store
        .list_request_logs(&RequestLogQuery {
            limit: 3,
            before_id: page1.last().map(|r| r.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&page2), ["r1"]);
    let none = RequestLogQuery::default();
    assert!(
        store.list_request_logs(&none).await.unwrap().is_empty(),
        "limit 0"
    );
}

async fn aggregates_and_purge(store: &Store) {
    let day = 86_400;
    let mut rows = vec![
        log(day - 1, "outside-before", Some("alice"), Some("a"), 200),
        log(day, "d1-a", Some("alice"), Some("a"), 200),
        log(day + 5, "d1-b", Some("alice"), Some("a"), 403),
        log(2 * day + 7, "d2-a", Some("bob"), Some("b"), 200),
        log(3 * day, "outside-after", Some("bob"), Some("b"), 403),
    ];
    rows[3].guardrails = vec![GuardrailEntry {
        rule: "email".into(),
        action: "redact".into(),
    }];
    rows[3].response_body = Some("secret-free body".into());
    store.record_request_logs(&rows).await.unwrap();

    let summary = store.access_summary(day, 3 * day).await.unwrap();
    assert_eq!(summary.len(), 2);
    assert_eq!(
        (summary[0].principal.as_str(), summary[0].team.as_str()),
        ("alice", "a")
    );
    assert_eq!((summary[0].requests, summary[0].denied), (2, 1));
    assert_eq!((summary[0].tokens, summary[0].cost_micros), (30, 60));
    assert_eq!(
        (summary[1].principal.as_str(), summary[1].requests),
        ("bob", 1)
    );

    let daily = store.daily_request_counts(day, 3 * day).await.unwrap();
    assert_eq!(daily, [(day, 2, 1), (2 * day, 1, 0)]);

    let (notable, more) = store.notable_request_logs(day, 3 * day, 10).await.unwrap();
    assert_eq!(
        ids(&notable),
        ["d1-b", "d2-a"],
        "denied or guardrail, oldest first"
    );
    assert!(!more);
    assert!(
        notable[1].log.response_body.is_none(),
        "reports never carry bodies"
    );
    let (one, more) = store.notable_request_logs(day, 3 * day, 1).await.unwrap();
    assert_eq!((one.len(), more), (1, true));

    assert_eq!(store.purge_request_logs(day).await.unwrap(), 1);
    assert_eq!(store.purge_request_logs(day).await.unwrap(), 0);
    let left = store
        .list_request_logs(&RequestLogQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 4);
}

both_backends!(insert_filter_and_page, aggregates_and_purge);
