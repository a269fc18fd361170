//! OpenTelemetry spans of the data plane, when OTLP export is configured: one SERVER span
//! per request (continuing the client's W3C `traceparent`) and one CLIENT span per upstream
//! attempt, named and attributed after the GenAI semantic conventions
//! (`{gen_ai.operation.name} {gen_ai.request.model}`, `gen_ai.provider.name`, usage, ...),
//! whose context is sent upstream as `traceparent`. Both end when the response body ends
//! (streams included), from the access note's finish.
//!
//! Not configured, none of this runs: the middleware is not installed, the note's trace
//! slot stays empty and every hook below is one atomic load.

use crate::access::AccessNote;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use portcullis_config::{Config, OtlpProtocol, ProviderKind};
use portcullis_providers::{Operation, Provider, UpstreamError, UpstreamResponse};
use portcullis_telemetry::otel::{self, Otel, Protocol, Settings};
use portcullis_wire::openai::{PassthroughRequest, Usage};
use std::sync::{Arc, Mutex};

/// The export settings from the config's `telemetry.otlp`, or from the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (and `OTEL_EXPORTER_OTLP_PROTOCOL`) when the config has
/// none; `None` when neither names an endpoint.
pub fn settings(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Option<Settings> {
    let configured = config.telemetry.otlp.clone();
    let endpoint = configured
        .as_ref()
        .and_then(|o| o.endpoint.clone())
        .or_else(|| env(otel::ENDPOINT_ENV).filter(|e| !e.trim().is_empty()))?;
    let o = configured.unwrap_or_default();
    let protocol = match (config.telemetry.otlp.as_ref(), env(otel::PROTOCOL_ENV)) {
        (Some(_), _) => o.protocol,
        (None, Some(p)) if p.trim() == "grpc" => OtlpProtocol::Grpc,
        (None, _) => OtlpProtocol::Http,
    };
    Some(Settings {
        endpoint,
        protocol: match protocol {
            OtlpProtocol::Http => Protocol::Http,
            OtlpProtocol::Grpc => Protocol::Grpc,
        },
        service_name: o.service_name,
        sample_ratio: o.sample_ratio,
    })
}

/// The trace of one request: its SERVER span and the current upstream attempt.
pub struct RequestTrace {
    otel: Arc<Otel>,
    root: Context,
    /// Request parameters, copied onto every attempt span.
    params: Mutex<Vec<KeyValue>>,
    attempt: Mutex<Option<Context>>,
}

/// Middleware (installed only when export is configured): starts the request span from
/// the client's trace context and puts it on the access note.
pub async fn start(State(otel): State<Arc<Otel>>, request: Request, next: Next) -> Response {
    if let Some(note) = request.extensions().get::<Arc<AccessNote>>() {
        let parent = otel
            .propagator()
            .extract(&HeaderExtractor(request.headers()));
        let route = request.uri().path().to_string();
        let span = otel
            .tracer()
            .span_builder(format!("{} {route}", request.method()))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", request.method().to_string()),
                KeyValue::new("http.route", route.clone()),
                KeyValue::new("url.path", route),
            ])
            .start_with_context(otel.tracer(), &parent);
        let root = parent.with_span(span);
        note.set_trace(RequestTrace {
            otel: otel.clone(),
            root,
            params: Mutex::new(Vec::new()),
            attempt: Mutex::new(None),
        });
    }
    next.run(request).await
}

/// `gen_ai.operation.name` of an operation.
fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Chat => "chat",
        Operation::Embeddings => "embeddings",
        Operation::Responses => "generate_content",
    }
}

/// `gen_ai.provider.name` of a provider kind (well-known values where the conventions
/// have one).
fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "openai",
        ProviderKind::AzureOpenai => "azure.ai.openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Gemini => "gcp.gemini",
        ProviderKind::Mistral => "mistral_ai",
        ProviderKind::Bedrock => "aws.bedrock",
        ProviderKind::OpenaiCompatible => "openai",
        ProviderKind::Mock => "portcullis.mock",
    }
}

