//! `chat.completion.chunk` SSE events for a streamed chat completion.

use bytes::Bytes;

use super::chat::{Exchange, Reply, TOOL_ARGUMENTS};
use super::types::{ChatChunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta};
use crate::respond::{sse_event, SSE_DONE};

/// Every event of the stream, `data: [DONE]` included.
///
/// Text: role chunk (`content: ""`), one chunk per word (word + following whitespace), a
/// final chunk with an empty delta and `finish_reason`, the usage chunk (`choices: []`) when
/// `include_usage`, then `[DONE]`. Tool call: a chunk with role, id, type, name and empty
/// arguments, then the arguments in three fragments, then the final chunk.
///
/// `usage_on_finish` imitates Mistral, which rejects `stream_options` and instead always
/// sends `usage` on the chunk carrying `finish_reason` (no separate usage chunk).
pub(crate) fn events(ex: &Exchange, include_usage: bool, usage_on_finish: bool) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(8);
    let chunk = |choice: ChunkChoice<'_>| -> Bytes {
        let choices = [choice];
        sse_event(&ChatChunk {
            id: &ex.id,
            object: "chat.completion.chunk",
            created: ex.created,
            model: &ex.model,
            service_tier: "default",
            system_fingerprint: "fp_mock",
            choices: &choices,
            usage: include_usage.then_some(None),
        })
    };

    match &ex.reply {
        Reply::Text(text) => {
            out.push(chunk(delta_choice(Delta {
                role: Some("assistant"),
                content: Some(Some("")),
                refusal: Some(None),
                ..Delta::default()
            })));
            for word in split_words(text) {
                out.push(chunk(delta_choice(Delta {
                    content: Some(Some(word)),
                    ..Delta::default()
                })));
            }
        }
        Reply::ToolCall { name } => {
            out.push(chunk(delta_choice(Delta {
                role: Some("assistant"),
                content: Some(None),
                tool_calls: Some([ToolCallDelta {
                    index: 0,
                    id: Some(&ex.call_id),
                    kind: Some("function"),
                    function: FunctionDelta {
                        name: Some(name),
                        arguments: "",
                    },
                }]),
                refusal: Some(None),
            })));
            for fragment in split_arguments(TOOL_ARGUMENTS) {
                out.push(chunk(delta_choice(Delta {
                    tool_calls: Some([ToolCallDelta {
                        index: 0,
                        id: None,
                        kind: None,
                        function: FunctionDelta {
                            name: None,
                            arguments: fragment,
                        },
                    }]),
                    ..Delta::default()
                })));
            }
        }
    }
    let finish = [ChunkChoice {
        index: 0,
        delta: Delta::default(),
        logprobs: None,
        finish_reason: Some(ex.reply.finish_reason()),
    }];
    out.push(sse_event(&ChatChunk {
        id: &ex.id,
        object: "chat.completion.chunk",
        created: ex.created,
        model: &ex.model,
        service_tier: "default",
        system_fingerprint: "fp_mock",
        choices: &finish,
        usage: if usage_on_finish {
            Some(Some(ex.usage))
        } else {
            include_usage.then_some(None)
        },
    }));
    if include_usage && !usage_on_finish {
        out.push(sse_event(&ChatChunk {
            id: &ex.id,
            object: "chat.completion.chunk",
            created: ex.created,
            model: &ex.model,
            service_tier: "default",
            system_fingerprint: "fp_mock",
            choices: &[],
            usage: Some(Some(ex.usage)),
        }));
    }
    out.push(Bytes::from_static(SSE_DONE));
    out
}

fn delta_choice(delta: Delta<'_>) -> ChunkChoice<'_> {
    ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason: None,
    }
}

/// Splits text into words, each keeping the whitespace that follows it, so that the pieces
/// concatenate back to the original text exactly.
pub(crate) fn split_words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_ws = false;
    for (i, c) in text.char_indices() {
        let ws = c.is_whitespace();
        if prev_ws && !ws && i > start {
            out.push(&text[start..i]);
            start = i;
        }
        prev_ws = ws;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Splits tool-call arguments into three fragments at char boundaries.
pub(crate) fn split_arguments(args: &str) -> [&str; 3] {
    let boundary = |target: usize| {
        (target..=args.len())
            .find(|&i| args.is_char_boundary(i))
            .unwrap_or(args.len())
    };
    let a = boundary(args.len() / 3);
    let b = boundary((2 * args.len() / 3).max(a));
    [&args[..a], &args[a..b], &args[b..]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_concatenate_back() {
        let text = "echo: hello  big\tworld ";
        let words = split_words(text);
        assert_eq!(words, vec!["echo: ", "hello  ", "big\t", "world "]);
        assert_eq!(words.concat(), text);
        assert_eq!(split_words(""), Vec::<&str>::new());
    }

    #[test]
    fn arguments_split_in_three() {
        let parts = split_arguments(TOOL_ARGUMENTS);
        assert_eq!(parts.concat(), TOOL_ARGUMENTS);
        assert!(parts.iter().all(|p| !p.is_empty()));
    }
}
