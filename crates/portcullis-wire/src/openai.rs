//! OpenAI-compatible shapes: chat completion and embeddings requests (read only as far as
//! the gateway needs; every other field passes through untouched), usage, and errors.

use crate::WireError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A client's JSON request body whose `model` the gateway must read and rewrite, keeping
/// every other field as sent (unknown fields round-trip to OpenAI-family upstreams).
///
/// Only the top level is parsed: each field's value is kept as the client's own JSON text
/// (validated, not turned into a tree), so reading a body and writing it upstream with
/// another `model` costs one scan and a copy, and untouched fields reach the upstream
/// byte for byte. The few fields the gateway reads are parsed on demand ([`Self::get`]).
#[derive(Debug, Clone)]
pub struct PassthroughRequest {
    /// The public model name the client asked for.
    pub model: String,
    /// `"stream": true` was requested.
    pub stream: bool,
    /// The client itself asked for a final usage chunk (`stream_options.include_usage`).
    pub client_wants_usage: bool,
    fields: RawFields,
}

/// The top-level fields of a JSON object in order, each value as its JSON text; a key sent
/// twice keeps its first place and its last value (as a JSON object map would). Objects
/// with more than [`RawFields::INDEXED_FROM`] fields also get a key index, so that neither
/// parsing nor lookups grow quadratically with a hostile body of a million keys.
#[derive(Debug, Clone, Default)]
struct RawFields {
    list: Vec<(String, Box<RawValue>)>,
    index: Option<HashMap<String, usize>>,
}

impl RawFields {
    /// Field count from which keys are looked up through a hash index.
    const INDEXED_FROM: usize = 16;

    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.list.iter().position(|(k, _)| k == key),
        }
    }

    fn get(&self, key: &str) -> Option<&RawValue> {
        self.position(key).map(|i| &*self.list[i].1)
    }

    fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    fn insert(&mut self, key: String, value: Box<RawValue>) {
        if let Some(i) = self.position(&key) {
            self.list[i].1 = value;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.list.len());
        }
        self.list.push((key, value));
        if self.index.is_none() && self.list.len() > Self::INDEXED_FROM {
            let index = self.list.iter().enumerate();
            self.index = Some(index.map(|(i, (k, _))| (k.clone(), i)).collect());
        }
    }
}

