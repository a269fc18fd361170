//! A profile compiled once into single-pass matchers: one `RegexSet` and one Aho-Corasick
//! automaton per direction; validators run only on candidate matches.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexSet};

use crate::builtin::{Check, BUILTINS, INJECTION_PHRASES};
use crate::checks;
use crate::profile::{Problem, ProfileDef, ProfileError};
use crate::redact::Redactor;
use crate::types::{Action, Detector, Direction, Finding};
use crate::webhook::WebhookRule;

/// Every match of a built-in trigger pattern begins with a match of at most this many bytes
/// (their unbounded repetitions are `{n,}` after a fixed prefix). The stream scanner runs
/// the trigger set over new text plus this much overlap instead of the whole window.
pub(crate) const TRIGGER_OVERLAP: usize = 128;

/// A compiled, immutable profile; cheap to share (`Arc`) across requests.
#[derive(Debug)]
pub struct CompiledProfile {
    input: Matchers,
    output: Matchers,
    max_prompt_tokens: Option<u64>,
    max_images: Option<u32>,
    webhook: Option<WebhookRule>,
}

#[derive(Debug, Default)]
pub(crate) struct Matchers {
    set: Option<RegexSet>,
    rules: Vec<RegexRule>,
    words: Option<AhoCorasick>,
    word_rules: Vec<WordRule>,
    injection: Option<(u32, Action)>,
    /// Private-key blocks are detected here (the stream scanner holds from BEGIN to END).
    pub(crate) pem: bool,
}

#[derive(Debug)]
struct RegexRule {
    regex: Regex,
    trigger: String,
    /// Every match of the trigger starts with a match no longer than [`TRIGGER_OVERLAP`]
    /// (true for the built-ins; custom regexes are not assumed to be).
    short_trigger: bool,
    /// Longest possible match, when bounded and `group` is 0 (see `resumable_len`).
    resumable_len: Option<usize>,
    group: usize,
    check: Check,
    meta: Meta,
}

#[derive(Debug)]
struct WordRule {
    weight: u32,
    meta: Meta,
}

#[derive(Debug, Clone)]
struct Meta {
    detector: Detector,
    rule_id: Arc<str>,
    label: Arc<str>,
    action: Action,
    restore: bool,
    priority: usize,
}

/// A finding plus what redaction needs (internal).
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub finding: Finding,
    pub label: Arc<str>,
    pub restore: bool,
    priority: usize,
}

/// The result of scanning one text.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    /// The first `block` finding, if any (the request must be rejected naming its rule).
    pub blocked: Option<Finding>,
    /// Every finding, in text order (block, redact and log).
    pub findings: Vec<Finding>,
    /// The text with `redact` findings replaced by placeholders; `None` when nothing was
    /// redacted or the text is blocked.
    pub redacted: Option<String>,
}

/// A request limit that was exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// More prompt tokens than `max_prompt_tokens`.
    #[error("prompt has {actual} tokens, limit is {limit} (rule max_prompt_tokens)")]
    PromptTokens {
        /// The configured limit.
        limit: u64,
        /// The estimate.
        actual: u64,
    },
    /// More images than `max_images`.
    #[error("request has {actual} images, limit is {limit} (rule max_images)")]
    Images {
        /// The configured limit.
        limit: u32,
        /// The count.
        actual: u32,
    },
}

impl LimitExceeded {
    /// The rule id (`max_prompt_tokens` or `max_images`).
    pub fn rule_id(&self) -> &'static str {
        match self {
            LimitExceeded::PromptTokens { .. } => "max_prompt_tokens",
            LimitExceeded::Images { .. } => "max_images",
        }
    }
}

fn label_of(id: &str) -> Arc<str> {
    let up: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    up.into()
}

impl CompiledProfile {
    /// Validates and compiles a profile. Every problem is reported with its path.
    pub fn compile(def: &ProfileDef) -> Result<CompiledProfile, ProfileError> {
        def.validate()?;
        Ok(CompiledProfile {
            input: Matchers::build(def, Direction::Input)?,
            output: Matchers::build(def, Direction::Output)?,
            max_prompt_tokens: def.max_prompt_tokens,
            max_images: def.max_images,
            webhook: def.webhook.clone(),
        })
    }

    /// The compiled default profile ([`ProfileDef::default_profile`]).
    pub fn default_profile() -> CompiledProfile {
        CompiledProfile::compile(&ProfileDef::default_profile()).expect("default profile compiles")
    }

    /// The token limit, so callers only run a tokenizer when one is set.
    pub fn max_prompt_tokens(&self) -> Option<u64> {
        self.max_prompt_tokens
    }

    /// The external webhook, if the profile has one.
    pub fn webhook(&self) -> Option<&WebhookRule> {
        self.webhook.as_ref()
    }

