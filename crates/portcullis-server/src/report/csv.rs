//! The CSV rendering of a compliance report (RFC 4180 quoting). Layout: one block per
//! section, each made of a marker row `# <section>`, a header row and the data rows, then
//! an empty line. Sections, in order: `summary` (field,value), `daily`, `access`,
//! `denial_reasons`, `denied`, `policy_changes`, `policy_events`, `key_events`,
//! `guardrails`, `anomalies`. Cells a spreadsheet would run as a formula (starting with
//! `=`, `+`, `@`, or `-` not followed by a digit) are prefixed with `'`.

use super::{access_cells, time_text, usd, ComplianceReport, Event};

/// Renders `report` as CSV.
pub fn render(r: &ComplianceReport) -> String {
    let mut out = String::new();
    let chain = if r.audit_chain.intact {
        "intact"
    } else {
        "BROKEN"
    };
    section(
        &mut out,
        "summary",
        &["field", "value"],
        [
            ("from", time_text(r.from)),
            ("to", time_text(r.to)),
            ("generated_at", time_text(r.generated_at)),
            ("store", r.store.to_string()),
            ("requests", r.totals.requests.to_string()),
            ("denied", r.totals.denied.to_string()),
            ("tokens", r.totals.tokens.to_string()),
            ("cost_usd", usd(r.totals.cost_micros)),
            ("audit_chain", chain.to_string()),
            ("audit_chain_detail", r.audit_chain.summary.clone()),
            ("anomaly_alerts", r.anomalies.alerts.len().to_string()),
            ("anomaly_occurrences", r.anomalies.occurrences.to_string()),
            ("denied_list_truncated", r.denied_truncated.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), v]),
    );
    section(
        &mut out,
        "daily",
        &["day", "requests", "denied"],
        r.daily.iter().map(|(day, n, d)| {
            vec![
                time_text(*day)[..10].to_string(),
                n.to_string(),
                d.to_string(),
            ]
        }),
    );
    section(
        &mut out,
        "access",
        &[
            "principal",
            "team",
            "requests",
            "denied",
            "tokens",
            "cost_usd",
        ],
        r.access.iter().map(access_cells),
    );
    section(
        &mut out,
        "denial_reasons",
        &["reason", "count"],
        r.denial_reasons
            .iter()
            .map(|c| vec![c.label.clone(), c.count.to_string()]),
    );
    section(
        &mut out,
        "denied",
        &[
            "at",
            "request_id",
            "principal",
            "team",
            "model",
            "status",
            "error",
            "rule",
            "reason",
            "client_ip",
        ],
        r.denied.iter().map(|d| {
            vec![
                time_text(d.at),
                d.request_id.clone(),
                d.principal.clone(),
                d.team.clone(),
                d.model.clone(),
                d.status.to_string(),
                d.error.clone(),
                d.rule.clone(),
                d.reason.clone(),
                d.client_ip.clone(),
            ]
        }),
    );
    section(
        &mut out,
        "policy_changes",
        &["version", "at", "author", "comment", "previous", "diff"],
        r.policy_changes.iter().map(|p| {
            vec![
                p.version.to_string(),
                time_text(p.at),
                p.author.clone(),
                p.comment.clone(),
                p.previous.map(|v| v.to_string()).unwrap_or_default(),
                p.diff.clone(),
            ]
        }),
    );
    for (name, events) in [
        ("policy_events", &r.policy_events),
        ("key_events", &r.key_events),
    ] {
        section(
            &mut out,
            name,
            &["id", "at", "actor", "action", "target", "outcome", "detail"],
            events.iter().map(event_row),
        );
    }
    section(
        &mut out,
        "guardrails",
        &["rule", "action", "count"],
        r.guardrails
            .iter()
            .map(|g| vec![g.rule.clone(), g.action.clone(), g.count.to_string()]),
    );
    section(
        &mut out,
        "anomalies",
        &[
            "id", "first_at", "last_at", "rule", "severity", "subject", "count", "key_id", "team",
            "message",
        ],
        r.anomalies.alerts.iter().map(|a| {
            vec![
                a.id.to_string(),
                time_text(a.first_at),
                time_text(a.last_at),
                a.rule.clone(),
                a.severity.clone(),
                a.subject.clone(),
                a.count.to_string(),
                a.key_id.clone().unwrap_or_default(),
                a.team.clone().unwrap_or_default(),
                a.message.clone(),
            ]
        }),
    );
    out
}

fn event_row(e: &Event) -> Vec<String> {
    vec![
        e.id.to_string(),
        time_text(e.at),
        e.actor.clone(),
        e.action.clone(),
        e.target.clone(),
        e.outcome.clone(),
        e.detail.clone(),
    ]
}

fn section(out: &mut String, name: &str, header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    out.push_str("# ");
    out.push_str(name);
    out.push_str("\r\n");
    line(out, header.iter().copied());
    for row in rows {
        line(out, row.iter().map(String::as_str));
    }
    out.push_str("\r\n");
}

fn line<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell_text(out, cell);
    }
    out.push_str("\r\n");
}

fn cell_text(out: &mut String, cell: &str) {
    let formula = match cell.as_bytes() {
        [b'=' | b'+' | b'@' | b'\t' | b'\r', ..] => true,
        [b'-', next, ..] => !next.is_ascii_digit(),
        _ => false,
    };
    let cell = if formula {
        format!("'{cell}")
    } else {
        cell.to_string()
    };
    if cell.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&cell);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_are_quoted_and_defused() {
        let mut out = String::new();
        super::line(
            &mut out,
            [
                "a,b",
                "say \"hi\"",
                "=cmd()",
                "-5",
                "- x",
                "-",
                "two\nlines",
            ]
            .into_iter(),
        );
        assert_eq!(
            out,
            "\"a,b\",\"say \"\"hi\"\"\",'=cmd(),-5,'- x,-,\"two\nlines\"\r\n"
        );
    }
}
