//! Redis backend: every call is one atomic Lua script, so several gateway instances share
//! one limit exactly. Rate limits use Redis's own clock (`TIME`) so instance clock skew
//! does not matter; budget periods use the instance clock (skew only matters at midnight).

use super::math::{ceil_secs, period_bounds};
use super::*;
use crate::document::BudgetMode;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::Script;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

/// GCRA over every key; all-or-nothing. ARGV per key: limit, interval_us, cost.
/// Returns {denied_index (0 = none), then per key: remaining, reset_us, retry_us (-1 = none)}.
static RATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local levels, denied = {}, 0
for i = 1, #KEYS do
  local limit, iv, cost = tonumber(ARGV[i*3-2]), tonumber(ARGV[i*3-1]), tonumber(ARGV[i*3])
  local s = redis.call('HMGET', KEYS[i], 'l', 't')
  local level, last = tonumber(s[1]) or 0, tonumber(s[2]) or now
  if now > last then level = math.max(0, level - (now - last) * limit / iv) end
  levels[i] = level
  if denied == 0 and level + cost > limit + 1e-9 then denied = i end
end
local out = {denied}
for i = 1, #KEYS do
  local limit, iv, cost = tonumber(ARGV[i*3-2]), tonumber(ARGV[i*3-1]), tonumber(ARGV[i*3])
  local level, retry = levels[i], -1
  if denied == 0 then
    level = level + cost
    redis.call('HSET', KEYS[i], 'l', tostring(level), 't', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(iv / 1000) + 1000)
  elseif level + cost > limit + 1e-9 then
    if cost > limit then retry = iv else retry = math.ceil((level + cost - limit) * iv / limit) end
  end
  table.insert(out, math.floor(math.max(0, limit - level + 1e-9)))
  table.insert(out, math.ceil(level * iv / limit))
  table.insert(out, retry)
end
return out
"#,
    )
});

/// Adds a signed delta to GCRA keys. ARGV per key: limit, interval_us, delta.
static ADJUST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local limit, iv, delta = tonumber(ARGV[i*3-2]), tonumber(ARGV[i*3-1]), tonumber(ARGV[i*3])
  local s = redis.call('HMGET', KEYS[i], 'l', 't')
  local level, last = tonumber(s[1]) or 0, tonumber(s[2]) or now
  if now > last then level = math.max(0, level - (now - last) * limit / iv) end
  level = math.max(0, level + delta)
  redis.call('HSET', KEYS[i], 'l', tostring(level), 't', math.max(now, last))
  redis.call('PEXPIRE', KEYS[i], math.ceil(iv / 1000) + 1000)
end
return {1}
"#,
    )
});

/// Concurrency slots as sorted sets of lease ids scored by expiry. ARGV: lease, ttl_ms,
/// then max per key. Returns {denied_index, in-flight per key}.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local counts, denied = {}, 0
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  counts[i] = redis.call('ZCARD', KEYS[i])
  if denied == 0 and counts[i] >= tonumber(ARGV[i + 2]) then denied = i end
end
local out = {denied}
for i = 1, #KEYS do
  if denied == 0 then
    redis.call('ZADD', KEYS[i], now + ttl, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], ttl)
    counts[i] = counts[i] + 1
  end
  table.insert(out, counts[i])
end
return out
"#,
    )
});

/// Budgets as hashes {spent, reserved} per period key. ARGV: expire_at, then per key:
/// limit, estimate, hard (1/0). Returns {denied_index, per key: spent, reserved}.
static BUDGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local state, denied = {}, 0
for i = 1, #KEYS do
  local limit, est, hard = tonumber(ARGV[i*3-1]), tonumber(ARGV[i*3]), ARGV[i*3+1] == '1'
  local s = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
  state[i] = {tonumber(s[1]) or 0, tonumber(s[2]) or 0}
  if denied == 0 and hard and state[i][1] + state[i][2] + est > limit then denied = i end
end
local out = {denied}
for i = 1, #KEYS do
  if denied == 0 then
    state[i][2] = redis.call('HINCRBY', KEYS[i], 'reserved', tonumber(ARGV[i*3]))
    redis.call('EXPIREAT', KEYS[i], tonumber(ARGV[1]))
  end
  table.insert(out, state[i][1])
  table.insert(out, state[i][2])
end
return out
"#,
    )
});

/// Moves holds to spend. ARGV: actual, then reserved per key.
static BUDGET_SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 1, #KEYS do
  local r = redis.call('HINCRBY', KEYS[i], 'reserved', -tonumber(ARGV[i + 1]))
  if r < 0 then redis.call('HSET', KEYS[i], 'reserved', 0) end
  redis.call('HINCRBY', KEYS[i], 'spent', tonumber(ARGV[1]))
