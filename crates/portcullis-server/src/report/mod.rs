//! The compliance report over a period `[from, to)`: access by principal and team, denied
//! requests and why, policy changes with their diffs, key lifecycle events, guardrail
//! actions, anomaly alerts (first raised in the period) and the audit-chain verification — gathered from the store
//! (shared by the CLI, the admin API and the schedule) and rendered as JSON, CSV or a
//! self-contained HTML document.

mod csv;
mod html;

use portcullis_config::ReportFormat;
use portcullis_policy::diff::{diff, Change};
use portcullis_policy::document::parse_policy;
use portcullis_store::{
    AccessSummary, AlertQuery, AlertRecord, AuditQuery, AuditRecord, ChainVerdict,
    RequestLogRecord, Store, StoreError,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// Refused requests listed one by one at most (all are counted).
pub const MAX_LISTED: u32 = 1000;
/// Request logs read for guardrail and denial counts at most.
const MAX_SCANNED: u32 = 100_000;
/// Audit records and alerts read per page.
const AUDIT_PAGE: u32 = 500;

/// A compliance report.
#[derive(Debug, Clone, Serialize)]
pub struct ComplianceReport {
    /// When it was generated, unix seconds.
    pub generated_at: i64,
    /// Start of the period, inclusive, unix seconds.
    pub from: i64,
    /// End of the period, exclusive, unix seconds.
    pub to: i64,
    /// Store backend the data came from.
    pub store: &'static str,
    /// Totals over the period.
    pub totals: Totals,
    /// Requests per UTC day: `(day start, requests, denied)`.
    pub daily: Vec<(i64, i64, i64)>,
    /// Access by principal and team.
    pub access: Vec<AccessSummary>,
    /// Refusals counted by reason class (`error code: policy rule`).
    pub denial_reasons: Vec<Count>,
    /// Refused requests, oldest first (at most [`MAX_LISTED`]).
    pub denied: Vec<DeniedRequest>,
    /// More refused requests exist than are listed.
    pub denied_truncated: bool,
    /// Policy versions created in the period, each with its diff against the previous one.
    pub policy_changes: Vec<PolicyChange>,
    /// Policy lifecycle actions from the audit log (apply, shadow, promote, rollback...).
    pub policy_events: Vec<Event>,
    /// Key lifecycle events from the audit log (create, revoke, rotate, expire).
    pub key_events: Vec<Event>,
    /// Guardrail actions counted by rule and action.
    pub guardrails: Vec<GuardrailCount>,
    /// Anomaly alerts of the period.
    pub anomalies: Anomalies,
    /// The audit-chain verification.
    pub audit_chain: ChainCheck,
}

/// Totals over the period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Requests.
    pub requests: i64,
    /// Refused requests.
    pub denied: i64,
    /// Prompt + completion tokens.
    pub tokens: i64,
    /// Cost, micro-USD.
    pub cost_micros: i64,
}

/// A label and how often it occurred.
#[derive(Debug, Clone, Serialize)]
pub struct Count {
    /// What.
    pub label: String,
    /// How often.
    pub count: u64,
}

/// One refused request.
#[derive(Debug, Clone, Serialize)]
pub struct DeniedRequest {
    /// When, unix seconds.
    pub at: i64,
    /// Request id.
    pub request_id: String,
    /// Principal (`-` when unauthenticated).
    pub principal: String,
    /// Team.
    pub team: String,
    /// Model or route.
    pub model: String,
    /// HTTP status.
    pub status: u16,
    /// Error code.
    pub error: String,
    /// The deciding policy rule.
    pub rule: String,
    /// Why, as told to the client.
    pub reason: String,
    /// Client address.
    pub client_ip: String,
}

/// A policy version created in the period.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyChange {
    /// Version number.
    pub version: i64,
    /// When it was stored.
    pub at: i64,
    /// Who stored it.
    pub author: String,
    /// Why.
    pub comment: String,
    /// The version it is compared with (`None`: the first version, compared with empty).
    pub previous: Option<i64>,
    /// Every change, by path.
    pub changes: Vec<Change>,
    /// The diff as text, one line per change.
    pub diff: String,
}

