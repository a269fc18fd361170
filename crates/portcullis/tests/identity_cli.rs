//! Identity verbs through the real CLI: keys with team/role/owner, rotate, expire; users,
//! teams and usage.

mod common;

use common::{mock_models, text, Gateway, Spec};
use std::time::Duration;

#[tokio::test]
async fn keys_rotate_expire_users_teams_usage() {
    let gw = Gateway::start(Spec::new(mock_models(&["mock-echo"]))).await;
    let extra = ["--team", "eng", "--role", "auditor", "--owner", "alice"];
    let key = gw.live_key("svc", &extra).await;
    let out = gw.cli(&["keys", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(
        (
            row["team"].as_str(),
            row["role"].as_str(),
            row["owner"].as_str()
        ),
        (Some("eng"), Some("auditor"), Some("alice"))
    );
    let id = row["id"].as_str().unwrap().to_string();
    let out = gw.cli(&["keys", "create", "--name", "x", "--role", "superuser"]);
    assert!(!out.status.success(), "unknown roles are refused");

    // rotate: the new key alone on stdout; the old one is refused within a second.
    let out = gw.cli(&["keys", "rotate", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new_key = text(&out.stdout).trim().to_string();
    assert!(new_key.starts_with("pcl_") && new_key != key);
    assert!(gw
        .poll_chat_status(&key, "mock-echo", 401, Duration::from_secs(2))
        .await
        .is_some());
    assert!(gw
        .poll_chat_status(&new_key, "mock-echo", 200, Duration::from_secs(2))
        .await
        .is_some());

    // expire --now: refused within a second.
    let new_id = {
        let out = gw.cli(&["keys", "list", "--json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rows = rows.as_array().unwrap();
        rows.iter().find(|r| r["state"] == "active").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let out = gw.cli(&["keys", "expire", &new_id, "--now"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(gw
        .poll_chat_status(&new_key, "mock-echo", 401, Duration::from_secs(2))
        .await
        .is_some());

    // users and teams.
    let out = gw.cli(&["teams", "create", "eng", "--description", "engineering"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&gw.cli(&["teams", "list"]).stdout).contains("engineering"));
    let out = gw.cli(&[
        "users", "create", "--name", "alice", "--team", "eng", "--role", "viewer",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let user = text(&out.stdout).trim().to_string();
    assert!(user.starts_with("user_"));
    assert!(gw.cli(&["users", "disable", &user]).status.success());
    let list = text(&gw.cli(&["users", "list"]).stdout);
    assert!(
        list.contains("alice") && list.contains("disabled"),
        "{list}"
    );

    // usage: the one successful request of the first key.
    let mut seen = false;
    for _ in 0..20 {
        let out = gw.cli(&["usage", "--team", "eng", "--json"]);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if rows.as_array().is_some_and(|r| !r.is_empty()) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(seen, "usage rows of team eng");
    assert!(text(&gw.cli(&["usage"]).stdout).contains("REQUESTS"));
}
