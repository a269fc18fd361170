//! Bedrock errors -> IR error kinds: HTTP error responses (`x-amzn-ErrorType` header and a
//! `{"message": ...}` body) and ConverseStream exception events (`:exception-type`).

use crate::ir::ErrorKind;
use serde_json::Value;

/// A classified upstream error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedrockError {
    /// Error family.
    pub kind: ErrorKind,
    /// The AWS error type without its namespace, e.g. `ThrottlingException` (empty if unknown).
    pub error_type: String,
    /// The upstream message (for logs; 5xx bodies to clients stay generic).
    pub message: String,
}

/// Classifies an AWS error type: a header value like
/// `ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/`, a JSON
/// `__type` like `com.amazon.coral.service#ThrottlingException`, or a stream exception type
/// like `throttlingException`. Unknown types are `Api`.
pub fn error_kind(error_type: &str) -> ErrorKind {
    match short_type(error_type).to_ascii_lowercase().as_str() {
        "validationexception" | "serializationexception" => ErrorKind::InvalidRequest,
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "incompletesignature"
        | "missingauthenticationtokenexception"
        | "missingauthenticationtoken"
        | "expiredtokenexception"
        | "invalidclienttokenid"
        | "signaturedoesnotmatch" => ErrorKind::Authentication,
        "accessdeniedexception" => ErrorKind::Permission,
        "resourcenotfoundexception" => ErrorKind::NotFound,
        "throttlingexception" | "servicequotaexceededexception" | "toomanyrequestsexception" => {
            ErrorKind::RateLimit
        }
        "serviceunavailableexception" | "modelnotreadyexception" => ErrorKind::Overloaded,
        _ => ErrorKind::Api,
    }
}

/// `ValidationException:http://...` and `ns#ValidationException` -> `ValidationException`.
fn short_type(t: &str) -> &str {
    let t = t.split(':').next().unwrap_or(t);
    t.rsplit('#').next().unwrap_or(t).trim()
}

/// The family of an error response without a recognizable type.
fn kind_from_status(status: u16) -> ErrorKind {
    match status {
        400 | 422 => ErrorKind::InvalidRequest,
        401 => ErrorKind::Authentication,
        403 => ErrorKind::Permission,
        404 => ErrorKind::NotFound,
        413 => ErrorKind::RequestTooLarge,
        429 => ErrorKind::RateLimit,
        503 => ErrorKind::Overloaded,
        _ => ErrorKind::Api,
    }
}

/// Classifies an HTTP error response: `error_type` is the `x-amzn-ErrorType` header when
/// present (else the body's `__type`, else the status decides); the message is the body's
/// `message` (or `Message`).
pub fn parse_error(status: u16, error_type: Option<&str>, body: &[u8]) -> BedrockError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let str_of = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let raw_type = error_type
        .map(str::to_owned)
        .or_else(|| str_of("__type"))
        .unwrap_or_default();
    let error_type = short_type(&raw_type).to_string();
    let kind = if error_type.is_empty() {
        kind_from_status(status)
    } else {
        match error_kind(&error_type) {
            ErrorKind::Api => kind_from_status(status),
            k => k,
        }
    };
    let message = str_of("message")
        .or_else(|| str_of("Message"))
        .unwrap_or_else(|| format!("upstream error (HTTP {status})"));
    BedrockError {
        kind,
        error_type,
        message,
    }
}

/// Classifies a ConverseStream exception event (`:message-type: exception`) from its
/// `:exception-type` header and `{"message": ...}` payload.
pub fn parse_exception(exception_type: &str, payload: &[u8]) -> BedrockError {
    let v: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let message = v
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("upstream {exception_type}"));
    BedrockError {
        kind: error_kind(exception_type),
        error_type: short_type(exception_type).to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_types_with_namespace_are_classified() {
        let e = parse_error(
            400,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            br#"{"message":"Malformed input request"}"#,
        );
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert_eq!(e.error_type, "ValidationException");
        assert_eq!(e.message, "Malformed input request");
        let e = parse_error(429, Some("ThrottlingException"), b"{}");
        assert_eq!(e.kind, ErrorKind::RateLimit);
        assert_eq!(e.message, "upstream error (HTTP 429)");
        let e = parse_error(
            403,
            None,
            br#"{"__type":"x#UnrecognizedClientException","Message":"bad"}"#,
        );
        assert_eq!(e.kind, ErrorKind::Authentication);
        assert_eq!(e.message, "bad");
    }

    #[test]
    fn unknown_types_fall_back_to_status() {
        assert_eq!(
            parse_error(503, None, b"not json").kind,
            ErrorKind::Overloaded
        );
        assert_eq!(parse_error(500, Some("Weird"), b"").kind, ErrorKind::Api);
        assert_eq!(
            parse_error(404, Some("Weird"), b"").kind,
            ErrorKind::NotFound
        );
    }

    #[test]
    fn stream_exceptions_are_classified() {
        for (t, k) in [
            ("throttlingException", ErrorKind::RateLimit),
            ("validationException", ErrorKind::InvalidRequest),
            ("modelStreamErrorException", ErrorKind::Api),
            ("serviceUnavailableException", ErrorKind::Overloaded),
            ("internalServerException", ErrorKind::Api),
        ] {
            let e = parse_exception(t, br#"{"message":"m"}"#);
            assert_eq!((e.kind, e.message.as_str()), (k, "m"), "{t}");
        }
    }
}
