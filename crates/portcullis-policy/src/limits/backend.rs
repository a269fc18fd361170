//! Check, outcome and reservation types, the [`LimitBackend`] trait and the [`Limiter`]
//! facade that applies the [`FailMode`] when a backend is unreachable.

use crate::document::{BudgetMode, BudgetPeriod};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, so that [`LimitBackend`] can be used as `Arc<dyn LimitBackend>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a rate check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKind {
    /// Requests (cost 1 each).
    Requests,
    /// Tokens (cost = estimate, settled with actual usage).
    Tokens,
}

impl RateKind {
    /// Header suffix: `requests` or `tokens` (x-ratelimit-limit-requests, ...).
    pub fn label(self) -> &'static str {
        match self {
            RateKind::Requests => "requests",
            RateKind::Tokens => "tokens",
        }
    }
}

/// One rate limit to charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCheck {
    /// Rule id (for headers, logs, errors).
    pub id: String,
    /// Storage key of the counter.
    pub counter: String,
    /// Requests or tokens.
    pub kind: RateKind,
    /// Amount allowed per interval.
    pub limit: u64,
    /// Interval in seconds (> 0).
    pub interval_secs: u64,
    /// Amount to reserve now.
    pub cost: u64,
}

/// State of one rate limit after a reserve, for the x-ratelimit-* headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateStatus {
    /// Rule id.
    pub id: String,
    /// Requests or tokens.
    pub kind: RateKind,
    /// `x-ratelimit-limit-*`.
    pub limit: u64,
    /// `x-ratelimit-remaining-*` (after this request when allowed).
    pub remaining: u64,
    /// `x-ratelimit-reset-*`: seconds until the counter is fully replenished.
    pub reset_secs: u64,
    /// `Retry-After` seconds when this check refused the request.
    pub retry_after_secs: Option<u64>,
}

/// What was reserved; hand it back to `settle_rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateReservation {
    /// The checks as charged.
    pub checks: Vec<RateCheck>,
}

/// Result of `reserve_rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateOutcome {
    /// Whether every check had room (nothing is charged otherwise).
    pub allowed: bool,
    /// Index of the first check that refused.
    pub denied_by: Option<usize>,
    /// One status per check, in order (empty when the backend was unavailable).
    pub statuses: Vec<RateStatus>,
    /// What to settle later (when allowed by the backend).
    pub reservation: Option<RateReservation>,
    /// `Some` when the backend was unreachable and the fail mode decided.
    pub unavailable: Option<FailMode>,
}

impl RateOutcome {
    /// Largest Retry-After of the refusing checks.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.statuses
            .iter()
            .filter_map(|s| s.retry_after_secs)
            .max()
    }
}

/// One concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyCheck {
    /// Rule id.
    pub id: String,
    /// Storage key.
    pub counter: String,
    /// Maximum in flight.
    pub max: u64,
}

/// Proof of held concurrency slots; release it when the request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Unique id of this lease.
    pub id: String,
    /// Counters holding a slot.
    pub counters: Vec<String>,
}

/// Result of `acquire`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyOutcome {
    /// Whether a slot was taken on every counter.
    pub allowed: bool,
    /// Index of the first check that was full.
    pub denied_by: Option<usize>,
    /// In-flight count per check after the attempt.
    pub in_flight: Vec<u64>,
    /// The lease to release (when allowed by the backend).
    pub lease: Option<Lease>,
    /// `Some` when the backend was unreachable and the fail mode decided.
    pub unavailable: Option<FailMode>,
}

/// One budget to reserve against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCheck {
    /// Rule id.
    pub id: String,
    /// Storage key (without period; the backend appends it).
    pub counter: String,
    /// Limit per period in micro-dollars.
    pub limit_micros: u64,
    /// Calendar period (UTC).
    pub period: BudgetPeriod,
    /// Hard blocks, soft reports.
    pub mode: BudgetMode,
    /// Estimated cost of the request in micro-dollars.
    pub estimate_micros: u64,
}

/// State of one budget after a reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetStatus {
    /// Rule id.
    pub id: String,
    /// Hard or soft.
    pub mode: BudgetMode,
    /// Limit in micro-dollars.
    pub limit_micros: u64,
    /// Settled spend this period.
    pub spent_micros: u64,
    /// Reserved by requests in flight (this one included when allowed).
    pub reserved_micros: u64,
    /// Seconds until the period ends.
    pub reset_secs: u64,
    /// Spend + reservations (+ this estimate) exceed the limit: refused when hard,
    /// to be alerted on when soft.
    pub exceeded: bool,
}

/// One reserved budget amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetHold {
    /// Rule id.
    pub id: String,
    /// Storage key including the period, so settlement hits the same period.
    pub period_key: String,
    /// Reserved micro-dollars.
    pub reserved_micros: u64,
    /// Seconds since the Unix epoch at which the period ends.
    pub period_end: u64,
}

/// What was reserved; hand it back to `settle_budget`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetReservation {
    /// One hold per budget.
    pub holds: Vec<BudgetHold>,
}

/// Result of `reserve_budget`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetOutcome {
    /// False only when a hard budget would be exceeded (or the backend failed closed).
    pub allowed: bool,
    /// Index of the first hard budget that refused.
    pub denied_by: Option<usize>,
    /// One status per check, in order.
    pub statuses: Vec<BudgetStatus>,
    /// What to settle later.
    pub reservation: Option<BudgetReservation>,
    /// `Some` when the backend was unreachable and the fail mode decided.
    pub unavailable: Option<FailMode>,
}

/// A backend could not answer (Redis down, timeout, script error).
#[derive(Debug, Clone, thiserror::Error)]
#[error("limit backend unavailable: {0}")]
pub struct BackendError(pub String);

