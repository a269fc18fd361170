//! Storage-independent limiter math: the GCRA bucket and calendar budget periods. The
//! Redis scripts implement the same formulas in Lua.

use crate::document::BudgetPeriod;

/// Tolerance for float rounding when comparing bucket levels.
pub const EPSILON: f64 = 1e-9;

/// A GCRA / leaky bucket: `level` units in use, draining `limit` units per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bucket {
    /// Units currently counted.
    pub level: f64,
    /// Time of the last update (µs since the epoch).
    pub last_us: u64,
}

/// Result of [`Bucket::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    /// Whether the cost fitted.
    pub allowed: bool,
    /// Whole units still available.
    pub remaining: u64,
    /// Microseconds until the bucket is empty.
    pub reset_us: u64,
    /// Microseconds until the cost would fit (when refused).
    pub retry_after_us: Option<u64>,
}

impl Bucket {
    /// Drains the bucket up to `now_us`.
    pub fn drain(&mut self, now_us: u64, limit: u64, interval_us: u64) {
        if now_us > self.last_us {
            let drained = (now_us - self.last_us) as f64 * limit as f64 / interval_us as f64;
            self.level = (self.level - drained).max(0.0);
            self.last_us = now_us;
        }
    }

    /// Charges `cost` if it fits under `limit`.
    pub fn take(&mut self, now_us: u64, limit: u64, interval_us: u64, cost: u64) -> Take {
        self.drain(now_us, limit, interval_us);
        let fits = self.level + cost as f64 <= limit as f64 + EPSILON;
        let retry_after_us = if fits {
            self.level += cost as f64;
            None
        } else if cost > limit {
            Some(interval_us)
        } else {
            let excess = self.level + cost as f64 - limit as f64;
            Some(units_to_us(excess, limit, interval_us))
        };
        Take {
            allowed: fits,
            remaining: (limit as f64 - self.level + EPSILON).max(0.0).floor() as u64,
            reset_us: units_to_us(self.level, limit, interval_us),
            retry_after_us,
        }
    }

    /// Adds `delta` units unconditionally (negative = refund, never below zero).
    pub fn adjust(&mut self, now_us: u64, limit: u64, interval_us: u64, delta: i64) {
        self.drain(now_us, limit, interval_us);
        self.level = (self.level + delta as f64).max(0.0);
    }

    /// True when the bucket has drained completely (safe to forget).
    pub fn is_idle(&self, now_us: u64, limit: u64, interval_us: u64) -> bool {
        let mut copy = *self;
        copy.drain(now_us, limit, interval_us);
        copy.level <= EPSILON
    }
}

fn units_to_us(units: f64, limit: u64, interval_us: u64) -> u64 {
    (units * interval_us as f64 / limit as f64).ceil().max(0.0) as u64
}

/// Rounds microseconds up to whole seconds (for headers).
pub fn ceil_secs(us: u64) -> u64 {
    us.div_ceil(1_000_000)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The budget period containing `now_secs`: its label (`2026-11-27` or `2026-11`) and
/// its end (seconds since the epoch, exclusive).
pub fn period_bounds(period: BudgetPeriod, now_secs: u64) -> (String, u64) {
    let days = (now_secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    match period {
        BudgetPeriod::Day => (format!("{y:04}-{m:02}-{d:02}"), (days as u64 + 1) * 86_400),
        BudgetPeriod::Month => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            let end = days_from_civil(ny, nm, 1) as u64 * 86_400;
            (format!("{y:04}-{m:02}"), end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_over_limit_and_drains() {
        let mut b = Bucket::default();
        let iv = 60_000_000;
        for i in 0..10 {
            let t = b.take(0, 10, iv, 1);
            assert!(t.allowed);
            assert_eq!(t.remaining, 9 - i);
        }
        let t = b.take(0, 10, iv, 1);
        assert!(!t.allowed);
        assert_eq!(t.retry_after_us, Some(6_000_000));
        assert_eq!(t.reset_us, 60_000_000);
        assert!(b.take(6_000_000, 10, iv, 1).allowed);
        assert!(!b.take(6_000_000, 10, iv, 1).allowed);
        assert_eq!(b.take(0, 10, iv, 11).retry_after_us, Some(iv));
        b.adjust(6_000_000, 10, iv, -100);
        assert!(b.is_idle(6_000_000, 10, iv));
    }

    #[test]
    fn calendar_periods() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        let now = days_from_civil(2026, 12, 31) as u64 * 86_400 + 3600;
        let (label, end) = period_bounds(BudgetPeriod::Month, now);
        assert_eq!(label, "2026-12");
        assert_eq!(end, days_from_civil(2027, 1, 1) as u64 * 86_400);
        let (label, end) = period_bounds(BudgetPeriod::Day, now);
        assert_eq!(label, "2026-12-31");
        assert_eq!(end - now, 86_400 - 3600);
    }
}
