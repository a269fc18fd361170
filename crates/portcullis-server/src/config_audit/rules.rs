//! The audit rules, one function each, in the order they run. Each appends its findings.

use super::{AuditInput, Finding, Severity, STALE_AFTER_SECS};
use portcullis_config::LITERAL_SECRET_WARNING;
use portcullis_policy::document::PolicyDocument;
use portcullis_policy::rbac::Permission;
use portcullis_store::KeyRecord;
use std::net::{IpAddr, SocketAddr};

/// A rule: reads the input, appends findings.
pub type Rule = fn(&AuditInput<'_>, &mut Vec<Finding>);

/// Every rule. Bodies are never logged unredacted (a team's `log_bodies` stores them
/// redacted with its profile, else the default one): `body_logging` reports which teams
/// store bodies and how well they are redacted.
pub const ALL: &[Rule] = &[
    admin_plane_exposed,
    plain_http,
    literal_secrets,
    provider_plain_http,
    plain_backends,
    redis_fail_open,
    alerts_off,
    audit_not_forwarded,
    mock_provider,
    no_policy,
    role_wildcards,
    team_rate_limits,
    team_budgets,
    team_guardrails,
    body_logging,
    keys_without_expiry,
    stale_keys,
];

/// Key ids listed in one finding before "and N more".
const LIST_MAX: usize = 10;

fn finding(
    id: &'static str,
    severity: Severity,
    what: impl Into<String>,
    location: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        id,
        severity,
        what: what.into(),
        location: location.into(),
        fix: fix.into(),
    }
}

/// How far an address reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Loopback only.
    Local,
    /// A private network (RFC 1918, link-local, IPv6 unique-local).
    Private,
    /// Every interface, or a globally routable address.
    Public,
}

fn reach(addr: SocketAddr) -> Reach {
    match addr.ip() {
        ip if ip.is_loopback() => Reach::Local,
        ip if ip.is_unspecified() => Reach::Public,
        IpAddr::V4(v4) if v4.is_private() || v4.is_link_local() => Reach::Private,
        IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => Reach::Private,
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Reach::Private,
        _ => Reach::Public,
    }
}

fn admin_plane_exposed(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    let addr = input.config.server.admin_listen;
    let severity = match reach(addr) {
        Reach::Local => return,
        Reach::Private => Severity::Medium,
        Reach::Public => Severity::High,
    };
    out.push(finding(
        "admin-plane-exposed",
        severity,
        format!("the admin plane (admin API, /metrics) listens on {addr}, reachable beyond this host"),
        "server.admin_listen",
        "bind server.admin_listen to 127.0.0.1 and reach it through a VPN, bastion or a private management network behind a firewall",
    ));
}

fn plain_http(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    let server = &input.config.server;
    for (plane, path, addr, tls, severity) in [
        (
            "data",
            "server.listen",
            server.listen,
            server.tls.is_some(),
            Severity::High,
        ),
        (
            "admin",
            "server.admin_listen",
            server.admin_listen,
            server.admin_tls.is_some(),
            Severity::Critical,
        ),
    ] {
        if tls || reach(addr) == Reach::Local {
            continue;
        }
        let tls_path = if plane == "admin" {
            "server.admin_tls"
        } else {
            "server.tls"
        };
        out.push(finding(
            "plain-http",
            severity,
            format!("the {plane} plane serves plain HTTP on {addr}: API keys and prompts cross the network unencrypted"),
            path,
            format!("configure {tls_path} (cert and key) or terminate TLS in front and bind to 127.0.0.1"),
        ));
    }
}

fn literal_secrets(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    for w in input.warnings {
        if w.message == LITERAL_SECRET_WARNING {
            out.push(finding(
                "literal-secret",
                Severity::High,
                "a provider secret is written literally in the configuration file",
                w.path.clone(),
                "replace the value with ${ENV_VAR} and provide it from the environment or a secret manager; rotate the exposed credential",
            ));
        }
    }
}

/// The host of a URL's authority (`rest` is what follows `scheme://`), without user
/// information or port; `None` when it is this machine (loopback or `localhost`).
fn remote_host(rest: &str) -> Option<&str> {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let bare = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    let local = bare.is_empty()
        || bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    (!local).then_some(bare)
}

fn provider_plain_http(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    for (i, p) in input.config.providers.iter().enumerate() {
        let Some(url) = p.effective_base_url() else {
            continue;
        };
        let Some(host) = url.strip_prefix("http://").and_then(remote_host) else {
            continue;
        };
        out.push(finding(
            "provider-plain-http",
            Severity::Medium,
            format!("provider '{}' is called over plain HTTP ({host}): prompts, answers and its credential travel unencrypted", p.name),
            format!("providers[{i}].base_url"),
            "use an https:// base_url (add ca_bundle for a private CA)",
        ));
    }
}

