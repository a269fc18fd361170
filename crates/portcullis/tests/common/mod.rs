//! Shared harness for end-to-end tests of the real `portcullis` binary.
//!
//! Every [`Gateway`] gets its own temporary directory (config file, SQLite store), its own
//! free ports and its own environment; nothing is global, so tests run in parallel. The child
//! process is killed when the handle is dropped; its stderr is captured (and printed when the
//! test panics).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// How long a gateway may take to answer /healthz after spawning.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A free loopback port: bound, read, released. The gateway start retries on a bind race.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A loopback address that refuses connections (bound then released).
pub fn closed_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// What to start: the server lines beyond listen/admin_listen, the rest of the document
/// (providers, models), and the child's extra environment.
#[derive(Clone, Default)]
pub struct Spec {
    /// YAML lines placed under `server:` (indented by two spaces already), e.g.
    /// `"  log_format: json\n"`.
    pub server_extra: String,
    /// YAML after the `server` and `store` sections: `providers:` and `models:`.
    pub body: String,
    /// Environment variables for the gateway and the CLI commands.
    pub env: Vec<(String, String)>,
    /// PEM of a CA the test client must trust (the data plane then speaks HTTPS).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// `store.url` (default: a SQLite file in the work directory), e.g. a PostgreSQL URL
    /// shared by several gateways.
    pub store_url: Option<String>,
}

impl Spec {
    /// A spec with the given providers/models document.
    pub fn new(body: impl Into<String>) -> Spec {
        Spec {
            body: body.into(),
            ..Spec::default()
        }
    }

    /// Adds lines under `server:`.
    pub fn server(mut self, lines: &str) -> Spec {
        self.server_extra.push_str(lines);
        if !self.server_extra.ends_with('\n') {
            self.server_extra.push('\n');
        }
        self
    }

    /// Uses `url` as `store.url` instead of the work directory's SQLite file.
    pub fn store(mut self, url: &str) -> Spec {
        self.store_url = Some(url.into());
        self
    }

    /// Adds an environment variable for the child processes.
    pub fn env(mut self, name: &str, value: &str) -> Spec {
        self.env.push((name.into(), value.into()));
        self
    }
}

/// The built-in mock provider serving the given model names.
pub fn mock_models(models: &[&str]) -> String {
    let mut s = String::from("providers:\n  - name: mock\n    kind: mock\nmodels:\n");
    for m in models {
        s.push_str(&format!("  - name: {m}\n    provider: mock\n"));
    }
    s
}

/// A temp dir holding one gateway's files.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::Builder::new()
                .prefix("portcullis-e2e-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file in the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write file");
        p
    }

    /// The SQLite store URL of this directory.
    pub fn store_url(&self) -> String {
        format!("sqlite://{}/store/portcullis.db", self.dir.path().display())
    }
}

impl Default for Workdir {
    fn default() -> Self {
        Workdir::new()
    }
}

/// A `portcullis` CLI invocation (not `serve`) with the spec's environment.
pub fn cli(env: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run portcullis CLI")
}

/// Text of a stream of bytes.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `portcullis serve` child process.
pub struct Gateway {
    child: Option<Child>,
    pub workdir: Workdir,
    pub config_path: PathBuf,
    pub data_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub env: Vec<(String, String)>,
    /// Client for the data plane (trusts the test CA when TLS is on).
    pub client: reqwest::Client,
    scheme: &'static str,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
}

impl Gateway {
    /// Starts a gateway for `spec` in a fresh work directory.
    pub async fn start(spec: Spec) -> Gateway {
        Gateway::start_in(Workdir::new(), spec).await
    }

