use portcullis_config::{load_str, StrategyConfig};
use std::time::Duration;

fn env(_: &str) -> Option<String> {
    Some("sk-test".into())
}

/// The README's example.
const GROUPS: &str = r#"
providers:
  - { name: openai, kind: openai, api_key: "${OPENAI_API_KEY}" }
  - { name: azure, kind: azure-openai, base_url: "https://example.openai.azure.com", api_key: "${AZURE_KEY}" }
  - { name: anthropic, kind: anthropic, api_key: "${ANTHROPIC_API_KEY}" }
models:
  - name: gpt-4o
    strategy: least-in-flight
    targets:
      - { provider: openai, upstream_model: gpt-4o, weight: 3 }
      - { provider: azure, upstream_model: my-gpt4o-deployment, weight: 1 }
    fallbacks: [claude]
    retry:
      attempts: 3
      backoff: { base: 200ms, max: 5s }
      on: [connect, timeout, 429, 5xx, overloaded]
      max_retry_after: 20s
      budget: { ratio: 0.1, min_per_second: 2 }
    timeouts: { connect: 2s, first_byte: 30s, total: 120s, idle: 20s }
    breaker: { failures: 3, cooldown: 15s, failure_rate: 0.5, min_calls: 20, window: 60s }
  - name: gpt-4o-eu
    provider: azure
    upstream_model: my-gpt4o-deployment
  - name: claude
    provider: anthropic
    upstream_model: claude-sonnet-4-5
routing:
  - model: gpt-4o
    when: { header: { x-data-region: eu } }
    route_to: gpt-4o-eu
  - model: gpt-4o
    when: { team: research, metadata: { tier: batch } }
    route_to: claude
"#;

#[test]
fn groups_and_rules_load() {
    let c = load_str(GROUPS, &env).expect("example must load").config;
    let g = &c.models[0];
    assert_eq!(g.strategy, Some(StrategyConfig::LeastInFlight));
    let targets = g.effective_targets();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0].weight, 3);
    assert_eq!(
        targets[1].upstream_model.as_deref(),
        Some("my-gpt4o-deployment")
    );
    assert_eq!(g.fallbacks, ["claude"]);
    let retry = g.retry.as_ref().unwrap();
    assert_eq!(retry.attempts, Some(3));
    assert_eq!(retry.backoff.base.0, Duration::from_millis(200));
    let on: Vec<&str> = retry.on.iter().flatten().map(|c| c.0.as_str()).collect();
    assert_eq!(on, ["connect", "timeout", "429", "5xx", "overloaded"]);
    let timeouts = g.timeouts.as_ref().unwrap();
    assert_eq!(timeouts.idle.unwrap().0, Duration::from_secs(20));
    assert_eq!(g.breaker.as_ref().unwrap().failures, 3);
    // Today's shape is a group of one target.
    let one = c.models[1].effective_targets();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].provider, "azure");
    assert_eq!(c.routing.len(), 2);
    assert_eq!(c.routing[0].when.header["x-data-region"], "eu");
    assert_eq!(c.routing[1].when.team.as_deref(), Some("research"));
}

#[test]
fn routing_problems_are_reported_with_their_paths() {
    let doc = r#"
providers:
  - { name: p, kind: openai-compatible, base_url: "http://127.0.0.1:1/v1" }
models:
  - name: a
    provider: p
    targets: [{ provider: p }]
  - name: b
  - name: c
    targets: [{ provider: nowhere, weight: 0 }]
    strategy: fastest
  - name: d
    provider: p
    fallbacks: [d, ghost, a, a]
    retry: { attempts: 0, backoff: { base: 1s, max: 10ms }, on: [connect, teapot, 418] }
    timeouts: { total: 0s }
    breaker: { failure_rate: 1.5 }
routing:
  - { model: ghost, route_to: d }
  - { model: d, route_to: d, when: { header: { "bad header": x } } }
"#;
    let err = load_str(doc, &env).unwrap_err();
    let text = err.to_string();
    for expected in [
        "models[0].targets: give either provider",
        "models[1]: missing field `provider`",
        "models[2].strategy: unknown variant `fastest`",
        "models[3].fallbacks[0]: a model cannot be its own fallback",
        "models[3].fallbacks[1]: no model named 'ghost'",
        "models[3].fallbacks[3]: 'a' is listed twice",
        "models[3].retry.attempts: must be at least 1",
        "models[3].retry.backoff.max: must not be shorter",
        "models[3].retry.on[1]: unknown failure class 'teapot'",
        "models[3].retry.on[2]: unknown failure class '418'",
        "models[3].timeouts.total: must be greater than zero",
        "models[3].breaker.failure_rate: must be above 0",
        "routing[0].model: no model named 'ghost'",
        "routing[1].route_to: must differ from model",
        "routing[1].when.header.bad header: is not a valid HTTP header name",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn group_target_problems() {
    let doc = r#"
providers:
  - { name: p, kind: openai-compatible, base_url: "http://127.0.0.1:1/v1" }
models:
  - name: c
    upstream_model: x
    targets: [{ provider: nowhere, weight: 0 }]
"#;
    let text = load_str(doc, &env).unwrap_err().to_string();
    for expected in [
        "models[0].upstream_model: set upstream_model on each target",
        "models[0].targets[0].provider: no provider named 'nowhere'",
        "models[0].targets: at least one target needs a weight above zero",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
