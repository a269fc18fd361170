//! Model groups, retries, fallbacks, breakers and timeouts against the mock upstream's
//! fault injection, over real sockets.

mod common;

use common::{add_identity_key, expect_error, model, provider, Harness};
use portcullis_config::{
    BackoffConfig, BreakerSettings, BudgetSettings, ModelConfig, ModelTimeouts, ProviderKind,
    RetryConfig, RoutingRule, RuleConditions, Seconds, StrategyConfig, TargetConfig,
};
use portcullis_testkit::Fault;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn group(name: &str, targets: &[(&str, &str)]) -> ModelConfig {
    let mut m = ModelConfig::single(name, "-", None);
    m.provider = None;
    m.targets = targets
        .iter()
        .map(|(p, u)| TargetConfig {
            provider: p.to_string(),
            upstream_model: Some(u.to_string()),
            weight: 1,
            priority: 0,
        })
        .collect();
    m
}

fn retry(attempts: u32) -> RetryConfig {
    RetryConfig {
        attempts: Some(attempts),
        backoff: BackoffConfig {
            base: Seconds(Duration::from_millis(1)),
            max: Seconds(Duration::from_millis(5)),
        },
        ..RetryConfig::default()
    }
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

fn breaker<'a>(list: &'a Value, target: &str) -> &'a Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["target"] == target)
        .unwrap_or_else(|| panic!("no breaker for {target}: {list}"))
}

fn paths(h: &Harness) -> Vec<String> {
    h.mock.requests().into_iter().map(|r| r.path).collect()
}

fn with_anthropic(c: &mut portcullis_config::Config, mock: &portcullis_testkit::MockUpstream) {
    c.providers.push(provider(
        "anthropic",
        ProviderKind::Anthropic,
        Some(mock.root_url()),
    ));
    c.models
        .push(model("claude-backup", "anthropic", "claude-sonnet-4-5"));
}

