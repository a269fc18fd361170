//! One HTTP client per provider, with its base URL, credentials and time limits applied.

use crate::error::{BuildError, UpstreamError};
use crate::mock;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_config::{Config, ProviderConfig, ProviderKind, Timeouts};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Largest upstream error body kept for message extraction.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Body of a successful upstream answer.
pub enum UpstreamBody {
    /// A complete body (non-streaming requests).
    Full(Bytes),
    /// Chunks as they arrive, each within the stream-idle limit.
    Stream(BoxStream<'static, Result<Bytes, UpstreamError>>),
}

/// A successful (2xx) upstream answer.
pub struct UpstreamResponse {
    /// HTTP status.
    pub status: u16,
    /// Content-Type as sent by the upstream.
    pub content_type: Option<HeaderValue>,
    /// The body.
    pub body: UpstreamBody,
}

/// How to call one configured provider.
#[derive(Debug)]
pub struct Provider {
    /// Name from the configuration.
    pub name: String,
    /// API family.
    pub kind: ProviderKind,
    base_url: String,
    headers: HeaderMap,
    secrets: Vec<String>,
    client: reqwest::Client,
    request_timeout: Duration,
    stream_idle_timeout: Duration,
}

/// All configured providers by name.
#[derive(Debug, Default)]
pub struct Providers {
    by_name: HashMap<String, Arc<Provider>>,
}

impl Providers {
    /// Builds a client for every provider in the configuration.
    pub fn from_config(config: &Config) -> Result<Providers, BuildError> {
        let mut by_name = HashMap::new();
        for p in &config.providers {
            by_name.insert(
                p.name.clone(),
                Arc::new(Provider::new(p, &config.server.timeouts)?),
            );
        }
        Ok(Providers { by_name })
    }

    /// The provider named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.by_name.get(name)
    }
}

impl Provider {
    /// Builds the client: trust roots (system + optional CA bundle), credentials, headers.
    pub fn new(config: &ProviderConfig, timeouts: &Timeouts) -> Result<Provider, BuildError> {
        let fail = |detail: String| BuildError {
            provider: config.name.clone(),
            detail,
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeouts.connect.0)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_bundle {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read ca_bundle {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail(format!("ca_bundle {} is not PEM: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(fail(format!(
                    "ca_bundle {} holds no certificate",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| fail(format!("cannot build HTTP client: {e}")))?;

        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in &config.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| fail(format!("invalid header name {name}")))?;
            let mut value = HeaderValue::try_from(value.expose())
                .map_err(|_| fail(format!("invalid value for header {name}")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(key) = &config.api_key {
            let mut value = HeaderValue::try_from(format!("Bearer {}", key.expose()))
                .map_err(|_| fail("api_key contains characters not allowed in a header".into()))?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let secrets = config
            .api_key
            .iter()
            .chain(config.headers.values())
            .map(|s| s.expose().to_string())
            .filter(|s| s.len() >= 4)
            .collect();
        Ok(Provider {
            name: config.name.clone(),
            kind: config.kind,
            base_url: config.effective_base_url().unwrap_or_default(),
            headers,
            secrets,
            client,
            request_timeout: timeouts.request.0,
            stream_idle_timeout: timeouts.stream_idle.0,
        })
    }

    /// Removes this provider's credentials from text that came back from the upstream
    /// (some providers echo the key in their error messages) before it goes anywhere else.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    /// POSTs a JSON body to `path` (e.g. `/chat/completions`) under the provider's base URL.
    /// Error statuses come back as `UpstreamError::Status`.
    pub async fn post_json(
        &self,
        path: &str,
        body: Vec<u8>,
        stream: bool,
    ) -> Result<UpstreamResponse, UpstreamError> {
        if self.kind == ProviderKind::Mock {
            return mock::respond(&self.name, path, &body, stream);
        }
        let request = self
            .client
            .post(format!("{}{}", self.base_url, path))
            .headers(self.headers.clone())
            .body(body);
        let timeout = |phase| UpstreamError::Timeout {
            provider: self.name.clone(),
            phase,
        };
        let exchange = async {
            let response = request.send().await.map_err(|e| self.transport_error(e))?;
            let status = response.status().as_u16();
            let content_type = response.headers().get(http::header::CONTENT_TYPE).cloned();
            if status >= 400 {
                let retry_after = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = read_bounded(response, MAX_ERROR_BODY).await;
                return Err(UpstreamError::Status {
                    provider: self.name.clone(),
                    status,
                    retry_after,
                    body,
                });
            }
            if stream {
                return Ok(UpstreamResponse {
                    status,
                    content_type,
                    body: UpstreamBody::Stream(self.idle_limited(response)),
                });
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(e))?;
            Ok(UpstreamResponse {
                status,
                content_type,
                body: UpstreamBody::Full(body),
            })
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| timeout("request"))?
    }

    fn idle_limited(
        &self,
        response: reqwest::Response,
    ) -> BoxStream<'static, Result<Bytes, UpstreamError>> {
        let provider = self.name.clone();
        let idle = self.stream_idle_timeout;
        let chunks = response.bytes_stream();
        futures_util::stream::unfold(Some(chunks), move |state| {
            let provider = provider.clone();
            async move {
                let mut chunks = state?;
                match tokio::time::timeout(idle, chunks.next()).await {
                    Err(_) => Some((
                        Err(UpstreamError::Timeout {
                            provider,
                            phase: "stream idle",
                        }),
                        None,
                    )),
                    Ok(None) => None,
                    Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
                    Ok(Some(Err(e))) => Some((
                        Err(UpstreamError::Protocol {
                            provider,
                            detail: format!("stream interrupted: {}", error_chain(&e)),
                        }),
                        None,
                    )),
                }
            }
        })
        .boxed()
    }

    fn transport_error(&self, e: reqwest::Error) -> UpstreamError {
        let provider = self.name.clone();
        let detail = error_chain(&e);
        if e.is_timeout() {
            UpstreamError::Timeout {
                provider,
                phase: "connect",
            }
        } else if e.is_connect() {
            UpstreamError::Unreachable { provider, detail }
        } else if e.is_body() || e.is_decode() {
            UpstreamError::Protocol { provider, detail }
        } else {
            // Connection closed before a response, TLS alert after connect, ...: nothing
            // usable came back, which for the client is the same as unreachable.
            UpstreamError::Unreachable { provider, detail }
        }
    }
}

async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Bytes {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    Bytes::from(out)
}

/// The error and its sources on one line (reqwest hides the useful part in sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
