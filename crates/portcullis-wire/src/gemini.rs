//! Google Gemini API (generativelanguage v1beta `generateContent` and
//! `streamGenerateContent?alt=sse`): typed wire types and translation to and from the IR,
//! for requests, complete responses and SSE streams, plus Gemini's error shape.

mod error;
mod parts;
mod request;
mod request_parse;
mod response;
mod stream;
pub mod types;

pub use error::{
    error_body, error_from_value, error_kind, error_status, error_value, parse_error, UpstreamError,
};
pub use parts::call_id;
pub use request::{endpoint_path, request_from_ir, SKIP_SIGNATURE_VALIDATOR};
pub use request_parse::{parse_request, request_to_ir};
pub use response::{
    parse_response, response_from_ir, response_to_ir, stop_from_ir, stop_to_ir, usage_from_ir,
    usage_to_ir,
};
pub use stream::{ChunkDecoder, ChunkEncoder};

#[cfg(test)]
mod tests;
