//! Provider kinds and cross-format translation against the mock's native API doubles.

mod common;

use common::{model, provider, Harness, PROVIDER_KEY};
use portcullis_config::ProviderKind;
use serde_json::{json, Value};

/// A harness whose config routes models to every provider kind the mock serves.
async fn multi() -> Harness {
    Harness::start_with_mock(|c, mock| {
        c.providers.push(provider(
            "anthropic",
            ProviderKind::Anthropic,
            Some(mock.root_url()),
        ));
        c.providers.push(provider(
            "azure",
            ProviderKind::AzureOpenai,
            Some(mock.root_url()),
        ));
        c.providers.push(provider(
            "mistral",
            ProviderKind::Mistral,
            Some(mock.base_url()),
        ));
        c.models
            .push(model("claude", "anthropic", "claude-sonnet-4-5"));
        c.models
            .push(model("claude-fail", "anthropic", "fault-stream-error-2"));
        c.models.push(model("azure-gpt", "azure", "my-deployment"));
        c.models
            .push(model("mistral-small", "mistral", "mistral-small-latest"));
        c.providers.push(provider(
            "gemini",
            ProviderKind::Gemini,
            Some(mock.root_url()),
        ));
        let mut bedrock = provider("bedrock", ProviderKind::Bedrock, Some(mock.root_url()));
        bedrock.api_key = None;
        bedrock.region = Some("us-east-1".into());
        bedrock.access_key_id = Some(portcullis_config::Secret::new(AWS_KEY_ID));
        bedrock.secret_access_key = Some(portcullis_config::Secret::new(AWS_SECRET));
        c.providers.push(bedrock);
        c.models
            .push(model("gemini-flash", "gemini", "gemini-2.5-flash"));
        c.models
            .push(model("gemini-safety", "gemini", "fault-safety"));
        c.models.push(model(
            "nova",
            "bedrock",
            "anthropic.claude-3-haiku-20240307-v1:0",
        ));
    })
    .await
}

async fn post_json(
    h: &Harness,
    path: &str,
    body: Value,
    anthropic_style: bool,
) -> reqwest::Response {
    let mut rb = h.client.post(h.url(path)).json(&body);
    rb = if anthropic_style {
        rb.header("x-api-key", &h.key)
            .header("anthropic-version", "2023-06-01")
    } else {
        rb.bearer_auth(&h.key)
    };
    rb.send().await.unwrap()
}

const AWS_KEY_ID: &str = "AKIDPORTCULLISTEST";
const AWS_SECRET: &str = "portcullis/test/secret+key";

fn weather_tool_openai() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}])
}

#[tokio::test]
async fn openai_client_to_anthropic_provider() {
    let h = multi().await;
    let body = json!({"model": "claude", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello claude"}]});
    let r = post_json(&h, "/v1/chat/completions", body, false).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello claude");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(PROVIDER_KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert!(sent.header("authorization").is_none());
    let native = sent.json();
    assert_eq!(native["model"], "claude-sonnet-4-5");
    assert_eq!(native["system"], "be brief");
    assert_eq!(native["max_tokens"], 4096, "defaulted");
}

#[tokio::test]
async fn openai_client_streams_tool_calls_from_anthropic() {
    let h = multi().await;
    let body = json!({"model": "claude", "stream": true, "tools": weather_tool_openai(), "messages": [{"role": "user", "content": "what is the weather in Paris"}]});
    let text = post_json(&h, "/v1/chat/completions", body, false)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let mut args = String::new();
    let mut name = None;
    let mut finish = None;
    for line in text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|l| *l != "[DONE]")
    {
        let chunk: Value = serde_json::from_str(line).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        if let Some(choice) = chunk["choices"].get(0) {
            if let Some(calls) = choice["delta"]["tool_calls"].as_array() {
                for call in calls {
                    if let Some(n) = call["function"]["name"].as_str() {
                        name = Some(n.to_string());
                    }
                    args.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
                }
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
    }
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"location": "Paris"})
    );
    assert_eq!(finish.as_deref(), Some("tool_calls"));
}

