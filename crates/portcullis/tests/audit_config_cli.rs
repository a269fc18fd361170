//! `portcullis audit config` through the real binary: a deliberately bad configuration,
//! policy and key store produce the expected findings and exit code; `--fail-on` moves the
//! gate; a clean setup exits 0.

mod common;

use common::{cli, text, Workdir};
use serde_json::Value;

fn run(env: &[(String, String)], config: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["audit", "config", "--config", config, "--format", "json"];
    args.extend_from_slice(extra);
    let out = cli(env, &args);
    let code = out.status.code().expect("exit code");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (code, doc)
}

fn ids(doc: &Value) -> Vec<(String, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_bad_setup_is_reported_with_the_worst_severity_as_exit_code() {
    let dir = Workdir::new();
    let bad = format!(
        "server:
  listen: 127.0.0.1:18080
  admin_listen: 0.0.0.0:18081
store:
  url: {}
redis:
  url: redis://127.0.0.1:6379
  fail_mode: open
providers:
  - name: openai
    kind: openai
    api_key: sk-literal-secret-value
models:
  - name: gpt-4o
    provider: openai
",
        dir.store_url()
    );
    let config = dir.write("bad.yaml", bad);
    let config = config.to_str().unwrap();
    let env: Vec<(String, String)> = vec![];

    let out = cli(
        &env,
        &[
            "keys", "create", "--name", "root", "--role", "admin", "--config", config,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let policy = dir.write(
        "policy.yaml",
        "version: 1\nteams:\n  open-team: {models: ['*']}\n",
    );
    let out = cli(
        &env,
        &[
            "policy",
            "apply",
            policy.to_str().unwrap(),
            "--config",
            config,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let (code, doc) = run(&env, config, &[]);
    let found = ids(&doc);
    for expected in [
        ("plain-http", "critical"),
        ("admin-plane-exposed", "high"),
        ("literal-secret", "high"),
        ("redis-fail-open", "medium"),
        ("team-no-rate-limit", "medium"),
        ("team-no-budget", "medium"),
        ("guardrails-off", "medium"),
        ("key-no-expiry", "medium"),
    ] {
        let pair = (expected.0.to_string(), expected.1.to_string());
        assert!(found.contains(&pair), "missing {expected:?} in {found:?}");
    }
    assert_eq!(
        found[0],
        ("plain-http".into(), "critical".into()),
        "worst first"
    );
    assert_eq!(code, 5, "critical -> 5");
    assert_eq!(doc["worst"], "critical");
    assert_eq!(doc["exit_code"], 5);
    let literal = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "literal-secret")
        .unwrap();
    assert_eq!(literal["where"], "providers[0].api_key");
    assert!(literal["fix"].as_str().unwrap().contains("${ENV_VAR}"));
    let raw = serde_json::to_string(&doc).unwrap();
    assert!(
        !raw.contains("sk-literal-secret-value"),
        "the secret never appears"
    );

    // The text format names the same findings and exits the same.
    let out = cli(&env, &["audit", "config", "--config", config]);
    assert_eq!(out.status.code(), Some(5));
    let report = text(&out.stdout);
    assert!(report.contains("[CRITICAL] plain-http"), "{report}");
    assert!(report.contains("fix:"), "{report}");

    // --fail-on only counts findings at or above the threshold.
    assert_eq!(run(&env, config, &["--fail-on", "critical"]).0, 5);
    let out = cli(
        &env,
        &["audit", "config", "--config", config, "--fail-on", "bogus"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--fail-on"));
}

#[test]
fn a_clean_setup_exits_zero() {
    let dir = Workdir::new();
    let good = format!(
        "store:\n  url: {}\nproviders:\n  - name: openai\n    kind: openai\n    api_key: ${{TEST_OPENAI_KEY}}\nmodels:\n  - name: gpt-4o\n    provider: openai\naudit:\n  forward:\n    - {{type: file, path: {}}}\n",
        dir.store_url(),
        dir.path().join("audit.jsonl").display()
    );
    let config = dir.write("good.yaml", good);
    let config = config.to_str().unwrap();
    let env = vec![("TEST_OPENAI_KEY".to_string(), "sk-from-env".to_string())];
    let policy = dir.write(
        "policy.yaml",
        "version: 1
teams:
  t: {models: ['*'], rate_limits: [rpm], budgets: [b], guardrails: g}
rate_limits:
  - {id: rpm, scope: key, requests: 60, interval: 1m}
budgets:
  - {id: b, scope: team, period: month, usd: 50}
guardrails:
  g: {}
",
    );
    let out = cli(
        &env,
        &[
            "policy",
            "apply",
            policy.to_str().unwrap(),
            "--config",
            config,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(
        &env,
        &[
            "keys",
            "create",
            "--name",
            "dev",
            "--team",
            "t",
            "--expires",
            "30d",
            "--config",
            config,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, doc) = run(&env, config, &[]);
    assert_eq!(ids(&doc), Vec::<(String, String)>::new());
    assert_eq!(code, 0);
    assert_eq!(doc["worst"], Value::Null);

    // One key without expiry: low, exit 2 by default, 0 with --fail-on medium.
    let out = cli(
        &env,
        &[
            "keys", "create", "--name", "forever", "--team", "t", "--config", config,
        ],
    );
    assert!(out.status.success());
    let (code, doc) = run(&env, config, &[]);
    assert_eq!(
        ids(&doc),
        vec![("key-no-expiry".to_string(), "low".to_string())]
    );
    assert_eq!(code, 2);
    assert_eq!(run(&env, config, &["--fail-on", "medium"]).0, 0);
}
