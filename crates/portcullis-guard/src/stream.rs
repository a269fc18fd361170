//! Incremental scanning of a streamed response with a bounded hold-back window.
//!
//! Each `push` appends the chunk to the unreleased buffer and scans it (plus up to
//! [`CONTEXT`] bytes of already released text, so boundary checks see the same neighbours
//! as a whole-text scan). Everything before the cut point is released at once; the cut is
//! `buffer.len() - hold_back`, moved back to the start of any match that straddles it, to
//! an unfinished PEM `-----BEGIN` marker (held until `-----END` or [`PEM_HOLD_CAP`]), and
//! to a partial `[PLACEHOLDER` when placeholders are being restored.
//!
//! Guarantee: any match no longer than `hold_back` bytes (context words included) is found
//! exactly as in a whole-text scan, however the stream is split. With the default 512 bytes
//! this covers every built-in detector ([`crate::MAX_BUILTIN_MATCH`]) except PEM blocks,
//! which use the marker rule above.

use crate::engine::{apply_redactions, CompiledProfile};
use crate::redact::{Redactor, MAX_PLACEHOLDER};
use crate::types::{Action, Direction, Finding};
use std::borrow::Borrow;

/// Default hold-back window in bytes.
pub const DEFAULT_HOLD_BACK: usize = 512;
/// How long an unterminated PEM block is held before it is scanned as is (bytes).
pub const PEM_HOLD_CAP: usize = 16 * 1024;
/// Bytes of released text kept as left context for the next scan.
const CONTEXT: usize = 64;

/// What a `push` or `finish` lets through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOutput {
    /// Text to forward to the client now (already redacted / restored).
    pub emit: String,
    /// Set once, when a `block` rule matched: stop the stream; nothing more is emitted.
    pub blocked: Option<Finding>,
}

/// Scans a stream chunk by chunk; one per streamed response. `P` is how the profile is
/// held: a reference, or an `Arc` when the scanner must own it (a `'static` stream).
#[derive(Debug)]
pub struct StreamScanner<P: Borrow<CompiledProfile>> {
    profile: P,
    dir: Direction,
    hold_back: usize,
    redactor: Redactor,
    /// Released context (`..ctx`) followed by unreleased text.
    window: String,
    ctx: usize,
    /// Stream offset of `window[ctx]`.
    offset: usize,
    blocked: bool,
    findings: Vec<Finding>,
}

impl<P: Borrow<CompiledProfile>> StreamScanner<P> {
    /// A scanner with a fresh [`Redactor`]. `hold_back` is clamped to at least 64 bytes.
    pub fn new(profile: P, dir: Direction, hold_back: usize) -> Self {
        Self::with_redactor(profile, dir, hold_back, Redactor::new())
    }

    /// A scanner continuing the request's placeholder numbering; placeholders marked
    /// restorable (from the input scan) are restored in what it emits.
    pub fn with_redactor(profile: P, dir: Direction, hold_back: usize, redactor: Redactor) -> Self {
        StreamScanner {
            profile,
            dir,
            hold_back: hold_back.max(64),
            redactor,
            window: String::new(),
            ctx: 0,
            offset: 0,
            blocked: false,
            findings: Vec::new(),
        }
    }

    /// Feeds one chunk; returns what can be released now.
    pub fn push(&mut self, chunk: &str) -> StreamOutput {
        if self.blocked {
            return StreamOutput::default();
        }
        self.window.push_str(chunk);
        self.process(false)
    }

    /// Ends the stream: scans and releases the held tail.
    pub fn finish(&mut self) -> StreamOutput {
        if self.blocked {
            return StreamOutput::default();
        }
        self.process(true)
    }

    /// Every finding so far (stream offsets), for metrics and the request log.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Whether a `block` rule stopped the stream.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// Bytes currently held back.
    pub fn held(&self) -> usize {
        self.window.len() - self.ctx
    }

    /// Gives the redactor back (e.g. to restore placeholders elsewhere in the response).
    pub fn into_redactor(self) -> Redactor {
        self.redactor
    }

    fn process(&mut self, last: bool) -> StreamOutput {
        let matchers = self.profile.borrow().matchers(self.dir);
        let len = self.window.len();
        // Rescan only once half a window of new text has arrived (bounds the rescanning cost).
        if !last && len - self.ctx <= self.hold_back + self.hold_back / 2 {
            return StreamOutput::default();
        }
        let mut hits = matchers.scan(&self.window);
        hits.retain(|h| h.finding.span.start >= self.ctx);
        let mut cut = if last {
            len
        } else {
            floor_char(&self.window, len - self.hold_back)
        };
        if !last {
            if let Some(h) = hits
                .iter()
                .find(|h| h.finding.span.start < cut && h.finding.span.end > cut)
            {
                cut = h.finding.span.start;
            }
            if matchers.pem {
                let seen = &self.window[self.ctx..];
                if let Some(b) = seen.rfind("-----BEGIN ") {
                    let b = self.ctx + b;
                    if !self.window[b..].contains("-----END ") && len - b < PEM_HOLD_CAP {
                        cut = cut.min(b);
                    }
                }
            }
            if self.dir == Direction::Output && self.redactor.has_restorable() {
                let from =
                    floor_char(&self.window, cut.saturating_sub(MAX_PLACEHOLDER)).max(self.ctx);
                if let Some(open) = self.window[from..cut].rfind('[') {
                    if !self.window[from + open..cut].contains(']') {
                        cut = from + open;
                    }
                }
            }
            cut = cut.max(self.ctx);
        }
        hits.retain(|h| h.finding.span.end <= cut);
        let shift = self.offset - self.ctx;
        if let Some(h) = hits.iter().find(|h| h.finding.action == Action::Block) {
            let f = h.finding.clone().shifted(shift);
            self.findings
                .extend(hits.iter().map(|h| h.finding.clone().shifted(shift)));
            self.blocked = true;
            self.window.clear();
            return StreamOutput {
                emit: String::new(),
                blocked: Some(f),
            };
        }
        let released = &self.window[self.ctx..cut];
        let local: Vec<_> = hits
            .iter()
            .map(|h| {
                let mut h = h.clone();
                h.finding.span = h.finding.span.start - self.ctx..h.finding.span.end - self.ctx;
                h
            })
            .collect();
        let mut emit = apply_redactions(released, &local, &mut self.redactor)
            .unwrap_or_else(|| released.to_string());
        if self.dir == Direction::Output && self.redactor.has_restorable() {
            emit = self.redactor.restore(&emit).into_owned();
        }
        self.findings
            .extend(hits.into_iter().map(|h| h.finding.shifted(shift)));
        self.offset += cut - self.ctx;
        let keep_from = floor_char(&self.window, cut.saturating_sub(CONTEXT));
        self.window.drain(..keep_from);
        self.ctx = cut - keep_from;
        StreamOutput {
            emit,
            blocked: None,
        }
    }
}

/// The largest char boundary `<= i`.
fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