#[tokio::test]
async fn anthropic_client_to_anthropic_provider_passes_through() {
    let h = multi().await;
    let body = json!({"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "metadata": {"user_id": "u1"}});
    let r = post_json(&h, "/v1/messages", body, true).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "echo: hi");
    let sent = h.mock.requests()[0].json();
    assert_eq!(
        sent["metadata"]["user_id"], "u1",
        "unknown fields round-trip"
    );
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    let stream = post_json(&h, "/v1/messages", json!({"model": "claude", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "a b c"}]}), true)
        .await
        .text()
        .await
        .unwrap();
    let events: Vec<&str> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
}

#[tokio::test]
async fn anthropic_client_to_openai_provider_gets_the_exact_event_sequence() {
    let h = multi().await;
    let body = json!({"model": "gpt-test", "max_tokens": 64, "stream": true, "system": "sys", "messages": [{"role": "user", "content": "one two"}]});
    let r = post_json(&h, "/v1/messages", body, true).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        &events[..3],
        &["message_start", "content_block_start", "ping"],
        "{text}"
    );
    assert!(events.contains(&"content_block_delta"));
    assert_eq!(
        &events[events.len() - 3..],
        &["content_block_stop", "message_delta", "message_stop"],
        "{text}"
    );
    assert!(text.contains("\"text_delta\""));
    let sent = h.mock.requests()[0].json();
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["stream_options"]["include_usage"], true);

    let plain = post_json(&h, "/v1/messages", json!({"model": "gpt-test", "max_tokens": 64, "messages": [{"role": "user", "content": "x"}]}), true)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(plain["type"], "message");
    assert_eq!(plain["content"][0]["text"], "echo: x");
    assert_eq!(plain["stop_reason"], "end_turn");
}

