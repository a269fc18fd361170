use super::*;
use crate::document::parse_policy;
use crate::rbac::Relation;

fn policy(text: &str) -> CompiledPolicy {
    CompiledPolicy::compile(&parse_policy(text).unwrap().document).unwrap()
}

fn example() -> CompiledPolicy {
    policy(include_str!("../../../../examples/policy.yaml"))
}

fn who<'a>(team: Option<&'a str>, role: &'a str, model: &'a str) -> Principal<'a> {
    Principal {
        key_id: "key_1",
        user_id: Some("u1"),
        team,
        role,
        client_ip: Some("10.20.1.2".parse().unwrap()),
        target: Target::Model(model),
        estimated_tokens: Some(100),
        body_bytes: Some(1000),
    }
}

#[test]
fn team_isolation_and_model_globs() {
    let p = example();
    let d = p.decide(&who(Some("research"), "developer", "gpt-4o-mini"));
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.rule, "teams.research.models");
    assert_eq!(d.guardrails.as_deref(), Some("standard"));
    let d = p.decide(&who(Some("support"), "developer", "claude-sonnet"));
    assert!(!d.allowed);
    assert_eq!(d.rule, "teams.support.models");
    let d = p.decide(&who(Some("research"), "developer", "claude-sonnet"));
    assert!(d.allowed);
    let d = p.decide(&who(Some("ghost"), "developer", "mock-echo"));
    assert_eq!((d.allowed, d.rule.as_str()), (false, "teams.ghost"));
    // No team: the default team applies.
    let d = p.decide(&who(None, "developer", "mock-echo"));
    assert_eq!(d.rule, "teams.platform.models");
    let none = policy("version: 1\nteams: {a: {models: ['*']}}");
    assert_eq!(
        none.decide(&who(None, "developer", "m")).rule,
        "default_team"
    );
}

#[test]
fn ip_rules_deny_wins_and_allow_lists_restrict() {
    let p = example();
    let mut w = who(Some("platform"), "developer", "mock-echo");
    w.client_ip = Some("192.0.2.9".parse().unwrap());
    assert_eq!(p.decide(&w).rule, "ip.deny[0]");
    w.client_ip = Some("2001:db8::1".parse().unwrap());
    assert_eq!(p.decide(&w).rule, "ip.deny[1]");
    // research only from its allow list
    let mut w = who(Some("research"), "developer", "mock-echo");
    w.client_ip = Some("10.99.0.1".parse().unwrap());
    let d = p.decide(&w);
    assert_eq!(
        (d.allowed, d.rule.as_str()),
        (false, "teams.research.ip.allow")
    );
    w.client_ip = None;
    assert!(!p.decide(&w).allowed, "unknown address fails an allow list");
    w.client_ip = Some("127.0.0.1".parse().unwrap());
    assert!(p.decide(&w).allowed);
}

#[test]
fn roles_narrow_access_and_request_size() {
    let p = example();
    let d = p.decide(&who(Some("support"), "intern", "gpt-4o-mini"));
    assert!(d.allowed);
    let d = p.decide(&who(Some("research"), "intern", "gpt-4o"));
    assert_eq!((d.allowed, d.rule.as_str()), (false, "roles.intern"));
    assert_eq!(
        p.decide(&who(Some("research"), "auditor", "gpt-4o")).rule,
        "roles.auditor"
    );
    assert_eq!(
        p.decide(&who(Some("research"), "nobody", "gpt-4o")).rule,
        "roles.nobody"
    );
    let mut w = who(Some("platform"), "developer", "mock-echo");
    w.body_bytes = Some(2_000_000);
    assert_eq!(p.decide(&w).rule, "teams.platform.max_body_bytes");
    w.body_bytes = None;
    w.estimated_tokens = Some(40_000);
    assert_eq!(p.decide(&w).rule, "teams.platform.max_tokens_per_request");
    w.estimated_tokens = None;
    assert!(!p.decide(&w).allowed);
    assert!(p.needs_token_estimate(Some("platform")));
    assert!(p.needs_token_estimate(Some("research")));
    assert!(!p.needs_token_estimate(Some("support")));
    assert_eq!(p.max_body_bytes(None), Some(1_048_576));
    let mut w = who(Some("platform"), "developer", "x");
    w.target = Target::Route("/rest/status/db");
    assert_eq!(p.decide(&w).rule, "teams.platform.routes");
    assert!(p.decide(&w).allowed);
    w.target = Target::Route("/rest/admin");
    assert!(!p.decide(&w).allowed);
}

#[test]
fn rbac_matrix_and_grants() {
    let p = example();
    use Permission::*;
    let o = Relation::Own.as_str();
    let t = Relation::Team.as_str();
    let x = Relation::OtherTeam.as_str();
    assert!(p.can("developer", KeysRevoke, o));
    assert!(!p.can("developer", KeysRevoke, t));
    assert!(!p.can("developer", KeysRevoke, x));
    assert!(p.can("security-admin", KeysRevoke, x));
    assert!(!p.can("security-admin", ModelsInvoke, "gpt-4o"));
    assert!(p.can("auditor", AuditRead, x));
    assert!(!p.can("auditor", PoliciesWrite, x));
    assert!(p.can("viewer", UsageRead, t));
    assert!(!p.can("viewer", UsageRead, x));
    assert!(p.can("operator", KeysRead, t));
    assert!(!p.can("operator", KeysRead, x));
    assert!(p.can("admin", TeamsWrite, x));
    assert!(!p.can("ghost", KeysRead, o));
    // cannot grant more than you hold
    assert!(p.can_grant("admin", "security-admin"));
    assert!(!p.can_grant("security-admin", "admin"));
    assert!(!p.can_grant("developer", "admin"));
    assert!(
        p.can_grant("developer", "intern"),
        "intern is a subset of developer"
    );
    assert!(
        !p.can_grant("developer", "operator"),
        "team-wide reads exceed `own`"
    );
    assert!(p.can_grant("admin", "intern"));
    assert!(!p.can_grant("intern", "developer"));
    assert!(!p.can_grant("admin", "ghost"));
}

