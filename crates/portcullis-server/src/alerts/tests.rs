//! Every rule fires on synthetic traffic and deduplicates; time is explicit (virtual).

use super::engine::{Engine, Observation, Settings, MAX_SUBJECTS};
use portcullis_config::AlertRules;
use portcullis_telemetry::metrics::AlertRule;
use std::net::IpAddr;
use std::sync::Arc;

const SEC: u64 = 1000;
const DEDUP: u64 = 900 * SEC;

fn engine() -> Engine {
    let mut rules = AlertRules::default();
    rules.auth_failures.count = 5;
    rules.rate_limit_storm.count = 10;
    rules.token_spike.warmup = 5;
    rules.token_spike.min_tokens = 500;
    rules.spend_spike.warmup = 3;
    Engine::new(Settings {
        rules,
        dedup_ms: DEDUP,
    })
}

fn obs(ip: &str, key: Option<&str>, status: u16) -> Observation {
    Observation {
        ip: Some(ip.parse::<IpAddr>().unwrap()),
        key_id: key.map(Arc::from),
        status,
        tokens: 0,
        cost_micros: 0,
    }
}

/// (rule, subject, raised) of everything fired.
type Seen = Vec<(AlertRule, String, bool)>;

fn feed(e: &mut Engine, now: u64, o: &Observation) -> Seen {
    e.observe(now, o)
        .into_iter()
        .map(|f| (f.rule, f.subject, f.raised))
        .collect()
}

#[test]
fn auth_failure_bursts_per_ip_and_key() {
    let mut e = engine();
    let o = obs("203.0.113.7", None, 401);
    let mut fired = Seen::new();
    for i in 0..4 {
        fired.extend(feed(&mut e, i * SEC, &o));
    }
    assert!(fired.is_empty(), "4 failures are below the threshold of 5");
    let fifth = feed(&mut e, 4 * SEC, &o);
    assert_eq!(
        fifth,
        vec![(AlertRule::AuthFailures, "ip:203.0.113.7".into(), true)]
    );
    // The next burst within the dedup window is a repeat, not a new alert.
    let mut again = Seen::new();
    for i in 0..5 {
        again.extend(feed(&mut e, (10 + i) * SEC, &o));
    }
    assert_eq!(
        again,
        vec![(AlertRule::AuthFailures, "ip:203.0.113.7".into(), false)]
    );
    // After the dedup window a burst raises again.
    let mut later = Seen::new();
    for i in 0..5 {
        later.extend(feed(&mut e, DEDUP + (20 + i) * SEC, &o));
    }
    assert_eq!(later.len(), 1);
    assert!(later[0].2, "raised anew after the window");
}

#[test]
fn auth_failures_spread_beyond_the_window_do_not_fire() {
    let mut e = engine();
    let o = obs("203.0.113.8", None, 403);
    let mut fired = Seen::new();
    // One failure every 15 s: never 5 within 60 s.
    for i in 0..20 {
        fired.extend(feed(&mut e, i * 15 * SEC, &o));
    }
    assert!(fired.is_empty(), "{fired:?}");
    // Successes never count.
    for i in 0..50 {
        fired.extend(feed(
            &mut e,
            400 * SEC + i,
            &obs("203.0.113.8", Some("k"), 200),
        ));
    }
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn forbidden_calls_of_one_key_from_many_ips() {
    let mut e = engine();
    let mut fired = Seen::new();
    for i in 0..5u64 {
        let ip = format!("198.51.100.{i}");
        fired.extend(feed(&mut e, i * SEC, &obs(&ip, Some("key_x"), 403)));
    }
    assert_eq!(
        fired,
        vec![(AlertRule::AuthFailures, "key:key_x".into(), true)]
    );
}

#[test]
fn a_key_from_a_new_network() {
    let mut e = engine();
    let key = Some("key_n");
    // The first network of a key is learnt silently; the same /24 is known.
    assert!(feed(&mut e, 0, &obs("192.0.2.10", key, 200)).is_empty());
    assert!(feed(&mut e, SEC, &obs("192.0.2.99", key, 200)).is_empty());
    let f = e.observe(2 * SEC, &obs("198.51.100.4", key, 200));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, AlertRule::NewNetwork);
    assert_eq!(f[0].subject, "key:key_n");
    assert!(f[0].raised);
    assert_eq!(f[0].detail["network"], "198.51.100.0/24");
    assert_eq!(f[0].detail["known_networks"][0], "192.0.2.0/24");
    // Another new network within the window: a repeat.
    let again = feed(&mut e, 3 * SEC, &obs("203.0.113.1", key, 200));
    assert_eq!(
        again,
        vec![(AlertRule::NewNetwork, "key:key_n".into(), false)]
    );
    // Known networks stay quiet; failed requests do not teach networks.
    assert!(feed(&mut e, 4 * SEC, &obs("198.51.100.200", key, 200)).is_empty());
    assert!(feed(&mut e, 5 * SEC, &obs("100.64.0.1", key, 401)).is_empty());
    // IPv6 is grouped by /64.
    let v6 = Some("key_v6");
    assert!(feed(&mut e, 0, &obs("2001:db8:1:2::1", v6, 200)).is_empty());
    assert!(feed(&mut e, SEC, &obs("2001:db8:1:2:ffff::9", v6, 200)).is_empty());
    let f = e.observe(2 * SEC, &obs("2001:db8:1:3::1", v6, 200));
    assert_eq!(f[0].detail["network"], "2001:db8:1:3::/64");
}

