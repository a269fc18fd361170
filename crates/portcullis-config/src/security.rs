//! The `audit:` (audit-trail queue and forwarding) and `alerts:` (anomaly alerts) sections.

use crate::units::Seconds;
use crate::Problem;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Audit-trail settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Audit records accepted but not yet stored, at most. When the queue is full,
    /// administrative calls are refused (503) rather than performed unaudited.
    pub queue_capacity: usize,
    /// Copies of every stored record (with its chain hash) sent elsewhere.
    pub forward: Vec<AuditForward>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            queue_capacity: 4096,
            forward: Vec::new(),
        }
    }
}

/// One forwarding destination of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuditForward {
    /// One JSON object per line appended to a file.
    File {
        /// The file (created if missing, appended to).
        path: PathBuf,
    },
    /// RFC 5424 syslog messages.
    Syslog {
        /// `host:port` of the collector.
        address: String,
        /// `udp` (default) or `tcp` (octet-counted framing, RFC 6587).
        #[serde(default)]
        transport: SyslogTransport,
        /// APP-NAME field (default `portcullis`).
        #[serde(default = "default_app_name")]
        app_name: String,
    },
}

fn default_app_name() -> String {
    "portcullis".into()
}

/// Transport of syslog forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    /// One datagram per message (RFC 5426).
    #[default]
    Udp,
    /// A TCP stream with octet-counting framing (RFC 6587).
    Tcp,
}

/// Anomaly alert settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate the rules at all (default true).
    pub enabled: bool,
    /// URL that receives a JSON POST for every newly raised alert (repeats inside the
    /// deduplication window are counted, not sent).
    pub webhook: Option<String>,
    /// Time limit of one webhook attempt.
    pub webhook_timeout: Seconds,
    /// Same rule + subject within this window raises once and counts repeats.
    pub dedup_window: Seconds,
    /// Thresholds per rule.
    pub rules: AlertRules,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            webhook: None,
            webhook_timeout: Seconds(Duration::from_secs(5)),
            dedup_window: Seconds(Duration::from_secs(900)),
            rules: AlertRules::default(),
        }
    }
}

/// Thresholds of every alert rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRules {
    /// 401/403 answers to one client IP or one key.
    pub auth_failures: BurstRule,
    /// 429 answers to one key (or one IP for unauthenticated calls).
    pub rate_limit_storm: BurstRule,
    /// A key used from a /24 (IPv4) or /64 (IPv6) network not seen before for it.
    pub new_network: NewNetworkRule,
    /// Tokens of one request far above the key's own moving average.
    pub token_spike: SpikeRule,
    /// Spend of one key in a window far above its own moving average per window.
    pub spend_spike: SpendRule,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            auth_failures: BurstRule {
                enabled: true,
                count: 20,
                window: Seconds(Duration::from_secs(60)),
            },
            rate_limit_storm: BurstRule {
                enabled: true,
                count: 100,
                window: Seconds(Duration::from_secs(60)),
            },
            new_network: NewNetworkRule { enabled: true },
            token_spike: SpikeRule::default(),
            spend_spike: SpendRule::default(),
        }
    }
}

/// "At least `count` events within `window`".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstRule {
    /// Evaluate this rule.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Events that make a burst.
    pub count: u32,
    /// Sliding window.
    pub window: Seconds,
}

fn yes() -> bool {
    true
}

/// New-network rule switch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNetworkRule {
    /// Evaluate this rule.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// A value far above its exponentially weighted moving average.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpikeRule {
    /// Evaluate this rule.
    pub enabled: bool,
    /// Fires when the value is at least this many times the average.
    pub factor: f64,
    /// ... and at least this large (tokens), so small keys do not page anyone.
    pub min_tokens: u64,
    /// Requests seen before the average is trusted.
    pub warmup: u32,
}

impl Default for SpikeRule {
    fn default() -> Self {
        SpikeRule {
            enabled: true,
            factor: 10.0,
            min_tokens: 2000,
            warmup: 20,
        }
    }
}

/// Spend per window far above the key's moving average per window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpendRule {
    /// Evaluate this rule.
    pub enabled: bool,
    /// Length of one spend window.
    pub window: Seconds,
    /// Fires when a window's spend is at least this many times the average.
    pub factor: f64,
    /// ... and at least this many US dollars.
    pub min_usd: f64,
    /// Windows seen before the average is trusted.
    pub warmup: u32,
}

impl Default for SpendRule {
    fn default() -> Self {
        SpendRule {
            enabled: true,
            window: Seconds(Duration::from_secs(300)),
            factor: 5.0,
            min_usd: 1.0,
            warmup: 3,
        }
    }
}

