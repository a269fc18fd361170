//! Shadow mode: the difference between the active and the shadow decision of a request.

use super::Decision;

/// How a shadow decision differs from the active one (a small enum: a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShadowDiffKind {
    /// Active allows, shadow would deny.
    NewlyDenied,
    /// Active denies, shadow would allow.
    NewlyAllowed,
    /// Same verdict, decided by another rule.
    OtherRule,
    /// Both allow, with other rate limits or budgets.
    OtherLimits,
}

impl ShadowDiffKind {
    /// Metric/log label: `newly_denied`, `newly_allowed`, `other_rule`, `other_limits`.
    pub fn label(self) -> &'static str {
        match self {
            ShadowDiffKind::NewlyDenied => "newly_denied",
            ShadowDiffKind::NewlyAllowed => "newly_allowed",
            ShadowDiffKind::OtherRule => "other_rule",
            ShadowDiffKind::OtherLimits => "other_limits",
        }
    }
}

/// What differs between the active and the shadow decision of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowDiff {
    /// The kind of difference (the most important one when several apply).
    pub kind: ShadowDiffKind,
    /// Rule that decided under the active policy.
    pub active_rule: String,
    /// Rule that decided under the shadow policy.
    pub shadow_rule: String,
    /// Active verdict.
    pub active_allowed: bool,
    /// Shadow verdict.
    pub shadow_allowed: bool,
    /// Limits (`id (amount)`, e.g. `team-rpm (60 requests/1m)`) only the shadow applies.
    pub limits_added: Vec<String>,
    /// Limits only the active policy applies, same format.
    pub limits_removed: Vec<String>,
    /// One line for the log, e.g. `allowed -> denied (teams.a.models -> ip.deny[0]): ...`.
    pub summary: String,
}

fn verdict(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "denied"
    }
}

/// Compares two decisions of the same request; `None` when they agree (verdict, rule
/// and applicable limits — counter numbers included).
pub fn compare(active: &Decision, shadow: &Decision) -> Option<ShadowDiff> {
    let describe = |d: &Decision| -> Vec<String> {
        d.limits
            .iter()
            .map(|l| format!("{} ({})", l.id, l.kind))
            .collect()
    };
    let (a, s) = (describe(active), describe(shadow));
    let added: Vec<String> = s.iter().filter(|x| !a.contains(x)).cloned().collect();
    let removed: Vec<String> = a.iter().filter(|x| !s.contains(x)).cloned().collect();
    let kind = match (active.allowed, shadow.allowed) {
        (true, false) => ShadowDiffKind::NewlyDenied,
        (false, true) => ShadowDiffKind::NewlyAllowed,
        _ if active.rule != shadow.rule => ShadowDiffKind::OtherRule,
        _ if !added.is_empty() || !removed.is_empty() => ShadowDiffKind::OtherLimits,
        _ => return None,
    };
    let mut summary = format!(
        "{} -> {} ({} -> {}): {}",
        verdict(active.allowed),
        verdict(shadow.allowed),
        active.rule,
        shadow.rule,
        shadow.reason
    );
    if !added.is_empty() || !removed.is_empty() {
        summary.push_str(&format!(
            "; limits +[{}] -[{}]",
            added.join(", "),
            removed.join(", ")
        ));
    }
    Some(ShadowDiff {
        kind,
        active_rule: active.rule.clone(),
        shadow_rule: shadow.rule.clone(),
        active_allowed: active.allowed,
        shadow_allowed: shadow.allowed,
        limits_added: added,
        limits_removed: removed,
        summary,
    })
}
