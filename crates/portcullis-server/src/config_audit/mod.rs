//! Configuration security audit: pure checks over the configuration, the active policy
//! and the stored keys, each producing [`Finding`]s with a severity and a fix. Used by
//! `portcullis audit config` and `GET /api/v1/audit/config`; no I/O here, so every rule is
//! unit-tested on its own (tests.rs).
//!
//! Exit-code mapping (CLI): the worst finding at or above `--fail-on` (default `low`)
//! decides: none -> 0, low -> 2, medium -> 3, high -> 4, critical -> 5; 1 stays the
//! generic "could not run" failure. Info findings never fail.

mod rules;
#[cfg(test)]
mod tests;

use portcullis_config::{Config, Problem};
use portcullis_policy::document::PolicyDocument;
use portcullis_store::KeyRecord;
use serde::Serialize;

/// A key unused for this long is reported as stale.
pub const STALE_AFTER_SECS: i64 = 90 * 86_400;

/// How bad a finding is, ordered from harmless to urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a gate.
    Info,
    /// Hygiene.
    Low,
    /// A control is missing.
    Medium,
    /// An exposure an attacker can use.
    High,
    /// Secrets or the control plane exposed.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a lowercase name.
    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim().to_ascii_lowercase())
    }

    /// Process exit code of a run whose worst failing finding has this severity
    /// (see the module documentation).
    pub fn exit_code(self) -> u8 {
        match self {
            Severity::Info => 0,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }
}

/// One problem found: which rule, how bad, what, where and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable rule id, e.g. `admin-plane-exposed`.
    pub id: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub what: String,
    /// Where: a configuration path, a policy path or key ids.
    #[serde(rename = "where")]
    pub location: String,
    /// How to fix it.
    pub fix: String,
}

/// Everything the audit looks at.
#[derive(Debug, Clone, Copy)]
pub struct AuditInput<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The loader's warnings for the same file (literal secrets are taken from them).
    pub warnings: &'a [Problem],
    /// The active policy document, if any.
    pub policy: Option<&'a PolicyDocument>,
    /// Every stored key (revoked and expired ones are ignored).
    pub keys: &'a [KeyRecord],
    /// Current time, unix seconds.
    pub now: i64,
}

/// What the audit reads from the store: the active policy document (if any) and every key.
pub async fn read_store(
    store: &portcullis_store::Store,
) -> Result<(Option<PolicyDocument>, Vec<KeyRecord>), String> {
    let state = store.policy_state().await.map_err(|e| e.to_string())?;
    let policy = match state.active_version {
        None => None,
        Some(version) => {
            let stored = store
                .get_policy_version(version)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("policy version {version} is missing from the store"))?;
            let parsed = portcullis_policy::document::parse_policy(&stored.document)
                .map_err(|e| format!("policy version {version}: {e}"))?;
            Some(parsed.document)
        }
    };
    let keys = store.list_keys().await.map_err(|e| e.to_string())?;
    Ok((policy, keys))
}

/// Runs every rule; findings are sorted worst first, then by rule id and location.
pub fn audit(input: &AuditInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in rules::ALL {
        rule(input, &mut out);
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.cmp(b.id))
            .then_with(|| a.location.cmp(&b.location))
    });
    out
}

/// The worst severity among `findings`, if any.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// Exit code for `findings` when only findings at or above `fail_on` count (info never).
pub fn exit_code(findings: &[Finding], fail_on: Severity) -> u8 {
    findings
        .iter()
        .map(|f| f.severity)
        .filter(|s| *s >= fail_on)
        .max()
        .map_or(0, Severity::exit_code)
}

/// Count of findings per severity, worst first, for summaries.
pub fn summary(findings: &[Finding]) -> Vec<(Severity, usize)> {
    Severity::ALL
        .into_iter()
        .rev()
        .map(|s| (s, findings.iter().filter(|f| f.severity == s).count()))
        .collect()
}

/// Plain-text report: one block per finding and a summary line.
pub fn render_text(findings: &[Finding]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(
            out,
            "[{}] {} — {}\n    where: {}\n    fix:   {}",
            f.severity.as_str().to_ascii_uppercase(),
            f.id,
            f.what,
            f.location,
            f.fix
        );
    }
    let counts: Vec<String> = summary(findings)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    if counts.is_empty() {
        out.push_str("no findings\n");
    } else {
        let _ = writeln!(out, "{} finding(s): {}", findings.len(), counts.join(", "));
    }
    out
}
