//! Guardrail profile definition (the `guardrails:` section of a policy document) and its
//! validation. Parsing is strict (`deny_unknown_fields`); validation collects every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::builtin::DEFAULT_INJECTION_THRESHOLD;
use crate::types::{Action, Detector, Direction, Directions};
use crate::webhook::WebhookRule;

/// One guardrail profile, e.g.
///
/// ```yaml
/// detectors:
///   email: { action: redact, restore: true }
///   aws_access_key: { action: block, direction: input }
/// prompt_injection: { action: block, threshold: 3 }
/// denied_topics: [{ id: weapons, words: [nerve agent, pipe bomb] }]
/// custom:
///   - { id: codename, regex: "PROJECT-[A-Z]{4}", action: redact }
///   - { id: internal, words: [bluebird, nightjar], action: log }
/// max_prompt_tokens: 8000
/// max_images: 4
/// webhook: { url: "https://guard.internal/check", timeout_ms: 500 }
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDef {
    /// Built-in detectors by name (see [`Detector::BUILTIN`]); absent ones are off.
    #[serde(default)]
    pub detectors: BTreeMap<String, DetectorRule>,
    /// Prompt-injection / jailbreak heuristics; absent = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_injection: Option<InjectionRule>,
    /// Denied topics, each a keyword list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_topics: Vec<TopicRule>,
    /// The profile's own regexes and word lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomRule>,
    /// Upper bound on the prompt's estimated tokens (checked by the caller's tokenizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u64>,
    /// Upper bound on the number of images in a request (0 = no images allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_images: Option<u32>,
    /// An external guardrail service called with the texts (see [`crate::webhook`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookRule>,
}

/// Settings of one built-in detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorRule {
    /// What to do on a match.
    pub action: Action,
    /// Where the detector applies (default both).
    #[serde(default)]
    pub direction: Directions,
    /// A different action for output (e.g. block input, redact output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_action: Option<Action>,
    /// For `redact`: put the original values back when the response of the same request
    /// contains the placeholders.
    #[serde(default, skip_serializing_if = "is_false")]
    pub restore: bool,
}

/// Prompt-injection heuristics: a scored, case-insensitive phrase list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionRule {
    /// What to do when the score reaches the threshold.
    pub action: Action,
    /// Where the heuristics apply (default input).
    #[serde(default = "input_only")]
    pub direction: Directions,
    /// Score at or above which the text is a finding (default 3; one strong phrase).
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    /// More phrases, each worth the threshold on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_phrases: Vec<String>,
}

/// A denied topic: any of its keywords (whole words, case-insensitive) is a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRule {
    /// Rule id reported in findings.
    pub id: String,
    /// Keywords or phrases.
    pub words: Vec<String>,
    /// Default block.
    #[serde(default = "block")]
    pub action: Action,
    /// Default input.
    #[serde(default = "input_only")]
    pub direction: Directions,
}

/// A custom rule: exactly one of `regex` or `words`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// Rule id reported in findings; also the placeholder label (`[CODENAME_1]`).
    pub id: String,
    /// A regular expression (Rust `regex` syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Whole words or phrases, case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<String>>,
    /// What to do on a match.
    pub action: Action,
    /// Default both.
    #[serde(default)]
    pub direction: Directions,
    /// For `redact`: restore placeholders in the response.
    #[serde(default, skip_serializing_if = "is_false")]
    pub restore: bool,
}

impl DetectorRule {
    /// The action for text travelling `dir`, or `None` when the rule does not apply.
    pub fn action_for(&self, dir: Direction) -> Option<Action> {
        if !self.direction.includes(dir) {
            return None;
        }
        Some(match dir {
            Direction::Input => self.action,
            Direction::Output => self.output_action.unwrap_or(self.action),
        })
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn input_only() -> Directions {
    Directions::Input
}
fn block() -> Action {
    Action::Block
}
fn default_threshold() -> u32 {
    DEFAULT_INJECTION_THRESHOLD
}

/// One validation problem, located by a dotted path inside the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// e.g. `custom[1].regex` or `detectors.emial`.
    pub path: String,
    /// Human-readable explanation.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A profile that failed to parse, validate or compile; lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid guardrail profile: {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ProfileError {
    /// All problems, in document order.
    pub problems: Vec<Problem>,
}

impl ProfileDef {
    /// Parses one profile from the JSON value stored in the policy document, then validates.
    pub fn from_value(value: serde_json::Value) -> Result<ProfileDef, ProfileError> {
        let def: ProfileDef = serde_json::from_value(value).map_err(|e| ProfileError {
            problems: vec![Problem {
                path: String::new(),
                message: e.to_string(),
            }],
        })?;
        def.validate()?;
        Ok(def)
    }

