//! The retry budget: retries (and fallbacks) may add at most `ratio` extra upstream calls
//! per request over a sliding window, plus a small floor per second so a quiet gateway can
//! still retry. When an upstream is down, every request fails and wants a retry; without a
//! budget the gateway would multiply the load on the failing upstream by the attempt count.

use std::time::{Duration, Instant};

/// Budget settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed per request in the window (0.2 = 20%).
    pub ratio: f64,
    /// Retries always allowed per second of window, whatever the traffic.
    pub min_per_second: u32,
    /// Length of the sliding window.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ratio: 0.2,
            min_per_second: 1,
            window: Duration::from_secs(10),
        }
    }
}

/// Number of buckets the window is divided into.
const SLOTS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Which bucket period this slot currently counts (stale slots are reset on use).
    epoch: u64,
    requests: u64,
    retries: u64,
}

/// Requests and retries over a sliding window of [`SLOTS`] buckets.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    config: BudgetConfig,
    origin: Instant,
    slots: [Slot; SLOTS],
}

impl RetryBudget {
    /// An empty budget; `now` anchors the window buckets.
    pub fn new(config: BudgetConfig, now: Instant) -> RetryBudget {
        RetryBudget {
            config,
            origin: now,
            slots: [Slot::default(); SLOTS],
        }
    }

    fn slot_len(&self) -> Duration {
        (self.config.window / SLOTS as u32).max(Duration::from_millis(1))
    }

    fn epoch(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin);
        (since.as_nanos() / self.slot_len().as_nanos()) as u64
    }

    fn current(&mut self, now: Instant) -> &mut Slot {
        let epoch = self.epoch(now);
        let slot = &mut self.slots[(epoch % SLOTS as u64) as usize];
        if slot.epoch != epoch {
            *slot = Slot {
                epoch,
                ..Slot::default()
            };
        }
        slot
    }

    fn totals(&self, now: Instant) -> (u64, u64) {
        let epoch = self.epoch(now);
        self.slots
            .iter()
            .filter(|s| s.epoch + (SLOTS as u64) > epoch && s.epoch <= epoch)
            .fold((0, 0), |(r, t), s| (r + s.requests, t + s.retries))
    }

    /// Counts a request (its first attempt).
    pub fn record_request(&mut self, now: Instant) {
        self.current(now).requests += 1;
    }

    /// Takes one retry from the budget; false when the budget is spent.
    pub fn try_retry(&mut self, now: Instant) -> bool {
        let (requests, retries) = self.totals(now);
        let floor = f64::from(self.config.min_per_second) * self.config.window.as_secs_f64();
        let allowed = self.config.ratio * requests as f64 + floor;
        if (retries as f64) + 1.0 > allowed {
            return false;
        }
        self.current(now).retries += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(now: Instant) -> RetryBudget {
        RetryBudget::new(
            BudgetConfig {
                ratio: 0.2,
                min_per_second: 1,
                window: Duration::from_secs(10),
            },
            now,
        )
    }

    #[test]
    fn retries_are_capped_by_ratio_plus_floor() {
        let t0 = Instant::now();
        let mut b = budget(t0);
        for _ in 0..100 {
            b.record_request(t0);
        }
        // 20% of 100 requests + 1/s * 10 s = 30 retries.
        let granted = (0..100).filter(|_| b.try_retry(t0)).count();
        assert_eq!(granted, 30);
    }

    #[test]
    fn the_floor_allows_retries_when_quiet() {
        let t0 = Instant::now();
        let mut b = budget(t0);
        let granted = (0..50).filter(|_| b.try_retry(t0)).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn the_window_slides() {
        let t0 = Instant::now();
        let mut b = budget(t0);
        for _ in 0..100 {
            b.record_request(t0);
        }
        assert_eq!((0..100).filter(|_| b.try_retry(t0)).count(), 30);
        // Half a window later the old requests and retries still count: nothing more.
        let t5 = t0 + Duration::from_secs(5);
        assert!(!b.try_retry(t5));
        // A whole window later they have slid out: only the floor is left.
        let t11 = t0 + Duration::from_secs(11);
        assert_eq!((0..100).filter(|_| b.try_retry(t11)).count(), 10);
    }
}
