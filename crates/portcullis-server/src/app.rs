//! The two routers: the data plane (clients) and the control plane (operators).

use crate::access;
use crate::chat;
use crate::error::GatewayError;
use crate::openai_routes as openai;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;

/// Routes that need no key: the whole public list.
pub const PUBLIC_ROUTES: &[&str] = &["/healthz", "/readyz"];

/// Client-facing router.
pub fn data_plane(state: Arc<AppState>) -> Router {
    let tracking = access::Tracking {
        state: state.clone(),
        request_logs: true,
    };
    let otel = state.otel.clone();
    let router = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/messages", post(chat::messages))
        .route("/v1/responses", post(openai::responses))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::list_models))
        .route(PUBLIC_ROUTES[0], get(healthz))
        .route(PUBLIC_ROUTES[1], get(readyz))
        .fallback(crate::rest::dispatch)
        .method_not_allowed_fallback(openai::method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(on_panic));
    // The request span starts inside `track` (which creates the access note) and only
    // when trace export is configured.
    let router = match otel {
        Some(otel) => router.layer(axum::middleware::from_fn_with_state(
            otel,
            crate::otel::start,
        )),
        None => router,
    };
    router.layer(axum::middleware::from_fn_with_state(
        tracking,
        access::track,
    ))
}

/// Operator-facing router: the public health routes, `/metrics` (Prometheus text, public
/// on this listener like the health routes, since scrapers rarely send keys: the admin
/// listener is private by default, keep it so), and the admin API behind key
/// authentication (default deny, unknown `/api/` paths included).
pub fn admin_plane(state: Arc<AppState>) -> Router {
    let tracking = access::Tracking {
        state: state.clone(),
        request_logs: false,
    };
    let api = crate::admin::router()
        .fallback(|| async { GatewayError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::admin::require_key,
        ));
    Router::new()
        .merge(api)
        .route(PUBLIC_ROUTES[0], get(healthz))
        .route(PUBLIC_ROUTES[1], get(readyz))
        .route("/metrics", get(prometheus))
        .method_not_allowed_fallback(openai::method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(axum::middleware::from_fn_with_state(
            tracking,
            access::track,
        ))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "not ready", "reason": "store unreachable"})),
        )
            .into_response()
    }
}

async fn prometheus(State(state): State<Arc<AppState>>) -> Response {
    let content_type = portcullis_telemetry::metrics::CONTENT_TYPE;
    (
        [(axum::http::header::CONTENT_TYPE, content_type)],
        state.render_metrics(),
    )
        .into_response()
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    GatewayError::Internal.into_response()
}
