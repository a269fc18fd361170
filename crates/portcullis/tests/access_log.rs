//! The JSON access log of the real binary: exactly one line per request, matching the
//! `x-request-id` header, with key id (never the key), model, provider, status and tokens.

mod common;

use common::{compat_provider, poll_until, Gateway, Spec};
use portcullis_testkit::MockUpstream;
use serde_json::{json, Value};
use std::time::Duration;

const ACCESS_TARGET: &str = "portcullis::access";

fn access_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == ACCESS_TARGET)
        .collect()
}

#[tokio::test]
async fn one_json_access_line_per_request() {
    let mock = MockUpstream::start().await;
    let body = format!(
        "providers:\n{}models:\n  - name: team-gpt\n    provider: up\n    upstream_model: mock-gpt\n  - name: embedder\n    provider: up\n",
        compat_provider("up", &mock.base_url(), "")
    );
    let gw = Gateway::start(Spec::new(body).server("  log_format: json\n")).await;
    let key = gw.live_key("logged", &[]).await;
    let key_id = gw.key_id("logged");
    // Requests made while waiting for the key are logged too; only ours are checked below.

    let mut expected: Vec<(String, u16, &str, bool)> = Vec::new(); // (request id, status, model, tokens)
    let mut record = |resp: &reqwest::Response, model: &'static str, tokens: bool| {
        let id = resp
            .headers()
            .get("x-request-id")
            .expect("x-request-id header")
            .to_str()
            .unwrap()
            .to_string();
        expected.push((id, resp.status().as_u16(), model, tokens));
    };

    let chat = json!({"model": "team-gpt", "messages": [{"role": "user", "content": "four words right here"}]});
    let r = gw.chat(&key, chat.clone()).await;
    record(&r, "team-gpt", true);
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;

    let mut stream = chat.clone();
    stream["stream"] = json!(true);
    let r = gw.chat(&key, stream).await;
    record(&r, "team-gpt", true);
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;

    let r = gw
        .client
        .post(gw.url("/v1/embeddings"))
        .bearer_auth(&key)
        .json(&json!({"model": "embedder", "input": "abc def"}))
        .send()
        .await
        .unwrap();
    record(&r, "embedder", true);
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;

    let r = gw
        .chat(
            &key,
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    record(&r, "-", false);
    assert_eq!(r.status(), 404);
    let _ = r.bytes().await;

    let r = gw
        .chat("pcl_not_a_real_key_000000000000", chat.clone())
        .await;
    record(&r, "-", false);
    assert_eq!(r.status(), 401);
    let _ = r.bytes().await;

    // A client-chosen, sane request id is kept.
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-request-id", "client-chosen-id-42")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-chosen-id-42");
    record(&r, "team-gpt", true);
    let _ = r.bytes().await;

    // The log is written by a background thread: wait until every line is there.
    let all_logged = poll_until(Duration::from_secs(5), || async {
        let lines = access_lines(&gw.stderr());
        expected
            .iter()
            .all(|(id, ..)| lines.iter().any(|l| l["request_id"] == id.as_str()))
    })
    .await;
    let stderr = gw.stderr();
    assert!(all_logged.is_some(), "access lines missing in:\n{stderr}");
    let lines = access_lines(&stderr);

    for (id, status, model, tokens) in &expected {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|l| l["request_id"] == id.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "exactly one access line for {id}: {mine:?}");
        let line = mine[0];
        assert_eq!(line["status"], *status, "{line}");
        assert_eq!(line["model"], *model, "{line}");
        assert!(line["latency_us"].is_u64(), "{line}");
        if *status == 401 {
            assert_eq!(line["key_id"], "-", "{line}");
        } else {
            assert_eq!(line["key_id"], key_id.as_str(), "{line}");
        }
        if *model != "-" {
            assert_eq!(line["provider"], "up", "{line}");
        }
        if *tokens {
            assert!(line["prompt_tokens"].as_u64().unwrap() > 0, "{line}");
        }
        if *tokens && *model == "team-gpt" {
            assert!(line["completion_tokens"].as_u64().unwrap() > 0, "{line}");
        }
    }

    // Every stderr line is JSON, and the key appears nowhere (not even its secret part).
    for l in stderr.lines() {
        assert!(
            serde_json::from_str::<Value>(l).is_ok(),
            "non-JSON log line: {l}"
        );
    }
    assert!(!stderr.contains(&key), "full key in the log");
    assert!(
        !stderr.contains(&key[12..]),
        "secret part of the key in the log"
    );
}
