//! The compliance report on the admin API over a seeded period: exactly the records of
//! `[from, to)` are covered (records one second outside are left out), and each format
//! parses — JSON with serde, CSV with Python's `csv` module (an independent parser), HTML
//! with Python's `html.parser` (balanced tables, no external assets).

mod common;

use common::{add_identity_key, Harness};
use portcullis_policy::document::parse_policy;
use portcullis_store::{GuardrailEntry, NewAlert, NewAuditEntry, NewRequestLog, Store};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// Yesterday, from midnight UTC plus 12 hours to the same time today: within the
/// retention (the gateway purges older request logs) and two calendar days.
fn period() -> (i64, i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let from = now / 86_400 * 86_400 - 86_400 + 43_200;
    (from, from + 86_400)
}

fn log(at: i64, id: &str, principal: &str, team: &str, status: u16) -> NewRequestLog {
    let denied = status == 403;
    NewRequestLog {
        at,
        request_id: id.into(),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        key_id: Some(format!("key_{principal}")),
        principal: Some(principal.into()),
        team: Some(team.into()),
        model: Some("gpt-test".into()),
        provider: Some("up".into()),
        status,
        denied,
        error: denied.then(|| "policy_denied".into()),
        reason: denied.then(|| "denied by policy rule teams.b.models: model not allowed".into()),
        policy_rule: Some("teams.b.models".into()),
        outcome: "complete".into(),
        latency_us: 900,
        prompt_tokens: 100,
        completion_tokens: 20,
        cost_micros: 1_500,
        client_ip: Some("10.0.0.7".into()),
        ..Default::default()
    }
}

async fn audit(store: &Store, at: i64, action: &str, target: &str) {
    store
        .append_audit(&NewAuditEntry {
            at,
            actor: "cli:alice".into(),
            action: action.into(),
            target: target.into(),
            outcome: "ok".into(),
            detail: json!({}),
        })
        .await
        .unwrap();
}

/// Seeds one record of each kind inside the period and one just outside each bound.
async fn seed(store: &Store) {
    let (from, to) = period();
    let mut rows = vec![
        log(from - 1, "before", "mallory", "x", 403),
        log(from, "first", "alice", "a", 200),
        log(from + 60, "second", "alice", "a", 200),
        log(to - 1, "last", "bob", "b", 403),
        log(to, "after", "mallory", "x", 403),
    ];
    rows[2].guardrails = vec![GuardrailEntry {
        rule: "email".into(),
        action: "redact".into(),
    }];
    rows[4].guardrails = rows[2].guardrails.clone();
    store.record_request_logs(&rows).await.unwrap();
    audit(store, from - 1, "key.create", "key_outside_before").await;
    audit(store, from + 5, "key.create", "key_inside").await;
    audit(store, from + 6, "policy.apply", "2").await;
    audit(store, from + 7, "policy.show", "2").await;
    audit(store, to, "key.revoke", "key_outside_after").await;
    for (at, subject, n) in [
        (from - 1, "ip:198.51.100.1", 1),
        (from + 30, "ip:203.0.113.7", 3),
        (to, "ip:198.51.100.2", 1),
    ] {
        let alert = NewAlert {
            at,
            rule: "auth_failures".into(),
            subject: subject.into(),
            severity: "high".into(),
            message: format!("20 refused requests from {subject}"),
            key_id: None,
            team: None,
            detail: json!({}),
        };
        store.record_alert(&alert, n, 0).await.unwrap();
    }
    let v1 = "version: 1\nteams:\n  a:\n    models: [gpt-test]\n";
    let v2 = "version: 1\nteams:\n  a:\n    models: [gpt-test]\n  b:\n    models: [other]\n";
    for (doc, at) in [(v1, from - 10), (v2, from + 6)] {
        let p = parse_policy(doc).unwrap();
        store
            .append_policy_version(doc, &p.hash, "alice", "seed", at)
            .await
            .unwrap();
    }
}

