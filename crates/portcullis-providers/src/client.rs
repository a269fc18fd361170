//! One HTTP client per provider, with its base URL, credentials and time limits applied.

use crate::error::{BuildError, UpstreamError};
use crate::http::{self as upstream_http, UpstreamClient};
use crate::mock;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
use portcullis_config::{Config, ProviderConfig, ProviderKind, Timeouts};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The Anthropic API version the gateway speaks (overridable with a configured header).
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Azure OpenAI api-version used when the configuration gives none.
const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// Largest upstream error body kept for message extraction.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What the client asked for, which decides the upstream path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Chat completion / message generation.
    Chat,
    /// Embeddings.
    Embeddings,
    /// OpenAI Responses API (passthrough only).
    Responses,
}

impl Operation {
    /// Path below an OpenAI-style base URL.
    fn openai_path(self) -> &'static str {
        match self {
            Operation::Chat => "chat/completions",
            Operation::Embeddings => "embeddings",
            Operation::Responses => "responses",
        }
    }
}

/// The native wire format of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFormat {
    /// OpenAI Chat Completions (OpenAI, Azure, Mistral, compatible servers, mock).
    OpenAiChat,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini generateContent.
    Gemini,
    /// Bedrock Converse.
    Bedrock,
}

/// Percent-encodes a path segment (model ids may hold ':' or '/').
fn percent_encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

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

/// Time limits of one upstream call (see [`Provider::send_limited`]).
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Longest wait for the response headers.
    pub first_byte: Duration,
    /// When the whole exchange (a stream included) must be over.
    pub deadline: tokio::time::Instant,
    /// Longest silence between two stream chunks.
    pub idle: Duration,
}

