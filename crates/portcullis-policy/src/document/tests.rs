use super::*;

fn paths(errors: &[Problem]) -> Vec<&str> {
    errors.iter().map(|p| p.path.as_str()).collect()
}

/// The shipped policy files (the example, and the benchmark's `--policy` file, which must
/// keep applying as the schema evolves): no problem, no warning, every team and limit read.
#[test]
fn shipped_policies_validate_cleanly() {
    let shipped = [
        (
            "examples/policy.yaml",
            include_str!("../../../../examples/policy.yaml"),
        ),
        (
            "bench/policy.yaml",
            include_str!("../../../../bench/policy.yaml"),
        ),
    ];
    for (file, text) in shipped {
        let policy = parse_policy(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(policy.warnings.is_empty(), "{file}: {:?}", policy.warnings);
        assert_eq!(policy.document.teams.len(), 3, "{file}");
        assert_eq!(policy.document.rate_limits.len(), 3, "{file}");
        assert_eq!(policy.hash.len(), 64, "{file}");
    }
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let text = r#"
version: 2
default_team: ghost
extra: 1
roles:
  admin: { permissions: [{ permission: "models:invoke" }] }
  bad-perm: { permissions: [{ permission: "models:destroy" }] }
  empty: { permissions: [] }
  globby: { permissions: [{ permission: "models:invoke", resources: ["gpt-[4"] }] }
teams:
  a:
    models: ["gpt-{4", "ok"]
    rate_limits: [nope, rpm]
    budgets: [missing]
    ip: { allow: [10.0.0.0/33], deny: [not-an-ip] }
    max_body_bytes: 0
    guardrails: nowhere
    default_role: wizard
    colour: blue
rate_limits:
  - { id: rpm, scope: team, requests: 0, interval: 1m }
  - { id: rpm, scope: team, requests: 5 }
  - { id: c, scope: key, concurrent: 3, interval: 1m }
  - { id: z, scope: planet, requests: 1, interval: 1m }
  - { id: e, scope: key }
  - { id: iv, scope: key, tokens: 5, interval: 1fortnight }
budgets:
  - { id: b, scope: team, period: day, usd: -1 }
  - { id: b, scope: team, period: week, usd: 1 }
ip:
  deny: ["300.1.1.1"]
"#;
    let err = parse_policy(text).unwrap_err();
    let got = paths(&err.problems);
    for want in [
        "extra",
        "roles.bad-perm.permissions[0].permission",
        "teams.a.colour",
        "rate_limits[3].scope",
        "rate_limits[5].interval",
        "budgets[1].period",
        "version",
        "default_team",
        "roles.admin",
        "roles.empty.permissions",
        "roles.globby.permissions[0].resources[0]",
        "rate_limits[0].requests",
        "rate_limits[1].id",
        "rate_limits[1].interval",
        "rate_limits[2].interval",
        "rate_limits[4]",
        "budgets[0].usd",
        "ip.deny[0]",
    ] {
        assert!(got.contains(&want), "missing {want} in {got:#?}");
    }
    // The team failed to parse (unknown field), so its cross-checks cannot run; fix that
    // and its own problems all show up at once.
    let text = text.replace("    colour: blue\n", "");
    let err = parse_policy(&text).unwrap_err();
    let got = paths(&err.problems);
    for want in [
        "teams.a.models[0]",
        "teams.a.rate_limits[0]",
        "teams.a.budgets[0]",
        "teams.a.ip.allow[0]",
        "teams.a.ip.deny[0]",
        "teams.a.max_body_bytes",
        "teams.a.guardrails",
        "teams.a.default_role",
    ] {
        assert!(got.contains(&want), "missing {want} in {got:#?}");
    }
    assert!(err
        .to_string()
        .contains("teams.a.default_role: no role named 'wizard'"));
}

#[test]
fn missing_version_and_bad_yaml() {
    let err = parse_policy("teams: {}").unwrap_err();
    assert_eq!(paths(&err.problems), ["version"]);
    let err = parse_policy("version: [").unwrap_err();
    assert!(err.problems[0].message.starts_with("not valid YAML"));
    assert!(parse_policy("- 1").is_err());
}

#[test]
fn risky_settings_are_warnings() {
    let text = r#"
version: 1
teams:
  open: { models: ["*"], default_role: admin }
  spendy: { models: [m], rate_limits: [rpm], budgets: [soft] }
rate_limits:
  - { id: rpm, scope: team, requests: 10, interval: 1m }
budgets:
  - { id: soft, scope: team, period: month, usd: 5, mode: soft }
"#;
    let ok = parse_policy(text).unwrap();
    let got = paths(&ok.warnings);
    assert_eq!(
        got,
        [
            "teams.open.models",
            "teams.open.rate_limits",
            "teams.open.default_role",
            "teams.spendy.budgets"
        ]
    );
}

#[test]
fn hash_is_canonical() {
    let a = parse_policy("version: 1\nrate_limits: [{id: r, scope: key, requests: 1, interval: 60}]\nguardrails: {g: {max_images: 1, max_prompt_tokens: 2}}").unwrap();
    let b = parse_policy("# comment\nguardrails: {g: {max_prompt_tokens: 2, max_images: 1}}\nrate_limits:\n  - {interval: 1m, requests: 1, scope: key, id: r}\nversion: 1\n").unwrap();
    assert_eq!(a.hash, b.hash);
    let c =
        parse_policy("version: 1\nrate_limits: [{id: r, scope: key, requests: 2, interval: 60}]")
            .unwrap();
    assert_ne!(a.hash, c.hash);
    assert_eq!(canonical_hash(&a.document), a.hash);
    assert!(validate_document(a.document.clone()).is_ok());
}

#[test]
fn guardrail_profiles_are_validated_with_paths() {
    let e = parse_policy(
        "version: 1\nguardrails:\n  strict:\n    detectors:\n      emial: { action: redact }\n",
    )
    .unwrap_err();
    assert!(
        e.problems
            .iter()
            .any(|p| p.path.starts_with("guardrails.strict")),
        "{e}"
    );
}
