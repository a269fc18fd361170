//! Child processes: the mock upstream and the gateway, started on free loopback ports
//! and killed when their guard drops (normal exit, error, panic or Ctrl-C).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::load::{self, Target};

/// How long a child may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running child process that is killed and reaped when dropped.
#[derive(Debug)]
pub struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    /// The operating-system process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has already exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!("{} exited unexpectedly ({status})", self.name),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A per-run scratch directory (config, database), removed when dropped.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("portcullis-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Self(dir))
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Asks the OS for a free loopback port (bind to port 0, then release it).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts the mock upstream on an OS-chosen port and returns it with its address,
/// parsed from the `listening on http://ADDR` line it prints once bound.
pub fn start_mock(bin: &Path, log: &Path) -> Result<(Proc, SocketAddr)> {
    let log_file = File::create(log).with_context(|| format!("create {}", log.display()))?;
    let child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("start mock {}", bin.display()))?;
    let mut proc = Proc {
        name: "mock upstream",
        child,
    };
    let stdout = proc.child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Report the listening line, then keep draining so the mock never blocks on stdout.
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.trim().strip_prefix("listening on http://") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr.trim_end_matches('/').to_owned());
                }
            }
        }
    });
    let addr = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
        let exited = proc.ensure_running().err();
        anyhow!(
            "mock did not print `listening on http://ADDR` within {} s{} (see {})",
            START_TIMEOUT.as_secs(),
            exited.map(|e| format!(": {e}")).unwrap_or_default(),
            log.display()
        )
    })?;
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("mock printed an unparsable address {addr:?}"))?;
    Ok((proc, addr))
}

/// Addresses and files of a gateway configured for the benchmark.
#[derive(Debug)]
pub struct GatewayConfig {
    /// The YAML config file.
    pub path: PathBuf,
    /// Data-plane address.
    pub listen: SocketAddr,
    /// YAML appended to the generated config (e.g. `logs: {enabled: false}`).
    pub extra: String,
    /// The `models` entries it was written with (kept for a rewrite with new ports).
    pub models: String,
}

/// The `models` entry of the benchmark: `bench-model` on the mock.
pub const SINGLE_TARGET_MODEL: &str =
    "  - name: bench-model\n    provider: mock\n    upstream_model: bench-model\n";

/// The `models` entry of the resilience run: `bench-model` as a group of three targets on
/// the mock, one of which (`fault-rate-30`) fails exactly 30% of its requests with a 5xx;
/// retries and the breaker use their defaults plus retries on 5xx.
pub const RESILIENCE_MODEL: &str = r#"  - name: bench-model
    strategy: weighted
    targets:
      - { provider: mock, upstream_model: bench-model }
      - { provider: mock, upstream_model: bench-model-b }
      - { provider: mock, upstream_model: fault-rate-30 }
    retry:
      attempts: 3
      on: [connect, timeout, 5xx, overloaded]
"#;

/// Writes the gateway config: key auth (via the store), JSON access log, the `models`
/// entries `models` (routed to the mock at `mock`), then `extra` (top-level YAML sections).
pub fn write_gateway_config(
    dir: &Path,
    mock: SocketAddr,
    models: &str,
    extra: &str,
) -> Result<GatewayConfig> {
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let admin = free_port()?;
    let yaml = format!(
        "server:\n  listen: {listen}\n  admin_listen: 127.0.0.1:{admin}\n  log_format: json\n\
         store:\n  url: sqlite://{db}\n\
         providers:\n  - name: mock\n    kind: openai-compatible\n    base_url: http://{mock}/v1\n\
         models:\n{models}{extra}",
        db = dir.join("portcullis.db").display(),
    );
    let path = dir.join("portcullis.yaml");
    std::fs::write(&path, yaml).with_context(|| format!("write {}", path.display()))?;
    Ok(GatewayConfig {
        path,
        listen,
        models: models.to_string(),
        extra: extra.to_string(),
    })
}

/// Creates an API key with `portcullis keys create` and returns it.
pub fn create_key(bin: &Path, config: &GatewayConfig) -> Result<String> {
    let out = Command::new(bin)
        .args(["keys", "create", "--config"])
        .arg(&config.path)
        .args(["--name", "bench"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {} keys create", bin.display()))?;
    if !out.status.success() {
        bail!(
            "`portcullis keys create` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8(out.stdout).context("key is not UTF-8")?;
    let key = stdout.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        bail!("`portcullis keys create` printed {stdout:?}, expected the key alone");
    }
    Ok(key.to_owned())
}

/// Applies a security policy with `portcullis policy apply` (before the gateway starts,
/// so it serves under that policy from its first request).
pub fn apply_policy(bin: &Path, config: &GatewayConfig, policy: &Path) -> Result<()> {
    let out = Command::new(bin)
        .args(["policy", "apply"])
        .arg(policy)
        .arg("--config")
        .arg(&config.path)
        .args(["--comment", "benchmark"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {} policy apply", bin.display()))?;
    if !out.status.success() {
        bail!(
            "`portcullis policy apply` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Starts `portcullis serve`, with stdout and stderr (the access log) going to `log`,
/// and waits until `GET /healthz` answers 200. The free ports picked for the config may
/// be taken by someone else before the gateway binds them; if the gateway says so, the
/// config is rewritten with new ports and the start retried. Returns the config in use.
pub async fn start_gateway(
    bin: &Path,
    mut config: GatewayConfig,
    mock: SocketAddr,
    log: &Path,
) -> Result<(Proc, GatewayConfig)> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        match start_gateway_once(bin, &config, log).await {
            Ok(proc) => return Ok((proc, config)),
            Err(e) if attempt < ATTEMPTS && log_mentions(log, "in use") => {
                eprintln!("gateway could not bind its ports ({e:#}); retrying with new ones");
                let dir = config.path.parent().expect("config in a directory");
                config = write_gateway_config(dir, mock, &config.models, &config.extra)?;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

fn log_mentions(log: &Path, what: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|s| s.contains(what))
}

async fn start_gateway_once(bin: &Path, config: &GatewayConfig, log: &Path) -> Result<Proc> {
    let log_file = File::create(log).with_context(|| format!("create {}", log.display()))?;
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&config.path)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("start gateway {}", bin.display()))?;
    let mut proc = Proc {
        name: "gateway",
        child,
    };
    let health = Target::get("gateway", config.listen, "/healthz")?;
    let started = Instant::now();
    loop {
        proc.ensure_running()
            .with_context(|| format!("see {}", log.display()))?;
        match load::probe(&health).await {
            Ok(_) => return Ok(proc),
            Err(e) if started.elapsed() > START_TIMEOUT => {
                return Err(e.context(format!(
                    "gateway not healthy within {} s (see {})",
                    START_TIMEOUT.as_secs(),
                    log.display()
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
