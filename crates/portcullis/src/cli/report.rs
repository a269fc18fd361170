//! `portcullis report compliance`: the compliance report of a period, read from the store
//! directly (like the other CLI verbs), written to stdout or a file.

use crate::cli::keys::{now, open_store};
use anyhow::{anyhow, Result};
use clap::{Subcommand, ValueEnum};
use portcullis_config::ReportFormat;
use portcullis_server::admin::reports::parse_instant;
use portcullis_server::report;
use std::path::PathBuf;
use std::process::ExitCode;

/// `portcullis report ...`.
#[derive(Subcommand)]
pub enum ReportCommand {
    /// Access, denials, policy changes, key events, guardrail actions, anomalies and the
    /// audit-chain verification of [--from, --to). Exit 1 when the audit chain is broken.
    Compliance {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Start, inclusive: a date (2026-11-01, midnight UTC), an RFC 3339 time, unix
        /// seconds, or a span back from now (7d).
        #[arg(long)]
        from: String,
        /// End, exclusive (same forms; default: now).
        #[arg(long)]
        to: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "html")]
        format: Format,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Output formats of `report compliance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Self-contained HTML document with tables and charts.
    Html,
    /// JSON.
    Json,
    /// CSV, one block per section.
    Csv,
}

/// Runs a `report` subcommand.
pub async fn run(command: ReportCommand) -> Result<ExitCode> {
    let ReportCommand::Compliance {
        config,
        from,
        to,
        format,
        out,
    } = command;
    let now = now();
    let from = parse_instant(&from, now).map_err(|e| anyhow!("--from: {e}"))?;
    let to = match to {
        Some(t) => parse_instant(&t, now).map_err(|e| anyhow!("--to: {e}"))?,
        None => now + 1,
    };
    let format = match format {
        Format::Html => ReportFormat::Html,
        Format::Json => ReportFormat::Json,
        Format::Csv => ReportFormat::Csv,
    };
    let store = open_store(config.as_deref()).await?;
    let report = report::compliance(&store, from, to, now).await;
    store.close().await;
    let report = report?;
    let text = report::render(&report, format);
    match out {
        Some(path) => {
            std::fs::write(&path, &text)
                .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("compliance report written to {}", path.display());
        }
        None => print!("{text}"),
    }
    if !report.audit_chain.intact {
        eprintln!("warning: {}", report.audit_chain.summary);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