    /// Starts a gateway for `spec` in `workdir` (which may already hold cert files).
    /// Retries with other ports when a port picked as free was taken meanwhile.
    pub async fn start_in(workdir: Workdir, spec: Spec) -> Gateway {
        let client = client_for(spec.tls_ca_pem.as_deref());
        let scheme = if spec.tls_ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let data_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let admin_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            if data_addr == admin_addr {
                continue;
            }
            let yaml = format!(
                "server:\n  listen: {data_addr}\n  admin_listen: {admin_addr}\n{}store:\n  url: {}\n{}",
                spec.server_extra,
                spec.store_url.clone().unwrap_or_else(|| workdir.store_url()),
                spec.body
            );
            let config_path = workdir.write("portcullis.yaml", yaml);
            let mut cmd = Command::new(BIN);
            cmd.arg("serve")
                .arg("--config")
                .arg(&config_path)
                .current_dir(workdir.path())
                .env_remove("PORTCULLIS_CONFIG")
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            for (k, v) in &spec.env {
                cmd.env(k, v);
            }
            let mut child = cmd.spawn().expect("spawn portcullis serve");
            let stderr = Arc::new(Mutex::new(String::new()));
            let pipe = child.stderr.take().expect("stderr pipe");
            let sink = stderr.clone();
            let stderr_thread = std::thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => sink
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push_str(&line),
                    }
                }
            });
            let url = format!("{scheme}://{data_addr}/healthz");
            match wait_healthy(&mut child, &client, &url).await {
                Ok(()) => {
                    return Gateway {
                        child: Some(child),
                        workdir,
                        config_path,
                        data_addr,
                        admin_addr,
                        env: spec.env.clone(),
                        client,
                        scheme,
                        stderr,
                        stderr_thread: Some(stderr_thread),
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = stderr_thread.join();
                    let log = stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    last_err = format!("{e}\n--- gateway stderr ---\n{log}");
                    if !log.contains("cannot listen on") {
                        break;
                    }
                }
            }
        }
        panic!("gateway did not start: {last_err}");
    }

    /// `scheme://data_addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.data_addr, path)
    }

    /// The OpenAI base URL of the data plane.
    pub fn base_url(&self) -> String {
        self.url("/v1")
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs a CLI subcommand against this gateway's config (`--config` appended).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let config = self.config_path.to_str().expect("utf-8 path");
        all.push("--config");
        all.push(config);
        cli(&self.env, &all)
    }

    /// `keys create --name NAME [extra...]`; returns the key printed on stdout.
    pub fn create_key(&self, name: &str, extra: &[&str]) -> String {
        let mut args = vec!["keys", "create", "--name", name];
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "keys create failed: {}\n{}",
            out.status,
            text(&out.stderr)
        );
        let key = text(&out.stdout).trim().to_string();
        assert!(key.starts_with("pcl_"), "unexpected key output {key:?}");
        key
    }

    /// Creates a key and waits (up to 3 s) until the running gateway accepts it.
    pub async fn live_key(&self, name: &str, extra: &[&str]) -> String {
        let key = self.create_key(name, extra);
        let url = self.url("/v1/models");
        let ok = poll_until(Duration::from_secs(3), || async {
            self.client
                .get(&url)
                .bearer_auth(&key)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        })
        .await;
        assert!(
            ok.is_some(),
            "key {name} not accepted by the gateway within 3 s"
        );
        key
    }

    /// The id of the key called `name`, from `keys list --json`.
    pub fn key_id(&self, name: &str) -> String {
        let out = self.cli(&["keys", "list", "--json"]);
        assert!(out.status.success(), "keys list failed");
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("keys list json");
        rows.as_array()
            .expect("array")
            .iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["id"].as_str())
            .unwrap_or_else(|| panic!("no key named {name}"))
            .to_string()
    }

    /// POST a JSON chat request with `key`.
    pub async fn chat(&self, key: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("send chat request")
    }

    /// A minimal non-streaming chat request for `model`; returns (status, body json).
    pub async fn simple_chat(&self, key: &str, model: &str) -> (u16, serde_json::Value) {
        let resp = self
            .chat(
                key,
                serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// Polls a minimal chat request every 20 ms until it gets `want`; returns the time it
    /// took and the last body, or None at timeout.
    pub async fn poll_chat_status(
        &self,
        key: &str,
        model: &str,
        want: u16,
        timeout: Duration,
    ) -> Option<(Duration, serde_json::Value)> {
        let start = Instant::now();
        loop {
            let (status, body) = self.simple_chat(key, model).await;
            if status == want {
                return Some((start.elapsed(), body));
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Process id of the child.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the child to exit, up to `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    if let Some(t) = self.stderr_thread.take() {
                        let _ = t.join();
                    }
                    return Some(status);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the child (idempotent).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
    }
}

async fn wait_healthy(
    child: &mut Child,
    client: &reqwest::Client,
    url: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("gateway exited early with {status}"));
        }
        if let Ok(resp) = client.get(url).send().await {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err("gateway did not answer /healthz in time".into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- gateway stderr ({}) ---\n{}",
                self.data_addr,
                self.stderr()
            );
        }
    }
}

/// A reqwest client, trusting `ca_pem` if given.
pub fn client_for(ca_pem: Option<&[u8]>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60));
    if let Some(pem) = ca_pem {
        b = b
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pem).expect("CA pem"));
    }
    b.build().expect("reqwest client")
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

/// Concatenated `choices[0].delta.content` of an OpenAI chat stream body.
pub fn stream_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

/// A provider of kind openai-compatible named `name` at `base_url`, as YAML list item lines.
pub fn compat_provider(name: &str, base_url: &str, extra: &str) -> String {
    format!("  - name: {name}\n    kind: openai-compatible\n    base_url: {base_url}\n{extra}")
}

/// Polls `f` every 20 ms until it returns true; returns the elapsed time, or None at timeout.
pub async fn poll_until<F, Fut>(timeout: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