#[tokio::test]
async fn a_failing_primary_falls_back_to_another_provider_kind() {
    let h = Harness::start_with_mock(|c, mock| {
        with_anthropic(c, mock);
        let mut m = group("resilient", &[("up", "fault-status-503")]);
        m.fallbacks = vec!["claude-backup".into()];
        c.models.push(m);
    })
    .await;

    let r = h.chat("resilient", false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-portcullis-attempts"), Some("2"));
    assert_eq!(
        header(&r, "x-portcullis-target"),
        Some("anthropic/claude-sonnet-4-5")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert!(
        body["choices"][0]["message"]["content"].is_string(),
        "{body}"
    );
    assert_eq!(paths(&h), ["/v1/chat/completions", "/v1/messages"]);

    // A stream fails over too, since nothing had reached the client yet.
    h.mock.clear_requests();
    let r = h.chat("resilient", true).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-portcullis-attempts"), Some("2"));
    let text = r.text().await.unwrap();
    assert!(text.contains("chat.completion.chunk"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(paths(&h), ["/v1/chat/completions", "/v1/messages"]);

    let metrics = h.gateway.state.render_metrics();
    assert!(
        metrics.contains(r#"portcullis_route_events_total{model="resilient",event="fallback"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"portcullis_upstream_errors_total{class="overloaded",provider="up"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_overloaded_error_event_before_the_first_byte_fails_over() {
    let h = Harness::start_with_mock(|c, mock| {
        with_anthropic(c, mock);
        let mut m = group("claude-group", &[("anthropic", "fault-stream-error-0")]);
        m.fallbacks = vec!["gpt-test".into()];
        c.models.push(m);
    })
    .await;
    let r = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", &h.key)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "claude-group", "max_tokens": 50, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-portcullis-target"), Some("up/mock-gpt"));
    let text = r.text().await.unwrap();
    assert!(text.contains("event: message_stop"), "{text}");
    assert!(!text.contains("overloaded_error"), "{text}");
    assert_eq!(paths(&h), ["/v1/messages", "/v1/chat/completions"]);
}

#[tokio::test]
async fn a_429_retry_after_is_waited_out_then_retried() {
    let h = Harness::start_with(|c| {
        let mut m = model("throttled", "up", "mock-gpt");
        m.retry = Some(retry(2));
        c.models.push(m);
    })
    .await;
    h.mock.push_fault(Fault::Status {
        status: 429,
        body: None,
        retry_after: Some(1),
    });
    let started = Instant::now();
    let r = h.chat("throttled", false).await;
    let elapsed = started.elapsed();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-portcullis-attempts"), Some("2"));
    assert!(elapsed >= Duration::from_secs(1), "waited {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "waited {elapsed:?}");
    assert_eq!(h.mock.request_count(), 2);

    // A Retry-After beyond the cap (10s by default) is not waited out: the 429 goes back.
    h.mock.push_fault(Fault::Status {
        status: 429,
        body: None,
        retry_after: Some(30),
    });
    let started = Instant::now();
    let r = h.chat("throttled", false).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(header(&r, "retry-after"), Some("30"));
    expect_error(r, 429, "upstream_rate_limited").await;
    assert_eq!(h.mock.request_count(), 3);
}

#[tokio::test]
async fn a_dead_target_is_ejected_and_readmitted_after_cooldown() {
    let h = Harness::start_with(|c| {
        let mut m = group("pair", &[("up", "mock-a"), ("up", "mock-b")]);
        m.strategy = Some(StrategyConfig::Priority);
        m.targets[1].priority = 1;
        m.breaker = Some(BreakerSettings {
            failures: 2,
            cooldown: Seconds(Duration::from_millis(1500)),
            ..BreakerSettings::default()
        });
        c.models.push(m);
    })
    .await;
    let (_, admin) = add_identity_key(&h.store, None, "admin", None).await;
    h.gateway.state.refresh_keys().await.unwrap();
    let models = |h: &Harness| -> Vec<String> {
        h.mock
            .requests()
            .iter()
            .map(|r| {
                serde_json::from_slice::<Value>(&r.body).unwrap()["model"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };

    // mock-a fails twice (each time the request moves to mock-b): its breaker opens.
    for _ in 0..2 {
        h.mock.push_fault(Fault::status(500));
        let r = h.chat("pair", false).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-portcullis-target"), Some("up/mock-b"));
        assert_eq!(header(&r, "x-portcullis-attempts"), Some("2"));
    }
    assert_eq!(models(&h), ["mock-a", "mock-b", "mock-a", "mock-b"]);
    let list: Value = h
        .admin(&admin, "GET", "/api/v1/breakers", None)
        .await
        .json()
        .await
        .unwrap();
    let a = breaker(&list, "up/mock-a");
    assert_eq!(a["state"], "open", "{list}");
    assert_eq!(a["models"], json!(["pair"]), "{list}");
    assert!(
        a["opened_at"].is_string() && a["next_probe_at"].is_string(),
        "{list}"
    );
    assert_eq!(breaker(&list, "up/mock-b")["state"], "closed", "{list}");

    // Ejected: requests go straight to mock-b without touching mock-a.
    h.mock.clear_requests();
    let r = h.chat("pair", false).await;
    assert_eq!(header(&r, "x-portcullis-attempts"), Some("1"));
    assert_eq!(models(&h), ["mock-b"]);

    // After the cooldown mock-a is probed, answers, and is readmitted.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    h.mock.clear_requests();
    let r = h.chat("pair", false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-portcullis-target"), Some("up/mock-a"));
    assert_eq!(models(&h), ["mock-a"]);
    let list: Value = h
        .admin(&admin, "GET", "/api/v1/breakers", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(breaker(&list, "up/mock-a")["state"], "closed", "{list}");
    let metrics = h.gateway.state.render_metrics();
    assert!(
        metrics.contains(r#"portcullis_breaker_state{target="up/mock-a"} 0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"portcullis_route_events_total{model="pair",event="ejected"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn when_every_target_is_ejected_the_answer_is_503_with_retry_after() {
    let h = Harness::start_with(|c| {
        let mut m = model("fragile", "dead", "y");
        m.breaker = Some(BreakerSettings {
            failures: 1,
            cooldown: Seconds(Duration::from_secs(20)),
            ..BreakerSettings::default()
        });
        c.models.push(m);
    })
    .await;
    let (_, admin) = add_identity_key(&h.store, None, "admin", None).await;
    let (_, developer) = add_identity_key(&h.store, None, "developer", None).await;
    h.gateway.state.refresh_keys().await.unwrap();
    expect_error(h.chat("fragile", false).await, 502, "upstream_unreachable").await;
    let r = h.chat("fragile", false).await;
    let retry_after: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((19..=20).contains(&retry_after), "{retry_after}");
    expect_error(r, 503, "upstream_unavailable").await;

    // Reading breakers needs routing:read, resetting routing:write.
    let r = h.admin(&developer, "GET", "/api/v1/breakers", None).await;
    assert_eq!(r.status(), 403);
    let list: Value = h
        .admin(&admin, "GET", "/api/v1/breakers", None)
        .await
        .json()
        .await
        .unwrap();
    let id = breaker(&list, "dead/y")["id"].as_u64().unwrap();
    let path = format!("/api/v1/breakers/{id}/reset");
    assert_eq!(h.admin(&developer, "POST", &path, None).await.status(), 403);
    let reset: Value = h
        .admin(&admin, "POST", &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reset["state"], "closed", "{reset}");
    assert_eq!(
        h.admin(&admin, "POST", "/api/v1/breakers/999/reset", None)
            .await
            .status(),
        404
    );
    // Closed again: the next request reaches the (still dead) upstream.
    expect_error(h.chat("fragile", false).await, 502, "upstream_unreachable").await;
}

#[tokio::test]
async fn a_mid_stream_drop_ends_with_an_error_event_and_is_not_retried() {
    let h = Harness::start_with(|c| {
        let mut m = group(
            "dropper",
            &[("up", "fault-stream-drop-2"), ("up", "mock-gpt")],
        );
        m.retry = Some(retry(3));
        m.fallbacks = vec!["gpt-test".into()];
        c.models.push(m);
    })
    .await;
    // Pin the first attempt to the dropping target.
    let mut text = String::new();
    for _ in 0..20 {
        h.mock.clear_requests();
        let r = h.chat("dropper", true).await;
        assert_eq!(r.status(), 200);
        if header(&r, "x-portcullis-target") == Some("up/fault-stream-drop-2") {
            text = r.text().await.unwrap();
            break;
        }
        let _ = r.text().await;
    }
    assert!(
        !text.is_empty(),
        "the weighted pick never chose the dropping target"
    );
    assert!(text.contains("chat.completion.chunk"), "{text}");
    assert!(text.contains("\"error\""), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert_eq!(
        h.mock.request_count(),
        1,
        "no retry after bytes reached the client"
    );
}

#[tokio::test]
async fn a_rejected_request_is_not_retried() {
    let h = Harness::start_with(|c| {
        let mut m = group("strict", &[("up", "fault-status-400")]);
        m.retry = Some(retry(3));
        m.fallbacks = vec!["gpt-test".into()];
        c.models.push(m);
    })
    .await;
    let r = h.chat("strict", false).await;
    assert_eq!(header(&r, "x-portcullis-attempts"), Some("1"));
    expect_error(r, 400, "upstream_rejected").await;
    assert_eq!(h.mock.request_count(), 1);
}

#[tokio::test]
async fn the_retry_budget_stops_amplification() {
    let h = Harness::start_with(|c| {
        let mut m = model("outage", "up", "fault-status-502");
        m.retry = Some(RetryConfig {
            budget: Some(BudgetSettings {
                ratio: 0.2,
                min_per_second: 0,
                window: Seconds(Duration::from_secs(60)),
            }),
            ..retry(3)
        });
        m.breaker = Some(BreakerSettings {
            failures: 0,
            ..BreakerSettings::default()
        });
        c.models.push(m);
    })
    .await;
    for _ in 0..10 {
        expect_error(h.chat("outage", false).await, 502, "upstream_error").await;
    }
    // Without a budget: 10 requests x 3 attempts = 30 upstream calls. With 20%: 10 + 2.
    assert_eq!(h.mock.request_count(), 12);
    let metrics = h.gateway.state.render_metrics();
    assert!(
        metrics.contains(
            r#"portcullis_route_events_total{model="outage",event="budget_exhausted"} 10"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn timeouts_per_model_and_per_request() {
    let h = Harness::start_with(|c| {
        let mut m = model("slow", "up", "fault-delay-3000");
        m.timeouts = Some(ModelTimeouts {
            total: Some(Seconds(Duration::from_millis(800))),
            ..ModelTimeouts::default()
        });
        c.models.push(m);
    })
    .await;
    // The model's limit.
    let started = Instant::now();
    expect_error(h.chat("slow", false).await, 504, "upstream_timeout").await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");

    let send = |value: &'static str| {
        h.client
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&h.key)
            .header("x-portcullis-timeout", value)
            .json(&json!({"model": "slow", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    // Shorter on request.
    let started = Instant::now();
    expect_error(send("200ms").await.unwrap(), 504, "upstream_timeout").await;
    assert!(started.elapsed() < Duration::from_millis(700));
    // Longer is capped by the model's own limit without a policy maximum.
    let started = Instant::now();
    expect_error(send("60s").await.unwrap(), 504, "upstream_timeout").await;
    assert!(started.elapsed() < Duration::from_millis(2500));
    // Nonsense is refused, naming the header.
    let body = expect_error(send("soon").await.unwrap(), 400, "invalid_request").await;
    assert_eq!(body["error"]["param"], "x-portcullis-timeout");
}

#[tokio::test]
async fn conditional_routing_by_header_and_metadata() {
    let h = Harness::start_with_mock(|c, mock| {
        with_anthropic(c, mock);
        c.routing = vec![
            RoutingRule {
                model: "gpt-test".into(),
                when: RuleConditions {
                    header: [("X-Region".to_string(), "eu".to_string())].into(),
                    ..RuleConditions::default()
                },
                route_to: "claude-backup".into(),
            },
            RoutingRule {
                model: "gpt-test".into(),
                when: RuleConditions {
                    metadata: [("tier".to_string(), "batch".to_string())].into(),
                    ..RuleConditions::default()
                },
                route_to: "claude-backup".into(),
            },
        ];
    })
    .await;
    let r = h.chat("gpt-test", false).await;
    assert_eq!(header(&r, "x-portcullis-target"), Some("up/mock-gpt"));
    let r = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&h.key)
        .header("x-region", "eu")
        .json(&json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-portcullis-target"),
        Some("anthropic/claude-sonnet-4-5")
    );
    let r = h
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-test", "metadata": {"tier": "batch"},
                "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-portcullis-target"),
        Some("anthropic/claude-sonnet-4-5")
    );
    assert_eq!(
        paths(&h),
        ["/v1/chat/completions", "/v1/messages", "/v1/messages"]
    );
}
