//! Data-plane endpoints in OpenAI's API shape: chat completions (plain and streamed),
//! embeddings, and the model list. Each handler reads top to bottom as the pipeline:
//! authenticate -> read body -> resolve model and check access -> forward -> relay.

use crate::access::AccessNote;
use crate::auth::authenticate;
use crate::error::GatewayError;
use crate::relay;
use crate::state::{AppState, Route};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use portcullis_policy::KeyEntry;
use portcullis_providers::UpstreamBody;
use portcullis_wire::openai::{parse_usage, PassthroughRequest};
use portcullis_wire::WireError;
use std::sync::Arc;

/// POST /v1/chat/completions
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let key = authenticate(&state, &headers)?;
    note.key(&key.id);
    let bytes = read_body(&state, &headers, body).await?;
    let request = PassthroughRequest::parse(&bytes).map_err(bad_request)?;
    request.require("messages", true).map_err(bad_request)?;
    let route = resolve(&state, &key, &request.model)?;
    note.route(&route.model, &route.provider.name);
    forward(route, "/chat/completions", &request, note).await
}

/// POST /v1/embeddings
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let key = authenticate(&state, &headers)?;
    note.key(&key.id);
    let bytes = read_body(&state, &headers, body).await?;
    let request = PassthroughRequest::parse(&bytes).map_err(bad_request)?;
    request.require("input", false).map_err(bad_request)?;
    if request.stream {
        return Err(bad_request(WireError::field(
            "stream",
            "embeddings cannot be streamed",
        )));
    }
    let route = resolve(&state, &key, &request.model)?;
    note.route(&route.model, &route.provider.name);
    forward(route, "/embeddings", &request, note).await
}

/// GET /v1/models: only the models this key may use.
pub async fn list_models(
    State(state): State<Arc<AppState>>,
    Extension(note): Extension<Arc<AccessNote>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let key = authenticate(&state, &headers)?;
    note.key(&key.id);
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

fn bad_request(e: WireError) -> GatewayError {
    let WireError::Malformed { message, param } = e;
    GatewayError::BadRequest { message, param }
}

fn resolve(state: &AppState, key: &KeyEntry, model: &str) -> Result<Arc<Route>, GatewayError> {
    let route = state
        .routes
        .get(model)
        .ok_or_else(|| GatewayError::UnknownModel(model.to_string()))?;
    if !key.allows_model(model) {
        return Err(GatewayError::ModelNotAllowed(model.to_string()));
    }
    Ok(route.clone())
}

/// Reads the whole request body, refusing more than `server.max_body_size` bytes.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > state.max_body) {
        return Err(GatewayError::BodyTooLarge(state.max_body));
    }
    axum::body::to_bytes(body, state.max_body as usize)
        .await
        .map_err(|e| {
            let inner = e.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                GatewayError::BodyTooLarge(state.max_body)
            } else {
                GatewayError::BadRequest {
                    message: "could not read the request body".into(),
                    param: None,
                }
            }
        })
}

/// Sends the request upstream and relays the answer.
async fn forward(
    route: Arc<Route>,
    path: &str,
    request: &PassthroughRequest,
    note: Arc<AccessNote>,
) -> Result<Response, GatewayError> {
    let provider = &route.provider;
    let body = request.to_upstream_body(&route.upstream_model);
    let answer = provider
        .post_json(path, body, request.stream)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.name, error = %e, "upstream call failed");
            GatewayError::from_upstream(e, provider)
        })?;
    match answer.body {
        UpstreamBody::Full(bytes) => {
            match parse_usage(&bytes) {
                Ok(Some(usage)) => note.usage(usage),
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
            let stream =
                relay::openai_stream(chunks, !request.client_wants_usage, note, provider.clone());
            let mut response = Body::from_stream(stream).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            Ok(response)
        }
    }
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
