//! The security policy document: YAML in, every problem with its path out, a canonical
//! hash for versioning.
//!
//! Parsing is strict (`deny_unknown_fields`) and collects every problem: each section and
//! each list item is parsed on its own (with `serde_path_to_error`), so one bad rate limit
//! does not hide a bad team; then cross-checks run over what parsed (see `check`).

mod check;
mod types;

pub use types::*;

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One problem (error or warning) and where it is, e.g. `teams.research.models[1]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Dotted path into the document; empty for the document itself.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A document that was refused: every error, and the warnings found on the way.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid policy document ({} problem(s)): {}", .problems.len(), join_problems(.problems))]
pub struct PolicyErrors {
    /// Every error, in document order.
    pub problems: Vec<Problem>,
    /// Warnings about the parts that were readable.
    pub warnings: Vec<Problem>,
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A document that passed validation, with its warnings and canonical hash.
#[derive(Debug, Clone)]
pub struct ValidatedPolicy {
    /// The parsed document.
    pub document: PolicyDocument,
    /// Risky but legal settings (shown by `policy validate` and `policy apply`).
    pub warnings: Vec<Problem>,
    /// [`canonical_hash`] of the document.
    pub hash: String,
}

/// Parses and validates a YAML policy document.
pub fn parse_policy(text: &str) -> Result<ValidatedPolicy, PolicyErrors> {
    let mut problems = Vec::new();
    let root: Value = match serde_yaml_ng::from_str(text) {
        Ok(Value::Null) => Value::Mapping(Default::default()),
        Ok(v) => v,
        Err(e) => {
            problems.push(problem("", format!("not valid YAML: {e}")));
            return Err(PolicyErrors {
                problems,
                warnings: vec![],
            });
        }
    };
    let Value::Mapping(map) = root else {
        problems.push(problem("", "the document must be a mapping"));
        return Err(PolicyErrors {
            problems,
            warnings: vec![],
        });
    };
    let mut doc = PolicyDocument {
        version: 0,
        default_team: None,
        roles: BTreeMap::new(),
        teams: BTreeMap::new(),
        rate_limits: vec![],
        budgets: vec![],
        ip: IpRules::default(),
        guardrails: BTreeMap::new(),
    };
    let mut positions = check::Positions::default();
    let mut saw_version = false;
    for (key, value) in map {
        let Some(key) = key.as_str().map(str::to_owned) else {
            problems.push(problem("", "top-level keys must be strings"));
            continue;
        };
        let p = &mut problems;
        match key.as_str() {
            "version" => {
                saw_version = true;
                if let Some(v) = section(&key, value, p) {
                    doc.version = v;
                }
            }
            "default_team" => doc.default_team = section(&key, value, p).flatten(),
            "roles" => doc.roles = named(&key, value, p),
            "teams" => doc.teams = named(&key, value, p),
            "guardrails" => doc.guardrails = named(&key, value, p),
            "ip" => doc.ip = section(&key, value, p).unwrap_or_default(),
            "rate_limits" => {
                (doc.rate_limits, positions.rate_limits) = listed(&key, value, p);
            }
            "budgets" => (doc.budgets, positions.budgets) = listed(&key, value, p),
            other => problems.push(problem(
                other,
                "unknown field; expected one of version, default_team, roles, teams, \
                 rate_limits, budgets, ip, guardrails",
            )),
        }
    }
    if !saw_version {
        problems.push(problem("version", "missing; write `version: 1`"));
    }
    let mut warnings = Vec::new();
    check::check(&doc, &positions, saw_version, &mut problems, &mut warnings);
    check_guardrails(&doc, &mut problems);
    if problems.is_empty() {
        let hash = canonical_hash(&doc);
        Ok(ValidatedPolicy {
            document: doc,
            warnings,
            hash,
        })
    } else {
        Err(PolicyErrors { problems, warnings })
    }
}

/// Validates a document built in code (not parsed): the same cross-checks as
/// [`parse_policy`].
pub fn validate_document(doc: PolicyDocument) -> Result<ValidatedPolicy, PolicyErrors> {
    let positions = check::Positions {
        rate_limits: (0..doc.rate_limits.len()).collect(),
        budgets: (0..doc.budgets.len()).collect(),
    };
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    check::check(&doc, &positions, true, &mut problems, &mut warnings);
    check_guardrails(&doc, &mut problems);
    if problems.is_empty() {
        let hash = canonical_hash(&doc);
        Ok(ValidatedPolicy {
            document: doc,
            warnings,
            hash,
        })
    } else {
        Err(PolicyErrors { problems, warnings })
    }
}

/// The canonical JSON of a document: object keys sorted at every depth, no whitespace.
/// Two documents with the same meaning (key order, comments, spelling of intervals such
/// as `60` vs `1m`) have the same canonical JSON.
pub fn canonical_json(doc: &PolicyDocument) -> String {
    let value = serde_json::to_value(doc).unwrap_or(serde_json::Value::Null);
    sorted(value).to_string()
}

/// Lowercase hex SHA-256 of [`canonical_json`]: the version hash of a document.
pub fn canonical_hash(doc: &PolicyDocument) -> String {
    hex::encode(Sha256::digest(canonical_json(doc).as_bytes()))
}

/// Recursively sorts object keys (serde_json keeps insertion order in this workspace).
pub(crate) fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address (as /32 or /128).
pub fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("'{text}' is not an IP network (examples: 10.0.0.0/8, 192.0.2.7)"))
}

pub(crate) fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

fn from_value<T: DeserializeOwned>(
    path: &str,
    value: Value,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_string()
            } else if inner.starts_with('[') {
                format!("{path}{inner}")
            } else {
                format!("{path}.{inner}")
            };
            problems.push(problem(full, e.into_inner().to_string()));
            None
        }
    }
}

fn section<T: DeserializeOwned>(path: &str, value: Value, p: &mut Vec<Problem>) -> Option<T> {
    from_value(path, value, p)
}

fn named<T: DeserializeOwned>(
    path: &str,
    value: Value,
    p: &mut Vec<Problem>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    match value {
        Value::Null => {}
        Value::Mapping(map) => {
            for (key, item) in map {
                let Some(name) = key.as_str() else {
                    p.push(problem(path, "names must be strings"));
                    continue;
                };
                if let Some(v) = from_value(&format!("{path}.{name}"), item, p) {
                    out.insert(name.to_string(), v);
                }
            }
        }
        _ => p.push(problem(path, "must be a mapping of name to definition")),
    }
    out
}

fn listed<T: DeserializeOwned>(
    path: &str,
    value: Value,
    p: &mut Vec<Problem>,
) -> (Vec<T>, Vec<usize>) {
    let (mut items, mut at) = (Vec::new(), Vec::new());
    match value {
        Value::Null => {}
        Value::Sequence(seq) => {
            for (i, item) in seq.into_iter().enumerate() {
                if let Some(v) = from_value(&format!("{path}[{i}]"), item, p) {
                    items.push(v);
                    at.push(i);
                }
            }
        }
        _ => p.push(problem(path, "must be a list")),
    }
    (items, at)
}

#[cfg(test)]
mod tests;

/// Guardrail profiles are validated by the guardrails engine, every problem with its path.
fn check_guardrails(doc: &PolicyDocument, problems: &mut Vec<Problem>) {
    for (name, value) in &doc.guardrails {
        if let Err(e) = portcullis_guard::ProfileDef::from_value(value.clone()) {
            for p in e.problems {
                let path = if p.path.is_empty() {
                    format!("guardrails.{name}")
                } else {
                    format!("guardrails.{name}.{}", p.path)
                };
                problems.push(Problem {
                    path,
                    message: p.message,
                });
            }
        }
    }
}
