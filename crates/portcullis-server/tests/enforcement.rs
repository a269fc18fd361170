//! The security policy on the data plane: decisions, rate limits with headers, budgets,
//! shadow mode, usage records — against an in-process gateway and the mock upstream.

mod common;

use common::{expect_error, Harness};
use std::time::Duration;

const BASE: &str = r#"
version: 1
default_team: eng
teams:
  eng:
    models: ["gpt-test", "mock-*"]
    rate_limits: [eng-rpm]
rate_limits:
  - { id: eng-rpm, scope: team, requests: 3, interval: 1m }
"#;

#[tokio::test]
async fn rate_limits_answer_429_with_headers_and_retry_after() {
    let h = Harness::start().await;
    h.apply_policy(BASE, false).await;
    for expected_remaining in [2, 1, 0] {
        let r = h.chat("gpt-test", false).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit-requests"], "3");
        assert_eq!(
            r.headers()["x-ratelimit-remaining-requests"],
            expected_remaining.to_string().as_str()
        );
        assert!(r.headers().contains_key("x-ratelimit-reset-requests"));
    }
    let r = h.chat("gpt-test", false).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "0");
    let body = expect_error(r, 429, "rate_limit_exceeded").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("eng-rpm"));
    assert_eq!(
        h.mock.requests().len(),
        3,
        "the refused request never reached the upstream"
    );
}

#[tokio::test]
async fn parallel_requests_never_exceed_a_limit() {
    let h = std::sync::Arc::new(Harness::start().await);
    h.apply_policy(&BASE.replace("requests: 3", "requests: 7"), false)
        .await;
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.chat("gpt-test", false).await.status().as_u16() })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 7);
    assert_eq!(h.mock.requests().len(), 7);
}

#[tokio::test]
async fn policy_denials_name_the_rule_and_keep_the_upstream_untouched() {
    let h = Harness::start().await;
    h.apply_policy(
        &BASE.replace(r#"["gpt-test", "mock-*"]"#, r#"["mock-*"]"#),
        false,
    )
    .await;
    let body = expect_error(h.chat("gpt-test", false).await, 403, "policy_denied").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("teams.eng.models"),
        "{body}"
    );
    assert!(h.mock.requests().is_empty());
    assert_eq!(h.chat("mock-echo", false).await.status(), 200);
}

#[tokio::test]
async fn shadow_policy_is_evaluated_but_not_enforced() {
    let h = Harness::start().await;
    h.apply_policy(BASE, false).await;
    let candidate = BASE.replace(r#"["gpt-test", "mock-*"]"#, r#"["mock-*"]"#);
    let shadow_version = h.apply_policy(&candidate, true).await;
    assert_eq!(
        h.chat("gpt-test", false).await.status(),
        200,
        "the active policy still decides"
    );
    assert_eq!(h.chat("mock-echo", false).await.status(), 200);
    assert_eq!(
        h.gateway
            .state
            .shadow_differences
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let report = wait_for(|| async {
        let r = h.store.shadow_report(shadow_version).await.unwrap();
        (r.total > 0).then_some(r)
    })
    .await;
    assert_eq!(report.total, 1);
    assert_eq!(report.by_kind[0].0, "newly_denied");
    assert!(report.samples[0].shadow_rule.contains("teams.eng.models"));
}

#[tokio::test]
async fn hard_budgets_block_and_usage_is_recorded() {
    let policy = r#"
version: 1
default_team: eng
teams:
  eng:
    models: ["gpt-test"]
    budgets: [tiny]
budgets:
  - { id: tiny, scope: team, period: day, usd: 0.003, mode: hard }
"#;
    let h = Harness::start_with(|c| {
        let m = c.models.iter_mut().find(|m| m.name == "gpt-test").unwrap();
        // 100 $/Mtok = 100 micro-dollars a token: each call costs ~1200 (12 tokens) and is
        // estimated at ~800 (prompt + max_tokens 1), so the third call would pass 3000.
        m.price = Some(portcullis_config::Price {
            input_per_mtok: 100.0,
            output_per_mtok: 100.0,
            cached_input_per_mtok: None,
        });
    })
    .await;
    h.apply_policy(policy, false).await;
    let mut statuses = Vec::new();
    let body = r#"{"model":"gpt-test","max_tokens":1,"messages":[{"role":"user","content":"hello there gateway friend"}]}"#;
    for _ in 0..6 {
        let r = h.post("/v1/chat/completions", body).await;
        statuses.push(r.status().as_u16());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        statuses.contains(&429),
        "the budget must run out: {statuses:?}"
    );
    let refused = statuses.iter().position(|s| *s == 429).unwrap();
    assert!(
        statuses[refused..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    expect_error(
        h.post("/v1/chat/completions", body).await,
        429,
        "budget_exceeded",
    )
    .await;

    let rows = wait_for(|| async {
        let q = portcullis_store::UsageQuery {
            team: None,
            key_id: None,
            since: 0,
            until: i64::MAX,
        };
        let rows = h.store.usage_summary(&q).await.unwrap();
        (rows.iter().map(|r| r.requests).sum::<i64>() as usize >= refused).then_some(rows)
    })
    .await;
    let row = rows.iter().find(|r| r.model == "gpt-test").unwrap();
    assert!(row.prompt_tokens > 0 && row.cost_micros > 0, "{row:?}");
    assert_eq!(
        row.requests as usize, refused,
        "refused requests cost nothing: {rows:?}"
    );
    let per_request = row.cost_micros / row.requests;
    assert!(
        row.cost_micros <= 3000 + per_request,
        "spend may pass the budget by at most one request: {row:?}"
    );
}

async fn wait_for<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..100 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached within 5 s");
}
