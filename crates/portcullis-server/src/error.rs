//! The one error type at the edge. One exhaustive match decides status, OpenAI error type
//! and code, and the message; 5xx messages stay generic (details go to the log once).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_policy::AuthError;
use portcullis_providers::{Provider, UpstreamError};
use std::borrow::Cow;
use std::sync::Arc;

/// Everything that can end a request with an error.
#[derive(Debug)]
pub enum GatewayError {
    /// Missing, invalid, expired or revoked gateway key.
    Auth(AuthError),
    /// The key may not use this model.
    ModelNotAllowed(String),
    /// No model of that name is configured.
    UnknownModel(String),
    /// The body is not a usable request.
    BadRequest {
        /// Client-safe explanation.
        message: String,
        /// Field at fault.
        param: Option<String>,
    },
    /// The body exceeds `server.max_body_size`.
    BodyTooLarge(u64),
    /// No such route.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The upstream could not be reached.
    UpstreamUnreachable,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The upstream answered with something that is not a valid response.
    UpstreamBadResponse,
    /// The upstream refused the gateway's own credentials: a gateway misconfiguration.
    UpstreamAuth,
    /// The upstream does not know the configured upstream model or endpoint.
    UpstreamNotFound,
    /// The upstream rate-limited the gateway.
    UpstreamRateLimited(Option<String>),
    /// The upstream is overloaded or unavailable.
    UpstreamOverloaded(Option<String>),
    /// The upstream rejected the request itself (the client's fault), message scrubbed.
    UpstreamRejected {
        /// Upstream status (400, 413, 422, ...).
        status: u16,
        /// The upstream's message with provider secrets removed.
        message: String,
    },
    /// The upstream failed with a server error.
    UpstreamServerError,
    /// Every target of the model is ejected by its circuit breaker (or held after throttling).
    UpstreamUnavailable {
        /// Seconds until a target takes calls again, when known.
        retry_after: Option<u64>,
    },
    /// The active security policy refuses the request.
    PolicyDenied {
        /// The deciding rule, e.g. `teams.research.models`.
        rule: String,
        /// Why, in a sentence without secrets.
        reason: String,
    },
    /// A rate or concurrency limit is exhausted.
    RateLimited {
        /// The limit's id in the policy.
        rule: String,
        /// Seconds until a retry can succeed.
        retry_after: u64,
    },
    /// A hard budget would be exceeded.
    BudgetExceeded {
        /// The budget's id in the policy.
        rule: String,
    },
    /// The shared limit store is unreachable and limits fail closed.
    LimiterUnavailable,
    /// The audit queue is full: administrative calls are refused rather than performed
    /// without their audit record.
    AuditUnavailable,
    /// A guardrail rule with action `block` matched the prompt or the answer.
    GuardrailBlocked {
        /// Rule id (detector name or the profile's custom id); never the matched text.
        rule: String,
        /// True when the answer, not the prompt, was blocked.
        output: bool,
    },
    /// A guardrail request limit (`max_prompt_tokens`, `max_images`) was exceeded.
    GuardrailLimit {
        /// The limit's rule id.
        rule: &'static str,
        /// What was counted against what limit (no prompt content).
        detail: String,
    },
    /// The guardrail webhook could not judge the request and fails closed.
    GuardrailUnavailable {
        /// `timeout`, `unreachable` or `bad_answer`.
        reason: &'static str,
    },
    /// The caller's role lacks a permission on the target (admin API).
    Forbidden {
        /// The missing permission, e.g. `keys:revoke`.
        permission: &'static str,
    },
    /// The caller may not give a role it does not itself cover (admin API).
    GrantDenied {
        /// The role that was asked for.
        role: String,
    },
    /// The change collides with existing data (duplicate name, id, ...).
    Conflict(String),
    /// A named resource (key, user, policy version, ...) does not exist.
    ResourceNotFound(String),
    /// A policy document did not validate: every problem, with its path.
    InvalidPolicy(Vec<portcullis_policy::document::Problem>),
    /// A bug or an unexpected state in the gateway.
    Internal,
}

/// Status, OpenAI `type`, `code`, message and `param` of an error.
pub struct ErrorParts<'a> {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI error type.
    pub kind: &'static str,
    /// Machine-readable code.
    pub code: &'static str,
    /// Client-facing message.
    pub message: Cow<'a, str>,
    /// Field at fault.
    pub param: Option<&'a str>,
}