#[test]
fn limits_follow_team_references() {
    let p = example();
    let d = p.decide(&who(Some("research"), "developer", "gpt-4o"));
    let got: Vec<(&str, &str)> = d
        .limits
        .iter()
        .map(|l| (l.id.as_str(), l.counter.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("team-rpm", "rl:team-rpm:requests:team=research"),
            ("team-tpm", "rl:team-tpm:tokens:team=research"),
            ("key-concurrency", "rl:key-concurrency:concurrent:key=key_1"),
            ("team-daily", "budget:team-daily:team=research"),
        ]
    );
    let p = policy(
        "version: 1
teams:
  a: { models: ['*'] }
  b: { models: ['*'], rate_limits: [only-b] }
rate_limits:
  - { id: only-b, scope: key, requests: 1, interval: 1s }
  - { id: gpt, scope: model, requests: 5, interval: 1m, match: { model: 'gpt-*' } }
  - { id: global, scope: global, concurrent: 100, match: { team: 'a*' } }
",
    );
    let ids = |team, model| -> Vec<String> {
        p.decide(&who(Some(team), "developer", model))
            .limits
            .into_iter()
            .map(|l| l.counter)
            .collect()
    };
    assert_eq!(
        ids("a", "gpt-4o"),
        [
            "rl:gpt:requests:model=gpt-4o",
            "rl:global:concurrent:global"
        ]
    );
    assert_eq!(ids("a", "claude"), ["rl:global:concurrent:global"]);
    assert_eq!(ids("b", "claude"), ["rl:only-b:requests:key=key_1"]);
}

#[test]
fn shadow_compare_names_the_difference() {
    let active = example();
    let mut doc = parse_policy(include_str!("../../../../examples/policy.yaml"))
        .unwrap()
        .document;
    doc.teams
        .get_mut("research")
        .unwrap()
        .models
        .retain(|m| m != "claude-*");
    doc.rate_limits[0].requests = Some(60);
    let shadow = CompiledPolicy::compile(&doc).unwrap();
    assert_ne!(active.hash(), shadow.hash());
    let w = who(Some("research"), "developer", "claude-sonnet");
    let diff = compare(&active.decide(&w), &shadow.decide(&w)).unwrap();
    assert_eq!(diff.kind, ShadowDiffKind::NewlyDenied);
    assert_eq!(diff.shadow_rule, "teams.research.models");
    assert!(
        diff.summary.starts_with("allowed -> denied"),
        "{}",
        diff.summary
    );
    let w = who(Some("research"), "developer", "gpt-4o");
    let diff = compare(&active.decide(&w), &shadow.decide(&w)).unwrap();
    assert_eq!(diff.kind, ShadowDiffKind::OtherLimits);
    assert_eq!(diff.limits_added, ["team-rpm (60 requests/1m)"]);
    assert_eq!(diff.limits_removed, ["team-rpm (600 requests/1m)"]);
    let w = who(Some("support"), "developer", "gpt-4o-mini");
    let (a, s) = (active.decide(&w), shadow.decide(&w));
    assert!(a.allowed);
    assert_eq!(compare(&a, &a), None);
    assert_eq!(
        compare(&a, &s).map(|d| d.kind),
        Some(ShadowDiffKind::OtherLimits)
    );
    let w = who(Some("support"), "developer", "claude");
    assert_eq!(compare(&active.decide(&w), &active.decide(&w)), None);
}

#[test]
fn invalid_documents_do_not_compile() {
    let mut doc = parse_policy("version: 1").unwrap().document;
    doc.default_team = Some("nope".into());
    let err = CompiledPolicy::compile(&doc).unwrap_err();
    assert_eq!(err.0.problems[0].path, "default_team");
}

#[test]
fn team_cache_settings_follow_the_default_team() {
    let p = policy(
        r#"
version: 1
default_team: a
teams:
  a: { models: ["*"], cache: { ttl: 10m } }
  b: { models: ["*"], cache: {} }
  c: { models: ["*"] }
"#,
    );
    let ttl = |team| p.team_cache(team).map(|c| c.ttl.map(|t| t.secs));
    assert_eq!(ttl(Some("a")), Some(Some(600)));
    assert_eq!(ttl(None), Some(Some(600)), "keys without a team count as a");
    assert_eq!(
        ttl(Some("b")),
        Some(None),
        "on, with the gateway's default TTL"
    );
    assert_eq!(ttl(Some("c")), None);
    assert_eq!(ttl(Some("ghost")), None);
    let err = parse_policy("version: 1\nteams:\n  a: { cache: { ttl: 0s } }\n").unwrap_err();
    assert_eq!(err.problems[0].path, "teams.a.cache.ttl");
    let err =
        parse_policy("version: 1\nteams:\n  a: { cache: { ttl: 1m, bogus: 1 } }\n").unwrap_err();
    assert!(
        err.problems[0].path.starts_with("teams.a"),
        "{:?}",
        err.problems
    );
}
