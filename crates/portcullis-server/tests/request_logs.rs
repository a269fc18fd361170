//! Request logs over real HTTP: every data-plane request becomes one record in the store
//! (who, model, status, tokens, guardrail and policy decisions), readable on
//! `GET /api/v1/logs` with filters, pagination and RBAC scoping; bodies only for teams that
//! log them, redacted; nothing accepted is lost at shutdown.

mod common;

use common::{add_identity_key, Harness};
use portcullis_store::{RequestLogQuery, Store};
use serde_json::{json, Value};
use std::time::Duration;

const POLICY: &str = r#"
version: 1
roles:
  team-reader: { permissions: [{ permission: "logs:read", resources: [own, team] }] }
  self-reader: { permissions: [{ permission: "logs:read", resources: [own] }] }
teams:
  team-a:
    models: [gpt-test]
    guardrails: pii
    log_bodies: true
  team-b:
    models: [gpt-test]
guardrails:
  pii:
    detectors:
      email: { action: redact, restore: true }
"#;

async fn with_policy(h: &Harness) {
    h.apply_policy(POLICY, false).await;
}

/// Waits until the store holds `n` request logs (the writer flushes every 500 ms).
async fn wait_for_logs(store: &Store, n: usize) {
    for _ in 0..100 {
        let q = RequestLogQuery {
            limit: 1000,
            ..Default::default()
        };
        if store.list_request_logs(&q).await.unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} request logs were not written within 5 s");
}

async fn chat(h: &Harness, key: &str, model: &str, text: &str) -> reqwest::Response {
    h.client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap()
}

async fn logs(h: &Harness, key: &str, query: &str) -> (u16, Value) {
    let r = h
        .admin(key, "GET", &format!("/api/v1/logs{query}"), None)
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn request_ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_string())
        .collect()
}

fn id_of(r: &reqwest::Response) -> String {
    r.headers()["x-request-id"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn every_request_is_logged_filtered_and_scoped() {
    let h = Harness::start().await;
    with_policy(&h).await;
    let store = &h.store;
    let (a_id, a) = add_identity_key(store, Some("team-a"), "developer", Some("alice")).await;
    let (_, b) = add_identity_key(store, Some("team-b"), "developer", Some("bob")).await;
    let (_, admin) = add_identity_key(store, None, "admin", None).await;
    let (_, team_reader) =
        add_identity_key(store, Some("team-a"), "team-reader", Some("carol")).await;
    let (_, self_reader) =
        add_identity_key(store, Some("team-a"), "self-reader", Some("alice")).await;
    let (_, viewer) = add_identity_key(store, Some("team-a"), "viewer", None).await;
    h.gateway.state.refresh_keys().await.unwrap();

    let ok_a = chat(&h, &a, "gpt-test", "write to jane.doe@example.com please").await;
    assert_eq!(ok_a.status(), 200);
    let answer = ok_a.headers()["x-request-id"].to_str().unwrap().to_string();
    let body = ok_a.text().await.unwrap();
    assert!(
        body.contains("jane.doe@example.com"),
        "restored for the client: {body}"
    );
    let denied = chat(&h, &a, "fault-status-503", "hi").await;
    assert_eq!(denied.status(), 403);
    let denied = id_of(&denied);
    let unauth = chat(&h, "pk-not-a-key", "gpt-test", "hi").await;
    assert_eq!(unauth.status(), 401);
    let unauth = id_of(&unauth);
    let ok_b = chat(&h, &b, "gpt-test", "mail bob@example.com").await;
    assert_eq!(ok_b.status(), 200);
    let ok_b = id_of(&ok_b);
    let health = h.client.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    wait_for_logs(store, 4).await;

    let (status, all) = logs(&h, &admin, "").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        request_ids(&all),
        [ok_b.clone(), unauth.clone(), denied.clone(), answer.clone()],
        "newest first; health probes are not logged"
    );
    let rec = |id: &str| {
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["request_id"] == id)
            .unwrap()
            .clone()
    };
    let r = rec(&answer);
    assert_eq!(r["key_id"], a_id.as_str());
    assert_eq!(r["principal"], "alice");
    assert_eq!(r["team"], "team-a");
    assert_eq!(r["model"], "gpt-test");
    assert_eq!(r["provider"], "up");
    assert_eq!(r["status"], 200);
    assert_eq!(r["denied"], false);
    assert_eq!(r["outcome"], "complete");
    assert_eq!(r["client_ip"], "127.0.0.1");
    assert!(r["prompt_tokens"].as_i64().unwrap() > 0, "{r}");
    assert!(r["completion_tokens"].as_i64().unwrap() > 0, "{r}");
    assert!(r["latency_us"].as_i64().unwrap() >= r["upstream_us"].as_i64().unwrap());
    assert_eq!(
        r["guardrails"][0],
        json!({"rule": "email", "action": "redact"})
    );
    assert!(r["cache"].is_null(), "no cache consulted");
    let (req_body, resp_body) = (
        r["request_body"].as_str().unwrap(),
        r["response_body"].as_str().unwrap(),
    );
    assert!(req_body.contains("[EMAIL_1]"), "{req_body}");
    assert!(resp_body.contains("[EMAIL_1]"), "{resp_body}");
    for stored in [req_body, resp_body] {
        assert!(!stored.contains("jane.doe@example.com"), "{stored}");
    }

    let r = rec(&denied);
    assert_eq!(
        (r["status"].as_u64(), r["denied"].as_bool()),
        (Some(403), Some(true))
    );
    assert_eq!(r["error"], "policy_denied");
    assert!(r["policy_rule"].as_str().unwrap().contains("team-a"), "{r}");
    assert!(
        r["reason"].as_str().unwrap().contains("denied by policy"),
        "{r}"
    );
    let r = rec(&unauth);
    assert!(r["key_id"].is_null() && r["team"].is_null(), "{r}");
    assert_eq!(
        (r["error"].as_str(), r["denied"].as_bool()),
        (Some("invalid_api_key"), Some(true))
    );
    let r = rec(&ok_b);
    assert!(
        r["request_body"].is_null() && r["response_body"].is_null(),
        "team-b logs no bodies: {r}"
    );

    // Filters.
    let ids = |q: &'static str| {
        let admin = admin.clone();
        let h = &h;
        async move { request_ids(&logs(h, &admin, q).await.1) }
    };
    assert_eq!(ids("?denied=true").await, [unauth.clone(), denied.clone()]);
    assert_eq!(ids("?team=team-b").await, [ok_b.as_str()]);
    assert_eq!(ids("?status=200").await, [ok_b.clone(), answer.clone()]);
    assert_eq!(ids("?model=fault-status-503").await, [denied.as_str()]);
    assert_eq!(
        request_ids(&logs(&h, &admin, &format!("?key={a_id}")).await.1),
        [denied.clone(), answer.clone()]
    );
    assert!(
        ids("?from=1d&to=1").await.is_empty(),
        "to before every record"
    );
    let (status, bad) = logs(&h, &admin, "?from=yesterday").await;
    assert_eq!(status, 400, "{bad}");

    // Keyset pagination.
    let (_, page1) = logs(&h, &admin, "?limit=3").await;
    assert_eq!(request_ids(&page1).len(), 3);
    let next = page1["next_before_id"].as_i64().expect("a next cursor");
    let (_, page2) = logs(&h, &admin, &format!("?limit=3&before_id={next}")).await;
    assert_eq!(request_ids(&page2), [answer.as_str()]);
    assert!(page2["next_before_id"].is_null());

    // RBAC scoping: team, own, none.
    let (status, v) = logs(&h, &team_reader, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        request_ids(&v),
        [denied.clone(), answer.clone()],
        "own team only"
    );
    let (status, _) = logs(&h, &team_reader, "?team=team-b").await;
    assert_eq!(status, 403, "another team's logs are refused outright");
    let (status, v) = logs(&h, &self_reader, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        request_ids(&v),
        [denied.clone(), answer.clone()],
        "alice's own"
    );
    let (status, _) = logs(&h, &self_reader, "?principal=bob").await;
    assert_eq!(status, 400);
    let (status, v) = logs(&h, &viewer, "").await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "permission_denied");
}

