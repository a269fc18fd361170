//! The anomaly rules over finished requests: pure state machines driven by explicit time
//! (milliseconds on any monotonic clock), so tests run them in virtual time.
//!
//! Rules: bursts of 401/403 per client IP and per key, a key used from a network (/24 or
//! /64) not seen before for it, tokens of a request far above the key's own EWMA, 429
//! storms per key (or IP), and a key's spend per window far above its own EWMA.
//! Deduplication: the same rule and subject within the window raise once; later
//! occurrences are reported as repeats (counted, not re-sent).
//!
//! Memory is bounded: each table holds at most [`MAX_SUBJECTS`] subjects; when full, idle
//! subjects are pruned, and new subjects are not tracked until there is room.

use portcullis_config::AlertRules;
use portcullis_telemetry::metrics::AlertRule;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

/// Subjects tracked per table at most.
pub const MAX_SUBJECTS: usize = 20_000;
/// Networks remembered per key at most (the oldest is forgotten first).
const MAX_NETWORKS_PER_KEY: usize = 32;
/// Weight of the newest value in a moving average.
const EWMA_ALPHA: f64 = 0.1;

/// One finished request, as the access log saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Client address.
    pub ip: Option<IpAddr>,
    /// Authenticated key, when there was one.
    pub key_id: Option<Arc<str>>,
    /// Final status.
    pub status: u16,
    /// Prompt + completion tokens.
    pub tokens: u64,
    /// Cost in micro-USD (0 when the model has no price).
    pub cost_micros: u64,
}

/// An alert occurrence produced by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// Rule that fired.
    pub rule: AlertRule,
    /// `ip:...` or `key:...`.
    pub subject: String,
    /// The key involved.
    pub key_id: Option<String>,
    /// One line for people.
    pub message: String,
    /// Numbers behind it.
    pub detail: Value,
    /// True for the first occurrence in the deduplication window; false for a repeat.
    pub raised: bool,
}

/// Severity of each rule's alerts.
pub fn severity(rule: AlertRule) -> &'static str {
    match rule {
        AlertRule::AuthFailures | AlertRule::NewNetwork => "high",
        AlertRule::TokenSpike | AlertRule::SpendSpike => "medium",
        AlertRule::RateLimitStorm => "low",
    }
}

/// Thresholds in engine units.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configured rules.
    pub rules: AlertRules,
    /// Deduplication window, ms.
    pub dedup_ms: u64,
}

/// Event times within a sliding window, capped at the burst size.
#[derive(Default)]
struct Burst {
    times: VecDeque<u64>,
}

impl Burst {
    /// Records an event; true when `count` events fall within `window_ms` (then resets,
    /// so the next alert needs a new burst).
    fn hit(&mut self, now: u64, count: u32, window_ms: u64) -> bool {
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= window_ms)
        {
            self.times.pop_front();
        }
        self.times.push_back(now);
        if self.times.len() >= count as usize {
            self.times.clear();
            return true;
        }
        false
    }
}

/// Exponentially weighted moving average with a sample count.
#[derive(Default, Clone, Copy)]
struct Ewma {
    mean: f64,
    samples: u32,
}

impl Ewma {
    fn add(&mut self, v: f64) {
        self.mean = if self.samples == 0 {
            v
        } else {
            self.mean + EWMA_ALPHA * (v - self.mean)
        };
        self.samples = self.samples.saturating_add(1);
    }
}

/// Per-key spend: the open window and the average of closed windows.
#[derive(Default)]
struct Spend {
    window_start: u64,
    sum: u64,
    fired: bool,
    baseline: Ewma,
}

/// A table of per-subject state with bounded size.
struct Table<T> {
    map: HashMap<String, (u64, T)>,
    pruned_at: u64,
}

impl<T: Default> Table<T> {
    fn new() -> Table<T> {
        Table {
            map: HashMap::new(),
            pruned_at: 0,
        }
    }

    /// The state of `subject`, created if there is room; `idle_ms` decides what can be pruned.
    fn entry(&mut self, subject: &str, now: u64, idle_ms: u64) -> Option<&mut T> {
        if !self.map.contains_key(subject) {
            // Pruning walks the table: at most once a second.
            if self.map.len() >= MAX_SUBJECTS && now.saturating_sub(self.pruned_at) >= 1000 {
                self.map
                    .retain(|_, (seen, _)| now.saturating_sub(*seen) < idle_ms);
                self.pruned_at = now;
            }
            if self.map.len() >= MAX_SUBJECTS {
                return None;
            }
            self.map.insert(subject.to_string(), (now, T::default()));
        }
        let (seen, state) = self.map.get_mut(subject)?;
        *seen = now;
        Some(state)
    }
}

