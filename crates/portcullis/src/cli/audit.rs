//! `portcullis audit verify|list|config`: check the tamper-evident audit chain, read or export
//! the audit log, directly on the store, and run the configuration security audit.
//!
//! `verify` exits 0 when the chain is intact and 1 when it is broken, so it can run from
//! cron or a CI gate; it prints the chain head (id and hash), which an operator can keep
//! elsewhere to catch a wholesale rewrite of the chain. `list --export jsonl` writes every
//! matching record, oldest first, as one JSON object per line with its `prev_hash` and
//! `hash`, so an exported file can be re-verified by other tools.

use crate::cli::keys::{now, open_store};
use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use portcullis_store::{AuditQuery, AuditRecord, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

/// Records fetched per store query while listing or exporting.
const PAGE: u32 = 500;

/// `portcullis audit ...`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of the audit log; exit 1 and name the first broken record if it was
    /// edited, deleted or reordered.
    Verify {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List audit records, newest first (or export them, oldest first).
    List {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Only records from this period back from now, e.g. 7d, 24h (default: all).
        #[arg(long)]
        since: Option<String>,
        /// Only records of this exact actor.
        #[arg(long)]
        actor: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// At most this many records (newest); ignored by --export, which writes all.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Write every matching record to stdout in this format instead of a listing.
        #[arg(long, value_enum)]
        export: Option<ExportFormat>,
    },
    /// Security audit of the configuration, the active policy and the stored keys; the exit
    /// code reflects the worst finding (0 none, 2 low, 3 medium, 4 high, 5 critical).
    Config {
        /// YAML configuration file (also gives the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: crate::cli::audit_config::Format,
        /// Only findings at or above this severity fail (info, low, medium, high, critical).
        #[arg(long, default_value = "low")]
        fail_on: String,
    },
}

/// Export formats of `audit list --export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line, oldest first, hashes included.
    Jsonl,
}

/// Runs an `audit` subcommand.
pub async fn run(command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify { config, json } => verify(config.as_deref(), json).await,
        AuditCommand::Config {
            config,
            format,
            fail_on,
        } => crate::cli::audit_config::run(config.as_deref(), format, &fail_on).await,
        AuditCommand::List {
            config,
            since,
            actor,
            json,
            limit,
            export,
        } => {
            let filter = Filter {
                since: since.as_deref().map(since_to_unix).transpose()?,
                actor,
            };
            let store = open_store(config.as_deref()).await?;
            let outcome = match export {
                Some(ExportFormat::Jsonl) => export_jsonl(&store, &filter).await,
                None => list(&store, &filter, limit, json).await,
            };
            store.close().await;
            outcome
        }
    }
}

/// `audit verify`: prints the verdict; exit 0 intact, 1 broken.
pub async fn verify(config: Option<&Path>, json: bool) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let verdict = store.verify_audit_chain().await;
    store.close().await;
    let verdict = verdict?;
    if json {
        println!("{}", serde_json::to_string_pretty(&verdict)?);
    } else {
        println!("{verdict}");
    }
    Ok(if verdict.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The filters of `audit list`.
struct Filter {
    since: Option<i64>,
    actor: Option<String>,
}

fn since_to_unix(text: &str) -> Result<i64> {
    let span = humantime::parse_duration(text)
        .with_context(|| format!("--since '{text}' is not a duration (examples: 7d, 24h)"))?;
    Ok(now().saturating_sub(span.as_secs() as i64))
}

/// Up to `max` matching records, newest first, in pages.
async fn fetch(store: &Store, filter: &Filter, max: Option<usize>) -> Result<Vec<AuditRecord>> {
    let mut out: Vec<AuditRecord> = Vec::new();
    let mut before_id = None;
    loop {
        let want = max.map_or(PAGE as usize, |m| (m - out.len()).min(PAGE as usize));
        if want == 0 {
            break;
        }
        let page = store
            .list_audit(&AuditQuery {
                since: filter.since,
                actor: filter.actor.clone(),
                limit: want as u32,
                before_id,
                ..AuditQuery::default()
            })
            .await?;
        let short = page.len() < want;
        before_id = page.last().map(|r| r.id);
        out.extend(page);
        if short {
            break;
        }
    }
    Ok(out)
}

async fn list(store: &Store, filter: &Filter, limit: u32, json: bool) -> Result<ExitCode> {
    let records = fetch(store, filter, Some(limit as usize)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6} {:<20} {:<18} {:<20} {:<22} {:<7} DETAIL",
        "ID", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME"
    );
    for r in &records {
        println!(
            "{:>6} {:<20} {:<18} {:<20} {:<22} {:<7} {}",
            r.id,
            time_text(r.at),
            r.actor,
            r.action,
            r.target,
            r.outcome,
            r.detail
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Every matching record, oldest first, one JSON object per line.
async fn export_jsonl(store: &Store, filter: &Filter) -> Result<ExitCode> {
    let mut records = fetch(store, filter, None).await?;
    records.reverse();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for r in &records {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn time_text(at: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(at.max(0) as u64))
        .to_string()
}