impl GatewayError {
    /// Classifies an upstream failure; messages are scrubbed of the provider's secrets.
    pub fn from_upstream(error: UpstreamError, provider: &Provider) -> GatewayError {
        match error {
            UpstreamError::Unreachable { .. } => GatewayError::UpstreamUnreachable,
            UpstreamError::Timeout { .. } => GatewayError::UpstreamTimeout,
            UpstreamError::Protocol { .. } => GatewayError::UpstreamBadResponse,
            UpstreamError::Status {
                status,
                retry_after,
                body,
                ..
            } => match status {
                401 | 403 => GatewayError::UpstreamAuth,
                // Gemini refuses a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID.
                400 if body.windows(15).any(|w| w == b"API_KEY_INVALID") => {
                    GatewayError::UpstreamAuth
                }
                404 => GatewayError::UpstreamNotFound,
                408 => GatewayError::UpstreamTimeout,
                429 => GatewayError::UpstreamRateLimited(retry_after),
                503 | 529 => GatewayError::UpstreamOverloaded(retry_after),
                400..=499 => {
                    let raw = portcullis_wire::openai::upstream_error_message(&body)
                        .unwrap_or_else(|| "the provider rejected the request".into());
                    let mut message = provider.scrub(&raw);
                    if message.len() > 1000 {
                        let cut = (0..=1000)
                            .rev()
                            .find(|i| message.is_char_boundary(*i))
                            .unwrap_or(0);
                        message.truncate(cut);
                    }
                    GatewayError::UpstreamRejected { status, message }
                }
                _ => GatewayError::UpstreamServerError,
            },
        }
    }

