//! Label values: small enums for fixed vocabularies, and name sets with an overflow bucket
//! for names that come from configuration or data (models, providers, teams, rules).
//!
//! Every label has a bounded number of values, so the number of series is bounded by the
//! product of the label set sizes, whatever the traffic sends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Label value of a name that is not in its set (or arrived after the set filled up).
pub const OTHER: &str = "other";
/// Label value when a request has no such name (e.g. no model: a 401 before parsing).
pub const NONE: &str = "none";

/// Declares a label enum with its values, `ALL`, `label()` and `index()`.
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in rendering order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Position in [`Self::ALL`].
            pub(crate) fn index(self) -> usize {
                self as usize
            }
        }
    };
}

label_enum!(
    /// Which kind of endpoint served the request (`route` label).
    Route {
        /// `POST /v1/chat/completions`.
        ChatCompletions => "chat_completions",
        /// `POST /v1/messages` (Anthropic format).
        Messages => "messages",
        /// `POST /v1/responses`.
        Responses => "responses",
        /// `POST /v1/embeddings`.
        Embeddings => "embeddings",
        /// `GET /v1/models`.
        Models => "models",
        /// `/healthz`, `/readyz`.
        Health => "health",
        /// The admin API under `/api/`.
        Admin => "admin",
        /// `/metrics` itself.
        Metrics => "metrics",
        /// Anything else (unknown paths included).
        Other => "other",
    }
);

impl Route {
    /// The route of a request path.
    pub fn from_path(path: &str) -> Route {
        match path {
            "/v1/chat/completions" => Route::ChatCompletions,
            "/v1/messages" => Route::Messages,
            "/v1/responses" => Route::Responses,
            "/v1/embeddings" => Route::Embeddings,
            "/v1/models" => Route::Models,
            "/healthz" | "/readyz" => Route::Health,
            "/metrics" => Route::Metrics,
            p if p.starts_with("/api/") => Route::Admin,
            _ => Route::Other,
        }
    }
}