/// An audit-log event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Audit record id.
    pub id: i64,
    /// When.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// Details (JSON text).
    pub detail: String,
}

/// Guardrail actions of one rule.
#[derive(Debug, Clone, Serialize)]
pub struct GuardrailCount {
    /// Rule id.
    pub rule: String,
    /// `block`, `redact` or `log`.
    pub action: String,
    /// How many times.
    pub count: u64,
}

/// Anomaly alerts first raised in the period.
#[derive(Debug, Clone, Serialize)]
pub struct Anomalies {
    /// Alerts per rule (repeats folded into an alert counted in `occurrences`).
    pub by_rule: Vec<Count>,
    /// Occurrences of all alerts (an alert's `count` summed).
    pub occurrences: i64,
    /// The alerts, oldest first (at most [`MAX_LISTED`]).
    pub alerts: Vec<AlertRecord>,
}

/// The audit-chain verification.
#[derive(Debug, Clone, Serialize)]
pub struct ChainCheck {
    /// Whether the chain verified.
    pub intact: bool,
    /// The verdict in one sentence.
    pub summary: String,
    /// Full verdict.
    pub verdict: ChainVerdict,
}

/// A report that could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `from` is not before `to`.
    #[error("the period is empty: from ({from}) must be before to ({to})")]
    EmptyPeriod {
        /// Start.
        from: i64,
        /// End.
        to: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Gathers the report of `[from, to)` from the store.
pub async fn compliance(
    store: &Store,
    from: i64,
    to: i64,
    now: i64,
) -> Result<ComplianceReport, ReportError> {
    if from >= to {
        return Err(ReportError::EmptyPeriod { from, to });
    }
    let access = store.access_summary(from, to).await?;
    let totals = access.iter().fold(Totals::default(), |mut t, a| {
        t.requests += a.requests;
        t.denied += a.denied;
        t.tokens += a.tokens;
        t.cost_micros += a.cost_micros;
        t
    });
    let daily = store.daily_request_counts(from, to).await?;
    let (notable, _) = store.notable_request_logs(from, to, MAX_SCANNED).await?;
    let (denial_reasons, denied, denied_truncated, guardrails) = summarise(&notable);
    let policy_changes = policy_changes(store, from, to).await?;
    let audit = audit_events(store, from, to).await?;
    let event = |r: &AuditRecord| Event {
        id: r.id,
        at: r.at,
        actor: r.actor.clone(),
        action: r.action.clone(),
        target: r.target.clone(),
        outcome: r.outcome.clone(),
        detail: r.detail.to_string(),
    };
    let policy_events = audit
        .iter()
        .filter(|r| r.action.starts_with("policy.") && is_policy_change(&r.action))
        .map(event)
        .collect();
    let key_events = audit
        .iter()
        .filter(|r| r.action.starts_with("key.") || r.action.starts_with("keys."))
        .map(event)
        .collect();
    let anomalies = anomalies(store, from, to).await?;
    let verdict = store.verify_audit_chain().await?;
    let audit_chain = ChainCheck {
        intact: verdict.is_intact(),
        summary: verdict.to_string(),
        verdict,
    };
    Ok(ComplianceReport {
        generated_at: now,
        from,
        to,
        store: store.backend(),
        totals,
        daily,
        access,
        denial_reasons,
        denied,
        denied_truncated,
        policy_changes,
        policy_events,
        key_events,
        guardrails,
        anomalies,
        audit_chain,
    })
}

/// Renders a report in `format`.
pub fn render(report: &ComplianceReport, format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(report).unwrap_or_default(),
        ReportFormat::Csv => csv::render(report),
        ReportFormat::Html => html::render(report),
    }
}

/// The media type of a rendered report.
pub fn content_type(format: ReportFormat) -> &'static str {
    match format {
        ReportFormat::Json => "application/json",
        ReportFormat::Csv => "text/csv; charset=utf-8",
        ReportFormat::Html => "text/html; charset=utf-8",
    }
}

