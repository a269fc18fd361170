//! Azure OpenAI mock (`/openai/deployments/{deployment}/...?api-version=...`).

mod common;

use common::{client, read_sse};
use portcullis_testkit::{Fault, MockUpstream};
use serde_json::{json, Value};

const API_VERSION: &str = "2024-10-21";

fn chat(user: &str, stream: bool) -> Value {
    // No `model`: Azure takes it from the deployment.
    json!({"stream": stream, "messages": [{"role": "user", "content": user}]})
}

async fn post(mock: &MockUpstream, deployment: &str, op: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!(
            "{}/openai/deployments/{deployment}/{op}?api-version={API_VERSION}",
            mock.root_url()
        ))
        .header("api-key", "azure-key")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn chat_completion_model_is_the_deployment() {
    let mock = MockUpstream::start().await;
    let resp = post(&mock, "my-gpt4o", "chat/completions", &chat("hello", false)).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "my-gpt4o");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello");
    let rec = &mock.requests()[0];
    assert_eq!(
        rec.path,
        format!("/openai/deployments/my-gpt4o/chat/completions?api-version={API_VERSION}")
    );
    assert_eq!(rec.header("api-key"), Some("azure-key"));
    assert!(rec.json().get("model").is_none(), "recorded as sent");
}

#[tokio::test]
async fn stream_and_embeddings() {
    let mock = MockUpstream::start().await;
    let resp = post(&mock, "my-gpt4o", "chat/completions", &chat("a b", true)).await;
    let read = read_sse(resp).await;
    assert_eq!(read.events.last().unwrap().data, "[DONE]");
    assert_eq!(read.events[0].json()["model"], "my-gpt4o");

    let resp = post(
        &mock,
        "my-embed",
        "embeddings",
        &json!({"input": ["x", "y"]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["model"], "my-embed");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn missing_api_version_key_or_route_like_azure() {
    let mock = MockUpstream::start().await;
    let resp = client()
        .post(format!(
            "{}/openai/deployments/d/chat/completions",
            mock.root_url()
        ))
        .header("api-key", "k")
        .json(&chat("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {"code": "404", "message": "Resource not found"}})
    );

    let resp = client()
        .post(format!(
            "{}/openai/deployments/d/chat/completions?api-version={API_VERSION}",
            mock.root_url()
        ))
        .json(&chat("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "401");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Access denied"));

    // Entra ID bearer tokens are accepted too.
    let resp = client()
        .post(format!(
            "{}/openai/deployments/d/chat/completions?api-version={API_VERSION}",
            mock.root_url()
        ))
        .bearer_auth("eyJ-token")
        .json(&chat("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = post(&mock, "d", "completions-nope", &chat("hi", false)).await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn faults_by_deployment_and_queued_are_azure_shaped() {
    let mock = MockUpstream::start().await;
    let resp = post(
        &mock,
        "fault-status-429-retry-2",
        "chat/completions",
        &chat("hi", false),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "429");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("rate limit"));

    mock.push_fault(Fault::status(500));
    let resp = post(&mock, "d", "chat/completions", &chat("hi", false)).await;
    assert_eq!(resp.status(), 500);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "InternalServerError");

    let resp = post(
        &mock,
        "fault-stream-drop-1",
        "chat/completions",
        &chat("a b c", true),
    )
    .await;
    let read = read_sse(resp).await;
    assert!(read.error.is_some());
    assert_eq!(read.events.len(), 1);
}
