//! The external guardrail webhook: its settings in a profile and the JSON contract, pure
//! (the HTTP call itself is made by the gateway).
//!
//! The gateway POSTs a [`WebhookRequest`] (`Content-Type: application/json`):
//!
//! ```json
//! {"version": 1, "direction": "input", "model": "gpt-4o", "texts": ["hello", "..."]}
//! ```
//!
//! `texts` are the prompt's texts (messages, tool-call arguments, tool results) or the
//! answer's, in order, after the profile's own detectors ran (already redacted values stay
//! placeholders). The webhook answers `200` with one [`WebhookVerdict`]:
//!
//! ```json
//! {"action": "allow"}
//! {"action": "block", "rule": "toxicity"}
//! {"action": "redact", "texts": ["hello", "[NAME]"]}
//! ```
//!
//! `rule` is optional (ASCII letters, digits, `_`, `-`, at most 64 bytes; anything else is
//! reported as plain `webhook`); `redact` must return exactly as many texts as were sent.
//! Any other answer — another status, a malformed body, a wrong text count, no answer
//! within `timeout_ms` — is a failure, handled by the rule's `on_failure` (default
//! `closed`: the request is blocked).

use serde::{Deserialize, Serialize};

use crate::types::{Direction, Directions};

/// Default webhook timeout in milliseconds.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 1000;
/// Largest accepted webhook timeout in milliseconds.
pub const MAX_WEBHOOK_TIMEOUT_MS: u64 = 30_000;
/// Largest webhook answer read, in bytes.
pub const MAX_WEBHOOK_ANSWER: usize = 4 * 1024 * 1024;
/// Version of the JSON contract sent in every request.
pub const WEBHOOK_CONTRACT_VERSION: u32 = 1;

/// What a failed webhook call (unreachable, slow, malformed answer) does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Block the request (the default: a guardrail that cannot judge does not let through).
    #[default]
    Closed,
    /// Let the request through unchanged; the failure is logged and counted.
    Open,
}

/// The webhook of a profile, e.g.
///
/// ```yaml
/// webhook: { url: "https://guard.internal/check", timeout_ms: 500, direction: both,
///            on_failure: closed, bearer_env: GUARD_WEBHOOK_TOKEN }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRule {
    /// `http://` or `https://` URL the texts are POSTed to.
    pub url: String,
    /// How long the whole call (connect, send, answer) may take (default 1000 ms).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Which texts are sent (default input: prompts only). Streamed answers are never sent.
    #[serde(default = "input_only")]
    pub direction: Directions,
    /// What a failed call does (default `closed`).
    #[serde(default)]
    pub on_failure: FailureMode,
    /// Name of an environment variable of the gateway whose value is sent as
    /// `Authorization: Bearer <value>` (the secret itself never lives in the policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_env: Option<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_WEBHOOK_TIMEOUT_MS
}
fn input_only() -> Directions {
    Directions::Input
}

impl WebhookRule {
    /// Every problem, as `(field, message)` pairs relative to `webhook`.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        let rest = self
            .url
            .strip_prefix("https://")
            .or_else(|| self.url.strip_prefix("http://"));
        match rest {
            None => p.push(("url", "must start with http:// or https://".to_string())),
            Some(r) if r.is_empty() || r.starts_with('/') => {
                p.push(("url", "has no host".to_string()))
            }
            Some(r) if r.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                p.push(("url", "contains whitespace".to_string()))
            }
            Some(_) => {}
        }
        if !(1..=MAX_WEBHOOK_TIMEOUT_MS).contains(&self.timeout_ms) {
            p.push((
                "timeout_ms",
                format!("must be between 1 and {MAX_WEBHOOK_TIMEOUT_MS}"),
            ));
        }
        if let Some(env) = &self.bearer_env {
            if env.is_empty() || !env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                p.push((
                    "bearer_env",
                    "must be an environment variable name (ASCII letters, digits, '_')".into(),
                ));
            }
        }
        p
    }

    /// Whether texts travelling `dir` are sent to the webhook.
    pub fn applies(&self, dir: Direction) -> bool {
        self.direction.includes(dir)
    }
}

/// The body POSTed to the webhook.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookRequest<'a> {
    /// Contract version ([`WEBHOOK_CONTRACT_VERSION`]).
    pub version: u32,
    /// `input` (prompt) or `output` (answer).
    pub direction: Direction,
    /// The upstream model the request is for.
    pub model: &'a str,
    /// The texts, in order.
    pub texts: Vec<&'a str>,
}

