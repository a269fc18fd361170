//! Which provider API a request speaks, decided from its path; selects the error shapes.

use http::{Response, StatusCode};

use crate::respond::Body;
use crate::{anthropic, azure, bedrock, faults, gemini, respond};

/// The API family a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `/v1/chat/completions`, `/v1/embeddings`, `/v1/models` and anything unrouted.
    OpenAi,
    /// `/openai/deployments/{deployment}/...`.
    Azure,
    /// `/v1/messages`.
    Anthropic,
    /// `/v1beta/models/{model}:{method}` (and `/v1/models/{model}:{method}`).
    Gemini,
    /// `/model/{modelId}/converse[-stream]`.
    Bedrock,
}

impl Flavor {
    /// The flavor of a request path (without query).
    pub(crate) fn for_path(path: &str) -> Flavor {
        if path == "/v1/messages" || path.starts_with("/v1/messages/") {
            Flavor::Anthropic
        } else if path.starts_with("/v1beta/")
            || (path.starts_with("/v1/models/") && path.contains(':'))
        {
            Flavor::Gemini
        } else if path.starts_with("/openai/") {
            Flavor::Azure
        } else if path.starts_with("/model/") {
            Flavor::Bedrock
        } else {
            Flavor::OpenAi
        }
    }

    /// The error response this provider plausibly sends with `status` (status faults).
    pub(crate) fn status_error(self, status: StatusCode) -> Response<Body> {
        match self {
            Flavor::OpenAi => respond::json_bytes(status, faults::default_error_body(status)),
            Flavor::Azure => azure::status_error(status),
            Flavor::Anthropic => anthropic::status_error(status),
            Flavor::Gemini => gemini::status_error(status),
            Flavor::Bedrock => bedrock::status_error(status),
        }
    }
}
