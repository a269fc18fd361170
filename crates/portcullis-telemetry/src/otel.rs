//! OpenTelemetry traces over OTLP (HTTP/protobuf or gRPC): the exporter, the batching
//! tracer provider, the sampler and the W3C trace-context propagator. Nothing here runs
//! unless an endpoint is configured; the request path then only checks an `Option`.
//!
//! Spans are batched by the SDK's background thread. Its HTTP exports go through the
//! gateway's own reqwest (spawned on the tokio runtime the exporter was built in), so no
//! second HTTP stack is compiled in; gRPC uses tonic, whose channel runs on that runtime.

use bytes::Bytes;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::time::Duration;

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The standard environment variable naming the collector when the config does not.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard environment variable choosing the transport (`grpc`, `http/protobuf`).
pub const PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Protobuf over HTTP, POST `<endpoint>/v1/traces`.
    Http,
    /// gRPC `TraceService/Export`.
    Grpc,
}

/// What to export where.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Collector base URL (`/v1/traces` is appended for HTTP unless present).
    pub endpoint: String,
    /// Transport.
    pub protocol: Protocol,
    /// `service.name` resource attribute.
    pub service_name: String,
    /// Fraction of new root traces sampled (0.0–1.0); sampled parents are followed.
    pub sample_ratio: f64,
}

impl Settings {
    /// The URL spans are sent to.
    pub fn export_url(&self) -> String {
        let base = self.endpoint.trim_end_matches('/');
        match self.protocol {
            Protocol::Http if !base.ends_with("/v1/traces") => format!("{base}/v1/traces"),
            _ => base.to_string(),
        }
    }
}

/// The exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up OTLP trace export: {0}")]
pub struct OtelError(String);

/// A running trace pipeline.
#[derive(Debug)]
pub struct Otel {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl Otel {
    /// Builds the exporter and the tracer provider. Must be called inside a tokio runtime,
    /// which must outlive the pipeline (exports run on it).
    pub fn start(settings: &Settings) -> Result<Otel, OtelError> {
        let url = settings.export_url();
        let exporter = match settings.protocol {
            Protocol::Http => {
                let client = RuntimeClient {
                    client: reqwest::Client::builder()
                        .timeout(EXPORT_TIMEOUT)
                        .build()
                        .map_err(|e| OtelError(e.to_string()))?,
                    runtime: tokio::runtime::Handle::try_current()
                        .map_err(|e| OtelError(e.to_string()))?,
                };
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(url)
                    .with_timeout(EXPORT_TIMEOUT)
                    .build()
            }
            Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(url)
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
        }
        .map_err(|e| OtelError(e.to_string()))?;
        let ratio = settings.sample_ratio.clamp(0.0, 1.0);
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(settings.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("portcullis");
        Ok(Otel {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        })
    }

    /// The tracer spans are started with.
    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// W3C `traceparent`/`tracestate` extraction and injection.
    pub fn propagator(&self) -> &TraceContextPropagator {
        &self.propagator
    }

    /// Exports what is buffered and stops the pipeline (at shutdown). Blocks until the
    /// exporter is done: call it from a blocking context.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "trace export did not finish cleanly at shutdown");
        }
    }
}

/// Exports over the gateway's reqwest client, run on the gateway's runtime (the SDK's
/// export thread has none).
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut out = http::Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok::<_, reqwest::Error>(out)
        });
        Ok(task.await??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_export_url_gets_the_signal_path_once() {
        let s = |endpoint: &str, protocol| Settings {
            endpoint: endpoint.into(),
            protocol,
            service_name: "p".into(),
            sample_ratio: 1.0,
        };
        assert_eq!(
            s("http://c:4318", Protocol::Http).export_url(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            s("http://c:4318/", Protocol::Http).export_url(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            s("http://c:4318/v1/traces", Protocol::Http).export_url(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            s("http://c:4317", Protocol::Grpc).export_url(),
            "http://c:4317"
        );
    }
}

#[cfg(test)]
mod pipeline_tests {
    use super::*;

    /// Both transports build inside a runtime (connections are lazy) and shut down
    /// promptly with nothing buffered, even with no collector listening.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_transports_build_and_shut_down() {
        for protocol in [Protocol::Http, Protocol::Grpc] {
            let otel = Otel::start(&Settings {
                endpoint: "http://127.0.0.1:9".into(),
                protocol,
                service_name: "t".into(),
                sample_ratio: 1.0,
            })
            .unwrap();
            let started = std::time::Instant::now();
            tokio::task::spawn_blocking(move || otel.shutdown())
                .await
                .unwrap();
            assert!(started.elapsed() < Duration::from_secs(5), "{protocol:?}");
        }
    }
}