#[test]
fn tokens_far_above_the_keys_own_average() {
    let mut e = engine();
    let key = Some("key_t");
    let mut o = obs("192.0.2.1", key, 200);
    let mut fired = Seen::new();
    for i in 0..10 {
        o.tokens = 100 + i;
        fired.extend(feed(&mut e, i * SEC, &o));
    }
    assert!(fired.is_empty());
    // 5x the ~105-token average: below the factor 10.
    o.tokens = 520;
    assert!(feed(&mut e, 11 * SEC, &o).is_empty());
    o.tokens = 5_000;
    let f = e.observe(12 * SEC, &o);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].rule, f[0].raised), (AlertRule::TokenSpike, true));
    assert_eq!(f[0].detail["tokens"], 5000);
    // The spike does not move the baseline: the next one is a repeat.
    assert_eq!(
        feed(&mut e, 13 * SEC, &o),
        vec![(AlertRule::TokenSpike, "key:key_t".into(), false)]
    );
    // Before warm-up nothing fires, however large.
    let mut fresh = obs("192.0.2.1", Some("key_new"), 200);
    fresh.tokens = 10;
    assert!(feed(&mut e, 0, &fresh).is_empty());
    fresh.tokens = 100_000;
    assert!(feed(&mut e, SEC, &fresh).is_empty());
}

#[test]
fn rate_limit_storms() {
    let mut e = engine();
    let mut fired = Seen::new();
    for i in 0..9 {
        fired.extend(feed(&mut e, i * 100, &obs("192.0.2.1", Some("key_r"), 429)));
    }
    assert!(fired.is_empty());
    fired.extend(feed(&mut e, 1_000, &obs("192.0.2.1", Some("key_r"), 429)));
    assert_eq!(
        fired,
        vec![(AlertRule::RateLimitStorm, "key:key_r".into(), true)]
    );
    // Unauthenticated 429s count per IP.
    let mut by_ip = Seen::new();
    for i in 0..10 {
        by_ip.extend(feed(&mut e, i, &obs("192.0.2.2", None, 429)));
    }
    assert_eq!(
        by_ip,
        vec![(AlertRule::RateLimitStorm, "ip:192.0.2.2".into(), true)]
    );
}

#[test]
fn spend_spikes_against_the_keys_windows() {
    let mut e = engine();
    let window = 300 * SEC;
    let key = Some("key_s");
    let mut o = obs("192.0.2.1", key, 200);
    let mut fired = Seen::new();
    // Four windows of $0.50 each.
    for w in 0..4u64 {
        for r in 0..5u64 {
            o.cost_micros = 100_000;
            fired.extend(feed(&mut e, w * window + r * SEC, &o));
        }
    }
    assert!(fired.is_empty(), "{fired:?}");
    // Fifth window: $3 (6x the average, above $1).
    o.cost_micros = 1_000_000;
    let mut spike = Seen::new();
    for r in 0..3u64 {
        spike.extend(feed(&mut e, 4 * window + r * SEC, &o));
    }
    assert_eq!(
        spike,
        vec![(AlertRule::SpendSpike, "key:key_s".into(), true)],
        "fires once per window"
    );
    // The next window spikes again: a repeat within the dedup window.
    let mut next = Seen::new();
    for r in 0..6u64 {
        next.extend(feed(&mut e, 5 * window + r * SEC, &o));
    }
    assert_eq!(
        next,
        vec![(AlertRule::SpendSpike, "key:key_s".into(), false)]
    );
}

#[test]
fn disabled_rules_stay_quiet() {
    let mut rules = AlertRules::default();
    rules.auth_failures.enabled = false;
    rules.auth_failures.count = 1;
    rules.new_network.enabled = false;
    let mut e = Engine::new(Settings {
        rules,
        dedup_ms: DEDUP,
    });
    assert!(feed(&mut e, 0, &obs("192.0.2.1", None, 401)).is_empty());
    assert!(feed(&mut e, 0, &obs("192.0.2.1", Some("k"), 200)).is_empty());
    assert!(feed(&mut e, 1, &obs("198.51.100.1", Some("k"), 200)).is_empty());
}

#[test]
fn tables_are_bounded() {
    let mut e = engine();
    for i in 0..(MAX_SUBJECTS as u32 + 500) {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
        e.observe(0, &obs(&ip, None, 401));
    }
    assert_eq!(e.tracked(), MAX_SUBJECTS);
    // Once the old subjects are idle past the window, new ones are tracked again.
    e.observe(120 * SEC, &obs("192.0.2.250", None, 401));
    assert_eq!(e.tracked(), 1);
}

#[tokio::test]
async fn a_stuck_webhook_cannot_hold_shutdown() {
    // A receiver that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let hook = super::webhook::start(url, std::time::Duration::from_secs(60));
    for i in 0..3 {
        hook.send(serde_json::json!({ "n": i }));
    }
    let started = tokio::time::Instant::now();
    hook.shutdown().await;
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(5) && waited < std::time::Duration::from_secs(8),
        "shutdown waited {waited:?}: bounded by its grace, not 3 x 3 x 60 s"
    );
}
