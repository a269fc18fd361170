//! Closed-loop load generation: one keep-alive HTTP/1.1 connection per worker.
//!
//! The generator is deliberately lean because it shares the machine's cores with the
//! mock upstream and the gateway: raw hyper `http1` connections (no pool, no retries),
//! a request whose body, headers and URI are built once and cloned by reference count,
//! response bodies drained frame by frame without being collected, and latencies
//! recorded into a single `hdrhistogram` per phase.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long workers may still be busy after a phase's end before they are aborted.
const GRACE: Duration = Duration::from_secs(5);

/// Highest latency the histograms can hold (60 s, in nanoseconds).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// One HTTP endpoint to load: where to connect and the request to send, pre-built.
#[derive(Debug)]
pub struct Target {
    /// Human label used in progress and error messages ("direct", "gateway").
    pub label: &'static str,
    addr: SocketAddr,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

impl Target {
    /// A `POST path` to `addr` with a JSON `body`, optionally carrying a bearer token.
    pub fn post_json(
        label: &'static str,
        addr: SocketAddr,
        path: &str,
        bearer: Option<&str>,
        body: Bytes,
    ) -> Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(&addr.to_string())?);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(Self {
            label,
            addr,
            uri: path
                .parse()
                .with_context(|| format!("invalid path {path:?}"))?,
            method: Method::POST,
            headers,
            body,
        })
    }

    /// A `GET path` to `addr` with no body.
    pub fn get(label: &'static str, addr: SocketAddr, path: &str) -> Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(&addr.to_string())?);
        Ok(Self {
            label,
            addr,
            uri: path
                .parse()
                .with_context(|| format!("invalid path {path:?}"))?,
            method: Method::GET,
            headers,
            body: Bytes::new(),
        })
    }

    /// A copy of this target with a different body (same address, path and headers).
    pub fn with_body(&self, label: &'static str, body: Bytes) -> Self {
        Self {
            label,
            addr: self.addr,
            uri: self.uri.clone(),
            method: self.method.clone(),
            headers: self.headers.clone(),
            body,
        }
    }

    /// The pre-built request; cloning only bumps reference counts (plus the header map).
    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// Opens a new keep-alive HTTP/1.1 connection (TCP_NODELAY) to the target.
    pub async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("{}: connect to {}", self.label, self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("{}: HTTP/1.1 handshake", self.label))?;
        tokio::spawn(async move {
            // Errors surface on the sender side; nothing to do with them here.
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// Sends one request and drains the response; `Ok(bytes)` only for a 200 response.
pub async fn send_once(sender: &mut SendRequest<Full<Bytes>>, target: &Target) -> Result<usize> {
    let resp = sender.send_request(target.request()).await?;
    drain_ok(resp).await
}

/// Drains a response body, failing with a short excerpt of it unless the status is 200.
async fn drain_ok(resp: Response<Incoming>) -> Result<usize> {
    let status = resp.status();
    let mut body = resp.into_body();
    if status != StatusCode::OK {
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let excerpt = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        bail!("HTTP {status}: {excerpt}");
    }
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            len += data.len();
        }
    }
    Ok(len)
}

/// Measured outcome of one closed-loop phase against one target.
#[derive(Debug)]
pub struct PhaseResult {
    /// Latencies (nanoseconds) of successful requests inside the measured window.
    pub hist: Histogram<u64>,
    /// Length of the measured window.
    pub window: Duration,
    /// Successful requests, warmup included (for CPU time per request).
    pub completed: u64,
    /// Failed requests (non-200, transport error, timeout), warmup included.
    pub errors: u64,
    /// Times a worker found its connection closed by the server and had to reconnect.
    pub reconnects: u64,
    /// The first few distinct error messages, for the report.
    pub error_samples: Vec<String>,
}

impl PhaseResult {
    /// Adds another measurement of the same scenario (e.g. a later round) to this one.
    pub fn merge(&mut self, other: PhaseResult) -> Result<()> {
        self.hist.add(&other.hist)?;
        self.window += other.window;
        self.completed += other.completed;
        self.errors += other.errors;
        self.reconnects += other.reconnects;
        for s in other.error_samples {
            if self.error_samples.len() < 5 && !self.error_samples.contains(&s) {
                self.error_samples.push(s);
            }
        }
        Ok(())
    }

