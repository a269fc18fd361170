//! Mock upstream LLM providers for Portcullis tests and benchmarks.
//!
//! [`MockUpstream`] serves an OpenAI-shaped API on a real socket, records every request it
//! receives and injects faults on demand ([`Fault`]), either queued from the test or selected
//! by the request's `model` (`fault-status-503`, `fault-delay-250`, `fault-drop`,
//! `fault-malformed`, `fault-stream-drop-3`, `fault-stream-stall-2-500`).
//!
//! ```no_run
//! # async fn demo() {
//! use portcullis_testkit::{Fault, MockUpstream};
//! let mock = MockUpstream::start().await;
//! mock.push_fault(Fault::status(503));
//! // point the gateway at mock.base_url() ...
//! assert_eq!(mock.requests().len(), 0);
//! # }
//! ```
//!
//! One mock answers every provider API by path (see [`MockUpstream`]): OpenAI (`/v1/...`),
//! Anthropic (`/v1/messages`), Gemini (`/v1beta/models/{m}:generateContent`), Azure OpenAI
//! (`/openai/deployments/{d}/...`) and Bedrock (`/model/{id}/converse[-stream]`). Each replies
//! in its provider's documented shape, built here independently of `portcullis-wire` so tests
//! of the gateway's translators are not circular. Faults and recording work the same for all;
//! status faults answer in the error shape of the path's provider.
//!
//! Modules are per API family; `faults`, `flavor`, `recorder` and `respond` are shared.

mod anthropic;
mod azure;
pub mod bedrock;
pub mod eventstream_encode;
mod faults;
mod flavor;
pub mod gemini;
pub mod openai;
mod proxy;
mod recorder;
mod respond;
mod server;
mod sigv4;

use std::net::SocketAddr;
use std::sync::Arc;

pub use faults::Fault;
pub use proxy::{ForwardProxy, ProxiedRequest};
pub use recorder::RecordedRequest;
pub use server::CHUNK_DELAY_HEADER;

/// Behaviour switches of a mock upstream.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Keep a copy of every request (default `true`; the benchmark binary turns it off).
    pub record: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions { record: true }
    }
}

/// A running mock upstream provider. Stops (and closes its connections) when dropped.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl MockUpstream {
    /// Starts on 127.0.0.1:0 in the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start() -> MockUpstream {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        MockUpstream::start_on(addr)
            .await
            .expect("bind mock upstream on 127.0.0.1:0")
    }

    /// Starts on `addr` (port 0 picks a free port) with default options.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<MockUpstream> {
        MockUpstream::start_with(addr, MockOptions::default()).await
    }

    /// Starts on `addr` with `options`.
    pub async fn start_with(
        addr: SocketAddr,
        options: MockOptions,
    ) -> std::io::Result<MockUpstream> {
        let shared = Arc::new(server::Shared::new(options));
        let (addr, task) = server::spawn(addr, shared.clone()).await?;
        Ok(MockUpstream { addr, shared, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL, e.g. `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The host root, e.g. `http://127.0.0.1:PORT`: the base URL for Anthropic (`/v1/messages`),
    /// Gemini (`/v1beta/models/...`), Azure OpenAI (`/openai/deployments/...`) and Bedrock
    /// (`/model/...`).
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes Bedrock requests verify their SigV4 signature against these credentials:
    /// an unknown access key gets `403 UnrecognizedClientException`, a wrong signature
    /// `403 InvalidSignatureException`. Without this call only the presence and shape of
    /// `Authorization: AWS4-HMAC-SHA256 Credential=...` and `X-Amz-Date` are checked.
    pub fn expect_aws_credentials(&self, access_key: &str, secret_access_key: &str) {
        *recorder::lock(&self.shared.aws_credentials) = Some(bedrock::AwsCredentials {
            access_key: access_key.to_owned(),
            secret: secret_access_key.to_owned(),
        });
    }

    /// All requests received so far, in order (empty when recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.snapshot()
    }

    /// Number of requests recorded so far.
    pub fn request_count(&self) -> usize {
        self.shared.recorder.len()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.shared.recorder.clear();
    }

    /// Queues a fault applied to the next request (FIFO; each queued fault is consumed by
    /// exactly one request, whatever its path).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }

    /// Number of queued faults not yet consumed.
    pub fn pending_faults(&self) -> usize {
        self.shared.faults.len()
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