#[tokio::test]
async fn anthropic_route_answers_errors_in_anthropic_shape() {
    let h = multi().await;
    let r = h.client.post(h.url("/v1/messages")).json(&json!({"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    let r = post_json(
        &h,
        "/v1/messages",
        json!({"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
        true,
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "not_found_error"
    );
    let text = post_json(&h, "/v1/chat/completions", json!({"model": "claude-fail", "stream": true, "messages": [{"role": "user", "content": "a b c d e"}]}), false)
        .await
        .text()
        .await
        .unwrap();
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(
        last.starts_with("data: {\"error\""),
        "mid-stream error reaches the OpenAI client as an error event: {text}"
    );
}

#[tokio::test]
async fn untranslatable_fields_are_400_naming_the_field() {
    let h = multi().await;
    let r = post_json(
        &h,
        "/v1/chat/completions",
        json!({"model": "claude", "n": 3, "messages": [{"role": "user", "content": "x"}]}),
        false,
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "n", "{v}");
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn azure_uses_deployment_path_api_version_and_api_key() {
    let h = multi().await;
    let v: Value = post_json(
        &h,
        "/v1/chat/completions",
        json!({"model": "azure-gpt", "messages": [{"role": "user", "content": "az"}]}),
        false,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: az");
    let sent = &h.mock.requests()[0];
    assert_eq!(
        sent.path,
        "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(sent.header("api-key"), Some(PROVIDER_KEY));
    assert!(sent.header("authorization").is_none());
}

#[tokio::test]
async fn mistral_quirks_are_adapted() {
    let h = multi().await;
    let body = json!({"model": "mistral-small", "stream": true, "seed": 7, "max_completion_tokens": 20, "tool_choice": "required", "tools": weather_tool_openai(), "messages": [{"role": "user", "content": "m"}]});
    let r = post_json(&h, "/v1/chat/completions", body, false).await;
    assert_eq!(r.status(), 200);
    let _ = r.text().await.unwrap();
    let sent = h.mock.requests()[0].json();
    assert!(sent.get("stream_options").is_none(), "{sent}");
    assert_eq!(sent["random_seed"], 7);
    assert_eq!(sent["max_tokens"], 20);
    assert_eq!(sent["tool_choice"], "any");
    assert!(sent.get("seed").is_none());
}

#[tokio::test]
async fn responses_api_is_refused_for_providers_that_cannot_serve_it() {
    let h = multi().await;
    let r = post_json(
        &h,
        "/v1/responses",
        json!({"model": "claude", "input": "hi"}),
        false,
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "model");
}

/// Text of an OpenAI stream and the tool call it carries, reassembled from the chunks.
fn reassemble(text: &str) -> (String, Option<String>, String, Option<String>) {
    let (mut content, mut name, mut args, mut finish) = (String::new(), None, String::new(), None);
    for line in text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|l| *l != "[DONE]")
    {
        let chunk: Value = serde_json::from_str(line).unwrap();
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        content.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(n) = call["function"]["name"].as_str() {
                name = Some(n.to_string());
            }
            args.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    (content, name, args, finish)
}

#[tokio::test]
async fn openai_client_to_gemini() {
    let h = multi().await;
    let v: Value = post_json(&h, "/v1/chat/completions", json!({"model": "gemini-flash", "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hola gemini"}]}), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"], "echo: hola gemini",
        "{v}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.header("x-goog-api-key"), Some(PROVIDER_KEY));
    assert_eq!(sent.json()["systemInstruction"]["parts"][0]["text"], "sys");

    let body = json!({"model": "gemini-flash", "stream": true, "tools": weather_tool_openai(), "messages": [{"role": "user", "content": "weather in Paris please"}]});
    let text = post_json(&h, "/v1/chat/completions", body, false)
        .await
        .text()
        .await
        .unwrap();
    let (_, name, args, finish) = reassemble(&text);
    assert_eq!(name.as_deref(), Some("get_weather"), "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"location": "Paris"})
    );
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert!(h.mock.requests()[1]
        .path
        .ends_with(":streamGenerateContent?alt=sse"));

    let v: Value = post_json(
        &h,
        "/v1/chat/completions",
        json!({"model": "gemini-safety", "messages": [{"role": "user", "content": "x"}]}),
        false,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter", "{v}");
}

#[tokio::test]
async fn anthropic_client_to_gemini_streams() {
    let h = multi().await;
    let body = json!({"model": "gemini-flash", "max_tokens": 30, "stream": true, "messages": [{"role": "user", "content": "uno dos tres"}]});
    let text = post_json(&h, "/v1/messages", body, true)
        .await
        .text()
        .await
        .unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"), "{text}");
    assert_eq!(events.last(), Some(&"message_stop"), "{text}");
    assert!(text.contains("uno"), "{text}");
}

#[tokio::test]
async fn bedrock_requests_are_signed_and_streams_decoded() {
    let h = multi().await;
    h.mock.expect_aws_credentials(AWS_KEY_ID, AWS_SECRET);
    let v: Value = post_json(
        &h,
        "/v1/chat/completions",
        json!({"model": "nova", "messages": [{"role": "user", "content": "hello bedrock"}]}),
        false,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"], "echo: hello bedrock",
        "{v}"
    );
    let sent = &h.mock.requests()[0];
    assert_eq!(
        sent.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert!(sent
        .header("authorization")
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256 Credential=AKIDPORTCULLISTEST/"));

    let text = post_json(&h, "/v1/chat/completions", json!({"model": "nova", "stream": true, "messages": [{"role": "user", "content": "stream me please"}]}), false)
        .await
        .text()
        .await
        .unwrap();
    let (content, _, _, finish) = reassemble(&text);
    assert_eq!(content, "echo: stream me please", "{text}");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert!(text.ends_with("data: [DONE]\n\n"));

    let text = post_json(&h, "/v1/messages", json!({"model": "nova", "max_tokens": 10, "stream": true, "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}], "messages": [{"role": "user", "content": "weather?"}]}), true)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("\"input_json_delta\""), "{text}");
    assert!(text.contains("\"stop_reason\":\"tool_use\""), "{text}");
}
