//! Runs the official OpenAI Python SDK tests (tests/sdk) against the real binary.
//!
//! Needs `PORTCULLIS_TEST_PYTHON` (a Python with `openai` and `pytest`; `.ci/run` makes a
//! venv). Without it the test prints SKIPPED and passes, unless
//! `PORTCULLIS_REQUIRE_SERVICES=1`, then it fails.

mod common;

use common::{compat_provider, Gateway, Spec};
use portcullis_testkit::MockUpstream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const PROVIDER_KEY: &str = "sk-sdk-provider-key-abcdef0123";

fn python() -> Option<String> {
    match std::env::var("PORTCULLIS_TEST_PYTHON") {
        Ok(p) if !p.trim().is_empty() => Some(p),
        _ => {
            if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("PORTCULLIS_TEST_PYTHON is not set but PORTCULLIS_REQUIRE_SERVICES=1");
            }
            eprintln!("SKIPPED: Python SDK tests (PORTCULLIS_TEST_PYTHON not set)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk() {
    let Some(python) = python() else {
        return;
    };
    let mock = MockUpstream::start().await;
    let body = format!(
        "providers:\n  - name: mock\n    kind: mock\n{}models:\n  - name: mock-echo\n    provider: mock\n  - name: upstream-gpt\n    provider: up\n    upstream_model: mock-gpt\n  - name: upstream-embed\n    provider: up\n    upstream_model: mock-embed\n  - name: upstream-503\n    provider: up\n    upstream_model: fault-status-503\n  - name: upstream-drop\n    provider: up\n    upstream_model: fault-stream-drop-2\n",
        compat_provider(
            "up",
            &mock.base_url(),
            "    api_key: ${E2E_SDK_PROVIDER_KEY}\n"
        )
    );
    let gw = Gateway::start(Spec::new(body).env("E2E_SDK_PROVIDER_KEY", PROVIDER_KEY)).await;
    let key = gw.live_key("sdk", &[]).await;
    let restricted = gw.live_key("sdk-restricted", &["--models", "mock-*"]).await;

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("workspace root");
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/sdk"])
        .current_dir(&root)
        .env("PORTCULLIS_GATEWAY_URL", gw.base_url())
        .env("PORTCULLIS_GATEWAY_KEY", &key)
        .env("PORTCULLIS_GATEWAY_RESTRICTED_KEY", &restricted)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = common::text(&out.stdout);
    let stderr = common::text(&out.stderr);
    println!("--- pytest stdout ---\n{stdout}\n--- pytest stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        !stdout.contains(" skipped"),
        "SDK tests were skipped:\n{stdout}"
    );

    // The SDK traffic reached the upstream with the provider key only.
    let seen = mock.requests();
    assert!(!seen.is_empty());
    for req in &seen {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {PROVIDER_KEY}").as_str())
        );
        assert!(req.headers.iter().all(|(_, v)| !v.contains(&key)));
    }
    assert!(!gw.stderr().contains(&key));
}
