//! Guardrails on the request path: the team's profile (named by the active policy) scans
//! the prompt before it leaves — blocking, redacting into typed placeholders, or logging —
//! and scans the answer before it reaches the client, streamed answers incrementally with a
//! bounded hold-back so a secret split across chunks is still caught while the rest flows.
//! Request limits (`max_prompt_tokens`, `max_images`) are checked first; a profile's
//! webhook (guard_webhook.rs) is asked after the built-in detectors, for prompts and for
//! complete answers — streamed answers are not sent to it (they are already flowing to the
//! client; a webhook verdict on the final text could not take back what was sent).
//! Findings are logged and counted by rule id and action, never with the matched value.

use crate::access::AccessNote;
use crate::error::GatewayError;
use crate::guard_webhook;
use portcullis_guard::{
    Action, CompiledProfile, Direction, Finding, LimitExceeded, Redactor, StreamScanner,
    DEFAULT_HOLD_BACK,
};
use portcullis_policy::tokens::estimate_chat_tokens;
use portcullis_wire::ir::{ChatRequest, ChatResponse, Content, ErrorKind, Part, StreamEvent};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The guardrail state of one request: the profile and the placeholder numbering shared by
/// the prompt and the answer (so placeholders can be restored in the answer).
pub struct RequestGuard {
    profile: Arc<CompiledProfile>,
    redactor: Redactor,
    note: Arc<AccessNote>,
}

impl RequestGuard {
    /// A guard applying `profile`.
    pub fn new(profile: Arc<CompiledProfile>, note: Arc<AccessNote>) -> RequestGuard {
        RequestGuard {
            profile,
            redactor: Redactor::new(),
            note,
        }
    }

    /// Checks the request limits, scans every text the prompt carries (messages, tool-call
    /// arguments, tool results), then asks the webhook when the profile has one for input.
    pub async fn scan_request(&mut self, request: &mut ChatRequest) -> Result<(), GatewayError> {
        self.check_limits(request)?;
        for message in &mut request.messages {
            for text in content_texts(&mut message.content) {
                self.scan(text, Direction::Input)?;
            }
        }
        if let Some(hook) = self
            .profile
            .webhook()
            .filter(|w| w.applies(Direction::Input))
        {
            let mut texts: Vec<&mut String> = request
                .messages
                .iter_mut()
                .flat_map(|m| content_texts(&mut m.content))
                .collect();
            guard_webhook::check(
                hook,
                Direction::Input,
                &request.model,
                &mut texts,
                &self.note,
            )
            .await?;
        }
        Ok(())
    }

    /// `max_images` and `max_prompt_tokens` (the tokenizer runs only when the latter is set).
    fn check_limits(&self, request: &mut ChatRequest) -> Result<(), GatewayError> {
        let images: usize = request
            .messages
            .iter()
            .map(|m| count_images(&m.content))
            .sum();
        let tokens = self.profile.max_prompt_tokens().map(|_| {
            let model = request.model.clone();
            let texts: Vec<&mut String> = request
                .messages
                .iter_mut()
                .flat_map(|m| content_texts(&mut m.content))
                .collect();
            estimate_chat_tokens(&model, texts.iter().map(|t| t.as_str()))
        });
        let images = u32::try_from(images).unwrap_or(u32::MAX);
        self.profile.check_limits(tokens, images).map_err(|e| {
            self.note.guardrail(e.rule_id(), "block");
            tracing::info!(target: "portcullis::guardrail", rule = e.rule_id(), action = "block", direction = "input", "guardrail limit");
            GatewayError::GuardrailLimit {
                rule: e.rule_id(),
                detail: limit_detail(&e),
            }
        })
    }

    /// Scans a complete answer; restores placeholders marked restorable; then asks the
    /// webhook when the profile has one for output.
    pub async fn scan_response(&mut self, response: &mut ChatResponse) -> Result<(), GatewayError> {
        for part in &mut response.content {
            if let Some(text) = part_text(part) {
                self.scan(text, Direction::Output)?;
            }
        }
        if let Some(hook) = self
            .profile
            .webhook()
            .filter(|w| w.applies(Direction::Output))
        {
            let model = response.model.clone();
            let mut texts: Vec<&mut String> =
                response.content.iter_mut().filter_map(part_text).collect();
            guard_webhook::check(hook, Direction::Output, &model, &mut texts, &self.note).await?;
        }
        if self.redactor.has_restorable() {
            for text in response.content.iter_mut().filter_map(part_text) {
                *text = self.redactor.restore(text).into_owned();
            }
        }
        Ok(())
    }

    fn scan(&mut self, text: &mut String, direction: Direction) -> Result<(), GatewayError> {
        let outcome = self
            .profile
            .scan_text_with(text, direction, &mut self.redactor);
        self.record(&outcome.findings, direction);
        if let Some(finding) = outcome.blocked {
            return Err(blocked(&finding, direction));
        }
        if let Some(redacted) = outcome.redacted {
            *text = redacted;
        }
        Ok(())
    }

    fn record(&self, findings: &[Finding], direction: Direction) {
        for f in findings {
            let action = action_label(f.action);
            self.note.guardrail(&f.rule_id, action);
            tracing::info!(target: "portcullis::guardrail", rule = %f.rule_id, action, direction = ?direction, length = f.len(), "guardrail finding");
        }
    }

