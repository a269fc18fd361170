//! Cross-checks over a parsed document: references, duplicates, globs, CIDRs, zero
//! limits (errors) and risky-but-legal settings (warnings).

use super::{parse_net, problem, BudgetMode, IpRules, PolicyDocument, Problem};
use crate::rbac::builtin_role;
use std::collections::HashSet;

/// Document index of each parsed list item (items that failed to parse are absent).
#[derive(Debug, Default)]
pub(crate) struct Positions {
    pub rate_limits: Vec<usize>,
    pub budgets: Vec<usize>,
}

fn bad_glob(pattern: &str) -> Option<String> {
    if pattern.trim().is_empty() {
        return Some("empty pattern".into());
    }
    globset::Glob::new(pattern)
        .err()
        .map(|e| format!("'{pattern}' is not a valid glob: {}", e.kind()))
}

fn check_globs(path: &str, globs: &[String], problems: &mut Vec<Problem>) {
    for (i, g) in globs.iter().enumerate() {
        if let Some(why) = bad_glob(g) {
            problems.push(problem(format!("{path}[{i}]"), why));
        }
    }
}

fn check_ip(path: &str, rules: &IpRules, problems: &mut Vec<Problem>) {
    for (list, nets) in [("allow", &rules.allow), ("deny", &rules.deny)] {
        for (i, net) in nets.iter().enumerate() {
            if let Err(why) = parse_net(net) {
                problems.push(problem(format!("{path}.{list}[{i}]"), why));
            }
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Adds every error and warning about `doc`.
pub(crate) fn check(
    doc: &PolicyDocument,
    positions: &Positions,
    version_present: bool,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let mut err = |path: String, msg: String| problems.push(problem(path, msg));
    if version_present && doc.version != 1 {
        err(
            "version".into(),
            format!("unsupported version {}; only 1 exists", doc.version),
        );
    }
    if let Some(team) = &doc.default_team {
        if !doc.teams.contains_key(team) {
            err(
                "default_team".into(),
                format!("no team named '{team}' is defined"),
            );
        }
    }
    let role_exists = |name: &str| builtin_role(name).is_some() || doc.roles.contains_key(name);

    for (name, role) in &doc.roles {
        let path = format!("roles.{name}");
        if builtin_role(name).is_some() {
            err(
                path.clone(),
                "is a built-in role and cannot be redefined".into(),
            );
        } else if !valid_name(name) {
            err(
                path.clone(),
                "names use letters, digits, '-', '_', '.'".into(),
            );
        }
        if role.permissions.is_empty() {
            err(
                format!("{path}.permissions"),
                "must grant at least one permission".into(),
            );
        }
        for (i, grant) in role.permissions.iter().enumerate() {
            let gpath = format!("{path}.permissions[{i}].resources");
            if grant.resources.is_empty() {
                err(
                    gpath.clone(),
                    "must name at least one resource (`*` = all)".into(),
                );
            }
            let mut sub = Vec::new();
            check_globs(&gpath, &grant.resources, &mut sub);
            for p in sub {
                err(p.path, p.message);
            }
        }
    }

    let mut limit_ids = HashSet::new();
    for (rl, i) in doc.rate_limits.iter().zip(&positions.rate_limits) {
        let path = format!("rate_limits[{i}]");
        if !valid_name(&rl.id) {
            err(
                format!("{path}.id"),
                "ids use letters, digits, '-', '_', '.'".into(),
            );
        } else if !limit_ids.insert(rl.id.as_str()) {
            err(
                format!("{path}.id"),
                format!("duplicate rate limit id '{}'", rl.id),
            );
        }
        if rl.requests.is_none() && rl.tokens.is_none() && rl.concurrent.is_none() {
            err(
                path.clone(),
                "set at least one of requests, tokens, concurrent".into(),
            );
        }
        for (field, v) in [
            ("requests", rl.requests),
            ("tokens", rl.tokens),
            ("concurrent", rl.concurrent),
        ] {
            if v == Some(0) {
                err(
                    format!("{path}.{field}"),
                    "must be greater than zero".into(),
                );
            }
        }
        match rl.interval {
            None if rl.requests.is_some() || rl.tokens.is_some() => err(
                format!("{path}.interval"),
                "required with requests or tokens (e.g. 1m)".into(),
            ),
            Some(iv) if iv.secs == 0 => err(
                format!("{path}.interval"),
                "must be greater than zero".into(),
            ),
            Some(_) if rl.requests.is_none() && rl.tokens.is_none() => err(
                format!("{path}.interval"),
                "only applies to requests and tokens, not concurrent".into(),
            ),
            _ => {}
        }
        for (field, glob) in [("team", &rl.matches.team), ("model", &rl.matches.model)] {
            if let Some(why) = glob.as_deref().and_then(bad_glob) {
                err(format!("{path}.match.{field}"), why);
            }
        }
    }

    let mut budget_ids = HashSet::new();
    for (b, i) in doc.budgets.iter().zip(&positions.budgets) {
        let path = format!("budgets[{i}]");
        if !valid_name(&b.id) {
            err(
                format!("{path}.id"),
                "ids use letters, digits, '-', '_', '.'".into(),
            );
        } else if !budget_ids.insert(b.id.as_str()) {
            err(
                format!("{path}.id"),
                format!("duplicate budget id '{}'", b.id),
            );
        }
        if !b.usd.is_finite() || b.usd <= 0.0 {
            err(
                format!("{path}.usd"),
                "must be a positive number of dollars".into(),
            );
        }
    }

    let mut sub = Vec::new();
    check_ip("ip", &doc.ip, &mut sub);
    for (name, team) in &doc.teams {
        let path = format!("teams.{name}");
        if !valid_name(name) {
            sub.push(problem(
                path.clone(),
                "names use letters, digits, '-', '_', '.'",
            ));
        }
        check_globs(&format!("{path}.models"), &team.models, &mut sub);
        check_globs(&format!("{path}.routes"), &team.routes, &mut sub);
        check_ip(&format!("{path}.ip"), &team.ip, &mut sub);
        for (list, ids, known) in [
            (
                "rate_limits",
                &team.rate_limits,
                doc.rate_limits
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>(),
            ),
            (
                "budgets",
                &team.budgets,
                doc.budgets.iter().map(|b| b.id.as_str()).collect(),
            ),
        ] {
            let mut seen = HashSet::new();
            for (i, id) in ids.iter().enumerate() {
                if !known.contains(&id.as_str()) {
                    sub.push(problem(
                        format!("{path}.{list}[{i}]"),
                        format!("no {list} entry with id '{id}'"),
                    ));
                } else if !seen.insert(id) {
                    sub.push(problem(
                        format!("{path}.{list}[{i}]"),
                        format!("'{id}' is listed twice"),
                    ));
                }
            }
        }
        for (field, v) in [
            ("max_body_bytes", team.max_body_bytes),
            ("max_tokens_per_request", team.max_tokens_per_request),
            ("max_timeout_secs", team.max_timeout_secs),
        ] {
            if v == Some(0) {
                sub.push(problem(
                    format!("{path}.{field}"),
                    "must be greater than zero",
                ));
            }
        }
        if team
            .cache
            .and_then(|c| c.ttl)
            .is_some_and(|ttl| ttl.secs == 0)
        {
            sub.push(problem(
                format!("{path}.cache.ttl"),
                "must be greater than zero",
            ));
        }
        if let Some(profile) = &team.guardrails {
            if !doc.guardrails.contains_key(profile) {
                sub.push(problem(
                    format!("{path}.guardrails"),
                    format!("no guardrail profile named '{profile}'"),
                ));
            }
        }
        if let Some(role) = &team.default_role {
            if !role_exists(role) {
                sub.push(problem(
                    format!("{path}.default_role"),
                    format!("no role named '{role}' (built-in or custom)"),
                ));
            }
        }
        team_warnings(doc, name, &path, warnings);
    }
    for p in sub {
        err(p.path, p.message);
    }
}

fn team_warnings(doc: &PolicyDocument, name: &str, path: &str, warnings: &mut Vec<Problem>) {
    let team = &doc.teams[name];
    if team.models.iter().any(|m| m == "*" || m == "**") {
        warnings.push(problem(
            format!("{path}.models"),
            "`*` gives the whole team every model, including expensive ones added later",
        ));
    }
    let referenced = |id: &str, budgets: bool| {
        doc.teams.values().any(|t| {
            let list = if budgets { &t.budgets } else { &t.rate_limits };
            list.iter().any(|r| r == id)
        })
    };
    let applies_by_match = |glob: &Option<String>| {
        glob.as_deref()
            .is_none_or(|g| globset::Glob::new(g).is_ok_and(|g| g.compile_matcher().is_match(name)))
    };
    let limited = doc.rate_limits.iter().any(|rl| {
        (team.rate_limits.contains(&rl.id) || !referenced(&rl.id, false))
            && applies_by_match(&rl.matches.team)
    });
    if !limited {
        warnings.push(problem(
            format!("{path}.rate_limits"),
            "no rate limit applies to this team: one leaked key can use unlimited capacity",
        ));
    }
    let budgets: Vec<_> = doc
        .budgets
        .iter()
        .filter(|b| team.budgets.contains(&b.id) || !referenced(&b.id, true))
        .collect();
    if !budgets.is_empty() && budgets.iter().all(|b| b.mode == BudgetMode::Soft) {
        warnings.push(problem(
            format!("{path}.budgets"),
            "every budget of this team is soft: spend is reported but never blocked",
        ));
    }
    if team.default_role.as_deref() == Some("admin") {
        warnings.push(problem(
            format!("{path}.default_role"),
            "new keys of this team get `admin` by default: every permission on every team",
        ));
    }
}
