//! OpenAI Chat Completions: typed wire types and translation to and from the IR, for
//! requests, complete responses and streamed chunks.

mod request;
mod response;
mod stream;
pub mod types;

pub use request::{parse_request, request_from_ir, request_to_ir};
pub use response::{
    parse_response, response_from_ir, response_to_ir, stop_from_ir, stop_to_ir, usage_from_ir,
    usage_to_ir,
};
pub use stream::{ChunkDecoder, ChunkEncoder};
