//! Cross-format calls: a request decoded into the IR is encoded for the provider's native
//! API, and its answer (whole or streamed) is translated back into the client's format.
//! Streams are translated chunk by chunk: nothing waits for the end of the upstream stream.

use crate::access::AccessNote;
use crate::error::GatewayError;
use crate::guard::StreamGuard;
use crate::inbound::Inbound;
use crate::relay::MAX_EVENT_BYTES;
use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use portcullis_providers::aws::ConverseStream;
use portcullis_providers::{Provider, UpstreamError, UpstreamFormat};
use portcullis_wire::ir::{ChatRequest, ChatResponse, Format, StreamEvent, TranslateError, Usage};
use portcullis_wire::sse::{event_data, EventSplitter};
use portcullis_wire::{anthropic, bedrock, gemini, openai_chat};
use std::convert::Infallible;
use std::sync::Arc;

impl From<TranslateError> for GatewayError {
    fn from(e: TranslateError) -> GatewayError {
        GatewayError::BadRequest {
            message: e.to_string(),
            param: Some(e.field),
        }
    }
}

/// Decodes the client's body into the IR.
pub fn decode_request(inbound: Inbound, body: &[u8]) -> Result<ChatRequest, GatewayError> {
    Ok(match inbound {
        Inbound::OpenAi => openai_chat::parse_request(body)?,
        Inbound::Anthropic => anthropic::parse_request(body)?,
    })
}

/// Encodes the IR request for the provider (model already set to the upstream name).
pub fn encode_request(provider: &Provider, request: &ChatRequest) -> Result<Vec<u8>, GatewayError> {
    match provider.format() {
        UpstreamFormat::OpenAiChat => {
            let serde_json::Value::Object(fields) = openai_chat::request_from_ir(request)? else {
                return Err(GatewayError::Internal);
            };
            Ok(provider.openai_body(fields, request.is_stream()))
        }
        UpstreamFormat::Anthropic => to_json(&anthropic::request_from_ir(request)?),
        UpstreamFormat::Gemini => to_json(&gemini::request_from_ir(request)?),
        UpstreamFormat::Bedrock => to_json(&bedrock::request_from_ir(request)?),
    }
}

fn to_json(value: &serde_json::Value) -> Result<Vec<u8>, GatewayError> {
    serde_json::to_vec(value).map_err(|_| GatewayError::Internal)
}

fn wire_format(format: UpstreamFormat) -> Format {
    match format {
        UpstreamFormat::Anthropic => Format::Anthropic,
        UpstreamFormat::Gemini => Format::Gemini,
        UpstreamFormat::Bedrock => Format::Bedrock,
        UpstreamFormat::OpenAiChat => Format::OpenAiChat,
    }
}

/// Decodes a complete upstream answer into the IR. `model` names the answering model for
/// formats whose body does not (Bedrock).
pub fn decode_response(
    provider: &Provider,
    model: &str,
    body: &[u8],
) -> Result<ChatResponse, GatewayError> {
    let parsed = match provider.format() {
        UpstreamFormat::OpenAiChat => openai_chat::parse_response(body),
        UpstreamFormat::Anthropic => anthropic::parse_response(body),
        UpstreamFormat::Gemini => gemini::parse_response(body),
        UpstreamFormat::Bedrock => bedrock::parse_response(body, model, &response_id()),
    };
    parsed.map_err(|e| {
        tracing::warn!(provider = %provider.name, error = %e, "cannot decode upstream response");
        GatewayError::UpstreamBadResponse
    })
}

/// A fresh id for answers whose upstream gives none.
fn response_id() -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    format!("msg_{}", hex::encode(b))
}