async fn report(h: &Harness, key: &str, format: &str) -> (u16, String, String) {
    let (from, to) = period();
    let path = format!("/api/v1/reports/compliance?from={from}&to={to}&format={format}");
    let r = h.admin(key, "GET", &path, None).await;
    let status = r.status().as_u16();
    let kind = r.headers()["content-type"].to_str().unwrap().to_string();
    (status, kind, r.text().await.unwrap())
}

/// Runs a Python snippet on `input` and parses its stdout as JSON.
fn python(script: &str, input: &str) -> Value {
    let python = std::env::var("PORTCULLIS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

const CSV_SECTIONS: &str = r##"
import csv, io, json, sys
rows = list(csv.reader(io.StringIO(sys.stdin.read(), newline="")))
sections, current = {}, None
for row in rows:
    if len(row) == 1 and row[0].startswith("# "):
        current = row[0][2:]
        sections[current] = []
    elif row:
        sections[current].append(row)
print(json.dumps(sections))
"##;

const HTML_CHECK: &str = r#"
import json, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.tables, self.svgs, self.external, self.text = [], 0, 0, [], []
    def handle_starttag(self, tag, attrs):
        if tag in ("table", "tr", "td", "th", "svg", "figure", "pre"):
            self.stack.append(tag)
        self.tables += tag == "table"
        self.svgs += tag == "svg"
        for k, v in attrs:
            if k in ("src", "href") or (tag == "link"):
                self.external.append(v)
        if tag == "script":
            self.external.append("script")
    def handle_endtag(self, tag):
        if tag in ("table", "tr", "td", "th", "svg", "figure", "pre"):
            assert self.stack.pop() == tag, tag
    def handle_data(self, data):
        self.text.append(data)
p = P()
p.feed(sys.stdin.read())
p.close()
print(json.dumps({"balanced": not p.stack, "tables": p.tables, "svgs": p.svgs,
                  "external": p.external, "text": " ".join(p.text)}))
"#;

#[tokio::test]
async fn a_report_covers_exactly_its_period_in_every_format() {
    let h = Harness::start().await;
    let (from, to) = period();
    seed(&h.store).await;
    let (_, admin) = add_identity_key(&h.store, None, "admin", None).await;
    h.gateway.state.refresh_keys().await.unwrap();

    let (status, kind, text) = report(&h, &admin, "json").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(kind, "application/json");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (r["from"].as_i64(), r["to"].as_i64()),
        (Some(from), Some(to))
    );
    assert_eq!(
        r["totals"],
        json!({"requests": 3, "denied": 1, "tokens": 360, "cost_micros": 4500})
    );
    let access: Vec<(String, i64, i64)> = r["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["principal"].as_str().unwrap().to_string(),
                a["requests"].as_i64().unwrap(),
                a["denied"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(access, [("alice".into(), 2, 0), ("bob".into(), 1, 1)]);
    let denied = r["denied"].as_array().unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["request_id"], "last");
    assert!(denied[0]["reason"]
        .as_str()
        .unwrap()
        .contains("not allowed"));
    assert_eq!(
        r["denial_reasons"],
        json!([{"label": "policy_denied: teams.b.models", "count": 1}])
    );
    assert_eq!(
        r["guardrails"],
        json!([{"rule": "email", "action": "redact", "count": 1}])
    );
    let targets = |field: &str| -> Vec<String> {
        r[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["action"].as_str().unwrap(),
                    e["target"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(targets("key_events"), ["key.create key_inside"]);
    assert_eq!(
        targets("policy_events"),
        ["policy.apply 2"],
        "reads are left out"
    );
    let changes = r["policy_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "version 1 was created before the period");
    assert_eq!(
        (
            changes[0]["version"].as_i64(),
            changes[0]["previous"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert!(
        changes[0]["diff"].as_str().unwrap().contains("+ teams.b"),
        "{}",
        changes[0]
    );
    assert_eq!(
        r["daily"],
        json!([[from / 86_400 * 86_400, 2, 0], [to / 86_400 * 86_400, 1, 1]])
    );
    let alerts = r["anomalies"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{}", r["anomalies"]);
    assert_eq!(alerts[0]["subject"], "ip:203.0.113.7");
    assert_eq!(r["anomalies"]["occurrences"], 3);
    assert_eq!(
        r["anomalies"]["by_rule"],
        json!([{"label": "auth_failures", "count": 1}])
    );
    assert_eq!(r["audit_chain"]["intact"], true);
    assert!(r["audit_chain"]["summary"]
        .as_str()
        .unwrap()
        .contains("intact"));

    let (status, kind, csv) = report(&h, &admin, "csv").await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let sections = python(CSV_SECTIONS, &csv);
    for name in [
        "summary",
        "daily",
        "access",
        "denial_reasons",
        "denied",
        "policy_changes",
        "policy_events",
        "key_events",
        "guardrails",
        "anomalies",
    ] {
        assert!(sections.get(name).is_some(), "section {name} in {csv}");
    }
    assert_eq!(
        sections["access"],
        json!([
            [
                "principal",
                "team",
                "requests",
                "denied",
                "tokens",
                "cost_usd"
            ],
            ["alice", "a", "2", "0", "240", "0.0030"],
            ["bob", "b", "1", "1", "120", "0.0015"],
        ])
    );
    assert_eq!(
        sections["denied"].as_array().unwrap().len(),
        2,
        "header + one row"
    );
    assert_eq!(sections["denied"][1][1], "last");
    assert_eq!(sections["anomalies"][1][5], "ip:203.0.113.7");
    assert_eq!(sections["anomalies"].as_array().unwrap().len(), 2);
    let diff = sections["policy_changes"][1][5].as_str().unwrap();
    assert!(
        diff.contains("+ teams.b"),
        "multi-line cell survives: {diff}"
    );

    let (status, kind, html) = report(&h, &admin, "html").await;
    assert_eq!((status, kind.as_str()), (200, "text/html; charset=utf-8"));
    let checked = python(HTML_CHECK, &html);
    assert_eq!(checked["balanced"], true);
    assert!(checked["tables"].as_u64().unwrap() >= 6, "{checked}");
    assert!(checked["svgs"].as_u64().unwrap() >= 4, "charts: {checked}");
    assert_eq!(checked["external"], json!([]), "self-contained");
    let text = checked["text"].as_str().unwrap();
    for needle in [
        "Compliance report",
        "alice",
        "key_inside",
        "+ teams.b",
        "intact",
        "ip:203.0.113.7",
    ] {
        assert!(text.contains(needle), "{needle} in the HTML text");
    }
    for outside in [
        "mallory",
        "key_outside_before",
        "key_outside_after",
        "198.51.100",
    ] {
        assert!(!html.contains(outside), "{outside} is outside the period");
    }
}

#[tokio::test]
async fn bad_parameters_are_400_and_refusals_are_audited() {
    let h = Harness::start().await;
    let (_, admin) = add_identity_key(&h.store, None, "admin", None).await;
    let (dev_id, dev) = add_identity_key(&h.store, Some("a"), "developer", None).await;
    h.gateway.state.refresh_keys().await.unwrap();
    for query in ["format=pdf", "from=2026-13-45", "from=100&to=50"] {
        let path = format!("/api/v1/reports/compliance?{query}");
        let r = h.admin(&admin, "GET", &path, None).await;
        assert_eq!(r.status(), 400, "{query}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    }
    let r = h
        .admin(&dev, "GET", "/api/v1/reports/compliance", None)
        .await;
    assert_eq!(r.status(), 403);
    let q = portcullis_store::AuditQuery {
        actor: Some(dev_id),
        ..Default::default()
    };
    let audited = h.store.list_audit(&q).await.unwrap();
    assert_eq!(audited[0].action, "report.compliance");
    assert_eq!(audited[0].outcome, "denied");
}
