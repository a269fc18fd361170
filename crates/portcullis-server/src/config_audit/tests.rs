//! One test per rule: a configuration that triggers it and one that does not.

use super::*;
use portcullis_config::{ProviderConfig, ProviderKind, RedisConfig, RedisFailMode, TlsConfig};
use portcullis_policy::document::parse_policy;
use std::net::SocketAddr;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

/// A configuration with no findings of its own: loopback listeners, no mock provider.
fn clean_config() -> Config {
    let mut c = Config::embedded_default();
    c.providers = vec![ProviderConfig::new("openai", ProviderKind::Openai)];
    c.models.clear();
    c.audit.forward = vec![portcullis_config::AuditForward::File {
        path: "/var/log/portcullis-audit.jsonl".into(),
    }];
    c
}

fn policy(yaml: &str) -> PolicyDocument {
    match parse_policy(yaml) {
        Ok(v) => v.document,
        Err(e) => panic!("test policy invalid: {e:?}"),
    }
}

/// A policy with one team that has everything: limit, budget, guardrails.
const GOOD_POLICY: &str = "version: 1
teams:
  t1: {models: ['*'], rate_limits: [rpm], budgets: [monthly], guardrails: strict}
rate_limits:
  - {id: rpm, scope: key, requests: 60, interval: 1m}
budgets:
  - {id: monthly, scope: team, period: month, usd: 100}
guardrails:
  strict: {}
";

fn key(id: &str, role: &str, expires: Option<i64>, last_used: Option<i64>) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        name: format!("name-{id}"),
        prefix: "pk-".into(),
        hash: "0".repeat(64),
        models: vec![],
        created_at: NOW - 10 * DAY,
        expires_at: expires,
        revoked_at: None,
        last_used_at: last_used,
        team: Some("t1".into()),
        role: role.into(),
        owner: None,
    }
}

fn run(config: &Config, policy: Option<&PolicyDocument>, keys: &[KeyRecord]) -> Vec<Finding> {
    audit(&AuditInput {
        config,
        warnings: &[],
        policy,
        keys,
        now: NOW,
    })
}

