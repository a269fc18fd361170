//! Time sources for the in-memory backend; tests inject tokio's (pausable) clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock microseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Now, in microseconds since the Unix epoch.
    fn now_micros(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }
}

/// The wall-clock time at creation advanced by tokio's clock, so that
/// `#[tokio::test(start_paused = true)]` and `tokio::time::advance` drive it.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_micros: u64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at `base_micros` (use a fixed value in tests for reproducible periods).
    pub fn starting_at(base_micros: u64) -> TokioClock {
        TokioClock {
            base_micros,
            start: tokio::time::Instant::now(),
        }
    }

    /// Starts at the current system time.
    pub fn new() -> TokioClock {
        TokioClock::starting_at(SystemClock.now_micros())
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now_micros(&self) -> u64 {
        self.base_micros + self.start.elapsed().as_micros() as u64
    }
}