impl RequestTrace {
    /// Records what the client asked for on the request span.
    fn request(&self, op: Operation, model: &str, head: &PassthroughRequest) {
        let span = self.root.span();
        span.set_attribute(KeyValue::new("gen_ai.operation.name", operation_name(op)));
        span.set_attribute(KeyValue::new("gen_ai.request.model", model.to_string()));
        let mut params = Vec::new();
        // Span attributes only: a field that does not parse is left out (the request
        // fails where the field decides something).
        let field = |name| head.get(name).ok().flatten();
        let max_tokens = field("max_tokens")
            .or_else(|| field("max_completion_tokens"))
            .and_then(|v| v.as_i64());
        if let Some(n) = max_tokens {
            params.push(KeyValue::new("gen_ai.request.max_tokens", n));
        }
        if let Some(t) = field("temperature").and_then(|v| v.as_f64()) {
            params.push(KeyValue::new("gen_ai.request.temperature", t));
        }
        for kv in &params {
            span.set_attribute(kv.clone());
        }
        *self.params.lock().unwrap_or_else(|p| p.into_inner()) = params;
    }

    /// Starts an upstream attempt's CLIENT span (ending any previous one) and returns the
    /// headers carrying its context.
    fn attempt(&self, provider: &Provider, op: Operation, model: &str) -> HeaderMap {
        let tracer = self.otel.tracer();
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", operation_name(op)),
            KeyValue::new("gen_ai.provider.name", provider_name(provider.kind)),
            KeyValue::new("gen_ai.request.model", model.to_string()),
        ];
        attributes.extend(
            self.params
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        if let Ok(url) = reqwest::Url::parse(&provider.endpoint(op, model, false)) {
            if let Some(host) = url.host_str() {
                attributes.push(KeyValue::new("server.address", host.to_string()));
            }
            if let Some(port) = url.port_or_known_default() {
                attributes.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        let span = tracer
            .span_builder(format!("{} {model}", operation_name(op)))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(tracer, &self.root);
        let cx = self.root.with_span(span);
        let mut headers = HeaderMap::new();
        self.otel
            .propagator()
            .inject_context(&cx, &mut HeaderInjector(&mut headers));
        let previous = self
            .attempt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(cx);
        if let Some(previous) = previous {
            previous.span().end();
        }
        headers
    }

    /// Records the attempt's answer (status or failure class); a failed attempt ends now.
    fn answered(&self, result: &Result<UpstreamResponse, UpstreamError>) {
        let mut slot = self.attempt.lock().unwrap_or_else(|p| p.into_inner());
        let Some(cx) = slot.as_ref() else { return };
        let span = cx.span();
        match result {
            Ok(answer) => {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(answer.status),
                ));
            }
            Err(e) => {
                if let UpstreamError::Status { status, .. } = e {
                    span.set_attribute(KeyValue::new(
                        "http.response.status_code",
                        i64::from(*status),
                    ));
                }
                let class = upstream_error_type(e);
                span.set_attribute(KeyValue::new("error.type", class));
                span.set_status(Status::error(class));
                span.end();
                *slot = None;
            }
        }
    }

