//! `portcullis report compliance` through the real binary, on a store seeded with records
//! inside and just outside the period: JSON covers exactly the period, `--out` writes the
//! file, CSV and HTML come out in their layouts; a bad date is a clear error.

mod common;

use common::{cli, mock_models, text, Workdir};
use portcullis_store::{NewAuditEntry, NewRequestLog, Store};

const FROM: i64 = 1_790_000_000;
const TO: i64 = FROM + 3600;

fn log(at: i64, id: &str, principal: &str, status: u16) -> NewRequestLog {
    NewRequestLog {
        at,
        request_id: id.into(),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        principal: Some(principal.into()),
        team: Some("eng".into()),
        model: Some("mock-echo".into()),
        status,
        denied: status == 429,
        error: (status == 429).then(|| "rate_limit_exceeded".into()),
        outcome: "complete".into(),
        prompt_tokens: 7,
        completion_tokens: 3,
        ..Default::default()
    }
}

#[tokio::test]
async fn compliance_report_from_the_cli() {
    let work = Workdir::new();
    let yaml = format!(
        "store:\n  url: {}\n{}",
        work.store_url(),
        mock_models(&["mock-echo"])
    );
    let config = work.write("portcullis.yaml", yaml);
    let config = config.to_str().unwrap();
    let store = Store::connect(&work.store_url()).await.unwrap();
    store
        .record_request_logs(&[
            log(FROM - 1, "before", "zed", 200),
            log(FROM, "a", "alice", 200),
            log(TO - 1, "b", "alice", 429),
            log(TO, "after", "zed", 429),
        ])
        .await
        .unwrap();
    store
        .append_audit(&NewAuditEntry {
            at: FROM + 1,
            actor: "cli:alice".into(),
            action: "key.revoke".into(),
            target: "key_1".into(),
            outcome: "ok".into(),
            detail: serde_json::json!({}),
        })
        .await
        .unwrap();
    store.close().await;

    let (from, to) = (FROM.to_string(), TO.to_string());
    let base = [
        "report",
        "compliance",
        "--config",
        config,
        "--from",
        &from,
        "--to",
        &to,
    ];
    let out = cli(&[], &[&base[..], &["--format", "json"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["totals"]["requests"], 2, "{r}");
    assert_eq!(r["totals"]["denied"], 1);
    assert_eq!(r["totals"]["tokens"], 20);
    assert_eq!(r["denied"][0]["request_id"], "b");
    assert_eq!(r["key_events"][0]["action"], "key.revoke");
    assert_eq!(r["audit_chain"]["intact"], true);

    let csv_path = work.path().join("report.csv");
    let csv_arg = csv_path.to_str().unwrap();
    let out = cli(
        &[],
        &[&base[..], &["--format", "csv", "--out", csv_arg]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "--out writes the file, not stdout");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.starts_with("# summary\r\nfield,value\r\n"), "{csv}");
    assert!(
        csv.contains("# access\r\nprincipal,team,requests,denied,tokens,cost_usd\r\nalice,eng,2,1,20,0.0000\r\n\r\n"),
        "{csv}"
    );
    assert!(!csv.contains("zed"), "outside the period: {csv}");

    let out = cli(&[], &base);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = text(&out.stdout);
    assert!(html.starts_with("<!DOCTYPE html>"), "HTML is the default");
    assert!(html.contains("<table>") && html.contains("<svg"), "{html}");
    assert!(html.trim_end().ends_with("</html>"));

    let out = cli(
        &[],
        &[
            "report",
            "compliance",
            "--config",
            config,
            "--from",
            "last tuesday",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--from"),
        "{}",
        text(&out.stderr)
    );
}
