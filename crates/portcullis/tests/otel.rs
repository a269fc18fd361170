//! OpenTelemetry traces end to end: the real binary exports OTLP/HTTP protobuf to a
//! collector in this test, which decodes the export; spans carry the GenAI attributes,
//! the upstream attempt is a child of the request span, a client's `traceparent` is
//! continued, and the upstream receives a `traceparent` of the same trace.

mod common;

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use common::{compat_provider, Gateway, Spec};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};
use portcullis_testkit::MockUpstream;
use prost::Message;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A collector: decodes every POST /v1/traces and keeps (service.name, span).
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

impl Collector {
    async fn start() -> (Collector, SocketAddr) {
        let collector = Collector::default();
        let sink = collector.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| {
                let sink = sink.clone();
                async move {
                    let export = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    for rs in export.resource_spans {
                        let service = rs
                            .resource
                            .as_ref()
                            .and_then(|r| attr(&r.attributes, "service.name"))
                            .and_then(as_str)
                            .unwrap_or_default();
                        for ss in rs.scope_spans {
                            for span in ss.spans {
                                sink.spans.lock().unwrap().push((service.clone(), span));
                            }
                        }
                    }
                    ""
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (collector, addr)
    }

    /// Spans of `trace_id`, once at least `n` have arrived (10 s at most).
    async fn trace(&self, trace_id: &[u8], n: usize) -> Vec<(String, Span)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans: Vec<_> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, s)| s.trace_id == trace_id)
                .cloned()
                .collect();
            if spans.len() >= n || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key)?.value.as_ref()
}