/// Audit actions that change policy state (reads such as `policy.show` are left out).
fn is_policy_change(action: &str) -> bool {
    matches!(
        action,
        "policy.apply" | "policy.shadow" | "policy.promote" | "policy.discard" | "policy.rollback"
    )
}

type Summary = (Vec<Count>, Vec<DeniedRequest>, bool, Vec<GuardrailCount>);

fn summarise(notable: &[RequestLogRecord]) -> Summary {
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut guardrails: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut denied = Vec::new();
    let mut truncated = false;
    for r in notable {
        let log = &r.log;
        for g in &log.guardrails {
            *guardrails
                .entry((g.rule.clone(), g.action.clone()))
                .or_default() += 1;
        }
        if !log.denied {
            continue;
        }
        let error = log.error.clone().unwrap_or_default();
        let rule = log.policy_rule.clone().unwrap_or_default();
        let label = if rule.is_empty() {
            error.clone()
        } else {
            format!("{error}: {rule}")
        };
        *reasons.entry(label).or_default() += 1;
        if denied.len() < MAX_LISTED as usize {
            denied.push(DeniedRequest {
                at: log.at,
                request_id: log.request_id.clone(),
                principal: log.principal.clone().unwrap_or_else(|| "-".into()),
                team: log.team.clone().unwrap_or_else(|| "-".into()),
                model: log.model.clone().unwrap_or_else(|| log.path.clone()),
                status: log.status,
                error,
                rule,
                reason: log.reason.clone().unwrap_or_default(),
                client_ip: log.client_ip.clone().unwrap_or_default(),
            });
        } else {
            truncated = true;
        }
    }
    let mut reasons: Vec<Count> = reasons
        .into_iter()
        .map(|(label, count)| Count { label, count })
        .collect();
    reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    let mut guardrails: Vec<GuardrailCount> = guardrails
        .into_iter()
        .map(|((rule, action), count)| GuardrailCount {
            rule,
            action,
            count,
        })
        .collect();
    guardrails.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.rule.cmp(&b.rule)));
    (reasons, denied, truncated, guardrails)
}

async fn policy_changes(
    store: &Store,
    from: i64,
    to: i64,
) -> Result<Vec<PolicyChange>, ReportError> {
    let mut out = Vec::new();
    let versions = store.list_policy_versions().await?;
    for v in versions
        .iter()
        .filter(|v| v.created_at >= from && v.created_at < to)
    {
        let Some(current) = store.get_policy_version(v.version).await? else {
            continue;
        };
        let previous = match v.version > 1 {
            true => store.get_policy_version(v.version - 1).await?,
            false => None,
        };
        let parse = |text: &str| parse_policy(text).ok().map(|p| p.document);
        let old = previous
            .as_ref()
            .and_then(|p| parse(&p.document))
            .unwrap_or_else(crate::policy_ops::empty_document);
        let (changes, text) = match parse(&current.document) {
            Some(new) => {
                let d = diff(&old, &new);
                let text = d.to_string();
                (d.changes, text)
            }
            None => (Vec::new(), "(stored document does not parse)".into()),
        };
        out.push(PolicyChange {
            version: v.version,
            at: v.created_at,
            author: v.author.clone(),
            comment: v.comment.clone(),
            previous: previous.map(|p| p.version),
            changes,
            diff: text,
        });
    }
    out.sort_by_key(|c| c.version);
    Ok(out)
}

