//! Amazon Bedrock Converse and ConverseStream: typed wire types, IR -> Converse requests,
//! Converse responses and stream events -> IR, and Bedrock's error classification. The
//! binary event-stream framing and SigV4 signing live with the provider adapter.

mod error;
mod request;
mod response;
mod stream;
pub mod types;

pub use error::{error_kind, parse_error, parse_exception, BedrockError};
pub use request::{model_path, request_from_ir};
pub use response::{parse_response, response_to_ir, stop_to_ir, usage_to_ir};
pub use stream::StreamDecoder;

#[cfg(test)]
mod tests;
