//! `POST /v1/embeddings`: deterministic unit vectors, float or base64 encoded.

use base64::Engine as _;
use http::{Response, StatusCode};
use serde_json::Value;

use super::types::{Embedding, EmbeddingList, EmbeddingRequest, EmbeddingUsage, EmbeddingValue};
use super::{model_fault, tokens_for_chars};
use crate::faults::{self, Deferred};
use crate::respond::{self, Body};
use crate::server::Ctx;

/// Dimensions of an embedding unless the request asks for `dimensions`.
pub const DEFAULT_DIMENSIONS: usize = 8;
const MAX_DIMENSIONS: usize = 4096;

/// One input of an embeddings request.
enum Input<'a> {
    Text(&'a str),
    Tokens(Vec<u64>),
}

pub(crate) async fn handle(ctx: &Ctx<'_>) -> Response<Body> {
    let req: EmbeddingRequest = match serde_json::from_slice(ctx.body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("We could not parse the JSON body of your request. ({e})");
            return respond::bad_request(&msg, None);
        }
    };
    let Some(model) = req.model.as_deref().filter(|m| !m.is_empty()) else {
        return respond::bad_request("you must provide a model parameter", Some("model"));
    };
    let Some(inputs) = req.input.as_ref().and_then(parse_input) else {
        return respond::bad_request(
            "'input' must be a string, an array of strings, an array of tokens or an array of token arrays.",
            Some("input"),
        );
    };
    let dims = req.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    if dims == 0 || dims > MAX_DIMENSIONS {
        return respond::bad_request("'dimensions' is out of range.", Some("dimensions"));
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            let msg = format!("'{other}' is not one of ['float', 'base64'] - 'encoding_format'");
            return respond::bad_request(&msg, Some("encoding_format"));
        }
    };
    match model_fault(ctx, model).await {
        Ok(Deferred::Malformed) => return faults::malformed_response(false),
        Ok(_) => {}
        Err(resp) => return resp,
    }

    let mut prompt_tokens = 0u32;
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let (tokens, vector) = match input {
                Input::Text(t) => (
                    tokens_for_chars(t.chars().count()),
                    embed(t.as_bytes(), dims),
                ),
                Input::Tokens(ids) => {
                    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
                    (
                        u32::try_from(ids.len()).unwrap_or(u32::MAX),
                        embed(&bytes, dims),
                    )
                }
            };
            prompt_tokens = prompt_tokens.saturating_add(tokens);
            let embedding = if base64 {
                EmbeddingValue::Base64(encode_base64(&vector))
            } else {
                EmbeddingValue::Floats(vector)
            };
            Embedding {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let body = EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    };
    respond::json(StatusCode::OK, &body)
}

fn parse_input(value: &Value) -> Option<Vec<Input<'_>>> {
    match value {
        Value::String(s) => Some(vec![Input::Text(s)]),
        Value::Array(items) if !items.is_empty() => {
            if items.iter().all(Value::is_string) {
                Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(Input::Text)
                        .collect(),
                )
            } else if items.iter().all(Value::is_u64) {
                Some(vec![Input::Tokens(tokens(items)?)])
            } else {
                items
                    .iter()
                    .map(|item| match item {
                        Value::Array(ids) if !ids.is_empty() => Some(Input::Tokens(tokens(ids)?)),
                        _ => None,
                    })
                    .collect()
            }
        }
        _ => None,
    }
}

fn tokens(items: &[Value]) -> Option<Vec<u64>> {
    items.iter().map(Value::as_u64).collect()
}

/// A deterministic unit vector derived from the input bytes (FNV-1a seed, splitmix64).
pub fn embed(input: &[u8], dims: usize) -> Vec<f32> {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in input {
        seed ^= u64::from(b);
        seed = seed.wrapping_mul(0x0100_0000_01b3);
    }
    let mut v: Vec<f32> = (0..dims as u64)
        .map(|i| {
            let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            // Top 24 bits -> [-1, 1).
            ((z >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Base64 (standard alphabet, padded) of the little-endian `f32` bytes, as OpenAI sends.
fn encode_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
