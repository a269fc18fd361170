//! Authentication of data-plane callers by virtual key (`Authorization: Bearer` or `x-api-key`).

use crate::error::GatewayError;
use crate::state::AppState;
use axum::http::HeaderMap;
use portcullis_policy::{AuthError, KeyEntry};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The key presented by the caller, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Authenticates the request or returns the 401 to send.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Arc<KeyEntry>, GatewayError> {
    let secret = match presented_key(headers) {
        Some(s) => s,
        None if headers.contains_key(axum::http::header::AUTHORIZATION) => {
            return Err(GatewayError::Auth(AuthError::Invalid))
        }
        None => return Err(GatewayError::Auth(AuthError::Missing)),
    };
    state
        .keys
        .load()
        .authenticate(secret, unix_now())
        .map_err(GatewayError::Auth)
}

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_bearer_and_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static("pcl_abc"));
        assert_eq!(presented_key(&h), Some("pcl_abc"));
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer  pcl_xyz "),
        );
        assert_eq!(presented_key(&h), Some("pcl_xyz"));
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(presented_key(&h), None);
    }
}
