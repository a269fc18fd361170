//! The metrics registry rendered and parsed back with the strict text-format parser:
//! values, histogram buckets, label escaping, and the cardinality bound.

use portcullis_telemetry::metrics::parse::parse;
use portcullis_telemetry::metrics::{
    BreakerState, FailMode, GuardrailAction, Metrics, Queue, RateLimitKind, RequestSample, Route,
    ShadowKind, UpstreamErrorClass, DYNAMIC_CAPACITY,
};
use std::time::Duration;

fn sample(model: &str, status: u16) -> RequestSample<'_> {
    RequestSample {
        route: Route::ChatCompletions,
        model: Some(model),
        provider: Some("openai"),
        status,
        total: Duration::from_millis(120),
        upstream: Some(Duration::from_millis(100)),
        first_token: Some(Duration::from_millis(40)),
        tokens_in: 10,
        tokens_out: 5,
        upstream_error: None,
    }
}

#[test]
fn renders_parseable_values() {
    let m = Metrics::new(["gpt-4o", "we\"ird\\model"], ["openai", "anthropic"]);
    for _ in 0..2 {
        m.record_request(&sample("gpt-4o", 200));
        m.record_cost(Some("gpt-4o"), Some("eng"), 7);
    }
    m.record_cost(Some("gpt-4o"), Some("eng"), 7);
    m.record_cost(Some("gpt-4o"), None, 0);
    m.record_request(&sample("we\"ird\\model", 201));
    let mut failed = sample("gpt-4o", 504);
    failed.upstream_error = UpstreamErrorClass::from_error_code("upstream_timeout");
    failed.first_token = None;
    m.record_request(&failed);
    m.record_request(&RequestSample {
        route: Route::from_path("/v1/models"),
        model: None,
        provider: None,
        status: 401,
        total: Duration::from_micros(50),
        upstream: None,
        first_token: None,
        tokens_in: 0,
        tokens_out: 0,
        upstream_error: None,
    });
    m.rate_limit_rejected(RateLimitKind::Tokens);
    m.budget_rejected();
    m.guardrail_action("pii.email", GuardrailAction::Redact);
    m.set_breaker_state("openai", BreakerState::Open);
    m.set_queue(Queue::Usage, 3, 2);
    m.shadow_difference(ShadowKind::NewlyDenied);
    m.limiter_fail_mode(FailMode::Closed);
    m.cache_hit();

    let text = m.render();
    let doc = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let v = |name: &str, labels: &[(&str, &str)]| doc.value(name, labels);
    let chat = ("route", "chat_completions");
    assert_eq!(
        v(
            "portcullis_requests_total",
            &[
                chat,
                ("model", "gpt-4o"),
                ("provider", "openai"),
                ("status", "200")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        v(
            "portcullis_requests_total",
            &[("model", "we\"ird\\model"), ("status", "2xx")]
        ),
        Some(1.0),
        "escaped label round-trips; 201 is a class"
    );
    assert_eq!(
        v(
            "portcullis_requests_total",
            &[("route", "models"), ("model", "none"), ("status", "401")]
        ),
        Some(1.0)
    );
    assert_eq!(doc.families["portcullis_requests_total"].kind, "counter");
    assert_eq!(
        doc.families["portcullis_request_duration_seconds"].kind,
        "histogram"
    );
    assert_eq!(
        v("portcullis_request_duration_seconds_count", &[chat]),
        Some(4.0)
    );
    let sum = v("portcullis_request_duration_seconds_sum", &[chat]).unwrap();
    assert!((sum - 0.48).abs() < 1e-9, "{sum}");
    assert_eq!(
        v(
            "portcullis_request_duration_seconds_bucket",
            &[chat, ("le", "0.1")]
        ),
        Some(0.0)
    );
    assert_eq!(
        v(
            "portcullis_request_duration_seconds_bucket",
            &[chat, ("le", "0.25")]
        ),
        Some(4.0)
    );
    assert_eq!(
        v(
            "portcullis_request_duration_seconds_bucket",
            &[chat, ("le", "+Inf")]
        ),
        Some(4.0)
    );
    // Overhead = total - upstream = 20 ms each.
    assert_eq!(
        v(
            "portcullis_gateway_overhead_seconds_bucket",
            &[chat, ("le", "0.025")]
        ),
        Some(4.0)
    );
    assert_eq!(
        v(
            "portcullis_gateway_overhead_seconds_bucket",
            &[chat, ("le", "0.01")]
        ),
        Some(0.0)
    );
    assert_eq!(
        v(
            "portcullis_upstream_seconds_count",
            &[("provider", "openai")]
        ),
        Some(4.0)
    );
    assert_eq!(
        v(
            "portcullis_time_to_first_token_seconds_count",
            &[("model", "gpt-4o")]
        ),
        Some(2.0)
    );
    assert_eq!(
        v(
            "portcullis_tokens_total",
            &[("direction", "in"), ("model", "gpt-4o")]
        ),
        Some(30.0)
    );
    assert_eq!(
        v(
            "portcullis_tokens_total",
            &[("direction", "out"), ("model", "gpt-4o")]
        ),
        Some(15.0)
    );
    assert_eq!(
        v(
            "portcullis_cost_usd_micros_total",
            &[("model", "gpt-4o"), ("team", "eng")]
        ),
        Some(21.0)
    );
    assert_eq!(v("portcullis_cache_hits_total", &[]), Some(1.0));
    assert_eq!(
        v(
            "portcullis_rate_limit_rejections_total",
            &[("kind", "tokens")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "portcullis_rate_limit_rejections_total",
            &[("kind", "requests")]
        ),
        Some(0.0)
    );
    assert_eq!(v("portcullis_budget_rejections_total", &[]), Some(1.0));
    assert_eq!(
        v(
            "portcullis_guardrail_actions_total",
            &[("rule", "pii.email"), ("action", "redact")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "portcullis_upstream_errors_total",
            &[("class", "timeout"), ("provider", "openai")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v("portcullis_breaker_state", &[("target", "openai")]),
        Some(2.0)
    );
    assert_eq!(
        v("portcullis_queue_depth", &[("queue", "usage")]),
        Some(3.0)
    );
    assert_eq!(
        v("portcullis_queue_dropped_total", &[("queue", "usage")]),
        Some(2.0)
    );
    assert_eq!(
        v(
            "portcullis_shadow_differences_total",
            &[("kind", "newly_denied")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v("portcullis_limiter_fail_mode_total", &[("mode", "closed")]),
        Some(1.0)
    );
    assert!(doc.families.values().all(|f| f.help.is_some()));
}

#[test]
fn unknown_names_collapse_into_one_other_series() {
    let m = Metrics::new(["gpt-4o"], ["openai"]);
    for i in 0..10_000 {
        let name = format!("unknown-model-{i}");
        let team = format!("team-{i}");
        m.record_request(&sample(&name, 200));
        m.record_cost(Some(&name), Some(&team), 7);
        m.guardrail_action(&format!("rule-{i}"), GuardrailAction::Block);
    }
    let doc = parse(&m.render()).unwrap();
    let requests = doc.samples("portcullis_requests_total", &[]);
    assert_eq!(requests.len(), 1, "one series for every unknown model");
    assert_eq!(requests[0].labels["model"], "other");
    assert_eq!(requests[0].value, 10_000.0);
    let ttft = doc.samples("portcullis_time_to_first_token_seconds_count", &[]);
    assert_eq!(ttft.len(), 1);
    let cost = doc.samples("portcullis_cost_usd_micros_total", &[]);
    assert_eq!(
        cost.len(),
        DYNAMIC_CAPACITY + 1,
        "first teams, then `other`"
    );
    assert_eq!(
        doc.value("portcullis_cost_usd_micros_total", &[("team", "other")]),
        Some(((10_000 - DYNAMIC_CAPACITY) * 7) as f64)
    );
    let rules = doc.samples("portcullis_guardrail_actions_total", &[]);
    assert_eq!(rules.len(), DYNAMIC_CAPACITY + 1);
}

#[test]
fn parser_is_strict() {
    for bad in [
        "x 1\n",                                                          // no TYPE
        "# TYPE x counter\nx{a=\"b} 1\n",                                 // unterminated
        "# TYPE x counter\nx{a=\"\\q\"} 1\n",                             // bad escape
        "# TYPE x counter\nx 1\nx 2\n",                                   // duplicate
        "# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\n# TYPE x counter\n", // split family
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
        "# TYPE x counter\nx one\n",
    ] {
        assert!(parse(bad).is_err(), "accepted: {bad:?}");
    }
}