/// The rule engine.
pub struct Engine {
    settings: Settings,
    auth: Table<Burst>,
    storms: Table<Burst>,
    networks: Table<Vec<Network>>,
    tokens: Table<Ewma>,
    spend: Table<Spend>,
    open: HashMap<(AlertRule, String), u64>,
}

/// A /24 (IPv4) or /64 (IPv6) network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    V4([u8; 3]),
    V6([u16; 4]),
}

impl Network {
    fn of(ip: IpAddr) -> Network {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Network::V4([o[0], o[1], o[2]])
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Network::of(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Network::V6([s[0], s[1], s[2], s[3]])
                }
            },
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Network::V4([a, b, c]) => write!(f, "{a}.{b}.{c}.0/24"),
            Network::V6([a, b, c, d]) => write!(f, "{a:x}:{b:x}:{c:x}:{d:x}::/64"),
        }
    }
}

/// How long per-subject state of the long-memory rules is kept when the table is full.
const LONG_IDLE_MS: u64 = 24 * 3600 * 1000;

impl Engine {
    /// An engine with these thresholds.
    pub fn new(settings: Settings) -> Engine {
        Engine {
            settings,
            auth: Table::new(),
            storms: Table::new(),
            networks: Table::new(),
            tokens: Table::new(),
            spend: Table::new(),
            open: HashMap::new(),
        }
    }

    /// Feeds one finished request observed at `now` (ms); returns the alerts it caused.
    pub fn observe(&mut self, now: u64, o: &Observation) -> Vec<Fired> {
        let mut out = Vec::new();
        let key = o.key_id.as_deref();
        if matches!(o.status, 401 | 403) {
            self.auth_failure(now, o, &mut out);
        }
        if o.status == 429 {
            self.storm(now, o, &mut out);
        }
        if let (Some(key), Some(ip), true) = (key, o.ip, o.status < 400) {
            self.new_network(now, key, ip, &mut out);
        }
        if let (Some(key), true) = (key, o.status < 400) {
            self.token_spike(now, key, o.tokens, &mut out);
            self.spend(now, key, o.cost_micros, &mut out);
        }
        out
    }

    /// Sets `f.raised` by the deduplication window and emits it.
    fn fire(&mut self, now: u64, mut f: Fired, out: &mut Vec<Fired>) {
        let dedup = self.settings.dedup_ms;
        let slot = (f.rule, f.subject.clone());
        f.raised = match self.open.get(&slot) {
            Some(first) if now.saturating_sub(*first) < dedup => false,
            _ => {
                if self.open.len() >= MAX_SUBJECTS {
                    self.open
                        .retain(|_, first| now.saturating_sub(*first) < dedup);
                }
                self.open.insert(slot, now);
                true
            }
        };
        out.push(f);
    }

    fn auth_failure(&mut self, now: u64, o: &Observation, out: &mut Vec<Fired>) {
        let rule = self.settings.rules.auth_failures.clone();
        if !rule.enabled {
            return;
        }
        let window = rule.window.0.as_millis() as u64;
        let mut subjects = Vec::new();
        if let Some(ip) = o.ip {
            subjects.push(format!("ip:{ip}"));
        }
        if let Some(key) = &o.key_id {
            subjects.push(format!("key:{key}"));
        }
        for subject in subjects {
            let hit = self
                .auth
                .entry(&subject, now, window)
                .is_some_and(|b| b.hit(now, rule.count, window));
            if hit {
                let message = format!(
                    "{} authentication/authorization failures (401/403) from {subject} within {}s",
                    rule.count,
                    window / 1000
                );
                let detail = json!({"count": rule.count, "window_secs": window / 1000, "last_status": o.status});
                let fired = Fired {
                    rule: AlertRule::AuthFailures,
                    subject,
                    key_id: o.key_id.as_deref().map(String::from),
                    message,
                    detail,
                    raised: false,
                };
                self.fire(now, fired, out);
            }
        }
    }

    fn storm(&mut self, now: u64, o: &Observation, out: &mut Vec<Fired>) {
        let rule = self.settings.rules.rate_limit_storm.clone();
        if !rule.enabled {
            return;
        }
        let window = rule.window.0.as_millis() as u64;
        let subject = match (&o.key_id, o.ip) {
            (Some(key), _) => format!("key:{key}"),
            (None, Some(ip)) => format!("ip:{ip}"),
            (None, None) => return,
        };
        let hit = self
            .storms
            .entry(&subject, now, window)
            .is_some_and(|b| b.hit(now, rule.count, window));
        if hit {
            let message = format!(
                "{} rate-limit rejections (429) for {subject} within {}s",
                rule.count,
                window / 1000
            );
            let detail = json!({"count": rule.count, "window_secs": window / 1000});
            let fired = Fired {
                rule: AlertRule::RateLimitStorm,
                subject,
                key_id: o.key_id.as_deref().map(String::from),
                message,
                detail,
                raised: false,
            };
            self.fire(now, fired, out);
        }
    }