/// What to do when the backend cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailMode {
    /// Let the request through unlimited (availability over enforcement).
    Open,
    /// Refuse the request (enforcement over availability; the default).
    #[default]
    Closed,
}

impl FailMode {
    /// Metric label: `open` or `closed`.
    pub fn label(self) -> &'static str {
        match self {
            FailMode::Open => "open",
            FailMode::Closed => "closed",
        }
    }
}

/// Storage of counters. Implementations must make each call atomic over its checks
/// (all charged or none) and safe to call from many tasks and, for shared stores, from
/// many gateway instances.
pub trait LimitBackend: Send + Sync {
    /// Charges every check or none.
    fn reserve_rate<'a>(
        &'a self,
        checks: &'a [RateCheck],
    ) -> BoxFuture<'a, Result<RateOutcome, BackendError>>;
    /// Corrects token checks by `actual_tokens - cost` (refund or extra charge); request
    /// checks are left as they are.
    fn settle_rate<'a>(
        &'a self,
        reservation: &'a RateReservation,
        actual_tokens: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
    /// Takes one slot on every counter or none.
    fn acquire<'a>(
        &'a self,
        checks: &'a [ConcurrencyCheck],
    ) -> BoxFuture<'a, Result<ConcurrencyOutcome, BackendError>>;
    /// Gives the slots of a lease back (idempotent).
    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), BackendError>>;
    /// Reserves the estimate on every budget, unless a hard one would be exceeded.
    fn reserve_budget<'a>(
        &'a self,
        checks: &'a [BudgetCheck],
    ) -> BoxFuture<'a, Result<BudgetOutcome, BackendError>>;
    /// Replaces the reservation by the actual cost.
    fn settle_budget<'a>(
        &'a self,
        reservation: &'a BudgetReservation,
        actual_micros: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
}

/// A backend plus the fail mode: calls never fail, an unreachable backend yields an
/// outcome with `unavailable: Some(mode)` (allowed for `Open`, refused for `Closed`),
/// which the caller counts in metrics. Settlement errors are returned for logging.
#[derive(Clone)]
pub struct Limiter {
    backend: Arc<dyn LimitBackend>,
    fail_mode: FailMode,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("fail_mode", &self.fail_mode)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn LimitBackend>, fail_mode: FailMode) -> Limiter {
        Limiter { backend, fail_mode }
    }

    /// The backend, e.g. for a [`super::ConcurrencyGuard`].
    pub fn backend(&self) -> &Arc<dyn LimitBackend> {
        &self.backend
    }

    /// The configured fail mode.
    pub fn fail_mode(&self) -> FailMode {
        self.fail_mode
    }

    fn open(&self) -> bool {
        self.fail_mode == FailMode::Open
    }

    /// [`LimitBackend::reserve_rate`] with the fail mode applied.
    pub async fn reserve_rate(&self, checks: &[RateCheck]) -> RateOutcome {
        if checks.is_empty() {
            return RateOutcome {
                allowed: true,
                denied_by: None,
                statuses: vec![],
                reservation: None,
                unavailable: None,
            };
        }
        self.backend
            .reserve_rate(checks)
            .await
            .unwrap_or_else(|_| RateOutcome {
                allowed: self.open(),
                denied_by: (!self.open()).then_some(0),
                statuses: vec![],
                reservation: None,
                unavailable: Some(self.fail_mode),
            })
    }

    /// [`LimitBackend::acquire`] with the fail mode applied.
    pub async fn acquire(&self, checks: &[ConcurrencyCheck]) -> ConcurrencyOutcome {
        if checks.is_empty() {
            return ConcurrencyOutcome {
                allowed: true,
                denied_by: None,
                in_flight: vec![],
                lease: None,
                unavailable: None,
            };
        }
        self.backend
            .acquire(checks)
            .await
            .unwrap_or_else(|_| ConcurrencyOutcome {
                allowed: self.open(),
                denied_by: (!self.open()).then_some(0),
                in_flight: vec![],
                lease: None,
                unavailable: Some(self.fail_mode),
            })
    }

    /// [`LimitBackend::reserve_budget`] with the fail mode applied.
    pub async fn reserve_budget(&self, checks: &[BudgetCheck]) -> BudgetOutcome {
        if checks.is_empty() {
            return BudgetOutcome {
                allowed: true,
                denied_by: None,
                statuses: vec![],
                reservation: None,
                unavailable: None,
            };
        }
        self.backend
            .reserve_budget(checks)
            .await
            .unwrap_or_else(|_| BudgetOutcome {
                allowed: self.open(),
                denied_by: (!self.open()).then_some(0),
                statuses: vec![],
                reservation: None,
                unavailable: Some(self.fail_mode),
            })
    }

    /// Settles a rate reservation (if any).
    pub async fn settle_rate(
        &self,
        reservation: Option<&RateReservation>,
        actual_tokens: u64,
    ) -> Result<(), BackendError> {
        match reservation {
            Some(r) => self.backend.settle_rate(r, actual_tokens).await,
            None => Ok(()),
        }
    }

    /// Releases a lease (if any).
    pub async fn release(&self, lease: Option<&Lease>) -> Result<(), BackendError> {
        match lease {
            Some(l) => self.backend.release(l).await,
            None => Ok(()),
        }
    }

    /// Settles a budget reservation (if any).
    pub async fn settle_budget(
        &self,
        reservation: Option<&BudgetReservation>,
        actual_micros: u64,
    ) -> Result<(), BackendError> {
        match reservation {
            Some(r) => self.backend.settle_budget(r, actual_micros).await,
            None => Ok(()),
        }
    }
}