    /// Checks request limits given the caller's token estimate and image count.
    pub fn check_limits(
        &self,
        prompt_tokens: Option<u64>,
        images: u32,
    ) -> Result<(), LimitExceeded> {
        if let (Some(limit), Some(actual)) = (self.max_prompt_tokens, prompt_tokens) {
            if actual > limit {
                return Err(LimitExceeded::PromptTokens { limit, actual });
            }
        }
        match self.max_images {
            Some(limit) if images > limit => Err(LimitExceeded::Images {
                limit,
                actual: images,
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn matchers(&self, dir: Direction) -> &Matchers {
        match dir {
            Direction::Input => &self.input,
            Direction::Output => &self.output,
        }
    }

    /// Scans `text` with a fresh [`Redactor`] (placeholders numbered from 1).
    pub fn scan_text(&self, text: &str, dir: Direction) -> ScanOutcome {
        self.scan_text_with(text, dir, &mut Redactor::new())
    }

    /// Scans `text`, numbering placeholders through the request's `redactor` so the same
    /// value gets the same placeholder across messages and directions.
    pub fn scan_text_with(
        &self,
        text: &str,
        dir: Direction,
        redactor: &mut Redactor,
    ) -> ScanOutcome {
        let hits = self.matchers(dir).scan(text);
        if hits.is_empty() {
            return ScanOutcome::default();
        }
        let blocked = hits
            .iter()
            .find(|h| h.finding.action == Action::Block)
            .map(|h| h.finding.clone());
        let redacted = match blocked {
            None => apply_redactions(text, &hits, redactor),
            Some(_) => None,
        };
        ScanOutcome {
            blocked,
            findings: hits.into_iter().map(|h| h.finding).collect(),
            redacted,
        }
    }
}

impl CompiledProfile {
    /// `text` with every finding replaced by its typed placeholder, whatever the rule's
    /// action (`block`, `redact` or `log`): for texts that are stored, such as request-log
    /// bodies, where nothing a rule matched may be kept. Borrowed when nothing matched.
    pub fn redact_all<'t>(&self, text: &'t str, dir: Direction) -> std::borrow::Cow<'t, str> {
        let hits = self.matchers(dir).scan(text);
        if hits.is_empty() {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut redactor = Redactor::new();
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for h in &hits {
            let span = h.finding.span.clone();
            if span.start < pos {
                continue;
            }
            out.push_str(&text[pos..span.start]);
            out.push_str(redactor.placeholder(&h.label, &text[span.clone()], false));
            pos = span.end;
        }
        out.push_str(&text[pos..]);
        std::borrow::Cow::Owned(out)
    }
}

/// Writes `text` with `redact` hits replaced; `None` when no hit redacts.
pub(crate) fn apply_redactions(
    text: &str,
    hits: &[Hit],
    redactor: &mut Redactor,
) -> Option<String> {
    if !hits.iter().any(|h| h.finding.action == Action::Redact) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for h in hits.iter().filter(|h| h.finding.action == Action::Redact) {
        let span = h.finding.span.clone();
        out.push_str(&text[pos..span.start]);
        out.push_str(redactor.placeholder(&h.label, &text[span.clone()], h.restore));
        pos = span.end;
    }
    out.push_str(&text[pos..]);
    Some(out)
}

impl Matchers {
    fn build(def: &ProfileDef, dir: Direction) -> Result<Matchers, ProfileError> {
        let mut m = Matchers::default();
        let mut problems = Vec::new();
        for (priority, b) in BUILTINS.iter().enumerate() {
            let Some(rule) = def.detectors.get(b.detector.as_str()) else {
                continue;
            };
            let Some(action) = rule.action_for(dir) else {
                continue;
            };
            let meta = Meta {
                detector: b.detector,
                rule_id: b.detector.as_str().into(),
                label: b.detector.label().into(),
                action,
                restore: rule.restore,
                priority,
            };
            m.pem |= b.detector == Detector::PrivateKey;
            let regex = Regex::new(b.pattern).expect("built-in pattern compiles");
            let resumable_len = (b.group == 0)
                .then(|| regex_syntax::Parser::new().parse(b.pattern).ok())
                .flatten()
                .and_then(|hir| hir.properties().maximum_len());
            m.rules.push(RegexRule {
                regex,
                trigger: b.trigger.to_string(),
                short_trigger: true,
                resumable_len,
                group: b.group,
                check: b.check,
                meta,
            });
        }
        let mut phrases: Vec<String> = Vec::new();
        for (i, c) in def.custom.iter().enumerate() {
            let Some(action) = c.direction.includes(dir).then_some(c.action) else {
                continue;
            };
            let meta = Meta {
                detector: Detector::Custom,
                rule_id: c.id.as_str().into(),
                label: label_of(&c.id),
                action,
                restore: c.restore,
                priority: BUILTINS.len() + i,
            };
            if let Some(re) = &c.regex {
                match Regex::new(re) {
                    Ok(regex) => m.rules.push(RegexRule {
                        trigger: re.clone(),
                        short_trigger: false,
                        resumable_len: None,
                        regex,
                        group: 0,
                        check: Check::None,
                        meta: meta.clone(),
                    }),
                    Err(e) => problems.push(Problem {
                        path: format!("custom[{i}].regex"),
                        message: e.to_string(),
                    }),
                }
            }
            for w in c.words.iter().flatten() {
                phrases.push(w.trim().to_string());
                m.word_rules.push(WordRule {
                    weight: 0,
                    meta: meta.clone(),
                });
            }
        }
        for t in def
            .denied_topics
            .iter()
            .filter(|t| t.direction.includes(dir))
        {
            let meta = Meta {
                detector: Detector::DeniedTopic,
                rule_id: t.id.as_str().into(),
                label: label_of(&t.id),
                action: t.action,
                restore: false,
                priority: usize::MAX - 1,
            };
            for w in &t.words {
                phrases.push(w.trim().to_string());
                m.word_rules.push(WordRule {
                    weight: 0,
                    meta: meta.clone(),
                });
            }
        }
        if let Some(inj) = def
            .prompt_injection
            .as_ref()
            .filter(|i| i.direction.includes(dir))
        {
            m.injection = Some((inj.threshold, inj.action));
            let meta = Meta {
                detector: Detector::PromptInjection,
                rule_id: "prompt_injection".into(),
                label: Detector::PromptInjection.label().into(),
                action: inj.action,
                restore: false,
                priority: usize::MAX,
            };
            let extra = inj.extra_phrases.iter().map(|p| (p.trim(), inj.threshold));
            for (p, weight) in INJECTION_PHRASES.iter().copied().chain(extra) {
                phrases.push(p.to_string());
                m.word_rules.push(WordRule {
                    weight,
                    meta: meta.clone(),
                });
            }
        }
        if !problems.is_empty() {
            return Err(ProfileError { problems });
        }
        if !m.rules.is_empty() {
            let set = RegexSet::new(m.rules.iter().map(|r| r.trigger.as_str()));
            m.set = Some(set.map_err(|e| ProfileError {
                problems: vec![Problem {
                    path: "custom".into(),
                    message: e.to_string(),
                }],
            })?);
        }
        if !phrases.is_empty() {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&phrases)
                .map_err(|e| ProfileError {
                    problems: vec![Problem {
                        path: "words".into(),
                        message: e.to_string(),
                    }],
                })?;
            m.words = Some(ac);
        }
        Ok(m)
    }

    /// All non-overlapping hits in text order.
    pub(crate) fn scan(&self, text: &str) -> Vec<Hit> {
        match &self.set {
            Some(set) => self.scan_rules(text, set.matches(text).iter()),
            None => self.scan_rules(text, std::iter::empty()),
        }
    }

    /// Number of regex rules (indexes of [`Matchers::triggered`] and [`Matchers::scan_rules`]).
    pub(crate) fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Indexes of the rules whose trigger matches somewhere in `text`.
    pub(crate) fn triggered(&self, text: &str) -> Vec<usize> {
        self.set
            .as_ref()
            .map(|set| set.matches(text).iter().collect())
            .unwrap_or_default()
    }

    /// Whether rule `idx`'s trigger is short (see [`TRIGGER_OVERLAP`]): only those may be
    /// tracked incrementally; the others must run on every scan.
    pub(crate) fn short_trigger(&self, idx: usize) -> bool {
        self.rules[idx].short_trigger
    }

    /// Hits of the given regex rules (whose triggers fired) and of the word lists.
    pub(crate) fn scan_rules(&self, text: &str, rules: impl Iterator<Item = usize>) -> Vec<Hit> {
        let mut hits = Vec::new();
        self.scan_rules_into(text, rules, &mut hits);
        self.words(text, &mut hits);
        resolve_overlaps(hits)
    }

    /// Adds the regex hits of `rules` on the whole `text` to `hits` (unresolved).
    pub(crate) fn scan_rules_into(
        &self,
        text: &str,
        rules: impl Iterator<Item = usize>,
        hits: &mut Vec<Hit>,
    ) {
        for idx in rules {
            self.regex_hits(&self.rules[idx], text, hits);
        }
    }

    fn regex_hits(&self, rule: &RegexRule, text: &str, hits: &mut Vec<Hit>) {
        if rule.group == 0 {
            for m in rule.regex.find_iter(text) {
                hits.extend(rule.checked(text, m.start(), m.end()));
            }
        } else {
            for caps in rule.regex.captures_iter(text) {
                if let Some(m) = caps.get(rule.group) {
                    hits.extend(rule.checked(text, m.start(), m.end()));
                }
            }
        }
    }

    /// The longest match of rule `idx`, when it is bounded and the rule reports its whole
    /// match (then a match starting at `s` depends only on `text[s..s + len]`, so the stream
    /// scanner may resume its search instead of repeating it).
    pub(crate) fn resumable_len(&self, idx: usize) -> Option<usize> {
        self.rules[idx].resumable_len
    }

    /// Unchecked matches of rule `idx` from byte `from` on, in search order.
    pub(crate) fn raw_matches<'t>(
        &'t self,
        idx: usize,
        text: &'t str,
        mut from: usize,
    ) -> impl Iterator<Item = (usize, usize)> + 't {
        let regex = &self.rules[idx].regex;
        std::iter::from_fn(move || {
            let m = regex.find_at(text, from)?;
            from = if m.end() > m.start() {
                m.end()
            } else {
                m.end() + 1
            };
            Some((m.start(), m.end()))
        })
    }

