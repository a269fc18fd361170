//! Incremental scanning of a streamed response with a bounded hold-back window.
//!
//! Each `push` appends the chunk to the unreleased buffer and scans it (plus up to
//! [`CONTEXT`] bytes of already released text, so boundary checks see the same neighbours
//! as a whole-text scan). The trigger `RegexSet` (the costly part) runs only over text it
//! has not seen plus a short overlap; detector regexes run on the window only while one of
//! their triggers lies in it. Everything before the cut point is released at once; the cut is
//! `buffer.len() - hold_back`, moved back to the start of any match that straddles it, to
//! an unfinished PEM `-----BEGIN` marker (held until `-----END` or [`PEM_HOLD_CAP`]), and
//! to a partial `[PLACEHOLDER` when placeholders are being restored.
//!
//! Guarantee: any match no longer than `hold_back` bytes (context words included) is found
//! exactly as in a whole-text scan, however the stream is split. With the default 512 bytes
//! this covers every built-in detector ([`crate::MAX_BUILTIN_MATCH`]) except PEM blocks,
//! which use the marker rule above.

use crate::engine::{
    apply_redactions, resolve_overlaps, CompiledProfile, Hit, Matchers, TRIGGER_OVERLAP,
};
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
    /// Per regex rule: stream offset of the end of the text in which its trigger last
    /// fired (0: never). A rule runs on the window only while this is inside it.
    fired: Vec<usize>,
    /// Stream offset up to which the trigger set has run.
    triggers_to: usize,
    /// Per rule: the resumed search of rules with bounded matches.
    resumable: Vec<Resumable>,
}

impl<P: Borrow<CompiledProfile>> StreamScanner<P> {
    /// A scanner with a fresh [`Redactor`]. `hold_back` is clamped to at least 64 bytes.
    pub fn new(profile: P, dir: Direction, hold_back: usize) -> Self {
        Self::with_redactor(profile, dir, hold_back, Redactor::new())
    }

    /// A scanner continuing the request's placeholder numbering; placeholders marked
    /// restorable (from the input scan) are restored in what it emits.
    pub fn with_redactor(profile: P, dir: Direction, hold_back: usize, redactor: Redactor) -> Self {
        let rules = profile.borrow().matchers(dir).rule_count();
        StreamScanner {
            fired: vec![0; rules],
            triggers_to: 0,
            resumable: vec![Resumable::default(); rules],
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
        // The trigger set runs over the text it has not seen, plus an overlap covering any
        // trigger that straddles the previous end; a rule's full regex then runs on the
        // window while a trigger of it lies inside. Same hits as a whole-window scan.
        let base = self.offset - self.ctx;
        let end = base + len;
        let from = floor_char(
            &self.window,
            self.triggers_to.saturating_sub(TRIGGER_OVERLAP).max(base) - base,
        );
        for idx in matchers.triggered(&self.window[from..]) {
            self.fired[idx] = end;
        }
        self.triggers_to = end;
        let mut hits = Vec::new();
        let mut whole = Vec::new();
        for i in 0..self.fired.len() {
            let active = !matchers.short_trigger(i) || self.fired[i] > base;
            match (matchers.resumable_len(i), active) {
                (Some(max), true) => {
                    self.resumable[i].hits(matchers, (i, max), &self.window, base, last, &mut hits)
                }
                (Some(_), false) => self.resumable[i].skip(base),
                (None, true) => whole.push(i),
                (None, false) => {}
            }
        }
        matchers.scan_rules_into(&self.window, whole.into_iter(), &mut hits);
        matchers.words(&self.window, &mut hits);
        let mut hits = resolve_overlaps(hits);
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

/// The search state of one rule whose matches are at most `max` bytes long
/// ([`crate::engine`]'s `resumable_len`). Its search resumes where the previous one settled
/// instead of covering the window again: a match starting at `s` depends only on
/// `text[s..s + max]`, so once that much text is there the match (and everything the
/// search found before it) is settled. Settled matches are kept until released and
/// re-validated on each scan with the current neighbours.
#[derive(Debug, Clone, Default)]
struct Resumable {
    /// Stream offset where the next search starts.
    resume: usize,
    /// Settled raw matches (stream offsets) not yet released.
    settled: Vec<(usize, usize)>,
}

impl Resumable {
    /// The rule has no trigger in the window (which starts at stream offset `base`).
    fn skip(&mut self, base: usize) {
        self.settled.retain(|&(s, _)| s >= base);
        self.resume = self.resume.max(base);
    }

    /// Adds the hits of rule `i` in `window` (starting at stream offset `base`) to `out`.
    fn hits(
        &mut self,
        matchers: &Matchers,
        (i, max): (usize, usize),
        window: &str,
        base: usize,
        last: bool,
        out: &mut Vec<Hit>,
    ) {
        self.settled.retain(|&(s, _)| s >= base);
        let end = base + window.len();
        let from = floor_char(window, self.resume.max(base) - base);
        let horizon = end.saturating_sub(max + SETTLE_MARGIN);
        let mut settled_to = self.resume;
        let mut open = false;
        for (s, e) in matchers.raw_matches(i, window, from) {
            let (s_abs, e_abs) = (base + s, base + e);
            if s_abs < self.resume {
                continue;
            }
            if !open && !last && s_abs <= horizon {
                self.settled.push((s_abs, e_abs));
                settled_to = e_abs;
            } else {
                open = true;
                out.extend(matchers.check(i, window, s, e));
            }
        }
        for &(s, e) in &self.settled {
            out.extend(matchers.check(i, window, s - base, e - base));
        }
        self.resume = if open {
            settled_to
        } else {
            settled_to.max(horizon)
        };
    }
}

/// Bytes beyond a match's longest possible end before it counts as settled.
const SETTLE_MARGIN: usize = 8;

/// The largest char boundary `<= i`.
fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
