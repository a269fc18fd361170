//! Logging setup: human or JSON lines on stderr, written in batches by a background thread
//! ([`log_writer`]) so a slow terminal or log pipe never stalls a request. Access-log lines
//! use the `ACCESS_TARGET`. Prometheus metrics with typed names and bounded labels live in
//! [`metrics`]; OpenTelemetry trace export over OTLP in [`otel`].

pub mod metrics;

pub mod access_log;
pub mod log_writer;

pub mod otel;

use tracing_subscriber::{fmt, EnvFilter};

/// The tracing target of the one-line-per-request access log.
pub const ACCESS_TARGET: &str = "portcullis::access";

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For a person at a terminal.
    Human,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Keeps the background log writer alive; dropping it flushes pending lines.
pub struct LogGuard {
    _flush: log_writer::FlushGuard,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default level (`info`).
/// Lines are appended to a shared buffer that a writer thread writes out in batches (see
/// [`log_writer`]); lines beyond its bound are dropped and counted rather than blocking
/// requests, and the count is logged.
pub fn init(format: Format) -> anyhow::Result<LogGuard> {
    let (writer, flush) = log_writer::spawn(std::io::stderr());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    access_log::install(writer.clone(), format);
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let result = match format {
        Format::Human => builder.try_init(),
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install logger: {e}"))?;
    Ok(LogGuard { _flush: flush })
}
