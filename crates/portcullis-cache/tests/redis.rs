//! The Redis backend against a real Redis at `PORTCULLIS_TEST_REDIS_URL` (skipped without
//! it, unless `PORTCULLIS_REQUIRE_SERVICES=1`, which makes the absence a failure).

use bytes::Bytes;
use portcullis_cache::{Cache, CacheBackend, CacheKey, Entry, EntryKind, RedisBackend};
use std::sync::Arc;
use std::time::Duration;

fn redis_url() -> Option<String> {
    match std::env::var("PORTCULLIS_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("PORTCULLIS_REQUIRE_SERVICES=1 but PORTCULLIS_TEST_REDIS_URL is not set");
            }
            println!("SKIPPED: Redis cache tests (PORTCULLIS_TEST_REDIS_URL not set)");
            None
        }
    }
}

fn unique_prefix(test: &str) -> String {
    let mut id = [0u8; 6];
    getrandom::fill(&mut id).unwrap();
    format!("portcullis-test:cache:{test}:{}:", hex(&id))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn entry(text: &'static str) -> Entry {
    Entry {
        kind: EntryKind::Stream,
        status: 200,
        body: Bytes::from_static(text.as_bytes()),
    }
}

#[tokio::test]
async fn entries_round_trip_expire_and_stay_apart() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("round-trip");
    let backend = RedisBackend::connect(&url, prefix.clone(), Duration::from_millis(500))
        .await
        .unwrap();
    let body = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
    let team_a = CacheKey::new("openai", "gpt", "team:a", body).unwrap();
    let team_b = CacheKey::new("openai", "gpt", "team:b", body).unwrap();
    assert_eq!(backend.get(&team_a).await.unwrap(), None);
    let e = entry("data: {}\n\ndata: [DONE]\n\n");
    backend
        .put(&team_a, e.clone(), Duration::from_millis(600))
        .await
        .unwrap();
    assert_eq!(backend.get(&team_a).await.unwrap(), Some(e.clone()));
    assert_eq!(
        backend.get(&team_b).await.unwrap(),
        None,
        "teams do not share"
    );

    // A second instance on the same Redis sees the entry.
    let other = RedisBackend::connect(&url, prefix.clone(), Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(other.get(&team_a).await.unwrap(), Some(e));

    // Redis expires it (real time: Redis has its own clock).
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(backend.get(&team_a).await.unwrap(), None, "expired");
}

#[tokio::test]
async fn the_facade_stores_in_the_background_and_an_unreachable_redis_is_a_miss() {
    let Some(url) = redis_url() else { return };
    let backend = RedisBackend::connect(&url, unique_prefix("facade"), Duration::from_millis(500))
        .await
        .unwrap();
    let cache = Cache::new(Arc::new(backend), Duration::from_secs(30), 1024);
    let key = CacheKey::new("openai", "gpt", "team:a", b"{}").unwrap();
    cache.put(key, entry("data: [DONE]\n\n"), Duration::from_secs(30));
    let mut found = None;
    for _ in 0..50 {
        found = cache.get(&key).await;
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(found, Some(entry("data: [DONE]\n\n")));
    // Too large or unsuccessful answers are not stored.
    let big = CacheKey::new("openai", "gpt", "team:a", b"{\"n\":1}").unwrap();
    cache.put(
        big,
        Entry {
            kind: EntryKind::Json,
            status: 200,
            body: Bytes::from(vec![b'x'; 2048]),
        },
        Duration::from_secs(30),
    );
    let failed = CacheKey::new("openai", "gpt", "team:a", b"{\"n\":2}").unwrap();
    cache.put(
        failed,
        Entry {
            kind: EntryKind::Json,
            status: 500,
            body: Bytes::from_static(b"{}"),
        },
        Duration::from_secs(30),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cache.get(&big).await, None);
    assert_eq!(cache.get(&failed).await, None);

    // Nothing listens on this port: connecting fails quickly, with an error (not a hang).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let started = std::time::Instant::now();
    assert!(
        RedisBackend::connect(&format!("redis://{addr}"), "x:", Duration::from_millis(100))
            .await
            .is_err()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}