    fn new_network(&mut self, now: u64, key: &str, ip: IpAddr, out: &mut Vec<Fired>) {
        if !self.settings.rules.new_network.enabled {
            return;
        }
        let net = Network::of(ip);
        let Some(seen) = self.networks.entry(key, now, LONG_IDLE_MS) else {
            return;
        };
        if seen.contains(&net) {
            return;
        }
        let first = seen.is_empty();
        let known: Vec<String> = seen.iter().map(ToString::to_string).collect();
        if seen.len() >= MAX_NETWORKS_PER_KEY {
            seen.remove(0);
        }
        seen.push(net);
        if first {
            return;
        }
        let message = format!("key {key} used from a new network {net} (client {ip})");
        let detail =
            json!({"network": net.to_string(), "ip": ip.to_string(), "known_networks": known});
        let fired = Fired {
            rule: AlertRule::NewNetwork,
            subject: format!("key:{key}"),
            key_id: Some(key.to_string()),
            message,
            detail,
            raised: false,
        };
        self.fire(now, fired, out);
    }

    fn token_spike(&mut self, now: u64, key: &str, tokens: u64, out: &mut Vec<Fired>) {
        let rule = self.settings.rules.token_spike.clone();
        if !rule.enabled || tokens == 0 {
            return;
        }
        let Some(avg) = self.tokens.entry(key, now, LONG_IDLE_MS) else {
            return;
        };
        let spike = avg.samples >= rule.warmup
            && tokens >= rule.min_tokens
            && tokens as f64 >= rule.factor * avg.mean;
        let baseline = avg.mean;
        if !spike {
            avg.add(tokens as f64);
            return;
        }
        let message = format!(
            "key {key} used {tokens} tokens in one request, {:.1}x its average of {baseline:.0}",
            tokens as f64 / baseline.max(1.0)
        );
        let detail = json!({"tokens": tokens, "baseline": baseline.round(), "factor": rule.factor});
        let fired = Fired {
            rule: AlertRule::TokenSpike,
            subject: format!("key:{key}"),
            key_id: Some(key.to_string()),
            message,
            detail,
            raised: false,
        };
        self.fire(now, fired, out);
    }

    fn spend(&mut self, now: u64, key: &str, cost: u64, out: &mut Vec<Fired>) {
        let rule = self.settings.rules.spend_spike.clone();
        if !rule.enabled {
            return;
        }
        let window = (rule.window.0.as_millis() as u64).max(1);
        let Some(s) = self.spend.entry(key, now, LONG_IDLE_MS) else {
            return;
        };
        if s.baseline.samples == 0 && s.sum == 0 && s.window_start == 0 {
            s.window_start = now - now % window;
        }
        let start = now - now % window;
        if start > s.window_start {
            // Close the open window, and count skipped windows as zero spend (a few only:
            // after a long silence the average has decayed enough).
            s.baseline.add(s.sum as f64);
            let skipped = ((start - s.window_start) / window)
                .saturating_sub(1)
                .min(20);
            for _ in 0..skipped {
                s.baseline.add(0.0);
            }
            s.window_start = start;
            s.sum = 0;
            s.fired = false;
        }
        s.sum = s.sum.saturating_add(cost);
        let min = (rule.min_usd * 1e6) as u64;
        let spike = !s.fired
            && s.baseline.samples >= rule.warmup
            && s.sum >= min.max(1)
            && s.sum as f64 >= rule.factor * s.baseline.mean;
        if !spike {
            return;
        }
        s.fired = true;
        let (sum, baseline) = (s.sum, s.baseline.mean);
        let message = format!(
            "key {key} spent ${:.2} in {}s, {:.1}x its average of ${:.2} per window",
            sum as f64 / 1e6,
            window / 1000,
            sum as f64 / baseline.max(1.0),
            baseline / 1e6
        );
        let detail = json!({"spend_usd": sum as f64 / 1e6, "baseline_usd": baseline / 1e6, "window_secs": window / 1000});
        let fired = Fired {
            rule: AlertRule::SpendSpike,
            subject: format!("key:{key}"),
            key_id: Some(key.to_string()),
            message,
            detail,
            raised: false,
        };
        self.fire(now, fired, out);
    }

    /// Subjects tracked by the burst tables (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.auth.map.len() + self.storms.map.len()
    }
}
