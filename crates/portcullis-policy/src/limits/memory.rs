//! In-memory backend: counters in sharded `std::sync::Mutex` maps (no global lock; a lock
//! is held only for a few arithmetic operations, never across an await). For one instance.

use super::math::{ceil_secs, period_bounds, Bucket};
use super::*;
use crate::document::BudgetMode;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 64;
const FIRST_SWEEP: usize = 1024;

struct Shard<V> {
    map: HashMap<String, V>,
    sweep_at: usize,
}

struct Shards<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    hasher: RandomState,
}

impl<V> Shards<V> {
    fn new() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    sweep_at: FIRST_SWEEP,
                })
            })
            .collect();
        Shards {
            shards,
            hasher: RandomState::new(),
        }
    }

    fn lock(&self, key: &str) -> MutexGuard<'_, Shard<V>> {
        let i = self.hasher.hash_one(key) as usize % SHARDS;
        // A panic while holding the lock leaves plain numbers behind: keep using them.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<V> Shard<V> {
    /// Drops idle entries once the shard has grown past its threshold.
    fn maybe_sweep(&mut self, idle: impl Fn(&V) -> bool) {
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, v| !idle(v));
            self.sweep_at = (self.map.len() * 2).max(FIRST_SWEEP);
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct BudgetState {
    spent: u64,
    reserved: u64,
    end: u64,
}

/// Counters in this process's memory. Construct with [`MemoryBackend::new`] (system
/// clock) or [`MemoryBackend::with_clock`] (tests: [`TokioClock`]).
pub struct MemoryBackend {
    clock: Box<dyn Clock>,
    buckets: Shards<(Bucket, u64, u64)>,
    leases: Shards<HashSet<u64>>,
    budgets: Shards<BudgetState>,
    next_lease: AtomicU64,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend").finish_non_exhaustive()
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl MemoryBackend {
    /// A backend on the system clock.
    pub fn new() -> MemoryBackend {
        MemoryBackend::with_clock(Box::new(SystemClock))
    }

    /// A backend on the given clock.
    pub fn with_clock(clock: Box<dyn Clock>) -> MemoryBackend {
        MemoryBackend {
            clock,
            buckets: Shards::new(),
            leases: Shards::new(),
            budgets: Shards::new(),
            next_lease: AtomicU64::new(1),
        }
    }

    fn adjust(&self, check: &RateCheck, now: u64, delta: i64) {
        let iv = check.interval_secs.max(1) * 1_000_000;
        let mut shard = self.buckets.lock(&check.counter);
        let entry = shard.map.entry(check.counter.clone()).or_insert((
            Bucket {
                level: 0.0,
                last_us: now,
            },
            check.limit,
            iv,
        ));
        entry.0.adjust(now, check.limit, iv, delta);
    }

    fn rate(&self, checks: &[RateCheck]) -> RateOutcome {
        let now = self.clock.now_micros();
        let mut statuses = Vec::with_capacity(checks.len());
        let mut taken = Vec::with_capacity(checks.len());
        let mut denied_by = None;
        for (i, c) in checks.iter().enumerate() {
            let iv = c.interval_secs.max(1) * 1_000_000;
            let take = {
                let mut shard = self.buckets.lock(&c.counter);
                let (limit, now_ref) = (c.limit, now);
                shard.maybe_sweep(|(b, l, iv)| b.is_idle(now_ref, *l, *iv));
                let entry = shard.map.entry(c.counter.clone()).or_insert((
                    Bucket {
                        level: 0.0,
                        last_us: now,
                    },
                    limit,
                    iv,
                ));
                entry.1 = limit;
                entry.2 = iv;
                entry.0.take(now, limit, iv, c.cost)
            };
            if take.allowed {
                taken.push(i);
            } else if denied_by.is_none() {
                denied_by = Some(i);
            }
            statuses.push(RateStatus {
                id: c.id.clone(),
                kind: c.kind,
                limit: c.limit,
                remaining: take.remaining,
                reset_secs: ceil_secs(take.reset_us),
                retry_after_secs: take.retry_after_us.map(|us| ceil_secs(us).max(1)),
            });
        }
        if denied_by.is_some() {
            for &i in &taken {
                let c = &checks[i];
                self.adjust(c, now, -(c.cost as i64));
                statuses[i].remaining = (statuses[i].remaining + c.cost).min(c.limit);
            }
        }
        RateOutcome {
            allowed: denied_by.is_none(),
            denied_by,
            statuses,
            reservation: denied_by.is_none().then(|| RateReservation {
                checks: checks.to_vec(),
            }),
            unavailable: None,
        }
    }

    fn settle(&self, reservation: &RateReservation, actual_tokens: u64) {
        let now = self.clock.now_micros();
        for c in &reservation.checks {
            if c.kind == RateKind::Tokens && actual_tokens != c.cost {
                self.adjust(c, now, actual_tokens as i64 - c.cost as i64);
            }
        }
    }

    fn acquire_now(&self, checks: &[ConcurrencyCheck]) -> ConcurrencyOutcome {
        let id = self.next_lease.fetch_add(1, Ordering::Relaxed);
        let mut in_flight = Vec::with_capacity(checks.len());
        let mut denied_by = None;
        for (i, c) in checks.iter().enumerate() {
            let mut shard = self.leases.lock(&c.counter);
            shard.maybe_sweep(HashSet::is_empty);
            let set = shard.map.entry(c.counter.clone()).or_default();
            if (set.len() as u64) < c.max {
                set.insert(id);
            } else {
                denied_by = Some(i);
            }
            in_flight.push(set.len() as u64);
            if denied_by.is_some() {
                break;
            }
        }
        let counters: Vec<String> = checks.iter().map(|c| c.counter.clone()).collect();
        let lease = Lease {
            id: format!("mem-{id}"),
            counters,
        };
        if denied_by.is_some() {
            self.release_now(&lease);
        }
        ConcurrencyOutcome {
            allowed: denied_by.is_none(),
            denied_by,
            in_flight,
            lease: denied_by.is_none().then_some(lease),
            unavailable: None,
        }
    }

    fn release_now(&self, lease: &Lease) {
        let Some(id) = lease
            .id
            .strip_prefix("mem-")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return;
        };
        for counter in &lease.counters {
            let mut shard = self.leases.lock(counter);
            if let Some(set) = shard.map.get_mut(counter) {
                set.remove(&id);
            }
        }
    }

