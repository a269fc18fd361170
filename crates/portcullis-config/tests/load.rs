use portcullis_config::{load_str, ProviderKind};

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-test".into()),
        _ => None,
    }
}

const ISSUE_EXAMPLE: &str = r#"
server:
  listen: 127.0.0.1:8080
  admin_listen: 127.0.0.1:8081
store:
  url: sqlite://portcullis-data/portcullis.db   # or postgres://user@host/db
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
  - name: local-llama
    kind: openai-compatible
    base_url: http://127.0.0.1:11434/v1
models:
  - name: gpt-4o-mini            # what clients send as "model"
    provider: openai
    upstream_model: gpt-4o-mini  # what the provider is asked for (defaults to name)
    price: { input_per_mtok: 0.15, output_per_mtok: 0.60 }
  - name: llama-3-8b
    provider: local-llama
    upstream_model: llama3:8b
"#;

#[test]
fn the_documented_example_loads() {
    let loaded = load_str(ISSUE_EXAMPLE, &env).expect("example must load");
    let c = loaded.config;
    assert_eq!(c.providers.len(), 2);
    assert_eq!(c.providers[0].kind, ProviderKind::Openai);
    assert_eq!(c.providers[0].api_key.as_ref().unwrap().expose(), "sk-test");
    assert_eq!(c.models[1].upstream(), "llama3:8b");
    assert_eq!(c.models[0].price.unwrap().output_per_mtok, 0.60);
    assert_eq!(c.server.max_body_size.0, 10 * 1024 * 1024);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let doc = r#"
server:
  listen: 127.0.0.1:9000
  bogus: 1
providers:
  - name: a
    kind: openai
    api_key: ${MISSING_KEY}
  - name: b
    kind: not-a-kind
  - name: c
    kind: openai-compatible
models:
  - name: m1
    provider: nowhere
  - name: m2
    provider: a
    colour: blue
extra: true
"#;
    let err = load_str(doc, &env).unwrap_err();
    let rendered: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
    let has = |needle: &str| rendered.iter().any(|p| p.contains(needle));
    assert!(has("server.bogus: unknown field"), "{rendered:#?}");
    assert!(
        has("providers[0].api_key: environment variable MISSING_KEY is not set"),
        "{rendered:#?}"
    );
    assert!(
        has("providers[1].kind: unknown variant `not-a-kind`"),
        "{rendered:#?}"
    );
    assert!(has("providers[2].base_url: required"), "{rendered:#?}");
    assert!(
        has("models[0].provider: no provider named 'nowhere'"),
        "{rendered:#?}"
    );
    assert!(has("models[1].colour: unknown field"), "{rendered:#?}");
    assert!(has("extra: unknown field"), "{rendered:#?}");
    assert_eq!(err.problems.len(), 7, "{rendered:#?}");
}

#[test]
fn literal_keys_and_public_plain_http_warn() {
    let doc = r#"
server:
  listen: 0.0.0.0:8080
providers:
  - name: o
    kind: openai
    api_key: sk-literal
"#;
    let loaded = load_str(doc, &env).unwrap();
    let w: Vec<String> = loaded.warnings.iter().map(|p| p.to_string()).collect();
    assert!(
        w.iter()
            .any(|p| p.starts_with("providers[0].api_key: literal secret")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|p| p.starts_with("server.listen: plain HTTP")),
        "{w:?}"
    );
}

#[test]
fn bad_values_are_rejected() {
    let doc = r#"
server:
  max_body_size: 10 parsecs
  timeouts: { connect: soon }
store:
  url: mysql://x
providers:
  - name: x
    kind: openai-compatible
    base_url: ftp://example.com
    headers: { "bad header": v }
"#;
    let err = load_str(doc, &env).unwrap_err();
    let rendered: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        rendered
            .iter()
            .any(|p| p.starts_with("server.max_body_size")),
        "{rendered:#?}"
    );
    assert!(
        rendered.iter().any(|p| p.starts_with("store.url")),
        "{rendered:#?}"
    );
    assert!(
        rendered
            .iter()
            .any(|p| p.starts_with("providers[0].base_url")),
        "{rendered:#?}"
    );
    assert!(
        rendered
            .iter()
            .any(|p| p.starts_with("providers[0].headers.bad header")),
        "{rendered:#?}"
    );
}

