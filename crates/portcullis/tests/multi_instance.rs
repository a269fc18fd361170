//! Two real gateway processes with the same configuration (only the ports differ) sharing one
//! PostgreSQL store, one Redis and one mock upstream: a rate limit and a hard budget hold
//! across both, a policy change reaches both within the poll interval, and an unreachable
//! Redis stops the gateway at start.
//!
//! Needs `PORTCULLIS_TEST_POSTGRES_URL` and `PORTCULLIS_TEST_REDIS_URL`; skipped without them
//! (unless `PORTCULLIS_REQUIRE_SERVICES=1`). Each test gets a fresh PostgreSQL schema; the
//! server's Redis key prefix is fixed (`portcullis:`), so every limit and budget id carries a
//! per-test suffix and counters of different tests or runs never meet.

mod common;

use common::{closed_addr, poll_until, Gateway, Spec, Workdir, BIN};
use futures_util::future::join_all;
use portcullis_policy::document::parse_policy;
use portcullis_store::testing::{postgres_schema_url, PostgresSchemaGuard};
use portcullis_store::{Store, UsageQuery};
use portcullis_testkit::MockUpstream;
use std::time::{Duration, Instant};

const MODEL: &str = "gpt-test";

/// The service URLs, or None after printing the skip line.
fn services() -> Option<(String, String)> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (
        get("PORTCULLIS_TEST_POSTGRES_URL"),
        get("PORTCULLIS_TEST_REDIS_URL"),
    ) {
        (Some(pg), Some(redis)) => Some((pg, redis)),
        _ => {
            if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("multi-instance tests: PORTCULLIS_TEST_POSTGRES_URL / PORTCULLIS_TEST_REDIS_URL not set but PORTCULLIS_REQUIRE_SERVICES=1");
            }
            // Straight to the stderr handle so libtest's capture does not hide it.
            let line = "SKIPPED: multi-instance tests (PORTCULLIS_TEST_POSTGRES_URL / PORTCULLIS_TEST_REDIS_URL not set)\n";
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            None
        }
    }
}

/// Two gateways on one store, one Redis, one mock upstream.
struct Pair {
    gateways: [Gateway; 2],
    mock: MockUpstream,
    store: Store,
    schema: Option<PostgresSchemaGuard>,
}

impl Pair {
    /// Creates the schema, stores and activates `policy` (with `{s}` replaced by the
    /// per-test suffix) so both instances load it at start, then starts both.
    async fn start(policy: &str) -> Option<(Pair, i64)> {
        let (pg, redis) = services()?;
        let (url, schema) = postgres_schema_url(&pg).await.expect("create test schema");
        let store = Store::connect(&url).await.expect("connect the test schema");
        // Unique per test: appended to limit and budget ids (Redis counters are named by them).
        let suffix = schema.schema().rsplit('_').next().unwrap().to_string();
        let version = apply(&store, &policy.replace("{s}", &suffix)).await;
        let mock = MockUpstream::start().await;
        let body = format!(
            "redis:\n  url: {redis}\n  fail_mode: closed\nproviders:\n  - name: up\n    kind: openai-compatible\n    base_url: {}\n    api_key: sk-multi-instance-0123456789\nmodels:\n  - name: {MODEL}\n    provider: up\n    upstream_model: mock-gpt\n    price: {{ input_per_mtok: 100, output_per_mtok: 100 }}\n",
            mock.base_url()
        );
        let spec = Spec::new(body).store(&url);
        let (a, b) = tokio::join!(Gateway::start(spec.clone()), Gateway::start(spec));
        let pair = Pair {
            gateways: [a, b],
            mock,
            store,
            schema: Some(schema),
        };
        Some((pair, version))
    }

