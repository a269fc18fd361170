//! Anthropic Messages API: typed wire types and translation to and from the IR, for
//! requests, complete responses and SSE streams, plus Anthropic's error shape.

mod request;
mod response;
mod stream;
pub mod types;

pub use request::{parse_request, request_from_ir, request_to_ir, DEFAULT_MAX_TOKENS};
pub use response::{
    error_body, error_value, parse_response, response_from_ir, response_to_ir, stop_from_ir,
    stop_to_ir, usage_from_ir, usage_to_ir,
};
pub use stream::{EventDecoder, EventEncoder, SseEvent};
