//! The API format a client spoke, which decides the shape of every answer it gets,
//! errors included (OpenAI's envelope on OpenAI routes, Anthropic's on /v1/messages).

use crate::error::GatewayError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_wire::ir::ErrorKind;

/// Inbound API formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// OpenAI Chat Completions, embeddings, models.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl GatewayError {
    /// The shared error family of this error, for formats other than OpenAI's.
    pub fn kind(&self) -> ErrorKind {
        match self.parts().status {
            StatusCode::BAD_REQUEST | StatusCode::METHOD_NOT_ALLOWED => ErrorKind::InvalidRequest,
            StatusCode::UNAUTHORIZED => ErrorKind::Authentication,
            StatusCode::FORBIDDEN => ErrorKind::Permission,
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::RequestTooLarge,
            StatusCode::TOO_MANY_REQUESTS => ErrorKind::RateLimit,
            StatusCode::SERVICE_UNAVAILABLE => ErrorKind::Overloaded,
            s if s.is_client_error() => ErrorKind::InvalidRequest,
            _ => ErrorKind::Api,
        }
    }

    /// The error response in the client's format.
    pub fn respond(self, inbound: Inbound) -> Response {
        match inbound {
            Inbound::OpenAi => self.into_response(),
            Inbound::Anthropic => {
                let body =
                    portcullis_wire::anthropic::error_body(self.kind(), &self.parts().message);
                let mut response = self.into_response();
                *response.body_mut() = axum::body::Body::from(body);
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response.headers_mut().remove(header::CONTENT_LENGTH);
                response
            }
        }
    }
}