#[test]
fn empty_document_is_the_default_without_providers() {
    let loaded = load_str("", &env).unwrap();
    assert!(loaded.config.providers.is_empty());
    assert_eq!(loaded.config.server.listen.port(), 8080);
}

#[test]
fn secrets_do_not_leak_through_debug() {
    let loaded = load_str(ISSUE_EXAMPLE, &env).unwrap();
    let debug = format!("{:?}", loaded.config);
    assert!(!debug.contains("sk-test"));
}

const ISSUE3_EXAMPLE: &str = r#"
providers:
  - name: anthropic
    kind: anthropic
    base_url: https://api.anthropic.com          # the gateway appends /v1/messages
    api_key: ${ANTHROPIC_API_KEY}
  - name: gemini
    kind: gemini
    base_url: https://generativelanguage.googleapis.com   # + /v1beta/models/{m}:generateContent
    api_key: ${GEMINI_API_KEY}
  - name: azure
    kind: azure-openai
    base_url: https://my-resource.openai.azure.com        # + /openai/deployments/{d}/...
    api_key: ${AZURE_OPENAI_API_KEY}
    api_version: "2024-10-21"
  - name: mistral
    kind: mistral
    base_url: https://api.mistral.ai/v1
    api_key: ${MISTRAL_API_KEY}
  - name: bedrock
    kind: bedrock
    region: us-east-1
    access_key_id: ${AWS_ACCESS_KEY_ID}
    secret_access_key: ${AWS_SECRET_ACCESS_KEY}
models:
  - name: claude-sonnet
    provider: anthropic
    upstream_model: claude-sonnet-4-5
  - name: gpt-4o-azure
    provider: azure
    upstream_model: my-gpt4o-deployment                  # the Azure deployment name
"#;

#[test]
fn the_providers_example_loads() {
    let env = |name: &str| Some(format!("value-of-{name}"));
    let loaded = load_str(ISSUE3_EXAMPLE, &env).expect("example must load");
    let c = loaded.config;
    assert_eq!(c.providers.len(), 5);
    let bedrock = c.provider("bedrock").unwrap();
    assert_eq!(bedrock.kind, ProviderKind::Bedrock);
    assert_eq!(
        bedrock.effective_base_url().as_deref(),
        Some("https://bedrock-runtime.us-east-1.amazonaws.com")
    );
    assert_eq!(
        c.provider("azure").unwrap().api_version.as_deref(),
        Some("2024-10-21")
    );
}

#[test]
fn bedrock_takes_aws_environment_and_requires_region() {
    let doc = "providers:\n  - name: b\n    kind: bedrock\n";
    let none = |_: &str| None;
    let err = load_str(doc, &none).unwrap_err();
    let text: Vec<String> = err.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter().any(|p| p.starts_with("providers[0].region")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|p| p.starts_with("providers[0].access_key_id")),
        "{text:?}"
    );
    let aws = |name: &str| name.starts_with("AWS_").then(|| "x".to_string());
    let loaded = load_str(&format!("{doc}    region: eu-west-1\n"), &aws).unwrap();
    assert_eq!(
        loaded.config.providers[0]
            .secret_access_key
            .as_ref()
            .unwrap()
            .expose(),
        "x"
    );
    let err = load_str(
        "providers:\n  - name: o\n    kind: anthropic\n    region: x\n",
        &aws,
    )
    .unwrap_err();
    assert!(err
        .problems
        .iter()
        .any(|p| p.path == "providers[0].api_key"));
    assert!(err.problems.iter().any(|p| p.path == "providers[0].region"));
}

