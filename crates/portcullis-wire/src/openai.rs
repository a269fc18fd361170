//! OpenAI-compatible shapes: chat completion and embeddings requests (read only as far as
//! the gateway needs; every other field passes through untouched), usage, and errors.

use crate::WireError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A client's JSON request body whose `model` the gateway must read and rewrite, keeping
/// every other field as sent (unknown fields round-trip to OpenAI-family upstreams).
#[derive(Debug, Clone)]
pub struct PassthroughRequest {
    /// The public model name the client asked for.
    pub model: String,
    /// `"stream": true` was requested.
    pub stream: bool,
    /// The client itself asked for a final usage chunk (`stream_options.include_usage`).
    pub client_wants_usage: bool,
    fields: Map<String, Value>,
}

impl PassthroughRequest {
    /// Parses a body that must be a JSON object with a string `model`.
    pub fn parse(body: &[u8]) -> Result<PassthroughRequest, WireError> {
        let fields: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
            let message = if e.is_data() {
                "request body must be a JSON object".to_string()
            } else {
                format!("request body is not valid JSON: {e}")
            };
            WireError::Malformed {
                message,
                param: None,
            }
        })?;
        let model = match fields.get("model") {
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            Some(_) => {
                return Err(WireError::field(
                    "model",
                    "'model' must be a non-empty string",
                ))
            }
            None => {
                return Err(WireError::field(
                    "model",
                    "missing required parameter: 'model'",
                ))
            }
        };
        let stream = match fields.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(WireError::field("stream", "'stream' must be a boolean")),
        };
        let client_wants_usage = fields
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(PassthroughRequest {
            model,
            stream,
            client_wants_usage,
            fields,
        })
    }

    /// Checks that a required field is present (e.g. `messages` for chat, `input` for embeddings).
    pub fn require(&self, field: &str, expect_array: bool) -> Result<(), WireError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Err(WireError::field(
                field,
                format!("missing required parameter: '{field}'"),
            )),
            Some(Value::Array(a)) if expect_array && a.is_empty() => Err(WireError::field(
                field,
                format!("'{field}' must not be empty"),
            )),
            Some(Value::Array(_)) => Ok(()),
            Some(_) if expect_array => Err(WireError::field(
                field,
                format!("'{field}' must be an array"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// A field as sent by the client.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// The fields to send upstream: the client's, with `model` replaced by the upstream name.
    pub fn upstream_fields(&self, upstream_model: &str) -> Map<String, Value> {
        self.clone().into_upstream_fields(upstream_model)
    }

    /// The request's JSON with some top-level fields replaced (in place) or added (at the
    /// end), exactly as `upstream_fields` plus inserts would serialize it, without copying
    /// the fields that stay: the upstream body of a call in the client's own format.
    pub fn encode_with(&self, overrides: &[(&str, &Value)]) -> Vec<u8> {
        serde_json::to_vec(&Overridden {
            fields: &self.fields,
            overrides,
        })
        .unwrap_or_default()
    }

    /// [`PassthroughRequest::encode_with`] with `model` set to the upstream name and, for a
    /// stream, `stream_options.include_usage` asked for (see [`request_stream_usage`]).
    pub fn encode_upstream(&self, upstream_model: &str, ask_stream_usage: bool) -> Vec<u8> {
        let model = Value::String(upstream_model.to_string());
        if !ask_stream_usage {
            return self.encode_with(&[("model", &model)]);
        }
        let options = match self.fields.get("stream_options") {
            Some(Value::Object(o)) => {
                let mut o = o.clone();
                o.insert("include_usage".into(), Value::Bool(true));
                Value::Object(o)
            }
            _ => serde_json::json!({"include_usage": true}),
        };
        self.encode_with(&[("model", &model), ("stream_options", &options)])
    }

    /// Like `upstream_fields`, consuming the request (no copy on the hot path).
    pub fn into_upstream_fields(self, upstream_model: &str) -> Map<String, Value> {
        let mut fields = self.fields;
        fields.insert("model".into(), Value::String(upstream_model.to_string()));
        fields
    }
}

/// A field map serialized with overrides (see [`PassthroughRequest::encode_with`]).
struct Overridden<'a> {
    fields: &'a Map<String, Value>,
    overrides: &'a [(&'a str, &'a Value)],
}

impl Serialize for Overridden<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let replacing = |key: &str| {
            self.overrides
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
        };
        let added: Vec<_> = self
            .overrides
            .iter()
            .filter(|(k, _)| !self.fields.contains_key(*k))
            .collect();
        let mut map = serializer.serialize_map(Some(self.fields.len() + added.len()))?;
        for (key, value) in self.fields {
            map.serialize_entry(key, replacing(key).unwrap_or(value))?;
        }
        for (key, value) in added {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Asks an OpenAI-format upstream for the final usage chunk of a stream
/// (`stream_options.include_usage`), keeping the client's other stream options.
pub fn request_stream_usage(fields: &mut Map<String, Value>) {
    let options = fields
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(o) = options {
        o.insert("include_usage".into(), Value::Bool(true));
    } else {
        *options = serde_json::json!({"include_usage": true});
    }
}

/// Token counts reported by an upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Sum as reported.
    #[serde(default)]
    pub total_tokens: u64,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

/// Reads `usage` from a complete (non-streamed) response or from one stream chunk.
pub fn usage_of(json: &[u8]) -> Option<Usage> {
    parse_usage(json).ok()?
}

/// Like `usage_of`, but tells a body that is not JSON at all (a broken upstream) apart
/// from one that simply carries no usage.
pub fn parse_usage(json: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
    serde_json::from_slice::<WithUsage>(json).map(|w| w.usage)
}

/// The error body OpenAI clients parse: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEnvelope<'a> {
    /// The error itself.
    pub error: ErrorDetail<'a>,
}

/// Fields of an OpenAI error.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetail<'a> {
    /// Human-readable explanation.
    pub message: &'a str,
    /// Error family, e.g. `invalid_request_error`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The request field at fault, if any.
    pub param: Option<&'a str>,
    /// Machine-readable code, e.g. `invalid_api_key`.
    pub code: Option<&'a str>,
}