/// Encodes an IR answer in the client's format.
pub fn encode_response(inbound: Inbound, response: &ChatResponse) -> Vec<u8> {
    let value = match inbound {
        Inbound::OpenAi => openai_chat::response_from_ir(response, crate::auth::unix_now() as u64),
        Inbound::Anthropic => anthropic::response_from_ir(response),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// The IR usage in the access log's terms.
pub fn log_usage(usage: &Usage) -> portcullis_wire::openai::Usage {
    portcullis_wire::openai::Usage {
        prompt_tokens: usage.input,
        completion_tokens: usage.output,
        total_tokens: usage.input + usage.output,
    }
}

/// Decodes the data of one upstream SSE event into IR events.
trait DataDecoder: Send {
    fn decode_data(&mut self, data: &[u8]) -> Result<Vec<StreamEvent>, TranslateError>;
    /// Called when the upstream body ends; formats without an end marker decide here.
    fn finish(&mut self) -> Vec<StreamEvent> {
        Vec::new()
    }
}

impl DataDecoder for gemini::ChunkDecoder {
    fn decode_data(&mut self, data: &[u8]) -> Result<Vec<StreamEvent>, TranslateError> {
        self.decode(data)
    }
    fn finish(&mut self) -> Vec<StreamEvent> {
        gemini::ChunkDecoder::finish(self)
    }
}

impl DataDecoder for openai_chat::ChunkDecoder {
    fn decode_data(&mut self, data: &[u8]) -> Result<Vec<StreamEvent>, TranslateError> {
        self.decode(data)
    }
}

impl DataDecoder for anthropic::EventDecoder {
    fn decode_data(&mut self, data: &[u8]) -> Result<Vec<StreamEvent>, TranslateError> {
        self.decode(data)
    }
}

/// Turns upstream bytes into IR events.
enum EventSource {
    /// Server-sent events, decoded by a per-format decoder.
    Sse {
        splitter: EventSplitter,
        decoder: Box<dyn DataDecoder>,
    },
    /// AWS binary event stream (Bedrock ConverseStream).
    Bedrock(Box<ConverseStream>),
}

impl EventSource {
    fn for_provider(provider: &Provider, model: &str) -> EventSource {
        let decoder: Box<dyn DataDecoder> = match provider.format() {
            UpstreamFormat::OpenAiChat => Box::new(openai_chat::ChunkDecoder::new()),
            UpstreamFormat::Anthropic => Box::new(anthropic::EventDecoder::new()),
            UpstreamFormat::Gemini => Box::new(gemini::ChunkDecoder::new()),
            UpstreamFormat::Bedrock => {
                return EventSource::Bedrock(Box::new(ConverseStream::new(model, &response_id())))
            }
        };
        EventSource::Sse {
            splitter: EventSplitter::new(MAX_EVENT_BYTES),
            decoder,
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<Vec<StreamEvent>, String> {
        match self {
            EventSource::Bedrock(stream) => Ok(stream.push(chunk)),
            EventSource::Sse { splitter, decoder } => {
                let mut out = Vec::new();
                for event in splitter.push(chunk).map_err(|e| e.to_string())? {
                    if let Some(data) = event_data(&event) {
                        out.extend(decoder.decode_data(&data).map_err(|e| e.to_string())?);
                    }
                }
                Ok(out)
            }
        }
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        match self {
            EventSource::Bedrock(stream) => stream.finish(),
            EventSource::Sse { decoder, .. } => decoder.finish(),
        }
    }
}

/// Turns IR events into the client's stream format.
enum ClientEncoder {
    OpenAi(openai_chat::ChunkEncoder),
    Anthropic(anthropic::EventEncoder),
}

impl ClientEncoder {
    fn encode(&mut self, event: &StreamEvent) -> Vec<u8> {
        match self {
            ClientEncoder::OpenAi(e) => e.encode_sse(event),
            ClientEncoder::Anthropic(e) => e.encode_sse(event),
        }
    }
}

struct Translation {
    guard: Option<StreamGuard>,
    upstream: BoxStream<'static, Result<Bytes, UpstreamError>>,
    source: EventSource,
    encoder: ClientEncoder,
    note: Arc<AccessNote>,
    provider: Arc<Provider>,
    saw_done: bool,
    finished: bool,
}

/// Translates an upstream stream into the client's format, chunk by chunk.
pub fn stream(
    upstream: BoxStream<'static, Result<Bytes, UpstreamError>>,
    inbound: Inbound,
    client_wants_usage: bool,
    note: Arc<AccessNote>,
    provider: Arc<Provider>,
    model: &str,
    guard: Option<StreamGuard>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let source = EventSource::for_provider(&provider, model);
    let upstream_format = wire_format(provider.format());
    let encoder = match inbound {
        Inbound::OpenAi => ClientEncoder::OpenAi(openai_chat::ChunkEncoder::new(
            upstream_format,
            crate::auth::unix_now() as u64,
            client_wants_usage,
        )),
        Inbound::Anthropic => {
            ClientEncoder::Anthropic(anthropic::EventEncoder::new(upstream_format))
        }
    };
    let state = Translation {
        guard,
        upstream,
        source,
        encoder,
        note,
        provider,
        saw_done: false,
        finished: false,
    };
    futures_util::stream::unfold(state, |mut t| async move {
        if t.finished {
            return None;
        }
        loop {
            let failure = match t.upstream.next().await {
                Some(Ok(chunk)) => match t.source.feed(&chunk) {
                    Ok(events) => {
                        let out = t.encode_all(&events);
                        if !out.is_empty() {
                            return Some((Ok(Bytes::from(out)), t));
                        }
                        if t.finished {
                            return None;
                        }
                        continue;
                    }
                    Err(detail) => GatewayError::from_upstream(
                        UpstreamError::Protocol {
                            provider: t.provider.name.clone(),
                            detail,
                        },
                        &t.provider,
                    ),
                },
                Some(Err(e)) => {
                    tracing::warn!(provider = %t.provider.name, error = %e, "upstream stream failed");
                    GatewayError::from_upstream(e, &t.provider)
                }
                None if t.saw_done => {
                    t.finished = true;
                    t.note.stream_outcome("complete");
                    return None;
                }
                None => {
                    let tail = t.source.finish();
                    if !tail.is_empty() {
                        let out = t.encode_all(&tail);
                        t.finished = true;
                        return Some((Ok(Bytes::from(out)), t));
                    }
                    GatewayError::UpstreamBadResponse
                }
            };
            t.finished = true;
            t.note.stream_outcome("upstream_error");
            let event = StreamEvent::Error {
                kind: failure.kind(),
                message: failure.parts().message.into_owned(),
            };
            return Some((Ok(Bytes::from(t.encoder.encode(&event))), t));
        }
    })
}

impl Translation {
    fn encode_all(&mut self, events: &[StreamEvent]) -> Vec<u8> {
        let events: Vec<StreamEvent> = match self.guard.as_mut() {
            Some(g) => events.iter().cloned().flat_map(|e| g.filter(e)).collect(),
            None => events.to_vec(),
        };
        let mut out = Vec::new();
        for event in &events {
            match event {
                StreamEvent::Usage(u) => self.note.usage(log_usage(u)),
                StreamEvent::MessageStart { usage, model, .. } => {
                    if let Some(u) = usage {
                        self.note.usage(log_usage(u));
                    }
                    crate::otel::response_model(&self.note, model);
                }
                StreamEvent::Stop(reason) => crate::otel::finish_reason(&self.note, &reason.raw),
                StreamEvent::Done => {
                    self.saw_done = true;
                    self.note.stream_outcome("complete");
                }
                StreamEvent::Error { .. } => {
                    self.finished = true;
                    self.note.stream_outcome("upstream_error");
                }
                _ => {}
            }
            out.extend(self.encoder.encode(event));
        }
        out
    }
}
