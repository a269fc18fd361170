//! `GET /api/v1/reports/compliance?from=&to=&format=html|json|csv`: the compliance report
//! of `[from, to)`. It shows everyone's activity and the audit trail, so it needs both
//! `audit:read` and `logs:read` on `*`.

use super::{bad_request, Ctx, GLOBAL};
use crate::error::GatewayError;
use crate::policy_ops::now;
use crate::report::{self, ReportError};
use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use portcullis_config::ReportFormat;
use portcullis_policy::rbac::Permission;
use serde::Deserialize;

/// Query of `GET /api/v1/reports/compliance`.
#[derive(Deserialize)]
pub struct Params {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// An instant: unix seconds, a date (`2026-11-01`, midnight UTC), an RFC 3339 time
/// (`2026-11-01T12:00:00Z`), or a span back from now (`7d`, `12h`).
pub fn instant(text: &str, param: &str) -> Result<i64, GatewayError> {
    parse_instant(text, now()).map_err(|m| bad_request(format!("{param}: {m}"), param))
}

/// [`instant`] without the HTTP error, relative to `now`.
pub fn parse_instant(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(at) = text.parse::<i64>() {
        return Ok(at);
    }
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .map_err(|_| format!("'{text}' is before 1970"))
    };
    if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        if let Ok(t) = humantime::parse_rfc3339(&format!("{text}T00:00:00Z")) {
            return unix(t);
        }
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return unix(t);
    }
    super::parse_lifetime(text)
        .map(|secs| now - secs)
        .map_err(|_| {
            format!(
            "'{text}' is not a time (examples: 2026-11-01, 2026-11-01T12:00:00Z, unix seconds, 7d)"
        )
        })
}

/// Parses `html`, `json` or `csv`.
pub fn parse_format(text: &str) -> Option<ReportFormat> {
    match text.trim().to_ascii_lowercase().as_str() {
        "html" => Some(ReportFormat::Html),
        "json" => Some(ReportFormat::Json),
        "csv" => Some(ReportFormat::Csv),
        _ => None,
    }
}

/// `GET /api/v1/reports/compliance`.
pub async fn compliance(ctx: Ctx, Query(q): Query<Params>) -> Result<Response, GatewayError> {
    for permission in [Permission::AuditRead, Permission::LogsRead] {
        ctx.require(permission, GLOBAL, "report.compliance", "-")
            .await?;
    }
    let now = now();
    let to = match &q.to {
        Some(t) => instant(t, "to")?,
        None => now + 1,
    };
    let from = match &q.from {
        Some(t) => instant(t, "from")?,
        None => to - 86_400,
    };
    let format = match q.format.as_deref() {
        None => ReportFormat::Json,
        Some(f) => parse_format(f).ok_or_else(|| {
            bad_request(
                format!("format '{f}' is not one of html, json, csv"),
                "format",
            )
        })?,
    };
    let report = report::compliance(&ctx.state.store, from, to, now)
        .await
        .map_err(|e| match e {
            ReportError::EmptyPeriod { .. } => bad_request(e.to_string(), "from"),
            ReportError::Store(e) => super::store_error(e),
        })?;
    let detail = serde_json::json!({"from": from, "to": to, "format": format.as_str()});
    ctx.audit("report.compliance", "-", "ok", detail).await;
    Ok((
        [(header::CONTENT_TYPE, report::content_type(format))],
        report::render(&report, format),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_instant;

    #[test]
    fn instants() {
        assert_eq!(parse_instant("1700000000", 0), Ok(1_700_000_000));
        assert_eq!(parse_instant("2026-11-01", 0), Ok(1_793_491_200));
        assert_eq!(parse_instant("2026-11-01T12:00:00Z", 0), Ok(1_793_534_400));
        assert_eq!(parse_instant("1d", 100_000), Ok(100_000 - 86_400));
        assert!(parse_instant("yesterday", 0).is_err());
    }
}
