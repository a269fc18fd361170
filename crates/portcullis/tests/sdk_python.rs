//! Runs the official Python SDK tests (tests/sdk: `openai` and `anthropic`) against the real
//! binary, with one model on every provider kind the testkit mock serves.
//!
//! Needs `PORTCULLIS_TEST_PYTHON` (a Python with `openai`, `anthropic` and `pytest`;
//! `.ci/run` makes a venv). Without it the test prints SKIPPED and passes, unless
//! `PORTCULLIS_REQUIRE_SERVICES=1`, then it fails.

mod common;

use common::{compat_provider, Gateway, Spec};
use portcullis_testkit::MockUpstream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const PROVIDER_KEY: &str = "sk-sdk-provider-key-abcdef0123";
const AWS_KEY_ID: &str = "AKIDPORTCULLISSDKTEST";
const AWS_SECRET: &str = "portcullis/sdk/secret+key";

/// Public model name, provider name, upstream model: one per provider kind (besides `mock`).
const KIND_MODELS: &[(&str, &str, &str)] = &[
    ("m-openai", "p-openai", "mock-gpt"),
    ("m-compat", "up", "mock-gpt"),
    ("m-mistral", "p-mistral", "mistral-small-latest"),
    ("m-azure", "p-azure", "my-gpt4o-deployment"),
    ("m-anthropic", "p-anthropic", "claude-sonnet-4-5"),
    ("m-gemini", "p-gemini", "gemini-2.5-flash"),
    (
        "m-bedrock",
        "p-bedrock",
        "anthropic.claude-3-haiku-20240307-v1:0",
    ),
];

/// Per kind model `m`, a model `m-SUFFIX` on the same provider whose upstream model makes the
/// mock fail in that provider's own shape: 429 with Retry-After, 401 (the gateway's
/// credentials refused), and an error event after two stream chunks.
const FAULT_MODELS: &[(&str, &str)] = &[
    ("429", "fault-status-429-retry-7"),
    ("401", "fault-status-401"),
    ("err", "fault-stream-error-2"),
];

/// The upstream APIs the kind models reach, as classified from the mock's recorded requests
/// (openai, openai-compatible and the fault models share `openai`).
const UPSTREAM_APIS: [&str; 6] = [
    "anthropic",
    "azure",
    "bedrock",
    "gemini",
    "mistral",
    "openai",
];

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