fn ids(findings: &[Finding]) -> Vec<(&'static str, Severity)> {
    findings.iter().map(|f| (f.id, f.severity)).collect()
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn a_clean_setup_has_no_findings() {
    let p = policy(GOOD_POLICY);
    let keys = [key("k1", "developer", Some(NOW + DAY), Some(NOW - DAY))];
    let findings = run(&clean_config(), Some(&p), &keys);
    assert_eq!(findings, vec![]);
    assert_eq!(exit_code(&findings, Severity::Low), 0);
}

#[test]
fn admin_plane_exposure_depends_on_reach() {
    let p = policy(GOOD_POLICY);
    let mut c = clean_config();
    c.server.admin_tls = Some(TlsConfig {
        cert: "c.pem".into(),
        key: "k.pem".into(),
    });
    c.server.admin_listen = addr("0.0.0.0:8081");
    assert_eq!(
        ids(&run(&c, Some(&p), &[])),
        vec![("admin-plane-exposed", Severity::High)]
    );
    c.server.admin_listen = addr("10.1.2.3:8081");
    assert_eq!(
        ids(&run(&c, Some(&p), &[])),
        vec![("admin-plane-exposed", Severity::Medium)]
    );
    c.server.admin_listen = addr("[::1]:8081");
    assert!(run(&c, Some(&p), &[]).is_empty());
}

#[test]
fn plain_http_beyond_loopback() {
    let p = policy(GOOD_POLICY);
    let mut c = clean_config();
    c.server.listen = addr("0.0.0.0:8080");
    let f = run(&c, Some(&p), &[]);
    assert_eq!(ids(&f), vec![("plain-http", Severity::High)]);
    assert_eq!(f[0].location, "server.listen");
    c.server.tls = Some(TlsConfig {
        cert: "c.pem".into(),
        key: "k.pem".into(),
    });
    assert!(run(&c, Some(&p), &[]).is_empty());
    c.server.admin_listen = addr("192.168.1.5:8081");
    let f = run(&c, Some(&p), &[]);
    assert_eq!(
        ids(&f),
        vec![
            ("plain-http", Severity::Critical),
            ("admin-plane-exposed", Severity::Medium)
        ]
    );
    assert_eq!(exit_code(&f, Severity::Low), 5);
    assert_eq!(worst(&f), Some(Severity::Critical));
}

#[test]
fn literal_secrets_come_from_the_loader_warnings() {
    let p = policy(GOOD_POLICY);
    let c = clean_config();
    let warnings = vec![
        Problem {
            path: "providers[0].api_key".into(),
            message: portcullis_config::LITERAL_SECRET_WARNING.into(),
        },
        Problem {
            path: "providers[0].base_url".into(),
            message: "something else".into(),
        },
    ];
    let f = audit(&AuditInput {
        config: &c,
        warnings: &warnings,
        policy: Some(&p),
        keys: &[],
        now: NOW,
    });
    assert_eq!(ids(&f), vec![("literal-secret", Severity::High)]);
    assert_eq!(f[0].location, "providers[0].api_key");
}

#[test]
fn providers_over_plain_http_unless_local() {
    let p = policy(GOOD_POLICY);
    let mut c = clean_config();
    let mut remote = ProviderConfig::new("vllm", ProviderKind::OpenaiCompatible);
    remote.base_url = Some("http://gpu-box.internal:8000/v1".into());
    let mut local = ProviderConfig::new("ollama", ProviderKind::OpenaiCompatible);
    local.base_url = Some("http://127.0.0.1:11434/v1".into());
    let mut named = ProviderConfig::new("lm", ProviderKind::OpenaiCompatible);
    named.base_url = Some("http://localhost:1234".into());
    c.providers = vec![local, remote, named];
    let f = run(&c, Some(&p), &[]);
    assert_eq!(ids(&f), vec![("provider-plain-http", Severity::Medium)]);
    assert_eq!(f[0].location, "providers[1].base_url");
}

#[test]
fn redis_fail_open_and_mock_provider() {
    let p = policy(GOOD_POLICY);
    let mut c = clean_config();
    c.redis = Some(RedisConfig {
        url: "redis://127.0.0.1:6379".into(),
        fail_mode: RedisFailMode::Open,
    });
    c.providers
        .push(ProviderConfig::new("mock", ProviderKind::Mock));
    let f = run(&c, Some(&p), &[]);
    assert_eq!(
        ids(&f),
        vec![
            ("redis-fail-open", Severity::Medium),
            ("mock-provider", Severity::Info)
        ]
    );
    // Info alone never fails a gate.
    let info_only: Vec<Finding> = f
        .into_iter()
        .filter(|f| f.severity == Severity::Info)
        .collect();
    assert_eq!(exit_code(&info_only, Severity::Info), 0);
    c.redis.as_mut().unwrap().fail_mode = RedisFailMode::Closed;
    assert_eq!(
        ids(&run(&c, Some(&p), &[])),
        vec![("mock-provider", Severity::Info)]
    );
}

#[test]
fn no_active_policy() {
    assert_eq!(
        ids(&run(&clean_config(), None, &[])),
        vec![("no-policy", Severity::Medium)]
    );
}

#[test]
fn wildcard_roles() {
    let all: Vec<String> = portcullis_policy::rbac::Permission::ALL
        .iter()
        .map(|p| format!("      - {{permission: '{}'}}", p.as_str()))
        .collect();
    let doc = format!(
        "{GOOD_POLICY}roles:
  god:
    permissions:
{}
  ops:
    permissions:
      - {{permission: 'keys:revoke', resources: ['*']}}
      - {{permission: 'keys:read', resources: ['*']}}
      - {{permission: 'models:invoke', resources: ['*']}}
      - {{permission: 'keys:create', resources: [own]}}
",
        all.join("\n")
    );
    let p = policy(&doc);
    let f = run(&clean_config(), Some(&p), &[]);
    assert_eq!(
        ids(&f),
        vec![
            ("role-wildcard", Severity::High),
            ("role-wildcard", Severity::Medium),
            ("role-wildcard", Severity::Low)
        ]
    );
    assert_eq!(f[0].location, "roles.god.permissions");
    assert_eq!(f[1].location, "roles.ops.permissions[0].resources");
    assert_eq!(f[2].location, "roles.ops.permissions[2].resources");
}

#[test]
fn teams_without_limits_budgets_or_guardrails() {
    let p = policy(
        "version: 1
teams:
  bare: {models: ['*']}
  covered: {models: ['*'], guardrails: g}
rate_limits:
  - {id: global-rpm, scope: team, requests: 100, interval: 1m, match: {team: cov*}}
guardrails:
  g: {}
",
    );
    let f = run(&clean_config(), Some(&p), &[]);
    let got: Vec<(&str, &str)> = f.iter().map(|f| (f.id, f.location.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("guardrails-off", "teams.bare.guardrails"),
            ("team-no-budget", "teams.bare.budgets"),
            ("team-no-budget", "teams.covered.budgets"),
            ("team-no-rate-limit", "teams.bare.rate_limits"),
        ]
    );
    // A budget no team lists applies to every team.
    let p = policy(&format!(
        "{}budgets:\n  - {{id: all, scope: team, period: day, usd: 5}}\n",
        "version: 1\nteams:\n  a: {models: ['*'], rate_limits: [r], guardrails: g}\nrate_limits:\n  - {id: r, scope: key, requests: 1, interval: 1s}\nguardrails:\n  g: {}\n"
    ));
    assert!(run(&clean_config(), Some(&p), &[]).is_empty());
}

#[test]
fn keys_without_expiry() {
    let p = policy(GOOD_POLICY);
    let used = Some(NOW - DAY);
    let mut revoked = key("k-revoked", "developer", None, used);
    revoked.revoked_at = Some(NOW - DAY);
    let keys = [
        key("k-admin", "admin", None, used),
        key("k-dev1", "developer", None, used),
        key("k-dev2", "viewer", None, used),
        key("k-ok", "developer", Some(NOW + DAY), used),
        key("k-expired", "developer", Some(NOW - 1), used),
        revoked,
    ];
    let f = run(&clean_config(), Some(&p), &keys);
    assert_eq!(
        ids(&f),
        vec![
            ("key-no-expiry", Severity::Medium),
            ("key-no-expiry", Severity::Low)
        ]
    );
    assert_eq!(f[0].location, "keys: k-admin");
    assert_eq!(f[1].location, "keys: k-dev1, k-dev2");
    assert_eq!(exit_code(&f, Severity::Low), 3);
    assert_eq!(exit_code(&f, Severity::High), 0);
}

#[test]
fn stale_keys_after_ninety_days() {
    let p = policy(GOOD_POLICY);
    let exp = Some(NOW + DAY);
    let mut never_used_old = key("k-never", "developer", exp, None);
    never_used_old.created_at = NOW - 200 * DAY;
    let keys = [
        key("k-fresh", "developer", exp, Some(NOW - 89 * DAY)),
        key("k-stale", "developer", exp, Some(NOW - 91 * DAY)),
        // Created 10 days ago, never used: not stale yet.
        key("k-new", "developer", exp, None),
        never_used_old,
    ];
    let f = run(&clean_config(), Some(&p), &keys);
    assert_eq!(ids(&f), vec![("stale-key", Severity::Medium)]);
    assert_eq!(f[0].location, "keys: k-stale, k-never");
    let many: Vec<KeyRecord> = (0..13)
        .map(|i| key(&format!("s{i}"), "developer", exp, Some(NOW - 100 * DAY)))
        .collect();
    let f = run(&clean_config(), Some(&p), &many);
    assert!(
        f[0].location.ends_with("s9 and 3 more"),
        "{}",
        f[0].location
    );
}

#[test]
fn severity_names_and_text_report() {
    assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
    assert_eq!(Severity::parse("nope"), None);
    let f = run(&clean_config(), None, &[]);
    let text = render_text(&f);
    assert!(text.contains("[MEDIUM] no-policy"), "{text}");
    assert!(text.contains("1 finding(s): 1 medium"), "{text}");
    assert_eq!(render_text(&[]), "no findings\n");
    let json = serde_json::to_value(&f[0]).unwrap();
    assert_eq!(json["where"], "policy (store)");
    assert_eq!(json["severity"], "medium");
}

#[test]
fn alerts_off_and_audit_kept_only_in_the_store() {
    let p = policy(GOOD_POLICY);
    let mut c = clean_config();
    c.alerts.enabled = false;
    c.audit.forward.clear();
    assert_eq!(
        ids(&run(&c, Some(&p), &[])),
        vec![
            ("alerts-disabled", Severity::Low),
            ("audit-not-forwarded", Severity::Info)
        ]
    );
}

#[test]
fn backends_without_tls_beyond_loopback() {
    let p = policy(GOOD_POLICY);
    let mut c = clean_config();
    c.redis = Some(RedisConfig {
        url: "redis://:hunter2@cache.internal:6379".into(),
        fail_mode: RedisFailMode::Closed,
    });
    c.store.url = "postgres://app:hunter2@db.internal/portcullis".into();
    let f = run(&c, Some(&p), &[]);
    assert_eq!(
        ids(&f),
        vec![
            ("redis-plain-tcp", Severity::Medium),
            ("store-plain-tcp", Severity::Medium)
        ]
    );
    assert!(f[0].what.contains("cache.internal") && f[1].what.contains("db.internal"));
    assert!(
        f.iter().all(|f| !f.what.contains("hunter2")),
        "passwords never appear"
    );
    c.redis.as_mut().unwrap().url = "rediss://cache.internal:6380".into();
    c.store.url = "postgres://app@db.internal/portcullis?sslmode=verify-full".into();
    assert!(run(&c, Some(&p), &[]).is_empty());
    c.redis.as_mut().unwrap().url = "redis://127.0.0.1:6379".into();
    c.store.url = "postgres://postgres@localhost:5432/test".into();
    assert!(run(&c, Some(&p), &[]).is_empty());
}

#[test]
fn teams_that_store_bodies() {
    let p = policy(
        "version: 1
teams:
  plain: {models: ['*'], rate_limits: [r], budgets: [b], guardrails: g, log_bodies: true}
  bare: {models: ['*'], rate_limits: [r], budgets: [b], log_bodies: true}
rate_limits:
  - {id: r, scope: key, requests: 1, interval: 1s}
budgets:
  - {id: b, scope: team, period: day, usd: 5}
guardrails:
  g: {}
",
    );
    let mut c = clean_config();
    let f: Vec<Finding> = run(&c, Some(&p), &[])
        .into_iter()
        .filter(|f| f.id == "body-logging")
        .collect();
    assert_eq!(
        f.iter()
            .map(|f| (f.severity, f.location.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (Severity::Low, "teams.bare.log_bodies"),
            (Severity::Info, "teams.plain.log_bodies")
        ]
    );
    assert!(f[0].what.contains("30 days"), "{}", f[0].what);
    c.logs.enabled = false;
    assert!(run(&c, Some(&p), &[])
        .iter()
        .all(|f| f.id != "body-logging"));
}
