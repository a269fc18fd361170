//! Guardrails on the data plane: a blocked prompt never reaches the upstream, redacted
//! values leave as placeholders and are restored in the answer, streamed answers are
//! scanned incrementally.

mod common;

use common::{expect_error, Harness};
use serde_json::{json, Value};

const POLICY: &str = r#"
version: 1
default_team: eng
teams:
  eng:
    models: ["gpt-test", "claude", "mock-*"]
    guardrails: strict
guardrails:
  strict:
    detectors:
      email: { action: redact, restore: true }
      aws_access_key: { action: block }
    custom:
      - { id: shout, regex: "ECHO", action: redact, direction: output }
      - { id: forbidden, words: [kraken], action: block, direction: output }
"#;

async fn guarded() -> Harness {
    let h = Harness::start().await;
    h.apply_policy(POLICY, false).await;
    h
}

fn chat(text: &str, stream: bool) -> String {
    json!({"model": "gpt-test", "stream": stream, "messages": [{"role": "user", "content": text}]})
        .to_string()
}

#[tokio::test]
async fn a_blocked_prompt_never_reaches_the_upstream() {
    let h = guarded().await;
    let r = h
        .post(
            "/v1/chat/completions",
            &chat("my key is AKIAIOSFODNN7EXAMPLE ok", false),
        )
        .await;
    let body = expect_error(r, 400, "guardrail_blocked").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("aws_access_key"), "{message}");
    assert!(
        !message.contains("AKIAIOSFODNN7EXAMPLE"),
        "the matched value is never echoed"
    );
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn redacted_values_leave_as_placeholders_and_are_restored() {
    let h = guarded().await;
    let r = h
        .post(
            "/v1/chat/completions",
            &chat("write to alice@example.com please", false),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let sent = h.mock.requests()[0].json();
    let upstream_text = sent["messages"][0]["content"].as_str().unwrap().to_string();
    assert!(upstream_text.contains("[EMAIL_1]"), "{upstream_text}");
    assert!(!upstream_text.contains("alice@example.com"));
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        answer.contains("alice@example.com"),
        "restored in the answer: {answer}"
    );
}

#[tokio::test]
async fn streamed_answers_are_redacted_and_blocked_incrementally() {
    let h = guarded().await;
    // The mock echoes "echo: <prompt>"; the output-only rule redacts ECHO (case-sensitive).
    let text = h
        .post("/v1/chat/completions", &chat("say ECHO back to me", true))
        .await
        .text()
        .await
        .unwrap();
    let mut content = String::new();
    for line in text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|l| *l != "[DONE]")
    {
        let chunk: Value = serde_json::from_str(line).unwrap();
        content.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
    }
    assert_eq!(content, "echo: say [SHOUT_1] back to me", "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));

    let text = h
        .post(
            "/v1/chat/completions",
            &chat("release the kraken now", true),
        )
        .await
        .text()
        .await
        .unwrap();
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("data: {\"error\""), "{text}");
    assert!(last.contains("forbidden"), "{last}");
    assert!(
        !text.contains("kraken"),
        "the blocked word never reaches the client: {text}"
    );
}