    /// Runs rule `idx`'s validator on a raw match of `text`.
    pub(crate) fn check(&self, idx: usize, text: &str, start: usize, end: usize) -> Option<Hit> {
        self.rules[idx].checked(text, start, end)
    }

    /// Word-list hits of `text` (custom words, topics, scored injection phrases).
    pub(crate) fn words(&self, text: &str, hits: &mut Vec<Hit>) {
        if let Some(ac) = &self.words {
            self.word_hits(ac, text, hits);
        }
    }

    fn word_hits(&self, ac: &AhoCorasick, text: &str, hits: &mut Vec<Hit>) {
        let mut score = 0u32;
        let mut injection = Vec::new();
        let bytes = text.as_bytes();
        for m in ac.find_iter(text) {
            let (s, e) = (m.start(), m.end());
            let alnum = |b: u8| b.is_ascii_alphanumeric();
            // Whole words only: a phrase that starts/ends with a letter must not be glued.
            if (alnum(bytes[s]) && s > 0 && alnum(bytes[s - 1]))
                || (alnum(bytes[e - 1]) && bytes.get(e).is_some_and(|&b| alnum(b)))
            {
                continue;
            }
            let rule = &self.word_rules[m.pattern().as_usize()];
            if rule.meta.detector == Detector::PromptInjection {
                score += rule.weight;
                injection.push(rule.meta.hit(s, e));
            } else {
                hits.push(rule.meta.hit(s, e));
            }
        }
        if self
            .injection
            .is_some_and(|(threshold, _)| score >= threshold)
        {
            hits.extend(injection);
        }
    }
}

