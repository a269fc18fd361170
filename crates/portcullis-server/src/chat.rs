//! The chat pipeline shared by both inbound formats, read top to bottom:
//! authenticate -> read body -> parse -> resolve model and check access -> encode for the
//! provider (untouched when formats match, through the IR otherwise) -> send -> relay or
//! translate the answer back.

use crate::access::AccessNote;
use crate::auth::authenticate;
use crate::body::{json_response, read_body, resolve, stream_response};
use crate::cache::CachePlan;
use crate::enforce::{self, Call};
use crate::error::GatewayError;
use crate::guard::RequestGuard;
use crate::inbound::Inbound;
use crate::relay::{self, Sniffer};
use crate::state::AppState;
use crate::translate;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use portcullis_policy::decide::Target;
use portcullis_providers::{Operation, UpstreamBody, UpstreamFormat};
use portcullis_wire::openai::{parse_usage, PassthroughRequest};
use portcullis_wire::WireError;
use std::net::SocketAddr;
use std::sync::Arc;

/// POST /v1/chat/completions (OpenAI format).
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut cache = None;
    let answer = handle(
        &state,
        note,
        peer,
        &headers,
        body,
        Inbound::OpenAi,
        &mut cache,
    )
    .await;
    crate::cache::finish(&state, cache, answer, Inbound::OpenAi)
}

/// POST /v1/messages (Anthropic format).
pub async fn messages(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut cache = None;
    let answer = handle(
        &state,
        note,
        peer,
        &headers,
        body,
        Inbound::Anthropic,
        &mut cache,
    )
    .await;
    crate::cache::finish(&state, cache, answer, Inbound::Anthropic)
}

async fn handle(
    state: &Arc<AppState>,
    note: Arc<AccessNote>,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    inbound: Inbound,
    cache: &mut Option<CachePlan>,
) -> Result<Response, GatewayError> {
    let key = authenticate(state, headers)?;
    note.key(&key);
    let bytes = read_body(state, headers, body).await?;
    crate::request_log::capture_bodies(state, &key, &note, &bytes);
    let head = PassthroughRequest::parse(&bytes).map_err(GatewayError::from)?;
    head.require("messages", true).map_err(GatewayError::from)?;
    let route = resolve(state, &key, &head.model)?;
    note.route(&route.model, &route.provider.name);
    crate::otel::request(&note, Operation::Chat, &route.model, &head);
    let provider = route.provider.clone();
    let call = Call {
        key: &key,
        client_ip: Some(peer.ip()),
        target: Target::Model(&route.model),
        request: Some(&head),
        body_bytes: bytes.len() as u64,
        price: route.price,
        provider: &provider.name,
    };
    let profile = enforce::admit(state, call, &note).await?;
    // With guardrails the call goes through the IR, where prompt and answer texts are
    // scanned (OpenAI -> IR -> OpenAI keeps every field).
    let mut guard = profile.map(|p| RequestGuard::new(p, note.clone()));

    let same_format = guard.is_none()
        && matches!(
            (inbound, provider.format()),
            (Inbound::OpenAi, UpstreamFormat::OpenAiChat)
                | (Inbound::Anthropic, UpstreamFormat::Anthropic)
        );
    let (stream, client_wants_usage) = (head.stream, head.client_wants_usage);
    let upstream_body = if same_format {
        let fields = head.into_upstream_fields(&route.upstream_model);
        match inbound {
            Inbound::OpenAi => provider.openai_body(fields, stream),
            Inbound::Anthropic => {
                serde_json::to_vec(&fields).map_err(|_| GatewayError::Internal)?
            }
        }
    } else {
        let mut request = translate::decode_request(inbound, &bytes)?;
        request.model = route.upstream_model.clone();
        if let Some(g) = guard.as_mut() {
            g.scan_request(&mut request).await?;
        }
        translate::encode_request(&provider, &request)?
    };
    // Admitted and the prompt guarded: a cacheable request may be answered from the cache.
    if let Some(plan) = crate::cache::plan(state, headers, &key, inbound, &route.model, &bytes) {
        if let Some(hit) = crate::cache::serve_hit(state, &plan, &note).await {
            return Ok(hit);
        }
        *cache = Some(plan);
    }

    let sent = std::time::Instant::now();
    let trace_headers =
        crate::otel::attempt(&note, &provider, Operation::Chat, &route.upstream_model);
    let answer = provider
        .send_with_headers(
            Operation::Chat,
            &route.upstream_model,
            upstream_body,
            stream,
            &trace_headers,
        )
        .await;
    note.upstream_call(sent);
    crate::otel::answered(&note, &answer);
    let answer = answer.map_err(|e| {
        tracing::warn!(provider = %provider.name, error = %e, "upstream call failed");
        GatewayError::from_upstream(e, &provider)
    })?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    match (answer.body, same_format) {
        (UpstreamBody::Full(bytes), true) => {
            match inbound {
                Inbound::OpenAi => match parse_usage(&bytes) {
                    Ok(usage) => usage.into_iter().for_each(|u| note.usage(u)),
                    Err(e) => {
                        tracing::warn!(provider = %provider.name, error = %e, "upstream sent a body that is not JSON");
                        return Err(GatewayError::UpstreamBadResponse);
                    }
                },
                Inbound::Anthropic => {
                    let response =
                        translate::decode_response(&provider, &route.upstream_model, &bytes)?;
                    note.usage(translate::log_usage(&response.usage.unwrap_or_default()));
                }
            }
            crate::otel::response(&note, &bytes);
            Ok(json_response(status, bytes))
        }
        (UpstreamBody::Full(bytes), false) => {
            let mut response =
                translate::decode_response(&provider, &route.upstream_model, &bytes)?;
            if let Some(g) = guard.as_mut() {
                g.scan_response(&mut response).await?;
            }
            if let Some(usage) = &response.usage {
                note.usage(translate::log_usage(usage));
            }
            let body = translate::encode_response(inbound, &response);
            crate::otel::response(&note, &body);
            Ok(json_response(status, body))
        }
        (UpstreamBody::Stream(chunks), true) => {
            let sniffer = match inbound {
                Inbound::OpenAi => Sniffer::OpenAiChat {
                    hide_usage_chunk: !client_wants_usage,
                },
                Inbound::Anthropic => Sniffer::Anthropic,
            };
            Ok(stream_response(relay::passthrough(
                chunks, sniffer, note, provider,
            )))
        }
        (UpstreamBody::Stream(chunks), false) => {
            let stream = translate::stream(
                chunks,
                inbound,
                client_wants_usage,
                note,
                provider,
                &route.upstream_model,
                guard.map(RequestGuard::into_stream),
            );
            Ok(stream_response(stream))
        }
    }
}

impl From<WireError> for GatewayError {
    fn from(e: WireError) -> GatewayError {
        let WireError::Malformed { message, param } = e;
        GatewayError::BadRequest { message, param }
    }
}