/// Alerts first raised in `[from, to)`, oldest first, with counts per rule.
async fn anomalies(store: &Store, from: i64, to: i64) -> Result<Anomalies, ReportError> {
    let mut alerts: Vec<AlertRecord> = Vec::new();
    let mut before_id = None;
    loop {
        let page = store
            .list_alerts(&AlertQuery {
                since: Some(from),
                until: Some(to),
                limit: AUDIT_PAGE,
                before_id,
                ..AlertQuery::default()
            })
            .await?;
        let short = page.len() < AUDIT_PAGE as usize;
        before_id = page.last().map(|a| a.id);
        alerts.extend(page);
        if short {
            break;
        }
    }
    alerts.reverse();
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    for a in &alerts {
        *by_rule.entry(a.rule.clone()).or_default() += 1;
    }
    let mut by_rule: Vec<Count> = by_rule
        .into_iter()
        .map(|(label, count)| Count { label, count })
        .collect();
    by_rule.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    let occurrences = alerts.iter().map(|a| a.count).sum();
    alerts.truncate(MAX_LISTED as usize);
    Ok(Anomalies {
        by_rule,
        occurrences,
        alerts,
    })
}

/// Every audit record of `[from, to)`, oldest first.
async fn audit_events(store: &Store, from: i64, to: i64) -> Result<Vec<AuditRecord>, ReportError> {
    let mut out = Vec::new();
    let mut before_id = None;
    loop {
        let page = store
            .list_audit(&AuditQuery {
                since: Some(from),
                until: Some(to),
                limit: AUDIT_PAGE,
                before_id,
                ..AuditQuery::default()
            })
            .await?;
        let short = page.len() < AUDIT_PAGE as usize;
        before_id = page.last().map(|r| r.id);
        out.extend(page);
        if short {
            break;
        }
    }
    out.reverse();
    Ok(out)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of unix seconds.
pub fn time_text(at: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at.max(0) as u64);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// The cells of one access row, the same in the CSV and the HTML table: principal, team,
/// requests, denied, tokens, cost in USD.
pub fn access_cells(a: &AccessSummary) -> Vec<String> {
    vec![
        a.principal.clone(),
        a.team.clone(),
        a.requests.to_string(),
        a.denied.to_string(),
        a.tokens.to_string(),
        usd(a.cost_micros),
    ]
}

/// Micro-USD as dollars, e.g. `12.3456`.
pub fn usd(micros: i64) -> String {
    format!("{:.4}", micros as f64 / 1_000_000.0)
}

/// The file name of a scheduled report: `compliance-<from>-<to>.<ext>` (UTC times).
pub fn file_name(from: i64, to: i64, format: ReportFormat) -> String {
    let stamp = |at: i64| time_text(at).replace(['-', ':'], "").replace(' ', "T") + "Z";
    format!(
        "compliance-{}-{}.{}",
        stamp(from),
        stamp(to),
        format.as_str()
    )
}

/// Writes `text` to `dir/name` through a temporary file and a rename, so a reader never
/// sees half a report.
pub fn write_file(
    dir: &std::path::Path,
    name: &str,
    text: &str,
) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Writes a compliance report at every multiple of `schedule.every` (UTC, e.g. each
/// midnight for `24h`) covering the period that just ended, until aborted.
pub fn spawn_schedule(
    store: Store,
    schedule: portcullis_config::ComplianceSchedule,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = schedule.every.0.as_secs().max(60) as i64;
        loop {
            let now = crate::auth::unix_now();
            let boundary = (now / every + 1) * every;
            tokio::time::sleep(std::time::Duration::from_secs((boundary - now) as u64)).await;
            let (from, to) = (boundary - every, boundary);
            let outcome = match compliance(&store, from, to, crate::auth::unix_now()).await {
                Ok(report) => {
                    let text = render(&report, schedule.format);
                    let name = file_name(from, to, schedule.format);
                    write_file(&schedule.dir, &name, &text).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(path) => tracing::info!(path = %path.display(), "compliance report written"),
                Err(e) => {
                    tracing::error!(error = %e, "ALERT: scheduled compliance report not written")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_files_are_named_by_period_and_written_whole() {
        let name = file_name(1_793_491_200, 1_793_577_600, ReportFormat::Html);
        assert_eq!(name, "compliance-20261101T000000Z-20261102T000000Z.html");
        let dir = std::env::temp_dir().join(format!("portcullis-report-{}", std::process::id()));
        let path = write_file(&dir, &name, "<html></html>").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<html></html>");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
