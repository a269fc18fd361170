//! OpenAI endpoints over real sockets.

mod common;

use base64::Engine as _;
use common::{chat_body, client, read_sse};
use portcullis_testkit::MockUpstream;
use serde_json::{json, Value};

#[tokio::test]
async fn chat_completion_echoes_last_user_message() {
    let mock = MockUpstream::start().await;
    let resp = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&chat_body("mock-gpt", "hello world", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "mock-gpt");
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 1);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[0]["message"]["role"], "assistant");
    assert_eq!(choices[0]["message"]["content"], "echo: hello world");
    assert!(choices[0]["message"].get("tool_calls").is_none());
    assert_eq!(choices[0]["finish_reason"], "stop");
    // "You are terse." (14) + "hello world" (11) = 25 chars -> 7 tokens; reply has 3 words.
    assert_eq!(v["usage"]["prompt_tokens"], 7);
    assert_eq!(v["usage"]["completion_tokens"], 3);
    assert_eq!(v["usage"]["total_tokens"], 10);
}

#[tokio::test]
async fn chat_content_parts_and_ids_increase() {
    let mock = MockUpstream::start().await;
    let body = json!({
        "model": "anything-goes",
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [
                {"type": "text", "text": "look at"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "this"}
            ]}
        ]
    });
    let url = format!("{}/chat/completions", mock.base_url());
    let a: Value = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["model"], "anything-goes");
    assert_eq!(a["choices"][0]["message"]["content"], "echo: look at this");
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn chat_validation_errors_are_openai_shaped() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/chat/completions", mock.base_url());
    for (body, param) in [
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (json!({"model": "mock-gpt"}), "messages"),
    ] {
        let resp = client().post(&url).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], param);
        assert!(v["error"]["code"].is_null());
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let resp = client().post(&url).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn chat_stream_sends_role_words_finish_and_done() {
    let mock = MockUpstream::start().await;
    let resp = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&chat_body("mock-gpt", "one two three", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let read = read_sse(resp).await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert!(read.raw.ends_with("data: [DONE]\n\n"));
    let ev = &read.events;
    // role + 4 words ("echo: ", "one ", "two ", "three") + finish + [DONE]
    assert_eq!(ev.len(), 7, "{ev:#?}");
    assert_eq!(ev.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = ev[..ev.len() - 1].iter().map(|e| e.json()).collect();
    let id = chunks[0]["id"].clone();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id);
        assert_eq!(c["model"], "mock-gpt");
        assert!(c.get("usage").is_none(), "no usage without include_usage");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    assert!(chunks[0]["choices"][0]["finish_reason"].is_null());
    let words: Vec<&str> = chunks[1..5]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(words, ["echo: ", "one ", "two ", "three"]);
    let last = &chunks[5]["choices"][0];
    assert_eq!(last["delta"], json!({}));
    assert_eq!(last["finish_reason"], "stop");
}

#[tokio::test]
async fn chat_stream_include_usage_adds_usage_chunk() {
    let mock = MockUpstream::start().await;
    let mut body = chat_body("mock-gpt", "hello world", true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let read = read_sse(resp).await;
    let ev = &read.events;
    assert_eq!(ev.last().unwrap().data, "[DONE]");
    let usage_chunk = ev[ev.len() - 2].json();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 7);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 3);
    assert_eq!(usage_chunk["usage"]["total_tokens"], 10);
    let finish = ev[ev.len() - 3].json();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    // Every other chunk carries `usage: null`.
    for e in &ev[..ev.len() - 2] {
        let v = e.json();
        assert!(v.get("usage").is_some_and(Value::is_null), "{v}");
    }
}

#[tokio::test]
async fn chat_stream_mistral_model_sends_usage_on_the_finish_chunk() {
    // Mistral rejects `stream_options` and always puts usage on its last chunk.
    let mock = MockUpstream::start().await;
    let resp = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&chat_body("mistral-small-latest", "hello world", true))
        .send()
        .await
        .unwrap();
    let read = read_sse(resp).await;
    let ev = &read.events;
    assert_eq!(ev.last().unwrap().data, "[DONE]");
    let finish = ev[ev.len() - 2].json();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"]["prompt_tokens"], 7);
    assert_eq!(finish["usage"]["completion_tokens"], 3);
    assert_eq!(finish["usage"]["total_tokens"], 10);
    for e in &ev[..ev.len() - 2] {
        assert!(e.json().get("usage").is_none(), "{}", e.data);
    }
}

