//! Guardrails and data-leak prevention for Portcullis — the pure core (no I/O).
//!
//! * [`ProfileDef`]: a guardrail profile as written in the policy document
//!   (`guardrails: {name: profile}`), parsed strictly and validated with paths.
//! * [`CompiledProfile`]: compiled once per policy version into one `RegexSet` and one
//!   Aho-Corasick automaton per direction; [`CompiledProfile::scan_text`] returns a
//!   [`ScanOutcome`] (blocked finding, all findings, redacted text).
//! * [`Redactor`]: per-request placeholder state (`[EMAIL_1]`), with restore.
//! * [`StreamScanner`]: incremental scanning of streamed responses with a bounded
//!   hold-back window.
//! * [`webhook`]: an external guardrail service's settings and its JSON contract.
//!
//! A [`Finding`] never contains the matched text: only rule id, detector, action and span.
//!
//! ```
//! use portcullis_guard::{CompiledProfile, Direction};
//! let profile = CompiledProfile::default_profile();
//! let out = profile.scan_text("mail me at jane.doe@example.com", Direction::Input);
//! assert_eq!(out.redacted.as_deref(), Some("mail me at [EMAIL_1]"));
//! ```

mod builtin;
mod checks;
mod engine;
mod profile;
mod redact;
mod stream;
mod types;
pub mod webhook;

pub use builtin::{DEFAULT_INJECTION_THRESHOLD, MAX_BUILTIN_MATCH};
pub use checks::{iban_mod97, luhn_valid, shannon_entropy};
pub use engine::{CompiledProfile, LimitExceeded, ScanOutcome};
pub use profile::{
    CustomRule, DetectorRule, InjectionRule, Problem, ProfileDef, ProfileError, TopicRule,
};
pub use redact::Redactor;
pub use stream::{StreamOutput, StreamScanner, DEFAULT_HOLD_BACK, PEM_HOLD_CAP};
pub use types::{Action, Detector, Direction, Directions, Finding};
pub use webhook::{FailureMode, WebhookRule, WebhookVerdict};
