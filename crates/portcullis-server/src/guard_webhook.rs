//! The external guardrail webhook call: POST the texts, apply the verdict (allow, block,
//! redact), and on failure (unreachable, slow, malformed answer) block or let through as
//! the profile's `on_failure` says (default closed). The contract is documented in
//! `portcullis_guard::webhook`; actions are recorded on the access note like any finding.

use crate::access::AccessNote;
use crate::error::GatewayError;
use portcullis_guard::webhook::{WebhookRequest, MAX_WEBHOOK_ANSWER, WEBHOOK_CONTRACT_VERSION};
use portcullis_guard::{Direction, FailureMode, WebhookRule, WebhookVerdict};
use std::sync::OnceLock;
use std::time::Duration;

/// Rule id recorded when the webhook could not judge.
pub const UNAVAILABLE_RULE: &str = "webhook_unavailable";

/// One client (connection pool) for every webhook call of the process.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// Why a call produced no verdict.
enum Failure {
    Timeout,
    Unreachable,
    BadAnswer,
}

impl Failure {
    fn reason(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Unreachable => "unreachable",
            Failure::BadAnswer => "bad_answer",
        }
    }
}

/// Sends `texts` to the webhook and applies its verdict to them in place.
pub async fn check(
    rule: &WebhookRule,
    direction: Direction,
    model: &str,
    texts: &mut [&mut String],
    note: &AccessNote,
) -> Result<(), GatewayError> {
    if texts.is_empty() {
        return Ok(());
    }
    let verdict = match call(rule, direction, model, texts).await {
        Ok(v) => v,
        Err(failure) => {
            let reason = failure.reason();
            return match rule.on_failure {
                FailureMode::Closed => {
                    note.guardrail(UNAVAILABLE_RULE, "block");
                    tracing::warn!(target: "portcullis::guardrail", reason, ?direction, "guardrail webhook failed; blocking (fail-closed)");
                    Err(GatewayError::GuardrailUnavailable { reason })
                }
                FailureMode::Open => {
                    note.guardrail(UNAVAILABLE_RULE, "log");
                    tracing::warn!(target: "portcullis::guardrail", reason, ?direction, "guardrail webhook failed; letting the request through (fail-open)");
                    Ok(())
                }
            };
        }
    };
    let rule_id = verdict.rule_id();
    match verdict {
        WebhookVerdict::Allow => Ok(()),
        WebhookVerdict::Block { .. } => {
            note.guardrail(&rule_id, "block");
            tracing::info!(target: "portcullis::guardrail", rule = %rule_id, action = "block", ?direction, "guardrail webhook finding");
            Err(GatewayError::GuardrailBlocked {
                rule: rule_id,
                output: direction == Direction::Output,
            })
        }
        WebhookVerdict::Redact { texts: replaced } => {
            let mut changed = false;
            for (text, new) in texts.iter_mut().zip(replaced) {
                if **text != new {
                    **text = new;
                    changed = true;
                }
            }
            if changed {
                note.guardrail(&rule_id, "redact");
                tracing::info!(target: "portcullis::guardrail", rule = %rule_id, action = "redact", ?direction, "guardrail webhook finding");
            }
            Ok(())
        }
    }
}

async fn call(
    rule: &WebhookRule,
    direction: Direction,
    model: &str,
    texts: &[&mut String],
) -> Result<WebhookVerdict, Failure> {
    let body = WebhookRequest {
        version: WEBHOOK_CONTRACT_VERSION,
        direction,
        model,
        texts: texts.iter().map(|t| t.as_str()).collect(),
    };
    let body = serde_json::to_vec(&body).map_err(|_| Failure::BadAnswer)?;
    let mut request = client()
        .post(&rule.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(token) = rule
        .bearer_env
        .as_deref()
        .and_then(|name| std::env::var(name).ok())
    {
        request = request.bearer_auth(token);
    }
    let exchange = async {
        let mut response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Unreachable
            }
        })?;
        if response.status() != reqwest::StatusCode::OK {
            tracing::warn!(target: "portcullis::guardrail", status = response.status().as_u16(), "guardrail webhook answered with an error status");
            return Err(Failure::BadAnswer);
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| Failure::Unreachable)? {
            if answer.len() + chunk.len() > MAX_WEBHOOK_ANSWER {
                return Err(Failure::BadAnswer);
            }
            answer.extend_from_slice(&chunk);
        }
        WebhookVerdict::parse(&answer, texts.len()).map_err(|e| {
            tracing::warn!(target: "portcullis::guardrail", error = %e, "guardrail webhook answer refused");
            Failure::BadAnswer
        })
    };
    tokio::time::timeout(Duration::from_millis(rule.timeout_ms), exchange)
        .await
        .unwrap_or(Err(Failure::Timeout))
}