    /// A key made with the CLI of instance 0, once both instances accept it.
    async fn key(&self) -> String {
        let key = self.gateways[0].create_key("shared", &[]);
        for gw in &self.gateways {
            let ok = poll_until(Duration::from_secs(3), || async {
                gw.client
                    .get(gw.url("/v1/models"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await;
            assert!(
                ok.is_some(),
                "instance {} never accepted the key",
                gw.data_addr
            );
        }
        key
    }

    /// Sends `n` requests at once, alternating between the instances; (status, headers,
    /// body) of each.
    async fn burst(&self, key: &str, n: usize, body: &serde_json::Value) -> Vec<Reply> {
        join_all((0..n).map(|i| async move {
            let r = self.gateways[i % 2].chat(key, body.clone()).await;
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            Reply {
                status,
                headers,
                body,
            }
        }))
        .await
    }

    async fn finish(mut self) {
        for gw in &mut self.gateways {
            gw.kill();
        }
        self.store.close().await;
        if let Some(schema) = self.schema.take() {
            schema.drop_schema().await.expect("drop test schema");
        }
    }
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: serde_json::Value,
}

/// Appends and activates a policy version; returns its number.
async fn apply(store: &Store, yaml: &str) -> i64 {
    let validated = parse_policy(yaml).expect("test policy must be valid");
    let version = store
        .append_policy_version(yaml, &validated.hash, "multi-instance test", "", 0)
        .await
        .expect("append policy");
    store
        .activate_policy(version)
        .await
        .expect("activate policy");
    version
}

fn chat_body(max_tokens: u64) -> serde_json::Value {
    serde_json::json!({"model": MODEL, "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "hello there gateway friend"}]})
}

const LIMIT: usize = 25;

#[tokio::test]
async fn a_rate_limit_holds_exactly_across_two_instances() {
    // 25 per hour rather than per minute: GCRA refills one request every interval/limit
    // (2.4 s for a minute), which a slow burst could see; an hour makes "exactly 25" exact.
    let policy = format!(
        "version: 1\ndefault_team: eng\nteams:\n  eng:\n    models: [\"{MODEL}\"]\n    rate_limits: [rpm-{{s}}]\nrate_limits:\n  - {{ id: rpm-{{s}}, scope: team, requests: {LIMIT}, interval: 1h }}\n"
    );
    let Some((pair, _)) = Pair::start(&policy).await else {
        return;
    };
    let key = pair.key().await;
    pair.mock.clear_requests();
    let started = Instant::now();
    // A first wave well under the limit (5 per instance) makes sure both instances take
    // part whatever the scheduler does; the second, concurrent wave crosses the limit.
    let mut replies = pair.burst(&key, 10, &chat_body(4)).await;
    replies.extend(pair.burst(&key, 90, &chat_body(4)).await);
    let took = started.elapsed();
    let ok: Vec<usize> = (0..replies.len())
        .filter(|i| replies[*i].status == 200)
        .collect();
    let per_instance = [0, 1].map(|g| ok.iter().filter(|i| *i % 2 == g).count());
    eprintln!(
        "rate limit: {} of 100 succeeded in {took:?} (instance A {}, B {})",
        ok.len(),
        per_instance[0],
        per_instance[1]
    );
    for r in &replies {
        match r.status {
            200 => assert_eq!(r.headers["x-ratelimit-limit-requests"], "25"),
            429 => {
                assert_eq!(r.body["error"]["code"], "rate_limit_exceeded", "{}", r.body);
                let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=3600).contains(&retry), "Retry-After {retry}");
                assert_eq!(r.headers["x-ratelimit-remaining-requests"], "0");
            }
            other => panic!("unexpected status {other}: {}", r.body),
        }
    }
    assert_eq!(ok.len(), LIMIT, "exactly the limit passes across both");
    assert_eq!(
        pair.mock.request_count(),
        LIMIT,
        "the upstream saw only those"
    );
    assert!(
        per_instance.iter().all(|n| *n > 0),
        "both instances served some: {per_instance:?}"
    );
    pair.finish().await;
}

#[tokio::test]
async fn a_hard_budget_is_not_overspent_by_concurrent_requests_on_two_instances() {
    // 100 $/Mtok = 100 micro-dollars a token. max_tokens 16 makes the reserved estimate at
    // least the actual cost (the mock answers ~8 completion tokens whatever max_tokens says).
    const BUDGET_MICROS: i64 = 30_000;
    let policy = "version: 1\ndefault_team: eng\nteams:\n  eng:\n    models: [\"gpt-test\"]\n    budgets: [day-{s}]\nbudgets:\n  - { id: day-{s}, scope: team, period: day, usd: 0.03, mode: hard }\n";
    let Some((pair, _)) = Pair::start(policy).await else {
        return;
    };
    let key = pair.key().await;
    pair.mock.clear_requests();
    let mut ok = 0usize;
    let mut waves = Vec::new();
    for _ in 0..10 {
        let replies = pair.burst(&key, 24, &chat_body(16)).await;
        let wave_ok = replies.iter().filter(|r| r.status == 200).count();
        for r in replies.iter().filter(|r| r.status != 200) {
            assert_eq!(r.status, 429, "{}", r.body);
            assert_eq!(r.body["error"]["code"], "budget_exceeded", "{}", r.body);
        }
        ok += wave_ok;
        waves.push(wave_ok);
        if wave_ok == 0 {
            break;
        }
    }
    assert_eq!(waves.last(), Some(&0), "the budget must run out: {waves:?}");
    assert_eq!(pair.mock.request_count(), ok);

    // Usage records reach the store through each instance's batch writer.
    let query = UsageQuery {
        team: None,
        key_id: None,
        since: 0,
        until: i64::MAX,
    };
    let started = Instant::now();
    let rows = loop {
        let rows = pair
            .store
            .usage_summary(&query)
            .await
            .expect("usage summary");
        if rows.iter().map(|r| r.requests).sum::<i64>() as usize >= ok {
            break rows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "usage of {ok} requests never recorded: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let requests: i64 = rows.iter().map(|r| r.requests).sum();
    let spent: i64 = rows.iter().map(|r| r.cost_micros).sum();
    assert_eq!(
        requests as usize, ok,
        "refused requests record nothing: {rows:?}"
    );
    let per_request = spent / requests;
    eprintln!(
        "budget: waves of 24 -> successes {waves:?}; {ok} calls, {spent} of {BUDGET_MICROS} micro-USD spent ({per_request} per call)"
    );
    assert!(
        spent <= BUDGET_MICROS + per_request,
        "overspent by more than one request: {spent} > {BUDGET_MICROS} + {per_request}"
    );
    assert!(
        spent >= BUDGET_MICROS / 2,
        "the budget should be mostly used: {spent}"
    );
    pair.finish().await;
}

/// Time until every instance answers `want` for the model (polling each every 20 ms).
async fn until_all(pair: &Pair, key: &str, want: u16) -> Duration {
    let started = Instant::now();
    let each = join_all(
        pair.gateways
            .iter()
            .map(|gw| gw.poll_chat_status(key, MODEL, want, Duration::from_secs(5))),
    )
    .await;
    for (gw, r) in pair.gateways.iter().zip(&each) {
        assert!(r.is_some(), "{} never answered {want}", gw.data_addr);
    }
    started.elapsed()
}

#[tokio::test]
async fn a_policy_change_and_its_rollback_reach_both_instances_within_a_second() {
    let allow =
        "version: 1\ndefault_team: eng\nteams:\n  eng:\n    models: [\"gpt-test\", \"mock-*\"]\n";
    let deny = allow.replace(r#"["gpt-test", "mock-*"]"#, r#"["mock-*"]"#);
    let Some((pair, allowed)) = Pair::start(allow).await else {
        return;
    };
    let key = pair.key().await;
    for gw in &pair.gateways {
        assert_eq!(gw.simple_chat(&key, MODEL).await.0, 200);
    }

    apply(&pair.store, &deny).await;
    let to_deny = until_all(&pair, &key, 403).await;
    for gw in &pair.gateways {
        let (status, body) = gw.simple_chat(&key, MODEL).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "policy_denied", "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("teams.eng.models"));
    }

    pair.store
        .activate_policy(allowed)
        .await
        .expect("roll back");
    let to_allow = until_all(&pair, &key, 200).await;
    eprintln!("propagation to both instances: apply {to_deny:?}, rollback {to_allow:?}");
    assert!(
        to_deny < Duration::from_millis(1500),
        "apply took {to_deny:?}"
    );
    assert!(
        to_allow < Duration::from_millis(1500),
        "rollback took {to_allow:?}"
    );
    pair.finish().await;
}

/// With Redis unreachable at start, the gateway exits with an error naming Redis (in both
/// fail modes: the fail mode governs limit checks of a running gateway, not startup).
/// Redis going away while the gateway runs is not simulated here (it would need a Redis
/// this test owns and can stop); the limiter's fail modes are unit-tested in
/// portcullis-policy.
#[tokio::test]
async fn an_unreachable_redis_stops_the_gateway_at_start() {
    let dir = Workdir::new();
    let config = dir.write(
        "portcullis.yaml",
        format!(
            "server:\n  listen: 127.0.0.1:{}\n  admin_listen: 127.0.0.1:{}\nstore:\n  url: {}\nredis:\n  url: redis://{}\n  fail_mode: closed\nproviders:\n  - name: mock\n    kind: mock\nmodels:\n  - name: mock-echo\n    provider: mock\n",
            common::free_port(),
            common::free_port(),
            dir.store_url(),
            closed_addr()
        ),
    );
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn portcullis serve");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gateway kept running with Redis unreachable");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    eprintln!(
        "exit after {:?}: {status}; stderr: {stderr}",
        started.elapsed()
    );
    assert!(!status.success(), "must exit with failure: {status}");
    assert!(
        stderr.contains("cannot connect to Redis") && stderr.contains("redis.url"),
        "the error names Redis and the setting to fix: {stderr}"
    );
}
