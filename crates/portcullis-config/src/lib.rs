//! Gateway configuration: the YAML document operators write, parsed strictly and validated
//! with every problem collected (with its path) before the gateway refuses to start.

mod edge;
mod env;
mod load;
mod records;
mod routing;
mod security;
mod types;
mod units;
mod validate;

pub use edge::{CacheBackendKind, CacheConfig, RouteConfig, RETRYABLE_METHODS, ROUTE_METHODS};
pub use load::{load_file, load_str, Loaded, LITERAL_SECRET_WARNING};
pub use records::{ComplianceSchedule, LogsConfig, ReportFormat, ReportsConfig};
pub use routing::*;
pub use security::*;
pub use types::*;
pub use units::{ByteSize, Seconds};

/// One problem found in a configuration document, located by its path (e.g. `providers[1].kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path into the document; empty for the document itself.
    pub path: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every error that keeps a configuration from being used, reported together.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// All problems found, in document order.
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem(s)):",
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}
