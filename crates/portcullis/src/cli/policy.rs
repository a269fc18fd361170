//! `portcullis policy validate|diff|apply|history|show|rollback|shadow-report|promote|discard`:
//! the policy lifecycle directly on the store (a trusted operator, like `keys`), through
//! the same [`portcullis_server::policy_ops`] as the admin API, with the same audit records
//! (actor `cli:<user>`). Running gateways switch within a second.

use crate::cli::keys::open_store;
use anyhow::{Context, Result};
use portcullis_server::policy_ops::{self, OpsError};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

/// The operator's name: `$USER`, else `cli`.
pub fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "cli".into())
}

/// The audit actor of CLI changes.
pub fn actor() -> String {
    format!("cli:{}", user())
}

fn read(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

fn time_text(at: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(at.max(0) as u64))
        .to_string()
}

/// Prints problems of an invalid document; exit code 1.
fn print_invalid(file: &Path, problems: &[portcullis_policy::document::Problem]) -> ExitCode {
    for p in problems {
        println!("error: {p}");
    }
    println!(
        "{}: invalid ({} problem(s))",
        file.display(),
        problems.len()
    );
    ExitCode::FAILURE
}

/// Ends a failed lifecycle step with a clear message.
fn ops_failed(file: Option<&Path>, e: OpsError) -> Result<ExitCode> {
    match e {
        OpsError::Invalid(problems) => Ok(print_invalid(
            file.unwrap_or(Path::new("document")),
            &problems,
        )),
        OpsError::NotFound(m) | OpsError::Conflict(m) => {
            eprintln!("error: {m}");
            Ok(ExitCode::FAILURE)
        }
        OpsError::Store(e) => Err(e.into()),
    }
}

/// `policy validate FILE`: every problem with its path, warnings; exit 1 when invalid.
pub fn validate(file: &Path) -> Result<ExitCode> {
    let v = policy_ops::validate(&read(file)?);
    for w in &v.warnings {
        println!("warning: {w}");
    }
    if !v.valid {
        return Ok(print_invalid(file, &v.problems));
    }
    println!(
        "{}: valid ({} warning(s)), hash {}",
        file.display(),
        v.warnings.len(),
        v.hash.unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// `policy diff FILE`: human-readable changes against the active version.
pub async fn diff(config: Option<&Path>, file: &Path) -> Result<ExitCode> {
    let text = read(file)?;
    let store = open_store(config).await?;
    let outcome = policy_ops::diff_against_active(&store, &text).await;
    store.close().await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return ops_failed(Some(file), e),
    };
    let against = outcome.against.map_or("no active policy".to_string(), |v| {
        format!("active version {v}")
    });
    if outcome.changes.is_empty() {
        println!("no changes against {against}");
    } else {
        println!("changes against {against}:");
        print!("{}", outcome.text);
        if !outcome.text.ends_with('\n') {
            println!();
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `policy apply FILE [--comment] [--shadow] [--author]`.
pub async fn apply(
    config: Option<&Path>,
    file: &Path,
    comment: Option<&str>,
    shadow: bool,
    author: Option<&str>,
) -> Result<ExitCode> {
    let text = read(file)?;
    let author = author.map_or_else(user, String::from);
    let store = open_store(config).await?;
    let result = policy_ops::apply(
        &store,
        &text,
        &author,
        comment.unwrap_or(""),
        shadow,
        &actor(),
    )
    .await;
    store.close().await;
    let applied = match result {
        Ok(a) => a,
        Err(e) => return ops_failed(Some(file), e),
    };
    for w in &applied.warnings {
        println!("warning: {w}");
    }
    if applied.shadow {
        println!(
            "version {} stored and running in shadow mode (not enforced); see `portcullis policy shadow-report`",
            applied.version
        );
    } else {
        println!("version {} applied and active", applied.version);
    }
    Ok(ExitCode::SUCCESS)
}

/// `policy history`: every version, marking the active and shadow ones.
pub async fn history(config: Option<&Path>, json: bool) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let versions = store.list_policy_versions().await?;
    let state = store.policy_state().await?;
    store.close().await;
    if json {
        let out = serde_json::json!({"data": versions, "state": state});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<8} {:<7} {:<21} {:<16} {:<14} COMMENT",
        "VERSION", "STATE", "CREATED", "AUTHOR", "HASH"
    );
    for v in &versions {
        let mark = if state.active_version == Some(v.version) {
            "active"
        } else if state.shadow_version == Some(v.version) {
            "shadow"
        } else {
            ""
        };
        println!(
            "{:<8} {:<7} {:<21} {:<16} {:<14} {}",
            v.version,
            mark,
            time_text(v.created_at),
            v.author,
            &v.hash[..v.hash.len().min(12)],
            v.comment
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `policy show VERSION`: the document exactly as applied.
pub async fn show(config: Option<&Path>, version: i64) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let stored = store.get_policy_version(version).await?;
    store.close().await;
    match stored {
        Some(v) => {
            print!("{}", v.document);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("error: no policy version {version}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `policy rollback VERSION`.
pub async fn rollback(config: Option<&Path>, version: i64) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let result = policy_ops::rollback(&store, version, &actor()).await;
    store.close().await;
    match result {
        Ok(from) => {
            let from = from.map_or("none".to_string(), |v| v.to_string());
            println!("version {version} active again (was {from})");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => ops_failed(None, e),
    }
}

/// `policy shadow-report [--version N] [--json]`.
pub async fn shadow_report(
    config: Option<&Path>,
    version: Option<i64>,
    json: bool,
) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let result = policy_ops::shadow_report(&store, version).await;
    store.close().await;
    let status = match result {
        Ok(s) => s,
        Err(e) => return ops_failed(None, e),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    let r = &status.report;
    let active = status
        .state
        .active_version
        .map_or("none".to_string(), |v| v.to_string());
    println!(
        "shadow version {} against active {active}: {} request(s) decided differently",
        status.version, r.total
    );
    if let Some(at) = status.state.shadow_started_at {
        println!("shadow mode since {}", time_text(at));
    }
    for (title, rows) in [
        ("by kind", &r.by_kind),
        ("by rule (active -> shadow)", &r.by_rule),
        ("by principal", &r.by_principal),
    ] {
        if !rows.is_empty() {
            println!("{title}:");
            for (k, n) in rows {
                println!("  {n:>8}  {k}");
            }
        }
    }
    if !r.samples.is_empty() {
        println!("latest:");
        for s in &r.samples {
            println!("  {}  {}  {}", time_text(s.at), s.principal, s.summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `policy promote`: enforce the shadow version.
pub async fn promote(config: Option<&Path>) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let result = policy_ops::promote(&store, &actor()).await;
    store.close().await;
    match result {
        Ok(v) => {
            println!("shadow version {v} promoted: now active");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => ops_failed(None, e),
    }
}

/// `policy discard`: end shadow mode.
pub async fn discard(config: Option<&Path>) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let result = policy_ops::discard(&store, &actor()).await;
    store.close().await;
    match result {
        Ok(v) => {
            println!("shadow version {v} discarded");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => ops_failed(None, e),
    }
}
