//! `/metrics` on the admin listener after real requests through the in-process gateway:
//! the text parses with the strict Prometheus parser and counts what was sent.

mod common;

use common::Harness;
use portcullis_telemetry::metrics::parse::{parse, Exposition};
use std::time::{Duration, Instant};

async fn scrape(h: &Harness) -> Exposition {
    let r = h.client.get(h.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200, "public on the admin listener");
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.unwrap();
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Scrapes until `ready` holds (access lines are emitted as response bodies end).
async fn scrape_until(h: &Harness, ready: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let doc = scrape(h).await;
        if ready(&doc) || Instant::now() > deadline {
            return doc;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_count_requests_tokens_errors_and_rejections() {
    let h = Harness::start().await;
    let ok = h.chat("gpt-test", false).await;
    assert_eq!(ok.status(), 200);
    ok.text().await.unwrap();
    let streamed = h.chat("gpt-test", true).await;
    assert_eq!(streamed.status(), 200);
    streamed.text().await.unwrap();
    let unknown = h.chat("no-such-model-xyz", false).await;
    let unknown_status = unknown.status().as_u16();
    unknown.text().await.unwrap();
    let failed = h.chat("fault-status-500", false).await;
    let failed_status = failed.status().as_u16();
    failed.text().await.unwrap();
    let anonymous = h.client.get(h.url("/v1/models")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    // A policy allowing one request a minute: the second is a rate-limit rejection.
    let yaml = "version: 1\ndefault_team: eng\nteams:\n  eng:\n    models: [\"*\"]\n    \
                rate_limits: [one]\nrate_limits:\n  - { id: one, scope: team, requests: 1, interval: 1m }\n";
    h.apply_policy(yaml, false).await;
    assert_eq!(h.chat("gpt-test", false).await.status(), 200);
    assert_eq!(h.chat("gpt-test", false).await.status(), 429);

    let chat = ("route", "chat_completions");
    let requests = "portcullis_requests_total";
    let doc = scrape_until(&h, |d| {
        d.value(requests, &[chat, ("model", "gpt-test"), ("status", "429")]) == Some(1.0)
            && d.value(requests, &[("route", "models")]).is_some()
    })
    .await;
    let up = [
        chat,
        ("model", "gpt-test"),
        ("provider", "up"),
        ("status", "200"),
    ];
    assert_eq!(doc.value(requests, &up), Some(3.0));
    let unknown: Vec<_> = doc.samples(requests, &[chat, ("model", "other")]);
    assert_eq!(unknown.len(), 1, "unknown model -> `other`");
    assert_eq!(unknown_status, 404);
    assert_eq!(unknown[0].labels["status"], "404");
    assert_eq!(
        doc.value(
            requests,
            &[("route", "models"), ("model", "none"), ("status", "401")]
        ),
        Some(1.0)
    );
    assert_eq!(
        doc.value(
            requests,
            &[
                ("model", "fault-status-500"),
                ("status", &failed_status.to_string())
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        doc.value(
            "portcullis_upstream_errors_total",
            &[("class", "server_error"), ("provider", "up")]
        ),
        Some(1.0)
    );
    assert!(
        doc.value(
            "portcullis_tokens_total",
            &[("direction", "in"), ("model", "gpt-test")]
        )
        .unwrap()
            > 0.0
    );
    assert!(
        doc.value(
            "portcullis_tokens_total",
            &[("direction", "out"), ("model", "gpt-test")]
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        doc.value(
            "portcullis_time_to_first_token_seconds_count",
            &[("model", "gpt-test")]
        ),
        Some(1.0),
        "only the streamed request has a first token"
    );
    let total = doc
        .value("portcullis_request_duration_seconds_count", &[chat])
        .unwrap();
    assert_eq!(
        doc.value("portcullis_gateway_overhead_seconds_count", &[chat]),
        Some(total)
    );
    assert!(
        doc.value("portcullis_upstream_seconds_count", &[("provider", "up")])
            .unwrap()
            >= 4.0
    );
    assert_eq!(
        doc.value(
            "portcullis_rate_limit_rejections_total",
            &[("kind", "requests")]
        ),
        Some(1.0)
    );
    assert_eq!(
        doc.value("portcullis_budget_rejections_total", &[]),
        Some(0.0)
    );
    assert!(doc
        .value("portcullis_queue_depth", &[("queue", "usage")])
        .is_some());

    // Not on the data plane.
    let r = h.client.get(h.url("/metrics")).send().await.unwrap();
    assert_ne!(r.status(), 200);
}
