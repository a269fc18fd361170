//! Virtual keys through the real CLI against a running gateway: creation output, listing,
//! revocation and creation seen live within a second, model globs, expiry.

mod common;

use common::{mock_models, poll_until, text, Gateway, Spec};
use std::time::{Duration, Instant};

#[tokio::test]
async fn create_list_revoke_live() {
    let gw = Gateway::start(Spec::new(mock_models(&["mock-echo"]))).await;

    // A key created while the gateway runs works within a second.
    let out = gw.cli(&["keys", "create", "--name", "live"]);
    let created = Instant::now();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.ends_with('\n'));
    let key = stdout.trim_end_matches('\n');
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout holds only the key: {stdout:?}"
    );
    assert!(key.starts_with("pcl_") && !key.contains(char::is_whitespace));
    assert!(key.len() >= 4 + 32, "at least 128 bits of hex: {key}");
    let stderr = text(&out.stderr);
    assert!(!stderr.contains(key), "the key is printed on stdout only");

    let works = poll_until(Duration::from_secs(3), || async {
        gw.simple_chat(key, "mock-echo").await.0 == 200
    })
    .await
    .expect("new key never accepted");
    let since_create = created.elapsed();
    assert!(
        since_create < Duration::from_millis(1500),
        "new key accepted after {since_create:?} (poll {works:?})"
    );

    // `keys list` (table and JSON) never shows the key.
    let list = gw.cli(&["keys", "list"]);
    assert!(list.status.success());
    let table = text(&list.stdout);
    assert!(table.contains("live"), "{table}");
    assert!(table.contains("active"), "{table}");
    assert!(!table.contains(key));
    let list_json = gw.cli(&["keys", "list", "--json"]);
    assert!(list_json.status.success());
    assert!(!text(&list_json.stdout).contains(key));
    assert!(!text(&list_json.stderr).contains(key));
    let rows: serde_json::Value = serde_json::from_slice(&list_json.stdout).unwrap();
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["name"], "live");
    assert_eq!(row["state"], "active");
    let prefix = row["prefix"].as_str().unwrap();
    assert!(key.starts_with(prefix) && prefix.len() < key.len() / 2);
    let id = row["id"].as_str().unwrap().to_string();
    assert!(
        !key.contains(&id[4..]),
        "the id is not derived from the key"
    );

    // Revocation reaches the running gateway within a second.
    let out = gw.cli(&["keys", "revoke", &id]);
    let revoked = Instant::now();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, last) = gw
        .poll_chat_status(key, "mock-echo", 401, Duration::from_secs(3))
        .await
        .expect("revoked key still accepted after 3 s");
    let took = revoked.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "revocation took {took:?}"
    );
    let message = last["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("revoked"), "{last}");
    assert_eq!(last["error"]["code"], "invalid_api_key");

    let rows: serde_json::Value =
        serde_json::from_slice(&gw.cli(&["keys", "list", "--json"]).stdout).unwrap();
    assert_eq!(rows[0]["state"], "revoked");

    // Revoking an unknown id fails.
    let out = gw.cli(&["keys", "revoke", "key_doesnotexist"]);
    assert!(!out.status.success());

    // The key never appears in the gateway's logs.
    assert!(!gw.stderr().contains(key));
}

#[tokio::test]
async fn model_globs_restrict_the_key() {
    let gw = Gateway::start(Spec::new(mock_models(&[
        "gpt-4o-mini",
        "gpt-4o",
        "claude-haiku",
        "llama-3-8b",
    ])))
    .await;
    let limited = gw.create_key("limited", &["--models", "gpt-*"]);
    let all = gw.create_key("all", &[]);
    // Both keys were created before the first request? The gateway polls; wait for them.
    poll_until(Duration::from_secs(3), || async {
        gw.simple_chat(&all, "llama-3-8b").await.0 == 200
    })
    .await
    .expect("key not live");

    for model in ["gpt-4o-mini", "gpt-4o"] {
        let (status, body) = gw.simple_chat(&limited, model).await;
        assert_eq!(status, 200, "{model}: {body}");
        assert_eq!(body["object"], "chat.completion");
    }
    for model in ["claude-haiku", "llama-3-8b"] {
        let (status, body) = gw.simple_chat(&limited, model).await;
        assert_eq!(status, 403, "{model}: {body}");
        assert_eq!(body["error"]["type"], "permission_error");
        assert_eq!(body["error"]["code"], "model_not_allowed");
        let (status, _) = gw.simple_chat(&all, model).await;
        assert_eq!(status, 200);
    }
    // Unknown model: 404 whatever the key.
    let (status, body) = gw.simple_chat(&limited, "no-such-model").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");

    let ids = |body: serde_json::Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let models = |key: String| {
        let gw = &gw;
        async move {
            let r = gw
                .client
                .get(gw.url("/v1/models"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    assert_eq!(
        ids(models(limited.clone()).await),
        ["gpt-4o-mini", "gpt-4o"]
    );
    assert_eq!(
        ids(models(all.clone()).await),
        ["gpt-4o-mini", "gpt-4o", "claude-haiku", "llama-3-8b"]
    );

    // A bad glob is refused by the CLI.
    let out = gw.cli(&["keys", "create", "--name", "bad", "--models", "gpt-[oops"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn expired_key_is_refused() {
    let gw = Gateway::start(Spec::new(mock_models(&["mock-echo"]))).await;
    let key = gw.create_key("short", &["--expires", "3s"]);
    poll_until(Duration::from_secs(2), || async {
        gw.simple_chat(&key, "mock-echo").await.0 == 200
    })
    .await
    .expect("short-lived key never accepted");
    let (_, last) = gw
        .poll_chat_status(&key, "mock-echo", 401, Duration::from_secs(8))
        .await
        .expect("key never expired");
    let message = last["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("expired"), "{last}");
    let rows: serde_json::Value =
        serde_json::from_slice(&gw.cli(&["keys", "list", "--json"]).stdout).unwrap();
    assert_eq!(rows[0]["state"], "expired");

    // A bad duration is refused and prints no key.
    let out = gw.cli(&["keys", "create", "--name", "x", "--expires", "soon"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn missing_and_invalid_keys_get_401() {
    let gw = Gateway::start(Spec::new(mock_models(&["mock-echo"]))).await;
    let key = gw.create_key("k", &[]);
    let body =
        serde_json::json!({"model": "mock-echo", "messages": [{"role": "user", "content": "hi"}]});
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("x-request-id"));
    let (status, _) = gw
        .simple_chat("pcl_0000000000000000000000000000000000", "mock-echo")
        .await;
    assert_eq!(status, 401);
    // x-api-key is accepted as well.
    let ok = poll_until(Duration::from_secs(3), || async {
        gw.client
            .post(gw.url("/v1/chat/completions"))
            .header("x-api-key", &key)
            .json(&body)
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
    })
    .await;
    assert!(ok.is_some(), "x-api-key not accepted");
}
