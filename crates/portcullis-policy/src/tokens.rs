//! Prompt-token estimation with a real BPE tokenizer (tiktoken's `o200k_base` and
//! `cl100k_base`, embedded in the `tiktoken-rs` crate: nothing is downloaded).
//!
//! Each encoding is built once, lazily, on first use. Measured in the dev profile
//! (dependencies at opt-level 1): both vocabularies ≈0.3–0.7 s together; encoding 11 KB
//! of prose ≈1.6 ms. Call [`warm_up`] at startup when token limits are configured so no
//! request pays the build, and keep encoding off the hot path when no token limit
//! applies — ask
//! [`crate::decide::CompiledPolicy::needs_token_estimate`] first. Counts are estimates
//! for non-OpenAI models (their tokenizers differ by ~10–20%); the upstream's reported
//! usage settles the reservation after the call.

use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

/// A tokenizer vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GPT-3.5 / GPT-4 vocabulary.
    Cl100k,
    /// GPT-4o / o-series / GPT-4.1+ vocabulary (the default).
    O200k,
}

static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();
static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();

fn bpe(encoding: Encoding) -> Option<&'static CoreBPE> {
    match encoding {
        Encoding::Cl100k => CL100K.get_or_init(|| tiktoken_rs::cl100k_base().ok()),
        Encoding::O200k => O200K.get_or_init(|| tiktoken_rs::o200k_base().ok()),
    }
    .as_ref()
}

/// The vocabulary that best approximates `model`'s tokenizer.
pub fn encoding_for_model(model: &str) -> Encoding {
    let m = model.rsplit('/').next().unwrap_or(model);
    if m.starts_with("gpt-4o")
        || m.starts_with("gpt-4.1")
        || m.starts_with("gpt-5")
        || m.starts_with("chatgpt-4o")
        || m.starts_with('o')
    {
        Encoding::O200k
    } else if m.starts_with("gpt-4") || m.starts_with("gpt-3.5") || m.starts_with("text-embedding")
    {
        Encoding::Cl100k
    } else {
        Encoding::O200k
    }
}

/// Builds both vocabularies now (startup), instead of on the first request.
pub fn warm_up() {
    let _ = bpe(Encoding::Cl100k);
    let _ = bpe(Encoding::O200k);
}

/// Tokens of `text` in `encoding` (special-token text is counted as ordinary text).
/// Falls back to one token per 4 bytes if the vocabulary failed to load.
pub fn count_tokens(encoding: Encoding, text: &str) -> u64 {
    match bpe(encoding) {
        Some(bpe) => bpe.encode_ordinary(text).len() as u64,
        None => text.len().div_ceil(4) as u64,
    }
}

/// Estimated prompt tokens of `text` with the default (`o200k_base`) vocabulary.
pub fn estimate_prompt_tokens(text: &str) -> u64 {
    count_tokens(Encoding::O200k, text)
}

/// Estimated prompt tokens of chat messages for `model`: the text of every message plus
/// OpenAI's per-message framing overhead (3 tokens each, 3 for the reply primer).
pub fn estimate_chat_tokens<'a>(model: &str, messages: impl IntoIterator<Item = &'a str>) -> u64 {
    let encoding = encoding_for_model(model);
    let mut total = 3;
    for text in messages {
        total += 3 + count_tokens(encoding, text);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_real_tokens() {
        let start = std::time::Instant::now();
        assert_eq!(estimate_prompt_tokens(""), 0);
        assert_eq!(count_tokens(Encoding::Cl100k, "hello world"), 2);
        assert_eq!(estimate_prompt_tokens("hello world"), 2);
        let long = "The quick brown fox jumps over the lazy dog. ".repeat(100);
        let n = estimate_prompt_tokens(&long);
        assert!((900..=1100).contains(&n), "{n}");
        eprintln!("tokenizer init + encode: {:?}", start.elapsed());
        assert_eq!(encoding_for_model("gpt-4o-mini"), Encoding::O200k);
        assert_eq!(encoding_for_model("gpt-4-turbo"), Encoding::Cl100k);
        assert_eq!(estimate_chat_tokens("gpt-4", ["hello world"]), 8);
        let text = "Summarise the following report in three bullet points. ".repeat(200);
        let start = std::time::Instant::now();
        let n = estimate_prompt_tokens(&text);
        eprintln!(
            "encode {} bytes -> {n} tokens: {:?}",
            text.len(),
            start.elapsed()
        );
    }
}