    /// The default profile: secrets and private keys block input and redact output; PII is
    /// redacted both ways (IP addresses are logged only); prompt injection blocks input.
    pub fn default_profile() -> ProfileDef {
        let mut detectors = BTreeMap::new();
        for d in Detector::BUILTIN {
            let (action, output_action) = match d {
                Detector::Email
                | Detector::Phone
                | Detector::CreditCard
                | Detector::Iban
                | Detector::UsSsn => (Action::Redact, None),
                Detector::IpAddress => (Action::Log, None),
                _ => (Action::Block, Some(Action::Redact)),
            };
            let rule = DetectorRule {
                action,
                direction: Directions::Both,
                output_action,
                restore: false,
            };
            detectors.insert(d.as_str().to_string(), rule);
        }
        ProfileDef {
            detectors,
            prompt_injection: Some(InjectionRule {
                action: Action::Block,
                direction: Directions::Input,
                threshold: DEFAULT_INJECTION_THRESHOLD,
                extra_phrases: Vec::new(),
            }),
            denied_topics: Vec::new(),
            custom: Vec::new(),
            max_prompt_tokens: None,
            max_images: None,
            webhook: None,
        }
    }

    /// Checks everything serde cannot: names, ids, exclusive fields, regex syntax, bounds.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let mut p = Vec::new();
        let mut push = |path: String, message: &str| {
            p.push(Problem {
                path,
                message: message.into(),
            })
        };
        for (name, rule) in &self.detectors {
            let path = format!("detectors.{name}");
            if Detector::from_name(name).is_none() {
                let known: Vec<&str> = Detector::BUILTIN.iter().map(|d| d.as_str()).collect();
                push(
                    path.clone(),
                    &format!("unknown detector (expected one of {})", known.join(", ")),
                );
            }
            if rule.restore
                && rule.action != Action::Redact
                && rule.output_action != Some(Action::Redact)
            {
                push(format!("{path}.restore"), "restore needs action redact");
            }
            if rule.output_action.is_some() && rule.direction != Directions::Both {
                push(
                    format!("{path}.output_action"),
                    "output_action needs direction both",
                );
            }
        }
        if let Some(inj) = &self.prompt_injection {
            if inj.threshold == 0 {
                push("prompt_injection.threshold".into(), "must be at least 1");
            }
            for (i, w) in inj.extra_phrases.iter().enumerate() {
                if w.trim().is_empty() {
                    push(
                        format!("prompt_injection.extra_phrases[{i}]"),
                        "empty phrase",
                    );
                }
            }
        }
        let mut ids = BTreeSet::new();
        let mut check_id = |path: String, id: &str, push: &mut dyn FnMut(String, &str)| {
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                push(
                    path,
                    "id must be non-empty ASCII letters, digits, '_' or '-'",
                );
            } else if Detector::from_name(id).is_some() || id == "prompt_injection" {
                push(path, "id collides with a built-in detector name");
            } else if !ids.insert(id.to_string()) {
                push(path, "duplicate id");
            }
        };
        let check_words = |path: String, words: &[String], push: &mut dyn FnMut(String, &str)| {
            if words.is_empty() {
                push(path.clone(), "word list is empty");
            }
            for (i, w) in words.iter().enumerate() {
                if w.trim().is_empty() {
                    push(format!("{path}[{i}]"), "empty word");
                }
            }
        };
        for (i, t) in self.denied_topics.iter().enumerate() {
            check_id(format!("denied_topics[{i}].id"), &t.id, &mut push);
            check_words(format!("denied_topics[{i}].words"), &t.words, &mut push);
        }
        for (i, c) in self.custom.iter().enumerate() {
            let path = format!("custom[{i}]");
            check_id(format!("{path}.id"), &c.id, &mut push);
            match (&c.regex, &c.words) {
                (Some(_), Some(_)) | (None, None) => {
                    push(path.clone(), "exactly one of regex or words is required")
                }
                (Some(re), None) => match regex::Regex::new(re) {
                    Err(e) => push(format!("{path}.regex"), &e.to_string()),
                    Ok(r) if r.is_match("") => {
                        push(format!("{path}.regex"), "matches the empty string")
                    }
                    Ok(_) => {}
                },
                (None, Some(words)) => check_words(format!("{path}.words"), words, &mut push),
            }
            if c.restore && c.action != Action::Redact {
                push(format!("{path}.restore"), "restore needs action redact");
            }
        }
        if self.max_prompt_tokens == Some(0) {
            push(
                "max_prompt_tokens".into(),
                "must be at least 1 (omit for no limit)",
            );
        }
        if let Some(w) = &self.webhook {
            for (field, message) in w.problems() {
                push(format!("webhook.{field}"), &message);
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(ProfileError { problems: p })
        }
    }
}
