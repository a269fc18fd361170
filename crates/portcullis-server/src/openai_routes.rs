//! OpenAI-format endpoints other than chat: embeddings, the model list, the Responses API
//! passthrough, and the fallbacks for unknown paths and methods.

use crate::access::AccessNote;
use crate::auth::authenticate;
use crate::body::{json_response, max_timeout, read_body, resolve_routed, stream_response};
use crate::chat::holding;
use crate::dispatch::{self, Dispatch};
use crate::enforce::{self, Call};
use crate::error::GatewayError;
use crate::groups::Member;
use crate::relay::{self, Sniffer};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use portcullis_policy::decide::Target;
use portcullis_providers::{Operation, UpstreamBody};
use portcullis_wire::openai::{parse_usage, PassthroughRequest};
use portcullis_wire::WireError;
use std::net::SocketAddr;
use std::sync::Arc;

/// POST /v1/embeddings
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let key = authenticate(&state, &headers)?;
    note.key(&key);
    let bytes = read_body(&state, &headers, body).await?;
    crate::request_log::capture_bodies(&state, &key, &note, &bytes);
    let request = PassthroughRequest::parse(&bytes)?;
    request.require("input", false)?;
    if request.stream {
        return Err(WireError::field("stream", "embeddings cannot be streamed").into());
    }
    passthrough(
        &state,
        &key,
        &request,
        bytes.len(),
        Operation::Embeddings,
        note,
        peer,
        &headers,
    )
    .await
}

/// POST /v1/responses: OpenAI's Responses API, passed through to providers that serve it.
pub async fn responses(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let key = authenticate(&state, &headers)?;
    note.key(&key);
    let bytes = read_body(&state, &headers, body).await?;
    crate::request_log::capture_bodies(&state, &key, &note, &bytes);
    let request = PassthroughRequest::parse(&bytes)?;
    request.require("input", false)?;
    passthrough(
        &state,
        &key,
        &request,
        bytes.len(),
        Operation::Responses,
        note,
        peer,
        &headers,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn passthrough(
    state: &Arc<AppState>,
    key: &portcullis_policy::KeyEntry,
    request: &PassthroughRequest,
    body_bytes: usize,
    op: Operation,
    note: Arc<AccessNote>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Response, GatewayError> {
    let route = resolve_routed(
        state,
        key,
        &request.model,
        headers,
        request.get("metadata")?.as_ref(),
    )?;
    let primary = route.primary().provider.clone();
    note.route(&request.model, &primary.name);
    crate::otel::request(&note, op, &route.model, request);
    let call = Call {
        key,
        client_ip: Some(peer.ip()),
        target: Target::Model(&request.model),
        request: Some(request),
        body_bytes: body_bytes as u64,
        price: route.price,
        provider: &primary.name,
    };
    // Guardrails apply to chat (prompt and answer); embeddings and Responses pass as sent.
    let _guard = enforce::admit(state, call, &note).await?;
    if !route.members.iter().any(|m| m.provider.supports(op)) {
        return Err(GatewayError::BadRequest {
            message: format!(
                "model '{}' is served by a {} provider, which does not support this endpoint",
                route.model,
                primary.kind.as_str()
            ),
            param: Some("model".into()),
        });
    }
    let limits = dispatch::limits(
        &route,
        headers.get(dispatch::TIMEOUT_HEADER),
        max_timeout(state, key),
    )?;
    let mut encode = |member: &Member| -> Result<Vec<u8>, GatewayError> {
        let upstream_model = member.upstream_model.as_str();
        Ok(match op {
            Operation::Responses => request.encode_upstream(upstream_model, false),
            _ => member
                .provider
                .openai_request_body(request, upstream_model, request.stream)?,
        })
    };
    let answered = Dispatch {
        state,
        route: &route,
        op,
        stream: request.stream,
        limits,
        note: &note,
    }
    .send(&mut encode)
    .await?;
    let provider = answered.member.provider.clone();
    let answer = answered.response;
    match answer.body {
        UpstreamBody::Full(bytes) => {
            let usage = if op == Operation::Responses {
                response_api_usage(&bytes)
            } else {
                parse_usage(&bytes)
            };
            match usage {
                Ok(Some(u)) => note.usage(u),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(provider = %provider.name, error = %e, "upstream sent a body that is not JSON");
                    return Err(GatewayError::UpstreamBadResponse);
                }
            }
            Ok(json_response(
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
                bytes,
            ))
        }
        UpstreamBody::Stream(chunks) => {
            let sniffer = match op {
                Operation::Responses => Sniffer::Responses,
                _ => Sniffer::OpenAiChat {
                    hide_usage_chunk: !request.client_wants_usage,
                },
            };
            let relayed = relay::passthrough(chunks, sniffer, note, provider);
            Ok(stream_response(holding(relayed, answered.in_flight)))
        }
    }
}

/// Responses API usage uses `input_tokens`/`output_tokens`.
fn response_api_usage(
    body: &[u8],
) -> Result<Option<portcullis_wire::openai::Usage>, serde_json::Error> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    let u = &v["usage"];
    Ok(
        match (u["input_tokens"].as_u64(), u["output_tokens"].as_u64()) {
            (Some(i), Some(o)) => Some(portcullis_wire::openai::Usage {
                prompt_tokens: i,
                completion_tokens: o,
                total_tokens: i + o,
            }),
            _ => None,
        },
    )
}

/// GET /v1/models: only the models this key may use.
pub async fn list_models(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let key = authenticate(&state, &headers)?;
    note.key(&key);
    let data: Vec<serde_json::Value> = state
        .model_order
        .iter()
        .filter(|m| key.allows_model(m))
        .filter_map(|m| state.routes.get(m))
        .map(|r| {
            serde_json::json!({
                "id": r.model,
                "object": "model",
                "created": 0,
                "owned_by": r.primary().provider.name,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&serde_json::json!({"object": "list", "data": data}))
            .unwrap_or_default(),
    ))
}

/// Any other path: still authenticated first (default deny), then 404.
pub async fn not_found(State(state): State<Arc<AppState>>, headers: HeaderMap) -> GatewayError {
    match authenticate(&state, &headers) {
        Err(e) => e,
        Ok(_) => GatewayError::NotFound,
    }
}

/// A known path with the wrong method.
pub async fn method_not_allowed() -> GatewayError {
    GatewayError::MethodNotAllowed
}
