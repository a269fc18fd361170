//! `portcullis config check` and `serve` on bad configurations: every problem with its path,
//! exit code 1, and a gateway that refuses to start.

mod common;

use common::{cli, free_port, text, Workdir, BIN};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UNSET_VAR: &str = "PORTCULLIS_E2E_SURELY_UNSET_VAR";

/// One problem per section: each must be reported with its path.
fn bad_config(port: u16) -> String {
    format!(
        r#"server:
  listen: 127.0.0.1:{port}
  admin_listen: not-an-address
store:
  url: sqlite://portcullis-data/p.db
providers:
  - name: up
    kind: openai-compatible
    base_url: http://127.0.0.1:9/v1
    api_key: ${{{UNSET_VAR}}}
  - name: weird
    kind: martian
  - name: extra
    kind: mock
    colour: blue
models:
  - name: m1
    provider: nowhere
  - name: m2
unknown_top_level: 1
"#
    )
}

/// (path, words of the message) of each problem in `bad_config`.
const EXPECTED: &[(&str, &str)] = &[
    ("server.admin_listen", "address"),
    ("providers[0].api_key", UNSET_VAR),
    ("providers[1].kind", "martian"),
    ("providers[2].colour", "unknown field"),
    ("models[0].provider", "nowhere"),
    ("models[1]", "provider"),
    ("unknown_top_level", "unknown field"),
];

fn assert_all_problems(output: &str) {
    for (path, words) in EXPECTED {
        let line = output
            .lines()
            .find(|l| l.contains(&format!("{path}:")))
            .unwrap_or_else(|| panic!("problem at {path} not reported in:\n{output}"));
        assert!(line.contains(words), "{path}: {line:?} lacks {words:?}");
    }
}

#[test]
fn config_check_reports_every_problem() {
    let wd = Workdir::new();
    let path = wd.write("bad.yaml", bad_config(free_port()));
    let out = cli(
        &[],
        &["config", "check", "--config", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "exit code");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_all_problems(&all);
}

#[test]
fn config_check_reports_every_problem_within_one_section() {
    // Several problems inside the same section (server) must all be reported, not just
    // the first one serde stops at.
    let wd = Workdir::new();
    let path = wd.write(
        "bad.yaml",
        "server:\n  listen: not-an-address\n  colour: blue\n  max_body_size: lots\n  timeouts:\n    connect: forever\n",
    );
    let out = cli(
        &[],
        &["config", "check", "--config", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for p in [
        "server.listen:",
        "server.colour:",
        "server.max_body_size:",
        "server.timeouts.connect:",
    ] {
        assert!(all.contains(p), "{p} not reported in:\n{all}");
    }
}

#[test]
fn config_check_accepts_a_good_config() {
    let wd = Workdir::new();
    let config = r#"server:
  listen: 127.0.0.1:18080
  admin_listen: 127.0.0.1:18081
  max_body_size: 1MiB
  timeouts:
    connect: 5s
    request: 2m
    stream_idle: 30s
    shutdown_grace: 500ms
  log_format: json
store:
  url: sqlite://portcullis-data/portcullis.db
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: ${PORTCULLIS_E2E_OPENAI_KEY}
  - name: local-llama
    kind: openai-compatible
    base_url: http://127.0.0.1:11434/v1
    headers:
      x-team: ${PORTCULLIS_E2E_TEAM}
models:
  - name: gpt-4o-mini
    provider: openai
    upstream_model: gpt-4o-mini
    price: { input_per_mtok: 0.15, output_per_mtok: 0.60 }
  - name: llama-3-8b
    provider: local-llama
    upstream_model: llama3:8b
"#;
    let path = wd.write("good.yaml", config);
    let env = vec![
        (
            "PORTCULLIS_E2E_OPENAI_KEY".to_string(),
            "sk-test-123456".to_string(),
        ),
        ("PORTCULLIS_E2E_TEAM".to_string(), "blue".to_string()),
    ];
    let out = cli(
        &env,
        &["config", "check", "--config", path.to_str().unwrap()],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("valid"), "{all}");
    assert!(!all.contains("sk-test-123456"), "secret printed: {all}");

    // Without the variables the same file is invalid, naming both paths.
    let out = cli(
        &[],
        &["config", "check", "--config", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("providers[0].api_key"), "{all}");
    assert!(all.contains("providers[1].headers"), "{all}");
}

#[test]
fn config_check_warns_about_a_literal_key() {
    let wd = Workdir::new();
    let path = wd.write(
        "literal.yaml",
        "providers:\n  - name: o\n    kind: openai\n    api_key: sk-literal-abcdef\nmodels:\n  - name: g\n    provider: o\n",
    );
    let out = cli(
        &[],
        &["config", "check", "--config", path.to_str().unwrap()],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.to_lowercase().contains("warning"), "{all}");
    assert!(all.contains("providers[0].api_key"), "{all}");
    assert!(!all.contains("sk-literal-abcdef"), "secret printed: {all}");
}

#[test]
fn config_check_on_a_missing_file_fails() {
    let wd = Workdir::new();
    let path = wd.path().join("nope.yaml");
    let out = cli(
        &[],
        &["config", "check", "--config", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn serve_refuses_a_bad_config() {
    let wd = Workdir::new();
    let port = free_port();
    let path = wd.write("bad.yaml", bad_config(port));
    let mut child = Command::new(BIN)
        .args(["serve", "--config", path.to_str().unwrap()])
        .current_dir(wd.path())
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove(UNSET_VAR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve kept running with a bad config");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    assert!(!status.success(), "exit status {status}");
    let stderr = text(&out.stderr);
    assert_all_problems(&stderr);
    // Nothing listens on the configured data port.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // No store was created either.
    assert!(!wd.path().join("portcullis-data").exists());
}