end
return {1}
"#,
    )
});

/// Settings of [`RedisBackend::connect`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prepended to every key (default `portcullis:`); tests use a unique prefix.
    pub key_prefix: String,
    /// Longest wait for one script call before the fail mode applies (default 250 ms).
    pub timeout: Duration,
    /// How long a concurrency slot survives if its instance dies before releasing it
    /// (default 1 h; longer than the longest stream).
    pub lease_ttl: Duration,
    /// How long a finished budget period is kept for reports (default 35 days).
    pub budget_retention: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "portcullis:".into(),
            timeout: Duration::from_millis(250),
            lease_ttl: Duration::from_secs(3600),
            budget_retention: Duration::from_secs(35 * 86_400),
        }
    }
}

/// Counters in Redis, shared by every instance that uses the same URL and prefix.
/// The connection reconnects by itself; while Redis is unreachable calls return
/// [`BackendError`] quickly and [`Limiter`] applies the fail mode.
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    opts: RedisOptions,
    instance: String,
    next_lease: std::sync::Arc<AtomicU64>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn err(e: impl std::fmt::Display) -> BackendError {
    BackendError(e.to_string())
}

impl RedisBackend {
    /// Connects to `url` (`redis://host:port/db`, `rediss://...`). Fails when Redis cannot
    /// be reached within `opts.timeout * 4` (decide at startup: exit, or run on the
    /// in-memory backend with a warning).
    pub async fn connect(url: &str, opts: RedisOptions) -> Result<RedisBackend, BackendError> {
        let client = ::redis::Client::open(url).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(opts.timeout * 4)
            .set_response_timeout(opts.timeout)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let conn = tokio::time::timeout(
            opts.timeout * 8,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| BackendError("timed out connecting to Redis".into()))?
        .map_err(err)?;
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).map_err(err)?;
        Ok(RedisBackend {
            conn,
            opts,
            instance: hex::encode(id),
            next_lease: Default::default(),
        })
    }

    fn key(&self, counter: &str) -> String {
        format!("{}{counter}", self.opts.key_prefix)
    }

    async fn run(&self, inv: ::redis::ScriptInvocation<'_>) -> Result<Vec<i64>, BackendError> {
        let mut conn = self.conn.clone();
        tokio::time::timeout(self.opts.timeout, inv.invoke_async::<Vec<i64>>(&mut conn))
            .await
            .map_err(|_| BackendError("Redis call timed out".into()))?
            .map_err(err)
    }

    async fn rate(&self, checks: &[RateCheck]) -> Result<RateOutcome, BackendError> {
        let mut inv = RATE.prepare_invoke();
        for c in checks {
            inv.key(self.key(&c.counter))
                .arg(c.limit)
                .arg(c.interval_secs.max(1) * 1_000_000)
                .arg(c.cost);
        }
        let out = self.run(inv).await?;
        let denied = out.first().copied().unwrap_or(0);
        let statuses = checks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let at = |j: usize| out.get(1 + i * 3 + j).copied().unwrap_or(0);
                RateStatus {
                    id: c.id.clone(),
                    kind: c.kind,
                    limit: c.limit,
                    remaining: at(0).max(0) as u64,
                    reset_secs: ceil_secs(at(1).max(0) as u64),
                    retry_after_secs: (at(2) >= 0).then(|| ceil_secs(at(2) as u64).max(1)),
                }
            })
            .collect();
        let allowed = denied == 0;
        Ok(RateOutcome {
            allowed,
            denied_by: (!allowed).then(|| denied as usize - 1),
            statuses,
            reservation: allowed.then(|| RateReservation {
                checks: checks.to_vec(),
            }),
            unavailable: None,
        })
    }

    async fn settle(&self, r: &RateReservation, actual: u64) -> Result<(), BackendError> {
        let mut inv = ADJUST.prepare_invoke();
        let mut any = false;
        for c in r
            .checks
            .iter()
            .filter(|c| c.kind == RateKind::Tokens && c.cost != actual)
        {
            any = true;
            inv.key(self.key(&c.counter))
                .arg(c.limit)
                .arg(c.interval_secs.max(1) * 1_000_000)
                .arg(actual as i64 - c.cost as i64);
        }
        if any {
            self.run(inv).await?;
        }
        Ok(())
    }

    async fn acquire_slots(
        &self,
        checks: &[ConcurrencyCheck],
    ) -> Result<ConcurrencyOutcome, BackendError> {
        let n = self.next_lease.fetch_add(1, Ordering::Relaxed);
        let lease_id = format!("{}-{n}", self.instance);
        let mut inv = ACQUIRE.prepare_invoke();
        inv.arg(&lease_id)
            .arg(self.opts.lease_ttl.as_millis() as u64);
        for c in checks {
            inv.key(self.key(&c.counter)).arg(c.max);
        }
        let out = self.run(inv).await?;
        let denied = out.first().copied().unwrap_or(0);
        let allowed = denied == 0;
        Ok(ConcurrencyOutcome {
            allowed,
            denied_by: (!allowed).then(|| denied as usize - 1),
            in_flight: out.iter().skip(1).map(|&v| v.max(0) as u64).collect(),
            lease: allowed.then(|| Lease {
                id: lease_id,
                counters: checks.iter().map(|c| c.counter.clone()).collect(),
            }),
            unavailable: None,
        })
    }

    async fn release_slots(&self, lease: &Lease) -> Result<(), BackendError> {
        let mut pipe = ::redis::pipe();
        for counter in &lease.counters {
            pipe.zrem(self.key(counter), &lease.id).ignore();
        }
        let mut conn = self.conn.clone();
        tokio::time::timeout(self.opts.timeout, pipe.exec_async(&mut conn))
            .await
            .map_err(|_| BackendError("Redis call timed out".into()))?
            .map_err(err)
    }

    async fn budget(&self, checks: &[BudgetCheck]) -> Result<BudgetOutcome, BackendError> {
        let now = SystemClock.now_micros() / 1_000_000;
        let bounds: Vec<(String, u64)> = checks
            .iter()
            .map(|c| {
                let (label, end) = period_bounds(c.period, now);
                (format!("{}:{label}", c.counter), end)
            })
            .collect();
        let expire_at =
            bounds.iter().map(|b| b.1).max().unwrap_or(now) + self.opts.budget_retention.as_secs();
        let mut inv = BUDGET.prepare_invoke();
        inv.arg(expire_at);
        for (c, (key, _)) in checks.iter().zip(&bounds) {
            inv.key(self.key(key))
                .arg(c.limit_micros)
                .arg(c.estimate_micros)
                .arg(u8::from(c.mode == BudgetMode::Hard));
        }
        let out = self.run(inv).await?;
        let denied = out.first().copied().unwrap_or(0);
        let allowed = denied == 0;
        let statuses = checks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let spent = out.get(1 + 2 * i).copied().unwrap_or(0).max(0) as u64;
                let reserved = out.get(2 + 2 * i).copied().unwrap_or(0).max(0) as u64;
                let pending = if allowed {
                    reserved
                } else {
                    reserved + c.estimate_micros
                };
                BudgetStatus {
                    id: c.id.clone(),
                    mode: c.mode,
                    limit_micros: c.limit_micros,
                    spent_micros: spent,
                    reserved_micros: reserved,
                    reset_secs: bounds[i].1.saturating_sub(now),
                    exceeded: spent + pending > c.limit_micros,
                }
            })
            .collect();
        let holds = checks
            .iter()
            .zip(bounds)
            .map(|(c, (period_key, period_end))| BudgetHold {
                id: c.id.clone(),
                period_key,
                reserved_micros: c.estimate_micros,
                period_end,
            })
            .collect();
        Ok(BudgetOutcome {
            allowed,
            denied_by: (!allowed).then(|| denied as usize - 1),
            statuses,
            reservation: allowed.then_some(BudgetReservation { holds }),
            unavailable: None,
        })
    }

    async fn budget_settle(&self, r: &BudgetReservation, actual: u64) -> Result<(), BackendError> {
        let mut inv = BUDGET_SETTLE.prepare_invoke();
        inv.arg(actual);
        for hold in &r.holds {
            inv.key(self.key(&hold.period_key))
                .arg(hold.reserved_micros);
        }
        self.run(inv).await.map(|_| ())
    }
}

impl LimitBackend for RedisBackend {
    fn reserve_rate<'a>(
        &'a self,
        checks: &'a [RateCheck],
    ) -> BoxFuture<'a, Result<RateOutcome, BackendError>> {
        Box::pin(self.rate(checks))
    }

    fn settle_rate<'a>(
        &'a self,
        reservation: &'a RateReservation,
        actual_tokens: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.settle(reservation, actual_tokens))
    }

    fn acquire<'a>(
        &'a self,
        checks: &'a [ConcurrencyCheck],
    ) -> BoxFuture<'a, Result<ConcurrencyOutcome, BackendError>> {
        Box::pin(self.acquire_slots(checks))
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.release_slots(lease))
    }

    fn reserve_budget<'a>(
        &'a self,
        checks: &'a [BudgetCheck],
    ) -> BoxFuture<'a, Result<BudgetOutcome, BackendError>> {
        Box::pin(self.budget(checks))
    }

    fn settle_budget<'a>(
        &'a self,
        reservation: &'a BudgetReservation,
        actual_micros: u64,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.budget_settle(reservation, actual_micros))
    }
}
