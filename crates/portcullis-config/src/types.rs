//! The typed configuration document. Field names are a public contract: keep them.

use crate::units::{ByteSize, Seconds};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners, limits, timeouts, TLS and logging.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where keys and (later) policies, audit and usage live.
    #[serde(default)]
    pub store: StoreConfig,
    /// Upstream LLM providers the gateway may call.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Public model names clients send, each routed to one provider or a group of targets.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// Conditional routing rules: requests for a model that match go to another model.
    #[serde(default)]
    pub routing: Vec<crate::RoutingRule>,
    /// Shared rate-limit and budget counters for several gateway instances.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// Request logs in the store (retention, queue).
    #[serde(default)]
    pub logs: crate::LogsConfig,
    /// Scheduled reports.
    #[serde(default)]
    pub reports: crate::ReportsConfig,
    /// Audit-trail queue and forwarding (JSON lines file, syslog).
    #[serde(default)]
    pub audit: crate::security::AuditConfig,
    /// Anomaly alerts: rule thresholds, webhook, deduplication.
    #[serde(default)]
    pub alerts: crate::security::AlertsConfig,
    /// Plain HTTP services served under path prefixes (see [`crate::RouteConfig`]).
    #[serde(default)]
    pub routes: Vec<crate::RouteConfig>,
    /// The response cache; absent = no caching.
    #[serde(default)]
    pub cache: Option<crate::CacheConfig>,
    /// Traces (OpenTelemetry over OTLP).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// Telemetry exported to other systems.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OpenTelemetry traces over OTLP; off when absent (unless the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` environment variable is set).
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
}

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// Collector endpoint, e.g. `http://127.0.0.1:4318` (HTTP; `/v1/traces` is appended
    /// unless present) or `http://127.0.0.1:4317` (gRPC). Default: the environment's
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `http` (protobuf over HTTP, the default) or `grpc`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// `service.name` of the exported resource (default `portcullis`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Fraction of new traces sampled, 0.0 to 1.0 (default 1.0); a client's sampled
    /// `traceparent` is always followed.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

impl Default for OtlpConfig {
    fn default() -> OtlpConfig {
        OtlpConfig {
            endpoint: None,
            protocol: OtlpProtocol::default(),
            service_name: default_service_name(),
            sample_ratio: default_sample_ratio(),
        }
    }
}

fn default_service_name() -> String {
    "portcullis".into()
}
fn default_sample_ratio() -> f64 {
    1.0
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// Protobuf over HTTP (`/v1/traces`).
    #[default]
    Http,
    /// gRPC.
    Grpc,
}

/// Redis for shared limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:6379` (or `rediss://` for TLS).
    pub url: String,
    /// What limits do while Redis is unreachable: `closed` (refuse, the default) or `open`.
    #[serde(default)]
    pub fail_mode: RedisFailMode,
}

/// Behaviour of rate limits and budgets while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RedisFailMode {
    /// Refuse requests that need a limit check (enforcement first).
    #[default]
    Closed,
    /// Let them through unlimited (availability first).
    Open,
}

impl Config {
    /// The embedded default a new user gets with no config file: the in-process `mock`
    /// provider serving `mock-echo`, SQLite under ./portcullis-data/.
    pub fn embedded_default() -> Config {
        Config {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            providers: vec![ProviderConfig::new("mock", ProviderKind::Mock)],
            models: vec![ModelConfig::single("mock-echo", "mock", None)],
            routing: Vec::new(),
            redis: None,
            logs: crate::LogsConfig::default(),
            reports: crate::ReportsConfig::default(),
            audit: Default::default(),
            alerts: Default::default(),
            routes: Vec::new(),
            cache: None,
            telemetry: TelemetryConfig::default(),
        }
    }

    /// Finds a provider by name.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// Listener and request-handling settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Data-plane address (clients).
    pub listen: SocketAddr,
    /// Control-plane address (operators); keep it private.
    pub admin_listen: SocketAddr,
    /// Largest request body accepted; larger bodies get 413.
    pub max_body_size: ByteSize,
    /// Time limits for upstream calls and shutdown.
    pub timeouts: Timeouts,
    /// TLS for the data-plane listener.
    pub tls: Option<TlsConfig>,
    /// TLS for the admin listener.
    pub admin_tls: Option<TlsConfig>,
    /// `human` (default) or `json` log lines on stderr.
    pub log_format: LogFormat,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            max_body_size: ByteSize(10 * 1024 * 1024),
            timeouts: Timeouts::default(),
            tls: None,
            admin_tls: None,
            log_format: LogFormat::Human,
        }
    }
}

/// Time limits; each accepts "30s", "2m", "500ms" or a number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP + TLS connect to an upstream.
    pub connect: Seconds,
    /// Whole upstream exchange for a non-streaming request; time to response headers for a stream.
    pub request: Seconds,
    /// Longest silence allowed between two chunks of a streamed response.
    pub stream_idle: Seconds,
    /// How long in-flight requests and streams may run on after SIGTERM/SIGINT.
    pub shutdown_grace: Seconds,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Seconds(Duration::from_secs(10)),
            request: Seconds(Duration::from_secs(600)),
            stream_idle: Seconds(Duration::from_secs(120)),
            shutdown_grace: Seconds(Duration::from_secs(30)),
        }
    }
}

/// Certificate chain and private key files (PEM) for a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line for log pipelines.
    Json,
}

/// Store location.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://portcullis-data/portcullis.db".into(),
        }
    }
}

