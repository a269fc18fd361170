//! The HTML rendering of a compliance report: one self-contained document (inline CSS,
//! inline SVG charts, no scripts, no external assets) to hand to an auditor.

use super::{access_cells, time_text, usd, ComplianceReport, Event};
use std::fmt::Write;

const STYLE: &str = "body{font:14px/1.45 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
color:#1d2430;max-width:1100px;margin:2em auto;padding:0 1.5em}\
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:2px solid #d8dee8;\
padding-bottom:.2em}table{border-collapse:collapse;width:100%;margin:.6em 0 1.2em}\
th,td{border:1px solid #d8dee8;padding:.3em .55em;text-align:left;vertical-align:top}\
th{background:#f0f3f8}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.ok{color:#11733b;font-weight:600}.bad{color:#b3261e;font-weight:600}\
.muted{color:#5b6678}pre{background:#f6f8fb;padding:.6em;white-space:pre-wrap;margin:0}\
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #d8dee8;border-radius:6px;\
padding:.6em 1em;min-width:150px}.card b{display:block;font-size:1.5em}\
@media print{h2{page-break-after:avoid}table{page-break-inside:auto}}";

/// Renders `report` as a standalone HTML document.
pub fn render(r: &ComplianceReport) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let period = format!("{} — {} UTC", time_text(r.from), time_text(r.to));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Portcullis compliance report {}</title><style>{STYLE}</style></head><body>\n",
        esc(&period)
    );
    let _ = writeln!(
        h,
        "<h1>Compliance report</h1><p class=\"muted\">Period {} (end exclusive). Generated {} UTC \
         from the {} store by Portcullis {}.</p>",
        esc(&period),
        esc(&time_text(r.generated_at)),
        r.store,
        env!("CARGO_PKG_VERSION")
    );
    summary(&mut h, r);
    access(&mut h, r);
    denials(&mut h, r);
    policies(&mut h, r);
    events(&mut h, "Key lifecycle events", &r.key_events);
    guardrails(&mut h, r);
    anomalies(&mut h, r);
    h.push_str("</body></html>\n");
    h
}

fn summary(h: &mut String, r: &ComplianceReport) {
    let chain = if r.audit_chain.intact {
        "<span class=\"ok\">intact</span>"
    } else {
        "<span class=\"bad\">BROKEN</span>"
    };
    let _ = write!(
        h,
        "<h2 id=\"summary\">Summary</h2><div class=\"cards\">\
         <div class=\"card\">Requests<b>{}</b></div><div class=\"card\">Denied<b>{}</b></div>\
         <div class=\"card\">Tokens<b>{}</b></div><div class=\"card\">Cost (USD)<b>{}</b></div>\
         <div class=\"card\">Audit chain<b>{chain}</b></div></div>\n\
         <h3>Audit-chain verification</h3><p>{}</p>",
        r.totals.requests,
        r.totals.denied,
        r.totals.tokens,
        usd(r.totals.cost_micros),
        esc(&r.audit_chain.summary)
    );
    if let Some(head) = &r.audit_chain.verdict.head {
        let _ = write!(
            h,
            "<p class=\"muted\">Chain head: record {} with hash <code>{}</code>. Keep this value \
             outside the gateway to detect a rewritten chain later.</p>",
            head.id,
            esc(&head.hash)
        );
    }
    if !r.daily.is_empty() {
        h.push_str("<h3>Requests per day</h3>");
        daily_chart(h, &r.daily);
    }
}

fn access(h: &mut String, r: &ComplianceReport) {
    h.push_str("<h2 id=\"access\">Access by principal and team</h2>");
    if r.access.is_empty() {
        h.push_str("<p>No requests in this period.</p>");
        return;
    }
    let mut top: Vec<_> = r.access.iter().collect();
    top.sort_by_key(|a| std::cmp::Reverse(a.requests));
    let bars: Vec<(String, i64)> = top
        .iter()
        .take(10)
        .map(|a| (format!("{} ({})", a.principal, a.team), a.requests))
        .collect();
    bar_chart(h, "Requests by principal (top 10)", &bars, "#3b6fd8");
    table(
        h,
        &[
            "Principal",
            "Team",
            "Requests",
            "Denied",
            "Tokens",
            "Cost (USD)",
        ],
        &[false, false, true, true, true, true],
        r.access.iter().map(access_cells),
    );
}