fn weather_request(stream: bool) -> Value {
    json!({
        "model": "mock-gpt",
        "stream": stream,
        "messages": [{"role": "user", "content": "What's the weather like?"}],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "other"}}
        ]
    })
}

#[tokio::test]
async fn tool_call_non_stream() {
    let mock = MockUpstream::start().await;
    let v: Value = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&weather_request(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));

    // Without tools, the same message is just echoed.
    let v: Value = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&chat_body("mock-gpt", "weather?", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: weather?");
}

#[tokio::test]
async fn tool_call_stream_reassembles() {
    let mock = MockUpstream::start().await;
    let resp = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&weather_request(true))
        .send()
        .await
        .unwrap();
    let read = read_sse(resp).await;
    assert_eq!(read.events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = read.events[..read.events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    let call = &first["tool_calls"][0];
    assert_eq!(call["index"], 0);
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "");

    let mut arguments = String::new();
    let mut fragments = 0;
    for c in &chunks[1..] {
        if let Some(calls) = c["choices"][0]["delta"]["tool_calls"].as_array() {
            assert_eq!(calls[0]["index"], 0);
            assert!(calls[0].get("id").is_none());
            arguments.push_str(calls[0]["function"]["arguments"].as_str().unwrap());
            fragments += 1;
        }
    }
    assert!((2..=3).contains(&fragments), "{fragments} fragments");
    let args: Value = serde_json::from_str(&arguments).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
    let last = &chunks.last().unwrap()["choices"][0];
    assert_eq!(last["finish_reason"], "tool_calls");
    assert_eq!(last["delta"], json!({}));
}

#[tokio::test]
async fn embeddings_float_and_base64_agree() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/embeddings", mock.base_url());
    let body = json!({"model": "mock-embed", "input": ["hello", "world", "hello"]});
    let v: Value = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "mock-embed");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    let vecs: Vec<Vec<f32>> = data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(d["object"], "embedding");
            assert_eq!(d["index"], i);
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    assert_eq!(vecs[0].len(), 8);
    assert_eq!(vecs[0], vecs[2], "deterministic");
    assert_ne!(vecs[0], vecs[1]);
    let norm: f32 = vecs[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "unit norm, got {norm}");
    // 5 chars -> 2 tokens each.
    assert_eq!(v["usage"]["prompt_tokens"], 6);
    assert_eq!(v["usage"]["total_tokens"], 6);
    assert_eq!(vecs[0], portcullis_testkit::openai::embed(b"hello", 8));

    let body = json!({"model": "mock-embed", "input": "hello", "encoding_format": "base64"});
    let v: Value = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b64 = v["data"][0]["embedding"].as_str().expect("base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(bytes.len(), 8 * 4);
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    for (a, b) in decoded.iter().zip(&vecs[0]) {
        assert!((a - b).abs() < 1e-6, "{decoded:?} vs {:?}", vecs[0]);
    }
}

#[tokio::test]
async fn embeddings_token_inputs_and_errors() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/embeddings", mock.base_url());
    let v: Value = client()
        .post(&url)
        .json(&json!({"model": "m", "input": [[1, 2, 3], [4, 5]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["usage"]["prompt_tokens"], 5);
    let v: Value = client()
        .post(&url)
        .json(&json!({"model": "m", "input": [1, 2, 3]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["usage"]["prompt_tokens"], 3);

    for body in [
        json!({"model": "m"}),
        json!({"input": "x"}),
        json!({"model": "m", "input": [true]}),
    ] {
        let resp = client().post(&url).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn models_list_and_not_found() {
    let mock = MockUpstream::start().await;
    let resp = client()
        .get(format!("{}/models", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    assert!(data.iter().any(|m| m["id"] == "mock-gpt"));
    for m in data {
        assert_eq!(m["object"], "model");
        assert_eq!(m["owned_by"], "portcullis-mock");
        assert!(m["created"].as_u64().is_some());
    }

    let resp = client()
        .post(format!("{}/nope", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["message"], "Invalid URL (POST /v1/nope)");
    assert!(v["error"]["param"].is_null());
    assert!(v["error"]["code"].is_null());
}