#[tokio::test]
async fn nothing_accepted_is_lost_at_shutdown() {
    let h = Harness::start().await;
    let n = 40;
    for _ in 0..n {
        assert_eq!(h.chat("gpt-test", false).await.status(), 200);
    }
    let url = h.store_url();
    h.gateway.shutdown(Duration::from_secs(5));
    h.gateway.wait().await.unwrap();
    let store = Store::connect(&url).await.unwrap();
    let q = RequestLogQuery {
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(store.list_request_logs(&q).await.unwrap().len(), n);
}

#[tokio::test]
async fn logs_can_be_turned_off() {
    let h = Harness::start_with(|c| c.logs.enabled = false).await;
    assert_eq!(h.chat("gpt-test", false).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let q = RequestLogQuery {
        limit: 10,
        ..Default::default()
    };
    assert!(h.store.list_request_logs(&q).await.unwrap().is_empty());
}

#[tokio::test]
async fn streamed_answers_are_logged_with_redacted_bodies() {
    let h = Harness::start().await;
    with_policy(&h).await;
    let (_, a) = add_identity_key(&h.store, Some("team-a"), "developer", Some("alice")).await;
    h.gateway.state.refresh_keys().await.unwrap();
    let r = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&a)
        .json(&json!({
            "model": "gpt-test",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "write to jane.doe@example.com please"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = id_of(&r);
    let sse = r.text().await.unwrap();
    assert!(sse.contains("data: [DONE]"), "{sse}");
    assert!(
        sse.contains("jane.doe@example.com"),
        "restored for the client: {sse}"
    );
    wait_for_logs(&h.store, 1).await;
    let q = RequestLogQuery {
        limit: 10,
        ..Default::default()
    };
    let logs = h.store.list_request_logs(&q).await.unwrap();
    let log = &logs[0].log;
    assert_eq!(log.request_id, id);
    assert_eq!(log.outcome, "complete");
    assert!(log.completion_tokens > 0, "{log:?}");
    let body = log.response_body.as_deref().expect("team-a logs bodies");
    assert!(
        !body.contains("data: "),
        "the stream's text, reassembled: {body}"
    );
    assert!(body.contains("[EMAIL_1]"), "{body}");
    assert!(!body.contains("jane.doe@example.com"), "{body}");
    let request = log.request_body.as_deref().unwrap();
    assert!(
        request.contains("[EMAIL_1]") && !request.contains("jane.doe@"),
        "{request}"
    );
}