fn denials(h: &mut String, r: &ComplianceReport) {
    h.push_str("<h2 id=\"denied\">Denied requests</h2>");
    if r.denied.is_empty() {
        h.push_str("<p>No request was denied in this period.</p>");
        return;
    }
    let bars: Vec<(String, i64)> = r
        .denial_reasons
        .iter()
        .take(10)
        .map(|c| (c.label.clone(), c.count as i64))
        .collect();
    bar_chart(h, "Denials by reason", &bars, "#c4453c");
    table(
        h,
        &["Reason", "Count"],
        &[false, true],
        r.denial_reasons
            .iter()
            .map(|c| vec![c.label.clone(), c.count.to_string()]),
    );
    if r.denied_truncated {
        let _ = write!(
            h,
            "<p class=\"muted\">Only the first {} denied requests are listed.</p>",
            r.denied.len()
        );
    }
    table(
        h,
        &[
            "Time (UTC)",
            "Request",
            "Principal",
            "Team",
            "Model",
            "Status",
            "Why",
            "Client",
        ],
        &[false, false, false, false, false, true, false, false],
        r.denied.iter().map(|d| {
            vec![
                time_text(d.at),
                d.request_id.clone(),
                d.principal.clone(),
                d.team.clone(),
                d.model.clone(),
                d.status.to_string(),
                if d.reason.is_empty() {
                    d.error.clone()
                } else {
                    d.reason.clone()
                },
                d.client_ip.clone(),
            ]
        }),
    );
}

fn policies(h: &mut String, r: &ComplianceReport) {
    h.push_str("<h2 id=\"policy\">Policy changes</h2>");
    if r.policy_changes.is_empty() {
        h.push_str("<p>No policy version was created in this period.</p>");
    } else {
        table(
            h,
            &["Version", "Time (UTC)", "Author", "Comment", "Changes"],
            &[true, false, false, false, false],
            r.policy_changes.iter().map(|p| {
                let against = match p.previous {
                    Some(v) => format!("against version {v}:\n"),
                    None => "first version:\n".into(),
                };
                vec![
                    p.version.to_string(),
                    time_text(p.at),
                    p.author.clone(),
                    p.comment.clone(),
                    format!("{against}{}", p.diff),
                ]
            }),
        );
    }
    events(h, "Policy lifecycle actions", &r.policy_events);
}

fn events(h: &mut String, title: &str, list: &[Event]) {
    let _ = write!(h, "<h3>{}</h3>", esc(title));
    if list.is_empty() {
        h.push_str("<p>None in this period.</p>");
        return;
    }
    table(
        h,
        &[
            "Audit id",
            "Time (UTC)",
            "Actor",
            "Action",
            "Target",
            "Outcome",
            "Detail",
        ],
        &[true, false, false, false, false, false, false],
        list.iter().map(|e| {
            vec![
                e.id.to_string(),
                time_text(e.at),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.outcome.clone(),
                e.detail.clone(),
            ]
        }),
    );
}

fn guardrails(h: &mut String, r: &ComplianceReport) {
    h.push_str("<h2 id=\"guardrails\">Guardrail actions</h2>");
    if r.guardrails.is_empty() {
        h.push_str("<p>No guardrail rule matched in this period.</p>");
        return;
    }
    let bars: Vec<(String, i64)> = r
        .guardrails
        .iter()
        .take(10)
        .map(|g| (format!("{} ({})", g.rule, g.action), g.count as i64))
        .collect();
    bar_chart(h, "Guardrail actions by rule", &bars, "#8a5cc9");
    table(
        h,
        &["Rule", "Action", "Count"],
        &[false, false, true],
        r.guardrails
            .iter()
            .map(|g| vec![g.rule.clone(), g.action.clone(), g.count.to_string()]),
    );
}

fn anomalies(h: &mut String, r: &ComplianceReport) {
    h.push_str("<h2 id=\"anomalies\">Anomalies</h2>");
    let a = &r.anomalies;
    if a.alerts.is_empty() {
        h.push_str("<p>No anomaly alert was raised in this period.</p>");
        return;
    }
    let _ = write!(
        h,
        "<p>{} alert(s), {} occurrence(s) in all (repeats within the deduplication window \
         are folded into one alert).</p>",
        a.alerts.len(),
        a.occurrences
    );
    let bars: Vec<(String, i64)> = a
        .by_rule
        .iter()
        .map(|c| (c.label.clone(), c.count as i64))
        .collect();
    bar_chart(h, "Alerts by rule", &bars, "#d98a1c");
    table(
        h,
        &[
            "First seen (UTC)",
            "Last seen (UTC)",
            "Rule",
            "Severity",
            "Subject",
            "Count",
            "Message",
        ],
        &[false, false, false, false, false, true, false],
        a.alerts.iter().map(|x| {
            vec![
                time_text(x.first_at),
                time_text(x.last_at),
                x.rule.clone(),
                x.severity.clone(),
                x.subject.clone(),
                x.count.to_string(),
                x.message.clone(),
            ]
        }),
    );
}