fn plain_backends(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    if let Some(redis) = &input.config.redis {
        if let Some(host) = redis.url.strip_prefix("redis://").and_then(remote_host) {
            out.push(finding(
                "redis-plain-tcp",
                Severity::Medium,
                format!("Redis at {host} is reached without TLS: limit counters and its password cross the network in clear"),
                "redis.url",
                "use rediss:// (TLS) or keep Redis on a loopback or private link",
            ));
        }
    }
    let url = input.config.store.url.as_str();
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"));
    let verified = [
        "sslmode=require",
        "sslmode=verify-ca",
        "sslmode=verify-full",
    ]
    .iter()
    .any(|m| url.contains(m));
    if let (Some(host), false) = (rest.and_then(remote_host), verified) {
        out.push(finding(
            "store-plain-tcp",
            Severity::Medium,
            format!("PostgreSQL at {host} is reached without required TLS (sslmode defaults to prefer, which falls back to clear text)"),
            "store.url",
            "add ?sslmode=verify-full (or require) to store.url",
        ));
    }
}

fn redis_fail_open(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    if let Some(redis) = &input.config.redis {
        if redis.fail_mode == portcullis_config::RedisFailMode::Open {
            out.push(finding(
                "redis-fail-open",
                Severity::Medium,
                "rate limits and budgets are not enforced while Redis is unreachable (fail_mode: open)",
                "redis.fail_mode",
                "set redis.fail_mode: closed unless availability matters more than limits; alert on portcullis_limiter_fail_mode_total",
            ));
        }
    }
}

fn alerts_off(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    if !input.config.alerts.enabled {
        out.push(finding(
            "alerts-disabled",
            Severity::Low,
            "anomaly alerts are disabled: credential stuffing, key theft and spend spikes go unnoticed",
            "alerts.enabled",
            "remove `alerts: {enabled: false}` and set alerts.webhook to reach the on-call channel",
        ));
    }
}

fn audit_not_forwarded(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    if input.config.audit.forward.is_empty() {
        out.push(finding(
            "audit-not-forwarded",
            Severity::Info,
            "the audit log lives only in the gateway's store: whoever controls the store can rewrite it wholesale",
            "audit.forward",
            "forward records to a separate system (audit.forward: syslog or a JSON lines file shipped elsewhere) and keep the chain head from `portcullis audit verify`",
        ));
    }
}

fn mock_provider(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    for (i, p) in input.config.providers.iter().enumerate() {
        if p.kind == portcullis_config::ProviderKind::Mock {
            out.push(finding(
                "mock-provider",
                Severity::Info,
                format!("the in-process mock provider '{}' is configured", p.name),
                format!("providers[{i}]"),
                "remove the mock provider and its models from production configurations",
            ));
        }
    }
}

fn no_policy(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    if input.policy.is_none() {
        out.push(finding(
            "no-policy",
            Severity::Medium,
            "no security policy is active: built-in roles only, no team isolation, rate limits, budgets or guardrails",
            "policy (store)",
            "write a policy document and activate it with `portcullis policy apply --file policy.yaml`",
        ));
    }
}

/// Permissions that change state: a `*` resource on one of them reaches every team.
const WRITES: [Permission; 5] = [
    Permission::KeysCreate,
    Permission::KeysRevoke,
    Permission::PoliciesWrite,
    Permission::UsersWrite,
    Permission::TeamsWrite,
];

fn role_wildcards(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    let Some(policy) = input.policy else {
        return;
    };
    for (name, role) in &policy.roles {
        let held: std::collections::BTreeSet<Permission> =
            role.permissions.iter().map(|g| g.permission).collect();
        if held.len() == Permission::ALL.len() {
            out.push(finding(
                "role-wildcard",
                Severity::High,
                format!("custom role '{name}' holds every permission"),
                format!("roles.{name}.permissions"),
                "grant only the permissions the role needs; keep full control to the built-in admin role and few keys",
            ));
            continue;
        }
        for (i, grant) in role.permissions.iter().enumerate() {
            if !grant.resources.iter().any(|r| r == "*" || r == "**") {
                continue;
            }
            let (severity, fix) = if WRITES.contains(&grant.permission) {
                (
                    Severity::Medium,
                    "narrow the resources to own or team unless the role must act on every team",
                )
            } else if matches!(
                grant.permission,
                Permission::ModelsInvoke | Permission::RoutesInvoke
            ) {
                (
                    Severity::Low,
                    "list the models or routes the role needs instead of *",
                )
            } else {
                continue;
            };
            out.push(finding(
                "role-wildcard",
                severity,
                format!(
                    "custom role '{name}' grants {} on every resource (*)",
                    grant.permission.as_str()
                ),
                format!("roles.{name}.permissions[{i}].resources"),
                fix,
            ));
        }
    }
}

fn glob_matches(pattern: &str, name: &str) -> bool {
    globset::Glob::new(pattern).is_ok_and(|g| g.compile_matcher().is_match(name))
}

/// Ids of limits or budgets that no team lists (those apply to every request).
fn unlisted<'a>(
    policy: &PolicyDocument,
    ids: impl Iterator<Item = &'a str>,
    listed: fn(&portcullis_policy::document::TeamDef) -> &Vec<String>,
) -> Vec<&'a str> {
    ids.filter(|id| {
        !policy
            .teams
            .values()
            .any(|t| listed(t).iter().any(|l| l == id))
    })
    .collect()
}

