//! Cache keys: SHA-256 of the normalized request together with everything that must keep
//! two answers apart (inbound format, public model, tenant scope).
//!
//! Normalization: the body is parsed as JSON and written back canonically (object keys
//! sorted at every depth, no whitespace, numbers as parsed). Fields that do not change the
//! answer are dropped: `user` and `metadata` (end-user ids and tags), and `stream` when it
//! is `false` (the default). `stream` itself and `stream_options` stay: a streamed answer
//! is cached as the recorded events, which differ from a JSON answer and depend on
//! `stream_options.include_usage`.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Fields removed before hashing (top level only).
pub const IGNORED_FIELDS: &[&str] = &["user", "metadata"];

/// A cache key: 32 bytes of SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// The key of a request `body` (JSON) sent in `format` (e.g. `openai`, `anthropic`) for
    /// the public `model`, within `scope` (the team, or the key when it has none).
    pub fn new(
        format: &str,
        model: &str,
        scope: &str,
        body: &[u8],
    ) -> Result<CacheKey, serde_json::Error> {
        let value: Value = serde_json::from_slice(body)?;
        Ok(CacheKey::from_value(format, model, scope, value))
    }

    /// Like [`CacheKey::new`] with an already parsed body.
    pub fn from_value(format: &str, model: &str, scope: &str, mut body: Value) -> CacheKey {
        if let Value::Object(map) = &mut body {
            for field in IGNORED_FIELDS {
                map.remove(*field);
            }
            if map.get("stream") == Some(&Value::Bool(false)) {
                map.remove("stream");
            }
            map.remove("model");
        }
        let mut hasher = Sha256::new();
        // Length-prefixed parts: no two different part lists hash the same bytes.
        for part in [format, model, scope] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let mut canonical = Vec::with_capacity(256);
        write_canonical(&body, &mut canonical);
        hasher.update(&canonical);
        CacheKey(hasher.finalize().into())
    }

    /// Lower-case hex, for storage keys.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Writes `value` as canonical JSON: object keys sorted (by their UTF-8 bytes), no spaces.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, out),
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is deterministic.
    out.extend_from_slice(Value::String(s.to_string()).to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(body: &str) -> CacheKey {
        CacheKey::new("openai", "gpt", "team:a", body.as_bytes()).unwrap()
    }

    #[test]
    fn key_order_whitespace_and_ignored_fields_do_not_matter() {
        let a =
            key(r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"temperature":0}"#);
        let b = key(
            r#"{ "temperature": 0, "user": "alice", "metadata": {"x": 1}, "stream": false,
                 "messages": [ {"content": "hi", "role": "user"} ], "model": "gpt" }"#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn content_format_model_scope_and_streaming_matter() {
        let body = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let base = key(body);
        assert_ne!(
            base,
            key(r#"{"messages":[{"role":"user","content":"hi!"}]}"#)
        );
        assert_ne!(
            base,
            key(r#"{"messages":[{"role":"user","content":"hi"}],"temperature":1}"#)
        );
        assert_ne!(
            base,
            key(r#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#)
        );
        assert_ne!(
            base,
            CacheKey::new("anthropic", "gpt", "team:a", body.as_bytes()).unwrap()
        );
        assert_ne!(
            base,
            CacheKey::new("openai", "gpt2", "team:a", body.as_bytes()).unwrap()
        );
        assert_ne!(
            base,
            CacheKey::new("openai", "gpt", "team:b", body.as_bytes()).unwrap()
        );
        // Length prefixes keep part boundaries apart.
        assert_ne!(
            CacheKey::new("ab", "c", "s", body.as_bytes()).unwrap(),
            CacheKey::new("a", "bc", "s", body.as_bytes()).unwrap()
        );
        // Array order is meaningful.
        assert_ne!(key(r#"{"stop":["a","b"]}"#), key(r#"{"stop":["b","a"]}"#));
    }

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let v: Value =
            serde_json::from_str(r#"{"b":{"y":1,"x":[{"d":"\n","c":2.5}]},"a":null}"#).unwrap();
        let mut out = Vec::new();
        write_canonical(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":null,"b":{"x":[{"c":2.5,"d":"\n"}],"y":1}}"#
        );
        assert_eq!(key("{}").hex().len(), 64);
    }
}