fn table(
    h: &mut String,
    header: &[&str],
    numeric: &[bool],
    rows: impl Iterator<Item = Vec<String>>,
) {
    h.push_str("<table><thead><tr>");
    for c in header {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead><tbody>\n");
    for row in rows {
        h.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if numeric.get(i).copied().unwrap_or(false) {
                " class=\"n\""
            } else {
                ""
            };
            if cell.contains('\n') {
                let _ = write!(h, "<td{class}><pre>{}</pre></td>", esc(cell));
            } else {
                let _ = write!(h, "<td{class}>{}</td>", esc(cell));
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
}

/// A horizontal bar chart as inline SVG.
fn bar_chart(h: &mut String, title: &str, bars: &[(String, i64)], color: &str) {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (300.0, 520.0, 22.0);
    let height = 28.0 + row_h * bars.len() as f64;
    let _ = write!(
        h,
        "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"900\" \
         height=\"{height}\" viewBox=\"0 0 900 {height}\"><title>{t}</title>\
         <text x=\"0\" y=\"16\" font-size=\"14\" font-weight=\"600\">{t}</text>",
        t = esc(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 26.0 + row_h * i as f64;
        let w = (bar_w * *value as f64 / max as f64).max(1.0);
        let short: String = label.chars().take(42).collect();
        let _ = write!(
            h,
            "<text x=\"{lx}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\">{l}</text>\
             <rect x=\"{bx}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\" fill=\"{color}\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\" font-size=\"12\">{value}</text>",
            lx = label_w - 6.0,
            ty = y + 14.0,
            l = esc(&short),
            bx = label_w,
            bh = row_h - 6.0,
            vx = label_w + w + 4.0,
        );
    }
    h.push_str("</svg></figure>\n");
}

/// Requests per day as vertical bars, the denied part stacked in red.
fn daily_chart(h: &mut String, days: &[(i64, i64, i64)]) {
    let max = days.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let (width, plot_h, top) = (900.0, 160.0, 10.0);
    let slot = (width - 60.0) / days.len() as f64;
    let bar = (slot * 0.7).clamp(2.0, 40.0);
    let _ = write!(
        h,
        "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{width}\" \
         height=\"{hh}\" viewBox=\"0 0 {width} {hh}\"><title>Requests per day (denied in red)\
         </title><text x=\"0\" y=\"{ty}\" font-size=\"11\">{max}</text>\
         <line x1=\"50\" y1=\"{base}\" x2=\"{width}\" y2=\"{base}\" stroke=\"#888\"/>",
        hh = plot_h + 40.0,
        ty = top + 10.0,
        base = top + plot_h,
    );
    for (i, (day, n, denied)) in days.iter().enumerate() {
        let x = 55.0 + slot * i as f64;
        let total_h = plot_h * *n as f64 / max as f64;
        let denied_h = plot_h * *denied as f64 / max as f64;
        let _ = write!(
            h,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{total_h:.1}\" \
             fill=\"#3b6fd8\"><title>{d}: {n} requests, {denied} denied</title></rect>\
             <rect x=\"{x:.1}\" y=\"{dy:.1}\" width=\"{bar:.1}\" height=\"{denied_h:.1}\" \
             fill=\"#c4453c\"/>",
            y = top + plot_h - total_h,
            dy = top + plot_h - denied_h,
            d = &time_text(*day)[..10],
        );
        if days.len() <= 31 {
            let _ = write!(
                h,
                "<text x=\"{x:.1}\" y=\"{ly}\" font-size=\"10\">{}</text>",
                &time_text(*day)[5..10],
                ly = top + plot_h + 14.0
            );
        }
    }
    h.push_str("</svg></figure>\n");
}

/// Escapes text for HTML content and attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_escaped() {
        assert_eq!(
            super::esc("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }
}
