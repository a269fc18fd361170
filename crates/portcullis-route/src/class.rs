//! Failure classes of an upstream exchange, and the upstream's `Retry-After`.

use std::time::{Duration, SystemTime};

/// Why an upstream attempt failed, as far as retries, fallbacks and breakers care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// DNS, TCP or TLS failure, or the connection closed before any response.
    Connect,
    /// No answer (or no first byte) within the time limit; 408 too.
    Timeout,
    /// 429: the upstream throttles the gateway.
    RateLimited,
    /// Another 5xx.
    ServerError,
    /// 503, 529 or an `overloaded_error` body (Anthropic): the upstream sheds load.
    Overloaded,
    /// The upstream answered 2xx with something unusable (or broke before the first event).
    BadResponse,
    /// 401, 403, 404: the gateway's credentials or model name are wrong for this target.
    Misconfigured,
    /// Any other 4xx: the request itself is at fault; another target would refuse it too.
    Rejected,
}

impl FailureClass {
    /// Every class, in a fixed order.
    pub const ALL: [FailureClass; 8] = [
        FailureClass::Connect,
        FailureClass::Timeout,
        FailureClass::RateLimited,
        FailureClass::ServerError,
        FailureClass::Overloaded,
        FailureClass::BadResponse,
        FailureClass::Misconfigured,
        FailureClass::Rejected,
    ];

    /// The class of an upstream error status; `body` is searched for Anthropic's
    /// `overloaded_error`, which may come with statuses other than 529.
    pub fn from_status(status: u16, body: &[u8]) -> FailureClass {
        if body.windows(16).any(|w| w == b"overloaded_error") {
            return FailureClass::Overloaded;
        }
        match status {
            408 => FailureClass::Timeout,
            429 => FailureClass::RateLimited,
            401 | 403 | 404 => FailureClass::Misconfigured,
            503 | 529 => FailureClass::Overloaded,
            500..=599 => FailureClass::ServerError,
            _ => FailureClass::Rejected,
        }
    }

    /// The name used in configuration (`retry.on`) and metrics.
    pub fn label(self) -> &'static str {
        match self {
            FailureClass::Connect => "connect",
            FailureClass::Timeout => "timeout",
            FailureClass::RateLimited => "429",
            FailureClass::ServerError => "5xx",
            FailureClass::Overloaded => "overloaded",
            FailureClass::BadResponse => "bad_response",
            FailureClass::Misconfigured => "misconfigured",
            FailureClass::Rejected => "rejected",
        }
    }

    /// The class named `label` (see [`FailureClass::label`]).
    pub fn from_label(label: &str) -> Option<FailureClass> {
        FailureClass::ALL.into_iter().find(|c| c.label() == label)
    }

    /// Whether the failure says the target is unhealthy (counts towards its breaker).
    /// Throttling is not ill health (it holds the target instead), and a rejected
    /// request says nothing about the target.
    pub fn is_target_failure(self) -> bool {
        !matches!(self, FailureClass::RateLimited | FailureClass::Rejected)
    }
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date (relative to `now`; a date
/// in the past gives zero). `None` for anything else.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(
            FailureClass::from_status(429, b""),
            FailureClass::RateLimited
        );
        assert_eq!(
            FailureClass::from_status(503, b""),
            FailureClass::Overloaded
        );
        assert_eq!(
            FailureClass::from_status(529, b""),
            FailureClass::Overloaded
        );
        assert_eq!(
            FailureClass::from_status(
                500,
                br#"{"type":"error","error":{"type":"overloaded_error"}}"#
            ),
            FailureClass::Overloaded
        );
        assert_eq!(
            FailureClass::from_status(502, b""),
            FailureClass::ServerError
        );
        assert_eq!(FailureClass::from_status(400, b""), FailureClass::Rejected);
        assert_eq!(FailureClass::from_status(422, b""), FailureClass::Rejected);
        assert_eq!(
            FailureClass::from_status(401, b""),
            FailureClass::Misconfigured
        );
        assert_eq!(FailureClass::from_status(408, b""), FailureClass::Timeout);
        assert!(!FailureClass::RateLimited.is_target_failure());
        assert!(!FailureClass::Rejected.is_target_failure());
        assert!(FailureClass::Connect.is_target_failure());
        for c in FailureClass::ALL {
            assert_eq!(FailureClass::from_label(c.label()), Some(c));
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}