/// Status codes that get their own `status` label value; others become their class.
pub const STATUS_ALLOWLIST: &[u16] = &[
    200, 400, 401, 403, 404, 408, 413, 422, 429, 499, 500, 502, 503, 504,
];
const CLASSES: &[&str] = &["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// The `status` label: the exact code for [`STATUS_ALLOWLIST`], else the class (`2xx`,
/// `4xx`, ...), `other` for codes outside 100..=599.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(usize);

impl Status {
    /// Number of distinct values.
    pub const COUNT: usize = STATUS_ALLOWLIST.len() + CLASSES.len();

    /// The label of an HTTP status code.
    pub fn from_code(code: u16) -> Status {
        if let Some(i) = STATUS_ALLOWLIST.iter().position(|&c| c == code) {
            return Status(i);
        }
        let class = match code {
            100..=599 => usize::from(code / 100 - 1),
            _ => CLASSES.len() - 1,
        };
        Status(STATUS_ALLOWLIST.len() + class)
    }

    pub(crate) fn index(self) -> usize {
        self.0
    }

    /// The label value of index `i` (`i < COUNT`).
    pub(crate) fn text(i: usize) -> String {
        match STATUS_ALLOWLIST.get(i) {
            Some(code) => code.to_string(),
            None => CLASSES[i - STATUS_ALLOWLIST.len()].to_string(),
        }
    }
}

label_enum!(
    /// Token direction (`direction` label).
    Direction { In => "in", Out => "out" }
);

label_enum!(
    /// What kind of limit refused a request (`kind` label).
    RateLimitKind {
        /// A requests-per-interval limit.
        Requests => "requests",
        /// A tokens-per-interval limit.
        Tokens => "tokens",
        /// A concurrency limit.
        Concurrency => "concurrency",
    }
);

label_enum!(
    /// What a guardrail did (`action` label).
    GuardrailAction { Block => "block", Redact => "redact", Flag => "flag" }
);

label_enum!(
    /// Upstream failure class (`class` label), the gateway's `upstream_*` error codes.
    UpstreamErrorClass {
        Unreachable => "unreachable",
        Timeout => "timeout",
        RateLimited => "rate_limited",
        Overloaded => "overloaded",
        Rejected => "rejected",
        Misconfigured => "misconfigured",
        BadResponse => "bad_response",
        ServerError => "server_error",
        /// The stream broke after the response had started.
        Stream => "stream",
    }
);

impl UpstreamErrorClass {
    /// The class of a gateway error code (`upstream_timeout`, ...); `None` for codes that
    /// are not upstream failures.
    pub fn from_error_code(code: &str) -> Option<UpstreamErrorClass> {
        use UpstreamErrorClass::*;
        Some(match code {
            "upstream_unreachable" => Unreachable,
            "upstream_timeout" => Timeout,
            "upstream_rate_limited" => RateLimited,
            "upstream_overloaded" => Overloaded,
            "upstream_rejected" => Rejected,
            "upstream_misconfigured" => Misconfigured,
            "upstream_bad_response" => BadResponse,
            "upstream_error" => ServerError,
            _ => return None,
        })
    }
}

label_enum!(
    /// Circuit breaker state; the gauge's value is the position (0 closed, 1 half-open, 2 open).
    BreakerState { Closed => "closed", HalfOpen => "half_open", Open => "open" }
);

label_enum!(
    /// A routing event (`event` label).
    RouteEvent {
        /// Another attempt after a failed one, within the model's group.
        Retry => "retry",
        /// An attempt on a fallback model group.
        Fallback => "fallback",
        /// A retry refused because the retry budget is spent.
        BudgetExhausted => "budget_exhausted",
        /// A target skipped because its circuit breaker is open.
        Ejected => "ejected",
    }
);

label_enum!(
    /// Background queues (`queue` label).
    Queue {
        Usage => "usage",
        Shadow => "shadow",
        Audit => "audit",
        RequestLog => "request_log",
    }
);

label_enum!(
    /// How a shadow decision differed (`kind` label).
    ShadowKind {
        NewlyDenied => "newly_denied",
        NewlyAllowed => "newly_allowed",
        OtherRule => "other_rule",
        OtherLimits => "other_limits",
    }
);

label_enum!(
    /// Anomaly alert rules (`rule` label of `portcullis_alerts_total`).
    AlertRule {
        AuthFailures => "auth_failures",
        NewNetwork => "new_network",
        TokenSpike => "token_spike",
        RateLimitStorm => "rate_limit_storm",
        SpendSpike => "spend_spike",
    }
);

label_enum!(
    /// Fail mode that decided a limit check while its store was unreachable (`mode` label).
    FailMode { Open => "open", Closed => "closed" }
);

/// A fixed set of names known at startup (configured models or providers), plus
/// [`OTHER`] and [`NONE`]. Lookups are a hash probe by `&str`: no allocation.
#[derive(Debug)]
pub struct NameSet {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl NameSet {
    /// The set of `names` (duplicates and the reserved `other`/`none` are dropped).
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> NameSet {
        let mut set = NameSet {
            names: Vec::new(),
            index: HashMap::new(),
        };
        for n in names {
            let n = n.as_ref();
            if n != OTHER && n != NONE && !set.index.contains_key(n) {
                set.index.insert(n.to_string(), set.names.len());
                set.names.push(n.to_string());
            }
        }
        set
    }

    /// Index of `name`: its own, else `other`; `None` gives the `none` index.
    pub fn get(&self, name: Option<&str>) -> usize {
        match name {
            None => self.names.len() + 1,
            Some(n) => self.index.get(n).copied().unwrap_or(self.names.len()),
        }
    }

    /// Number of label values (names + other + none).
    pub fn len(&self) -> usize {
        self.names.len() + 2
    }

    /// Never empty: `other` and `none` always exist.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The label value of index `i`.
    pub fn label(&self, i: usize) -> &str {
        match self.names.get(i) {
            Some(n) => n,
            None if i == self.names.len() => OTHER,
            None => NONE,
        }
    }
}

/// Names learned at run time (teams, rules, breaker targets): the first `capacity` distinct
/// names get their own value, later ones share [`OTHER`]. Lookups scan the claimed slots
/// without locking; a mutex is taken only to claim a slot for a name never seen before,
/// and never once the set is full.
#[derive(Debug)]
pub struct BoundedNames {
    slots: Box<[OnceLock<Box<str>>]>,
    len: AtomicUsize,
    claim: Mutex<()>,
}

impl BoundedNames {
    /// An empty set holding at most `capacity` names.
    pub fn new(capacity: usize) -> BoundedNames {
        BoundedNames {
            slots: (0..capacity).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            claim: Mutex::new(()),
        }
    }

    fn find(&self, name: &str, len: usize) -> Option<usize> {
        self.slots[..len]
            .iter()
            .position(|s| s.get().is_some_and(|n| &**n == name))
    }

    /// Index of `name` (claiming a slot on first sight), `other` when full, `none` for `None`.
    pub fn get(&self, name: Option<&str>) -> usize {
        let Some(name) = name else {
            return self.slots.len() + 1;
        };
        let len = self.len.load(Ordering::Acquire);
        if let Some(i) = self.find(name, len) {
            return i;
        }
        if len == self.slots.len() || name == OTHER || name == NONE {
            return self.slots.len();
        }
        let _guard = self.claim.lock().unwrap_or_else(|p| p.into_inner());
        let len = self.len.load(Ordering::Acquire);
        if let Some(i) = self.find(name, len) {
            return i;
        }
        if len == self.slots.len() {
            return len;
        }
        let _ = self.slots[len].set(name.into());
        self.len.store(len + 1, Ordering::Release);
        len
    }

    /// Number of label values (capacity + other + none).
    pub fn len(&self) -> usize {
        self.slots.len() + 2
    }

    /// Never empty: `other` and `none` always exist.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The label value of index `i`; `None` for a slot not claimed yet.
    pub fn label(&self, i: usize) -> Option<&str> {
        match self.slots.get(i) {
            Some(slot) => slot.get().map(|s| &**s),
            None if i == self.slots.len() => Some(OTHER),
            None => Some(NONE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_labels() {
        assert_eq!(Status::text(Status::from_code(429).index()), "429");
        assert_eq!(Status::text(Status::from_code(201).index()), "2xx");
        assert_eq!(Status::text(Status::from_code(418).index()), "4xx");
        assert_eq!(Status::text(Status::from_code(999).index()), "other");
        assert!(Status::from_code(599).index() < Status::COUNT);
    }

    #[test]
    fn name_sets_overflow_to_other() {
        let set = NameSet::new(["a", "b", "a", "other"]);
        assert_eq!(set.len(), 4);
        assert_eq!(set.label(set.get(Some("b"))), "b");
        assert_eq!(set.label(set.get(Some("zzz"))), OTHER);
        assert_eq!(set.label(set.get(None)), NONE);

        let teams = BoundedNames::new(2);
        assert_eq!(teams.get(Some("x")), 0);
        assert_eq!(teams.get(Some("y")), 1);
        assert_eq!(teams.get(Some("x")), 0);
        assert_eq!(teams.label(teams.get(Some("z"))), Some(OTHER));
        assert_eq!(teams.label(teams.get(None)), Some(NONE));
    }

    #[test]
    fn routes() {
        assert_eq!(
            Route::from_path("/v1/chat/completions"),
            Route::ChatCompletions
        );
        assert_eq!(Route::from_path("/api/v1/keys"), Route::Admin);
        assert_eq!(Route::from_path("/random"), Route::Other);
        assert_eq!(Route::ALL.len(), 9);
    }
}
