//! Gemini API mock (`/v1beta/models/{model}:generateContent` and `:streamGenerateContent`).

mod common;

use common::{client, parse_sse, read_raw};
use portcullis_testkit::{Fault, MockUpstream};
use serde_json::{json, Value};

fn body(user: &str) -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "first"}]},
            {"role": "model", "parts": [{"text": "ok"}]},
            {"role": "user", "parts": [{"text": user}]}
        ],
        "generationConfig": {"maxOutputTokens": 100}
    })
}

fn weather_body() -> Value {
    let mut b = body("What's the weather in Paris?");
    b["tools"] = json!([{"functionDeclarations": [{
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "OBJECT", "properties": {"location": {"type": "STRING"}}}
    }]}]);
    b
}

async fn post(mock: &MockUpstream, model: &str, method: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!(
            "{}/v1beta/models/{model}:{method}",
            mock.root_url()
        ))
        .header("x-goog-api-key", "AIza-test")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn generate_content_echoes_with_usage() {
    let mock = MockUpstream::start().await;
    let resp = post(
        &mock,
        "gemini-2.0-flash",
        "generateContent",
        &body("hello there"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let cand = &v["candidates"][0];
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(
        cand["content"]["parts"],
        json!([{"text": "echo: hello there"}])
    );
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(cand["index"], 0);
    let u = &v["usageMetadata"];
    let prompt = u["promptTokenCount"].as_u64().unwrap();
    assert!(prompt > 0);
    assert_eq!(u["candidatesTokenCount"], 3);
    assert_eq!(u["totalTokenCount"].as_u64().unwrap(), prompt + 3);
    assert_eq!(v["modelVersion"], "gemini-2.0-flash");
    assert_eq!(
        mock.requests()[0].path,
        "/v1beta/models/gemini-2.0-flash:generateContent"
    );

    // The key may also come as the `key` query parameter.
    let resp = client()
        .post(format!(
            "{}/v1beta/models/gemini-2.0-flash:generateContent?key=AIza-q",
            mock.root_url()
        ))
        .json(&body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn missing_key_and_bad_request_are_google_errors() {
    let mock = MockUpstream::start().await;
    let resp = client()
        .post(format!(
            "{}/v1beta/models/gemini-2.0-flash:generateContent",
            mock.root_url()
        ))
        .json(&body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 403);
    assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
    assert!(v["error"]["message"].as_str().unwrap().contains("API Key"));

    let resp = post(&mock, "gemini-2.0-flash", "generateContent", &json!({})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");

    let resp = post(&mock, "gemini-2.0-flash", "countTokensX", &body("hi")).await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn function_call_when_declared() {
    let mock = MockUpstream::start().await;
    let v: Value = post(
        &mock,
        "gemini-2.0-flash",
        "generateContent",
        &weather_body(),
    )
    .await
    .json()
    .await
    .unwrap();
    let cand = &v["candidates"][0];
    assert_eq!(
        cand["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"location": "Paris"}})
    );
    assert_eq!(cand["finishReason"], "STOP");
}

#[tokio::test]
async fn sse_stream_uses_crlf_and_ends_with_finish_and_usage() {
    let mock = MockUpstream::start().await;
    let resp = post(
        &mock,
        "gemini-2.0-flash",
        "streamGenerateContent?alt=sse",
        &body("one two"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let raw = read_raw(resp).await;
    let text = String::from_utf8(raw.bytes).unwrap();
    assert!(text.contains("\r\n\r\n"), "CRLF framing: {text:?}");
    assert!(!text.contains("[DONE]"));
    let events = parse_sse(&text);
    assert_eq!(events.len(), 3);
    let joined: String = events
        .iter()
        .map(|e| {
            e.json()["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(joined, "echo: one two");
    for e in &events[..2] {
        assert!(e.json()["candidates"][0].get("finishReason").is_none());
    }
    let last = events[2].json();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 3);
}

#[tokio::test]
async fn stream_without_alt_is_a_json_array() {
    let mock = MockUpstream::start().await;
    let resp = post(
        &mock,
        "gemini-2.0-flash",
        "streamGenerateContent",
        &body("a b"),
    )
    .await;
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = serde_json::from_slice(&read_raw(resp).await.bytes).unwrap();
    let chunks = v.as_array().unwrap();
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn safety_model_blocks_without_content() {
    let mock = MockUpstream::start().await;
    let v: Value = post(&mock, "fault-safety", "generateContent", &body("hi"))
        .await
        .json()
        .await
        .unwrap();
    let cand = &v["candidates"][0];
    assert_eq!(cand["finishReason"], "SAFETY");
    assert!(cand.get("content").is_none());
    assert!(cand["safetyRatings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["blocked"] == true));

    let raw = read_raw(
        post(
            &mock,
            "fault-safety",
            "streamGenerateContent?alt=sse",
            &body("hi"),
        )
        .await,
    )
    .await;
    let events = parse_sse(std::str::from_utf8(&raw.bytes).unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].json()["candidates"][0]["finishReason"], "SAFETY");
}

#[tokio::test]
async fn faults_use_google_error_shape() {
    let mock = MockUpstream::start().await;
    let resp = post(&mock, "fault-status-429", "generateContent", &body("hi")).await;
    assert_eq!(resp.status(), 429);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 429);
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");

    mock.push_fault(Fault::status(503));
    let resp = post(&mock, "gemini-2.0-flash", "generateContent", &body("hi")).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "UNAVAILABLE");

    // Mid-stream error: an error object as the last SSE event.
    let raw = read_raw(
        post(
            &mock,
            "fault-stream-error-1",
            "streamGenerateContent?alt=sse",
            &body("a b c"),
        )
        .await,
    )
    .await;
    let events = parse_sse(std::str::from_utf8(&raw.bytes).unwrap());
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].json()["error"]["status"], "UNAVAILABLE");

    // Drop after two chunks: connection error, no finishReason seen.
    let raw = read_raw(
        post(
            &mock,
            "fault-stream-drop-2",
            "streamGenerateContent?alt=sse",
            &body("a b c d"),
        )
        .await,
    )
    .await;
    assert!(raw.error.is_some());
    let events = parse_sse(std::str::from_utf8(&raw.bytes).unwrap());
    assert_eq!(events.len(), 2);
    assert!(!String::from_utf8_lossy(&raw.bytes).contains("finishReason"));
}
