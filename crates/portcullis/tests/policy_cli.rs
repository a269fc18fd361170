//! The policy lifecycle through the real CLI against a running gateway: validate, apply,
//! diff, shadow + shadow-report, promote, rollback, history, audit records of the CLI.

mod common;

use common::{cli, mock_models, text, Gateway, Spec};
use std::time::Duration;

const V1: &str = "version: 1\nteams:\n  eng:\n    models: [mock-*]\n";
const V2: &str = "version: 1\nteams:\n  eng:\n    models: [mock-other]\n";
const INVALID: &str =
    "version: 1\nteams:\n  eng:\n    models: 5\nrate_limits:\n  - { id: x, scope: planet }\n";

#[tokio::test]
async fn validate_apply_shadow_promote_rollback_history() {
    let gw = Gateway::start(Spec::new(mock_models(&["mock-echo", "mock-other"]))).await;
    let v1 = gw.workdir.write("v1.yaml", V1);
    let v2 = gw.workdir.write("v2.yaml", V2);
    let bad = gw.workdir.write("bad.yaml", INVALID);
    let (v1, v2, bad) = (
        v1.to_str().unwrap(),
        v2.to_str().unwrap(),
        bad.to_str().unwrap(),
    );

    // validate: every problem with its path, exit 1; a valid file exits 0.
    let out = cli(&gw.env, &["policy", "validate", bad]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("teams.eng.models"), "{stdout}");
    assert!(stdout.contains("rate_limits[0]"), "{stdout}");
    let out = cli(&gw.env, &["policy", "validate", v1]);
    assert!(out.status.success(), "{}", text(&out.stdout));

    let key = gw.live_key("dev", &["--team", "eng"]).await;
    let out = gw.cli(&["policy", "apply", v1, "--comment", "first"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("version 1"));
    assert!(gw
        .poll_chat_status(&key, "mock-echo", 200, Duration::from_secs(2))
        .await
        .is_some());

    // An invalid apply changes nothing.
    let out = gw.cli(&["policy", "apply", bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("teams.eng.models"));

    // diff against the active version.
    let out = gw.cli(&["policy", "diff", v2]);
    assert!(out.status.success());
    let diff = text(&out.stdout);
    assert!(
        diff.contains("active version 1") && diff.contains("teams.eng.models"),
        "{diff}"
    );

    // Shadow: still allowed, differences counted in the report.
    let out = gw.cli(&["policy", "apply", v2, "--shadow", "--comment", "try"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("shadow"));
    let mut counted = 0;
    for _ in 0..40 {
        assert_eq!(
            gw.simple_chat(&key, "mock-echo").await.0,
            200,
            "shadow never enforces"
        );
        let out = gw.cli(&["policy", "shadow-report", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        counted = report["report"]["total"].as_u64().unwrap();
        if counted >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(counted >= 2, "shadow differences recorded: {counted}");
    let out = gw.cli(&["policy", "shadow-report"]);
    let report = text(&out.stdout);
    assert!(
        report.contains("shadow version 2") && report.contains("teams.eng.models"),
        "{report}"
    );

    // Promote: enforced within a second.
    let out = gw.cli(&["policy", "promote"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(gw
        .poll_chat_status(&key, "mock-echo", 403, Duration::from_secs(2))
        .await
        .is_some());
    let out = gw.cli(&["policy", "discard"]);
    assert_eq!(out.status.code(), Some(1), "nothing left to discard");

    // Rollback to 1: allowed again.
    let out = gw.cli(&["policy", "rollback", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(gw
        .poll_chat_status(&key, "mock-echo", 200, Duration::from_secs(2))
        .await
        .is_some());

    // history and show.
    let out = gw.cli(&["policy", "history"]);
    let history = text(&out.stdout);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "header + 2 versions: {history}");
    assert!(lines[1].starts_with("1") && lines[1].contains("active") && lines[1].contains("first"));
    assert!(lines[2].starts_with("2") && lines[2].contains("try"));
    let out = gw.cli(&["policy", "show", "2"]);
    assert_eq!(text(&out.stdout), V2);

    // The CLI's changes are in the audit log as cli:<user>.
    let store = portcullis_store::Store::connect(&gw.workdir.store_url())
        .await
        .unwrap();
    let entries = store
        .list_audit(&portcullis_store::AuditQuery {
            action_prefix: Some("policy.".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("policy.apply", "ok"),
            ("policy.apply", "error"),
            ("policy.shadow", "ok"),
            ("policy.promote", "ok"),
            ("policy.discard", "error"),
            ("policy.rollback", "ok"),
        ]
    );
    assert!(entries.iter().all(|e| e.actor.starts_with("cli:")));
    store.close().await;
}
