//! Wire formats without I/O: the OpenAI-compatible request/response shapes the gateway
//! reads, its error envelope, and an incremental Server-Sent-Events splitter. Pure logic,
//! so it is fast to test and safe to fuzz.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod ir;
pub mod openai;
pub mod openai_chat;
pub mod sse;

/// Why a client body could not be used. Messages are safe to return to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("{message}")]
    Malformed {
        /// What is wrong.
        message: String,
        /// The offending field, when one can be named.
        param: Option<String>,
    },
}

impl WireError {
    /// Shorthand for a malformed-body error naming a field.
    pub fn field(param: &str, message: impl Into<String>) -> WireError {
        WireError::Malformed {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }
}