    /// Successful requests per second over the measured window.
    pub fn rps(&self) -> f64 {
        self.hist.len() as f64 / self.window.as_secs_f64()
    }

    /// Latency at `q` (0..=1) in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1_000.0
    }
}

/// What one worker saw, apart from the latencies it recorded in the shared histogram.
#[derive(Debug, Default)]
struct WorkerTally {
    completed: u64,
    errors: u64,
    reconnects: u64,
    samples: Vec<String>,
}

impl WorkerTally {
    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.samples.len() < 3 && !self.samples.contains(&msg) {
            self.samples.push(msg);
        }
    }
}

/// Runs `concurrency` workers against `target` for `warmup + duration`, recording only
/// requests that start after the warmup and complete before the end.
pub async fn run_phase(
    target: Arc<Target>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<PhaseResult> {
    let hist = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3)?;
    let hist = Arc::new(Mutex::new(hist));
    let measure_from = Instant::now() + warmup;
    let end = measure_from + duration;
    let handles: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(target.clone(), hist.clone(), measure_from, end)))
        .collect();

    let mut total = WorkerTally::default();
    let mut stuck = 0u64;
    let deadline = tokio::time::Instant::from_std(end + GRACE);
    for mut handle in handles {
        match tokio::time::timeout_at(deadline, &mut handle).await {
            Ok(Ok(t)) => {
                total.completed += t.completed;
                total.reconnects += t.reconnects;
                total.errors += t.errors;
                for s in t.samples {
                    if total.samples.len() < 5 && !total.samples.contains(&s) {
                        total.samples.push(s);
                    }
                }
            }
            Ok(Err(join)) => total.error(format!("worker panicked: {join}")),
            Err(_) => {
                handle.abort();
                stuck += 1;
            }
        }
    }
    if stuck > 0 {
        total.errors += stuck;
        total.samples.push(format!(
            "{stuck} request(s) still unanswered {} s after the phase ended",
            GRACE.as_secs()
        ));
    }
    let hist = std::mem::replace(
        &mut *hist.lock().expect("histogram lock"),
        Histogram::new(1)?,
    );
    Ok(PhaseResult {
        hist,
        window: duration,
        completed: total.completed,
        errors: total.errors,
        reconnects: total.reconnects,
        error_samples: total.samples,
    })
}

/// One closed-loop worker: send, wait for the full response, record, repeat.
async fn worker(
    target: Arc<Target>,
    hist: Arc<Mutex<Histogram<u64>>>,
    measure_from: Instant,
    end: Instant,
) -> WorkerTally {
    let mut tally = WorkerTally::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < end {
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match target.connect().await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    tally.error(format!("{e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if s.ready().await.is_err() {
            // The server closed the keep-alive connection between requests.
            tally.reconnects += 1;
            sender = None;
            continue;
        }
        let start = Instant::now();
        let res = send_once(s, &target).await;
        let done = Instant::now();
        match res {
            Ok(_) => {
                tally.completed += 1;
                if start >= measure_from && done <= end {
                    let ns = (done - start).as_nanos().min(MAX_LATENCY_NS as u128) as u64;
                    hist.lock()
                        .expect("histogram lock")
                        .record(ns.max(1))
                        .expect("latency within histogram bounds");
                }
            }
            Err(e) => {
                tally.error(format!("{}: {e:#}", target.label));
                sender = None;
            }
        }
    }
    tally
}

/// Sends one request on a fresh connection and returns the response size, or the error
/// (also when there is no complete answer within 5 s).
pub async fn probe(target: &Target) -> Result<usize> {
    let attempt = async {
        let mut sender = target.connect().await?;
        send_once(&mut sender, target).await
    };
    match tokio::time::timeout(GRACE, attempt).await {
        Ok(r) => r.with_context(|| format!("{}: probe request", target.label)),
        Err(_) => bail!("{}: no answer within {} s", target.label, GRACE.as_secs()),
    }
}
