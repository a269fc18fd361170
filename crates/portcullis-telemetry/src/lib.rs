//! Logging setup: human or JSON lines on stderr, written by a background thread so a slow
//! terminal or log pipe never stalls a request. Access-log lines use the `ACCESS_TARGET`.
//! Prometheus metrics with typed names and bounded labels live in [`metrics`]; OpenTelemetry
//! trace export over OTLP in [`otel`].

pub mod metrics;

pub mod access_log;

pub mod otel;

use tracing_appender::non_blocking::WorkerGuard;
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
    _worker: WorkerGuard,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default level (`info`).
/// The writer thread buffers lines and flushes whenever its queue runs empty, so under
/// load many lines share one write call instead of one syscall each.
/// Lines that cannot be queued fast enough are dropped rather than blocking requests;
/// the queue holds 128k lines so that only a pathological burst loses any.
pub fn init(format: Format) -> anyhow::Result<LogGuard> {
    let (writer, worker) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(128 * 1024)
        .lossy(true)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
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
    Ok(LogGuard { _worker: worker })
}