/// The webhook's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum WebhookVerdict {
    /// Let the texts through unchanged.
    Allow,
    /// Reject the request (or the answer), naming the webhook's rule when it gives one.
    Block {
        /// The webhook's rule name (sanitized by [`WebhookVerdict::parse`]).
        #[serde(default)]
        rule: Option<String>,
    },
    /// Replace the texts, one for one.
    Redact {
        /// Replacement texts, as many as were sent.
        texts: Vec<String>,
    },
}

/// Why a webhook answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The body is not a verdict of this contract (the parser's message is not kept: it
    /// may quote the answer, which may quote the texts).
    #[error("webhook answer is not a valid verdict of contract version 1")]
    Malformed,
    /// A `redact` answer with the wrong number of texts.
    #[error("webhook redact answer has {got} texts, {sent} were sent")]
    TextCount {
        /// Texts sent.
        sent: usize,
        /// Texts returned.
        got: usize,
    },
}

impl WebhookVerdict {
    /// Parses and checks an answer to a request that carried `sent` texts. A block rule
    /// name that is not a safe id becomes `None` (reported as plain `webhook`).
    pub fn parse(body: &[u8], sent: usize) -> Result<WebhookVerdict, WebhookError> {
        let verdict: WebhookVerdict =
            serde_json::from_slice(body).map_err(|_| WebhookError::Malformed)?;
        Ok(match verdict {
            WebhookVerdict::Redact { texts } if texts.len() != sent => {
                return Err(WebhookError::TextCount {
                    sent,
                    got: texts.len(),
                })
            }
            WebhookVerdict::Block { rule } => WebhookVerdict::Block {
                rule: rule.filter(|r| {
                    (1..=64).contains(&r.len())
                        && r.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                }),
            },
            other => other,
        })
    }

    /// The rule id recorded for this verdict: `webhook` or `webhook:<rule>`.
    pub fn rule_id(&self) -> String {
        match self {
            WebhookVerdict::Block { rule: Some(r) } => format!("webhook:{r}"),
            _ => "webhook".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(url: &str, timeout_ms: u64) -> WebhookRule {
        WebhookRule {
            url: url.into(),
            timeout_ms,
            direction: Directions::Input,
            on_failure: FailureMode::Closed,
            bearer_env: None,
        }
    }

    #[test]
    fn urls_and_timeouts_are_checked() {
        assert!(rule("https://guard.example/check", 500)
            .problems()
            .is_empty());
        assert!(rule("http://127.0.0.1:9/x", 1).problems().is_empty());
        assert_eq!(rule("ftp://x", 500).problems()[0].0, "url");
        assert_eq!(rule("https:///x", 500).problems()[0].0, "url");
        assert_eq!(rule("http://a b", 500).problems()[0].0, "url");
        assert_eq!(rule("http://a", 0).problems()[0].0, "timeout_ms");
        assert_eq!(rule("http://a", 30_001).problems()[0].0, "timeout_ms");
    }

    #[test]
    fn verdicts_parse_and_are_checked() {
        assert_eq!(
            WebhookVerdict::parse(br#"{"action":"allow"}"#, 2),
            Ok(WebhookVerdict::Allow)
        );
        let b = WebhookVerdict::parse(br#"{"action":"block","rule":"toxicity"}"#, 1).unwrap();
        assert_eq!(b.rule_id(), "webhook:toxicity");
        let b = WebhookVerdict::parse(br#"{"action":"block","rule":"a b<script>"}"#, 1).unwrap();
        assert_eq!(b, WebhookVerdict::Block { rule: None });
        assert_eq!(b.rule_id(), "webhook");
        let r = WebhookVerdict::parse(br#"{"action":"redact","texts":["x","y"]}"#, 2).unwrap();
        assert_eq!(
            r,
            WebhookVerdict::Redact {
                texts: vec!["x".into(), "y".into()]
            }
        );
        assert_eq!(
            WebhookVerdict::parse(br#"{"action":"redact","texts":["x"]}"#, 2),
            Err(WebhookError::TextCount { sent: 2, got: 1 })
        );
        assert!(WebhookVerdict::parse(br#"{"action":"maybe"}"#, 1).is_err());
        assert!(WebhookVerdict::parse(b"<html>", 1).is_err());
    }

    #[test]
    fn request_serializes_to_the_contract() {
        let r = WebhookRequest {
            version: WEBHOOK_CONTRACT_VERSION,
            direction: Direction::Input,
            model: "m",
            texts: vec!["a"],
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"version":1,"direction":"input","model":"m","texts":["a"]}"#
        );
    }
}
