//! The built-in detector table: candidate patterns, their validators and priorities,
//! and the scored prompt-injection phrase list.

use crate::types::Detector;

/// Validator run on a candidate match (after the single-pass regex set found it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Accept as is.
    None,
    /// Not glued to word characters on either side.
    Bounded,
    /// Bounded and mixes upper case, lower case and digits (random provider keys).
    BoundedMixed,
    /// E-mail: not followed by a word character.
    Email,
    /// Issuer prefix + separators + Luhn.
    Card,
    /// Country length table + mod-97 (may shorten the span).
    Iban,
    /// SSN ranges.
    Ssn,
    /// Phone digit counts and boundaries.
    Phone,
    /// IPv4 octets and version-string exclusion.
    Ipv4,
    /// IPv6 parse.
    Ipv6,
    /// JWT header decodes to JSON.
    Jwt,
    /// Value not continued by base64 characters and random-looking (entropy).
    Entropy,
}

/// One built-in candidate pattern. Earlier rows win ties between overlapping matches.
pub(crate) struct Builtin {
    pub detector: Detector,
    pub pattern: &'static str,
    /// A cheaper pattern that matches wherever `pattern` does (a necessary condition): the
    /// one `RegexSet` is built from these, and `pattern` runs only when its trigger fired.
    pub trigger: &'static str,
    /// Capture group holding the sensitive value (0 = the whole match).
    pub group: usize,
    pub check: Check,
}

const fn row(
    detector: Detector,
    pattern: &'static str,
    trigger: &'static str,
    group: usize,
    check: Check,
) -> Builtin {
    Builtin {
        detector,
        pattern,
        trigger,
        group,
        check,
    }
}

/// Typical longest built-in match (context words included) outside PEM blocks and very long
/// tokens; the stream hold-back window must be at least this large.
pub const MAX_BUILTIN_MATCH: usize = 320;

/// Candidate patterns, ASCII-only so the set compiles to a small DFA.
pub(crate) const BUILTINS: &[Builtin] = &[
    row(
        Detector::PrivateKey,
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:(?s:.)*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[A-Za-z0-9+/=\r\n \t:,\-]*)",
        r"-----BEGIN ",
        0,
        Check::None,
    ),
    row(
        Detector::Jwt,
        r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
        r"eyJ[A-Za-z0-9_\-]{10}",
        0,
        Check::Jwt,
    ),
    row(
        Detector::AnthropicKey,
        r"sk-ant-[A-Za-z0-9_\-]{20,}",
        r"sk-ant-",
        0,
        Check::Bounded,
    ),
    row(
        Detector::OpenaiKey,
        r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
        r"sk-[A-Za-z0-9]",
        0,
        Check::BoundedMixed,
    ),
    row(
        Detector::GithubToken,
        r"gh[pousr]_[A-Za-z0-9]{36,}",
        r"gh[pousr]_[A-Za-z0-9]{36,}",
        0,
        Check::Bounded,
    ),
    row(
        Detector::GithubToken,
        r"github_pat_[A-Za-z0-9_]{22,}",
        r"github_pat_[A-Za-z0-9_]{22,}",
        0,
        Check::Bounded,
    ),
    row(
        Detector::SlackToken,
        r"xox[abposr]-[A-Za-z0-9\-]{10,}",
        r"xox[abposr]-[A-Za-z0-9\-]{10,}",
        0,
        Check::Bounded,
    ),
    row(
        Detector::SlackToken,
        r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{16,32}",
        r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{16,32}",
        0,
        Check::None,
    ),
    row(
        Detector::GoogleApiKey,
        r"AIza[0-9A-Za-z_\-]{35}",
        r"AIza",
        0,
        Check::Bounded,
    ),
    row(
        Detector::AwsAccessKey,
        r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
        r"(?:AKIA|ASIA|ABIA|ACCA)",
        0,
        Check::Bounded,
    ),
    row(
        Detector::AwsSecretKey,
        r#"(?i:aws)[A-Za-z0-9_.\-]*[ ]?(?i:secret|key)[A-Za-z0-9_. \-"']*[:=][ \t]*["']?([A-Za-z0-9/+]{40})"#,
        r"(?i:aws)",
        1,
        Check::Entropy,
    ),
    row(
        Detector::HighEntropySecret,
        r#"(?i:key|secret|token|passwd|password|pwd|credential|auth)[A-Za-z0-9_\-]*["']?[ \t]*[:=][ \t]*["']?(?:(?i:bearer|basic|token)[ \t]+)?([A-Za-z0-9+/_=.\-]{32,})"#,
        r"(?i:key|secret|token|passwd|password|pwd|credential|auth)",
        1,
        Check::Entropy,
    ),
    row(
        Detector::Email,
        r"[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,24}",
        r"[A-Za-z0-9]@[A-Za-z0-9]",
        0,
        Check::Email,
    ),
    row(
        Detector::CreditCard,
        r"[0-9]{4}[ \-][0-9]{4}[ \-][0-9]{4}[ \-][0-9]{4}(?:[ \-][0-9]{3})?|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{4,5}|[0-9]{13,19}",
        r"[0-9]{4}[ \-]?[0-9]{4}",
        0,
        Check::Card,
    ),
    row(
        Detector::Iban,
        r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?",
        r"[A-Z]{2}[0-9]{2}",
        0,
        Check::Iban,
    ),
    row(
        Detector::UsSsn,
        r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
        r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
        0,
        Check::Ssn,
    ),
    row(
        Detector::Phone,
        r"\+[1-9][0-9 .\-()]{6,20}[0-9]",
        r"\+[1-9][0-9 .\-()]{6,20}[0-9]",
        0,
        Check::Phone,
    ),
    row(
        Detector::Phone,
        r"(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}",
        r"(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}",
        0,
        Check::Phone,
    ),
    row(
        Detector::Phone,
        r"0[1-9][0-9]{0,3}(?:[ .\-][0-9]{2,4}){2,4}",
        r"0[1-9][0-9]{0,3}(?:[ .\-][0-9]{2,4}){2,4}",
        0,
        Check::Phone,
    ),
    row(
        Detector::IpAddress,
        r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}",
        r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}",
        0,
        Check::Ipv4,
    ),
    row(
        Detector::IpAddress,
        r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}",
        r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}",
        0,
        Check::Ipv6,
    ),
];

