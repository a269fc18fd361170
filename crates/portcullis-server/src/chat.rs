//! The chat pipeline shared by both inbound formats, read top to bottom:
//! authenticate -> read body -> parse -> resolve model (conditional routing) and check
//! access -> admit -> guard -> dispatch to the model group (per target: encode untouched
//! when formats match, through the IR otherwise; retries and fallbacks in dispatch.rs) ->
//! relay or translate the answer back.

use crate::access::AccessNote;
use crate::auth::authenticate;
use crate::body::{json_response, max_timeout, read_body, resolve_routed, stream_response};
use crate::cache::CachePlan;
use crate::dispatch::{self, Answered, Dispatch};
use crate::enforce::{self, Call};
use crate::error::GatewayError;
use crate::groups::{InFlight, Member};
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
use futures_util::{Stream, StreamExt};
use portcullis_policy::decide::Target;
use portcullis_providers::{Operation, Provider, UpstreamBody, UpstreamFormat};
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
    answer(&state, note, peer, &headers, body, Inbound::OpenAi).await
}

/// POST /v1/messages (Anthropic format).
pub async fn messages(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&state, note, peer, &headers, body, Inbound::Anthropic).await
}

/// Runs the pipeline and lets the response cache see (and maybe store) the answer.
async fn answer(
    state: &Arc<AppState>,
    note: Arc<AccessNote>,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    inbound: Inbound,
) -> Response {
    let mut cache = None;
    let answer = handle(state, note, peer, headers, body, inbound, &mut cache).await;
    crate::cache::finish(state, cache, answer, inbound)
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
    let route = resolve_routed(
        state,
        &key,
        &head.model,
        headers,
        head.get("metadata")?.as_ref(),
    )?;
    let primary = route.primary().provider.clone();
    note.route(&head.model, &primary.name);
    crate::otel::request(&note, Operation::Chat, &route.model, &head);
    let call = Call {
        key: &key,
        client_ip: Some(peer.ip()),
        target: Target::Model(&head.model),
        request: Some(&head),
        body_bytes: bytes.len() as u64,
        price: route.price,
        provider: &primary.name,
    };
    let profile = enforce::admit(state, call, &note).await?;
    let limits = dispatch::limits(
        &route,
        headers.get(dispatch::TIMEOUT_HEADER),
        max_timeout(state, &key),
    )?;
    // With guardrails the call goes through the IR, where prompt and answer texts are
    // scanned (OpenAI -> IR -> OpenAI keeps every field).
    let mut guard = profile.map(|p| RequestGuard::new(p, note.clone()));
    let mut ir = None;
    if let Some(g) = guard.as_mut() {
        let mut request = translate::decode_request(inbound, &bytes)?;
        // What a webhook sees: the primary target's model (the answering one may differ).
        request.model = route.primary().upstream_model.clone();
        g.scan_request(&mut request).await?;
        ir = Some(request);
    }
    let guarded = guard.is_some();
    let (stream, client_wants_usage) = (head.stream, head.client_wants_usage);
    // Admitted and the prompt guarded: a cacheable request may be answered from the cache.
    if let Some(plan) = crate::cache::plan(state, headers, &key, inbound, &route.model, &bytes) {
        if let Some(hit) = crate::cache::serve_hit(state, &plan, &note).await {
            return Ok(hit);
        }
        *cache = Some(plan);
    }

    // The body for each target: untouched but for `model` when the formats match, else
    // through the IR (decoded once, on the first target that needs it).
    let mut encode = |member: &Member| -> Result<Vec<u8>, GatewayError> {
        let provider = &member.provider;
        if same_format(inbound, provider, guarded) {
            let upstream_model = member.upstream_model.as_str();
            return Ok(match inbound {
                Inbound::OpenAi => provider.openai_request_body(&head, upstream_model, stream)?,
                Inbound::Anthropic => head.encode_upstream(upstream_model, false),
            });
        }
        if ir.is_none() {
            ir = Some(translate::decode_request(inbound, &bytes)?);
        }
        let mut request = ir.clone().ok_or(GatewayError::Internal)?;
        request.model = member.upstream_model.clone();
        translate::encode_request(provider, &request)
    };
    let answered = Dispatch {
        state,
        route: &route,
        op: Operation::Chat,
        stream,
        limits,
        note: &note,
    }
    .send(&mut encode)
    .await?;
    let Answered {
        member,
        response: answer,
        in_flight,
        ..
    } = answered;
    let provider = member.provider.clone();
    let upstream_model = member.upstream_model.as_str();
    let same_format = same_format(inbound, &provider, guarded);
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
                    let response = translate::decode_response(&provider, upstream_model, &bytes)?;
                    note.usage(translate::log_usage(&response.usage.unwrap_or_default()));
                }
            }
            crate::otel::response(&note, &bytes);
            Ok(json_response(status, bytes))
        }
        (UpstreamBody::Full(bytes), false) => {
            let mut response = translate::decode_response(&provider, upstream_model, &bytes)?;
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
            let relayed = relay::passthrough(chunks, sniffer, note, provider);
            Ok(stream_response(holding(relayed, in_flight)))
        }
        (UpstreamBody::Stream(chunks), false) => {
            let translated = translate::stream(
                chunks,
                inbound,
                client_wants_usage,
                note,
                provider,
                upstream_model,
                guard.map(RequestGuard::into_stream),
            );
            Ok(stream_response(holding(translated, in_flight)))
        }
    }
}

/// Whether the body can pass through untouched: the client's format is the provider's and
/// no guardrail needs the IR.
fn same_format(inbound: Inbound, provider: &Provider, guarded: bool) -> bool {
    !guarded
        && matches!(
            (inbound, provider.format()),
            (Inbound::OpenAi, UpstreamFormat::OpenAiChat)
                | (Inbound::Anthropic, UpstreamFormat::Anthropic)
        )
}

/// Keeps `guard` (the target's in-flight mark) alive until the stream ends or is dropped.
pub fn holding<S: Stream + Send + 'static>(
    stream: S,
    guard: InFlight,
) -> impl Stream<Item = S::Item> + Send + 'static {
    stream.map(move |item| {
        let _ = &guard;
        item
    })
}

impl From<WireError> for GatewayError {
    fn from(e: WireError) -> GatewayError {
        let WireError::Malformed { message, param } = e;
        GatewayError::BadRequest { message, param }
    }
}
