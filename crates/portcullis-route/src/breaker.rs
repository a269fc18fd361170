//! The circuit breaker of one target (outlier ejection).
//!
//! ```text
//! closed --(N consecutive failures, or failure rate >= R over >= M calls in the window)--> open
//! open   --(cooldown elapsed; the next call is a probe)--> half-open
//! half-open --(probe succeeds)--> closed      half-open --(probe fails)--> open
//! ```
//!
//! While open, calls are refused without touching the upstream. In half-open exactly one
//! probe is let through at a time; a probe that never reports (its request was abandoned)
//! is replaced after another cooldown. Independently of the state, a throttled target
//! (429 with `Retry-After`) can be held until a given instant.

use std::time::{Duration, Instant};

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker; 0 disables the breaker.
    pub failures: u32,
    /// Failure rate (0..=1) over the window that opens the breaker; `None` = only consecutive failures.
    pub failure_rate: Option<f64>,
    /// Fewest calls in the window before the failure rate is considered.
    pub min_calls: u32,
    /// Window over which the failure rate is measured.
    pub window: Duration,
    /// How long an open breaker refuses calls before a probe.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            failure_rate: None,
            min_calls: 20,
            window: Duration::from_secs(30),
            cooldown: Duration::from_secs(30),
        }
    }
}

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls are refused until the cooldown ends.
    Open,
    /// One probe call decides between closed and open.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open`, `half_open`.
    pub fn label(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The answer to "may a call go to this target now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes, a normal call.
    Allowed,
    /// Yes, as the half-open probe: report its outcome.
    Probe,
    /// No; the target may be available again after this long.
    Refused(Duration),
}

/// What an operator sees of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// Current state (an open breaker whose cooldown is over shows as half-open).
    pub state: BreakerState,
    /// Consecutive failures counted so far.
    pub consecutive_failures: u32,
    /// When the breaker last opened.
    pub opened_at: Option<Instant>,
    /// When the next probe may go (open breakers only).
    pub next_probe_at: Option<Instant>,
    /// Until when a throttled target is held (429 Retry-After).
    pub held_until: Option<Instant>,
    /// How many times the breaker opened.
    pub times_opened: u64,
}