/// Adds every problem of the `audit` and `alerts` sections.
pub(crate) fn validate(audit: &AuditConfig, alerts: &AlertsConfig, problems: &mut Vec<Problem>) {
    let mut push = |path: String, message: &str| {
        problems.push(Problem {
            path,
            message: message.into(),
        })
    };
    if audit.queue_capacity == 0 {
        push("audit.queue_capacity".into(), "must be greater than zero");
    }
    for (i, f) in audit.forward.iter().enumerate() {
        match f {
            AuditForward::File { path } if path.as_os_str().is_empty() => {
                push(format!("audit.forward[{i}].path"), "must not be empty")
            }
            AuditForward::Syslog { address, .. } if !is_host_port(address) => push(
                format!("audit.forward[{i}].address"),
                "must be host:port, e.g. 127.0.0.1:514",
            ),
            AuditForward::Syslog { app_name, .. }
                if app_name.is_empty()
                    || app_name.len() > 48
                    || !app_name.bytes().all(|b| (33..=126).contains(&b)) =>
            {
                push(
                    format!("audit.forward[{i}].app_name"),
                    "must be 1 to 48 printable ASCII characters without spaces",
                )
            }
            _ => {}
        }
    }
    if let Some(url) = &alerts.webhook {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            push(
                "alerts.webhook".into(),
                "must start with http:// or https://",
            );
        }
    }
    for (name, value) in [
        ("webhook_timeout", alerts.webhook_timeout),
        ("dedup_window", alerts.dedup_window),
    ] {
        if value.0.is_zero() {
            push(format!("alerts.{name}"), "must be greater than zero");
        }
    }
    let r = &alerts.rules;
    for (name, rule) in [
        ("auth_failures", &r.auth_failures),
        ("rate_limit_storm", &r.rate_limit_storm),
    ] {
        if rule.count == 0 {
            push(
                format!("alerts.rules.{name}.count"),
                "must be greater than zero",
            );
        }
        if rule.window.0.is_zero() {
            push(
                format!("alerts.rules.{name}.window"),
                "must be greater than zero",
            );
        }
    }
    for (path, factor) in [
        ("token_spike.factor", r.token_spike.factor),
        ("spend_spike.factor", r.spend_spike.factor),
    ] {
        if !(factor.is_finite() && factor > 1.0) {
            push(
                format!("alerts.rules.{path}"),
                "must be a number greater than 1",
            );
        }
    }
    if r.spend_spike.window.0.is_zero() {
        push(
            "alerts.rules.spend_spike.window".into(),
            "must be greater than zero",
        );
    }
    if !(r.spend_spike.min_usd.is_finite() && r.spend_spike.min_usd >= 0.0) {
        push(
            "alerts.rules.spend_spike.min_usd".into(),
            "must be zero or more",
        );
    }
}

fn is_host_port(text: &str) -> bool {
    match text.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        match crate::load_str(yaml, &|_| None) {
            Ok(_) => vec![],
            Err(e) => e.problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_and_a_full_section_parse() {
        let loaded = crate::load_str("{}", &|_| None).unwrap();
        let c = loaded.config;
        assert!(c.alerts.enabled && c.alerts.webhook.is_none());
        assert_eq!(c.audit.queue_capacity, 4096);
        assert_eq!(c.alerts.rules.auth_failures.count, 20);
        let yaml = "audit:\n  forward:\n    - {type: file, path: /tmp/a.jsonl}\n    - {type: syslog, address: '127.0.0.1:514', transport: tcp}\nalerts:\n  webhook: https://h.example/x\n  rules:\n    auth_failures: {count: 5, window: 30s}\n    spend_spike: {window: 10m}\n";
        let c = crate::load_str(yaml, &|_| None).unwrap().config;
        assert_eq!(
            c.audit.forward[1],
            AuditForward::Syslog {
                address: "127.0.0.1:514".into(),
                transport: SyslogTransport::Tcp,
                app_name: "portcullis".into()
            }
        );
        assert_eq!(
            c.alerts.rules.auth_failures.window.0,
            Duration::from_secs(30)
        );
        assert_eq!(
            c.alerts.rules.spend_spike.window.0,
            Duration::from_secs(600)
        );
        assert_eq!(
            c.alerts.rules.spend_spike.factor, 5.0,
            "unset fields keep defaults"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let yaml = "audit:\n  queue_capacity: 0\n  forward:\n    - {type: syslog, address: nohost}\n    - {type: file, path: ''}\nalerts:\n  webhook: ftp://x\n  dedup_window: 0s\n  rules:\n    auth_failures: {count: 0, window: 0s}\n    token_spike: {factor: 0.5}\n    spend_spike: {min_usd: -1}\n";
        let got = problems(yaml);
        for path in [
            "audit.queue_capacity:",
            "audit.forward[0].address:",
            "audit.forward[1].path:",
            "alerts.webhook:",
            "alerts.dedup_window:",
            "alerts.rules.auth_failures.count:",
            "alerts.rules.auth_failures.window:",
            "alerts.rules.token_spike.factor:",
            "alerts.rules.spend_spike.min_usd:",
        ] {
            assert!(
                got.iter().any(|p| p.starts_with(path)),
                "{path} missing in {got:?}"
            );
        }
        let unknown = problems("alerts:\n  rules:\n    bogus: 1\n");
        assert!(unknown[0].starts_with("alerts.rules.bogus"), "{unknown:?}");
    }
}