    /// Records the response model and finish reasons of a complete answer (OpenAI or
    /// Anthropic body, as sent to the client).
    fn response(&self, body: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Choice {
            finish_reason: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Probe {
            model: Option<String>,
            #[serde(default)]
            choices: Vec<Choice>,
            stop_reason: Option<String>,
        }
        let Ok(probe) = serde_json::from_slice::<Probe>(body) else {
            return;
        };
        let reasons: Vec<opentelemetry::StringValue> = probe
            .choices
            .into_iter()
            .filter_map(|c| c.finish_reason)
            .chain(probe.stop_reason)
            .map(Into::into)
            .collect();
        for cx in [Some(self.root.clone()), self.current_attempt()]
            .into_iter()
            .flatten()
        {
            let span = cx.span();
            if let Some(model) = &probe.model {
                span.set_attribute(KeyValue::new("gen_ai.response.model", model.clone()));
            }
            if !reasons.is_empty() {
                span.set_attribute(KeyValue::new(
                    "gen_ai.response.finish_reasons",
                    opentelemetry::Value::Array(reasons.clone().into()),
                ));
            }
        }
    }

    /// Sets an attribute on the request span and the current attempt.
    fn set_both(&self, kv: KeyValue) {
        if let Some(cx) = self.current_attempt() {
            cx.span().set_attribute(kv.clone());
        }
        self.root.span().set_attribute(kv);
    }

    fn current_attempt(&self) -> Option<Context> {
        self.attempt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ends the attempt and the request span with the final status and usage.
    pub(crate) fn finish(&self, status: u16, error: Option<&str>, usage: Option<Usage>) {
        let attempt = self
            .attempt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for (cx, is_root) in [(attempt, false), (Some(self.root.clone()), true)] {
            let Some(cx) = cx else { continue };
            let span = cx.span();
            if let Some(u) = usage {
                span.set_attribute(KeyValue::new(
                    "gen_ai.usage.input_tokens",
                    u.prompt_tokens as i64,
                ));
                span.set_attribute(KeyValue::new(
                    "gen_ai.usage.output_tokens",
                    u.completion_tokens as i64,
                ));
            }
            if is_root {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                if status >= 400 {
                    let kind = error.unwrap_or("_OTHER").to_string();
                    span.set_attribute(KeyValue::new("error.type", kind.clone()));
                    if status >= 500 {
                        span.set_status(Status::error(kind));
                    }
                }
            }
            span.end();
        }
    }
}

/// `error.type` of a failed upstream attempt.
fn upstream_error_type(e: &UpstreamError) -> &'static str {
    match e {
        UpstreamError::Timeout { .. } => "timeout",
        UpstreamError::Status { status, .. } if *status == 429 => "rate_limited",
        UpstreamError::Status { status, .. } if *status >= 500 => "upstream_5xx",
        UpstreamError::Status { .. } => "upstream_4xx",
        UpstreamError::Unreachable { .. } => "upstream_unreachable",
        UpstreamError::Protocol { .. } => "upstream_protocol",
    }
}

/// Records the request's model and sampling parameters (no-op when not traced).
pub fn request(note: &AccessNote, op: Operation, model: &str, head: &PassthroughRequest) {
    if let Some(t) = note.trace() {
        t.request(op, model, head);
    }
}

/// Starts an upstream attempt span; the returned headers (`traceparent`) go upstream.
/// Empty when not traced.
pub fn attempt(note: &AccessNote, provider: &Provider, op: Operation, model: &str) -> HeaderMap {
    match note.trace() {
        Some(t) => t.attempt(provider, op, model),
        None => HeaderMap::new(),
    }
}

/// Records the upstream answer of the current attempt (no-op when not traced).
pub fn answered(note: &AccessNote, result: &Result<UpstreamResponse, UpstreamError>) {
    if let Some(t) = note.trace() {
        t.answered(result);
    }
}

/// Records the model named at the start of a translated stream.
pub fn response_model(note: &AccessNote, model: &str) {
    if let (Some(t), false) = (note.trace(), model.is_empty()) {
        t.set_both(KeyValue::new("gen_ai.response.model", model.to_string()));
    }
}

/// Records the finish reason at the end of a translated stream.
pub fn finish_reason(note: &AccessNote, reason: &str) {
    if let Some(t) = note.trace() {
        let reasons: Vec<opentelemetry::StringValue> = vec![reason.to_string().into()];
        t.set_both(KeyValue::new(
            "gen_ai.response.finish_reasons",
            opentelemetry::Value::Array(reasons.into()),
        ));
    }
}

/// Records the response model and finish reasons of a complete answer body.
pub fn response(note: &AccessNote, body: &[u8]) {
    if let Some(t) = note.trace() {
        t.response(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_config_or_the_standard_environment() {
        let mut config = Config::embedded_default();
        let none = |_: &str| None;
        assert_eq!(settings(&config, &none), None, "off by default");
        let env = |name: &str| match name {
            otel::ENDPOINT_ENV => Some("http://collector:4317".to_string()),
            otel::PROTOCOL_ENV => Some("grpc".to_string()),
            _ => None,
        };
        let s = settings(&config, &env).unwrap();
        assert_eq!(s.endpoint, "http://collector:4317");
        assert_eq!(s.protocol, Protocol::Grpc);
        assert_eq!(
            (s.service_name.as_str(), s.sample_ratio),
            ("portcullis", 1.0)
        );

        config.telemetry.otlp = Some(portcullis_config::OtlpConfig {
            endpoint: Some("http://127.0.0.1:4318".into()),
            sample_ratio: 0.5,
            ..Default::default()
        });
        let s = settings(&config, &env).unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:4318", "config wins");
        assert_eq!(s.protocol, Protocol::Http);
        assert_eq!(s.sample_ratio, 0.5);

        config.telemetry.otlp.as_mut().unwrap().endpoint = None;
        assert_eq!(
            settings(&config, &none),
            None,
            "a section without endpoint and no env"
        );
        assert_eq!(
            settings(&config, &env).unwrap().endpoint,
            "http://collector:4317"
        );
    }
}
