//! Failures talking to an upstream, classified so the edge can map each to a status code.

use bytes::Bytes;

/// A failed upstream exchange. Never holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// DNS, TCP or TLS failure: the upstream could not be reached.
    #[error("cannot reach provider {provider}: {detail}")]
    Unreachable {
        /// Provider name from the configuration.
        provider: String,
        /// Low-level cause, for the log.
        detail: String,
    },
    /// The upstream did not answer (or went silent mid-stream) within its time limit.
    #[error("provider {provider} timed out ({phase})")]
    Timeout {
        /// Provider name.
        provider: String,
        /// Which limit: "request" or "stream idle".
        phase: &'static str,
    },
    /// The upstream answered with an error status.
    #[error("provider {provider} answered {status}")]
    Status {
        /// Provider name.
        provider: String,
        /// HTTP status from the upstream.
        status: u16,
        /// Retry-After header value, if any.
        retry_after: Option<String>,
        /// Error body (bounded), for message extraction.
        body: Bytes,
    },
    /// The upstream broke the protocol: malformed body, connection dropped mid-response.
    #[error("provider {provider} sent a broken response: {detail}")]
    Protocol {
        /// Provider name.
        provider: String,
        /// What broke, for the log.
        detail: String,
    },
}

/// A provider entry that cannot be turned into a client (bad CA bundle, bad header value).
#[derive(Debug, thiserror::Error)]
#[error("provider {provider}: {detail}")]
pub struct BuildError {
    /// Provider name.
    pub provider: String,
    /// What is wrong.
    pub detail: String,
}
