//! Small shared vocabulary: directions, actions, detector kinds and findings.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Which way the scanned text travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A prompt (or tool result) on its way to the upstream provider.
    Input,
    /// A response (or tool call) on its way back to the client.
    Output,
}

/// The directions a rule applies to, as written in a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Directions {
    /// Prompts only.
    Input,
    /// Responses only.
    Output,
    /// Both ways (the default).
    #[default]
    Both,
}

impl Directions {
    /// Whether a rule with these directions applies to text travelling `dir`.
    pub fn includes(self, dir: Direction) -> bool {
        matches!(
            (self, dir),
            (Directions::Both, _)
                | (Directions::Input, Direction::Input)
                | (Directions::Output, Direction::Output)
        )
    }
}

/// What happens when a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Reject the request (or cut the stream); the error names the rule, never the data.
    Block,
    /// Replace the match with a typed placeholder such as `[EMAIL_1]`.
    Redact,
    /// Record the finding only; the text passes unchanged.
    Log,
}

impl Action {
    /// Lower-case name, stable for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Redact => "redact",
            Action::Log => "log",
        }
    }
}

/// The kind of detector that produced a finding (a small closed set: safe as a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// E-mail addresses.
    Email,
    /// Phone numbers (E.164 and common national formats with separators).
    Phone,
    /// Payment card numbers (known issuer prefix, Luhn-checked).
    CreditCard,
    /// International bank account numbers (length table + mod-97).
    Iban,
    /// US social security numbers (invalid ranges excluded).
    UsSsn,
    /// IPv4 and IPv6 addresses.
    IpAddress,
    /// AWS access key ids (AKIA/ASIA...).
    AwsAccessKey,
    /// AWS secret access keys next to an AWS context word.
    AwsSecretKey,
    /// GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_).
    GithubToken,
    /// Slack tokens (xox?-) and incoming webhook URLs.
    SlackToken,
    /// OpenAI-style keys (sk-..., sk-proj-...).
    OpenaiKey,
    /// Anthropic keys (sk-ant-...).
    AnthropicKey,
    /// Google API keys (AIza...).
    GoogleApiKey,
    /// PEM private key blocks.
    PrivateKey,
    /// JSON web tokens.
    Jwt,
    /// High-entropy values after a key/secret/token/password context word.
    HighEntropySecret,
    /// Prompt-injection and jailbreak phrases (scored).
    PromptInjection,
    /// Denied topics by keyword list.
    DeniedTopic,
    /// A profile's own regex or word list.
    Custom,
}

impl Detector {
    /// Every built-in detector that is configured under `detectors:` in a profile.
    pub const BUILTIN: [Detector; 16] = [
        Detector::Email,
        Detector::Phone,
        Detector::CreditCard,
        Detector::Iban,
        Detector::UsSsn,
        Detector::IpAddress,
        Detector::AwsAccessKey,
        Detector::AwsSecretKey,
        Detector::GithubToken,
        Detector::SlackToken,
        Detector::OpenaiKey,
        Detector::AnthropicKey,
        Detector::GoogleApiKey,
        Detector::PrivateKey,
        Detector::Jwt,
        Detector::HighEntropySecret,
    ];

    /// snake_case name (the key under `detectors:` and the rule id of built-in findings).
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::Phone => "phone",
            Detector::CreditCard => "credit_card",
            Detector::Iban => "iban",
            Detector::UsSsn => "us_ssn",
            Detector::IpAddress => "ip_address",
            Detector::AwsAccessKey => "aws_access_key",
            Detector::AwsSecretKey => "aws_secret_key",
            Detector::GithubToken => "github_token",
            Detector::SlackToken => "slack_token",
            Detector::OpenaiKey => "openai_key",
            Detector::AnthropicKey => "anthropic_key",
            Detector::GoogleApiKey => "google_api_key",
            Detector::PrivateKey => "private_key",
            Detector::Jwt => "jwt",
            Detector::HighEntropySecret => "high_entropy_secret",
            Detector::PromptInjection => "prompt_injection",
            Detector::DeniedTopic => "denied_topic",
            Detector::Custom => "custom",
        }
    }

    /// Parses a built-in detector name as used under `detectors:`.
    pub fn from_name(name: &str) -> Option<Detector> {
        Detector::BUILTIN.into_iter().find(|d| d.as_str() == name)
    }

    /// Placeholder label, e.g. `EMAIL` for `[EMAIL_1]`.
    pub fn label(self) -> &'static str {
        match self {
            Detector::HighEntropySecret => "SECRET",
            Detector::Email => "EMAIL",
            Detector::Phone => "PHONE",
            Detector::CreditCard => "CREDIT_CARD",
            Detector::Iban => "IBAN",
            Detector::UsSsn => "US_SSN",
            Detector::IpAddress => "IP_ADDRESS",
            Detector::AwsAccessKey => "AWS_ACCESS_KEY",
            Detector::AwsSecretKey => "AWS_SECRET_KEY",
            Detector::GithubToken => "GITHUB_TOKEN",
            Detector::SlackToken => "SLACK_TOKEN",
            Detector::OpenaiKey => "OPENAI_KEY",
            Detector::AnthropicKey => "ANTHROPIC_KEY",
            Detector::GoogleApiKey => "GOOGLE_API_KEY",
            Detector::PrivateKey => "PRIVATE_KEY",
            Detector::Jwt => "JWT",
            Detector::PromptInjection => "PROMPT_INJECTION",
            Detector::DeniedTopic => "DENIED_TOPIC",
            Detector::Custom => "CUSTOM",
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule that matched. It never holds the matched text: only where it was and how long.
///
/// Serialized as `{"rule_id", "detector", "action", "start", "end", "len"}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's id: the detector name for built-ins, the profile's id for custom rules.
    pub rule_id: Arc<str>,
    /// The kind of detector.
    pub detector: Detector,
    /// The configured action for this direction.
    pub action: Action,
    /// Byte range in the scanned text (for streams: in the whole stream so far).
    pub span: Range<usize>,
}

impl Finding {
    /// Length of the matched text in bytes.
    pub fn len(&self) -> usize {
        self.span.len()
    }

    /// Whether the span is empty (never true for real findings).
    pub fn is_empty(&self) -> bool {
        self.span.is_empty()
    }

    /// The same finding shifted by `offset` bytes (used by the stream scanner).
    pub(crate) fn shifted(mut self, offset: usize) -> Finding {
        self.span = self.span.start + offset..self.span.end + offset;
        self
    }
}

impl fmt::Debug for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finding")
            .field("rule_id", &&*self.rule_id)
            .field("detector", &self.detector)
            .field("action", &self.action)
            .field("span", &self.span)
            .field("len", &self.len())
            .finish()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule '{}' ({}) {} at {}..{} ({} bytes)",
            self.rule_id,
            self.detector,
            self.action.as_str(),
            self.span.start,
            self.span.end,
            self.len()
        )
    }
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Finding", 6)?;
        st.serialize_field("rule_id", &*self.rule_id)?;
        st.serialize_field("detector", &self.detector)?;
        st.serialize_field("action", &self.action)?;
        st.serialize_field("start", &self.span.start)?;
        st.serialize_field("end", &self.span.end)?;
        st.serialize_field("len", &self.len())?;
        st.end()
    }
}