impl RegexRule {
    /// The hit for a candidate match, if its validator accepts it (may shorten the span).
    fn checked(&self, text: &str, start: usize, end: usize) -> Option<Hit> {
        let end = match self.check {
            Check::None => Some(end),
            Check::Bounded => checks::word_bounded(text, start, end).then_some(end),
            Check::BoundedMixed => (checks::word_bounded(text, start, end)
                && checks::mixed_charset(&text.as_bytes()[start..end]))
            .then_some(end),
            Check::Email => (!checks::after(text, end).is_some_and(|b| b.is_ascii_alphanumeric()))
                .then_some(end),
            Check::Card => checks::card(text, start, end).then_some(end),
            Check::Iban => checks::iban(text, start, end),
            Check::Ssn => checks::ssn(text, start, end).then_some(end),
            Check::Phone => checks::phone(text, start, end).then_some(end),
            Check::Ipv4 => checks::ipv4(text, start, end).then_some(end),
            Check::Ipv6 => checks::ipv6(text, start, end).then_some(end),
            Check::Jwt => checks::jwt(text, start, end).then_some(end),
            Check::Entropy => (!checks::after(text, end)
                .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+'))
                && checks::high_entropy(&text.as_bytes()[start..end]))
            .then_some(end),
        };
        end.map(|end| self.meta.hit(start, end))
    }
}

impl Meta {
    fn hit(&self, start: usize, end: usize) -> Hit {
        Hit {
            finding: Finding {
                rule_id: self.rule_id.clone(),
                detector: self.detector,
                action: self.action,
                span: start..end,
            },
            label: self.label.clone(),
            restore: self.restore,
            priority: self.priority,
        }
    }
}

/// Keeps the earliest, then longest, then highest-priority hit of each overlapping group.
pub(crate) fn resolve_overlaps(mut hits: Vec<Hit>) -> Vec<Hit> {
    if hits.len() < 2 {
        return hits;
    }
    hits.sort_by(|a, b| {
        let (sa, sb) = (&a.finding.span, &b.finding.span);
        sa.start
            .cmp(&sb.start)
            .then(sb.end.cmp(&sa.end))
            .then(a.priority.cmp(&b.priority))
    });
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        if out
            .last()
            .is_none_or(|last| h.finding.span.start >= last.finding.span.end)
        {
            out.push(h);
        }
    }
    out
}