impl<'de> Deserialize<'de> for RawFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawFields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawFields, A::Error> {
                let mut fields = RawFields::default();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.insert(key, value);
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Parses one field's JSON text. The body's scan checks the JSON syntax but lets through
/// what only a full parse refuses (a lone surrogate escape, a number beyond `f64`, nesting
/// past the parser's depth limit): a field the gateway reads must parse, so that is an
/// error naming the field, never a field read as absent.
fn parse_field(field: &str, raw: &RawValue) -> Result<Value, WireError> {
    serde_json::from_str(raw.get())
        .map_err(|e| WireError::field(field, format!("'{field}' is not valid JSON: {e}")))
}

impl PassthroughRequest {
    /// Parses a body that must be a JSON object with a string `model`.
    pub fn parse(body: &[u8]) -> Result<PassthroughRequest, WireError> {
        let fields: RawFields = serde_json::from_slice(body).map_err(|e| {
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
            Some(raw) => match parse_field("model", raw)? {
                Value::String(m) if !m.is_empty() => m,
                _ => {
                    return Err(WireError::field(
                        "model",
                        "'model' must be a non-empty string",
                    ))
                }
            },
            None => {
                return Err(WireError::field(
                    "model",
                    "missing required parameter: 'model'",
                ))
            }
        };
        let stream = match fields.get("stream").map(|raw| parse_field("stream", raw)) {
            None => false,
            Some(Ok(Value::Null)) => false,
            Some(Ok(Value::Bool(b))) => b,
            Some(Ok(_)) => return Err(WireError::field("stream", "'stream' must be a boolean")),
            Some(Err(e)) => return Err(e),
        };
        let client_wants_usage = match fields.get("stream_options") {
            Some(raw) => parse_field("stream_options", raw)?
                .get("include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            None => false,
        };
        Ok(PassthroughRequest {
            model,
            stream,
            client_wants_usage,
            fields,
        })
    }

    /// Checks that a required field is present (e.g. `messages` for chat, `input` for embeddings).
    pub fn require(&self, field: &str, expect_array: bool) -> Result<(), WireError> {
        let text = self.fields.get(field).map(RawValue::get);
        match text {
            None | Some("null") => Err(WireError::field(
                field,
                format!("missing required parameter: '{field}'"),
            )),
            Some(t) if t.starts_with('[') => {
                let empty = t[1..].trim_start().starts_with(']');
                if expect_array && empty {
                    Err(WireError::field(
                        field,
                        format!("'{field}' must not be empty"),
                    ))
                } else {
                    Ok(())
                }
            }
            Some(_) if expect_array => Err(WireError::field(
                field,
                format!("'{field}' must be an array"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// A field as sent by the client, parsed now (each call parses it again: read the few
    /// fields a decision needs, not the whole body); an error when it does not parse.
    pub fn get(&self, field: &str) -> Result<Option<Value>, WireError> {
        self.fields
            .get(field)
            .map(|raw| parse_field(field, raw))
            .transpose()
    }

    /// The fields to send upstream: the client's, with `model` replaced by the upstream name;
    /// an error when one of them does not parse.
    pub fn upstream_fields(&self, upstream_model: &str) -> Result<Map<String, Value>, WireError> {
        let mut fields = self
            .fields
            .list
            .iter()
            .map(|(k, v)| Ok((k.clone(), parse_field(k, v)?)))
            .collect::<Result<Map<String, Value>, WireError>>()?;
        fields.insert("model".into(), Value::String(upstream_model.to_string()));
        Ok(fields)
    }

    /// The request's JSON with some top-level fields replaced (in place) or added (at the
    /// end); every other field is written as the client sent it: the upstream body of a
    /// call in the client's own format.
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
        // `parse` has checked that `stream_options` parses.
        let options = match self.get("stream_options") {
            Ok(Some(Value::Object(mut o))) => {
                o.insert("include_usage".into(), Value::Bool(true));
                Value::Object(o)
            }
            _ => serde_json::json!({"include_usage": true}),
        };
        self.encode_with(&[("model", &model), ("stream_options", &options)])
    }
}

/// A field map serialized with overrides (see [`PassthroughRequest::encode_with`]).
struct Overridden<'a> {
    fields: &'a RawFields,
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
            .filter(|(k, _)| !self.fields.contains(k))
            .collect();
        let mut map = serializer.serialize_map(Some(self.fields.list.len() + added.len()))?;
        for (key, raw) in &self.fields.list {
            match replacing(key) {
                Some(value) => map.serialize_entry(key, value)?,
                None => map.serialize_entry(key, raw)?,
            }
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
        let out = Value::Object(req.upstream_fields("up").unwrap());
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
        let mut fields = req.upstream_fields("m").unwrap();
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
        let as_value = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();
        for body in bodies {
            let req = PassthroughRequest::parse(body).unwrap();
            let plain = Value::Object(req.upstream_fields("up/m").unwrap());
            assert_eq!(as_value(&req.encode_upstream("up/m", false)), plain);
            let mut fields = req.upstream_fields("up/m").unwrap();
            request_stream_usage(&mut fields);
            let streamed = Value::Object(fields);
            assert_eq!(as_value(&req.encode_upstream("up/m", true)), streamed);
        }
        let req = PassthroughRequest::parse(br#"{"model":"a","b":1}"#).unwrap();
        let extra = Value::Bool(true);
        assert_eq!(
            req.encode_with(&[("c", &extra), ("model", &Value::from("z"))]),
            br#"{"model":"z","b":1,"c":true}"#
        );
    }

    #[test]
    fn untouched_fields_reach_the_upstream_byte_for_byte() {
        let body = br#"{ "model" : "pub", "messages": [ {"content": "caf\u00e9 \ud83d\ude00", "n": 1.50e2} ], "model":"again", "z" :{ } }"#;
        let req = PassthroughRequest::parse(body).unwrap();
        assert_eq!(req.model, "again", "a repeated key keeps its last value");
        let out = req.encode_upstream("up", false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"up","messages":[ {"content": "caf\u00e9 \ud83d\ude00", "n": 1.50e2} ],"z":{ }}"#
        );
        assert_eq!(req.get("z").unwrap(), Some(serde_json::json!({})));
        assert_eq!(req.get("absent").unwrap(), None);
    }

    #[test]
    fn many_keys_parse_in_linear_time_and_keep_json_map_semantics() {
        let mut body = String::from(r#"{"model":"m","#);
        for i in 0..200_000 {
            body.push_str(&format!(r#""k{i}":{i},"#));
        }
        body.push_str(r#""k7":"last","model":"final"}"#);
        let started = std::time::Instant::now();
        let req = PassthroughRequest::parse(body.as_bytes()).unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "parsing 200k keys took {:?}",
            started.elapsed()
        );
        assert_eq!(req.model, "final");
        assert_eq!(req.get("k7").unwrap(), Some(Value::from("last")));
        assert_eq!(req.get("k199999").unwrap(), Some(Value::from(199_999)));
        let out: Value = serde_json::from_slice(&req.encode_upstream("up", false)).unwrap();
        let keys: Vec<&String> = out.as_object().unwrap().keys().take(3).collect();
        assert_eq!(keys, ["model", "k0", "k1"], "first places kept");
        assert_eq!(out["model"], "up");
        assert_eq!(out.as_object().unwrap().len(), 200_001);
    }

    #[test]
    fn a_read_field_that_only_the_full_parse_refuses_is_an_error_not_absent() {
        // The raw scan accepts these; a full parse does not.
        let body =
            br#"{"model":"m","messages":[{"content":"\ud800 x"}],"max_tokens":1e400,"n":1e400}"#;
        let req = PassthroughRequest::parse(body).unwrap();
        for field in ["messages", "max_tokens"] {
            let e = req.get(field).unwrap_err();
            assert!(e.to_string().contains("not valid JSON"), "{e}");
            assert_eq!(e, WireError::field(field, e.to_string()));
        }
        assert!(req.upstream_fields("up").is_err());
        for body in [
            &br#"{"model":"\ud800 x"}"#[..],
            br#"{"model":"m","stream":1e400}"#,
            br#"{"model":"m","stream_options":{"include_usage":1e400}}"#,
        ] {
            let e = PassthroughRequest::parse(body).unwrap_err();
            assert!(e.to_string().contains("not valid JSON"), "{e}");
        }
    }

    #[test]
    fn nested_values_are_validated() {
        for body in [
            &br#"{"model":"m","messages":[{"a":}]}"#[..],
            br#"{"model":"m","messages":[1,]}"#,
            br#"{"model":"m","x":"\q"}"#,
            br#"{"model":"m"} trailing"#,
        ] {
            let e = PassthroughRequest::parse(body).unwrap_err();
            assert!(e.to_string().contains("not valid JSON"), "{e}");
        }
        let req =
            PassthroughRequest::parse(br#"{"model":"m","messages":[ ],"input":null}"#).unwrap();
        assert!(req.require("messages", true).is_err());
        assert!(req.require("messages", false).is_ok());
        assert!(req.require("input", false).is_err());
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
