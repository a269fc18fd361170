//! The policy lifecycle end to end through the admin API: validate, diff, apply, enforced
//! on the data plane, shadow with counted differences, promote, rollback, discard — and
//! every step in the audit log.

mod common;

use common::{add_identity_key, expect_error, Harness};
use serde_json::Value;
use std::time::Duration;

const V1: &str = "version: 1\nteams:\n  eng:\n    models: [gpt-test, mock-*]\n";
const V2: &str = "version: 1\nteams:\n  eng:\n    models: [mock-*]\n";
const INVALID: &str = "version: 1\nteams:\n  eng:\n    models: 5\n    colour: red\nrate_limits:\n  - { id: x, scope: planet }\n";

struct Admin<'a> {
    h: &'a Harness,
    key: String,
}

impl Admin<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let r = self.h.admin(&self.key, method, path, body).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn active(&self) -> Value {
        self.call("GET", "/api/v1/policies", None).await.1["state"]["active_version"].clone()
    }
}

#[tokio::test]
async fn validate_diff_apply_shadow_promote_rollback() {
    let h = Harness::start().await;
    let (_, sec) = add_identity_key(&h.store, Some("eng"), "security-admin", Some("sam")).await;
    let (_, dev) = add_identity_key(&h.store, Some("eng"), "developer", Some("dana")).await;
    h.gateway.state.refresh_keys().await.unwrap();
    let admin = Admin { h: &h, key: sec };
    let chat = || async { h.chat_as(&dev, "gpt-test").await.status().as_u16() };

    // Validate: every problem with its path; nothing written.
    let (status, v) = admin
        .call("POST", "/api/v1/policies/validate", Some(INVALID))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["valid"], false);
    let paths: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.iter().any(|p| p.starts_with("teams.eng")), "{v}");
    assert!(paths.iter().any(|p| p.starts_with("rate_limits[0]")), "{v}");
    let wrapped = serde_json::json!({ "document": V1 }).to_string();
    let (_, v) = admin
        .call("POST", "/api/v1/policies/validate", Some(&wrapped))
        .await;
    assert_eq!(v["valid"], true, "JSON-wrapped documents are accepted: {v}");

    // Apply v1; an invalid apply afterwards is refused with every problem, v1 stays.
    let (status, v) = admin
        .call("POST", "/api/v1/policies?comment=first", Some(V1))
        .await;
    assert_eq!((status, v["version"].as_i64()), (201, Some(1)), "{v}");
    assert_eq!(chat().await, 200);
    let r = h
        .admin(&admin.key, "POST", "/api/v1/policies", Some(INVALID))
        .await;
    let body = expect_error(r, 400, "invalid_policy").await;
    assert!(
        body["error"]["problems"].as_array().unwrap().len() >= 2,
        "{body}"
    );
    assert_eq!(admin.active().await, 1, "the active version is untouched");
    assert_eq!(chat().await, 200);

    // Diff v2 against the active v1, then apply it: gpt-test is now denied.
    let (status, d) = admin.call("POST", "/api/v1/policies/diff", Some(V2)).await;
    assert_eq!(status, 200);
    assert_eq!(d["against"], 1);
    assert!(
        d["text"].as_str().unwrap().contains("teams.eng.models"),
        "{d}"
    );
    assert!(!d["changes"].as_array().unwrap().is_empty());
    let (status, _) = admin
        .call("POST", "/api/v1/policies?comment=no-gpt", Some(V2))
        .await;
    assert_eq!(status, 201);
    let r = h.chat_as(&dev, "gpt-test").await;
    let body = expect_error(r, 403, "policy_denied").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("teams.eng.models"));

    // Rollback restores v1's behaviour; history keeps every version.
    let (status, v) = admin
        .call("POST", "/api/v1/policies/1/rollback", None)
        .await;
    assert_eq!((status, v["previous_version"].as_i64()), (200, Some(2)));
    assert_eq!(chat().await, 200);
    let (_, shown) = admin.call("GET", "/api/v1/policies/2", None).await;
    assert_eq!(shown["document"], V2);
    assert_eq!(shown["comment"], "no-gpt");

    // Shadow v2: not enforced, but every differing request is counted.
    let (status, v) = admin
        .call("POST", "/api/v1/policies?shadow=true&comment=try", Some(V2))
        .await;
    assert_eq!((status, v["shadow"].as_bool()), (201, Some(true)), "{v}");
    let shadow_version = v["version"].as_i64().unwrap();
    for _ in 0..3 {
        assert_eq!(chat().await, 200, "shadow mode does not enforce");
    }
    let mut report = Value::Null;
    for _ in 0..50 {
        report = admin.call("GET", "/api/v1/policies/shadow", None).await.1;
        if report["report"]["total"].as_u64() >= Some(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(report["version"].as_i64(), Some(shadow_version), "{report}");
    assert_eq!(report["report"]["total"], 3, "{report}");
    let by_rule = report["report"]["by_rule"].to_string();
    assert!(by_rule.contains("teams.eng.models"), "{report}");

    // Promote: enforced at once on this instance.
    let (status, v) = admin
        .call("POST", "/api/v1/policies/shadow/promote", None)
        .await;
    assert_eq!(
        (status, v["active_version"].as_i64()),
        (200, Some(shadow_version))
    );
    assert_eq!(chat().await, 403);
    let (status, _) = admin.call("GET", "/api/v1/policies/shadow", None).await;
    assert_eq!(status, 404, "no shadow after promotion");

    // Rollback once more, then shadow and discard.
    admin
        .call("POST", "/api/v1/policies/1/rollback", None)
        .await;
    assert_eq!(chat().await, 200);
    let (_, v) = admin
        .call("POST", "/api/v1/policies?shadow=true", Some(V2))
        .await;
    let discarded = v["version"].as_i64().unwrap();
    let (status, v) = admin
        .call("POST", "/api/v1/policies/shadow/discard", None)
        .await;
    assert_eq!(
        (status, v["discarded_version"].as_i64()),
        (200, Some(discarded))
    );
    assert_eq!(chat().await, 200);
    let (_, active) = admin.call("GET", "/api/v1/policies/active", None).await;
    assert_eq!(active["version"], 1);

    // Every step is in the audit log, newest first.
    let (_, audit) = admin
        .call("GET", "/api/v1/audit?action=policy.&limit=100", None)
        .await;
    let steps: Vec<(String, String)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("policy.apply", "ok"),
        ("policy.apply", "error"),
        ("policy.apply", "ok"),
        ("policy.rollback", "ok"),
        ("policy.shadow", "ok"),
        ("policy.promote", "ok"),
        ("policy.rollback", "ok"),
        ("policy.shadow", "ok"),
        ("policy.discard", "ok"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, o)| (a.to_string(), o.to_string()))
        .collect();
    assert_eq!(steps, expected);
}

#[tokio::test]
async fn other_instances_follow_by_polling() {
    // A change written straight to the store (as by the CLI or another instance) is picked
    // up by the running gateway's poller within a second.
    let h = Harness::start().await;
    let (_, dev) = add_identity_key(&h.store, Some("eng"), "developer", None).await;
    h.gateway.state.refresh_keys().await.unwrap();
    portcullis_server::policy_ops::apply(&h.store, V2, "test", "", false, "test")
        .await
        .unwrap();
    let mut status = 0;
    for _ in 0..20 {
        status = h.chat_as(&dev, "gpt-test").await.status().as_u16();
        if status == 403 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 403, "denied within ~1 s of the change");
}