fn as_str(v: &AnyValue) -> Option<String> {
    match &v.value {
        Some(Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

fn s(span: &Span, key: &str) -> String {
    attr(&span.attributes, key)
        .and_then(as_str)
        .unwrap_or_else(|| {
            panic!(
                "{} has no string attribute {key}: {:?}",
                span.name, span.attributes
            )
        })
}

fn i(span: &Span, key: &str) -> i64 {
    match attr(&span.attributes, key).and_then(|v| v.value.clone()) {
        Some(Value::IntValue(n)) => n,
        other => panic!("{} has no int attribute {key}: {other:?}", span.name),
    }
}

fn f(span: &Span, key: &str) -> f64 {
    match attr(&span.attributes, key).and_then(|v| v.value.clone()) {
        Some(Value::DoubleValue(n)) => n,
        other => panic!("{} has no double attribute {key}: {other:?}", span.name),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn gateway(mock: &MockUpstream, collector: SocketAddr) -> Gateway {
    let body = format!(
        "providers:\n{}models:\n  - name: team-gpt\n    provider: up\n    upstream_model: mock-gpt\n  - name: flaky\n    provider: up\n    upstream_model: fault-status-503\ntelemetry:\n  otlp:\n    endpoint: http://{collector}\n    protocol: http\n    service_name: portcullis-e2e\n    sample_ratio: 1.0\n",
        compat_provider("up", &mock.base_url(), "    api_key: sk-otel-test-0123456789\n")
    );
    Gateway::start(Spec::new(body).env("OTEL_BSP_SCHEDULE_DELAY", "50")).await
}

#[tokio::test]
async fn request_and_attempt_spans_follow_the_client_trace_and_reach_the_upstream() {
    let mock = MockUpstream::start().await;
    let (collector, addr) = Collector::start().await;
    let gw = gateway(&mock, addr).await;
    let key = gw.live_key("client", &[]).await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let r = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(
            &json!({"model": "team-gpt", "max_tokens": 50, "temperature": 0.25,
                      "messages": [{"role": "user", "content": "trace me"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();

    let trace_bytes: Vec<u8> = (0..16)
        .map(|k| u8::from_str_radix(&trace_id[2 * k..2 * k + 2], 16).unwrap())
        .collect();
    let spans = collector.trace(&trace_bytes, 2).await;
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(spans.iter().all(|(service, _)| service == "portcullis-e2e"));
    let server = &spans
        .iter()
        .find(|(_, s)| s.kind == SpanKind::Server as i32)
        .expect("a server span")
        .1;
    let client = &spans
        .iter()
        .find(|(_, s)| s.kind == SpanKind::Client as i32)
        .expect("a client span")
        .1;

    // The request span continues the client's trace.
    assert_eq!(server.name, "POST /v1/chat/completions");
    assert_eq!(hex(&server.parent_span_id), client_span);
    assert_eq!(s(server, "gen_ai.operation.name"), "chat");
    assert_eq!(s(server, "gen_ai.request.model"), "team-gpt");
    assert_eq!(i(server, "http.response.status_code"), 200);
    let usage = &answer["usage"];
    assert_eq!(
        i(server, "gen_ai.usage.input_tokens"),
        usage["prompt_tokens"].as_i64().unwrap()
    );

    // The attempt is its child, with the GenAI attributes.
    assert_eq!(client.name, "chat mock-gpt");
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(s(client, "gen_ai.operation.name"), "chat");
    assert_eq!(s(client, "gen_ai.provider.name"), "openai");
    assert_eq!(s(client, "gen_ai.request.model"), "mock-gpt");
    assert_eq!(i(client, "gen_ai.request.max_tokens"), 50);
    assert_eq!(f(client, "gen_ai.request.temperature"), 0.25);
    assert_eq!(
        s(client, "gen_ai.response.model"),
        answer["model"].as_str().unwrap()
    );
    let reasons = attr(&client.attributes, "gen_ai.response.finish_reasons")
        .expect("finish reasons")
        .clone();
    assert!(format!("{reasons:?}").contains("stop"), "{reasons:?}");
    assert_eq!(
        i(client, "gen_ai.usage.input_tokens"),
        usage["prompt_tokens"].as_i64().unwrap()
    );
    assert_eq!(
        i(client, "gen_ai.usage.output_tokens"),
        usage["completion_tokens"].as_i64().unwrap()
    );
    assert_eq!(s(client, "server.address"), "127.0.0.1");
    assert_eq!(i(client, "http.response.status_code"), 200);

    // The upstream received the attempt's context.
    let sent = &mock.requests()[0];
    let traceparent = sent
        .headers
        .iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| v.clone())
        .expect("traceparent upstream");
    assert_eq!(
        traceparent,
        format!("00-{trace_id}-{}-01", hex(&client.span_id))
    );
}

#[tokio::test]
async fn a_failed_attempt_is_an_error_span_and_new_traces_start_at_the_gateway() {
    let mock = MockUpstream::start().await;
    let (collector, addr) = Collector::start().await;
    let gw = gateway(&mock, addr).await;
    let key = gw.live_key("client", &[]).await;
    let r = gw
        .chat(
            &key,
            json!({"model": "flaky", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(r.status(), 503);
    let _ = r.bytes().await;
    // No traceparent from the client: the gateway starts the trace.
    let sent = mock.requests();
    let traceparent = sent[0]
        .headers
        .iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| v.clone())
        .expect("traceparent upstream");
    let trace_hex = traceparent.split('-').nth(1).unwrap().to_string();
    let trace_bytes: Vec<u8> = (0..16)
        .map(|k| u8::from_str_radix(&trace_hex[2 * k..2 * k + 2], 16).unwrap())
        .collect();
    let spans = collector.trace(&trace_bytes, 2).await;
    assert!(spans.len() >= 2, "{spans:?}");
    let server = &spans
        .iter()
        .find(|(_, s)| s.kind == SpanKind::Server as i32)
        .unwrap()
        .1;
    let client = &spans
        .iter()
        .find(|(_, s)| s.kind == SpanKind::Client as i32)
        .unwrap()
        .1;
    assert!(server.parent_span_id.is_empty(), "a root span");
    assert_eq!(i(server, "http.response.status_code"), 503);
    assert!(!s(server, "error.type").is_empty());
    assert_eq!(s(client, "error.type"), "upstream_5xx");
    assert_eq!(i(client, "http.response.status_code"), 503);
}

#[tokio::test]
async fn a_translated_stream_records_usage_model_and_finish_reason() {
    let mock = MockUpstream::start().await;
    let (collector, addr) = Collector::start().await;
    let gw = gateway(&mock, addr).await;
    let key = gw.live_key("client", &[]).await;
    // Anthropic client, OpenAI-compatible upstream: the stream goes through the IR.
    let r = gw
        .client
        .post(gw.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(
            &json!({"model": "team-gpt", "max_tokens": 20, "stream": true,
                      "messages": [{"role": "user", "content": "stream me"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("message_stop"), "{text}");
    let traceparent = mock.requests()[0]
        .headers
        .iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| v.clone())
        .expect("traceparent upstream");
    let trace_hex = traceparent.split('-').nth(1).unwrap().to_string();
    let trace_bytes: Vec<u8> = (0..16)
        .map(|k| u8::from_str_radix(&trace_hex[2 * k..2 * k + 2], 16).unwrap())
        .collect();
    let spans = collector.trace(&trace_bytes, 2).await;
    let client = &spans
        .iter()
        .find(|(_, s)| s.kind == SpanKind::Client as i32)
        .expect("a client span")
        .1;
    assert_eq!(s(client, "gen_ai.response.model"), "mock-gpt");
    let reasons = attr(&client.attributes, "gen_ai.response.finish_reasons")
        .expect("finish reasons")
        .clone();
    assert!(format!("{reasons:?}").contains("stop"), "{reasons:?}");
    assert!(i(client, "gen_ai.usage.output_tokens") > 0);
    assert_eq!(i(client, "gen_ai.request.max_tokens"), 20);
}
