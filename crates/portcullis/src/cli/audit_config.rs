//! `portcullis audit config`: the configuration security audit (rules in
//! `portcullis_server::config_audit`) over the configuration file, the active policy and
//! the stored keys. Exit code: the worst finding at or above `--fail-on` (none -> 0,
//! low -> 2, medium -> 3, high -> 4, critical -> 5; 1 = could not run).

use crate::cli::config::load;
use crate::cli::keys::{now, open_store};
use anyhow::{anyhow, Result};
use clap::ValueEnum;
use portcullis_server::config_audit::{self, AuditInput, Severity};
use portcullis_server::state::AppState;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::ExitCode;

/// Output formats of `audit config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One block per finding and a summary line.
    Text,
    /// `{"findings": [...], "summary": {...}, "worst": ..., "exit_code": n}`.
    Json,
}

/// Runs the audit and prints the findings.
pub async fn run(config: Option<&Path>, format: Format, fail_on: &str) -> Result<ExitCode> {
    let fail_on = Severity::parse(fail_on).ok_or_else(|| {
        anyhow!("--fail-on '{fail_on}' is not one of info, low, medium, high, critical")
    })?;
    let loaded = load(config)?;
    let store = open_store(config).await?;
    let read = config_audit::read_store(&store).await;
    store.close().await;
    let (policy, keys) = read.map_err(|e| anyhow!("cannot read the store: {e}"))?;
    let findings = config_audit::audit(&AuditInput {
        config: &loaded.config,
        warnings: &loaded.warnings,
        policy: policy.as_ref(),
        keys: &keys,
        now: now(),
    });
    let code = config_audit::exit_code(&findings, fail_on);
    match format {
        Format::Text => print!("{}", config_audit::render_text(&findings)),
        Format::Json => {
            let summary: serde_json::Map<String, serde_json::Value> =
                config_audit::summary(&findings)
                    .into_iter()
                    .map(|(s, n)| (s.as_str().to_string(), n.into()))
                    .collect();
            let doc = serde_json::json!({
                "findings": findings,
                "summary": summary,
                "worst": config_audit::worst(&findings),
                "fail_on": fail_on,
                "exit_code": code,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    Ok(ExitCode::from(code))
}

/// At gateway start: records the configuration in the audit trail (actor `system`, action
/// `config.load`, target the file; detail: its SHA-256 and the security audit's counts),
/// so configuration changes across restarts are visible, and warns when the audit finds
/// high or critical problems.
pub async fn record_startup(state: &AppState, path: Option<&Path>) {
    let source = &state.config;
    let warnings = source.warnings.get().map_or(&[][..], Vec::as_slice);
    let sha256 = match path.map(std::fs::read) {
        Some(Ok(bytes)) => hex::encode(Sha256::digest(&bytes)),
        Some(Err(_)) => "unreadable".into(),
        None => "embedded".into(),
    };
    let audit = match config_audit::read_store(&state.store).await {
        Ok((policy, keys)) => {
            let findings = config_audit::audit(&AuditInput {
                config: &source.config,
                warnings,
                policy: policy.as_ref(),
                keys: &keys,
                now: now(),
            });
            let worst = config_audit::worst(&findings);
            if worst >= Some(Severity::High) {
                tracing::warn!(
                    findings = findings.len(),
                    worst = worst.map_or("none", Severity::as_str),
                    "WARNING: the configuration security audit has serious findings; run `portcullis audit config`"
                );
            }
            let counts: serde_json::Map<String, serde_json::Value> =
                config_audit::summary(&findings)
                    .into_iter()
                    .map(|(s, n)| (s.as_str().to_string(), n.into()))
                    .collect();
            serde_json::json!({"worst": worst, "counts": counts})
        }
        Err(e) => serde_json::json!({"error": e}),
    };
    let target = path.map_or("(embedded defaults)".into(), |p| p.display().to_string());
    let entry = portcullis_store::NewAuditEntry {
        at: now(),
        actor: "system".into(),
        action: "config.load".into(),
        target,
        outcome: "ok".into(),
        detail: serde_json::json!({
            "sha256": sha256, "warnings": warnings.len(), "security_audit": audit,
        }),
    };
    state.audit.append(entry).await;
}