/// Prompt-injection / jailbreak phrases with weights. A text scores the sum of the weights
/// of the phrases it contains; at or above the threshold (default 3) it is a finding.
pub(crate) const INJECTION_PHRASES: &[(&str, u32)] = &[
    ("ignore previous instructions", 3),
    ("ignore all previous instructions", 3),
    ("ignore the previous instructions", 3),
    ("ignore prior instructions", 3),
    ("ignore all prior instructions", 3),
    ("ignore the above instructions", 3),
    ("ignore all instructions above", 3),
    ("ignore your instructions", 3),
    ("ignore your previous instructions", 3),
    ("disregard previous instructions", 3),
    ("disregard all previous instructions", 3),
    ("disregard the system prompt", 3),
    ("disregard your instructions", 3),
    ("disregard the above", 2),
    ("forget your instructions", 3),
    ("forget all previous instructions", 3),
    ("forget everything above", 2),
    ("override your instructions", 3),
    ("override the system prompt", 3),
    ("you are now dan", 3),
    ("do anything now", 2),
    ("jailbreak mode", 3),
    ("jailbroken", 2),
    ("developer mode enabled", 3),
    ("enable developer mode", 3),
    ("reveal your system prompt", 3),
    ("print your system prompt", 3),
    ("show me your system prompt", 3),
    ("repeat the text above", 2),
    ("bypass your safety", 3),
    ("ignore your guidelines", 3),
    ("ignore your safety guidelines", 3),
    ("without any restrictions", 2),
    ("you have no restrictions", 2),
    ("no ethical guidelines", 2),
    ("act as if you have no", 2),
    ("from now on you will", 1),
    ("from now on you are", 1),
    ("pretend you are", 1),
    ("pretend to be", 1),
    ("roleplay as", 1),
    ("role-play as", 1),
    ("stay in character", 1),
    ("new instructions:", 1),
    ("system override", 2),
];

/// Default score threshold for prompt-injection findings.
pub const DEFAULT_INJECTION_THRESHOLD: u32 = 3;

#[cfg(test)]
mod tests {
    use super::BUILTINS;
    use crate::engine::TRIGGER_OVERLAP;

    /// The stream scanner's incremental trigger scan relies on this: every trigger match
    /// begins with a match of at most `TRIGGER_OVERLAP` bytes (an open `{n,}` may only end
    /// the pattern, where cutting it to `{n}` keeps a match).
    #[test]
    fn builtin_triggers_are_short() {
        let open = regex::Regex::new(r"\{([0-9]+),\}").unwrap();
        for b in BUILTINS {
            if let Some(m) = open.find(b.trigger) {
                assert_eq!(
                    m.end(),
                    b.trigger.len(),
                    "open repeat not at the end: {}",
                    b.trigger
                );
            }
            let bounded = open.replace_all(b.trigger, "{$1}");
            let hir = regex_syntax::Parser::new().parse(&bounded).unwrap();
            let max = hir.properties().maximum_len();
            assert!(
                max.is_some_and(|m| m <= TRIGGER_OVERLAP),
                "{} can match {max:?} bytes",
                b.trigger
            );
        }
    }
}