/// One target's breaker; see the module documentation.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive: u32,
    opened_at: Option<Instant>,
    probe_started: Option<Instant>,
    held_until: Option<Instant>,
    window_start: Instant,
    window_calls: u32,
    window_failures: u32,
    times_opened: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig, now: Instant) -> Breaker {
        Breaker {
            config,
            state: BreakerState::Closed,
            consecutive: 0,
            opened_at: None,
            probe_started: None,
            held_until: None,
            window_start: now,
            window_calls: 0,
            window_failures: 0,
            times_opened: 0,
        }
    }

    /// Whether a call could go at `now`, without claiming the probe (for choosing candidates).
    pub fn available(&self, now: Instant) -> bool {
        !matches!(self.check(now), Admission::Refused(_))
    }

    /// How long a throttled target is still held (zero when it is not).
    pub fn held_for(&self, now: Instant) -> Duration {
        self.held_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }

    /// What [`Breaker::admit`] would answer at `now`, without claiming anything.
    pub fn check(&self, now: Instant) -> Admission {
        if let Some(until) = self.held_until.filter(|u| *u > now) {
            return Admission::Refused(until - now);
        }
        if self.config.failures == 0 {
            return Admission::Allowed;
        }
        match self.state {
            BreakerState::Closed => Admission::Allowed,
            BreakerState::Open => {
                let probe_at = self.opened_at.unwrap_or(now) + self.config.cooldown;
                if now >= probe_at {
                    Admission::Probe
                } else {
                    Admission::Refused(probe_at - now)
                }
            }
            BreakerState::HalfOpen => match self.probe_started {
                Some(started) if now < started + self.config.cooldown => {
                    Admission::Refused(started + self.config.cooldown - now)
                }
                _ => Admission::Probe,
            },
        }
    }

    /// Asks to send a call; a [`Admission::Probe`] answer moves the breaker to half-open
    /// and makes this call the probe.
    pub fn admit(&mut self, now: Instant) -> Admission {
        let answer = self.check(now);
        if answer == Admission::Probe {
            self.state = BreakerState::HalfOpen;
            self.probe_started = Some(now);
        }
        answer
    }

    fn count(&mut self, now: Instant, failed: bool) {
        if now.saturating_duration_since(self.window_start) >= self.config.window {
            self.window_start = now;
            self.window_calls = 0;
            self.window_failures = 0;
        }
        self.window_calls += 1;
        self.window_failures += u32::from(failed);
    }

    /// Records a successful call; returns the new state when it changed.
    pub fn on_success(&mut self, now: Instant) -> Option<BreakerState> {
        self.count(now, false);
        self.consecutive = 0;
        if self.state == BreakerState::Closed {
            return None;
        }
        self.state = BreakerState::Closed;
        self.probe_started = None;
        self.window_start = now;
        self.window_calls = 0;
        self.window_failures = 0;
        Some(BreakerState::Closed)
    }

    /// Records a failed call; returns the new state when it changed.
    pub fn on_failure(&mut self, now: Instant) -> Option<BreakerState> {
        self.count(now, true);
        self.consecutive = self.consecutive.saturating_add(1);
        if self.config.failures == 0 {
            return None;
        }
        let trip = match self.state {
            BreakerState::HalfOpen => true,
            BreakerState::Open => false,
            BreakerState::Closed => {
                self.consecutive >= self.config.failures
                    || self.config.failure_rate.is_some_and(|rate| {
                        self.window_calls >= self.config.min_calls.max(1)
                            && f64::from(self.window_failures)
                                >= rate * f64::from(self.window_calls)
                    })
            }
        };
        if !trip {
            return None;
        }
        self.state = BreakerState::Open;
        self.opened_at = Some(now);
        self.probe_started = None;
        self.times_opened += 1;
        Some(BreakerState::Open)
    }

    /// Keeps calls away until `until` (a throttled target), whatever the state.
    pub fn hold(&mut self, until: Instant) {
        if self.held_until.is_none_or(|h| h < until) {
            self.held_until = Some(until);
        }
    }

    /// Closes the breaker and forgets failures and holds (operator reset).
    pub fn reset(&mut self, now: Instant) {
        let times_opened = self.times_opened;
        *self = Breaker::new(self.config, now);
        self.times_opened = times_opened;
    }

    /// The state as an operator sees it.
    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let next_probe_at = match self.state {
            BreakerState::Open => self.opened_at.map(|at| at + self.config.cooldown),
            _ => None,
        };
        let state = match (self.state, next_probe_at) {
            (BreakerState::Open, Some(at)) if now >= at => BreakerState::HalfOpen,
            (s, _) => s,
        };
        BreakerSnapshot {
            state,
            consecutive_failures: self.consecutive,
            opened_at: self.opened_at,
            next_probe_at,
            held_until: self.held_until.filter(|h| *h > now),
            times_opened: self.times_opened,
        }
    }

    /// The current state (see [`Breaker::snapshot`] for the operator's view).
    pub fn state(&self) -> BreakerState {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn breaker(now: Instant) -> Breaker {
        Breaker::new(
            BreakerConfig {
                failures: 3,
                failure_rate: None,
                min_calls: 10,
                window: Duration::from_secs(60),
                cooldown: COOLDOWN,
            },
            now,
        )
    }

    #[test]
    fn opens_after_consecutive_failures_and_readmits_after_cooldown() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        assert_eq!(b.admit(t0), Admission::Allowed);
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), Some(BreakerState::Open));
        // Ejected for the cooldown.
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(b.admit(t10), Admission::Refused(Duration::from_secs(20)));
        assert!(!b.available(t10));
        let snap = b.snapshot(t10);
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.opened_at, Some(t0));
        assert_eq!(snap.next_probe_at, Some(t0 + COOLDOWN));
        // After the cooldown one probe goes; a second caller waits for its outcome.
        let t30 = t0 + COOLDOWN;
        assert!(b.available(t30));
        assert_eq!(b.snapshot(t30).state, BreakerState::HalfOpen);
        assert_eq!(b.admit(t30), Admission::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(matches!(b.admit(t30), Admission::Refused(_)));
        // The probe succeeds: readmitted.
        assert_eq!(b.on_success(t30), Some(BreakerState::Closed));
        assert_eq!(b.admit(t30), Admission::Allowed);
        assert_eq!(b.snapshot(t30).consecutive_failures, 0);
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cooldown() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let t30 = t0 + COOLDOWN;
        assert_eq!(b.admit(t30), Admission::Probe);
        assert_eq!(b.on_failure(t30), Some(BreakerState::Open));
        assert_eq!(
            b.admit(t30 + Duration::from_secs(1)),
            Admission::Refused(Duration::from_secs(29))
        );
        assert_eq!(b.admit(t30 + COOLDOWN), Admission::Probe);
        assert_eq!(b.snapshot(t30).times_opened, 2);
    }

    #[test]
    fn an_abandoned_probe_is_replaced_after_a_cooldown() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let t30 = t0 + COOLDOWN;
        assert_eq!(b.admit(t30), Admission::Probe);
        assert!(!b.available(t30 + Duration::from_secs(29)));
        assert_eq!(b.admit(t30 + COOLDOWN), Admission::Probe);
    }

    #[test]
    fn successes_reset_the_consecutive_count() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        b.on_failure(t0);
        b.on_failure(t0);
        b.on_success(t0);
        b.on_failure(t0);
        b.on_failure(t0);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn failure_rate_opens_over_the_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            BreakerConfig {
                failures: 100,
                failure_rate: Some(0.5),
                min_calls: 10,
                window: Duration::from_secs(60),
                cooldown: COOLDOWN,
            },
            t0,
        );
        // Alternating success and failure: never 100 in a row, but 50% once 10 calls are in.
        let mut opened = None;
        for i in 0..20 {
            let change = if i % 2 == 0 {
                b.on_success(t0)
            } else {
                b.on_failure(t0)
            };
            if change == Some(BreakerState::Open) {
                opened = Some(i);
                break;
            }
        }
        assert_eq!(opened, Some(9));
    }

    #[test]
    fn holds_and_resets() {
        let t0 = Instant::now();
        let mut b = breaker(t0);
        b.hold(t0 + Duration::from_secs(2));
        assert_eq!(b.admit(t0), Admission::Refused(Duration::from_secs(2)));
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.available(t0 + Duration::from_secs(2)));
        for _ in 0..3 {
            b.on_failure(t0);
        }
        b.reset(t0);
        assert_eq!(b.admit(t0), Admission::Allowed);
        assert_eq!(b.snapshot(t0).times_opened, 1);
    }

    #[test]
    fn zero_failures_disables_the_breaker() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            BreakerConfig {
                failures: 0,
                ..BreakerConfig::default()
            },
            t0,
        );
        for _ in 0..100 {
            assert_eq!(b.on_failure(t0), None);
        }
        assert_eq!(b.admit(t0), Admission::Allowed);
    }
}
