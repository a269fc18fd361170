//! Configuration of what the gateway records and reports: request logs (retention,
//! queue size) and scheduled compliance reports.

use crate::units::Seconds;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Request logs: one record per data-plane request, written to the store in batches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Write request logs (default `true`).
    pub enabled: bool,
    /// How long records are kept (default `30d`); older ones are purged every hour.
    pub retention: Seconds,
    /// Most records waiting for the store (default 65536); beyond that a record is
    /// counted in `portcullis_queue_dropped_total{queue="request_log"}` and logged.
    pub queue: usize,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: true,
            retention: Seconds(Duration::from_secs(30 * 86_400)),
            queue: 65_536,
        }
    }
}

/// Scheduled reports.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// Write a compliance report on a schedule.
    pub compliance: Option<ComplianceSchedule>,
}

/// A compliance report written every `every`, covering the period just ended.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceSchedule {
    /// Period length and interval, e.g. `24h`.
    pub every: Seconds,
    /// Directory the reports are written to (created when missing).
    pub dir: PathBuf,
    /// `html` (default), `json` or `csv`.
    #[serde(default)]
    pub format: ReportFormat,
}

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// A self-contained HTML document (tables, inline SVG charts).
    #[default]
    Html,
    /// One JSON document.
    Json,
    /// CSV, one section per table.
    Csv,
}

impl ReportFormat {
    /// The name used in configuration and file extensions.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Json => "json",
            ReportFormat::Csv => "csv",
        }
    }
}

/// Checks the logs and reports sections.
pub(crate) fn validate(
    logs: &LogsConfig,
    reports: &ReportsConfig,
    push: &mut impl FnMut(String, String),
) {
    if logs.retention.0 < Duration::from_secs(60) {
        push(
            "logs.retention".into(),
            "must be at least 1m (examples: 30d, 90d)".into(),
        );
    }
    if logs.queue == 0 {
        push("logs.queue".into(), "must be greater than zero".into());
    }
    if let Some(c) = &reports.compliance {
        if c.every.0 < Duration::from_secs(60) {
            push(
                "reports.compliance.every".into(),
                "must be at least 1m (examples: 24h, 7d)".into(),
            );
        }
        if c.dir.as_os_str().is_empty() {
            push(
                "reports.compliance.dir".into(),
                "must name a directory".into(),
            );
        }
    }
}