/// Serializes an OpenAI error body.
pub fn error_body(message: &str, kind: &str, code: Option<&str>, param: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&ErrorEnvelope {
        error: ErrorDetail {
            message,
            kind,
            param,
            code,
        },
    })
    .unwrap_or_default()
}

/// Extracts the message from an upstream error body: `error.message` (OpenAI, Anthropic,
/// Gemini), a string `error`, or a top-level `message` (AWS).
pub fn upstream_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let Some(message) = v.get("error") else {
        // Bedrock and other AWS services answer `{"message": "..."}`.
        return v.get("message")?.as_str().map(str::to_owned);
    };
    match message {
        Value::String(s) => Some(s.clone()),
        other => other.get("message")?.as_str().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_keeps_unknown_fields_and_rewrites_model() {
        let body = br#"{"model":"pub","messages":[{"role":"user","content":"hi"}],"x_vendor":{"a":1},"temperature":0.2}"#;
        let req = PassthroughRequest::parse(body).unwrap();
        assert_eq!(req.model, "pub");
        assert!(!req.stream);
        req.require("messages", true).unwrap();
        let out = Value::Object(req.upstream_fields("up"));
        assert_eq!(out["model"], "up");
        assert_eq!(out["x_vendor"]["a"], 1);
        assert_eq!(out["temperature"], 0.2);
        assert!(out.get("stream_options").is_none());
    }

    #[test]
    fn streams_request_usage_without_losing_client_options() {
        let req = PassthroughRequest::parse(
            br#"{"model":"m","stream":true,"messages":[1],"stream_options":{"other":1}}"#,
        )
        .unwrap();
        assert!(req.stream && !req.client_wants_usage);
        let mut fields = req.upstream_fields("m");
        request_stream_usage(&mut fields);
        let out = Value::Object(fields);
        assert_eq!(out["stream_options"]["include_usage"], true);
        assert_eq!(out["stream_options"]["other"], 1);
        let req = PassthroughRequest::parse(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        assert!(req.client_wants_usage);
    }

    #[test]
    fn encoding_with_overrides_equals_copying_and_inserting() {
        let bodies: [&[u8]; 4] = [
            br#"{"model":"pub","messages":[{"role":"user","content":"hi \u00e9"}],"x":{"a":[1,2.5,null]},"temperature":0.2}"#,
            br#"{"messages":[1],"stream":true,"model":"pub","stream_options":{"other":1}}"#,
            br#"{"model":"pub","stream":true,"stream_options":"bogus","n":2}"#,
            br#"{"model":"pub","stream":true,"stream_options":{"include_usage":false,"z":0}}"#,
        ];
        for body in bodies {
            let req = PassthroughRequest::parse(body).unwrap();
            let plain = serde_json::to_vec(&req.upstream_fields("up/m")).unwrap();
            assert_eq!(req.encode_upstream("up/m", false), plain);
            let mut fields = req.upstream_fields("up/m");
            request_stream_usage(&mut fields);
            let streamed = serde_json::to_vec(&fields).unwrap();
            assert_eq!(req.encode_upstream("up/m", true), streamed);
        }
        let req = PassthroughRequest::parse(br#"{"model":"a","b":1}"#).unwrap();
        let extra = Value::Bool(true);
        assert_eq!(
            req.encode_with(&[("c", &extra), ("model", &Value::from("z"))]),
            br#"{"model":"z","b":1,"c":true}"#
        );
    }

    #[test]
    fn malformed_bodies_name_the_problem() {
        let e = PassthroughRequest::parse(b"{not json").unwrap_err();
        assert!(e.to_string().contains("not valid JSON"));
        let e = PassthroughRequest::parse(b"[1,2]").unwrap_err();
        assert!(e.to_string().contains("JSON object"));
        let e = PassthroughRequest::parse(br#"{"messages":[]}"#).unwrap_err();
        assert_eq!(
            e,
            WireError::field("model", "missing required parameter: 'model'")
        );
        let e = PassthroughRequest::parse(br#"{"model":5}"#).unwrap_err();
        assert!(e.to_string().contains("non-empty string"));
        let e = PassthroughRequest::parse(br#"{"model":"m","stream":"yes"}"#).unwrap_err();
        assert!(e.to_string().contains("boolean"));
        let req = PassthroughRequest::parse(br#"{"model":"m","messages":[]}"#).unwrap();
        assert!(req.require("messages", true).is_err());
        assert!(req.require("input", false).is_err());
    }

    #[test]
    fn usage_and_errors() {
        let u = usage_of(
            br#"{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
        )
        .unwrap();
        assert_eq!(u.total_tokens, 7);
        assert!(usage_of(br#"{"usage":null}"#).is_none());
        let body = error_body("bad", "invalid_request_error", Some("c"), None);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], Value::Null);
        assert_eq!(upstream_error_message(&body).as_deref(), Some("bad"));
        assert_eq!(
            upstream_error_message(br#"{"error":"plain"}"#).as_deref(),
            Some("plain")
        );
    }
}
