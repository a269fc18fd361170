//! Guardrail webhook and request limits on the data plane, against a real HTTP webhook on
//! an ephemeral port: allow, block, redact, timeout (fail-closed), fail-open; limits block
//! naming the rule; every action is counted in /metrics; blocked prompts never reach the
//! upstream.

mod common;

use axum::routing::post;
use axum::{Json, Router};
use common::{expect_error, Harness};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A webhook that records what it was sent and answers by the first text's first word:
/// `allow`, `block`, `redact`, `slow` (sleeps 2 s), `garbage`.
struct Webhook {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
}

async fn webhook() -> Webhook {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/check",
        post(move |Json(body): Json<Value>| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(body.clone());
                let texts: Vec<String> = body["texts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect();
                let all = texts.join(" ");
                if all.contains("slow") {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    return Json(json!({"action": "allow"}));
                }
                if all.contains("garbage") {
                    return Json(json!({"verdict": "??"}));
                }
                if all.contains("block") {
                    return Json(json!({"action": "block", "rule": "toxicity"}));
                }
                if all.contains("redact") {
                    let texts: Vec<String> = texts
                        .iter()
                        .map(|t| t.replace("Gandalf", "[NAME]"))
                        .collect();
                    return Json(json!({"action": "redact", "texts": texts}));
                }
                Json(json!({"action": "allow"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Webhook { addr, seen }
}

async fn guarded(profile: &str) -> Harness {
    let policy = format!(
        "version: 1\ndefault_team: eng\nteams:\n  eng:\n    models: [\"gpt-test\", \"claude\", \"mock-*\"]\n    guardrails: g\nguardrails:\n  g:\n{profile}"
    );
    let h = Harness::start().await;
    h.apply_policy(&policy, false).await;
    h
}

fn hook_profile(addr: SocketAddr, extra: &str) -> String {
    format!(
        "    detectors: {{ email: {{ action: redact }} }}\n    webhook: {{ url: \"http://{addr}/check\", timeout_ms: 300, direction: both{extra} }}\n"
    )
}

fn chat(text: &str, stream: bool) -> String {
    json!({"model": "gpt-test", "stream": stream, "messages": [{"role": "user", "content": text}]})
        .to_string()
}

/// The guardrail counter for `rule`/`action` once it reaches `want` (metrics are recorded
/// when the response body ends, a moment after the client has read it), or as it stands
/// after two seconds.
async fn counted(h: &Harness, rule: &str, action: &str, want: u64) -> u64 {
    let mut n = 0;
    for _ in 0..100 {
        let text = h
            .client
            .get(h.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        n = counter(&text, rule, action);
        if n >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    n
}

fn counter(metrics: &str, rule: &str, action: &str) -> u64 {
    let prefix = "portcullis_guardrail_actions_total{";
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter(|l| {
            l.contains(&format!("rule=\"{rule}\"")) && l.contains(&format!("action=\"{action}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn webhook_allows_and_sees_the_already_redacted_prompt_and_the_answer() {
    let hook = webhook().await;
    let h = guarded(&hook_profile(hook.addr, "")).await;
    let r = h
        .post(
            "/v1/chat/completions",
            &chat("allow this, mail bob@example.com", false),
        )
        .await;
    assert_eq!(r.status(), 200);
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "prompt and answer: {seen:?}");
    assert_eq!(seen[0]["version"], 1);
    assert_eq!(seen[0]["direction"], "input");
    assert_eq!(seen[0]["model"], "mock-gpt", "the upstream model name");
    assert_eq!(seen[0]["texts"], json!(["allow this, mail [EMAIL_1]"]));
    assert_eq!(seen[1]["direction"], "output");
    assert_eq!(h.mock.requests().len(), 1);
}

#[tokio::test]
async fn webhook_block_names_its_rule_and_the_prompt_never_leaves() {
    let hook = webhook().await;
    let h = guarded(&hook_profile(hook.addr, "")).await;
    let r = h
        .post("/v1/chat/completions", &chat("please block me", false))
        .await;
    let body = expect_error(r, 400, "guardrail_blocked").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("webhook:toxicity"), "{message}");
    assert!(h.mock.requests().is_empty());
    // The Anthropic client gets its own error shape.
    let r = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", &h.key)
        .header("content-type", "application/json")
        .body(
            json!({"model": "gpt-test", "max_tokens": 10, "messages": [{"role": "user", "content": "block"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("webhook:toxicity"));
    assert!(h.mock.requests().is_empty());
    assert_eq!(counted(&h, "webhook:toxicity", "block", 2).await, 2);
}

#[tokio::test]
async fn webhook_redacts_prompt_texts() {
    let hook = webhook().await;
    let h = guarded(&hook_profile(hook.addr, "")).await;
    let r = h
        .post(
            "/v1/chat/completions",
            &chat("redact Gandalf please", false),
        )
        .await;
    assert_eq!(r.status(), 200);
    let sent = h.mock.requests()[0].json();
    assert_eq!(sent["messages"][0]["content"], "redact [NAME] please");
    assert_eq!(counted(&h, "webhook", "redact", 1).await, 1);
}

#[tokio::test]
async fn a_slow_webhook_fails_closed_by_default() {
    let hook = webhook().await;
    let h = guarded(&hook_profile(hook.addr, "")).await;
    let started = std::time::Instant::now();
    let r = h
        .post("/v1/chat/completions", &chat("slow one", false))
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the timeout is enforced"
    );
    let body = expect_error(r, 503, "guardrail_unavailable").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timeout"),
        "{body}"
    );
    assert!(h.mock.requests().is_empty());
    assert_eq!(counted(&h, "webhook_unavailable", "block", 1).await, 1);
}

#[tokio::test]
async fn an_unreachable_or_malformed_webhook_fails_closed() {
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let h = guarded(&hook_profile(closed, "")).await;
    let r = h.post("/v1/chat/completions", &chat("hello", false)).await;
    let body = expect_error(r, 503, "guardrail_unavailable").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unreachable"));

    let hook = webhook().await;
    let h = guarded(&hook_profile(hook.addr, "")).await;
    let r = h
        .post("/v1/chat/completions", &chat("garbage", false))
        .await;
    let body = expect_error(r, 503, "guardrail_unavailable").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bad_answer"));
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn fail_open_lets_the_request_through_and_counts_it() {
    let hook = webhook().await;
    let h = guarded(&hook_profile(hook.addr, ", on_failure: open")).await;
    let r = h
        .post("/v1/chat/completions", &chat("slow one", false))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h.mock.requests().len(), 1);
    assert!(counted(&h, "webhook_unavailable", "flag", 1).await >= 1);
}

#[tokio::test]
async fn streamed_answers_send_only_the_prompt_to_the_webhook() {
    let hook = webhook().await;
    let h = guarded(&hook_profile(hook.addr, "")).await;
    let r = h
        .post("/v1/chat/completions", &chat("allow streaming", true))
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["direction"], "input");
}

#[tokio::test]
async fn request_limits_block_naming_the_rule() {
    let h = guarded("    max_prompt_tokens: 20\n    max_images: 1\n").await;
    let long = "word ".repeat(50);
    let r = h.post("/v1/chat/completions", &chat(&long, false)).await;
    let body = expect_error(r, 400, "guardrail_blocked").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("'max_prompt_tokens'"), "{message}");
    assert!(
        !message.contains("word word"),
        "never echoes the prompt: {message}"
    );

    let image = |url: &str| json!({"type": "image_url", "image_url": {"url": url}});
    let two = json!({"model": "gpt-test", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "compare"}, image("https://a.example/1.png"), image("https://a.example/2.png")
    ]}]});
    let r = h.post("/v1/chat/completions", &two.to_string()).await;
    let body = expect_error(r, 400, "guardrail_blocked").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'max_images'"));
    assert!(h.mock.requests().is_empty());

    let r = h
        .post("/v1/chat/completions", &chat("short and fine", false))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(counted(&h, "max_prompt_tokens", "block", 1).await, 1);
    assert_eq!(counted(&h, "max_images", "block", 1).await, 1);
}
