//! In-process harness: a gateway on ephemeral ports with its own SQLite store and its own
//! mock upstream, so tests run in parallel without shared state.

#![allow(dead_code)]

use portcullis_config::{Config, ModelConfig, ProviderConfig, ProviderKind, Secret};
use portcullis_policy::generate_key;
use portcullis_store::{NewKey, Store};
use portcullis_testkit::MockUpstream;
use std::net::SocketAddr;
use std::time::Duration;

pub const PROVIDER_KEY: &str = "sk-upstream-secret-0123456789";

pub struct Harness {
    pub gateway: portcullis_server::Gateway,
    pub mock: MockUpstream,
    pub key: String,
    pub store: Store,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub fn provider(name: &str, kind: ProviderKind, base_url: Option<String>) -> ProviderConfig {
    let mut p = ProviderConfig::new(name, kind);
    p.base_url = base_url;
    p.api_key = Some(Secret::new(PROVIDER_KEY));
    p
}

pub fn model(name: &str, provider: &str, upstream: &str) -> ModelConfig {
    ModelConfig::single(name, provider, Some(upstream))
}

/// A config with: `gpt-test` -> mock upstream model `mock-gpt`, `mock-echo` on the
/// built-in mock, `dead` -> a closed port, and fault models.
pub fn base_config(mock: &MockUpstream) -> Config {
    let mut config = Config::embedded_default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.admin_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.providers.push(provider(
        "up",
        ProviderKind::OpenaiCompatible,
        Some(mock.base_url()),
    ));
    config.providers.push(provider(
        "dead",
        ProviderKind::OpenaiCompatible,
        Some(format!("http://{}/v1", closed_port())),
    ));
    config.models.push(model("gpt-test", "up", "mock-gpt"));
    config.models.push(model("dead-model", "dead", "x"));
    for fault in [
        "fault-status-429-retry-7",
        "fault-status-401",
        "fault-status-500",
        "fault-status-503",
        "fault-status-400",
        "fault-malformed",
        "fault-drop",
        "fault-stream-drop-2",
        "fault-delay-3000",
        "fault-status-404",
    ] {
        config.models.push(model(fault, "up", fault));
    }
    config
}

fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub async fn add_key(
    store: &Store,
    models: Vec<String>,
    expires_at: Option<i64>,
) -> (String, String) {
    let key = generate_key().unwrap();
    store
        .create_key(&NewKey {
            id: key.id.clone(),
            name: "test".into(),
            prefix: key.prefix.clone(),
            hash: key.hash.clone(),
            models,
            created_at: 0,
            expires_at,
            team: None,
            role: "developer".into(),
            owner: None,
        })
        .await
        .unwrap();
    (key.id, key.secret)
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Harness {
        Harness::start_with_mock(|config, _| adjust(config)).await
    }

    /// Like `start_with`, with the mock at hand to point providers at it.
    pub async fn start_with_mock(adjust: impl FnOnce(&mut Config, &MockUpstream)) -> Harness {
        let mock = MockUpstream::start().await;
        let mut config = base_config(&mock);
        adjust(&mut config, &mock);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        let (_, key) = add_key(&store, vec![], None).await;
        let gateway = portcullis_server::start(&config, store.clone())
            .await
            .unwrap();
        Harness {
            gateway,
            mock,
            key,
            store,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            _dir: dir,
        }
    }

    /// URL of the harness's SQLite store (to reopen it after shutdown).
    pub fn store_url(&self) -> String {
        format!("sqlite://{}/p.db", self._dir.path().display())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.gateway.data_addr, path)
    }

    pub async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn chat(&self, model: &str, stream: bool) -> reqwest::Response {
        let body = serde_json::json!({
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": "hello there gateway friend"}],
        });
        self.post("/v1/chat/completions", &body.to_string()).await
    }
}

/// Asserts an OpenAI error body and returns it.
pub async fn expect_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert!(
        response.headers().contains_key("x-request-id"),
        "x-request-id on errors"
    );
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(error.get("param").is_some(), "{body}");
    assert_eq!(error["code"], code, "{body}");
    body
}

/// Adds a key with a team, role and owner; returns (id, secret). Call
/// `h.gateway.state.refresh_keys()` (or wait for the poller) before using it.
pub async fn add_identity_key(
    store: &Store,
    team: Option<&str>,
    role: &str,
    owner: Option<&str>,
) -> (String, String) {
    let key = generate_key().unwrap();
    store
        .create_key(&NewKey {
            id: key.id.clone(),
            name: format!("{role}-key"),
            prefix: key.prefix.clone(),
            hash: key.hash.clone(),
            models: vec![],
            created_at: 0,
            expires_at: None,
            team: team.map(String::from),
            role: role.into(),
            owner: owner.map(String::from),
        })
        .await
        .unwrap();
    (key.id, key.secret)
}

impl Harness {
    /// Stores a policy version (which must be valid) and makes it active, or the shadow
    /// candidate, then has the gateway load it; returns the version.
    pub async fn apply_policy(&self, yaml: &str, shadow: bool) -> i64 {
        let validated =
            portcullis_policy::document::parse_policy(yaml).expect("test policy must be valid");
        let version = self
            .store
            .append_policy_version(yaml, &validated.hash, "test", "", 0)
            .await
            .unwrap();
        if shadow {
            self.store
                .set_shadow_policy(Some(version), 0)
                .await
                .unwrap();
        } else {
            self.store.activate_policy(version).await.unwrap();
        }
        self.gateway.state.refresh_policy().await.unwrap();
        version
    }

    /// URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.gateway.admin_addr, path)
    }

    /// An admin API call with `key`; `body` is sent as JSON unless it does not parse as
    /// JSON, then as `text/yaml`.
    pub async fn admin(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, self.admin_url(path))
            .bearer_auth(key);
        if let Some(body) = body {
            let json = serde_json::from_str::<serde_json::Value>(body).is_ok();
            let kind = if json {
                "application/json"
            } else {
                "text/yaml"
            };
            req = req.header("content-type", kind).body(body.to_string());
        }
        req.send().await.unwrap()
    }

    /// A chat call to `model` with `key` instead of the harness key.
    pub async fn chat_as(&self, key: &str, model: &str) -> reqwest::Response {
        let body = serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": "hello there gateway friend"}],
        });
        self.client
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }
}
