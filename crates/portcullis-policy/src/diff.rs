//! Semantic, human-readable difference between two policy documents: what was added,
//! removed or changed, by path, with before/after values. Rate limits and budgets are
//! matched by id (not position), lists of names/globs/CIDRs as sets.
//!
//! ```text
//! + teams.research
//! - budgets[daily-cap]
//! ~ rate_limits[team-rpm].requests: 100 -> 50
//! + teams.ml.models: gpt-4o*
//! ```

use crate::document::{sorted, PolicyDocument};
use serde_json::{Map, Value};

/// Kind of one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in the new document.
    Added,
    /// Only in the old document.
    Removed,
    /// In both, with other values.
    Changed,
}

/// One change at one path.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    /// Added, removed or changed.
    pub kind: ChangeKind,
    /// Where, e.g. `rate_limits[team-rpm].requests` or `teams.research`.
    pub path: String,
    /// Old value (`None` when added; for set members, the member removed).
    pub before: Option<Value>,
    /// New value (`None` when removed; for set members, the member added).
    pub after: Option<Value>,
}

/// Every change between two documents, in path order. `Display` renders one line each.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PolicyDiff {
    /// The changes.
    pub changes: Vec<Change>,
}

impl PolicyDiff {
    /// True when the documents mean the same.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let detail = |v: &Option<Value>| match v {
            Some(v) if !v.is_object() => format!(": {}", show(v)),
            _ => String::new(),
        };
        match self.kind {
            ChangeKind::Added => write!(f, "+ {}{}", self.path, detail(&self.after)),
            ChangeKind::Removed => write!(f, "- {}{}", self.path, detail(&self.before)),
            ChangeKind::Changed => {
                let b = self.before.as_ref().map_or(String::new(), show);
                let a = self.after.as_ref().map_or(String::new(), show);
                write!(f, "~ {}: {b} -> {a}", self.path)
            }
        }
    }
}

impl std::fmt::Display for PolicyDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "no changes");
        }
        for c in &self.changes {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

/// The semantic difference from `old` to `new`.
pub fn diff(old: &PolicyDocument, new: &PolicyDocument) -> PolicyDiff {
    let mut changes = Vec::new();
    walk("", &keyed(old), &keyed(new), &mut changes);
    PolicyDiff { changes }
}

/// Canonical JSON with `rate_limits` and `budgets` turned into maps keyed `[id]`.
fn keyed(doc: &PolicyDocument) -> Value {
    let mut value = sorted(serde_json::to_value(doc).unwrap_or(Value::Null));
    if let Value::Object(root) = &mut value {
        for list in ["rate_limits", "budgets"] {
            if let Some(Value::Array(items)) = root.remove(list) {
                let mut map = Map::new();
                for mut item in items {
                    let id = item
                        .as_object_mut()
                        .and_then(|o| o.remove("id"))
                        .map_or_else(String::new, |v| show(&v));
                    map.insert(format!("[{id}]"), item);
                }
                root.insert(list.into(), Value::Object(map));
            }
        }
    }
    value
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() || key.starts_with('[') {
        format!("{path}{key}")
    } else {
        format!("{path}.{key}")
    }
}

fn change(kind: ChangeKind, path: String, before: Option<&Value>, after: Option<&Value>) -> Change {
    Change {
        kind,
        path,
        before: before.cloned(),
        after: after.cloned(),
    }
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let p = join(path, key);
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (Some(x), None) => out.push(change(ChangeKind::Removed, p, Some(x), None)),
                    (None, Some(y)) => out.push(change(ChangeKind::Added, p, None, Some(y))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if is_scalars(a) && is_scalars(b) => {
            for x in a.iter().filter(|x| !b.contains(x)) {
                out.push(change(ChangeKind::Removed, path.into(), Some(x), None));
            }
            for y in b.iter().filter(|y| !a.contains(y)) {
                out.push(change(ChangeKind::Added, path.into(), None, Some(y)));
            }
        }
        _ => out.push(change(
            ChangeKind::Changed,
            path.into(),
            Some(old),
            Some(new),
        )),
    }
}

fn is_scalars(items: &[Value]) -> bool {
    items.iter().all(|v| !v.is_object() && !v.is_array())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::parse_policy;

    #[test]
    fn reports_semantic_changes() {
        let old = parse_policy(
            "version: 1
teams:
  a: { models: [gpt-4o, mock-echo], rate_limits: [team-rpm] }
rate_limits:
  - { id: team-rpm, scope: team, requests: 100, interval: 1m }
budgets:
  - { id: daily-cap, scope: team, period: day, usd: 10 }
ip: { deny: [10.0.0.0/8] }
",
        )
        .unwrap()
        .document;
        let new = parse_policy(
            "version: 1
teams:
  a: { models: [mock-echo, gpt-4o*], rate_limits: [team-rpm] }
  research: { models: [claude-*], rate_limits: [team-rpm] }
rate_limits:
  - { id: team-rpm, scope: team, requests: 50, interval: 60 }
ip: { deny: [10.0.0.0/8, 192.0.2.1] }
",
        )
        .unwrap()
        .document;
        let text = diff(&old, &new).to_string();
        assert_eq!(
            text,
            "- budgets[daily-cap]
+ ip.deny: 192.0.2.1
~ rate_limits[team-rpm].requests: 100 -> 50
- teams.a.models: gpt-4o
+ teams.a.models: gpt-4o*
+ teams.research
",
            "{text}"
        );
        assert!(diff(&old, &old).is_empty());
        assert_eq!(diff(&old, &old).to_string(), "no changes\n");
    }
}
