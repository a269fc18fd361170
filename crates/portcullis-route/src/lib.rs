//! Routing and resilience decisions, without I/O.
//!
//! The server owns the sockets and the clock; this crate decides. Every function that
//! depends on time takes `now` as an argument (an injected clock), and every random choice
//! takes the random number as an argument, so the decisions are deterministic under test.
//!
//! - [`select`]: which target of a model group serves the next attempt (weighted random,
//!   least in flight, lowest latency EWMA, ordered priority).
//! - [`breaker`]: the per-target circuit breaker (closed -> open -> half-open -> closed).
//! - [`class`]: failure classes of an upstream exchange and `Retry-After` parsing.
//! - [`retry`]: whether a failure is retried and how long to wait (exponential backoff with
//!   full jitter, the upstream's `Retry-After` honored up to a cap).
//! - [`budget`]: the retry budget that keeps retries from amplifying an outage.
//! - [`rules`]: conditional routing rules (header, team, request metadata).

pub mod breaker;
pub mod budget;
pub mod class;
pub mod retry;
pub mod rules;
pub mod select;

pub use breaker::{Admission, Breaker, BreakerConfig, BreakerSnapshot, BreakerState};
pub use budget::{BudgetConfig, RetryBudget};
pub use class::{parse_retry_after, FailureClass};
pub use retry::{ClassSet, RetryPolicy};
pub use rules::{route, Facts, Rule};
pub use select::{ewma, pick, Candidate, Strategy};