#[test]
fn redis_section_and_cached_prices() {
    let doc = r#"
redis: { url: "redis://127.0.0.1:6379", fail_mode: open }
providers: [{ name: m, kind: mock }]
models:
  - { name: x, provider: m, price: { input_per_mtok: 2.0, output_per_mtok: 8.0, cached_input_per_mtok: 0.5 } }
"#;
    let c = load_str(doc, &env).unwrap().config;
    assert_eq!(
        c.redis.as_ref().unwrap().fail_mode,
        portcullis_config::RedisFailMode::Open
    );
    let price = c.models[0].price.unwrap();
    // 1000 prompt of which 400 cached, 100 completion: 600*2 + 400*0.5 + 100*8 micro-dollars.
    assert_eq!(price.cost_micros(1000, 400, 100), 1200 + 200 + 800);
    let err = load_str("redis: { url: http://x }", &env).unwrap_err();
    assert_eq!(err.problems[0].path, "redis.url");
}

#[test]
fn telemetry_otlp_section() {
    let doc = r#"
telemetry:
  otlp: { endpoint: "http://127.0.0.1:4317", protocol: grpc, service_name: gw, sample_ratio: 0.25 }
"#;
    let c = load_str(doc, &env).unwrap().config;
    let o = c.telemetry.otlp.unwrap();
    assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:4317"));
    assert_eq!(o.protocol, portcullis_config::OtlpProtocol::Grpc);
    assert_eq!((o.service_name.as_str(), o.sample_ratio), ("gw", 0.25));
    let o = load_str("telemetry: { otlp: {} }", &env)
        .unwrap()
        .config
        .telemetry
        .otlp
        .unwrap();
    assert_eq!(o.protocol, portcullis_config::OtlpProtocol::Http);
    assert_eq!(
        (o.service_name.as_str(), o.sample_ratio),
        ("portcullis", 1.0)
    );
    let err = load_str(
        "telemetry: { otlp: { endpoint: \"udp://x\", sample_ratio: 2, service_name: \" \" } }",
        &env,
    )
    .unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "telemetry.otlp.endpoint",
            "telemetry.otlp.sample_ratio",
            "telemetry.otlp.service_name"
        ]
    );
    let err = load_str("telemetry: { otlp: { protocol: udp } }", &env).unwrap_err();
    assert!(err.problems[0].path.starts_with("telemetry"), "{err}");
}

#[test]
fn routes_and_cache_load_and_every_problem_has_its_path() {
    let doc = r#"
routes:
  - name: status
    path_prefix: /rest/status
    methods: [GET, POST]
    upstream: http://127.0.0.1:9000/api
    headers: { X-Token: abc }
    timeout: 2s
    retries: 1
cache: { backend: memory, max_bytes: 1MiB, default_ttl: 30s }
"#;
    let c = load_str(doc, &env).unwrap().config;
    let r = &c.routes[0];
    assert!(r.strip_prefix, "strip_prefix defaults to true");
    assert!(r.allows_method("POST") && !r.allows_method("DELETE"));
    assert_eq!(r.timeout.unwrap().0, std::time::Duration::from_secs(2));
    let cache = c.cache.unwrap();
    assert_eq!(cache.max_bytes.0, 1 << 20);
    assert_eq!(cache.max_entry_bytes.0, 1 << 20, "default");

    let bad = r#"
routes:
  - { name: a, path_prefix: /v1/chat, upstream: http://x }
  - { name: a, path_prefix: rest/, upstream: ftp://x, methods: [FETCH], retries: 9 }
  - { name: b, path_prefix: /rest/a/../b, upstream: "http://x/?q=1", timeout: 0s }
  - { name: c, path_prefix: /ok, upstream: http://x, bogus: 1 }
cache: { backend: redis, max_bytes: 0 }
"#;
    let err = load_str(bad, &env).unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "routes[0].path_prefix",
        "routes[1].name",
        "routes[1].path_prefix",
        "routes[1].upstream",
        "routes[1].methods[0]",
        "routes[1].retries",
        "routes[2].path_prefix",
        "routes[2].upstream",
        "routes[2].timeout",
        "routes[3].bogus",
        "cache.backend",
        "cache.max_bytes",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
}