fn team_rate_limits(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    let Some(policy) = input.policy else {
        return;
    };
    let global = unlisted(
        policy,
        policy.rate_limits.iter().map(|l| l.id.as_str()),
        |t| &t.rate_limits,
    );
    for (name, team) in &policy.teams {
        let covered = !team.rate_limits.is_empty()
            || policy
                .rate_limits
                .iter()
                .filter(|l| global.contains(&l.id.as_str()))
                .any(|l| {
                    l.matches
                        .team
                        .as_deref()
                        .is_none_or(|g| glob_matches(g, name))
                });
        if !covered {
            out.push(finding(
                "team-no-rate-limit",
                Severity::Medium,
                format!("team '{name}' has no rate limit: one leaked key can send unlimited requests"),
                format!("teams.{name}.rate_limits"),
                "add a rate limit (requests and tokens per interval, scope key or team) and list it in the team",
            ));
        }
    }
}

fn team_budgets(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    let Some(policy) = input.policy else {
        return;
    };
    let global = unlisted(policy, policy.budgets.iter().map(|b| b.id.as_str()), |t| {
        &t.budgets
    });
    for (name, team) in &policy.teams {
        if team.budgets.is_empty() && global.is_empty() {
            out.push(finding(
                "team-no-budget",
                Severity::Medium,
                format!("team '{name}' has no spend budget"),
                format!("teams.{name}.budgets"),
                "add a budget (usd per day or month, scope team or key) and list it in the team",
            ));
        }
    }
}

fn team_guardrails(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    let Some(policy) = input.policy else {
        return;
    };
    for (name, team) in &policy.teams {
        if team.guardrails.is_none() {
            out.push(finding(
                "guardrails-off",
                Severity::Medium,
                format!("team '{name}' has no guardrail profile: prompts and answers are not scanned for secrets or personal data"),
                format!("teams.{name}.guardrails"),
                "define a guardrail profile under guardrails: and name it in the team",
            ));
        }
    }
}

fn body_logging(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    let Some(policy) = input.policy else {
        return;
    };
    if !input.config.logs.enabled {
        return;
    }
    let days = input.config.logs.retention.0.as_secs() / 86_400;
    for (name, team) in policy.teams.iter().filter(|(_, t)| t.log_bodies) {
        let location = format!("teams.{name}.log_bodies");
        match &team.guardrails {
            None => out.push(finding(
                "body-logging",
                Severity::Low,
                format!("team '{name}' stores prompt and answer bodies for {days} days, redacted only by the default profile (built-in detectors)"),
                location,
                "give the team a guardrail profile covering its own sensitive data (custom rules, topics), or turn log_bodies off",
            )),
            Some(profile) => out.push(finding(
                "body-logging",
                Severity::Info,
                format!("team '{name}' stores prompt and answer bodies for {days} days, redacted with profile '{profile}'"),
                location,
                "keep log_bodies only while it is needed; shorten logs.retention if possible",
            )),
        }
    }
}

/// Keys that can still authenticate.
fn live_keys<'a>(input: &'a AuditInput<'_>) -> impl Iterator<Item = &'a KeyRecord> {
    let now = input.now;
    input
        .keys
        .iter()
        .filter(move |k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now))
}

fn id_list(ids: &[&str]) -> String {
    let shown = ids
        .iter()
        .take(LIST_MAX)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    match ids.len().saturating_sub(LIST_MAX) {
        0 => format!("keys: {shown}"),
        more => format!("keys: {shown} and {more} more"),
    }
}

fn keys_without_expiry(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    let mut ordinary = Vec::new();
    for key in live_keys(input).filter(|k| k.expires_at.is_none()) {
        if matches!(key.role.as_str(), "admin" | "security-admin") {
            out.push(finding(
                "key-no-expiry",
                Severity::Medium,
                format!("{} key '{}' never expires", key.role, key.name),
                format!("keys: {}", key.id),
                format!(
                    "portcullis keys expire {} --in 30d (and rotate administrative keys regularly)",
                    key.id
                ),
            ));
        } else {
            ordinary.push(key.id.as_str());
        }
    }
    if !ordinary.is_empty() {
        out.push(finding(
            "key-no-expiry",
            Severity::Low,
            format!("{} key(s) never expire", ordinary.len()),
            id_list(&ordinary),
            "give keys a lifetime (`keys create --expires 90d`, `keys expire ID --in 90d`) and rotate them",
        ));
    }
}

fn stale_keys(input: &AuditInput<'_>, out: &mut Vec<Finding>) {
    let cutoff = input.now - STALE_AFTER_SECS;
    let stale: Vec<&str> = live_keys(input)
        .filter(|k| k.last_used_at.unwrap_or(k.created_at) < cutoff)
        .map(|k| k.id.as_str())
        .collect();
    if !stale.is_empty() {
        out.push(finding(
            "stale-key",
            Severity::Medium,
            format!(
                "{} active key(s) unused for more than {} days",
                stale.len(),
                STALE_AFTER_SECS / 86_400
            ),
            id_list(&stale),
            "revoke keys nobody uses (`portcullis keys revoke ID`)",
        ));
    }
}
