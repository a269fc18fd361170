//! OpenAI-format endpoints other than chat: embeddings, the model list, the Responses API
//! passthrough, and the fallbacks for unknown paths and methods.

use crate::access::AccessNote;
use crate::auth::authenticate;
use crate::body::{json_response, read_body, resolve, stream_response};
use crate::enforce::{self, Call};
use crate::error::GatewayError;
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
    )
    .await
}

async fn passthrough(
    state: &Arc<AppState>,
    key: &portcullis_policy::KeyEntry,
    request: &PassthroughRequest,
    body_bytes: usize,
    op: Operation,
    note: Arc<AccessNote>,
    peer: SocketAddr,
) -> Result<Response, GatewayError> {
    let route = resolve(state, key, &request.model)?;
    note.route(&route.model, &route.provider.name);
    crate::otel::request(&note, op, &route.model, request);
    let provider = route.provider.clone();
    let call = Call {
        key,
        client_ip: Some(peer.ip()),
        target: Target::Model(&route.model),
        request: Some(request),
        body_bytes: body_bytes as u64,
        price: route.price,
        provider: &provider.name,
    };
    // Guardrails apply to chat (prompt and answer); embeddings and Responses pass as sent.
    let _guard = enforce::admit(state, call, &note).await?;
    if !provider.supports(op) {
        return Err(GatewayError::BadRequest {
            message: format!(
                "model '{}' is served by a {} provider, which does not support this endpoint",
                route.model,
                provider.kind.as_str()
            ),
            param: Some("model".into()),
        });
    }
    let fields = request.upstream_fields(&route.upstream_model);
    let body = match op {
        Operation::Responses => serde_json::to_vec(&fields).map_err(|_| GatewayError::Internal)?,
        _ => provider.openai_body(fields, request.stream),
    };
    let sent = std::time::Instant::now();
    let trace_headers = crate::otel::attempt(&note, &provider, op, &route.upstream_model);
    let answer = provider
        .send_with_headers(
            op,
            &route.upstream_model,
            body,
            request.stream,
            &trace_headers,
        )
        .await;
    note.upstream_call(sent);
    crate::otel::answered(&note, &answer);
    let answer = answer.map_err(|e| {
        tracing::warn!(provider = %provider.name, error = %e, "upstream call failed");
        GatewayError::from_upstream(e, &provider)
    })?;
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
            Ok(stream_response(relay::passthrough(
                chunks, sniffer, note, provider,
            )))
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
                "owned_by": r.provider.name,
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