/// Which API family a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// api.openai.com (or a proxy of it).
    Openai,
    /// Any server with OpenAI's API shape: vLLM, Ollama, LM Studio, Together, Groq, ...
    OpenaiCompatible,
    /// The built-in in-process echo provider, for trying the gateway without an account.
    Mock,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini (generativelanguage API).
    Gemini,
    /// Azure OpenAI (deployments, api-version, api-key header).
    AzureOpenai,
    /// Mistral's OpenAI-like API with its own quirks.
    Mistral,
    /// AWS Bedrock Converse API, SigV4-signed.
    Bedrock,
}

impl ProviderKind {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai-compatible",
            ProviderKind::Mock => "mock",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::AzureOpenai => "azure-openai",
            ProviderKind::Mistral => "mistral",
            ProviderKind::Bedrock => "bedrock",
        }
    }

    /// Whether the kind needs `api_key`.
    pub fn needs_api_key(self) -> bool {
        matches!(
            self,
            ProviderKind::Openai
                | ProviderKind::Anthropic
                | ProviderKind::Gemini
                | ProviderKind::AzureOpenai
                | ProviderKind::Mistral
        )
    }

    /// Base URL used when the configuration gives none.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::Mistral => Some("https://api.mistral.ai/v1"),
            ProviderKind::OpenaiCompatible
            | ProviderKind::Mock
            | ProviderKind::AzureOpenai
            | ProviderKind::Bedrock => None,
        }
    }
}

/// A secret value (after `${ENV}` substitution). Debug never prints it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One upstream provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name models refer to.
    pub name: String,
    /// API family.
    pub kind: ProviderKind,
    /// Overrides the kind's default endpoint (proxies, regions, local servers, test doubles).
    pub base_url: Option<String>,
    /// Provider credential; write `${ENV_VAR}` to keep it out of the file.
    pub api_key: Option<Secret>,
    /// Extra headers sent with every upstream request (values may use `${ENV_VAR}`).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// PEM bundle of extra CA certificates trusted for this provider's HTTPS endpoint.
    pub ca_bundle: Option<PathBuf>,
    /// Azure OpenAI `api-version` query value (default 2024-10-21).
    pub api_version: Option<String>,
    /// AWS region (Bedrock).
    pub region: Option<String>,
    /// AWS access key id (Bedrock); defaults to `$AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<Secret>,
    /// AWS secret access key (Bedrock); defaults to `$AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret>,
    /// AWS session token for temporary credentials (Bedrock); defaults to `$AWS_SESSION_TOKEN`.
    pub session_token: Option<Secret>,
}

impl ProviderConfig {
    /// The effective base URL without a trailing slash.
    pub fn effective_base_url(&self) -> Option<String> {
        if let (None, ProviderKind::Bedrock, Some(region)) =
            (&self.base_url, self.kind, &self.region)
        {
            return Some(format!("https://bedrock-runtime.{region}.amazonaws.com"));
        }
        self.base_url
            .as_deref()
            .or(self.kind.default_base_url())
            .map(|u| u.trim_end_matches('/').to_string())
    }

    /// A bare provider of `kind` named `name`, every optional field empty.
    pub fn new(name: impl Into<String>, kind: ProviderKind) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            kind,
            base_url: None,
            api_key: None,
            headers: BTreeMap::new(),
            ca_bundle: None,
            api_version: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
        }
    }
}

/// A public model name and where it is served: one provider (`provider`, `upstream_model`)
/// or a group of `targets`, with its resilience settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// What clients send as `model`.
    pub name: String,
    /// Name of the provider serving it (a group of one target).
    pub provider: Option<String>,
    /// What the provider is asked for; defaults to `name`.
    pub upstream_model: Option<String>,
    /// Prices per million tokens, for cost accounting.
    pub price: Option<Price>,
    /// The group's targets, instead of `provider`.
    #[serde(default)]
    pub targets: Vec<crate::TargetConfig>,
    /// How requests are spread over the targets (default `weighted`).
    pub strategy: Option<crate::StrategyConfig>,
    /// Public model names tried in order when the group's own targets fail.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Retries on failed attempts.
    pub retry: Option<crate::RetryConfig>,
    /// Time limits (defaults: `server.timeouts`).
    pub timeouts: Option<crate::ModelTimeouts>,
    /// Circuit breaker of the group's targets.
    pub breaker: Option<crate::BreakerSettings>,
}

impl ModelConfig {
    /// The model name sent upstream.
    pub fn upstream(&self) -> &str {
        self.upstream_model.as_deref().unwrap_or(&self.name)
    }
}

/// USD prices per million tokens.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million prompt tokens.
    pub input_per_mtok: f64,
    /// Per million completion tokens.
    pub output_per_mtok: f64,
    /// Per million prompt tokens read from the provider's cache (default: the input price).
    pub cached_input_per_mtok: Option<f64>,
}

impl Price {
    /// Cost in micro-dollars of a call: cached prompt tokens at their own price.
    pub fn cost_micros(
        &self,
        prompt_tokens: u64,
        cached_tokens: u64,
        completion_tokens: u64,
    ) -> u64 {
        let cached = cached_tokens.min(prompt_tokens);
        let fresh = prompt_tokens - cached;
        let cached_price = self.cached_input_per_mtok.unwrap_or(self.input_per_mtok);
        // $/Mtok equals micro-dollars per token.
        let micros = fresh as f64 * self.input_per_mtok
            + cached as f64 * cached_price
            + completion_tokens as f64 * self.output_per_mtok;
        micros.round().max(0.0) as u64
    }
}
