//! Request and response plumbing shared by the data-plane routes: bounded body reads,
//! model resolution with access checks, and response builders.

use crate::error::GatewayError;
use crate::state::{AppState, Route};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use portcullis_policy::KeyEntry;
use std::convert::Infallible;
use std::sync::Arc;

/// Finds the route of a public model name and checks the key may use it (404, then 403).
pub fn resolve(state: &AppState, key: &KeyEntry, model: &str) -> Result<Arc<Route>, GatewayError> {
    let route = state
        .routes
        .get(model)
        .ok_or_else(|| GatewayError::UnknownModel(model.to_string()))?;
    if !key.allows_model(model) {
        return Err(GatewayError::ModelNotAllowed(model.to_string()));
    }
    Ok(route.clone())
}

/// Like [`resolve`], then applies the conditional routing rules: the group that serves a
/// request for `model` with these headers, this key's team and this `metadata`. Access is
/// checked on the requested name (the rules are the operator's choice, not the client's).
pub fn resolve_routed(
    state: &AppState,
    key: &KeyEntry,
    model: &str,
    headers: &HeaderMap,
    metadata: Option<&serde_json::Value>,
) -> Result<Arc<Route>, GatewayError> {
    let route = resolve(state, key, model)?;
    if state.routing.rules.is_empty() {
        return Ok(route);
    }
    let team = match &key.team {
        Some(t) => Some(t.clone()),
        None => state
            .policy
            .load()
            .active
            .as_ref()
            .and_then(|a| a.compiled.effective_team(None).map(String::from)),
    };
    let facts = RequestFacts {
        headers,
        team: team.as_deref(),
        metadata,
    };
    match portcullis_route::route(&state.routing.rules, model, &facts) {
        Some(to) => state.routes.get(to).cloned().ok_or(GatewayError::Internal),
        None => Ok(route),
    }
}

/// What conditional routing rules see of a request.
struct RequestFacts<'a> {
    headers: &'a HeaderMap,
    team: Option<&'a str>,
    metadata: Option<&'a serde_json::Value>,
}

impl portcullis_route::Facts for RequestFacts<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn team(&self) -> Option<&str> {
        self.team
    }
    fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata?.get(key)?.as_str()
    }
}

/// The most a request of this key may set with the timeout header (the team's
/// `max_timeout_secs` in the active policy).
pub fn max_timeout(state: &AppState, key: &KeyEntry) -> Option<std::time::Duration> {
    state
        .policy
        .load()
        .active
        .as_ref()
        .and_then(|a| a.compiled.max_timeout_secs(key.team.as_deref()))
        .map(std::time::Duration::from_secs)
}

/// Reads the whole request body, refusing more than `server.max_body_size` bytes.
pub async fn read_body(
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

/// A JSON response.
pub fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A server-sent-events response streamed as the chunks come.
pub fn stream_response(
    stream: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
