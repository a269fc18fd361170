//! Traffic control independent of storage: rate limits (requests and tokens per interval),
//! concurrency limits and USD budgets, behind one async [`LimitBackend`] trait with an
//! in-memory ([`MemoryBackend`]) and a Redis ([`RedisBackend`]) implementation.
//!
//! Flow per request (see [`Limiter`], which adds the fail-open/closed handling):
//! 1. [`plan`] turns a decision's [`LimitRef`]s into checks;
//! 2. `reserve_rate` (requests cost 1, tokens cost the estimate), `acquire` (concurrency
//!    lease), `reserve_budget` (estimated micro-USD) — each all-or-nothing over its checks;
//! 3. after the upstream call: `settle_rate` with the actual tokens, `release` the lease,
//!    `settle_budget` with the actual cost. Settlement must run even if the client left.
//!
//! Rate limits use GCRA (a leaky bucket of capacity `limit` draining `limit` per
//! `interval`): no burst at window edges, one number per counter. Amounts of money are
//! integer micro-dollars so that sums are exact everywhere, Redis included.

mod backend;
mod clock;
mod guard;
pub mod math;
mod memory;
mod redis;

pub use backend::*;
pub use clock::{Clock, SystemClock, TokioClock};
pub use guard::ConcurrencyGuard;
pub use memory::MemoryBackend;
pub use redis::{RedisBackend, RedisOptions};

use crate::decide::{LimitKind, LimitRef};

/// The checks of one request, built by [`plan`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitPlan {
    /// Requests and tokens per interval.
    pub rate: Vec<RateCheck>,
    /// Concurrent requests.
    pub concurrency: Vec<ConcurrencyCheck>,
    /// Spend.
    pub budgets: Vec<BudgetCheck>,
}

impl LimitPlan {
    /// True when nothing needs to be reserved.
    pub fn is_empty(&self) -> bool {
        self.rate.is_empty() && self.concurrency.is_empty() && self.budgets.is_empty()
    }
}

/// Turns a decision's limits into checks: request limits cost 1, token limits cost
/// `estimated_tokens`, budgets reserve `estimated_cost_micros`.
pub fn plan(limits: &[LimitRef], estimated_tokens: u64, estimated_cost_micros: u64) -> LimitPlan {
    let mut plan = LimitPlan::default();
    for l in limits {
        match l.kind {
            LimitKind::Requests {
                limit,
                interval_secs,
            }
            | LimitKind::Tokens {
                limit,
                interval_secs,
            } => {
                let tokens = matches!(l.kind, LimitKind::Tokens { .. });
                plan.rate.push(RateCheck {
                    id: l.id.clone(),
                    counter: l.counter.clone(),
                    kind: if tokens {
                        RateKind::Tokens
                    } else {
                        RateKind::Requests
                    },
                    limit,
                    interval_secs,
                    cost: if tokens { estimated_tokens } else { 1 },
                })
            }
            LimitKind::Concurrent { max } => plan.concurrency.push(ConcurrencyCheck {
                id: l.id.clone(),
                counter: l.counter.clone(),
                max,
            }),
            LimitKind::Budget {
                usd_micros,
                period,
                mode,
            } => plan.budgets.push(BudgetCheck {
                id: l.id.clone(),
                counter: l.counter.clone(),
                limit_micros: usd_micros,
                period,
                mode,
                estimate_micros: estimated_cost_micros,
            }),
        }
    }
    plan
}

#[cfg(test)]
mod tests;