    /// The stream filter for the answer.
    pub fn into_stream(self) -> StreamGuard {
        StreamGuard {
            text: StreamScanner::with_redactor(
                self.profile.clone(),
                Direction::Output,
                DEFAULT_HOLD_BACK,
                self.redactor.clone(),
            ),
            args: BTreeMap::new(),
            profile: self.profile,
            redactor: self.redactor,
            note: self.note,
            seen: 0,
        }
    }
}

/// Scans IR stream events: text and tool arguments pass through scanners; a block ends the
/// stream with an error event.
pub struct StreamGuard {
    text: StreamScanner<Arc<CompiledProfile>>,
    args: BTreeMap<usize, StreamScanner<Arc<CompiledProfile>>>,
    profile: Arc<CompiledProfile>,
    redactor: Redactor,
    note: Arc<AccessNote>,
    seen: usize,
}

impl StreamGuard {
    /// Filters one event into the events to send now.
    pub fn filter(&mut self, event: StreamEvent) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        match event {
            StreamEvent::TextDelta { text } => {
                let o = self.text.push(&text);
                if let Some(f) = o.blocked {
                    return vec![self.block(&f)];
                }
                if !o.emit.is_empty() {
                    out.push(StreamEvent::TextDelta { text: o.emit });
                }
            }
            StreamEvent::ToolArgsDelta { index, fragment } => {
                let scanner = self.args.entry(index).or_insert_with(|| {
                    StreamScanner::with_redactor(
                        self.profile.clone(),
                        Direction::Output,
                        DEFAULT_HOLD_BACK,
                        self.redactor.clone(),
                    )
                });
                let o = scanner.push(&fragment);
                if let Some(f) = o.blocked {
                    return vec![self.block(&f)];
                }
                if !o.emit.is_empty() {
                    out.push(StreamEvent::ToolArgsDelta {
                        index,
                        fragment: o.emit,
                    });
                }
            }
            StreamEvent::ToolCallStart { .. }
            | StreamEvent::Stop(_)
            | StreamEvent::Done
            | StreamEvent::Usage(_) => {
                if let Some(e) = self.flush(&mut out) {
                    return vec![e];
                }
                out.push(event);
            }
            other => out.push(other),
        }
        self.record_new();
        out
    }

    /// Releases what the scanners hold (before a tool call starts and at the end).
    fn flush(&mut self, out: &mut Vec<StreamEvent>) -> Option<StreamEvent> {
        let o = self.text.finish();
        if let Some(f) = o.blocked {
            return Some(self.block(&f));
        }
        if !o.emit.is_empty() {
            out.push(StreamEvent::TextDelta { text: o.emit });
        }
        self.text = StreamScanner::with_redactor(
            self.profile.clone(),
            Direction::Output,
            DEFAULT_HOLD_BACK,
            self.redactor.clone(),
        );
        let indexes: Vec<usize> = self.args.keys().copied().collect();
        for index in indexes {
            if let Some(mut scanner) = self.args.remove(&index) {
                let o = scanner.finish();
                if let Some(f) = o.blocked {
                    return Some(self.block(&f));
                }
                if !o.emit.is_empty() {
                    out.push(StreamEvent::ToolArgsDelta {
                        index,
                        fragment: o.emit,
                    });
                }
            }
        }
        None
    }

    fn record_new(&mut self) {
        let findings = self.text.findings();
        for f in &findings[self.seen.min(findings.len())..] {
            let action = action_label(f.action);
            self.note.guardrail(&f.rule_id, action);
            tracing::info!(target: "portcullis::guardrail", rule = %f.rule_id, action, direction = "output", length = f.len(), "guardrail finding");
        }
        self.seen = findings.len();
    }

    fn block(&self, finding: &Finding) -> StreamEvent {
        self.note.guardrail(&finding.rule_id, "block");
        let e = blocked(finding, Direction::Output);
        StreamEvent::Error {
            kind: ErrorKind::InvalidRequest,
            message: e.parts().message.into_owned(),
        }
    }
}

fn blocked(finding: &Finding, direction: Direction) -> GatewayError {
    GatewayError::GuardrailBlocked {
        rule: finding.rule_id.to_string(),
        output: direction == Direction::Output,
    }
}

/// The limit's numbers, without the rule id (the error message names it).
fn limit_detail(e: &LimitExceeded) -> String {
    match e {
        LimitExceeded::PromptTokens { limit, actual } => {
            format!("the prompt has about {actual} tokens, the limit is {limit}")
        }
        LimitExceeded::Images { limit, actual } => {
            format!("the request has {actual} images, the limit is {limit}")
        }
    }
}

/// Images in a message, tool results included.
fn count_images(content: &Content) -> usize {
    match content {
        Content::Text(_) => 0,
        Content::Parts(parts) => parts
            .iter()
            .map(|p| match p {
                Part::Image { .. } => 1,
                Part::ToolResult { content, .. } => count_images(content),
                _ => 0,
            })
            .sum(),
    }
}

fn action_label(action: Action) -> &'static str {
    match action {
        Action::Block => "block",
        Action::Redact => "redact",
        Action::Log => "log",
    }
}

/// Every text of a message that guardrails read, mutable.
fn content_texts(content: &mut Content) -> Vec<&mut String> {
    match content {
        Content::Text(t) => vec![t],
        Content::Parts(parts) => parts
            .iter_mut()
            .flat_map(|p| match p {
                Part::ToolResult { content, .. } => content_texts(content),
                other => part_text(other).into_iter().collect(),
            })
            .collect(),
    }
}

fn part_text(part: &mut Part) -> Option<&mut String> {
    match part {
        Part::Text { text, .. } => Some(text),
        Part::ToolCall { arguments, .. } => Some(arguments),
        _ => None,
    }
}