    fn budget(&self, checks: &[BudgetCheck]) -> BudgetOutcome {
        let now = self.clock.now_micros() / 1_000_000;
        let mut statuses = Vec::with_capacity(checks.len());
        let mut holds = Vec::with_capacity(checks.len());
        let mut denied_by = None;
        for (i, c) in checks.iter().enumerate() {
            let (label, end) = period_bounds(c.period, now);
            let period_key = format!("{}:{label}", c.counter);
            let mut shard = self.budgets.lock(&period_key);
            shard.maybe_sweep(|s| s.end <= now && s.reserved == 0);
            let state = shard.map.entry(period_key.clone()).or_insert(BudgetState {
                end,
                ..Default::default()
            });
            let exceeded = state.spent + state.reserved + c.estimate_micros > c.limit_micros;
            let refuse = exceeded && c.mode == BudgetMode::Hard;
            if refuse {
                denied_by.get_or_insert(i);
            } else {
                state.reserved += c.estimate_micros;
                holds.push(BudgetHold {
                    id: c.id.clone(),
                    period_key,
                    reserved_micros: c.estimate_micros,
                    period_end: end,
                });
            }
            statuses.push(BudgetStatus {
                id: c.id.clone(),
                mode: c.mode,
                limit_micros: c.limit_micros,
                spent_micros: state.spent,
                reserved_micros: state.reserved,
                reset_secs: end.saturating_sub(now),
                exceeded,
            });
        }
        let reservation = BudgetReservation { holds };
        if denied_by.is_some() {
            self.settle_budget_now(&reservation, None);
        }
        BudgetOutcome {
            allowed: denied_by.is_none(),
            denied_by,
            statuses,
            reservation: denied_by.is_none().then_some(reservation),
            unavailable: None,
        }
    }

    /// Removes the holds; adds `actual` to the spend of each (None = roll back).
    fn settle_budget_now(&self, reservation: &BudgetReservation, actual: Option<u64>) {
        for hold in &reservation.holds {
            let mut shard = self.budgets.lock(&hold.period_key);
            let state = shard
                .map
                .entry(hold.period_key.clone())
                .or_insert(BudgetState {
                    end: hold.period_end,
                    ..Default::default()
                });
            state.reserved = state.reserved.saturating_sub(hold.reserved_micros);
            state.spent += actual.unwrap_or(0);
        }
    }
}

impl LimitBackend for MemoryBackend {
    fn reserve_rate<'a>(
        &'a self,
        checks: &'a [RateCheck],
    ) -> BoxFuture<'a, Result<RateOutcome, BackendError>> {
        Box::pin(std::future::ready(Ok(self.rate(checks))))
    }

    fn settle_rate<'a>(
        &'a self,
        reservation: &'a RateReservation,
        actual_tokens: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.settle(reservation, actual_tokens);
        Box::pin(std::future::ready(Ok(())))
    }

    fn acquire<'a>(
        &'a self,
        checks: &'a [ConcurrencyCheck],
    ) -> BoxFuture<'a, Result<ConcurrencyOutcome, BackendError>> {
        Box::pin(std::future::ready(Ok(self.acquire_now(checks))))
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), BackendError>> {
        self.release_now(lease);
        Box::pin(std::future::ready(Ok(())))
    }

    fn reserve_budget<'a>(
        &'a self,
        checks: &'a [BudgetCheck],
    ) -> BoxFuture<'a, Result<BudgetOutcome, BackendError>> {
        Box::pin(std::future::ready(Ok(self.budget(checks))))
    }

    fn settle_budget<'a>(
        &'a self,
        reservation: &'a BudgetReservation,
        actual_micros: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.settle_budget_now(reservation, Some(actual_micros));
        Box::pin(std::future::ready(Ok(())))
    }
}
