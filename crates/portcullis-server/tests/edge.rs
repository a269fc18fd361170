//! Authentication, request validation and limits at the edge: every bad input gets an
//! OpenAI-shaped error with the right status, and none reaches the upstream.

mod common;

use common::{add_key, expect_error, Harness};

#[tokio::test]
async fn missing_invalid_expired_revoked_keys_are_401() {
    let h = Harness::start().await;
    let body = r#"{"model":"gpt-test","messages":[{"role":"user","content":"x"}]}"#;
    let send = |auth: Option<(&'static str, String)>| {
        let mut rb = h.client.post(h.url("/v1/chat/completions")).body(body);
        if let Some((name, value)) = auth {
            rb = rb.header(name, value);
        }
        rb.send()
    };
    let r = send(None).await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    expect_error(r, 401, "invalid_api_key").await;
    expect_error(
        send(Some(("authorization", "Bearer pcl_wrong".into())))
            .await
            .unwrap(),
        401,
        "invalid_api_key",
    )
    .await;
    expect_error(
        send(Some(("authorization", "Basic abc".into())))
            .await
            .unwrap(),
        401,
        "invalid_api_key",
    )
    .await;
    let ok = send(Some(("x-api-key", h.key.clone()))).await.unwrap();
    assert_eq!(ok.status(), 200, "x-api-key is accepted");

    let (_, expired) = add_key(&h.store, vec![], Some(1)).await;
    let (revoked_id, revoked) = add_key(&h.store, vec![], None).await;
    h.store.revoke_key(&revoked_id, 5).await.unwrap();
    h.gateway.state.refresh_keys().await.unwrap();
    let b = expect_error(
        send(Some(("authorization", format!("Bearer {expired}"))))
            .await
            .unwrap(),
        401,
        "invalid_api_key",
    )
    .await;
    assert!(b["error"]["message"].as_str().unwrap().contains("expired"));
    let b = expect_error(
        send(Some(("authorization", format!("Bearer {revoked}"))))
            .await
            .unwrap(),
        401,
        "invalid_api_key",
    )
    .await;
    assert!(b["error"]["message"].as_str().unwrap().contains("revoked"));
    assert_eq!(
        h.mock.requests().len(),
        1,
        "only the authenticated request reached the upstream"
    );
}

#[tokio::test]
async fn model_access_is_enforced() {
    let h = Harness::start().await;
    let (_, limited) = add_key(&h.store, vec!["mock-*".into()], None).await;
    h.gateway.state.refresh_keys().await.unwrap();
    let r = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&limited)
        .body(r#"{"model":"gpt-test","messages":[{"role":"user","content":"x"}]}"#)
        .send()
        .await
        .unwrap();
    let b = expect_error(r, 403, "model_not_allowed").await;
    assert_eq!(b["error"]["param"], "model");
    let models: serde_json::Value = h
        .client
        .get(h.url("/v1/models"))
        .bearer_auth(&limited)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["mock-echo"]);
    expect_error(h.chat("no-such-model", false).await, 404, "model_not_found").await;
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn malformed_requests_are_400_naming_the_field() {
    let h = Harness::start().await;
    for (body, param) in [
        ("{not json", None),
        ("[]", None),
        (
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            Some("model"),
        ),
        (r#"{"model":"gpt-test"}"#, Some("messages")),
        (r#"{"model":"gpt-test","messages":"hi"}"#, Some("messages")),
        (
            r#"{"model":"gpt-test","messages":[],"stream":"yes"}"#,
            Some("stream"),
        ),
    ] {
        let b = expect_error(
            h.post("/v1/chat/completions", body).await,
            400,
            "invalid_request",
        )
        .await;
        match param {
            Some(p) => assert_eq!(b["error"]["param"], p, "{body}"),
            None => assert!(b["error"]["param"].is_null(), "{body}"),
        }
    }
    expect_error(
        h.post("/v1/embeddings", r#"{"model":"gpt-test"}"#).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn oversized_bodies_are_413_with_or_without_content_length() {
    let h = Harness::start_with(|c| c.server.max_body_size.0 = 1024).await;
    let big = format!(
        r#"{{"model":"gpt-test","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4096)
    );
    expect_error(
        h.post("/v1/chat/completions", &big).await,
        413,
        "request_too_large",
    )
    .await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.as_bytes().chunks(512).map(|c| Ok(c.to_vec())).collect();
    let r = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&h.key)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "request_too_large").await;
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_get_openai_errors_and_request_ids() {
    let h = Harness::start().await;
    let r = h.client.get(h.url("/v1/nothing")).send().await.unwrap();
    expect_error(r, 401, "invalid_api_key").await;
    let r = h
        .client
        .get(h.url("/v1/nothing"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    let r = h
        .client
        .get(h.url("/v1/chat/completions"))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    expect_error(r, 405, "method_not_allowed").await;
    let r = h.client.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let r = h
        .client
        .get(format!("http://{}/readyz", h.gateway.admin_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .client
        .get(h.url("/healthz"))
        .header("x-request-id", "client-chosen-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-chosen-id-42");
}

#[tokio::test]
async fn hostile_bodies_never_panic_or_hang() {
    let h = Harness::start().await;
    let mut seed: u64 = 0x9E3779B97F4A7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let fragments = [
        "{",
        "}",
        "[",
        "]",
        "\"model\"",
        ":",
        ",",
        "\"gpt-test\"",
        "\"messages\"",
        "null",
        "1e999",
        "\"stream\"",
        "true",
        "\u{0}",
        "\\u0000",
        "\"\\ud800\"",
        "-",
        "9999999999999999999999",
    ];
    for _ in 0..200 {
        let len = (next() % 24) as usize;
        let body: String = (0..len)
            .map(|_| fragments[(next() % fragments.len() as u64) as usize])
            .collect();
        let r = h.post("/v1/chat/completions", &body).await;
        let status = r.status().as_u16();
        assert!(matches!(status, 200 | 400 | 404), "{status} for {body:?}");
        if status != 200 {
            let v: serde_json::Value = r.json().await.expect("JSON error body");
            assert!(v["error"]["message"].is_string());
        }
    }
    let deep = "[".repeat(100_000);
    expect_error(
        h.post("/v1/chat/completions", &deep).await,
        400,
        "invalid_request",
    )
    .await;
}