/// The providers/models document: the built-in mock, the openai-compatible `up` provider
/// with its fault models, and one provider of every other kind on the mock upstream.
fn config_body(mock: &MockUpstream) -> String {
    let key = "    api_key: ${E2E_SDK_PROVIDER_KEY}\n";
    let base = mock.base_url();
    let root = mock.root_url();
    let mut s = String::from("providers:\n  - name: mock\n    kind: mock\n");
    s.push_str(&compat_provider("up", &base, key));
    s.push_str(&format!(
        "  - name: p-openai\n    kind: openai\n    base_url: {base}\n{key}"
    ));
    s.push_str(&format!(
        "  - name: p-mistral\n    kind: mistral\n    base_url: {base}\n{key}"
    ));
    s.push_str(&format!(
        "  - name: p-azure\n    kind: azure-openai\n    base_url: {root}\n{key}    api_version: \"2024-10-21\"\n"
    ));
    s.push_str(&format!(
        "  - name: p-anthropic\n    kind: anthropic\n    base_url: {root}\n{key}"
    ));
    s.push_str(&format!(
        "  - name: p-gemini\n    kind: gemini\n    base_url: {root}\n{key}"
    ));
    s.push_str(&format!(
        "  - name: p-bedrock\n    kind: bedrock\n    base_url: {root}\n    region: us-east-1\n    access_key_id: ${{E2E_SDK_AWS_KEY_ID}}\n    secret_access_key: ${{E2E_SDK_AWS_SECRET}}\n"
    ));
    s.push_str(
        "models:\n  - name: mock-echo\n    provider: mock\n  - name: upstream-gpt\n    provider: up\n    upstream_model: mock-gpt\n  - name: upstream-embed\n    provider: up\n    upstream_model: mock-embed\n  - name: upstream-503\n    provider: up\n    upstream_model: fault-status-503\n  - name: upstream-drop\n    provider: up\n    upstream_model: fault-stream-drop-2\n",
    );
    for (name, provider, upstream) in KIND_MODELS {
        s.push_str(&format!(
            "  - name: {name}\n    provider: {provider}\n    upstream_model: \"{upstream}\"\n"
        ));
    }
    for (name, provider, _) in KIND_MODELS {
        for (suffix, fault) in FAULT_MODELS {
            s.push_str(&format!(
                "  - name: {name}-{suffix}\n    provider: {provider}\n    upstream_model: {fault}\n"
            ));
        }
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdks() {
    let Some(python) = python() else {
        return;
    };
    let mock = MockUpstream::start().await;
    mock.expect_aws_credentials(AWS_KEY_ID, AWS_SECRET);
    let gw = Gateway::start(
        Spec::new(config_body(&mock))
            .env("E2E_SDK_PROVIDER_KEY", PROVIDER_KEY)
            .env("E2E_SDK_AWS_KEY_ID", AWS_KEY_ID)
            .env("E2E_SDK_AWS_SECRET", AWS_SECRET),
    )
    .await;
    let key = gw.live_key("sdk", &[]).await;
    let restricted = gw.live_key("sdk-restricted", &["--models", "mock-*"]).await;
    let models: Vec<&str> = KIND_MODELS.iter().map(|(m, _, _)| *m).collect();

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("workspace root");
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/sdk"])
        .current_dir(&root)
        .env("PORTCULLIS_GATEWAY_URL", gw.base_url())
        .env("PORTCULLIS_GATEWAY_ROOT", gw.url(""))
        .env("PORTCULLIS_GATEWAY_KEY", &key)
        .env("PORTCULLIS_GATEWAY_RESTRICTED_KEY", &restricted)
        .env("PORTCULLIS_GATEWAY_KIND_MODELS", models.join(","))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null());
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_CUSTOM_HEADERS",
        "ANTHROPIC_PROFILE",
    ] {
        cmd.env_remove(var);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = common::text(&out.stdout);
    let stderr = common::text(&out.stderr);
    println!("--- pytest stdout ---\n{stdout}\n--- pytest stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}\n--- gateway stderr ---\n{}",
        out.status,
        gw.stderr()
    );
    assert!(
        !stdout.contains(" skipped"),
        "SDK tests were skipped:\n{stdout}"
    );

    // The SDK traffic reached every provider kind's native endpoint, with that provider's
    // credential only (never the gateway key).
    let seen = mock.requests();
    let bearer = format!("Bearer {PROVIDER_KEY}");
    let mut hits = std::collections::BTreeSet::new();
    let mut tool_results = std::collections::BTreeSet::new();
    for req in &seen {
        let path = req.path.as_str();
        let kind = if path.starts_with("/v1/messages") {
            assert_eq!(req.header("x-api-key"), Some(PROVIDER_KEY), "{path}");
            assert!(req.header("anthropic-version").is_some(), "{path}");
            "anthropic"
        } else if path.starts_with("/v1beta/models/") {
            assert_eq!(req.header("x-goog-api-key"), Some(PROVIDER_KEY), "{path}");
            "gemini"
        } else if path.starts_with("/openai/deployments/") {
            assert_eq!(req.header("api-key"), Some(PROVIDER_KEY), "{path}");
            assert!(path.contains("api-version=2024-10-21"), "{path}");
            "azure"
        } else if path.starts_with("/model/") {
            let auth = req.header("authorization").unwrap_or_default();
            assert!(
                auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/")),
                "{path}: {auth}"
            );
            "bedrock"
        } else {
            assert!(path.starts_with("/v1/"), "unexpected upstream path {path}");
            assert_eq!(req.header("authorization"), Some(bearer.as_str()), "{path}");
            if req.json()["model"] == "mistral-small-latest" {
                "mistral"
            } else {
                "openai"
            }
        };
        hits.insert(kind);
        if req.body_text().contains("18C and sunny") {
            tool_results.insert(kind);
        }
        for k in [&key, &restricted] {
            assert!(
                req.headers.iter().all(|(_, v)| !v.contains(k.as_str())),
                "gateway key leaked upstream on {path}"
            );
        }
    }
    assert_eq!(hits.into_iter().collect::<Vec<_>>(), UPSTREAM_APIS);
    // The tool-result round trips delivered the tool's output to every kind.
    assert_eq!(tool_results.into_iter().collect::<Vec<_>>(), UPSTREAM_APIS);
    let log = gw.stderr();
    assert!(!log.contains(&key));
    assert!(!log.contains(PROVIDER_KEY));
    assert!(!log.contains(AWS_SECRET));
}