/// How to call one configured provider.
#[derive(Debug)]
pub struct Provider {
    /// Name from the configuration.
    pub name: String,
    /// API family.
    pub kind: ProviderKind,
    base_url: String,
    api_version: String,
    headers: HeaderMap,
    secrets: Vec<String>,
    aws: Option<(crate::aws::sigv4::Credentials, String)>,
    client: UpstreamClient,
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
        let mut roots = system_roots();
        if let Some(path) = &config.ca_bundle {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read ca_bundle {}: {e}", path.display())))?;
            let certs = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(format!("ca_bundle {} is not PEM: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(fail(format!(
                    "ca_bundle {} holds no certificate",
                    path.display()
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    fail(format!(
                        "ca_bundle {} holds a bad certificate: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        let proxies = upstream_http::Proxies::from_env();
        let client = upstream_http::build(upstream_http::ClientSettings {
            roots,
            connect_timeout: timeouts.connect.0,
            proxies: proxies.clone(),
        })
        .map_err(|e| fail(format!("cannot build HTTP client: {e}")))?;

        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("portcullis/", env!("CARGO_PKG_VERSION"))),
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
            let (name, text) = match config.kind {
                ProviderKind::AzureOpenai => {
                    (HeaderName::from_static("api-key"), key.expose().to_string())
                }
                ProviderKind::Anthropic => (
                    HeaderName::from_static("x-api-key"),
                    key.expose().to_string(),
                ),
                ProviderKind::Gemini => (
                    HeaderName::from_static("x-goog-api-key"),
                    key.expose().to_string(),
                ),
                _ => (
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", key.expose()),
                ),
            };
            let mut value = HeaderValue::try_from(text)
                .map_err(|_| fail("api_key contains characters not allowed in a header".into()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if config.kind == ProviderKind::Anthropic && !headers.contains_key("anthropic-version") {
            headers.insert(
                "anthropic-version",
                HeaderValue::from_static(ANTHROPIC_VERSION),
            );
        }
        let aws = match (
            config.kind,
            &config.access_key_id,
            &config.secret_access_key,
        ) {
            (ProviderKind::Bedrock, Some(id), Some(secret)) => Some((
                crate::aws::sigv4::Credentials {
                    access_key_id: id.expose().to_string(),
                    secret_access_key: secret.expose().to_string(),
                    session_token: config
                        .session_token
                        .as_ref()
                        .map(|t| t.expose().to_string()),
                },
                config.region.clone().unwrap_or_default(),
            )),
            _ => None,
        };
        let base_url = config.effective_base_url().unwrap_or_default();
        if let Some(auth) = proxies.plain_authorization(&base_url) {
            headers.insert(http::header::PROXY_AUTHORIZATION, auth);
        }
        let secrets = config
            .api_key
            .iter()
            .chain(config.headers.values())
            .chain(config.secret_access_key.iter())
            .chain(config.session_token.iter())
            .map(|s| s.expose().to_string())
            .filter(|s| s.len() >= 4)
            .collect();
        Ok(Provider {
            name: config.name.clone(),
            kind: config.kind,
            base_url,
            api_version: config
                .api_version
                .clone()
                .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_string()),
            headers,
            secrets,
            aws,
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

    /// The wire format this provider speaks natively.
    pub fn format(&self) -> UpstreamFormat {
        match self.kind {
            ProviderKind::Openai
            | ProviderKind::OpenaiCompatible
            | ProviderKind::Mock
            | ProviderKind::AzureOpenai
            | ProviderKind::Mistral => UpstreamFormat::OpenAiChat,
            ProviderKind::Anthropic => UpstreamFormat::Anthropic,
            ProviderKind::Gemini => UpstreamFormat::Gemini,
            ProviderKind::Bedrock => UpstreamFormat::Bedrock,
        }
    }

    /// Serializes an OpenAI-format body for this provider, adapting the known quirks:
    /// streams ask for usage (Mistral sends it unasked and rejects `stream_options`), and
    /// Mistral's renamed fields (`random_seed`, `max_tokens`, tool_choice `any`).
    pub fn openai_body(
        &self,
        mut fields: serde_json::Map<String, serde_json::Value>,
        stream: bool,
    ) -> Vec<u8> {
        use serde_json::Value;
        if self.kind == ProviderKind::Mistral {
            fields.remove("stream_options");
            if let Some(seed) = fields.remove("seed") {
                fields.entry("random_seed").or_insert(seed);
            }
            if let Some(max) = fields.remove("max_completion_tokens") {
                fields.entry("max_tokens").or_insert(max);
            }
            if fields.get("tool_choice") == Some(&Value::String("required".into())) {
                fields.insert("tool_choice".into(), Value::String("any".into()));
            }
        } else if stream {
            portcullis_wire::openai::request_stream_usage(&mut fields);
        }
        serde_json::to_vec(&fields).unwrap_or_default()
    }

    /// The upstream body of an OpenAI-format request sent to this (OpenAI-format)
    /// provider: the client's fields with the upstream model, re-encoded without copying
    /// them; Mistral's renamed fields go through [`Provider::openai_body`] (an error when
    /// one of the client's fields does not parse).
    pub fn openai_request_body(
        &self,
        request: &portcullis_wire::openai::PassthroughRequest,
        upstream_model: &str,
        stream: bool,
    ) -> Result<Vec<u8>, portcullis_wire::WireError> {
        if self.kind == ProviderKind::Mistral {
            let fields = request.upstream_fields(upstream_model)?;
            return Ok(self.openai_body(fields, stream));
        }
        Ok(request.encode_upstream(upstream_model, stream))
    }

    /// Whether this provider can serve `op` at all.
    pub fn supports(&self, op: Operation) -> bool {
        match op {
            Operation::Chat => true,
            Operation::Embeddings => self.format() == UpstreamFormat::OpenAiChat,
            Operation::Responses => matches!(
                self.kind,
                ProviderKind::Openai | ProviderKind::OpenaiCompatible
            ),
        }
    }

    /// The upstream URL for `op` on `model` (the upstream model or Azure deployment name).
    pub fn endpoint(&self, op: Operation, model: &str, stream: bool) -> String {
        let base = &self.base_url;
        match (self.kind, op) {
            (ProviderKind::AzureOpenai, _) => format!(
                "{base}/openai/deployments/{}/{}?api-version={}",
                percent_encode_segment(model),
                op.openai_path(),
                self.api_version
            ),
            (ProviderKind::Anthropic, _) => format!("{base}/v1/messages"),
            (ProviderKind::Gemini, _) if stream => format!(
                "{base}/v1beta/models/{}:streamGenerateContent?alt=sse",
                percent_encode_segment(model)
            ),
            (ProviderKind::Gemini, _) => {
                format!(
                    "{base}/v1beta/models/{}:generateContent",
                    percent_encode_segment(model)
                )
            }
            (ProviderKind::Bedrock, _) => format!(
                "{base}/model/{}/{}",
                percent_encode_segment(model),
                if stream {
                    "converse-stream"
                } else {
                    "converse"
                }
            ),
            _ => format!("{base}/{}", op.openai_path()),
        }
    }

    /// The limits of a call made with the server-wide timeouts, starting now.
    pub fn default_limits(&self) -> CallLimits {
        CallLimits {
            first_byte: self.request_timeout,
            deadline: tokio::time::Instant::now() + self.request_timeout,
            idle: self.stream_idle_timeout,
        }
    }

    /// Sends a JSON body for `op` on `model` with the server-wide timeouts. Error statuses
    /// come back as `UpstreamError::Status`; a stream comes back as chunks within the idle limit.
    pub async fn send(
        &self,
        op: Operation,
        model: &str,
        body: Vec<u8>,
        stream: bool,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.send_with_headers(op, model, body, stream, &http::HeaderMap::new())
            .await
    }

    /// [`Provider::send`] with extra request headers (e.g. W3C `traceparent`); they never
    /// replace the provider's own authentication headers.
    pub async fn send_with_headers(
        &self,
        op: Operation,
        model: &str,
        body: Vec<u8>,
        stream: bool,
        extra: &http::HeaderMap,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.send_limited(op, model, body, stream, self.default_limits(), extra)
            .await
    }

    /// Like [`Provider::send_with_headers`] within `limits`: the response headers must come
    /// within `first_byte` (and before the deadline), a whole body before the deadline, and
    /// each stream chunk within `idle` of the previous one (and before the deadline).
    pub async fn send_limited(
        &self,
        op: Operation,
        model: &str,
        body: Vec<u8>,
        stream: bool,
        limits: CallLimits,
        extra: &http::HeaderMap,
    ) -> Result<UpstreamResponse, UpstreamError> {
        if self.kind == ProviderKind::Mock {
            return mock::respond(&self.name, &format!("/{}", op.openai_path()), &body, stream);
        }
        let url = self.endpoint(op, model, stream);
        let mut headers = self.headers.clone();
        for (name, value) in extra {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        self.sign(&url, &body, &mut headers)?;
        let mut request = http::Request::post(url.as_str())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| UpstreamError::Unreachable {
                provider: self.name.clone(),
                detail: format!("bad upstream URL {url}: {e}"),
            })?;
        *request.headers_mut() = headers;
        let timeout = |phase| UpstreamError::Timeout {
            provider: self.name.clone(),
            phase,
        };
        let first_byte_at = limits
            .deadline
            .min(tokio::time::Instant::now() + limits.first_byte);
        let phase = if first_byte_at < limits.deadline {
            "first byte"
        } else {
            "request"
        };
        let response = tokio::time::timeout_at(first_byte_at, self.client.request(request))
            .await
            .map_err(|_| timeout(phase))?
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let content_type = response.headers().get(http::header::CONTENT_TYPE).cloned();
        if status >= 400 {
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body =
                tokio::time::timeout_at(limits.deadline, read_bounded(response, MAX_ERROR_BODY))
                    .await
                    .unwrap_or_default();
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
                body: UpstreamBody::Stream(self.idle_limited(response, limits)),
            });
        }
        let body = tokio::time::timeout_at(limits.deadline, response.into_body().collect())
            .await
            .map_err(|_| timeout("request"))?
            .map_err(|e| UpstreamError::Protocol {
                provider: self.name.clone(),
                detail: error_chain(&e),
            })?
            .to_bytes();
        Ok(UpstreamResponse {
            status,
            content_type,
            body: UpstreamBody::Full(body),
        })
    }

    /// Adds per-request authentication (AWS SigV4 for Bedrock); other kinds carry static headers.
    fn sign(&self, url: &str, body: &[u8], headers: &mut HeaderMap) -> Result<(), UpstreamError> {
        let Some((credentials, region)) = &self.aws else {
            return Ok(());
        };
        let fail = |detail: String| UpstreamError::Unreachable {
            provider: self.name.clone(),
            detail,
        };
        let parsed: http::Uri = url.parse().map_err(|e| fail(format!("bad URL: {e}")))?;
        let host = match (parsed.host(), parsed.port_u16()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(fail("URL without host".into())),
        };
        let request = crate::aws::sigv4::SignableRequest {
            method: "POST",
            host: &host,
            path: parsed.path(),
            query: parsed.query().unwrap_or(""),
            headers: &[("content-type", "application/json")],
            payload: body,
        };
        let date = crate::aws::sigv4::amz_date(std::time::SystemTime::now());
        let params = crate::aws::sigv4::SigningParams {
            credentials,
            region,
            service: crate::aws::BEDROCK_SERVICE,
            amz_date: &date,
            content_sha256_header: false,
        };
        let signed = crate::aws::sigv4::sign(&request, &params).map_err(|e| fail(e.to_string()))?;
        for (name, value) in signed {
            let mut value =
                HeaderValue::try_from(value).map_err(|_| fail("unsignable header".into()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(())
    }

    fn idle_limited(
        &self,
        response: http::Response<Incoming>,
        limits: CallLimits,
    ) -> BoxStream<'static, Result<Bytes, UpstreamError>> {
        let provider = self.name.clone();
        let chunks = BodyDataStream::new(response.into_body());
        futures_util::stream::unfold(Some(chunks), move |state| {
            let provider = provider.clone();
            async move {
                let mut chunks = state?;
                let idle_at = tokio::time::Instant::now() + limits.idle;
                let until = idle_at.min(limits.deadline);
                match tokio::time::timeout_at(until, chunks.next()).await {
                    Err(_) => Some((
                        Err(UpstreamError::Timeout {
                            provider,
                            phase: if until < idle_at {
                                "request"
                            } else {
                                "stream idle"
                            },
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

    fn transport_error(&self, e: &hyper_util::client::legacy::Error) -> UpstreamError {
        let provider = self.name.clone();
        let detail = error_chain(e);
        if e.is_connect() && upstream_http::is_connect_timeout(e) {
            UpstreamError::Timeout {
                provider,
                phase: "connect",
            }
        } else {
            // Refused or failed connect, TLS failure, connection closed before a
            // response, ...: nothing usable came back, which for the client is the same
            // as unreachable.
            UpstreamError::Unreachable { provider, detail }
        }
    }
}

/// The system's trust roots (as reqwest loaded them: certificates that fail to load are
/// skipped, and a system without any still accepts a configured `ca_bundle`).
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::debug!(%error, "skipping a system trust root that did not load");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}

/// Up to `limit` bytes of an (error) response body; what cannot be read is left out.
async fn read_bounded(response: http::Response<Incoming>, limit: usize) -> Bytes {
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    Bytes::from(out)
}

/// The error and its sources on one line (hyper hides the useful part in sources).
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