    /// The exhaustive mapping to what the client sees.
    pub fn parts(&self) -> ErrorParts<'_> {
        use GatewayError::*;
        let (status, kind, code, message, param): (StatusCode, _, _, Cow<str>, Option<&str>) = match self {
            Auth(e) => (StatusCode::UNAUTHORIZED, "invalid_request_error", "invalid_api_key", e.to_string().into(), None),
            ModelNotAllowed(m) => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "model_not_allowed",
                format!("this API key is not allowed to use model '{m}'").into(),
                Some("model"),
            ),
            UnknownModel(m) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                format!("the model '{m}' does not exist").into(),
                Some("model"),
            ),
            BadRequest { message, param } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
                message.as_str().into(),
                param.as_deref(),
            ),
            BodyTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
                format!("request body exceeds the limit of {limit} bytes").into(),
                None,
            ),
            NotFound => (StatusCode::NOT_FOUND, "invalid_request_error", "not_found", "unknown endpoint".into(), None),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method_not_allowed",
                "this endpoint does not accept this HTTP method".into(),
                None,
            ),
            UpstreamUnreachable => (StatusCode::BAD_GATEWAY, "api_error", "upstream_unreachable", "the upstream provider could not be reached".into(), None),
            UpstreamTimeout => (StatusCode::GATEWAY_TIMEOUT, "api_error", "upstream_timeout", "the upstream provider did not answer in time".into(), None),
            UpstreamBadResponse => (StatusCode::BAD_GATEWAY, "api_error", "upstream_bad_response", "the upstream provider sent an invalid response".into(), None),
            UpstreamAuth => (
                StatusCode::BAD_GATEWAY,
                "api_error",
                "upstream_misconfigured",
                "the gateway's credentials were refused by the upstream provider; this is a gateway configuration problem, not your API key".into(),
                None,
            ),
            UpstreamNotFound => (
                StatusCode::BAD_GATEWAY,
                "api_error",
                "upstream_misconfigured",
                "the upstream provider does not know the configured model or endpoint".into(),
                None,
            ),
            UpstreamRateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "upstream_rate_limited", "the upstream provider is rate limiting requests; retry later".into(), None),
            UpstreamOverloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "api_error", "upstream_overloaded", "the upstream provider is overloaded; retry later".into(), None),
            UpstreamRejected { status, message } => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                "invalid_request_error",
                "upstream_rejected",
                message.as_str().into(),
                None,
            ),
            UpstreamServerError => (StatusCode::BAD_GATEWAY, "api_error", "upstream_error", "the upstream provider failed".into(), None),
            UpstreamUnavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "upstream_unavailable",
                "every upstream target of this model is temporarily out of service after repeated failures; retry later".into(),
                None,
            ),
            PolicyDenied { rule, reason } => {
                let status = if rule.ends_with(".max_body_bytes") {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else if rule.ends_with(".max_tokens_per_request") {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::FORBIDDEN
                };
                (status, "permission_error", "policy_denied", format!("denied by policy rule {rule}: {reason}").into(), None)
            }
            RateLimited { rule, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limit_exceeded",
                format!("rate limit '{rule}' exceeded; retry later").into(),
                None,
            ),
            BudgetExceeded { rule } => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "budget_exceeded",
                format!("budget '{rule}' is exhausted for this period").into(),
                None,
            ),
            GuardrailBlocked { rule, output } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "guardrail_blocked",
                if *output {
                    format!("the response was blocked by guardrail rule '{rule}'").into()
                } else {
                    format!("the request was blocked by guardrail rule '{rule}'").into()
                },
                None,
            ),
            GuardrailLimit { rule, detail } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "guardrail_blocked",
                format!("the request was blocked by guardrail rule '{rule}': {detail}").into(),
                Some("messages"),
            ),
            GuardrailUnavailable { reason } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "guardrail_unavailable",
                format!("the guardrail webhook could not check this request ({reason}); it was blocked because the guardrail fails closed").into(),
                None,
            ),
            LimiterUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "limiter_unavailable",
                "rate limits cannot be checked right now; retry later".into(),
                None,
            ),
            AuditUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "audit_unavailable",
                "the audit log cannot accept records right now; administrative calls are refused until it can; retry later".into(),
                None,
            ),
            Forbidden { permission } => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "permission_denied",
                format!("this key's role lacks permission '{permission}' on this resource").into(),
                None,
            ),
            GrantDenied { role } => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "permission_denied",
                format!("this key's role may not grant role '{role}': it would give more than the caller holds").into(),
                Some("role"),
            ),
            Conflict(message) => (StatusCode::CONFLICT, "invalid_request_error", "conflict", message.as_str().into(), None),
            ResourceNotFound(message) => (StatusCode::NOT_FOUND, "invalid_request_error", "not_found", message.as_str().into(), None),
            InvalidPolicy(problems) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_policy",
                format!(
                    "invalid policy document ({} problem(s)): {}",
                    problems.len(),
                    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                )
                .into(),
                None,
            ),
            Internal => (StatusCode::INTERNAL_SERVER_ERROR, "api_error", "internal_error", "internal gateway error".into(), None),
        };
        ErrorParts {
            status,
            kind,
            code,
            message,
            param,
        }
    }

    /// Retry-After to send, when known.
    pub fn retry_after(&self) -> Option<String> {
        match self {
            GatewayError::UpstreamRateLimited(r) | GatewayError::UpstreamOverloaded(r) => r.clone(),
            GatewayError::RateLimited { retry_after, .. } => Some(retry_after.to_string()),
            GatewayError::LimiterUnavailable | GatewayError::AuditUnavailable => Some("1".into()),
            GatewayError::UpstreamUnavailable { retry_after } => retry_after.map(|s| s.to_string()),
            _ => None,
        }
    }

    /// The OpenAI error JSON for this error.
    pub fn body(&self) -> Vec<u8> {
        let p = self.parts();
        let body = portcullis_wire::openai::error_body(&p.message, p.kind, Some(p.code), p.param);
        match self {
            GatewayError::InvalidPolicy(problems) => with_problems(body, problems),
            _ => body,
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.parts().status;
        let mut response = (status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(v) = self
            .retry_after()
            .and_then(|r| HeaderValue::from_str(&r).ok())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if let GatewayError::Auth(_) = self {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        let parts = self.parts();
        let extensions = response.extensions_mut();
        extensions.insert(ErrorCode(parts.code));
        extensions.insert(ErrorReason(Arc::from(parts.message.as_ref())));
        response
    }
}

/// Adds `error.problems` (every problem with its path) to an error body.
fn with_problems(body: Vec<u8>, problems: &[portcullis_policy::document::Problem]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    value["error"]["problems"] = serde_json::json!(problems);
    serde_json::to_vec(&value).unwrap_or(body)
}

/// The error code of a failed response, kept for the access log.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// The client-facing message of a failed response, kept for the request log.
#[derive(Debug, Clone)]
pub struct ErrorReason(pub Arc<str>);

/// Whether an error code means the gateway refused the request (authentication, access,
/// policy, limits, budget, guardrail), as opposed to a malformed request or a failure.
pub fn is_denial(code: &str) -> bool {
    matches!(
        code,
        "invalid_api_key"
            | "model_not_allowed"
            | "policy_denied"
            | "rate_limit_exceeded"
            | "budget_exceeded"
            | "guardrail_blocked"
            | "limiter_unavailable"
            | "permission_denied"
    )
}
